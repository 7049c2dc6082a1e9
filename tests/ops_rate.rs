//! The rate family (shaders/rate.wgsl, src/backend/rate/): the Euler step on each backend on
//! awkward sizes, against the f64 oracle (CPU) and the CPU backend (GPU); the counter-based noise;
//! and many dependent steps in one submission.

mod common;

use common::{backend_tests, check_op, normal, oracle, Tol};
use dale::backend::rate::{
    fill_gaussian_noise, gaussian_noise, EulerStep, NoiseOn, ProjectedStep, RateOps,
};
use dale::backend::{Backend, BufferOps, Phi};

const NS: [usize; 4] = [1, 63, 257, 4099];

const BS: [usize; 2] = [1, 33];

fn run_euler(be: &mut dyn Backend, x0: &[f32], drive: &[f32], s: EulerStep) -> Vec<f32> {
    let x = be.alloc_from("x", x0).unwrap();
    let r = be.alloc("r", s.len).unwrap();
    let d = be.alloc_from("drive", drive).unwrap();
    be.euler_step(x, r, d, s);
    let mut out = be.download(x, 0, s.len).unwrap();
    out.extend(be.download(r, 0, s.len).unwrap());
    out
}

/// One Euler step rounds a handful of times; the noise goes through f32 log, sqrt and cos,
/// whose GPU implementations may differ from Rust's by a few ulp of values up to ~5.
const EULER_TOL: Tol = Tol {
    rel: 1e-5,
    why: "a few f32 roundings, GPU log/cos within a few ulp",
};

backend_tests! {
    fn rate_euler_step_every_phi_with_noise(side: &Side) {
        for (i, &n) in NS.iter().enumerate() {
            for &b in &BS {
                for phi in [Phi::Linear, Phi::Relu, Phi::Tanh] {
                    for (noise_std, noise_on) in [(0.0, NoiseOn::State), (0.3, NoiseOn::State), (0.3, NoiseOn::Rates)] {
                        let len = b * n;
                        let s = EulerStep {
                            len,
                            leak: 0.1,
                            phi,
                            noise_std,
                            seed: 0xdead_beef_0000_0001 + i as u64,
                            step: 17,
                            noise_on,
                        };
                        let x0 = normal(len, 1 + i as u64);
                        let drive = normal(len, 2 + i as u64);
                        let what = format!("euler_step N {n} B {b} {phi:?} noise {noise_std} on {noise_on:?}");
                        let (xo, ro) = oracle::euler(&x0, &drive, s);
                        check_op(side, &what, EULER_TOL, || Some([xo, ro].concat()), |be| {
                            run_euler(be, &x0, &drive, s)
                        });
                    }
                }
            }
        }
    }
}

/// One multiply-add and a max: the GPU may fuse them (one rounding instead of two), a difference
/// of an ulp of the larger term.
const PROJECTED_TOL: Tol = Tol {
    rel: 1e-6,
    why: "one f32 multiply-add, fused or not",
};

backend_tests! {
    /// r <- max(r + rate (v - theta_k), 0) on ragged sizes, thresholds per neuron shared by the
    /// trials, about half the rates pushed below zero and clamped; against the f64 formula.
    fn projected_step_clamps_at_zero(side: &Side) {
        for (i, &n) in NS.iter().enumerate() {
            for &trials in &BS {
                let len = trials * n;
                let r0: Vec<f32> = normal(len, 10 + i as u64).iter().map(|v| v.abs()).collect();
                let v = normal(len, 20 + i as u64);
                let thresholds = normal(n, 30 + i as u64);
                let s = ProjectedStep { trials, n, rate: 0.7 };
                let oracle = || {
                    Some((0..len).map(|e| {
                        let step = f64::from(s.rate) * (f64::from(v[e]) - f64::from(thresholds[e % n]));
                        (f64::from(r0[e]) + step).max(0.0) as f32
                    }).collect())
                };
                let what = format!("projected_step {trials} x {n}");
                let got = check_op(side, &what, PROJECTED_TOL, oracle, |be| {
                    let r = be.alloc_from("r", &r0).unwrap();
                    let vb = be.alloc_from("v", &v).unwrap();
                    let tb = be.alloc_from("thresholds", &thresholds).unwrap();
                    be.projected_step(r, vb, tb, s);
                    be.download(r, 0, len).unwrap()
                });
                let clamped = got.iter().filter(|r| **r == 0.0).count();
                assert!(len < 63 || clamped > len / 5, "{what}: {clamped} of {len} clamped");
                assert!(got.iter().all(|r| *r >= 0.0), "{what}: a negative rate");
            }
        }
    }
}

#[test]
fn rate_noise_is_standard_normal_and_keyed_by_seed_step_index() {
    // Moments of 2^18 draws: the standard error of the mean is 1/512 and of the variance
    // sqrt(2)/512, so 5 standard errors is a bound a correct generator misses once in ~10^6.
    let n = 1 << 18;
    let z: Vec<f64> = (0..n).map(|i| gaussian_noise(42, 3, i) as f64).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let kurt = z.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!(mean.abs() < 5.0 / 512.0, "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * 1.5 / 512.0, "variance {var}");
    assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt} (Gaussian: 3)");
    // The two elements of a Box-Muller pair are independent: their correlation over 2^17 pairs
    // has standard error 1/362, so 5 of them bound it.
    let corr = z.chunks(2).map(|p| p[0] * p[1]).sum::<f64>() / (n / 2) as f64 / var;
    assert!(corr.abs() < 5.0 / 362.0, "correlation within pairs {corr}");
    // Changing any key changes the draw.
    let base = gaussian_noise(42, 3, 5);
    for other in [
        gaussian_noise(43, 3, 5),
        gaussian_noise(42, 4, 5),
        gaussian_noise(42, 3, 6),
        gaussian_noise(42 | 1 << 40, 3, 5),
    ] {
        assert_ne!(base, other);
    }
}

/// The SIMD ln and sin_cos are within a few ulp; values reach sqrt(2 ln 2^24) = 5.8, whose ulp
/// is 4.8e-7, so 4e-6 absolute is about eight ulp at the largest value.
const NOISE_ABS_TOL: f64 = 4e-6;

#[test]
fn rate_noise_filled_in_blocks_equals_one_at_a_time_and_the_f64_oracle() {
    for (first, len) in [
        (0u32, 0usize),
        (0, 1),
        (1, 1),
        (3, 7),
        (0, 16),
        (5, 17),
        (1, 4099),
        (u32::MAX - 9, 10),
    ] {
        let mut block = vec![f32::NAN; len];
        fill_gaussian_noise(9, 11, first, &mut block);
        for (i, &v) in block.iter().enumerate() {
            let index = first + i as u32;
            assert_eq!(
                v.to_bits(),
                gaussian_noise(9, 11, index).to_bits(),
                "element {index}: block vs single"
            );
            let exact = oracle::gaussian(9, 11, index);
            assert!(
                (v as f64 - exact).abs() <= NOISE_ABS_TOL,
                "element {index}: {v} vs f64 oracle {exact}"
            );
        }
    }
}

backend_tests! {
    fn many_steps_in_one_submission_keep_their_order(side: &Side) {
        // More dispatches than one parameter buffer holds, each depending on the last: a missing
        // barrier or a reused parameter slot would break the chain.
        let len = 1000;
        let steps = 5000;
        let run = |be: &mut dyn Backend| {
            let x = be.alloc("x", len).unwrap();
            let r = be.alloc("r", len).unwrap();
            let d = be.alloc_from("drive", &vec![1.0; len]).unwrap();
            for t in 0..steps {
                be.euler_step(
                    x,
                    r,
                    d,
                    EulerStep {
                        len,
                        leak: 0.001,
                        phi: Phi::Linear,
                        noise_std: 0.0,
                        seed: 0,
                        step: t,
                        noise_on: NoiseOn::State,
                    },
                );
            }
            be.download(x, 0, len).unwrap()
        };
        // x_t = 1 - (1 - leak)^t exactly in real numbers; f32 accumulates ~t ulp of error.
        let want = 1.0 - (1.0f64 - 0.001).powi(steps as i32);
        let out = check_op(
            side,
            "5000 chained steps",
            Tol {
                rel: 1e-6,
                why: "identical f32 operations on both",
            },
            || None,
            run,
        );
        assert!(
            out.iter().all(|v| (*v as f64 - want).abs() < 5000.0 * 6e-8),
            "x = {}, want {want}",
            out[0]
        );
    }
}
