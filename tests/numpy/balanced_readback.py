"""A balanced network read back with NumPy, as a user of `dale balance` reads it (issue 10).

    balanced_readback.py make DIR        writes DIR/net.npz: J (float64, Fortran order, with
                                         zeros), W_in, W_out, sigma2, as a NumPy user saves them
    balanced_readback.py check DIR OUT   checks what `dale balance DIR/net.npz --cost robustness
                                         --out OUT` wrote, from the files alone

Every check is computed here in float64 from the files, independently of dale, and a failure
exits non-zero naming what disagrees.
"""
import json
import os
import sys

import numpy as np

N, M, K = 60, 3, 2


def make(d):
    r = np.random.default_rng(7)
    s = r.standard_normal(N)
    j = r.standard_normal((N, N)) * 0.8 / np.sqrt(N) * np.exp(s[:, None] - s[None, :])
    j[r.random((N, N)) < 0.3] = 0.0
    # A ring of synapses keeps the cost graph strongly connected whatever the zeros.
    ring = np.arange(N)
    j[(ring + 1) % N, ring] = 0.5 * np.exp(s[(ring + 1) % N] - s[ring])
    np.savez(
        os.path.join(d, "net.npz"),
        J=np.asfortranarray(j),
        W_in=r.standard_normal((N, M)),
        W_out=r.standard_normal((K, N)) / np.sqrt(N),
        sigma2=0.2 + r.random(N),
    )


def fail(what):
    print(f"balanced_readback: {what}", file=sys.stderr)
    sys.exit(1)


def close(name, got, want, rel):
    err = np.max(np.abs(got - want)) / np.max(np.abs(want))
    if not err <= rel:
        fail(f"{name}: largest difference {err:.2e} of max |{name}|, allowed {rel:.0e}")


def run(j, w_in, w_out, u):
    """ReLU rate network (001 eq. 1-2), forward Euler, dt/tau = 0.1; outputs every step."""
    x = np.zeros((u.shape[1], N))
    ys = []
    for u_t in u:
        x = x + 0.1 * (-x + np.maximum(x, 0.0) @ j.T + u_t @ w_in.T)
        ys.append(x @ w_out.T)
    return np.array(ys)


def check(d, out):
    with np.load(os.path.join(d, "net.npz")) as z:
        j0, w_in0, w_out0, sigma2 = z["J"], z["W_in"], z["W_out"], z["sigma2"]
    j, h = np.load(os.path.join(out, "J.npy")), np.load(os.path.join(out, "h.npy"))
    w_in, w_out = np.load(os.path.join(out, "W_in.npy")), np.load(os.path.join(out, "W_out.npy"))
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)

    # Dtypes and shapes as they came in; h in dale's precision, sum h = 0 (eq. 22).
    for name, a, like in [("J", j, j0), ("W_in", w_in, w_in0), ("W_out", w_out, w_out0)]:
        if a.dtype != like.dtype or a.shape != like.shape:
            fail(f"{name} came back as {a.dtype} {a.shape}, went in as {like.dtype} {like.shape}")
    if h.dtype != np.float32 or h.shape != (N,):
        fail(f"h is {h.dtype} {h.shape}, expected float32 ({N},)")
    h = h.astype(np.float64)
    if abs(h.sum()) > 1e-4 * np.abs(h).max():
        fail(f"sum h = {h.sum():.2e}")
    if np.abs(h).max() < 0.1:
        fail("h is near 0: the network was not moved, so the checks below would prove nothing")

    # Eq. 4, from h alone; dale computes in float32, so agreement is to float32 rounding.
    close("J", j, np.exp(-h)[:, None] * j0 * np.exp(h)[None, :], 1e-5)
    close("W_in", w_in, np.exp(-h)[:, None] * w_in0, 1e-5)
    close("W_out", w_out, w_out0 * np.exp(h)[None, :], 1e-5)
    if np.any(np.sign(j) != np.sign(j0)):
        fail(f"{np.count_nonzero(np.sign(j) != np.sign(j0))} synapses changed sign or zero")

    # The balance condition of the robustness cost c_ij = sigma2_j J_ij^2 (eq. 13): each neuron's
    # incoming cost equals its outgoing cost, self-synapses aside. dale stops at ||g|| <= 1e-6
    # ||g0||; float32 rounding of the costs leaves ~1e-6 of the total per neuron.
    c = sigma2[None, :] * j.astype(np.float64) ** 2
    c0 = sigma2[None, :] * j0 ** 2
    np.fill_diagonal(c, 0.0)
    g = c.sum(axis=1) - c.sum(axis=0)
    g0 = (c0 - np.diag(np.diag(c0))).sum(axis=1) - (c0 - np.diag(np.diag(c0))).sum(axis=0)
    if not np.abs(g).max() <= 1e-5 * c.sum():
        fail(f"not balanced: largest |in - out| = {np.abs(g).max():.2e}, total cost {c.sum():.3e}")
    if not np.abs(g0).max() > 0.05 * c0.sum():
        fail("the input network was already balanced; the test would prove nothing")

    # summary.json against the same figures computed here.
    total_after, total_before = (sigma2[None, :] * j.astype(np.float64) ** 2).sum(), c0.sum()
    close("total cost after", np.array(summary["total_cost"]["after"]), np.array(total_after), 1e-5)
    close("total cost before", np.array(summary["total_cost"]["before"]), np.array(total_before), 1e-5)
    lower = np.sqrt(c0 * c0.T).sum()
    close("Prop. 5 lower bound", np.array(summary["prop5_bounds_on_balanced_cost"]["lower"]), np.array(lower), 1e-5)
    if not lower <= total_after * (1 + 1e-6) <= total_before:
        fail(f"Prop. 5 fails: {lower} <= {total_after} <= {total_before}")
    if summary["balanced"] is not True:
        fail(f"summary says balanced = {summary['balanced']}")

    # The task (Prop. 1): the same outputs on the same inputs, run here in float64.
    u = np.random.default_rng(3).standard_normal((300, 4, M))
    y0, y = run(j0, w_in0, w_out0, u), run(j.astype(np.float64), w_in, w_out, u)
    close("outputs y", y, y0, 1e-4)
    print(f"balanced_readback: ok (max |h| {np.abs(h).max():.2f}, cost {total_before:.3f} -> {total_after:.3f}, numpy {np.__version__})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"] and len(sys.argv) == 3:
        make(sys.argv[2])
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 4:
        check(sys.argv[2], sys.argv[3])
    else:
        fail(__doc__)
