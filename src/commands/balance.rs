//! `dale balance`: balance a network trained elsewhere, given as .npy (J alone) or .npz (J and
//! optionally W_in, W_out, sigma2, alpha), and write the balanced weights in the dtype they came
//! in; `--check` runs both networks and compares their outputs.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::analysis::balance::signs_or_zeros_changed;
use crate::backend::{Backend, Phi};
use crate::error::DaleError;
use crate::experiments::balance_network::{read_inputs, BalanceNetwork, BalanceSettings};
use crate::experiments::Experiment;
use crate::models::rate::{simulate, Input, Monitor, Monitors, RateParams, Weights};
use crate::scene::arrays::{expect_shape, read_array};
use crate::scene::output::{prepare_dir, write_json};
use crate::scene::runner::{checks_json, write_report};
use crate::scene::Outputs;

/// `dale balance WEIGHTS --out DIR`: reads and checks the arrays before creating DIR, balances,
/// and writes summary.json beside the arrays.
pub fn balance_weights(
    backend: &mut dyn Backend,
    weights: &Path,
    out: &Path,
    settings: BalanceSettings,
    backend_why: &str,
) -> Result<(serde_json::Value, Vec<String>), DaleError> {
    settings.validate("--")?;
    let t = Instant::now();
    // The model names its parameter p; here the user gave it as --p.
    let as_option = |e| match e {
        DaleError::Scene { path, message } if path == "p" => DaleError::Scene {
            path: "--p".into(),
            message,
        },
        e => e,
    };
    let network = BalanceNetwork::new(read_inputs(weights)?, settings).map_err(as_option)?;
    let read_s = t.elapsed().as_secs_f64();
    network.check_fits(&backend.info())?;
    let out = prepare_dir(out)?;
    let report = network.run(backend, &mut |_| {}).map_err(as_option)?;
    let t = Instant::now();
    let mut files = write_report(&out, &report, &Outputs::default())?;
    let mut summary = report.figures.clone();
    summary["time_s"]["read"] = json!(read_s);
    summary["time_s"]["write"] = json!(t.elapsed().as_secs_f64());
    summary["checks"] = checks_json(&report);
    summary["backend"] = json!(backend.info());
    summary["backend_choice"] = json!(backend_why);
    write_json(&out.join("summary.json"), &summary)?;
    files.push("summary.json".to_string());
    Ok((summary, files))
}

/// `dale balance --check WEIGHTS DIR`: runs the ReLU rate network (001 eq. 1-2) with the weights
/// of WEIGHTS and with the balanced ones in DIR on the same white-noise inputs, and reports the
/// largest output difference and whether signs and zeros were kept. Where W_in or W_out was not
/// given, the identity stands in, transformed by DIR/h.npy as eq. 4 says, so that y = x0 is
/// compared. An error when the task is not preserved.
pub fn check_balanced(
    backend: &mut dyn Backend,
    weights: &Path,
    dir: &Path,
) -> Result<serde_json::Value, DaleError> {
    let orig = read_inputs(weights)?;
    let n = orig.j.shape[0];
    let j_b = read_array(&dir.join("J.npy").to_string_lossy())?;
    expect_shape(&j_b, &[n, n], "[N, N]: N from the original J")?;
    let h = read_array(&dir.join("h.npy").to_string_lossy())?;
    expect_shape(&h, &[n], "[N]")?;
    let identity = |scale: &dyn Fn(usize) -> f32| -> Vec<f32> {
        (0..n * n)
            .map(|e| if e / n == e % n { scale(e % n) } else { 0.0 })
            .collect()
    };
    let (w_in0, w_in_b, m) = match &orig.w_in {
        Some(w) => {
            let b = read_array(&dir.join("W_in.npy").to_string_lossy())?;
            expect_shape(&b, &w.shape, "the original W_in's")?;
            (w.data.clone(), b.data, w.shape[1])
        }
        None => (identity(&|_| 1.0), identity(&|i| (-h.data[i]).exp()), n),
    };
    let (w_out0, w_out_b, k) = match &orig.w_out {
        Some(w) => {
            let b = read_array(&dir.join("W_out.npy").to_string_lossy())?;
            expect_shape(&b, &w.shape, "the original W_out's")?;
            (w.data.clone(), b.data, w.shape[0])
        }
        None => (identity(&|_| 1.0), identity(&|i| h.data[i].exp()), n),
    };
    let flipped = signs_or_zeros_changed(&orig.j.data, &j_b.data);
    let p = RateParams {
        n,
        trials: 8,
        networks: 1,
        tau: 10.0,
        dt: 1.0,
        phi: Phi::Relu,
        g: 1.0,
        inputs: m,
        outputs: k,
        sigma: 0.0,
        input: Input::Gaussian {
            mean: 0.0,
            std: 1.0,
        },
    };
    let monitors = Monitors {
        x: None,
        y: Some(Monitor {
            every: 1,
            trials: None,
        }),
    };
    let steps = 200;
    let mut run = |j: &[f32], w_in: &[f32], w_out: &[f32]| {
        let w = Weights {
            j: j.to_vec(),
            w_in: w_in.to_vec(),
            w_out: w_out.to_vec(),
        };
        simulate(backend, &p, &w, 1, steps, &monitors, &mut |_| {}).map_err(|(_, e)| e)
    };
    let before = run(&orig.j.data, &w_in0, &w_out0)?;
    let after = run(&j_b.data, &w_in_b, &w_out_b)?;
    let scale = before
        .y
        .iter()
        .fold(0.0f32, |a, v| a.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let diff = before
        .y
        .iter()
        .zip(&after.y)
        .fold(0.0f32, |a, (x, y)| a.max((x - y).abs()))
        / scale;
    // Both runs round in f32, in different orders; a stable network keeps that near 1e-6.
    let tolerance = 1e-4;
    let report = json!({
        "largest_output_difference_relative": diff,
        "tolerance": tolerance,
        "synapses_with_sign_or_zero_changed": flipped,
        "steps": steps,
        "trials": p.trials,
        "inputs": if orig.w_in.is_some() { "W_in from the files, u ~ N(0, 1)" } else { "identity W_in (transformed by h), u ~ N(0, 1)" },
        "task_preserved": diff <= tolerance && flipped == 0,
    });
    if diff > tolerance || flipped > 0 {
        return Err(DaleError::Input {
            file: dir.to_path_buf(),
            array: "J".into(),
            message: format!("not a task-preserving transformation of {}: outputs differ by {diff:.2e} of max |y| (tolerance {tolerance:.0e}), {flipped} synapses changed sign or zero", weights.display()),
        });
    }
    Ok(report)
}
