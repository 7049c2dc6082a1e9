//! `cargo bench --bench disco`: DisCo-SGD (paper 003).
//!
//! 1. Sorting: keys sorted per second by `sort_rows` (each row of [rows, len] f32 keys sorted
//!    with its permutation) for (rows, len) in {(1, 10^6), (1024, 1000), (64, 65536)}, on the CPU
//!    backend against NumPy on the same machine in the same run (benches/peers/sort_numpy.py:
//!    `np.sort` for the keys alone, `np.argsort` + `np.take_along_axis` for what sort_rows
//!    returns, and its stable kind for dale's order of ties), rounds interleaved; the GPU
//!    adapter's column beside them (on lavapipe, a correctness contrast only).
//! 2. DisCo-SGD iterations per second (models/disco.rs: fields of a mini-batch, the logistic step,
//!    a sort and the transport step per problem) on the CPU backend, against the same algorithm
//!    in JAX on the CPU (benches/peers/disco_jax.py, jitted and vmapped, K iterations in one
//!    fori_loop), rounds interleaved. Per iteration: (T(2K) - T(K)) / K on both sides.
//!
//! The peers need Python 3 with NumPy (`python3`, or the interpreter in DALE_PYTHON) and, for
//! section 2, JAX (`pip install "jax[cpu]"`; the interpreter in DALE_JAX_PYTHON, or the same).

use std::process::Command;
use std::time::Instant;

use dale::analysis::disco::WeightDistribution;
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::GpuBackend;
use dale::backend::perceptron::Rates;
use dale::backend::sort::{SortOps, SortRows};
use dale::backend::{Backend, BufferOps};
use dale::models::disco::{train, Constraint, DiscoParams, Labels, Population, Start};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const SORT_PEER: &str = "benches/peers/sort_numpy.py";
const SHAPES: [(usize, usize); 3] = [(1, 1_000_000), (1024, 1000), (64, 65536)];
const ROUNDS: usize = 5;
/// A GPU adapter's column is skipped where one call is estimated past this (lavapipe sorts
/// about 2e6 keys a second here).
const GPU_BUDGET_S: f64 = 20.0;

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

fn python() -> String {
    std::env::var("DALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// NumPy's seconds per call at one shape: (sort, argsort + take, stable argsort + take).
fn numpy_times((rows, len): (usize, usize)) -> (f64, f64, f64, String) {
    let out = Command::new(python())
        .args([
            SORT_PEER,
            "--shapes",
            &format!("{rows}x{len}"),
            "--rounds",
            "1",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python()));
    assert!(
        out.status.success(),
        "the NumPy peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the peer prints one JSON line");
    let s = |k: &str| v[k].as_f64().expect(k);
    (
        s("sort_s"),
        s("argsort_s"),
        s("stable_s"),
        v["numpy"].as_str().unwrap_or("?").into(),
    )
}

/// Seconds per `sort_rows` call on `be` (keys uploaded once), over calls that take at least
/// 0.1 s in all after one call; each call ends with a read of one value, so that a GPU has
/// finished it.
fn dale_time(be: &mut dyn Backend, keys: &[f32], spec: SortRows) -> f64 {
    let n = spec.keys();
    let k = be.alloc_from("keys", keys).expect("keys");
    let sorted = be.alloc::<f32>("sorted", n).expect("sorted");
    let perm = be.alloc::<u32>("perm", n).expect("perm");
    let work = be.alloc::<u32>("work", n).expect("work");
    let nan_rows = be.alloc::<u32>("nan_rows", spec.rows).expect("nan_rows");
    let mut call = || {
        be.sort_rows(k, sorted, perm, work, nan_rows, spec);
        be.download(perm, 0, 1).expect("read back");
    };
    call();
    let (start, mut calls) = (Instant::now(), 0u32);
    while calls == 0 || start.elapsed().as_secs_f64() < 0.1 {
        call();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(calls)
}

fn bench() {
    let gpu = any_gpu().expect("opening the GPU adapter");
    let gpu_name = gpu
        .as_ref()
        .map(|g| format!("{} ({})", g.info.name, g.info.device_type));
    println!(
        "sort_rows: keys sorted per second (with the permutation), best of {ROUNDS} interleaved rounds; CPU = {}; GPU = {}",
        CpuBackend::new().info().name,
        gpu_name.as_deref().unwrap_or("none")
    );
    println!(
        "{:>5} {:>8} | {:>11} {:>11} {:>11} {:>11} | {:>9} {:>9} {:>9} | {:>11}",
        "rows",
        "len",
        "dale Mkey/s",
        "np.sort",
        "argsort",
        "stable",
        "/np.sort",
        "/argsort",
        "/stable",
        "GPU Mkey/s"
    );
    let mut version = String::new();
    for (rows, len) in SHAPES {
        let spec = SortRows::packed(rows, len);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let keys: Vec<f32> = (0..spec.keys())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let mut best = [f64::INFINITY; 4];
        for _ in 0..ROUNDS {
            let d = dale_time(&mut CpuBackend::new(), &keys, spec);
            let (s, a, st, v) = numpy_times((rows, len));
            version = v;
            for (b, t) in best.iter_mut().zip([d, s, a, st]) {
                *b = b.min(t);
            }
        }
        let rate = |t: f64| spec.keys() as f64 / t / 1e6;
        let gpu_cell = match &gpu {
            Some(ctx)
                if spec.keys() as f64 / 2e6 < GPU_BUDGET_S || ctx.info.device_type != "Cpu" =>
            {
                format!(
                    "{:>11.1}",
                    rate(dale_time(&mut GpuBackend::new(ctx.clone()), &keys, spec))
                )
            }
            Some(_) => format!("{:>11}", "skipped"),
            None => format!("{:>11}", "-"),
        };
        let [d, s, a, st] = best;
        println!(
            "{rows:>5} {len:>8} | {:>11.1} {:>11.1} {:>11.1} {:>11.1} | {:>9.2} {:>9.2} {:>9.2} | {gpu_cell}",
            rate(d),
            rate(s),
            rate(a),
            rate(st),
            s / d,
            a / d,
            st / d
        );
    }
    println!("NumPy {version} ({SORT_PEER}); ratios are dale's keys/s over NumPy's");
    disco_iterations();
}

const DISCO_PEER: &str = "benches/peers/disco_jax.py";
/// (problems, n, patterns, batch).
const DISCO_SHAPES: [(usize, usize, usize, usize); 2] =
    [(64, 1000, 1000, 100), (16, 2000, 1000, 200)];
const DISCO_ITERATIONS: usize = 50;

/// dale's seconds per DisCo-SGD iteration: whole `train` runs of K and 2K steps with one check
/// at the end, differenced (the task's generation and upload cancel).
fn dale_disco((problems, n, patterns, batch): (usize, usize, usize, usize)) -> f64 {
    let s: f64 = 0.6;
    let run = |steps: usize| {
        let params = DiscoParams {
            problems,
            patterns,
            constraint: Constraint::Distributions(vec![Population {
                size: n,
                distribution: WeightDistribution::Normal {
                    mean: (1.0 - s * s).sqrt(),
                    sd: s,
                },
            }]),
            labels: Labels::Random,
            start: Start::Sample,
            batch,
            rates: Rates {
                weights: 0.003,
                beta: 0.001,
            },
            transport_rate: 0.02,
            beta0: 1.0 / (n as f32).sqrt(),
            // Above every margin: no problem stops early.
            kappa: f32::MAX,
            max_steps: steps,
            check_every: steps,
            stop_when_solved: true,
            record_weights: false,
            seed: 0,
        };
        let start = Instant::now();
        train(&mut CpuBackend::new(), &params).expect("bench run");
        start.elapsed().as_secs_f64()
    };
    (run(2 * DISCO_ITERATIONS) - run(DISCO_ITERATIONS)) / DISCO_ITERATIONS as f64
}

fn jax_disco((problems, n, patterns, batch): (usize, usize, usize, usize)) -> (f64, String) {
    let python = std::env::var("DALE_JAX_PYTHON").unwrap_or_else(|_| python());
    let out = Command::new(&python)
        .args([
            DISCO_PEER,
            "--shape",
            &format!("{problems}x{n}x{patterns}x{batch}"),
            "--iterations",
            &DISCO_ITERATIONS.to_string(),
            "--rounds",
            "1",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    assert!(
        out.status.success(),
        "the JAX peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the peer prints one JSON line");
    (
        v["seconds_per_iteration"].as_f64().expect("seconds"),
        v["jax"].as_str().unwrap_or("?").into(),
    )
}

fn disco_iterations() {
    println!();
    println!(
        "DisCo-SGD iterations per second (one population, N(0.8, 0.6^2)), best of {ROUNDS} interleaved rounds, CPU backend vs JAX on the CPU"
    );
    println!(
        "{:>8} {:>6} {:>8} {:>6} | {:>10} {:>10} | {:>9}",
        "problems", "n", "patterns", "batch", "dale it/s", "JAX it/s", "dale/JAX"
    );
    let mut version = String::new();
    for shape in DISCO_SHAPES {
        let (mut dale, mut jax) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..ROUNDS {
            dale = dale.min(dale_disco(shape));
            let (t, v) = jax_disco(shape);
            jax = jax.min(t);
            version = v;
        }
        let (problems, n, patterns, batch) = shape;
        println!(
            "{problems:>8} {n:>6} {patterns:>8} {batch:>6} | {:>10.1} {:>10.1} | {:>9.2}",
            1.0 / dale,
            1.0 / jax,
            jax / dale
        );
    }
    println!("JAX {version} ({DISCO_PEER})");
}
