//! Synaptic balancing (paper 001) against the paper's propositions, on the CPU backend (the
//! reference), and the whole model on each backend.

mod common;

use common::{backend_tests, cpu, normal};
use dale::analysis::balance::{
    cost_bounds, gain_moments, laplacian, laplacian_modes, neural_gradients, pseudo_inverse,
    resistance, sensitivity,
};
use dale::backend::balance::{Aggregate, Alpha};
use dale::backend::Phi;
use dale::models::balancing::Split;
use dale::models::balancing::{
    balance, balance_with_io_paths, chunk_iterations, BalanceParams, Balanced, Method, Networks,
    Topology, World,
};
use dale::models::rate::{simulate, Monitor, Monitors, RateParams, Weights};
use dale::DaleError;

fn flow(dt: f32, iterations: usize) -> BalanceParams {
    BalanceParams {
        p: 2.0,
        aggregate: Aggregate::Sum,
        method: Method::Flow { dt },
        max_iterations: iterations,
        tol: 0.0,
        h_every: 0,
        // The paper\'s flow on the whole network; balancing by components is tested apart.
        topology: Topology::Whole,
    }
}

/// The flow at half its largest stable step for these networks.
fn stable_flow(j: &[f32], groups: usize, n: usize, iterations: usize) -> BalanceParams {
    flow(
        0.5 * Networks::recurrent(groups, n, j).largest_stable_dt(2.0),
        iterations,
    )
}

fn solver(tol: f64) -> BalanceParams {
    BalanceParams {
        p: 2.0,
        aggregate: Aggregate::Sum,
        method: Method::Solver,
        max_iterations: 20_000,
        tol,
        h_every: 0,
        topology: Topology::Whole,
    }
}

/// J_ij ~ N(0, 1/N) with rows and columns rescaled by e^(+-s_i), s_i ~ N(0, spread^2): a network
/// off balance, with zeros at every 9th synapse.
fn unbalanced(groups: usize, n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let s: Vec<f32> = normal(groups * n, seed + 1)
        .iter()
        .map(|v| spread * v)
        .collect();
    normal(groups * n * n, seed)
        .iter()
        .enumerate()
        .map(|(e, v)| {
            let (g, i, j) = (e / (n * n), (e / n) % n, e % n);
            if e % 9 == 4 && i != j {
                0.0
            } else {
                v / (n as f32).sqrt() * (s[g * n + i] - s[g * n + j]).exp()
            }
        })
        .collect()
}

fn run(j: &[f32], groups: usize, n: usize, params: &BalanceParams) -> Balanced {
    balance(&mut cpu(), &Networks::recurrent(groups, n, j), params).unwrap()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| f64::from(*x)).collect()
}

#[test]
fn task_preserved_outputs_equal_and_states_scaled_by_e_minus_h() {
    // Prop. 1 on a batch of 3 random ReLU networks x 4 trials driven by white-noise inputs.
    let p: RateParams = serde_json::from_value(serde_json::json!({
        "n": 60, "networks": 3, "trials": 4, "inputs": 3, "outputs": 2, "g": 1.2, "tau": 10.0, "dt": 1.0,
        "phi": "relu", "input": { "kind": "gaussian", "mean": 0.2, "std": 1.0 }
    }))
    .unwrap();
    // Random weights moved off balance by a random task-preserving transformation, so that the
    // balanced network's states differ by factors of e^O(1).
    let mut w = Weights::random(&p, 7);
    let s = normal(3 * 60, 8);
    for e in 0..w.j.len() {
        let (g, i, k) = (e / 3600, (e / 60) % 60, e % 60);
        w.j[e] *= (s[g * 60 + k] - s[g * 60 + i]).exp();
    }
    for e in 0..w.w_in.len() {
        w.w_in[e] *= (-s[e / 3]).exp();
    }
    for e in 0..w.w_out.len() {
        let (g, k) = (e / 120, e % 60);
        w.w_out[e] *= s[g * 60 + k].exp();
    }
    let networks = Networks {
        w_in: Some((3, &w.w_in)),
        w_out: Some((2, &w.w_out)),
        ..Networks::recurrent(3, 60, &w.j)
    };
    let b = balance(&mut cpu(), &networks, &solver(1e-5)).unwrap();
    assert!(
        b.h.iter().fold(0.0f32, |m, v| m.max(v.abs())) > 0.3,
        "h must move for the test to mean anything"
    );
    let balanced = Weights {
        j: b.j.clone(),
        w_in: b.w_in.clone(),
        w_out: b.w_out.clone(),
    };
    let monitors = Monitors {
        x: Some(Monitor {
            every: 1,
            trials: None,
        }),
        y: Some(Monitor {
            every: 1,
            trials: None,
        }),
    };
    let before = simulate(&mut cpu(), &p, &w, 3, 300, &monitors, &mut |_| {}).unwrap();
    let after = simulate(&mut cpu(), &p, &balanced, 3, 300, &monitors, &mut |_| {}).unwrap();
    // In exact arithmetic y is identical; in f32 each step's sums round differently in the two
    // networks (relative 2^-24 sqrt(N) per step) and the stable dynamics forget errors within
    // ~tau/dt = 10 steps, so the difference stays near 1e-6 of max |y|: 1e-5 leaves room.
    let y_err = max_rel(&to_f64(&after.y), &to_f64(&before.y));
    assert!(y_err < 1e-5, "outputs differ by {y_err:.2e} of max |y|");
    // x(t) = e^-H x0(t): neuron i of network g scales by e^(-h_gi); trials share the network.
    let (n, trials) = (60, 4);
    let scaled: Vec<f64> = before
        .x
        .iter()
        .enumerate()
        .map(|(e, v)| {
            let (b_idx, i) = ((e / n) % (3 * trials), e % n);
            f64::from(*v) * f64::from(-b.h[(b_idx / trials) * n + i]).exp()
        })
        .collect();
    let x_err = max_rel(&to_f64(&after.x), &scaled);
    assert!(x_err < 1e-5, "states differ from e^-h x0 by {x_err:.2e}");
    // Signs and zeros are kept exactly.
    assert!(w
        .j
        .iter()
        .zip(&b.j)
        .all(|(a, c)| a.signum() == c.signum() && (*a == 0.0) == (*c == 0.0)));
}

/// tr(J^k) for k = 1..=n: the power sums of the eigenvalues, which fix the whole spectrum.
fn power_traces(n: usize, j: &[f32]) -> Vec<f64> {
    let a = nalgebra::DMatrix::from_fn(n, n, |r, c| f64::from(j[r * n + c]));
    let mut m = a.clone();
    (0..n)
        .map(|_| {
            let t = m.trace();
            m = &m * &a;
            t
        })
        .collect()
}

#[test]
fn spectrum_and_cycle_products_preserved_by_flow_solver_and_max_rule() {
    let n = 8;
    let j = unbalanced(1, n, 40, 1.0);
    let max_rule = BalanceParams {
        p: 1.0,
        aggregate: Aggregate::Max,
        ..flow(
            0.5 * Networks::recurrent(1, n, &j).largest_stable_dt(1.0),
            3000,
        )
    };
    for params in [stable_flow(&j, 1, n, 500), solver(1e-6), max_rule] {
        let b = run(&j, 1, n, &params);
        assert!(
            b.h.iter().any(|v| v.abs() > 0.1),
            "{:?}: h must move",
            params.method
        );
        let (t0, t1) = (power_traces(n, &j), power_traces(n, &b.j));
        for (k, (a, c)) in t0.iter().zip(&t1).enumerate() {
            // f32 weights: each entry of J^k carries ~k roundings of 2^-24 relative over n^k terms.
            let scale = power_traces(n, &j.iter().map(|v| v.abs()).collect::<Vec<_>>())[k];
            assert!(
                (a - c).abs() <= 1e-5 * scale,
                "{:?}: tr(J^{}) {a} became {c}",
                params.method,
                k + 1
            );
        }
        // Directed cycles 0 -> 1 -> ... -> L-1 -> 0 of every length through nonzero synapses.
        for len in 2..=n {
            let prod = |w: &[f32]| {
                (0..len)
                    .map(|s| f64::from(w[((s + 1) % len) * n + s]))
                    .product::<f64>()
            };
            let (p0, p1) = (prod(&j), prod(&b.j));
            assert!(
                (p0 - p1).abs() <= 1e-5 * p0.abs(),
                "{:?}: cycle of length {len}: {p0} became {p1}",
                params.method
            );
        }
    }
}

#[test]
fn total_cost_never_increases_and_converges_to_balance() {
    // Prop. 3 for a strongly connected batch: both the flow and the solver reach g = 0.
    let (groups, n) = (3, 50);
    let j = unbalanced(groups, n, 50, 0.5);
    for params in [stable_flow(&j, groups, n, 20_000), solver(1e-5)] {
        let params = BalanceParams {
            tol: 1e-5,
            ..params
        };
        let b = run(&j, groups, n, &params);
        assert!(
            b.converged_at.is_some(),
            "{:?}: ||g|| / ||g0|| = {:.2e} after {} iterations",
            params.method,
            b.grad_norm[b.grad_norm.len() - 1] / b.grad_norm[0],
            b.iterations
        );
        for g in 0..groups {
            let cost: Vec<f64> = b
                .total_cost
                .iter()
                .skip(g)
                .step_by(groups)
                .copied()
                .collect();
            // Sums of f32 costs: a rise below 1e-6 relative is rounding, not the flow.
            assert!(
                cost.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-6)),
                "{:?}: the total cost rose",
                params.method
            );
            assert!(
                cost[cost.len() - 1] < 0.9 * cost[0],
                "{:?}: balancing must lower this network's cost",
                params.method
            );
            // The balance condition (eq. 21), checked on the returned J itself.
            let c = Networks::recurrent(groups, n, &b.j).costs(g, 2.0);
            let gn: f64 = neural_gradients(n, &c)
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            let g0: f64 = neural_gradients(n, &Networks::recurrent(groups, n, &j).costs(g, 2.0))
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            assert!(
                gn < 1e-4 * g0,
                "{:?}: network {g}: ||g|| = {gn:.2e}, ||g0|| = {g0:.2e}",
                params.method
            );
            let hsum: f64 = b.h[g * n..(g + 1) * n].iter().map(|v| f64::from(*v)).sum();
            assert!(hsum.abs() < 1e-4, "sum h = {hsum} (eq. 22)");
        }
    }
}

#[test]
fn flow_and_solver_reach_the_same_balanced_point() {
    let (groups, n) = (2, 40);
    let j = unbalanced(groups, n, 60, 0.5);
    let by_flow = run(
        &j,
        groups,
        n,
        &BalanceParams {
            tol: 1e-6,
            ..stable_flow(&j, groups, n, 100_000)
        },
    );
    let by_solver = run(&j, groups, n, &solver(1e-6));
    assert!(by_flow.converged_at.is_some() && by_solver.converged_at.is_some());
    // Each stops at the end of the chunk in which it reached the tolerance.
    for b in [&by_flow, &by_solver] {
        let stop = b.converged_at.unwrap() + 1;
        assert!(b.iterations >= stop && b.iterations < stop + chunk_iterations(groups * n * n));
    }
    // Both stop at ||g|| <= 1e-6 ||g0||: h differs by about that over the smallest curvature.
    let dh = max_rel(&to_f64(&by_solver.h), &to_f64(&by_flow.h));
    let dj = max_rel(&to_f64(&by_solver.j), &to_f64(&by_flow.j));
    assert!(
        dh < 1e-3 && dj < 1e-3,
        "h differs by {dh:.2e}, J by {dj:.2e}"
    );
    assert!(
        by_solver.converged_at.unwrap() * 10 < by_flow.converged_at.unwrap(),
        "solver {} vs flow {} passes",
        by_solver.converged_at.unwrap(),
        by_flow.converged_at.unwrap()
    );
}

/// c12(t) = c0 e^(p (h2 - h1)) along a flow recorded every iteration.
fn c12_trajectory(b: &Balanced, c0: f64, p: f64) -> Vec<f64> {
    b.h_trajectory
        .chunks(2)
        .map(|h| c0 * (p * f64::from(h[1] - h[0])).exp())
        .collect()
}

#[test]
fn single_feedforward_synapse_decays_as_eq_31_and_has_no_balanced_point() {
    // J = [[0, J12], [0, 0]]: c12(t) = c0 / (2 c0 gamma p^2 t + 1), with gamma p = 1 here.
    let (p, c0) = (2.0f64, 1.5f64);
    let j = [0.0, c0.sqrt() as f32, 0.0, 0.0];
    let err = |dt: f32| {
        let steps = (2.0 / dt) as usize;
        let b = run(
            &j,
            1,
            2,
            &BalanceParams {
                h_every: 1,
                ..flow(dt, steps)
            },
        );
        let c = c12_trajectory(&b, c0, p);
        c.iter()
            .enumerate()
            .map(|(s, v)| (v - c0 / (2.0 * c0 * p * s as f64 * dt as f64 + 1.0)).abs() / c0)
            .fold(0.0, f64::max)
    };
    // Euler is first order: the error must fall with dt, and halve when dt halves.
    let (e1, e2) = (err(0.004), err(0.002));
    assert!(
        e1 < 5e-3 && (1.7..2.3).contains(&(e1 / e2)),
        "errors {e1:.2e} at dt 0.004, {e2:.2e} at dt 0.002"
    );
    match balance(&mut cpu(), &Networks::recurrent(1, 2, &j), &solver(1e-6)) {
        Err(DaleError::NoBalance { network: 0, .. }) => {}
        other => panic!("the solver must refuse a feedforward synapse, got {other:?}"),
    }
}

#[test]
fn two_neurons_follow_the_tanh_and_coth_branches() {
    // q(t) = c12 / c_hat with c_hat = sqrt(c12_0 c21_0) and k = 2 gamma p^2 c_hat = 2 p c_hat
    // (gamma p = 1): tanh(k t + atanh q0) for q0 < 1, coth(k t + acoth q0) for q0 > 1.
    let p = 2.0f64;
    for (c12, c21) in [(0.2f64, 1.8f64), (2.5, 0.4)] {
        let j = [0.0, c12.sqrt() as f32, -(c21.sqrt() as f32), 0.0];
        let (chat, q0) = ((c12 * c21).sqrt(), (c12 / c21).sqrt());
        let k = 2.0 * p * chat;
        let q = |t: f64| {
            if q0 < 1.0 {
                (k * t + q0.atanh()).tanh()
            } else {
                1.0 / (k * t + (1.0 / q0).atanh()).tanh()
            }
        };
        let err = |dt: f32| {
            let b = run(
                &j,
                1,
                2,
                &BalanceParams {
                    h_every: 1,
                    ..flow(dt, (1.5 / dt) as usize)
                },
            );
            let c = c12_trajectory(&b, c12, p);
            c.iter()
                .enumerate()
                .map(|(s, v)| (v / chat - q(s as f64 * dt as f64)).abs())
                .fold(0.0, f64::max)
        };
        let (e1, e2) = (err(0.004), err(0.002));
        assert!(
            e1 < 1e-2 && (1.7..2.3).contains(&(e1 / e2)),
            "c12 {c12} c21 {c21}: errors {e1:.2e}, {e2:.2e}"
        );
        // The end point: both costs at the geometric mean (eq. 29-30).
        let b = run(&j, 1, 2, &solver(1e-7));
        let c = Networks::recurrent(1, 2, &b.j).costs(0, 2.0);
        assert!(
            (c[1] - chat).abs() < 1e-5 * chat && (c[2] - chat).abs() < 1e-5 * chat,
            "costs {c:?}, c_hat {chat}"
        );
    }
}

#[test]
fn prop_5_bounds_hold() {
    let (groups, n) = (4, 30);
    let j = unbalanced(groups, n, 70, 1.0);
    let b = run(&j, groups, n, &solver(1e-7));
    for g in 0..groups {
        let c0 = Networks::recurrent(groups, n, &j).costs(g, 2.0);
        let (lower, upper) = cost_bounds(n, &c0);
        let c_star = Networks::recurrent(groups, n, &b.j)
            .costs(g, 2.0)
            .iter()
            .sum::<f64>();
        assert!(
            lower <= c_star * (1.0 + 1e-6) && c_star <= upper,
            "network {g}: {lower} <= {c_star} <= {upper} fails"
        );
        assert!(
            upper < c0.iter().sum::<f64>(),
            "the upper bound must say something"
        );
    }
}

#[test]
fn normal_matrices_are_fixed_points() {
    let n = 24;
    // A symmetric matrix, a circulant one (normal, not symmetric), and Q D Q^T with Q orthogonal
    // and D of 2x2 rotation-scaling blocks (normal, not symmetric, no zeros).
    let sym: Vec<f32> = {
        let a = normal(n * n, 80);
        (0..n * n).map(|e| a[e] + a[(e % n) * n + e / n]).collect()
    };
    let row = normal(n, 81);
    let circulant: Vec<f32> = (0..n * n).map(|e| row[(e / n + n - e % n) % n]).collect();
    let q = nalgebra::DMatrix::from_fn(n, n, |r, c| f64::from(normal(n * n, 82)[r * n + c]))
        .qr()
        .q();
    let mut d = nalgebra::DMatrix::zeros(n, n);
    for b in 0..n / 2 {
        let (re, im) = (1.0 + b as f64 * 0.1, 0.5 - b as f64 * 0.07);
        d[(2 * b, 2 * b)] = re;
        d[(2 * b + 1, 2 * b + 1)] = re;
        d[(2 * b, 2 * b + 1)] = im;
        d[(2 * b + 1, 2 * b)] = -im;
    }
    let normal_m = &q * d * q.transpose();
    let qdq: Vec<f32> = (0..n * n)
        .map(|e| normal_m[(e / n, e % n)] as f32)
        .collect();
    for (name, j) in [
        ("symmetric", sym),
        ("circulant", circulant),
        ("Q D Q^T", qdq),
    ] {
        let c = Networks::recurrent(1, n, &j).costs(0, 2.0);
        let g = neural_gradients(n, &c);
        let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let total: f64 = c.iter().sum();
        // Row and column sums of f32 squares agree to f32 rounding of the entries.
        assert!(gn < 1e-5 * total, "{name}: ||g|| = {gn:.2e}, C = {total}");
        // The solver then does not move it.
        let b = run(&j, 1, n, &solver(1e-6));
        assert!(
            b.h.iter().all(|v| v.abs() < 1e-4),
            "{name}: h moved to {:?}",
            b.h.iter().fold(0.0f32, |m, v| m.max(v.abs()))
        );
    }
}

#[test]
fn symmetrisable_costs_end_at_geometric_means_and_rank_one_at_sqrt_ab() {
    let n = 20;
    // C0 = D S D^-1 with S symmetric positive (symmetric zeros) and D positive diagonal.
    let s = normal(n * n, 90);
    let d: Vec<f64> = normal(n, 91).iter().map(|v| f64::from(*v).exp()).collect();
    let sym = |i: usize, j: usize| {
        if (i + j) % 5 == 0 {
            0.0
        } else {
            f64::from(s[i * n + j].abs() + s[j * n + i].abs())
        }
    };
    let c_sym: Vec<f64> = (0..n * n)
        .map(|e| sym(e / n, e % n) * d[e / n] / d[e % n])
        .collect();
    // Rank one: C0 = a b^T, all positive.
    let (a, bv): (Vec<f64>, Vec<f64>) = (
        normal(n, 92).iter().map(|v| f64::from(v.exp())).collect(),
        normal(n, 93).iter().map(|v| f64::from(v.exp())).collect(),
    );
    let c_rank1: Vec<f64> = (0..n * n).map(|e| a[e / n] * bv[e % n]).collect();
    let want_rank1: Vec<f64> = (0..n * n)
        .map(|e| (a[e / n] * bv[e / n]).sqrt() * (a[e % n] * bv[e % n]).sqrt())
        .collect();
    let want_sym: Vec<f64> = (0..n * n)
        .map(|e| (c_sym[e] * c_sym[(e % n) * n + e / n]).sqrt())
        .collect();
    for (name, c0, want) in [
        ("symmetrisable", c_sym, want_sym),
        ("rank one", c_rank1, want_rank1),
    ] {
        // J with these costs for p = 2 and alternating signs.
        let j: Vec<f32> = c0
            .iter()
            .enumerate()
            .map(|(e, c)| (c.sqrt() * if e % 3 == 0 { -1.0 } else { 1.0 }) as f32)
            .collect();
        let b = run(&j, 1, n, &solver(1e-7));
        let got = Networks::recurrent(1, n, &b.j).costs(0, 2.0);
        let err = max_rel(&got, &want);
        assert!(
            err < 1e-5,
            "{name}: balanced costs differ from the prediction by {err:.2e}"
        );
        let lower = cost_bounds(n, &c0).0;
        assert!(
            (got.iter().sum::<f64>() - lower).abs() < 1e-5 * lower,
            "{name}: the lower bound (42) must be attained"
        );
    }
}

#[test]
fn max_rule_balances_largest_incoming_and_outgoing_weights() {
    // The generalised Lax rule g_k = max_j |J_kj| - max_i |J_ik| (001 section 6.2, ref. 40).
    let (groups, n) = (2, 30);
    let j = unbalanced(groups, n, 100, 0.5);
    let dt = 0.5 * Networks::recurrent(groups, n, &j).largest_stable_dt(1.0);
    // g_k is the difference of two single weights, each known to f32 precision through h = O(1),
    // so ||g|| stops falling near 1e-6 of ||g0|| (measured 8.5e-7): 3e-6 is reachable.
    let params = BalanceParams {
        p: 1.0,
        aggregate: Aggregate::Max,
        method: Method::Flow { dt },
        max_iterations: 100_000,
        tol: 3e-6,
        h_every: 0,
        // The paper\'s flow on the whole network; balancing by components is tested apart.
        topology: Topology::Whole,
    };
    let b = run(&j, groups, n, &params);
    assert!(
        b.converged_at.is_some(),
        "||g|| / ||g0|| = {:.2e}",
        b.grad_norm[b.grad_norm.len() - 1] / b.grad_norm[0]
    );
    for g in 0..groups {
        let w = &b.j[g * n * n..(g + 1) * n * n];
        for k in 0..n {
            let inc = (0..n)
                .filter(|&o| o != k)
                .map(|o| w[k * n + o].abs())
                .fold(0.0f32, f32::max);
            let out = (0..n)
                .filter(|&o| o != k)
                .map(|o| w[o * n + k].abs())
                .fold(0.0f32, f32::max);
            assert!(
                (inc - out).abs() < 1e-4 * inc.max(out),
                "network {g} neuron {k}: max in {inc}, max out {out}"
            );
        }
    }
    match balance(
        &mut cpu(),
        &Networks::recurrent(groups, n, &j),
        &BalanceParams {
            method: Method::Solver,
            ..params
        },
    ) {
        Err(DaleError::Scene { .. }) => {}
        other => panic!("the solver is for power-law costs; got {other:?}"),
    }
}

#[test]
fn robustness_cost_with_per_column_sigma2() {
    // alpha_ij = sigma_j^2 (eq. 13): at the balanced point sum_j sigma_j^2 J_kj^2 equals
    // sum_i sigma_k^2 J_ik^2 for every k.
    let n = 25;
    let j = unbalanced(1, n, 110, 1.0);
    let sigma2: Vec<f32> = normal(n, 111).iter().map(|v| 0.2 + v.abs()).collect();
    let networks = Networks {
        alpha: Alpha::PerColumn { shared: true },
        alpha_values: &sigma2,
        ..Networks::recurrent(1, n, &j)
    };
    let b = balance(&mut cpu(), &networks, &solver(1e-7)).unwrap();
    let c = Networks {
        j: &b.j,
        ..networks
    }
    .costs(0, 2.0);
    let g = neural_gradients(n, &c);
    let total: f64 = c.iter().sum();
    assert!(
        g.iter().all(|v| v.abs() < 1e-5 * total),
        "largest |g_k| {:.2e}",
        g.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    );
}

#[test]
fn heat_equation_and_resistance_near_equilibrium() {
    // Fig. 5's setting: a 12-neuron ring at balance (all costs 1), one synapse perturbed by a
    // small factor eta. The change of its log-weight at the new balance is -eta c R (eq. 48), and
    // h* = p^-1 L^+ g0 (eq. 40), to first order in eta.
    let n = 12;
    let eta = 1e-3f64;
    let mut j = vec![0.0f32; n * n];
    for i in 0..n {
        j[((i + 1) % n) * n + i] = 1.0; // i -> i + 1
    }
    let (post, pre) = (1usize, 0usize);
    j[post * n + pre] = (1.0 + eta) as f32;
    let b = run(&j, 1, n, &solver(1e-7));
    let c0 = Networks::recurrent(1, n, &j).costs(0, 2.0);
    let l = laplacian(n, &c0);
    let pinv = pseudo_inverse(&l);
    let g0 = neural_gradients(n, &c0);
    let h_star: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|k| pinv[(i, k)] * g0[k]).sum::<f64>() / 2.0)
        .collect();
    let dh = max_rel(&to_f64(&b.h), &h_star);
    // Second-order terms are O(eta) relative to the first-order h*.
    assert!(dh < 10.0 * eta, "h* differs from p^-1 L+ g0 by {dh:.2e}");
    let log_change = (f64::from(b.j[post * n + pre]) / f64::from(j[post * n + pre])).ln() / eta;
    let want = -c0[post * n + pre] * resistance(&pinv, post, pre);
    assert!(
        (log_change - want).abs() < 0.02 * want.abs(),
        "log change / eta {log_change}, -c R = {want}"
    );
    // The ring's Laplacian: 12 modes, one zero, the rest positive.
    let (values, _) = laplacian_modes(&l);
    assert!(values[0].abs() < 1e-12 && values[1] > 0.1);
}

backend_tests! {
    /// The flow and the solver on a batch of two networks: on each backend the total cost falls
    /// in every network and the solver reaches its tolerance; the GPU's h and J match the CPU's.
    fn flow_and_solver_on_a_batch(side: &Side) {
        let (groups, n) = (2, 257);
        let j = unbalanced(groups, n, 120, 1.0);
        for params in [stable_flow(&j, groups, n, 300), solver(1e-5)] {
            let nets = Networks::recurrent(groups, n, &j);
            let got = balance(side.backend().as_mut(), &nets, &params).unwrap();
            let cost = &got.total_cost;
            for g in 0..groups {
                assert!(cost[cost.len() - groups + g] < 0.9 * cost[g], "{:?}: network {g}", params.method);
            }
            if params.method == Method::Solver {
                assert!(got.converged_at.is_some(), "the solver reached its tolerance");
            }
            if !side.is_gpu() {
                continue;
            }
            let want = balance(&mut common::cpu(), &nets, &params).unwrap();
            // Each iteration's f32 sums round differently on the two sides, but balancing is a
            // contraction towards one point, so the differences do not grow: 1e-4 of max |h|.
            let dh = max_rel(&to_f64(&got.h), &to_f64(&want.h));
            let dj = max_rel(&to_f64(&got.j), &to_f64(&want.j));
            assert!(
                dh < 1e-4 && dj < 1e-4,
                "{:?}: h differs by {dh:.2e}, J by {dj:.2e}",
                params.method
            );
            let dc = max_rel(&got.total_cost, &want.total_cost);
            assert!(
                dc < 1e-5,
                "{:?}: total cost history differs by {dc:.2e}",
                params.method
            );
        }
    }
}

#[test]
fn sensitivity_from_gain_moments_equals_the_mean_jacobian_norm_and_is_task_invariant() {
    // Eq. 9: S = sum_ij sigma_j^2 J_ij^2 - 2 sum_i mu_i J_ii + N equals the average over visited
    // states of ||-I + J diag(phi'(x))||_F^2 (eq. 6-7), and (Prop. 2) the gain moments do not
    // change under the task-preserving transformation, since phi' is scale-free for ReLU.
    let n = 12;
    let j = unbalanced(1, n, 130, 0.5);
    let states = normal(40 * n, 131);
    let (mu, sigma2) = gain_moments(Phi::Relu, n, &states);
    let direct: f64 = states
        .chunks(n)
        .map(|x| {
            let mut f = 0.0;
            for i in 0..n {
                for k in 0..n {
                    let slope = if x[k] > 0.0 { 1.0 } else { 0.0 };
                    let v = f64::from(j[i * n + k]) * slope - if i == k { 1.0 } else { 0.0 };
                    f += v * v;
                }
            }
            f
        })
        .sum::<f64>()
        / 40.0;
    let s = sensitivity(&j, &mu, &sigma2);
    assert!(
        (s - direct).abs() < 1e-9 * direct,
        "eq. 9 gives {s}, the Jacobian average {direct}"
    );
    let h = normal(n, 132);
    let scaled: Vec<f32> = states
        .iter()
        .enumerate()
        .map(|(e, v)| v * (-h[e % n]).exp())
        .collect();
    assert_eq!(gain_moments(Phi::Relu, n, &scaled), (mu, sigma2));
}

/// A network that is not strongly connected (Prop. B.1): two rings of four neurons (0-3 and
/// 4-7), a synapse from the first ring to the second, and neuron 8, which only listens to the
/// first ring (it lies on no cycle). On the whole network the solver refuses it. By components,
/// the solver and the flow each balance each ring on its own synapses (incoming = outgoing cost
/// for every ring neuron), each ring's h sums to 0, neuron 8 is held at h = 0 exactly, and the
/// synapses between components are scaled by the transformation like any other.
#[test]
fn a_network_that_is_not_strongly_connected_is_balanced_by_components() {
    let n = 9;
    let draws = normal(64, 140);
    let mut next = draws.iter().map(|v| v.signum() * (0.3 + v.abs()));
    let mut j = vec![0.0f32; n * n];
    for ring in [0usize, 4] {
        for a in 0..4 {
            let b = (a + 1) % 4;
            j[(ring + b) * n + ring + a] = next.next().unwrap();
            j[(ring + a) * n + ring + b] = next.next().unwrap();
        }
    }
    let (bridge, listen_a, listen_b) = ((5, 1), (8, 2), (8, 0));
    for (i, k) in [bridge, listen_a, listen_b] {
        j[i * n + k] = next.next().unwrap();
    }
    let nets = Networks::recurrent(1, n, &j);
    assert!(matches!(
        balance(&mut cpu(), &nets, &solver(1e-6)),
        Err(DaleError::NoBalance { network: 0, .. })
    ));
    let by_components = |params: BalanceParams| BalanceParams {
        topology: Topology::Components,
        ..params
    };
    for params in [
        by_components(solver(1e-7)),
        by_components(BalanceParams {
            tol: 1e-6,
            ..stable_flow(&j, 1, n, 200_000)
        }),
    ] {
        let b = balance(&mut cpu(), &nets, &params).unwrap();
        let what = format!("{:?}", params.method);
        assert!(b.converged_at.is_some(), "{what}: did not converge");
        assert_eq!(
            b.splits,
            vec![Split {
                network: 0,
                balanced_components: 2,
                held: vec![8],
            }],
            "{what}"
        );
        assert_eq!(b.h[8], 0.0, "{what}: the held neuron moved");
        for ring in [0usize, 4] {
            let sum: f32 = b.h[ring..ring + 4].iter().sum();
            assert!(sum.abs() < 1e-5, "{what}: ring {ring} sums h to {sum}");
            let c = |i: usize, k: usize| f64::from(b.j[i * n + k]).powi(2);
            let total: f64 = (ring..ring + 4)
                .flat_map(|i| (ring..ring + 4).map(move |k| (i, k)))
                .map(|(i, k)| c(i, k))
                .sum();
            for k in ring..ring + 4 {
                let inc: f64 = (ring..ring + 4).filter(|&o| o != k).map(|o| c(k, o)).sum();
                let out: f64 = (ring..ring + 4).filter(|&o| o != k).map(|o| c(o, k)).sum();
                // Converged to 1e-6 of the first ||g||, which is below the total cost.
                assert!(
                    (inc - out).abs() < 1e-4 * total,
                    "{what}: neuron {k} has incoming {inc} and outgoing {out}"
                );
            }
        }
        for (i, k) in [bridge, listen_a, listen_b] {
            let want = f64::from(j[i * n + k]) * f64::from(b.h[k] - b.h[i]).exp();
            let got = f64::from(b.j[i * n + k]);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs(),
                "{what}: synapse {k} -> {i} is {got}, pi_h gives {want}"
            );
        }
    }
    // A strongly connected network is one component: by components it is balanced exactly as a
    // whole.
    let connected = unbalanced(2, 40, 141, 1.0);
    let whole = run(&connected, 2, 40, &solver(1e-6));
    let parts = run(&connected, 2, 40, &by_components(solver(1e-6)));
    assert!(parts.splits.is_empty());
    assert_eq!(whole.h, parts.h);
    assert_eq!(whole.j, parts.j);
}

/// The readout-aware cost, from its formula in f64: the robustness costs sigma_j^2 J_ij^2 of the
/// synapses (self-synapses, which h leaves alone, left out), the readout path r_j e^(2 h_j) and
/// the input path q_j e^(-2 h_j); and its neural gradient g_k = in_k - out_k with both paths.
struct IoCost {
    n: usize,
    c: Vec<f64>,
    r: Vec<f64>,
    q: Vec<f64>,
}

impl IoCost {
    fn total(&self, h: &[f64]) -> f64 {
        let n = self.n;
        let mut total = 0.0;
        for i in 0..n {
            for k in (0..n).filter(|&k| k != i) {
                total += self.c[i * n + k] * (2.0 * (h[k] - h[i])).exp();
            }
            total += self.r[i] * (2.0 * h[i]).exp() + self.q[i] * (-2.0 * h[i]).exp();
        }
        total
    }

    fn gradient(&self, h: &[f64]) -> Vec<f64> {
        let n = self.n;
        (0..n)
            .map(|k| {
                let c = |i: usize, j: usize| self.c[i * n + j] * (2.0 * (h[j] - h[i])).exp();
                let inc: f64 = (0..n).filter(|&o| o != k).map(|o| c(k, o)).sum();
                let out: f64 = (0..n).filter(|&o| o != k).map(|o| c(o, k)).sum();
                inc + self.q[k] * (-2.0 * h[k]).exp() - out - self.r[k] * (2.0 * h[k]).exp()
            })
            .collect()
    }
}

#[test]
fn readout_aware_cost_is_convex_its_flow_and_solver_balance_silent_neurons_on_sum_h_0_and_keep_the_task(
) {
    let p: RateParams = serde_json::from_value(serde_json::json!({
        "n": 30, "trials": 4, "inputs": 3, "outputs": 2, "g": 1.2, "tau": 10.0, "dt": 1.0,
        "phi": "relu", "input": { "kind": "gaussian", "mean": 0.2, "std": 1.0 }
    }))
    .unwrap();
    let n = p.n;
    let w = Weights::random(&p, 150);
    // Gain moments with five silent neurons (sigma^2 = 0: no outgoing robustness cost), which
    // the robustness cost alone cannot balance.
    let sigma2: Vec<f32> = normal(n, 151)
        .iter()
        .enumerate()
        .map(|(j, v)| if j % 6 == 1 { 0.0 } else { 0.2 + v.abs() })
        .collect();
    let nets = Networks {
        w_in: Some((3, &w.w_in)),
        w_out: Some((2, &w.w_out)),
        alpha: Alpha::PerColumn { shared: true },
        alpha_values: &sigma2,
        ..Networks::recurrent(1, n, &w.j)
    };
    assert!(
        nets.split_components(0).is_some(),
        "the robustness cost alone splits it"
    );
    for input_path in [false, true] {
        let what = if input_path {
            "readout and input"
        } else {
            "readout"
        };
        let oracle = IoCost {
            n,
            c: nets.costs(0, 2.0),
            r: (0..n)
                .map(|j| (0..2).map(|k| f64::from(w.w_out[k * n + j]).powi(2)).sum())
                .collect(),
            q: (0..n)
                .map(|i| {
                    let q: f64 = (0..3).map(|m| f64::from(w.w_in[i * 3 + m]).powi(2)).sum();
                    if input_path {
                        q
                    } else {
                        0.0
                    }
                })
                .collect(),
        };
        // Convex along lines: second differences of C(a + t d) are >= 0 (up to f64 rounding).
        let (a, d) = (to_f64(&normal(n, 152)), to_f64(&normal(n, 153)));
        let at = |t: f64| -> f64 {
            let h: Vec<f64> = a.iter().zip(&d).map(|(x, y)| x + t * y).collect();
            oracle.total(&h)
        };
        for step in -10..10 {
            let t = 0.1 * f64::from(step);
            let second = at(t - 0.1) - 2.0 * at(t) + at(t + 0.1);
            assert!(
                second >= -1e-12 * at(t),
                "{what}: C is not convex at t = {t}: {second}"
            );
        }

        let dt = 0.5
            * World::new(&nets, input_path)
                .unwrap()
                .networks()
                .largest_stable_dt(2.0);
        // 1e-5 of the first ||g||: the f32 incoming and outgoing costs put a floor under ||g||,
        // measured near 2e-7 of its start with the readout and 2e-6 with the input path too.
        // Measured: the flow reaches it in 328 and 653 steps, the solver (Osborne steps on
        // g_k = nu) in 24 and 22.
        for params in [
            BalanceParams {
                tol: 1e-5,
                ..flow(dt, 400_000)
            },
            solver(1e-5),
        ] {
            let what = format!("{what}, {:?}", params.method);
            let b = balance_with_io_paths(&mut cpu(), &nets, &params, input_path).unwrap();
            assert!(
                b.converged_at.is_some(),
                "{what}: did not reach its tolerance in {} iterations",
                params.max_iterations
            );
            let h = to_f64(&b.h);
            let sum: f64 = h.iter().sum();
            assert!(sum.abs() < 1e-4, "{what}: sum h = {sum}");
            let silent_moved = (0..n).filter(|j| j % 6 == 1).any(|j| h[j].abs() > 0.05);
            assert!(
                silent_moved,
                "{what}: the silent neurons are balanced, not held"
            );
            // At the balanced point the formula's gradient is constant (a multiplier of sum h = 0):
            // its spread is below 1e-5 of the cost (the flow stops at 1e-5 of the first ||g||, and
            // ||g|| starts below C).
            let scale = oracle.total(&h);
            let grad = oracle.gradient(&h);
            let mean = grad.iter().sum::<f64>() / n as f64;
            let worst = grad.iter().fold(0.0f64, |m, v| m.max((v - mean).abs()));
            assert!(
                worst < 1e-5 * scale,
                "{what}: |g_k - mean g| up to {worst:.2e} of C = {scale}"
            );
            assert!(
                scale < oracle.total(&vec![0.0; n]),
                "{what}: balancing lowered the cost"
            );
            // A minimum on sum h = 0: moving h_k up and h_l down by the same amount costs more.
            for k in 0..n {
                let l = (k + 7) % n;
                for delta in [-1e-3, 1e-3] {
                    let mut moved = h.clone();
                    moved[k] += delta;
                    moved[l] -= delta;
                    assert!(
                        oracle.total(&moved) >= scale * (1.0 - 1e-12),
                        "{what}: a lower cost next to h along ({k}, {l})"
                    );
                }
            }

            // The task: the same outputs from the balanced network (Prop. 1).
            let balanced = Weights {
                j: b.j.clone(),
                w_in: b.w_in.clone(),
                w_out: b.w_out.clone(),
            };
            let monitors = Monitors {
                x: None,
                y: Some(Monitor {
                    every: 1,
                    trials: None,
                }),
            };
            let before = simulate(&mut cpu(), &p, &w, 3, 200, &monitors, &mut |_| {}).unwrap();
            let after =
                simulate(&mut cpu(), &p, &balanced, 3, 200, &monitors, &mut |_| {}).unwrap();
            // As in task_preserved_outputs_equal_and_states_scaled_by_e_minus_h: f32 sums round
            // differently in the two networks, near 1e-6 of max |y|.
            let y_err = max_rel(&to_f64(&after.y), &to_f64(&before.y));
            assert!(
                y_err < 1e-5,
                "{what}: outputs differ by {y_err:.2e} of max |y|"
            );
        }
    }
    // A silent neuron (no outgoing cost) with no readout either reaches no readout: refused, by
    // name, since raising its h alone would lower the cost without bound.
    let mut w_out = w.w_out.clone();
    w_out[1] = 0.0;
    w_out[n + 1] = 0.0;
    let cut = Networks {
        w_out: Some((2, &w_out)),
        ..nets
    };
    let dt = 0.5
        * World::new(&cut, false)
            .unwrap()
            .networks()
            .largest_stable_dt(2.0);
    match balance_with_io_paths(&mut cpu(), &cut, &flow(dt, 10), false) {
        Err(DaleError::NoBalance { network: 0, why }) => {
            assert!(
                why.contains("from neuron 1 to a neuron with a nonzero W_out"),
                "{why}"
            )
        }
        other => panic!("neuron 1 reaches no readout, got {other:?}"),
    }
}

/// J dense (no self-synapses), random signs, magnitudes 10^u with u = decades tanh(z), z ~ N(0, 1):
/// weights spread over 2 `decades` decades, a third of them beyond 2/3 of the way out.
fn spanning_decades(n: usize, seed: u64, decades: f32) -> Vec<f32> {
    let z = normal(2 * n * n, seed);
    (0..n * n)
        .map(|e| {
            if e / n == e % n {
                return 0.0;
            }
            let sign = if z[2 * e + 1] < 0.0 { -1.0 } else { 1.0 };
            sign * 10f32.powf(decades * z[2 * e].tanh())
        })
        .collect()
}

/// ln(in_k) - ln(out_k) for every neuron at h, in f64 and in log space (ln c_ij(h) = p ln|J_ij| +
/// p (h_j - h_i), totals by log-sum-exp), so that no cost of any p over- or underflows.
fn log_imbalance(j: &[f32], n: usize, p: f64, h: &[f64]) -> Vec<f64> {
    let log_cost = |i: usize, c: usize| {
        let w = f64::from(j[i * n + c]).abs();
        (i != c && w > 0.0).then(|| p * (w.ln() + h[c] - h[i]))
    };
    let lse = |terms: Vec<f64>| {
        let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
    };
    (0..n)
        .map(|k| {
            let inc = lse((0..n).filter_map(|c| log_cost(k, c)).collect());
            let out = lse((0..n).filter_map(|i| log_cost(i, k)).collect());
            inc - out
        })
        .collect()
}

/// The balanced h of the power cost, by half-step parallel Osborne sweeps in f64 and log space:
/// h_k += (ln in_k - ln out_k) / (4 p), recentred, until every neuron's log imbalance is below
/// 1e-12. An oracle independent of dale's f32 ops.
fn log_space_oracle(j: &[f32], n: usize, p: f64) -> Vec<f64> {
    let mut h = vec![0.0f64; n];
    for _ in 0..200_000 {
        let r = log_imbalance(j, n, p, &h);
        if r.iter().all(|v| v.abs() < 1e-12) {
            return h;
        }
        for (hk, rk) in h.iter_mut().zip(&r) {
            *hk += rk / (4.0 * p);
        }
        let mean = h.iter().sum::<f64>() / n as f64;
        h.iter_mut().for_each(|v| *v -= mean);
    }
    panic!("the oracle did not converge");
}

backend_tests! {
    /// Issue 23: the power cost balances at extreme p, checked against an f64 log-space oracle:
    /// p = 1e-3 on weights from 1e-30 to 1e30, and p = 50 on weights from 1e-3 to 1e3, whose
    /// costs reach 1e150, beyond f32 (the weights are scaled by a power of two first:
    /// `Networks::weight_scale`). Every neuron ends balanced (its log imbalance, in f64 log space,
    /// below 1e-3: f32 totals over n terms) and h equals the oracle's within what that imbalance
    /// allows, 1e-3 / (2 p) (a neuron's log imbalance moves by 2 p per unit of its h).
    fn extreme_p_balances_against_the_log_space_oracle(side: &Side) {
        let n = 24;
        for (p, decades) in [(1e-3f32, 30.0), (50.0, 1.0)] {
            let j = spanning_decades(n, 2323, decades);
            let params = BalanceParams {
                p,
                max_iterations: 4000,
                ..solver(0.0)
            };
            let b = balance(side.backend().as_mut(), &Networks::recurrent(1, n, &j), &params)
                .unwrap_or_else(|e| panic!("p = {p}: {e}"));
            let h = to_f64(&b.h);
            let worst = log_imbalance(&j, n, f64::from(p), &h)
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(worst < 1e-3, "p = {p}: a neuron's log imbalance is {worst:.2e}");
            let oracle = log_space_oracle(&j, n, f64::from(p));
            let dh = h.iter().zip(&oracle).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                dh <= 1e-3 / (2.0 * f64::from(p)),
                "p = {p}: h differs from the oracle's by {dh:.2e}"
            );
            assert!(b.j.iter().all(|v| v.is_finite()), "p = {p}: balanced J not finite");
            // The costs were scaled where they had to be, and the reports say by how much.
            assert_eq!(b.cost_unit_log2 != 0.0, p == 50.0, "p = {p}");
        }
    }
}

/// Where f32 cannot hold some neuron's costs beside the others' even scaled, balancing is
/// refused before it runs, naming p, the neuron, its weight and the largest p that keeps it.
#[test]
fn a_p_whose_costs_leave_f32_is_refused_naming_the_largest_that_fits() {
    let n = 24;
    let j = spanning_decades(n, 2323, 30.0);
    let params = BalanceParams {
        p: 1e9,
        ..solver(1e-6)
    };
    let err = balance(&mut cpu(), &Networks::recurrent(1, n, &j), &params)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("p = 1000000000: neuron") && err.contains("the largest p that fits is"),
        "{err}"
    );
    let largest: f64 = err.rsplit(' ').next().unwrap().parse().unwrap();
    let fits = BalanceParams {
        p: (largest * 0.99) as f32,
        ..solver(1e-6)
    };
    balance(&mut cpu(), &Networks::recurrent(1, n, &j), &fits)
        .unwrap_or_else(|e| panic!("the largest p said to fit is refused: {e}"));
}
