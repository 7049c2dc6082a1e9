//! The rate network (001 eq. 1-2): GPU and CPU trajectories agree over 1,000 steps; the Euler
//! integration matches a closed form; chunking and monitors do not change the result.

mod common;

use common::{assert_close, backend_tests, cpu, Tol};
use dale::backend::{Backend, Phi};
use dale::models::rate::{simulate, Input, Monitor, Monitors, RateParams, Trajectory, Weights};

fn params(phi: Phi, sigma: f32) -> RateParams {
    RateParams {
        n: 257,
        trials: 3,
        networks: 2,
        tau: 10.0,
        dt: 1.0,
        phi,
        g: 0.8,
        inputs: 3,
        outputs: 2,
        sigma,
        input: Input::Sine {
            amplitude: 1.0,
            period: 50.0,
            offset: 0.2,
        },
    }
}

fn every_step() -> Monitors {
    Monitors {
        x: Some(Monitor {
            every: 1,
            trials: None,
        }),
        y: Some(Monitor {
            every: 1,
            trials: None,
        }),
    }
}

fn run(be: &mut dyn Backend, p: &RateParams, steps: usize, monitors: &Monitors) -> Trajectory {
    let w = Weights::random(p, 11);
    simulate(be, p, &w, 11, steps, monitors, &mut |_| {})
        .map_err(|(_, e)| e)
        .expect("run")
}

/// With g = 0.8 < 1 the network is stable around its driven trajectory, so per-step f32 rounding
/// differences (~1e-7 relative, from different sum orders in J phi(x)) do not grow exponentially;
/// they accumulate over the ~tau / (1 - g) = 50-step memory of the network to ~1e-5 of max |x|.
/// 1e-4 leaves a factor of 10 for the spread over 1,000 steps and 1,542 units.
const TRAJECTORY_TOL: Tol = Tol {
    rel: 1e-4,
    why: "stable network (g = 0.8): rounding differences stay bounded by its memory",
};

backend_tests! {
    /// 1,000 steps of every phi with and without noise: every step recorded, the state moving,
    /// the readout equal to W_out x at each sample; on the GPU, the trajectories of the CPU.
    fn trajectories_over_1000_steps(side: &Side) {
    for (phi, sigma) in [(Phi::Relu, 0.0), (Phi::Tanh, 0.5), (Phi::Linear, 0.2)] {
        let p = params(phi, sigma);
        let g = run(side.backend().as_mut(), &p, 1000, &every_step());
        assert_eq!(g.steps_done, 1000);
        assert_eq!((g.x_steps.len(), g.y_steps.len()), (1000, 1000));
        // The run must have moved: a trajectory stuck at zero would agree trivially.
        assert!(g.max_abs_x.iter().cloned().fold(0.0, f32::max) > 0.5);
        // y = W_out x (eq. 2) at the last sample, from the recorded x of batch entry 0.
        let w = Weights::random(&p, 11); // as `run` draws them
        let x_last = &g.x[(g.x_steps.len() - 1) * g.x_trials * p.n..][..p.n];
        let y_last = &g.y[(g.y_steps.len() - 1) * g.y_trials * p.outputs..][..p.outputs];
        let want: Vec<f32> = (0..p.outputs)
            .map(|k| (0..p.n).map(|i| f64::from(w.w_out[k * p.n + i]) * f64::from(x_last[i])).sum::<f64>() as f32)
            .collect();
        assert_close(&format!("{phi:?} y = W_out x"), y_last, &want, common::dot_tol(p.n));
        if !side.is_gpu() {
            continue;
        }
        let c = run(&mut common::cpu(), &p, 1000, &every_step());
        assert_close(&format!("{phi:?} x(t)"), &g.x, &c.x, TRAJECTORY_TOL);
        assert_close(&format!("{phi:?} y(t)"), &g.y, &c.y, TRAJECTORY_TOL);
        assert_close(
            &format!("{phi:?} population rate"),
            &g.population_rate,
            &c.population_rate,
            TRAJECTORY_TOL,
        );
        assert_close(
            &format!("{phi:?} x final"),
            &g.x_final,
            &c.x_final,
            TRAJECTORY_TOL,
        );
    }
    }
}

backend_tests! {
    fn euler_matches_the_closed_form_of_a_linear_unit(side: &Side) {
    // J = 0, one constant input u through W_in: tau dx/dt = -x + w u, so Euler gives
    // x_t = w u (1 - (1 - dt/tau)^t) exactly in real numbers.
    let p = RateParams {
        n: 5,
        trials: 2,
        networks: 1,
        tau: 20.0,
        dt: 0.5,
        phi: Phi::Linear,
        g: 0.0,
        inputs: 1,
        outputs: 1,
        sigma: 0.0,
        input: Input::Constant { value: vec![2.0] },
    };
    let w = Weights::random(&p, 3);
    {
        let mut be = side.backend();
        let traj = simulate(be.as_mut(), &p, &w, 3, 300, &every_step(), &mut |_| {})
            .map_err(|(_, e)| e)
            .unwrap();
        for (s, &t) in traj.x_steps.iter().enumerate() {
            let decay = 1.0 - (1.0 - 0.5f64 / 20.0).powi(t as i32);
            for trial in 0..2 {
                for i in 0..5 {
                    let want = w.w_in[i] as f64 * 2.0 * decay;
                    let got = traj.x[(s * 2 + trial) * 5 + i] as f64;
                    // t steps of f32 rounding, each ~6e-8 relative.
                    assert!(
                        (got - want).abs() <= 1e-7 * t as f64 * want.abs().max(1.0),
                        "{}: x_{i}({t}) = {got}, want {want}",
                        be.info().kind
                    );
                }
            }
        }
    }
}
}

#[test]
fn chunking_and_monitor_strides_do_not_change_the_trajectory() {
    // 600 steps cross two chunk boundaries; monitoring x every 7 steps must give exactly the
    // rows of monitoring every step, on the same backend.
    let p = params(Phi::Relu, 0.3);
    let every = run(&mut cpu(), &p, 600, &every_step());
    let sparse = run(
        &mut cpu(),
        &p,
        600,
        &Monitors {
            x: Some(Monitor {
                every: 7,
                trials: Some(2),
            }),
            y: None,
        },
    );
    assert_eq!(
        sparse.x_steps,
        (1..=600 / 7).map(|k| 7 * k).collect::<Vec<_>>()
    );
    let row = 2 * p.n;
    for (s, &t) in sparse.x_steps.iter().enumerate() {
        let full = &every.x[(t - 1) * p.batch() * p.n..][..row];
        assert_eq!(&sparse.x[s * row..(s + 1) * row], full, "x at step {t}");
    }
    assert_eq!(sparse.population_rate, every.population_rate);
}

#[test]
fn networks_are_independent_batch_entries() {
    // The batch is networks x trials: network 1 run alone with its own weights must give the
    // rows of network 1 in the batched run. A constant input, since the sine's phase depends on
    // the trial only and would match anyway; noise off, since its counter is the batch index.
    let p = RateParams {
        input: Input::Constant {
            value: vec![0.5, -0.2, 0.1],
        },
        ..params(Phi::Tanh, 0.0)
    };
    let w = Weights::random(&p, 11);
    let both = simulate(&mut cpu(), &p, &w, 11, 200, &every_step(), &mut |_| {})
        .map_err(|(_, e)| e)
        .unwrap();
    let one = RateParams {
        networks: 1,
        ..p.clone()
    };
    let (nn, m, k) = (p.n * p.n, p.n * p.inputs, p.outputs * p.n);
    let w1 = Weights {
        j: w.j[nn..].to_vec(),
        w_in: w.w_in[m..].to_vec(),
        w_out: w.w_out[k..].to_vec(),
    };
    let alone = simulate(&mut cpu(), &one, &w1, 11, 200, &every_step(), &mut |_| {})
        .map_err(|(_, e)| e)
        .unwrap();
    let row = p.trials * p.n;
    for s in 0..200 {
        let batched = &both.x[(s * p.batch() + p.trials) * p.n..][..row];
        let tol = Tol {
            rel: 1e-6,
            why: "same f32 operations; GEMM blocking may differ with the batch",
        };
        assert_close(
            &format!("network 1 at step {}", s + 1),
            &alone.x[s * row..(s + 1) * row],
            batched,
            tol,
        );
    }
}
