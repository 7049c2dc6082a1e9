//! Timing shared by the benches: per-step time of whole model runs, so that setup cancels.
#![allow(dead_code)] // each bench binary uses its own part

use std::time::Instant;

use dale::backend::Backend;
use dale::models::rate::{simulate, Monitors, RateParams, Weights};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// Seconds of work aimed at per measured run.
pub const TARGET_S: f64 = 1.0;
/// A size whose runs are estimated to take longer than this on a backend is skipped there.
pub const BUDGET_S: f64 = 60.0;

pub fn run(
    be: &mut dyn Backend,
    p: &RateParams,
    w: &Weights,
    steps: usize,
    monitors: &Monitors,
) -> f64 {
    let t = Instant::now();
    simulate(be, p, w, 1, steps, monitors, &mut |_| {})
        .map_err(|(_, e)| e)
        .expect("bench run");
    t.elapsed().as_secs_f64()
}

/// Per-step time (T(2S) - T(S)) / S over whole runs, so allocation, weight upload and the first
/// submission cancel, with S chosen so that a run takes about TARGET_S; None when even that
/// would exceed BUDGET_S at `flops_per_s_guess`. Returns (seconds per step, S).
pub fn per_step(
    be: &mut dyn Backend,
    p: &RateParams,
    w: &Weights,
    monitors: &Monitors,
    flops_per_s_guess: f64,
) -> Option<(f64, usize)> {
    let flops = 2.0 * (p.batch() * p.n * p.n) as f64;
    if 8.0 * flops / flops_per_s_guess > BUDGET_S {
        return None; // even the warm-up and two short runs would not fit the budget
    }
    let first = run(be, p, w, 2, monitors); // warm-up: compiles, allocates, and calibrates
    let est_step = (first / 2.0).max(flops / flops_per_s_guess);
    let steps = ((TARGET_S / est_step) as usize).clamp(2, 100_000);
    if est_step * 3.0 * steps as f64 > BUDGET_S {
        return None;
    }
    let short = run(be, p, w, steps, monitors);
    let long = run(be, p, w, 2 * steps, monitors);
    Some((
        ((long - short) / steps as f64).max(f64::MIN_POSITIVE),
        steps,
    ))
}

/// Networks off balance for the balancing benches, [groups, n, n]: J_ij ~ N(0, 1/N), rows and
/// columns rescaled by e^(s_i - s_j), s_i ~ N(0, spread^2). Spread 1 stands for a trained network
/// whose neurons work at very different scales, spread 0.25 for one near balance.
pub fn networks(groups: usize, n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = Normal::new(0.0f32, 1.0).unwrap();
    let s: Vec<f32> = (0..groups * n)
        .map(|_| spread * d.sample(&mut rng))
        .collect();
    let scale = 1.0 / (n as f32).sqrt();
    (0..groups * n * n)
        .map(|e| {
            let (g, i, j) = (e / (n * n), (e / n) % n, e % n);
            d.sample(&mut rng) * scale * (s[g * n + i] - s[g * n + j]).exp()
        })
        .collect()
}

/// Runs of S and 2S steps timed in alternation over `rounds` rounds; per-step time is
/// (min T(2S) - min T(S)) / S. Interference only adds time, so each length's fastest run is its
/// least disturbed one; taking the difference of the two minima, not the best of per-round
/// differences, keeps one disturbed short run from posing as a fast step.
pub struct PairTimes {
    pub steps: usize,
    pub short: Vec<f64>,
    pub long: Vec<f64>,
}

impl PairTimes {
    pub fn new(steps: usize) -> Self {
        PairTimes {
            steps,
            short: Vec::new(),
            long: Vec::new(),
        }
    }

    pub fn push(&mut self, short: f64, long: f64) {
        self.short.push(short);
        self.long.push(long);
    }

    pub fn per_step(&self) -> f64 {
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        ((min(&self.long) - min(&self.short)) / self.steps as f64).max(f64::MIN_POSITIVE)
    }

    /// Per-step time of each round on its own, for the spread of the ratios.
    pub fn per_round(&self) -> Vec<f64> {
        self.short
            .iter()
            .zip(&self.long)
            .map(|(s, l)| ((l - s) / self.steps as f64).max(f64::MIN_POSITIVE))
            .collect()
    }
}

/// Seconds to read `values` once on all cores (a sum in 16 independent lanes per 1 MiB block, so
/// that memory, not the adds, sets the pace), best of 5 passes after one: the read bandwidth a
/// memory-bound pass can hope for, measured in the same run as the pass it is set beside.
pub fn read_seconds(values: &[f32]) -> f64 {
    use rayon::prelude::*;
    let pass = || {
        let t = Instant::now();
        let total: f32 = values
            .par_chunks(1 << 18)
            .map(|block| {
                let mut lanes = [0.0f32; 16];
                for chunk in block.chunks_exact(16) {
                    lanes.iter_mut().zip(chunk).for_each(|(s, v)| *s += v);
                }
                lanes.iter().sum::<f32>()
            })
            .sum();
        std::hint::black_box(total);
        t.elapsed().as_secs_f64()
    };
    pass();
    (0..5).map(|_| pass()).fold(f64::INFINITY, f64::min)
}
