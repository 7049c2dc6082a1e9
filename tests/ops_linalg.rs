//! The linear-algebra family (shaders/linalg.wgsl, src/backend/linalg/): each op on each backend,
//! on awkward sizes (N not a multiple of any workgroup size, batch 1 and batch > 1, N = 4099); the
//! CPU backend against the f64 oracle, the GPU against the CPU backend. Also the typed buffers
//! every op uses: u32 values, copies at offsets, freeing and reusing buffers.

mod common;

use common::{assert_close, backend_tests, check_op, cpu, dot_tol, normal, oracle, Side, Tol};
use dale::backend::linalg::{Axis, Layout, LinalgOps, MatmulShape, Reduce, ReduceOp};
use dale::backend::{Backend, BufferOps};

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

fn check_matmul(side: &Side, s: MatmulShape, a_offset: usize, accumulate: bool, seed: u64) {
    let a = normal(a_offset + s.a_len(), seed);
    let w = normal(s.w_len(), seed + 1);
    let c0 = normal(s.c_len(), seed + 2);
    let what = format!("matmul {s:?} a_offset {a_offset} accumulate {accumulate}");
    let tol = dot_tol(s.inner + accumulate as usize);
    let want =
        || (s.inner <= ORACLE_MAX_N).then(|| oracle::matmul(&a, a_offset, &w, &c0, s, accumulate));
    check_op(side, &what, tol, want, |be| {
        run_matmul(be, &a, a_offset, &w, &c0, s, accumulate)
    });
}

backend_tests! {
    fn matmul_recurrent_square(side: &Side) {
        // [B, N] x [N, N]^T: the recurrent drive J phi(x) of a batch of trials.
        for (i, &n) in NS.iter().enumerate() {
            for &b in &BS {
                check_matmul(
                side,
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
}

backend_tests! {
    fn matmul_transposed_layouts_for_the_backward_pass(side: &Side) {
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
                    check_matmul(side, s, 7, i % 2 == 1, 700 + 10 * i as u64 + groups as u64);
                }
            }
        }
    }
}

backend_tests! {
    fn matmul_readout_rectangular(side: &Side) {
        // [B, N] x [N, K]^T with K = 5: the readout y = W_out x.
        for (i, &n) in NS.iter().enumerate() {
            for &b in &BS {
                check_matmul(
                side,
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
}

backend_tests! {
    fn matmul_independent_networks_offset_accumulate(side: &Side) {
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
            check_matmul(side, s, 11, true, 7 + inner as u64);
            check_matmul(side, s, 0, false, 8 + inner as u64);
        }
    }
}

#[test]
fn matmul_cpu_split_into_column_blocks_on_many_threads() {
    // The CPU backend splits C into column blocks, one task each; 7 threads make ragged blocks
    // (257 columns: 52, 52, 52, 52, 49; a 1-row product of 1,000 columns: 143 x 6 + 142) and
    // several blocks per network (2 networks: 4 blocks of 75), with and without accumulation.
    // The sizes are large enough to be split at all (MIN_TASK_WORK in src/backend/linalg/cpu.rs).
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

fn run_reduce(be: &mut dyn Backend, src: &[f32], out_offset: usize, r: Reduce) -> Vec<f32> {
    let s = be.alloc_from("src", src).unwrap();
    let o = be.alloc("out", out_offset + r.out_len()).unwrap();
    be.reduce(s, o, out_offset, r);
    be.download(o, 0, out_offset + r.out_len()).unwrap()
}

backend_tests! {
    fn reduce_sum_max_abs_and_sum_of_squares_over_rows_and_cols(side: &Side) {
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
                        check_op(side, &what, tol, || Some(want), |be| run_reduce(be, &src, 3, r));
                    }
                }
            }
        }
    }
}

backend_tests! {
    fn reduce_max_abs_reports_nan_and_inf_as_inf(side: &Side) {
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
            side,
                "max-abs with NaN and Inf",
                Tol {
                    rel: 0.0,
                    why: "exact",
                },
                || None,
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
}

backend_tests! {
    fn copy_between_buffers_at_offsets(side: &Side) {
        let src = normal(1000, 5);
        let run = |be: &mut dyn Backend| {
            let s = be.alloc_from("src", &src).unwrap();
            let d = be.alloc("dst", 700).unwrap();
            be.copy(s, 301, d, 17, 650);
            be.download(d, 0, 700).unwrap()
        };
        let out = check_op(
            side,
            "copy",
            Tol {
                rel: 0.0,
                why: "copies are exact",
            },
            || None,
            run,
        );
        assert!(out[..17].iter().all(|v| *v == 0.0));
        assert_eq!(&out[17..667], &src[301..951]);
        assert!(out[667..].iter().all(|v| *v == 0.0));
    }
}
