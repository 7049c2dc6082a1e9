//! `cargo bench`: the rate network's Euler step (001 eq. 1; J phi(x) + leak + phi + the per-step
//! population-rate and max |x| reductions) in neuron-steps/s and synapse-updates/s, for
//! N in {256, 1024, 4096} x B in {1, 64, 1024}, on the CPU backend and on the GPU adapter (if any)
//! in the same run, with the GPU/CPU ratio.
//!
//! Per-step time is (T(2S) - T(S)) / S over whole runs of the model, so allocation, weight upload
//! and the first submission cancel. A software adapter (lavapipe) runs a size only when its
//! estimated time is under BUDGET_S; the rest are reported as skipped, not guessed.

use std::time::Instant;

use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::GpuBackend;
use dale::backend::select::any_gpu;
use dale::backend::{Backend, Phi};
use dale::models::rate::{simulate, Input, Monitors, RateParams, Weights};

/// Seconds of work aimed at per measured run.
const TARGET_S: f64 = 1.0;
/// A size whose two runs are estimated to take longer than this on a backend is skipped there.
const BUDGET_S: f64 = 60.0;

fn params(n: usize, b: usize) -> RateParams {
    RateParams { n, trials: b, networks: 1, tau: 10.0, dt: 1.0, phi: Phi::Relu, g: 0.9, inputs: 0, outputs: 1, sigma: 0.0, input: Input::None }
}

fn run(be: &mut dyn Backend, p: &RateParams, w: &Weights, steps: usize) -> f64 {
    let t = Instant::now();
    simulate(be, p, w, 1, steps, &Monitors::default(), &mut |_| {}).map_err(|(_, e)| e).expect("bench run");
    t.elapsed().as_secs_f64()
}

/// Seconds per step, or None when the estimate exceeds the budget.
fn per_step(be: &mut dyn Backend, p: &RateParams, w: &Weights, flops_per_s_guess: f64) -> Option<f64> {
    let flops = 2.0 * (p.batch() * p.n * p.n) as f64;
    if 8.0 * flops / flops_per_s_guess > BUDGET_S {
        return None; // even the warm-up and two short runs would not fit the budget
    }
    let first = run(be, p, w, 2); // warm-up: compiles, allocates, and calibrates
    let est_step = (first / 2.0).max(flops / flops_per_s_guess);
    let steps = ((TARGET_S / est_step) as usize).clamp(2, 2000);
    if est_step * 3.0 * steps as f64 > BUDGET_S {
        return None;
    }
    let short = run(be, p, w, steps);
    let long = run(be, p, w, 2 * steps);
    Some(((long - short) / steps as f64).max(f64::MIN_POSITIVE))
}

fn main() {
    let gpu = any_gpu().expect("opening the GPU adapter");
    let mut cpu = CpuBackend::new();
    let cpu_name = cpu.info().name;
    let gpu_name = gpu.as_ref().map(|g| format!("{} ({}, {})", g.info.name, g.info.kind, g.info.device_type));
    println!("rate step (ReLU, Euler, no input): CPU = {cpu_name}; GPU = {}", gpu_name.as_deref().unwrap_or("none"));
    println!("{:>5} {:>5} | {:>10} {:>14} {:>16} {:>8} | {:>10} {:>14} {:>16} {:>8} | {:>8}",
        "N", "B", "CPU ms/st", "neuron-st/s", "synapse-upd/s", "GFLOP/s", "GPU ms/st", "neuron-st/s", "synapse-upd/s", "GFLOP/s", "GPU/CPU");
    let mut gpu_backend = gpu.map(GpuBackend::new);
    let software = gpu_backend.as_ref().is_some_and(|g| g.info().device_type == "Cpu");
    for n in [256usize, 1024, 4096] {
        for b in [1usize, 64, 1024] {
            let p = params(n, b);
            let w = Weights::random(&p, 1);
            let flops = 2.0 * (b * n * n) as f64;
            let cell = |t: Option<f64>| match t {
                Some(t) => format!("{:>10.3} {:>14.3e} {:>16.3e} {:>8.1}", t * 1e3, (b * n) as f64 / t, (b * n * n) as f64 / t, flops / t / 1e9),
                None => format!("{:>10} {:>14} {:>16} {:>8}", "skipped", "-", "-", "-"),
            };
            let c = per_step(&mut cpu, &p, &w, 50e9);
            let g = gpu_backend.as_mut().and_then(|g| per_step(g, &p, &w, if software { 1e9 } else { 1e12 }));
            let ratio = match (c, g) {
                (Some(c), Some(g)) => format!("{:>8.3}", c / g),
                _ => format!("{:>8}", "-"),
            };
            println!("{n:>5} {b:>5} | {} | {} | {ratio}", cell(c), cell(g));
        }
    }
}
