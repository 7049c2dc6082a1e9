//! The `dale` command as a user meets it: every scene runs at smoke size on the CPU backend and
//! on the GPU, reruns are byte-identical, and bad input gets an error naming the field, the value
//! and what is allowed, with a non-zero exit and nothing half-written.

mod common;

use std::path::{Path, PathBuf};

use common::{backend_tests, dale, dale_ok, stderr, temp_path};

fn write_scene(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("scene.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn rate_scene(params: &str, steps: usize) -> String {
    format!(
        r#"{{"model": "rate", "seed": 3, "steps": {steps}, "params": {params}, "monitors": {{"x": {{"every": 2}}, "y": {{"every": 1}}}}}}"#
    )
}

/// Reads the shape of an .npy file's header, as numpy would.
fn npy_shape(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(
        npy.header().dtype(),
        npyz::DType::Plain("<f4".parse().unwrap())
    );
    npy.shape().to_vec()
}

backend_tests! {
    /// Every scene in scenes/ at smoke size: it completes, writes every file it lists, and every
    /// check its summary carries of the paper's claims holds.
    fn every_scene_runs_at_smoke_size_and_passes_its_checks(side: &Side) {
        let backend = side.kind();
        for entry in std::fs::read_dir("scenes").unwrap() {
            let scene = entry.unwrap().path();
            let out = temp_path(&format!(
                "smoke-{}-{backend}",
                scene.file_stem().unwrap().to_string_lossy()
            ));
            let o = dale(&[
                "run",
                scene.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--smoke",
                "--backend",
                &backend,
            ]);
            assert!(
                o.status.success(),
                "{} on {backend}: {}",
                scene.display(),
                stderr(&o)
            );
            let read = |f: &str| -> serde_json::Value {
                serde_json::from_slice(&std::fs::read(out.join(f)).unwrap()).unwrap()
            };
            let manifest = read("manifest.json");
            assert_eq!(manifest["status"], "completed");
            assert_eq!(manifest["backend"]["kind"], backend.as_str());
            assert_eq!(manifest["smoke"], true);
            let files: Vec<&str> = manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert!(
                files.contains(&"summary.json") && files.iter().any(|f| f.ends_with(".png")),
                "{}: {files:?}",
                scene.display()
            );
            for f in files {
                assert!(
                    out.join(f).is_file(),
                    "{} on {backend} did not write {f}",
                    scene.display()
                );
            }
            if manifest["scene"]["params"]["model"] == "rate" {
                let shape = npy_shape(&out.join("population_rate.npy"));
                assert_eq!(shape[0], manifest["scene"]["steps"].as_u64().unwrap());
            }
            let checks = read("summary.json")["checks"].clone();
            let checks = checks.as_object().unwrap();
            assert!(!checks.is_empty(), "{}: no checks", scene.display());
            let failed: Vec<&String> = checks
                .iter()
                .filter(|(_, passed)| passed.as_bool() != Some(true))
                .map(|(name, _)| name)
                .collect();
            assert!(
                failed.is_empty(),
                "{} on {backend}: checks failed: {failed:?}",
                scene.display()
            );
        }
    }
}

/// Every output but manifest.json (which holds timings) must match byte for byte.
fn assert_same_outputs(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 8, "too few outputs: {names:?}");
    for name in names.iter().filter(|n| *n != "manifest.json") {
        let (x, y) = (
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
        );
        assert!(
            x == y,
            "{name:?} differs between two runs of the same scene and seed"
        );
    }
}

backend_tests! {
    fn same_scene_and_seed_give_byte_identical_outputs(side: &Side) {
    let dir = temp_path("determinism");
    let params = r#"{"n": 150, "trials": 5, "networks": 2, "phi": "tanh", "g": 1.5, "inputs": 2, "outputs": 3, "sigma": 0.3, "input": {"kind": "gaussian", "mean": 0.1, "std": 0.5}}"#;
    let scene = write_scene(&dir, &rate_scene(params, 300));
    let backend = side.kind();
    {
        let (a, b) = (
            dir.join(format!("{backend}-a")),
            dir.join(format!("{backend}-b")),
        );
        for out in [&a, &b] {
            dale_ok(&[
                "run",
                scene.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--quiet",
                "--backend",
                &backend,
            ]);
        }
        assert_same_outputs(&a, &b);
    }
    // A different seed must change the outputs, or the comparison above proves nothing.
    let other = write_scene(
        &dir.join("other"),
        &rate_scene(params, 300).replace("\"seed\": 3", "\"seed\": 4"),
    );
    let c = dir.join("cpu-other");
    if side.is_gpu() {
        return; // the CPU side checks that the seed matters
    }
    assert!(dale(&[
        "run",
        other.to_str().unwrap(),
        "--out",
        c.to_str().unwrap(),
        "--backend",
        "cpu"
    ])
    .status
    .success());
    assert_ne!(
        std::fs::read(c.join("x.npy")).unwrap(),
        std::fs::read(dir.join("cpu-a").join("x.npy")).unwrap()
    );
    }
}

/// Runs a bad scene and returns (exit code, stderr); the out dir must stay empty.
fn refused(name: &str, text: &str, backend: &str) -> (i32, String) {
    let dir = temp_path(name);
    let scene = write_scene(&dir, text);
    let out = dir.join("out");
    let o = dale(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        backend,
    ]);
    let written = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "{name}: a refused scene wrote files");
    (o.status.code().unwrap(), stderr(&o))
}

#[test]
fn malformed_json_names_line_and_column() {
    let (code, err) = refused("malformed", "{\"model\": \"rate\", \"seed\": 1,,}", "cpu");
    assert_eq!(code, 1);
    assert!(err.contains("line 1 column"), "{err}");
}

#[test]
fn unknown_field_names_its_path_and_the_allowed_fields() {
    let (code, err) = refused(
        "unknown",
        &rate_scene(r#"{"n": 10, "tua": 5.0}"#, 10),
        "cpu",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("`params.tua`")
            && err.contains("unknown field `tua`")
            && err.contains("`tau`"),
        "{err}"
    );
    let (_, err) = refused(
        "unknown-top",
        r#"{"model": "rate", "seed": 1, "steps": 5, "params": {"n": 3}, "step": 4}"#,
        "cpu",
    );
    assert!(err.contains("unknown field `step`"), "{err}");
}

#[test]
fn negative_tau_names_the_field_value_and_range() {
    let (code, err) = refused("tau", &rate_scene(r#"{"n": 10, "tau": -1.0}"#, 10), "cpu");
    assert_eq!(code, 1);
    assert!(
        err.contains("`params.tau`") && err.contains("tau = -1") && err.contains("> 0"),
        "{err}"
    );
    let (_, err) = refused(
        "every",
        &rate_scene(r#"{"n": 10}"#, 10).replace("\"every\": 2", "\"every\": 0"),
        "cpu",
    );
    assert!(err.contains("`monitors.x.every`"), "{err}");
    let (_, err) = refused(
        "unknown-model",
        r#"{"model": "ratee", "seed": 1, "steps": 5, "params": {}}"#,
        "cpu",
    );
    assert!(err.contains("`model`") && err.contains("`rate`"), "{err}");
}

#[test]
fn size_beyond_the_limit_is_refused_before_allocation_with_the_largest_that_fits() {
    // CPU backend: one buffer may take a third of the machine's memory; J of 100000^2 values
    // (40 GB) does not fit any machine under 120 GB, as CI's; the largest n follows from it.
    let (code, err) = refused("huge-cpu", &rate_scene(r#"{"n": 100000}"#, 10), "cpu");
    assert_eq!(code, 1);
    let largest = (dale::backend::cpu::max_buffer_len() as f64).sqrt().floor() as usize;
    assert!(
        largest < 100000,
        "this machine holds the scene; the test needs less memory"
    );
    assert!(
        err.contains("`params.n` = 100000 does not fit")
            && err.contains(&format!("the largest value that fits is {largest}\n")),
        "{err}"
    );
    // Beyond the kernels' u32 indices, on any backend.
    let (code, err) = refused("huge-u32", &rate_scene(r#"{"n": 5000000000}"#, 10), "cpu");
    assert_eq!(code, 1);
    assert!(
        err.contains("`params.n`: n = 5000000000; allowed: at most 4294967295"),
        "{err}"
    );
}

#[test]
fn a_balancing_scene_too_large_is_refused_with_its_field_and_the_largest_that_fits() {
    // Fig. 4's trainer records trial_steps x trials x n states in one buffer: 10^6 x 64 x 256
    // values are beyond the CPU backend's buffer limit (a third of the machine's memory) on
    // any machine with less than 196 GB, as CI's has; the largest trials that fit follow from it.
    let scene = std::fs::read_to_string("scenes/balancing_fig4.json")
        .unwrap()
        .replace("\"trial_steps\": 50", "\"trial_steps\": 1000000");
    let (code, err) = refused("huge-fig4", &scene, "cpu");
    assert_eq!(code, 1);
    let largest = dale::backend::cpu::max_buffer_len() / (1_000_000 * 256);
    assert!(
        largest < 64,
        "this machine holds the scene; the test needs less memory"
    );
    assert!(
        err.contains("`params.trials` = 64")
            && err.contains(&format!("the largest value that fits is {largest}\n")),
        "{err}"
    );
}

backend_tests! {
    /// The GPU adapter's own buffer limit decides; the message names the largest n that fits.
    fn sizes_beyond_the_adapters_buffers_are_refused_with_the_largest_that_fits(side: &Side) {
    if !side.is_gpu() {
        return; // the CPU backend's limit is the address space, tested above
    }
    let kind = side.kind();
    let max_len = side.backend().info().max_buffer_len;
    let largest = (max_len as f64).sqrt().floor() as usize;
    let (code, err) = refused(
        "huge-gpu",
        &rate_scene(&format!(r#"{{"n": {}}}"#, largest + 1), 10),
        &kind,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("`params.n`")
            && err.contains(&format!("the largest value that fits is {largest}")),
        "{err}"
    );
    let (_, err) = refused(
        "trials-gpu",
        &rate_scene(
            &format!(r#"{{"n": 1000, "trials": {}}}"#, max_len / 1000 + 1),
            10,
        ),
        &kind,
    );
    assert!(
        err.contains("`params.trials`") && err.contains(&format!("is {}", max_len / 1000)),
        "{err}"
    );
    let ring = std::fs::read_to_string("scenes/balancing_fig4.json")
        .unwrap()
        .replace("\"n\": 256", &format!("\"n\": {}", largest + 1));
    let (_, err) = refused("fig4-gpu", &ring, &kind);
    assert!(
        err.contains(&format!("`params.n` = {}", largest + 1))
            && err.contains(&format!("the largest value that fits is {largest}")),
        "{err}"
    );
    }
}

backend_tests! {
    fn a_diverging_network_stops_with_the_step_and_keeps_what_was_written(side: &Side) {
    // g = 6 with ReLU and positive drive: the rates grow without bound and overflow f32.
    let backend = side.kind();
    {
        let dir = temp_path(&format!("diverge-{backend}"));
        let params = r#"{"n": 64, "trials": 2, "g": 6.0, "inputs": 1, "input": {"kind": "constant", "value": [1.0]}}"#;
        let scene = write_scene(&dir, &rate_scene(params, 5000));
        let out = dir.join("out");
        let o = dale(&[
            "run",
            scene.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            &backend,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{err}");
        let step: usize = err
            .split("diverged at step ")
            .nth(1)
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!(err.contains("x (the rate network state)"), "{err}");
        assert!(step > 10 && step < 5000, "step {step}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["status"], "diverged");
        // Every step before the divergent one was kept, and only those.
        assert_eq!(
            npy_shape(&out.join("population_rate.npy")),
            vec![step as u64 - 1, 2]
        );
        assert!(out.join("rate.png").is_file());
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
}

#[test]
fn an_unwritable_out_dir_is_refused_before_the_run() {
    let dir = temp_path("unwritable");
    let scene = write_scene(&dir, &rate_scene(r#"{"n": 10}"#, 10));
    // A regular file where a folder should be: unwritable for every user, root included.
    std::fs::write(dir.join("blocker"), b"keep me").unwrap();
    let out = dir.join("blocker").join("out");
    let o = dale(&[
        "run",
        scene.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot write") && stderr(&o).contains("blocker"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(dir.join("blocker")).unwrap(), b"keep me");
}

#[test]
fn devices_lists_adapters_and_says_what_auto_picks() {
    let o = dale(&["devices"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("auto picks:"), "{text}");
    if let Some(kind) = common::gpu_backend().map(|g| dale::backend::Backend::info(&g).kind) {
        assert!(
            text.contains(&format!("({kind}, ")),
            "the test GPU is not listed: {text}"
        );
    }
}

#[test]
fn an_unknown_backend_is_a_usage_error() {
    let o = dale(&[
        "run",
        "scenes/quickstart.json",
        "--out",
        "/tmp/x",
        "--backend",
        "cuda",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("possible values"), "{}", stderr(&o));
}

/// Runs `scene` at smoke size on the CPU backend into a fresh directory named after `name`;
/// returns that directory and the summary it wrote.
fn smoke_on_cpu(scene: &str, name: &str) -> (PathBuf, serde_json::Value) {
    let out = temp_path(name).join("out");
    dale_ok(&[
        "run",
        scene,
        "--out",
        out.to_str().unwrap(),
        "--smoke",
        "--backend",
        "cpu",
        "--quiet",
    ]);
    let summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    (out, summary)
}

#[test]
fn fig4_lambda_relative_to_the_summed_loss_is_divided_by_the_errors_summed() {
    // Appendix D adds lambda sum J^2 to the summed squared error; dale trains on the mean, so
    // lambda is divided by the T x trials x 2 errors: 10 x 8 x 2 = 160 at smoke size.
    let (_, summary) = smoke_on_cpu("scenes/balancing_fig4_summed_loss.json", "fig4-summed");
    let fig4a = &summary["figures"]["fig4a"];
    assert_eq!(fig4a["lambda_relative_to"], "summed_loss");
    for net in fig4a["networks"].as_array().unwrap() {
        let (lambda, applied) = (
            net["lambda"].as_f64().unwrap(),
            net["lambda_applied_to_mean_loss"].as_f64().unwrap(),
        );
        assert!(
            (applied - lambda / 160.0).abs() <= 1e-7 * lambda.max(1e-30),
            "lambda {lambda} applied as {applied}"
        );
    }
    let failed: Vec<_> = summary["checks"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_bool() != Some(true))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn fig4b_runs_its_variants_side_by_side_and_states_per_variant_whether_the_paper_direction_holds() {
    let (out, summary) = smoke_on_cpu("scenes/balancing_fig4.json", "fig4-variants");
    let scene: serde_json::Value =
        serde_json::from_slice(&std::fs::read("scenes/balancing_fig4.json").unwrap()).unwrap();
    let fig4b = &summary["figures"]["fig4b"];
    let variants = fig4b["variants"].as_array().unwrap();
    let asked = scene["params"]["variants"].as_array().unwrap();
    assert_eq!(variants.len(), asked.len());
    let networks = fig4b["networks"].as_u64().unwrap() as usize;
    let eps: Vec<f64> = scene["params"]["noise_levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        npy_shape(&out.join("loss_ratio.npy")),
        [variants.len() as u64, networks as u64, eps.len() as u64]
    );
    let bytes = std::fs::read(out.join("loss_ratio.npy")).unwrap();
    let ratios: Vec<f32> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    for (v, (variant, asked)) in variants.iter().zip(asked).enumerate() {
        assert_eq!(variant["label"], asked["label"]);
        let nets = variant["networks"].as_array().unwrap();
        assert_eq!(nets.len(), networks);
        // The mean over the networks, from each network's own losses.
        let mut reproduced = true;
        for (e, &level) in eps.iter().enumerate() {
            let per_net: Vec<f64> = nets
                .iter()
                .map(|n| {
                    let row = &n["losses"][e];
                    row["balanced"].as_f64().unwrap() / row["original"].as_f64().unwrap()
                })
                .collect();
            for (k, r) in per_net.iter().enumerate() {
                let file = f64::from(ratios[(v * networks + k) * eps.len() + e]);
                assert!(
                    (file - r).abs() <= 1e-6 * r,
                    "{}: npy {file} vs {r}",
                    asked["label"]
                );
            }
            let mean = per_net.iter().sum::<f64>() / networks as f64;
            let row = &variant["loss_ratio_balanced_over_original"][e];
            assert!((row["mean"].as_f64().unwrap() - mean).abs() <= 1e-12 * mean);
            assert!(row["min"].as_f64().unwrap() <= mean && mean <= row["max"].as_f64().unwrap());
            assert_eq!(
                row["networks_below_1"].as_u64().unwrap() as usize,
                per_net.iter().filter(|r| **r < 1.0).count()
            );
            if level == 0.0 {
                assert!(
                    (mean - 1.0).abs() <= 1e-4,
                    "{}: task kept at eps 0",
                    asked["label"]
                );
            } else {
                reproduced &= mean < 1.0;
            }
        }
        assert_eq!(
            variant["paper_direction_reproduced"], reproduced,
            "{}",
            asked["label"]
        );
    }
    // What dale claims, checked per variant and network: the task kept, the cost lowered, and
    // ||g|| converged where a finite balanced point exists (not for the whole network).
    let checks = summary["checks"].as_object().unwrap();
    for k in 0..networks {
        for claim in ["task_preserved_at_eps_0", "balancing_lowered_its_cost"] {
            assert_eq!(
                checks[&format!("paper_eq_13_whole_network_network_{k}_{claim}")],
                true
            );
        }
        assert_eq!(
            checks[&format!("eq_13_by_components_network_{k}_grad_norm_converged")],
            true
        );
        assert_eq!(
            checks[&format!("readout_aware_network_{k}_grad_norm_converged")],
            true
        );
        assert!(!checks.contains_key(&format!(
            "paper_eq_13_whole_network_network_{k}_grad_norm_converged"
        )));
    }
}

#[test]
fn fig4b_variants_that_cannot_be_run_are_refused_by_index_and_field() {
    let scene = std::fs::read_to_string("scenes/balancing_fig4.json").unwrap();
    let with_variants = |variants: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&scene).unwrap();
        v["params"]["variants"] = serde_json::from_str(variants).unwrap();
        v.to_string()
    };
    for (variants, field, allowed) in [
        (
            r#"[{"label": "a"}, {"label": "b", "cost": "readout", "topology": "whole"}]"#,
            "`params.variants[1].topology`",
            "no topology with a readout-aware cost",
        ),
        (
            r#"[{"label": "by components"}, {"label": "By components!"}]"#,
            "`params.variants[1].label`",
            "a name unlike the others'",
        ),
        (r#"[]"#, "`params.variants`", "a non-empty list"),
        (
            r#"[{"label": "a", "gain_noise": -1}]"#,
            "`params.variants[0].gain_noise`",
            "a finite value >= 0",
        ),
    ] {
        let (code, err) = refused("fig4-bad-variant", &with_variants(variants), "cpu");
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(field) && err.contains(allowed),
            "{variants}: {err}"
        );
    }
}
