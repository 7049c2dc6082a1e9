//! The layers hold: models and experiments see only the op-family traits (never the CPU or GPU
//! backend, never wgpu), and the library outside main.rs does not use clap. A line that breaks
//! a rule fails here with its file and line number.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of the .rs files under `dirs` (but `except`) that contain any of `words`.
fn offending(dirs: &[&str], except: &[&str], words: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for d in dirs {
        rust_files(Path::new(d), &mut files);
    }
    let mut hits = Vec::new();
    for f in files
        .iter()
        .filter(|f| !except.iter().any(|e| f.ends_with(e)))
    {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if words.iter().any(|w| line.contains(w)) {
                hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn models_and_experiments_name_no_backend_and_no_wgpu() {
    let hits = offending(
        &["src/models", "src/experiments"],
        &[],
        &["backend::cpu", "backend::gpu", "wgpu"],
    );
    assert!(
        hits.is_empty(),
        "reaching past the op families:\n{}",
        hits.join("\n")
    );
}

#[test]
fn only_main_uses_clap() {
    let hits = offending(&["src"], &["src/main.rs"], &["clap"]);
    assert!(
        hits.is_empty(),
        "clap outside main.rs:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_checks_find_what_they_look_for() {
    // The scans would pass vacuously if they read nothing: main.rs must show up for clap, and
    // the backend for wgpu.
    assert!(!offending(&["src"], &[], &["clap"]).is_empty());
    assert!(!offending(&["src/backend/gpu"], &[], &["wgpu"]).is_empty());
}
