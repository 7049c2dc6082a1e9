//! Spiking neurons (issue 18): leaky integrate-and-fire neurons with exponential current
//! synapses, many independent networks at once. `lif_step` integrates one step exactly (the
//! dynamics are linear between spikes), applies threshold, reset and the absolute refractory
//! period, and lists the neurons that spiked, per network, in ascending order on every backend;
//! `deliver_spikes` adds each listed neuron's row of synaptic weights (CSR, shared by the
//! networks) to the currents of its targets, in list order, so that every backend sums in the
//! same order; `deliver_spikes_dense` does the same from a dense [n, n] matrix, where most pairs
//! are connected or the weights came that way. Spikes of step t are delivered before step t + 1:
//! a delay of one step. `pack_spikes` gathers the lists of several steps into one array, so that
//! a read-back costs the spikes, not the lists' room. `threshold_spikes` is the spike rule of
//! networks that spike when a unit more of their rate improves an objective (paper 000's greedy
//! minimax network): every neuron above its threshold, or only the one furthest above.
//! Kernels: shaders/spiking.wgsl; CPU twins: cpu.rs.

mod cpu;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

/// The Poisson inputs' hash (shaders/hash.wgsl) comes first in the module.
const WGSL: (&str, &str) = (
    "spiking.wgsl",
    concat!(
        include_str!("../../../shaders/hash.wgsl"),
        include_str!("../../../shaders/spiking.wgsl")
    ),
);
/// Threads of a workgroup.
const WG: usize = 256;

/// `networks` independent networks of n LIF neurons, V [networks, n] and the currents
/// [2, networks, n] (I_e, then I_i):
///   tau_m dV/dt = -(V - rest) + I_e + I_i,   tau_e dI_e/dt = -I_e,   tau_i dI_i/dt = -I_i,
/// currents in units of voltage; a spike sets V to `reset` and holds it there for
/// `refractory_steps` steps while the currents go on decaying.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lif {
    pub networks: usize,
    pub n: usize,
    /// Step and time constants, ms.
    pub dt: f64,
    pub tau_m: f64,
    pub tau_e: f64,
    pub tau_i: f64,
    /// mV.
    pub rest: f32,
    pub threshold: f32,
    pub reset: f32,
    pub refractory_steps: u32,
}

impl Lif {
    pub fn len(&self) -> usize {
        self.networks * self.n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact one-step propagator: V' = rest + (V - rest) leak + I_e gain_e + I_i gain_i,
    /// I' = I decay, with gain = tau_s / (tau_s - tau_m) (decay_s - leak), or dt / tau_m leak
    /// where the two time constants meet (its limit). In f64, then rounded once.
    pub fn propagator(&self) -> LifParams {
        let leak = (-self.dt / self.tau_m).exp();
        let decay = |tau: f64| (-self.dt / tau).exp();
        let gain = |tau: f64| {
            if (tau - self.tau_m).abs() <= 1e-9 * self.tau_m {
                self.dt / self.tau_m * leak
            } else {
                tau / (tau - self.tau_m) * (decay(tau) - leak)
            }
        };
        LifParams {
            neurons: self.n as u32,
            len: self.len() as u32,
            leak: leak as f32,
            decay_e: decay(self.tau_e) as f32,
            decay_i: decay(self.tau_i) as f32,
            gain_e: gain(self.tau_e) as f32,
            gain_i: gain(self.tau_i) as f32,
            rest: self.rest,
            threshold: self.threshold,
            reset: self.reset,
            refractory_steps: self.refractory_steps,
            slot: 0,
        }
    }
}

/// The spiking ops, on any backend.
pub trait SpikingOps: Backend {
    /// One exact step of every neuron (`Lif`), then: V >= threshold (and not refractory) is a
    /// spike, V <- reset, refractory <- refractory_steps. Network b's spikes are written as
    /// neuron indices, ascending, to spikes[(slot networks + b) n ..], counts[slot networks + b]
    /// of them: `slot` picks the step's place in buffers that hold several steps' lists.
    /// `refractory` holds the steps each neuron has still to sit out.
    #[allow(clippy::too_many_arguments)]
    fn lif_step(
        &mut self,
        v: Buf<f32>,
        currents: Buf<f32>,
        refractory: Buf<u32>,
        spikes: Buf<u32>,
        counts: Buf<u32>,
        slot: usize,
        lif: Lif,
    ) {
        self.run(&LifStep {
            v,
            currents,
            refractory,
            spikes,
            counts,
            slot,
            lif,
        })
    }

    /// For each network b and each spike j of its list in `slot` (as lif_step wrote it), in
    /// order, for each synapse k of row j of the CSR weights (indptr [n + 1], indices and
    /// weights [nnz], the same for every network): currents[c, b, indices[k]] += weights[k],
    /// with c = 0 (I_e) for j < `excitatory`, 1 (I_i) otherwise. A row must not name a target
    /// twice.
    #[allow(clippy::too_many_arguments)]
    fn deliver_spikes(
        &mut self,
        spikes: Buf<u32>,
        counts: Buf<u32>,
        slot: usize,
        indptr: Buf<u32>,
        indices: Buf<u32>,
        weights: Buf<f32>,
        currents: Buf<f32>,
        synapses: Synapses,
    ) {
        self.run(&Deliver {
            spikes,
            counts,
            slot,
            indptr,
            indices,
            weights,
            currents,
            synapses,
        })
    }

    /// As `deliver_spikes`, from dense weights [n, n] (synapses.nnz = n^2): row j holds neuron
    /// j's weights onto every neuron (W[pre, post]), zero where there is no synapse.
    fn deliver_spikes_dense(
        &mut self,
        spikes: Buf<u32>,
        counts: Buf<u32>,
        slot: usize,
        weights: Buf<f32>,
        currents: Buf<f32>,
        synapses: Synapses,
    ) {
        self.run(&DeliverDense {
            spikes,
            counts,
            slot,
            weights,
            currents,
            synapses,
        })
    }

    /// `steps` steps, each `lif_step` into slot 0, 1, ... of the lists and counts, then its
    /// delivery through `weights` (sparse or dense, as `deliver_spikes` and
    /// `deliver_spikes_dense`): the same as calling them in turn, which the GPU does. The CPU
    /// twin takes each network through all the steps on one thread where there are enough
    /// networks, so that its state stays in that core's cache.
    #[allow(clippy::too_many_arguments)]
    fn lif_steps(
        &mut self,
        v: Buf<f32>,
        currents: Buf<f32>,
        refractory: Buf<u32>,
        lists: Buf<u32>,
        counts: Buf<u32>,
        weights: WeightBufs,
        steps: usize,
        lif: Lif,
        synapses: Synapses,
    ) {
        self.run(&Steps {
            v,
            currents,
            refractory,
            lists,
            counts,
            weights,
            steps,
            lif,
            synapses,
        })
    }

    /// The lists of `steps` slots x `networks` (as lif_step wrote them: list (s, b) at
    /// lists[(s networks + b) n ..], counts[s networks + b] long) one after another in
    /// `packed`, in slot then network order; offsets[p] is where list p starts, offsets[steps
    /// networks] the total.
    #[allow(clippy::too_many_arguments)]
    fn pack_spikes(
        &mut self,
        lists: Buf<u32>,
        counts: Buf<u32>,
        offsets: Buf<u32>,
        packed: Buf<u32>,
        steps: usize,
        networks: usize,
        n: usize,
    ) {
        self.run(&Pack {
            lists,
            counts,
            offsets,
            packed,
            steps,
            networks,
            n,
        })
    }

    /// For each trial b and neuron k, margin = V[b, k] - thresholds[k]. Under
    /// `SpikeRule::Synchronous` every neuron with margin > 0 spikes; under `OnePerStep` only the
    /// one with the largest margin > 0, the lowest index among equal ones. spikes[b, k] = 1 for
    /// a spike, else 0; traces[b, k] = traces[b, k] decay + spikes[b, k]; counts[b, k] += 1 for
    /// a spike. V, traces, spikes and counts are [trials, n].
    fn threshold_spikes(
        &mut self,
        v: Buf<f32>,
        thresholds: Buf<f32>,
        traces: Buf<f32>,
        spikes: Buf<f32>,
        counts: Buf<u32>,
        spec: Thresholds,
    ) {
        self.run(&ThresholdSpikes {
            v,
            thresholds,
            traces,
            spikes,
            counts,
            spec,
        })
    }

    /// Poisson spike trains through the traces' filter: input k of trial b spikes this step
    /// when u <= p (its rate times dt: probabilities[k], or probabilities[b m + k] when
    /// `per_trial`), u the uniform (`rate::noise::uniform`) of (seed, step, b m + k); with
    /// `Draw::Expected` it adds p instead (the train's mean: a constant current through the
    /// same filter). spikes[b, k] = what was added; traces[b, k] = traces[b, k] decay + spike.
    /// Traces and spikes are [trials, m].
    fn poisson_inputs(
        &mut self,
        probabilities: Buf<f32>,
        spikes: Buf<f32>,
        traces: Buf<f32>,
        spec: PoissonInputs,
    ) {
        self.run(&Poisson {
            probabilities,
            spikes,
            traces,
            spec,
        })
    }

    /// traces = traces decay + spikes over `len` values: a train seen through another time
    /// constant (a voltage that integrates every spike it receives with its own).
    fn filter_spikes(&mut self, spikes: Buf<f32>, traces: Buf<f32>, len: usize, decay: f32) {
        self.run(&FilterSpikes {
            spikes,
            traces,
            len,
            decay,
        })
    }
}

impl<B: Backend + ?Sized> SpikingOps for B {}

/// The shape of `poisson_inputs`: `trials` x `m` inputs, the traces' decay per step, the
/// counter of the draw (seed, step), whether every trial has its own probabilities, and the draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoissonInputs {
    pub trials: usize,
    pub m: usize,
    pub decay: f32,
    pub seed: u64,
    pub step: u32,
    pub per_trial: bool,
    pub draw: Draw,
}

/// What an input adds in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    /// A spike (1) with its probability.
    Poisson,
    /// Its probability: the expected spike.
    Expected,
}

params! {
    pub struct PoissonParams {
        pub len: u32,
        /// The probabilities' length: m, or len where every trial has its own.
        pub inputs: u32,
        pub decay: f32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub step: u32,
        pub expected: u32,
    }
}

pub static POISSON_INPUTS: Kernel = Kernel::new::<PoissonParams>(
    WGSL,
    "poisson_inputs",
    &[
        Binding::read::<f32>("probabilities"),
        Binding::write::<f32>("spikes"),
        Binding::write::<f32>("traces"),
    ],
);

struct Poisson {
    probabilities: Buf<f32>,
    spikes: Buf<f32>,
    traces: Buf<f32>,
    spec: PoissonInputs,
}

impl PoissonInputs {
    fn probabilities_len(&self) -> usize {
        if self.per_trial {
            self.trials * self.m
        } else {
            self.m
        }
    }
}

impl Op for Poisson {
    fn name(&self) -> &'static str {
        "poisson_inputs"
    }

    fn check(&self) {
        let s = self.spec;
        assert!(
            s.trials * s.m <= u32::MAX as usize,
            "poisson_inputs: {} x {} inputs exceed u32 indices",
            s.trials,
            s.m
        );
        check_range(
            self.probabilities.raw(),
            0,
            s.probabilities_len(),
            "poisson_inputs probabilities",
        );
        check_range(
            self.spikes.raw(),
            0,
            s.trials * s.m,
            "poisson_inputs spikes",
        );
        check_range(
            self.traces.raw(),
            0,
            s.trials * s.m,
            "poisson_inputs traces",
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut spikes, mut traces) = (mem.take(self.spikes), mem.take(self.traces));
        let probabilities = mem.get(self.probabilities);
        cpu::poisson_inputs(probabilities, &mut spikes, &mut traces, self.spec);
        mem.put(traces);
        mem.put(spikes);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        let len = s.trials * s.m;
        if len == 0 {
            return Vec::new();
        }
        vec![Dispatch::new(
            &POISSON_INPUTS,
            &[
                self.probabilities.raw(),
                self.spikes.raw(),
                self.traces.raw(),
            ],
            PoissonParams {
                len: len as u32,
                inputs: s.probabilities_len() as u32,
                decay: s.decay,
                seed_lo: s.seed as u32,
                seed_hi: (s.seed >> 32) as u32,
                step: s.step,
                expected: u32::from(s.draw == Draw::Expected),
            },
            spread(len.div_ceil(WG), limits),
        )]
    }
}

params! {
    pub struct FilterParams {
        pub len: u32,
        pub decay: f32,
    }
}

pub static FILTER_SPIKES: Kernel = Kernel::new::<FilterParams>(
    WGSL,
    "filter_spikes",
    &[
        Binding::read::<f32>("spikes"),
        Binding::write::<f32>("traces"),
    ],
);

struct FilterSpikes {
    spikes: Buf<f32>,
    traces: Buf<f32>,
    len: usize,
    decay: f32,
}

impl Op for FilterSpikes {
    fn name(&self) -> &'static str {
        "filter_spikes"
    }

    fn check(&self) {
        assert!(
            self.len <= u32::MAX as usize,
            "filter_spikes: {} values exceed u32 indices",
            self.len
        );
        check_range(self.spikes.raw(), 0, self.len, "filter_spikes spikes");
        check_range(self.traces.raw(), 0, self.len, "filter_spikes traces");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut traces = mem.take(self.traces);
        cpu::filter_spikes(mem.get(self.spikes), &mut traces[..self.len], self.decay);
        mem.put(traces);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        if self.len == 0 {
            return Vec::new();
        }
        vec![Dispatch::new(
            &FILTER_SPIKES,
            &[self.spikes.raw(), self.traces.raw()],
            FilterParams {
                len: self.len as u32,
                decay: self.decay,
            },
            spread(self.len.div_ceil(WG), limits),
        )]
    }
}

/// Which neurons above threshold spike in a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpikeRule {
    /// All of them, at most once each.
    Synchronous,
    /// The one furthest above; ties go to the lowest index.
    OnePerStep,
}

/// The shape of `threshold_spikes`: `trials` independent populations of n neurons, the traces'
/// decay per step (1 - dt / tau) and the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub trials: usize,
    pub n: usize,
    pub decay: f32,
    pub rule: SpikeRule,
}

params! {
    pub struct ThresholdParams {
        pub trials: u32,
        pub neurons: u32,
        pub decay: f32,
        pub one_per_step: u32,
    }
}

pub static THRESHOLD_SPIKES: Kernel = Kernel::new::<ThresholdParams>(
    WGSL,
    "threshold_spikes",
    &[
        Binding::read::<f32>("v"),
        Binding::read::<f32>("thresholds"),
        Binding::write::<f32>("traces"),
        Binding::write::<f32>("spikes"),
        Binding::write::<u32>("counts"),
    ],
);

struct ThresholdSpikes {
    v: Buf<f32>,
    thresholds: Buf<f32>,
    traces: Buf<f32>,
    spikes: Buf<f32>,
    counts: Buf<u32>,
    spec: Thresholds,
}

impl Op for ThresholdSpikes {
    fn name(&self) -> &'static str {
        "threshold_spikes"
    }

    fn check(&self) {
        let len = self.spec.trials * self.spec.n;
        check_range(self.v.raw(), 0, len, "threshold_spikes v");
        check_range(
            self.thresholds.raw(),
            0,
            self.spec.n,
            "threshold_spikes thresholds",
        );
        check_range(self.traces.raw(), 0, len, "threshold_spikes traces");
        check_range(self.spikes.raw(), 0, len, "threshold_spikes spikes");
        check_range(self.counts.raw(), 0, len, "threshold_spikes counts");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut traces, mut spikes) = (mem.take(self.traces), mem.take(self.spikes));
        let mut counts = mem.take(self.counts);
        cpu::threshold_spikes(
            mem.get(self.v),
            mem.get(self.thresholds),
            &mut traces,
            &mut spikes,
            &mut counts,
            self.spec,
        );
        mem.put(counts);
        mem.put(spikes);
        mem.put(traces);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.trials * s.n == 0 {
            return Vec::new();
        }
        // A workgroup per trial: the one-per-step rule needs the trial's largest margin first.
        vec![Dispatch::new(
            &THRESHOLD_SPIKES,
            &[
                self.v.raw(),
                self.thresholds.raw(),
                self.traces.raw(),
                self.spikes.raw(),
                self.counts.raw(),
            ],
            ThresholdParams {
                trials: s.trials as u32,
                neurons: s.n as u32,
                decay: s.decay,
                one_per_step: u32::from(s.rule == SpikeRule::OnePerStep),
            },
            spread(s.trials, limits),
        )]
    }
}

/// Synapses on a device: CSR rows for `deliver_spikes`, or a dense [n, n] matrix for
/// `deliver_spikes_dense`.
#[derive(Clone, Copy, Debug)]
pub enum WeightBufs {
    Sparse {
        indptr: Buf<u32>,
        indices: Buf<u32>,
        weights: Buf<f32>,
    },
    Dense(Buf<f32>),
}

/// The shape of `deliver_spikes`' weights: n presynaptic rows over n targets, nnz synapses, the
/// first `excitatory` rows excitatory; `networks` networks of n neurons share them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Synapses {
    pub networks: usize,
    pub n: usize,
    pub nnz: usize,
    pub excitatory: usize,
}

params! {
    pub struct DeliverParams {
        pub networks: u32,
        pub neurons: u32,
        pub excitatory: u32,
        pub slot: u32,
    }
}

params! {
    pub struct LifParams {
        /// Neurons per network, and of all networks.
        pub neurons: u32,
        pub len: u32,
        pub leak: f32,
        pub decay_e: f32,
        pub decay_i: f32,
        pub gain_e: f32,
        pub gain_i: f32,
        pub rest: f32,
        pub threshold: f32,
        pub reset: f32,
        pub refractory_steps: u32,
        /// The step's slot in the spike and count buffers.
        pub slot: u32,
    }
}

pub static LIF_STEP: Kernel = Kernel::new::<LifParams>(
    WGSL,
    "lif_step",
    &[
        Binding::write::<f32>("v"),
        Binding::write::<f32>("currents"),
        Binding::write::<u32>("refractory"),
        Binding::write::<u32>("spikes"),
    ],
);
pub static COMPACT_SPIKES: Kernel = Kernel::new::<LifParams>(
    WGSL,
    "compact_spikes",
    &[
        Binding::write::<u32>("flags"),
        Binding::write::<u32>("counts"),
    ],
);
pub static DELIVER_SPIKES: Kernel = Kernel::new::<DeliverParams>(
    WGSL,
    "deliver_spikes",
    &[
        Binding::read::<u32>("spikes"),
        Binding::read::<u32>("counts"),
        Binding::read::<u32>("indptr"),
        Binding::read::<u32>("indices"),
        Binding::read::<f32>("weights"),
        Binding::write::<f32>("currents"),
    ],
);

pub static DELIVER_SPIKES_DENSE: Kernel = Kernel::new::<DeliverParams>(
    WGSL,
    "deliver_spikes_dense",
    &[
        Binding::read::<u32>("spikes"),
        Binding::read::<u32>("counts"),
        Binding::read::<f32>("weights"),
        Binding::write::<f32>("currents"),
    ],
);

params! {
    pub struct PackParams {
        /// Lists (steps x networks), and their room (n).
        pub lists: u32,
        pub neurons: u32,
    }
}

pub static SCAN_COUNTS: Kernel = Kernel::new::<PackParams>(
    WGSL,
    "scan_counts",
    &[
        Binding::read::<u32>("counts"),
        Binding::write::<u32>("offsets"),
    ],
);
pub static PACK_SPIKES: Kernel = Kernel::new::<PackParams>(
    WGSL,
    "pack_spikes",
    &[
        Binding::read::<u32>("lists"),
        Binding::read::<u32>("counts"),
        Binding::read::<u32>("offsets"),
        Binding::write::<u32>("packed"),
    ],
);

pub static KERNELS: &[&Kernel] = &[
    &LIF_STEP,
    &COMPACT_SPIKES,
    &DELIVER_SPIKES,
    &DELIVER_SPIKES_DENSE,
    &SCAN_COUNTS,
    &PACK_SPIKES,
    &THRESHOLD_SPIKES,
    &POISSON_INPUTS,
    &FILTER_SPIKES,
];

struct LifStep {
    v: Buf<f32>,
    currents: Buf<f32>,
    refractory: Buf<u32>,
    spikes: Buf<u32>,
    counts: Buf<u32>,
    slot: usize,
    lif: Lif,
}

impl Op for LifStep {
    fn name(&self) -> &'static str {
        "lif_step"
    }

    fn check(&self) {
        let len = self.lif.len();
        check_range(self.v.raw(), 0, len, "lif_step v");
        check_range(self.currents.raw(), 0, 2 * len, "lif_step currents");
        check_range(self.refractory.raw(), 0, len, "lif_step refractory");
        let networks = self.lif.networks;
        check_range(self.spikes.raw(), self.slot * len, len, "lif_step spikes");
        check_range(
            self.counts.raw(),
            self.slot * networks,
            networks,
            "lif_step counts",
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut v, mut currents) = (mem.take(self.v), mem.take(self.currents));
        let (mut refractory, mut spikes, mut counts) = (
            mem.take(self.refractory),
            mem.take(self.spikes),
            mem.take(self.counts),
        );
        let (len, networks) = (self.lif.len(), self.lif.networks);
        cpu::lif_step(
            &mut v,
            &mut currents,
            &mut refractory,
            &mut spikes[self.slot * len..],
            &mut counts[self.slot * networks..],
            self.lif,
        );
        mem.put(counts);
        mem.put(spikes);
        mem.put(refractory);
        mem.put(currents);
        mem.put(v);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let len = self.lif.len();
        if len == 0 {
            return Vec::new();
        }
        let mut params = self.lif.propagator();
        params.slot = self.slot as u32;
        vec![
            // Each neuron flags its spike in `spikes`; a workgroup per network then turns the
            // flags into the ascending list, in place.
            Dispatch::new(
                &LIF_STEP,
                &[
                    self.v.raw(),
                    self.currents.raw(),
                    self.refractory.raw(),
                    self.spikes.raw(),
                ],
                params,
                spread(len.div_ceil(WG), limits),
            ),
            Dispatch::new(
                &COMPACT_SPIKES,
                &[self.spikes.raw(), self.counts.raw()],
                params,
                spread(self.lif.networks, limits),
            ),
        ]
    }
}

struct Deliver {
    spikes: Buf<u32>,
    counts: Buf<u32>,
    slot: usize,
    indptr: Buf<u32>,
    indices: Buf<u32>,
    weights: Buf<f32>,
    currents: Buf<f32>,
    synapses: Synapses,
}

impl Op for Deliver {
    fn name(&self) -> &'static str {
        "deliver_spikes"
    }

    fn check(&self) {
        let s = self.synapses;
        let len = s.networks * s.n;
        check_lists(self.spikes, self.counts, self.slot, s, "deliver_spikes");
        check_range(self.indptr.raw(), 0, s.n + 1, "deliver_spikes indptr");
        check_range(self.indices.raw(), 0, s.nnz, "deliver_spikes indices");
        check_range(self.weights.raw(), 0, s.nnz, "deliver_spikes weights");
        check_range(self.currents.raw(), 0, 2 * len, "deliver_spikes currents");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let s = self.synapses;
        let mut currents = mem.take(self.currents);
        cpu::deliver_spikes(
            cpu::Spikes {
                list: &mem.get(self.spikes)[self.slot * s.networks * s.n..],
                counts: &mem.get(self.counts)[self.slot * s.networks..],
            },
            cpu::Weights::Sparse(cpu::Csr {
                indptr: mem.get(self.indptr),
                indices: mem.get(self.indices),
                weights: mem.get(self.weights),
            }),
            &mut currents,
            self.synapses,
        );
        mem.put(currents);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.synapses;
        if s.networks * s.n == 0 {
            return Vec::new();
        }
        vec![Dispatch::new(
            &DELIVER_SPIKES,
            &[
                self.spikes.raw(),
                self.counts.raw(),
                self.indptr.raw(),
                self.indices.raw(),
                self.weights.raw(),
                self.currents.raw(),
            ],
            s.params(self.slot),
            spread(s.networks, limits),
        )]
    }
}

/// The step's spike lists and counts as `deliver_spikes` and `deliver_spikes_dense` read them.
fn check_lists(spikes: Buf<u32>, counts: Buf<u32>, slot: usize, s: Synapses, op: &str) {
    let len = s.networks * s.n;
    check_range(spikes.raw(), slot * len, len, &format!("{op} spikes"));
    check_range(
        counts.raw(),
        slot * s.networks,
        s.networks,
        &format!("{op} counts"),
    );
}

impl Synapses {
    fn params(&self, slot: usize) -> DeliverParams {
        DeliverParams {
            networks: self.networks as u32,
            neurons: self.n as u32,
            excitatory: self.excitatory as u32,
            slot: slot as u32,
        }
    }
}

struct DeliverDense {
    spikes: Buf<u32>,
    counts: Buf<u32>,
    slot: usize,
    weights: Buf<f32>,
    currents: Buf<f32>,
    synapses: Synapses,
}

impl Op for DeliverDense {
    fn name(&self) -> &'static str {
        "deliver_spikes_dense"
    }

    fn check(&self) {
        let s = self.synapses;
        assert_eq!(
            s.nnz,
            s.n * s.n,
            "deliver_spikes_dense: dense weights hold n^2 values"
        );
        check_lists(
            self.spikes,
            self.counts,
            self.slot,
            s,
            "deliver_spikes_dense",
        );
        check_range(self.weights.raw(), 0, s.nnz, "deliver_spikes_dense weights");
        check_range(
            self.currents.raw(),
            0,
            2 * s.networks * s.n,
            "deliver_spikes_dense currents",
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let s = self.synapses;
        let mut currents = mem.take(self.currents);
        cpu::deliver_spikes(
            cpu::Spikes {
                list: &mem.get(self.spikes)[self.slot * s.networks * s.n..],
                counts: &mem.get(self.counts)[self.slot * s.networks..],
            },
            cpu::Weights::Dense(mem.get(self.weights)),
            &mut currents,
            s,
        );
        mem.put(currents);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.synapses;
        let len = s.networks * s.n;
        if len == 0 {
            return Vec::new();
        }
        // A thread per target: it adds its column of the listed rows in list order.
        vec![Dispatch::new(
            &DELIVER_SPIKES_DENSE,
            &[
                self.spikes.raw(),
                self.counts.raw(),
                self.weights.raw(),
                self.currents.raw(),
            ],
            s.params(self.slot),
            spread(len.div_ceil(WG), limits),
        )]
    }
}

struct Pack {
    lists: Buf<u32>,
    counts: Buf<u32>,
    offsets: Buf<u32>,
    packed: Buf<u32>,
    steps: usize,
    networks: usize,
    n: usize,
}

impl Op for Pack {
    fn name(&self) -> &'static str {
        "pack_spikes"
    }

    fn check(&self) {
        let lists = self.steps * self.networks;
        assert!(
            lists * self.n <= u32::MAX as usize,
            "pack_spikes: {lists} lists of {} exceed u32 offsets",
            self.n
        );
        check_range(self.lists.raw(), 0, lists * self.n, "pack_spikes lists");
        check_range(self.counts.raw(), 0, lists, "pack_spikes counts");
        check_range(self.offsets.raw(), 0, lists + 1, "pack_spikes offsets");
        check_range(self.packed.raw(), 0, lists * self.n, "pack_spikes packed");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut offsets, mut packed) = (mem.take(self.offsets), mem.take(self.packed));
        cpu::pack_spikes(
            cpu::Spikes {
                list: mem.get(self.lists),
                counts: &mem.get(self.counts)[..self.steps * self.networks],
            },
            self.n,
            &mut offsets,
            &mut packed,
        );
        mem.put(packed);
        mem.put(offsets);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let lists = self.steps * self.networks;
        let params = PackParams {
            lists: lists as u32,
            neurons: self.n as u32,
        };
        let mut out = vec![Dispatch::new(
            &SCAN_COUNTS,
            &[self.counts.raw(), self.offsets.raw()],
            params,
            [1, 1, 1],
        )];
        if lists > 0 && self.n > 0 {
            // A workgroup per list copies it to its offset.
            out.push(Dispatch::new(
                &PACK_SPIKES,
                &[
                    self.lists.raw(),
                    self.counts.raw(),
                    self.offsets.raw(),
                    self.packed.raw(),
                ],
                params,
                spread(lists, limits),
            ));
        }
        out
    }
}

struct Steps {
    v: Buf<f32>,
    currents: Buf<f32>,
    refractory: Buf<u32>,
    lists: Buf<u32>,
    counts: Buf<u32>,
    weights: WeightBufs,
    steps: usize,
    lif: Lif,
    synapses: Synapses,
}

impl Steps {
    /// The ops of one step, `slot`.
    fn step(&self, slot: usize) -> [Box<dyn Op>; 2] {
        let lif = LifStep {
            v: self.v,
            currents: self.currents,
            refractory: self.refractory,
            spikes: self.lists,
            counts: self.counts,
            slot,
            lif: self.lif,
        };
        let deliver: Box<dyn Op> = match self.weights {
            WeightBufs::Sparse {
                indptr,
                indices,
                weights,
            } => Box::new(Deliver {
                spikes: self.lists,
                counts: self.counts,
                slot,
                indptr,
                indices,
                weights,
                currents: self.currents,
                synapses: self.synapses,
            }),
            WeightBufs::Dense(weights) => Box::new(DeliverDense {
                spikes: self.lists,
                counts: self.counts,
                slot,
                weights,
                currents: self.currents,
                synapses: self.synapses,
            }),
        };
        [Box::new(lif), deliver]
    }
}

impl Op for Steps {
    fn name(&self) -> &'static str {
        "lif_steps"
    }

    fn check(&self) {
        let s = self.synapses;
        assert!(
            s.networks == self.lif.networks && s.n == self.lif.n,
            "lif_steps: the synapses' networks x n ({} x {}) are not the neurons' ({} x {})",
            s.networks,
            s.n,
            self.lif.networks,
            self.lif.n
        );
        // The first and the last slot bound the rest.
        for slot in [0, self.steps.saturating_sub(1)] {
            for op in self.step(slot) {
                op.check();
            }
        }
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut v, mut currents) = (mem.take(self.v), mem.take(self.currents));
        let (mut refractory, mut lists, mut counts) = (
            mem.take(self.refractory),
            mem.take(self.lists),
            mem.take(self.counts),
        );
        let weights = match self.weights {
            WeightBufs::Sparse {
                indptr,
                indices,
                weights,
            } => cpu::Weights::Sparse(cpu::Csr {
                indptr: mem.get(indptr),
                indices: mem.get(indices),
                weights: mem.get(weights),
            }),
            WeightBufs::Dense(weights) => cpu::Weights::Dense(mem.get(weights)),
        };
        cpu::lif_steps(
            &mut v,
            &mut currents,
            &mut refractory,
            &mut lists,
            &mut counts,
            weights,
            self.steps,
            self.lif,
            self.synapses,
        );
        mem.put(counts);
        mem.put(lists);
        mem.put(refractory);
        mem.put(currents);
        mem.put(v);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        (0..self.steps)
            .flat_map(|slot| self.step(slot))
            .flat_map(|op| op.dispatches(limits))
            .collect()
    }
}
