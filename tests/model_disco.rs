//! Paper 003 (DisCo-SGD): the theory of src/analysis/disco.rs against values these tests compute
//! by other methods: closed forms, the CDF of each distribution, and sampling.

use dale::analysis::disco::{
    constrained_capacity, gardner_capacity, generalisation_error, jacobian_factor, normal_cdf,
    normal_pdf, wasserstein2, EiLognormal, WeightDistribution,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Quadrature on panels of 1/4 with 16 nodes is exact to rounding for these smooth integrands;
/// the closed forms they are checked against are evaluated to rounding too.
const QUADRATURE: f64 = 1e-12;

fn standard() -> WeightDistribution {
    WeightDistribution::Normal { mean: 0.0, sd: 1.0 }
}

/// Several shapes at unit second moment, the empirical one included.
fn shapes() -> Vec<(&'static str, WeightDistribution)> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let measured: Vec<f64> = (0..1000)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (0.5 * z).exp()
        })
        .collect();
    vec![
        (
            "normal, s = 0.6",
            WeightDistribution::Normal { mean: 0.8, sd: 0.6 },
        ),
        (
            "lognormal",
            WeightDistribution::LogNormal {
                mu: 0.0,
                sigma: 0.9,
            }
            .unit(),
        ),
        (
            "negative lognormal",
            WeightDistribution::NegLogNormal {
                mu: -1.0,
                sigma: 0.5,
            }
            .unit(),
        ),
        ("half-normal", WeightDistribution::HalfNormal { scale: 1.0 }),
        (
            "uniform",
            WeightDistribution::Uniform {
                low: -0.5,
                high: 2.0,
            }
            .unit(),
        ),
        (
            "empirical",
            WeightDistribution::empirical(&measured).unwrap().unit(),
        ),
    ]
}

#[test]
fn gardner_capacity_is_two_at_zero_margin_and_the_closed_form_elsewhere() {
    assert!(
        (gardner_capacity(0.0) - 2.0).abs() < QUADRATURE,
        "{}",
        gardner_capacity(0.0)
    );
    // int_{-k}^inf Dt (k + t)^2 = (k^2 + 1) P(k) + k phi(k), by parts.
    for kappa in [0.5, 1.3] {
        let closed = 1.0 / ((kappa * kappa + 1.0) * normal_cdf(kappa) + kappa * normal_pdf(kappa));
        let got = gardner_capacity(kappa);
        assert!(
            (got - closed).abs() < QUADRATURE * closed,
            "kappa {kappa}: {got} vs {closed}"
        );
    }
}

#[test]
fn the_jacobian_factor_of_the_shifted_normal_is_its_width() {
    // Fig. 2c-d: q = N(sqrt(1 - s^2), s^2) gives <dw/dx> = s, so alpha_c(0) = 2 s^2.
    for s in [0.1f64, 0.4, 0.6, 0.8, 1.0] {
        let q = WeightDistribution::Normal {
            mean: (1.0 - s * s).sqrt(),
            sd: s,
        };
        let factor = jacobian_factor(&q);
        assert!((factor - s).abs() < QUADRATURE, "s {s}: {factor}");
        let alpha = constrained_capacity(0.0, &[(1.0, &q)]);
        assert!(
            (alpha - 2.0 * s * s).abs() < 4.0 * QUADRATURE,
            "s {s}: alpha_c {alpha}"
        );
    }
}

#[test]
fn eq_5_the_jacobian_factor_is_one_minus_half_w2_squared() {
    for (name, q) in shapes() {
        let m2 = q.second_moment();
        assert!((m2 - 1.0).abs() < 1e-12, "{name}: <w^2> = {m2}");
        let factor = jacobian_factor(&q);
        let w2 = wasserstein2(&q, &standard());
        // The empirical distribution is integrated piece by piece between 999 steps: its sum
        // carries about 1e3 roundings more.
        let tol = if name == "empirical" {
            1e-10
        } else {
            QUADRATURE
        };
        assert!(
            (factor - (1.0 - 0.5 * w2 * w2)).abs() < tol,
            "{name}: <dw/dx> {factor} vs 1 - W2^2/2 = {}",
            1.0 - 0.5 * w2 * w2
        );
        assert!((0.0..=1.0).contains(&factor), "{name}: {factor}");
    }
}

#[test]
fn w2_between_normals_is_the_closed_form() {
    // W2(N(m, s^2), N(0, 1))^2 = m^2 + (s - 1)^2.
    for (m, s) in [(0.8, 0.6), (-1.5, 2.0), (0.0, 1.0)] {
        let got = wasserstein2(&WeightDistribution::Normal { mean: m, sd: s }, &standard());
        let want = (m * m + (s - 1.0f64).powi(2)).sqrt();
        assert!((got - want).abs() < 1e-10, "N({m}, {s}^2): {got} vs {want}");
    }
}

/// The CDF of each parametric shape, written from its definition.
fn cdf(q: &WeightDistribution, w: f64) -> f64 {
    match *q {
        WeightDistribution::Normal { mean, sd } => normal_cdf((w - mean) / sd),
        WeightDistribution::LogNormal { mu, sigma } => normal_cdf((w.ln() - mu) / sigma),
        WeightDistribution::NegLogNormal { mu, sigma } => {
            1.0 - normal_cdf(((-w).ln() - mu) / sigma)
        }
        WeightDistribution::HalfNormal { scale } => 2.0 * normal_cdf(w / scale) - 1.0,
        WeightDistribution::Uniform { low, high } => (w - low) / (high - low),
        WeightDistribution::Empirical { .. } => unreachable!("checked apart"),
    }
}

#[test]
fn targets_are_the_quantiles_of_the_ranks() {
    let n = 1001;
    for (name, q) in shapes() {
        let targets = q.targets(n);
        assert!(
            targets.windows(2).all(|t| t[0] <= t[1]),
            "{name}: ascending"
        );
        if let WeightDistribution::Empirical { sorted } = &q {
            // Rank r's target is the sample at the empirical CDF's step that (r + 1/2) / N
            // reaches: with M = 1000 samples, ceil((r + 1/2) M / N) - 1.
            for r in [0, 1, 500, 999, 1000] {
                let k = ((r as f64 + 0.5) * sorted.len() as f64 / n as f64).ceil() as usize - 1;
                assert_eq!(targets[r], sorted[k] as f32, "{name}: rank {r}");
            }
            continue;
        }
        for (r, &t) in targets.iter().enumerate() {
            let u = (r as f64 + 0.5) / n as f64;
            // f32 targets: the CDF moves by its density times half an f32 step of t.
            let tol = 1e-6 * (1.0 + f64::from(t).abs()) * 4.0;
            assert!(
                (cdf(&q, f64::from(t)) - u).abs() < tol,
                "{name}: rank {r}, Q({t}) vs {u}"
            );
        }
    }
}

#[test]
fn the_ei_lognormal_is_balanced_with_unit_second_moment() {
    // Checked by sampling: 10^6 draws of each population, means and second moments within five
    // standard errors.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (g_e, sigma_e, sigma_i) in [(0.8, 0.5, 0.5), (0.7, 1.0, 0.6)] {
        let ei = EiLognormal::balanced(g_e, sigma_e, sigma_i);
        let draws = 1_000_000;
        let moments = |mu: f64, sigma: f64, rng: &mut ChaCha8Rng| {
            let w: Vec<f64> = (0..draws)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut *rng);
                    (mu + sigma * z).exp()
                })
                .collect();
            let mean = w.iter().sum::<f64>() / draws as f64;
            let m2 = w.iter().map(|v| v * v).sum::<f64>() / draws as f64;
            let m4 = w.iter().map(|v| v.powi(4)).sum::<f64>() / draws as f64;
            let se_mean = ((m2 - mean * mean) / draws as f64).sqrt();
            let se_m2 = ((m4 - m2 * m2) / draws as f64).sqrt();
            (mean, m2, se_mean, se_m2)
        };
        let (e_mean, e_m2, e_se, e_se2) = moments(ei.mu_e, sigma_e, &mut rng);
        let (i_mean, i_m2, i_se, i_se2) = moments(ei.mu_i, sigma_i, &mut rng);
        let g_i = 1.0 - g_e;
        let imbalance = g_e * e_mean - g_i * i_mean;
        assert!(
            imbalance.abs() < 5.0 * (g_e * e_se + g_i * i_se),
            "{g_e}: imbalance {imbalance}"
        );
        let m2 = g_e * e_m2 + g_i * i_m2;
        assert!(
            (m2 - 1.0).abs() < 5.0 * (g_e * e_se2 + g_i * i_se2),
            "{g_e}: <w^2> {m2}"
        );
        // Eq. 10 adds the populations' factors before squaring: below Gardner's 2 at kappa 0.
        let alpha = ei.capacity(0.0);
        assert!(alpha > 0.0 && alpha < 2.0, "{g_e}: alpha_c {alpha}");
    }
}

#[test]
fn generalisation_error_at_the_ends() {
    assert!(generalisation_error(1.0, 0.0).abs() < 1e-12);
    assert!((generalisation_error(0.0, 0.0) - 0.5).abs() < 1e-12);
    // cos(pi / 3) = 1/2: an overlap of 1/2 errs a third of the time; noise shrinks the overlap
    // the labels carry by 1 / sqrt(1 + sigma^2).
    assert!((generalisation_error(0.5, 0.0) - 1.0 / 3.0).abs() < 1e-12);
    assert!((generalisation_error(0.5 * 2f64.sqrt(), 1.0) - 1.0 / 3.0).abs() < 1e-12);
}

#[test]
fn empirical_samples_must_be_finite() {
    assert!(WeightDistribution::empirical(&[]).is_err());
    let err = WeightDistribution::empirical(&[1.0, f64::NAN]).unwrap_err();
    assert!(err.contains("sample 1"), "{err}");
}

#[test]
fn normal_quantile_inverts_the_cdf() {
    use dale::analysis::disco::normal_quantile;
    // P^-1(0.975) to 16 digits (tables), and round trips from the far tails to the median.
    assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-14);
    for x in [-37.0, -20.0, -8.0, -1.0, -1e-3, 0.0, 0.3, 4.0, 8.0] {
        let back = normal_quantile(normal_cdf(x));
        // Above the median u = P(x) carries 1e-16 absolute, so x only to 1e-16 / phi(x).
        let tol = if x > 0.0 {
            4e-16 / normal_pdf(x)
        } else {
            1e-14 * (1.0 + x.abs())
        };
        assert!((back - x).abs() < tol, "x {x}: {back}");
    }
}
