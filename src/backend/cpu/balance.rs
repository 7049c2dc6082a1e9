//! The balancing ops of paper 001 on the CPU: costs, each neuron's incoming and outgoing costs,
//! the update of h, and the task-preserving transformation. Twins: shaders/balance.wgsl.

use rayon::prelude::*;

use super::BLOCK;
use crate::backend::{Aggregate, Alpha, CostFlows, Costs, HStep, HUpdate, TaskTransform, Weights};

/// |w|^p with p = 1 and 2 exact and 0^p = 0 for every p > 0, as balance.wgsl computes it.
pub fn power(a: f32, p: f32) -> f32 {
    if a == 0.0 {
        0.0
    } else if p == 1.0 {
        a
    } else if p == 2.0 {
        a * a
    } else {
        a.powf(p)
    }
}

pub(super) fn costs(w: &[f32], alpha: &[f32], c: &mut [f32], spec: Costs) {
    // One copy of the loops per exponent that has its own form, so that none branches on p per
    // synapse and the common p = 1 and 2 vectorise.
    match spec.p {
        1.0 => costs_by(w, alpha, c, spec, |a| a),
        2.0 => costs_by(w, alpha, c, spec, |a| a * a),
        p => costs_by(w, alpha, c, spec, move |a| power(a, p)),
    }
}

fn costs_by(
    w: &[f32],
    alpha: &[f32],
    c: &mut [f32],
    spec: Costs,
    power: impl Fn(f32) -> f32 + Copy + Send + Sync,
) {
    let Costs {
        groups,
        rows,
        cols,
        alpha: kind,
        ..
    } = spec;
    let per = rows * cols;
    if per == 0 {
        return;
    }
    c[..groups * per]
        .par_chunks_mut(per)
        .zip(w[..groups * per].par_chunks(per))
        .enumerate()
        .for_each(|(g, (cg, wg))| {
            let base = |shared: bool, one: usize| if shared { 0 } else { g * one };
            match kind {
                Alpha::One => cg
                    .iter_mut()
                    .zip(wg)
                    .for_each(|(c, w)| *c = power(w.abs())),
                Alpha::PerColumn { shared } => {
                    let a = &alpha[base(shared, cols)..][..cols];
                    for (crow, wrow) in cg.chunks_mut(cols).zip(wg.chunks(cols)) {
                        crow.iter_mut()
                            .zip(wrow)
                            .zip(a)
                            .for_each(|((c, w), a)| *c = a * power(w.abs()));
                    }
                }
                Alpha::Full { shared } => {
                    let a = &alpha[base(shared, per)..][..per];
                    cg.iter_mut()
                        .zip(wg)
                        .zip(a)
                        .for_each(|((c, w), a)| *c = a * power(w.abs()));
                }
            }
        });
}

/// Rows per task of `cost_flows`. Fixed, not tied to the thread count, so that the column totals
/// add their band partials in the same order on every machine (deterministic output).
const ROW_BAND: usize = 64;

pub(super) fn cost_flows(c0: &[f32], scale: &[f32], flows: &mut [f32], spec: CostFlows) {
    // One copy of the loops per aggregate, so that each inner loop is compiled for its own.
    match spec.aggregate {
        Aggregate::Sum => cost_flows_by::<false>(c0, scale, flows, spec),
        Aggregate::Max => cost_flows_by::<true>(c0, scale, flows, spec),
    }
}

/// a + b, or the larger of the two when MAX.
#[inline(always)]
fn join<const MAX: bool, T: PartialOrd + std::ops::Add<Output = T>>(a: T, b: T) -> T {
    if !MAX {
        a + b
    } else if a >= b {
        a
    } else {
        b
    }
}

/// Independent partial totals per row: one running total would chain every add of a row on the
/// one before (latency-bound, ~4x slower); eight let the loop run at the speed of memory.
const LANES: usize = 8;

fn cost_flows_by<const MAX: bool>(c0: &[f32], scale: &[f32], flows: &mut [f32], spec: CostFlows) {
    let CostFlows { groups, n, .. } = spec;
    if n == 0 {
        return;
    }
    let bands = n.div_ceil(ROW_BAND);
    // Per network: row totals (n), in f64, and the column partials of every band (bands x n), in
    // f32 over the band's ROW_BAND rows and in f64 across bands: the CPU stays the more accurate
    // side of every GPU comparison (whose bands are 32 rows in f32), and a pass reads and writes
    // half the partial bytes it would in f64.
    let mut rows = vec![0.0f64; groups * n];
    let mut partial = vec![0.0f32; groups * bands * n];
    rows.par_chunks_mut(n)
        .zip(partial.par_chunks_mut(bands * n))
        .enumerate()
        .for_each(|(g, (rows_g, partial_g))| {
            let c_g = &c0[g * n * n..][..n * n];
            let s_g = &scale[g * n..][..n];
            rows_g
                .par_chunks_mut(ROW_BAND)
                .zip(partial_g.par_chunks_mut(n))
                .enumerate()
                .for_each(|(band, (row_tot, col))| {
                    for (r, tot) in row_tot.iter_mut().enumerate() {
                        let i = band * ROW_BAND + r;
                        let inv = 1.0 / s_g[i];
                        let mut lanes = [0.0f64; LANES];
                        // The self-synapse (j = i) is left out of both totals.
                        for range in [0..i, i + 1..n] {
                            let c = &c_g[i * n..][range.clone()];
                            let (s, col) = (&s_g[range.clone()], &mut col[range]);
                            let whole = c.len() / LANES * LANES;
                            for ((c, s), col) in c[..whole]
                                .chunks_exact(LANES)
                                .zip(s[..whole].chunks_exact(LANES))
                                .zip(col[..whole].chunks_exact_mut(LANES))
                            {
                                for l in 0..LANES {
                                    lanes[l] = join::<MAX, _>(lanes[l], f64::from(c[l] * s[l]));
                                    col[l] = join::<MAX, _>(col[l], c[l] * inv);
                                }
                            }
                            for ((c, s), col) in c[whole..].iter().zip(&s[whole..]).zip(&mut col[whole..]) {
                                lanes[0] = join::<MAX, _>(lanes[0], f64::from(c * s));
                                *col = join::<MAX, _>(*col, c * inv);
                            }
                        }
                        *tot = lanes.into_iter().fold(0.0, join::<MAX, _>);
                    }
                });
        });
    flows[..groups * 2 * n]
        .par_chunks_mut(2 * n)
        .enumerate()
        .for_each(|(g, f)| {
            let (incoming, outgoing) = f.split_at_mut(n);
            for k in 0..n {
                let s = f64::from(scale[g * n + k]);
                let col = (0..bands).fold(0.0, |acc, b| {
                    join::<MAX, _>(acc, f64::from(partial[(g * bands + b) * n + k]))
                });
                incoming[k] = (rows[g * n + k] / s) as f32;
                outgoing[k] = (col * s) as f32;
            }
        });
}

pub(super) fn h_update(
    flows: &[f32],
    h: &mut [f32],
    scale: &mut [f32],
    history: &mut [f32],
    spec: HUpdate,
) {
    let HUpdate {
        groups,
        n,
        p,
        step,
        history_offset,
    } = spec;
    if n == 0 {
        return;
    }
    let hist = &mut history[history_offset..history_offset + 2 * groups];
    h[..groups * n]
        .par_chunks_mut(n)
        .zip(scale[..groups * n].par_chunks_mut(n))
        .zip(hist.par_chunks_mut(2))
        .enumerate()
        .for_each(|(g, ((h, s), rec))| {
            let (incoming, outgoing) = flows[g * 2 * n..][..2 * n].split_at(n);
            let (mut norm2, mut total, mut sum_h) = (0.0f64, 0.0f64, 0.0f64);
            for ((h, &inc), &out) in h.iter_mut().zip(incoming).zip(outgoing) {
                let d = inc - out;
                norm2 += f64::from(d) * f64::from(d);
                total += f64::from(inc);
                *h += match step {
                    HStep::Flow { dt } => dt * d,
                    HStep::Osborne if inc == out => 0.0,
                    HStep::Osborne => (inc / out).ln() / (4.0 * p),
                };
                sum_h += f64::from(*h);
            }
            let mean = (sum_h / n as f64) as f32;
            for (h, s) in h.iter_mut().zip(s.iter_mut()) {
                *h -= mean;
                *s = (p * *h).exp();
            }
            rec[0] = norm2 as f32;
            rec[1] = total as f32;
        });
}

pub(super) fn task_transform(src: &[f32], h: &[f32], dst: &mut [f32], spec: TaskTransform) {
    let (rows, cols) = spec.rows_cols();
    let n = spec.n;
    let per = rows * cols;
    if per == 0 {
        return;
    }
    // e^(h_j - h_i) as e^(-h_i) e^(h_j): 2n exponentials per network instead of one per synapse
    // (an exp per synapse took 3 s of the 5 s of a whole N = 16384 solve on 2 cores). It differs
    // from balance.wgsl's exp(h_j - h_i) by a rounding or two.
    let groups = spec.len() / per;
    let up: Vec<f32> = h[..groups * n].iter().map(|v| v.exp()).collect();
    let down: Vec<f32> = h[..groups * n].iter().map(|v| (-v).exp()).collect();
    // Tasks of whole rows, about BLOCK values each.
    let rows_per_task = BLOCK.div_ceil(cols).max(1);
    dst[..spec.len()]
        .par_chunks_mut(rows_per_task * cols)
        .enumerate()
        .for_each(|(task, out)| {
            for (r, out_row) in out.chunks_mut(cols).enumerate() {
                let flat_row = task * rows_per_task + r;
                let (g, i) = (flat_row / rows, flat_row % rows);
                let up_g = &up[g * n..][..n];
                let src_row = &src[flat_row * cols..][..cols];
                match spec.weights {
                    Weights::Recurrent => {
                        let f = down[g * n + i];
                        out_row
                            .iter_mut()
                            .zip(src_row)
                            .zip(up_g)
                            .for_each(|((d, s), u)| *d = s * f * u);
                    }
                    Weights::Input { .. } => {
                        let f = down[g * n + i];
                        out_row
                            .iter_mut()
                            .zip(src_row)
                            .for_each(|(d, s)| *d = s * f);
                    }
                    Weights::Output { .. } => out_row
                        .iter_mut()
                        .zip(src_row)
                        .zip(up_g)
                        .for_each(|((d, s), u)| *d = s * u),
                }
            }
        });
}
