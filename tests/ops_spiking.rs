//! The spiking family (shaders/spiking.wgsl, src/backend/spiking/): the exact LIF step with
//! threshold, reset and refractory period, the per-network spike lists, and their delivery through
//! CSR and dense weights, on 1, 257 and 1,000 neurons per network (and 9,001 for lif_step); the CPU backend against f64 code written here from the equations, the
//! GPU against the CPU backend; and two closed forms (the voltage between spikes, the first
//! passage time of a neuron whose rest lies above threshold).

mod common;

use common::{assert_close, backend_tests, cuba, normal, Side, Tol};
use dale::backend::cpu::CpuBackend;
use dale::backend::spiking::{
    Draw, Lif, PoissonInputs, SpikeRule, SpikingOps, Synapses, Thresholds,
};
use dale::backend::{Backend, BufferOps};

struct State {
    v: Vec<f32>,
    e: Vec<f32>,
    i: Vec<f32>,
    refractory: Vec<u32>,
}

/// Runs `steps` lif_steps from `s`; returns the state and, per step, each network's spikes.
fn run(be: &mut dyn Backend, s: &State, lif: Lif, steps: usize) -> (State, Vec<Vec<Vec<u32>>>) {
    let v = be.alloc_from("v", &s.v).unwrap();
    let currents = be
        .alloc_from("currents", &[s.e.as_slice(), s.i.as_slice()].concat())
        .unwrap();
    let r = be.alloc_from("refractory", &s.refractory).unwrap();
    let spikes = be.alloc::<u32>("spikes", lif.len()).unwrap();
    let counts = be.alloc::<u32>("counts", lif.networks).unwrap();
    let mut lists = Vec::new();
    for _ in 0..steps {
        be.lif_step(v, currents, r, spikes, counts, 0, lif);
        let c = be.download(counts, 0, lif.networks).unwrap();
        let all = be.download(spikes, 0, lif.len()).unwrap();
        lists.push(
            (0..lif.networks)
                .map(|b| all[b * lif.n..][..c[b] as usize].to_vec())
                .collect(),
        );
    }
    let state = State {
        v: be.download(v, 0, lif.len()).unwrap(),
        e: be.download(currents, 0, lif.len()).unwrap(),
        i: be.download(currents, lif.len(), lif.len()).unwrap(),
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
    /// 9,001 neurons span three of the CPU twin's blocks of 4,096, whose lists it joins.
    fn lif_step_is_the_exact_propagator(side: &Side) {
        for (networks, n) in [(1, 1), (3, 257), (2, 1000), (1, 9001)] {
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

/// CSR weights over n neurons: each row's targets drawn with probability p (each once, in
/// ascending order), weight `we` from the first `excitatory` rows and `wi` from the rest.
fn random_csr(
    n: usize,
    p: f64,
    excitatory: usize,
    (we, wi): (f32, f32),
    seed: u64,
) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let u = normal(n * n, seed);
    // The normal CDF of a standard normal draw is uniform: P(z) < p with probability p.
    let cut = dale::analysis::disco::normal_quantile(p) as f32;
    let (mut indptr, mut indices, mut weights) = (vec![0u32], Vec::new(), Vec::new());
    for j in 0..n {
        for k in 0..n {
            if k != j && u[j * n + k] < cut {
                indices.push(k as u32);
                weights.push(if j < excitatory { we } else { wi });
            }
        }
        indptr.push(indices.len() as u32);
    }
    (indptr, indices, weights)
}

#[allow(clippy::too_many_arguments)]
fn run_deliver(
    be: &mut dyn Backend,
    list: &[u32],
    counts: &[u32],
    csr: &(Vec<u32>, Vec<u32>, Vec<f32>),
    currents: &[f32],
    s: Synapses,
) -> Vec<f32> {
    let sb = be.alloc_from("spikes", list).unwrap();
    let cb = be.alloc_from("counts", counts).unwrap();
    let ib = be.alloc_from("indptr", &csr.0).unwrap();
    let xb = be.alloc_from("indices", &csr.1).unwrap();
    let wb = be.alloc_from("weights", &csr.2).unwrap();
    let cur = be.alloc_from("currents", currents).unwrap();
    be.deliver_spikes(sb, cb, 0, ib, xb, wb, cur, s);
    be.download(cur, 0, currents.len()).unwrap()
}

/// Spike lists for `networks` networks of n: network b lists every (b + 2)-th neuron,
/// ascending; the last network of several none.
fn awkward_lists(networks: usize, n: usize) -> (Vec<u32>, Vec<u32>) {
    let mut list = vec![0u32; networks * n];
    let mut counts = vec![0u32; networks];
    for b in 0..networks.saturating_sub(1).max(1) {
        let spiking: Vec<u32> = (0..n as u32).step_by(b + 2).collect();
        list[b * n..][..spiking.len()].copy_from_slice(&spiking);
        counts[b] = spiking.len() as u32;
    }
    (list, counts)
}

/// The CSR weights as a dense [n, n] matrix, zeros where there is no synapse.
fn dense_of(n: usize, csr: &(Vec<u32>, Vec<u32>, Vec<f32>)) -> Vec<f32> {
    let mut w = vec![0.0; n * n];
    for j in 0..n {
        for k in csr.0[j] as usize..csr.0[j + 1] as usize {
            w[j * n + csr.1[k] as usize] = csr.2[k];
        }
    }
    w
}

fn run_deliver_dense(
    be: &mut dyn Backend,
    (list, counts): (&[u32], &[u32]),
    weights: &[f32],
    currents: &[f32],
    s: Synapses,
) -> Vec<f32> {
    let sb = be.alloc_from("spikes", list).unwrap();
    let cb = be.alloc_from("counts", counts).unwrap();
    let wb = be.alloc_from("weights", weights).unwrap();
    let cur = be.alloc_from("currents", currents).unwrap();
    be.deliver_spikes_dense(sb, cb, 0, wb, cur, s);
    be.download(cur, 0, currents.len()).unwrap()
}

backend_tests! {
    /// Dense delivery: on the CPU the sparse delivery's currents bit for bit (the same additions
    /// per target in list order, and the zeros change nothing); on the GPU the CPU's.
    fn deliver_spikes_dense_adds_the_rows_of_the_listed_neurons(side: &Side) {
        for (networks, n) in [(1, 1), (3, 257), (2, 1000)] {
            let excitatory = (4 * n) / 5;
            let csr = random_csr(n, 0.1, excitatory, (1.62, -9.0), 5 + n as u64);
            let w = dense_of(n, &csr);
            let (list, counts) = awkward_lists(networks, n);
            let currents = normal(2 * networks * n, 13 + n as u64);
            let dense = Synapses { networks, n, nnz: n * n, excitatory };
            let got = run_deliver_dense(side.backend().as_mut(), (&list, &counts), &w, &currents, dense);
            let want = match side {
                Side::Cpu => {
                    let sparse = Synapses { nnz: csr.1.len(), ..dense };
                    run_deliver(&mut CpuBackend::new(), &list, &counts, &csr, &currents, sparse)
                }
                Side::Gpu(_) => {
                    run_deliver_dense(&mut CpuBackend::new(), (&list, &counts), &w, &currents, dense)
                }
            };
            // One neuron has no synapse but onto itself, which the wiring leaves out.
            assert!(n == 1 || got != currents, "the spikes should change the currents");
            assert_eq!(got, want, "deliver_spikes_dense {networks} x {n}: bit for bit");
        }
    }
}

backend_tests! {
    fn deliver_spikes_adds_the_rows_of_the_listed_neurons(side: &Side) {
        for (networks, n) in [(1, 1), (3, 257), (2, 1000)] {
            let excitatory = (4 * n) / 5;
            let csr = random_csr(n, 0.1, excitatory, (1.62, -9.0), 3 + n as u64);
            let s = Synapses { networks, n, nnz: csr.1.len(), excitatory };
            let (list, counts) = awkward_lists(networks, n);
            let currents = normal(2 * networks * n, 11 + n as u64);
            let got = run_deliver(side.backend().as_mut(), &list, &counts, &csr, &currents, s);
            let what = format!("deliver_spikes {networks} x {n}");
            match side {
                Side::Cpu => {
                    let mut want: Vec<f64> = currents.iter().map(|v| f64::from(*v)).collect();
                    for b in 0..networks {
                        for &j in &list[b * n..][..counts[b] as usize] {
                            let j = j as usize;
                            let c = usize::from(j >= excitatory);
                            for k in csr.0[j] as usize..csr.0[j + 1] as usize {
                                want[(c * networks + b) * n + csr.1[k] as usize] += f64::from(csr.2[k]);
                            }
                        }
                    }
                    let want: Vec<f32> = want.iter().map(|v| *v as f32).collect();
                    // Up to n f32 additions of weights near 10 into each current.
                    let tol = Tol { rel: 4e-6 * (n as f64).sqrt(), why: "f32 sums of up to n weights, rounding like a random walk" };
                    assert_close(&what, &got, &want, tol);
                }
                Side::Gpu(_) => {
                    // The same additions in the same order (list order, a row's targets once).
                    let want = run_deliver(&mut CpuBackend::new(), &list, &counts, &csr, &currents, s);
                    assert_eq!(got, want, "{what}: bit for bit");
                }
            }
        }
    }
}

backend_tests! {
    /// A small CUBA network (400 neurons, 80% excitatory, 5% connectivity, two networks from
    /// different starts) for 1,000 steps of lif_step and deliver_spikes: on the GPU spike for
    /// spike the CPU's, and on the CPU active (the test would pass vacuously on a silent network).
    fn a_network_on_the_gpu_spikes_as_on_the_cpu(side: &Side) {
        let (networks, n) = (2, 400);
        let lif = cuba(networks, n);
        let csr = random_csr(n, 0.05, 320, (1.62, -9.0), 21);
        let syn = Synapses { networks, n, nnz: csr.1.len(), excitatory: 320 };
        let z = normal(networks * n, 5);
        let v0: Vec<f32> = z.iter().map(|x| -60.0 + 10.0 * (0.5 + 0.5 * (x / 2.0).tanh())).collect();
        let simulate = |be: &mut dyn Backend| -> Vec<Vec<u32>> {
            let v = be.alloc_from("v", &v0).unwrap();
            let currents = be.alloc::<f32>("currents", 2 * networks * n).unwrap();
            let r = be.alloc::<u32>("refractory", networks * n).unwrap();
            let spikes = be.alloc::<u32>("spikes", networks * n).unwrap();
            let counts = be.alloc::<u32>("counts", networks).unwrap();
            let ib = be.alloc_from("indptr", &csr.0).unwrap();
            let xb = be.alloc_from("indices", &csr.1).unwrap();
            let wb = be.alloc_from("weights", &csr.2).unwrap();
            let mut record = Vec::new();
            for _ in 0..1000 {
                be.lif_step(v, currents, r, spikes, counts, 0, lif);
                be.deliver_spikes(spikes, counts, 0, ib, xb, wb, currents, syn);
                let c = be.download(counts, 0, networks).unwrap();
                let all = be.download(spikes, 0, networks * n).unwrap();
                for b in 0..networks {
                    record.push(all[b * n..][..c[b] as usize].to_vec());
                }
            }
            record
        };
        let got = simulate(side.backend().as_mut());
        let total: usize = got.iter().map(Vec::len).sum();
        match side {
            Side::Cpu => assert!(total > 400, "{total} spikes in 1,000 steps: the network is silent"),
            Side::Gpu(_) => {
                let want = simulate(&mut CpuBackend::new());
                for (t, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g, w, "step {}, network {}", t / networks, t % networks);
                }
            }
        }
    }
}

backend_tests! {
    /// A chunk's lists packed one after another, with their offsets: 3 steps x 2 networks of 257
    /// neurons, and 150 x 2 lists of 5 (more lists than the scan's workgroup of 256), some empty
    /// and some full; the room after each list holds values that must not be copied.
    fn pack_spikes_joins_the_lists_of_a_chunk(side: &Side) {
        for (steps, networks, n) in [(3, 2, 257), (150, 2, 5)] {
            let lists = steps * networks;
            let counts: Vec<u32> = (0..lists).map(|p| ((p * 7) % (n + 1)) as u32).collect();
            let room: Vec<u32> = (0..lists * n).map(|k| 1_000_000 + k as u32).collect();
            let mut backend = side.backend();
            let be = backend.as_mut();
            let lb = be.alloc_from("lists", &room).unwrap();
            let cb = be.alloc_from("counts", &counts).unwrap();
            let ob = be.alloc::<u32>("offsets", lists + 1).unwrap();
            let pb = be.alloc::<u32>("packed", lists * n).unwrap();
            be.pack_spikes(lb, cb, ob, pb, steps, networks, n);
            let total: usize = counts.iter().map(|c| *c as usize).sum();
            let mut want_offsets = vec![0u32];
            let mut want = Vec::new();
            for (p, c) in counts.iter().enumerate() {
                want.extend_from_slice(&room[p * n..][..*c as usize]);
                want_offsets.push(want.len() as u32);
            }
            let what = format!("pack_spikes {steps} x {networks} x {n}");
            assert_eq!(be.download(ob, 0, lists + 1).unwrap(), want_offsets, "{what}: offsets");
            assert_eq!(be.download(pb, 0, total).unwrap(), want, "{what}: packed");
        }
    }
}

/// Runs `threshold_spikes` once, on counts of 3 for every neuron; returns (traces, spikes), and
/// checks that the counts are 3 plus the spikes.
fn run_thresholds(
    be: &mut dyn Backend,
    v: &[f32],
    thresholds: &[f32],
    traces: &[f32],
    spec: Thresholds,
) -> (Vec<f32>, Vec<f32>) {
    let vb = be.alloc_from("v", v).unwrap();
    let tb = be.alloc_from("thresholds", thresholds).unwrap();
    let rb = be.alloc_from("traces", traces).unwrap();
    let sb = be.alloc::<f32>("spikes", v.len()).unwrap();
    let cb = be.alloc_from("counts", &vec![3u32; v.len()]).unwrap();
    be.threshold_spikes(vb, tb, rb, sb, cb, spec);
    let spikes = be.download(sb, 0, v.len()).unwrap();
    let counts = be.download(cb, 0, v.len()).unwrap();
    let want: Vec<u32> = spikes.iter().map(|s| 3 + *s as u32).collect();
    assert_eq!(counts, want, "counts");
    (be.download(rb, 0, v.len()).unwrap(), spikes)
}

backend_tests! {
    /// Both rules on 1 x 1, 3 x 257 and 2 x 1,000 neurons, against the rule written out here
    /// (CPU) and the CPU backend bit for bit (GPU); the margins include exact ties (voltages and
    /// thresholds on a grid of halves), so the one-per-step rule must pick the lowest index.
    fn threshold_spikes_picks_the_neurons_above_threshold(side: &Side) {
        for (trials, n) in [(1, 1), (3, 257), (2, 1000)] {
            let z = normal(trials * n + n, 17 + n as u64);
            let v: Vec<f32> = z[..trials * n].iter().map(|x| (2.0 * x).round() / 2.0).collect();
            let thresholds: Vec<f32> = z[trials * n..].iter().map(|x| (x.abs() * 2.0).round() / 2.0).collect();
            let traces: Vec<f32> = normal(trials * n, 5).iter().map(|x| x.abs()).collect();
            for rule in [SpikeRule::Synchronous, SpikeRule::OnePerStep] {
                let spec = Thresholds { trials, n, decay: 0.99, rule };
                let got = run_thresholds(side.backend().as_mut(), &v, &thresholds, &traces, spec);
                let want = match side {
                    Side::Cpu => {
                        let mut spikes = vec![0.0f32; trials * n];
                        for b in 0..trials {
                            let margin = |k: usize| v[b * n + k] - thresholds[k];
                            let above: Vec<usize> = (0..n).filter(|&k| margin(k) > 0.0).collect();
                            let fire: Vec<usize> = match rule {
                                SpikeRule::Synchronous => above,
                                SpikeRule::OnePerStep => {
                                    let best = above.iter().map(|&k| margin(k)).fold(f32::MIN, f32::max);
                                    above.into_iter().find(|&k| margin(k) == best).into_iter().collect()
                                }
                            };
                            for k in fire {
                                spikes[b * n + k] = 1.0;
                            }
                        }
                        let traces = traces.iter().zip(&spikes).map(|(r, s)| r * 0.99 + s).collect();
                        (traces, spikes)
                    }
                    Side::Gpu(_) => run_thresholds(&mut CpuBackend::new(), &v, &thresholds, &traces, spec),
                };
                let what = format!("threshold_spikes {trials} x {n} {rule:?}");
                assert_eq!(got.1, want.1, "{what}: spikes");
                assert_eq!(got.0, want.0, "{what}: traces");
                let spiking = got.1.iter().filter(|s| **s == 1.0).count();
                match rule {
                    SpikeRule::OnePerStep => assert!(spiking <= trials, "{what}: {spiking} spikes"),
                    SpikeRule::Synchronous => assert!(n < 10 || spiking > trials, "{what}: {spiking} spikes"),
                }
            }
        }
    }
}

backend_tests! {
    /// Equal largest margins at neurons 300 and 7 of 600: neuron 7 spikes; a trial with every
    /// margin at or below 0 stays silent.
    fn one_spike_per_step_goes_to_the_lowest_index_of_a_tie(side: &Side) {
        let n = 600;
        let mut v = vec![0.0f32; 2 * n];
        v[300] = 2.5;
        v[7] = 2.5;
        v[8] = 2.0;
        let thresholds = vec![0.5f32; n];
        v[n..].fill(0.5);
        let spec = Thresholds { trials: 2, n, decay: 1.0, rule: SpikeRule::OnePerStep };
        let (traces, spikes) = run_thresholds(side.backend().as_mut(), &v, &thresholds, &vec![0.0; 2 * n], spec);
        let fired: Vec<usize> = (0..2 * n).filter(|&k| spikes[k] == 1.0).collect();
        assert_eq!(fired, [7]);
        assert_eq!(traces, spikes);
    }
}

backend_tests! {
    /// Poisson inputs on 1 x 1, 3 x 257 and 2 x 1,000, probabilities shared by the trials or each
    /// trial's own: over 400 steps each input spikes at its probability's rate (within 5
    /// binomial sd of all its draws), trials and steps draw apart, the spikes written are the
    /// trace's gains, and the trace is the filtered train; with the expected draw every step adds
    /// the probability itself; on the GPU, the CPU's spikes and traces bit for bit.
    fn poisson_inputs_spike_at_their_rates(side: &Side) {
        for (trials, m) in [(1, 1), (3, 257), (2, 1000)] {
            for per_trial in [false, true] {
                for draw in [Draw::Poisson, Draw::Expected] {
                    poisson_case(side, trials, m, per_trial, draw);
                }
            }
        }
    }

    /// traces = traces decay + spikes on ragged lengths; on the GPU bit for bit.
    fn filter_spikes_is_the_leaky_sum(side: &Side) {
        for len in [1, 255, 257, 4099] {
            let spikes: Vec<f32> = (0..len).map(|k| f32::from(k % 3 == 0)).collect();
            let start = normal(len, len as u64);
            let mut be = side.backend();
            let sb = be.alloc_from("spikes", &spikes).unwrap();
            let tb = be.alloc_from("traces", &start).unwrap();
            be.filter_spikes(sb, tb, len, 0.9);
            be.filter_spikes(sb, tb, len, 0.9);
            let got = be.download(tb, 0, len).unwrap();
            for k in 0..len {
                let want = (start[k] * 0.9 + spikes[k]) * 0.9 + spikes[k];
                assert_eq!(got[k], want, "filter_spikes {len}: value {k}");
            }
        }
    }
}

fn poisson_case(side: &Side, trials: usize, m: usize, per_trial: bool, draw: Draw) {
    let own = if per_trial { trials * m } else { m };
    let probabilities: Vec<f32> = (0..own)
        .map(|k| [0.0, 0.02, 0.1, 0.5, 1.0][(k + k / m) % 5])
        .collect();
    let steps = 400;
    let run = |be: &mut dyn Backend| -> Vec<Vec<f32>> {
        let pb = be.alloc_from("probabilities", &probabilities).unwrap();
        let sb = be.alloc::<f32>("spikes", trials * m).unwrap();
        let tb = be.alloc::<f32>("traces", trials * m).unwrap();
        (0..steps)
            .map(|step| {
                let spec = PoissonInputs {
                    trials,
                    m,
                    decay: 0.5,
                    seed: 9,
                    step: step as u32,
                    per_trial,
                    draw,
                };
                be.poisson_inputs(pb, sb, tb, spec);
                let mut out = be.download(sb, 0, trials * m).unwrap();
                out.extend(be.download(tb, 0, trials * m).unwrap());
                out
            })
            .collect()
    };
    let got = run(side.backend().as_mut());
    let what = format!("poisson_inputs {trials} x {m} per trial {per_trial} {draw:?}");
    let len = trials * m;
    let p_of = |e: usize| f64::from(probabilities[if per_trial { e } else { e % m }]);
    match side {
        Side::Cpu => {
            let mut count = vec![0usize; len];
            let mut previous = vec![0.0f32; len];
            for record in &got {
                let (spikes, traces) = record.split_at(len);
                for e in 0..len {
                    assert_eq!(
                        traces[e],
                        previous[e] * 0.5 + spikes[e],
                        "{what}: trace {e}"
                    );
                    match draw {
                        Draw::Expected => assert_eq!(
                            f64::from(spikes[e]),
                            f64::from(p_of(e) as f32),
                            "{what}: {e}"
                        ),
                        Draw::Poisson => assert!(
                            spikes[e] == 0.0 || spikes[e] == 1.0,
                            "{what}: a spike of {}",
                            spikes[e]
                        ),
                    }
                    count[e] += usize::from(spikes[e] == 1.0);
                }
                previous.copy_from_slice(traces);
            }
            if draw == Draw::Poisson {
                for (e, c) in count.iter().enumerate() {
                    let p = p_of(e);
                    // Bernstein's bound, not 5 normal sd: at p = 0.02 (mean 8) the binomial's
                    // upper tail is heavy, and Bin(400, 0.02) passes 8 + 5 sd = 22 once in ~10^5
                    // inputs. P(|X - np| >= t) <= 2 exp(-t^2 / (2 (var + t / 3))) = 2e-9 at
                    // L = 20.7; over the ~6,000 inputs checked, a false alarm once in ~10^5 runs.
                    let (var, l) = (steps as f64 * p * (1.0 - p), 20.7f64);
                    let bound =
                        (2.0 * l / 3.0 + ((2.0 * l / 3.0).powi(2) + 8.0 * l * var).sqrt()) / 2.0;
                    let off = (*c as f64 - steps as f64 * p).abs();
                    assert!(
                        off <= bound + 1e-9,
                        "{what}: input {e} spiked {c} times at p = {p}"
                    );
                }
                if trials > 1 && !per_trial {
                    assert_ne!(count[..m], count[m..2 * m], "{what}: trials draw alike");
                }
            }
        }
        Side::Gpu(_) => assert_eq!(got, run(&mut CpuBackend::new()), "{what}: bit for bit"),
    }
}
