//! `cargo bench`: the rate network's Euler step (001 eq. 1; J phi(x) + leak + phi + the per-step
//! population-rate and max |x| reductions) in neuron-steps/s and synapse-updates/s, for
//! N in {256, 1024, 4096} x B in {1, 64, 1024}, on the CPU backend and on the GPU adapter (if any)
//! in the same run, with the GPU/CPU ratio.
//!
//! Per-step time is (T(2S) - T(S)) / S over whole runs of the model, so allocation, weight upload
//! and the first submission cancel. A software adapter (lavapipe) runs a size only when its
//! estimated time is under common::BUDGET_S; the rest are reported as skipped, not guessed.

mod common;

use common::per_step;
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::GpuBackend;
use dale::backend::{Backend, Phi};
use dale::models::rate::{Input, Monitors, RateParams, Weights};

fn params(n: usize, b: usize) -> RateParams {
    RateParams {
        n,
        trials: b,
        networks: 1,
        tau: 10.0,
        dt: 1.0,
        phi: Phi::Relu,
        g: 0.9,
        inputs: 0,
        outputs: 1,
        sigma: 0.0,
        input: Input::None,
    }
}

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

fn bench() {
    let gpu = any_gpu().expect("opening the GPU adapter");
    let mut cpu = CpuBackend::new();
    let cpu_name = cpu.info().name;
    let gpu_name = gpu
        .as_ref()
        .map(|g| format!("{} ({}, {})", g.info.name, g.info.kind, g.info.device_type));
    println!(
        "rate step (ReLU, Euler, no input): CPU = {cpu_name}; GPU = {}",
        gpu_name.as_deref().unwrap_or("none")
    );
    println!(
        "{:>5} {:>5} | {:>10} {:>14} {:>16} {:>8} | {:>10} {:>14} {:>16} {:>8} | {:>8}",
        "N",
        "B",
        "CPU ms/st",
        "neuron-st/s",
        "synapse-upd/s",
        "GFLOP/s",
        "GPU ms/st",
        "neuron-st/s",
        "synapse-upd/s",
        "GFLOP/s",
        "GPU/CPU"
    );
    let mut gpu_backend = gpu.map(GpuBackend::new);
    let software = gpu_backend
        .as_ref()
        .is_some_and(|g| g.info().device_type == "Cpu");
    for n in [256usize, 1024, 4096] {
        for b in [1usize, 64, 1024] {
            let p = params(n, b);
            let w = Weights::random(&p, 1);
            let flops = 2.0 * (b * n * n) as f64;
            let cell = |t: Option<f64>| match t {
                Some(t) => format!(
                    "{:>10.3} {:>14.3e} {:>16.3e} {:>8.1}",
                    t * 1e3,
                    (b * n) as f64 / t,
                    (b * n * n) as f64 / t,
                    flops / t / 1e9
                ),
                None => format!("{:>10} {:>14} {:>16} {:>8}", "skipped", "-", "-", "-"),
            };
            let none = Monitors::default();
            let c = per_step(&mut cpu, &p, &w, &none, 50e9).map(|(t, _)| t);
            let g = gpu_backend.as_mut().and_then(|g| {
                per_step(g, &p, &w, &none, if software { 1e9 } else { 1e12 }).map(|(t, _)| t)
            });
            let ratio = match (c, g) {
                (Some(c), Some(g)) => format!("{:>8.3}", c / g),
                _ => format!("{:>8}", "-"),
            };
            println!("{n:>5} {b:>5} | {} | {} | {ratio}", cell(c), cell(g));
        }
    }
}
