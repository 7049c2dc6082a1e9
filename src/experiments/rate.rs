//! The rate network run as a scene (the quickstart): batched trajectories of 001 eq. 1-2, the
//! population rate and the readout, with checks of the model's own identities.

use serde_json::json;

use super::{Experiment, Plot, Report};
use crate::backend::{largest_that_fits, Backend, BackendInfo};
use crate::error::DaleError;
use crate::host::memory_bytes;
use crate::models::rate::{simulate, Footprint, Monitors, RateParams, Trajectory, Weights};
use crate::scene::arrays::read_array;
use crate::scene::plot::{Marks, Panel, Series};
use crate::scene::WeightFiles;

pub struct RateRun {
    pub params: RateParams,
    /// J, W_in, W_out read from files; the others are drawn from the seed when the run starts,
    /// after its sizes were checked.
    files: [Option<Vec<f32>>; 3],
    pub seed: u64,
    pub steps: usize,
    pub monitors: Monitors,
}

impl RateRun {
    /// Random weights from the seed, with any of J, W_in, W_out that `files` names read instead
    /// (now, so that a bad file is refused before anything is written).
    pub fn new(
        params: RateParams,
        files: &WeightFiles,
        seed: u64,
        steps: usize,
        monitors: Monitors,
    ) -> Result<Self, DaleError> {
        Ok(RateRun {
            files: weights_from_files(&params, files)?,
            params,
            seed,
            steps,
            monitors,
        })
    }
}

impl Experiment for RateRun {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        self.params
            .check_fits("params", backend.max_buffer_len, &backend.name)?;
        // Then everything the run holds at once against the machine's memory, so that a run
        // that would exhaust it is refused before it starts rather than killed midway.
        let Some(limit) = memory_bytes().map(|bytes| (bytes / 2 / 4) as usize) else {
            return Ok(());
        };
        let shared = backend.shared_memory_len.is_some();
        let fits = |p: &RateParams, steps: usize| {
            Footprint::of(p, steps, &self.monitors).is_some_and(|f| {
                let held = if shared {
                    f.host.checked_add(f.backend)
                } else {
                    Some(f.host)
                };
                held.is_some_and(|v| v <= limit)
            })
        };
        let p = &self.params;
        if fits(p, self.steps) {
            return Ok(());
        }
        let with = |change: &dyn Fn(&mut RateParams)| {
            let mut q = p.clone();
            change(&mut q);
            q
        };
        let (path, value, largest) = if fits(p, 0) {
            // The record over the steps is what does not fit.
            let largest = largest_that_fits(self.steps, |s| fits(p, s));
            ("steps", self.steps, largest)
        } else if fits(&with(&|q| q.trials = 1), self.steps) {
            let largest =
                largest_that_fits(p.trials, |t| fits(&with(&|q| q.trials = t), self.steps));
            ("params.trials", p.trials, largest)
        } else {
            let largest = largest_that_fits(p.n, |n| fits(&with(&|q| q.n = n), self.steps));
            ("params.n", p.n, largest)
        };
        Err(DaleError::TooLarge {
            path: path.into(),
            value,
            largest,
            backend: backend.name.clone(),
            why: format!(
                "with the other fields as given, the run would hold more than half this \
                 machine's memory ({limit} values of 4 bytes): weights, state{} and the record",
                if shared { ", buffers" } else { "" }
            ),
        })
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        let p = &self.params;
        let mut weights = Weights::random(p, self.seed);
        for (dst, given) in [&mut weights.j, &mut weights.w_in, &mut weights.w_out]
            .into_iter()
            .zip(&self.files)
        {
            if let Some(values) = given {
                dst.clone_from(values);
            }
        }
        let (traj, diverged) = match simulate(
            backend,
            p,
            &weights,
            self.seed,
            self.steps,
            &self.monitors,
            progress,
        ) {
            Ok(traj) => (traj, None),
            Err((_, e @ DaleError::Gpu { .. })) => return Err(e),
            Err((traj, e)) => (traj, Some(e)),
        };
        let mut report = Report {
            figures: rate_summary(p, &traj, self.steps),
            diverged,
            ..Report::default()
        };
        checks(&mut report, p, &weights, &traj, self.steps);
        report.plots.push(plot(p, &traj));
        arrays(&mut report, &self.monitors, p, traj);
        Ok(report)
    }
}

/// The identities a correct run satisfies: every step done with a finite state; the population
/// rate, a mean of phi(x), within max |x| (|phi(x)| <= |x| for linear, ReLU and tanh); and the
/// last recorded readout equal to W_out x (eq. 2) computed on the host from the final state.
fn checks(report: &mut Report, p: &RateParams, w: &Weights, traj: &Trajectory, steps: usize) {
    report.check(
        "completed_all_steps_with_finite_state",
        traj.steps_done == steps,
    );
    let b = p.batch();
    let rate_bounded = (0..traj.steps_done * b)
        .all(|i| traj.population_rate[i].abs() <= traj.max_abs_x[i] * (1.0 + 1e-6));
    report.check("population_rate_within_max_abs_x", rate_bounded);
    if traj.y_steps.last() == Some(&steps) && traj.y_trials > 0 && !traj.x_final.is_empty() {
        let (n, k, r) = (p.n, p.outputs, p.trials);
        let last = &traj.y[(traj.y_steps.len() - 1) * traj.y_trials * k..];
        let mut worst = 0.0f64;
        let mut scale = f64::MIN_POSITIVE;
        for t in 0..traj.y_trials {
            let net = t / r;
            for o in 0..k {
                let want: f64 = (0..n)
                    .map(|i| {
                        f64::from(w.w_out[(net * k + o) * n + i])
                            * f64::from(traj.x_final[t * n + i])
                    })
                    .sum();
                worst = worst.max((f64::from(last[t * k + o]) - want).abs());
                scale = scale.max(want.abs());
            }
        }
        // An n-term f32 dot product against f64: 4 eps sqrt(n) of the largest output.
        let tol = 4.0 * f64::from(f32::EPSILON) * (n as f64).sqrt();
        report.check("readout_equals_w_out_x_at_the_end", worst <= tol * scale);
    }
}

/// The recorded series as arrays, moved out of the trajectory; the batch index is
/// network * trials + trial.
fn arrays(report: &mut Report, monitors: &Monitors, p: &RateParams, traj: Trajectory) {
    let (b, n, k) = (p.batch(), p.n, p.outputs);
    let steps = traj.steps_done;
    report.array("population_rate.npy", vec![steps, b], traj.population_rate);
    report.array("max_abs_x.npy", vec![steps, b], traj.max_abs_x);
    if monitors.x.is_some() {
        let times = traj.x_steps.iter().map(|&s| s as f32 * p.dt).collect();
        report.array("x.npy", vec![traj.x_steps.len(), traj.x_trials, n], traj.x);
        report.array("x_times.npy", vec![traj.x_steps.len()], times);
    }
    if monitors.y.is_some() {
        let times = traj.y_steps.iter().map(|&s| s as f32 * p.dt).collect();
        report.array("y.npy", vec![traj.y_steps.len(), traj.y_trials, k], traj.y);
        report.array("y_times.npy", vec![traj.y_steps.len()], times);
    }
    if !traj.x_final.is_empty() {
        report.array("x_final.npy", vec![b, n], traj.x_final);
    }
}

fn plot(p: &RateParams, traj: &Trajectory) -> Plot {
    let (b, n) = (p.batch(), p.n);
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
                    band: Vec::new(),
                })
                .collect(),
            log_y: false,
            marks: Marks::Lines,
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
                band: Vec::new(),
            })
            .collect(),
        log_y: false,
        marks: Marks::Lines,
    });
    Plot {
        file: "rate.png".into(),
        panels,
    }
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

/// J, W_in, W_out as the scene names them in files (each [rows, cols] for one network or
/// [networks, rows, cols]), read and checked before anything is written; None where the weights
/// are random.
fn weights_from_files(
    p: &RateParams,
    files: &WeightFiles,
) -> Result<[Option<Vec<f32>>; 3], DaleError> {
    let mut out = [None, None, None];
    for (slot, (spec, rows, cols, what)) in out.iter_mut().zip([
        (&files.J, p.n, p.n, "[N, N] from params.n"),
        (
            &files.W_in,
            p.n,
            p.inputs,
            "[N, M] from params.n and params.inputs",
        ),
        (
            &files.W_out,
            p.outputs,
            p.n,
            "[K, N] from params.outputs and params.n",
        ),
    ]) {
        let Some(spec) = spec else { continue };
        let a = read_array(spec)?;
        let fits =
            (a.shape == [rows, cols] && p.networks == 1) || a.shape == [p.networks, rows, cols];
        if !fits {
            return Err(DaleError::Input {
                file: a.file.clone(),
                array: a.name.clone(),
                message: format!("shape {:?}; expected [{rows}, {cols}] or [{}, {rows}, {cols}] ({what}, params.networks = {})", a.shape, p.networks, p.networks),
            });
        }
        *slot = Some(a.data);
    }
    Ok(out)
}
