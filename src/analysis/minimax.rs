//! The minimax objective of paper 000 (Li & Pehlevan; ../shared/models/minimax.md) and its
//! saddle point, on the host in f64: the reference the rate and spiking networks (issue 19) are
//! measured against.
//!
//!   S(r_E, r_I) = -1/2 r_E' W_EE r_E + r_E' W_EI r_I - 1/2 r_I' W_II r_I - r_E' F x
//!                 + theta_E 1' r_E - theta_I 1' r_I,
//!
//! minimised over r_E >= 0 and maximised over r_I >= 0, with W_IE = W_EI'. Its voltages are
//! V_E = W_EE r_E - W_EI r_I + F x and V_I = W_IE r_E - W_II r_I; the saddle point is where the
//! KKT conditions hold for both populations: g = V - theta <= 0, r >= 0, g r = 0.

use nalgebra::{DMatrix, DVector};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// An E/I network of the minimax objective: weights row-major, W_EE [n_e, n_e] and W_II
/// [n_i, n_i] symmetric with their self terms on the diagonals, W_EI [n_e, n_i] (I -> E),
/// F [n_e, m].
#[derive(Clone, Debug, PartialEq)]
pub struct MinimaxNet {
    pub n_e: usize,
    pub n_i: usize,
    pub m: usize,
    pub w_ee: Vec<f64>,
    pub w_ei: Vec<f64>,
    pub w_ii: Vec<f64>,
    pub f: Vec<f64>,
    pub theta_e: f64,
    pub theta_i: f64,
}

/// Rates of both populations.
#[derive(Clone, Debug, PartialEq)]
pub struct Rates {
    pub e: Vec<f64>,
    pub i: Vec<f64>,
}

/// Why no saddle point was found.
#[derive(Clone, Debug, PartialEq)]
pub struct NoSaddle {
    /// The largest KKT violation reached.
    pub residual: f64,
    pub iterations: usize,
}

/// y = A x for row-major A [rows, x.len()].
fn mat_vec(a: &[f64], x: &[f64]) -> Vec<f64> {
    a.chunks_exact(x.len().max(1))
        .map(|row| row.iter().zip(x).map(|(a, x)| a * x).sum())
        .collect()
}

/// y = A' x for row-major A [x.len(), cols].
fn mat_t_vec(a: &[f64], x: &[f64], cols: usize) -> Vec<f64> {
    let mut y = vec![0.0; cols];
    for (row, xi) in a.chunks_exact(cols.max(1)).zip(x) {
        for (y, a) in y.iter_mut().zip(row) {
            *y += a * xi;
        }
    }
    y
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

impl MinimaxNet {
    /// F x, the feedforward drive of the E neurons.
    pub fn drive(&self, x: &[f64]) -> Vec<f64> {
        assert_eq!(x.len(), self.m, "an input of m values");
        mat_vec(&self.f, x)
    }

    /// S at (r_E, r_I) for input x.
    pub fn objective(&self, r: &Rates, x: &[f64]) -> f64 {
        let ee = mat_vec(&self.w_ee, &r.e);
        let ei = mat_vec(&self.w_ei, &r.i);
        let ii = mat_vec(&self.w_ii, &r.i);
        -0.5 * dot(&r.e, &ee) + dot(&r.e, &ei) - 0.5 * dot(&r.i, &ii) - dot(&r.e, &self.drive(x))
            + self.theta_e * r.e.iter().sum::<f64>()
            - self.theta_i * r.i.iter().sum::<f64>()
    }

    /// (V_E, V_I): V_E = W_EE r_E - W_EI r_I + F x, V_I = W_IE r_E - W_II r_I.
    pub fn voltages(&self, r: &Rates, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let ee = mat_vec(&self.w_ee, &r.e);
        let ei = mat_vec(&self.w_ei, &r.i);
        let drive = self.drive(x);
        let v_e = (0..self.n_e).map(|k| ee[k] - ei[k] + drive[k]).collect();
        let ie = mat_t_vec(&self.w_ei, &r.e, self.n_i);
        let ii = mat_vec(&self.w_ii, &r.i);
        let v_i = ie.iter().zip(&ii).map(|(a, b)| a - b).collect();
        (v_e, v_i)
    }

    /// The largest violation of the KKT conditions at r: over neurons, |g| where r > 0 and
    /// max(g, 0) where r = 0 (g = V - theta), and max(-r, 0) for a negative rate.
    pub fn kkt_residual(&self, r: &Rates, x: &[f64]) -> f64 {
        let (v_e, v_i) = self.voltages(r, x);
        let violation = |rate: f64, g: f64| {
            if rate > 0.0 {
                g.abs()
            } else {
                g.max(0.0).max(-rate)
            }
        };
        let e =
            r.e.iter()
                .zip(&v_e)
                .map(|(r, v)| violation(*r, v - self.theta_e));
        let i =
            r.i.iter()
                .zip(&v_i)
                .map(|(r, v)| violation(*r, v - self.theta_i));
        e.chain(i).fold(0.0, f64::max)
    }

    /// The saddle point for input x: the rate dynamics (gradient descent in r_E, ascent in
    /// r_I, projected onto r >= 0, each population's step below the bound that keeps it stable)
    /// run until the active sets settle, then the KKT equations of the active neurons solved exactly (V =
    /// theta on them) and kept if the result satisfies every condition to `tol`; otherwise the
    /// dynamics go on. Convergence to a unique point holds for W_II positive definite and
    /// W_EE - W_EI W_II^-1 W_IE negative definite; attractor designs converge locally, from
    /// `start`.
    pub fn saddle_point(
        &self,
        x: &[f64],
        start: Rates,
        tol: f64,
        max_iterations: usize,
    ) -> Result<Rates, NoSaddle> {
        // Steps below 2 / (the largest row sum of |W|): the projected dynamics are stable.
        let row_sum = |w: &[f64], cols: usize| {
            w.chunks_exact(cols.max(1))
                .map(|row| row.iter().map(|v| v.abs()).sum::<f64>())
                .fold(0.0, f64::max)
        };
        let ei_t: f64 = (0..self.n_i)
            .map(|j| {
                (0..self.n_e)
                    .map(|k| self.w_ei[k * self.n_i + j].abs())
                    .sum()
            })
            .fold(0.0, f64::max);
        let step_e =
            0.5 / (row_sum(&self.w_ee, self.n_e) + row_sum(&self.w_ei, self.n_i)).max(1e-12);
        let step_i = 0.5 / (row_sum(&self.w_ii, self.n_i) + ei_t).max(1e-12);
        let mut r = start;
        let mut residual = f64::INFINITY;
        let mut last_active = Vec::new();
        for iteration in 1..=max_iterations {
            let (v_e, v_i) = self.voltages(&r, x);
            for (rate, v) in r.e.iter_mut().zip(&v_e) {
                *rate = (*rate + step_e * (v - self.theta_e)).max(0.0);
            }
            for (rate, v) in r.i.iter_mut().zip(&v_i) {
                *rate = (*rate + step_i * (v - self.theta_i)).max(0.0);
            }
            if iteration % 64 == 0 {
                // The exact solve (cubic in the active neurons) only once the active sets have
                // held since the last look.
                let active: Vec<bool> = r.e.iter().chain(&r.i).map(|v| *v > 0.0).collect();
                if active == last_active {
                    if let Some(exact) = self.solve_active(&r, x) {
                        if self.kkt_residual(&exact, x) <= tol {
                            return Ok(exact);
                        }
                    }
                }
                last_active = active;
                residual = self.kkt_residual(&r, x);
                if residual <= tol {
                    return Ok(r);
                }
            }
        }
        Err(NoSaddle {
            residual,
            iterations: max_iterations,
        })
    }

    /// The rates with V = theta on the neurons active in `r` and zero elsewhere, or None where
    /// that linear system is singular or gives a negative rate.
    fn solve_active(&self, r: &Rates, x: &[f64]) -> Option<Rates> {
        let active_e: Vec<usize> = (0..self.n_e).filter(|&k| r.e[k] > 0.0).collect();
        let active_i: Vec<usize> = (0..self.n_i).filter(|&j| r.i[j] > 0.0).collect();
        let (a, b) = (active_e.len(), active_i.len());
        let drive = self.drive(x);
        // [W_EE  -W_EI] [r_E]   [theta_E - F x]
        // [W_IE  -W_II] [r_I] = [theta_I      ]   on the active neurons.
        let mut m = DMatrix::<f64>::zeros(a + b, a + b);
        let mut rhs = DVector::<f64>::zeros(a + b);
        for (row, &k) in active_e.iter().enumerate() {
            for (col, &l) in active_e.iter().enumerate() {
                m[(row, col)] = self.w_ee[k * self.n_e + l];
            }
            for (col, &j) in active_i.iter().enumerate() {
                m[(row, a + col)] = -self.w_ei[k * self.n_i + j];
            }
            rhs[row] = self.theta_e - drive[k];
        }
        for (row, &j) in active_i.iter().enumerate() {
            for (col, &k) in active_e.iter().enumerate() {
                m[(a + row, col)] = self.w_ei[k * self.n_i + j];
            }
            for (col, &l) in active_i.iter().enumerate() {
                m[(a + row, a + col)] = -self.w_ii[j * self.n_i + l];
            }
            rhs[a + row] = self.theta_i;
        }
        // (No active neuron: the empty system, which nalgebra's LU does not take.)
        let z = if a + b == 0 { rhs } else { m.lu().solve(&rhs)? };
        if z.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return None;
        }
        let mut exact = Rates {
            e: vec![0.0; self.n_e],
            i: vec![0.0; self.n_i],
        };
        for (row, &k) in active_e.iter().enumerate() {
            exact.e[k] = z[row];
        }
        for (row, &j) in active_i.iter().enumerate() {
            exact.i[j] = z[a + row];
        }
        Some(exact)
    }
}

/// The generic network of Fig. 1 (minimax.md, task 1), N_E = N_I = n, m inputs: W_EE0 = R'R / n
/// with R ~ U(0, 1); a = 1 / (max |eig W_EE0| + 1); W_EI ~ U(0, 1); W_II = a W_EI' W_EI; the
/// diagonal of W_EE set to -1; F ~ N(0.1, 0.5^2); thresholds zero.
pub fn generic_network(n: usize, m: usize, seed: u64) -> MinimaxNet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let r = DMatrix::<f64>::from_fn(n, n, |_, _| rng.random::<f64>());
    let mut w_ee0 = r.transpose() * &r / n as f64;
    let largest = w_ee0
        .clone()
        .symmetric_eigen()
        .eigenvalues
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let a = 1.0 / (largest + 1.0);
    let w_ei = DMatrix::<f64>::from_fn(n, n, |_, _| rng.random::<f64>());
    let w_ii = a * w_ei.transpose() * &w_ei;
    for k in 0..n {
        w_ee0[(k, k)] = -1.0;
    }
    let normal = Normal::new(0.1, 0.5).expect("a finite mean and a positive sd");
    let f: Vec<f64> = (0..n * m).map(|_| normal.sample(&mut rng)).collect();
    let row_major = |w: &DMatrix<f64>| -> Vec<f64> { w.transpose().iter().copied().collect() };
    MinimaxNet {
        n_e: n,
        n_i: n,
        m,
        w_ee: row_major(&w_ee0),
        w_ei: row_major(&w_ei),
        w_ii: row_major(&w_ii),
        f,
        theta_e: 0.0,
        theta_i: 0.0,
    }
}
