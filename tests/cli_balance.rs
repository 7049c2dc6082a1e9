//! `dale balance` as a user meets it: weights in from .npy/.npz in f32 or f64, C or Fortran
//! order; balanced weights out in the same dtype; every bad input an error naming the file, the
//! array and what was expected, with a non-zero exit and nothing written.

mod common;

use std::path::{Path, PathBuf};

use common::{dale, dale_ok, normal, temp_path};
use npyz::{Order, WriterBuilder};

/// An empty folder of this test's own.
fn tmp(name: &str) -> PathBuf {
    let dir = temp_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A network off balance: J_ij ~ N(0, 1/N) e^(s_i - s_j).
fn unbalanced(n: usize, seed: u64) -> Vec<f64> {
    let s = normal(n, seed + 1);
    normal(n * n, seed)
        .iter()
        .enumerate()
        .map(|(e, v)| f64::from(*v) / (n as f64).sqrt() * f64::from(s[e / n] - s[e % n]).exp())
        .collect()
}

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T], order: Order) {
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .order(order)
        .writer(std::fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

/// (name, shape, values) as f64 arrays of an .npz.
fn write_npz(path: &Path, arrays: &[(&str, Vec<u64>, Vec<f64>)]) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    for (name, shape, data) in arrays {
        let mut w = npz
            .array::<f64>(name, Default::default())
            .unwrap()
            .default_dtype()
            .shape(shape)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
}

fn read_npy_f64(path: &Path) -> (String, Vec<u64>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(bytes.as_slice()).unwrap();
    let (descr, shape) = (npy.dtype().descr(), npy.shape().to_vec());
    let data = if descr.contains("f4") {
        npy.into_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    } else {
        npy.into_vec::<f64>().unwrap()
    };
    (descr, shape, data)
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// Largest |g_k| of J's costs |J|^2, relative to the total cost.
fn imbalance(n: usize, j: &[f64]) -> f64 {
    let c: Vec<f64> = j.iter().map(|v| v * v).collect();
    let total: f64 = c.iter().sum();
    (0..n)
        .map(|k| ((0..n).map(|o| c[k * n + o] - c[o * n + k]).sum::<f64>()).abs())
        .fold(0.0, f64::max)
        / total
}

#[test]
fn npy_in_both_dtypes_and_orders_comes_back_balanced_in_its_dtype() {
    let n = 40;
    let j = unbalanced(n, 1);
    let dir = tmp("roundtrip");
    for (dtype, order) in [
        ("f32", Order::C),
        ("f32", Order::Fortran),
        ("f64", Order::C),
        ("f64", Order::Fortran),
    ] {
        let file = dir.join(format!("J_{dtype}_{order:?}.npy"));
        // Fortran order stores the transpose's C layout: column-major values of the same J.
        let values: Vec<f64> = if order == Order::Fortran {
            (0..n * n).map(|e| j[(e % n) * n + e / n]).collect()
        } else {
            j.clone()
        };
        if dtype == "f32" {
            write_npy(
                &file,
                &[n as u64, n as u64],
                &values.iter().map(|v| *v as f32).collect::<Vec<_>>(),
                order,
            );
        } else {
            write_npy(&file, &[n as u64, n as u64], &values, order);
        }
        let out = dir.join(format!("out_{dtype}_{order:?}"));
        let o = dale(&[
            "balance",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        assert!(
            o.status.success(),
            "{dtype} {order:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (descr, shape, balanced) = read_npy_f64(&out.join("J.npy"));
        assert!(
            descr.contains(if dtype == "f32" { "f4" } else { "f8" }),
            "{dtype}: J came back as {descr}"
        );
        assert_eq!(shape, vec![n as u64, n as u64]);
        let (_, _, h) = read_npy_f64(&out.join("h.npy"));
        // J = J0 e^(h_j - h_i), read in C order whatever order came in; f32 arithmetic inside.
        for e in 0..n * n {
            let want = j[e] * (h[e % n] - h[e / n]).exp();
            assert!(
                (balanced[e] - want).abs() <= 1e-5 * want.abs().max(1e-3),
                "{dtype} {order:?} at {e}: {} vs {want}",
                balanced[e]
            );
        }
        assert!(
            imbalance(n, &j) > 0.1 && imbalance(n, &balanced) < 1e-5,
            "{dtype} {order:?}: imbalance {}",
            imbalance(n, &balanced)
        );
        let s = summary(&out);
        assert_eq!(s["balanced"], true);
        assert!(
            s["total_cost"]["after"].as_f64().unwrap()
                < s["total_cost"]["before"].as_f64().unwrap()
        );
        assert!(
            s["prop5_bounds_on_balanced_cost"]["lower"]
                .as_f64()
                .unwrap()
                <= s["total_cost"]["after"].as_f64().unwrap() * (1.0 + 1e-6)
        );
        assert!(out.join("balance.png").is_file());
    }
}

#[test]
fn npz_with_input_output_weights_and_robustness_cost_keeps_the_task() {
    let (n, m, k) = (30, 3, 2);
    let dir = tmp("npz");
    let j = unbalanced(n, 5);
    let w_in: Vec<f64> = normal(n * m, 6).iter().map(|v| f64::from(*v)).collect();
    let w_out: Vec<f64> = normal(k * n, 7).iter().map(|v| f64::from(*v)).collect();
    let sigma2: Vec<f64> = normal(n, 8)
        .iter()
        .map(|v| 0.2 + f64::from(v.abs()))
        .collect();
    let file = dir.join("net.npz");
    write_npz(
        &file,
        &[
            ("J", vec![n as u64, n as u64], j.clone()),
            ("W_in", vec![n as u64, m as u64], w_in.clone()),
            ("W_out", vec![k as u64, n as u64], w_out.clone()),
            ("sigma2", vec![n as u64], sigma2.clone()),
        ],
    );
    let out = dir.join("out");
    dale_ok(&[
        "balance",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cost",
        "robustness",
        "--backend",
        "cpu",
    ]);
    let (_, _, h) = read_npy_f64(&out.join("h.npy"));
    let (_, _, wi) = read_npy_f64(&out.join("W_in.npy"));
    let (_, _, wo) = read_npy_f64(&out.join("W_out.npy"));
    // eq. 4: W_in -> e^-H W_in, W_out -> W_out e^H, so W_out W_in-paths are unchanged.
    for e in 0..n * m {
        assert!((wi[e] - w_in[e] * (-h[e / m]).exp()).abs() <= 1e-5 * w_in[e].abs().max(1e-3));
    }
    for e in 0..k * n {
        assert!((wo[e] - w_out[e] * h[e % n].exp()).abs() <= 1e-5 * w_out[e].abs().max(1e-3));
    }
    // Balanced for c = sigma_j^2 J^2.
    let (_, _, jb) = read_npy_f64(&out.join("J.npy"));
    let c: Vec<f64> = (0..n * n).map(|e| sigma2[e % n] * jb[e] * jb[e]).collect();
    let total: f64 = c.iter().sum();
    let worst = (0..n)
        .map(|q| ((0..n).map(|o| c[q * n + o] - c[o * n + q]).sum::<f64>()).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 1e-5 * total,
        "largest |g_k| {worst:.2e} of C = {total}"
    );

    // The readout-aware cost: balanced with the readout path on sum h = 0 (in f64 from the files
    // written: the gradient with the readout is constant, a multiplier of the constraint), and
    // --check confirms the task and the signs.
    let out = dir.join("readout");
    dale_ok(&[
        "balance",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cost",
        "readout",
        "--backend",
        "cpu",
    ]);
    let (_, _, jb) = read_npy_f64(&out.join("J.npy"));
    let (_, _, wi) = read_npy_f64(&out.join("W_in.npy"));
    let (_, _, wo) = read_npy_f64(&out.join("W_out.npy"));
    let c: Vec<f64> = (0..n * n).map(|e| sigma2[e % n] * jb[e] * jb[e]).collect();
    let readout = |q: usize| (0..k).map(|o| wo[o * n + q].powi(2)).sum::<f64>();
    let total: f64 = c.iter().sum::<f64>() + (0..n).map(readout).sum::<f64>();
    let grad: Vec<f64> = (0..n)
        .map(|q| {
            let inc: f64 = (0..n).filter(|&o| o != q).map(|o| c[q * n + o]).sum();
            let out: f64 = (0..n).filter(|&o| o != q).map(|o| c[o * n + q]).sum();
            inc - out - readout(q)
        })
        .collect();
    let mean = grad.iter().sum::<f64>() / n as f64;
    let worst = grad.iter().fold(0.0f64, |w, g| w.max((g - mean).abs()));
    assert!(
        worst < 1e-5 * total,
        "readout-aware: largest |g_k - mean g| {worst:.2e} of C = {total}"
    );
    let (_, _, h) = read_npy_f64(&out.join("h.npy"));
    assert!(h.iter().sum::<f64>().abs() < 1e-4, "sum h = 0");
    for e in 0..n * m {
        assert!((wi[e] - w_in[e] * (-h[e / m]).exp()).abs() <= 1e-5 * w_in[e].abs().max(1e-3));
    }
    let o = dale_ok(&[
        "balance",
        "--check",
        file.to_str().unwrap(),
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["task_preserved"], true, "{report}");
}

#[test]
fn feedforward_network_is_held_by_components_or_gets_the_flows_end_point_as_a_whole() {
    let n = 6;
    let dir = tmp("feedforward");
    // A chain 0 -> 1 -> ... -> 5, and a reciprocal pair 6 <-> 7 fed by neuron 5: the chain has no
    // path back, so no finite balance as a whole (Prop. B.1); the pair is a component.
    let n_all = n + 2;
    let mut j = vec![0.0f64; n_all * n_all];
    for i in 1..n {
        j[i * n_all + i - 1] = 1.0;
    }
    j[6 * n_all + 5] = 0.5;
    j[6 * n_all + 7] = 3.0;
    j[7 * n_all + 6] = 0.2;
    let file = dir.join("J.npy");
    write_npy(&file, &[n_all as u64, n_all as u64], &j, Order::C);
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "balance",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--max-iterations",
            "500",
            "--backend",
            "cpu",
        ];
        args.extend_from_slice(extra);
        dale_ok(&args);
        summary(out)
    };

    // By components (the default): the chain is held at h = 0, the pair balanced to
    // sqrt(3.0 * 0.2) each way (eq. 29-30), the synapse into the pair scaled by e^(h_5 - h_6).
    let out = dir.join("components");
    let s = run(&out, &[]);
    assert_eq!(s["balanced"], true, "{s}");
    assert_eq!(s["topology"], "components");
    assert_eq!(s["components"]["balanced_components"], 1);
    assert_eq!(s["components"]["neurons_held_at_h_0"], n);
    assert_eq!(s["checks"]["signs_and_zeros_of_j_kept"], true);
    let (_, _, jb) = read_npy_f64(&out.join("J.npy"));
    let (_, _, h) = read_npy_f64(&out.join("h.npy"));
    assert!(h[..n].iter().all(|v| *v == 0.0), "the chain moved: {h:?}");
    for i in 1..n {
        assert_eq!(jb[i * n_all + i - 1], 1.0, "the held chain's synapses stay");
    }
    let geometric = (3.0f64 * 0.2).sqrt();
    for (i, k) in [(6, 7), (7, 6)] {
        let got = jb[i * n_all + k];
        assert!(
            (got - geometric).abs() < 1e-5,
            "J[{i}][{k}] = {got}, want {geometric}"
        );
    }
    let want = 0.5 * (h[5] - h[6]).exp(); // J_ij e^(h_j - h_i), eq. 4
    assert!(
        (jb[6 * n_all + 5] - want).abs() < 1e-6,
        "{} vs {want}",
        jb[6 * n_all + 5]
    );

    // The whole network: the flow's end point after its budget, marked as no finite balance.
    let out = dir.join("whole");
    let s = run(&out, &["--topology", "whole"]);
    assert_eq!(s["balanced"], false);
    let why = s["no_finite_balance"].as_str().unwrap();
    assert!(
        why.contains("no path of synapses leads back")
            && why.contains("strongly connected components"),
        "{why}"
    );
    assert!(s["method"].as_str().unwrap().starts_with("flow"));
    assert!(
        s["total_cost"]["after"].as_f64().unwrap() < s["total_cost"]["before"].as_f64().unwrap()
    );
}

/// Runs `dale balance` on `input` and returns stderr, asserting failure and that --out was not
/// created.
fn refused(dir: &Path, input: &Path, extra: &[&str]) -> String {
    let out = dir.join("out-never");
    let mut args = vec![
        "balance",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ];
    args.extend_from_slice(extra);
    let o = dale(&args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists(), "nothing may be written for bad input");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_inputs_name_the_file_the_array_and_what_was_expected() {
    let dir = tmp("bad");
    let n = 5;
    let good: Vec<f64> = unbalanced(n, 9);
    // Not square.
    let f = dir.join("rect.npy");
    write_npy(&f, &[5, 4], &good[..20], Order::C);
    let e = refused(&dir, &f, &[]);
    assert!(
        e.contains("rect.npy") && e.contains("[5, 4]") && e.contains("[N, N]"),
        "{e}"
    );
    // Integer dtype.
    let f = dir.join("int.npy");
    write_npy(&f, &[2, 2], &[1i32, 2, 3, 4], Order::C);
    let e = refused(&dir, &f, &[]);
    assert!(
        e.contains("int.npy") && e.contains("<i4") && e.contains("float32 or float64"),
        "{e}"
    );
    // NaN, named by its index.
    let mut nan = good.clone();
    nan[2 * n + 3] = f64::NAN;
    let f = dir.join("nan.npy");
    write_npy(&f, &[n as u64, n as u64], &nan, Order::C);
    let e = refused(&dir, &f, &[]);
    assert!(
        e.contains("nan.npy") && e.contains("[2, 3]") && e.contains("not finite"),
        "{e}"
    );
    // Infinity in f64 beyond f32.
    let mut big = good.clone();
    big[1] = 1e300;
    let f = dir.join("big.npy");
    write_npy(&f, &[n as u64, n as u64], &big, Order::C);
    let e = refused(&dir, &f, &[]);
    assert!(e.contains("[0, 1]") && e.contains("f32 range"), "{e}");
    // An archive without J; one whose W_in does not match J; robustness without sigma2.
    let f = dir.join("noj.npz");
    write_npz(&f, &[("weights", vec![n as u64, n as u64], good.clone())]);
    let e = refused(&dir, &f, &[]);
    assert!(
        e.contains("noj.npz")
            && e.contains("`J`")
            && e.contains("missing")
            && e.contains("weights"),
        "{e}"
    );
    let f = dir.join("win.npz");
    write_npz(
        &f,
        &[
            ("J", vec![n as u64, n as u64], good.clone()),
            ("W_in", vec![4, 2], vec![0.5; 8]),
        ],
    );
    let e = refused(&dir, &f, &[]);
    assert!(
        e.contains("W_in") && e.contains("[4, 2]") && e.contains("[5, 2]"),
        "{e}"
    );
    let f = dir.join("nosigma.npz");
    write_npz(&f, &[("J", vec![n as u64, n as u64], good.clone())]);
    let e = refused(&dir, &f, &["--cost", "robustness"]);
    assert!(e.contains("sigma2") && e.contains("missing"), "{e}");
    // Options out of range; a file that is not there.
    let f = dir.join("ok.npy");
    write_npy(&f, &[n as u64, n as u64], &good, Order::C);
    assert!(refused(&dir, &f, &["--p=-1"]).contains("allowed: a finite value > 0"));
    assert!(refused(&dir, &f, &["--tol", "2"]).contains("0 < tol < 1"));
    assert!(
        refused(&dir, &f, &["--cost", "maxabs", "--solver", "direct"]).contains("--solver flow")
    );
    assert!(refused(&dir, &dir.join("absent.npy"), &[]).contains("absent.npy"));
}

#[test]
fn check_confirms_the_task_is_kept_and_catches_a_tampered_network() {
    let n = 25;
    let dir = tmp("check");
    let j = unbalanced(n, 11);
    let file = dir.join("J.npy");
    write_npy(&file, &[n as u64, n as u64], &j, Order::C);
    let out = dir.join("out");
    assert!(dale(&[
        "balance",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu"
    ])
    .status
    .success());
    let o = dale_ok(&[
        "balance",
        "--check",
        file.to_str().unwrap(),
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["task_preserved"], true);
    assert!(
        report["largest_output_difference_relative"]
            .as_f64()
            .unwrap()
            < 1e-5
    );
    // Scale one balanced synapse by 1.5: no longer a diagonal similarity of J.
    let (_, _, mut jb) = read_npy_f64(&out.join("J.npy"));
    let e = (0..n * n)
        .find(|&e| e / n != e % n && jb[e].abs() > 0.3)
        .unwrap();
    jb[e] *= 1.5;
    write_npy(&out.join("J.npy"), &[n as u64, n as u64], &jb, Order::C);
    let o = dale(&[
        "balance",
        "--check",
        file.to_str().unwrap(),
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a task-preserving transformation"));
    // And a flipped sign, even where the outputs might hide it.
    jb[e] *= -1.0 / 1.5;
    write_npy(&out.join("J.npy"), &[n as u64, n as u64], &jb, Order::C);
    let o = dale(&[
        "balance",
        "--check",
        file.to_str().unwrap(),
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 synapses changed sign"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn write_scene(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scene.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn scenes_take_weights_from_npy_and_npz_and_refuse_wrong_ones_before_writing() {
    let (n, m, k) = (12, 2, 3);
    let dir = tmp("scenes");
    let j = unbalanced(n, 21);
    let w_out: Vec<f64> = normal(k * n, 22).iter().map(|v| f64::from(*v)).collect();
    write_npz(
        &dir.join("net.npz"),
        &[("J", vec![n as u64, n as u64], j.clone())],
    );
    write_npy(
        &dir.join("w_out.npy"),
        &[k as u64, n as u64],
        &w_out,
        Order::C,
    );
    let rate = |weights: &str| {
        format!(
            r#"{{"model": "rate", "seed": 1, "steps": 20, "params": {{"n": {n}, "inputs": {m}, "outputs": {k}, "input": {{"kind": "constant", "value": [1.0, -0.5]}}}}, "weights": {weights}, "monitors": {{"y": {{"every": 1}}}}}}"#
        )
    };
    let npz = dir.join("net.npz");
    let ok = rate(&format!(
        r#"{{"J": "{}:J", "W_out": "{}"}}"#,
        npz.display(),
        dir.join("w_out.npy").display()
    ));
    let out = dir.join("rate-out");
    dale_ok(&[
        "run",
        write_scene(&dir, &ok).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
    ]);
    // The same scene with random weights gives other outputs: the files were used.
    let random = dir.join("rate-random");
    let o = dale(&[
        "run",
        write_scene(&dir, &rate("{}")).to_str().unwrap(),
        "--out",
        random.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
    ]);
    assert!(o.status.success());
    assert_ne!(
        std::fs::read(out.join("y.npy")).unwrap(),
        std::fs::read(random.join("y.npy")).unwrap()
    );
    // W_out of the wrong shape, a missing npz member: errors, and --out is not created.
    for (weights, needle) in [
        (
            format!(r#"{{"W_out": "{}:J"}}"#, npz.display()),
            "expected [3, 12] or [1, 3, 12]",
        ),
        (
            format!(r#"{{"J": "{}:W"}}"#, npz.display()),
            "no array of that name",
        ),
        (
            r#"{"J": "x.npy", "sigma2": "y.npy"}"#.to_string(),
            "cost weights of the balancing model",
        ),
    ] {
        let never = dir.join("never");
        let o = dale(&[
            "run",
            write_scene(&dir, &rate(&weights)).to_str().unwrap(),
            "--out",
            never.to_str().unwrap(),
            "--backend",
            "cpu",
        ]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!never.exists());
    }
    // The balancing experiment "network" balances the J a scene names.
    let scene = format!(
        r#"{{"model": "balancing", "seed": 1, "steps": 1, "params": {{"experiment": "network", "tol": 1e-6}}, "weights": {{"J": "{}:J"}}}}"#,
        npz.display()
    );
    let out = dir.join("network-out");
    dale_ok(&[
        "run",
        write_scene(&dir, &scene).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--quiet",
    ]);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["figures"]["balanced"], true);
    let (_, _, jb) = read_npy_f64(&out.join("J.npy"));
    assert!(imbalance(n, &jb) < 1e-5);
    // Weights given to an experiment that builds its own network are refused.
    let scene = format!(
        r#"{{"model": "balancing", "seed": 1, "steps": 10, "params": {{"experiment": "two_neurons", "pairs": [[1.0, 2.0]], "p": 2.0, "dt": 0.01}}, "weights": {{"J": "{}:J"}}}}"#,
        npz.display()
    );
    let o = dale(&[
        "run",
        write_scene(&dir, &scene).to_str().unwrap(),
        "--out",
        dir.join("never2").to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("experiment \"network\""));
}

#[test]
fn arrays_of_any_rank_come_in_c_order_from_fortran_order_and_big_endian_files() {
    let dir = tmp("ranks");
    let shape = [2usize, 3, 4];
    let value = |a: usize, b: usize, c: usize| (100 * a + 10 * b + c) as f64;
    let c_order: Vec<f64> = (0..24).map(|e| value(e / 12, (e / 4) % 3, e % 4)).collect();
    // Fortran order: the first index runs fastest.
    let f_order: Vec<f64> = (0..24).map(|e| value(e % 2, (e / 2) % 3, e / 6)).collect();
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let fortran = dir.join("fortran.npy");
    write_npy(
        &fortran,
        &dims,
        &f_order.iter().map(|v| *v as f32).collect::<Vec<_>>(),
        Order::Fortran,
    );
    let big = dir.join("big_endian.npy");
    let mut w = npyz::WriteOptions::<f64>::new()
        .dtype(npyz::DType::Plain(">f8".parse().unwrap()))
        .shape(&dims)
        .writer(std::fs::File::create(&big).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(c_order.iter().copied()).unwrap();
    w.finish().unwrap();
    for file in [&fortran, &big] {
        let a = dale::scene::arrays::read_array(file.to_str().unwrap()).unwrap();
        assert_eq!(a.shape, shape.to_vec(), "{}", file.display());
        assert_eq!(
            a.data.iter().map(|v| f64::from(*v)).collect::<Vec<_>>(),
            c_order,
            "{}",
            file.display()
        );
    }
}
