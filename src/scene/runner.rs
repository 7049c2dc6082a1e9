//! Runs a scene end to end: builds its experiment (reading and checking every input), checks
//! sizes against the backend before allocating, runs it with a progress bar, and writes what it
//! reports: manifest.json, summary.json (status, checks, figures), .npy arrays and PNG plots. The
//! only writer of files. A run that diverges still writes what it recorded, then reports it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::output::{prepare_dir, write_json, write_npy};
use super::plot::line_panels;
use super::{Outputs, Scene};
use crate::backend::Backend;
use crate::error::DaleError;
use crate::experiments::{Dtype, Report};

pub struct RunOptions {
    pub out: PathBuf,
    pub smoke: bool,
    /// Show a progress bar (it is drawn only when stderr is a terminal).
    pub progress: bool,
    /// Why this backend was chosen, for manifest.json.
    pub backend_why: String,
    /// The scene file, for manifest.json.
    pub scene_file: Option<PathBuf>,
}

/// What a finished run wrote.
#[derive(Debug)]
pub struct RunReport {
    pub out: PathBuf,
    pub files: Vec<String>,
    pub summary: serde_json::Value,
}

pub fn run_scene(
    mut scene: Scene,
    backend: &mut dyn Backend,
    opts: &RunOptions,
) -> Result<RunReport, DaleError> {
    let started = Instant::now();
    if opts.smoke {
        scene.smoke();
    }
    let info = backend.info();
    let experiment = scene.experiment()?;
    experiment.check_fits(&info)?;
    let out = prepare_dir(&opts.out)?;
    let bar = progress_bar(scene.steps, opts.progress);
    let t = Instant::now();
    let result = experiment.run(backend, &mut |done| bar.set_position(done as u64));
    let run_s = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut report = result?;
    let mut files = write_report(&out, &report, &scene.outputs)?;
    let outcome = report.diverged.take();
    let status = if outcome.is_some() {
        "diverged"
    } else {
        "completed"
    };
    let summary = json!({
        "status": status,
        "checks": checks_json(&report),
        "figures": report.figures,
    });
    write_json(&out.join("summary.json"), &summary)?;
    files.push("summary.json".into());
    let manifest = json!({
        "dale_version": env!("CARGO_PKG_VERSION"),
        "scene_file": opts.scene_file,
        "scene": scene,
        "seed": scene.seed,
        "smoke": opts.smoke,
        "status": status,
        "error": outcome.as_ref().map(|e| e.to_string()),
        "backend": info,
        "backend_choice": opts.backend_why,
        "timings_s": { "simulate": run_s, "total": started.elapsed().as_secs_f64() },
        "files": files,
    });
    write_json(&out.join("manifest.json"), &manifest)?;
    files.push("manifest.json".into());
    match outcome {
        Some(e) => Err(e),
        None => Ok(RunReport {
            out,
            files,
            summary,
        }),
    }
}

/// The checks as one JSON object, name -> passed.
pub fn checks_json(report: &Report) -> serde_json::Value {
    report
        .checks
        .iter()
        .map(|(name, passed)| (name.clone(), json!(passed)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Writes the report's arrays and plots into `out` (each file atomically), as `outputs` allows;
/// returns the names written.
pub fn write_report(
    out: &Path,
    report: &Report,
    outputs: &Outputs,
) -> Result<Vec<String>, DaleError> {
    let mut files = Vec::new();
    if outputs.arrays {
        for a in &report.arrays {
            let path = out.join(&a.name);
            match a.dtype {
                Dtype::F32 => write_npy(&path, &a.shape, &a.data)?,
                Dtype::F64 => {
                    let wide: Vec<f64> = a.data.iter().map(|v| f64::from(*v)).collect();
                    write_npy(&path, &a.shape, &wide)?
                }
            }
            files.push(a.name.clone());
        }
    }
    if outputs.plots {
        for plot in &report.plots {
            line_panels(&out.join(&plot.file), &plot.panels)?;
            files.push(plot.file.clone());
        }
    }
    Ok(files)
}

fn progress_bar(steps: usize, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(steps as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} steps ({per_sec}, eta {eta})",
        )
        .expect("template is valid")
        .progress_chars("=> "),
    );
    bar
}
