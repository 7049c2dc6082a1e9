//! Paper 003 (DisCo-SGD): the theory of src/analysis/disco.rs against values these tests compute
//! by other methods: closed forms, the CDF of each distribution, and sampling; DisCo-SGD's
//! training against the capacity the theory gives, on the CPU backend and on the GPU.

mod common;

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

/// Eq. 10's factor by quadrature (eq. 4 for each population) against its closed form for
/// lognormals, sigma <|w|> per population; and Fig. 4a's optimum is a maximum of the landscape.
#[test]
fn ei_capacity_by_quadrature_matches_the_closed_form_and_the_optimum_is_a_maximum() {
    for (g_e, sigma_e, sigma_i) in [(0.8, 0.5, 0.5), (0.6, 1.2, 0.3), (0.9, 2.0, 1.5)] {
        let ei = EiLognormal::balanced(g_e, sigma_e, sigma_i);
        let closed = gardner_capacity(0.0) * ei.jacobian_factor().powi(2);
        let quadrature = ei.capacity(0.0);
        assert!(
            (quadrature / closed - 1.0).abs() < 1e-10,
            "{g_e} {sigma_e} {sigma_i}: {quadrature} vs {closed}"
        );
    }
    let best = EiLognormal::optimum(0.8);
    let alpha = best.capacity(0.0);
    for (de, di) in [(0.02, 0.0), (-0.02, 0.0), (0.0, 0.02), (0.0, -0.02)] {
        let near = EiLognormal::balanced(0.8, best.sigma_e + de, best.sigma_i + di).capacity(0.0);
        assert!(
            near < alpha,
            "({de}, {di}): {near} above the optimum's {alpha}"
        );
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

/// The unconstrained max-margin student (section 5.1) at its two ends, each known apart from
/// the saddle-point equations solved here: at small loads every pattern is a support vector of
/// equal stability and the student is Hebb's, R = sqrt(2 alpha / pi); at large loads
/// eps_g = 0.5005 / alpha (Opper, Kinzel, Kleinz & Nehl 1990, the maximally stable perceptron).
#[test]
fn max_margin_student_at_small_and_large_loads() {
    use dale::analysis::disco::max_margin_student;
    let alpha: f64 = 1e-3;
    let (r, kappa) = max_margin_student(alpha);
    let hebb = (2.0 * alpha / std::f64::consts::PI).sqrt();
    // The next order is O(alpha) relative: 1e-3 here (1.8e-4 measured).
    assert!((r / hebb - 1.0).abs() < 1e-3, "R {r} against Hebb's {hebb}");
    // Every pattern at the margin, and the margin the Gardner bound allows: kappa^2 ~ 1 / alpha.
    assert!((kappa * alpha.sqrt() - 1.0).abs() < 0.01, "kappa {kappa}");
    let alpha = 300.0;
    let (r, _) = max_margin_student(alpha);
    let scaled = alpha * generalisation_error(r, 0.0);
    // The 1 / alpha law's correction at alpha = 300 is below 1e-3 relative (0.50048 measured).
    assert!((scaled / 0.5005 - 1.0).abs() < 2e-3, "alpha eps_g {scaled}");
    // R rises with alpha between the ends.
    let rs: Vec<f64> = [0.1, 1.0, 10.0]
        .iter()
        .map(|a| max_margin_student(*a).0)
        .collect();
    assert!(rs.windows(2).all(|w| w[1] > w[0]), "{rs:?}");
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

mod training {
    use super::*;
    use dale::analysis::disco::wasserstein2;
    use dale::backend::cpu::CpuBackend;
    use dale::backend::perceptron::Rates;
    use dale::models::disco::{
        train, Constraint, DiscoParams, DiscoRun, Labels, Population, Start,
    };

    /// Problems of N = 200 weights held to N(sqrt(1 - s^2), s^2) with s = 0.6, whose capacity is
    /// 2 s^2 = 0.72 (eq. 3) as N grows.
    fn params(load: f64) -> DiscoParams {
        let s: f64 = 0.6;
        DiscoParams {
            problems: 8,
            patterns: (load * 200.0).round() as usize,
            constraint: Constraint::Distributions(vec![Population {
                size: 200,
                distribution: WeightDistribution::Normal {
                    mean: (1.0 - s * s).sqrt(),
                    sd: s,
                },
            }]),
            labels: Labels::Random,
            start: Start::Sample,
            batch: 50,
            rates: Rates {
                weights: 0.01,
                beta: 0.001,
            },
            transport_rate: 0.1,
            beta0: 1.0 / 200f32.sqrt(),
            kappa: 0.0,
            max_steps: 3000,
            check_every: 100,
            stop_when_solved: true,
            record_weights: false,
            seed: 5,
        }
    }

    fn run(load: f64) -> DiscoRun {
        rayon::scope(|_| train(&mut CpuBackend::new(), &params(load)).unwrap())
    }

    #[test]
    fn below_capacity_every_problem_is_solved_on_the_distribution() {
        let p = params(0.3);
        let r = run(0.3);
        assert!(
            r.solved_at.iter().all(Option::is_some),
            "{:?} {:?}",
            r.solved_at,
            r.errors
        );
        // The weights trained on are near the target: W2 of each problem's empirical
        // distribution to q is a small part of its unit scale.
        let Constraint::Distributions(pops) = &p.constraint else {
            unreachable!("params() holds the weights to a distribution")
        };
        let q = &pops[0].distribution;
        for (b, w) in r.weights.chunks(200).enumerate() {
            let empirical =
                WeightDistribution::empirical(&w.iter().map(|v| f64::from(*v)).collect::<Vec<_>>())
                    .unwrap();
            let d = wasserstein2(&empirical, q);
            assert!(d < 0.1, "problem {b}: W2 to the target {d}");
        }
    }

    #[test]
    fn far_above_capacity_no_problem_is_solved() {
        let r = run(1.2);
        assert!(r.solved_at.iter().all(Option::is_none), "{:?}", r.solved_at);
        assert!(r.errors.iter().all(|e| *e > 0), "{:?}", r.errors);
    }
}

#[test]
fn disco_sgd_on_the_gpu_follows_the_cpu() {
    use dale::backend::cpu::CpuBackend;
    use dale::backend::gpu::GpuBackend;
    use dale::backend::perceptron::Rates;
    use dale::models::disco::{train, Constraint, DiscoParams, Labels, Population, Start};
    let Some(ctx) = common::gpu() else { return };
    // Two populations (an E/I split of 61 + 40 weights) and a mini-batch that wraps.
    let ei = EiLognormal::balanced(0.6, 0.5, 0.5);
    let [(_, e), (_, i)] = ei.populations();
    let params = DiscoParams {
        problems: 3,
        patterns: 70,
        constraint: Constraint::Distributions(vec![
            Population {
                size: 61,
                distribution: e,
            },
            Population {
                size: 40,
                distribution: i,
            },
        ]),
        labels: Labels::Random,
        start: Start::Sample,
        batch: 33,
        rates: Rates {
            weights: 0.01,
            beta: 0.001,
        },
        transport_rate: 0.1,
        beta0: 0.1,
        kappa: 0.0,
        max_steps: 60,
        check_every: 20,
        stop_when_solved: true,
        record_weights: false,
        seed: 9,
    };
    let cpu = rayon::scope(|_| train(&mut CpuBackend::new(), &params).unwrap());
    let gpu = train(&mut GpuBackend::new(ctx), &params).unwrap();
    assert_eq!(gpu.steps, cpu.steps);
    // 60 steps of f32 sums in another order: the weights drift apart by rounding only (2.4e-7
    // measured on lavapipe); two near-equal weights swapping ranks would move each by the rate
    // times their targets' gap, about 1e-3, and fail this.
    let worst = gpu
        .weights
        .iter()
        .zip(&cpu.weights)
        .map(|(g, c)| (g - c).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "largest weight difference {worst}");
    assert_eq!(gpu.errors, cpu.errors, "errors at the last check");
}

#[test]
fn capacity_scenes_refuse_bad_values_naming_the_field() {
    use dale::scene::Scene;
    let scene = |params: &str| {
        format!(
            r#"{{"model": "disco", "seed": 1, "steps": 10, "params": {{"experiment": "capacity",
            "n": 100, "problems": 2, "tolerance": 0.1, {params}}}}}"#
        )
    };
    let training = r#""training": {"batch": 10, "eta1_times_n": 3.0, "rate_beta": 0.001,
        "transport_rate": 0.02, "check_every": 5}"#;
    let good = format!(
        r#""distributions": [{{"shifted_normal": {{"s": 0.6}}}}], "load_ratios": [0.5, 1.5], {training}"#
    );
    assert!(Scene::parse(&scene(&good)).is_ok());
    let bad_training = good.replace(r#""transport_rate": 0.02"#, r#""transport_rate": 1.5"#);
    let no_samples = good.replace(
        r#"{"shifted_normal": {"s": 0.6}}"#,
        r#"{"empirical": {"samples": ""}}"#,
    );
    for (params, path, says) in [
        (
            bad_training.as_str(),
            "params.training.transport_rate",
            "0 < rate <= 1",
        ),
        (
            no_samples.as_str(),
            "params.distributions[0].empirical.samples",
            "a .npy file",
        ),
    ] {
        let err = Scene::parse(&scene(params)).unwrap_err().to_string();
        assert!(err.contains(path) && err.contains(says), "{params}: {err}");
    }
    for (params, path, says) in [
        (
            r#""distributions": [{"shifted_normal": {"s": 1.5}}], "load_ratios": [0.5, 1.5]"#,
            "params.distributions[0].shifted_normal.s",
            "0 < s <= 1",
        ),
        (
            r#""distributions": [{"log_normal": {"mu": 0.0, "sigma": -1.0}}], "load_ratios": [0.5, 1.5]"#,
            "params.distributions[0].log_normal.sigma",
            "> 0",
        ),
        (
            r#""distributions": [{"shifted_normal": {"s": 0.6}}], "load_ratios": [1.5, 0.5]"#,
            "params.load_ratios",
            "ascending",
        ),
        (
            r#""distributions": [], "load_ratios": [0.5, 1.5]"#,
            "params.distributions",
            "one or more",
        ),
        (
            r#""distributions": [{"ei_lognormal": {"g_e": 1.2, "sigma_e": 0.5, "sigma_i": 0.5}}], "load_ratios": [0.5, 1.5]"#,
            "params.distributions[0].ei_lognormal.g_e",
            "0 < g_e < 1",
        ),
        (
            r#""distributions": [{"cauchy": {"s": 1.0}}], "load_ratios": [0.5, 1.5]"#,
            "params.distributions[0]",
            "unknown variant",
        ),
        (
            r#""distributions": [{"shifted_normal": {"s": 0.6, "mean": 1.0}}], "load_ratios": [0.5, 1.5]"#,
            "params.distributions[0].shifted_normal",
            "unknown field `mean`",
        ),
    ] {
        let params = format!("{params}, {training}");
        let err = Scene::parse(&scene(&params)).unwrap_err().to_string();
        assert!(err.contains(path) && err.contains(says), "{params}: {err}");
    }
}

/// The teacher-student and geodesic scenes refuse bad values naming the field and what is allowed.
#[test]
fn teacher_and_geodesic_scenes_refuse_bad_values_naming_the_field() {
    use dale::scene::Scene;
    let training = r#""training": {"batch": 10, "eta1_times_n": 3.0, "rate_beta": 0.001,
        "transport_rate": 0.02, "check_every": 5}"#;
    let teacher = |fields: &str| {
        format!(
            r#"{{"model": "disco", "seed": 1, "steps": 10, "params": {{"experiment":
            "teacher_student", "n": 50, "problems": 2, "tolerance": 0.03, {training}, {fields}}}}}"#
        )
    };
    let geodesic = |fields: &str| {
        format!(
            r#"{{"model": "disco", "seed": 1, "steps": 10, "params": {{"experiment": "geodesic",
            "n": 50, "problems": 2, "tolerance": 0.1, {training}, {fields}}}}}"#
        )
    };
    let good_teacher = r#""teacher": {"log_normal": {"mu": 0.0, "sigma": 1.0}}, "loads": [0.5, 1.0],
        "paradigms": ["unconstrained", "fixed_prior"]"#;
    let good_geodesic = r#""distribution": {"log_normal": {"mu": 0.0, "sigma": 0.5}}, "load": 0.2"#;
    assert!(Scene::parse(&teacher(good_teacher)).is_ok());
    assert!(Scene::parse(&geodesic(good_geodesic)).is_ok());
    for (scene, path, says) in [
        (
            teacher(&good_teacher.replace(r#"["unconstrained", "fixed_prior"]"#, "[]")),
            "params.paradigms",
            "one or more",
        ),
        (
            teacher(&good_teacher.replace("\"fixed_prior\"", "\"optimal_prior\"")),
            "params.paradigms[1]",
            "unknown variant",
        ),
        (
            teacher(&good_teacher.replace("[0.5, 1.0]", "[1.0, 0.5]")),
            "params.loads",
            "ascending",
        ),
        (
            teacher(&good_teacher.replace("\"sigma\": 1.0", "\"sigma\": 0.0")),
            "params.teacher.log_normal.sigma",
            "> 0",
        ),
        (
            geodesic(&good_geodesic.replace("\"load\": 0.2", "\"load\": -1")),
            "params.load",
            "0 < load <= 100",
        ),
        (
            geodesic(&good_geodesic.replace(
                r#"{"log_normal": {"mu": 0.0, "sigma": 0.5}}"#,
                r#"{"ei_lognormal": {"g_e": 0.8, "sigma_e": 0.5, "sigma_i": 0.5}}"#,
            )),
            "params.distribution",
            "one population",
        ),
        (
            geodesic(&format!(r#"{good_geodesic}, "n": 1"#).replace(r#""n": 50, "#, "")),
            "params.n",
            "from 2",
        ),
    ] {
        let err = Scene::parse(&scene).unwrap_err().to_string();
        assert!(err.contains(path) && err.contains(says), "{scene}: {err}");
    }
}

/// A scene may hold the weights to a measured distribution given as samples in a .npy: its
/// targets are the samples' quantiles at unit second moment, and samples that cannot make a
/// distribution are refused naming the file, or the scene path, and what is wrong.
#[test]
fn empirical_targets_come_from_a_npy_of_samples() {
    use dale::experiments::disco_setup::{DistributionSpec, Target};
    let write = |name: &str, values: &[f64]| {
        let path = common::temp_path(name);
        dale::scene::output::write_npy(&path, &[values.len()], values).unwrap();
        path.to_string_lossy().into_owned()
    };
    // Samples 1, 2, 3, 4 (mean square 7.5): the quantile of u is sample ceil(4 u).
    let good = write("empirical_good.npy", &[3.0, 1.0, 4.0, 2.0]);
    let spec = DistributionSpec::Empirical { samples: good };
    let Target::One(q) = spec.resolve("params.distributions[0]").unwrap() else {
        panic!("one population")
    };
    let scale = 7.5f64.sqrt();
    let targets = q.targets(8);
    let want: Vec<f32> = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
        .iter()
        .map(|v: &f64| (v / scale) as f32)
        .collect();
    assert_eq!(targets, want);
    for (values, says) in [
        (vec![1.0, f64::NAN], "index [1]"),
        (vec![0.0, 0.0], "not all zero"),
        (vec![], "no samples"),
    ] {
        let file = write("empirical_bad.npy", &values);
        let err = DistributionSpec::Empirical {
            samples: file.clone(),
        }
        .resolve("params.distributions[0]")
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(says) && err.contains(&file),
            "{values:?}: {err}"
        );
    }
}

#[test]
fn the_ei_capacity_experiment_transports_two_populations() {
    use dale::backend::cpu::CpuBackend;
    use dale::scene::Scene;
    // Section 4's E/I perceptron at smoke size: 80 excitatory and 20 inhibitory weights, each
    // population sorted and transported on its own; the report's theory is eq. 10's.
    let mut scene = Scene::parse(
        r#"{"model": "disco", "seed": 3, "steps": 1000, "params": {"experiment": "capacity",
        "n": 100, "problems": 4, "tolerance": 0.1, "training": {"batch": 100,
        "eta1_times_n": 3.0, "rate_beta": 0.001, "transport_rate": 0.02, "check_every": 250},
        "distributions": [{"ei_lognormal": {"g_e": 0.8, "sigma_e": 0.5, "sigma_i": 0.5}}],
        "load_ratios": [0.3, 1.5]}}"#,
    )
    .unwrap();
    scene.smoke();
    let report = rayon::scope(|_| {
        scene
            .experiment()
            .unwrap()
            .run(&mut CpuBackend::new(), &mut |_| {})
            .unwrap()
    });
    for (name, passed) in &report.checks {
        assert!(passed, "{name}");
    }
    let d = &report.figures["distributions"][0];
    let want = EiLognormal::balanced(0.8, 0.5, 0.5).capacity(0.0);
    let theory = d["capacity"]["theory_eq3_or_10"].as_f64().unwrap();
    assert!((theory - want).abs() < 1e-12, "{theory} vs eq. 10's {want}");
}
