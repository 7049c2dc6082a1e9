//! A balanced network read back with NumPy (issue 10): tests/numpy/balanced_readback.py saves a
//! network as a NumPy user would (an .npz of float64 arrays, J in Fortran order, with zeros),
//! `dale balance` balances it under the robustness cost, and the script checks the files from
//! NumPy alone: dtypes and shapes, eq. 4 from h.npy, signs and zeros, the balance condition,
//! summary.json's costs and Prop. 5 bound, and the outputs of the rate network before and after.
//! And spiking connectivity written by SciPy (issue 18), read by dale.
//!
//! Needs Python 3 with NumPy and SciPy: `python3`, or the interpreter in DALE_PYTHON. Without
//! them a test is skipped with a printed reason, except under DALE_REQUIRE_NUMPY=1 (as CI sets),
//! where it fails.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{dale, dale_ok, stderr, temp_path};

const SCRIPT: &str = "tests/numpy/balanced_readback.py";
const CSR_SCRIPT: &str = "tests/numpy/csr_connectivity.py";

fn python() -> String {
    std::env::var("DALE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn shown(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn script(args: &[&Path]) -> Output {
    Command::new(python())
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python runs")
}

/// Whether Python imports `modules`; if not, a skip with the reason, or a failure under
/// DALE_REQUIRE_NUMPY=1.
fn python_has(modules: &str) -> bool {
    let found = Command::new(python())
        .args(["-c", &format!("import {modules}")])
        .output();
    if found.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = found.map_or_else(|e| e.to_string(), |o| shown(&o));
    if std::env::var("DALE_REQUIRE_NUMPY").is_ok_and(|v| v == "1") {
        panic!(
            "DALE_REQUIRE_NUMPY=1 but {} cannot import {modules}: {why}",
            python()
        );
    }
    eprintln!("skipped: {} cannot import {modules} (set DALE_REQUIRE_NUMPY=1 to make this a failure): {why}", python());
    false
}

#[test]
fn balanced_network_reads_back_in_numpy() {
    if !python_has("numpy") {
        return;
    }
    let dir = temp_path("numpy-readback");
    std::fs::create_dir_all(&dir).unwrap();
    let made = script(&["make".as_ref(), &dir]);
    assert!(made.status.success(), "{}", shown(&made));

    let out = dir.join("out");
    let net = dir.join("net.npz");
    dale_ok(&[
        "balance",
        net.to_str().unwrap(),
        "--cost",
        "robustness",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);

    let checked = script(&["check".as_ref(), &dir, &out]);
    assert!(checked.status.success(), "{}", shown(&checked));
    eprintln!("{}", shown(&checked).trim());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 300-neuron CUBA network for 2,000 steps whose synapses come from `wiring`.
fn spiking_scene(dir: &Path, wiring: &Path) -> String {
    let scene = serde_json::json!({
        "model": "spiking",
        "seed": 2,
        "steps": 2000,
        "params": {
            "experiment": "cuba", "n": 300, "excitatory_fraction": 0.8, "networks": 2,
            "dt": 0.1, "tau_m": 20.0, "tau_e": 5.0, "tau_i": 10.0,
            "rest": -49.0, "threshold": -50.0, "reset": -60.0, "refractory": 5.0,
            "wiring": {"file": wiring.to_str().unwrap()}, "record_every": 300
        }
    });
    let name = wiring
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('.', "_");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, scene.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

/// SciPy's CSR .npz (int32 and int64 indices, rows unsorted, repeats) and the same weights as a
/// dense .npy give the same network: the same synapse count (repeats summed) and, through
/// sparse and dense delivery, the same spikes, bit for bit; a CSC .npz is refused by name.
#[test]
fn spiking_connectivity_from_scipy_files() {
    if !python_has("numpy, scipy.sparse") {
        return;
    }
    let dir = temp_path("scipy-connectivity");
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new(python())
        .arg(CSR_SCRIPT)
        .arg(&dir)
        .output()
        .expect("python runs");
    assert!(made.status.success(), "{}", shown(&made));
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut spikes = Vec::new();
    for (file, delivery) in [
        ("w.npz", "sparse (CSR)"),
        ("w64.npz", "sparse (CSR)"),
        ("w.npy", "dense"),
    ] {
        let out = dir.join(format!("out_{file}"));
        let scene = spiking_scene(&dir, &dir.join(file));
        dale_ok(&[
            "run",
            &scene,
            "--backend",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        let figures = &summary["figures"];
        assert_eq!(figures["synapses"], expected["synapses"], "{file}");
        assert_eq!(figures["delivery"], delivery, "{file}");
        assert!(
            summary["checks"]
                .as_object()
                .unwrap()
                .values()
                .all(|c| c == true),
            "{file}: {summary}"
        );
        spikes.push((
            file,
            std::fs::read(out.join("spike_times_ms.npy")).unwrap(),
            std::fs::read(out.join("spike_neurons.npy")).unwrap(),
        ));
    }
    assert!(spikes[0].1.len() > 1000, "the network should spike");
    for (file, times, neurons) in &spikes[1..] {
        assert!(
            *times == spikes[0].1 && *neurons == spikes[0].2,
            "{file} spikes differently from w.npz"
        );
    }
    let scene = spiking_scene(&dir, &dir.join("csc.npz"));
    let refused = dale(&[
        "run",
        &scene,
        "--backend",
        "cpu",
        "--out",
        dir.join("out_csc").to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let e = stderr(&refused);
    assert!(
        e.contains("csc.npz") && e.contains("format") && e.contains("\"csc\"") && e.contains("csr"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
