//! A balanced network read back with NumPy (issue 10): tests/numpy/balanced_readback.py saves a
//! network as a NumPy user would (an .npz of float64 arrays, J in Fortran order, with zeros),
//! `dale balance` balances it under the robustness cost, and the script checks the files from
//! NumPy alone: dtypes and shapes, eq. 4 from h.npy, signs and zeros, the balance condition,
//! summary.json's costs and Prop. 5 bound, and the outputs of the rate network before and after.
//!
//! Needs Python 3 with NumPy: `python3`, or the interpreter in DALE_PYTHON. Without it the test
//! is skipped with a printed reason, except under DALE_REQUIRE_NUMPY=1 (as CI sets), where it
//! fails.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{dale_ok, temp_path};

const SCRIPT: &str = "tests/numpy/balanced_readback.py";

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

#[test]
fn balanced_network_reads_back_in_numpy() {
    let numpy = Command::new(python()).args(["-c", "import numpy"]).output();
    if !numpy.as_ref().is_ok_and(|o| o.status.success()) {
        let why = numpy.map_or_else(|e| e.to_string(), |o| shown(&o));
        if std::env::var("DALE_REQUIRE_NUMPY").is_ok_and(|v| v == "1") {
            panic!(
                "DALE_REQUIRE_NUMPY=1 but {} cannot import numpy: {why}",
                python()
            );
        }
        eprintln!("skipped: {} cannot import numpy (set DALE_REQUIRE_NUMPY=1 to make this a failure): {why}", python());
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
