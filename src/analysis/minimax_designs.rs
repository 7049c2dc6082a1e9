//! Weight designs of paper 000's tasks (minimax.md, tasks 2 to 4; Figs. 2 to 4): reconstruction
//! with a dictionary, its low-rank-inhibition variant for image patches, the fixed-point
//! attractor, the ring attractor and the grid attractor. Each builds a `MinimaxNet` (self terms on
//! the diagonals) in f64 on the host.

use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::minimax::{MinimaxNet, Rates};

fn row_major(w: &DMatrix<f64>) -> Vec<f64> {
    w.transpose().iter().copied().collect()
}

/// Reconstruction with a dictionary H [m, n_e] (Fig. 2a, 2b): H = F+ - G with F+ = max(H, 0),
/// G = max(-H, 0); W_EI = |H|' (n_i = m), W_II = I, W_EE = 2 (F+' G + G' F+) - beta I, E input
/// H' x. The read-out is H r_E.
pub fn reconstruction(h: &DMatrix<f64>, beta: f64) -> MinimaxNet {
    let (m, n_e) = h.shape();
    let plus = h.map(|v| v.max(0.0));
    let minus = h.map(|v| (-v).max(0.0));
    let w_ee = 2.0 * (plus.transpose() * &minus + minus.transpose() * &plus)
        - beta * DMatrix::<f64>::identity(n_e, n_e);
    MinimaxNet {
        n_e,
        n_i: m,
        m,
        w_ee: row_major(&w_ee),
        w_ei: row_major(&h.abs().transpose()),
        w_ii: row_major(&DMatrix::<f64>::identity(m, m)),
        f: row_major(&h.transpose()),
        theta_e: 0.0,
        theta_i: 0.0,
    }
}

/// Fig. 2a's dictionary: H = pinv(|Z|), Z ~ N(0, 1) [n_e, m], scaled to H / (n_e sd(H)).
pub fn constant_input_dictionary(n_e: usize, m: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::<f64>::new(0.0, 1.0).expect("unit normal");
    let z = DMatrix::<f64>::from_fn(n_e, m, |_, _| normal.sample(&mut rng).abs());
    let h = z.pseudo_inverse(1e-12).expect("an SVD of a finite matrix");
    let mean = h.mean();
    let sd = (h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (h.len() - 1) as f64).sqrt();
    h / (n_e as f64 * sd)
}

/// Fig. 2b's dictionary (the integrator): H = pinv(3 U) with U ~ U(0, 1) [n_e, m].
pub fn integrator_dictionary(n_e: usize, m: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let u = DMatrix::<f64>::from_fn(n_e, m, |_, _| 3.0 * rng.random::<f64>());
    u.pseudo_inverse(1e-12).expect("an SVD of a finite matrix")
}

/// Reconstruction of image patches with low-rank inhibition (Fig. 2c, the reply to reviewer 2):
/// H = [A, -A] for a dictionary A [pixels, atoms] (n_e = 2 atoms); keep the top n_i eigenpairs
/// (V, D) of H'H, V <- V sqrt(D) sqrt(n_i); W_EI = |V| / n_i, W_II = I / n_i,
/// W_EE = 2 (V+ V-' + V- V+') / n_i - beta I with beta = 0.05 / n_i; E input H' x. Also returns
/// H and the fraction of H'H's eigen-mass kept.
pub fn low_rank_reconstruction(a: &DMatrix<f64>, n_i: usize) -> (MinimaxNet, DMatrix<f64>, f64) {
    let (pixels, atoms) = a.shape();
    let n_e = 2 * atoms;
    let h = DMatrix::<f64>::from_fn(pixels, n_e, |p, k| {
        if k < atoms {
            a[(p, k)]
        } else {
            -a[(p, k - atoms)]
        }
    });
    let eigen = (h.transpose() * &h).symmetric_eigen();
    let mut order: Vec<usize> = (0..n_e).collect();
    order.sort_by(|&x, &y| eigen.eigenvalues[y].total_cmp(&eigen.eigenvalues[x]));
    let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let kept: f64 = order[..n_i]
        .iter()
        .map(|&k| eigen.eigenvalues[k].max(0.0))
        .sum();
    let v = DMatrix::<f64>::from_fn(n_e, n_i, |row, col| {
        let k = order[col];
        eigen.eigenvectors[(row, k)] * (eigen.eigenvalues[k].max(0.0) * n_i as f64).sqrt()
    });
    let plus = v.map(|x| x.max(0.0));
    let minus = v.map(|x| (-x).max(0.0));
    let scale = 1.0 / n_i as f64;
    let beta = 0.05 / n_i as f64;
    let w_ee = 2.0 * scale * (&plus * minus.transpose() + &minus * plus.transpose())
        - beta * DMatrix::<f64>::identity(n_e, n_e);
    let net = MinimaxNet {
        n_e,
        n_i,
        m: pixels,
        w_ee: row_major(&w_ee),
        w_ei: row_major(&(v.abs() * scale)),
        w_ii: row_major(&(DMatrix::<f64>::identity(n_i, n_i) * scale)),
        f: row_major(&h.transpose()),
        theta_e: 0.0,
        theta_i: 0.0,
    };
    (net, h, kept / total)
}

/// The fixed-point attractor's knobs (Fig. 3), designed as the reply to reviewer 2 describes:
/// W_EE = alpha sum_p xi_p xi_p' (zero diagonal) - I; W_EI = c sum_p xi_p eta_p' + u 1 1'
/// (low rank, uniform inhibition), W_IE = W_EI'; W_II = w I. A stored state p has E rates
/// `rate_e` on xi_p and I rates on eta_p; theta_I is set `margin_i` above the uniform drive the
/// silent I neurons get, and theta_E and the I rate follow from the KKT equalities.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttractorDesign {
    pub n_e: usize,
    pub n_i: usize,
    /// Active E and I neurons per state.
    pub active: usize,
    pub states: usize,
    pub alpha: f64,
    pub c: f64,
    pub u: f64,
    pub w: f64,
    pub rate_e: f64,
    pub margin_i: f64,
}

impl AttractorDesign {
    /// Fig. 3's size: 15 + 15, two states of 3 + 3.
    pub fn fig3() -> Self {
        AttractorDesign {
            n_e: 15,
            n_i: 15,
            active: 3,
            states: 2,
            alpha: 2.0,
            c: 1.0,
            u: 0.2,
            w: 3.0,
            // Traces of 40 (80 Hz at tau_E = 0.5), so that a spike moves a voltage by a small
            // part of its margins, and theta_E small (2.4) above the silent state: with
            // theta_E = 14.4 (margin_i = 32) an E burst draws an I burst that overshoots, both
            // populations fall below threshold together and the silent state catches the
            // network; with 2.4 the cued state holds (E at 81 Hz against the designed 80).
            rate_e: 40.0,
            margin_i: 22.0,
        }
    }
}

/// A designed attractor network, its stored states (rates), and each state's active sets.
pub struct Attractor {
    pub net: MinimaxNet,
    pub states: Vec<Rates>,
    pub active_e: Vec<Vec<usize>>,
    pub active_i: Vec<Vec<usize>>,
}

/// Builds the attractor of `d` with disjoint active sets drawn by `seed`. The network has one
/// input with zero weights (the states are cued through the neurons' own traces).
pub fn attractor(d: &AttractorDesign, seed: u64) -> Attractor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut e: Vec<usize> = (0..d.n_e).collect();
    let mut i: Vec<usize> = (0..d.n_i).collect();
    e.shuffle(&mut rng);
    i.shuffle(&mut rng);
    let k = d.active;
    let active_e: Vec<Vec<usize>> = (0..d.states)
        .map(|p| {
            let mut s = e[p * k..(p + 1) * k].to_vec();
            s.sort_unstable();
            s
        })
        .collect();
    let active_i: Vec<Vec<usize>> = (0..d.states)
        .map(|p| {
            let mut s = i[p * k..(p + 1) * k].to_vec();
            s.sort_unstable();
            s
        })
        .collect();
    let mut w_ee = DMatrix::<f64>::zeros(d.n_e, d.n_e);
    let mut w_ei = DMatrix::<f64>::from_element(d.n_e, d.n_i, d.u);
    for (xi, eta) in active_e.iter().zip(&active_i) {
        for &a in xi {
            for &b in xi {
                if a != b {
                    w_ee[(a, b)] += d.alpha;
                }
            }
            for &j in eta {
                w_ei[(a, j)] += d.c;
            }
        }
    }
    for a in 0..d.n_e {
        w_ee[(a, a)] = -1.0;
    }
    let kf = k as f64;
    // Active I: k (c + u) a - w b = theta_I; silent I get k u a, theta_I lies margin_i above.
    let theta_i = kf * d.u * d.rate_e + d.margin_i;
    let rate_i = (kf * (d.c + d.u) * d.rate_e - theta_i) / d.w;
    // Active E: alpha (k - 1) a - a - k (c + u) b = theta_E.
    let theta_e = d.rate_e * (d.alpha * (kf - 1.0) - 1.0) - kf * (d.c + d.u) * rate_i;
    let states = active_e
        .iter()
        .zip(&active_i)
        .map(|(xi, eta)| {
            let mut r = Rates {
                e: vec![0.0; d.n_e],
                i: vec![0.0; d.n_i],
            };
            xi.iter().for_each(|&a| r.e[a] = d.rate_e);
            eta.iter().for_each(|&j| r.i[j] = rate_i);
            r
        })
        .collect();
    Attractor {
        net: MinimaxNet {
            n_e: d.n_e,
            n_i: d.n_i,
            m: 1,
            w_ee: row_major(&w_ee),
            w_ei: row_major(&w_ei),
            w_ii: row_major(&(DMatrix::<f64>::identity(d.n_i, d.n_i) * d.w)),
            f: vec![0.0; d.n_e],
            theta_e,
            theta_i,
        },
        states,
        active_e,
        active_i,
    }
}

/// The largest eigenvalue of W_eff = W_EE - W_EI W_II^-1 W_IE restricted to the active E and I
/// sets: negative where the state is a strict local minimum of the E problem (a stable fixed
/// point of the rate dynamics with fast inhibition).
pub fn effective_curvature(net: &MinimaxNet, active_e: &[usize], active_i: &[usize]) -> f64 {
    let (n_e, n_i) = (net.n_e, net.n_i);
    let ee = DMatrix::<f64>::from_fn(active_e.len(), active_e.len(), |r, c| {
        net.w_ee[active_e[r] * n_e + active_e[c]]
    });
    let ei = DMatrix::<f64>::from_fn(active_e.len(), active_i.len(), |r, c| {
        net.w_ei[active_e[r] * n_i + active_i[c]]
    });
    let ii = DMatrix::<f64>::from_fn(active_i.len(), active_i.len(), |r, c| {
        net.w_ii[active_i[r] * n_i + active_i[c]]
    });
    let Some(ii_inv) = ii.try_inverse() else {
        return f64::INFINITY;
    };
    let eff = ee - &ei * ii_inv * ei.transpose();
    eff.symmetric_eigen()
        .eigenvalues
        .iter()
        .fold(f64::NEG_INFINITY, |m, v| m.max(*v))
}

/// The attractors of Fig. 4: n E and n I neurons, W_IE uniform at `uniform`, W_EI = W_IE',
/// W_II = w_ii I, W_EE = W_EI W_IE / w_ii + kernel - I (the uniform inhibition's path cancels in
/// W_eff, leaving kernel - I); F = I.
fn uniform_inhibition(
    n: usize,
    uniform: f64,
    w_ii: f64,
    kernel: impl Fn(usize, usize) -> f64,
) -> MinimaxNet {
    let through_i = n as f64 * uniform * uniform / w_ii;
    let w_ee = DMatrix::<f64>::from_fn(n, n, |i, j| {
        through_i + kernel(i, j) - if i == j { 1.0 } else { 0.0 }
    });
    MinimaxNet {
        n_e: n,
        n_i: n,
        m: n,
        w_ee: row_major(&w_ee),
        w_ei: vec![uniform; n * n],
        w_ii: row_major(&(DMatrix::<f64>::identity(n, n) * w_ii)),
        f: row_major(&DMatrix::<f64>::identity(n, n)),
        theta_e: 0.0,
        theta_i: 0.0,
    }
}

/// The ring attractor (Fig. 4): N_E = N_I = n; W_IE uniform sqrt(3 (w0 + w1) / n) / sqrt(n),
/// W_EI = W_IE', W_II = 3 I, W_EE = W_EI W_IE / 3 + (1/n)[w0 + w1 cos(th_i - th_j)
/// - w1 gamma sin(th_j - th_i)] - I with th_k = 2 pi k / n; F = I. gamma > 0 makes the bump
/// travel.
pub fn ring(n: usize, w0: f64, w1: f64, gamma: f64) -> MinimaxNet {
    let uniform = (3.0 * (w0 + w1) / n as f64).sqrt() / (n as f64).sqrt();
    let angle = |k: usize| 2.0 * std::f64::consts::PI * k as f64 / n as f64;
    uniform_inhibition(n, uniform, 3.0, |i, j| {
        let (ti, tj) = (angle(i), angle(j));
        (w0 + w1 * (ti - tj).cos() - w1 * gamma * (tj - ti).sin()) / n as f64
    })
}

/// The grid attractor (Fig. 4, the authors' grid variant): side x side E and I neurons on a
/// torus; K = alpha exp(-gamma d) - exp(-beta d) on the squared toroidal distance d, with
/// beta = 3 / lambda^2, gamma = 1.2 beta, alpha = 1.1; W_IE uniform sqrt(201 |min K| / N_I),
/// W_EI = W_IE', W_II = 201 I, W_EE = W_EI W_IE / 201 + K - I; F = I.
pub fn grid(side: usize, lambda: f64) -> MinimaxNet {
    let n = side * side;
    let beta = 3.0 / (lambda * lambda);
    let (gamma, alpha) = (1.2 * beta, 1.1);
    let wrap = |a: usize, b: usize| {
        let d = a.abs_diff(b);
        d.min(side - d) as f64
    };
    let kernel = |p: usize, q: usize| {
        let (dx, dy) = (wrap(p % side, q % side), wrap(p / side, q / side));
        let d = dx * dx + dy * dy;
        alpha * (-gamma * d).exp() - (-beta * d).exp()
    };
    let lowest = (0..n).fold(0.0f64, |m, q| m.min(kernel(0, q)));
    let uniform = (201.0 * lowest.abs() / n as f64).sqrt();
    uniform_inhibition(n, uniform, 201.0, kernel)
}
