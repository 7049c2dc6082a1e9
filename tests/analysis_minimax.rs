//! The minimax objective of paper 000 and its saddle point (src/analysis/minimax.rs, issue 19):
//! a one-E, one-I network against its closed form, and the generic network of Fig. 1, where the
//! solver's answer must satisfy the KKT conditions, be the maximum over r_I, and be the same
//! from different starts (the design's fixed point is unique).

use dale::analysis::minimax::{generic_network, MinimaxNet, Rates};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One E and one I neuron: W_EE = -1 (its self term), W_EI = w, W_II = 1, F = 1.
fn pair(w: f64) -> MinimaxNet {
    MinimaxNet {
        n_e: 1,
        n_i: 1,
        m: 1,
        w_ee: vec![-1.0],
        w_ei: vec![w],
        w_ii: vec![1.0],
        f: vec![1.0],
        theta_e: 0.0,
        theta_i: 0.0,
    }
}

fn zeros(net: &MinimaxNet) -> Rates {
    Rates {
        e: vec![0.0; net.n_e],
        i: vec![0.0; net.n_i],
    }
}

/// With both active, V_E = -r_E - w r_I + x = 0 and V_I = w r_E - r_I = 0: r_E = x / (1 + w^2),
/// r_I = w x / (1 + w^2). With x < 0 both are silent.
#[test]
fn a_pair_has_the_closed_form_saddle_point() {
    for (w, x) in [(0.5, 2.0), (2.0, 3.0), (1.0, -1.0)] {
        let net = pair(w);
        let r = net.saddle_point(&[x], zeros(&net), 1e-12, 100_000).unwrap();
        let (e, i) = if x > 0.0 {
            (x / (1.0 + w * w), w * x / (1.0 + w * w))
        } else {
            (0.0, 0.0)
        };
        assert!(
            (r.e[0] - e).abs() < 1e-12 && (r.i[0] - i).abs() < 1e-12,
            "w {w}, x {x}: {r:?}"
        );
    }
}

#[test]
fn the_generic_network_of_fig_1_reaches_its_unique_saddle_point() {
    let net = generic_network(20, 20, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    // Input rates 150 U(0, 1) Hz, as the figure's Poisson trains have.
    let x: Vec<f64> = (0..20).map(|_| 150.0 * rng.random::<f64>()).collect();
    let scale = net.drive(&x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 1e-9 * scale;
    let r = net.saddle_point(&x, zeros(&net), tol, 2_000_000).unwrap();
    assert!(net.kkt_residual(&r, &x) <= tol);
    let active = r.e.iter().chain(&r.i).filter(|v| **v > 0.0).count();
    assert!(
        active > 0 && active < 40,
        "{active} of 40 active: a trivial case"
    );
    // Concave in r_I (W_II = a W_EI' W_EI): no step of one inhibitory rate raises S.
    let s = net.objective(&r, &x);
    for j in 0..20 {
        for delta in [1e-3, -1e-3] {
            let mut moved = r.clone();
            moved.i[j] = (moved.i[j] + delta).max(0.0);
            assert!(
                net.objective(&moved, &x) <= s + 1e-9 * s.abs().max(1.0),
                "r_I[{j}] {delta:+}"
            );
        }
    }
    // The same point from a start of random rates.
    let start = Rates {
        e: (0..20).map(|_| 10.0 * rng.random::<f64>()).collect(),
        i: (0..20).map(|_| 10.0 * rng.random::<f64>()).collect(),
    };
    let again = net.saddle_point(&x, start, tol, 2_000_000).unwrap();
    for (a, b) in r.e.iter().chain(&r.i).zip(again.e.iter().chain(&again.i)) {
        assert!((a - b).abs() <= 1e-7 * scale, "{a} and {b}");
    }
}
