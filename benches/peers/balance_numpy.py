#!/usr/bin/env python3
"""The NumPy peer of `dale balance` (issue 10), written as a careful NumPy user would.

Balances the power-law cost c_ij = |J_ij|^p of paper 001 with the same direct solver as dale
(half-step parallel Osborne: h_k += ln(in_k / out_k) / (4p) for every neuron at once, then
sum h = 0) and the same stopping rule (||g|| <= tol ||g0||), then writes what dale writes
apart from the plot: J.npy (dtype as given), h.npy, W_in.npy / W_out.npy when given, and
summary.json with the total cost before and after, Prop. 5's bounds and the passes over J.

Each pass reads the costs c0 twice, through two BLAS matrix-vector products, and never forms
the costs at h: in_i = (c0 s)_i / s_i and out_j = s_j (s^-1 c0)_j with s = e^(p h), since
c_ij(h) = c0_ij s_j / s_i (eq. 14). The self-synapses, which balancing never changes, are
left out of in and out, as dale does.

    balance_numpy.py WEIGHTS --out DIR [--p 2] [--tol 1e-6] [--max-iterations 20000]

Prints one JSON line: passes, seconds (read, balance, write) and the NumPy version.
"""
import argparse
import json
import os
import time

import numpy as np


def read(path):
    if path.endswith(".npz"):
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return {"J": np.load(path)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--out", required=True)
    ap.add_argument("--p", type=float, default=2.0)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iterations", type=int, default=20000)
    a = ap.parse_args()
    p = np.float32(a.p)

    t0 = time.perf_counter()
    arrays = read(a.weights)
    j = arrays["J"]
    n = j.shape[0]
    t1 = time.perf_counter()

    c0 = np.abs(j, dtype=np.float32)
    if p == 2:
        np.square(c0, out=c0)
    else:
        np.power(c0, p, out=c0)
    diag = c0.diagonal().astype(np.float64)
    np.fill_diagonal(c0, 0.0)
    bound = float(np.sqrt(c0 * c0.T).sum(dtype=np.float64) + diag.sum())

    h = np.zeros(n, dtype=np.float32)
    s = np.ones(n, dtype=np.float32)
    grad_norm, total_cost = [], []
    passes, converged = 0, None
    while True:
        inc = (c0 @ s) / s
        out = s * ((1.0 / s) @ c0)
        g = inc - out
        norm = float(np.sqrt(np.dot(g.astype(np.float64), g)))
        grad_norm.append(norm)
        total_cost.append(float(inc.sum(dtype=np.float64) + diag.sum()))
        if norm <= a.tol * grad_norm[0]:
            converged = passes
            break
        if passes == a.max_iterations:
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(inc == out, 0.0, np.log(inc / out) / (4.0 * p))
        h += step.astype(np.float32)
        h -= h.mean(dtype=np.float64)
        np.exp(p * h, out=s)
        passes += 1
    t2 = time.perf_counter()

    os.makedirs(a.out, exist_ok=True)
    e_minus, e_plus = np.exp(-h), np.exp(h)
    balanced = j * e_minus[:, None]
    balanced *= e_plus[None, :]
    np.save(os.path.join(a.out, "J.npy"), balanced.astype(j.dtype, copy=False))
    np.save(os.path.join(a.out, "h.npy"), h)
    if "W_in" in arrays:
        np.save(os.path.join(a.out, "W_in.npy"), arrays["W_in"] * e_minus[:, None].astype(arrays["W_in"].dtype))
    if "W_out" in arrays:
        np.save(os.path.join(a.out, "W_out.npy"), arrays["W_out"] * e_plus[None, :].astype(arrays["W_out"].dtype))
    c_before, g0 = total_cost[0], grad_norm[0]
    summary = {
        "n": n,
        "p": float(p),
        "balanced": converged is not None,
        "total_cost": {"before": c_before, "after": total_cost[-1]},
        "prop5_bounds_on_balanced_cost": {"lower": bound, "upper": c_before - g0 * g0 / (8.0 * c_before)},
        "grad_norm": {"before": g0, "after": grad_norm[-1], "tol_relative": a.tol},
        # dale counts the final pass that measures the end point too; so does this.
        "passes_over_j": {"to_tolerance": None if converged is None else converged + 1, "run": passes + 1},
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    t3 = time.perf_counter()
    print(json.dumps({
        "passes": passes + 1,
        "converged": converged is not None,
        "seconds": {"read": t1 - t0, "balance": t2 - t1, "write": t3 - t2},
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
