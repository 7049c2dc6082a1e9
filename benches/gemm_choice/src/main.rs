//! Times C = A W^T, dale's one matmul shape (A row-major [rows, inner], W row-major [cols, inner],
//! C row-major [rows, cols]), through the three GEMM crates the CPU backend could use, on the
//! shapes dale's models run. Each crate gets the same buffers, all cores, and the same warm-up; the
//! results are checked against each other so that a wrong stride cannot look fast.
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

/// Heap allocations per call, after the warm-up of `time`.
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

/// Median seconds per call over batches that each run at least 0.1 s, after a 0.2 s warm-up.
fn time(mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < 0.2 {
        f();
    }
    let mut per_call = Vec::new();
    for _ in 0..7 {
        let (start, mut calls) = (Instant::now(), 0u32);
        while start.elapsed().as_secs_f64() < 0.1 {
            f();
            calls += 1;
        }
        per_call.push(start.elapsed().as_secs_f64() / calls as f64);
    }
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}

fn main() {
    let threads = rayon::current_num_threads();
    println!("threads: {threads} (rayon); matrixmultiply uses MATMUL_NUM_THREADS, at most 4");
    println!("{:<40} {:>16} {:>16} {:>16}", "shape [rows x inner] x [inner x cols]", "gemm", "matrixmultiply", "faer");
    println!("GFLOP/s (heap allocations per call)");
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
        let t0 = time(|| gemm_crate(s, &a, &w, c0, threads));
        let t1 = time(|| matrixmultiply_crate(s, &a, &w, c1));
        let t2 = time(|| faer_crate(s, &a, &w, c2, threads));
        let a0 = allocations(|| gemm_crate(s, &a, &w, c0, threads));
        let a1 = allocations(|| matrixmultiply_crate(s, &a, &w, c1));
        let a2 = allocations(|| faer_crate(s, &a, &w, c2, threads));
        let differ = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let worst = differ(c0, c1).max(differ(c0, c2));
        assert!(worst < 1e-3, "{}: the crates disagree by {worst}", s.what);
        println!(
            "{:<40} {:>10.1} ({a0:>3}) {:>10.1} ({a1:>3}) {:>10.1} ({a2:>3})   ({})",
            format!("[{} x {}] x [{} x {}]", s.rows, s.inner, s.inner, s.cols),
            flop / t0 / 1e9,
            flop / t1 / 1e9,
            flop / t2 / 1e9,
            s.what
        );
    }
}
