//! A network from files balanced as the paper's flow or the direct solver: the experiment
//! "network" of a scene, and what `dale balance` runs. Its inputs are a .npy holding J or an .npz
//! holding J and optionally W_in, W_out, sigma2, alpha (f32 or f64, C or Fortran order).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{fits, Experiment, OutputArray, Plot, Report};
use crate::analysis::balance::{geometric_mean_bound, signs_or_zeros_changed};
use crate::backend::balance::{Aggregate, Alpha};
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::balancing::{
    balance, balance_with_io_paths, cost_form, BalanceParams, Method, Networks, Topology, World,
};
use crate::scene::arrays::{expect_shape, read_array, read_npz, Array};
use crate::scene::plot::{Marks, Panel, Series};
use crate::scene::WeightFiles;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cost {
    /// c = |J|^p.
    Power,
    /// c = sigma_j^2 J^2 (eq. 13): needs sigma2 in the .npz.
    Robustness,
    /// Balance each neuron's largest incoming and outgoing |J| (a Lax rule; runs the flow).
    Maxabs,
    /// The robustness cost plus the readout path sum_k W_out[k, j]^2 e^(2 h_j), on sum h = 0
    /// (models::balancing::balance_with_io_paths; runs the flow): needs sigma2, W_in and W_out.
    Readout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    Direct,
    Flow,
}

impl Cost {
    /// As the command line spells them.
    pub const NAMES: [&'static str; 4] = ["power", "robustness", "maxabs", "readout"];
}

impl std::str::FromStr for Cost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "power" => Ok(Cost::Power),
            "robustness" => Ok(Cost::Robustness),
            "maxabs" => Ok(Cost::Maxabs),
            "readout" => Ok(Cost::Readout),
            _ => Err(format!("cost `{s}`; allowed: {}", Self::NAMES.join(", "))),
        }
    }
}

impl Solver {
    pub const NAMES: [&'static str; 2] = ["direct", "flow"];
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(Solver::Direct),
            "flow" => Ok(Solver::Flow),
            _ => Err(format!("solver `{s}`; allowed: {}", Self::NAMES.join(", "))),
        }
    }
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
    /// By components (default) or the whole network (see `Topology`).
    #[serde(default)]
    pub topology: Topology,
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
    /// The solver asked for, or the cost's own: the flow for maxabs, else the direct solver.
    pub fn solver(&self) -> Solver {
        match (self.solver, self.cost) {
            (Some(s), _) => s,
            (None, Cost::Maxabs) => Solver::Flow,
            (None, _) => Solver::Direct,
        }
    }

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
            Cost::Robustness | Cost::Readout => {
                let s = inputs.sigma2.as_ref().ok_or_else(|| DaleError::Input {
                    file: inputs.j.file.clone(),
                    array: "sigma2".into(),
                    message: "missing; the robustness cost needs the gain moments sigma2 [N]"
                        .into(),
                })?;
                if self.cost == Cost::Readout {
                    for (given, name) in [(&inputs.w_in, "W_in"), (&inputs.w_out, "W_out")] {
                        if given.is_none() {
                            return Err(DaleError::Input {
                                file: inputs.j.file.clone(),
                                array: name.into(),
                                message: "missing; the readout-aware cost needs W_in and W_out (their paths are part of it)".into(),
                            });
                        }
                    }
                }
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

/// A network from files and how to balance it.
pub struct BalanceNetwork {
    pub inputs: Inputs,
    pub settings: BalanceSettings,
}

impl BalanceNetwork {
    /// Checks that the settings and the inputs go together; nothing is written before.
    pub fn new(inputs: Inputs, settings: BalanceSettings) -> Result<Self, DaleError> {
        let (alpha, alpha_values, p, _) = settings.costs_of(&inputs)?;
        // A p whose costs no form holds is refused here, before the output folder exists.
        let nets = Networks {
            groups: 1,
            n: inputs.j.shape[0],
            j: &inputs.j.data,
            w_in: None,
            w_out: None,
            alpha,
            alpha_values: &alpha_values,
        };
        let method = match settings.solver() {
            Solver::Direct => Method::Solver,
            Solver::Flow => Method::Flow { dt: 0.0 },
        };
        cost_form(&nets, p, method, settings.cost == Cost::Readout)?;
        Ok(BalanceNetwork { inputs, settings })
    }
}

impl Experiment for BalanceNetwork {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        fits(
            backend,
            "weights.J",
            self.inputs.j.shape[0],
            "J holds N x N values",
            |n| n.checked_mul(n),
        )
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        _: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        balance_inputs(backend, &self.inputs, &self.settings)
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

/// Balances `inputs` as `settings` say. The report holds J (and W_in, W_out when given) in the
/// dtype they came in, h, and the cost and ||g|| per iteration.
fn balance_inputs(
    backend: &mut dyn Backend,
    inputs: &Inputs,
    settings: &BalanceSettings,
) -> Result<Report, DaleError> {
    let n = inputs.j.shape[0];
    let (alpha, alpha_values, p, aggregate) = settings.costs_of(inputs)?;
    let solver = settings.solver();
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
    // The readout-aware cost balances the network with the world node; its stable step, its
    // topology and its Prop. 5 bounds are that network's.
    let world = (settings.cost == Cost::Readout)
        .then(|| World::new(&nets, false))
        .transpose()?;
    let graph = world.as_ref().map_or(nets, World::networks);
    let run = |backend: &mut dyn Backend, params: &BalanceParams| match world {
        Some(_) => balance_with_io_paths(backend, &nets, params, false),
        None => balance(backend, &nets, params),
    };
    let flow = || Method::Flow {
        dt: 0.5 * graph.largest_stable_dt(p),
    };
    let params = |method| BalanceParams {
        p,
        aggregate,
        method,
        max_iterations: settings.max_iterations,
        tol: settings.tol,
        h_every: 0,
        topology: settings.topology,
    };
    let t = Instant::now();
    // Without a finite balanced point the flow runs to its step budget and its end point is
    // reported as such. Each path checks the cost graph once: the solver refuses such a network
    // itself; the flow would run on, so it is checked here.
    let (mut b, method, unbalanceable) = match solver {
        Solver::Direct => match run(backend, &params(Method::Solver)) {
            Ok(b) => (b, Method::Solver, None),
            Err(DaleError::NoBalance { why, .. }) => {
                let method = flow();
                (run(backend, &params(method))?, method, Some(why))
            }
            Err(e) => return Err(e),
        },
        Solver::Flow => {
            // By components every network has a balanced point on its components.
            let why = match settings.topology {
                Topology::Whole => graph.why_unbalanceable(0),
                Topology::Components => None,
            };
            let method = flow();
            (run(backend, &params(method))?, method, why)
        }
    };
    // In the unit the run's costs are in (`Balanced::cost_unit_log2`).
    let weight_scale = graph.weight_scale(p);
    let lower_bound =
        geometric_mean_bound(graph.n, |i, k| graph.scaled_cost(0, i, k, p, weight_scale));
    let balance_s = t.elapsed().as_secs_f64();

    let mut report = Report::default();
    let (c0, c_end) = (b.total_cost[0], b.total_cost[b.total_cost.len() - 1]);
    let g0 = b.grad_norm[0];
    let upper_bound = c0 - g0 * g0 / (8.0 * c0);
    // Totals are f32 sums of n^2 terms: 1e-5 relative is above their rounding for N < 10^4.
    const SUM_TOL: f64 = 1e-5;
    report.check("total_cost_did_not_increase", c_end <= c0 * (1.0 + SUM_TOL));
    // Prop. 5 bounds the balanced cost of the whole network; a split network lowers the cost
    // inside its components only.
    let whole = b.splits.is_empty();
    if aggregate == Aggregate::Sum && unbalanceable.is_none() && b.converged_at.is_some() && whole {
        report.check(
            "balanced_cost_within_prop5_bounds",
            lower_bound * (1.0 - SUM_TOL) <= c_end && c_end <= upper_bound * (1.0 + SUM_TOL),
        );
    }
    report.check(
        "signs_and_zeros_of_j_kept",
        signs_or_zeros_changed(&inputs.j.data, &b.j) == 0,
    );
    // The weights move into the report (J alone is 1 GiB at N = 16384).
    report.arrays.push(OutputArray {
        name: "J.npy".into(),
        shape: vec![n, n],
        data: std::mem::take(&mut b.j),
        dtype: inputs.j.dtype,
    });
    report.array("h.npy", vec![n], std::mem::take(&mut b.h));
    for (given, data, name) in [
        (&inputs.w_in, &mut b.w_in, "W_in.npy"),
        (&inputs.w_out, &mut b.w_out, "W_out.npy"),
    ] {
        if let Some(w) = given {
            report.arrays.push(OutputArray {
                name: name.into(),
                shape: w.shape.clone(),
                data: std::mem::take(data),
                dtype: w.dtype,
            });
        }
    }
    let iters: Vec<f64> = (0..b.grad_norm.len()).map(|i| i as f64).collect();
    let series = |label: &str, v: &[f64]| Series {
        label: label.into(),
        points: iters.iter().zip(v).map(|(i, y)| (*i, *y)).collect(),
        band: Vec::new(),
    };
    report.plots.push(Plot {
        file: "balance.png".into(),
        panels: vec![
            Panel {
                title: "total cost C per iteration".into(),
                x_label: "iteration (pass over J)".into(),
                y_label: "C".into(),
                series: vec![series("C", &b.total_cost)],
                log_y: false,
                marks: Marks::Lines,
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
                log_y: false,
                marks: Marks::Lines,
            },
        ],
    });
    report.figures = json!({
        "weights": { "J": inputs.j.file, "W_in": inputs.w_in.as_ref().map(|a| &a.file), "W_out": inputs.w_out.as_ref().map(|a| &a.file) },
        "n": n,
        "cost": format!("{:?}", settings.cost).to_lowercase(),
        "p": p,
        "method": match method { Method::Solver => "direct solver (half-step parallel Osborne)".to_string(), Method::Flow { dt } => format!("flow, dt = {dt}") },
        "balanced": unbalanceable.is_none() && b.converged_at.is_some(),
        "no_finite_balance": unbalanceable,
        "topology": settings.topology,
        "components": b.splits.first().map(|split| json!({
            "balanced_components": split.balanced_components,
            "neurons_held_at_h_0": split.held.len(),
            "held": split.held,
            "why": "not strongly connected: these neurons lie on no cycle of the cost graph (no path of synapses leads back to them), so no finite balanced point exists for them (Prop. B.1); they are held at h = 0, each component is balanced on its own synapses, and the costs and ||g|| here count the synapses inside components",
        })),
        "total_cost": { "before": c0, "after": c_end },
        // Where |J|^p would leave f32 the costs were computed with the weights scaled by a power
        // of two; every cost figure here is then in units of 2^cost_unit_log2.
        "cost_unit_log2": b.cost_unit_log2,
        "prop5_bounds_on_balanced_cost": { "lower": lower_bound, "upper": upper_bound, "apply_to": "power-law costs (sum aggregate)" },
        "grad_norm": { "before": g0, "after": b.grad_norm[b.grad_norm.len() - 1], "tol_relative": settings.tol },
        // The tolerance is checked once per chunk (balancing::chunk_iterations); the run goes on to
        // the chunk's end.
        "passes_over_j": { "to_tolerance": b.converged_at.map(|i| i + 1), "run": b.iterations + 1 },
        // The cost pass, the strong-connectivity check and the transformed weights.
        "time_s": { "balance": balance_s },
    });
    Ok(report)
}
