//! Times C = A W^T, dale's one matmul shape (A row-major [rows, inner], W row-major [cols, inner],
//! C row-major [rows, cols]), through the three GEMM crates the CPU backend could use, on the
//! shapes dale's models run. Each crate gets the same buffers, all cores, and the same warm-up; the
//! results are checked against each other so that a wrong stride cannot look fast.
//! "dale split" is how dale's CPU backend calls a crate: single-threaded calls on column blocks of
//! C, one rayon task each (src/backend/linalg/cpu.rs). Since issue 24 dale runs faer that way for
//! products at least 8 wide both ways and the gemm crate for the narrower ones.
//!
//! Run: cargo run --release --manifest-path benches/gemm_choice/Cargo.toml

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts heap allocations, to see which crate allocates inside every product.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations per call, after the warm-up rounds.
fn allocations(mut f: impl FnMut()) -> f64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..10 {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 10.0
}

struct Shape {
    what: &'static str,
    rows: usize,
    inner: usize,
    cols: usize,
}

const SHAPES: &[Shape] = &[
    Shape { what: "rate step, 1 trial (N 1000)", rows: 1, inner: 1000, cols: 1000 },
    Shape { what: "rate step, quickstart (N 1000, B 64)", rows: 64, inner: 1000, cols: 1000 },
    Shape { what: "readout (B 64, N 1000, 2 outputs)", rows: 64, inner: 1000, cols: 2 },
    Shape { what: "rate step, 1 trial (N 4096)", rows: 1, inner: 4096, cols: 4096 },
    Shape { what: "rate step (N 4096, B 64)", rows: 64, inner: 4096, cols: 4096 },
    Shape { what: "rate step (N 4096, B 256)", rows: 256, inner: 4096, cols: 4096 },
    Shape { what: "square 1024", rows: 1024, inner: 1024, cols: 1024 },
];

fn gemm_crate(s: &Shape, a: &[f32], w: &[f32], c: &mut [f32], threads: usize) {
    // SAFETY: slices hold rows*inner, cols*inner and rows*cols values; strides address only them.
    unsafe {
        gemm::gemm(
            s.rows, s.cols, s.inner,
            c.as_mut_ptr(), 1, s.cols as isize, false,
            a.as_ptr(), 1, s.inner as isize,
            w.as_ptr(), s.inner as isize, 1,
            1.0, 1.0, false, false, false,
            gemm::Parallelism::Rayon(threads),
        );
    }
}

/// gemm single-threaded on column blocks of C, one rayon task each, at least 64 columns a block:
/// W's rows for a block are contiguous, and C's block is addressed through its row stride.
fn gemm_split(s: &Shape, a: &[f32], w: &[f32], c: &mut [f32], threads: usize) {
    use rayon::prelude::*;
    let blocks = threads.min(s.cols.div_ceil(64)).max(1);
    let per = s.cols.div_ceil(blocks);
    let c_addr = c.as_mut_ptr() as usize; // each task writes its own columns only
    (0..blocks).into_par_iter().for_each(|blk| {
        let c0 = blk * per;
        let n = per.min(s.cols.saturating_sub(c0));
        if n == 0 {
            return;
        }
        // SAFETY: columns c0..c0 + n of C and rows c0..c0 + n of W lie inside the slices.
        unsafe {
            gemm::gemm(
                s.rows, n, s.inner,
                (c_addr as *mut f32).add(c0), 1, s.cols as isize, false,
                a.as_ptr(), 1, s.inner as isize,
                w.as_ptr().add(c0 * s.inner), s.inner as isize, 1,
                1.0, 1.0, false, false, false,
                gemm::Parallelism::None,
            );
        }
    });
}

/// faer single-threaded on column blocks of C, one rayon task each, as `gemm_split`.
fn faer_split(s: &Shape, a: &[f32], w: &[f32], c: &mut [f32], threads: usize) {
    use rayon::prelude::*;
    let blocks = threads.min(s.cols.div_ceil(64)).max(1);
    let per = s.cols.div_ceil(blocks);
    let c_addr = c.as_mut_ptr() as usize;
    (0..blocks).into_par_iter().for_each(|blk| {
        let c0 = blk * per;
        let n = per.min(s.cols.saturating_sub(c0));
        if n == 0 {
            return;
        }
        let a = faer::MatRef::from_row_major_slice(a, s.rows, s.inner);
        let wt = faer::MatRef::from_row_major_slice(&w[c0 * s.inner..][..n * s.inner], n, s.inner).transpose();
        // SAFETY: columns c0..c0+n of C, row stride cols.
        let c = unsafe { faer::MatMut::from_raw_parts_mut((c_addr as *mut f32).add(c0), s.rows, n, s.cols as isize, 1) };
        faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, wt, 1.0f32, faer::Par::Seq);
    });
}

fn matrixmultiply_crate(s: &Shape, a: &[f32], w: &[f32], c: &mut [f32]) {
    // SAFETY: as above; W^T is read through W's strides (row stride 1, column stride inner).
    unsafe {
        matrixmultiply::sgemm(
            s.rows, s.inner, s.cols,
            1.0,
            a.as_ptr(), s.inner as isize, 1,
            w.as_ptr(), 1, s.inner as isize,
            0.0,
            c.as_mut_ptr(), s.cols as isize, 1,
        );
    }
}

fn faer_crate(s: &Shape, a: &[f32], w: &[f32], c: &mut [f32], threads: usize) {
    let a = faer::MatRef::from_row_major_slice(a, s.rows, s.inner);
    let wt = faer::MatRef::from_row_major_slice(w, s.cols, s.inner).transpose();
    let c = faer::MatMut::from_row_major_slice_mut(c, s.rows, s.cols);
    faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, wt, 1.0f32, faer::Par::rayon(threads));
}

/// Rounds in which the candidates take turns; each crate's best round is reported, because
/// on a shared machine interference only adds time and drifts over minutes.
const ROUNDS: usize = 7;

/// Seconds per call over a batch of calls that runs at least 0.1 s.
fn time(mut f: impl FnMut()) -> f64 {
    let (start, mut calls) = (Instant::now(), 0u32);
    while start.elapsed().as_secs_f64() < 0.1 {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() / calls as f64
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("threads: {threads} (rayon); matrixmultiply uses MATMUL_NUM_THREADS, at most 4");
    println!("GFLOP/s, best of {ROUNDS} interleaved rounds (heap allocations per call)");
    println!("{:<30} {:>17} {:>17} {:>17} {:>17} {:>17}", "[rows x inner] x [inner x cols]", "gemm, own threads", "gemm, dale split", "matrixmultiply", "faer, own threads", "faer, dale split");
    let mut seed = 0x9e3779b9u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as f32 / u32::MAX as f32 - 0.5
    };
    for s in SHAPES {
        let a: Vec<f32> = (0..s.rows * s.inner).map(|_| next()).collect();
        let w: Vec<f32> = (0..s.cols * s.inner).map(|_| next()).collect();
        let mut outs = [vec![0.0f32; s.rows * s.cols], vec![0.0; s.rows * s.cols], vec![0.0; s.rows * s.cols]];
        let flop = 2.0 * (s.rows * s.inner * s.cols) as f64;
        let [c0, c1, c2] = &mut outs;
        let mut c3 = vec![0.0f32; s.rows * s.cols];
        let mut c4 = vec![0.0f32; s.rows * s.cols];
        let mut best = [f64::INFINITY; 5];
        for round in 0..=ROUNDS {
            let t = [
                time(|| gemm_crate(s, &a, &w, c0, threads)),
                time(|| matrixmultiply_crate(s, &a, &w, c1)),
                time(|| faer_crate(s, &a, &w, c2, threads)),
                time(|| gemm_split(s, &a, &w, &mut c3, threads)),
                time(|| faer_split(s, &a, &w, &mut c4, threads)),
            ];
            if round > 0 {
                // round 0 warms up: thread pools, packing buffers, page faults
                best.iter_mut().zip(t).for_each(|(b, t)| *b = b.min(t));
            }
        }
        let [t0, t1, t2, t3, t4] = best;
        let a0 = allocations(|| gemm_crate(s, &a, &w, c0, threads));
        let a1 = allocations(|| matrixmultiply_crate(s, &a, &w, c1));
        let a2 = allocations(|| faer_crate(s, &a, &w, c2, threads));
        let a3 = allocations(|| gemm_split(s, &a, &w, &mut c3, threads));
        let a4 = allocations(|| faer_split(s, &a, &w, &mut c4, threads));
        let differ = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let worst = differ(c0, c1).max(differ(c0, c2)).max(differ(c0, &c3)).max(differ(c0, &c4));
        assert!(worst < 1e-3, "{}: the crates disagree by {worst}", s.what);
        println!(
            "{:<30} {:>10.1} ({a0:>4}) {:>10.1} ({a3:>4}) {:>10.1} ({a1:>4}) {:>10.1} ({a2:>4}) {:>10.1} ({a4:>4})   {}",
            format!("[{} x {}] x [{} x {}]", s.rows, s.inner, s.inner, s.cols),
            flop / t0 / 1e9,
            flop / t3 / 1e9,
            flop / t1 / 1e9,
            flop / t2 / 1e9,
            flop / t4 / 1e9,
            s.what
        );
    }
}
