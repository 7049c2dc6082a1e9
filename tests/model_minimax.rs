//! Paper 000's greedy spiking network (src/models/minimax.rs, issue 19) on the generic network
//! of Fig. 1: its rates approach the saddle point's as tau grows, and the GPU spikes as the CPU
//! backend does, step by step.

mod common;

use dale::analysis::minimax::{generic_network, MinimaxNet, Rates};
use dale::backend::cpu::CpuBackend;
use dale::backend::spiking::{Draw, SpikeRule};
use dale::backend::Backend;
use dale::models::minimax::{
    simulate_greedy, simulate_rates, spike_thresholds, Cue, GreedyParams, InputPhase, RateDynamics,
    Voltage,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fig. 1's network (N_E = N_I = m = 20) and input rates 150 U(0, 1) Hz.
fn fig1() -> (MinimaxNet, Vec<f64>) {
    let net = generic_network(20, 20, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let rates = (0..20).map(|_| 150.0 * rng.random::<f64>()).collect();
    (net, rates)
}

fn params(tau: f64, steps: usize, rule: SpikeRule, input_rates: &[f64]) -> GreedyParams {
    GreedyParams {
        rule,
        seed: 3,
        average_from: steps / 4,
        record_inputs: true,
        ..GreedyParams::new(2, tau, 1e-3 * tau, steps, input_rates.to_vec())
    }
}

/// (1/N) ||r_KKT - r_spiking|| over both populations and trials, the KKT rates for the input
/// rates (with zero thresholds the saddle point scales with the input); and the mean over E
/// neurons of the correlation of their excitatory and inhibitory inputs.
fn distance_to_kkt(tau: f64, rule: SpikeRule) -> (f64, f64) {
    let (net, x) = fig1();
    let kkt = net
        .saddle_point(
            &x,
            Rates {
                e: vec![0.0; 20],
                i: vec![0.0; 20],
            },
            1e-9,
            2_000_000,
        )
        .unwrap();
    let run =
        simulate_greedy(&mut CpuBackend::new(), &net, &params(tau, 20_000, rule, &x)).unwrap();
    let mut squared = 0.0;
    for b in 0..2 {
        for k in 0..20 {
            squared += (run.rates_e[b * 20 + k] - kkt.e[k]).powi(2);
            squared += (run.rates_i[b * 20 + k] - kkt.i[k]).powi(2);
        }
    }
    let correlations: Vec<f64> = run.ei_correlation.iter().flatten().copied().collect();
    assert_eq!(correlations.len(), 40, "every E neuron's inputs vary");
    let mean = correlations.iter().sum::<f64>() / 40.0;
    ((squared / 2.0).sqrt() / 40.0, mean)
}

/// With synchronous spiking (the paper's rule) the distance falls as tau grows (tau 0.01, 0.1,
/// 1; dt = tau / 1000, 20 tau, rates counted over the last 15 tau). Measured: 10.2, 2.57, 0.74 Hz.
/// And the balance tightens: the E neurons' excitatory and inhibitory inputs (V_E split by the
/// sign of each weight) correlate more: 0.86, 0.93, 0.94 (the paper: ~0.68, ~0.96, ~0.999, with
/// dt = tau / 10^4 over 100 tau; this test runs ten times coarser and five times shorter).
/// (One spike per step caps a population at one spike per dt: with dt growing with tau, the
/// capped rule falls behind the KKT rates at tau = 1; its spikes are tested below.)
#[test]
fn spiking_rates_approach_the_kkt_rates_as_tau_grows() {
    let (errors, correlations): (Vec<f64>, Vec<f64>) = [0.01, 0.1, 1.0]
        .iter()
        .map(|tau| distance_to_kkt(*tau, SpikeRule::Synchronous))
        .unzip();
    eprintln!("tau 0.01, 0.1, 1: distance {errors:?}, E-I correlation {correlations:?}");
    assert!(
        errors[1] < 0.5 * errors[0] && errors[2] < 0.5 * errors[1],
        "distance to the KKT rates at tau 0.01, 0.1, 1: {errors:?}"
    );
    assert!(
        correlations[0] < correlations[1] && correlations[1] < correlations[2],
        "E-I input correlation at tau 0.01, 0.1, 1: {correlations:?}"
    );
}

/// The options the scenes use, each on its own: one spike per step; voltages integrated with
/// tau_I = 0.7 tau_E, inputs that change at step 400 to each trial's own, and a cue that drives
/// the traces for the first 200 steps; fast inhibition (5 I substeps per E step) under a constant
/// current that starts at its steady value.
fn variants(x: &[f64]) -> Vec<(&'static str, GreedyParams)> {
    let base = GreedyParams {
        record_spikes: true,
        record_inputs: false,
        sample_every: 100,
        ..params(0.1, 1000, SpikeRule::Synchronous, x)
    };
    let own: Vec<f64> = (0..2 * x.len())
        .map(|k| x[k % x.len()] * (1.0 + (k / x.len()) as f64))
        .collect();
    vec![
        ("synchronous", base.clone()),
        (
            "one per step",
            GreedyParams {
                rule: SpikeRule::OnePerStep,
                ..base.clone()
            },
        ),
        (
            "integrated, phases, cue",
            GreedyParams {
                voltage: Voltage::Integrated,
                tau_i: 0.07,
                inputs: vec![
                    InputPhase {
                        from_step: 0,
                        rates: x.to_vec(),
                    },
                    InputPhase {
                        from_step: 400,
                        rates: own,
                    },
                ],
                cue: Some(Cue {
                    steps: 200,
                    rates_e: vec![100.0; 40],
                    rates_i: vec![50.0; 40],
                }),
                ..base.clone()
            },
        ),
        (
            "fast inhibition, current",
            GreedyParams {
                inhibition_substeps: 5,
                draw: Draw::Expected,
                inputs_start_steady: true,
                ..base
            },
        ),
    ]
}

/// 1,000 steps of two trials, every variant: the GPU's spikes are the CPU backend's, step by
/// step, and so are its sampled traces; the network spikes.
#[test]
fn the_gpu_spikes_as_the_cpu_step_by_step() {
    let Some(ctx) = common::gpu() else { return };
    let (net, x) = fig1();
    for (name, p) in variants(&x) {
        let cpu = simulate_greedy(&mut CpuBackend::new(), &net, &p).unwrap();
        let gpu = simulate_greedy(
            &mut dale::backend::gpu::GpuBackend::new(ctx.clone()),
            &net,
            &p,
        )
        .unwrap();
        let spikes: usize = cpu.spikes.iter().map(|s| s.e.len() + s.i.len()).sum();
        assert!(spikes > 100, "{name}: {spikes} spikes in 1,000 steps");
        assert_eq!(cpu.spikes.len(), 1000);
        for (t, (c, g)) in cpu.spikes.iter().zip(&gpu.spikes).enumerate() {
            assert_eq!(c, g, "{name}: step {t}");
        }
        assert_eq!(cpu.counts_e, gpu.counts_e, "{name}");
        assert_eq!(cpu.counts_i, gpu.counts_i, "{name}");
        assert_eq!(cpu.samples.len(), 10, "{name}");
        assert_eq!(cpu.samples, gpu.samples, "{name}");
    }
}

/// With one tau for both populations the integrated voltages are the instantaneous ones: the
/// same spikes, bit for bit; with tau_I != tau_E they part.
#[test]
fn integrated_voltages_equal_instantaneous_ones_at_one_tau() {
    let (net, x) = fig1();
    let base = GreedyParams {
        record_spikes: true,
        record_inputs: false,
        ..params(0.1, 2000, SpikeRule::Synchronous, &x)
    };
    let run = |p: &GreedyParams| simulate_greedy(&mut CpuBackend::new(), &net, p).unwrap();
    let integrated = GreedyParams {
        voltage: Voltage::Integrated,
        ..base.clone()
    };
    assert_eq!(run(&base).spikes, run(&integrated).spikes);
    let apart = |p: GreedyParams| GreedyParams { tau_i: 0.05, ..p };
    assert_ne!(run(&apart(base)).spikes, run(&apart(integrated)).spikes);
}

/// The cue's rates become the traces: during a 10,000-step cue (10 tau) at 100 Hz (E) and
/// 50 Hz (I) the threshold rule counts nothing, and over its second half the sampled E traces
/// average rate x tau = 10.
#[test]
fn a_cue_drives_the_traces_at_its_rates() {
    let (net, x) = fig1();
    let p = GreedyParams {
        cue: Some(Cue {
            steps: 10_000,
            rates_e: vec![100.0; 40],
            rates_i: vec![50.0; 40],
        }),
        average_from: 0,
        record_inputs: false,
        sample_every: 1,
        ..params(0.1, 10_000, SpikeRule::Synchronous, &x)
    };
    let run = simulate_greedy(&mut CpuBackend::new(), &net, &p).unwrap();
    assert!(run.counts_e.iter().chain(&run.counts_i).all(|c| *c == 0));
    let late = &run.samples[5000..];
    let mean: f64 = late
        .iter()
        .flat_map(|s| s.traces_e.iter().map(|t| f64::from(*t)))
        .sum::<f64>()
        / (late.len() * 40) as f64;
    // A trace of unit jumps at rate lambda has variance lambda tau / 2 = 5; averaged over 5 tau
    // (about 2.5 independent values) and 40 neurons, sd ~ sqrt(5 / 2.5 / 40) = 0.22: 5 sd is
    // 1.1. The start's transient leaves e^-5 of the mean, 0.07.
    assert!((mean - 10.0).abs() < 1.1, "mean E trace {mean}");
}

/// An E spike lowers S and an I spike raises it exactly where the voltage is above its
/// threshold: S(r + e_k) - S(r) against V and `spike_thresholds`, for every neuron of 20 random
/// states of Fig. 1's network.
#[test]
fn the_spike_rule_lowers_s_for_e_spikes_and_raises_it_for_i_spikes() {
    let (net, x) = fig1();
    let (threshold_e, threshold_i) = spike_thresholds(&net);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut e_spikes, mut e_silent, mut i_spikes, mut i_silent) = (0, 0, 0, 0);
    for _ in 0..20 {
        let r = Rates {
            e: (0..20).map(|_| 20.0 * rng.random::<f64>()).collect(),
            i: (0..20).map(|_| 20.0 * rng.random::<f64>()).collect(),
        };
        let x: Vec<f64> = x.iter().map(|v| v * 0.1).collect();
        let (v_e, v_i) = net.voltages(&r, &x);
        let s = net.objective(&r, &x);
        for k in 0..20 {
            let mut up = r.clone();
            up.e[k] += 1.0;
            let change = net.objective(&up, &x) - s;
            let above = v_e[k] > threshold_e[k];
            assert_eq!(
                change < 0.0,
                above,
                "E {k}: S changes by {change}, V {}",
                v_e[k]
            );
            if above {
                e_spikes += 1
            } else {
                e_silent += 1
            }
            let mut up = r.clone();
            up.i[k] += 1.0;
            let change = net.objective(&up, &x) - s;
            let above = v_i[k] > threshold_i[k];
            assert_eq!(
                change > 0.0,
                above,
                "I {k}: S changes by {change}, V {}",
                v_i[k]
            );
            if above {
                i_spikes += 1
            } else {
                i_silent += 1
            }
        }
    }
    assert!(e_spikes > 0 && e_silent > 0 && i_spikes > 0 && i_silent > 0);
}

/// The rate dynamics (projected gradient descent-ascent, on the backends) reach the saddle
/// point of a convex case, Fig. 1's network (W_II positive definite, W_eff negative definite),
/// for three inputs at once: every trial's rates satisfy the KKT conditions of its own input
/// and match the host solver's rates. tau_I = tau_E / 2, dt = tau_E / 100, 20,000 steps.
#[test]
fn rate_dynamics_converge_to_the_kkt_point() {
    let (net, x) = fig1();
    let inputs: Vec<f64> = (0..3 * 20)
        .map(|k| x[k % 20] * [1.0, 0.5, 2.0][k / 20])
        .collect();
    let p = RateDynamics {
        trials: 3,
        tau_e: 1.0,
        tau_i: 0.5,
        dt: 0.01,
        steps: 20_000,
        inputs: inputs.clone(),
    };
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new())];
    if let Some(ctx) = common::gpu() {
        backends.push(Box::new(dale::backend::gpu::GpuBackend::new(ctx)));
    }
    for be in &mut backends {
        let (r_e, r_i) = simulate_rates(be.as_mut(), &net, &p).unwrap();
        for b in 0..3 {
            let x = &inputs[b * 20..(b + 1) * 20];
            let r = Rates {
                e: r_e[b * 20..(b + 1) * 20]
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect(),
                i: r_i[b * 20..(b + 1) * 20]
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect(),
            };
            let zeros = Rates {
                e: vec![0.0; 20],
                i: vec![0.0; 20],
            };
            let kkt = net.saddle_point(x, zeros, 1e-9, 2_000_000).unwrap();
            let scale = kkt
                .e
                .iter()
                .chain(&kkt.i)
                .fold(0.0f64, |m, v| m.max(v.abs()));
            // f32 rates of size ~100: the voltages' sums of 40 terms round at ~1e-5 of scale.
            let residual = net.kkt_residual(&r, x);
            assert!(
                residual < 1e-4 * scale,
                "trial {b}: KKT residual {residual} (scale {scale})"
            );
            for (got, want) in r.e.iter().chain(&r.i).zip(kkt.e.iter().chain(&kkt.i)) {
                assert!(
                    (got - want).abs() < 1e-3 * scale,
                    "trial {b}: rate {got} vs {want}"
                );
            }
        }
    }
}
