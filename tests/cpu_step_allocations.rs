//! The CPU backend's step loop allocates nothing of its own: dale's ops (Euler step with noise,
//! reductions, copies) touch the heap never, the model loop once per chunk (the readback of what
//! the monitors recorded). The one exception is the GEMM crate, which allocates its packing
//! workspace inside each large product (gemm, faer and matrixmultiply all do; see
//! BENCHMARKS.md); the model test counts those calls and allows exactly them. Counted with a
//! global allocator in this test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dale::backend::cpu::CpuBackend;
use dale::backend::linalg::{Axis, LinalgOps, MatmulShape, Reduce, ReduceOp};
use dale::backend::rate::{EulerStep, NoiseOn, RateOps};
use dale::backend::{BufferOps, Phi};
use dale::models::rate::{simulate, Monitor, Monitors, RateParams, Weights, CHUNK_STEPS};

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
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The count is global, so the tests of this binary take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Heap allocations made by `calls` calls of `op`, after one call to warm up.
fn allocations(calls: usize, mut op: impl FnMut()) -> usize {
    op();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..calls {
        op();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const N: usize = 300;
const B: usize = 8;
const CALLS: usize = 630;
/// Each op hands one job to rayon's pool from outside it; rayon's injector queue grows by one
/// block per 63 jobs (crossbeam's Injector), which is the only allocation allowed per call.
const INJECTOR_BLOCKS: usize = CALLS / 63 + 1;

#[test]
fn cpu_elementwise_and_reduction_ops_do_not_allocate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut cpu = CpuBackend::new();
    let x = cpu.alloc("x", B * N).unwrap();
    let r = cpu.alloc("r", B * N).unwrap();
    let d = cpu.alloc("drive", B * N).unwrap();
    let out = cpu.alloc("out", N).unwrap();
    let step = EulerStep {
        len: B * N,
        leak: 0.1,
        phi: Phi::Tanh,
        noise_std: 0.1,
        seed: 7,
        step: 3,
        noise_on: NoiseOn::Rates,
    };
    let mut count = |what: &str, op: &mut dyn FnMut(&mut CpuBackend)| {
        let n = allocations(CALLS, || op(&mut cpu));
        assert!(
            n <= INJECTOR_BLOCKS,
            "{what}: {n} allocations in {CALLS} calls"
        );
    };
    count("euler_step with noise", &mut |c| {
        c.euler_step(x, r, d, step)
    });
    for axis in [Axis::Rows, Axis::Cols] {
        for op in [ReduceOp::Sum, ReduceOp::MaxAbs] {
            count(&format!("reduce {axis:?} {op:?}"), &mut |c| {
                c.reduce(
                    x,
                    out,
                    0,
                    Reduce {
                        rows: B,
                        cols: N,
                        axis,
                        op,
                        scale: 1.0,
                    },
                )
            });
        }
    }
    count("copy", &mut |c| c.copy(x, 0, d, 0, N));
}

#[test]
fn cpu_step_loop_allocates_only_per_chunk_and_inside_the_gemm_crate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The quickstart's step at a small size: input, noise, readout every step, x every 5 steps.
    let p: RateParams = serde_json::from_value(serde_json::json!({
        "n": N, "trials": B, "inputs": 2, "outputs": 2, "sigma": 0.05,
        "input": { "kind": "sine", "amplitude": 1.0, "period": 200.0, "offset": 0.5 }
    }))
    .expect("params");
    let w = Weights::random(&p, 1);
    let monitors = Monitors {
        x: Some(Monitor {
            every: 5,
            trials: Some(4),
        }),
        y: Some(Monitor {
            every: 1,
            trials: None,
        }),
    };

    // What the GEMM crate allocates in the three products of one step, measured alone.
    let mut cpu = CpuBackend::new();
    let (j, w_in, w_out) = (
        cpu.alloc("J", N * N).unwrap(),
        cpu.alloc("W_in", N * 2).unwrap(),
        cpu.alloc("W_out", 2 * N).unwrap(),
    );
    let (a, u, c, y) = (
        cpu.alloc("r", B * N).unwrap(),
        cpu.alloc("u", B * 2).unwrap(),
        cpu.alloc("drive", B * N).unwrap(),
        cpu.alloc("y", B * 2).unwrap(),
    );
    let shape = |inner, cols| MatmulShape {
        groups: 1,
        rows: B,
        inner,
        cols,
        shared_w: false,
        layout: dale::backend::linalg::Layout::ABt,
    };
    let gemm_per_step = allocations(CALLS, || {
        cpu.matmul(a, 0, j, c, shape(N, N), false);
        cpu.matmul(u, 0, w_in, c, shape(2, N), true);
        cpu.matmul(a, 0, w_out, y, shape(N, 2), false);
    }) as f64
        / CALLS as f64;

    let run = |steps: usize| {
        let mut cpu = CpuBackend::new();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        simulate(&mut cpu, &p, &w, 3, steps, &monitors, &mut |_| {})
            .map_err(|(_, e)| e)
            .expect("run");
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    run(2); // warm-up
    let (chunks, more_chunks) = (4, 8);
    let extra = run(more_chunks * CHUNK_STEPS) as f64 - run(chunks * CHUNK_STEPS) as f64;
    let extra_steps = ((more_chunks - chunks) * CHUNK_STEPS) as f64;
    let dale_per_chunk = (extra - extra_steps * gemm_per_step) / (more_chunks - chunks) as f64;
    // A chunk reads back four arrays and grows the trajectory's vectors: a few dozen
    // allocations. One allocation per step anywhere in dale would add 256 per chunk.
    assert!(
        dale_per_chunk <= 64.0,
        "{dale_per_chunk:.1} allocations per {CHUNK_STEPS}-step chunk beyond the GEMM crate's {gemm_per_step:.2} per step"
    );
}
