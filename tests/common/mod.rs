//! Shared by every test binary: one GPU device per binary, `backend_tests!` (a test written once,
//! run once per backend), the op comparison helper with named tolerances, a plain f64 loop oracle
//! that the CPU backend is checked against, and the `dale` command as a user runs it.
#![allow(dead_code, unused_macros)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use dale::backend::balance::{
    Aggregate, Alpha, CostFlows, Costs, HStep, HUpdate, TaskTransform, Weights, LOG_ZERO,
};
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::{GpuBackend, GpuContext};
use dale::backend::linalg::{Axis, Layout, MatmulShape, Reduce, ReduceOp};
use dale::backend::rate::EulerStep;
use dale::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The GPU device of this test binary: any adapter, software ones included (lavapipe in CI).
/// Without one the test is skipped with a printed reason, except under DALE_REQUIRE_GPU=1,
/// where it fails.
pub fn gpu() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| {
        any_gpu().unwrap_or_else(|e| panic!("a GPU adapter exists but could not be opened: {e}"))
    });
    if ctx.is_none() {
        if std::env::var("DALE_REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("DALE_REQUIRE_GPU=1 but wgpu finds no GPU adapter (install mesa-vulkan-drivers for lavapipe)");
        }
        eprintln!("skipped: no GPU adapter (set DALE_REQUIRE_GPU=1 to make this a failure)");
    }
    ctx.clone()
}

pub fn gpu_backend() -> Option<GpuBackend> {
    gpu().map(GpuBackend::new)
}

/// The backend a test of `backend_tests!` runs on.
#[derive(Clone)]
pub enum Side {
    /// The CPU backend, held to the f64 oracle (or to the paper's math).
    Cpu,
    /// The GPU adapter of this binary, held to the CPU backend.
    Gpu(Arc<GpuContext>),
}

impl Side {
    /// A fresh backend of this side.
    pub fn backend(&self) -> Box<dyn Backend> {
        match self {
            Side::Cpu => Box::new(CpuBackend::new()),
            Side::Gpu(ctx) => Box::new(GpuBackend::new(ctx.clone())),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Side::Gpu(_))
    }

    /// The `--backend` name of this side.
    pub fn kind(&self) -> String {
        self.backend().info().kind
    }
}

/// Writes each test once, as `fn name(side: &Side) { ... }`, and yields a module `name` with one
/// test per backend: `name::cpu` and `name::gpu`. Without a GPU adapter `name::gpu` passes with a
/// printed reason, so that it shows as its own test; under DALE_REQUIRE_GPU=1 it fails.
macro_rules! backend_tests {
    ($(#[doc = $doc:literal])* fn $name:ident($side:ident: &Side) $body:block $($rest:tt)*) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($side: &common::Side) $body

            #[test]
            fn cpu() {
                body(&common::Side::Cpu)
            }

            #[test]
            fn gpu() {
                if let Some(ctx) = common::gpu() {
                    body(&common::Side::Gpu(ctx))
                }
            }
        }
        backend_tests!($($rest)*);
    };
    () => {};
}
#[allow(unused_imports)]
pub(crate) use backend_tests;

/// A tolerance and the numerical reason for it.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub rel: f64,
    pub why: &'static str,
}

/// f32 round-off of a K-term dot product, relative to the largest output: the sum order differs
/// between the tiled kernel and the GEMM crate, each term rounds at 2^-24 and random-sign errors
/// grow like sqrt(K); the factor 4 covers the spread of the error over all outputs.
pub fn dot_tol(k: usize) -> Tol {
    Tol {
        rel: 4.0 * f32::EPSILON as f64 * (k.max(1) as f64).sqrt(),
        why: "K-term f32 sum in another order: 4 eps sqrt(K)",
    }
}

/// Largest |got - want| relative to the largest |want|; NaN or Inf anywhere must match exactly.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: Tol) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs() as f64))
        .max(1e-30);
    let mut worst = (0.0f64, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !w.is_finite() || !g.is_finite() {
            assert!(
                g == w || (g.is_nan() && w.is_nan()),
                "{what}: at {i} got {g}, want {w}"
            );
            continue;
        }
        let err = (g as f64 - w as f64).abs() / scale;
        if err > worst.0 {
            worst = (err, i);
        }
    }
    assert!(
        worst.0 <= tol.rel,
        "{what}: relative error {:.3e} at index {} (got {}, want {}) exceeds {:.3e} ({})",
        worst.0,
        worst.1,
        got[worst.1],
        want[worst.1],
        tol.rel,
        tol.why
    );
}

/// Runs `op` on a fresh backend of `side` and returns its output: on the CPU side held to
/// `oracle()` (the f64 loops' result) where it gives one, on the GPU side held to the CPU
/// backend's output for the same op.
pub fn check_op(
    side: &Side,
    what: &str,
    tol: Tol,
    oracle: impl FnOnce() -> Option<Vec<f32>>,
    op: impl Fn(&mut dyn Backend) -> Vec<f32>,
) -> Vec<f32> {
    let out = op(side.backend().as_mut());
    match side {
        Side::Cpu => {
            if let Some(want) = oracle() {
                assert_close(&format!("{what}: CPU vs oracle"), &out, &want, tol);
            }
        }
        Side::Gpu(_) => {
            let cpu_out = op(&mut CpuBackend::new());
            assert_close(&format!("{what}: GPU vs CPU"), &out, &cpu_out, tol);
        }
    }
    out
}

/// The `dale` binary with `args`, as a user runs it (DALE_BACKEND unset).
pub fn dale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dale"))
        .args(args)
        .env_remove("DALE_BACKEND")
        .output()
        .expect("dale runs")
}

/// `dale` with `args`, which must succeed; its stderr is shown when it does not.
pub fn dale_ok(args: &[&str]) -> Output {
    let o = dale(args);
    assert!(o.status.success(), "dale {args:?}: {}", stderr(&o));
    o
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path of its own for this test binary and `name`, with nothing there.
pub fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dale-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

pub fn normal(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = Normal::new(0.0f32, 1.0).unwrap();
    (0..len).map(|_| d.sample(&mut rng)).collect()
}

/// The plain f64 loop oracle: the papers' formulas, no tiling, no threads.
pub mod oracle {
    use super::*;

    pub fn matmul(
        a: &[f32],
        a_offset: usize,
        w: &[f32],
        c0: &[f32],
        s: MatmulShape,
        accumulate: bool,
    ) -> Vec<f32> {
        let mut c = vec![0.0f32; s.c_len()];
        for g in 0..s.groups {
            let wg = if s.shared_w { 0 } else { g * s.cols * s.inner };
            for r in 0..s.rows {
                for k in 0..s.cols {
                    let mut acc = 0.0f64;
                    for n in 0..s.inner {
                        let (ai, wi) = match s.layout {
                            Layout::ABt => (r * s.inner + n, k * s.inner + n),
                            Layout::AB => (r * s.inner + n, n * s.cols + k),
                            Layout::AtB => (n * s.rows + r, n * s.cols + k),
                        };
                        acc += a[a_offset + g * s.rows * s.inner + ai] as f64 * w[wg + wi] as f64;
                    }
                    let at = (g * s.rows + r) * s.cols + k;
                    if accumulate {
                        acc += c0[at] as f64;
                    }
                    c[at] = acc as f32;
                }
            }
        }
        c
    }

    /// The noise element `index` in f64: the same integer hash as src/backend/rate/noise.rs (written
    /// again here from its definition), Box-Muller on the pair (2k, 2k + 1) in f64.
    pub fn gaussian(seed: u64, step: u32, index: u32) -> f64 {
        let mix = |mut x: u32| {
            x ^= x >> 16;
            x = x.wrapping_mul(0x7feb_352d);
            x ^= x >> 15;
            x = x.wrapping_mul(0x846c_a68b);
            x ^ (x >> 16)
        };
        let unit = |h: u32| ((h >> 8) + 1) as f64 / 16_777_216.0;
        let key = mix(mix(seed as u32) ^ mix((seed >> 32) as u32 ^ 0x9e37_79b9) ^ step);
        let pair = index / 2;
        let u1 = unit(mix(key ^ mix(pair.wrapping_mul(2))));
        let u2 = unit(mix(key ^ mix(pair.wrapping_mul(2).wrapping_add(1))));
        let angle = std::f64::consts::TAU * u2;
        (-2.0 * u1.ln()).sqrt()
            * if index % 2 == 0 {
                angle.cos()
            } else {
                angle.sin()
            }
    }

    /// Returns (x, r) after one Euler step.
    pub fn euler(x: &[f32], drive: &[f32], s: EulerStep) -> (Vec<f32>, Vec<f32>) {
        let mut xs = Vec::with_capacity(s.len);
        let mut rs = Vec::with_capacity(s.len);
        for i in 0..s.len {
            let noise = if s.noise_std != 0.0 {
                s.noise_std as f64 * gaussian(s.seed, s.step, i as u32)
            } else {
                0.0
            };
            let on_rates = s.noise_on == dale::backend::rate::NoiseOn::Rates;
            let v = x[i] as f64
                + s.leak as f64 * (-(x[i] as f64) + drive[i] as f64)
                + if on_rates { 0.0 } else { noise };
            let r = match s.phi {
                dale::backend::Phi::Linear => v,
                dale::backend::Phi::Relu => v.max(0.0),
                dale::backend::Phi::Tanh => v.tanh(),
            } + if on_rates { noise } else { 0.0 };
            xs.push(v as f32);
            rs.push(r as f32);
        }
        (xs, rs)
    }

    pub fn reduce(src: &[f32], r: Reduce) -> Vec<f32> {
        let value = |i: usize, j: usize| src[i * r.cols + j] as f64;
        let (outer, inner) = match r.axis {
            Axis::Rows => (r.rows, r.cols),
            Axis::Cols => (r.cols, r.rows),
        };
        (0..outer)
            .map(|o| {
                let mut acc = 0.0f64;
                for q in 0..inner {
                    let v = if r.axis == Axis::Rows {
                        value(o, q)
                    } else {
                        value(q, o)
                    };
                    acc = match r.op {
                        ReduceOp::Sum => acc + v,
                        ReduceOp::SumSquares => acc + v * v,
                        ReduceOp::MaxAbs if !v.is_finite() => f64::INFINITY,
                        ReduceOp::MaxAbs => acc.max(v.abs()),
                    };
                }
                (acc * r.scale as f64) as f32
            })
            .collect()
    }
}

/// The balancing ops of paper 001, straight from the formulas (eq. 4, 14, 17, 23), in f64.
pub mod balance_oracle {
    use super::*;

    pub fn costs(w: &[f32], alpha: &[f32], s: Costs) -> Vec<f32> {
        let per = s.rows * s.cols;
        (0..s.groups * per)
            .map(|i| {
                let (g, e) = (i / per, i % per);
                let a = match s.alpha {
                    Alpha::One => 1.0,
                    Alpha::PerColumn { shared } => {
                        alpha[if shared { 0 } else { g * s.cols } + e % s.cols] as f64
                    }
                    Alpha::Full { shared } => alpha[if shared { 0 } else { g * per } + e] as f64,
                };
                let w = w[i].abs() as f64 * s.weight_scale as f64;
                match s.log {
                    true if w > 0.0 && a > 0.0 => (a.ln() + s.p as f64 * w.ln()) as f32,
                    true => LOG_ZERO,
                    false => (a * w.powf(s.p as f64)) as f32,
                }
            })
            .collect()
    }

    /// [groups, 2n]: incoming costs of each neuron, then outgoing, self-synapses left out.
    pub fn cost_flows(c0: &[f32], scale: &[f32], s: CostFlows) -> Vec<f32> {
        let n = s.n;
        let mut out = vec![0.0f32; s.groups * 2 * n];
        for g in 0..s.groups {
            let c = |i: usize, j: usize| {
                c0[(g * n + i) * n + j] as f64 * scale[g * n + j] as f64 / scale[g * n + i] as f64
            };
            for k in 0..n {
                let (mut inc, mut outg) = (0.0f64, 0.0f64);
                for o in (0..n).filter(|&o| o != k) {
                    (inc, outg) = match s.aggregate {
                        Aggregate::Sum => (inc + c(k, o), outg + c(o, k)),
                        Aggregate::Max => (inc.max(c(k, o)), outg.max(c(o, k))),
                    };
                }
                out[g * 2 * n + k] = inc as f32;
                out[g * 2 * n + n + k] = outg as f32;
            }
        }
        out
    }

    /// Log space: [groups, 2n] of ln in_k and ln out_k, from ln c0 (LOG_ZERO: no synapse) and
    /// u = p h, by log-sum-exp in f64; LOG_ZERO where a side has no synapse.
    pub fn cost_flows_log(c0: &[f32], u: &[f32], s: CostFlows) -> Vec<f32> {
        let n = s.n;
        let mut out = vec![0.0f32; s.groups * 2 * n];
        let lse = |terms: Vec<f64>| {
            let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if m == f64::NEG_INFINITY {
                return LOG_ZERO;
            }
            (m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()) as f32
        };
        for g in 0..s.groups {
            let c = |i: usize, j: usize| {
                let v = c0[(g * n + i) * n + j];
                (v > 0.5 * LOG_ZERO).then(|| v as f64 + u[g * n + j] as f64 - u[g * n + i] as f64)
            };
            for k in 0..n {
                out[g * 2 * n + k] =
                    lse((0..n).filter(|&o| o != k).filter_map(|o| c(k, o)).collect());
                out[g * 2 * n + n + k] =
                    lse((0..n).filter(|&o| o != k).filter_map(|o| c(o, k)).collect());
            }
        }
        out
    }

    /// Log space: returns (h, u = p h, history [groups, 2] of ln ||g||^2 and ln sum in_k).
    pub fn h_update_log(flows: &[f32], h0: &[f32], s: HUpdate) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = s.n;
        let (mut h, mut u, mut hist) = (
            vec![0.0f32; s.groups * n],
            vec![0.0f32; s.groups * n],
            vec![0.0f32; 2 * s.groups],
        );
        let p = s.p as f64;
        for g in 0..s.groups {
            let f = |k: usize| flows[g * 2 * n + k] as f64;
            let is_zero = |v: f64| v <= 0.5 * LOG_ZERO as f64;
            let exp = |v: f64| if is_zero(v) { 0.0 } else { v.exp() };
            let mut hg: Vec<f64> = (0..n)
                .map(|k| {
                    let (inc, out) = (f(k), f(n + k));
                    let step = if is_zero(inc) || is_zero(out) {
                        0.0
                    } else {
                        (inc - out) / (4.0 * p)
                    };
                    h0[g * n + k] as f64 + step
                })
                .collect();
            let mean = hg.iter().sum::<f64>() / n as f64;
            hg.iter_mut().for_each(|v| *v -= mean);
            for k in 0..n {
                h[g * n + k] = hg[k] as f32;
                u[g * n + k] = (p * hg[k]) as f32;
            }
            let norm2: f64 = (0..n).map(|k| (exp(f(k)) - exp(f(n + k))).powi(2)).sum();
            hist[2 * g] = norm2.ln() as f32;
            hist[2 * g + 1] = (0..n).map(|k| exp(f(k))).sum::<f64>().ln() as f32;
        }
        (h, u, hist)
    }

    /// Returns (h, scale, history [groups, 2]).
    pub fn h_update(flows: &[f32], h0: &[f32], s: HUpdate) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = s.n;
        let (mut h, mut scale, mut hist) = (
            vec![0.0f32; s.groups * n],
            vec![0.0f32; s.groups * n],
            vec![0.0f32; 2 * s.groups],
        );
        for g in 0..s.groups {
            // The neurons that move: all but the anchor, which stays at h = 0.
            let moving: Vec<usize> = (0..n).filter(|&k| Some(k) != s.anchor).collect();
            let mut hg = vec![0.0f64; n];
            let count = moving.len().max(1) as f64;
            let d = |k: usize| flows[g * 2 * n + k] as f64 - flows[g * 2 * n + n + k] as f64;
            // With an anchor, Osborne solves g_k = nu, the mean g of the moving neurons: along
            // h_k, in e^(-p delta) - out e^(p delta) = nu, a quadratic in Y = e^(p delta) whose
            // positive root is taken here in its textbook form; the step is half of delta.
            let nu = match s.anchor {
                Some(_) => moving.iter().map(|&k| d(k)).sum::<f64>() / count,
                None => 0.0,
            };
            for &k in &moving {
                let (inc, out) = (flows[g * 2 * n + k] as f64, flows[g * 2 * n + n + k] as f64);
                let step = match s.step {
                    HStep::Flow { dt } => dt as f64 * (inc - out),
                    HStep::Osborne if nu != 0.0 => {
                        let y = if out > 0.0 {
                            (-nu + (nu * nu + 4.0 * inc * out).sqrt()) / (2.0 * out)
                        } else {
                            inc / nu
                        };
                        if y > 0.0 {
                            y.ln() / (2.0 * s.p as f64)
                        } else {
                            0.0
                        }
                    }
                    HStep::Osborne if inc == out => 0.0,
                    HStep::Osborne => (inc / out).ln() / (4.0 * s.p as f64),
                };
                hg[k] = h0[g * n + k] as f64 + step;
            }
            let mean = moving.iter().map(|&k| hg[k]).sum::<f64>() / count;
            moving.iter().for_each(|&k| hg[k] -= mean);
            for k in 0..n {
                h[g * n + k] = hg[k] as f32;
                scale[g * n + k] = (s.p as f64 * hg[k]).exp() as f32;
            }
            // ||g||^2, or with an anchor that of g projected on sum h = 0: sum (g_k - mean g)^2.
            hist[2 * g] = moving.iter().map(|&k| (d(k) - nu).powi(2)).sum::<f64>() as f32;
            hist[2 * g + 1] = (0..n).map(|k| flows[g * 2 * n + k] as f64).sum::<f64>() as f32;
        }
        (h, scale, hist)
    }

    pub fn task_transform(src: &[f32], h: &[f32], s: TaskTransform) -> Vec<f32> {
        let (rows, cols) = s.rows_cols();
        (0..s.len())
            .map(|i| {
                let (g, r, c) = (i / (rows * cols), (i / cols) % rows, i % cols);
                let hv = |k: usize| h[g * s.n + k] as f64;
                let e = match s.weights {
                    Weights::Recurrent => hv(c) - hv(r),
                    Weights::Input { .. } => -hv(r),
                    Weights::Output { .. } => hv(c),
                };
                (src[i] as f64 * e.exp()) as f32
            })
            .collect()
    }
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new()
}

/// Brette et al. (2007)'s CUBA neuron (benchmark 2), `networks` x `n` of them.
pub fn cuba(networks: usize, n: usize) -> dale::backend::spiking::Lif {
    dale::backend::spiking::Lif {
        networks,
        n,
        dt: 0.1,
        tau_m: 20.0,
        tau_e: 5.0,
        tau_i: 10.0,
        rest: -49.0,
        threshold: -50.0,
        reset: -60.0,
        refractory_steps: 50,
    }
}
