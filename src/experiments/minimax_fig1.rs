//! Paper 000, Fig. 1: the generic E/I network (N_E = N_I = m) driven by Poisson inputs, its
//! greedy spiking dynamics at a sweep of time constants tau, against the saddle point of the
//! rate problem: the distance of the spiking rates to the KKT rates, the correlation of each E
//! neuron's excitatory and inhibitory inputs (tight balance), and the CV of the inter-spike
//! intervals (irregularity).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::balancing_fig3::positive;
use super::{Experiment, Plot, Report};
use crate::analysis::minimax::{generic_network, Rates};
use crate::analysis::spikes::Raster;
use crate::backend::spiking::SpikeRule;
use crate::backend::{Backend, BackendInfo};
use crate::error::DaleError;
use crate::models::minimax::{simulate_greedy, GreedyParams, GreedyRun};
use crate::scene::plot::{Marks, Panel, Series};

/// The paper's figures (minimax.md) at one tau.
struct PaperRow {
    tau: f64,
    correlation: Option<f64>,
    error_hz: Option<f64>,
}

const PAPER: [PaperRow; 4] = [
    PaperRow {
        tau: 0.01,
        correlation: Some(0.68),
        error_hz: Some(6.1),
    },
    PaperRow {
        tau: 0.1,
        correlation: Some(0.96),
        error_hz: Some(2.0),
    },
    PaperRow {
        tau: 1.0,
        correlation: Some(0.999),
        error_hz: Some(0.5),
    },
    PaperRow {
        tau: 10.0,
        correlation: None,
        error_hz: Some(0.08),
    },
];

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleSpec {
    Synchronous,
    OnePerStep,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fig1Params {
    /// N_E = N_I = m.
    pub n: usize,
    pub trials: usize,
    pub taus: Vec<f64>,
    /// The step, as a fraction of tau; the run is `steps` of it.
    pub dt_over_tau: f64,
    /// Spikes are counted, and inputs correlated, from this fraction of the run on.
    pub count_from: f64,
    /// Input rates are this times U(0, 1), Hz.
    pub max_input_rate_hz: f64,
    pub rule: RuleSpec,
}

impl From<RuleSpec> for SpikeRule {
    fn from(rule: RuleSpec) -> Self {
        match rule {
            RuleSpec::Synchronous => SpikeRule::Synchronous,
            RuleSpec::OnePerStep => SpikeRule::OnePerStep,
        }
    }
}

impl Fig1Params {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        let bad =
            |name: &str, message: String| Err(DaleError::scene(format!("{at}.{name}"), message));
        // The design's eigendecomposition and the saddle point's solves are dense, on the host.
        for (name, v, most) in [("n", self.n, 2000), ("trials", self.trials, 4096)] {
            if v == 0 || v > most {
                return bad(name, format!("{name} = {v}; allowed: 1 to {most}"));
            }
        }
        if self.taus.is_empty() || self.taus.len() > 64 {
            return bad(
                "taus",
                format!("{} values; allowed: 1 to 64", self.taus.len()),
            );
        }
        for tau in &self.taus {
            positive(at, "taus", *tau)?;
        }
        if !(self.dt_over_tau > 0.0 && self.dt_over_tau <= 0.1) {
            return bad(
                "dt_over_tau",
                format!("{}; allowed: above 0, at most 0.1", self.dt_over_tau),
            );
        }
        if !(0.0..1.0).contains(&self.count_from) {
            return bad(
                "count_from",
                format!("{}; allowed: 0 to below 1", self.count_from),
            );
        }
        if !(self.max_input_rate_hz >= 0.0 && self.max_input_rate_hz.is_finite()) {
            return bad(
                "max_input_rate_hz",
                format!("{}; allowed: a finite rate >= 0", self.max_input_rate_hz),
            );
        }
        Ok(())
    }

    /// The sweep at tau 0.01, 0.1 and 1 (those given, else the first three), ten times coarser.
    pub fn smoke(&mut self) {
        let wanted: Vec<f64> = [0.01, 0.1, 1.0]
            .into_iter()
            .filter(|t| self.taus.contains(t))
            .collect();
        self.taus = if wanted.len() >= 2 {
            wanted
        } else {
            self.taus.iter().take(3).copied().collect()
        };
        self.trials = self.trials.min(2);
        self.dt_over_tau = self.dt_over_tau.max(1e-3);
    }
}

pub struct MinimaxFig1 {
    pub params: Fig1Params,
    pub steps: usize,
    pub seed: u64,
}

/// Mean over trials and neurons of the ISI CV of neurons with at least two intervals.
fn mean_cv(run: &GreedyRun, trials: usize, n: usize, steps: usize, dt: f64) -> Option<f64> {
    let cvs: Vec<f64> = (0..trials as u32)
        .filter_map(|b| {
            let spikes: Vec<(u32, u32)> = run
                .spikes
                .iter()
                .enumerate()
                .flat_map(|(t, s)| {
                    s.e.iter()
                        .chain(&s.i)
                        .enumerate()
                        .filter(move |(_, (trial, _))| *trial == b)
                        .map(move |(k, (_, neuron))| {
                            let offset = if k < s.e.len() { 0 } else { n as u32 };
                            (t as u32, neuron + offset)
                        })
                })
                .collect();
            Raster {
                spikes: &spikes,
                n: 2 * n,
                steps,
                dt,
            }
            .mean_cv()
        })
        .collect();
    (!cvs.is_empty()).then(|| cvs.iter().sum::<f64>() / cvs.len() as f64)
}

impl Experiment for MinimaxFig1 {
    fn check_fits(&self, _backend: &BackendInfo) -> Result<(), DaleError> {
        Ok(())
    }

    fn run(
        &self,
        backend: &mut dyn Backend,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Report, DaleError> {
        let p = &self.params;
        let net = generic_network(p.n, p.n, self.seed);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x000f_1a01);
        let input_rates: Vec<f64> = (0..p.n)
            .map(|_| p.max_input_rate_hz * rng.random::<f64>())
            .collect();
        let zeros = Rates {
            e: vec![0.0; p.n],
            i: vec![0.0; p.n],
        };
        let scale = net
            .drive(&input_rates)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let kkt = net
            .saddle_point(&input_rates, zeros, 1e-9 * scale.max(1.0), 10_000_000)
            .map_err(|e| {
                DaleError::scene(
                    "params",
                    format!(
                        "the rate problem's saddle point was not found (KKT residual {} after {} \
                         iterations)",
                        e.residual, e.iterations
                    ),
                )
            })?;
        let rule = p.rule.into();
        let mut rows = Vec::new();
        let (mut distances, mut correlations, mut cvs) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &tau) in p.taus.iter().enumerate() {
            let dt = p.dt_over_tau * tau;
            let run = simulate_greedy(
                backend,
                &net,
                &GreedyParams {
                    rule,
                    seed: self.seed.wrapping_add(k as u64),
                    average_from: (p.count_from * self.steps as f64) as usize,
                    record_spikes: true,
                    record_inputs: true,
                    ..GreedyParams::new(p.trials, tau, dt, self.steps, input_rates.clone())
                },
            )?;
            progress((k + 1) * self.steps);
            let mut squared = 0.0;
            for b in 0..p.trials {
                for j in 0..p.n {
                    squared += (run.rates_e[b * p.n + j] - kkt.e[j]).powi(2);
                    squared += (run.rates_i[b * p.n + j] - kkt.i[j]).powi(2);
                }
            }
            let distance = (squared / p.trials as f64).sqrt() / (2 * p.n) as f64;
            let measured: Vec<f64> = run.ei_correlation.iter().flatten().copied().collect();
            let correlation = (!measured.is_empty())
                .then(|| measured.iter().sum::<f64>() / measured.len() as f64);
            let cv = mean_cv(&run, p.trials, p.n, self.steps, dt);
            let paper = PAPER.iter().find(|row| (row.tau - tau).abs() < 1e-12);
            rows.push(json!({
                "tau": tau,
                "rate_prediction_error_hz": distance,
                "paper_rate_prediction_error_hz": paper.and_then(|p| p.error_hz),
                "ei_input_correlation": correlation,
                "paper_ei_input_correlation": paper.and_then(|p| p.correlation),
                "mean_cv_isi": cv,
            }));
            distances.push(distance);
            correlations.push(correlation.unwrap_or(f64::NAN));
            cvs.push(cv.unwrap_or(f64::NAN));
        }
        let mut report = Report::default();
        let (first, last) = (0, p.taus.len() - 1);
        report.check(
            "the spiking rates come closer to the KKT rates from the smallest tau to the largest",
            distances[last] < distances[first],
        );
        report.check(
            "the E-I input correlation rises from the smallest tau to the largest",
            correlations[last] > correlations[first],
        );
        report.check(
            "every neuron's rates are finite and the network spikes",
            distances.iter().all(|d| d.is_finite()) && cvs.iter().any(|c| c.is_finite()),
        );
        let log_taus: Vec<f64> = p.taus.iter().map(|t| t.log10()).collect();
        let series = |label: &str, values: &[f64]| Series {
            label: label.into(),
            points: log_taus
                .iter()
                .copied()
                .zip(values.iter().copied())
                .collect(),
            band: Vec::new(),
        };
        let panel = |title: &str, y: &str, s: Vec<Series>, log_y: bool| Panel {
            title: title.into(),
            x_label: "log10 tau".into(),
            y_label: y.into(),
            series: s,
            log_y,
            marks: Marks::Lines,
        };
        let paper_points = |pick: fn(&PaperRow) -> Option<f64>| Series {
            label: "paper".into(),
            points: PAPER
                .iter()
                .filter_map(|row| pick(row).map(|v| (row.tau.log10(), v)))
                .collect(),
            band: Vec::new(),
        };
        report.plots.push(Plot {
            file: "minimax_fig1.png".into(),
            panels: vec![
                panel(
                    "E-I input correlation",
                    "correlation",
                    vec![
                        series("dale", &correlations),
                        paper_points(|r| r.correlation),
                    ],
                    false,
                ),
                panel(
                    "rate-prediction error, (1/N) ||r_KKT - r_spiking||",
                    "Hz",
                    vec![series("dale", &distances), paper_points(|r| r.error_hz)],
                    true,
                ),
                panel("ISI CV", "CV", vec![series("dale", &cvs)], false),
            ],
        });
        report.array(
            "kkt_rates.npy",
            vec![2, p.n],
            kkt.e.iter().chain(&kkt.i).map(|r| *r as f32).collect(),
        );
        report.figures = json!({
            "n": p.n,
            "trials": p.trials,
            "steps_per_tau": self.steps,
            "dt_over_tau": p.dt_over_tau,
            "rule": p.rule,
            "by_tau": rows,
            "inputs_mean": "E input: the positive terms of W_EE r_E + F r_x; I input: W_EI r_I and the magnitudes of the negative terms (W_EE's diagonal, F's negative entries); Pearson over time per E neuron, averaged",
        });
        Ok(report)
    }
}
