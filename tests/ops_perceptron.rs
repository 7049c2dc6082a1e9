//! The perceptron family (shaders/perceptron.wgsl, src/backend/perceptron/): fields of pattern
//! windows (wrapping past the last pattern), the logistic SGD step, the margins of all patterns
//! and the sign constraint, on own and shared patterns, n = 1, 257 and 1000; the CPU backend against f64 loops
//! written here from the equations, the GPU against the CPU backend.

mod common;

use common::{assert_close, backend_tests, check_op, dot_tol, normal, Side, Tol};
use dale::backend::cpu::CpuBackend;
use dale::backend::perceptron::{PerceptronOps, Perceptrons, Rates, Window};
use dale::backend::{Backend, BufferOps};

/// (problems, n, patterns, shared_patterns)
const SHAPES: [(usize, usize, usize, bool); 4] = [
    (1, 1, 5, false),
    (3, 257, 300, false),
    (2, 1000, 37, false),
    (4, 257, 300, true),
];

fn spec((problems, n, patterns, shared_patterns): (usize, usize, usize, bool)) -> Perceptrons {
    Perceptrons {
        problems,
        n,
        patterns,
        shared_patterns,
    }
}

/// Labels +-1 from the signs of normal draws.
fn labels(len: usize, seed: u64) -> Vec<f32> {
    normal(len, seed)
        .iter()
        .map(|v| if *v >= 0.0 { 1.0 } else { -1.0 })
        .collect()
}

/// The windows each shape is tried on: all patterns, and a mini-batch that wraps past the last.
fn windows(patterns: usize) -> [Window; 2] {
    [
        Window {
            first: 0,
            count: patterns,
        },
        Window {
            first: patterns - 2,
            count: patterns.min(7),
        },
    ]
}

/// w_b . xi_b^mu in f64, for the window's patterns.
fn oracle_fields(xi: &[f32], w: &[f32], s: Perceptrons, window: Window) -> Vec<f64> {
    (0..s.problems)
        .flat_map(|b| (0..window.count).map(move |k| (b, window.pattern(k, s.patterns))))
        .map(|(b, mu)| {
            (0..s.n)
                .map(|i| f64::from(xi[s.pattern(b, mu) * s.n + i]) * f64::from(w[b * s.n + i]))
                .sum()
        })
        .collect()
}

fn run_fields(
    be: &mut dyn Backend,
    xi: &[f32],
    w: &[f32],
    s: Perceptrons,
    window: Window,
) -> Vec<f32> {
    let xb = be.alloc_from("xi", xi).unwrap();
    let wb = be.alloc_from("w", w).unwrap();
    let h = be.alloc::<f32>("h", s.problems * window.count).unwrap();
    be.fields(xb, wb, h, s, window);
    be.download(h, 0, s.problems * window.count).unwrap()
}

backend_tests! {
    fn fields_of_windows(side: &Side) {
        for (i, &shape) in SHAPES.iter().enumerate() {
            let s = spec(shape);
            let xi = normal(s.patterns_len(), 10 + i as u64);
            let w = normal(s.weights_len(), 20 + i as u64);
            for window in windows(s.patterns) {
                let want = || Some(oracle_fields(&xi, &w, s, window).iter().map(|v| *v as f32).collect());
                check_op(side, &format!("fields {s:?} {window:?}"), dot_tol(s.n), want, |be| {
                    run_fields(be, &xi, &w, s, window)
                });
            }
        }
    }
}

struct Stepped {
    errors: Vec<f32>,
    w: Vec<f32>,
    beta: Vec<f32>,
}

#[allow(clippy::too_many_arguments)]
fn run_step(
    be: &mut dyn Backend,
    xi: &[f32],
    zeta: &[f32],
    h: &[f32],
    w: &[f32],
    beta: &[f32],
    s: Perceptrons,
    window: Window,
    rates: Rates,
) -> Stepped {
    let xb = be.alloc_from("xi", xi).unwrap();
    let lb = be.alloc_from("labels", zeta).unwrap();
    let hb = be.alloc_from("h", h).unwrap();
    let wb = be.alloc_from("w", w).unwrap();
    let bb = be.alloc_from("beta", beta).unwrap();
    be.logistic_step(xb, lb, hb, wb, bb, s, window, rates);
    Stepped {
        errors: be.download(hb, 0, h.len()).unwrap(),
        w: be.download(wb, 0, w.len()).unwrap(),
        beta: be.download(bb, 0, beta.len()).unwrap(),
    }
}

backend_tests! {
    fn logistic_step_follows_eq_7(side: &Side) {
        let rates = Rates { weights: 0.05, beta: 0.01 };
        for (i, &shape) in SHAPES.iter().enumerate() {
            let s = spec(shape);
            let xi = normal(s.patterns_len(), 30 + i as u64);
            let zeta = labels(s.labels_len(), 40 + i as u64);
            let w = normal(s.weights_len(), 50 + i as u64);
            let beta: Vec<f32> = (0..s.problems).map(|b| 0.5 + b as f32).collect();
            for window in windows(s.patterns) {
                let h: Vec<f32> = oracle_fields(&xi, &w, s, window).iter().map(|v| *v as f32).collect();
                let got = run_step(side.backend().as_mut(), &xi, &zeta, &h, &w, &beta, s, window, rates);
                let what = format!("logistic_step {s:?} {window:?}");
                let (errors, w_after, beta_after) = match side {
                    Side::Cpu => {
                        // The equations in f64: e = sigmoid(beta h) - (1 + zeta) / 2, then the
                        // gradient steps of w (eq. 7) and of beta.
                        let mut errors = Vec::new();
                        let mut w_after = w.clone();
                        let mut beta_after = beta.clone();
                        for b in 0..s.problems {
                            let (mut gb, mut gw) = (0.0f64, vec![0.0f64; s.n]);
                            for k in 0..window.count {
                                let mu = window.pattern(k, s.patterns);
                                let hk = f64::from(h[b * window.count + k]);
                                let y = 0.5 * (1.0 + f64::from(zeta[s.pattern(b, mu)]));
                                let e = 1.0 / (1.0 + (-f64::from(beta[b]) * hk).exp()) - y;
                                errors.push(e as f32);
                                gb += hk * e;
                                for (i, g) in gw.iter_mut().enumerate() {
                                    *g += f64::from(xi[s.pattern(b, mu) * s.n + i]) * e;
                                }
                            }
                            beta_after[b] = (f64::from(beta[b]) - f64::from(rates.beta) * gb) as f32;
                            for (i, g) in gw.iter().enumerate() {
                                let v = &mut w_after[b * s.n + i];
                                *v = (f64::from(*v) - f64::from(rates.weights) * g) as f32;
                            }
                        }
                        (errors, w_after, beta_after)
                    }
                    Side::Gpu(_) => {
                        let c = run_step(&mut CpuBackend::new(), &xi, &zeta, &h, &w, &beta, s, window, rates);
                        (c.errors, c.w, c.beta)
                    }
                };
                // e: a sigmoid of the same f32 input, an ulp or two of exp apart (values in
                // [-1, 1]); w and beta: count-term sums in another order and precision.
                let sigmoid = Tol { rel: 8.0 * f32::EPSILON as f64, why: "exp within 2 ulp, e in [-1, 1]" };
                assert_close(&format!("{what}: errors"), &got.errors, &errors, sigmoid);
                assert_close(&format!("{what}: w"), &got.w, &w_after, dot_tol(window.count + 1));
                assert_close(&format!("{what}: beta"), &got.beta, &beta_after, dot_tol(window.count + 1));
            }
        }
    }
}

fn run_margins(
    be: &mut dyn Backend,
    h: &[f32],
    zeta: &[f32],
    w: &[f32],
    s: Perceptrons,
) -> Vec<f32> {
    let hb = be.alloc_from("h", h).unwrap();
    let lb = be.alloc_from("labels", zeta).unwrap();
    let wb = be.alloc_from("w", w).unwrap();
    let stats = be.alloc::<f32>("stats", 2 * s.problems).unwrap();
    be.margin_stats(hb, lb, wb, stats, s);
    be.download(stats, 0, 2 * s.problems).unwrap()
}

backend_tests! {
    fn margins_of_all_patterns(side: &Side) {
        for (i, &shape) in SHAPES.iter().enumerate() {
            let s = spec(shape);
            let xi = normal(s.patterns_len(), 60 + i as u64);
            let mut w = normal(s.weights_len(), 70 + i as u64);
            // The first problem's labels come from its own weights (a teacher): it separates
            // every pattern. The last problem's weights are zero: margin 0, every pattern wrong.
            let all = Window { first: 0, count: s.patterns };
            let teacher_h = oracle_fields(&xi, &w, s, all);
            let mut zeta = labels(s.labels_len(), 80 + i as u64);
            if !s.shared_patterns {
                for mu in 0..s.patterns {
                    zeta[mu] = if teacher_h[mu] >= 0.0 { 1.0 } else { -1.0 };
                }
            }
            if s.problems > 1 {
                w[(s.problems - 1) * s.n..].fill(0.0);
            }
            let h_f64 = oracle_fields(&xi, &w, s, all);
            let mut h: Vec<f32> = h_f64.iter().map(|v| *v as f32).collect();
            // A NaN field in the middle problem: an error (on neither side). Its smallest margin
            // is left unchecked: min with a NaN is the backend's choice.
            let nan_problem = (s.problems > 2).then_some(1);
            if let Some(b) = nan_problem {
                h[b * s.patterns + 2] = f32::NAN;
            }
            let got = run_margins(side.backend().as_mut(), &h, &zeta, &w, s);
            let what = format!("margin_stats {s:?}");
            let want = match side {
                Side::Cpu => (0..s.problems)
                    .flat_map(|b| {
                        let norm: f64 = w[b * s.n..][..s.n].iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
                        let signed: Vec<f64> = (0..s.patterns)
                            .map(|mu| f64::from(zeta[s.pattern(b, mu)]) * f64::from(h[b * s.patterns + mu]))
                            .collect();
                        let smallest = signed
                            .iter()
                            .map(|v| if norm > 0.0 { v / norm } else { 0.0 })
                            .fold(f64::INFINITY, f64::min);
                        let errors = signed.iter().filter(|v| !(**v > 0.0)).count();
                        [smallest as f32, errors as f32]
                    })
                    .collect(),
                Side::Gpu(_) => run_margins(&mut CpuBackend::new(), &h, &zeta, &w, s),
            };
            let errors = |v: &[f32]| v.iter().skip(1).step_by(2).copied().collect::<Vec<_>>();
            assert_eq!(errors(&got), errors(&want), "{what}: errors are counted exactly");
            let margins = |v: &[f32]| {
                v.iter()
                    .step_by(2)
                    .enumerate()
                    .filter(|(b, _)| Some(*b) != nan_problem)
                    .map(|(_, m)| *m)
                    .collect::<Vec<_>>()
            };
            // ||w|| is an n-term sum; the margins themselves are copied f32 fields divided by it.
            assert_close(&format!("{what}: margins"), &margins(&got), &margins(&want), dot_tol(s.n));
            if !s.shared_patterns {
                assert_eq!(got[1], 0.0, "{what}: the teacher's own labels are all right");
                assert!(got[0] > 0.0, "{what}: with a positive margin");
            }
            if s.problems > 1 {
                let last = 2 * (s.problems - 1);
                assert_eq!(got[last..], [0.0, s.patterns as f32], "{what}: zero weights");
            }
        }
    }
}

fn run_hold_signs(be: &mut dyn Backend, signs: &[f32], w: &[f32], s: Perceptrons) -> Vec<f32> {
    let sb = be.alloc_from("signs", signs).unwrap();
    let wb = be.alloc_from("w", w).unwrap();
    be.hold_signs(sb, wb, s);
    be.download(wb, 0, w.len()).unwrap()
}

backend_tests! {
    fn hold_signs_projects_onto_the_signs(side: &Side) {
        for (i, &shape) in SHAPES.iter().enumerate() {
            let s = spec(shape);
            let mut w = normal(s.weights_len(), 90 + i as u64);
            // Signs +1, -1 and 0 (free) in turn; zeros of both signs and a NaN among the weights.
            let signs: Vec<f32> = (0..w.len()).map(|k| [1.0, -1.0, 0.0][k % 3]).collect();
            w[0] = -0.0;
            if w.len() > 4 {
                w[3] = 0.0;
                w[4] = f32::NAN;
            }
            let got = run_hold_signs(side.backend().as_mut(), &signs, &w, s);
            let want: Vec<f32> = w
                .iter()
                .zip(&signs)
                .map(|(w, s)| match *s {
                    1.0 => if *w < 0.0 { 0.0 } else { *w },
                    -1.0 => if *w > 0.0 { 0.0 } else { *w },
                    _ => *w,
                })
                .collect();
            // A comparison and a copy: bit for bit, the NaN kept for the sort's NaN flag.
            for (k, (g, v)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == v.to_bits() || (g.is_nan() && v.is_nan()),
                    "hold_signs {s:?}: weight {k} (sign {}) = {g}, want {v}",
                    signs[k]
                );
            }
        }
    }
}
