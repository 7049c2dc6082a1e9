//! Training ops of the rate network by gradient descent through time (BPTT): the adjoint of one
//! Euler step, output errors, and a gradient-descent step with an l2 penalty.
//! Kernels: shaders/train.wgsl; CPU twins: cpu.rs.

mod cpu;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op, Phi};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = ("train.wgsl", include_str!("../../../shaders/train.wgsl"));
/// Threads of a 1-D workgroup.
const WG: usize = 256;

/// One step of the rate network's backward pass through time: the adjoint of `EulerStep`
/// (without noise). With back = delta_{t+1} J (a matmul, layout AB) and readout = the output
/// error's share e_t W_out:
///   delta[out + i] = (1 - leak) delta[next + i] + leak phi'(x[x + i]) back[i] + readout[readout + i]
/// for i < len. Offsets are in values, into the buffers that hold every time step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EulerBackward {
    pub len: usize,
    pub leak: f32,
    pub phi: Phi,
    pub next: usize,
    pub out: usize,
    pub x: usize,
    pub readout: usize,
}

/// Gradient descent on loss + l2 sum w^2 over w[offset..offset + len]:
/// w -= lr (grad_scale grad + 2 l2 w). `grad_scale` carries a factor the gradient's product left
/// out (dt / tau for the recurrent and input weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub offset: usize,
    pub len: usize,
    pub lr: f32,
    pub grad_scale: f32,
    pub l2: f32,
}

/// The training ops, on any backend.
pub trait TrainOps: Backend {
    /// The adjoint of one Euler step, as `EulerBackward` describes.
    fn euler_backward(
        &mut self,
        delta: Buf<f32>,
        back: Buf<f32>,
        x: Buf<f32>,
        readout: Buf<f32>,
        spec: EulerBackward,
    ) {
        self.run(&EulerBackwardOp {
            delta,
            back,
            x,
            readout,
            spec,
        })
    }

    /// out = scale (a - b) over the first `len` values.
    fn scaled_difference(
        &mut self,
        a: Buf<f32>,
        b: Buf<f32>,
        out: Buf<f32>,
        len: usize,
        scale: f32,
    ) {
        self.run(&ScaledDifferenceOp {
            a,
            b,
            out,
            len,
            scale,
        })
    }

    /// One gradient-descent step, as `SgdStep` describes.
    fn sgd_step(&mut self, w: Buf<f32>, grad: Buf<f32>, spec: SgdStep) {
        self.run(&SgdStepOp { w, grad, spec })
    }
}

impl<B: Backend + ?Sized> TrainOps for B {}

params! {
    pub struct EulerBackwardParams {
        pub len: u32,
        /// 0 linear, 1 relu, 2 tanh.
        pub phi: u32,
        pub leak: f32,
        pub next: u32,
        pub out: u32,
        pub x: u32,
        pub readout: u32,
    }
}

params! {
    pub struct ScaledDifferenceParams {
        pub len: u32,
        pub scale: f32,
    }
}

params! {
    pub struct SgdStepParams {
        pub offset: u32,
        pub len: u32,
        pub lr: f32,
        pub grad_scale: f32,
        pub l2: f32,
    }
}

pub static EULER_BACKWARD: Kernel = Kernel::new::<EulerBackwardParams>(
    WGSL,
    "euler_backward",
    &[
        Binding::write::<f32>("delta"),
        Binding::read::<f32>("back"),
        Binding::read::<f32>("x"),
        Binding::read::<f32>("readout"),
    ],
);
pub static SCALED_DIFFERENCE: Kernel = Kernel::new::<ScaledDifferenceParams>(
    WGSL,
    "scaled_difference",
    &[
        Binding::read::<f32>("a"),
        Binding::read::<f32>("b"),
        Binding::write::<f32>("out"),
    ],
);
pub static SGD_STEP: Kernel = Kernel::new::<SgdStepParams>(
    WGSL,
    "sgd_step",
    &[Binding::write::<f32>("w"), Binding::read::<f32>("grad")],
);

pub static KERNELS: &[&Kernel] = &[&EULER_BACKWARD, &SCALED_DIFFERENCE, &SGD_STEP];

struct EulerBackwardOp {
    delta: Buf<f32>,
    back: Buf<f32>,
    x: Buf<f32>,
    readout: Buf<f32>,
    spec: EulerBackward,
}

impl Op for EulerBackwardOp {
    fn name(&self) -> &'static str {
        "euler_backward"
    }

    fn check(&self) {
        let s = &self.spec;
        check_range(
            self.delta.raw(),
            s.next,
            s.len,
            "euler_backward delta (next)",
        );
        check_range(self.delta.raw(), s.out, s.len, "euler_backward delta (out)");
        check_range(self.back.raw(), 0, s.len, "euler_backward back");
        check_range(self.x.raw(), s.x, s.len, "euler_backward x");
        check_range(
            self.readout.raw(),
            s.readout,
            s.len,
            "euler_backward readout",
        );
        assert!(
            s.out + s.len <= s.next || s.next + s.len <= s.out,
            "euler_backward: delta ranges overlap"
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut d = mem.take(self.delta);
        cpu::euler_backward(
            &mut d,
            mem.get(self.back),
            mem.get(self.x),
            mem.get(self.readout),
            self.spec,
        );
        mem.put(d);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.len == 0 {
            return Vec::new();
        }
        let params = EulerBackwardParams {
            len: s.len as u32,
            phi: s.phi.code(),
            leak: s.leak,
            next: s.next as u32,
            out: s.out as u32,
            x: s.x as u32,
            readout: s.readout as u32,
        };
        let bufs = [self.delta, self.back, self.x, self.readout].map(Buf::raw);
        vec![Dispatch::new(
            &EULER_BACKWARD,
            &bufs,
            params,
            spread(s.len.div_ceil(WG), limits),
        )]
    }
}

struct ScaledDifferenceOp {
    a: Buf<f32>,
    b: Buf<f32>,
    out: Buf<f32>,
    len: usize,
    scale: f32,
}

impl Op for ScaledDifferenceOp {
    fn name(&self) -> &'static str {
        "scaled_difference"
    }

    fn check(&self) {
        for buf in [self.a, self.b, self.out] {
            check_range(buf.raw(), 0, self.len, "scaled_difference");
        }
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut out = mem.take(self.out);
        let len = self.len;
        cpu::scaled_difference(
            &mem.get(self.a)[..len],
            &mem.get(self.b)[..len],
            &mut out[..len],
            self.scale,
        );
        mem.put(out);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        if self.len == 0 {
            return Vec::new();
        }
        let params = ScaledDifferenceParams {
            len: self.len as u32,
            scale: self.scale,
        };
        vec![Dispatch::new(
            &SCALED_DIFFERENCE,
            &[self.a.raw(), self.b.raw(), self.out.raw()],
            params,
            spread(self.len.div_ceil(WG), limits),
        )]
    }
}

struct SgdStepOp {
    w: Buf<f32>,
    grad: Buf<f32>,
    spec: SgdStep,
}

impl Op for SgdStepOp {
    fn name(&self) -> &'static str {
        "sgd_step"
    }

    fn check(&self) {
        let s = &self.spec;
        check_range(self.w.raw(), s.offset, s.len, "sgd_step w");
        check_range(self.grad.raw(), s.offset, s.len, "sgd_step grad");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut w = mem.take(self.w);
        cpu::sgd_step(&mut w, mem.get(self.grad), self.spec);
        mem.put(w);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.len == 0 {
            return Vec::new();
        }
        let params = SgdStepParams {
            offset: s.offset as u32,
            len: s.len as u32,
            lr: s.lr,
            grad_scale: s.grad_scale,
            l2: s.l2,
        };
        vec![Dispatch::new(
            &SGD_STEP,
            &[self.w.raw(), self.grad.raw()],
            params,
            spread(s.len.div_ceil(WG), limits),
        )]
    }
}
