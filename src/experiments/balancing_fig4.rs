//! Fig. 4 of paper 001 (Appendix D): networks trained by BPTT on context-dependent integration
//! (CDI) with an l2 penalty lambda sum J^2; the norm of the neural gradients (costs J^2) along
//! training against a row-permutation null; then networks trained at one lambda balanced with the
//! robustness cost (sigma_j^2 measured on held-out trials) and run with hidden noise eps. Each
//! trainer's buffers are freed once it is done, so that memory stays flat from one to the next.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{fits, Experiment, Plot, Report};
use crate::analysis::balance::{gain_moments, neural_gradients, sensitivity};
use crate::backend::balance::{Aggregate, Alpha};
use crate::backend::rate::NoiseOn;
use crate::backend::{Backend, BackendInfo, BufferOps, Phi};
use crate::error::DaleError;
use crate::models::balancing::{
    balance, balance_with_io_paths, BalanceParams, Balanced, Method, Networks, Topology,
};
use crate::models::bptt::{Dynamics, HiddenNoise, Net, Trainer, Trials};
use crate::scene::plot::{Marks, Panel, Series};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CdiParams {
    pub n: usize,
    /// Time steps per trial, T.
    pub trial_steps: usize,
    /// Trials per training iteration.
    pub trials: usize,
    pub learning_rate: f32,
    pub lambdas: Vec<f32>,
    /// dt / tau of the network.
    pub leak: f32,
    /// Standard deviation of the Gaussian noise on each input channel and step.
    pub input_noise: f32,
    /// Networks trained at `balance_lambda` for Fig. 4b (the first is the one of Fig. 4a).
    pub networks: usize,
    pub balance_lambda: f32,
    /// Hidden-noise levels eps of Fig. 4b (standard deviation added to x per step).
    pub noise_levels: Vec<f32>,
    /// Held-out trials for sigma^2 and for the test losses.
    pub test_trials: usize,
    /// Iterations between two measurements of ||g|| along training.
    pub record_every: usize,
    /// Row permutations of C for the null distribution of ||g||.
    pub permutations: usize,
    /// Iterations of each balancing: flow steps for the paper's cost on the whole network
    /// (Appendix D takes the end of a numerical solution of the flow), solver sweeps for the
    /// variants that have a finite balanced point.
    pub balance_iterations: usize,
    /// Where the hidden noise eps of Fig. 4b enters: "state" (default; added to x each step, so
    /// that it also reaches the readout y = W_out x directly) or "rates" (added to r = phi(x),
    /// reaching the other neurons through J and the readout only through them). Appendix D says
    /// "injected into the recurrent neural dynamics".
    #[serde(default)]
    pub hidden_noise_on: NoiseOn,
    /// The balancings of Fig. 4b, run side by side on every network (default: the paper's cost
    /// on the whole network, the same by strongly connected components, and the readout-aware
    /// cost).
    #[serde(default = "Variant::defaults")]
    pub variants: Vec<Variant>,
    /// What the penalty lambda sum J^2 is added to: "mean_loss" (default; the loss dale trains,
    /// the mean squared error), or "summed_loss", the sum of squared errors that Appendix D
    /// writes, so that lambda is divided by the T x trials x 2 errors summed. The learning rate
    /// stays on the mean's scale (on the sum, 0.003 diverges in the first iterations).
    #[serde(default)]
    pub lambda_relative_to: LambdaScale,
}

/// What lambda is relative to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaScale {
    #[default]
    MeanLoss,
    SummedLoss,
}

impl CdiParams {
    /// The networks of Appendix D: ReLU, dt / tau = leak.
    fn dynamics(&self) -> Dynamics {
        Dynamics {
            leak: self.leak,
            phi: Phi::Relu,
        }
    }

    /// The penalty applied to the mean-squared-error loss for `lambda` as given.
    fn lambda_applied(&self, lambda: f32) -> f32 {
        match self.lambda_relative_to {
            LambdaScale::MeanLoss => lambda,
            // The CDI task has 2 outputs.
            LambdaScale::SummedLoss => lambda / (self.trial_steps * self.trials * 2) as f32,
        }
    }
}

/// Which cost Fig. 4b balances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RobustnessCost {
    #[default]
    Robustness,
    Readout,
    ReadoutAndInput,
}

/// One balancing of Fig. 4b, with the choices Appendix D leaves open.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name in the summary and the plot.
    pub label: String,
    /// "robustness" (default): the paper's cost, eq. 13; "readout": eq. 13 plus the readout
    /// path that the transformation rescales, on sum h = 0; "readout_and_input": the input path
    /// too (models::balancing::balance_with_io_paths).
    #[serde(default)]
    pub cost: RobustnessCost,
    /// For the robustness cost: "components" (default), each strongly connected component of
    /// the cost graph balanced on its own and neurons on no cycle (such as neurons silent on the
    /// held-out trials) held at h = 0; "whole", the paper's flow on the whole network, which has
    /// no finite balanced point when a neuron is silent. The readout-aware costs balance the
    /// network with the world node, which every neuron reaches, so they take no topology.
    #[serde(default)]
    pub topology: Option<Topology>,
    /// Hidden noise during the held-out run that measures sigma^2 (0: noiseless, as Appendix D
    /// reads). With 0, neurons the task never drives get sigma^2 = 0 and their outgoing
    /// synapses cost nothing.
    #[serde(default)]
    pub gain_noise: f32,
}

impl Variant {
    fn defaults() -> Vec<Variant> {
        let robustness = |label: &str, topology| Variant {
            label: label.into(),
            cost: RobustnessCost::Robustness,
            topology: Some(topology),
            gain_noise: 0.0,
        };
        vec![
            robustness("paper: eq. 13, whole network", Topology::Whole),
            robustness("eq. 13 by components", Topology::Components),
            Variant {
                label: "readout-aware".into(),
                cost: RobustnessCost::Readout,
                topology: None,
                gain_noise: 0.0,
            },
        ]
    }

    fn topology(&self) -> Topology {
        self.topology.unwrap_or_default()
    }
}

impl CdiParams {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        let err = |f: &str, v: String, allowed: &str| {
            Err(DaleError::scene(
                format!("{at}.{f}"),
                format!("{f} = {v}; allowed: {allowed}"),
            ))
        };
        for (f, v) in [
            ("n", self.n),
            ("trial_steps", self.trial_steps),
            ("trials", self.trials),
            ("networks", self.networks),
            ("test_trials", self.test_trials),
            ("record_every", self.record_every),
            ("balance_iterations", self.balance_iterations),
        ] {
            if v == 0 {
                return err(f, v.to_string(), "an integer >= 1");
            }
        }
        if !(self.leak > 0.0 && self.leak <= 1.0) {
            return err("leak", self.leak.to_string(), "0 < leak <= 1 (dt / tau)");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return err(
                "learning_rate",
                self.learning_rate.to_string(),
                "a finite value > 0",
            );
        }
        for (f, list) in [
            ("lambdas", &self.lambdas),
            ("noise_levels", &self.noise_levels),
        ] {
            if list.is_empty() || list.iter().any(|v| !(*v >= 0.0 && v.is_finite())) {
                return err(
                    f,
                    format!("{list:?}"),
                    "a non-empty list of finite values >= 0",
                );
            }
        }
        if self.variants.is_empty() {
            return err("variants", "[]".into(), "a non-empty list of balancings");
        }
        for (i, v) in self.variants.iter().enumerate() {
            let field = |f: &str| format!("variants[{i}].{f}");
            if v.label.trim().is_empty() || slug(&v.label).is_empty() {
                return err(
                    &field("label"),
                    format!("{:?}", v.label),
                    "a name with a letter or digit",
                );
            }
            if let Some(other) = self.variants[..i]
                .iter()
                .find(|o| slug(&o.label) == slug(&v.label))
            {
                return err(
                    &field("label"),
                    format!("{:?}", v.label),
                    &format!(
                        "a name unlike the others' (it reads as {:?}, the check names' key)",
                        other.label
                    ),
                );
            }
            if !(v.gain_noise >= 0.0 && v.gain_noise.is_finite()) {
                return err(
                    &field("gain_noise"),
                    v.gain_noise.to_string(),
                    "a finite value >= 0",
                );
            }
            if v.cost != RobustnessCost::Robustness && v.topology.is_some() {
                return err(
                    &field("topology"),
                    format!("{:?} with cost {:?}", v.topology(), v.cost),
                    "no topology with a readout-aware cost (its network with the world node is balanced whole)",
                );
            }
        }
        if !(self.balance_lambda >= 0.0 && self.input_noise >= 0.0) {
            return err(
                "balance_lambda",
                self.balance_lambda.to_string(),
                "values >= 0 (and input_noise >= 0)",
            );
        }
        Ok(())
    }

    pub fn smoke(&mut self) {
        self.n = self.n.min(32);
        self.trial_steps = self.trial_steps.min(10);
        self.trials = self.trials.min(8);
        self.test_trials = self.test_trials.min(16);
        self.networks = self.networks.min(2);
        self.permutations = self.permutations.min(20);
        self.record_every = self.record_every.min(5);
        self.balance_iterations = self.balance_iterations.min(200);
    }
}

/// A batch of CDI trials: inputs [T, B, 6] (context a, signals s1, s2, each a one-hot pair plus
/// Gaussian noise) and targets [T, B, 2]: z(t) = (1/T) sum_{t' < t} s^(c)(t'), the running
/// integral over the trial of the signal the context selects (a = (0, 1): s1; a = (1, 0): s2).
pub fn cdi_trials(
    rng: &mut ChaCha8Rng,
    trials: usize,
    steps: usize,
    noise: f32,
) -> (Vec<f32>, Vec<f32>) {
    let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
    let mut u = vec![0.0f32; steps * trials * 6];
    let mut z = vec![0.0f32; steps * trials * 2];
    for b in 0..trials {
        let bits: [usize; 3] = std::array::from_fn(|_| usize::from(rng.random::<bool>()));
        let mut integral = [0.0f32; 2];
        for t in 0..steps {
            let mut values = [0.0f32; 6];
            for (pair, &bit) in bits.iter().enumerate() {
                values[2 * pair + bit] = 1.0;
            }
            for v in &mut values {
                *v += noise * normal.sample(rng);
            }
            u[(t * trials + b) * 6..][..6].copy_from_slice(&values);
            // Context bit 1 is a = (0, 1): integrate s1 (channels 2, 3); else s2 (channels 4, 5).
            let signal = if bits[0] == 1 {
                &values[2..4]
            } else {
                &values[4..6]
            };
            for (acc, s) in integral.iter_mut().zip(signal) {
                *acc += s / steps as f32;
            }
            z[(t * trials + b) * 2..][..2].copy_from_slice(&integral);
        }
    }
    (u, z)
}

/// J ~ N(0, 1/N) (Appendix D), W_in ~ N(0, 1), W_out ~ N(0, 1/N).
fn initial_net(n: usize, seed: u64) -> Net {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = |len: usize, std: f32| -> Vec<f32> {
        let d = Normal::new(0.0f32, std).expect("std is finite");
        (0..len).map(|_| d.sample(&mut rng)).collect()
    };
    let s = 1.0 / (n as f32).sqrt();
    Net {
        n,
        m: 6,
        k: 2,
        j: draw(n * n, s),
        w_in: draw(n * 6, 1.0),
        w_out: draw(2 * n, s),
    }
}

fn grad_norm(n: usize, c: &[f64]) -> f64 {
    neural_gradients(n, c)
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
}

fn sum_sq(w: &[f32]) -> f64 {
    w.iter().map(|v| f64::from(*v) * f64::from(*v)).sum()
}

fn squared(j: &[f32]) -> Vec<f64> {
    j.iter().map(|v| f64::from(*v) * f64::from(*v)).collect()
}

struct Trained {
    net: Net,
    loss: Vec<f64>,
    grad_norm: Vec<(usize, f64)>,
}

fn train(
    be: &mut dyn Backend,
    p: &CdiParams,
    lambda: f32,
    iterations: usize,
    seed: u64,
) -> Result<Trained, DaleError> {
    let net = initial_net(p.n, seed);
    let dynamics = p.dynamics();
    let mut trainer = Trainer::new(be, &net, dynamics, p.trials, p.trial_steps, iterations)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a5c);
    let mut grad_norms = vec![(0, grad_norm(p.n, &squared(&net.j)))];
    for it in 0..iterations {
        let (u, z) = cdi_trials(&mut rng, p.trials, p.trial_steps, p.input_noise);
        trainer.set_trials(
            be,
            &Trials {
                trials: p.trials,
                steps: p.trial_steps,
                inputs: &u,
                targets: &z,
            },
        )?;
        trainer.forward(be, HiddenNoise::NONE, 0);
        trainer.backward(be, 2 * it);
        trainer.step(be, p.learning_rate, p.lambda_applied(lambda));
        if (it + 1) % p.record_every == 0 || it + 1 == iterations {
            let j = be.download(trainer.j, 0, p.n * p.n)?;
            grad_norms.push((it + 1, grad_norm(p.n, &squared(&j))));
        }
    }
    let hist = be.download(trainer.history, 0, 2 * iterations)?;
    let loss: Vec<f64> = (0..iterations)
        .map(|i| trainer.loss_from(hist[2 * i]))
        .collect();
    let net = trainer.weights(be)?;
    trainer.free(be);
    if let Some(i) = loss.iter().position(|v| !v.is_finite()) {
        return Err(DaleError::Diverged {
            step: i,
            quantity: format!("the training loss at lambda = {lambda}"),
            value: hist[2 * i],
            kept: 0,
        });
    }
    Ok(Trained {
        net,
        loss,
        grad_norm: grad_norms,
    })
}

/// Runs `net` once on `trials` (a trainer of one iteration, freed after) and returns what `run`
/// reads from it.
fn on_trials<T>(
    be: &mut dyn Backend,
    p: &CdiParams,
    net: &Net,
    trials: &Trials,
    run: impl FnOnce(&mut Trainer, &mut dyn Backend) -> Result<T, DaleError>,
) -> Result<T, DaleError> {
    let mut t = Trainer::new(be, net, p.dynamics(), trials.trials, trials.steps, 1)?;
    let result = t.set_trials(be, trials).and_then(|()| run(&mut t, be));
    t.free(be);
    result
}

/// Test loss of `net` on fixed held-out trials with hidden noise eps (same noise draws for every
/// network: seed fixed).
fn test_loss(
    be: &mut dyn Backend,
    p: &CdiParams,
    net: &Net,
    trials: &Trials,
    eps: f32,
) -> Result<f64, DaleError> {
    let noise = HiddenNoise {
        std: eps,
        on: p.hidden_noise_on,
    };
    on_trials(be, p, net, trials, |t, be| t.loss(be, noise, 99))
}

pub struct Fig4 {
    pub params: CdiParams,
    /// Training iterations.
    pub steps: usize,
    pub seed: u64,
}

impl Experiment for Fig4 {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        let p = &self.params;
        let steps_times_n = |trials: usize| p.trial_steps.checked_mul(trials)?.checked_mul(p.n);
        fits(backend, "params.n", p.n, "J holds n x n values", |n| {
            n.checked_mul(n)
        })?;
        fits(
            backend,
            "params.trials",
            p.trials,
            "a trainer records trial_steps x trials x n states",
            steps_times_n,
        )?;
        fits(
            backend,
            "params.test_trials",
            p.test_trials,
            "the held-out run records trial_steps x test_trials x n states",
            steps_times_n,
        )
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        _: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        run(&self.params, self.steps, self.seed, backend)
    }
}

/// Relative difference of the test losses at eps = 0 below which the task counts as preserved:
/// the two runs differ only by f32 roundings of the rescaled weights (~1e-7 each), accumulated
/// over at most 50 steps, far below 1e-4.
const TASK_KEPT_TOL: f64 = 1e-4;

/// The flow stops when ||g|| falls to this fraction of its start.
const BALANCE_TOL: f64 = 1e-6;

/// ||g|| at the end, relative to its start, below which it counts as converged: the solver stops
/// at BALANCE_TOL; f32 costs put a floor near 1e-7 under it, and the paper's flow on the whole
/// network (no finite point) ends at 3e-4 to 6e-4 after 5,000 steps.
const CONVERGED_TOL: f64 = 1e-5;

fn run(
    p: &CdiParams,
    iterations: usize,
    seed: u64,
    backend: &mut dyn Backend,
) -> Result<Report, DaleError> {
    let n = p.n;
    let mut report = Report::default();
    // Fig. 4a: one network per lambda, same initial weights and trial stream.
    let mut trained = Vec::new();
    for &lambda in &p.lambdas {
        trained.push(train(backend, p, lambda, iterations, seed)?);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e11);
    let mut null_figures = Vec::new();
    let mut significant = Vec::new();
    for (lambda, t) in p.lambdas.iter().zip(&trained) {
        let c = squared(&t.net.j);
        let actual = grad_norm(n, &c);
        let null: Vec<f64> = (0..p.permutations)
            .map(|_| {
                let mut rows: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    rows.swap(i, rng.random_range(0..=i));
                }
                let permuted: Vec<f64> = (0..n * n).map(|e| c[rows[e / n] * n + e % n]).collect();
                grad_norm(n, &permuted)
            })
            .collect();
        let (first, last) = (
            t.loss.iter().take(10).sum::<f64>() / t.loss.len().min(10) as f64,
            t.loss.iter().rev().take(10).sum::<f64>() / t.loss.len().min(10) as f64,
        );
        report.check(
            format!("training_lowered_the_loss_at_lambda_{lambda}"),
            last < first,
        );
        // With lambda on the summed loss the penalty is too weak to claim that J, and ||g||
        // with it, shrinks.
        if *lambda > 0.0 && p.lambda_relative_to == LambdaScale::MeanLoss {
            report.check(
                format!("grad_norm_fell_at_lambda_{lambda}"),
                actual < t.grad_norm[0].1,
            );
        }
        let mean = null.iter().sum::<f64>() / null.len().max(1) as f64;
        let sd = (null.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / null.len().max(1) as f64)
            .sqrt();
        // One-sided empirical p-value of ||g|| below the null, (count + 1) / (permutations + 1).
        let below = null.iter().filter(|v| **v <= actual).count();
        let p_value = (below + 1) as f64 / (null.len() + 1) as f64;
        if *lambda > 0.0 {
            significant.push(p_value < 0.05);
        }
        null_figures.push(json!({
            "lambda": lambda,
            "lambda_applied_to_mean_loss": p.lambda_applied(*lambda),
            "grad_norm_start": t.grad_norm[0].1,
            "grad_norm_end": actual,
            "grad_norm_end_over_null_mean": actual / mean,
            "p_value_below_null": p_value,
            "null_mean": mean,
            "null_sd": sd,
            "z_score": (actual - mean) / sd,
            "loss_first_10": first,
            "loss_last_10": last,
        }));
    }

    // Fig. 4b: networks trained at balance_lambda, each balanced by every variant and run with
    // the same hidden noise draws as the original.
    let mut test_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4b4b);
    let (held_u, held_z) = cdi_trials(&mut test_rng, p.test_trials, p.trial_steps, p.input_noise);
    let held = Trials {
        trials: p.test_trials,
        steps: p.trial_steps,
        inputs: &held_u,
        targets: &held_z,
    };
    let (test_u, test_z) = cdi_trials(&mut test_rng, p.test_trials, p.trial_steps, p.input_noise);
    let test = Trials {
        trials: p.test_trials,
        steps: p.trial_steps,
        inputs: &test_u,
        targets: &test_z,
    };
    let (variants, eps_count) = (p.variants.len(), p.noise_levels.len());
    // [networks, eps] and [variants, networks, eps].
    let mut original_loss = Vec::new();
    let mut ratio = vec![0.0f64; variants * p.networks * eps_count];
    let mut variant_networks: Vec<Vec<serde_json::Value>> = vec![Vec::new(); variants];
    for net_idx in 0..p.networks {
        let original = match p.lambdas.iter().position(|l| *l == p.balance_lambda) {
            Some(i) if net_idx == 0 => trained[i].net.clone(),
            _ => {
                train(
                    backend,
                    p,
                    p.balance_lambda,
                    iterations,
                    seed + 1000 * (net_idx as u64 + 1),
                )?
                .net
            }
        };
        let losses: Vec<f64> = p
            .noise_levels
            .iter()
            .map(|&eps| test_loss(backend, p, &original, &test, eps))
            .collect::<Result<_, _>>()?;
        // Gain moments per gain_noise asked for, measured once each.
        let mut gains: Vec<(f32, Vec<f64>, Vec<f64>)> = Vec::new();
        for (v_idx, v) in p.variants.iter().enumerate() {
            if !gains.iter().any(|(g, _, _)| *g == v.gain_noise) {
                let (mu, sigma2) = measured_gains(backend, p, &original, &held, v.gain_noise)?;
                gains.push((v.gain_noise, mu, sigma2));
            }
            let (_, mu, sigma2) = gains
                .iter()
                .find(|(g, _, _)| *g == v.gain_noise)
                .expect("measured above");
            let balanced = balance_variant(backend, p, v, &original, sigma2)?;
            let balanced_net = Net {
                j: balanced.j.clone(),
                w_in: balanced.w_in.clone(),
                w_out: balanced.w_out.clone(),
                ..original.clone()
            };
            let slug = format!("{}_network_{net_idx}", slug(&v.label));
            let mut rows = Vec::new();
            for (e, (&eps, &lo)) in p.noise_levels.iter().zip(&losses).enumerate() {
                let lb = test_loss(backend, p, &balanced_net, &test, eps)?;
                ratio[(v_idx * p.networks + net_idx) * eps_count + e] = lb / lo;
                rows.push(json!({ "eps": eps, "original": lo, "balanced": lb, "ratio": lb / lo }));
                if eps == 0.0 {
                    report.check(
                        format!("{slug}_task_preserved_at_eps_0"),
                        (lb / lo - 1.0).abs() <= TASK_KEPT_TOL,
                    );
                }
            }
            let last = |v: &[f64]| v[v.len() - 1];
            let (cost_before, cost_after) = (balanced.total_cost[0], last(&balanced.total_cost));
            let grad_norm_end = last(&balanced.grad_norm) / balanced.grad_norm[0];
            report.check(
                format!("{slug}_balancing_lowered_its_cost"),
                cost_after < cost_before,
            );
            // Where a finite balanced point exists (within each component, or with the world
            // node, which every neuron reaches), the flow reaches it.
            if v.cost != RobustnessCost::Robustness || v.topology() == Topology::Components {
                report.check(
                    format!("{slug}_grad_norm_converged"),
                    grad_norm_end <= CONVERGED_TOL,
                );
            }
            let (s_before, s_after) = (
                sensitivity(&original.j, mu, sigma2),
                sensitivity(&balanced.j, mu, sigma2),
            );
            // Prop. 2: with sigma^2 fixed, the sensitivity (eq. 9) is the robustness cost of the
            // whole network plus terms the transformation keeps, so it falls with that cost. By
            // components, the synapses between components may cost more; the readout-aware
            // costs trade it against the readout's gain.
            if v.cost == RobustnessCost::Robustness && v.topology() == Topology::Whole {
                report.check(format!("{slug}_sensitivity_fell"), s_after < s_before);
            }
            variant_networks[v_idx].push(json!({
                "network": net_idx,
                "total_cost_original": cost_before,
                "total_cost_balanced": cost_after,
                "sensitivity_original": s_before,
                "sensitivity_balanced": s_after,
                "silent_neurons": sigma2.iter().filter(|v| **v == 0.0).count(),
                // Noise in x reaches y directly through W_out, which the transformation scales
                // by e^h and the sensitivity S (eq. 9) leaves out (section 3.3).
                "readout_noise_gain_sum_w_out_sq": { "original": sum_sq(&original.w_out), "balanced": sum_sq(&balanced.w_out) },
                "largest_h": balanced.h.iter().fold(f32::MIN, |m, v| m.max(*v)),
                "neurons_held_at_h_0": balanced.splits.first().map_or(0, |s| s.held.len()),
                "balance_iterations": balanced.iterations,
                "grad_norm_relative_at_end": grad_norm_end,
                "losses": rows,
            }));
        }
        original_loss.extend(losses.iter().map(|v| *v as f32));
    }

    let spread = |v_idx: usize, e: usize| -> Spread {
        Spread::of((0..p.networks).map(|k| ratio[(v_idx * p.networks + k) * eps_count + e]))
    };
    let mut variant_figures = Vec::new();
    for (v_idx, (v, networks)) in p.variants.iter().zip(variant_networks).enumerate() {
        let by_eps: Vec<Spread> = (0..eps_count).map(|e| spread(v_idx, e)).collect();
        // A finding, not a check: it holds or fails with the variant (README, Fig. 4b).
        let reproduced = p
            .noise_levels
            .iter()
            .zip(&by_eps)
            .filter(|(e, _)| **e > 0.0)
            .all(|(_, s)| s.mean < 1.0);
        variant_figures.push(json!({
            "label": v.label,
            "cost": v.cost,
            "topology": v.cost.eq(&RobustnessCost::Robustness).then(|| v.topology()),
            "gain_noise": v.gain_noise,
            "loss_ratio_balanced_over_original": p.noise_levels.iter().zip(&by_eps).map(|(e, s)| json!({
                "eps": e, "mean": s.mean, "sd": s.sd, "min": s.min, "max": s.max, "networks_below_1": s.below_1,
            })).collect::<Vec<_>>(),
            "paper_direction_reproduced": reproduced,
            "networks": networks,
        }));
    }
    report.figures = json!({
        "fig4a": {
            "networks": null_figures,
            "paper": "||g|| is held fixed by gradient descent when lambda = 0 and falls when lambda > 0, well below the row-permutation null",
            "lambda_relative_to": p.lambda_relative_to,
            // A finding, not a check: the l2 penalty shrinks J, and the null's ||g|| with it.
            "paper_significance_reproduced": !significant.is_empty() && significant.iter().all(|s| *s),
            "significance": "one-sided empirical p-value of ||g|| against the row-permutation null, below 0.05 for every lambda > 0",
        },
        "fig4b": {
            "lambda": p.balance_lambda,
            "networks": p.networks,
            "hidden_noise_on": p.hidden_noise_on,
            "variants": variant_figures,
            "paper": "ratio 1 at eps = 0 (task preserved), falling below 1 as eps grows",
            "paper_direction": "the mean ratio over the networks below 1 at every eps > 0",
        },
        "iterations": iterations,
    });
    let loss: Vec<f32> = trained
        .iter()
        .flat_map(|t| t.loss.iter().map(|v| *v as f32))
        .collect();
    let gn: Vec<f32> = trained
        .iter()
        .flat_map(|t| t.grad_norm.iter().map(|(_, v)| *v as f32))
        .collect();
    report.array("training_loss.npy", vec![trained.len(), iterations], loss);
    report.array(
        "grad_norm.npy",
        vec![trained.len(), trained[0].grad_norm.len()],
        gn,
    );
    report.array(
        "test_loss_original.npy",
        vec![p.networks, eps_count],
        original_loss,
    );
    report.array(
        "loss_ratio.npy",
        vec![variants, p.networks, eps_count],
        ratio.iter().map(|v| *v as f32).collect(),
    );
    let gn_panel = Panel {
        title: "Fig. 4a: ||g|| (costs J^2) along training".into(),
        x_label: "iteration".into(),
        y_label: "||g||".into(),
        series: p
            .lambdas
            .iter()
            .zip(&trained)
            .map(|(l, t)| Series {
                label: format!("lambda = {l}"),
                points: t.grad_norm.iter().map(|(i, v)| (*i as f64, *v)).collect(),
                band: Vec::new(),
            })
            .collect(),
        log_y: false,
        marks: Marks::Lines,
    };
    let ratio_panel = Panel {
        title: format!(
            "Fig. 4b: test loss balanced / original, lambda = {}, {} networks (mean, min to max)",
            p.balance_lambda, p.networks
        ),
        x_label: "hidden noise eps".into(),
        y_label: "loss ratio".into(),
        series: p
            .variants
            .iter()
            .enumerate()
            .map(|(v_idx, v)| {
                let by_eps: Vec<(f64, Spread)> = p
                    .noise_levels
                    .iter()
                    .enumerate()
                    .map(|(e, eps)| (f64::from(*eps), spread(v_idx, e)))
                    .collect();
                Series {
                    label: v.label.clone(),
                    points: by_eps.iter().map(|(x, s)| (*x, s.mean)).collect(),
                    band: by_eps.iter().map(|(x, s)| (*x, s.min, s.max)).collect(),
                }
            })
            .chain(std::iter::once(Series {
                label: "1: no change".into(),
                points: p
                    .noise_levels
                    .iter()
                    .map(|e| (f64::from(*e), 1.0))
                    .collect(),
                band: Vec::new(),
            }))
            .collect(),
        log_y: true,
        marks: Marks::Lines,
    };
    report.plots.push(Plot {
        file: "balancing_fig4.png".into(),
        panels: vec![gn_panel, ratio_panel],
    });
    Ok(report)
}

/// The gain moments mu_j, sigma_j^2 = <phi'(x_j)^2> over the held-out trials' states, run with
/// hidden noise `gain_noise`.
fn measured_gains(
    backend: &mut dyn Backend,
    p: &CdiParams,
    net: &Net,
    held: &Trials,
    gain_noise: f32,
) -> Result<(Vec<f64>, Vec<f64>), DaleError> {
    let states = on_trials(backend, p, net, held, |t, be| {
        t.forward(be, HiddenNoise::on_state(gain_noise), 7);
        t.states(be)
    })?;
    Ok(gain_moments(Phi::Relu, p.n, &states))
}

/// `net` balanced by variant `v` with gains sigma^2. The paper's cost on the whole network runs
/// the flow with half its largest stable step, as Appendix D takes its end point (there is no
/// finite balanced point when a neuron is silent); the variants that have one reach it with the
/// direct solver (the flow takes more than 5,000 steps to reach it with the readout path).
fn balance_variant(
    backend: &mut dyn Backend,
    p: &CdiParams,
    v: &Variant,
    net: &Net,
    sigma2: &[f64],
) -> Result<Balanced, DaleError> {
    let sigma2: Vec<f32> = sigma2.iter().map(|v| *v as f32).collect();
    let nets = Networks {
        groups: 1,
        n: p.n,
        j: &net.j,
        w_in: Some((6, &net.w_in)),
        w_out: Some((2, &net.w_out)),
        alpha: Alpha::PerColumn { shared: true },
        alpha_values: &sigma2,
    };
    let input = v.cost == RobustnessCost::ReadoutAndInput;
    let method = if v.cost == RobustnessCost::Robustness && v.topology() == Topology::Whole {
        Method::Flow {
            dt: 0.5 * nets.largest_stable_dt(2.0),
        }
    } else {
        Method::Solver
    };
    let params = BalanceParams {
        p: 2.0,
        aggregate: Aggregate::Sum,
        method,
        max_iterations: p.balance_iterations,
        tol: BALANCE_TOL,
        h_every: 0,
        topology: v.topology(),
    };
    match v.cost {
        RobustnessCost::Robustness => balance(backend, &nets, &params),
        RobustnessCost::Readout | RobustnessCost::ReadoutAndInput => {
            balance_with_io_paths(backend, &nets, &params, input)
        }
    }
}

/// Mean, standard deviation, extremes and count below 1 of the ratios over the networks.
struct Spread {
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
    below_1: usize,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64> + Clone) -> Self {
        let count = values.clone().count().max(1) as f64;
        let mean = values.clone().sum::<f64>() / count;
        Spread {
            mean,
            sd: (values.clone().map(|v| (v - mean).powi(2)).sum::<f64>() / count).sqrt(),
            min: values.clone().fold(f64::INFINITY, f64::min),
            max: values.clone().fold(f64::NEG_INFINITY, f64::max),
            below_1: values.filter(|v| *v < 1.0).count(),
        }
    }
}

/// A label as a check-name fragment: lower case, runs of other characters as one '_'.
fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
