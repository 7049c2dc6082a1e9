//! The arrays three scenes write on the CPU backend, pinned by a hash of each .npy file, so that a
//! change of structure cannot change a result unnoticed. Taken on the main branch of 2026-11-24,
//! before the op families (issue 16), and again after issue 24 (faer's kernels for the products,
//! dale's own polynomials for the noise). The CPU backend gives the same bits on any thread count
//! (its sums run in fixed blocks), and dale's own loops give the same bits on every instruction
//! set, but the GEMM crates pick their kernels at run time and those sum in a different order on
//! AVX2 than on AVX-512: the pin is of a processor with AVX-512, as on the project's machines.
//! Elsewhere the test says so and stops, unless DALE_REQUIRE_PIN=1 (set by .ci/run) makes that a
//! failure.
//!
//! A change that alters bits on purpose updates the pin here and says why in its commit.

mod common;

use common::{dale_ok, temp_path};
use dale::backend::cpu::simd::Isa;

/// FNV-1a, 64 bits: enough to tell two files apart, and short enough to write here.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const PINNED: [(&str, &str, u64); 16] = [
    ("quickstart", "max_abs_x.npy", 0x342f3ea6c7d0d37f),
    ("quickstart", "population_rate.npy", 0x3d7a36c809223c17),
    ("quickstart", "x.npy", 0x33871135005b19d3),
    ("quickstart", "x_final.npy", 0x9b67aada1095f6db),
    ("quickstart", "x_times.npy", 0x2b748c46856a6c85),
    ("quickstart", "y.npy", 0x32006a51d031e717),
    ("quickstart", "y_times.npy", 0x73b92fc915aee98e),
    ("balancing_fig3", "costs.npy", 0x58462ff8a99fe39e),
    (
        "balancing_fig3",
        "costs_closed_form.npy",
        0x34f86a5133ee5f0c,
    ),
    ("balancing_fig3", "times.npy", 0x3b59a0d6947799b7),
    ("balancing_fig5", "h.npy", 0x04c11a659fddc21e),
    ("balancing_fig5", "h_modes.npy", 0x03d5be3d05ccb902),
    ("balancing_fig5", "h_modes_eq39.npy", 0x559ba0ab6d3e7cff),
    (
        "balancing_fig5",
        "laplacian_eigenvalues.npy",
        0x90f2bcb54f9d0285,
    ),
    ("balancing_fig5", "named_costs.npy", 0xf24fd07332817bbb),
    ("balancing_fig5", "times.npy", 0xb2423cf522cef718),
];

#[test]
fn quickstart_fig3_and_fig5_arrays_are_bit_identical_to_the_pin() {
    if !Isa::available().contains(&Isa::Avx512) {
        let why = "the pin is of a processor with AVX-512, and this one has none";
        assert!(
            std::env::var("DALE_REQUIRE_PIN").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let mut changed = Vec::new();
    for scene in ["quickstart", "balancing_fig3", "balancing_fig5"] {
        let out = temp_path(&format!("pinned-{scene}"));
        dale_ok(&[
            "run",
            &format!("scenes/{scene}.json"),
            "--out",
            out.to_str().unwrap(),
            "--backend",
            "cpu",
            "--quiet",
        ]);
        let mut written: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".npy"))
            .collect();
        written.sort();
        let pinned: Vec<&str> = PINNED
            .iter()
            .filter(|(s, _, _)| *s == scene)
            .map(|(_, f, _)| *f)
            .collect();
        assert_eq!(written, pinned, "{scene}: the arrays written changed");
        for (_, file, hash) in PINNED.iter().filter(|(s, _, _)| *s == scene) {
            let got = fnv1a(&std::fs::read(out.join(file)).unwrap());
            if got != *hash {
                changed.push(format!(
                    "{scene}/{file}: hash {got:#018x}, pinned {hash:#018x}"
                ));
            }
        }
    }
    assert!(changed.is_empty(), "{}", changed.join("\n"));
}
