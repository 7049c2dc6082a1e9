//! `cargo bench --bench balance_vs_numpy`: `dale balance` end to end against the NumPy peer
//! (benches/peers/balance_numpy.py, the same direct solver and stopping rule) on dense networks
//! of N = 4096 and 16384, in one run (issue 10).
//!
//! Each size: one network of `common::networks` (spread 1, a network far from balance), written
//! as J.npy in f32. Then `dale balance J.npy --out DIR` (the auto backend: the CPU backend on a
//! machine without a hardware GPU) and `balance_numpy.py J.npy --out DIR` alternate (5 rounds at
//! N = 4096, 3 at 16384). Wall-clock seconds include process start, reading, balancing and
//! writing; the best round of each is reported, with the range of the per-round ratios (a shared
//! machine's speed drifts; interference only adds time). Every run writes into a new folder,
//! after `sync` has flushed the writes before it. Both report their passes over J and their time
//! split; the two balanced h must agree, or the bench fails.
//!
//! Beside them, once per size, LAPACK's gebal (benches/peers/balance_gebal.py, SciPy's
//! `matrix_balance`): the seconds of its balancing alone and the cost it reaches, against dale's.
//!
//! The peers need Python 3 with NumPy (and SciPy for gebal, which is skipped with a printed
//! reason without it): `python3`, or the interpreter named in DALE_PYTHON.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::networks;
use dale::scene::output::write_npy;

const PEER: &str = "benches/peers/balance_numpy.py";
const GEBAL: &str = "benches/peers/balance_gebal.py";
const SIZES: [(usize, usize); 2] = [(4096, 5), (16384, 3)];

fn python() -> String {
    std::env::var("DALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn json_file(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn h_of(dir: &Path) -> Vec<f32> {
    let bytes = std::fs::read(dir.join("h.npy")).expect("h.npy");
    npyz::NpyFile::new(&bytes[..])
        .expect("h.npy is .npy")
        .into_vec::<f32>()
        .expect("h.npy holds f32")
}

/// Seconds of `cmd` and its stdout; panics with its stderr when it fails.
fn timed(cmd: &mut Command) -> (f64, String) {
    let t = Instant::now();
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let s = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (s, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Flushes every file written so far to disk, untimed, so that neither side's run pays for the
/// other's writes still waiting in the page cache.
fn settle() {
    let status = Command::new("sync").status().expect("running sync");
    assert!(status.success(), "sync failed");
}

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

fn bench() {
    let version = Command::new(python())
        .args(["-c", "import numpy; print(numpy.__version__)"])
        .output();
    let numpy = match version {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            eprintln!("balance_vs_numpy needs Python 3 with NumPy for the peer ({PEER}); set DALE_PYTHON to such an interpreter.");
            std::process::exit(1);
        }
    };
    let dale_bin = env!("CARGO_BIN_EXE_dale");
    let tmp = std::env::temp_dir().join(format!("dale_balance_vs_numpy_{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    println!(
        "dale balance (direct solver, p = 2, tol 1e-6) vs NumPy {numpy}, same solver, end to end"
    );
    println!(
        "{:>6} | {:>8} {:>7} {:>20} | {:>8} {:>7} {:>20} | {:>10} {:>9} | {:>8}",
        "N",
        "dale s",
        "passes",
        "read/balance/write",
        "NumPy s",
        "passes",
        "read/balance/write",
        "NumPy/dale",
        "range",
        "max|dh|"
    );
    let mut backend = String::new();
    for (n, rounds) in SIZES {
        let weights = tmp.join(format!("J_{n}.npy"));
        write_npy(&weights, &[n, n], &networks(1, n, 3, 1.0)).expect("writing J");
        let (dale_dir, numpy_dir) = (
            tmp.join(format!("dale_{n}")),
            tmp.join(format!("numpy_{n}")),
        );
        let (mut dale, mut peer, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut dale_split, mut peer_split) = (String::new(), String::new());
        let (mut dale_passes, mut peer_passes) = (String::new(), String::new());
        for _ in 0..rounds {
            // Each run writes new files, as a user's first run does: overwriting the files of the
            // round before reuses their pages and is several times faster for a 1 GiB J.
            for dir in [&dale_dir, &numpy_dir] {
                drop(std::fs::remove_dir_all(dir));
            }
            settle();
            let (d, _) = timed(
                Command::new(dale_bin)
                    .arg("balance")
                    .arg(&weights)
                    .arg("--out")
                    .arg(&dale_dir),
            );
            let summary = json_file(&dale_dir.join("summary.json"));
            assert_eq!(
                summary["balanced"], true,
                "dale did not reach the tolerance: {summary}"
            );
            let t = &summary["time_s"];
            dale_split = format!(
                "{:.2}/{:.2}/{:.2}",
                t["read"].as_f64().unwrap(),
                t["balance"].as_f64().unwrap(),
                t["write"].as_f64().unwrap()
            );
            dale_passes = format!(
                "{}/{}",
                summary["passes_over_j"]["to_tolerance"], summary["passes_over_j"]["run"]
            );
            backend = summary["backend"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_string();

            settle();
            let (p, stdout) = timed(
                Command::new(python())
                    .arg(PEER)
                    .arg(&weights)
                    .arg("--out")
                    .arg(&numpy_dir),
            );
            let line: serde_json::Value =
                serde_json::from_str(stdout.trim()).expect("the peer prints one JSON line");
            assert_eq!(
                line["converged"], true,
                "the peer did not reach the tolerance: {line}"
            );
            let t = &line["seconds"];
            peer_split = format!(
                "{:.2}/{:.2}/{:.2}",
                t["read"].as_f64().unwrap(),
                t["balance"].as_f64().unwrap(),
                t["write"].as_f64().unwrap()
            );
            peer_passes = line["passes"].to_string();
            dale.push(d);
            peer.push(p);
            ratios.push(p / d);
        }
        let dh = h_of(&dale_dir)
            .iter()
            .zip(h_of(&numpy_dir))
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        // Both stop at ||g|| <= 1e-6 ||g0||, in f32 with sums in different orders: h agrees to
        // about that over the smallest curvature of the cost, far below 1e-2.
        assert!(dh < 1e-2, "N = {n}: dale's and NumPy's h differ by {dh}");
        let range = format!(
            "{:.2}-{:.2}",
            best(&ratios),
            ratios.iter().copied().fold(0.0, f64::max)
        );
        println!(
            "{n:>6} | {:>8.2} {dale_passes:>7} {dale_split:>20} | {:>8.2} {peer_passes:>7} {peer_split:>20} | {:>10.2} {range:>9} | {dh:>8.1e}",
            best(&dale),
            best(&peer),
            best(&peer) / best(&dale),
        );
        let dale_cost = std::fs::read_to_string(dale_dir.join("summary.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["total_cost"]["after"].as_f64());
        match Command::new(python()).arg(GEBAL).arg(&weights).output() {
            Ok(out) if out.status.success() => {
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("gebal prints one JSON line");
                println!(
                    "       LAPACK gebal (SciPy {}): {:.2} s balancing alone; p = 2 cost {:.4e} -> {:.4e}, dale -> {}",
                    v["scipy"].as_str().unwrap_or("?"),
                    v["seconds"].as_f64().unwrap_or(f64::NAN),
                    v["cost_before"].as_f64().unwrap_or(f64::NAN),
                    v["cost_after"].as_f64().unwrap_or(f64::NAN),
                    dale_cost.map_or("?".into(), |c| format!("{c:.4e}"))
                );
            }
            Ok(out) => println!(
                "       LAPACK gebal: skipped ({})",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            ),
            Err(e) => println!("       LAPACK gebal: skipped ({e})"),
        }
        for dir in [&dale_dir, &numpy_dir] {
            drop(std::fs::remove_dir_all(dir));
        }
        drop(std::fs::remove_file(&weights));
    }
    println!("dale's backend: {backend}; passes: to the tolerance / run (dale checks once per chunk; NumPy counts run only). Best of rounds; range of per-round NumPy/dale time.");
    drop(std::fs::remove_dir_all(&tmp));
}
