//! DisCo-SGD (paper 003, Table 1): perceptrons learning labels while their weights are held to
//! prescribed distributions, many independent problems in lockstep. Each step is a logistic SGD
//! step on a mini-batch (eq. 7, with the trainable norm beta) and then, for each population, a
//! sort of its weights and the transport step toward the targets of their ranks (eq. 8, 9).
//! Every `check_every` steps the margins of all patterns are read back for the weights projected
//! onto the distributions (eq. 8, a copy; training goes on from the unprojected ones): a problem
//! counts as solved at the first check where the projected weights give every pattern a margin
//! >= kappa (and > 0). An incremental transport step alone lets SGD pull the weights off the
//! distribution, and would count solutions that break the constraint.
//! The same loop trains section 5's students: labels from a teacher, and a student held to a
//! distribution (fixed prior), to the teacher's signs (sign-constrained), or to nothing.
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

/// What the weights are held to.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// Distributions, population by population (DisCo-SGD).
    Distributions(Vec<Population>),
    /// Each weight keeps its sign, signs [problems, n] of +-1 (0: free), by projection after each
    /// SGD step (section 5.1's sign-constrained student).
    Signs { n: usize, signs: Vec<f32> },
    /// Nothing: logistic SGD alone (the unconstrained student).
    Free { n: usize },
}

/// Where the labels come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// +-1 with probability 1/2 (section 2.1).
    Random,
    /// zeta = sgn(w_t . xi / ||w_t|| + eta), eta ~ N(0, noise_sd^2), from one teacher per
    /// problem, weights [problems, n] (section 5.1).
    Teacher { weights: Vec<f32>, noise_sd: f32 },
}

/// The weights training starts from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// Held to distributions: each population's targets in a random order (a sample of its
    /// distribution with the right quantiles). Otherwise standard normal draws, with the held
    /// signs where there are some.
    Sample,
    /// Every weight this value: Fig. 3's delta-function start.
    Constant(f32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiscoParams {
    /// Independent problems (each its own patterns, labels and initial weights).
    pub problems: usize,
    /// Patterns per problem: alpha N.
    pub patterns: usize,
    pub constraint: Constraint,
    pub labels: Labels,
    pub start: Start,
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
    /// Stop once every problem is solved; otherwise train the whole budget, for the margin to
    /// grow toward its maximum (Fig. 4c) or the students to settle (Fig. 5).
    pub stop_when_solved: bool,
    /// Keep the trained (unprojected) weights of every check, for Fig. 3's path.
    pub record_weights: bool,
    pub seed: u64,
}

impl DiscoParams {
    pub fn n(&self) -> usize {
        match &self.constraint {
            Constraint::Distributions(pops) => pops.iter().map(|p| p.size).sum(),
            Constraint::Signs { n, .. } | Constraint::Free { n } => *n,
        }
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
    /// The largest smallest margin of the projected weights at any check: the margin DisCo-SGD
    /// reached (a solution's, where it is positive).
    pub best_margin: Vec<f32>,
    pub steps: usize,
    /// [problems, N] at the end, as trained.
    pub weights: Vec<f32>,
    /// [problems, N] at the last check, projected onto the constraint: the solution judged.
    pub projected: Vec<f32>,
    pub beta: Vec<f32>,
    /// With `record_weights`: (step, trained weights [problems, N]) at the start and every check.
    pub path: Vec<(usize, Vec<f32>)>,
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

/// Labels from each problem's teacher: sgn(w_t . xi / ||w_t|| + eta), the noise from the
/// problem's own stream of the seed.
fn teacher_labels(
    xi: &[f32],
    teacher: &[f32],
    noise_sd: f32,
    (problems, patterns, n): (usize, usize, usize),
    seed: u64,
) -> Vec<f32> {
    let mut labels = Vec::with_capacity(problems * patterns);
    for b in 0..problems {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7eac_4e25);
        rng.set_stream(b as u64);
        let w = &teacher[b * n..][..n];
        let norm = w.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        labels.extend(xi[b * patterns * n..][..patterns * n].chunks(n).map(|x| {
            let field: f64 = x
                .iter()
                .zip(w)
                .map(|(x, w)| f64::from(*x) * f64::from(*w))
                .sum();
            let noise: f64 = StandardNormal.sample(&mut rng);
            let norm = if norm > 0.0 { norm } else { 1.0 };
            if field / norm + f64::from(noise_sd) * noise >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }));
    }
    labels
}

/// Initial weights, per problem from its own stream of the seed.
fn initial_weights(params: &DiscoParams, targets: &[Vec<f32>]) -> Vec<f32> {
    let n = params.n();
    if let Start::Constant(v) = params.start {
        return vec![v; params.problems * n];
    }
    let mut w = Vec::with_capacity(params.problems * n);
    for b in 0..params.problems {
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x5eed_d15c);
        rng.set_stream(b as u64);
        match &params.constraint {
            Constraint::Distributions(_) => {
                for t in targets {
                    let mut shuffled = t.clone();
                    rand::seq::SliceRandom::shuffle(shuffled.as_mut_slice(), &mut rng);
                    w.extend(shuffled);
                }
            }
            Constraint::Signs { signs, .. } => w.extend(signs[b * n..][..n].iter().map(|s| {
                let z: f32 = StandardNormal.sample(&mut rng);
                if *s == 0.0 {
                    z
                } else {
                    s * z.abs()
                }
            })),
            Constraint::Free { .. } => {
                w.extend((0..n).map(|_| -> f32 { StandardNormal.sample(&mut rng) }))
            }
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
    let populations: &[Population] = match &params.constraint {
        Constraint::Distributions(pops) => pops,
        _ => &[],
    };
    let targets: Vec<Vec<f32>> = populations
        .iter()
        .map(|pop| pop.distribution.targets(pop.size))
        .collect();
    let (xi, mut labels) = random_task(b, p, n, params.seed);
    if let Labels::Teacher { weights, noise_sd } = &params.labels {
        labels = teacher_labels(&xi, weights, *noise_sd, (b, p, n), params.seed);
    }
    let xi = scope.alloc_from(backend, "patterns xi", &xi)?;
    let labels = scope.alloc_from(backend, "labels zeta", &labels)?;
    let w = scope.alloc_from(backend, "weights w", &initial_weights(params, &targets))?;
    let signs = match &params.constraint {
        Constraint::Signs { signs, .. } => Some(scope.alloc_from(backend, "signs", signs)?),
        _ => None,
    };
    let projected = scope.alloc::<f32>(backend, "projected weights", b * n)?;
    let beta = scope.alloc_from(backend, "norm beta", &vec![params.beta0; b])?;
    let batch = params.batch.min(p);
    let h = scope.alloc::<f32>(backend, "fields h", b * p.max(batch))?;
    let stats = scope.alloc::<f32>(backend, "margin stats", 2 * b)?;
    let largest = populations.iter().map(|pop| pop.size).max().unwrap_or(0);
    let sorted = scope.alloc::<f32>(backend, "sorted weights", b * largest)?;
    let perm = scope.alloc::<u32>(backend, "ranks", b * largest)?;
    let work = scope.alloc::<u32>(backend, "sort work", b * largest)?;
    let nan_rows = scope.alloc_from(backend, "rows holding NaN", &vec![0u32; b])?;
    let mut target_bufs = Vec::new();
    let mut rows = Vec::new();
    let mut offset = 0;
    for (pop, t) in populations.iter().zip(&targets) {
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
        best_margin: vec![f32::NEG_INFINITY; b],
        steps: 0,
        weights: Vec::new(),
        projected: Vec::new(),
        beta: Vec::new(),
        path: Vec::new(),
    };
    if params.record_weights {
        run.path.push((0, backend.download(w, 0, b * n)?));
    }
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
            if let Some(signs) = signs {
                backend.hold_signs(signs, w, spec);
            }
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
        // A NaN weight makes the fields it enters NaN, and with them beta's gradient; the sort
        // flags it too where there is one.
        let betas = backend.download(beta, 0, b)?;
        let mut nan_row = betas.iter().position(|v| !v.is_finite());
        if nan_row.is_none() && !rows.is_empty() {
            nan_row = backend
                .download(nan_rows, 0, b)?
                .iter()
                .position(|f| *f != 0);
        }
        if let Some(r) = nan_row {
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
            run.best_margin[k] = run.best_margin[k].max(st[0]);
            if run.solved_at[k].is_none() && st[1] == 0.0 && st[0] >= params.kappa {
                run.solved_at[k] = Some(run.steps);
            }
        }
        if params.record_weights {
            run.path.push((run.steps, backend.download(w, 0, b * n)?));
        }
        if params.stop_when_solved && run.solved_at.iter().all(Option::is_some) {
            break;
        }
    }
    run.weights = backend.download(w, 0, b * n)?;
    run.projected = backend.download(projected, 0, b * n)?;
    run.beta = backend.download(beta, 0, b)?;
    Ok(run)
}
