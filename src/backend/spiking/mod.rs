//! Spiking neurons (issue 18): leaky integrate-and-fire neurons with exponential current
//! synapses, many independent networks at once. `lif_step` integrates one step exactly (the
//! dynamics are linear between spikes), applies threshold, reset and the absolute refractory
//! period, and lists the neurons that spiked, per network. Kernels: shaders/spiking.wgsl; CPU
//! twins: cpu.rs.

mod cpu;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = (
    "spiking.wgsl",
    include_str!("../../../shaders/spiking.wgsl"),
);
/// Threads of a workgroup.
const WG: usize = 256;

/// `networks` independent networks of n LIF neurons, state [networks, n]:
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
        }
    }
}

/// The spiking ops, on any backend.
pub trait SpikingOps: Backend {
    /// One exact step of every neuron (`Lif`), then: V >= threshold (and not refractory) is a
    /// spike, V <- reset, refractory <- refractory_steps. Network b's spikes are written as
    /// neuron indices to spikes[b n ..], counts[b] of them (ascending on the CPU; in any order on
    /// a GPU). `refractory` holds the steps each neuron has still to sit out.
    #[allow(clippy::too_many_arguments)]
    fn lif_step(
        &mut self,
        v: Buf<f32>,
        current_e: Buf<f32>,
        current_i: Buf<f32>,
        refractory: Buf<u32>,
        spikes: Buf<u32>,
        counts: Buf<u32>,
        lif: Lif,
    ) {
        self.run(&LifStep {
            v,
            current_e,
            current_i,
            refractory,
            spikes,
            counts,
            lif,
        })
    }
}

impl<B: Backend + ?Sized> SpikingOps for B {}

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
    }
}

pub static CLEAR_COUNTS: Kernel =
    Kernel::new::<LifParams>(WGSL, "clear_counts", &[Binding::write::<u32>("counts")]);
pub static LIF_STEP: Kernel = Kernel::new::<LifParams>(
    WGSL,
    "lif_step",
    &[
        Binding::write::<f32>("v"),
        Binding::write::<f32>("current_e"),
        Binding::write::<f32>("current_i"),
        Binding::write::<u32>("refractory"),
        Binding::write::<u32>("spikes"),
        Binding::write::<u32>("counts"),
    ],
);

pub static KERNELS: &[&Kernel] = &[&CLEAR_COUNTS, &LIF_STEP];

struct LifStep {
    v: Buf<f32>,
    current_e: Buf<f32>,
    current_i: Buf<f32>,
    refractory: Buf<u32>,
    spikes: Buf<u32>,
    counts: Buf<u32>,
    lif: Lif,
}

impl Op for LifStep {
    fn name(&self) -> &'static str {
        "lif_step"
    }

    fn check(&self) {
        let len = self.lif.len();
        for b in [self.v, self.current_e, self.current_i] {
            check_range(b.raw(), 0, len, "lif_step state");
        }
        check_range(self.refractory.raw(), 0, len, "lif_step refractory");
        check_range(self.spikes.raw(), 0, len, "lif_step spikes");
        check_range(self.counts.raw(), 0, self.lif.networks, "lif_step counts");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut v, mut e, mut i) = (
            mem.take(self.v),
            mem.take(self.current_e),
            mem.take(self.current_i),
        );
        let (mut refractory, mut spikes, mut counts) = (
            mem.take(self.refractory),
            mem.take(self.spikes),
            mem.take(self.counts),
        );
        cpu::lif_step(
            cpu::LifState {
                v: &mut v,
                current_e: &mut e,
                current_i: &mut i,
                refractory: &mut refractory,
            },
            &mut spikes,
            &mut counts,
            self.lif,
        );
        mem.put(counts);
        mem.put(spikes);
        mem.put(refractory);
        mem.put(i);
        mem.put(e);
        mem.put(v);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let len = self.lif.len();
        if len == 0 {
            return Vec::new();
        }
        let params = self.lif.propagator();
        vec![
            Dispatch::new(
                &CLEAR_COUNTS,
                &[self.counts.raw()],
                params,
                spread(self.lif.networks.div_ceil(WG), limits),
            ),
            Dispatch::new(
                &LIF_STEP,
                &[
                    self.v.raw(),
                    self.current_e.raw(),
                    self.current_i.raw(),
                    self.refractory.raw(),
                    self.spikes.raw(),
                    self.counts.raw(),
                ],
                params,
                spread(len.div_ceil(WG), limits),
            ),
        ]
    }
}
