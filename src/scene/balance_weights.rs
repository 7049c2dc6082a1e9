//! `dale balance`: balance a network trained elsewhere, given as .npy (J alone) or .npz (J and
//! optionally W_in, W_out, sigma2), and write the balanced weights in the dtype they came in.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::arrays::{expect_shape, read_array, read_npz, Array, Dtype};
use super::output::{prepare_dir, write_json, write_npy};
use super::plot::{line_panels, Panel, Series};
use crate::backend::{Aggregate, Alpha, Backend};
use crate::error::DaleError;
use crate::models::balancing::{
    balance, cost_at, geometric_mean_bound, largest_stable_dt, why_no_balanced_point,
    BalanceParams, Method, Networks,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cost {
    /// c = |J|^p.
    Power,
    /// c = sigma_j^2 J^2 (eq. 13): needs sigma2 in the .npz.
    Robustness,
    /// Balance each neuron's largest incoming and outgoing |J| (a Lax rule; runs the flow).
    Maxabs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    Direct,
    Flow,
}

/// How to balance: the options of `dale balance`, and the params of the scene experiment
/// `network`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalanceSettings {
    #[serde(default = "power")]
    pub cost: Cost,
    #[serde(default = "two")]
    pub p: f32,
    /// None: the direct solver, or the flow for maxabs.
    #[serde(default)]
    pub solver: Option<Solver>,
    #[serde(default = "micro")]
    pub tol: f64,
    #[serde(default = "budget")]
    pub max_iterations: usize,
}

fn power() -> Cost {
    Cost::Power
}
fn two() -> f32 {
    2.0
}
fn micro() -> f64 {
    1e-6
}
fn budget() -> usize {
    20_000
}

/// Cost weights, their values, the exponent and the aggregate that `settings` give `inputs`.
type CostChoice = (Alpha, Vec<f32>, f32, Aggregate);

impl BalanceSettings {
    /// What the cost needs from the inputs; called before anything is written.
    pub fn costs_of(&self, inputs: &Inputs) -> Result<CostChoice, DaleError> {
        Ok(match self.cost {
            Cost::Power => match &inputs.alpha {
                Some(a) => (
                    Alpha::Full { shared: true },
                    a.data.clone(),
                    self.p,
                    Aggregate::Sum,
                ),
                None => (Alpha::One, Vec::new(), self.p, Aggregate::Sum),
            },
            Cost::Robustness => {
                let s = inputs.sigma2.as_ref().ok_or_else(|| DaleError::Input {
                    file: inputs.j.file.clone(),
                    array: "sigma2".into(),
                    message: "missing; the robustness cost needs the gain moments sigma2 [N]"
                        .into(),
                })?;
                (
                    Alpha::PerColumn { shared: true },
                    s.data.clone(),
                    2.0,
                    Aggregate::Sum,
                )
            }
            Cost::Maxabs => (Alpha::One, Vec::new(), 1.0, Aggregate::Max),
        })
    }

    /// `at` prefixes the field names in errors: "--" for the command line, "params." in scenes.
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        if !(self.p > 0.0 && self.p.is_finite()) {
            return Err(DaleError::scene(
                format!("{at}p"),
                format!("p = {}; allowed: a finite value > 0", self.p),
            ));
        }
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(DaleError::scene(
                format!("{at}tol"),
                format!(
                    "tol = {}; allowed: 0 < tol < 1 (relative to the first ||g||)",
                    self.tol
                ),
            ));
        }
        if self.max_iterations == 0 {
            return Err(DaleError::scene(
                format!("{at}max-iterations"),
                "0; allowed: an integer >= 1",
            ));
        }
        if self.solver == Some(Solver::Direct) && self.cost == Cost::Maxabs {
            return Err(DaleError::scene(format!("{at}solver"), "direct; --cost maxabs runs with --solver flow (the direct solver is for power-law costs)"));
        }
        Ok(())
    }
}

/// Weight arrays named in a scene, each `file.npy` or `file.npz:name`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct WeightFiles {
    #[serde(default)]
    pub J: Option<String>,
    #[serde(default)]
    pub W_in: Option<String>,
    #[serde(default)]
    pub W_out: Option<String>,
    /// Gain moments sigma_j^2, [N]: the robustness cost.
    #[serde(default)]
    pub sigma2: Option<String>,
    /// Cost weights alpha_ij, [N, N], for the power cost.
    #[serde(default)]
    pub alpha: Option<String>,
}

impl WeightFiles {
    pub fn is_empty(&self) -> bool {
        self.J.is_none()
            && self.W_in.is_none()
            && self.W_out.is_none()
            && self.sigma2.is_none()
            && self.alpha.is_none()
    }
}

/// One network's arrays, C order, shapes checked against each other by `check_inputs`.
pub struct Inputs {
    pub j: Array,
    pub w_in: Option<Array>,
    pub w_out: Option<Array>,
    pub sigma2: Option<Array>,
    pub alpha: Option<Array>,
}

/// The arrays a scene names; J is required.
pub fn inputs_from_files(files: &WeightFiles) -> Result<Inputs, DaleError> {
    let read = |spec: &Option<String>| spec.as_deref().map(read_array).transpose();
    let j = read(&files.J)?.ok_or_else(|| {
        DaleError::scene(
            "weights.J",
            "missing; a network from files needs J ([N, N], .npy or file.npz:name)",
        )
    })?;
    check_inputs(Inputs {
        j,
        w_in: read(&files.W_in)?,
        w_out: read(&files.W_out)?,
        sigma2: read(&files.sigma2)?,
        alpha: read(&files.alpha)?,
    })
}

/// The arrays of `dale balance WEIGHTS`: a .npy with J, or an .npz with J and optionally W_in,
/// W_out, sigma2, alpha.
pub fn read_inputs(path: &Path) -> Result<Inputs, DaleError> {
    let spec = path.to_string_lossy();
    let inputs = if path.extension().is_some_and(|e| e == "npz") {
        let arrays = read_npz(path)?;
        let take = |name: &str| arrays.iter().find(|a| a.name == name).cloned();
        let j = take("J").ok_or_else(|| DaleError::Input {
            file: path.to_path_buf(),
            array: "J".into(),
            message: format!(
                "missing; the archive holds {:?}; expected J and optionally W_in, W_out, sigma2",
                arrays.iter().map(|a| &a.name).collect::<Vec<_>>()
            ),
        })?;
        Inputs {
            j,
            w_in: take("W_in"),
            w_out: take("W_out"),
            sigma2: take("sigma2"),
            alpha: take("alpha"),
        }
    } else {
        Inputs {
            j: read_array(&spec)?,
            w_in: None,
            w_out: None,
            sigma2: None,
            alpha: None,
        }
    };
    check_inputs(inputs)
}

/// Shapes against each other, and cost weights >= 0, before anything runs.
fn check_inputs(mut inputs: Inputs) -> Result<Inputs, DaleError> {
    let n = match inputs.j.shape.as_slice() {
        [a, b] if a == b && *a > 0 => *a,
        _ => {
            return Err(DaleError::Input {
                file: inputs.j.file.clone(),
                array: inputs.j.name.clone(),
                message: format!(
                    "shape {:?}; expected [N, N] with N >= 1 (J_ij from j to i)",
                    inputs.j.shape
                ),
            })
        }
    };
    if let Some(w) = &inputs.w_in {
        let m = w.shape.get(1).copied().unwrap_or(0);
        expect_shape(w, &[n, m.max(1)], "[N, M]: N from J")?;
    }
    if let Some(w) = &inputs.w_out {
        let k = w.shape.first().copied().unwrap_or(0);
        expect_shape(w, &[k.max(1), n], "[K, N]: N from J")?;
    }
    for (a, shape, what) in [
        (
            &mut inputs.sigma2,
            vec![n],
            "[N]: one gain moment per neuron",
        ),
        (
            &mut inputs.alpha,
            vec![n, n],
            "[N, N]: one cost weight per synapse",
        ),
    ] {
        if let Some(a) = a {
            expect_shape(a, &shape, what)?;
            if let Some(i) = a.data.iter().position(|v| *v < 0.0) {
                return Err(DaleError::Input {
                    file: a.file.clone(),
                    array: a.name.clone(),
                    message: format!(
                        "value {} < 0 at flat index {i}; allowed: values >= 0",
                        a.data[i]
                    ),
                });
            }
        }
    }
    Ok(inputs)
}

fn write<T: npyz::AutoSerialize + bytemuck::Pod>(
    out: &Path,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<(), DaleError> {
    write_npy(&out.join(name), shape, data)
}

/// Writes an array in the dtype its source came in.
fn write_like(
    out: &Path,
    name: &str,
    like: Dtype,
    shape: &[usize],
    data: &[f32],
) -> Result<(), DaleError> {
    match like {
        Dtype::F32 => write(out, name, shape, data),
        Dtype::F64 => write(
            out,
            name,
            shape,
            &data.iter().map(|v| f64::from(*v)).collect::<Vec<_>>(),
        ),
    }
}

/// Balances `inputs` as `settings` say, writing J.npy (and W_in.npy, W_out.npy when given) in the
/// dtype they came in, h.npy and balance.png to `out`, which exists. Returns the summary figures
/// and the files written.
pub fn balance_inputs(
    backend: &mut dyn Backend,
    inputs: &Inputs,
    settings: &BalanceSettings,
    out: &Path,
) -> Result<(serde_json::Value, Vec<String>), DaleError> {
    let n = inputs.j.shape[0];
    let (alpha, alpha_values, p, aggregate) = settings.costs_of(inputs)?;
    let solver = match (settings.solver, settings.cost) {
        (Some(s), _) => s,
        (None, Cost::Maxabs) => Solver::Flow,
        (None, _) => Solver::Direct,
    };
    let nets = Networks {
        groups: 1,
        n,
        j: &inputs.j.data,
        w_in: inputs
            .w_in
            .as_ref()
            .map(|w| (w.shape[1], w.data.as_slice())),
        w_out: inputs
            .w_out
            .as_ref()
            .map(|w| (w.shape[0], w.data.as_slice())),
        alpha,
        alpha_values: &alpha_values,
    };
    let flow = || Method::Flow {
        dt: 0.5 * largest_stable_dt(&nets, p),
    };
    let params = |method| BalanceParams {
        p,
        aggregate,
        method,
        max_iterations: settings.max_iterations,
        tol: settings.tol,
        h_every: 0,
    };
    let t = Instant::now();
    // Without a finite balanced point the flow runs to its step budget and its end point is
    // reported as such. Each path checks the cost graph once: the solver refuses such a network
    // itself; the flow would run on, so it is checked here.
    let (b, method, unbalanceable) = match solver {
        Solver::Direct => match balance(backend, &nets, &params(Method::Solver)) {
            Ok(b) => (b, Method::Solver, None),
            Err(DaleError::NoBalance { why, .. }) => {
                let method = flow();
                (balance(backend, &nets, &params(method))?, method, Some(why))
            }
            Err(e) => return Err(e),
        },
        Solver::Flow => {
            let why = why_no_balanced_point(n, |i, k| cost_at(&nets, 0, i, k, p) > 0.0);
            let method = flow();
            (balance(backend, &nets, &params(method))?, method, why)
        }
    };
    let lower_bound = geometric_mean_bound(&nets, 0, p);
    let balance_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut files = Vec::new();
    write_like(out, "J.npy", inputs.j.dtype, &[n, n], &b.j)?;
    files.push("J.npy".to_string());
    write(out, "h.npy", &[n], &b.h)?;
    files.push("h.npy".to_string());
    if let Some(w) = &inputs.w_in {
        write_like(out, "W_in.npy", w.dtype, &w.shape, &b.w_in)?;
        files.push("W_in.npy".to_string());
    }
    if let Some(w) = &inputs.w_out {
        write_like(out, "W_out.npy", w.dtype, &w.shape, &b.w_out)?;
        files.push("W_out.npy".to_string());
    }
    let iters: Vec<f64> = (0..b.grad_norm.len()).map(|i| i as f64).collect();
    let series = |label: &str, v: &[f64]| Series {
        label: label.into(),
        points: iters.iter().zip(v).map(|(i, y)| (*i, *y)).collect(),
    };
    line_panels(
        &out.join("balance.png"),
        &[
            Panel {
                title: "total cost C per iteration".into(),
                x_label: "iteration (pass over J)".into(),
                y_label: "C".into(),
                series: vec![series("C", &b.total_cost)],
            },
            Panel {
                title: "log10 ||g|| per iteration".into(),
                x_label: "iteration (pass over J)".into(),
                y_label: "log10 ||g||".into(),
                series: vec![series(
                    "log10 ||g||",
                    &b.grad_norm
                        .iter()
                        .map(|v| v.max(1e-300).log10())
                        .collect::<Vec<_>>(),
                )],
            },
        ],
    )?;
    files.push("balance.png".to_string());
    let write_s = t.elapsed().as_secs_f64();
    let (c0, c_end) = (b.total_cost[0], b.total_cost[b.total_cost.len() - 1]);
    let g0 = b.grad_norm[0];
    let summary = json!({
        "weights": { "J": inputs.j.file, "W_in": inputs.w_in.as_ref().map(|a| &a.file), "W_out": inputs.w_out.as_ref().map(|a| &a.file) },
        "n": n,
        "cost": format!("{:?}", settings.cost).to_lowercase(),
        "p": p,
        "method": match method { Method::Solver => "direct solver (half-step parallel Osborne)".to_string(), Method::Flow { dt } => format!("flow, dt = {dt}") },
        "balanced": unbalanceable.is_none() && b.converged_at.is_some(),
        "no_finite_balance": unbalanceable,
        "total_cost": { "before": c0, "after": c_end },
        "prop5_bounds_on_balanced_cost": { "lower": lower_bound, "upper": c0 - g0 * g0 / (8.0 * c0), "apply_to": "power-law costs (sum aggregate)" },
        "grad_norm": { "before": g0, "after": b.grad_norm[b.grad_norm.len() - 1], "tol_relative": settings.tol },
        // The tolerance is checked once per chunk (balancing::chunk_iterations); the run goes on to
        // the chunk's end.
        "passes_over_j": { "to_tolerance": b.converged_at.map(|i| i + 1), "run": b.iterations + 1 },
        // Balancing includes the cost pass, the strong-connectivity check and the transformed
        // weights; writing, the arrays and the plot.
        "time_s": { "balance": balance_s, "write": write_s },
    });
    Ok((summary, files))
}

/// `dale balance WEIGHTS --out DIR`: reads and checks the arrays before creating DIR, balances,
/// and writes summary.json beside the arrays.
pub fn balance_weights(
    backend: &mut dyn Backend,
    weights: &Path,
    out: &Path,
    settings: &BalanceSettings,
    backend_why: &str,
) -> Result<(serde_json::Value, Vec<String>), DaleError> {
    settings.validate("--")?;
    let t = Instant::now();
    let inputs = read_inputs(weights)?;
    let read_s = t.elapsed().as_secs_f64();
    settings.costs_of(&inputs)?;
    let out = prepare_dir(out)?;
    let (mut summary, mut files) = balance_inputs(backend, &inputs, settings, &out)?;
    summary["time_s"]["read"] = json!(read_s);
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
    let flipped = orig
        .j
        .data
        .iter()
        .zip(&j_b.data)
        .filter(|(a, b)| a.signum() != b.signum() || (**a == 0.0) != (**b == 0.0))
        .count();
    let p = crate::models::rate::RateParams {
        n,
        trials: 8,
        networks: 1,
        tau: 10.0,
        dt: 1.0,
        phi: crate::backend::Phi::Relu,
        g: 1.0,
        inputs: m,
        outputs: k,
        sigma: 0.0,
        input: crate::models::rate::Input::Gaussian {
            mean: 0.0,
            std: 1.0,
        },
    };
    let monitors = crate::models::rate::Monitors {
        x: None,
        y: Some(crate::models::rate::Monitor {
            every: 1,
            trials: None,
        }),
    };
    let steps = 200;
    let mut run = |j: &[f32], w_in: &[f32], w_out: &[f32]| {
        let w = crate::models::rate::Weights {
            j: j.to_vec(),
            w_in: w_in.to_vec(),
            w_out: w_out.to_vec(),
        };
        crate::models::rate::simulate(backend, &p, &w, 1, steps, &monitors, &mut |_| {})
            .map_err(|(_, e)| e)
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
