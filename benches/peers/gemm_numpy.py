#!/usr/bin/env python3
"""NumPy's C = A W^T (A [rows, inner], W [cols, inner], float32, `np.matmul(a, w.T, out=c)`, BLAS
reading W^T in place): seconds per call, best of ROUNDS rounds of >= 0.1 s each after one warm-up
round.

  gemm_numpy.py                       the shapes of benches/gemm_choice, in GFLOP/s
  gemm_numpy.py --shapes 64x1000x1000,1x4096x4096 [--rounds R]
                                      one JSON line per shape (rows x inner x cols), for
                                      `cargo bench --bench vs_numpy`
"""
import argparse
import json
import time

import numpy as np

SHAPES = [(1, 1000, 1000), (64, 1000, 1000), (64, 1000, 2), (1, 4096, 4096), (64, 4096, 4096),
          (256, 4096, 4096), (1024, 1024, 1024)]


def seconds_per_call(rows, inner, cols, rounds):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    w = rng.standard_normal((cols, inner), dtype=np.float32)
    c = np.empty((rows, cols), np.float32)
    best = float("inf")
    for round_ in range(rounds + 1):  # round 0 warms up
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 0.1:
            np.matmul(a, w.T, out=c)
            calls += 1
        if round_:
            best = min(best, (time.perf_counter() - start) / calls)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", help="comma-separated rows x inner x cols, e.g. 64x1000x1000")
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    if a.shapes:
        for shape in a.shapes.split(","):
            rows, inner, cols = (int(v) for v in shape.split("x"))
            s = seconds_per_call(rows, inner, cols, a.rounds)
            print(json.dumps({"rows": rows, "inner": inner, "cols": cols, "seconds_per_call": s,
                              "numpy": np.__version__}))
        return
    for rows, inner, cols in SHAPES:
        s = seconds_per_call(rows, inner, cols, a.rounds)
        print(f"[{rows} x {inner}] x [{inner} x {cols}]: {2 * rows * inner * cols / s / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
