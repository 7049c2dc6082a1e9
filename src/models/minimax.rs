//! Paper 000's greedy spiking network (Li & Pehlevan; ../shared/models/minimax.md), many trials
//! at once: each neuron's trace r (+1 per spike, decaying with tau) is its rate times tau; the
//! voltages are read from the traces, V_E = W_EE r_E - W_EI r_I + F r_x and
//! V_I = W_IE r_E - W_II r_I, with r_x the traces of Poisson input trains; an E neuron spikes
//! when one more unit of its rate lowers S (V_E,i > -W_EE,ii / 2 + theta_E), an I neuron when it
//! raises S (V_I,j > W_II,jj / 2 + theta_I), every such neuron at once or only the one furthest
//! above threshold. Uses the op families linalg and spiking.

use crate::analysis::minimax::MinimaxNet;
use crate::backend::linalg::{Layout, LinalgOps, MatmulShape};
use crate::backend::spiking::{PoissonInputs, SpikeRule, SpikingOps, Thresholds};
use crate::backend::{Backend, Buf, BufferOps, Scope};
use crate::error::DaleError;
use crate::models::spiking::chunk_steps;

#[derive(Clone, Debug, PartialEq)]
pub struct GreedyParams {
    pub trials: usize,
    /// Time constant of every trace, and the step, in the same unit (the inputs' rates are per
    /// that unit).
    pub tau: f64,
    pub dt: f64,
    pub steps: usize,
    pub rule: SpikeRule,
    /// Rate of each input's Poisson train, [m].
    pub input_rates: Vec<f64>,
    pub seed: u64,
    /// Steps from which spikes are counted into the rates.
    pub average_from: usize,
    /// Keep every step's spikes (read back a chunk of steps at a time).
    pub record_spikes: bool,
    /// Measure each E neuron's excitatory and inhibitory input every step from `average_from`
    /// on, for their correlation: V_E split by the sign of each weight, the positive terms of
    /// W_EE r_E + F r_x against W_EI r_I and the magnitudes of the negative ones (W_EE's
    /// diagonal, the neuron's reset, and F's negative entries).
    pub record_inputs: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GreedyRun {
    /// Spikes per unit time from step `average_from` on, [trials, n_e] and [trials, n_i].
    pub rates_e: Vec<f64>,
    pub rates_i: Vec<f64>,
    /// Spikes from step `average_from` on, [trials, n].
    pub counts_e: Vec<u32>,
    pub counts_i: Vec<u32>,
    /// With `record_spikes`: each step's spikes.
    pub spikes: Vec<StepSpikes>,
    /// With `record_inputs`: per E neuron of each trial, the Pearson correlation over time of
    /// its excitatory and inhibitory inputs (tight balance brings it to 1), None where either
    /// is constant. [trials, n_e].
    pub ei_correlation: Vec<Option<f64>>,
}

/// The (trial, neuron) of each E spike and of each I spike of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSpikes {
    pub e: Vec<(u32, u32)>,
    pub i: Vec<(u32, u32)>,
}

/// The weights as the products take them (row-major f32, C = A W^T): W_EE, -W_EI, F for V_E;
/// W_IE = W_EI', -W_II for V_I; and the thresholds.
struct DeviceNet {
    w_ee: Buf<f32>,
    /// The positive entries of W_EE and F, and the magnitudes of their negative ones.
    w_ee_positive: Buf<f32>,
    w_ee_negative: Buf<f32>,
    f_positive: Buf<f32>,
    f_negative: Buf<f32>,
    w_ei: Buf<f32>,
    neg_w_ei: Buf<f32>,
    f: Buf<f32>,
    w_ie: Buf<f32>,
    neg_w_ii: Buf<f32>,
    threshold_e: Buf<f32>,
    threshold_i: Buf<f32>,
}

fn upload(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    net: &MinimaxNet,
) -> Result<DeviceNet, DaleError> {
    let f32s = |v: &[f64], sign: f64| -> Vec<f32> { v.iter().map(|x| (sign * x) as f32).collect() };
    let (n_e, n_i) = (net.n_e, net.n_i);
    let w_ie: Vec<f64> = (0..n_i * n_e)
        .map(|t| net.w_ei[(t % n_e) * n_i + t / n_e])
        .collect();
    // max(sign w, 0): the positive part, or the magnitude of the negative one.
    let part = |v: &[f64], sign: f64| -> Vec<f32> {
        v.iter().map(|x| (sign * x).max(0.0) as f32).collect()
    };
    let threshold_e: Vec<f64> = (0..n_e)
        .map(|k| -0.5 * net.w_ee[k * n_e + k] + net.theta_e)
        .collect();
    let threshold_i: Vec<f64> = (0..n_i)
        .map(|j| 0.5 * net.w_ii[j * n_i + j] + net.theta_i)
        .collect();
    Ok(DeviceNet {
        w_ee: scope.alloc_from(backend, "W_EE", &f32s(&net.w_ee, 1.0))?,
        w_ee_positive: scope.alloc_from(backend, "W_EE+", &part(&net.w_ee, 1.0))?,
        w_ee_negative: scope.alloc_from(backend, "W_EE-", &part(&net.w_ee, -1.0))?,
        f_positive: scope.alloc_from(backend, "F+", &part(&net.f, 1.0))?,
        f_negative: scope.alloc_from(backend, "F-", &part(&net.f, -1.0))?,
        w_ei: scope.alloc_from(backend, "W_EI", &f32s(&net.w_ei, 1.0))?,
        neg_w_ei: scope.alloc_from(backend, "-W_EI", &f32s(&net.w_ei, -1.0))?,
        f: scope.alloc_from(backend, "F", &f32s(&net.f, 1.0))?,
        w_ie: scope.alloc_from(backend, "W_IE", &f32s(&w_ie, 1.0))?,
        neg_w_ii: scope.alloc_from(backend, "-W_II", &f32s(&net.w_ii, -1.0))?,
        threshold_e: scope.alloc_from(backend, "E thresholds", &f32s(&threshold_e, 1.0))?,
        threshold_i: scope.alloc_from(backend, "I thresholds", &f32s(&threshold_i, 1.0))?,
    })
}

pub fn simulate_greedy(
    backend: &mut dyn Backend,
    net: &MinimaxNet,
    params: &GreedyParams,
) -> Result<GreedyRun, DaleError> {
    let mut scope = Scope::new();
    let result = simulate_in(backend, &mut scope, net, params);
    scope.free(backend);
    result
}

fn simulate_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    net: &MinimaxNet,
    p: &GreedyParams,
) -> Result<GreedyRun, DaleError> {
    assert_eq!(p.input_rates.len(), net.m, "a rate per input");
    let (b, n_e, n_i, m) = (p.trials, net.n_e, net.n_i, net.m);
    let d = upload(backend, scope, net)?;
    let probabilities: Vec<f32> = p.input_rates.iter().map(|r| (r * p.dt) as f32).collect();
    let probabilities = scope.alloc_from(backend, "input spike probabilities", &probabilities)?;
    let trace_x = scope.alloc::<f32>(backend, "input traces", b * m)?;
    let trace_e = scope.alloc::<f32>(backend, "E traces", b * n_e)?;
    let trace_i = scope.alloc::<f32>(backend, "I traces", b * n_i)?;
    let v_e = scope.alloc::<f32>(backend, "V_E", b * n_e)?;
    let v_i = scope.alloc::<f32>(backend, "V_I", b * n_i)?;
    let spikes_e = scope.alloc::<f32>(backend, "E spikes", b * n_e)?;
    let spikes_i = scope.alloc::<f32>(backend, "I spikes", b * n_i)?;
    let count_e = scope.alloc::<u32>(backend, "E spike counts", b * n_e)?;
    let count_i = scope.alloc::<u32>(backend, "I spike counts", b * n_i)?;
    let e_input = scope.alloc::<f32>(backend, "E neurons' excitatory input", b * n_e)?;
    let i_input = scope.alloc::<f32>(backend, "E neurons' inhibitory input", b * n_e)?;
    // A step's record: its E and I spikes, then (record_inputs) the E neurons' two inputs.
    let spikes_len = if p.record_spikes { b * (n_e + n_i) } else { 0 };
    let inputs_len = if p.record_inputs { 2 * b * n_e } else { 0 };
    let per_step = spikes_len + inputs_len;
    let chunk = if per_step > 0 {
        chunk_steps(p.steps, p.steps, per_step)
    } else {
        1
    };
    let record = scope.alloc::<f32>(backend, "record", chunk * per_step.max(1))?;
    let mut moments = vec![Moments::default(); b * n_e];
    let decay = (1.0 - p.dt / p.tau) as f32;
    // C (+)= A W^T for the trials' rows.
    let product = |inner: usize, cols: usize| MatmulShape {
        groups: 1,
        rows: b,
        inner,
        cols,
        shared_w: true,
        layout: Layout::ABt,
    };
    let mut spikes = Vec::new();
    let mut step = 0;
    while step < p.steps {
        let this = chunk.min(p.steps - step);
        for slot in 0..this {
            let t = step + slot;
            let inputs = PoissonInputs {
                trials: b,
                m,
                decay,
                seed: p.seed,
                step: t as u32,
            };
            backend.poisson_inputs(probabilities, trace_x, inputs);
            backend.matmul(trace_e, 0, d.w_ee, v_e, product(n_e, n_e), false);
            backend.matmul(trace_i, 0, d.neg_w_ei, v_e, product(n_i, n_e), true);
            backend.matmul(trace_x, 0, d.f, v_e, product(m, n_e), true);
            if p.record_inputs {
                let (ee, ei, x) = (product(n_e, n_e), product(n_i, n_e), product(m, n_e));
                backend.matmul(trace_e, 0, d.w_ee_positive, e_input, ee, false);
                backend.matmul(trace_x, 0, d.f_positive, e_input, x, true);
                backend.matmul(trace_i, 0, d.w_ei, i_input, ei, false);
                backend.matmul(trace_e, 0, d.w_ee_negative, i_input, ee, true);
                backend.matmul(trace_x, 0, d.f_negative, i_input, x, true);
            }
            backend.matmul(trace_e, 0, d.w_ie, v_i, product(n_e, n_i), false);
            backend.matmul(trace_i, 0, d.neg_w_ii, v_i, product(n_i, n_i), true);
            let spec = |n: usize| Thresholds {
                trials: b,
                n,
                decay,
                rule: p.rule,
            };
            if t == p.average_from {
                // Count from here on: once, not per step.
                backend.upload(count_e, 0, &vec![0u32; b * n_e])?;
                backend.upload(count_i, 0, &vec![0u32; b * n_i])?;
            }
            backend.threshold_spikes(v_e, d.threshold_e, trace_e, spikes_e, count_e, spec(n_e));
            backend.threshold_spikes(v_i, d.threshold_i, trace_i, spikes_i, count_i, spec(n_i));
            if p.record_spikes {
                backend.copy(spikes_e, 0, record, slot * per_step, b * n_e);
                backend.copy(spikes_i, 0, record, slot * per_step + b * n_e, b * n_i);
            }
            if p.record_inputs {
                // The inputs the step's voltages were read from (before its spikes).
                let at = slot * per_step + spikes_len;
                backend.copy(e_input, 0, record, at, b * n_e);
                backend.copy(i_input, 0, record, at + b * n_e, b * n_e);
            }
        }
        if per_step > 0 {
            let values = backend.download(record, 0, this * per_step)?;
            for (slot, step_values) in values.chunks_exact(per_step).enumerate() {
                let (slot_flags, step_inputs) = step_values.split_at(spikes_len);
                if step + slot >= p.average_from && p.record_inputs {
                    let (excitation, inhibition) = step_inputs.split_at(b * n_e);
                    for ((m, e), i) in moments.iter_mut().zip(excitation).zip(inhibition) {
                        m.add(f64::from(*e), f64::from(*i));
                    }
                }
                if !p.record_spikes {
                    continue;
                }
                let listed = |flags: &[f32], n: usize| -> Vec<(u32, u32)> {
                    (0..flags.len())
                        .filter(|&k| flags[k] != 0.0)
                        .map(|k| ((k / n) as u32, (k % n) as u32))
                        .collect()
                };
                let (e, i) = slot_flags.split_at(b * n_e);
                spikes.push(StepSpikes {
                    e: listed(e, n_e),
                    i: listed(i, n_i),
                });
            }
        }
        step += this;
    }
    let window = p.steps.saturating_sub(p.average_from).max(1) as f64 * p.dt;
    let rates = |c: &[u32]| -> Vec<f64> { c.iter().map(|c| f64::from(*c) / window).collect() };
    let counts_e = backend.download(count_e, 0, b * n_e)?;
    let counts_i = backend.download(count_i, 0, b * n_i)?;
    Ok(GreedyRun {
        rates_e: rates(&counts_e),
        rates_i: rates(&counts_i),
        counts_e,
        counts_i,
        spikes,
        ei_correlation: match p.record_inputs {
            true => moments.iter().map(Moments::correlation).collect(),
            false => Vec::new(),
        },
    })
}

/// Running sums of two series for their Pearson correlation, in f64 about their first values
/// (which keeps the sums of squares from cancelling).
#[derive(Clone, Debug, Default)]
struct Moments {
    count: f64,
    origin: Option<(f64, f64)>,
    a: f64,
    b: f64,
    aa: f64,
    bb: f64,
    ab: f64,
}

impl Moments {
    fn add(&mut self, a: f64, b: f64) {
        let (a0, b0) = *self.origin.get_or_insert((a, b));
        let (a, b) = (a - a0, b - b0);
        self.count += 1.0;
        self.a += a;
        self.b += b;
        self.aa += a * a;
        self.bb += b * b;
        self.ab += a * b;
    }

    /// None where either series is constant.
    fn correlation(&self) -> Option<f64> {
        let n = self.count;
        let cov = self.ab - self.a * self.b / n;
        let (var_a, var_b) = (self.aa - self.a * self.a / n, self.bb - self.b * self.b / n);
        (n > 1.0 && var_a > 0.0 && var_b > 0.0).then(|| cov / (var_a * var_b).sqrt())
    }
}
