//! Training the rate network (001 eq. 1-2) by gradient descent through time, on `Backend` ops:
//! the forward Euler steps record every state, the backward pass runs the adjoint of each step
//! (`euler_backward`), and the weight gradients are single products summed over all time steps
//! and trials (layout AtB). Nothing is read back inside an iteration.
//!
//! Discrete model, for t = 0..T-1, with x_0 = 0 and a = dt / tau:
//!   x_{t+1} = x_t + a (-x_t + J phi(x_t) + W_in u_t) (+ noise),   y_t = W_out x_t  (t = 1..T)
//!   L = mean over (t, b, k) of (y_t - z_t)^2 + lambda sum_ij J_ij^2
//! (Appendix D: squared error plus an l2 penalty on J. The appendix does not say how the squared
//! error is normalised; at its learning rate 0.003 the plain sum over 50 steps diverges in the
//! first iterations, so the error is the mean, as PyTorch's MSELoss computes it.)

use crate::backend::linalg::{Axis, Layout, LinalgOps, MatmulShape, Reduce, ReduceOp};
use crate::backend::rate::{EulerStep, NoiseOn, RateOps};
use crate::backend::train::{EulerBackward, SgdStep, TrainOps};
use crate::backend::{Backend, Buf, BufferOps, Phi, Scope};
use crate::error::DaleError;

/// Hidden noise of standard deviation `std` per step, on the state or on the rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HiddenNoise {
    pub std: f32,
    pub on: NoiseOn,
}

impl HiddenNoise {
    pub const NONE: HiddenNoise = HiddenNoise::on_state(0.0);

    pub const fn on_state(std: f32) -> Self {
        HiddenNoise {
            std,
            on: NoiseOn::State,
        }
    }
}

/// One network's weights: J [n, n], W_in [n, m], W_out [k, n], row-major.
#[derive(Clone, Debug)]
pub struct Net {
    pub n: usize,
    pub m: usize,
    pub k: usize,
    pub j: Vec<f32>,
    pub w_in: Vec<f32>,
    pub w_out: Vec<f32>,
}

/// A batch of trials: inputs u_t for t = 0..T-1, [T, B, m], and targets z_t for the outputs
/// y_t, t = 1..T, [T, B, k].
pub struct Trials<'a> {
    pub trials: usize,
    pub steps: usize,
    pub inputs: &'a [f32],
    pub targets: &'a [f32],
}

#[derive(Clone, Copy, Debug)]
pub struct Dynamics {
    /// dt / tau.
    pub leak: f32,
    pub phi: Phi,
}

/// The loss (without the l2 term) and its gradients with respect to J, W_in, W_out.
#[derive(Clone, Debug)]
pub struct Gradients {
    pub loss: f64,
    pub j: Vec<f32>,
    pub w_in: Vec<f32>,
    pub w_out: Vec<f32>,
}

/// Device buffers of one network and one batch shape; built once, reused every iteration, and
/// given back by `free`.
pub struct Trainer {
    scope: Scope,
    net: Net,
    dynamics: Dynamics,
    trials: usize,
    steps: usize,
    x: Buf<f32>,
    r: Buf<f32>,
    drive: Buf<f32>,
    zeros: Buf<f32>,
    pub j: Buf<f32>,
    pub w_in: Buf<f32>,
    pub w_out: Buf<f32>,
    u: Buf<f32>,
    z: Buf<f32>,
    xs: Buf<f32>,
    rs: Buf<f32>,
    y: Buf<f32>,
    e: Buf<f32>,
    s: Buf<f32>,
    d: Buf<f32>,
    back: Buf<f32>,
    grad_j: Buf<f32>,
    grad_in: Buf<f32>,
    grad_out: Buf<f32>,
    /// Per-iteration records: the loss at 2 i, free for the caller at 2 i + 1.
    pub history: Buf<f32>,
}

impl Trainer {
    pub fn new(
        be: &mut dyn Backend,
        net: &Net,
        dynamics: Dynamics,
        trials: usize,
        steps: usize,
        history_len: usize,
    ) -> Result<Self, DaleError> {
        let (n, m, k) = (net.n, net.m, net.k);
        let state = trials * n;
        let mut scope = Scope::new();
        let mut alloc = |label, len| scope.alloc(be, label, len);
        let t = Self {
            net: net.clone(),
            dynamics,
            trials,
            steps,
            x: alloc("x", state)?,
            r: alloc("r", state)?,
            drive: alloc("drive", state)?,
            zeros: alloc("zeros", state)?,
            j: alloc("J", n * n)?,
            w_in: alloc("W_in", n * m)?,
            w_out: alloc("W_out", k * n)?,
            u: alloc("inputs", steps * trials * m)?,
            z: alloc("targets", steps * trials * k)?,
            xs: alloc("x_1..x_T", steps * state)?,
            rs: alloc("r_0..r_T-1", steps * state)?,
            y: alloc("y", steps * trials * k)?,
            e: alloc("output errors", steps * trials * k)?,
            s: alloc("e W_out", steps * state)?,
            d: alloc("delta_1..delta_T", steps * state)?,
            back: alloc("delta J", state)?,
            grad_j: alloc("dL/dJ", n * n)?,
            grad_in: alloc("dL/dW_in", n * m)?,
            grad_out: alloc("dL/dW_out", k * n)?,
            history: alloc("training history", history_len.max(1) * 2)?,
            scope,
        };
        be.upload(t.j, 0, &net.j)?;
        be.upload(t.w_in, 0, &net.w_in)?;
        be.upload(t.w_out, 0, &net.w_out)?;
        Ok(t)
    }

    /// Gives the trainer's buffers back to the backend.
    pub fn free(self, be: &mut dyn Backend) {
        self.scope.free(be);
    }

    pub fn set_trials(&mut self, be: &mut dyn Backend, trials: &Trials) -> Result<(), DaleError> {
        assert!(
            trials.trials == self.trials && trials.steps == self.steps,
            "a Trainer keeps one batch shape"
        );
        be.upload(self.u, 0, trials.inputs)?;
        be.upload(self.z, 0, trials.targets)
    }

    fn shape(&self, rows: usize, inner: usize, cols: usize, layout: Layout) -> MatmulShape {
        MatmulShape {
            groups: 1,
            rows,
            inner,
            cols,
            shared_w: true,
            layout,
        }
    }

    /// Runs the T steps from x_0 = 0, recording x_1..x_T, r_0..r_{T-1} and y_1..y_T. Noise of
    /// `noise` enters the hidden dynamics (none for training).
    pub fn forward(&mut self, be: &mut dyn Backend, noise: HiddenNoise, seed: u64) {
        let (n, m, k, b) = (self.net.n, self.net.m, self.net.k, self.trials);
        let state = b * n;
        be.copy(self.zeros, 0, self.x, 0, state);
        be.copy(self.zeros, 0, self.r, 0, state);
        for t in 0..self.steps {
            be.copy(self.r, 0, self.rs, t * state, state);
            be.matmul(
                self.u,
                t * b * m,
                self.w_in,
                self.drive,
                self.shape(b, m, n, Layout::ABt),
                false,
            );
            be.matmul(
                self.r,
                0,
                self.j,
                self.drive,
                self.shape(b, n, n, Layout::ABt),
                true,
            );
            let step = EulerStep {
                len: state,
                leak: self.dynamics.leak,
                phi: self.dynamics.phi,
                noise_std: noise.std,
                noise_on: noise.on,
                seed,
                step: t as u32,
            };
            be.euler_step(self.x, self.r, self.drive, step);
            be.copy(self.x, 0, self.xs, t * state, state);
        }
        be.matmul(
            self.xs,
            0,
            self.w_out,
            self.y,
            self.shape(self.steps * b, n, k, Layout::ABt),
            false,
        );
    }

    /// Output errors e = dL/dy = (2/S)(y - z) over the S = T B k outputs, and the loss
    /// sum (y - z)^2 / S, written to history[at] as sum e^2 (`loss_from` scales by S / 4).
    fn errors(&mut self, be: &mut dyn Backend, at: usize) {
        let len = self.steps * self.trials * self.net.k;
        be.scaled_difference(self.y, self.z, self.e, len, 2.0 / len as f32);
        be.reduce(
            self.e,
            self.history,
            at,
            Reduce {
                rows: 1,
                cols: len,
                axis: Axis::Rows,
                op: ReduceOp::SumSquares,
                scale: 1.0,
            },
        );
    }

    /// The backward pass after `forward`: dL/dW_out, and dL/dJ, dL/dW_in without their factor
    /// a = dt / tau (SgdStep's grad_scale puts it back).
    pub fn backward(&mut self, be: &mut dyn Backend, at: usize) {
        self.errors(be, at);
        let (n, m, k, b, steps) = (self.net.n, self.net.m, self.net.k, self.trials, self.steps);
        let state = b * n;
        let rows_all = steps * b;
        be.matmul(
            self.e,
            0,
            self.w_out,
            self.s,
            self.shape(rows_all, k, n, Layout::AB),
            false,
        );
        be.matmul(
            self.e,
            0,
            self.xs,
            self.grad_out,
            self.shape(k, rows_all, n, Layout::AtB),
            false,
        );
        be.copy(
            self.s,
            (steps - 1) * state,
            self.d,
            (steps - 1) * state,
            state,
        );
        for t in (1..steps).rev() {
            // delta_t (slot t - 1) from delta_{t+1} (slot t); x_t is slot t - 1 of xs.
            be.matmul(
                self.d,
                t * state,
                self.j,
                self.back,
                self.shape(b, n, n, Layout::AB),
                false,
            );
            let spec = EulerBackward {
                len: state,
                leak: self.dynamics.leak,
                phi: self.dynamics.phi,
                next: t * state,
                out: (t - 1) * state,
                x: (t - 1) * state,
                readout: (t - 1) * state,
            };
            be.euler_backward(self.d, self.back, self.xs, self.s, spec);
        }
        // sum_t delta_{t+1}^T r_t and sum_t delta_{t+1}^T u_t over all steps and trials.
        be.matmul(
            self.d,
            0,
            self.rs,
            self.grad_j,
            self.shape(n, rows_all, n, Layout::AtB),
            false,
        );
        be.matmul(
            self.d,
            0,
            self.u,
            self.grad_in,
            self.shape(n, rows_all, m, Layout::AtB),
            false,
        );
    }

    /// One gradient-descent step on L + lambda sum J^2 with learning rate `lr`.
    pub fn step(&mut self, be: &mut dyn Backend, lr: f32, lambda: f32) {
        let (n, m, k) = (self.net.n, self.net.m, self.net.k);
        let a = self.dynamics.leak;
        be.sgd_step(
            self.j,
            self.grad_j,
            SgdStep {
                offset: 0,
                len: n * n,
                lr,
                grad_scale: a,
                l2: lambda,
            },
        );
        be.sgd_step(
            self.w_in,
            self.grad_in,
            SgdStep {
                offset: 0,
                len: n * m,
                lr,
                grad_scale: a,
                l2: 0.0,
            },
        );
        be.sgd_step(
            self.w_out,
            self.grad_out,
            SgdStep {
                offset: 0,
                len: k * n,
                lr,
                grad_scale: 1.0,
                l2: 0.0,
            },
        );
    }

    /// The loss recorded at history[at] by `backward`.
    pub fn loss_from(&self, recorded: f32) -> f64 {
        f64::from(recorded) * (self.steps * self.trials * self.net.k) as f64 / 4.0
    }

    /// The loss of the current weights on the trials set last, with hidden `noise`.
    pub fn loss(
        &mut self,
        be: &mut dyn Backend,
        noise: HiddenNoise,
        seed: u64,
    ) -> Result<f64, DaleError> {
        self.forward(be, noise, seed);
        self.errors(be, 0);
        let v = be.download(self.history, 0, 1)?;
        Ok(self.loss_from(v[0]))
    }

    /// States x_1..x_T of the last forward pass, [T, B, n].
    pub fn states(&self, be: &mut dyn Backend) -> Result<Vec<f32>, DaleError> {
        be.download(self.xs, 0, self.steps * self.trials * self.net.n)
    }

    pub fn weights(&self, be: &mut dyn Backend) -> Result<Net, DaleError> {
        Ok(Net {
            j: be.download(self.j, 0, self.net.n * self.net.n)?,
            w_in: be.download(self.w_in, 0, self.net.n * self.net.m)?,
            w_out: be.download(self.w_out, 0, self.net.k * self.net.n)?,
            ..self.net.clone()
        })
    }

    /// The loss and its full gradients (factors included) at the current weights.
    pub fn gradients(&mut self, be: &mut dyn Backend) -> Result<Gradients, DaleError> {
        self.forward(be, HiddenNoise::NONE, 0);
        self.backward(be, 0);
        let a = self.dynamics.leak;
        let scaled = |v: Vec<f32>| v.into_iter().map(|g| g * a).collect();
        let loss = self.loss_from(be.download(self.history, 0, 1)?[0]);
        Ok(Gradients {
            loss,
            j: scaled(be.download(self.grad_j, 0, self.net.n * self.net.n)?),
            w_in: scaled(be.download(self.grad_in, 0, self.net.n * self.net.m)?),
            w_out: be.download(self.grad_out, 0, self.net.k * self.net.n)?,
        })
    }
}
