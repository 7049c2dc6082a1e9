//! DisCo-SGD (paper 003, Table 1): perceptrons learning random labels while their weights are
//! held to prescribed distributions, many independent problems in lockstep. Each step is a
//! logistic SGD step on a mini-batch (eq. 7, with the trainable norm beta) and then, for each
//! population, a sort of its weights and the transport step toward the targets of their ranks
//! (eq. 8, 9). Every `check_every` steps the margins of all patterns are read back for the
//! weights projected onto the distributions (eq. 8, a copy; training goes on from the unprojected
//! ones): a problem counts as solved at the first check where the projected weights give every
//! pattern a margin >= kappa (and > 0). An incremental transport step alone lets SGD pull the
//! weights off the distribution, and would count solutions that break the constraint.
//! Uses the op families perceptron and sort.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::analysis::disco::WeightDistribution;
use crate::backend::perceptron::{PerceptronOps, Perceptrons, Rates, Window};
use crate::backend::sort::{SortOps, SortRows};
use crate::backend::{Backend, BufferOps, Scope};
use crate::error::DaleError;

/// A block of consecutive weights held to one distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    pub size: usize,
    pub distribution: WeightDistribution,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiscoParams {
    /// Independent problems (each its own patterns, labels and initial weights).
    pub problems: usize,
    /// Patterns per problem: alpha N.
    pub patterns: usize,
    /// The populations, in weight order; N is the sum of their sizes.
    pub populations: Vec<Population>,
    /// Patterns per SGD step.
    pub batch: usize,
    /// eta_1, the norm's rate, and eta_2 (the transport step's; 1 projects at once).
    pub rates: Rates,
    pub transport_rate: f32,
    /// The norm beta at the start (the fields w . xi are of order sqrt(N)).
    pub beta0: f32,
    pub kappa: f32,
    pub max_steps: usize,
    pub check_every: usize,
    pub seed: u64,
}

impl DiscoParams {
    pub fn n(&self) -> usize {
        self.populations.iter().map(|p| p.size).sum()
    }
}

/// What a run ends with, per problem.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoRun {
    /// The step of the first check at which every pattern had margin >= kappa.
    pub solved_at: Vec<Option<usize>>,
    /// At the last check, for the projected weights: the smallest margin and the number of
    /// patterns on the wrong side.
    pub min_margin: Vec<f32>,
    pub errors: Vec<u32>,
    pub steps: usize,
    /// [problems, N] at the end.
    pub weights: Vec<f32>,
    pub beta: Vec<f32>,
}

/// Patterns xi ~ N(0, I) and labels +-1 with probability 1/2, problem b from its own stream of
/// the seed (so that a problem's data do not depend on how many others run beside it).
pub fn random_task(problems: usize, patterns: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut xi = Vec::with_capacity(problems * patterns * n);
    let mut labels = Vec::with_capacity(problems * patterns);
    for b in 0..problems {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(b as u64);
        labels.extend((0..patterns).map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            if z >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }));
        xi.extend((0..patterns * n).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
    }
    (xi, labels)
}

/// Initial weights: each population's targets in a random order per problem (a sample of its
/// distribution with the right empirical quantiles).
fn initial_weights(params: &DiscoParams, targets: &[Vec<f32>]) -> Vec<f32> {
    let n = params.n();
    let mut w = Vec::with_capacity(params.problems * n);
    for b in 0..params.problems {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x5eed_d15c);
        rng.set_stream(b as u64);
        for t in targets {
            let mut shuffled = t.clone();
            rand::seq::SliceRandom::shuffle(shuffled.as_mut_slice(), &mut rng);
            w.extend(shuffled);
        }
    }
    w
}

pub fn train(backend: &mut dyn Backend, params: &DiscoParams) -> Result<DiscoRun, DaleError> {
    let mut scope = Scope::new();
    let result = train_in(backend, &mut scope, params);
    scope.free(backend);
    result
}

fn train_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    params: &DiscoParams,
) -> Result<DiscoRun, DaleError> {
    let (b, n, p) = (params.problems, params.n(), params.patterns);
    let spec = Perceptrons {
        problems: b,
        n,
        patterns: p,
        shared_patterns: false,
    };
    let targets: Vec<Vec<f32>> = params
        .populations
        .iter()
        .map(|pop| pop.distribution.targets(pop.size))
        .collect();
    let (xi, labels) = random_task(b, p, n, params.seed);
    let xi = scope.alloc_from(backend, "patterns xi", &xi)?;
    let labels = scope.alloc_from(backend, "labels zeta", &labels)?;
    let w = scope.alloc_from(backend, "weights w", &initial_weights(params, &targets))?;
    let projected = scope.alloc::<f32>(backend, "projected weights", b * n)?;
    let beta = scope.alloc_from(backend, "norm beta", &vec![params.beta0; b])?;
    let batch = params.batch.min(p);
    let h = scope.alloc::<f32>(backend, "fields h", b * p.max(batch))?;
    let stats = scope.alloc::<f32>(backend, "margin stats", 2 * b)?;
    let largest = params
        .populations
        .iter()
        .map(|pop| pop.size)
        .max()
        .unwrap_or(0);
    let sorted = scope.alloc::<f32>(backend, "sorted weights", b * largest)?;
    let perm = scope.alloc::<u32>(backend, "ranks", b * largest)?;
    let work = scope.alloc::<u32>(backend, "sort work", b * largest)?;
    let nan_rows = scope.alloc_from(backend, "rows holding NaN", &vec![0u32; b])?;
    let mut target_bufs = Vec::new();
    let mut rows = Vec::new();
    let mut offset = 0;
    for (pop, t) in params.populations.iter().zip(&targets) {
        target_bufs.push(scope.alloc_from(backend, "targets", t)?);
        rows.push(SortRows {
            rows: b,
            len: pop.size,
            offset,
            stride: n,
        });
        offset += pop.size;
    }

    let mut run = DiscoRun {
        solved_at: vec![None; b],
        min_margin: vec![f32::NEG_INFINITY; b],
        errors: vec![p as u32; b],
        steps: 0,
        weights: Vec::new(),
        beta: Vec::new(),
    };
    let all = Window { first: 0, count: p };
    while run.steps < params.max_steps {
        let chunk = params.check_every.min(params.max_steps - run.steps);
        for _ in 0..chunk {
            let window = Window {
                first: (run.steps * batch) % p.max(1),
                count: batch,
            };
            backend.fields(xi, w, h, spec, window);
            backend.logistic_step(xi, labels, h, w, beta, spec, window, params.rates);
            for (rows, t) in rows.iter().zip(&target_bufs) {
                backend.sort_rows(w, sorted, perm, work, nan_rows, *rows);
                backend.transport_step(w, perm, *t, params.transport_rate, *rows);
            }
            run.steps += 1;
        }
        backend.copy(w, 0, projected, 0, b * n);
        for (rows, t) in rows.iter().zip(&target_bufs) {
            backend.sort_rows(projected, sorted, perm, work, nan_rows, *rows);
            backend.transport_step(projected, perm, *t, 1.0, *rows);
        }
        backend.fields(xi, projected, h, spec, all);
        backend.margin_stats(h, labels, projected, stats, spec);
        let s = backend.download(stats, 0, 2 * b)?;
        if let Some(r) = backend
            .download(nan_rows, 0, b)?
            .iter()
            .position(|f| *f != 0)
        {
            return Err(DaleError::Diverged {
                step: run.steps,
                quantity: format!("the weights of problem {r} (lower the rates)"),
                value: f32::NAN,
                kept: 0,
            });
        }
        for (k, st) in s.chunks(2).enumerate() {
            run.min_margin[k] = st[0];
            run.errors[k] = st[1] as u32;
            if run.solved_at[k].is_none() && st[1] == 0.0 && st[0] >= params.kappa {
                run.solved_at[k] = Some(run.steps);
            }
        }
        if run.solved_at.iter().all(Option::is_some) {
            break;
        }
    }
    run.weights = backend.download(w, 0, b * n)?;
    run.beta = backend.download(beta, 0, b)?;
    Ok(run)
}
