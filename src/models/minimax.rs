//! Paper 000's greedy spiking network (Li & Pehlevan; ../shared/models/minimax.md), many trials
//! at once, and its rate dynamics. Each neuron's trace r (+1 per spike, decaying with its
//! population's tau) is its rate times tau; the voltages are read from the traces,
//! V_E = W_EE r_E - W_EI r_I + F r_x and V_I = W_IE r_E - W_II r_I, with r_x the traces of the
//! inputs (Poisson trains, or their mean as a constant current); an E neuron spikes when one more
//! unit of its rate lowers S (V_E,i > -W_EE,ii / 2 + theta_E), an I neuron when it raises S
//! (V_I,j > W_II,jj / 2 + theta_I), every such neuron at once or only the one furthest above
//! threshold. Options: voltages integrated with the receiving population's tau, a cue that drives
//! the neurons' own traces with Poisson trains, inputs that change over the run, and fast
//! inhibition (the I population re-run from rest for some substeps within each E step). The rate
//! dynamics are projected gradient descent in r_E and ascent in r_I. Uses the op families linalg,
//! rate and spiking.

use crate::analysis::minimax::MinimaxNet;
use crate::backend::linalg::{Layout, LinalgOps, MatmulShape};
use crate::backend::rate::{ProjectedStep, RateOps};
use crate::backend::spiking::{Draw, PoissonInputs, SpikeRule, SpikingOps, Thresholds};
use crate::backend::{Backend, Buf, BufferOps, Scope};
use crate::error::DaleError;
use crate::models::spiking::chunk_steps;

/// How the voltages follow the spikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voltage {
    /// Read from the senders' traces each step.
    Instantaneous,
    /// tau dV/dt = -V + tau (W spikes + input) with the receiving population's tau: the same as
    /// reading them from the senders' spikes filtered at that tau, which differs from
    /// `Instantaneous` only where tau_E != tau_I.
    Integrated,
}

/// Input rates (per unit time) from a step on, until the next phase: [m] for every trial, or
/// [trials, m].
#[derive(Clone, Debug, PartialEq)]
pub struct InputPhase {
    pub from_step: usize,
    pub rates: Vec<f64>,
}

/// For the first `steps` steps the neurons do not spike by their rule: their traces follow
/// Poisson trains at these rates, [trials, n_e] and [trials, n_i] (an attractor's cue).
#[derive(Clone, Debug, PartialEq)]
pub struct Cue {
    pub steps: usize,
    pub rates_e: Vec<f64>,
    pub rates_i: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GreedyParams {
    pub trials: usize,
    /// Time constants of the E traces (and the inputs') and of the I traces, and the step, in
    /// the same unit (the inputs' rates are per that unit).
    pub tau_e: f64,
    pub tau_i: f64,
    pub dt: f64,
    pub steps: usize,
    pub rule: SpikeRule,
    pub voltage: Voltage,
    /// Phases in order of `from_step`, the first from step 0.
    pub inputs: Vec<InputPhase>,
    /// Poisson trains, or their mean (a constant current through the same filter).
    pub draw: Draw,
    /// Start the input traces at their steady value, rate tau_E (else at 0).
    pub inputs_start_steady: bool,
    pub cue: Option<Cue>,
    /// 0: the I neurons step with the E neurons. K > 0: fast inhibition; after the E neurons'
    /// step the I population starts from rest and takes K steps against the new E traces (its
    /// counts then cover those substeps).
    pub inhibition_substeps: usize,
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
    /// Keep the E and input traces at the end of every this many steps (0: never).
    pub sample_every: usize,
}

impl GreedyParams {
    /// Synchronous spiking with one tau, instantaneous voltages and constant Poisson inputs at
    /// `input_rates` [m], counted from the start, nothing recorded.
    pub fn new(trials: usize, tau: f64, dt: f64, steps: usize, input_rates: Vec<f64>) -> Self {
        GreedyParams {
            trials,
            tau_e: tau,
            tau_i: tau,
            dt,
            steps,
            rule: SpikeRule::Synchronous,
            voltage: Voltage::Instantaneous,
            inputs: vec![InputPhase {
                from_step: 0,
                rates: input_rates,
            }],
            draw: Draw::Poisson,
            inputs_start_steady: false,
            cue: None,
            inhibition_substeps: 0,
            seed: 0,
            average_from: 0,
            record_spikes: false,
            record_inputs: false,
            sample_every: 0,
        }
    }

    fn check(&self, net: &MinimaxNet) {
        let (b, m) = (self.trials, net.m);
        assert!(
            self.inputs.first().is_some_and(|p| p.from_step == 0),
            "the first input phase starts at step 0"
        );
        for (k, phase) in self.inputs.iter().enumerate() {
            assert!(
                phase.rates.len() == m || phase.rates.len() == b * m,
                "input phase {k}: {} rates; allowed: m or trials x m",
                phase.rates.len()
            );
            assert!(
                k == 0 || phase.from_step > self.inputs[k - 1].from_step,
                "input phases in order of their steps"
            );
        }
        if let Some(cue) = &self.cue {
            assert_eq!(
                cue.rates_e.len(),
                b * net.n_e,
                "a cue rate per E neuron of each trial"
            );
            assert_eq!(
                cue.rates_i.len(),
                b * net.n_i,
                "a cue rate per I neuron of each trial"
            );
        }
        assert!(
            self.inhibition_substeps == 0 || self.voltage == Voltage::Instantaneous,
            "fast inhibition reads the voltages from the traces"
        );
    }
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
    /// With `sample_every`: the traces at the end of steps every - 1, 2 every - 1, ...
    pub samples: Vec<Sample>,
}

/// The (trial, neuron) of each E spike and of each I spike of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSpikes {
    pub e: Vec<(u32, u32)>,
    pub i: Vec<(u32, u32)>,
}

/// The traces at the end of a step: E [trials, n_e] (rates times tau_E) and inputs [trials, m].
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub step: usize,
    pub traces_e: Vec<f32>,
    pub traces_x: Vec<f32>,
}

/// The weights as the products take them (row-major f32, C = A W^T): W_EE, -W_EI, F for V_E;
/// W_IE = W_EI', -W_II for V_I; and the thresholds.
struct DeviceNet {
    w_ee: Buf<f32>,
    neg_w_ei: Buf<f32>,
    f: Buf<f32>,
    w_ie: Buf<f32>,
    neg_w_ii: Buf<f32>,
    threshold_e: Buf<f32>,
    threshold_i: Buf<f32>,
    /// With `record_inputs`.
    split: Option<InputSplit>,
}

/// V_E's terms by sign: the positive entries of W_EE and F, and the magnitudes of their negative
/// ones; W_EI.
struct InputSplit {
    w_ee_positive: Buf<f32>,
    w_ee_negative: Buf<f32>,
    f_positive: Buf<f32>,
    f_negative: Buf<f32>,
    w_ei: Buf<f32>,
}

fn upload(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    net: &MinimaxNet,
    split: bool,
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
    let (threshold_e, threshold_i) = spike_thresholds(net);
    let split = match split {
        false => None,
        true => Some(InputSplit {
            w_ee_positive: scope.alloc_from(backend, "W_EE+", &part(&net.w_ee, 1.0))?,
            w_ee_negative: scope.alloc_from(backend, "W_EE-", &part(&net.w_ee, -1.0))?,
            f_positive: scope.alloc_from(backend, "F+", &part(&net.f, 1.0))?,
            f_negative: scope.alloc_from(backend, "F-", &part(&net.f, -1.0))?,
            w_ei: scope.alloc_from(backend, "W_EI", &f32s(&net.w_ei, 1.0))?,
        }),
    };
    Ok(DeviceNet {
        w_ee: scope.alloc_from(backend, "W_EE", &f32s(&net.w_ee, 1.0))?,
        neg_w_ei: scope.alloc_from(backend, "-W_EI", &f32s(&net.w_ei, -1.0))?,
        f: scope.alloc_from(backend, "F", &f32s(&net.f, 1.0))?,
        w_ie: scope.alloc_from(backend, "W_IE", &f32s(&w_ie, 1.0))?,
        neg_w_ii: scope.alloc_from(backend, "-W_II", &f32s(&net.w_ii, -1.0))?,
        threshold_e: scope.alloc_from(backend, "E thresholds", &f32s(&threshold_e, 1.0))?,
        threshold_i: scope.alloc_from(backend, "I thresholds", &f32s(&threshold_i, 1.0))?,
        split,
    })
}

pub fn simulate_greedy(
    backend: &mut dyn Backend,
    net: &MinimaxNet,
    params: &GreedyParams,
) -> Result<GreedyRun, DaleError> {
    params.check(net);
    let mut scope = Scope::new();
    let result = simulate_in(backend, &mut scope, net, params);
    scope.free(backend);
    result
}

/// Seeds of the cue's trains, apart from the inputs' stream.
const CUE_E_STREAM: u64 = 0x6375_655f_4500_0000;
const CUE_I_STREAM: u64 = 0x6375_655f_4900_0000;

fn probabilities(rates: &[f64], dt: f64) -> Vec<f32> {
    rates.iter().map(|r| (r * dt) as f32).collect()
}

fn simulate_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    net: &MinimaxNet,
    p: &GreedyParams,
) -> Result<GreedyRun, DaleError> {
    let (b, n_e, n_i, m) = (p.trials, net.n_e, net.n_i, net.m);
    let d = upload(backend, scope, net, p.record_inputs)?;
    let (decay_e, decay_i) = ((1.0 - p.dt / p.tau_e) as f32, (1.0 - p.dt / p.tau_i) as f32);
    let integrated = p.voltage == Voltage::Integrated;
    // Room for the largest phase; each phase's probabilities are uploaded at its step.
    let input_probabilities = scope.alloc::<f32>(backend, "input spike probabilities", b * m)?;
    let input_spikes = scope.alloc::<f32>(backend, "input spikes", b * m)?;
    let trace_x = scope.alloc::<f32>(backend, "input traces", b * m)?;
    if p.inputs_start_steady {
        let first = &p.inputs[0].rates;
        let steady: Vec<f32> = (0..b * m)
            .map(|e| (first[e % first.len()] * p.tau_e) as f32)
            .collect();
        backend.upload(trace_x, 0, &steady)?;
    }
    let trace_e = scope.alloc::<f32>(backend, "E traces", b * n_e)?;
    let trace_i = scope.alloc::<f32>(backend, "I traces", b * n_i)?;
    // Integrated voltages: the I spikes filtered at tau_E, the E spikes at tau_I.
    let (trace_i_at_e, trace_e_at_i) = match integrated {
        true => (
            scope.alloc::<f32>(backend, "I spikes at tau_E", b * n_i)?,
            scope.alloc::<f32>(backend, "E spikes at tau_I", b * n_e)?,
        ),
        false => (trace_i, trace_e),
    };
    let v_e = scope.alloc::<f32>(backend, "V_E", b * n_e)?;
    let v_i = scope.alloc::<f32>(backend, "V_I", b * n_i)?;
    let spikes_e = scope.alloc::<f32>(backend, "E spikes", b * n_e)?;
    let spikes_i = scope.alloc::<f32>(backend, "I spikes", b * n_i)?;
    let count_e = scope.alloc::<u32>(backend, "E spike counts", b * n_e)?;
    let count_i = scope.alloc::<u32>(backend, "I spike counts", b * n_i)?;
    let (rest_i, drive_i) = match p.inhibition_substeps {
        0 => (trace_i, v_i),
        _ => (
            scope.alloc::<f32>(backend, "I traces at rest", b * n_i)?,
            scope.alloc::<f32>(backend, "W_IE r_E", b * n_i)?,
        ),
    };
    let cue = match &p.cue {
        Some(cue) => Some((
            scope.alloc_from(backend, "E cue", &probabilities(&cue.rates_e, p.dt))?,
            scope.alloc_from(backend, "I cue", &probabilities(&cue.rates_i, p.dt))?,
            cue.steps,
        )),
        None => None,
    };
    let e_input = scope.alloc::<f32>(backend, "E neurons' excitatory input", b * n_e)?;
    let i_input = scope.alloc::<f32>(backend, "E neurons' inhibitory input", b * n_e)?;
    // A step's record: its E and I spikes, then (record_inputs) the E neurons' two inputs; and
    // every `sample_every` steps the E and input traces.
    let spikes_len = if p.record_spikes { b * (n_e + n_i) } else { 0 };
    let inputs_len = if p.record_inputs { 2 * b * n_e } else { 0 };
    let per_step = spikes_len + inputs_len;
    let sample_len = b * (n_e + m);
    let sampled = p.sample_every > 0;
    let chunk = match (per_step, sampled) {
        (0, false) => 1,
        (0, true) => {
            let samples = p.steps.div_ceil(p.sample_every);
            p.sample_every * chunk_steps(samples, samples, sample_len)
        }
        _ => chunk_steps(
            p.steps,
            p.steps,
            per_step + sample_len / p.sample_every.max(1),
        ),
    };
    let chunk_samples = if sampled {
        chunk.div_ceil(p.sample_every)
    } else {
        0
    };
    let record = scope.alloc::<f32>(backend, "record", chunk * per_step.max(1))?;
    let sample_record =
        scope.alloc::<f32>(backend, "samples", (chunk_samples * sample_len).max(1))?;
    let mut moments = vec![Moments::default(); b * n_e];
    // C (+)= A W^T for the trials' rows.
    let product = |inner: usize, cols: usize| MatmulShape {
        groups: 1,
        rows: b,
        inner,
        cols,
        shared_w: true,
        layout: Layout::ABt,
    };
    let spec = |n: usize, decay: f32| Thresholds {
        trials: b,
        n,
        decay,
        rule: p.rule,
    };
    let trains =
        |m: usize, decay: f32, per_trial: bool, draw: Draw, seed: u64, t: usize| PoissonInputs {
            trials: b,
            m,
            decay,
            seed,
            step: t as u32,
            per_trial,
            draw,
        };
    let mut per_trial_inputs = false;
    let mut spikes = Vec::new();
    let mut samples = Vec::new();
    let mut step = 0;
    while step < p.steps {
        let this = chunk.min(p.steps - step);
        let mut sampled_steps = Vec::new();
        for slot in 0..this {
            let t = step + slot;
            if let Some(phase) = p.inputs.iter().find(|phase| phase.from_step == t) {
                per_trial_inputs = phase.rates.len() == b * m && b > 1;
                let own = if per_trial_inputs { b * m } else { m };
                let probs = probabilities(&phase.rates[..own], p.dt);
                backend.upload(input_probabilities, 0, &probs)?;
            }
            if t == p.average_from {
                // Count from here on: once, not per step.
                backend.upload(count_e, 0, &vec![0u32; b * n_e])?;
                backend.upload(count_i, 0, &vec![0u32; b * n_i])?;
            }
            let inputs = trains(m, decay_e, per_trial_inputs, p.draw, p.seed, t);
            backend.poisson_inputs(input_probabilities, input_spikes, trace_x, inputs);
            backend.matmul(trace_e, 0, d.w_ee, v_e, product(n_e, n_e), false);
            backend.matmul(trace_i_at_e, 0, d.neg_w_ei, v_e, product(n_i, n_e), true);
            backend.matmul(trace_x, 0, d.f, v_e, product(m, n_e), true);
            if let Some(split) = &d.split {
                let (ee, ei, x) = (product(n_e, n_e), product(n_i, n_e), product(m, n_e));
                backend.matmul(trace_e, 0, split.w_ee_positive, e_input, ee, false);
                backend.matmul(trace_x, 0, split.f_positive, e_input, x, true);
                backend.matmul(trace_i_at_e, 0, split.w_ei, i_input, ei, false);
                backend.matmul(trace_e, 0, split.w_ee_negative, i_input, ee, true);
                backend.matmul(trace_x, 0, split.f_negative, i_input, x, true);
            }
            match cue {
                Some((cue_e, cue_i, steps)) if t < steps => {
                    let seed = p.seed ^ CUE_E_STREAM;
                    let forced = trains(n_e, decay_e, true, Draw::Poisson, seed, t);
                    backend.poisson_inputs(cue_e, spikes_e, trace_e, forced);
                    let seed = p.seed ^ CUE_I_STREAM;
                    let forced = trains(n_i, decay_i, true, Draw::Poisson, seed, t);
                    backend.poisson_inputs(cue_i, spikes_i, trace_i, forced);
                }
                _ if p.inhibition_substeps > 0 => {
                    let (e, i) = (spec(n_e, decay_e), spec(n_i, decay_i));
                    backend.threshold_spikes(v_e, d.threshold_e, trace_e, spikes_e, count_e, e);
                    backend.copy(rest_i, 0, trace_i, 0, b * n_i);
                    backend.matmul(trace_e, 0, d.w_ie, drive_i, product(n_e, n_i), false);
                    for _ in 0..p.inhibition_substeps {
                        backend.copy(drive_i, 0, v_i, 0, b * n_i);
                        backend.matmul(trace_i, 0, d.neg_w_ii, v_i, product(n_i, n_i), true);
                        backend.threshold_spikes(v_i, d.threshold_i, trace_i, spikes_i, count_i, i);
                    }
                }
                _ => {
                    let (e, i) = (spec(n_e, decay_e), spec(n_i, decay_i));
                    backend.matmul(trace_e_at_i, 0, d.w_ie, v_i, product(n_e, n_i), false);
                    backend.matmul(trace_i, 0, d.neg_w_ii, v_i, product(n_i, n_i), true);
                    backend.threshold_spikes(v_e, d.threshold_e, trace_e, spikes_e, count_e, e);
                    backend.threshold_spikes(v_i, d.threshold_i, trace_i, spikes_i, count_i, i);
                }
            }
            if integrated {
                backend.filter_spikes(spikes_e, trace_e_at_i, b * n_e, decay_i);
                backend.filter_spikes(spikes_i, trace_i_at_e, b * n_i, decay_e);
            }
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
            if sampled && (t + 1) % p.sample_every == 0 {
                let at = sampled_steps.len() * sample_len;
                backend.copy(trace_e, 0, sample_record, at, b * n_e);
                backend.copy(trace_x, 0, sample_record, at + b * n_e, b * m);
                sampled_steps.push(t);
            }
        }
        if !sampled_steps.is_empty() {
            let values = backend.download(sample_record, 0, sampled_steps.len() * sample_len)?;
            for (t, traces) in sampled_steps.iter().zip(values.chunks_exact(sample_len)) {
                let (e, x) = traces.split_at(b * n_e);
                samples.push(Sample {
                    step: *t,
                    traces_e: e.to_vec(),
                    traces_x: x.to_vec(),
                });
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
        samples,
    })
}

/// The voltages' thresholds, theta minus the spike's own effect on S: -W_EE,ii / 2 + theta_E
/// and W_II,jj / 2 + theta_I.
pub fn spike_thresholds(net: &MinimaxNet) -> (Vec<f64>, Vec<f64>) {
    let (n_e, n_i) = (net.n_e, net.n_i);
    let e = (0..n_e)
        .map(|k| -0.5 * net.w_ee[k * n_e + k] + net.theta_e)
        .collect();
    let i = (0..n_i)
        .map(|j| 0.5 * net.w_ii[j * n_i + j] + net.theta_i)
        .collect();
    (e, i)
}

/// Paper 000's rate dynamics, `trials` at once:
///   tau_E dr_E/dt = V_E - theta_E,  tau_I dr_I/dt = V_I - theta_I,  both kept >= 0
/// (gradient descent on S in r_E, ascent in r_I), forward Euler from rest.
#[derive(Clone, Debug, PartialEq)]
pub struct RateDynamics {
    pub trials: usize,
    pub tau_e: f64,
    pub tau_i: f64,
    pub dt: f64,
    pub steps: usize,
    /// The input x, [m] for every trial or [trials, m].
    pub inputs: Vec<f64>,
}

/// The rates after `steps`, [trials, n_e] and [trials, n_i].
pub fn simulate_rates(
    backend: &mut dyn Backend,
    net: &MinimaxNet,
    p: &RateDynamics,
) -> Result<(Vec<f32>, Vec<f32>), DaleError> {
    let (b, n_e, n_i, m) = (p.trials, net.n_e, net.n_i, net.m);
    assert!(
        p.inputs.len() == m || p.inputs.len() == b * m,
        "{} inputs; allowed: m or trials x m",
        p.inputs.len()
    );
    let mut scope = Scope::new();
    let result = (|| {
        let scope = &mut scope;
        let d = upload(backend, scope, net, false)?;
        let x: Vec<f32> = (0..b * m)
            .map(|e| p.inputs[e % p.inputs.len()] as f32)
            .collect();
        let x = scope.alloc_from(backend, "x", &x)?;
        let theta_e = scope.alloc_from(backend, "theta_E", &vec![net.theta_e as f32; n_e])?;
        let theta_i = scope.alloc_from(backend, "theta_I", &vec![net.theta_i as f32; n_i])?;
        let r_e = scope.alloc::<f32>(backend, "r_E", b * n_e)?;
        let r_i = scope.alloc::<f32>(backend, "r_I", b * n_i)?;
        let v_e = scope.alloc::<f32>(backend, "V_E", b * n_e)?;
        let v_i = scope.alloc::<f32>(backend, "V_I", b * n_i)?;
        let product = |inner: usize, cols: usize| MatmulShape {
            groups: 1,
            rows: b,
            inner,
            cols,
            shared_w: true,
            layout: Layout::ABt,
        };
        let step = |n: usize, tau: f64| ProjectedStep {
            trials: b,
            n,
            rate: (p.dt / tau) as f32,
        };
        for _ in 0..p.steps {
            backend.matmul(r_e, 0, d.w_ee, v_e, product(n_e, n_e), false);
            backend.matmul(r_i, 0, d.neg_w_ei, v_e, product(n_i, n_e), true);
            backend.matmul(x, 0, d.f, v_e, product(m, n_e), true);
            backend.matmul(r_e, 0, d.w_ie, v_i, product(n_e, n_i), false);
            backend.matmul(r_i, 0, d.neg_w_ii, v_i, product(n_i, n_i), true);
            backend.projected_step(r_e, v_e, theta_e, step(n_e, p.tau_e));
            backend.projected_step(r_i, v_i, theta_i, step(n_i, p.tau_i));
        }
        Ok((
            backend.download(r_e, 0, b * n_e)?,
            backend.download(r_i, 0, b * n_i)?,
        ))
    })();
    scope.free(backend);
    result
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
