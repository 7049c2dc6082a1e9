//! Runs a scene end to end: checks sizes against the backend before allocating, simulates with
//! a progress bar, and writes manifest.json, summary.json, .npy arrays and PNG plots to --out.
//! A run that diverges still writes what it recorded, then reports the divergence.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::arrays::Array;
use super::balance_weights::{balance_inputs, inputs_from_files};
use super::balancing::BalancingScene;
use super::output::{prepare_dir, write_json, write_npys};
use super::plot::{line_panels, Panel, Series};
use super::{ModelParams, Scene};
use crate::backend::Backend;
use crate::error::DaleError;
use crate::models::rate::{self, Monitors, RateParams, Trajectory, Weights};

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
    if let ModelParams::Rate(p) = &scene.params {
        p.check_fits("params", info.max_buffer_len, &info.name)?;
    }
    // Arrays from files are read and checked before anything is written.
    let rate_weights = match &scene.params {
        ModelParams::Rate(p) => Some(rate_weights(p, &scene)?),
        _ => None,
    };
    let network = match &scene.params {
        ModelParams::Balancing(BalancingScene::Network(settings)) => {
            let inputs = inputs_from_files(&scene.weights)?;
            settings.costs_of(&inputs)?;
            Some(inputs)
        }
        _ => None,
    };
    let out = prepare_dir(&opts.out)?;
    let bar = progress_bar(scene.steps, opts.progress);
    let mut files = Vec::new();
    let (summary, outcome, run_s) = match &scene.params {
        ModelParams::Rate(p) => {
            let weights = rate_weights.expect("read above");
            let monitors = Monitors {
                x: scene.monitors.x.clone(),
                y: scene.monitors.y.clone(),
            };
            let t = Instant::now();
            let result = rate::simulate(
                backend,
                p,
                &weights,
                scene.seed,
                scene.steps,
                &monitors,
                &mut |done| bar.set_position(done as u64),
            );
            let run_s = t.elapsed().as_secs_f64();
            bar.finish_and_clear();
            let (traj, err) = match result {
                Ok(traj) => (traj, None),
                Err((traj, e)) => (traj, Some(e)),
            };
            if let Some(e @ DaleError::Gpu { .. }) = err {
                return Err(e);
            }
            files.extend(write_rate(&out, &scene, p, &traj)?);
            (rate_summary(p, &traj, scene.steps), err, run_s)
        }
        ModelParams::Balancing(BalancingScene::Network(settings)) => {
            let t = Instant::now();
            let result = balance_inputs(
                backend,
                network.as_ref().expect("read above"),
                settings,
                &out,
            );
            bar.finish_and_clear();
            let (summary, written) = result?;
            files.extend(written);
            (summary, None, t.elapsed().as_secs_f64())
        }
        ModelParams::Balancing(b) => {
            let t = Instant::now();
            let result = super::balancing::run(
                b,
                scene.steps,
                scene.seed,
                backend,
                &out,
                scene.outputs.arrays,
                scene.outputs.plots,
            );
            bar.finish_and_clear();
            let (summary, written) = result?;
            files.extend(written);
            (summary, None, t.elapsed().as_secs_f64())
        }
    };
    let summary_json = json!({ "status": status(&outcome), "figures": summary });
    write_json(&out.join("summary.json"), &summary_json)?;
    files.push("summary.json".into());
    let manifest = json!({
        "dale_version": env!("CARGO_PKG_VERSION"),
        "scene_file": opts.scene_file,
        "scene": scene,
        "seed": scene.seed,
        "smoke": opts.smoke,
        "status": status(&outcome),
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
            summary: summary_json,
        }),
    }
}

fn status(outcome: &Option<DaleError>) -> &'static str {
    match outcome {
        None => "completed",
        Some(_) => "diverged",
    }
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

fn write_rate(
    out: &Path,
    scene: &Scene,
    p: &RateParams,
    traj: &Trajectory,
) -> Result<Vec<String>, DaleError> {
    let (b, n, k) = (p.batch(), p.n, p.outputs);
    let mut files = Vec::new();
    if scene.outputs.arrays {
        let x_times: Vec<f32> = traj.x_steps.iter().map(|&s| s as f32 * p.dt).collect();
        let y_times: Vec<f32> = traj.y_steps.iter().map(|&s| s as f32 * p.dt).collect();
        let mut arrays: Vec<(&str, Vec<usize>, &[f32])> = vec![
            (
                "population_rate.npy",
                vec![traj.steps_done, b],
                &traj.population_rate,
            ),
            ("max_abs_x.npy", vec![traj.steps_done, b], &traj.max_abs_x),
        ];
        if scene.monitors.x.is_some() {
            arrays.push(("x.npy", vec![traj.x_steps.len(), traj.x_trials, n], &traj.x));
            arrays.push(("x_times.npy", vec![x_times.len()], &x_times));
        }
        if scene.monitors.y.is_some() {
            arrays.push(("y.npy", vec![traj.y_steps.len(), traj.y_trials, k], &traj.y));
            arrays.push(("y_times.npy", vec![y_times.len()], &y_times));
        }
        if !traj.x_final.is_empty() {
            arrays.push(("x_final.npy", vec![b, n], &traj.x_final));
        }
        files.extend(write_npys(out, &arrays)?);
    }
    if scene.outputs.plots {
        let mut panels = Vec::new();
        if !traj.x_steps.is_empty() {
            let shown = n.min(8);
            panels.push(Panel {
                title: format!("x_i(t), {shown} neurons of trial 0"),
                x_label: "t".into(),
                y_label: "x".into(),
                series: (0..shown)
                    .map(|i| Series {
                        label: format!("neuron {i}"),
                        points: traj
                            .x_steps
                            .iter()
                            .enumerate()
                            .map(|(s, &t)| {
                                (
                                    t as f64 * p.dt as f64,
                                    traj.x[s * traj.x_trials * n + i] as f64,
                                )
                            })
                            .collect(),
                    })
                    .collect(),
            });
        }
        let shown = b.min(8);
        panels.push(Panel {
            title: format!("population rate <phi(x)> over N = {n} neurons, {shown} of {b} trials"),
            x_label: "t".into(),
            y_label: "mean rate".into(),
            series: (0..shown)
                .map(|trial| Series {
                    label: format!("trial {trial}"),
                    points: (0..traj.steps_done)
                        .map(|s| {
                            (
                                (s + 1) as f64 * p.dt as f64,
                                traj.population_rate[s * b + trial] as f64,
                            )
                        })
                        .collect(),
                })
                .collect(),
        });
        line_panels(&out.join("rate.png"), &panels)?;
        files.push("rate.png".into());
    }
    Ok(files)
}

/// Headline figures. The quickstart has no paper value to stand beside; the field stays so that
/// every summary has the same shape.
fn rate_summary(p: &RateParams, traj: &Trajectory, steps: usize) -> serde_json::Value {
    let b = p.batch();
    let last = traj
        .steps_done
        .saturating_sub((traj.steps_done / 10).max(1));
    let tail: Vec<f64> = (last..traj.steps_done)
        .flat_map(|s| (0..b).map(move |t| (s, t)))
        .map(|(s, t)| traj.population_rate[s * b + t] as f64)
        .collect();
    let mean_rate = if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    };
    let peak = traj.max_abs_x.iter().fold(0.0f32, |m, v| m.max(*v));
    let active = if traj.x_final.is_empty() {
        serde_json::Value::Null
    } else {
        json!(
            traj.x_final
                .iter()
                .filter(|v| p.phi.apply(**v) > 0.0)
                .count() as f64
                / traj.x_final.len() as f64
        )
    };
    json!({
        "steps_requested": steps,
        "steps_done": traj.steps_done,
        "mean_population_rate_last_10pct": { "measured": mean_rate, "paper": null },
        "peak_abs_x": { "measured": peak, "paper": null },
        "fraction_active_at_end": { "measured": active, "paper": null },
    })
}

/// The rate network's weights: random (from the seed), with any of J, W_in, W_out the scene names
/// read from files instead, each [rows, cols] for one network or [networks, rows, cols].
fn rate_weights(p: &RateParams, scene: &Scene) -> Result<Weights, DaleError> {
    let mut w = Weights::random(p, scene.seed);
    let files = &scene.weights;
    for (spec, dst, rows, cols, what) in [
        (&files.J, &mut w.j, p.n, p.n, "[N, N] from params.n"),
        (
            &files.W_in,
            &mut w.w_in,
            p.n,
            p.inputs,
            "[N, M] from params.n and params.inputs",
        ),
        (
            &files.W_out,
            &mut w.w_out,
            p.outputs,
            p.n,
            "[K, N] from params.outputs and params.n",
        ),
    ] {
        let Some(spec) = spec else { continue };
        let a: Array = super::arrays::read_array(spec)?;
        let fits =
            (a.shape == [rows, cols] && p.networks == 1) || a.shape == [p.networks, rows, cols];
        if !fits {
            return Err(DaleError::Input {
                file: a.file.clone(),
                array: a.name.clone(),
                message: format!("shape {:?}; expected [{rows}, {cols}] or [{}, {rows}, {cols}] ({what}, params.networks = {})", a.shape, p.networks, p.networks),
            });
        }
        *dst = a.data;
    }
    Ok(w)
}
