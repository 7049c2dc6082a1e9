//! 003 Fig. 2d, for any distribution a scene names: the capacity of perceptrons held to a weight
//! distribution, measured by DisCo-SGD on independent problems at loads around the theory's
//! alpha_c = alpha_0(0) <dw/dx>^2 (eq. 3), against that theory. The fraction of problems solved
//! (every pattern on its side, with the weights exactly on the distribution) falls from 1 to 0
//! across the loads; its 50% point is the measured capacity, and the loads between 90% and 10%
//! solved its finite-N width.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::balancing_fig3::positive;
use super::disco_setup::{
    ascending, capacity, histogram, patterns, patterns_fit, sizes, DistributionSpec, Target,
    Training,
};
use super::{Experiment, Plot, Report};
use crate::analysis::disco::{jacobian_factor, EiLognormal};
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::disco::{train, Constraint, DiscoParams, Population};
use crate::scene::plot::{Marks, Panel, Series};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityParams {
    /// Weights per perceptron.
    pub n: usize,
    /// Independent problems per load.
    pub problems: usize,
    pub distributions: Vec<DistributionSpec>,
    /// Loads as multiples of each distribution's theoretical capacity, ascending.
    pub load_ratios: Vec<f64>,
    pub training: Training,
    /// Also measure the max margin kappa(alpha) (Fig. 4c): every problem trains the whole step
    /// budget, solved or not, and the best margin of its solution is set beside eq. 3 (or 10)
    /// solved for kappa at its load.
    #[serde(default)]
    pub margins: bool,
    /// The measured capacity passes within this fraction of the theory, at n >= 1000.
    pub tolerance: f64,
}

impl CapacityParams {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        sizes(at, self.n, self.problems)?;
        if self.distributions.is_empty() {
            return Err(DaleError::scene(
                format!("{at}.distributions"),
                "none; allowed: one or more, e.g. {\"shifted_normal\": {\"s\": 0.6}}",
            ));
        }
        for (i, d) in self.distributions.iter().enumerate() {
            d.validate(&format!("{at}.distributions[{i}]"))?;
        }
        ascending(&format!("{at}.load_ratios"), &self.load_ratios)?;
        self.training.validate(&format!("{at}.training"))?;
        positive(at, "tolerance", self.tolerance)
    }

    /// Two distributions, 4 problems of at most 100 weights, at two loads: 0.3 of the capacity
    /// (at N = 100 a few problems in 16 stay unsolved at 0.5 within 1,000 steps) and the
    /// highest.
    pub fn smoke(&mut self) {
        self.n = self.n.min(100);
        self.problems = self.problems.min(4);
        self.distributions.truncate(2);
        let highest = self.load_ratios[self.load_ratios.len() - 1];
        self.load_ratios = vec![0.3f64.min(highest / 2.0), highest];
    }
}

pub struct Capacity {
    params: CapacityParams,
    /// The distributions' targets, samples read.
    targets: Vec<Target>,
    /// SGD steps at most per problem.
    steps: usize,
    seed: u64,
}

impl Capacity {
    /// Reads the samples of any empirical distribution (errors name the scene path or file).
    pub fn new(params: CapacityParams, steps: usize, seed: u64) -> Result<Self, DaleError> {
        let targets = params
            .distributions
            .iter()
            .enumerate()
            .map(|(i, d)| d.resolve(&format!("params.distributions[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Capacity {
            params,
            targets,
            steps,
            seed,
        })
    }

    /// The patterns of the largest load of any distribution.
    fn most_patterns(&self) -> usize {
        let p = &self.params;
        let top = p.load_ratios.last().copied().unwrap_or(1.0);
        self.targets
            .iter()
            .map(|t| patterns(top * capacity(&t.populations(p.n), 0.0), p.n))
            .max()
            .unwrap_or(1)
    }
}

impl Experiment for Capacity {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        let p = &self.params;
        let most = self.most_patterns();
        patterns_fit(backend, p.problems, most, p.n)
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        let p = &self.params;
        let mut report = Report::default();
        let mut figures = Vec::new();
        let mut panels_fraction = Vec::new();
        let mut panels_margin = Vec::new();
        let mut panels_weights = Vec::new();
        let (d_count, r_count) = (p.distributions.len(), p.load_ratios.len());
        let mut loads = Vec::with_capacity(d_count * r_count);
        let mut solved = Vec::with_capacity(d_count * r_count);
        let mut measured_vs_theory = Vec::new();
        let mut done = 0;
        for (d, (spec, target)) in p.distributions.iter().zip(&self.targets).enumerate() {
            let populations = target.populations(p.n);
            let alpha_c = capacity(&populations, 0.0);
            let (mut fractions, mut betas) = (Vec::new(), Vec::new());
            let (mut margins_measured, mut margins_theory) = (Vec::new(), Vec::new());
            for (r, ratio) in p.load_ratios.iter().enumerate() {
                let load = ratio * alpha_c;
                let run = train(
                    backend,
                    &DiscoParams {
                        stop_when_solved: !p.margins,
                        ..p.training.disco(
                            p.problems,
                            patterns(load, p.n),
                            Constraint::Distributions(populations.clone()),
                            self.steps,
                            // Each (distribution, load) its own problems.
                            self.seed ^ ((d * r_count + r) as u64) << 32,
                        )
                    },
                )?;
                let fraction =
                    run.solved_at.iter().filter(|s| s.is_some()).count() as f64 / p.problems as f64;
                if r == 0 {
                    // Fig. 4d: the first problem's trained weights at the lowest load beside the
                    // targets they are held to.
                    let trained: Vec<f64> =
                        run.weights[..p.n].iter().map(|v| f64::from(*v)).collect();
                    let targets: Vec<f64> = populations
                        .iter()
                        .flat_map(|pop| pop.distribution.targets(pop.size))
                        .map(f64::from)
                        .collect();
                    let low = trained
                        .iter()
                        .chain(&targets)
                        .copied()
                        .fold(f64::INFINITY, f64::min);
                    let high = trained
                        .iter()
                        .chain(&targets)
                        .copied()
                        .fold(f64::NEG_INFINITY, f64::max);
                    let high = if high > low { high } else { low + 1.0 };
                    panels_weights.push(Series {
                        label: format!("trained: {}", spec.name()),
                        points: histogram(&trained, low, high),
                        band: Vec::new(),
                    });
                    panels_weights.push(Series {
                        label: "target".into(),
                        points: histogram(&targets, low, high),
                        band: Vec::new(),
                    });
                }
                fractions.push(fraction);
                // The norm the logistic loss learned: its scale sets how closely the loss
                // weighs only the patterns nearest the boundary (the max margin's).
                betas.push(
                    run.beta.iter().map(|b| f64::from(*b)).sum::<f64>() / p.problems as f64
                        * (p.n as f64).sqrt(),
                );
                if p.margins {
                    // The mean over the problems solved of the margin each solution reached.
                    let reached: Vec<f64> = run
                        .solved_at
                        .iter()
                        .zip(&run.best_margin)
                        .filter(|(s, _)| s.is_some())
                        .map(|(_, m)| f64::from(*m))
                        .collect();
                    margins_measured.push(
                        (!reached.is_empty())
                            .then(|| reached.iter().sum::<f64>() / reached.len() as f64),
                    );
                    margins_theory.push(max_margin(&populations, load));
                }
                loads.push(load as f32);
                solved.push(fraction as f32);
                done += self.steps;
                progress(done);
            }
            let alphas: Vec<f64> = p.load_ratios.iter().map(|r| r * alpha_c).collect();
            let at = |level: f64| crossing(&alphas, &fractions, level);
            let (half, high, low) = (at(0.5), at(0.9), at(0.1));
            let error = half.map(|h| (h - alpha_c).abs() / alpha_c);
            let within = error.is_some_and(|e| e <= p.tolerance);
            let name = spec.name();
            // At half the capacity nearly every problem separates; at small N a few draws of
            // patterns do not within the step budget, so three in four is asked.
            report.check(
                format!("{name}: at least 3/4 of the problems solved at the lowest load"),
                fractions[0] >= 0.75,
            );
            report.check(
                format!("{name}: no problem solved at the highest load"),
                *fractions.last().unwrap_or(&1.0) == 0.0,
            );
            if p.n >= 1000 {
                report.check(
                    format!(
                        "{name}: measured capacity within {:.0}% of the theory (eq. 3; eq. 10 for E/I)",
                        100.0 * p.tolerance
                    ),
                    within,
                );
            }
            figures.push(json!({
                "distribution": spec,
                // sum_m g_m <dw^m/dx> (eq. 10; one population: eq. 4).
                "jacobian_factor": populations
                    .iter()
                    .map(|pop| pop.size as f64 / p.n as f64 * jacobian_factor(&pop.distribution))
                    .sum::<f64>(),
                "capacity": { "theory_eq3_or_10": alpha_c, "measured_50pct": half, "relative_error": error },
                "width_90_to_10pct": match (high, low) { (Some(h), Some(l)) => Some(l - h), _ => None },
                "loads": alphas,
                "fraction_solved": fractions,
                "beta_times_sqrt_n_at_the_end": betas,
            }));
            if let DistributionSpec::EiLognormal { g_e, .. } = *spec {
                // Fig. 4a: where this E/I perceptron sits in eq. 10's landscape over the sigmas.
                let best = EiLognormal::optimum(g_e);
                let fig = figures.last_mut().expect("pushed above");
                fig["landscape_optimum_eq10"] = json!({
                    "sigma_e": best.sigma_e,
                    "sigma_i": best.sigma_i,
                    "capacity": best.capacity(0.0),
                    "this_capacity_over_the_optimum": alpha_c / best.capacity(0.0),
                });
            }
            if p.margins {
                let fig = figures.last_mut().expect("pushed above");
                // A finding, not a check (README, Fig. 4c): logistic SGD nears the max margin only
                // as its steps grow without bound, and within a budget may stop well short.
                let reproduced = margins_measured
                    .iter()
                    .zip(&margins_theory)
                    .filter_map(|(m, t)| Some(((*m)?, (*t)?)))
                    .all(|(m, t)| (m - t).abs() <= p.tolerance * t);
                fig["max_margin"] = json!({
                    "measured_mean_of_solved": margins_measured,
                    "theory_eq3_or_10": margins_theory,
                    "paper_agreement_within_tolerance_reproduced": reproduced,
                });
                let curve = |name: &str, values: &[Option<f64>]| Series {
                    label: format!("{name}: {}", spec.name()),
                    points: alphas
                        .iter()
                        .zip(values)
                        .filter_map(|(a, m)| Some((*a, (*m)?)))
                        .collect(),
                    band: Vec::new(),
                };
                panels_margin.push(curve("measured", &margins_measured));
                panels_margin.push(curve("theory", &margins_theory));
            }
            if let Some(h) = half {
                measured_vs_theory.push((alpha_c, h));
            }
            panels_fraction.push(Series {
                label: name,
                points: p.load_ratios.iter().copied().zip(fractions).collect(),
                band: Vec::new(),
            });
        }
        report.figures = json!({
            "n": p.n,
            "problems_per_load": p.problems,
            "max_steps": self.steps,
            "solved_means": "every pattern on its side with the weights projected exactly onto the distribution (eq. 8)",
            "checks_of_capacity": if p.n >= 1000 { "run (n >= 1000)" } else { "skipped: n < 1000, where finite-size shifts are larger than the tolerance" },
            "distributions": figures,
        });
        report.array("loads.npy", vec![d_count, r_count], loads);
        report.array("fraction_solved.npy", vec![d_count, r_count], solved);
        let diagonal = measured_vs_theory
            .iter()
            .map(|(t, _)| (*t, *t))
            .collect::<Vec<_>>();
        report.plots.push(Plot {
            file: "disco_capacity.png".into(),
            panels: vec![
                Panel {
                    title: format!("fraction of {} problems solved, N = {}", p.problems, p.n),
                    x_label: "load / theoretical capacity (eq. 3)".into(),
                    y_label: "fraction solved".into(),
                    series: panels_fraction,
                    log_y: false,
                    marks: Marks::Lines,
                },
                Panel {
                    title: "capacity: measured (50% solved) against eq. 3".into(),
                    x_label: "alpha_c, eq. 3".into(),
                    y_label: "alpha_c".into(),
                    series: vec![
                        Series {
                            label: "measured".into(),
                            points: measured_vs_theory,
                            band: Vec::new(),
                        },
                        Series {
                            label: "theory".into(),
                            points: diagonal,
                            band: Vec::new(),
                        },
                    ],
                    log_y: false,
                    marks: Marks::Lines,
                },
                Panel {
                    title: format!(
                        "weights of problem 0 at load {} x alpha_c against the target (Fig. 4d)",
                        p.load_ratios[0]
                    ),
                    x_label: "w".into(),
                    y_label: "density".into(),
                    series: panels_weights,
                    log_y: false,
                    marks: Marks::Lines,
                },
            ],
        });
        if p.margins {
            report.plots.push(Plot {
                file: "disco_max_margin.png".into(),
                panels: vec![Panel {
                    title: format!(
                        "max margin kappa(alpha) (Fig. 4c): mean of the solved problems, N = {}",
                        p.n
                    ),
                    x_label: "load alpha".into(),
                    y_label: "kappa".into(),
                    series: panels_margin,
                    log_y: false,
                    marks: Marks::Lines,
                }],
            });
        }
        Ok(report)
    }
}

/// The load at which `fraction` (falling with the load) first crosses `level`, linearly
/// interpolated; None when it never does.
fn crossing(loads: &[f64], fraction: &[f64], level: f64) -> Option<f64> {
    loads
        .windows(2)
        .zip(fraction.windows(2))
        .find(|(_, f)| f[0] >= level && f[1] < level)
        .map(|(a, f)| a[0] + (a[1] - a[0]) * (f[0] - level) / (f[0] - f[1]))
}

/// The max margin kappa at load alpha: eq. 3 (or 10) solved for kappa, by bisection (alpha_c
/// falls as kappa grows); None at or above the capacity at kappa 0.
pub fn max_margin(populations: &[Population], alpha: f64) -> Option<f64> {
    if !(alpha > 0.0 && alpha < capacity(populations, 0.0)) {
        return None;
    }
    let mut high = 1.0;
    while capacity(populations, high) > alpha {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if capacity(populations, mid) > alpha {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some(0.5 * (low + high))
}
