//! `cargo bench --bench vs_numpy`: dale's CPU backend against the NumPy peer
//! (benches/peers/rate_numpy.py) on the same machine in one run (issue 9).
//!
//! 1. The quickstart's step (ReLU, Euler, sine input, noise, readout every step, x every 5 steps)
//!    at N = 1000, B = 64 and N = 4096, B = 256: seconds per step as (T(2S) - T(S)) / S on both
//!    sides, in neuron-steps/s, and the ratio dale / NumPy (above 1: dale is faster). The two
//!    alternate for ROUNDS rounds and the best of each is reported, with the range of the
//!    per-round ratios: a shared machine's speed drifts by tens of percent within minutes, and
//!    interference only ever adds time, so the fastest round is the least disturbed. The GPU
//!    adapter, if any, is timed beside them; on a machine without a GPU that is lavapipe, shown
//!    for contrast.
//! 2. The quickstart scene end to end, as a user runs it: `dale run scenes/quickstart.json` (auto
//!    backend, arrays and plots written) against `rate_numpy.py scenes/quickstart.json --out`,
//!    wall-clock seconds including process start, best of ROUNDS.
//!
//! The peer needs Python 3 with NumPy: `python3`, or the interpreter named in DALE_PYTHON.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{per_step, TARGET_S};
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::GpuBackend;
use dale::backend::Backend;
use dale::models::rate::{Monitors, RateParams, Weights};
use dale::scene::{ModelParams, Scene};

const QUICKSTART: &str = "scenes/quickstart.json";
const PEER: &str = "benches/peers/rate_numpy.py";
const SIZES: [(usize, usize); 2] = [(1000, 64), (4096, 256)];
const ROUNDS: usize = 5;

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn python() -> String {
    std::env::var("DALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs the peer; its stdout on success, or the reason it failed.
fn peer(args: &[&str]) -> Result<String, String> {
    let out = Command::new(python())
        .arg(PEER)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start {}: {e}", python()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn peer_per_step(n: usize, b: usize, steps: usize) -> (f64, String) {
    let json = peer(&[
        QUICKSTART,
        "--time-steps",
        &steps.to_string(),
        "--n",
        &n.to_string(),
        "--trials",
        &b.to_string(),
    ])
    .unwrap_or_else(|e| panic!("the NumPy peer failed: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).expect("the peer prints one JSON line");
    (
        v["seconds_per_step"].as_f64().expect("seconds_per_step"),
        v["numpy"].as_str().unwrap_or("?").to_string(),
    )
}

fn wall(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64()
}

fn main() {
    if let Err(e) = peer(&["--help"]) {
        eprintln!("vs_numpy needs Python 3 with NumPy for the peer ({PEER}); set DALE_PYTHON to such an interpreter.\n{e}");
        std::process::exit(1);
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
        "quickstart step (ReLU, Euler, sine input, noise, readout): dale = {}; GPU = {}",
        cpu.info().name,
        gpu_name.as_deref().unwrap_or("none")
    );
    println!(
        "{:>5} {:>4} | {:>10} {:>12} | {:>10} {:>12} | {:>10} {:>11} | {:>10} {:>12}",
        "N",
        "B",
        "dale ms/st",
        "neuron-st/s",
        "NumPy ms/st",
        "neuron-st/s",
        "dale/NumPy",
        "range",
        "GPU ms/st",
        "neuron-st/s"
    );
    let mut numpy_version = String::new();
    for (n, b) in SIZES {
        let p = RateParams {
            n,
            trials: b,
            ..base.clone()
        };
        let w = Weights::random(&p, scene.seed);
        let (mut dale, mut numpy, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let (dale_s, steps) = per_step(&mut cpu, &p, &w, &monitors, 50e9)
                .expect("the CPU backend fits the budget");
            let (numpy_s, version) =
                peer_per_step(n, b, steps.max((TARGET_S / dale_s / 4.0) as usize).max(2));
            numpy_version = version;
            dale.push(dale_s);
            numpy.push(numpy_s);
            ratios.push(numpy_s / dale_s);
        }
        let (dale_s, numpy_s) = (best(&dale), best(&numpy));
        let range = format!(
            "{:.2}-{:.2}",
            best(&ratios),
            ratios.iter().copied().fold(0.0, f64::max)
        );
        let gpu_s = gpu
            .as_mut()
            .and_then(|g| per_step(g, &p, &w, &monitors, if software { 1e9 } else { 1e12 }))
            .map(|(t, _)| t);
        let rate = |t: f64| (n * b) as f64 / t;
        let gpu_cell = gpu_s
            .map(|t| format!("{:>10.2} {:>12.3e}", t * 1e3, rate(t)))
            .unwrap_or_else(|| format!("{:>10} {:>12}", "skipped", "-"));
        println!(
            "{n:>5} {b:>4} | {:>10.3} {:>12.3e} | {:>10.3} {:>12.3e} | {:>10.2} {range:>11} | {gpu_cell}",
            dale_s * 1e3,
            rate(dale_s),
            numpy_s * 1e3,
            rate(numpy_s),
            numpy_s / dale_s
        );
    }

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
            peer(&[
                QUICKSTART,
                "--out",
                numpy_dir.to_str().expect("utf-8 temp path"),
            ])
            .unwrap_or_else(|e| panic!("the NumPy peer failed: {e}"));
        }));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let (dale_e2e, numpy_e2e) = (best(&dale), best(&numpy));
    println!(
        "\nquickstart end to end ({} steps, N {}, B {}; best of {ROUNDS}): dale {:.2} s, NumPy {numpy_version} {:.2} s, dale/NumPy time {:.2}",
        scene.steps, base.n, base.trials, dale_e2e, numpy_e2e, dale_e2e / numpy_e2e
    );
}
