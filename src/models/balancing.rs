//! Synaptic balancing (paper 001, sections 4-6): the flow on the task-preserving manifold, its
//! generalised Lax variants, and a direct solver for the balanced point, for a batch of
//! independent networks. Uses the op family balance.
//!
//! The state is h (one value per neuron). The costs at h are never written out: for power-law
//! costs c_ij(h) = c0_ij e^(p (h_j - h_i)) exactly (eq. 14), so one pass over the initial costs c0
//! per iteration gives every neuron's incoming and outgoing cost, and the weights are
//! transformed once at the end (eq. 4). Signs and zeros of J are therefore kept exactly.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::analysis::balance::{
    largest_stable_dt as stable_dt, reaches, strong_components, strongly_connected,
    why_no_balanced_point,
};
use crate::backend::balance::{
    power, Aggregate, Alpha, BalanceOps, CostFlows, Costs, HStep, HUpdate, TaskTransform, Weights,
};
use crate::backend::{Backend, Buf, BufferOps, Scope};
use crate::error::DaleError;

/// The most iterations recorded on the device between two readbacks of the history.
pub const CHUNK_ITERATIONS: usize = 64;

/// Synapse-passes per chunk (256 MiB of costs read), below which chunks shorten: the tolerance is
/// checked once per chunk, so a large network stops within one or a few passes of reaching it,
/// while small ones keep 64 iterations per readback.
const CHUNK_SYNAPSE_PASSES: usize = 1 << 26;

/// Iterations per chunk for `synapses` synapses in all networks together: 1 to 64.
pub fn chunk_iterations(synapses: usize) -> usize {
    (CHUNK_SYNAPSE_PASSES / synapses.max(1)).clamp(1, CHUNK_ITERATIONS)
}

/// The depth, in e-folds, to which log-space costs stay exact to 1e-3 in f32: a log of this
/// size has a rounding step of about 1e-3 (2^13 x 2^-23).
pub const LOG_SPAN: f64 = 8192.0;

/// Where balancing computes the costs (`Networks::cost_space`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostSpace {
    Linear,
    Log,
}

/// How balancing computes the costs of its p for given networks (`cost_form`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostForm {
    /// `Costs::weight_scale`.
    pub weight_scale: f32,
    /// `Costs::log`: in log space.
    pub log: bool,
}

/// The form in which the costs of power p can be computed for `nets` by `method` (with an
/// anchor or not): scaled weights where |J|^p would leave f32, and log space where even scaled
/// costs would vanish for some neuron. An error, before anything runs or is written, where no
/// form holds them, or where the method cannot take the form that does: the flow's dt is in
/// units of the costs (scaling them would change its time scale), and only the direct solver
/// without an anchor steps in log space.
pub fn cost_form(
    nets: &Networks,
    p: f32,
    method: Method,
    anchored: bool,
) -> Result<CostForm, DaleError> {
    let weight_scale = nets.weight_scale(p);
    let log = nets.cost_space(p, weight_scale)? == CostSpace::Log;
    let solver = method == Method::Solver;
    if log && !(solver && !anchored) {
        return Err(DaleError::scene(
            "p",
            format!(
                "p = {p}: some neuron's costs fall below f32's smallest number beside the largest \
                 cost, so they must be computed in log space, which only the direct solver \
                 (method \"solver\", --solver direct) of the power cost does"
            ),
        ));
    }
    if weight_scale != 1.0 && !solver {
        return Err(DaleError::scene(
            "p",
            format!(
                "p = {p} with weights up to {:e}: their costs |J|^p leave 2^-64..2^64, so the \
                 flow's step would mean another time; the direct solver (method \"solver\", \
                 --solver direct) scales the costs and balances any p",
                1.0 / weight_scale
            ),
        ));
    }
    Ok(CostForm { weight_scale, log })
}

/// How h moves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Method {
    /// The paper's rule: forward Euler on dh/dt = g (eq. 15-20) with step `dt` in units where
    /// gamma p = 1 (a rate gamma is the same flow with time scaled by gamma p).
    Flow { dt: f32 },
    /// The direct solver: half-step parallel Osborne sweeps (see `HStep::Osborne`). Power-law
    /// costs (sum aggregate) only; needs a finite balanced point (strongly connected components).
    Solver,
}

/// Which neurons balancing moves, by the topology of the cost graph (an edge j -> i where
/// c_ij > 0). A finite balanced point exists only where every connected component of that graph
/// is strongly connected (Prop. B.1); elsewhere the flow drives some h without bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Each strongly connected component of the cost graph is balanced on its own synapses,
    /// where Prop. 3 guarantees a finite balanced point, with sum h = 0 in each; neurons on no
    /// cycle (components of one neuron) are held at h = 0. Synapses between components are left
    /// out of the cost being lowered and are scaled by the transformation like every synapse. A
    /// strongly connected network is balanced as a whole, exactly as `Whole` does.
    #[default]
    Components,
    /// The whole network at once, as the paper's flow runs: without a finite balanced point the
    /// flow runs to its step budget and the direct solver refuses.
    Whole,
}

impl Topology {
    /// As the command line spells them.
    pub const NAMES: [&'static str; 2] = ["components", "whole"];
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "components" => Ok(Topology::Components),
            "whole" => Ok(Topology::Whole),
            _ => Err(format!(
                "topology `{s}`; allowed: {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BalanceParams {
    /// Exponent of the power-law cost c = alpha |J|^p (eq. 23).
    pub p: f32,
    pub aggregate: Aggregate,
    pub method: Method,
    pub max_iterations: usize,
    /// Stop once ||g|| <= tol ||g0|| in every network (checked every `chunk_iterations`).
    pub tol: f64,
    /// Record h every this many iterations (0: never).
    pub h_every: usize,
    pub topology: Topology,
}

/// `groups` networks of n neurons, row-major: J [groups, n, n] (J_ij from j to i), W_in
/// [groups, n, m], W_out [groups, k, n], and the cost weights alpha as `alpha` says.
#[derive(Clone, Copy)]
pub struct Networks<'a> {
    pub groups: usize,
    pub n: usize,
    pub j: &'a [f32],
    pub w_in: Option<(usize, &'a [f32])>,
    pub w_out: Option<(usize, &'a [f32])>,
    pub alpha: Alpha,
    pub alpha_values: &'a [f32],
}

impl<'a> Networks<'a> {
    /// J alone, [groups, n, n]: unit cost weights (alpha = 1), no input or output weights.
    pub fn recurrent(groups: usize, n: usize, j: &'a [f32]) -> Self {
        Networks {
            groups,
            n,
            j,
            w_in: None,
            w_out: None,
            alpha: Alpha::One,
            alpha_values: &[],
        }
    }

    /// alpha_ij of network g.
    pub fn alpha(&self, g: usize, i: usize, j: usize) -> f32 {
        let n = self.n;
        match self.alpha {
            Alpha::One => 1.0,
            Alpha::PerColumn { shared } => self.alpha_values[if shared { 0 } else { g * n } + j],
            Alpha::Full { shared } => {
                self.alpha_values[if shared { 0 } else { g * n * n } + i * n + j]
            }
        }
    }

    /// c_ij of network g (eq. 23), computed on the host as the balance ops compute it.
    pub fn cost(&self, g: usize, i: usize, j: usize, p: f32) -> f64 {
        self.scaled_cost(g, i, j, p, 1.0)
    }

    /// c_ij with the weights scaled by `weight_scale` first, as `Costs` says.
    pub fn scaled_cost(&self, g: usize, i: usize, j: usize, p: f32, weight_scale: f32) -> f64 {
        let n = self.n;
        let w = self.j[g * n * n + i * n + j].abs() * weight_scale;
        f64::from(self.alpha(g, i, j) * power(w, p))
    }

    /// Whether synapse (i, j) of network g has a cost at all (J_ij != 0 and alpha_ij > 0): the
    /// cost graph's edges, whatever p does to their size in f32.
    pub fn has_cost(&self, g: usize, i: usize, j: usize) -> bool {
        let n = self.n;
        self.j[g * n * n + i * n + j] != 0.0 && self.alpha(g, i, j) > 0.0
    }

    /// The largest |J_ij| of each row and of each column of network g, self-synapses aside: one
    /// pass over J, rows in parallel and columns by bands of rows (max is exact in any order).
    fn largest_weights(&self, g: usize) -> (Vec<f32>, Vec<f32>) {
        const BAND: usize = 64;
        let n = self.n;
        let jg = &self.j[g * n * n..][..n * n];
        let rows = jg
            .par_chunks(n.max(1))
            .enumerate()
            .map(|(i, row)| off_diagonal(i, row).fold(0.0f32, f32::max))
            .collect();
        let cols = jg
            .par_chunks((BAND * n).max(1))
            .enumerate()
            .map(|(b, band)| {
                let mut m = vec![0.0f32; n];
                for (r, row) in band.chunks(n).enumerate() {
                    m.iter_mut()
                        .zip(off_diagonal(b * BAND + r, row))
                        .for_each(|(m, v)| *m = m.max(v));
                }
                m
            })
            .reduce(
                || vec![0.0f32; n],
                |a, b| a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect(),
            );
        (rows, cols)
    }

    /// The power of two the weights are scaled by before the power p (`Costs::weight_scale`): 1
    /// where the largest |J|^p lies within 2^-64..2^64, so that ordinary networks are costed
    /// exactly as written; otherwise the one that brings the largest |J| of the batch to
    /// (1/2, 1], so that no cost overflows f32 for any p (a constant factor on every cost of a
    /// network moves no balanced point, and the direct solver's steps ignore it).
    pub fn weight_scale(&self, p: f32) -> f32 {
        let largest = self
            .j
            .par_chunks(self.n.max(1))
            .map(|row| row.iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .reduce(|| 0.0, f32::max);
        if largest == 0.0 || (f64::from(p) * f64::from(largest).log2()).abs() <= 64.0 {
            return 1.0;
        }
        // largest = m 2^e with m in [1/2, 1): 2^-e brings it to [1/2, 1).
        let exponent = f64::from(largest).log2().floor() as i32 + 1;
        2f32.powi(-exponent)
    }

    /// The neuron whose largest incoming or outgoing weight (self-synapses aside) is the
    /// smallest of all such, over every network: (network, neuron, "incoming" or "outgoing", that
    /// weight); None where no neuron has synapses. Its cost, relative to the largest, says
    /// whether f32 can hold every neuron's costs (`cost_space`).
    fn weakest_neuron(&self) -> Option<(usize, usize, &'static str, f32)> {
        (0..self.groups)
            .filter_map(|g| {
                let (rows, cols) = self.largest_weights(g);
                rows.into_iter()
                    .enumerate()
                    .map(|(k, w)| (g, k, "incoming", w))
                    .chain(
                        cols.into_iter()
                            .enumerate()
                            .map(|(k, w)| (g, k, "outgoing", w)),
                    )
                    .filter(|(.., w)| *w > 0.0)
                    .min_by(|a, b| a.3.total_cmp(&b.3))
            })
            .min_by(|a, b| a.3.total_cmp(&b.3))
    }

    /// Where the costs of power p are computed: as they are (scaled by `weight_scale`) where
    /// every neuron's largest cost stays above f32's smallest normal number beside the largest
    /// of all, else in log space (the direct solver), where f32 logs hold them to 1e-3 while
    /// p |ln w| stays below LOG_SPAN; beyond that, an error naming p, the neuron, its weight and
    /// the largest p that fits.
    pub fn cost_space(&self, p: f32, weight_scale: f32) -> Result<CostSpace, DaleError> {
        let Some((g, k, side, w)) = self.weakest_neuron() else {
            return Ok(CostSpace::Linear);
        };
        // How far the neuron's largest cost lies below the largest of all, in e-folds.
        let depth = -f64::from(p) * f64::from(w * weight_scale).ln();
        if depth <= -f64::from(f32::MIN_POSITIVE).ln() {
            return Ok(CostSpace::Linear);
        }
        if depth <= LOG_SPAN {
            return Ok(CostSpace::Log);
        }
        Err(DaleError::scene(
            "p",
            format!(
                "p = {p}: neuron {k} of network {g} has no {side} weight larger than {w:e}, whose cost is e^-{depth:.3e} of the largest weight's; f32 holds such costs neither as they are (down to e^-87) nor as logarithms to 1e-3 (down to e^-{LOG_SPAN}); the largest p that fits is {:.4e}",
                f64::from(p) * LOG_SPAN / depth
            ),
        ))
    }

    /// The costs of network g on the host, [n, n] in f64, for analyses and tests.
    pub fn costs(&self, g: usize, p: f32) -> Vec<f64> {
        let n = self.n;
        (0..n * n).map(|e| self.cost(g, e / n, e % n, p)).collect()
    }

    /// The largest stable step of the flow over every network (`analysis::balance`).
    pub fn largest_stable_dt(&self, p: f32) -> f32 {
        (0..self.groups)
            .map(|g| stable_dt(self.n, p, |i, j| self.cost(g, i, j, p)))
            .fold(f32::INFINITY, f32::min)
    }

    /// Why network g has no finite balanced point, if it has none (001 Prop. B.1).
    pub fn why_unbalanceable(&self, g: usize) -> Option<String> {
        why_no_balanced_point(self.n, |i, j| self.has_cost(g, i, j))
    }

    /// The strongly connected component of each neuron of network g, or None when the network
    /// is strongly connected (one component).
    pub fn split_components(&self, g: usize) -> Option<Vec<usize>> {
        let positive = |i, j| self.has_cost(g, i, j);
        (!strongly_connected(self.n, positive)).then(|| strong_components(self.n, positive))
    }
}

/// How balancing by components treated one network that is not strongly connected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub network: usize,
    /// Strongly connected components of two or more neurons, each balanced on its own.
    pub balanced_components: usize,
    /// Neurons on no cycle of the cost graph, held at h = 0.
    pub held: Vec<usize>,
}

/// The strongly connected components of one network that is not strongly connected.
struct Parts {
    /// The component of each neuron.
    comp: Vec<usize>,
    /// Whether each neuron lies in a component of two or more neurons (on a cycle).
    inside: Vec<bool>,
    /// How many such components there are.
    balanced: usize,
}

impl Parts {
    fn new(comp: Vec<usize>) -> Self {
        let count = comp.iter().max().map_or(0, |m| m + 1);
        let mut size = vec![0usize; count];
        comp.iter().for_each(|&c| size[c] += 1);
        Parts {
            inside: comp.iter().map(|&c| size[c] >= 2).collect(),
            balanced: size.iter().filter(|&&s| s >= 2).count(),
            comp,
        }
    }

    /// Whether synapse (i, j) lies inside a component: the synapses balancing by components
    /// lowers.
    fn keeps(&self, i: usize, j: usize) -> bool {
        self.comp[i] == self.comp[j] && self.inside[i]
    }
}

#[derive(Clone, Debug, Default)]
pub struct Balanced {
    pub j: Vec<f32>,
    pub w_in: Vec<f32>,
    pub w_out: Vec<f32>,
    /// [groups, n], sum 0 in each network.
    pub h: Vec<f32>,
    /// Iterations run (each one pass over c0).
    pub iterations: usize,
    /// ||g|| and the total cost C (eq. 12, self-synapses included) before each iteration and
    /// at the end: [iterations + 1, groups].
    pub grad_norm: Vec<f64>,
    pub total_cost: Vec<f64>,
    /// h every `h_every` iterations, [samples, groups, n], and the iteration of each sample.
    pub h_trajectory: Vec<f32>,
    pub h_iterations: Vec<usize>,
    /// Incoming then outgoing cost of every neuron at the end, [groups, 2n].
    pub flows: Vec<f32>,
    /// First iteration at which ||g|| <= tol ||g0|| held in every network, if it did.
    pub converged_at: Option<usize>,
    /// The costs above, ||g|| and `flows` are in units of 2^cost_unit_log2 (0 but where the
    /// costs were scaled to stay within f32: `Networks::weight_scale`).
    pub cost_unit_log2: f64,
    /// The networks that balancing by components split, and how (empty when none was split).
    /// Their costs and ||g|| above count the synapses inside components only.
    pub splits: Vec<Split>,
}

/// Balances every network. Errors: a non-finite neural gradient (the run diverged), or the
/// solver asked for a network without a finite balanced point. The buffers it uses are freed
/// when it returns.
pub fn balance(
    backend: &mut dyn Backend,
    nets: &Networks,
    params: &BalanceParams,
) -> Result<Balanced, DaleError> {
    balance_anchored(backend, nets, params, None)
}

/// `balance`, with neuron `anchor` (if any) held at h = 0 and the others kept at sum h = 0
/// (`HUpdate::anchor`).
fn balance_anchored(
    backend: &mut dyn Backend,
    nets: &Networks,
    params: &BalanceParams,
    anchor: Option<usize>,
) -> Result<Balanced, DaleError> {
    let mut scope = Scope::new();
    let result = balance_in(backend, &mut scope, nets, params, anchor);
    scope.free(backend);
    result
}

fn balance_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    nets: &Networks,
    params: &BalanceParams,
    anchor: Option<usize>,
) -> Result<Balanced, DaleError> {
    let (groups, n, p) = (nets.groups, nets.n, params.p);
    let CostForm { weight_scale, log } = cost_form(nets, p, params.method, anchor.is_some())?;
    let costs = Costs {
        groups,
        rows: n,
        cols: n,
        p,
        alpha: nets.alpha,
        weight_scale,
        log,
    };
    assert_eq!(nets.j.len(), groups * n * n, "J must be [groups, n, n]");
    assert_eq!(
        nets.alpha_values.len(),
        costs.alpha_len(),
        "alpha has the wrong length for {:?}",
        nets.alpha
    );
    let step = match params.method {
        Method::Flow { dt } => HStep::Flow { dt },
        Method::Solver => {
            if params.aggregate != Aggregate::Sum {
                return Err(DaleError::scene("method", "the direct solver balances power-law costs (aggregate \"sum\"); use the flow for \"max\""));
            }
            // An anchored network has a finite balanced point on sum h = 0 when every neuron
            // reaches the anchor (checked by balance_with_io_paths), strongly connected or not.
            if params.topology == Topology::Whole && anchor.is_none() {
                for g in 0..groups {
                    if let Some(why) = nets.why_unbalanceable(g) {
                        return Err(DaleError::NoBalance { network: g, why });
                    }
                }
            }
            HStep::Osborne
        }
    };
    // Balancing by components lowers the cost of the synapses inside components only: the
    // others get alpha = 0 in the costs, so neurons on no cycle see no gradient and stay at 0.
    let parts: Vec<Option<Parts>> = match params.topology {
        Topology::Whole => (0..groups).map(|_| None).collect(),
        Topology::Components => (0..groups)
            .map(|g| nets.split_components(g).map(Parts::new))
            .collect(),
    };
    let split = parts.iter().any(Option::is_some);
    let masked_alpha: Vec<f32>;
    let (costs, alpha_values) = if split {
        masked_alpha = (0..groups)
            .flat_map(|g| {
                let parts = &parts[g];
                (0..n * n).map(move |e| {
                    let (i, j) = (e / n, e % n);
                    if parts.as_ref().is_none_or(|s| s.keeps(i, j)) {
                        nets.alpha(g, i, j)
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let full = Costs {
            alpha: Alpha::Full { shared: false },
            ..costs
        };
        (full, masked_alpha.as_slice())
    } else {
        (costs, nets.alpha_values)
    };
    // sum_k c_kk: the self-synapses, which the transformation leaves alone.
    let self_cost: Vec<f64> = (0..groups)
        .map(|g| {
            (0..n)
                .map(|k| nets.scaled_cost(g, k, k, p, weight_scale))
                .sum()
        })
        .collect();
    // ln of the same sum in log space, where the costs themselves may not fit an f64.
    let log_self_cost: Vec<f64> = (0..groups)
        .map(|g| {
            let terms: Vec<f64> = (0..n)
                .filter(|&k| nets.has_cost(g, k, k))
                .map(|k| {
                    let w = f64::from(nets.j[g * n * n + k * n + k].abs() * weight_scale);
                    f64::from(nets.alpha(g, k, k)).ln() + f64::from(p) * w.ln()
                })
                .collect();
            log_sum_exp(&terms)
        })
        .collect();

    let gradients = CostFlows {
        groups,
        n,
        log,
        aggregate: params.aggregate,
    };
    let alpha = scope.alloc_from(
        backend,
        "alpha",
        if alpha_values.is_empty() {
            &[0.0]
        } else {
            alpha_values
        },
    )?;
    // J goes up into the costs' buffer and becomes c0 in place: the device never holds J and
    // its costs at once (J comes up again for the transformation, after c0 is freed).
    let c0 = scope.alloc_from(backend, "J, then its costs c0", nets.j)?;
    let h = scope.alloc(backend, "h", groups * n)?;
    // s = e^(p h) at h = 0, or in log space u = p h.
    let s0 = if log { 0.0 } else { 1.0 };
    let scale = scope.alloc_from(backend, "s = e^(p h)", &vec![s0; groups * n])?;
    let flows = scope.alloc(backend, "incoming and outgoing costs", groups * 2 * n)?;
    let partials = scope.alloc(backend, "cost_flows partials", gradients.partials_len())?;
    let history = scope.alloc(backend, "history", CHUNK_ITERATIONS * 2 * groups)?;
    let samples_per_chunk = if params.h_every > 0 {
        CHUNK_ITERATIONS.div_ceil(params.h_every)
    } else {
        0
    };
    let h_samples = scope.alloc(backend, "h samples", samples_per_chunk * groups * n)?;
    backend.costs(c0, alpha, costs);
    let mut out = Balanced {
        cost_unit_log2: -f64::from(p) * f64::from(weight_scale).log2(),
        ..Balanced::default()
    };
    let mut g0: Option<Vec<f64>> = None;
    let mut log_unit: Option<f64> = None;
    let mut done = 0;
    let per_chunk = chunk_iterations(groups * n * n);
    while done < params.max_iterations && out.converged_at.is_none() {
        let chunk = per_chunk.min(params.max_iterations - done);
        let mut samples = 0;
        for i in 0..chunk {
            if params.h_every > 0 && (done + i) % params.h_every == 0 {
                backend.copy(h, 0, h_samples, samples * groups * n, groups * n);
                out.h_iterations.push(done + i);
                samples += 1;
            }
            backend.cost_flows(c0, scale, flows, partials, gradients);
            backend.h_update(
                flows,
                h,
                scale,
                history,
                HUpdate {
                    groups,
                    n,
                    p,
                    step,
                    history_offset: 2 * groups * i,
                    anchor,
                    log,
                },
            );
        }
        let hist = backend.download(history, 0, 2 * groups * chunk)?;
        out.h_trajectory
            .extend(backend.download(h_samples, 0, samples * groups * n)?);
        for (i, rec) in hist.chunks(2 * groups).enumerate() {
            // In log space the records are ln ||g||^2 and ln C, taken here in units of e^unit,
            // the first record's largest ln C: relative to it every later one is at most ~1.
            let unit = *log_unit.get_or_insert_with(|| {
                rec.chunks(2)
                    .zip(&log_self_cost)
                    .map(|(r, s)| f64::from(r[1]).max(*s))
                    .fold(f64::NEG_INFINITY, f64::max)
            });
            let norms: Vec<f64> = rec
                .chunks(2)
                .map(|r| match log {
                    true => (0.5 * f64::from(r[0]) - unit).exp(),
                    false => f64::from(r[0]).sqrt(),
                })
                .collect();
            if let Some(g) = norms.iter().position(|v| !v.is_finite()) {
                return Err(DaleError::Diverged {
                    step: done + i,
                    quantity: format!("the neural gradients of network {g}"),
                    value: rec[2 * g],
                    kept: done + i,
                });
            }
            let start = g0.get_or_insert_with(|| norms.clone());
            if out.converged_at.is_none()
                && norms
                    .iter()
                    .zip(start.iter())
                    .all(|(v, v0)| *v <= params.tol * v0)
            {
                out.converged_at = Some(done + i);
            }
            out.total_cost
                .extend(rec.chunks(2).enumerate().map(|(g, r)| match log {
                    true => (f64::from(r[1]) - unit).exp() + (log_self_cost[g] - unit).exp(),
                    false => f64::from(r[1]) + self_cost[g],
                }));
            out.grad_norm.extend(norms);
        }
        done += chunk;
    }
    out.iterations = done;

    // The end point: its costs, neural gradients and weights.
    backend.cost_flows(c0, scale, flows, partials, gradients);
    out.flows = backend.download(flows, 0, groups * 2 * n)?;
    let unit = log_unit.unwrap_or(0.0);
    if log {
        out.flows
            .iter_mut()
            .for_each(|f| *f = (f64::from(*f) - unit).exp() as f32);
        // e^unit in the scaled weights' costs, each 2^(-p log2 weight_scale) of the real one.
        out.cost_unit_log2 += unit / std::f64::consts::LN_2;
    }
    let self_cost: Vec<f64> = match log {
        true => log_self_cost.iter().map(|s| (s - unit).exp()).collect(),
        false => self_cost,
    };
    for g in 0..groups {
        let (inc, outg) = out.flows[g * 2 * n..][..2 * n].split_at(n);
        let moving = (0..n).filter(|&k| Some(k) != anchor);
        let grad: Vec<f64> = moving.map(|k| f64::from(inc[k] - outg[k])).collect();
        // With an anchor, the gradient within the manifold sum h = 0 (as h_update records it).
        let mean = match anchor {
            Some(_) => grad.iter().sum::<f64>() / grad.len() as f64,
            None => 0.0,
        };
        let norm2: f64 = grad.iter().map(|v| (v - mean).powi(2)).sum();
        out.grad_norm.push(norm2.sqrt());
        out.total_cost
            .push(inc.iter().map(|v| f64::from(*v)).sum::<f64>() + self_cost[g]);
    }
    if params.h_every > 0 && done % params.h_every == 0 {
        out.h_trajectory.extend(backend.download(h, 0, groups * n)?);
        out.h_iterations.push(done);
    }
    out.h = backend.download(h, 0, groups * n)?;
    if split {
        // Each component to sum h = 0 (the Osborne step recentres the whole network), which
        // puts the held neurons at exactly 0; then the transformation uses this h.
        for (g, parts) in parts.iter().enumerate() {
            let Some(Parts {
                comp,
                inside,
                balanced,
            }) = parts
            else {
                continue;
            };
            let count = comp.iter().max().map_or(0, |m| m + 1);
            let (mut sum, mut size) = (vec![0.0f64; count], vec![0usize; count]);
            let h_g = &mut out.h[g * n..][..n];
            for (k, &c) in comp.iter().enumerate() {
                sum[c] += f64::from(h_g[k]);
                size[c] += 1;
            }
            for (k, &c) in comp.iter().enumerate() {
                h_g[k] = if inside[k] {
                    (f64::from(h_g[k]) - sum[c] / size[c] as f64) as f32
                } else {
                    0.0
                };
            }
            out.splits.push(Split {
                network: g,
                balanced_components: *balanced,
                held: (0..n).filter(|&k| !inside[k]).collect(),
            });
        }
        backend.upload(h, 0, &out.h)?;
    }
    // The costs are spent: freed before J goes up again to be transformed, so that the device
    // never holds more than one [groups, n, n] array beside the host's J.
    scope.free_one(backend, c0);
    (out.j, out.w_in, out.w_out) = transformed(backend, scope, nets, h)?;
    // h is finite, but e^(h_j - h_i) J_ij can leave f32 where the balanced point asks for
    // weights beyond it: said, not written.
    if let Some(e) = out.j.iter().position(|v| !v.is_finite()) {
        let (g, i, j) = (e / (n * n), e / n % n, e % n);
        return Err(DaleError::scene(
            "p",
            format!(
                "p = {p}: the balanced weight J[{i}, {j}] of network {g} (from {:e}, scaled by e^{}) leaves f32",
                nets.j[e],
                out.h[g * n + j] - out.h[g * n + i]
            ),
        ));
    }
    Ok(out)
}

/// The task-preserving transformation (eq. 4) by h on the device ([groups, n]) of J, and of
/// W_in -> e^-H W_in and W_out -> W_out e^H where the networks have them (empty where they have
/// none). Each array goes up, is transformed in place and comes back one at a time, so that the
/// device holds one copy of the largest (J) at most; callers free their J and costs first.
fn transformed(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    nets: &Networks,
    h: Buf<f32>,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>), DaleError> {
    let (groups, n) = (nets.groups, nets.n);
    let mut transform = |weights, values: &[f32]| -> Result<Vec<f32>, DaleError> {
        let spec = TaskTransform { groups, n, weights };
        let buf = scope.alloc_from(backend, "weights to transform", values)?;
        backend.task_transform(buf, h, spec);
        scope.take(backend, buf)
    };
    let j = transform(Weights::Recurrent, nets.j)?;
    let w_in = match nets.w_in {
        Some((m, w)) => transform(Weights::Input { m }, w)?,
        None => Vec::new(),
    };
    let w_out = match nets.w_out {
        Some((k, w)) => transform(Weights::Output { k }, w)?,
        None => Vec::new(),
    };
    Ok((j, w_in, w_out))
}

/// Balances the robustness cost (eq. 13, or any cost `nets.alpha` gives with p = 2) together with
/// the readout path that the transformation (eq. 4) rescales, and optionally the input path:
///   C(h) = sum_ij c_ij e^(2 (h_j - h_i)) + sum_j r_j e^(2 h_j) [+ sum_j q_j e^(-2 h_j)],
///   r_j = sum_k W_out[k, j]^2 (hidden noise in x_j reaches y through W_out e^H),
///   q_j = sum_m W_in[j, m]^2 (the input reaches x_j through e^-H W_in),
/// on the paper's manifold sum h = 0 (eq. 22). The readout term depends on the overall scale of
/// h, which is why the manifold matters: without it every h falling together would lower C
/// without bound (activities grow against noise of fixed size). C is the power cost of the
/// network with one more node, the world (node n, held at h = 0), with a synapse j -> world of
/// cost r_j (and world -> j of cost q_j); it is convex, and on sum h = 0 it has a unique minimum
/// when every neuron has a path of synapses to a neuron with a readout (checked here). The
/// projected flow reaches it:
///   dh_k/dt = g_k - mean(g),  g_k = in_k [+ q_k e^(-2 h_k)] - out_k - r_k e^(2 h_k),
/// the neural gradient of eq. 17 on the network with the world. A neuron silent on the trials
/// that gave sigma^2 (no outgoing robustness cost) is held by its readout.
///
/// Runs the flow, or the direct solver (Osborne steps that solve g_k = nu, the multiplier of
/// sum h = 0), on that network with the world anchored (`HUpdate::anchor`), then transforms J,
/// W_in, W_out by h. The returned histories, `flows` and
/// h samples are those of the network with the world, which is node n.
pub fn balance_with_io_paths(
    backend: &mut dyn Backend,
    nets: &Networks,
    params: &BalanceParams,
    input_path: bool,
) -> Result<Balanced, DaleError> {
    if params.p != 2.0 {
        return Err(DaleError::scene(
            "p",
            format!(
                "p = {}; the readout-aware cost is a cost of squared gains, p = 2",
                params.p
            ),
        ));
    }
    let world = World::new(nets, input_path)?;
    let graph = world.networks();
    let (groups, n) = (nets.groups, nets.n);
    for g in 0..groups {
        let reaches = reaches(graph.n, n, |i, j| graph.has_cost(g, i, j));
        if let Some(k) = (0..n).find(|&k| !reaches[k]) {
            return Err(DaleError::NoBalance {
                network: g,
                why: format!("no path of synapses leads from neuron {k} to a neuron with a nonzero W_out column, so raising the h of the neurons it reaches (and lowering the others, on sum h = 0) lowers the readout-aware cost without bound"),
            });
        }
    }
    // The world is held at h = 0; the topology is the world's to fix, not the components'.
    let params = BalanceParams {
        topology: Topology::Whole,
        ..params.clone()
    };
    let mut out = balance_anchored(backend, &graph, &params, Some(n))?;
    out.h = out.h.chunks(n + 1).flat_map(|h| h[..n].to_vec()).collect();
    let mut scope = Scope::new();
    let result = (|| {
        let h = scope.alloc_from(backend, "h", &out.h)?;
        (out.j, out.w_in, out.w_out) = transformed(backend, &mut scope, nets, h)?;
        Ok(())
    })();
    scope.free(backend);
    result.map(|()| out)
}

/// The networks with one more node, the world (the inputs and outputs, node n), whose synapses
/// carry the readout path j -> world (J = sqrt(r_j), alpha 1) and, with `input_path`, the input
/// path world -> j (J = sqrt(q_j), alpha 1): the network `balance_with_io_paths` balances.
pub struct World {
    groups: usize,
    n: usize,
    j: Vec<f32>,
    alpha: Vec<f32>,
}

impl World {
    pub fn new(nets: &Networks, input_path: bool) -> Result<Self, DaleError> {
        let (Some((m, w_in)), Some((k, w_out))) = (nets.w_in, nets.w_out) else {
            return Err(DaleError::scene(
                "cost",
                "the readout-aware cost needs W_in and W_out (their paths are part of it)",
            ));
        };
        let (groups, n) = (nets.groups, nets.n);
        let world = n;
        let size = n + 1;
        let mut j = vec![0.0f32; groups * size * size];
        let mut alpha = vec![1.0f32; groups * size * size];
        for g in 0..groups {
            let (jg, ag) = (
                &mut j[g * size * size..][..size * size],
                &mut alpha[g * size * size..][..size * size],
            );
            for i in 0..n {
                for c in 0..n {
                    jg[i * size + c] = nets.j[g * n * n + i * n + c];
                    ag[i * size + c] = nets.alpha(g, i, c);
                }
                let q: f64 = w_in[g * n * m + i * m..][..m]
                    .iter()
                    .map(|v| f64::from(*v).powi(2))
                    .sum();
                let r: f64 = (0..k)
                    .map(|o| f64::from(w_out[g * k * n + o * n + i]).powi(2))
                    .sum();
                if input_path {
                    jg[i * size + world] = q.sqrt() as f32;
                }
                jg[world * size + i] = r.sqrt() as f32;
            }
        }
        Ok(World {
            groups,
            n: size,
            j,
            alpha,
        })
    }

    pub fn networks(&self) -> Networks<'_> {
        Networks {
            groups: self.groups,
            n: self.n,
            j: &self.j,
            w_in: None,
            w_out: None,
            alpha: Alpha::Full { shared: false },
            alpha_values: &self.alpha,
        }
    }
}

/// ln sum e^t over `terms`, about their largest (-inf for none).
fn log_sum_exp(terms: &[f64]) -> f64 {
    let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

/// |row[c]| for every column c, with the self-synapse (c = i) as 0.
fn off_diagonal(i: usize, row: &[f32]) -> impl Iterator<Item = f32> + '_ {
    row.iter()
        .enumerate()
        .map(move |(c, v)| if c == i { 0.0 } else { v.abs() })
}
