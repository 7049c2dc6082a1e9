//! `cargo bench --bench vs_numpy`: dale's CPU backend against NumPy on the same machine in one run
//! (issues 9 and 24). Every comparison alternates dale and NumPy for ROUNDS rounds and reports the
//! best round of each, with the range of the per-round ratios: a shared machine's speed drifts by
//! tens of percent within minutes, and interference only ever adds time.
//!
//! 1. The GEMM alone, C = A W^T on the step's shapes: dale's `matmul` op on the CPU backend
//!    against `np.matmul(a, w.T, out=c)` (benches/peers/gemm_numpy.py), in GFLOP/s.
//! 2. The bare step (ReLU, Euler, no noise, no input, no monitors), where the product dominates:
//!    dale's whole step (product, Euler, phi, and the population-rate and max |x| reductions it
//!    always runs) against the least NumPy work of the same math (`rate_numpy.py --bare`:
//!    product, Euler in place, phi). Seconds per step as (min T(2S) - min T(S)) / S over the
//!    rounds on both sides (`common::PairTimes`), the same S for both. B = 1
//!    is memory-bound: its J read per step is given in GB/s beside a plain copy of J's bytes on
//!    all cores and a plain sum of them (read alone), measured in the same round.
//! 3. The quickstart's step (sine input, noise, readout every step, x every 5 steps), against
//!    rate_numpy.py on the same scene file, which draws its noise with NumPy's generator.
//! 4. The quickstart end to end, as a user runs it: `dale run scenes/quickstart.json` (auto
//!    backend, arrays and plots written) against `rate_numpy.py scenes/quickstart.json --out`,
//!    wall-clock seconds including process start.
//!
//! `cargo bench --bench vs_numpy -- gemm bare` runs only the sections named (gemm, bare, scene,
//! e2e). The GPU adapter, if any, is timed beside 3; on a machine without a GPU that is lavapipe, shown
//! for contrast. The peers need Python 3 with NumPy: `python3`, or the interpreter in DALE_PYTHON.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{per_step, read_seconds, run, PairTimes};
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::GpuBackend;
use dale::backend::linalg::{Layout, LinalgOps, MatmulShape};
use dale::backend::{Backend, BufferOps};
use dale::models::rate::{Input, Monitors, RateParams, Weights};
use dale::scene::{ModelParams, Scene};
use rayon::prelude::*;

const QUICKSTART: &str = "scenes/quickstart.json";
const RATE_PEER: &str = "benches/peers/rate_numpy.py";
const GEMM_PEER: &str = "benches/peers/gemm_numpy.py";
const ROUNDS: usize = 5;
/// [rows x inner] x [inner x cols]: the steps' products (B x N by N x N) and the readout.
const GEMM_SHAPES: [(usize, usize, usize); 6] = [
    (1, 1000, 1000),
    (64, 1000, 1000),
    (64, 1000, 2),
    (1, 4096, 4096),
    (64, 4096, 4096),
    (256, 4096, 4096),
];
/// (N, B) of the steps; B = 1 only in the bare step, where it is the memory-bound case.
const STEP_SIZES: [(usize, usize); 2] = [(1000, 64), (4096, 256)];
const SINGLE_TRIAL: [usize; 2] = [1000, 4096];

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn range(ratios: &[f64]) -> String {
    format!(
        "{:.2}-{:.2}",
        best(ratios),
        ratios.iter().copied().fold(0.0, f64::max)
    )
}

fn python() -> String {
    std::env::var("DALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a peer script; its stdout on success, or the reason it failed.
fn peer(script: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", python()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("the peer prints JSON lines"))
        .collect()
}

/// The rate peer's seconds for S and 2S steps, and NumPy's version.
fn rate_peer_times(n: usize, b: usize, steps: usize, bare: bool) -> (f64, f64, String) {
    let (steps, n, b) = (steps.to_string(), n.to_string(), b.to_string());
    let mut args = vec![
        QUICKSTART,
        "--time-steps",
        &steps,
        "--n",
        &n,
        "--trials",
        &b,
    ];
    if bare {
        args.push("--bare");
    }
    let out = peer(RATE_PEER, &args).unwrap_or_else(|e| panic!("the NumPy peer failed: {e}"));
    let v = &json_lines(&out)[0];
    (
        v["short_s"].as_f64().expect("short_s"),
        v["long_s"].as_f64().expect("long_s"),
        v["numpy"].as_str().unwrap_or("?").to_string(),
    )
}

fn wall(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64()
}

/// Seconds per call of `f`, over calls that take at least 0.1 s in all, after one call.
fn per_call(mut f: impl FnMut()) -> f64 {
    f();
    let (start, mut calls) = (Instant::now(), 0u32);
    while start.elapsed().as_secs_f64() < 0.1 {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(calls)
}

/// dale's `matmul` op, C = A W^T, seconds per call.
fn dale_gemm(cpu: &mut CpuBackend, (rows, inner, cols): (usize, usize, usize)) -> f64 {
    let value = |k: usize| ((k as f32) * 0.618).fract() - 0.5;
    let a = cpu
        .alloc_from("A", &(0..rows * inner).map(value).collect::<Vec<_>>())
        .expect("A");
    let w = cpu
        .alloc_from("W", &(0..cols * inner).map(value).collect::<Vec<_>>())
        .expect("W");
    let c = cpu.alloc::<f32>("C", rows * cols).expect("C");
    let shape = MatmulShape {
        groups: 1,
        rows,
        inner,
        cols,
        shared_w: false,
        layout: Layout::ABt,
    };
    let t = per_call(|| cpu.matmul(a, 0, w, c, shape, false));
    cpu.free(a);
    cpu.free(w);
    cpu.free(c);
    t
}

/// Seconds to copy `len` f32 on all cores (one rayon task per 1 MiB block): the bandwidth a
/// memory-bound step can hope for.
fn copy_seconds(len: usize) -> f64 {
    let src: Vec<f32> = (0..len).map(|k| k as f32).collect();
    let mut dst = vec![0.0f32; len];
    per_call(|| {
        dst.par_chunks_mut(1 << 18)
            .zip(src.par_chunks(1 << 18))
            .for_each(|(d, s)| d.copy_from_slice(s))
    })
}

fn bare(base: &RateParams, n: usize, b: usize) -> RateParams {
    RateParams {
        n,
        trials: b,
        sigma: 0.0,
        inputs: 0,
        input: Input::None,
        ..base.clone()
    }
}

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

fn bench() {
    for script in [RATE_PEER, GEMM_PEER] {
        if let Err(e) = peer(script, &["--help"]) {
            eprintln!("vs_numpy needs Python 3 with NumPy for the peers; set DALE_PYTHON to such an interpreter.\n{e}");
            std::process::exit(1);
        }
    }
    let scene = Scene::read(Path::new(QUICKSTART)).expect("reading the quickstart scene");
    let ModelParams::Rate(base) = &scene.params else {
        panic!("{QUICKSTART} is a rate scene")
    };
    let monitors = Monitors {
        x: scene.monitors.x.clone(),
        y: scene.monitors.y.clone(),
    };
    let mut cpu = CpuBackend::new();
    println!("dale: {} ({})", cpu.info().name, cpu.info().driver);
    let mut numpy_version = String::new();
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let section = |name: &str| named.is_empty() || named.iter().any(|a| a == name);

    // 1. The GEMM alone.
    if section("gemm") {
        let shapes = GEMM_SHAPES
            .iter()
            .map(|(r, i, c)| format!("{r}x{i}x{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let (mut dale_t, mut numpy_t) = (
            vec![Vec::new(); GEMM_SHAPES.len()],
            vec![Vec::new(); GEMM_SHAPES.len()],
        );
        for _ in 0..ROUNDS {
            for (k, &shape) in GEMM_SHAPES.iter().enumerate() {
                dale_t[k].push(dale_gemm(&mut cpu, shape));
            }
            let out = peer(GEMM_PEER, &["--shapes", &shapes, "--rounds", "1"])
                .unwrap_or_else(|e| panic!("the NumPy GEMM peer failed: {e}"));
            for (k, v) in json_lines(&out).iter().enumerate() {
                numpy_t[k].push(v["seconds_per_call"].as_f64().expect("seconds_per_call"));
                numpy_version = v["numpy"].as_str().unwrap_or("?").to_string();
            }
        }
        println!("\n1. GEMM alone, C = A W^T, GFLOP/s (best of {ROUNDS} interleaved rounds)");
        println!(
            "{:<30} {:>10} {:>10} {:>11} {:>11}",
            "[rows x inner] x [inner x cols]", "dale", "NumPy", "dale/NumPy", "range"
        );
        for (k, &(rows, inner, cols)) in GEMM_SHAPES.iter().enumerate() {
            let flop = 2.0 * (rows * inner * cols) as f64;
            let ratios: Vec<f64> = numpy_t[k]
                .iter()
                .zip(&dale_t[k])
                .map(|(np, d)| np / d)
                .collect();
            println!(
                "{:<30} {:>10.1} {:>10.1} {:>11.2} {:>11}",
                format!("[{rows} x {inner}] x [{inner} x {cols}]"),
                flop / best(&dale_t[k]) / 1e9,
                flop / best(&numpy_t[k]) / 1e9,
                best(&numpy_t[k]) / best(&dale_t[k]),
                range(&ratios)
            );
        }
    }

    // 2. The bare step; B = 1 beside a copy of J's bytes.
    let header = || {
        println!(
            "{:>5} {:>4} | {:>10} {:>12} | {:>10} {:>12} | {:>10} {:>11}",
            "N",
            "B",
            "dale ms/st",
            "neuron-st/s",
            "NumPy ms/st",
            "neuron-st/s",
            "dale/NumPy",
            "range"
        )
    };
    // dale and NumPy alternate, each timing S and 2S steps per round, S fixed by dale's first
    // calibration so that every round times the same lengths.
    let step_rounds = |cpu: &mut CpuBackend, p: &RateParams, mon: &Monitors, bare_peer: bool| {
        let w = Weights::random(p, scene.seed);
        let (_, steps) = per_step(cpu, p, &w, mon, 50e9).expect("the CPU backend fits the budget");
        let (mut dale, mut numpy) = (PairTimes::new(steps), PairTimes::new(steps));
        for _ in 0..ROUNDS {
            let short = run(cpu, p, &w, steps, mon);
            let long = run(cpu, p, &w, 2 * steps, mon);
            dale.push(short, long);
            let (short, long, _) = rate_peer_times(p.n, p.trials, steps, bare_peer);
            numpy.push(short, long);
        }
        (dale, numpy)
    };
    let print_row = |n: usize, b: usize, dale: &PairTimes, numpy: &PairTimes| {
        let ratios: Vec<f64> = numpy
            .per_round()
            .iter()
            .zip(dale.per_round())
            .map(|(np, d)| np / d)
            .collect();
        let rate = |t: f64| (n * b) as f64 / t;
        let (d, np) = (dale.per_step(), numpy.per_step());
        println!(
            "{n:>5} {b:>4} | {:>10.3} {:>12.3e} | {:>10.3} {:>12.3e} | {:>10.2} {:>11}",
            d * 1e3,
            rate(d),
            np * 1e3,
            rate(np),
            np / d,
            range(&ratios)
        );
    };
    if section("bare") {
        println!("\n2. Bare step (ReLU, Euler; no noise, input or monitors), best of {ROUNDS} interleaved rounds");
        header();
        let none = Monitors::default();
        for (n, b) in STEP_SIZES {
            let (dale, numpy) = step_rounds(&mut cpu, &bare(base, n, b), &none, true);
            print_row(n, b, &dale, &numpy);
        }
        println!(
            "\n   B = 1 (memory-bound): J read per step vs a plain copy of J's bytes on all cores"
        );
        println!(
            "{:>5} | {:>10} {:>13} | {:>10} {:>10} | {:>12} {:>12} | {:>10}",
            "N",
            "dale ms/st",
            "J read GB/s",
            "copy GB/s",
            "sum GB/s",
            "dale / copy",
            "dale / sum",
            "NumPy ms/st"
        );
        for n in SINGLE_TRIAL {
            let p = bare(base, n, 1);
            let w = Weights::random(&p, scene.seed);
            let (_, steps) =
                per_step(&mut cpu, &p, &w, &none, 50e9).expect("the CPU backend fits the budget");
            let (mut dale, mut numpy) = (PairTimes::new(steps), PairTimes::new(steps));
            let (mut copy, mut read) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let short = run(&mut cpu, &p, &w, steps, &none);
                let long = run(&mut cpu, &p, &w, 2 * steps, &none);
                dale.push(short, long);
                copy.push(copy_seconds(n * n));
                read.push(read_seconds(&w.j));
                let (short, long, _) = rate_peer_times(n, 1, steps, true);
                numpy.push(short, long);
            }
            let bytes = (4 * n * n) as f64;
            let (d, c, r) = (dale.per_step(), best(&copy), best(&read));
            println!(
                "{n:>5} | {:>10.3} {:>13.1} | {:>10.1} {:>10.1} | {:>12.2} {:>12.2} | {:>10.3}",
                d * 1e3,
                bytes / d / 1e9,
                bytes / c / 1e9,
                bytes / r / 1e9,
                c / d,
                r / d,
                numpy.per_step() * 1e3
            );
        }
    }

    // 3. The quickstart's step, with noise.
    if section("scene") {
        let gpu = any_gpu()
            .expect("opening the GPU adapter")
            .map(GpuBackend::new);
        let gpu_name = gpu.as_ref().map(|g| {
            format!(
                "{} ({}, {})",
                g.info().name,
                g.info().kind,
                g.info().device_type
            )
        });
        let software = gpu.as_ref().is_some_and(|g| g.info().device_type == "Cpu");
        let mut gpu = gpu;
        println!(
        "\n3. Quickstart step (sine input, noise, readout, monitors), best of {ROUNDS} interleaved rounds; GPU = {}",
        gpu_name.as_deref().unwrap_or("none")
    );
        header();
        for (n, b) in STEP_SIZES {
            let p = RateParams {
                n,
                trials: b,
                ..base.clone()
            };
            let (dale, numpy) = step_rounds(&mut cpu, &p, &monitors, false);
            print_row(n, b, &dale, &numpy);
            let w = Weights::random(&p, scene.seed);
            if let Some((t, _)) = gpu
                .as_mut()
                .and_then(|g| per_step(g, &p, &w, &monitors, if software { 1e9 } else { 1e12 }))
            {
                println!(
                    "      GPU: {:.3} ms/step, {:.3e} neuron-steps/s",
                    t * 1e3,
                    (n * b) as f64 / t
                );
            }
        }
    }

    // 4. End to end.
    if section("e2e") {
        let tmp = std::env::temp_dir().join(format!("dale_vs_numpy_{}", std::process::id()));
        let (dale_dir, numpy_dir) = (tmp.join("dale"), tmp.join("numpy"));
        let dale_bin = env!("CARGO_BIN_EXE_dale");
        let (mut dale, mut numpy) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            dale.push(wall(|| {
                let status = Command::new(dale_bin)
                    .args(["run", QUICKSTART, "--quiet", "--out"])
                    .arg(&dale_dir)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("starting dale");
                assert!(status.success(), "dale run failed");
            }));
            numpy.push(wall(|| {
                peer(
                    RATE_PEER,
                    &[
                        QUICKSTART,
                        "--out",
                        numpy_dir.to_str().expect("utf-8 temp path"),
                    ],
                )
                .unwrap_or_else(|e| panic!("the NumPy peer failed: {e}"));
            }));
        }
        let _ = std::fs::remove_dir_all(&tmp);
        let (dale_e2e, numpy_e2e) = (best(&dale), best(&numpy));
        println!(
        "\n4. Quickstart end to end ({} steps, N {}, B {}; best of {ROUNDS}): dale {:.2} s, NumPy {numpy_version} {:.2} s, dale/NumPy time {:.2}",
        scene.steps, base.n, base.trials, dale_e2e, numpy_e2e, dale_e2e / numpy_e2e
    );
    }
}
