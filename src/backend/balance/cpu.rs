//! The balancing ops of paper 001 on the CPU: costs, each neuron's incoming and outgoing costs,
//! the update of h, and the task-preserving transformation. Twins: shaders/balance.wgsl.

use rayon::prelude::*;

use super::{Aggregate, Alpha, CostFlows, Costs, HStep, HUpdate, TaskTransform, Weights, LOG_ZERO};
use crate::backend::cpu::simd::{Isa, Kernel};
use crate::backend::cpu::BLOCK;

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

/// In place: c holds the weights and gets their costs.
pub(super) fn costs(c: &mut [f32], alpha: &[f32], spec: Costs) {
    // One copy of the loops per exponent that has its own form, so that none branches on p per
    // synapse and the common p = 1 and 2 vectorise.
    let s = spec.weight_scale;
    match spec.p {
        _ if spec.log => costs_by(c, alpha, spec, move |a, w| {
            if w > 0.0 && a > 0.0 {
                a.ln() + spec.p * (w * s).ln()
            } else {
                LOG_ZERO
            }
        }),
        1.0 => costs_by(c, alpha, spec, move |a, w| a * (w * s)),
        2.0 => costs_by(c, alpha, spec, move |a, w| a * ((w * s) * (w * s))),
        p => costs_by(c, alpha, spec, move |a, w| a * power(w * s, p)),
    }
}

/// c <- cost(alpha_ij, |c|) over every network.
fn costs_by(
    c: &mut [f32],
    alpha: &[f32],
    spec: Costs,
    cost: impl Fn(f32, f32) -> f32 + Copy + Send + Sync,
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
        .enumerate()
        .for_each(|(g, cg)| {
            let base = |shared: bool, one: usize| if shared { 0 } else { g * one };
            match kind {
                Alpha::One => cg.iter_mut().for_each(|c| *c = cost(1.0, c.abs())),
                Alpha::PerColumn { shared } => {
                    let a = &alpha[base(shared, cols)..][..cols];
                    for crow in cg.chunks_mut(cols) {
                        crow.iter_mut()
                            .zip(a)
                            .for_each(|(c, a)| *c = cost(*a, c.abs()));
                    }
                }
                Alpha::Full { shared } => {
                    let a = &alpha[base(shared, per)..][..per];
                    cg.iter_mut()
                        .zip(a)
                        .for_each(|(c, a)| *c = cost(*a, c.abs()));
                }
            }
        });
}

/// Rows per task of `cost_flows`. Fixed, not tied to the thread count, so that the column totals
/// add their band partials in the same order on every machine (deterministic output).
const ROW_BAND: usize = 64;

/// `partials` is the op's workspace; its first groups x bands x n values take the column partials.
pub(super) fn cost_flows(
    c0: &[f32],
    scale: &[f32],
    flows: &mut [f32],
    partials: &mut [f32],
    spec: CostFlows,
) {
    if spec.log {
        return cost_flows_log(c0, scale, flows, spec);
    }
    // One copy of the loops per aggregate, so that each inner loop is compiled for its own.
    match spec.aggregate {
        Aggregate::Sum => cost_flows_by::<false>(c0, scale, flows, partials, spec),
        Aggregate::Max => cost_flows_by::<true>(c0, scale, flows, partials, spec),
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
/// one before (latency-bound, ~4x slower). Sixteen fill one AVX-512 register (eight left the
/// AVX-512 copy shuffling half-registers); SSE2 and AVX2 take them as four or two vectors.
const LANES: usize = 16;
/// Terms of a row added in f32 (FLUSH / LANES per lane) before they go into the f64 totals.
const FLUSH: usize = 32 * LANES;
/// Rows summed together, sharing one load and store of each column partial: eight halve the
/// column partials' traffic of four (at N = 16,384 a pass went from 44-47 to 34-44 ms).
const ROWS: usize = 8;

fn cost_flows_by<const MAX: bool>(
    c0: &[f32],
    scale: &[f32],
    flows: &mut [f32],
    partial: &mut [f32],
    spec: CostFlows,
) {
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
    let partial = &mut partial[..groups * bands * n];
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
                    col.fill(0.0);
                    band_totals::<MAX>(c_g, s_g, band * ROW_BAND, row_tot, col)
                });
        });
    // The band partials are added column block by column block, each block's columns together
    // (band by band, in band order as before): walking one column down the bands instead read
    // them 64 KiB apart, one add at a time on one thread, a sixth of a pass at N = 16,384.
    flows[..groups * 2 * n]
        .par_chunks_mut(2 * n)
        .enumerate()
        .for_each(|(g, f)| {
            let (incoming, outgoing) = f.split_at_mut(n);
            let partial_g = &partial[g * bands * n..][..bands * n];
            incoming
                .par_chunks_mut(FINISH_COLUMNS)
                .zip(outgoing.par_chunks_mut(FINISH_COLUMNS))
                .enumerate()
                .for_each(|(block, (incoming, outgoing))| {
                    let first = block * FINISH_COLUMNS;
                    let mut cols = [0.0f64; FINISH_COLUMNS];
                    let cols = &mut cols[..incoming.len()];
                    for band in partial_g.chunks_exact(n) {
                        for (col, v) in cols.iter_mut().zip(&band[first..]) {
                            *col = join::<MAX, _>(*col, f64::from(*v));
                        }
                    }
                    for (k, col) in cols.iter().enumerate() {
                        let s = f64::from(scale[g * n + first + k]);
                        incoming[k] = (rows[g * n + first + k] / s) as f32;
                        outgoing[k] = (col * s) as f32;
                    }
                });
        });
}

/// Columns per task when `cost_flows` adds up its band partials.
const FINISH_COLUMNS: usize = 1024;

/// `cost_flows` in log space, as balance.wgsl's two passes: each row's largest ln c0_kj + u_j and
/// each column's largest ln c0_ik - u_i, then the sums of e^(value - largest), in f64 over bands
/// of ROW_BAND rows added in band order (deterministic). For the rare costs that no scaling keeps
/// within f32, so written plainly: f32 exponentials one at a time.
fn cost_flows_log(c0: &[f32], u: &[f32], flows: &mut [f32], spec: CostFlows) {
    let CostFlows { groups, n, .. } = spec;
    if n == 0 {
        return;
    }
    flows[..groups * 2 * n]
        .par_chunks_mut(2 * n)
        .enumerate()
        .for_each(|(g, f)| {
            let c = &c0[g * n * n..][..n * n];
            let u = &u[g * n..][..n];
            // Row i of c, with the column index, its self-synapse left out.
            let row = |i: usize| {
                c[i * n..][..n]
                    .iter()
                    .enumerate()
                    .filter(move |(j, _)| *j != i)
            };
            let row_max: Vec<f32> = (0..n)
                .into_par_iter()
                .map(|i| row(i).fold(LOG_ZERO, |m, (j, v)| m.max(v + u[j])))
                .collect();
            let bands = |first: usize| first..(first + ROW_BAND).min(n);
            let col_max = (0..n.div_ceil(ROW_BAND))
                .into_par_iter()
                .map(|b| {
                    bands(b * ROW_BAND).fold(vec![LOG_ZERO; n], |mut m, i| {
                        row(i).for_each(|(j, v)| m[j] = m[j].max(v - u[i]));
                        m
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold(vec![LOG_ZERO; n], |a, b| {
                    a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect()
                });
            let row_sum: Vec<f64> = (0..n)
                .into_par_iter()
                .map(|i| {
                    row(i)
                        .map(|(j, v)| f64::from((v + u[j] - row_max[i]).exp()))
                        .sum()
                })
                .collect();
            let col_sum = (0..n.div_ceil(ROW_BAND))
                .into_par_iter()
                .map(|b| {
                    bands(b * ROW_BAND).fold(vec![0.0f64; n], |mut s, i| {
                        row(i).for_each(|(j, v)| s[j] += f64::from((v - u[i] - col_max[j]).exp()));
                        s
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold(vec![0.0f64; n], |a, b| {
                    a.iter().zip(&b).map(|(x, y)| x + y).collect()
                });
            let (incoming, outgoing) = f.split_at_mut(n);
            // LOG_ZERO where a side has no terms at all (a network of one neuron).
            let finish = |largest: f32, sum: f64, u: f32| match sum > 0.0 {
                true => largest + sum.ln() as f32 + u,
                false => LOG_ZERO,
            };
            for k in 0..n {
                incoming[k] = finish(row_max[k], row_sum[k], -u[k]);
                outgoing[k] = finish(col_max[k], col_sum[k], u[k]);
            }
        });
}

/// Rows `first..first + row_tot.len()` of one network's costs: each row's total (at s, in
/// `row_tot`) and the band's column totals (at 1/s, in `col`), compiled for each instruction set:
/// a default x86-64 build may only assume SSE2's 4-wide vectors, and the pass is bound by
/// arithmetic, not memory, without wider ones. Every copy rounds identically (no fused
/// multiply-adds), so results do not depend on the machine.
fn band_totals<const MAX: bool>(
    c: &[f32],
    s: &[f32],
    first: usize,
    row_tot: &mut [f64],
    col: &mut [f32],
) {
    Isa::detected().run(BandTotals::<MAX> {
        c,
        s,
        first,
        row_tot,
        col,
    })
}

struct BandTotals<'a, const MAX: bool> {
    c: &'a [f32],
    s: &'a [f32],
    first: usize,
    row_tot: &'a mut [f64],
    col: &'a mut [f32],
}

impl<const MAX: bool> Kernel for BandTotals<'_, MAX> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        band_totals_body::<MAX>(self.c, self.s, self.first, self.row_tot, self.col)
    }
}

#[inline(always)]
fn band_totals_body<const MAX: bool>(
    c: &[f32],
    s: &[f32],
    first: usize,
    row_tot: &mut [f64],
    col: &mut [f32],
) {
    let done = row_tot.len() / ROWS * ROWS;
    let mut blocks = row_tot.chunks_exact_mut(ROWS);
    for (b, tot) in blocks.by_ref().enumerate() {
        rows_block::<MAX, ROWS>(
            c,
            s,
            first + b * ROWS,
            tot.try_into().expect("ROWS rows"),
            col,
        );
    }
    for (r, tot) in blocks.into_remainder().iter_mut().enumerate() {
        rows_block::<MAX, 1>(
            c,
            s,
            first + done + r,
            std::slice::from_mut(tot).try_into().expect("one row"),
            col,
        );
    }
}

/// Rows `first..first + R` at once, so that each column partial is loaded and stored once per R
/// rows. Row r leaves out its self-synapse, at column first + r: inside the R x R block on the
/// diagonal, which is summed apart. Every column partial still adds its rows in ascending order.
#[inline(always)]
fn rows_block<const MAX: bool, const R: usize>(
    c: &[f32],
    s: &[f32],
    first: usize,
    tot: &mut [f64; R],
    col: &mut [f32],
) {
    let n = s.len();
    let rows: [&[f32]; R] = std::array::from_fn(|r| &c[(first + r) * n..][..n]);
    let inv: [f32; R] = std::array::from_fn(|r| 1.0 / s[first + r]);
    let mut lanes = [[0.0f64; LANES]; R];
    for range in [0..first, first + R..n] {
        let (s, col) = (&s[range.clone()], &mut col[range.clone()]);
        let rows: [&[f32]; R] = rows.map(|row| &row[range.clone()]);
        let whole = s.len() / LANES * LANES;
        // Each lane adds FLUSH / LANES terms in f32, then into its f64 total.
        for start in (0..whole).step_by(FLUSH) {
            let block = start..(start + FLUSH).min(whole);
            let (s, col) = (
                s[block.clone()].as_chunks::<LANES>().0,
                col[block.clone()].as_chunks_mut::<LANES>().0,
            );
            let rows: [&[[f32; LANES]]; R] =
                rows.map(|row| row[block.clone()].as_chunks::<LANES>().0);
            let mut part = [[0.0f32; LANES]; R];
            for (k, (s, col)) in s.iter().zip(col.iter_mut()).enumerate() {
                // The R rows' values loaded first and the column partials held in a local copy:
                // indexing the rows and writing `col` inside the loop over rows kept the
                // compiler from vectorising it (scalar multiplies, partials in memory).
                let c: [[f32; LANES]; R] = std::array::from_fn(|r| rows[r][k]);
                let mut cols = *col;
                for r in 0..R {
                    for l in 0..LANES {
                        part[r][l] = join::<MAX, _>(part[r][l], c[r][l] * s[l]);
                        cols[l] = join::<MAX, _>(cols[l], c[r][l] * inv[r]);
                    }
                }
                *col = cols;
            }
            for r in 0..R {
                for l in 0..LANES {
                    lanes[r][l] = join::<MAX, _>(lanes[r][l], f64::from(part[r][l]));
                }
            }
        }
        for j in whole..s.len() {
            for r in 0..R {
                lanes[r][0] = join::<MAX, _>(lanes[r][0], f64::from(rows[r][j] * s[j]));
                col[j] = join::<MAX, _>(col[j], rows[r][j] * inv[r]);
            }
        }
    }
    for j in first..first + R {
        for r in (0..R).filter(|&r| first + r != j) {
            lanes[r][0] = join::<MAX, _>(lanes[r][0], f64::from(rows[r][j] * s[j]));
            col[j] = join::<MAX, _>(col[j], rows[r][j] * inv[r]);
        }
    }
    for r in 0..R {
        tot[r] = lanes[r].into_iter().fold(0.0, join::<MAX, _>);
    }
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
        anchor,
        log,
    } = spec;
    if n == 0 {
        return;
    }
    let hist = &mut history[history_offset..history_offset + 2 * groups];
    let isa = Isa::detected();
    h[..groups * n]
        .par_chunks_mut(n)
        .zip(scale[..groups * n].par_chunks_mut(n))
        .zip(hist.par_chunks_mut(2))
        .enumerate()
        .for_each(|(g, ((h, s), rec))| {
            if log {
                return h_update_log(&flows[g * 2 * n..][..2 * n], h, s, rec, p);
            }
            isa.run(HUpdateNetwork {
                flows: &flows[g * 2 * n..][..2 * n],
                h,
                scale: s,
                record: rec,
                p,
                step,
                anchor,
            })
        });
}

/// `h_update` for one network, compiled for each instruction set.
struct HUpdateNetwork<'a> {
    /// Incoming then outgoing costs, [2, n].
    flows: &'a [f32],
    h: &'a mut [f32],
    scale: &'a mut [f32],
    /// ||g||^2 and the total cost.
    record: &'a mut [f32],
    p: f32,
    step: HStep,
    anchor: Option<usize>,
}

impl Kernel for HUpdateNetwork<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let HUpdateNetwork {
            flows,
            h,
            scale: s,
            record: rec,
            p,
            step,
            anchor,
        } = self;
        let n = h.len();
        let anchor = anchor.unwrap_or(usize::MAX);
        // At least one, so that a network of the anchor alone divides nothing by zero.
        let moving = if anchor < n { (n - 1).max(1) } else { n };
        let (incoming, outgoing) = flows.split_at(n);
        // With an anchor: nu, the mean g of the moving neurons (the multiplier of sum h = 0),
        // which the Osborne step solves for and ||g|| is measured from.
        let multiplier = if anchor < n {
            let sum: f64 = (0..n)
                .filter(|&k| k != anchor)
                .map(|k| f64::from(incoming[k] - outgoing[k]))
                .sum();
            (sum / moving as f64) as f32
        } else {
            0.0
        };
        let (mut norm2, mut total, mut sum_h) = (0.0f64, 0.0f64, 0.0f64);
        for (k, ((h, &inc), &out)) in h.iter_mut().zip(incoming).zip(outgoing).enumerate() {
            let d = inc - out;
            total += f64::from(inc);
            if k == anchor {
                continue;
            }
            norm2 += (f64::from(d) - f64::from(multiplier)).powi(2);
            *h += match step {
                HStep::Flow { dt } => dt * d,
                // Half of delta.
                HStep::Osborne if multiplier != 0.0 => {
                    osborne_on_constraint(inc, out, multiplier).ln() / (2.0 * p)
                }
                HStep::Osborne if inc == out => 0.0,
                HStep::Osborne => (inc / out).ln() / (4.0 * p),
            };
            sum_h += f64::from(*h);
        }
        let mean = (sum_h / moving as f64) as f32;
        for (k, (h, s)) in h.iter_mut().zip(s.iter_mut()).enumerate() {
            if k == anchor {
                *h = 0.0;
            } else {
                *h -= mean;
            }
            *s = (p * *h).exp();
        }
        rec[0] = norm2 as f32;
        rec[1] = total as f32;
    }
}

/// `h_update` of one network in log space, as balance.wgsl's h_update_log: the history's sums
/// about the largest ln in_k or ln out_k (m), in f64.
fn h_update_log(flows: &[f32], h: &mut [f32], u: &mut [f32], rec: &mut [f32], p: f32) {
    let n = h.len();
    let (incoming, outgoing) = flows.split_at(n);
    let m = flows.iter().fold(LOG_ZERO, |m, v| m.max(*v));
    let (mut norm2, mut total, mut sum_h) = (0.0f64, 0.0f64, 0.0f64);
    for ((h, &inc), &out) in h.iter_mut().zip(incoming).zip(outgoing) {
        let d = f64::from((inc - m).exp()) - f64::from((out - m).exp());
        norm2 += d * d;
        total += f64::from((inc - m).exp());
        if inc > 0.5 * LOG_ZERO && out > 0.5 * LOG_ZERO {
            *h += (inc - out) / (4.0 * p);
        }
        sum_h += f64::from(*h);
    }
    let mean = (sum_h / n as f64) as f32;
    for (h, u) in h.iter_mut().zip(u.iter_mut()) {
        *h -= mean;
        *u = p * *h;
    }
    rec[0] = 2.0 * m + norm2.ln() as f32;
    rec[1] = m + total.ln() as f32;
}

/// Y = e^(p delta) for the step delta along h_k alone that solves in e^(-p delta) -
/// out e^(p delta) = nu, the neural gradient equal to the multiplier nu of the constraint
/// sum h = 0: the positive root of out Y^2 + nu Y - in = 0, in the form that does not cancel.
/// 1 (no step) where no finite step exists. As balance.wgsl computes it.
fn osborne_on_constraint(inc: f32, out: f32, nu: f32) -> f32 {
    let s = (nu * nu + 4.0 * inc * out).sqrt();
    let y = if nu >= 0.0 {
        2.0 * inc / (nu + s)
    } else {
        (s - nu) / (2.0 * out)
    };
    if y > 0.0 && y.is_finite() {
        y
    } else {
        1.0
    }
}

/// In place: the weights are read and written by the same element, so that balancing a 1 GiB J
/// needs no second GiB for the result.
pub(super) fn task_transform(weights: &mut [f32], h: &[f32], spec: TaskTransform) {
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
    weights[..spec.len()]
        .par_chunks_mut(rows_per_task * cols)
        .enumerate()
        .for_each(|(task, out)| {
            for (r, out_row) in out.chunks_mut(cols).enumerate() {
                let flat_row = task * rows_per_task + r;
                let (g, i) = (flat_row / rows, flat_row % rows);
                let up_g = &up[g * n..][..n];
                match spec.weights {
                    Weights::Recurrent => {
                        let f = down[g * n + i];
                        out_row
                            .iter_mut()
                            .zip(up_g)
                            .for_each(|(w, u)| *w = *w * f * u);
                    }
                    Weights::Input { .. } => {
                        let f = down[g * n + i];
                        out_row.iter_mut().for_each(|w| *w *= f);
                    }
                    Weights::Output { .. } => {
                        out_row.iter_mut().zip(up_g).for_each(|(w, u)| *w *= u)
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set's copy gives the portable copy's bits, so that results do not
    /// depend on the processor: costs and scales spread over decades, and a ragged last row block.
    #[test]
    fn band_totals_round_alike_on_every_instruction_set() {
        let n = 263;
        let value = |k: usize, spread: f32| ((k as f32 * 0.7548).sin() * spread).exp();
        let c: Vec<f32> = (0..n * n).map(|k| value(k, 4.0)).collect();
        let s: Vec<f32> = (0..n).map(|k| value(k + 7, 1.5)).collect();
        for isa in Isa::available() {
            for first in [0, 64, n - 7] {
                let rows = ROW_BAND.min(n - first);
                let (mut tot_a, mut tot_b) = (vec![0.0f64; rows], vec![0.0f64; rows]);
                let (mut col_a, mut col_b) = (vec![0.0f32; n], vec![0.0f32; n]);
                band_totals_body::<false>(&c, &s, first, &mut tot_a, &mut col_a);
                isa.run(BandTotals::<false> {
                    c: &c,
                    s: &s,
                    first,
                    row_tot: &mut tot_b,
                    col: &mut col_b,
                });
                let bits64 = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let bits32 = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits64(&tot_a), bits64(&tot_b), "{}", isa.name());
                assert_eq!(bits32(&col_a), bits32(&col_b), "{}", isa.name());
            }
        }
    }

    #[test]
    fn h_update_is_the_same_on_every_instruction_set() {
        let n = 37;
        let flows: Vec<f32> = (0..2 * n)
            .map(|k| ((k as f32 * 0.61).sin() * 3.0).exp())
            .collect();
        for step in [HStep::Flow { dt: 0.01 }, HStep::Osborne] {
            for anchor in [None, Some(5)] {
                let run = |isa: Isa| {
                    let mut h: Vec<f32> = (0..n).map(|k| (k as f32 * 0.3).cos()).collect();
                    let (mut scale, mut record) = (vec![0.0f32; n], vec![0.0f32; 2]);
                    isa.run(HUpdateNetwork {
                        flows: &flows,
                        h: &mut h,
                        scale: &mut scale,
                        record: &mut record,
                        p: 1.5,
                        step,
                        anchor,
                    });
                    [h, scale, record]
                        .concat()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                let portable = run(Isa::Portable);
                for isa in Isa::available() {
                    assert!(
                        run(isa) == portable,
                        "{} differs: {step:?} anchor {anchor:?}",
                        isa.name()
                    );
                }
            }
        }
    }
}
