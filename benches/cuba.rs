//! `cargo bench --bench cuba`: the CUBA benchmark (scenes/cuba.json; Brette et al. 2007,
//! benchmark 2), 1 s of network time at dt = 0.1 ms, on dale's CPU backend against NEST
//! (benches/peers/cuba_nest.py: iaf_psc_exp, all cores as threads) and Brian2 (runtime mode,
//! Cython target: benches/peers/cuba_brian2.py), rounds interleaved in one run, best round each:
//!
//! - N = 4,000, connection probability 2% (in-degree 80 on average), one network;
//! - N = 32,000, in-degree held at 80 (64 excitatory + 16 inhibitory inputs), one network;
//! - N = 4,000, B = 64 independent networks in one dale run (the peers run one network: their
//!   cost for 64 is 64 times theirs for one).
//!
//! Every side times the simulation alone (network built, spikes recorded): dale's `simulate`
//! (spike lists read back and collected), NEST's `Run`, Brian2's `run` (its code compiled and
//! cached by a warm-up run of each size first). Reported: wall seconds, the real-time factor
//! (wall seconds per second of network time) and synaptic events per second (spikes times the
//! mean out-degree, over the wall time). The GPU adapter's column (lavapipe here) simulates the
//! same networks and must spike as the CPU backend does: a correctness contrast, not a speed.
//!
//! Python: DALE_NEST_PYTHON (with `nest-simulator`) and DALE_BRIAN2_PYTHON (with brian2 and
//! Cython), each defaulting to python3. A missing peer is a failure, not a skip.
//! `cargo bench --bench cuba -- dale` times dale alone (no peers, no GPU column).

use std::process::Command;
use std::time::Instant;

use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::GpuBackend;
use dale::backend::Backend;
use dale::experiments::cuba::{CubaParams, WiringSpec};
use dale::models::spiking::{simulate, SpikingParams, SpikingRun};
use dale::scene::Scene;

const ROUNDS: usize = 3;
const STEPS: usize = 10_000;
const NEST: &str = "benches/peers/cuba_nest.py";
const BRIAN2: &str = "benches/peers/cuba_brian2.py";
/// The GPU column is skipped where a run is estimated past this (from a run of 200 steps).
const GPU_BUDGET_S: f64 = 60.0;

struct Case {
    label: &'static str,
    n: usize,
    wiring: WiringSpec,
    networks: usize,
}

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

/// scenes/cuba.json's parameters at another size.
fn cuba(case: &Case) -> CubaParams {
    let text = std::fs::read_to_string("scenes/cuba.json").expect("scenes/cuba.json");
    let scene: serde_json::Value = serde_json::from_str(&text).expect("scene JSON");
    let mut params = scene["params"].clone();
    params.as_object_mut().expect("params").remove("experiment");
    let mut p: CubaParams = serde_json::from_value(params).expect("CUBA params");
    assert!(Scene::parse(&text).is_ok());
    p.n = case.n;
    p.networks = case.networks;
    p.wiring = case.wiring.clone();
    // Spike lists for 100 steps on the device hold 100 x networks x n values at most.
    p.record_every = 100;
    p
}

fn inputs(p: &CubaParams, steps: usize) -> SpikingParams {
    let experiment = dale::experiments::cuba::Cuba {
        params: p.clone(),
        steps,
        seed: 1,
    };
    experiment.inputs().expect("the network")
}

fn dale_run(be: &mut dyn Backend, params: &SpikingParams) -> (f64, SpikingRun) {
    let start = Instant::now();
    let run = simulate(be, params).expect("simulate");
    (start.elapsed().as_secs_f64(), run)
}

struct Peer {
    wall_s: f64,
    spikes: f64,
    synapses: f64,
    rate_hz: f64,
    name: String,
}

fn peer(python_var: &str, script: &str, case: &Case) -> Peer {
    let python = std::env::var(python_var).unwrap_or_else(|_| "python3".into());
    let mut args = vec![script.to_string(), "--n".into(), case.n.to_string()];
    match &case.wiring {
        WiringSpec::Probability(p) => args.extend(["--probability".into(), p.to_string()]),
        WiringSpec::InDegree {
            excitatory,
            inhibitory,
        } => args.extend([
            "--in-degree".into(),
            excitatory.to_string(),
            inhibitory.to_string(),
        ]),
        WiringSpec::File(_) => unreachable!("the bench draws its wiring"),
    }
    let out = Command::new(&python)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python} ({python_var}): {e}"));
    assert!(
        out.status.success(),
        "{script} failed under {python} ({python_var}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no JSON line ({e}): {line}"));
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{script}: no {k}"));
    Peer {
        wall_s: f("wall_s"),
        spikes: f("spikes"),
        synapses: f("synapses"),
        rate_hz: f("mean_rate_hz"),
        name: v["peer"].as_str().unwrap_or("?").into(),
    }
}

/// Synaptic events per second: spikes times the mean out-degree, over the wall time.
fn events_per_s(spikes: f64, synapses: f64, n: usize, wall_s: f64) -> f64 {
    spikes * synapses / n as f64 / wall_s
}

fn bench() {
    let cases = [
        Case {
            label: "N=4000 p=0.02",
            n: 4000,
            wiring: WiringSpec::Probability(0.02),
            networks: 1,
        },
        Case {
            label: "N=32000 K=64+16",
            n: 32000,
            wiring: WiringSpec::InDegree {
                excitatory: 64,
                inhibitory: 16,
            },
            networks: 1,
        },
        Case {
            label: "N=4000 B=64",
            n: 4000,
            wiring: WiringSpec::Probability(0.02),
            networks: 64,
        },
    ];
    let seconds = STEPS as f64 * 1e-4;
    let dale_only = std::env::args().any(|a| a == "dale");
    let gpu = if dale_only {
        None
    } else {
        any_gpu().expect("opening the GPU adapter")
    };
    println!(
        "CUBA, {seconds} s of network time, best of {ROUNDS} interleaved rounds; CPU = {}; GPU = {}",
        CpuBackend::new().info().name,
        gpu.as_ref()
            .map(|g| format!("{} ({})", g.info.name, g.info.device_type))
            .unwrap_or_else(|| "none".into())
    );
    // Brian2 compiles its code on a size's first run; that run is a warm-up.
    for case in cases.iter().filter(|c| c.networks == 1 && !dale_only) {
        peer("DALE_BRIAN2_PYTHON", BRIAN2, case);
    }
    let inputs: Vec<SpikingParams> = cases.iter().map(|c| inputs(&cuba(c), STEPS)).collect();
    let mut best = vec![(f64::INFINITY, f64::INFINITY, f64::INFINITY); cases.len()];
    let mut dale_spikes = vec![0usize; cases.len()];
    let mut peers: Vec<Option<(Peer, Peer)>> = cases.iter().map(|_| None).collect();
    for round in 0..ROUNDS {
        for (k, case) in cases.iter().enumerate() {
            let (wall, run) = dale_run(&mut CpuBackend::new(), &inputs[k]);
            dale_spikes[k] = run.spikes.len();
            best[k].0 = best[k].0.min(wall);
            if case.networks > 1 || dale_only {
                eprintln!("round {round}, {}: dale {wall:.3} s", case.label);
                continue;
            }
            let nest = peer("DALE_NEST_PYTHON", NEST, case);
            let brian2 = peer("DALE_BRIAN2_PYTHON", BRIAN2, case);
            best[k].1 = best[k].1.min(nest.wall_s);
            best[k].2 = best[k].2.min(brian2.wall_s);
            eprintln!(
                "round {round}, {}: dale {wall:.3} s, NEST {:.3} s, Brian2 {:.3} s",
                case.label, nest.wall_s, brian2.wall_s
            );
            peers[k] = Some((nest, brian2));
        }
    }
    if let Some((nest, brian2)) = peers.iter().flatten().next() {
        println!("peers: {}; {}", nest.name, brian2.name);
    }
    println!(
        "{:<16} | {:>9} {:>9} {:>9} | {:>7} {:>7} {:>7} | {:>9} {:>9} {:>9} | {:>7} {:>7} | {:>6} {:>6} {:>6}",
        "case", "dale s", "NEST s", "Brian2 s", "dale RT", "NEST RT", "Br2 RT",
        "dale ev/s", "NEST ev/s", "Br2 ev/s", "/NEST", "/Brian2", "Hz", "NEST", "Brian2"
    );
    for (k, case) in cases.iter().enumerate() {
        let p = &inputs[k];
        let synapses = p.connectivity.synapses() as f64;
        let spikes = dale_spikes[k] as f64;
        let dale_ev = events_per_s(spikes, synapses, case.n, best[k].0);
        let rate = spikes / (case.n * case.networks) as f64 / seconds;
        match &peers[k] {
            Some((nest, brian2)) => {
                let nest_ev = events_per_s(nest.spikes, nest.synapses, case.n, best[k].1);
                let brian2_ev = events_per_s(brian2.spikes, brian2.synapses, case.n, best[k].2);
                println!(
                    "{:<16} | {:>9.3} {:>9.3} {:>9.3} | {:>7.3} {:>7.3} {:>7.3} | {:>9.3e} {:>9.3e} {:>9.3e} | {:>6.1}x {:>6.1}x | {:>6.2} {:>6.2} {:>6.2}",
                    case.label,
                    best[k].0,
                    best[k].1,
                    best[k].2,
                    best[k].0 / seconds,
                    best[k].1 / seconds,
                    best[k].2 / seconds,
                    dale_ev,
                    nest_ev,
                    brian2_ev,
                    best[k].1 / best[k].0,
                    best[k].2 / best[k].0,
                    rate,
                    nest.rate_hz,
                    brian2.rate_hz,
                );
            }
            None => {
                let one = best[cases
                    .iter()
                    .position(|c| c.n == case.n && c.networks == 1)
                    .unwrap()]
                .0;
                println!(
                    "{:<16} | {:>9.3} {:>9} {:>9} | {:>7.3} | {:>9.3e} | per network {:.4} s = {:.3} of one network's run alone | {:>6.2} Hz",
                    case.label,
                    best[k].0,
                    "-",
                    "-",
                    best[k].0 / seconds,
                    dale_ev,
                    best[k].0 / case.networks as f64,
                    best[k].0 / case.networks as f64 / one,
                    rate,
                );
            }
        }
        if let Some(ctx) = &gpu {
            let mut be = GpuBackend::new(ctx.clone());
            let short = SpikingParams {
                steps: 200,
                ..p.clone()
            };
            let (probe, _) = dale_run(&mut be, &short);
            let estimate = probe * STEPS as f64 / 200.0;
            if estimate > GPU_BUDGET_S {
                println!(
                    "{:<16} | GPU: skipped, ~{estimate:.0} s estimated from 200 steps",
                    case.label
                );
                continue;
            }
            let (wall, run) = dale_run(&mut be, p);
            let cpu = simulate(&mut CpuBackend::new(), p).expect("simulate");
            println!(
                "{:<16} | GPU {:.3} s, RT {:.3}; same spikes as the CPU backend: {}",
                case.label,
                wall,
                wall / seconds,
                if run.spikes == cpu.spikes {
                    "yes"
                } else {
                    "NO"
                }
            );
            assert_eq!(
                run.spikes, cpu.spikes,
                "{}: GPU and CPU spikes differ",
                case.label
            );
        }
    }
}
