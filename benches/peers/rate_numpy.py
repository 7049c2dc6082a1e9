#!/usr/bin/env python3
"""The peer for dale's rate model (paper 001 eq. 1-2): the same batched Euler step, written as a
careful NumPy user would write it (float32, preallocated buffers, BLAS for the products, one
process; OpenBLAS uses every core for the matrix products, the elementwise work runs on one).

It reads the very scene file that dale runs, so both do the same steps:
  x <- x + (dt/tau) (-x + J phi(x) + W_in u(t)) + sigma sqrt(dt)/tau xi,   r = phi(x)
and records what dale records: the population rate and max|x| per step and trial, the readout
y = W_out x and the state x at the scene's monitor strides, and x at the end.

  rate_numpy.py SCENE --out DIR              run the scene end to end and write .npy files
  rate_numpy.py SCENE --time-steps S [--n N] [--trials B] [--bare]
                                             print seconds per step (T(2S) - T(S)) / S as JSON

Two flavours of step are timed. The scene's step (the default) is everything the scene asks for:
input, noise, readout and monitors. --bare is the step without noise, input or monitors, the
least work of the same math: x <- x + leak (J r - x), r = phi(x), nothing recorded. There the
product dominates, so it is the flavour where NumPy's BLAS weighs most.

The weights come from NumPy's generator, not dale's ChaCha stream: the work per step is the
same, the numbers are not.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

PHI = {
    "relu": lambda x, out: np.maximum(x, 0.0, out=out),
    "tanh": lambda x, out: np.tanh(x, out=out),
    "linear": lambda x, out: np.copyto(out, x),
}


def load_scene(path, n, trials, steps):
    with open(path) as f:
        scene = json.load(f)
    if scene.get("model") != "rate":
        sys.exit(f"{path}: model = {scene.get('model')!r}; this peer runs only 'rate'")
    p = dict(tau=10.0, dt=1.0, phi="relu", g=0.9, inputs=0, outputs=1, sigma=0.0, networks=1,
             input={"kind": "none"})
    p.update(scene["params"])
    if p["networks"] != 1:
        sys.exit(f"{path}: params.networks = {p['networks']}; this peer runs one network")
    if n is not None:
        p["n"] = n
    if trials is not None:
        p["trials"] = trials
    return scene, p, steps if steps is not None else scene["steps"]


def input_at(p, rng, t, out):
    """u(t) for every trial, [B, M], as dale's `Input` kinds define it."""
    kind, b, m = p["input"]["kind"], p["trials"], p["inputs"]
    if kind == "none":
        out.fill(0.0)
    elif kind == "constant":
        out[:] = np.asarray(p["input"]["value"], dtype=np.float32)
    elif kind == "sine":
        i = p["input"]
        phase = t * p["dt"] / i["period"] + np.arange(m) / m + np.arange(b)[:, None] / b
        out[:] = i["offset"] + i["amplitude"] * np.sin(2.0 * math.pi * phase)
    elif kind == "gaussian":
        out[:] = p["input"]["mean"] + p["input"]["std"] * rng.standard_normal((b, m), dtype=np.float32)
    else:
        sys.exit(f"params.input.kind = {kind!r} is not known to this peer")


def simulate(p, steps, seed, monitors):
    n, b, m, k = p["n"], p["trials"], p["inputs"], p["outputs"]
    rng = np.random.default_rng(seed)
    j = rng.standard_normal((n, n), dtype=np.float32) * np.float32(p["g"] / math.sqrt(n))
    w_in = rng.standard_normal((n, m), dtype=np.float32)
    w_out = rng.standard_normal((k, n), dtype=np.float32) * np.float32(1.0 / math.sqrt(n))
    j_t, w_in_t, w_out_t = j.T, w_in.T, w_out.T  # views: BLAS reads the transpose in place

    leak = np.float32(p["dt"] / p["tau"])
    noise_std = np.float32(p["sigma"] * math.sqrt(p["dt"]) / p["tau"])
    phi = PHI[p["phi"]]
    x = np.zeros((b, n), np.float32)
    r = np.zeros((b, n), np.float32)  # phi(0) = 0 for every phi offered
    drive = np.empty((b, n), np.float32)
    u = np.empty((b, m), np.float32)
    noise = np.empty((b, n), np.float32)

    x_mon, y_mon = monitors.get("x"), monitors.get("y")
    x_every = x_mon["every"] if x_mon else 0
    y_every = y_mon["every"] if y_mon else 0
    x_trials = min(x_mon.get("trials") or b, b) if x_mon else 0
    y_trials = min(y_mon.get("trials") or b, b) if y_mon else 0
    pop = np.empty((steps, b), np.float32)
    max_abs = np.empty((steps, b), np.float32)
    xs = np.empty((steps // x_every if x_every else 0, x_trials, n), np.float32)
    ys = np.empty((steps // y_every if y_every else 0, y_trials, k), np.float32)

    for t in range(steps):
        np.matmul(r, j_t, out=drive)
        if m:
            input_at(p, rng, t, u)
            drive += u @ w_in_t
        drive -= x
        drive *= leak
        x += drive
        if noise_std:
            rng.standard_normal(out=noise, dtype=np.float32)
            noise *= noise_std
            x += noise
        phi(x, r)
        r.mean(axis=1, out=pop[t])
        np.abs(x).max(axis=1, out=max_abs[t])
        if x_every and (t + 1) % x_every == 0:
            xs[(t + 1) // x_every - 1] = x[:x_trials]
        if y_every and (t + 1) % y_every == 0:
            ys[(t + 1) // y_every - 1] = x[:y_trials] @ w_out_t
        if not np.isfinite(max_abs[t]).all():
            sys.exit(f"x diverged at step {t + 1}")
    return dict(population_rate=pop, max_abs_x=max_abs, x=xs, y=ys, x_final=x)


def bare_loop(p, steps, seed):
    """The bare step: one product, the Euler update in place, phi; no noise, input or records."""
    n, b = p["n"], p["trials"]
    rng = np.random.default_rng(seed)
    j_t = (rng.standard_normal((n, n), dtype=np.float32) * np.float32(p["g"] / math.sqrt(n))).T
    leak = np.float32(p["dt"] / p["tau"])
    phi = PHI[p["phi"]]
    # x(0) = 0 as in dale (a random start would decay into subnormal floats within ~9,000 steps
    # here, which slow the arithmetic down and would flatter dale).
    x = np.zeros((b, n), np.float32)
    r = np.zeros((b, n), np.float32)
    drive = np.empty((b, n), np.float32)
    for _ in range(steps):
        np.matmul(r, j_t, out=drive)
        drive -= x
        drive *= leak
        x += drive
        phi(x, r)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene")
    ap.add_argument("--out", help="write the recorded arrays here")
    ap.add_argument("--time-steps", type=int, help="time S and 2S steps; print seconds per step")
    ap.add_argument("--n", type=int, help="override params.n")
    ap.add_argument("--trials", type=int, help="override params.trials")
    ap.add_argument("--steps", type=int, help="override steps")
    ap.add_argument("--bare", action="store_true",
                    help="with --time-steps: time the bare step (no noise, input or monitors)")
    a = ap.parse_args()
    scene, p, steps = load_scene(a.scene, a.n, a.trials, a.steps)
    if a.time_steps:
        s = a.time_steps
        if a.bare:
            run = lambda steps: bare_loop(p, steps, scene["seed"])
        else:
            run = lambda steps: simulate(p, steps, scene["seed"], scene.get("monitors", {}))
        run(2)  # warm-up: BLAS threads, page faults
        t0 = time.perf_counter()
        run(s)
        t1 = time.perf_counter()
        run(2 * s)
        t2 = time.perf_counter()
        per_step = max((t2 - t1) - (t1 - t0), 1e-12) / s
        print(json.dumps({"n": p["n"], "trials": p["trials"], "seconds_per_step": per_step,
                          "short_s": t1 - t0, "long_s": t2 - t1, "steps": s,
                          "numpy": np.__version__, "threads": os.cpu_count()}))
        return
    out = simulate(p, steps, scene["seed"], scene.get("monitors", {}))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        for name, arr in out.items():
            np.save(os.path.join(a.out, name + ".npy"), arr)


if __name__ == "__main__":
    main()
