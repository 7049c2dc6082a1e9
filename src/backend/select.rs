//! Which backend a run gets: `--backend auto|vulkan|metal|dx12|gl|cpu`. The ranking of adapters
//! lives with the GPU backend (gpu/select.rs); this is what the rest of dale sees.

use std::str::FromStr;

use super::cpu::CpuBackend;
use super::gpu::select as gpu;
use super::Backend;
use crate::error::DaleError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
    /// Every choice, as the command line and DALE_BACKEND spell them.
    pub const NAMES: [&'static str; 6] = ["auto", "vulkan", "metal", "dx12", "gl", "cpu"];
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => BackendChoice::Auto,
            "vulkan" => BackendChoice::Vulkan,
            "metal" => BackendChoice::Metal,
            "dx12" => BackendChoice::Dx12,
            "gl" => BackendChoice::Gl,
            "cpu" => BackendChoice::Cpu,
            _ => {
                return Err(format!(
                    "backend `{s}`; allowed: {}",
                    Self::NAMES.join(", ")
                ))
            }
        })
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

pub use gpu::{auto_choice, list_adapters};

/// The opened backend and, in words, why it was chosen (printed and kept in manifest.json).
pub struct Opened {
    pub backend: Box<dyn Backend>,
    pub why: String,
}

pub fn open(choice: BackendChoice) -> Result<Opened, DaleError> {
    let (gpu, why) = gpu::open(choice)?;
    let backend: Box<dyn Backend> = match gpu {
        Some(g) => Box::new(g),
        None => Box::new(CpuBackend::new()),
    };
    Ok(Opened { backend, why })
}
