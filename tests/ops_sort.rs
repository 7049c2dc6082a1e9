//! The sort family (shaders/sort.wgsl, src/backend/sort/): each row of a batch sorted with its
//! permutation, on the row lengths 1, 2, 31, 1000, 4097 and 65537 with batches of one row and
//! several; the CPU backend against an independent method (a stable comparison sort of the
//! positions), the GPU against the CPU backend. The order is total, so both are compared bit for
//! bit: no tolerance.

mod common;

use common::{assert_close, backend_tests, normal, Side, Tol};
use dale::backend::cpu::CpuBackend;
use dale::backend::sort::{SortOps, SortRows};
use dale::backend::{Backend, BufferOps};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LENS: [usize; 6] = [1, 2, 31, 1000, 4097, 65537];

#[derive(Debug, PartialEq)]
struct Sorted {
    /// The sorted keys' bits, so that -0 and +0 are told apart.
    sorted: Vec<u32>,
    perm: Vec<u32>,
    nan_rows: Vec<u32>,
}

fn run_sort(be: &mut dyn Backend, keys: &[f32], spec: SortRows, nan_rows: &[u32]) -> Sorted {
    let n = spec.keys();
    let k = be.alloc_from("keys", keys).unwrap();
    let sorted = be.alloc::<f32>("sorted", n).unwrap();
    let perm = be.alloc::<u32>("perm", n).unwrap();
    let work = be.alloc::<u32>("work", n).unwrap();
    let flags = be.alloc_from("nan_rows", nan_rows).unwrap();
    be.sort_rows(k, sorted, perm, work, flags, spec);
    Sorted {
        sorted: be
            .download(sorted, 0, n)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect(),
        perm: be.download(perm, 0, n).unwrap(),
        nan_rows: be.download(flags, 0, spec.rows).unwrap(),
    }
}

/// The promised order by another method: positions sorted stably by value (partial_cmp holds
/// -0 and +0 equal; a stable sort keeps equal keys in position order).
fn stable_argsort(row: &[f32]) -> Vec<u32> {
    let mut positions: Vec<u32> = (0..row.len() as u32).collect();
    positions.sort_by(|&a, &b| row[a as usize].partial_cmp(&row[b as usize]).unwrap());
    positions
}

/// Sorts `keys` on `side` and holds the result to the independent order (CPU) or to the CPU
/// backend (GPU), all rows free of NaN.
fn check(side: &Side, keys: &[f32], spec: SortRows, what: &str) {
    let clear = vec![0; spec.rows];
    let got = run_sort(side.backend().as_mut(), keys, spec, &clear);
    match side {
        Side::Cpu => {
            for r in 0..spec.rows {
                let row = &keys[spec.row_start(r)..][..spec.len];
                let want = stable_argsort(row);
                let range = r * spec.len..(r + 1) * spec.len;
                assert_eq!(
                    got.perm[range.clone()],
                    want[..],
                    "{what}: row {r} permutation"
                );
                let want_sorted: Vec<u32> =
                    want.iter().map(|&p| row[p as usize].to_bits()).collect();
                assert_eq!(
                    got.sorted[range],
                    want_sorted[..],
                    "{what}: row {r} sorted keys"
                );
            }
            assert_eq!(got.nan_rows, clear, "{what}: no row holds NaN");
        }
        Side::Gpu(_) => {
            let cpu = run_sort(&mut CpuBackend::new(), keys, spec, &clear);
            assert!(got == cpu, "{what}: GPU differs from the CPU backend");
        }
    }
}

/// Keys drawn from a few values, so that most keys tie: both zeros, both infinities, the
/// smallest subnormals of each sign, and small integers.
fn tied(n: usize, seed: u64) -> Vec<f32> {
    let values = [
        -0.0,
        0.0,
        1.0,
        -1.0,
        2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MIN_POSITIVE,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| values[rng.random_range(0..values.len())])
        .collect()
}

backend_tests! {
    fn rows_of_every_length(side: &Side) {
        for (i, &len) in LENS.iter().enumerate() {
            for rows in [1, 3] {
                let spec = SortRows::packed(rows, len);
                let keys = normal(spec.keys(), 100 + 10 * i as u64 + rows as u64);
                check(side, &keys, spec, &format!("normal keys, {rows} x {len}"));
            }
        }
        // Many short rows to a workgroup, the last one part full.
        let spec = SortRows::packed(200, 31);
        check(side, &normal(spec.keys(), 7), spec, "normal keys, 200 x 31");
    }
}

backend_tests! {
    fn sorted_and_reversed_rows(side: &Side) {
        for len in [1000, 4097, 65537] {
            let ascending: Vec<f32> = (0..len).map(|i| i as f32 - 500.0).collect();
            let descending: Vec<f32> = ascending.iter().rev().copied().collect();
            let keys = [ascending, descending].concat();
            check(side, &keys, SortRows::packed(2, len), &format!("sorted and reversed, {len}"));
        }
    }
}

backend_tests! {
    fn ties_go_by_position(side: &Side) {
        // -0 and +0 tie, subnormals keep their values, infinities sort to the ends.
        for (i, &len) in LENS.iter().enumerate() {
            let spec = SortRows::packed(2, len);
            let keys = tied(spec.keys(), 300 + i as u64);
            check(side, &keys, spec, &format!("tied keys, 2 x {len}"));
        }
    }
}

backend_tests! {
    fn rows_holding_nan_are_flagged(side: &Side) {
        for len in [31, 4097] {
            let spec = SortRows::packed(3, len);
            let mut keys = normal(spec.keys(), 500 + len as u64);
            // A quiet NaN in row 1 and a negative one in row 2; row 0 is clean but was flagged
            // by an earlier sort, which the op must not clear.
            keys[len + 3] = f32::NAN;
            keys[2 * len + len / 2] = -f32::NAN;
            let got = run_sort(side.backend().as_mut(), &keys, spec, &[1, 0, 0]);
            assert_eq!(got.nan_rows, [1, 1, 1], "{len}: flags");
            let want = stable_argsort(&keys[..len]);
            assert_eq!(got.perm[..len], want[..], "{len}: the clean row is still sorted");
            for r in 1..3 {
                let mut positions = got.perm[r * len..(r + 1) * len].to_vec();
                positions.sort_unstable();
                let all: Vec<u32> = (0..len as u32).collect();
                assert_eq!(positions, all, "{len}: row {r}'s permutation holds every position");
            }
        }
    }
}

backend_tests! {
    fn rows_inside_a_wider_buffer(side: &Side) {
        // One population's slice of each perceptron's weights: rows of 1000 and 4097 keys at an
        // offset inside rows of a larger stride, the keys around them left out.
        for (len, offset, stride) in [(1000, 7, 1500), (4097, 100, 5000)] {
            let spec = SortRows { rows: 3, len, offset, stride };
            let keys = normal(spec.span() + 11, 900 + len as u64);
            check(side, &keys, spec, &format!("{len} keys at {offset} + r * {stride}"));
        }
    }
}

/// The transport step on `side`: sort the rows of `weights`, then move each toward its rank's
/// target; the weights after it.
fn run_transport(
    be: &mut dyn Backend,
    weights: &[f32],
    targets: &[f32],
    rate: f32,
    spec: SortRows,
) -> Vec<f32> {
    let n = spec.keys();
    let w = be.alloc_from("weights", weights).unwrap();
    let sorted = be.alloc::<f32>("sorted", n).unwrap();
    let perm = be.alloc::<u32>("perm", n).unwrap();
    let work = be.alloc::<u32>("work", n).unwrap();
    let flags = be.alloc::<u32>("nan_rows", spec.rows).unwrap();
    let t = be.alloc_from("targets", targets).unwrap();
    be.sort_rows(w, sorted, perm, work, flags, spec);
    be.transport_step(w, perm, t, rate, spec);
    be.download(w, 0, weights.len()).unwrap()
}

backend_tests! {
    fn transport_moves_each_rank_toward_its_target(side: &Side) {
        for (len, offset, stride) in [(1, 0, 1), (31, 5, 40), (1000, 0, 1000), (4097, 3, 4100)] {
            let spec = SortRows { rows: 3, len, offset, stride };
            let weights = normal(spec.span() + 2, 40 + len as u64);
            // Targets ascending, as Q^-1 of the ranks' CDF values is.
            let targets: Vec<f32> = (0..len).map(|k| (k as f32 + 0.5) / len as f32 - 0.5).collect();
            for rate in [0.0, 0.1, 1.0] {
                let got = run_transport(side.backend().as_mut(), &weights, &targets, rate, spec);
                let what = format!("{len} at {offset} + r * {stride}, rate {rate}");
                match side {
                    Side::Cpu => {
                        // Eq. 9 written out: rank by the stable order, then the step; keys
                        // outside the rows untouched.
                        let mut want = weights.clone();
                        for r in 0..spec.rows {
                            let start = spec.row_start(r);
                            let row = &weights[start..][..len];
                            for (k, &i) in stable_argsort(row).iter().enumerate() {
                                let w = row[i as usize];
                                want[start + i as usize] = (1.0 - rate) * w + rate * targets[k];
                            }
                        }
                        assert_eq!(got, want, "{what}");
                        if rate == 1.0 {
                            // The one-step projection: each row's sorted weights are the targets.
                            for r in 0..spec.rows {
                                let mut row = got[spec.row_start(r)..][..len].to_vec();
                                row.sort_by(f32::total_cmp);
                                assert_eq!(row, targets, "{what}: row {r}");
                            }
                        }
                    }
                    Side::Gpu(_) => {
                        let cpu = run_transport(&mut CpuBackend::new(), &weights, &targets, rate, spec);
                        // The GPU may fuse (1 - rate) w + rate t into one rounding where the CPU
                        // rounds twice: at most an ulp or two of the largest weight.
                        let tol = Tol { rel: 2.0 * f32::EPSILON as f64, why: "a fused multiply-add: one ulp" };
                        assert_close(&what, &got, &cpu, tol);
                    }
                }
            }
        }
    }
}
