//! Paper 003's theory (Zhong, Sorscher, Lee & Sompolinsky), in f64: the weight distributions a
//! perceptron may be held to and their quantiles, Gardner's capacity alpha_0(kappa), the Jacobian
//! factor <dw/dx> (eq. 4) and the capacity of one or several populations (eq. 3, 10), the W2
//! distance (eq. 6), the E/I lognormal parameterisation (section 4) and the teacher-student
//! generalisation error (section 5).
//!
//! Integrals over u in (0, 1) are taken over the normal score x = P^-1(u) instead, where
//! du = phi(x) dx: Q^-1(P(x)) is smooth in x for every distribution here but the empirical one
//! (a step function, integrated piece by piece between its steps), and the tails are explicit.

use std::f64::consts::{PI, SQRT_2};
use std::sync::OnceLock;

/// The standard normal density phi(x).
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// The standard normal CDF P(x), accurate in both tails.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// P^-1(u) for u in [0, 1] (infinite at the ends): Abramowitz & Stegun 26.2.23 (error below
/// 4.5e-4), then Newton's method on ln P(x) = ln u, whose slope phi / P stays near |x| deep in the
/// tail, to full precision. Above 1/2 by symmetry.
pub fn normal_quantile(u: f64) -> f64 {
    if u > 0.5 {
        return -normal_quantile(1.0 - u);
    }
    if u <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if u == 0.5 {
        return 0.0;
    }
    let t = (-2.0 * u.ln()).sqrt();
    let mut x = -(t
        - (2.515517 + 0.802853 * t + 0.010328 * t * t)
            / (1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t));
    let target = u.ln();
    for _ in 0..50 {
        let p = normal_cdf(x);
        let step = (p.ln() - target) * p / normal_pdf(x);
        x -= step;
        if step.abs() <= 1e-15 * x.abs().max(1e-300) {
            break;
        }
    }
    x
}

/// A distribution the weights of a perceptron (or of one population) are held to.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightDistribution {
    /// N(mean, sd^2); N(sqrt(1 - s^2), s^2) is Fig. 2's family.
    Normal {
        mean: f64,
        sd: f64,
    },
    /// e^(mu + sigma z), z standard normal: excitatory weights.
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    /// -e^(mu + sigma z): inhibitory weights.
    NegLogNormal {
        mu: f64,
        sigma: f64,
    },
    /// |scale z|.
    HalfNormal {
        scale: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// Measured weights, ascending; Q^-1 is the inverse of their empirical CDF:
    /// Q^-1(u) = sorted[ceil(u M) - 1] for M samples (NumPy's "inverted_cdf" quantile).
    Empirical {
        sorted: Vec<f64>,
    },
}

/// Scores beyond this (plus the lognormals' 2 sigma, where their second moment's integrand
/// peaks) hold less than e^-72 of any integral here relative to its largest part.
const SCORE_SPAN: f64 = 12.0;

impl WeightDistribution {
    /// The empirical distribution of `samples`: an error naming the first sample that is not
    /// finite, or the empty list.
    pub fn empirical(samples: &[f64]) -> Result<Self, String> {
        if samples.is_empty() {
            return Err("no samples; allowed: at least one finite weight".into());
        }
        if let Some((i, v)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(format!("sample {i} = {v}; allowed: finite weights"));
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Ok(WeightDistribution::Empirical { sorted })
    }

    /// Q^-1(u), u in (0, 1).
    pub fn quantile(&self, u: f64) -> f64 {
        match self {
            Self::Normal { mean, sd } => mean + sd * normal_quantile(u),
            Self::LogNormal { mu, sigma } => (mu + sigma * normal_quantile(u)).exp(),
            Self::NegLogNormal { mu, sigma } => -(mu - sigma * normal_quantile(u)).exp(),
            Self::HalfNormal { scale } => scale * normal_quantile(0.5 + 0.5 * u),
            Self::Uniform { low, high } => low + (high - low) * u,
            Self::Empirical { sorted } => {
                let m = sorted.len();
                let k = ((u * m as f64).ceil() as usize).clamp(1, m);
                sorted[k - 1]
            }
        }
    }

    /// Q^-1(P(x)): the weight at normal score x, without the loss of digits that forming P(x)
    /// first costs in the upper tail.
    pub fn at_score(&self, x: f64) -> f64 {
        match self {
            Self::Normal { mean, sd } => mean + sd * x,
            Self::LogNormal { mu, sigma } => (mu + sigma * x).exp(),
            Self::NegLogNormal { mu, sigma } => -(mu - sigma * x).exp(),
            // Q^-1(u) = scale P^-1((1 + u) / 2); above the median, from 1 - u = P(-x).
            Self::HalfNormal { scale } if x > 0.0 => -scale * normal_quantile(0.5 * normal_cdf(-x)),
            Self::HalfNormal { scale } => scale * normal_quantile(0.5 + 0.5 * normal_cdf(x)),
            Self::Uniform { low, high } if x > 0.0 => high - (high - low) * normal_cdf(-x),
            Self::Uniform { low, high } => low + (high - low) * normal_cdf(x),
            Self::Empirical { .. } => self.quantile(normal_cdf(x)),
        }
    }

    /// <w>.
    pub fn mean(&self) -> f64 {
        match self {
            Self::Normal { mean, .. } => *mean,
            Self::LogNormal { mu, sigma } => (mu + 0.5 * sigma * sigma).exp(),
            Self::NegLogNormal { mu, sigma } => -(mu + 0.5 * sigma * sigma).exp(),
            Self::HalfNormal { scale } => scale * (2.0 / PI).sqrt(),
            Self::Uniform { low, high } => 0.5 * (low + high),
            Self::Empirical { sorted } => sorted.iter().sum::<f64>() / sorted.len() as f64,
        }
    }

    /// <w^2>.
    pub fn second_moment(&self) -> f64 {
        match self {
            Self::Normal { mean, sd } => mean * mean + sd * sd,
            Self::LogNormal { mu, sigma } | Self::NegLogNormal { mu, sigma } => {
                (2.0 * mu + 2.0 * sigma * sigma).exp()
            }
            Self::HalfNormal { scale } => scale * scale,
            Self::Uniform { low, high } => (low * low + low * high + high * high) / 3.0,
            Self::Empirical { sorted } => {
                sorted.iter().map(|w| w * w).sum::<f64>() / sorted.len() as f64
            }
        }
    }

    /// The distribution of k w (k > 0).
    pub fn scaled(&self, k: f64) -> Self {
        match self {
            Self::Normal { mean, sd } => Self::Normal {
                mean: mean * k,
                sd: sd * k,
            },
            Self::LogNormal { mu, sigma } => Self::LogNormal {
                mu: mu + k.ln(),
                sigma: *sigma,
            },
            Self::NegLogNormal { mu, sigma } => Self::NegLogNormal {
                mu: mu + k.ln(),
                sigma: *sigma,
            },
            Self::HalfNormal { scale } => Self::HalfNormal { scale: scale * k },
            Self::Uniform { low, high } => Self::Uniform {
                low: low * k,
                high: high * k,
            },
            Self::Empirical { sorted } => Self::Empirical {
                sorted: sorted.iter().map(|w| w * k).collect(),
            },
        }
    }

    /// The same shape scaled to <w^2> = 1, as the paper fixes the scale (section 2.1).
    pub fn unit(&self) -> Self {
        self.scaled(1.0 / self.second_moment().sqrt())
    }

    /// The targets of the transport step (eq. 8) for N weights: w_hat_r = Q^-1((r + 1/2) / N),
    /// the weight of rank r. The same for every perceptron of a run, so computed once, here.
    pub fn targets(&self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|r| self.quantile((r as f64 + 0.5) / n as f64) as f32)
            .collect()
    }

    /// Half-width of the scores integrals over this distribution need.
    fn score_span(&self) -> f64 {
        match self {
            Self::LogNormal { sigma, .. } | Self::NegLogNormal { sigma, .. } => {
                SCORE_SPAN + 2.0 * sigma.abs()
            }
            _ => SCORE_SPAN,
        }
    }

    /// The scores where `at_score` steps (the empirical distribution's k / M).
    fn steps(&self) -> Vec<f64> {
        match self {
            Self::Empirical { sorted } => {
                let m = sorted.len();
                (1..m)
                    .map(|k| normal_quantile(k as f64 / m as f64))
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

/// E[f(x)] over a standard normal score x, f smooth between `steps` (ascending), on
/// [-span, span].
fn over_scores(f: impl Fn(f64) -> f64, span: f64, steps: &[f64]) -> f64 {
    let mut edges = vec![-span];
    edges.extend(steps.iter().copied().filter(|s| s.abs() < span));
    edges.push(span);
    edges
        .windows(2)
        .map(|e| integrate(|x| normal_pdf(x) * f(x), e[0], e[1]))
        .sum()
}

/// Nodes and weights of 16-point Gauss-Legendre quadrature on [-1, 1], by Newton's method on
/// the Legendre polynomial.
fn legendre16() -> &'static [(f64, f64); 16] {
    static RULE: OnceLock<[(f64, f64); 16]> = OnceLock::new();
    RULE.get_or_init(|| {
        const N: usize = 16;
        std::array::from_fn(|i| {
            let mut x = (PI * (i as f64 + 0.75) / (N as f64 + 0.5)).cos();
            let mut derivative = 0.0;
            for _ in 0..100 {
                // P_N(x) and P_N'(x) by the three-term recurrence.
                let (mut p0, mut p1) = (1.0, x);
                for k in 2..=N {
                    let k = k as f64;
                    (p0, p1) = (p1, ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k);
                }
                derivative = N as f64 * (x * p1 - p0) / (x * x - 1.0);
                let dx = p1 / derivative;
                x -= dx;
                if dx.abs() < 1e-16 {
                    break;
                }
            }
            (x, 2.0 / ((1.0 - x * x) * derivative * derivative))
        })
    })
}

/// The integral of f over [a, b]: 16-point Gauss-Legendre on panels at most 1/4 wide (exact to
/// f64 rounding for the smooth integrands here: each is analytic on its panel).
pub fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    integrate_panels(f, a, b, 0.25)
}

/// `integrate` on panels at most `width` wide, for an integrand that turns on a shorter scale.
fn integrate_panels(f: impl Fn(f64) -> f64, a: f64, b: f64, width: f64) -> f64 {
    if b <= a {
        return 0.0;
    }
    let panels = ((b - a) / width).ceil().max(1.0) as usize;
    let width = (b - a) / panels as f64;
    (0..panels)
        .map(|p| {
            let mid = a + (p as f64 + 0.5) * width;
            legendre16()
                .iter()
                .map(|(x, w)| w * f(mid + 0.5 * width * x))
                .sum::<f64>()
                * 0.5
                * width
        })
        .sum()
}

/// Gardner's capacity of an unconstrained perceptron at margin kappa:
/// alpha_0 = [ int_{-kappa}^inf Dt (kappa + t)^2 ]^-1, by quadrature.
pub fn gardner_capacity(kappa: f64) -> f64 {
    let top = kappa.abs() + SCORE_SPAN;
    1.0 / integrate(|t| normal_pdf(t) * (kappa + t).powi(2), -kappa, top)
}

/// <dw/dx> = int_0^1 Q^-1(u) P^-1(u) du (eq. 4).
pub fn jacobian_factor(q: &WeightDistribution) -> f64 {
    over_scores(|x| x * q.at_score(x), q.score_span(), &q.steps())
}

/// W2(Q, R) = [ int_0^1 (Q^-1(u) - R^-1(u))^2 du ]^(1/2) (eq. 6).
pub fn wasserstein2(q: &WeightDistribution, r: &WeightDistribution) -> f64 {
    let mut steps = [q.steps(), r.steps()].concat();
    steps.sort_by(f64::total_cmp);
    let span = q.score_span().max(r.score_span());
    over_scores(|x| (q.at_score(x) - r.at_score(x)).powi(2), span, &steps).sqrt()
}

/// Capacity at margin kappa of a perceptron whose populations hold fractions g_m of its weights,
/// each held to its distribution (eq. 10; one population of fraction 1 is eq. 3). The weights
/// are taken as given: the paper scales them so that sum_m g_m <w_m^2> = 1.
pub fn constrained_capacity(kappa: f64, populations: &[(f64, &WeightDistribution)]) -> f64 {
    let factor: f64 = populations
        .iter()
        .map(|(g, q)| g * jacobian_factor(q))
        .sum();
    gardner_capacity(kappa) * factor * factor
}

/// The E/I lognormal perceptron of section 4: a fraction g_e of excitatory weights
/// e^(mu_e + sigma_e z) and 1 - g_e inhibitory ones -e^(mu_i + sigma_i z), with mu_e and mu_i
/// fixed by balance (g_e <w_e> = g_i <|w_i|>) and a total second moment of 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EiLognormal {
    pub g_e: f64,
    pub mu_e: f64,
    pub sigma_e: f64,
    pub mu_i: f64,
    pub sigma_i: f64,
}

impl EiLognormal {
    /// g_e in (0, 1); sigmas finite.
    pub fn balanced(g_e: f64, sigma_e: f64, sigma_i: f64) -> Self {
        let g_i = 1.0 - g_e;
        // With a = e^mu_e, b = e^mu_i: balance gives b / a, the second moment then a.
        let ratio = g_e * (0.5 * sigma_e * sigma_e).exp() / (g_i * (0.5 * sigma_i * sigma_i).exp());
        let a2 = 1.0
            / (g_e * (2.0 * sigma_e * sigma_e).exp()
                + g_i * ratio * ratio * (2.0 * sigma_i * sigma_i).exp());
        let mu_e = 0.5 * a2.ln();
        EiLognormal {
            g_e,
            mu_e,
            sigma_e,
            mu_i: mu_e + ratio.ln(),
            sigma_i,
        }
    }

    /// (fraction, distribution) of the excitatory and the inhibitory weights.
    pub fn populations(&self) -> [(f64, WeightDistribution); 2] {
        [
            (
                self.g_e,
                WeightDistribution::LogNormal {
                    mu: self.mu_e,
                    sigma: self.sigma_e,
                },
            ),
            (
                1.0 - self.g_e,
                WeightDistribution::NegLogNormal {
                    mu: self.mu_i,
                    sigma: self.sigma_i,
                },
            ),
        ]
    }

    /// sum_m g_m <dw^m/dx> (eq. 10's factor) in closed form: for a lognormal w = e^(mu + sigma x),
    /// <dw/dx> = <x w> = sigma <w> (Stein's lemma), the same for the inhibitory -w.
    pub fn jacobian_factor(&self) -> f64 {
        let mean = |mu: f64, sigma: f64| (mu + 0.5 * sigma * sigma).exp();
        self.g_e * self.sigma_e * mean(self.mu_e, self.sigma_e)
            + (1.0 - self.g_e) * self.sigma_i * mean(self.mu_i, self.sigma_i)
    }

    /// Fig. 4a: the balanced E/I lognormal of the largest capacity at g_e, over sigma_e and
    /// sigma_i on a grid of 0.005 in (0, 4], refined by halving the grid about the best point.
    pub fn optimum(g_e: f64) -> Self {
        let factor = |se: f64, si: f64| EiLognormal::balanced(g_e, se, si).jacobian_factor();
        let (mut best, mut step) = ((1.0, 1.0), 0.005);
        let mut best_factor = factor(best.0, best.1);
        for i in 1..=800 {
            for j in 1..=800 {
                let (se, si) = (i as f64 * step, j as f64 * step);
                let f = factor(se, si);
                if f > best_factor {
                    (best, best_factor) = ((se, si), f);
                }
            }
        }
        for _ in 0..30 {
            step *= 0.5;
            let centre = best;
            for (di, dj) in [(-1.0, 0.0), (1.0, 0.0), (0.0, -1.0), (0.0, 1.0)] {
                let (se, si) = (centre.0 + di * step, centre.1 + dj * step);
                let f = factor(se, si);
                if se > 0.0 && si > 0.0 && f > best_factor {
                    (best, best_factor) = ((se, si), f);
                }
            }
        }
        EiLognormal::balanced(g_e, best.0, best.1)
    }

    /// alpha_c(kappa) by eq. 10.
    pub fn capacity(&self, kappa: f64) -> f64 {
        let [(g_e, e), (g_i, i)] = self.populations();
        constrained_capacity(kappa, &[(g_e, &e), (g_i, &i)])
    }
}

/// The student's generalisation error at teacher-student overlap R with label noise of standard
/// deviation noise_sd: eps_g = arccos(R / sqrt(1 + noise_sd^2)) / pi (section 5.1).
pub fn generalisation_error(overlap: f64, noise_sd: f64) -> f64 {
    (overlap / (1.0 + noise_sd * noise_sd).sqrt())
        .clamp(-1.0, 1.0)
        .acos()
        / PI
}

/// The maximally stable (max-margin) student of a noiseless teacher, unconstrained (section 5.1's
/// baseline, from [61, 22]): its overlap R with the teacher and its margin kappa at load alpha.
/// Patterns are isotropic, so the teacher's weight distribution does not enter. In Gardner's
/// q -> 1 limit the volume of students at overlap R and margin kappa vanishes where
///     G(R, kappa) = 1 - R^2 - alpha I(R, kappa) = 0,
///     I = int_{-inf}^kappa Dt 2 P(R t / sqrt(1 - R^2)) (kappa - t)^2,
/// and the max-margin student sits at the maximum over R: dG/dR = 0 as well. For each R the
/// second condition, (1 - R^2) dI/dR + 2 R I = 0, fixes kappa, and the first then alpha(R),
/// which rises with R; alpha is inverted by bisection. R -> sqrt(2 alpha / pi) as alpha -> 0
/// (the Hebbian student) and eps_g -> 0.50 / alpha as alpha grows.
pub fn max_margin_student(alpha: f64) -> (f64, f64) {
    // (alpha, kappa) at overlap R.
    let at_overlap = |r: f64| {
        let c = (1.0 - r * r).sqrt();
        // The teacher's factor turns over |t| ~ c / R about 0, and is flat to 1e-20 beyond ten
        // times that: fine panels there, the usual ones elsewhere.
        let width = (c / r).clamp(1e-6, 0.25);
        let integrals = |kappa: f64| {
            let low = -(SCORE_SPAN + kappa.abs());
            let part = |f: &dyn Fn(f64) -> f64| {
                let mut edges = vec![low, -10.0 * width, 0.0, 10.0 * width, kappa];
                edges.retain(|e| *e <= kappa && *e >= low);
                edges.sort_by(f64::total_cmp);
                edges
                    .windows(2)
                    .map(|e| {
                        let fine = e[0] >= -10.0 * width && e[1] <= 10.0 * width;
                        integrate_panels(f, e[0], e[1], if fine { width } else { 0.25 })
                    })
                    .sum::<f64>()
            };
            let i = part(&|t| 2.0 * normal_cdf(r * t / c) * (kappa - t).powi(2) * normal_pdf(t));
            let di =
                part(&|t| 2.0 * normal_pdf(r * t / c) * t * (kappa - t).powi(2) * normal_pdf(t))
                    / (c * c * c);
            (i, di)
        };
        let stationary = |kappa: f64| {
            let (i, di) = integrals(kappa);
            c * c * di + 2.0 * r * i
        };
        // Negative at kappa 0 (only the fields t < 0 count), positive for kappa large enough.
        let (mut low, mut high) = (0.0, 1.0);
        while stationary(high) < 0.0 {
            high *= 2.0;
        }
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if stationary(mid) < 0.0 {
                low = mid;
            } else {
                high = mid;
            }
        }
        let kappa = 0.5 * (low + high);
        ((1.0 - r * r) / integrals(kappa).0, kappa)
    };
    let (mut low, mut high) = (0.0f64, 1.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if at_overlap(mid).0 < alpha {
            low = mid;
        } else {
            high = mid;
        }
    }
    let r = 0.5 * (low + high);
    (r, at_overlap(r).1)
}
