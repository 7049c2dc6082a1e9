#!/usr/bin/env python3
"""NumPy sorting each row of a [rows, len] float32 batch (standard normal keys, seed 0): seconds
per call, best of ROUNDS rounds of >= 0.1 s each after one warm-up call, for three calls a
careful NumPy user would make:

  sort       np.sort(x, axis=1): the keys only (NumPy's default quicksort, which runs
             x86-simd-sort's AVX-512 kernels where the processor has them)
  argsort    np.argsort(x, axis=1) and np.take_along_axis: the permutation and the sorted keys,
             what dale's sort_rows returns
  stable     the same with kind="stable": dale's order of ties too

  sort_numpy.py --shapes 1x1000000,1024x1000 [--rounds R]    one JSON line per shape
"""
import argparse
import json
import time

import numpy as np


def per_call(f, rounds):
    f()
    best = float("inf")
    for _ in range(rounds):
        start, calls = time.perf_counter(), 0
        while calls == 0 or time.perf_counter() - start < 0.1:
            f()
            calls += 1
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", required=True, help="comma-separated rows x len, e.g. 1024x1000")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for shape in a.shapes.split(","):
        rows, n = (int(v) for v in shape.split("x"))
        x = np.random.default_rng(0).standard_normal((rows, n), dtype=np.float32)

        def argsort(kind):
            def call():
                p = np.argsort(x, axis=1, kind=kind)
                return np.take_along_axis(x, p, axis=1)
            return call

        print(json.dumps({
            "rows": rows,
            "len": n,
            "sort_s": per_call(lambda: np.sort(x, axis=1), a.rounds),
            "argsort_s": per_call(argsort(None), a.rounds),
            "stable_s": per_call(argsort("stable"), a.rounds),
            "numpy": np.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
