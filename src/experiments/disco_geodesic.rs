//! 003 Fig. 3: the distribution of the weights DisCo-SGD trains moves along the W2 geodesic from
//! its start to the target. From a delta-function start (every weight 1, unit second moment)
//! problems learn random labels while held to a distribution; at each check the trained weights'
//! empirical distribution p_t is compared with the geodesic's p_tau at the same W2 distance to
//! the target Q (Appendix A.2; in 1-D the geodesic's quantiles are (1 - tau) w0 + tau Q^-1(u)):
//! tau(t) = 1 - W2(p_t, Q) / W2(p_0, Q), and the distance W2(p_t, p_tau) says how far off the
//! geodesic training strays.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::balancing_fig3::positive;
use super::disco_setup::{
    histogram, patterns, patterns_fit, sizes, DistributionSpec, Target, Training,
};
use super::{Experiment, Plot, Report};
use crate::analysis::disco::WeightDistribution;
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::disco::{train, Constraint, DiscoParams, Start};
use crate::scene::plot::{Marks, Panel, Series};

/// The delta function every weight starts at: 1, the unit second moment (section 2.1).
const START: f32 = 1.0;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GeodesicParams {
    /// Weights per perceptron.
    pub n: usize,
    pub problems: usize,
    /// The target Q (one population).
    pub distribution: DistributionSpec,
    /// Load alpha = P / N of the random labels learned on the way.
    pub load: f64,
    pub training: Training,
    /// Training passes when W2(p_t, p_tau) stays within this fraction of W2(p_0, Q) at every
    /// check.
    pub tolerance: f64,
}

impl GeodesicParams {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        sizes(at, self.n, self.problems)?;
        let d = format!("{at}.distribution");
        self.distribution.validate(&d)?;
        if matches!(self.distribution, DistributionSpec::EiLognormal { .. }) {
            return Err(DaleError::scene(
                d,
                "ei_lognormal; allowed: a distribution of one population (the geodesic is one \
                 population's)",
            ));
        }
        if !(self.load > 0.0 && self.load <= 100.0) {
            return Err(DaleError::scene(
                format!("{at}.load"),
                format!("load = {}; allowed: 0 < load <= 100", self.load),
            ));
        }
        self.training.validate(&format!("{at}.training"))?;
        positive(at, "tolerance", self.tolerance)
    }

    /// 2 problems of at most 100 weights.
    pub fn smoke(&mut self) {
        self.n = self.n.min(100);
        self.problems = self.problems.min(2);
    }
}

pub struct Geodesic {
    params: GeodesicParams,
    target: WeightDistribution,
    steps: usize,
    seed: u64,
}

impl Geodesic {
    /// Reads the samples of an empirical target.
    pub fn new(params: GeodesicParams, steps: usize, seed: u64) -> Result<Self, DaleError> {
        let Target::One(target) = params.distribution.resolve("params.distribution")? else {
            unreachable!("validate refuses two populations")
        };
        Ok(Geodesic {
            params,
            target,
            steps,
            seed,
        })
    }
}

/// [ mean_r (a_r - b_r)^2 ]^(1/2): W2 between the empirical distributions of two sorted lists of
/// equal length.
fn w2_sorted(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

impl Experiment for Geodesic {
    fn check_fits(&self, backend: &BackendInfo) -> Result<(), DaleError> {
        let p = &self.params;
        let most = patterns(p.load, p.n);
        patterns_fit(backend, p.problems, most, p.n)
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        let p = &self.params;
        let pops = Target::One(self.target.clone()).populations(p.n);
        let run = train(
            backend,
            &DiscoParams {
                start: Start::Constant(START),
                stop_when_solved: false,
                record_weights: true,
                ..p.training.disco(
                    p.problems,
                    patterns(p.load, p.n),
                    Constraint::Distributions(pops),
                    self.steps,
                    self.seed,
                )
            },
        )?;
        progress(self.steps);
        let targets: Vec<f64> = self
            .target
            .targets(p.n)
            .iter()
            .map(|v| f64::from(*v))
            .collect();
        let start_distance = w2_sorted(&vec![f64::from(START); p.n], &targets);
        // Per check, the mean over problems of tau and of W2(p_t, p_tau) / W2(p_0, Q).
        let (mut steps, mut taus, mut off) = (Vec::new(), Vec::new(), Vec::new());
        let mut first_sorted = Vec::new();
        for (step, w) in &run.path {
            let (mut tau_sum, mut off_sum) = (0.0, 0.0);
            for (b, problem) in w.chunks(p.n).enumerate() {
                let mut sorted: Vec<f64> = problem.iter().map(|v| f64::from(*v)).collect();
                sorted.sort_by(f64::total_cmp);
                let tau = 1.0 - w2_sorted(&sorted, &targets) / start_distance;
                let geodesic: Vec<f64> = targets
                    .iter()
                    .map(|t| (1.0 - tau) * f64::from(START) + tau * t)
                    .collect();
                tau_sum += tau;
                off_sum += w2_sorted(&sorted, &geodesic) / start_distance;
                if b == 0 {
                    first_sorted.push(sorted);
                }
            }
            steps.push(*step as f64);
            taus.push(tau_sum / p.problems as f64);
            off.push(off_sum / p.problems as f64);
        }
        let worst = off.iter().copied().fold(0.0, f64::max);
        let mut report = Report::default();
        report.check(
            format!(
                "the trained distribution stays within {} of W2(p_0, Q) of the geodesic at every check",
                p.tolerance
            ),
            worst <= p.tolerance,
        );
        let last = *taus.last().unwrap_or(&0.0);
        report.check(
            "training reaches the target: tau >= 0.9 at the end",
            last >= 0.9,
        );
        report.check(
            "tau rises along training (never falling by more than 0.02)",
            taus.windows(2).all(|w| w[1] >= w[0] - 0.02),
        );
        // The path is the learning's, not the transport step's alone: the labels are learned.
        let solved = run.solved_at.iter().filter(|s| s.is_some()).count();
        report.check(
            "every problem learns its labels on the way (separable on the distribution)",
            solved == p.problems,
        );
        report.figures = json!({
            "n": p.n,
            "problems": p.problems,
            "load": p.load,
            "distribution": p.distribution,
            "w2_start_to_target": start_distance,
            "steps": steps,
            "geodesic_time_tau": taus,
            "w2_off_geodesic_over_w2_start": off,
            "worst_off_geodesic": worst,
            "problems_solved": solved,
            "solved_at_step": run.solved_at,
        });
        report.array(
            "steps.npy",
            vec![steps.len()],
            steps.iter().map(|v| *v as f32).collect(),
        );
        report.array(
            "tau.npy",
            vec![taus.len()],
            taus.iter().map(|v| *v as f32).collect(),
        );
        report.array(
            "sorted_weights.npy",
            vec![first_sorted.len(), p.n],
            first_sorted.iter().flatten().map(|v| *v as f32).collect(),
        );

        // Fig. 3a: the first problem's histograms at four checks beside the geodesic's.
        let (low, high) = first_sorted
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| {
                (l.min(s[0]), h.max(s[s.len() - 1]))
            });
        let high = if high > low { high } else { low + 1.0 };
        let mut series = Vec::new();
        let checks = first_sorted.len();
        let mut picks = vec![1, checks / 4, checks / 2, checks - 1];
        picks.retain(|k| *k >= 1 && *k < checks);
        picks.dedup();
        for k in picks {
            let sorted = &first_sorted[k];
            let tau = 1.0 - w2_sorted(sorted, &targets) / start_distance;
            let geodesic: Vec<f64> = targets
                .iter()
                .map(|t| (1.0 - tau) * f64::from(START) + tau * t)
                .collect();
            series.push(Series {
                label: format!("step {}: trained", run.path[k].0),
                points: histogram(sorted, low, high),
                band: Vec::new(),
            });
            series.push(Series {
                label: format!("geodesic, tau = {tau:.2}"),
                points: histogram(&geodesic, low, high),
                band: Vec::new(),
            });
        }
        report.plots.push(Plot {
            file: "disco_geodesic.png".into(),
            panels: vec![
                Panel {
                    title: format!(
                        "weights along training (problem 0 of {}) and the geodesic's (Fig. 3a)",
                        p.problems
                    ),
                    x_label: "w".into(),
                    y_label: "density".into(),
                    series,
                    log_y: false,
                    marks: Marks::Lines,
                },
                Panel {
                    title: "geodesic time tau against SGD steps (Fig. 3b)".into(),
                    x_label: "step".into(),
                    y_label: "tau".into(),
                    series: vec![Series {
                        label: format!("mean of {} problems", p.problems),
                        points: steps.iter().copied().zip(taus.iter().copied()).collect(),
                        band: Vec::new(),
                    }],
                    log_y: false,
                    marks: Marks::Lines,
                },
            ],
        });
        Ok(report)
    }
}
