//! What paper 003's scenes share (capacity, geodesic and teacher-student experiments alike): the
//! weight distributions they may name, as the scene spells them, checked field by field and
//! resolved into the populations a perceptron is held to (a measured connectome's samples read
//! from their file when the experiment is built), and DisCo-SGD's hyperparameters.

use serde::{Deserialize, Serialize};

use super::balancing_fig3::positive;
use super::fits;
use crate::analysis::disco::{constrained_capacity, EiLognormal, WeightDistribution};
use crate::backend::perceptron::Rates;
use crate::backend::BackendInfo;
use crate::error::DaleError;
use crate::models::disco::{Constraint, DiscoParams, Labels, Population, Start};
use crate::scene::arrays::read_array;

/// A target distribution as a scene names it; scaled to <w^2> = 1 before use (section 2.1).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DistributionSpec {
    /// N(sqrt(1 - s^2), s^2), 0 < s <= 1: Fig. 2's family, <dw/dx> = s.
    ShiftedNormal {
        s: f64,
    },
    Normal {
        mean: f64,
        sd: f64,
    },
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    NegLogNormal {
        mu: f64,
        sigma: f64,
    },
    HalfNormal {
        scale: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// Measured weights (a connectome's): `samples` is a .npy, or `file.npz:name`, of any shape,
    /// f32 or f64, read flat; Q^-1 is the inverse of their empirical CDF.
    Empirical {
        samples: String,
    },
    /// Section 4's E/I perceptron: a fraction g_e of excitatory lognormal weights, the rest
    /// inhibitory (negative lognormal), balanced with unit total second moment; two populations
    /// transported apart, capacity by eq. 10.
    EiLognormal {
        g_e: f64,
        sigma_e: f64,
        sigma_i: f64,
    },
}

/// A distribution with its samples read: what a run holds its weights to.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    One(WeightDistribution),
    Ei {
        g_e: f64,
        sigma_e: f64,
        sigma_i: f64,
    },
}

impl DistributionSpec {
    /// Its key in the scene.
    fn key(&self) -> &'static str {
        match self {
            DistributionSpec::ShiftedNormal { .. } => "shifted_normal",
            DistributionSpec::Normal { .. } => "normal",
            DistributionSpec::LogNormal { .. } => "log_normal",
            DistributionSpec::NegLogNormal { .. } => "neg_log_normal",
            DistributionSpec::HalfNormal { .. } => "half_normal",
            DistributionSpec::Uniform { .. } => "uniform",
            DistributionSpec::Empirical { .. } => "empirical",
            DistributionSpec::EiLognormal { .. } => "ei_lognormal",
        }
    }

    /// Checks the parameters; `at` is the scene path of the distribution.
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        let at = &format!("{at}.{}", self.key());
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(DaleError::scene(
                    format!("{at}.{name}"),
                    format!("{name} = {v}; allowed: a finite value"),
                ))
            }
        };
        match self {
            DistributionSpec::ShiftedNormal { s } if !(*s > 0.0 && *s <= 1.0) => Err(
                DaleError::scene(format!("{at}.s"), format!("s = {s}; allowed: 0 < s <= 1")),
            ),
            DistributionSpec::ShiftedNormal { .. } => Ok(()),
            DistributionSpec::Normal { mean, sd } => {
                finite("mean", *mean)?;
                positive(at, "sd", *sd)
            }
            DistributionSpec::LogNormal { mu, sigma }
            | DistributionSpec::NegLogNormal { mu, sigma } => {
                finite("mu", *mu)?;
                positive(at, "sigma", *sigma)
            }
            DistributionSpec::HalfNormal { scale } => positive(at, "scale", *scale),
            DistributionSpec::Empirical { samples } if samples.is_empty() => Err(DaleError::scene(
                format!("{at}.samples"),
                "empty; allowed: a .npy file, or file.npz:name, of measured weights",
            )),
            DistributionSpec::Empirical { .. } => Ok(()),
            DistributionSpec::EiLognormal {
                g_e,
                sigma_e,
                sigma_i,
            } => {
                if !(*g_e > 0.0 && *g_e < 1.0) {
                    return Err(DaleError::scene(
                        format!("{at}.g_e"),
                        format!("g_e = {g_e}; allowed: 0 < g_e < 1"),
                    ));
                }
                // Beyond sigma 4 the weights span more than e^16 and the smallest f32 targets
                // lose their digits against the largest.
                for (name, v) in [("sigma_e", sigma_e), ("sigma_i", sigma_i)] {
                    if !(*v > 0.0 && *v <= 4.0) {
                        return Err(DaleError::scene(
                            format!("{at}.{name}"),
                            format!("{name} = {v}; allowed: 0 < sigma <= 4"),
                        ));
                    }
                }
                Ok(())
            }
            DistributionSpec::Uniform { low, high } => {
                finite("low", *low)?;
                finite("high", *high)?;
                if high > low && (*low != 0.0 || *high != 0.0) {
                    Ok(())
                } else {
                    Err(DaleError::scene(
                        format!("{at}.high"),
                        format!("[{low}, {high}]; allowed: low < high"),
                    ))
                }
            }
        }
    }

    /// The target, reading an empirical distribution's samples (errors name `at`, the scene path
    /// of the distribution, or the file).
    pub fn resolve(&self, at: &str) -> Result<Target, DaleError> {
        let q = match self {
            DistributionSpec::EiLognormal {
                g_e,
                sigma_e,
                sigma_i,
            } => {
                return Ok(Target::Ei {
                    g_e: *g_e,
                    sigma_e: *sigma_e,
                    sigma_i: *sigma_i,
                })
            }
            DistributionSpec::ShiftedNormal { s } => WeightDistribution::Normal {
                mean: (1.0 - s * s).sqrt(),
                sd: *s,
            },
            DistributionSpec::Normal { mean, sd } => WeightDistribution::Normal {
                mean: *mean,
                sd: *sd,
            },
            DistributionSpec::LogNormal { mu, sigma } => WeightDistribution::LogNormal {
                mu: *mu,
                sigma: *sigma,
            },
            DistributionSpec::NegLogNormal { mu, sigma } => WeightDistribution::NegLogNormal {
                mu: *mu,
                sigma: *sigma,
            },
            DistributionSpec::HalfNormal { scale } => {
                WeightDistribution::HalfNormal { scale: *scale }
            }
            DistributionSpec::Uniform { low, high } => WeightDistribution::Uniform {
                low: *low,
                high: *high,
            },
            DistributionSpec::Empirical { samples } => {
                let at = format!("{at}.empirical.samples");
                let values: Vec<f64> = read_array(samples)?
                    .data
                    .iter()
                    .map(|v| f64::from(*v))
                    .collect();
                let q = WeightDistribution::empirical(&values)
                    .map_err(|e| DaleError::scene(&at, format!("{samples}: {e}")))?;
                // Scaled to unit second moment, the sum of squares must be a positive number.
                let m2 = q.second_moment();
                if !(m2 > 0.0 && m2.is_finite()) {
                    return Err(DaleError::scene(
                        &at,
                        format!(
                            "{samples}: mean square {m2}; allowed: weights not all zero, \
                             squares summing to a finite number"
                        ),
                    ));
                }
                q
            }
        };
        Ok(Target::One(q.unit()))
    }

    /// How summaries and plots name it.
    pub fn name(&self) -> String {
        match self {
            DistributionSpec::ShiftedNormal { s } => format!("shifted normal s = {s}"),
            DistributionSpec::EiLognormal {
                g_e,
                sigma_e,
                sigma_i,
            } => format!("E/I lognormal g_e = {g_e}, sigma_e = {sigma_e}, sigma_i = {sigma_i}"),
            DistributionSpec::Empirical { samples } => format!("empirical ({samples})"),
            other => format!("{other:?}"),
        }
    }
}

impl Target {
    /// The populations of a perceptron of n weights (n >= 2), at unit total second moment.
    pub fn populations(&self, n: usize) -> Vec<Population> {
        match *self {
            Target::Ei {
                g_e,
                sigma_e,
                sigma_i,
            } => {
                let n_e = ((g_e * n as f64).round() as usize).clamp(1, n - 1);
                let ei = EiLognormal::balanced(n_e as f64 / n as f64, sigma_e, sigma_i);
                let [(_, e), (_, i)] = ei.populations();
                vec![
                    Population {
                        size: n_e,
                        distribution: e,
                    },
                    Population {
                        size: n - n_e,
                        distribution: i,
                    },
                ]
            }
            Target::One(ref q) => vec![Population {
                size: n,
                distribution: q.clone(),
            }],
        }
    }
}

/// alpha_c(kappa) of perceptrons held to `populations` (eq. 3, or 10 with the fractions as
/// rounded to whole weights).
pub fn capacity(populations: &[Population], kappa: f64) -> f64 {
    let n: usize = populations.iter().map(|p| p.size).sum();
    let fractions: Vec<(f64, &WeightDistribution)> = populations
        .iter()
        .map(|p| (p.size as f64 / n as f64, &p.distribution))
        .collect();
    constrained_capacity(kappa, &fractions)
}

/// DisCo-SGD's hyperparameters (Table 1), as a scene's `training` names them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Patterns per SGD step.
    pub batch: usize,
    /// eta_1 N: the fields w . xi move by about eta_1 N per step, so that this keeps the
    /// learning's pace when N changes (eta_1 = eta1_times_n / n).
    pub eta1_times_n: f32,
    /// The learning rate of the norm beta.
    pub rate_beta: f32,
    /// beta at the start times sqrt(N) (the fields w . xi are of order sqrt(N)); 1 unless set.
    #[serde(default = "one")]
    pub beta0_times_sqrt_n: f32,
    /// eta_2 of the transport step (eq. 9); 1 projects at once.
    pub transport_rate: f32,
    /// SGD steps between checks of the margins.
    pub check_every: usize,
}

impl Training {
    pub fn validate(&self, at: &str) -> Result<(), DaleError> {
        for (name, v) in [("batch", self.batch), ("check_every", self.check_every)] {
            if v == 0 || v > u32::MAX as usize {
                return Err(DaleError::scene(
                    format!("{at}.{name}"),
                    format!("{name} = {v}; allowed: an integer from 1 to {}", u32::MAX),
                ));
            }
        }
        positive(at, "eta1_times_n", f64::from(self.eta1_times_n))?;
        positive(at, "beta0_times_sqrt_n", f64::from(self.beta0_times_sqrt_n))?;
        if !(self.transport_rate > 0.0 && self.transport_rate <= 1.0) {
            return Err(DaleError::scene(
                format!("{at}.transport_rate"),
                format!(
                    "transport_rate = {}; allowed: 0 < rate <= 1",
                    self.transport_rate
                ),
            ));
        }
        if !(self.rate_beta >= 0.0 && self.rate_beta.is_finite()) {
            return Err(DaleError::scene(
                format!("{at}.rate_beta"),
                format!(
                    "rate_beta = {}; allowed: a finite value >= 0",
                    self.rate_beta
                ),
            ));
        }
        Ok(())
    }

    /// A run of `problems` perceptrons on random labels, stopping once all are solved, from
    /// weights sampled from the constraint.
    pub fn disco(
        &self,
        problems: usize,
        patterns: usize,
        constraint: Constraint,
        max_steps: usize,
        seed: u64,
    ) -> DiscoParams {
        let mut params = DiscoParams {
            problems,
            patterns,
            constraint,
            labels: Labels::Random,
            start: Start::Sample,
            batch: self.batch,
            rates: Rates {
                weights: 0.0,
                beta: self.rate_beta,
            },
            transport_rate: self.transport_rate,
            beta0: 0.0,
            kappa: 0.0,
            max_steps,
            check_every: self.check_every,
            stop_when_solved: true,
            record_weights: false,
            seed,
        };
        let n = params.n() as f32;
        params.rates.weights = self.eta1_times_n / n;
        params.beta0 = self.beta0_times_sqrt_n / n.sqrt();
        params
    }
}

/// Checks a scene's `n` (weights per perceptron, at least 2) and `problems`.
pub fn sizes(at: &str, n: usize, problems: usize) -> Result<(), DaleError> {
    for (name, v, least) in [("n", n, 2), ("problems", problems, 1)] {
        if v < least || v > u32::MAX as usize {
            return Err(DaleError::scene(
                format!("{at}.{name}"),
                format!(
                    "{name} = {v}; allowed: an integer from {least} to {}",
                    u32::MAX
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a list of loads (or load ratios) at `at`: two or more, ascending, in (0, 100].
pub fn ascending(at: &str, loads: &[f64]) -> Result<(), DaleError> {
    if loads.len() < 2
        || loads
            .iter()
            .any(|r| !(*r > 0.0 && r.is_finite() && *r <= 100.0))
        || loads.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(DaleError::scene(
            at,
            format!("{loads:?}; allowed: two or more ascending values in (0, 100]"),
        ));
    }
    Ok(())
}

/// The patterns at load alpha: alpha N, at least one.
pub fn patterns(load: f64, n: usize) -> usize {
    ((load * n as f64).round() as usize).max(1)
}

/// Refuses `problems` (the scene's `params.problems`) when their patterns, `most` of n values
/// each at the largest load, would not fit in one buffer.
pub fn patterns_fit(
    backend: &BackendInfo,
    problems: usize,
    most: usize,
    n: usize,
) -> Result<(), DaleError> {
    fits(
        backend,
        "params.problems",
        problems,
        "the patterns hold problems x patterns x n values",
        |b| b.checked_mul(most)?.checked_mul(n),
    )
}

fn one() -> f32 {
    1.0
}

/// Bins of the weight histograms drawn.
const BINS: usize = 40;

/// Densities of `values` on `BINS` bins over [low, high): (bin centre, density) points.
pub fn histogram(values: &[f64], low: f64, high: f64) -> Vec<(f64, f64)> {
    let width = (high - low) / BINS as f64;
    let mut counts = [0usize; BINS];
    for v in values {
        let k = ((v - low) / width).floor();
        if k >= 0.0 && (k as usize) < BINS {
            counts[k as usize] += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(k, c)| {
            (
                low + (k as f64 + 0.5) * width,
                *c as f64 / (values.len() as f64 * width),
            )
        })
        .collect()
}
