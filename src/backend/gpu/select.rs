//! Which adapter a run gets. `auto` ranks a discrete GPU, then an integrated one, then a virtual
//! one, then the CPU backend; it never picks a software adapter (lavapipe, llvmpipe, WARP,
//! SwiftShader: wgpu device type Cpu), which is far slower than the CPU backend on the same cores
//! and serves only to check kernels. A named wgpu backend takes any adapter of that backend.
//! `auto` looks at the native APIs (Vulkan, Metal, DX12) only; GL runs when asked for by name.

use std::sync::Arc;

use super::device::{adapters, backend_name, GpuContext, NATIVE};
use super::GpuBackend;
use crate::backend::select::{AdapterRow, BackendChoice};
use crate::error::DaleError;

/// The wgpu backend a choice names; None for `auto` and `cpu`.
fn wgpu_backend(choice: BackendChoice) -> Option<wgpu::Backend> {
    match choice {
        BackendChoice::Vulkan => Some(wgpu::Backend::Vulkan),
        BackendChoice::Metal => Some(wgpu::Backend::Metal),
        BackendChoice::Dx12 => Some(wgpu::Backend::Dx12),
        BackendChoice::Gl => Some(wgpu::Backend::Gl),
        BackendChoice::Auto | BackendChoice::Cpu => None,
    }
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

/// Picks the adapter for `choice` without opening it; None for the CPU backend.
fn pick(choice: BackendChoice) -> Result<(Option<wgpu::Adapter>, String), DaleError> {
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
            let want = wgpu_backend(named).expect("named wgpu backend");
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

/// What `auto` would pick, in words, without opening it.
pub fn auto_choice() -> Result<String, DaleError> {
    pick(BackendChoice::Auto).map(|(_, why)| why)
}

/// The GPU backend `choice` names (None when it comes to the CPU backend), and why.
pub fn open(choice: BackendChoice) -> Result<(Option<GpuBackend>, String), DaleError> {
    let (adapter, why) = pick(choice)?;
    let gpu = match adapter {
        Some(a) => Some(GpuBackend::new(GpuContext::open(&a)?)),
        None => None,
    };
    Ok((gpu, why))
}

/// Any GPU adapter, software ones included, hardware first: what kernel tests run on.
pub fn any_gpu() -> Result<Option<Arc<GpuContext>>, DaleError> {
    let best = adapters(NATIVE).into_iter().min_by_key(|a| {
        let info = a.get_info();
        (rank(info.device_type).unwrap_or(9), api_order(info.backend))
    });
    best.map(|a| GpuContext::open(&a)).transpose()
}
