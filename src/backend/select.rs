//! Which backend a run gets. `auto` ranks a discrete GPU, then an integrated one, then a virtual
//! one, then the CPU backend; it never picks a software adapter (lavapipe, llvmpipe, WARP,
//! SwiftShader: wgpu device type Cpu), which is far slower than the CPU backend on the same cores
//! and serves only to check kernels. A named wgpu backend takes any adapter of that backend.
//! `auto` looks at the native APIs (Vulkan, Metal, DX12) only; GL runs when asked for by name.

use std::sync::Arc;

use super::cpu::CpuBackend;
use super::gpu::{adapters, backend_name, GpuBackend, GpuContext, NATIVE};
use super::Backend;
use crate::error::DaleError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Auto,
    Vulkan,
    Metal,
    Dx12,
    Gl,
    Cpu,
}

impl BackendChoice {
    fn wgpu(self) -> Option<wgpu::Backend> {
        match self {
            BackendChoice::Vulkan => Some(wgpu::Backend::Vulkan),
            BackendChoice::Metal => Some(wgpu::Backend::Metal),
            BackendChoice::Dx12 => Some(wgpu::Backend::Dx12),
            BackendChoice::Gl => Some(wgpu::Backend::Gl),
            BackendChoice::Auto | BackendChoice::Cpu => None,
        }
    }
}

/// One adapter as `dale devices` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterRow {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// 1 is best; None means `auto` never picks it.
    pub rank: Option<u32>,
    pub max_buffer_mib: u64,
    pub max_workgroup_storage_kib: u32,
    pub max_invocations_per_workgroup: u32,
    pub max_workgroups_per_dimension: u32,
}

/// Rank by device type: real GPUs only.
fn rank(t: wgpu::DeviceType) -> Option<u32> {
    match t {
        wgpu::DeviceType::DiscreteGpu => Some(1),
        wgpu::DeviceType::IntegratedGpu => Some(2),
        wgpu::DeviceType::VirtualGpu => Some(3),
        wgpu::DeviceType::Cpu | wgpu::DeviceType::Other => None,
    }
}

/// Among adapters of equal rank, the native API of the platform wins over GL.
fn api_order(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

fn row(a: &wgpu::Adapter) -> AdapterRow {
    let info = a.get_info();
    let limits = a.limits();
    AdapterRow {
        name: info.name.clone(),
        backend: backend_name(info.backend).into(),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        rank: rank(info.device_type),
        max_buffer_mib: limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            >> 20,
        max_workgroup_storage_kib: limits.max_compute_workgroup_storage_size / 1024,
        max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
    }
}

pub fn list_adapters() -> Vec<AdapterRow> {
    adapters(wgpu::Backends::all()).iter().map(row).collect()
}

/// The opened backend and, in words, why it was chosen (printed and kept in manifest.json).
pub struct Opened {
    pub backend: Box<dyn Backend>,
    pub why: String,
}

/// Picks the adapter for `choice` without opening it; None for the CPU backend.
pub fn pick(choice: BackendChoice) -> Result<(Option<wgpu::Adapter>, String), DaleError> {
    match choice {
        BackendChoice::Cpu => Ok((None, "the CPU backend was asked for (--backend cpu)".into())),
        BackendChoice::Auto => {
            let best = adapters(NATIVE)
                .into_iter()
                .filter_map(|a| {
                    let info = a.get_info();
                    rank(info.device_type).map(|r| (r, api_order(info.backend), a))
                })
                .min_by_key(|(r, o, _)| (*r, *o));
            Ok(match best {
                Some((_, _, a)) => {
                    let info = a.get_info();
                    let why = format!("auto: best-ranked GPU adapter ({:?}, {})", info.device_type, backend_name(info.backend));
                    (Some(a), why)
                }
                None => (
                    None,
                    "auto: no hardware GPU adapter found (software adapters such as lavapipe are never picked by auto: \
                     they are far slower than the CPU backend); running the CPU backend"
                        .into(),
                ),
            })
        }
        named => {
            let want = named.wgpu().expect("named wgpu backend");
            let best = adapters(want.into())
                .into_iter()
                .min_by_key(|a| rank(a.get_info().device_type).unwrap_or(u32::MAX));
            match best {
                Some(a) => {
                    let info = a.get_info();
                    Ok((
                        Some(a),
                        format!(
                            "asked for {}: its best adapter ({:?})",
                            backend_name(want),
                            info.device_type
                        ),
                    ))
                }
                None => Err(DaleError::NoAdapter {
                    requested: backend_name(want).into(),
                    why: "wgpu sees no adapter of that backend (run `dale devices`)".into(),
                }),
            }
        }
    }
}

pub fn open(choice: BackendChoice) -> Result<Opened, DaleError> {
    let (adapter, why) = pick(choice)?;
    let backend: Box<dyn Backend> = match adapter {
        Some(a) => Box::new(GpuBackend::new(GpuContext::open(&a)?)),
        None => Box::new(CpuBackend::new()),
    };
    Ok(Opened { backend, why })
}

/// Any GPU adapter, software ones included, hardware first: what kernel tests run on.
pub fn any_gpu() -> Result<Option<Arc<GpuContext>>, DaleError> {
    let best = adapters(NATIVE).into_iter().min_by_key(|a| {
        let info = a.get_info();
        (rank(info.device_type).unwrap_or(9), api_order(info.backend))
    });
    best.map(|a| GpuContext::open(&a)).transpose()
}
