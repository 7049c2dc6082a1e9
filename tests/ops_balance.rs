//! The balancing family of paper 001 (shaders/balance.wgsl, src/backend/balance/): each op on
//! each backend on awkward sizes (one neuron, N no multiple of the 32-row band or the 256-thread
//! workgroup, batches, N above 4096), against the f64 formulas (CPU) and the CPU backend (GPU).

mod common;

use common::{assert_close, backend_tests, balance_oracle, check_op, dot_tol, normal, Side, Tol};
use dale::backend::balance::{
    Aggregate, Alpha, BalanceOps, CostFlows, Costs, HStep, HUpdate, TaskTransform, Weights,
    LOG_ZERO,
};
use dale::backend::cpu::CpuBackend;
use dale::backend::{Backend, BufferOps};

/// The oracle's f64 loops are too slow beyond this N to run on every size.
const ORACLE_MAX_N: usize = 257;

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

backend_tests! {
    fn costs_for_every_kind_of_alpha_and_power(side: &Side) {
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
                        weight_scale: 1.0,
                        log: false,
                    };
                    let alpha: Vec<f32> = sparse_costs(spec.alpha_len().max(1), 310 + i as u64);
                    let run = |be: &mut dyn Backend| {
                        let cb = be.alloc_from("w, then c", &w).unwrap();
                        let ab = be.alloc_from("alpha", &alpha).unwrap();
                        be.costs(cb, ab, spec);
                        be.take(cb).unwrap()
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
                        let want = || (n <= ORACLE_MAX_N).then(|| balance_oracle::costs(&w, &alpha, spec));
                        check_op(side, &what, tol, want, run);
                    }
                }
            }
        }
    }
}

backend_tests! {
    fn cost_flows_sum_and_max_in_one_pass(side: &Side) {
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
                    log: false,
                };
                let run = |be: &mut dyn Backend| {
                    let cb = be.alloc_from("c0", &c0).unwrap();
                    let sb = be.alloc_from("scale", &scale).unwrap();
                    let fb = be.alloc("flows", groups * 2 * n).unwrap();
                    let pb = be.alloc("partials", spec.partials_len()).unwrap();
                    be.cost_flows(cb, sb, fb, pb, spec);
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
                let want = || (n <= ORACLE_MAX_N).then(|| balance_oracle::cost_flows(&c0, &scale, spec));
                check_op(side, &what, tol, want, run);
            }
        }
    }
}

backend_tests! {
    fn h_update_flow_and_osborne_steps(side: &Side) {
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
            // The last cases hold the last neuron (as the world of the readout-aware cost) at
            // h = 0; Osborne then solves g_k = nu, the multiplier of sum h = 0.
            for (step, p, anchor) in [
                (HStep::Flow { dt: 0.05 }, 2.0f32, None),
                (HStep::Osborne, 2.0, None),
                (HStep::Osborne, 1.0, None),
                (HStep::Flow { dt: 0.05 }, 2.0, Some(n - 1)),
                (HStep::Osborne, 2.0, Some(n - 1)),
            ] {
                let spec = HUpdate {
                    groups,
                    n,
                    p,
                    step,
                    history_offset: 3,
                    anchor,
                    log: false,
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
                // Each backend against the oracle, part by part: h, s and the history have their
                // own error scales.
                let out = run(side.backend().as_mut());
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
                assert_close(&format!("{what}: h"), &out[..gh], &want_h, tol_h);
                assert_close(&format!("{what}: scale"), &out[gh..2 * gh], &want_s, tol_s);
                assert_close(&format!("{what}: history"), &out[2 * gh..], &want_hist, tol_hist);
            }
        }
    }
}

backend_tests! {
    fn task_transform_of_recurrent_input_and_output_weights(side: &Side) {
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
                    let wb = be.alloc_from("weights", &src).unwrap();
                    let hb = be.alloc_from("h", &h).unwrap();
                    be.task_transform(wb, hb, spec);
                    be.take(wb).unwrap()
                };
                // WGSL's exp is within 3 + 2|x| ulp for an argument x, here |x| <= 2 max |h|,
                // relative to the largest output; plus the product's rounding.
                let tol = Tol {
                    rel: (5.0 + 4.0 * hmax) * f32::EPSILON as f64,
                    why: "exp within 3 + 2|x| ulp",
                };
                let what = format!("task_transform {spec:?}");
                let want = || (n <= ORACLE_MAX_N).then(|| balance_oracle::task_transform(&src, &h, spec));
                check_op(side, &what, tol, want, run);
            }
        }
    }
}

/// Log-space values (issue 23) agree where both are "ln 0" (at most LOG_ZERO / 2) and elsewhere
/// within `abs` (1 + |want|): logs carry absolute errors, growing with their size.
fn assert_logs_close(what: &str, got: &[f32], want: &[f32], abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let zero = |v: f32| v <= 0.5 * LOG_ZERO;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if zero(w) {
            assert!(zero(g), "{what}: at {i} got {g}, want ln 0");
            continue;
        }
        let err = (f64::from(g) - f64::from(w)).abs();
        assert!(
            err <= abs * (1.0 + f64::from(w.abs())),
            "{what}: at {i} got {g}, want {w}"
        );
    }
}

/// `check_op` for log-space outputs: the CPU against the oracle, the GPU against the CPU.
fn check_logs(
    side: &Side,
    what: &str,
    abs: f64,
    oracle: impl FnOnce() -> Option<Vec<f32>>,
    op: impl Fn(&mut dyn Backend) -> Vec<f32>,
) {
    let out = op(side.backend().as_mut());
    let want = match side {
        Side::Cpu => oracle(),
        Side::Gpu(_) => Some(op(&mut CpuBackend::new())),
    };
    if let Some(want) = want {
        assert_logs_close(what, &out, &want, abs);
    }
}

/// Logarithms spread over +-3 spread, with ln 0 (no synapse) at every 7th place.
fn log_values(len: usize, seed: u64, spread: f32) -> Vec<f32> {
    normal(len, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 7 == 3 { LOG_ZERO } else { spread * v })
        .collect()
}

backend_tests! {
    /// Costs in log space and with scaled weights, the forms that hold any p (issue 23).
    fn costs_in_log_space_and_with_scaled_weights(side: &Side) {
        for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate().filter(|(_, s)| s.1 < 4099) {
            // Magnitudes from e^-3 to e^3 times normal samples, zeros at every 5th synapse.
            let spread = normal(groups * n * n, 600 + i as u64);
            let w: Vec<f32> = normal(groups * n * n, 610 + i as u64)
                .iter()
                .zip(&spread)
                .enumerate()
                .map(|(e, (v, s))| if e % 5 == 0 { 0.0 } else { v * s.exp() })
                .collect();
            for alpha_kind in [Alpha::One, Alpha::Full { shared: false }] {
                for (p, weight_scale, log) in [(50.0f32, 0.125f32, true), (1e-3, 1.0, true), (10.0, 0.125, false)] {
                    let spec = Costs { groups, rows: n, cols: n, p, alpha: alpha_kind, weight_scale, log };
                    let alpha = sparse_costs(spec.alpha_len().max(1), 620 + i as u64);
                    let run = |be: &mut dyn Backend| {
                        let cb = be.alloc_from("w, then c", &w).unwrap();
                        let ab = be.alloc_from("alpha", &alpha).unwrap();
                        be.costs(cb, ab, spec);
                        be.take(cb).unwrap()
                    };
                    let what = format!("costs {spec:?}");
                    let want = || (n <= ORACLE_MAX_N).then(|| balance_oracle::costs(&w, &alpha, spec));
                    if log {
                        // ln alpha + p ln|w s|: WGSL's log is within 2^-21 absolute, times p.
                        check_logs(side, &what, f64::from(p) * 2f64.powi(-20) + 1e-6, want, run);
                    } else {
                        // pow as exp2(p log2 a): log2's 2^-21 absolute error, times p.
                        let tol = Tol {
                            rel: f64::from(p) * 2f64.powi(-20),
                            why: "pow via exp2(p log2 a): error grows with p",
                        };
                        check_op(side, &what, tol, want, run);
                    }
                }
            }
        }
    }
}

backend_tests! {
    /// Each neuron's ln in and ln out from log-space costs: two passes (largest values, then
    /// sums about them) on awkward sizes, N above 4096 included.
    fn cost_flows_in_log_space(side: &Side) {
        for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
            let c0 = log_values(groups * n * n, 700 + i as u64, 20.0);
            let u: Vec<f32> = normal(groups * n, 710 + i as u64).iter().map(|v| 5.0 * v).collect();
            let spec = CostFlows { groups, n, aggregate: Aggregate::Sum, log: true };
            let run = |be: &mut dyn Backend| {
                let cb = be.alloc_from("ln c0", &c0).unwrap();
                let ub = be.alloc_from("u = p h", &u).unwrap();
                let fb = be.alloc("flows", groups * 2 * n).unwrap();
                let pb = be.alloc("partials", spec.partials_len()).unwrap();
                be.cost_flows(cb, ub, fb, pb, spec);
                be.download(fb, 0, groups * 2 * n).unwrap()
            };
            // Each term's exponent c + u_j - u_i - largest (|c + u| < 150) rounds to 150 x 2^-24;
            // its exp adds 2 ulp, the f32 sum of n terms n eps relative, the final log-add one
            // more rounding of the largest value: 1e-5 (1 + |value|) holds them all.
            let what = format!("cost_flows {spec:?}");
            let want = || (n <= ORACLE_MAX_N).then(|| balance_oracle::cost_flows_log(&c0, &u, spec));
            check_logs(side, &what, 1e-5 + n as f64 * f64::from(f32::EPSILON), want, run);
        }
    }
}

backend_tests! {
    /// Log-space h_update: Osborne steps from ln in - ln out (none where a side is ln 0), the
    /// recentring, u = p h, and the history of ln ||g||^2 and ln sum in_k.
    fn h_update_in_log_space(side: &Side) {
        for (i, &(groups, n)) in BALANCE_SIZES.iter().enumerate() {
            let flows = log_values(groups * 2 * n, 800 + i as u64, 30.0);
            let h0: Vec<f32> = normal(groups * n, 810 + i as u64).iter().map(|v| 0.3 * v).collect();
            for p in [50.0f32, 1e-3] {
                let spec = HUpdate {
                    groups,
                    n,
                    p,
                    step: HStep::Osborne,
                    history_offset: 3,
                    anchor: None,
                    log: true,
                };
                let run = |be: &mut dyn Backend| {
                    let fb = be.alloc_from("flows", &flows).unwrap();
                    let hb = be.alloc_from("h", &h0).unwrap();
                    let ub = be.alloc("u", groups * n).unwrap();
                    let rec = be.alloc("history", 3 + 2 * groups).unwrap();
                    be.h_update(fb, hb, ub, rec, spec);
                    let mut out = be.download(hb, 0, groups * n).unwrap();
                    out.extend(be.download(ub, 0, groups * n).unwrap());
                    out.extend(be.download(rec, 3, 2 * groups).unwrap());
                    out
                };
                let (want_h, want_u, want_hist) = balance_oracle::h_update_log(&flows, &h0, spec);
                let what = format!("h_update {spec:?}");
                let out = run(side.backend().as_mut());
                let gh = groups * n;
                // h and u: one f32 step and an n-term f32 mean, relative to the largest.
                let tol = Tol { rel: dot_tol(n).rel, why: "n-term mean of f32 steps" };
                assert_close(&format!("{what}: h"), &out[..gh], &want_h, tol);
                assert_close(&format!("{what}: u"), &out[gh..2 * gh], &want_u, tol);
                // The history's logs: e^(value - largest) to 2 ulp, n-term f32 sums, one log.
                let abs = 1e-5 + n as f64 * f64::from(f32::EPSILON);
                assert_logs_close(&format!("{what}: history"), &out[2 * gh..], &want_hist, abs);
            }
        }
    }
}
