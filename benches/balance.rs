//! `cargo bench --bench balance`: synaptic balancing (001) on batches of networks.
//!
//! 1. One iteration (one pass over the costs c0: each neuron's incoming and outgoing costs, then
//!    the update of h) in synapse-updates/s, for N in {256, 1024, 4096, 16384}, batched so that
//!    each size holds at least 2^24 synapses, on the CPU backend and the GPU adapter in the same
//!    run. Per-iteration time is (T(2K) - T(K)) / K over whole `balance` runs, so uploads, the
//!    cost pass and the final transformation cancel.
//! 2. Passes over c0 to reach ||g|| <= 1e-6 ||g0||: the flow (at half its largest stable step)
//!    against the direct solver, on the CPU backend.
//!
//! The networks (`common::networks`): spread 1 for the throughput table and the first passes
//! table, spread 0.25 for a network near balance; p = 2, alpha = 1.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{networks, read_seconds};
use dale::backend::balance::Aggregate;
use dale::backend::cpu::CpuBackend;
use dale::backend::gpu::select::any_gpu;
use dale::backend::gpu::{GpuBackend, GpuContext};
use dale::backend::Backend;
use dale::models::balancing::{balance, BalanceParams, Method, Networks, Topology};

/// A size whose runs are estimated to take longer than this on a backend is skipped there
/// (a software GPU adapter, ~100x slower than the CPU backend, gets SOFTWARE_BUDGET_S).
const BUDGET_S: f64 = 240.0;
const SOFTWARE_BUDGET_S: f64 = 60.0;

fn params(method: Method, iterations: usize, tol: f64) -> BalanceParams {
    BalanceParams {
        p: 2.0,
        aggregate: Aggregate::Sum,
        method,
        max_iterations: iterations,
        tol,
        h_every: 0,
        topology: Topology::Whole,
    }
}

/// A fresh backend for every run: the CPU backend keeps its buffers until it is dropped.
enum Kind {
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Kind {
    fn backend(&self) -> Box<dyn Backend> {
        match self {
            Kind::Cpu => Box::new(CpuBackend::new()),
            Kind::Gpu(ctx) => Box::new(GpuBackend::new(ctx.clone())),
        }
    }
}

fn timed(kind: &Kind, nets: &Networks, p: &BalanceParams) -> f64 {
    let mut be = kind.backend();
    let t = Instant::now();
    balance(be.as_mut(), nets, p).expect("bench run");
    t.elapsed().as_secs_f64()
}

/// Seconds per iteration, or None when the runs would not fit BUDGET_S at `updates_per_s_guess`.
/// K iterations are chosen to take at least as long as the rest of a run (uploads, the cost pass,
/// checks, the final transformation), and each of the two runs is the best of three.
fn per_iteration(
    kind: &Kind,
    nets: &Networks,
    method: Method,
    updates_per_s_guess: f64,
    budget: f64,
) -> Option<f64> {
    let synapses = (nets.groups * nets.n * nets.n) as f64;
    if 20.0 * synapses / updates_per_s_guess > budget {
        return None;
    }
    let first = timed(kind, nets, &params(method, 2, 0.0));
    let est = (first / 2.0).max(synapses / updates_per_s_guess);
    let k = ((first.max(0.3) / est).ceil() as usize).clamp(4, 1000);
    // Best of three where that fits; one run each for the largest sizes.
    let reps = if 3.0 * (3.0 * est * k as f64 + 2.0 * first) <= budget {
        3
    } else {
        1
    };
    if 3.0 * est * k as f64 + 2.0 * first > budget {
        return None;
    }
    let best = |iterations: usize| {
        (0..reps)
            .map(|_| timed(kind, nets, &params(method, iterations, 0.0)))
            .fold(f64::INFINITY, f64::min)
    };
    let short = best(k);
    let long = best(2 * k);
    Some(((long - short) / k as f64).max(f64::MIN_POSITIVE))
}

/// On a rayon worker, as the dale binary runs its commands (src/main.rs, `on_workers`).
fn main() {
    rayon::scope(|_| bench())
}

fn bench() {
    let gpu = any_gpu().expect("opening the GPU adapter");
    let gpu_name = gpu
        .as_ref()
        .map(|g| format!("{} ({}, {})", g.info.name, g.info.kind, g.info.device_type));
    let software = gpu.as_ref().is_some_and(|g| g.info.device_type == "Cpu");
    let gpu = gpu.map(Kind::Gpu);
    let cpu = Kind::Cpu;
    println!(
        "balancing iteration (one pass over c0 + h update), p = 2: CPU = {}; GPU = {}",
        cpu.backend().info().name,
        gpu_name.as_deref().unwrap_or("none")
    );
    println!(
        "{:>6} {:>5} {:>6} | {:>10} {:>16} {:>11} {:>11} {:>10} | {:>10} {:>16} | {:>8}",
        "N",
        "nets",
        "method",
        "CPU ms/it",
        "synapse-upd/s",
        "c0 GB/s",
        "read GB/s",
        "pass/read",
        "GPU ms/it",
        "synapse-upd/s",
        "GPU/CPU"
    );
    for (n, name) in [256usize, 1024, 4096, 16384]
        .into_iter()
        .flat_map(|n| [(n, "flow"), (n, "solver")])
    {
        let groups = ((1usize << 24) / (n * n)).max(1);
        let j = networks(groups, n, 1, 1.0);
        let nets = Networks::recurrent(groups, n, &j);
        let method = if name == "flow" {
            Method::Flow {
                dt: 0.5 * nets.largest_stable_dt(2.0),
            }
        } else {
            Method::Solver
        };
        let synapses = (groups * n * n) as f64;
        let cell = |t: Option<f64>| match t {
            Some(t) => format!("{:>10.3} {:>16.3e}", t * 1e3, synapses / t),
            None => format!("{:>10} {:>16}", "skipped", "-"),
        };
        let c = per_iteration(&cpu, &nets, method, 2e9, BUDGET_S);
        // A pass reads c0 (4 bytes a synapse) once; beside it, a plain read of as many bytes.
        let read = read_seconds(&j);
        let bandwidth = match c {
            Some(t) => format!(
                "{:>11.1} {:>11.1} {:>10.2}",
                4.0 * synapses / t / 1e9,
                4.0 * synapses / read / 1e9,
                read / t
            ),
            None => format!(
                "{:>11} {:>11.1} {:>10}",
                "-",
                4.0 * synapses / read / 1e9,
                "-"
            ),
        };
        let g = gpu.as_ref().and_then(|g| {
            if software {
                per_iteration(g, &nets, method, 5e7, SOFTWARE_BUDGET_S)
            } else {
                per_iteration(g, &nets, method, 1e11, BUDGET_S)
            }
        });
        let ratio = match (c, g) {
            (Some(c), Some(g)) => format!("{:>8.3}", c / g),
            _ => format!("{:>8}", "-"),
        };
        println!(
            "{n:>6} {groups:>5} {name:>6} | {} {bandwidth} | {} | {ratio}",
            cell(c),
            cell(g)
        );
    }

    for spread in [1.0f32, 0.25] {
        println!();
        println!("passes over c0 to ||g|| <= 1e-6 ||g0||, spread {spread} (CPU backend; the flow at half its largest stable step, capped at 50x the solver's passes)");
        println!(
            "{:>6} {:>5} | {:>14} {:>8} | {:>14} {:>16} | {:>10}",
            "N", "nets", "solver passes", "s", "flow passes", "flow ||g||/||g0||", "flow dt"
        );
        for n in [256usize, 1024, 4096, 16384] {
            let groups = if n <= 1024 { 4 } else { 1 };
            let j = networks(groups, n, 2, spread);
            let nets = Networks::recurrent(groups, n, &j);
            let t = Instant::now();
            let solved = balance(
                cpu.backend().as_mut(),
                &nets,
                &params(Method::Solver, 100_000, 1e-6),
            )
            .expect("solver");
            let solver_s = t.elapsed().as_secs_f64();
            let solver_passes = solved.converged_at.map(|p| p + 1);
            let dt = 0.5 * nets.largest_stable_dt(2.0);
            let per_pass = solver_s / solved.iterations.max(1) as f64;
            let cap = 50 * solver_passes.unwrap_or(1000);
            let flow = if per_pass * cap as f64 <= BUDGET_S {
                let f = balance(
                    cpu.backend().as_mut(),
                    &nets,
                    &params(Method::Flow { dt }, cap, 1e-6),
                )
                .expect("flow");
                let last = f.grad_norm.len() / (f.iterations + 1) * f.iterations;
                let ratio = (0..groups)
                    .map(|g| f.grad_norm[last + g] / f.grad_norm[g])
                    .fold(0.0, f64::max);
                Some((f.converged_at.map(|p| p + 1), ratio))
            } else {
                None
            };
            let show =
                |p: Option<usize>| p.map_or_else(|| "not reached".to_string(), |p| p.to_string());
            let (flow_passes, flow_ratio) = match flow {
                Some((p, r)) => (
                    show(p).replace("not reached", &format!("> {cap}")),
                    format!("{r:.2e}"),
                ),
                None => ("skipped".into(), "-".into()),
            };
            println!(
                "{n:>6} {groups:>5} | {:>14} {:>8.2} | {:>14} {:>16} | {:>10.3e}",
                show(solver_passes),
                solver_s,
                flow_passes,
                flow_ratio,
                dt
            );
        }
    }
}
