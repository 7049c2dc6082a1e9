//! Every op: the GPU kernel against the CPU backend on awkward sizes (N not a multiple of any
//! workgroup size, batch 1 and batch > 1, N = 4099), and the CPU backend against the f64 oracle.
//! Kernels: shaders/matmul.wgsl, shaders/rate.wgsl, shaders/reduce.wgsl, shaders/balance.wgsl.

mod common;

use common::{assert_close, balance_oracle, check_op, cpu, dot_tol, normal, oracle, Tol};
use dale::backend::noise::fill_gaussian_noise;
use dale::backend::{
    gaussian_noise, Aggregate, Alpha, Axis, Backend, CostFlows, Costs, EulerBackward, EulerStep,
    HStep, HUpdate, Layout, MatmulShape, Phi, Reduce, ReduceOp, SgdStep, TaskTransform, Weights,
};

const NS: [usize; 4] = [1, 63, 257, 4099];
const BS: [usize; 2] = [1, 33];
/// The oracle's f64 loops are too slow beyond this N to run on every size.
const ORACLE_MAX_N: usize = 257;

/// Runs one product on a backend from freshly uploaded operands and reads C back.
fn run_matmul(
    be: &mut dyn Backend,
    a: &[f32],
    a_offset: usize,
    w: &[f32],
    c0: &[f32],
    s: MatmulShape,
    accumulate: bool,
) -> Vec<f32> {
    let ab = be.alloc_from("a", a).unwrap();
    let wb = be.alloc_from("w", w).unwrap();
    let cb = be.alloc_from("c", c0).unwrap();
    be.matmul(ab, a_offset, wb, cb, s, accumulate);
    be.download(cb, 0, c0.len()).unwrap()
}

fn check_matmul(s: MatmulShape, a_offset: usize, accumulate: bool, seed: u64) {
    let a = normal(a_offset + s.a_len(), seed);
    let w = normal(s.w_len(), seed + 1);
    let c0 = normal(s.c_len(), seed + 2);
    let what = format!("matmul {s:?} a_offset {a_offset} accumulate {accumulate}");
    let tol = dot_tol(s.inner + accumulate as usize);
    let want =
        (s.inner <= ORACLE_MAX_N).then(|| oracle::matmul(&a, a_offset, &w, &c0, s, accumulate));
    check_op(&what, tol, want, |be| {
        run_matmul(be, &a, a_offset, &w, &c0, s, accumulate)
    });
}

#[test]
fn matmul_recurrent_square() {
    // [B, N] x [N, N]^T: the recurrent drive J phi(x) of a batch of trials.
    for (i, &n) in NS.iter().enumerate() {
        for &b in &BS {
            check_matmul(
                MatmulShape {
                    groups: 1,
                    rows: b,
                    inner: n,
                    cols: n,
                    shared_w: true,
                    layout: Layout::ABt,
                },
                0,
                false,
                10 * i as u64 + b as u64,
            );
        }
    }
}

#[test]
fn matmul_transposed_layouts_for_the_backward_pass() {
    // A W (delta J, e W_out) and A^T W (weight gradients summed over time and trials), with
    // groups, shared and own W, odd sizes, a nonzero a_offset and accumulation.
    for (i, &(rows, inner, cols)) in [
        (1, 1, 1),
        (33, 63, 257),
        (64, 257, 5),
        (5, 3300, 63),
        (257, 129, 300),
    ]
    .iter()
    .enumerate()
    {
        for layout in [Layout::AB, Layout::AtB] {
            for (groups, shared_w) in [(1, true), (3, false)] {
                let s = MatmulShape {
                    groups,
                    rows,
                    inner,
                    cols,
                    shared_w,
                    layout,
                };
                check_matmul(s, 7, i % 2 == 1, 700 + 10 * i as u64 + groups as u64);
            }
        }
    }
}

#[test]
fn matmul_readout_rectangular() {
    // [B, N] x [N, K]^T with K = 5: the readout y = W_out x.
    for (i, &n) in NS.iter().enumerate() {
        for &b in &BS {
            check_matmul(
                MatmulShape {
                    groups: 1,
                    rows: b,
                    inner: n,
                    cols: 5,
                    shared_w: true,
                    layout: Layout::ABt,
                },
                0,
                false,
                100 + 10 * i as u64 + b as u64,
            );
        }
    }
}

#[test]
fn matmul_independent_networks_offset_accumulate() {
    // Three networks with their own W, A read from an offset (one step of a chunked input), and
    // the result added to C (the feedforward drive added to the recurrent one).
    for &(rows, inner, cols) in &[(1, 3, 63), (33, 7, 257), (5, 65, 1)] {
        let s = MatmulShape {
            groups: 3,
            rows,
            inner,
            cols,
            shared_w: false,
            layout: Layout::ABt,
        };
        check_matmul(s, 11, true, 7 + inner as u64);
        check_matmul(s, 0, false, 8 + inner as u64);
    }
}

#[test]
fn matmul_cpu_split_into_column_blocks_on_many_threads() {
    // The CPU backend splits C into column blocks, one task each; 7 threads make ragged blocks
    // (257 columns: 52, 52, 52, 52, 49; a 1-row product of 1,000 columns: 143 x 6 + 142) and
    // several blocks per network (2 networks: 4 blocks of 75), with and without accumulation.
    // The sizes are large enough to be split at all (MIN_TASK_WORK in src/backend/cpu.rs).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(7)
        .build()
        .expect("thread pool");
    pool.install(|| {
        for &(groups, rows, inner, cols) in &[
            (1, 40, 128, 257),
            (2, 20, 180, 300),
            (1, 1, 2048, 1000),
            (2, 4, 0, 130),
        ] {
            for shared_w in [false, true] {
                for accumulate in [false, true] {
                    let s = MatmulShape {
                        groups,
                        rows,
                        inner,
                        cols,
                        shared_w,
                        layout: Layout::ABt,
                    };
                    let (a, w, c0) = (
                        normal(3 + s.a_len(), 40),
                        normal(s.w_len(), 41),
                        normal(s.c_len(), 42),
                    );
                    let got = run_matmul(&mut cpu(), &a, 3, &w, &c0, s, accumulate);
                    let want = oracle::matmul(&a, 3, &w, &c0, s, accumulate);
                    assert_close(
                        &format!("CPU matmul {s:?} accumulate {accumulate} on 7 threads"),
                        &got,
                        &want,
                        dot_tol(inner + 1),
                    );
                }
            }
        }
    });
}

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

#[test]
fn rate_euler_step_every_phi_with_noise() {
    for (i, &n) in NS.iter().enumerate() {
        for &b in &BS {
            for phi in [Phi::Linear, Phi::Relu, Phi::Tanh] {
                for noise_std in [0.0, 0.3] {
                    let len = b * n;
                    let s = EulerStep {
                        len,
                        leak: 0.1,
                        phi,
                        noise_std,
                        seed: 0xdead_beef_0000_0001 + i as u64,
                        step: 17,
                    };
                    let x0 = normal(len, 1 + i as u64);
                    let drive = normal(len, 2 + i as u64);
                    let what = format!("euler_step N {n} B {b} {phi:?} noise {noise_std}");
                    let (xo, ro) = oracle::euler(&x0, &drive, s);
                    check_op(&what, EULER_TOL, Some([xo, ro].concat()), |be| {
                        run_euler(be, &x0, &drive, s)
                    });
                }
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

fn run_reduce(be: &mut dyn Backend, src: &[f32], out_offset: usize, r: Reduce) -> Vec<f32> {
    let s = be.alloc_from("src", src).unwrap();
    let o = be.alloc("out", out_offset + r.out_len()).unwrap();
    be.reduce(s, o, out_offset, r);
    be.download(o, 0, out_offset + r.out_len()).unwrap()
}

#[test]
fn reduce_sum_max_abs_and_sum_of_squares_over_rows_and_cols() {
    for (i, &n) in NS.iter().enumerate() {
        for &b in &BS {
            for axis in [Axis::Rows, Axis::Cols] {
                for op in [ReduceOp::Sum, ReduceOp::MaxAbs, ReduceOp::SumSquares] {
                    let r = Reduce {
                        rows: b,
                        cols: n,
                        axis,
                        op,
                        scale: 0.5,
                    };
                    let src = normal(b * n, 30 + i as u64);
                    let terms = match axis {
                        Axis::Rows => n,
                        Axis::Cols => b,
                    };
                    let tol = match op {
                        ReduceOp::Sum => dot_tol(terms),
                        ReduceOp::MaxAbs => Tol {
                            rel: 0.0,
                            why: "max and |.| are exact",
                        },
                        // Positive terms: no cancellation, each square rounds once more.
                        ReduceOp::SumSquares => dot_tol(2 * terms),
                    };
                    let what = format!("reduce {b} x {n} {axis:?} {op:?}");
                    let mut want = vec![0.0; 3];
                    want.extend(oracle::reduce(&src, r));
                    check_op(&what, tol, Some(want), |be| run_reduce(be, &src, 3, r));
                }
            }
        }
    }
}

#[test]
fn reduce_max_abs_reports_nan_and_inf_as_inf() {
    // Divergence detection rests on this: one bad value anywhere in a row makes the row +Inf.
    let (rows, cols) = (5, 300);
    let mut src = normal(rows * cols, 9);
    src[cols + 299] = f32::NAN;
    src[3 * cols] = f32::NEG_INFINITY;
    for axis in [Axis::Rows, Axis::Cols] {
        let r = Reduce {
            rows,
            cols,
            axis,
            op: ReduceOp::MaxAbs,
            scale: 1.0,
        };
        let out = check_op(
            "max-abs with NaN and Inf",
            Tol {
                rel: 0.0,
                why: "exact",
            },
            None,
            |be| run_reduce(be, &src, 0, r),
        );
        let inf: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, v)| **v == f32::INFINITY)
            .map(|(i, _)| i)
            .collect();
        let want = match axis {
            Axis::Rows => vec![1, 3],
            Axis::Cols => vec![0, 299],
        };
        assert_eq!(inf, want, "{axis:?}");
    }
}

#[test]
fn copy_between_buffers_at_offsets() {
    let src = normal(1000, 5);
    let run = |be: &mut dyn Backend| {
        let s = be.alloc_from("src", &src).unwrap();
        let d = be.alloc("dst", 700).unwrap();
        be.copy(s, 301, d, 17, 650);
        be.download(d, 0, 700).unwrap()
    };
    let out = check_op(
        "copy",
        Tol {
            rel: 0.0,
            why: "copies are exact",
        },
        None,
        run,
    );
    assert!(out[..17].iter().all(|v| *v == 0.0));
    assert_eq!(&out[17..667], &src[301..951]);
    assert!(out[667..].iter().all(|v| *v == 0.0));
}

#[test]
fn many_steps_in_one_submission_keep_their_order() {
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
                },
            );
        }
        be.download(x, 0, len).unwrap()
    };
    // x_t = 1 - (1 - leak)^t exactly in real numbers; f32 accumulates ~t ulp of error.
    let want = 1.0 - (1.0f64 - 0.001).powi(steps as i32);
    let out = check_op(
        "5000 chained steps",
        Tol {
            rel: 1e-6,
            why: "identical f32 operations on both",
        },
        None,
        run,
    );
    assert!(
        out.iter().all(|v| (*v as f64 - want).abs() < 5000.0 * 6e-8),
        "x = {}, want {want}",
        out[0]
    );
}

/// (networks, neurons) for the balancing ops: one neuron, sizes that are no multiple of the
/// 32-row band or the 256-thread workgroup, a batch, and N above 4096.
const BALANCE_SIZES: [(usize, usize); 6] =
    [(1, 1), (1, 63), (3, 63), (1, 257), (2, 257), (1, 4099)];

/// Non-negative costs with zeros (absent synapses) at every 7th place.
fn sparse_costs(len: usize, seed: u64) -> Vec<f32> {
    normal(len, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 7 == 3 { 0.0 } else { v.abs() })
        .collect()
}

#[test]
fn costs_for_every_kind_of_alpha_and_power() {
    for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
        let w: Vec<f32> = normal(groups * n * n, 300 + i as u64)
            .iter()
            .enumerate()
            .map(|(e, v)| if e % 5 == 0 { 0.0 } else { *v })
            .collect();
        let kinds = [
            Alpha::One,
            Alpha::PerColumn { shared: true },
            Alpha::PerColumn { shared: false },
            Alpha::Full { shared: true },
            Alpha::Full { shared: false },
        ];
        for alpha_kind in kinds {
            for p in [2.0f32, 1.0, 0.5, 3.0] {
                let spec = Costs {
                    groups,
                    rows: n,
                    cols: n,
                    p,
                    alpha: alpha_kind,
                };
                let alpha: Vec<f32> = sparse_costs(spec.alpha_len().max(1), 310 + i as u64);
                let run = |be: &mut dyn Backend| {
                    let wb = be.alloc_from("w", &w).unwrap();
                    let ab = be.alloc_from("alpha", &alpha).unwrap();
                    let cb = be.alloc("c", spec.len()).unwrap();
                    be.costs(wb, ab, cb, spec);
                    be.download(cb, 0, spec.len()).unwrap()
                };
                // p = 1, 2 are exact products; other powers go through pow, which WGSL computes
                // as exp2(p log2 a) with the log's error amplified by p |log2 a| (< 4 for normal
                // samples up to 2^4), and Rust's powf is correctly rounded: 16 eps covers it.
                let tol = Tol {
                    rel: 16.0 * f32::EPSILON as f64,
                    why: "pow via exp2(p log2 a): error grows with p |log2 a|",
                };
                let what = format!("costs {spec:?}");
                // N = 4099 (16.8M synapses) at one exponent only, the one through pow: the
                // others are plain products, and each 4099 case takes lavapipe seconds.
                if n < 4099 || p == 0.5 {
                    let want = (n <= ORACLE_MAX_N).then(|| balance_oracle::costs(&w, &alpha, spec));
                    check_op(&what, tol, want, run);
                }
            }
        }
    }
}

#[test]
fn cost_flows_sum_and_max_in_one_pass() {
    for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
        let c0 = sparse_costs(groups * n * n, 400 + i as u64);
        let scale: Vec<f32> = normal(groups * n, 410 + i as u64)
            .iter()
            .map(|v| (0.7 * v).exp())
            .collect();
        for aggregate in [Aggregate::Sum, Aggregate::Max] {
            let spec = CostFlows {
                groups,
                n,
                aggregate,
            };
            let run = |be: &mut dyn Backend| {
                let cb = be.alloc_from("c0", &c0).unwrap();
                let sb = be.alloc_from("scale", &scale).unwrap();
                let fb = be.alloc("flows", groups * 2 * n).unwrap();
                be.cost_flows(cb, sb, fb, spec);
                be.download(fb, 0, groups * 2 * n).unwrap()
            };
            let tol = match aggregate {
                // Each term is c0 s_j / s_i, rounded in another order on each side.
                Aggregate::Sum => dot_tol(n + 2),
                // A max is exact; its term and the final division each round once.
                Aggregate::Max => Tol {
                    rel: 4.0 * f32::EPSILON as f64,
                    why: "max of terms with 2-3 roundings each",
                },
            };
            let what = format!("cost_flows {spec:?}");
            let want = (n <= ORACLE_MAX_N).then(|| balance_oracle::cost_flows(&c0, &scale, spec));
            check_op(&what, tol, want, run);
        }
    }
}

#[test]
fn h_update_flow_and_osborne_steps() {
    for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
        // Incoming and outgoing costs that differ by factors up to e^2 either way, some equal
        // (no step), as after one pass of cost_flows.
        let inc: Vec<f32> = normal(groups * n, 500 + i as u64)
            .iter()
            .map(|v| v.exp())
            .collect();
        let mut flows = vec![0.0f32; groups * 2 * n];
        for g in 0..groups {
            for k in 0..n {
                flows[g * 2 * n + k] = inc[g * n + k];
                flows[g * 2 * n + n + k] = if k % 5 == 0 {
                    inc[g * n + k]
                } else {
                    inc[(g * n + k + 1) % (groups * n)]
                };
            }
        }
        let h0: Vec<f32> = normal(groups * n, 510 + i as u64)
            .iter()
            .map(|v| 0.3 * v)
            .collect();
        for (step, p) in [
            (HStep::Flow { dt: 0.05 }, 2.0f32),
            (HStep::Osborne, 2.0),
            (HStep::Osborne, 1.0),
        ] {
            let spec = HUpdate {
                groups,
                n,
                p,
                step,
                history_offset: 3,
            };
            let run = |be: &mut dyn Backend| {
                let fb = be.alloc_from("flows", &flows).unwrap();
                let hb = be.alloc_from("h", &h0).unwrap();
                let sb = be.alloc("scale", groups * n).unwrap();
                let rec = be.alloc("history", 3 + 2 * groups).unwrap();
                be.h_update(fb, hb, sb, rec, spec);
                let mut out = be.download(hb, 0, groups * n).unwrap();
                out.extend(be.download(sb, 0, groups * n).unwrap());
                out.extend(be.download(rec, 3, 2 * groups).unwrap());
                out
            };
            let (want_h, want_s, want_hist) = balance_oracle::h_update(&flows, &h0, spec);
            let what = format!("h_update {spec:?}");
            // Both sides against the oracle, part by part: h, s and the history have their own
            // error scales.
            let mut sides = vec![("CPU", run(&mut cpu()))];
            if let Some(mut gpu) = common::gpu_backend() {
                sides.push(("GPU", run(&mut gpu)));
            }
            let hmax = want_h.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            // h: one step (the GPU's log is within 2^-21 absolute, WGSL spec) and the mean, an
            // n-term f32 sum relative to max |h|.
            let tol_h = Tol {
                rel: dot_tol(n).rel + 2f64.powi(-21) / (4.0 * p as f64 * hmax.max(1e-3)),
                why: "n-term mean, log within 2^-21",
            };
            // s = e^(p h): p times the error of h, relative to the largest s, plus exp's 3 ulp.
            let tol_s = Tol {
                rel: p as f64 * hmax * tol_h.rel + 4.0 * f32::EPSILON as f64,
                why: "exp of h with h's error",
            };
            let tol_hist = dot_tol(n);
            let gh = groups * n;
            for (side, out) in &sides {
                assert_close(&format!("{what}: {side} h"), &out[..gh], &want_h, tol_h);
                assert_close(
                    &format!("{what}: {side} scale"),
                    &out[gh..2 * gh],
                    &want_s,
                    tol_s,
                );
                assert_close(
                    &format!("{what}: {side} history"),
                    &out[2 * gh..],
                    &want_hist,
                    tol_hist,
                );
            }
        }
    }
}

#[test]
fn task_transform_of_recurrent_input_and_output_weights() {
    for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
        let h: Vec<f32> = normal(groups * n, 600 + i as u64)
            .iter()
            .map(|v| 0.5 * v)
            .collect();
        let hmax = h.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        for weights in [
            Weights::Recurrent,
            Weights::Input { m: 6 },
            Weights::Output { k: 3 },
        ] {
            let spec = TaskTransform { groups, n, weights };
            let src = normal(spec.len(), 610 + i as u64);
            let run = |be: &mut dyn Backend| {
                let sb = be.alloc_from("src", &src).unwrap();
                let hb = be.alloc_from("h", &h).unwrap();
                let db = be.alloc("dst", spec.len()).unwrap();
                be.task_transform(sb, hb, db, spec);
                be.download(db, 0, spec.len()).unwrap()
            };
            // WGSL's exp is within 3 + 2|x| ulp for an argument x, here |x| <= 2 max |h|,
            // relative to the largest output; plus the product's rounding.
            let tol = Tol {
                rel: (5.0 + 4.0 * hmax) * f32::EPSILON as f64,
                why: "exp within 3 + 2|x| ulp",
            };
            let what = format!("task_transform {spec:?}");
            let want = (n <= ORACLE_MAX_N).then(|| balance_oracle::task_transform(&src, &h, spec));
            check_op(&what, tol, want, run);
        }
    }
}

#[test]
fn euler_backward_for_every_phi_at_offsets() {
    for (i, &n) in NS.iter().enumerate() {
        for &b in &BS {
            let len = n * b;
            // Three time slots of every array; the step reads slot 2 of delta and writes slot 1.
            let delta = normal(3 * len, 800 + i as u64);
            let back = normal(len, 801 + i as u64);
            let x = normal(3 * len, 802 + i as u64);
            let readout = normal(3 * len, 803 + i as u64);
            for phi in [Phi::Linear, Phi::Relu, Phi::Tanh] {
                let spec = EulerBackward {
                    len,
                    leak: 0.1,
                    phi,
                    next: 2 * len,
                    out: len,
                    x: 2 * len,
                    readout: len,
                };
                let run = |be: &mut dyn Backend| {
                    let d = be.alloc_from("delta", &delta).unwrap();
                    let bk = be.alloc_from("back", &back).unwrap();
                    let xb = be.alloc_from("x", &x).unwrap();
                    let r = be.alloc_from("readout", &readout).unwrap();
                    be.euler_backward(d, bk, xb, r, spec);
                    be.download(d, 0, 3 * len).unwrap()
                };
                let want: Vec<f32> = (0..3 * len)
                    .map(|e| {
                        if !(len..2 * len).contains(&e) {
                            return delta[e];
                        }
                        let k = e - len;
                        let xv = x[2 * len + k] as f64;
                        let slope = match phi {
                            Phi::Linear => 1.0,
                            Phi::Relu => f64::from(u8::from(xv > 0.0)),
                            Phi::Tanh => 1.0 - xv.tanh().powi(2),
                        };
                        ((1.0 - 0.1) * delta[2 * len + k] as f64
                            + 0.1 * slope * back[k] as f64
                            + readout[len + k] as f64) as f32
                    })
                    .collect();
                // Three terms, each with one or two roundings; tanh' within a few ulp.
                let tol = Tol {
                    rel: 8.0 * f32::EPSILON as f64,
                    why: "three rounded terms, tanh within 4 ulp",
                };
                let what = format!("euler_backward {spec:?}");
                check_op(&what, tol, Some(want), run);
            }
        }
    }
}

#[test]
fn scaled_difference_and_sgd_step() {
    for (i, &n) in NS.iter().enumerate() {
        let len = 3 * n;
        let (a, b) = (normal(len, 900 + i as u64), normal(len, 901 + i as u64));
        let run = |be: &mut dyn Backend| {
            let (ab, bb) = (
                be.alloc_from("a", &a).unwrap(),
                be.alloc_from("b", &b).unwrap(),
            );
            let out = be.alloc("out", len).unwrap();
            be.scaled_difference(ab, bb, out, len, 0.25);
            // Then a step on the middle third only, with out as the gradient.
            be.sgd_step(
                ab,
                out,
                SgdStep {
                    offset: n,
                    len: n,
                    lr: 0.5,
                    grad_scale: 0.7,
                    l2: 0.3,
                },
            );
            let mut res = be.download(out, 0, len).unwrap();
            res.extend(be.download(ab, 0, len).unwrap());
            res
        };
        let diff: Vec<f64> = (0..len)
            .map(|e| 0.25 * (a[e] as f64 - b[e] as f64))
            .collect();
        let mut want: Vec<f32> = diff.iter().map(|v| *v as f32).collect();
        want.extend((0..len).map(|e| {
            if (n..2 * n).contains(&e) {
                (a[e] as f64 - 0.5 * (0.7 * diff[e] + 0.6 * a[e] as f64)) as f32
            } else {
                a[e]
            }
        }));
        let tol = Tol {
            rel: 4.0 * f32::EPSILON as f64,
            why: "two or three rounded operations",
        };
        check_op(
            &format!("scaled_difference, sgd_step n {n}"),
            tol,
            Some(want),
            run,
        );
    }
}
