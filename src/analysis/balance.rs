//! Analysis of synaptic balancing (paper 001): sensitivity (eq. 9), the Laplacian of conductances
//! and its pseudo-inverse (eq. 34-36), the heat-equation approximation of the flow (eq. 38-40),
//! resistance distance (eq. 48), and Prop. 5's bounds on the balanced cost.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::backend::Phi;

/// Gain moments of every neuron over the states of a run (eq. 8): mu_i = <phi'(x_i)>,
/// sigma_i^2 = <phi'(x_i)^2>. `x` holds samples of n values each.
pub fn gain_moments(phi: Phi, n: usize, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let samples = (x.len() / n.max(1)).max(1);
    let (mut mu, mut sigma2) = (vec![0.0; n], vec![0.0; n]);
    for state in x.chunks(n) {
        for (i, &v) in state.iter().enumerate() {
            let d = match phi {
                Phi::Linear => 1.0,
                Phi::Relu => f64::from(u8::from(v > 0.0)),
                Phi::Tanh => 1.0 - f64::from(v.tanh()).powi(2),
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

/// Prop. 5: (lower, upper) bounds on the balanced total cost C*:
/// sum_ij sqrt(c_ij c_ji) <= C* <= C0 - ||g0||^2 / (8 C0).
pub fn cost_bounds(n: usize, c: &[f64]) -> (f64, f64) {
    let total: f64 = c.iter().sum();
    let lower = (0..n * n)
        .map(|e| (c[e] * c[(e % n) * n + e / n]).sqrt())
        .sum();
    let g2: f64 = neural_gradients(n, c).iter().map(|v| v * v).sum();
    (lower, total - g2 / (8.0 * total))
}
