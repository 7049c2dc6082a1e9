//! CPU twins of the perceptron family: problems in parallel, dot products in f64 (the CPU stays
//! the more accurate side of every GPU comparison, whose tree sums are f32).

use rayon::prelude::*;

use super::{Perceptrons, Rates, Window};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn row<'a>(xi: &'a [f32], spec: &Perceptrons, b: usize, mu: usize) -> &'a [f32] {
    &xi[spec.pattern(b, mu) * spec.n..][..spec.n]
}

pub(super) fn fields(xi: &[f32], w: &[f32], h: &mut [f32], spec: Perceptrons, window: Window) {
    let Window { count, .. } = window;
    if spec.problems * count == 0 {
        return;
    }
    h[..spec.problems * count]
        .par_chunks_mut(count)
        .enumerate()
        .for_each(|(b, h)| {
            let w = &w[b * spec.n..][..spec.n];
            for (k, h) in h.iter_mut().enumerate() {
                let mu = window.pattern(k, spec.patterns);
                *h = dot(row(xi, &spec, b, mu), w) as f32;
            }
        });
}

/// sigmoid(beta h) - (1 + zeta) / 2, as perceptron.wgsl's `logistic_error`.
fn logistic_error(beta: f32, h: f32, zeta: f32) -> f32 {
    1.0 / (1.0 + (-beta * h).exp()) - 0.5 * (1.0 + zeta)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn logistic_step(
    xi: &[f32],
    labels: &[f32],
    h: &mut [f32],
    w: &mut [f32],
    beta: &mut [f32],
    spec: Perceptrons,
    window: Window,
    rates: Rates,
) {
    let Window { count, .. } = window;
    if spec.problems * count == 0 {
        return;
    }
    let n = spec.n;
    h[..spec.problems * count]
        .par_chunks_mut(count)
        .zip(w[..spec.problems * n].par_chunks_mut(n))
        .zip(&mut beta[..spec.problems])
        .enumerate()
        .for_each(|(b, ((h, w), beta))| {
            let mut beta_gradient = 0.0f64;
            for (k, h) in h.iter_mut().enumerate() {
                let mu = window.pattern(k, spec.patterns);
                let e = logistic_error(*beta, *h, labels[spec.pattern(b, mu)]);
                beta_gradient += f64::from(*h) * f64::from(e);
                *h = e;
            }
            *beta -= rates.beta * beta_gradient as f32;
            let mut gradient = vec![0.0f64; n];
            for (k, &e) in h.iter().enumerate() {
                let mu = window.pattern(k, spec.patterns);
                for (g, &x) in gradient.iter_mut().zip(row(xi, &spec, b, mu)) {
                    *g += f64::from(x) * f64::from(e);
                }
            }
            for (w, g) in w.iter_mut().zip(gradient) {
                *w -= rates.weights * g as f32;
            }
        });
}

pub(super) fn margin_stats(
    h: &[f32],
    labels: &[f32],
    w: &[f32],
    stats: &mut [f32],
    spec: Perceptrons,
) {
    let p = spec.patterns;
    stats[..2 * spec.problems]
        .par_chunks_mut(2)
        .enumerate()
        .for_each(|(b, stats)| {
            let w = &w[b * spec.n..][..spec.n];
            let norm = dot(w, w).sqrt();
            let (mut smallest, mut errors) = (f64::INFINITY, 0u32);
            for (mu, &h) in h[b * p..][..p].iter().enumerate() {
                let signed = f64::from(labels[spec.pattern(b, mu)]) * f64::from(h);
                errors += u32::from(!(signed > 0.0));
                // The zero vector classifies nothing: margin 0.
                smallest = smallest.min(if norm > 0.0 { signed / norm } else { 0.0 });
            }
            stats[0] = smallest as f32;
            stats[1] = errors as f32;
        });
}

/// As perceptron.wgsl's `hold_signs`.
pub(super) fn hold_signs(signs: &[f32], w: &mut [f32], spec: Perceptrons) {
    let len = spec.weights_len();
    w[..len]
        .par_chunks_mut(4096)
        .zip(signs[..len].par_chunks(4096))
        .for_each(|(w, signs)| {
            for (w, s) in w.iter_mut().zip(signs) {
                if s * *w < 0.0 {
                    *w = 0.0;
                }
            }
        });
}
