//! One module per reproduced figure, each behind `Experiment`: its inputs are read and checked
//! when it is built (before anything is written), its sizes are checked against the backend
//! before anything is allocated, it runs at full or smoke size, and it returns a `Report`: the
//! summary figures beside the paper's, pass/fail checks of the paper's claims, arrays and plots.
//! The runner (scene::runner) alone writes files. Experiments see only the op-family traits.

pub mod balance_network;
pub mod balancing_fig3;
pub mod balancing_fig4;
pub mod balancing_fig5;
pub mod cuba;
pub mod disco_capacity;
pub mod disco_geodesic;
pub mod disco_setup;
pub mod disco_teacher;
pub mod minimax_fig1;
pub mod minimax_tasks;
pub mod rate;

use crate::backend::{largest_that_fits, Backend, BackendInfo};
use crate::error::DaleError;
pub use crate::scene::arrays::Dtype;
use crate::scene::plot::Panel;

pub trait Experiment {
    /// Refuses, before anything is allocated, a size whose buffers would not fit the backend,
    /// naming the scene field and the largest value that fits.
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError>;
    /// Runs it; `progress` is told the steps (or iterations) done.
    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError>;
}

/// What a run found: written by the runner as summary.json, .npy files and PNG plots.
#[derive(Default)]
pub struct Report {
    /// The measured figures, each beside the paper's value where it has one.
    pub figures: serde_json::Value,
    /// Pass/fail checks of the paper's claims and of the model's own invariants; the smoke test
    /// asserts every one.
    pub checks: Vec<(String, bool)>,
    pub arrays: Vec<OutputArray>,
    pub plots: Vec<Plot>,
    /// The run stopped early (the state left the finite numbers); what came before is reported.
    pub diverged: Option<DaleError>,
}

impl Report {
    pub fn check(&mut self, name: impl Into<String>, passed: bool) {
        self.checks.push((name.into(), passed));
    }

    pub fn array(&mut self, name: &str, shape: Vec<usize>, data: Vec<f32>) {
        self.arrays.push(OutputArray {
            name: name.into(),
            shape,
            data,
            dtype: Dtype::F32,
        });
    }
}

/// An array to write as `name` (.npy), C order.
pub struct OutputArray {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    /// Written as this type: results go back in the type their input came in.
    pub dtype: Dtype,
}

/// A figure to draw as `file` (PNG): panels stacked vertically.
pub struct Plot {
    pub file: String,
    pub panels: Vec<Panel>,
}

/// Refuses `value` of scene field `path` when `needed(value)` values would not fit in one buffer
/// of `backend`; names the largest value that fits (found by bisection, since `needed` grows
/// with the value).
pub fn fits(
    backend: &BackendInfo,
    path: &str,
    value: usize,
    what: &str,
    needed: impl Fn(usize) -> Option<usize>,
) -> Result<(), DaleError> {
    let max = backend.max_buffer_len;
    let largest = largest_that_fits(value, |v| needed(v).is_some_and(|len| len <= max));
    if largest == value {
        return Ok(());
    }
    Err(DaleError::TooLarge {
        path: path.into(),
        value,
        largest,
        backend: backend.name.clone(),
        why: format!("{what}, at most {max} values in one buffer"),
    })
}
