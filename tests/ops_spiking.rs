//! The spiking family (shaders/spiking.wgsl, src/backend/spiking/): the exact LIF step with
//! threshold, reset and refractory period, and the per-network spike lists, on 1, 257 and 1,000
//! neurons per network; the CPU backend against f64 code written here from the equations, the
//! GPU against the CPU backend; and two closed forms (the voltage between spikes, the first
//! passage time of a neuron whose rest lies above threshold).

mod common;

use common::{assert_close, backend_tests, normal, Side, Tol};
use dale::backend::cpu::CpuBackend;
use dale::backend::spiking::{Lif, SpikingOps};
use dale::backend::{Backend, BufferOps};

/// Brette et al. (2007)'s CUBA neuron, `networks` x `n` of them.
fn cuba(networks: usize, n: usize) -> Lif {
    Lif {
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

struct State {
    v: Vec<f32>,
    e: Vec<f32>,
    i: Vec<f32>,
    refractory: Vec<u32>,
}

/// Runs `steps` lif_steps from `s`; returns the state and, per step, each network's spikes
/// (sorted: the GPU lists them in its own order).
fn run(be: &mut dyn Backend, s: &State, lif: Lif, steps: usize) -> (State, Vec<Vec<Vec<u32>>>) {
    let v = be.alloc_from("v", &s.v).unwrap();
    let e = be.alloc_from("current_e", &s.e).unwrap();
    let i = be.alloc_from("current_i", &s.i).unwrap();
    let r = be.alloc_from("refractory", &s.refractory).unwrap();
    let spikes = be.alloc::<u32>("spikes", lif.len()).unwrap();
    let counts = be.alloc::<u32>("counts", lif.networks).unwrap();
    let mut lists = Vec::new();
    for _ in 0..steps {
        be.lif_step(v, e, i, r, spikes, counts, lif);
        let c = be.download(counts, 0, lif.networks).unwrap();
        let all = be.download(spikes, 0, lif.len()).unwrap();
        lists.push(
            (0..lif.networks)
                .map(|b| {
                    let mut l = all[b * lif.n..][..c[b] as usize].to_vec();
                    l.sort_unstable();
                    l
                })
                .collect(),
        );
    }
    let state = State {
        v: be.download(v, 0, lif.len()).unwrap(),
        e: be.download(e, 0, lif.len()).unwrap(),
        i: be.download(i, 0, lif.len()).unwrap(),
        refractory: be.download(r, 0, lif.len()).unwrap(),
    };
    (state, lists)
}

/// One step in f64 from the equations: the exact propagator of the linear dynamics.
fn oracle(s: &State, lif: Lif) -> (State, Vec<Vec<u32>>) {
    let leak = (-lif.dt / lif.tau_m).exp();
    let gain = |tau: f64| tau / (tau - lif.tau_m) * ((-lif.dt / tau).exp() - leak);
    let mut out = State {
        v: Vec::new(),
        e: Vec::new(),
        i: Vec::new(),
        refractory: Vec::new(),
    };
    let mut lists = vec![Vec::new(); lif.networks];
    let (rest, reset) = (f64::from(lif.rest), f64::from(lif.reset));
    for k in 0..lif.len() {
        let (v, e, i) = (f64::from(s.v[k]), f64::from(s.e[k]), f64::from(s.i[k]));
        let sitting_out = s.refractory[k] > 0;
        let mut refractory = s.refractory[k].saturating_sub(1);
        let mut next = if sitting_out {
            reset
        } else {
            rest + (v - rest) * leak + e * gain(lif.tau_e) + i * gain(lif.tau_i)
        };
        if !sitting_out && next >= f64::from(lif.threshold) {
            next = reset;
            refractory = lif.refractory_steps;
            lists[k / lif.n].push((k % lif.n) as u32);
        }
        out.v.push(next as f32);
        out.e.push((e * (-lif.dt / lif.tau_e).exp()) as f32);
        out.i.push((i * (-lif.dt / lif.tau_i).exp()) as f32);
        out.refractory.push(refractory);
    }
    (out, lists)
}

/// Voltages around threshold, currents of both signs, a third of the neurons refractory.
fn awkward_state(len: usize, seed: u64) -> State {
    let z = normal(3 * len, seed);
    State {
        v: z[..len].iter().map(|x| -52.0 + 3.0 * x).collect(),
        e: z[len..2 * len].iter().map(|x| 2.0 * x.abs()).collect(),
        i: z[2 * len..].iter().map(|x| -3.0 * x.abs()).collect(),
        refractory: (0..len).map(|k| [0, 0, 1, 0, 2, 50][k % 6]).collect(),
    }
}

backend_tests! {
    fn lif_step_is_the_exact_propagator(side: &Side) {
        for (networks, n) in [(1, 1), (3, 257), (2, 1000)] {
            let lif = cuba(networks, n);
            let start = awkward_state(lif.len(), 7 + n as u64);
            let (got, got_spikes) = run(side.backend().as_mut(), &start, lif, 1);
            let (want, want_spikes) = match side {
                Side::Cpu => oracle(&start, lif),
                Side::Gpu(_) => {
                    let (s, l) = run(&mut CpuBackend::new(), &start, lif, 1);
                    (s, l.into_iter().next().unwrap())
                }
            };
            let what = format!("lif_step {networks} x {n}");
            assert_eq!(got_spikes[0], want_spikes, "{what}: spikes");
            assert!(
                got_spikes[0].iter().any(|l| !l.is_empty()) || networks * n < 10,
                "{what}: the state should make some neurons spike"
            );
            assert_eq!(got.refractory, want.refractory, "{what}: refractory counts");
            // Four products and sums of values up to 60 in f32: a few ulp of 60.
            let tol = Tol { rel: 1e-6, why: "a four-term f32 update of values near 60" };
            assert_close(&format!("{what}: v"), &got.v, &want.v, tol);
            assert_close(&format!("{what}: I_e"), &got.e, &want.e, tol);
            assert_close(&format!("{what}: I_i"), &got.i, &want.i, tol);
        }
    }
}

backend_tests! {
    /// Rest above threshold, no input: from reset the voltage reaches threshold after
    /// t* = tau_m ln((reset - rest) / (threshold - rest)) = 20 ln 11 = 47.958 ms, so the first
    /// spike is at step ceil(t* / dt) = 480, and every later one 50 refractory steps plus 480
    /// integrating steps after the last.
    fn a_neuron_above_threshold_fires_at_the_first_passage_time(side: &Side) {
        let lif = cuba(2, 3);
        let start = State {
            v: vec![-60.0; 6],
            e: vec![0.0; 6],
            i: vec![0.0; 6],
            refractory: vec![0; 6],
        };
        let passage = 20.0f64 * 11f64.ln() / 0.1;
        assert_eq!(passage.ceil(), 480.0);
        let (_, lists) = run(side.backend().as_mut(), &start, lif, 1700);
        let steps: Vec<usize> = lists
            .iter()
            .enumerate()
            .filter(|(_, l)| !l[0].is_empty())
            .map(|(t, l)| {
                assert_eq!(l[0], vec![0, 1, 2], "every neuron at once, step {}", t + 1);
                assert_eq!(l[1], l[0], "the second network as the first");
                t + 1
            })
            .collect();
        assert_eq!(steps, vec![480, 1010, 1540]);
    }
}

/// The voltage of a neuron kept below threshold, from V0 and currents I_e, I_i, against
///   V(t) = rest + (V0 - rest) e^(-t/tau_m) + sum_s I_s tau_s / (tau_s - tau_m) (e^(-t/tau_s) - e^(-t/tau_m)).
#[test]
fn the_voltage_between_spikes_is_the_closed_form() {
    let mut lif = cuba(1, 1);
    lif.threshold = 1e9;
    let (v0, e0, i0) = (-55.0f64, 4.0f64, -6.0f64);
    let start = State {
        v: vec![v0 as f32],
        e: vec![e0 as f32],
        i: vec![i0 as f32],
        refractory: vec![0],
    };
    let mut be = CpuBackend::new();
    let mut state = start;
    for step in 1..=10 {
        let (next, _) = run(&mut be, &state, lif, 100);
        state = next;
        let t = 10.0 * step as f64;
        let part =
            |i: f64, tau: f64| i * tau / (tau - 20.0) * ((-t / tau).exp() - (-t / 20.0).exp());
        let want = -49.0 + (v0 + 49.0) * (-t / 20.0).exp() + part(e0, 5.0) + part(i0, 10.0);
        // 100 to 1,000 f32 steps, each rounding a value near 55: the error grows like sqrt(steps)
        // ulp at most (3e-5 mV measured after 1,000).
        let got = f64::from(state.v[0]);
        assert!((got - want).abs() < 2e-4, "t = {t} ms: {got} vs {want}");
    }
}
