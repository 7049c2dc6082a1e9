//! Training by gradient descent through time (BPTT): the whole gradient against finite
//! differences of the loss, on each backend.

mod common;

use common::{backend_tests, cpu, normal};
use dale::backend::{Backend, BufferOps, Phi};
use dale::models::bptt::{Dynamics, HiddenNoise, Net, Trainer, Trials};

fn small_net(n: usize, m: usize, k: usize, seed: u64) -> Net {
    let scale = |v: Vec<f32>, s: f32| v.into_iter().map(|x| x * s).collect();
    Net {
        n,
        m,
        k,
        j: scale(normal(n * n, seed), 1.2 / (n as f32).sqrt()),
        w_in: scale(normal(n * m, seed + 1), 0.7),
        w_out: scale(normal(k * n, seed + 2), 0.5),
    }
}

/// Central differences of the loss along random directions over all weights, against the
/// gradient's inner product with each direction.
fn check_gradient(be: &mut dyn Backend, phi: Phi) {
    let (n, m, k, b, steps) = (7, 3, 2, 3, 6);
    let net = small_net(n, m, k, 1);
    let (u, z) = (normal(steps * b * m, 2), normal(steps * b * k, 3));
    let trials = Trials {
        trials: b,
        steps,
        inputs: &u,
        targets: &z,
    };
    let dynamics = Dynamics { leak: 0.3, phi };
    let mut trainer = Trainer::new(be, &net, dynamics, b, steps, 1).unwrap();
    trainer.set_trials(be, &trials).unwrap();
    let grads = trainer.gradients(be).unwrap();
    assert!(grads.loss > 0.1);
    let loss_at = |be: &mut dyn Backend, w: &Net| {
        let mut t = Trainer::new(be, w, dynamics, b, steps, 1).unwrap();
        t.set_trials(be, &trials).unwrap();
        t.loss(be, HiddenNoise::NONE, 0).unwrap()
    };
    for dir in 0..4u64 {
        let (vj, vi, vo) = (
            normal(n * n, 10 + dir),
            normal(n * m, 20 + dir),
            normal(k * n, 30 + dir),
        );
        // Direction restricted to one weight matrix at a time, then all at once.
        let pick = |which: u64, v: &[f32]| {
            if dir == 3 || dir == which {
                v.to_vec()
            } else {
                vec![0.0; v.len()]
            }
        };
        let (vj, vi, vo) = (pick(0, &vj), pick(1, &vi), pick(2, &vo));
        let eps = 1e-2f32;
        let moved = |sign: f32| Net {
            j: net
                .j
                .iter()
                .zip(&vj)
                .map(|(w, v)| w + sign * eps * v)
                .collect(),
            w_in: net
                .w_in
                .iter()
                .zip(&vi)
                .map(|(w, v)| w + sign * eps * v)
                .collect(),
            w_out: net
                .w_out
                .iter()
                .zip(&vo)
                .map(|(w, v)| w + sign * eps * v)
                .collect(),
            ..net.clone()
        };
        let fd = (loss_at(be, &moved(1.0)) - loss_at(be, &moved(-1.0))) / (2.0 * eps as f64);
        let dot = |g: &[f32], v: &[f32]| {
            g.iter()
                .zip(v)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
        };
        let analytic = dot(&grads.j, &vj) + dot(&grads.w_in, &vi) + dot(&grads.w_out, &vo);
        // Central differences err by eps^2 |L'''| / 6 (~1e-5 here) and by the f32 loss's rounding
        // over 2 eps (~1e-5 of L); 2e-3 of the derivative leaves a margin of 20 over both.
        assert!(
            (fd - analytic).abs() <= 2e-3 * analytic.abs().max(1e-2),
            "{phi:?} direction {dir}: finite difference {fd}, gradient {analytic}"
        );
    }
}

backend_tests! {
    fn bptt_gradient_matches_finite_differences(side: &Side) {
        // tanh exercises phi'; linear is cheap enough to add on the CPU only.
        let phis: &[Phi] = if side.is_gpu() { &[Phi::Tanh] } else { &[Phi::Tanh, Phi::Linear] };
        for &phi in phis {
            check_gradient(side.backend().as_mut(), phi);
        }
    }
}

#[test]
fn training_lowers_the_loss_and_l2_shrinks_j() {
    // A few hundred steps on a fixed batch: the loss must fall; with lambda > 0 the final J is
    // smaller than without.
    let (n, m, k, b, steps) = (20, 3, 2, 8, 10);
    let net = small_net(n, m, k, 5);
    let (u, z) = (
        normal(steps * b * m, 6),
        normal(steps * b * k, 7)
            .iter()
            .map(|v| 0.3 * v)
            .collect::<Vec<_>>(),
    );
    let trials = Trials {
        trials: b,
        steps,
        inputs: &u,
        targets: &z,
    };
    let mut norms = Vec::new();
    for lambda in [0.0f32, 0.5] {
        let be = &mut cpu();
        let mut t = Trainer::new(
            be,
            &net,
            Dynamics {
                leak: 0.3,
                phi: Phi::Relu,
            },
            b,
            steps,
            300,
        )
        .unwrap();
        t.set_trials(be, &trials).unwrap();
        for i in 0..300 {
            t.forward(be, HiddenNoise::NONE, 0);
            t.backward(be, 2 * i);
            t.step(be, 0.01, lambda);
        }
        let hist = be.download(t.history, 0, 600).unwrap();
        let (first, last) = (t.loss_from(hist[0]), t.loss_from(hist[598]));
        assert!(
            last < 0.7 * first,
            "lambda {lambda}: loss {first} -> {last}"
        );
        norms.push(t.weights(be).unwrap().j.iter().map(|v| v * v).sum::<f32>());
    }
    assert!(
        norms[1] < 0.8 * norms[0],
        "sum J^2 with lambda = 0.5: {}, without: {}",
        norms[1],
        norms[0]
    );
}
