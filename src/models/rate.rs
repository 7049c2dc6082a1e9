//! Batched rate network of Stock, Harvey, Ocko & Ganguli (paper 001), eq. 1-2:
//!     tau dx/dt = -x + J phi(x) + W_in u(t) (+ sigma xi(t)),     y = W_out x,
//! integrated by forward Euler from x(0) = 0. The batch holds `networks` independent networks
//! (each its own J, W_in, W_out) times `trials` per network; state buffers are [batch, N] with
//! batch index = network * trials + trial. Uses the op families linalg and rate.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::backend::linalg::{Axis, Layout, LinalgOps, MatmulShape, Reduce, ReduceOp};
use crate::backend::rate::{gaussian_noise, EulerStep, NoiseOn, RateOps};
use crate::backend::{Backend, Buf, BufferOps, Phi, Scope};
use crate::error::DaleError;

/// Steps recorded into one submission: long enough to amortise a submit and a small readback,
/// short enough that per-chunk monitor buffers stay small.
pub const CHUNK_STEPS: usize = 256;

/// The network and its integration, with the papers' symbols.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateParams {
    /// Neurons per network.
    pub n: usize,
    /// Independent trials (input conditions, noise draws) per network.
    #[serde(default = "one")]
    pub trials: usize,
    /// Independent networks, each with its own J, W_in, W_out.
    #[serde(default = "one")]
    pub networks: usize,
    /// Membrane time constant tau.
    #[serde(default = "ten")]
    pub tau: f32,
    /// Euler step dt, in the units of tau.
    #[serde(default = "unit")]
    pub dt: f32,
    #[serde(default = "relu")]
    pub phi: Phi,
    /// Gain g of the random recurrent weights: J_ij ~ N(0, g^2 / N).
    #[serde(default = "gain")]
    pub g: f32,
    /// Input dimension M (W_in is N x M, W_in_ik ~ N(0, 1)).
    #[serde(default)]
    pub inputs: usize,
    /// Readout dimension K (W_out is K x N, W_out_kj ~ N(0, 1/N)).
    #[serde(default = "one")]
    pub outputs: usize,
    /// Amplitude sigma of white noise in tau dx/dt; each step adds N(0, (sigma sqrt(dt) / tau)^2).
    #[serde(default)]
    pub sigma: f32,
    /// u(t), given per step.
    #[serde(default)]
    pub input: Input,
}

fn one() -> usize {
    1
}
fn ten() -> f32 {
    10.0
}
fn unit() -> f32 {
    1.0
}
fn relu() -> Phi {
    Phi::Relu
}
fn gain() -> f32 {
    0.9
}

/// The input u(t) to every trial, as a function of the step.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Input {
    /// u = 0.
    #[default]
    None,
    /// u_m(t) = value[m] in every trial.
    Constant { value: Vec<f32> },
    /// u_m(t) = offset + amplitude sin(2 pi (t dt / period + m / M + trial / trials)): each
    /// channel and trial at its own phase, so that trials trace distinct trajectories.
    Sine {
        amplitude: f32,
        period: f32,
        #[serde(default)]
        offset: f32,
    },
    /// u_m(t) ~ N(mean, std^2), independent per step, trial and channel (counter-based, keyed by
    /// the scene seed).
    Gaussian { mean: f32, std: f32 },
}

impl RateParams {
    /// networks x trials; `validate` keeps both within u32, so the product fits a usize.
    pub fn batch(&self) -> usize {
        self.networks * self.trials
    }

    /// Checks every value against what the model allows; `at` is the JSON path of these params.
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        let err = |field: &str, msg: String| Err(DaleError::scene(format!("{at}.{field}"), msg));
        for (field, v) in [
            ("n", self.n),
            ("trials", self.trials),
            ("networks", self.networks),
            ("outputs", self.outputs),
        ] {
            if v == 0 {
                return err(field, format!("{field} = 0; allowed: an integer >= 1"));
            }
        }
        // Kernels index with u32.
        for (field, v) in [
            ("n", self.n),
            ("trials", self.trials),
            ("networks", self.networks),
            ("inputs", self.inputs),
            ("outputs", self.outputs),
        ] {
            if v > u32::MAX as usize {
                return err(
                    field,
                    format!("{field} = {v}; allowed: at most {}", u32::MAX),
                );
            }
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return err(
                "tau",
                format!("tau = {}; allowed: a finite number > 0", self.tau),
            );
        }
        if !(self.dt.is_finite() && self.dt > 0.0 && self.dt <= self.tau) {
            return err(
                "dt",
                format!(
                    "dt = {}; allowed: 0 < dt <= tau = {} (forward Euler)",
                    self.dt, self.tau
                ),
            );
        }
        if !(self.g.is_finite() && self.g >= 0.0) {
            return err(
                "g",
                format!("g = {}; allowed: a finite number >= 0", self.g),
            );
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return err(
                "sigma",
                format!("sigma = {}; allowed: a finite number >= 0", self.sigma),
            );
        }
        let m = self.inputs;
        match &self.input {
            Input::None => {}
            _ if m == 0 => {
                return err(
                    "inputs",
                    "inputs = 0 but an input is given; allowed: inputs >= 1".into(),
                )
            }
            Input::Constant { value } if value.len() != m => {
                return err(
                    "input.value",
                    format!(
                        "{} values given; allowed: exactly inputs = {m}",
                        value.len()
                    ),
                )
            }
            Input::Constant { value } if value.iter().any(|v| !v.is_finite()) => {
                return err(
                    "input.value",
                    "a value is not finite; allowed: finite numbers".into(),
                )
            }
            Input::Sine {
                period,
                amplitude,
                offset,
            } => {
                if !(period.is_finite() && *period > 0.0) {
                    return err(
                        "input.period",
                        format!("period = {period}; allowed: a finite number > 0"),
                    );
                }
                if !(amplitude.is_finite() && offset.is_finite()) {
                    return err(
                        "input.amplitude",
                        "amplitude and offset must be finite".into(),
                    );
                }
            }
            Input::Gaussian { mean, std } => {
                if !(std.is_finite() && *std >= 0.0 && mean.is_finite()) {
                    return err(
                        "input.std",
                        format!("mean = {mean}, std = {std}; allowed: finite, std >= 0"),
                    );
                }
            }
            Input::Constant { .. } => {}
        }
        Ok(())
    }

    /// Refuses, before anything is allocated, a size whose buffer would not fit `max_len` values;
    /// names the field and the largest value of it that fits with the others as given.
    pub fn check_fits(&self, at: &str, max_len: usize, backend: &str) -> Result<(), DaleError> {
        let (n, g, b) = (self.n, self.networks, self.batch());
        let too_large = |field: &str, value: usize, largest: usize, why: String| {
            Err(DaleError::TooLarge {
                path: format!("{at}.{field}"),
                value,
                largest,
                backend: backend.into(),
                why,
            })
        };
        if n.checked_mul(n)
            .and_then(|nn| nn.checked_mul(g))
            .is_none_or(|len| len > max_len)
        {
            let largest = ((max_len / g) as f64).sqrt().floor() as usize;
            return too_large(
                "n",
                n,
                largest,
                format!("J holds networks x n x n values, at most {max_len} in one buffer"),
            );
        }
        // n <= max_len / g now, so g * n cannot overflow; the products with b and with the
        // input or output count can.
        let beyond = |a: usize, c: usize| a.checked_mul(c).is_none_or(|len| len > max_len);
        if beyond(b, n) {
            return too_large(
                "trials",
                self.trials,
                max_len / (g * n),
                format!("the state holds networks x trials x n values, at most {max_len}"),
            );
        }
        if beyond(g * n, self.inputs.max(self.outputs)) {
            let field = if self.inputs >= self.outputs {
                "inputs"
            } else {
                "outputs"
            };
            let value = self.inputs.max(self.outputs);
            return too_large(
                field,
                value,
                max_len / (g * n),
                format!("W_in and W_out hold networks x n x {field} values, at most {max_len}"),
            );
        }
        Ok(())
    }

    /// The same scene at a size that runs in a moment (`dale run --smoke`).
    pub fn smoke(&mut self) {
        self.n = self.n.min(64);
        self.trials = self.trials.min(4);
        self.networks = self.networks.min(2);
    }

    fn input_at(&self, seed: u64, step: usize, trial: usize, network: usize, out: &mut [f32]) {
        let ms = self.inputs;
        match &self.input {
            Input::None => out.fill(0.0),
            Input::Constant { value } => out.copy_from_slice(value),
            Input::Sine {
                amplitude,
                period,
                offset,
            } => {
                for (c, o) in out.iter_mut().enumerate() {
                    let phase = step as f64 * self.dt as f64 / *period as f64
                        + c as f64 / ms as f64
                        + trial as f64 / self.trials as f64;
                    *o = offset + amplitude * (std::f64::consts::TAU * phase).sin() as f32;
                }
            }
            Input::Gaussian { mean, std } => {
                for (c, o) in out.iter_mut().enumerate() {
                    let index = ((network * self.trials + trial) * ms + c) as u32;
                    *o = mean + std * gaussian_noise(seed ^ INPUT_STREAM, step as u32, index);
                }
            }
        }
    }
}

/// Separates the input stream from the state-noise stream of the same seed.
const INPUT_STREAM: u64 = 0x5eed_0f_1a9u64;

/// Weights of every network, row-major: J [networks, N, N], W_in [networks, N, M],
/// W_out [networks, K, N].
#[derive(Clone, Debug)]
pub struct Weights {
    pub j: Vec<f32>,
    pub w_in: Vec<f32>,
    pub w_out: Vec<f32>,
}

impl Weights {
    /// J_ij ~ N(0, g^2/N), W_in ~ N(0, 1), W_out ~ N(0, 1/N), from a ChaCha stream of `seed`.
    pub fn random(p: &RateParams, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = p.n as f32;
        let mut draw = |len: usize, std: f32| -> Vec<f32> {
            let d = Normal::new(0.0f32, std).expect("std is finite and >= 0");
            (0..len).map(|_| d.sample(&mut rng)).collect()
        };
        let g = p.networks;
        Self {
            j: draw(g * p.n * p.n, p.g / n.sqrt()),
            w_in: draw(g * p.n * p.inputs, 1.0),
            w_out: draw(g * p.outputs * p.n, 1.0 / n.sqrt()),
        }
    }
}

/// What to record, and how often (every `every` steps, after the step).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    pub every: usize,
    /// Record only the first `trials` batch entries (all when absent).
    #[serde(default)]
    pub trials: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitors {
    /// The state x, every `every` steps.
    #[serde(default)]
    pub x: Option<Monitor>,
    /// The readout y = W_out x, every `every` steps.
    #[serde(default)]
    pub y: Option<Monitor>,
}

/// Values a run holds at once: on the backend (its buffers, `simulate`'s setup) and on the host
/// (the weights drawn or read before the upload, and the record: trajectories and per-step
/// series over all `steps`). None when a count overflows.
pub struct Footprint {
    pub backend: usize,
    pub host: usize,
}

impl Footprint {
    pub fn of(p: &RateParams, steps: usize, monitors: &Monitors) -> Option<Self> {
        let (n, b, m, k, g) = (p.n, p.batch(), p.inputs, p.outputs, p.networks);
        let mul = |a: usize, c: usize| a.checked_mul(c);
        let sum = |terms: &[Option<usize>]| {
            terms
                .iter()
                .try_fold(0usize, |acc, t| acc.checked_add((*t)?))
        };
        let weights = sum(&[mul(mul(g, n)?, n), mul(mul(g, n)?, m), mul(mul(g, k)?, n)]);
        // Samples per chunk on the backend, and over the run on the host, of one monitor.
        let monitor = |mon: &Option<Monitor>, width: usize| {
            let Some(mon) = mon else {
                return Some((0, 0));
            };
            let (every, trials) = (mon.every.max(1), mon.trials.unwrap_or(b).min(b));
            Some((
                mul(mul(CHUNK_STEPS.div_ceil(every), trials)?, width)?,
                mul(mul(steps / every, trials)?, width)?,
            ))
        };
        let (x_chunk, x_run) = monitor(&monitors.x, n)?;
        let (y_chunk, y_run) = monitor(&monitors.y, k)?;
        let backend = sum(&[
            mul(3 * b, n),
            weights,
            mul(CHUNK_STEPS * b, m),
            mul(b, k),
            mul(2 * CHUNK_STEPS, b),
            Some(x_chunk),
            Some(y_chunk),
        ])?;
        // Population rate and max |x| per step and trial, and the final state.
        let host = sum(&[
            weights,
            Some(x_run),
            Some(y_run),
            mul(mul(2, steps)?, b),
            mul(b, n),
        ])?;
        Some(Self { backend, host })
    }
}

/// A run's record. Samples are taken after steps `every`, 2 `every`, ...; the per-step series
/// hold one row per step completed.
#[derive(Clone, Debug, Default)]
pub struct Trajectory {
    pub steps_done: usize,
    /// [samples, x_trials, N]
    pub x: Vec<f32>,
    pub x_trials: usize,
    pub x_steps: Vec<usize>,
    /// [samples, y_trials, K]
    pub y: Vec<f32>,
    pub y_trials: usize,
    pub y_steps: Vec<usize>,
    /// Mean of phi(x) over neurons, [steps, batch].
    pub population_rate: Vec<f32>,
    /// max_i |x_i|, [steps, batch].
    pub max_abs_x: Vec<f32>,
    /// State at the end of a run that finished, [batch, N]; empty after divergence.
    pub x_final: Vec<f32>,
}

struct Bufs {
    x: Buf<f32>,
    r: Buf<f32>,
    drive: Buf<f32>,
    j: Buf<f32>,
    w_in: Buf<f32>,
    w_out: Buf<f32>,
    u: Buf<f32>,
    y: Buf<f32>,
    pop: Buf<f32>,
    health: Buf<f32>,
    x_mon: Buf<f32>,
    y_mon: Buf<f32>,
}

/// Runs `steps` Euler steps. `progress` is told the steps done after each chunk. On divergence
/// the trajectory up to the last finite step comes back inside the error's companion. The run's
/// buffers are freed when it returns.
pub fn simulate(
    backend: &mut dyn Backend,
    p: &RateParams,
    w: &Weights,
    seed: u64,
    steps: usize,
    monitors: &Monitors,
    progress: &mut dyn FnMut(usize),
) -> Result<Trajectory, (Trajectory, DaleError)> {
    let mut scope = Scope::new();
    let result = simulate_in(backend, &mut scope, p, w, seed, steps, monitors, progress);
    scope.free(backend);
    result
}

#[allow(clippy::too_many_arguments)]
fn simulate_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    p: &RateParams,
    w: &Weights,
    seed: u64,
    steps: usize,
    monitors: &Monitors,
    progress: &mut dyn FnMut(usize),
) -> Result<Trajectory, (Trajectory, DaleError)> {
    let (n, b, m, k, g, r) = (p.n, p.batch(), p.inputs, p.outputs, p.networks, p.trials);
    let x_trials = monitors
        .x
        .as_ref()
        .map(|mon| mon.trials.unwrap_or(b).min(b))
        .unwrap_or(0);
    let y_trials = monitors
        .y
        .as_ref()
        .map(|mon| mon.trials.unwrap_or(b).min(b))
        .unwrap_or(0);
    let every = |mon: &Option<Monitor>| mon.as_ref().map(|mm| mm.every.max(1));
    let (x_every, y_every) = (every(&monitors.x), every(&monitors.y));
    let samples_per_chunk = |e: Option<usize>| e.map(|e| CHUNK_STEPS.div_ceil(e)).unwrap_or(0);

    let mut traj = Trajectory {
        x_trials,
        y_trials,
        ..Default::default()
    };
    let setup = (|| -> Result<Bufs, DaleError> {
        let bufs = Bufs {
            x: scope.alloc(backend, "x", b * n)?,
            r: scope.alloc(backend, "r = phi(x)", b * n)?,
            drive: scope.alloc(backend, "drive", b * n)?,
            j: scope.alloc(backend, "J", g * n * n)?,
            w_in: scope.alloc(backend, "W_in", g * n * m)?,
            w_out: scope.alloc(backend, "W_out", g * k * n)?,
            u: scope.alloc(backend, "u", CHUNK_STEPS * b * m)?,
            y: scope.alloc(backend, "y", b * k)?,
            pop: scope.alloc(backend, "population rate", CHUNK_STEPS * b)?,
            health: scope.alloc(backend, "max |x|", CHUNK_STEPS * b)?,
            x_mon: scope.alloc(
                backend,
                "x monitor",
                samples_per_chunk(x_every) * x_trials * n,
            )?,
            y_mon: scope.alloc(
                backend,
                "y monitor",
                samples_per_chunk(y_every) * y_trials * k,
            )?,
        };
        backend.upload(bufs.j, 0, &w.j)?;
        backend.upload(bufs.w_in, 0, &w.w_in)?;
        backend.upload(bufs.w_out, 0, &w.w_out)?;
        // x(0) = 0, so r(0) = phi(0) = 0 for every phi offered: fresh buffers are already zero.
        Ok(bufs)
    })();
    let bufs = match setup {
        Ok(bufs) => bufs,
        Err(e) => return Err((traj, e)),
    };

    let leak = p.dt / p.tau;
    let noise_std = p.sigma * p.dt.sqrt() / p.tau;
    let recurrent = MatmulShape {
        groups: g,
        rows: r,
        inner: n,
        cols: n,
        shared_w: false,
        layout: Layout::ABt,
    };
    let feedforward = MatmulShape {
        groups: g,
        rows: r,
        inner: m,
        cols: n,
        shared_w: false,
        layout: Layout::ABt,
    };
    let readout = MatmulShape {
        groups: g,
        rows: r,
        inner: n,
        cols: k,
        shared_w: false,
        layout: Layout::ABt,
    };
    let per_trial = |op| Reduce {
        rows: b,
        cols: n,
        axis: Axis::Rows,
        op,
        scale: if op == ReduceOp::Sum {
            1.0 / n as f32
        } else {
            1.0
        },
    };
    let mut u = vec![0.0f32; CHUNK_STEPS * b * m];

    let mut t0 = 0;
    while t0 < steps {
        let len = CHUNK_STEPS.min(steps - t0);
        let run_chunk = |backend: &mut dyn Backend,
                         u: &mut Vec<f32>|
         -> Result<(Vec<usize>, Vec<usize>), DaleError> {
            if m > 0 {
                for s in 0..len {
                    for batch in 0..b {
                        let at = (s * b + batch) * m;
                        p.input_at(seed, t0 + s, batch % r, batch / r, &mut u[at..at + m]);
                    }
                }
                backend.upload(bufs.u, 0, &u[..len * b * m])?;
            }
            let (mut xs, mut ys) = (
                Vec::with_capacity(samples_per_chunk(x_every)),
                Vec::with_capacity(samples_per_chunk(y_every)),
            );
            for s in 0..len {
                let t = t0 + s;
                backend.matmul(bufs.r, 0, bufs.j, bufs.drive, recurrent, false);
                if m > 0 {
                    backend.matmul(bufs.u, s * b * m, bufs.w_in, bufs.drive, feedforward, true);
                }
                backend.euler_step(
                    bufs.x,
                    bufs.r,
                    bufs.drive,
                    EulerStep {
                        len: b * n,
                        leak,
                        phi: p.phi,
                        noise_std,
                        seed,
                        step: t as u32,
                        noise_on: NoiseOn::State,
                    },
                );
                backend.reduce(bufs.r, bufs.pop, s * b, per_trial(ReduceOp::Sum));
                backend.reduce(bufs.x, bufs.health, s * b, per_trial(ReduceOp::MaxAbs));
                if x_every.is_some_and(|e| (t + 1) % e == 0) {
                    backend.copy(bufs.x, 0, bufs.x_mon, xs.len() * x_trials * n, x_trials * n);
                    xs.push(t + 1);
                }
                if y_every.is_some_and(|e| (t + 1) % e == 0) {
                    backend.matmul(bufs.x, 0, bufs.w_out, bufs.y, readout, false);
                    backend.copy(bufs.y, 0, bufs.y_mon, ys.len() * y_trials * k, y_trials * k);
                    ys.push(t + 1);
                }
            }
            Ok((xs, ys))
        };
        let read = (|| -> Result<_, DaleError> {
            let (xs, ys) = run_chunk(backend, &mut u)?;
            let pop = backend.download(bufs.pop, 0, len * b)?;
            let health = backend.download(bufs.health, 0, len * b)?;
            let x_mon = backend.download(bufs.x_mon, 0, xs.len() * x_trials * n)?;
            let y_mon = backend.download(bufs.y_mon, 0, ys.len() * y_trials * k)?;
            Ok((xs, ys, pop, health, x_mon, y_mon))
        })();
        let (xs, ys, pop, health, x_mon, y_mon) = match read {
            Ok(v) => v,
            Err(e) => return Err((traj, e)),
        };
        // The first step whose state is not finite ends the run; keep everything before it.
        let bad = health.iter().position(|v| !v.is_finite());
        let good_steps = bad.map(|i| i / b).unwrap_or(len);
        traj.population_rate
            .extend_from_slice(&pop[..good_steps * b]);
        traj.max_abs_x.extend_from_slice(&health[..good_steps * b]);
        let keep = |steps: &[usize]| steps.iter().take_while(|&&s| s <= t0 + good_steps).count();
        let (kx, ky) = (keep(&xs), keep(&ys));
        traj.x.extend_from_slice(&x_mon[..kx * x_trials * n]);
        traj.x_steps.extend_from_slice(&xs[..kx]);
        traj.y.extend_from_slice(&y_mon[..ky * y_trials * k]);
        traj.y_steps.extend_from_slice(&ys[..ky]);
        traj.steps_done = t0 + good_steps;
        if let Some(i) = bad {
            let step = t0 + i / b + 1;
            let trial = i % b;
            let err = DaleError::Diverged {
                step,
                quantity: format!(
                    "x (the rate network state) of batch entry {trial} (network {}, trial {})",
                    trial / r,
                    trial % r
                ),
                value: health[i],
                kept: traj.steps_done,
            };
            return Err((traj, err));
        }
        if t0 + len == steps {
            match backend.download(bufs.x, 0, b * n) {
                Ok(x) => traj.x_final = x,
                Err(e) => return Err((traj, e)),
            }
        }
        t0 += len;
        progress(t0);
    }
    Ok(traj)
}
