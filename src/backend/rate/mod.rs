//! Rate dynamics: one forward-Euler step of the rate network (001 eq. 1) with counter-based
//! Gaussian noise, and a projected gradient step on non-negative rates (000's rate dynamics).
//! Kernels: shaders/rate.wgsl; CPU twins: cpu.rs; the noise: noise.rs.

mod cpu;
pub mod noise;

pub use noise::{fill_gaussian_noise, gaussian_noise};

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op, Phi};
use crate::backend::cpu::Memory;

/// The noise's hash (shaders/hash.wgsl) comes first in the module.
const WGSL: (&str, &str) = (
    "rate.wgsl",
    concat!(
        include_str!("../../../shaders/hash.wgsl"),
        include_str!("../../../shaders/rate.wgsl")
    ),
);
/// Threads of a 1-D workgroup.
const WG: usize = 256;

/// One forward-Euler step of tau dx/dt = -x + drive (+ sigma xi), then r = phi(x), over `len`
/// state values. `drive` already holds J phi(x) + W_in u for this step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EulerStep {
    pub len: usize,
    /// dt / tau.
    pub leak: f32,
    pub phi: Phi,
    /// Standard deviation of the noise added to x in one step: sigma sqrt(dt) / tau for white
    /// noise of amplitude sigma in tau dx/dt. Zero switches noise off.
    pub noise_std: f32,
    pub seed: u64,
    /// Global step index: the noise counter, so that chunking never changes the stream.
    pub step: u32,
    pub noise_on: NoiseOn,
}

/// Where hidden noise enters: the state x (the default; it then reaches the rates through phi
/// and the readout y = W_out x directly), or the rates r = phi(x) + noise, which reach the other
/// neurons through J and the readout only through them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseOn {
    #[default]
    State,
    Rates,
}

/// The rate-dynamics ops, on any backend.
pub trait RateOps: Backend {
    /// x <- x + leak (-x + drive) + noise;  r <- phi(x)  (noise on the state), or
    /// x <- x + leak (-x + drive);  r <- phi(x) + noise  (noise on the rates).
    fn euler_step(&mut self, x: Buf<f32>, r: Buf<f32>, drive: Buf<f32>, step: EulerStep) {
        self.run(&EulerStepOp { x, r, drive, step })
    }

    /// One step of projected gradient flow on rates that must stay non-negative:
    /// r <- max(r + rate (v - thresholds[k]), 0) for neuron k of each of `trials` rows of n
    /// (paper 000's rate dynamics: v the voltage, v - theta the objective's gradient).
    fn projected_step(
        &mut self,
        r: Buf<f32>,
        v: Buf<f32>,
        thresholds: Buf<f32>,
        step: ProjectedStep,
    ) {
        self.run(&ProjectedStepOp {
            r,
            v,
            thresholds,
            step,
        })
    }
}

/// The shape of `projected_step`: `trials` rows of n rates, and dt / tau.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProjectedStep {
    pub trials: usize,
    pub n: usize,
    pub rate: f32,
}

params! {
    pub struct ProjectedParams {
        pub len: u32,
        pub neurons: u32,
        pub rate: f32,
    }
}

pub static PROJECTED_STEP: Kernel = Kernel::new::<ProjectedParams>(
    WGSL,
    "projected_step",
    &[
        Binding::write::<f32>("r"),
        Binding::read::<f32>("v"),
        Binding::read::<f32>("thresholds"),
    ],
);

struct ProjectedStepOp {
    r: Buf<f32>,
    v: Buf<f32>,
    thresholds: Buf<f32>,
    step: ProjectedStep,
}

impl Op for ProjectedStepOp {
    fn name(&self) -> &'static str {
        "projected_step"
    }

    fn check(&self) {
        let s = self.step;
        let len = s.trials * s.n;
        assert!(
            len <= u32::MAX as usize,
            "projected_step: {len} rates exceed u32 indices"
        );
        check_range(self.r.raw(), 0, len, "projected_step r");
        check_range(self.v.raw(), 0, len, "projected_step v");
        check_range(self.thresholds.raw(), 0, s.n, "projected_step thresholds");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut r = mem.take(self.r);
        let s = self.step;
        cpu::projected_step(
            &mut r[..s.trials * s.n],
            mem.get(self.v),
            mem.get(self.thresholds),
            s,
        );
        mem.put(r);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.step;
        let len = s.trials * s.n;
        if len == 0 {
            return Vec::new();
        }
        vec![Dispatch::new(
            &PROJECTED_STEP,
            &[self.r.raw(), self.v.raw(), self.thresholds.raw()],
            ProjectedParams {
                len: len as u32,
                neurons: s.n as u32,
                rate: s.rate,
            },
            spread(len.div_ceil(WG), limits),
        )]
    }
}

impl<B: Backend + ?Sized> RateOps for B {}

params! {
    pub struct EulerStepParams {
        pub len: u32,
        pub leak: f32,
        /// 0 linear, 1 relu, 2 tanh.
        pub phi: u32,
        pub noise_std: f32,
        pub seed_lo: u32,
        pub seed_hi: u32,
        pub step: u32,
        /// 0 state, 1 rates.
        pub noise_on: u32,
    }
}

pub static EULER_STEP: Kernel = Kernel::new::<EulerStepParams>(
    WGSL,
    "euler_step",
    &[
        Binding::write::<f32>("x"),
        Binding::write::<f32>("r"),
        Binding::read::<f32>("drive"),
    ],
);

pub static KERNELS: &[&Kernel] = &[&EULER_STEP, &PROJECTED_STEP];

struct EulerStepOp {
    x: Buf<f32>,
    r: Buf<f32>,
    drive: Buf<f32>,
    step: EulerStep,
}

impl Op for EulerStepOp {
    fn name(&self) -> &'static str {
        "euler_step"
    }

    fn check(&self) {
        for b in [self.x, self.r, self.drive] {
            check_range(b.raw(), 0, self.step.len, "euler_step");
        }
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut x, mut r) = (mem.take(self.x), mem.take(self.r));
        let len = self.step.len;
        cpu::euler_step(
            &mut x[..len],
            &mut r[..len],
            &mem.get(self.drive)[..len],
            self.step,
        );
        mem.put(r);
        mem.put(x);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.step;
        if s.len == 0 {
            return Vec::new();
        }
        let params = EulerStepParams {
            len: s.len as u32,
            leak: s.leak,
            phi: s.phi.code(),
            noise_std: s.noise_std,
            seed_lo: s.seed as u32,
            seed_hi: (s.seed >> 32) as u32,
            step: s.step,
            noise_on: match s.noise_on {
                NoiseOn::State => 0,
                NoiseOn::Rates => 1,
            },
        };
        vec![Dispatch::new(
            &EULER_STEP,
            &[self.x.raw(), self.r.raw(), self.drive.raw()],
            params,
            spread(s.len.div_ceil(WG), limits),
        )]
    }
}
