//! Adapters and the device: what wgpu sees, and one opened device with the adapter's own limits
//! (not wgpu's defaults, which cap a storage buffer at 128 MiB) and every kernel compiled once.

use std::sync::{Arc, OnceLock};

use super::kernels::Kernels;
use crate::backend::BackendInfo;
use crate::error::DaleError;

/// One wgpu instance per process for the native APIs, and one for GL made only when GL is
/// asked for or listed.
fn instance(gl: bool) -> &'static wgpu::Instance {
    static NATIVE_INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    static GL_INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    let (cell, backends) = if gl {
        (&GL_INSTANCE, wgpu::Backends::GL)
    } else {
        (&NATIVE_INSTANCE, NATIVE)
    };
    cell.get_or_init(|| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        wgpu::Instance::new(desc)
    })
}

/// Adapters of the given wgpu backends.
pub fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut all = Vec::new();
    if backends.intersects(NATIVE) {
        all.extend(pollster::block_on(
            instance(false).enumerate_adapters(backends & NATIVE),
        ));
    }
    if backends.contains(wgpu::Backends::GL) {
        all.extend(pollster::block_on(
            instance(true).enumerate_adapters(wgpu::Backends::GL),
        ));
    }
    all
}

/// The native compute APIs. GL is left out unless asked for by name: its compute path is the
/// most limited, and probing it makes Mesa print EGL warnings on headless machines.
pub const NATIVE: wgpu::Backends = wgpu::Backends::VULKAN
    .union(wgpu::Backends::METAL)
    .union(wgpu::Backends::DX12);

/// A device, its queue and compiled kernels: shared by every `GpuBackend` opened on it
/// (one per test binary, as in cubecl, so that CI compiles each kernel once).
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: BackendInfo,
    pub limits: wgpu::Limits,
    pub kernels: Kernels,
}

impl GpuContext {
    pub fn open(adapter: &wgpu::Adapter) -> Result<Arc<Self>, DaleError> {
        let a = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("dale"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| DaleError::Gpu {
            what: format!("opening {}", a.name),
            message: e.to_string(),
        })?;
        let kernels = Kernels::build(&device)?;
        let max_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let info = BackendInfo {
            kind: backend_name(a.backend).into(),
            name: a.name.clone(),
            device_type: format!("{:?}", a.device_type),
            driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
            max_buffer_len: (max_bytes / 4) as usize,
            shared_memory_len: None,
        };
        Ok(Arc::new(Self {
            device,
            queue,
            info,
            limits,
            kernels,
        }))
    }
}

pub fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::BrowserWebGpu => "webgpu",
        wgpu::Backend::Noop => "noop",
    }
}
