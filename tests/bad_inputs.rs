//! Bad input never crashes (issue 23): every file of the fuzz targets' seed corpus (fuzz/seeds/,
//! written by fuzz/make_seeds.py; findings of the fuzzers join it) is read or refused with an
//! error that names what is wrong, without a panic and without allocating beyond what the bytes
//! hold. A global allocator in this test binary of its own tracks the peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dale::backend::cpu::CpuBackend;
use dale::backend::Backend;
use dale::scene::arrays::{read_csr_from, read_npy, read_npz_from};
use dale::scene::Scene;

mod common;
use common::{dale, stderr, temp_path};

struct Peak;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// The tracking is global, so the tests of this binary take turns.
static TURN: Mutex<()> = Mutex::new(());

/// Bytes allocated at the peak of `f`, above what was live before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - before)
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = std::fs::read_dir(Path::new("fuzz/seeds").join(target))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    all.sort();
    assert!(all.len() >= 5, "the {target} seeds are missing");
    all
}

/// What each named seed must give: Ok with this shape, or an error containing this text.
enum Want {
    Shape(&'static [usize]),
    Error(&'static str),
}

fn npy_want(name: &str) -> Want {
    use Want::*;
    match name {
        "f32_c" | "f64_c" | "f32_fortran" | "f64_big_endian" => Shape(&[5, 5]),
        "f32_3d_fortran" => Shape(&[2, 3, 4]),
        "scalar" => Shape(&[]),
        "empty" => Shape(&[0, 3]),
        "version2" => Shape(&[2, 2]),
        "nan" => Error("the value at index [1] is not finite"),
        "f64_beyond_f32" => Error("beyond the f32 range"),
        "huge_shape_64_bytes" => Error(
            "shape [200000, 200000] float32 declares 160000000000 bytes of data, but the file \
             holds 64 after the header",
        ),
        "truncated" => Error("declares 400 bytes of data, but the file holds 64"),
        "shape_overflows" => Error("holds more values than this machine can address"),
        "int32" => Error("dtype <i4; allowed: float32 or float64"),
        "structured" => Error("a structured dtype?"),
        "header_4gib" => Error("a .npy header of 4294967295 bytes; allowed: at most 10000"),
        "negative_dim" => Error("expected a dimension"),
        "no_magic" => Error("no \\x93NUMPY magic string"),
        // A finding of the fuzzer, kept as a seed: read or refused, never a crash.
        _ => Error(""),
    }
}

#[test]
fn npy_seeds_are_read_or_refused_naming_the_problem_within_their_size() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // The same 5 x 5 matrix in four layouts (fuzz/make_seeds.py): float32 and float64, C and
    // Fortran order, little- and big-endian, each read into the same C-order f32 values.
    let mut same_matrix: Vec<Vec<f32>> = Vec::new();
    for (name, bytes) in seeds("npy") {
        let (got, peak) = peak_of(|| {
            read_npy(
                Cursor::new(&bytes),
                bytes.len() as u64,
                Path::new("x.npy"),
                &name,
            )
        });
        // Values become f32 (at most 4 bytes for each byte of data) beside a header's text
        // and a chunk of raw bytes: 64 KiB covers those.
        assert!(
            peak <= 4 * bytes.len() + (64 << 10),
            "{name}: {peak} bytes allocated for a file of {}",
            bytes.len()
        );
        match (npy_want(&name), got) {
            (Want::Shape(shape), Ok(a)) => {
                assert_eq!(a.shape, shape, "{name}");
                assert_eq!(a.data.len(), shape.iter().product::<usize>(), "{name}");
                if ["f32_c", "f64_c", "f32_fortran", "f64_big_endian"].contains(&name.as_str()) {
                    same_matrix.push(a.data);
                }
            }
            (Want::Error(text), Err(e)) => {
                let e = e.to_string();
                assert!(e.contains(text) && e.contains("x.npy"), "{name}: {e}");
            }
            (Want::Shape(_), Err(e)) => panic!("{name}: refused: {e}"),
            (Want::Error(text), Ok(a)) => {
                assert!(
                    text.is_empty(),
                    "{name}: read as {:?}, wanted {text}",
                    a.shape
                )
            }
        }
    }
    assert_eq!(same_matrix.len(), 4);
    assert!(
        same_matrix.iter().all(|m| *m == same_matrix[0]),
        "{same_matrix:?}"
    );
}

#[test]
fn npz_seeds_are_read_or_refused_and_a_deflated_lie_costs_only_its_data() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for (name, bytes) in seeds("npz") {
        let (got, peak) = peak_of(|| read_npz_from(Cursor::new(&bytes), Path::new("x.npz")));
        let names = |arrays: &[dale::scene::arrays::Array]| {
            arrays.iter().map(|a| a.name.clone()).collect::<Vec<_>>()
        };
        match name.as_str() {
            "stored" => assert_eq!(names(&got.unwrap()), ["J", "W_in"]),
            "deflated" | "not_npy_entry" => assert_eq!(names(&got.unwrap()), ["J"]),
            "deflated_zeros" => assert_eq!(got.unwrap()[0].shape, [1000, 1000]),
            "stored_huge_shape" => {
                let e = got.unwrap_err().to_string();
                assert!(e.contains("but the archive entry holds 64"), "{e}")
            }
            "deflated_huge_shape" => {
                // The declared 160 GB are only declared: the read stops where the data does,
                // having allocated for what arrived (beyond the machine's memory, it is refused
                // before reading).
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains("x.npz, array `J`: shape [200000, 200000]"),
                    "{e}"
                );
                assert!(
                    peak < 1 << 20,
                    "{peak} bytes allocated for 64 bytes of data"
                );
            }
            "csr" | "csr_int16_big_endian" => {
                // Integer arrays are not float arrays; read as a CSR matrix they are exact.
                let e = got.unwrap_err().to_string();
                assert!(e.contains("allowed: float32 or float64"), "{e}");
                let m = read_csr_from(Cursor::new(&bytes), Path::new("x.npz")).unwrap();
                assert_eq!(m.shape, [5, 5]);
                assert_eq!(m.indptr, [0, 2, 2, 3, 5, 6], "{name}");
                assert_eq!(m.indices, [4, 1, 0, 3, 2, 0], "{name}");
                assert_eq!(m.data.len(), 6);
            }
            "csr_csc" => {
                let e = read_csr_from(Cursor::new(&bytes), Path::new("x.npz"))
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("`format`: \"csc\"; allowed: \"csr\""), "{e}");
            }
            _ => {
                // A finding of the fuzzer: read or refused, never a crash.
                let _ = read_csr_from(Cursor::new(&bytes), Path::new("x.npz"));
            }
        }
    }
}

#[test]
fn scene_seeds_are_parsed_or_refused_naming_the_field() {
    let info = CpuBackend::new().info();
    for (name, bytes) in seeds("scene") {
        let text = String::from_utf8(bytes).unwrap();
        let checked = Scene::parse(&text).and_then(|scene| {
            let experiment = scene.experiment()?;
            experiment.check_fits(&info)
        });
        let want = match name.as_str() {
            "n_100000" => "`params.n` = 100000 does not fit",
            "n_2_pow_40" => "`params.n`: n = 1099511627776; allowed: at most 4294967295",
            "trials_2e6" => "`params.trials` = 2000000 does not fit",
            "trials_u64_max" => "params.trials",
            "steps_4e9" => "`steps`",
            "every_0" => "monitors.x.every",
            "sigma_negative" => "params.sigma",
            "dt_1e308" => "params.dt",
            "unknown_field" => "unknown field `colour`",
            _ => "",
        };
        match checked {
            Ok(()) => assert!(want.is_empty(), "{name}: accepted, wanted {want}"),
            Err(e) => {
                let e = e.to_string();
                assert!(!want.is_empty() || name.starts_with("crash"), "{name}: {e}");
                assert!(e.contains(want), "{name}: {e}");
            }
        }
    }
}

#[test]
fn dale_balance_refuses_a_file_that_declares_more_than_it_holds_and_writes_nothing() {
    let dir = temp_path("huge-npy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("huge.npy");
    std::fs::copy("fuzz/seeds/npy/huge_shape_64_bytes", &file).unwrap();
    let out = dir.join("out");
    let o = dale(&[
        "balance",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("huge.npy, array `huge`: shape [200000, 200000] float32 declares"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(!out.exists(), "a refused input created {}", out.display());
}

/// `--p` reaches dale's own checks whatever its sign, and a p beyond what f32 holds even as
/// logarithms is refused before anything is written, naming the largest p that fits.
#[test]
fn dale_balance_answers_every_p_with_its_own_message() {
    let dir = temp_path("bad-p");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("J.npy");
    std::fs::copy("fuzz/seeds/npy/f64_c", &file).unwrap();
    for (p, want) in [
        ("-1", "option `--p`: p = -1; allowed: a finite value > 0"),
        ("0", "option `--p`: p = 0; allowed: a finite value > 0"),
        ("1e9", "option `--p`: p = 1000000000: neuron"),
    ] {
        let out = dir.join(format!("out{p}"));
        let o = dale(&[
            "balance",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--p",
            p,
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "--p {p}: {err}");
        assert!(err.contains(want), "--p {p}: {err}");
        assert!(!out.exists(), "--p {p} created {}", out.display());
    }
}

/// An environment variable dale reads is checked like an option.
#[test]
fn an_unknown_instruction_set_is_refused_naming_the_allowed_ones() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dale"))
        .arg("devices")
        .env("DALE_CPU_ISA", "sse9")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("DALE_CPU_ISA = \"sse9\"; allowed: portable, avx2, avx512"),
        "{err}"
    );
}
