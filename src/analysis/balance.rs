//! Analysis of synaptic balancing (paper 001): sensitivity (eq. 9), the Laplacian of conductances
//! and its pseudo-inverse (eq. 34-36), the heat-equation approximation of the flow (eq. 38-40),
//! resistance distance (eq. 48), Prop. 5's bounds on the balanced cost, the flow's stable step,
//! and whether a finite balanced point exists (strong connectivity of the cost graph).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rayon::prelude::*;

use crate::backend::Phi;

/// Gain moments of every neuron over the states of a run (eq. 8): mu_i = <phi'(x_i)>,
/// sigma_i^2 = <phi'(x_i)^2>. `x` holds samples of n values each.
pub fn gain_moments(phi: Phi, n: usize, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let samples = (x.len() / n.max(1)).max(1);
    let (mut mu, mut sigma2) = (vec![0.0; n], vec![0.0; n]);
    for state in x.chunks(n) {
        for (i, &v) in state.iter().enumerate() {
            let d = match phi {
                Phi::Tanh => 1.0 - f64::from(v.tanh()).powi(2),
                Phi::Linear | Phi::Relu => f64::from(phi.slope(v)),
            };
            mu[i] += d;
            sigma2[i] += d * d;
        }
    }
    mu.iter_mut()
        .chain(sigma2.iter_mut())
        .for_each(|v| *v /= samples as f64);
    (mu, sigma2)
}

/// Sensitivity S = sum_ij sigma_j^2 J_ij^2 - 2 sum_i mu_i J_ii + N (eq. 9) of one [n, n] J.
pub fn sensitivity(j: &[f32], mu: &[f64], sigma2: &[f64]) -> f64 {
    let n = mu.len();
    let mut s = n as f64;
    for i in 0..n {
        for k in 0..n {
            s += sigma2[k] * f64::from(j[i * n + k]).powi(2);
        }
        s -= 2.0 * mu[i] * f64::from(j[i * n + i]);
    }
    s
}

/// The Laplacian L of conductances cbar_ij = c_ij + c_ji (eq. 35-36) of an [n, n] cost matrix.
pub fn laplacian(n: usize, c: &[f64]) -> DMatrix<f64> {
    let mut l = DMatrix::zeros(n, n);
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let cbar = c[i * n + j] + c[j * n + i];
                l[(i, j)] = -cbar;
                l[(i, i)] += cbar;
            }
        }
    }
    l
}

/// Eigenvalues (ascending) and eigenvectors (columns, same order) of a Laplacian.
pub fn laplacian_modes(l: &DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let eig = SymmetricEigen::new(l.clone());
    let mut order: Vec<usize> = (0..l.nrows()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = DMatrix::from_fn(l.nrows(), l.nrows(), |r, c| eig.eigenvectors[(r, order[c])]);
    (values, vectors)
}

/// Eigenvalues below this fraction of the largest count as the Laplacian's null space (one per
/// connected component).
const NULL_TOL: f64 = 1e-10;

/// Moore-Penrose pseudo-inverse of a Laplacian, from its eigen-decomposition.
pub fn pseudo_inverse(l: &DMatrix<f64>) -> DMatrix<f64> {
    let (values, vectors) = laplacian_modes(l);
    let top = values.last().copied().unwrap_or(0.0).abs();
    let mut out = DMatrix::zeros(l.nrows(), l.ncols());
    for (i, &lambda) in values.iter().enumerate() {
        if lambda > NULL_TOL * top {
            let v = vectors.column(i);
            out += (v * v.transpose()) / lambda;
        }
    }
    out
}

/// Resistance distance R_ij = L+_ii + L+_jj - 2 L+_ij (eq. 48).
pub fn resistance(l_pinv: &DMatrix<f64>, i: usize, j: usize) -> f64 {
    l_pinv[(i, i)] + l_pinv[(j, j)] - 2.0 * l_pinv[(i, j)]
}

/// The heat-equation approximation of h(t) with the Laplacian held at L (eq. 39):
/// h(t) = sum_{lambda > 0} (p lambda)^-1 (1 - e^(-p lambda t)) v v^T g0, in units where gamma p = 1.
/// Returns the projection of h(t) on every mode (zero on the null space).
pub fn heat_modes(values: &[f64], vectors: &DMatrix<f64>, g0: &[f64], p: f64, t: f64) -> Vec<f64> {
    let top = values.last().copied().unwrap_or(0.0).abs();
    let g0 = DVector::from_column_slice(g0);
    values
        .iter()
        .enumerate()
        .map(|(i, &lambda)| {
            if lambda <= NULL_TOL * top {
                return 0.0;
            }
            let proj = vectors.column(i).dot(&g0);
            proj * (1.0 - (-p * lambda * t).exp()) / (p * lambda)
        })
        .collect()
}

/// Neural gradients g = row sums - column sums (eq. 17) of an [n, n] cost matrix.
pub fn neural_gradients(n: usize, c: &[f64]) -> Vec<f64> {
    (0..n)
        .map(|k| (0..n).map(|j| c[k * n + j] - c[j * n + k]).sum())
        .collect()
}

/// Synapses whose sign or zero differs between J and a transformed J: the task-preserving
/// transformation (eq. 4) scales by positive factors, so a correct one changes none.
pub fn signs_or_zeros_changed(before: &[f32], after: &[f32]) -> usize {
    before
        .iter()
        .zip(after)
        .filter(|(a, b)| a.signum() != b.signum() || (**a == 0.0) != (**b == 0.0))
        .count()
}

/// Prop. 5: (lower, upper) bounds on the balanced total cost C*:
/// sum_ij sqrt(c_ij c_ji) <= C* <= C0 - ||g0||^2 / (8 C0).
pub fn cost_bounds(n: usize, c: &[f64]) -> (f64, f64) {
    let total: f64 = c.iter().sum();
    let lower = geometric_mean_bound(n, |i, j| c[i * n + j]);
    let g2: f64 = neural_gradients(n, c).iter().map(|v| v * v).sum();
    (lower, total - g2 / (8.0 * total))
}

/// The largest forward-Euler step of the flow that is stable at the start, for every network:
/// the flow's Jacobian in h is -p L (eq. 37), Euler needs dt p lambda_max(L) < 2, and by
/// Gershgorin lambda_max(L) <= 2 max_k (in_k + out_k). Returns 1 / (p max_k (in_k + out_k)).
/// The total cost only falls along the flow, so this stays a safe step in practice; a network far
/// from balance has a large degree somewhere and needs many small steps (the solver does not).
pub fn largest_stable_dt(n: usize, p: f32, cost: impl Fn(usize, usize) -> f64) -> f32 {
    let mut degree = vec![0.0f64; n];
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            let c = cost(i, j);
            degree[i] += c;
            degree[j] += c;
        }
    }
    let top = degree.iter().fold(0.0f64, |m, d| m.max(*d));
    if top > 0.0 {
        (1.0 / (f64::from(p) * top)) as f32
    } else {
        f32::INFINITY
    }
}

/// Prop. 5's lower bound on the balanced cost: sum_ij sqrt(c_ij c_ji) (eq. 42) of the costs
/// `cost(i, j)` gives.
/// The sum is symmetric in (i, j): it runs over the square tiles on and above the diagonal, each
/// small enough that c_ji comes from cache, one band of rows per task, and adds the bands' totals
/// in order, so that the result does not depend on the thread count.
pub fn geometric_mean_bound(n: usize, cost: impl Fn(usize, usize) -> f64 + Sync) -> f64 {
    const TILE: usize = 64;
    let tiles = n.div_ceil(TILE);
    let span = |t: usize| t * TILE..((t + 1) * TILE).min(n);
    let bands: Vec<f64> = (0..tiles)
        .into_par_iter()
        .map(|bi| {
            let mut band = 0.0;
            for bj in bi..tiles {
                let mut tile = 0.0;
                for i in span(bi) {
                    for j in span(bj) {
                        tile += (cost(i, j) * cost(j, i)).sqrt();
                    }
                }
                band += if bj == bi { tile } else { 2.0 * tile };
            }
            band
        })
        .collect();
    bands.iter().sum()
}

/// Strongly connected components of the graph with an edge j -> i wherever `positive(i, j)`
/// (i != j), as a component index per neuron (Kosaraju's two passes, iterative).
pub fn strong_components(n: usize, positive: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let edge = |from: usize, to: usize| from != to && positive(to, from);
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(w) = (*next..n).find(|&w| !seen[w] && edge(v, w)) {
                *next = w + 1;
                seen[w] = true;
                stack.push((w, 0));
            } else {
                order.push(v);
                stack.pop();
            }
        }
    }
    let mut comp = vec![usize::MAX; n];
    let mut count = 0;
    for &root in order.iter().rev() {
        if comp[root] != usize::MAX {
            continue;
        }
        comp[root] = count;
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            for w in 0..n {
                if comp[w] == usize::MAX && edge(w, v) {
                    comp[w] = count;
                    stack.push(w);
                }
            }
        }
        count += 1;
    }
    comp
}

/// None when every connected component of the cost graph (c_ij > 0 where `positive(i, j)`) is
/// strongly connected, so that a finite balanced point exists (001 Prop. B.1); otherwise which
/// synapse leaves its strong component.
pub fn why_no_balanced_point(n: usize, positive: impl Fn(usize, usize) -> bool) -> Option<String> {
    if strongly_connected(n, &positive) {
        return None;
    }
    let comp = strong_components(n, &positive);
    let count = comp.iter().max().map_or(0, |m| m + 1);
    for i in 0..n {
        for j in 0..n {
            if i != j && comp[i] != comp[j] && positive(i, j) {
                return Some(format!(
                    "the synapse from neuron {j} to neuron {i} has a positive cost but no path of synapses leads back from {i} to {j} \
                     ({count} strongly connected components); along such a feedforward link the cost can only shrink towards 0 as h diverges"
                ));
            }
        }
    }
    None
}

/// Which neurons have a path of synapses to `target` along the edges j -> i where
/// `positive(i, j)` (the target itself included).
pub fn reaches(n: usize, target: usize, positive: impl Fn(usize, usize) -> bool) -> Vec<bool> {
    let mut reached = vec![false; n];
    reached[target] = true;
    let mut frontier = vec![target];
    while let Some(i) = frontier.pop() {
        for j in 0..n {
            if !reached[j] && positive(i, j) {
                reached[j] = true;
                frontier.push(j);
            }
        }
    }
    reached
}

/// Whether every neuron reaches every other along the edges j -> i where `positive(i, j)`: one
/// search from neuron 0 along the edges and one against them, each testing only the neurons not
/// yet reached, so that a dense network costs O(N) tests where Kosaraju's passes cost O(N^2).
pub fn strongly_connected(n: usize, positive: impl Fn(usize, usize) -> bool) -> bool {
    [true, false].into_iter().all(|along| {
        let mut unreached: Vec<usize> = (1..n).collect();
        let mut frontier = vec![0];
        while let Some(v) = frontier.pop() {
            unreached.retain(|&w| {
                let edge = if along {
                    positive(w, v)
                } else {
                    positive(v, w)
                };
                if edge {
                    frontier.push(w);
                }
                !edge
            });
        }
        unreached.is_empty()
    })
}
