#!/usr/bin/env python3
"""NumPy's C = A W^T on the shapes of benches/gemm_choice (GFLOP/s, best of 7 rounds of >= 0.1 s),
to set the crates' figures beside the BLAS a NumPy user gets."""
import time

import numpy as np

SHAPES = [(1, 1000, 1000), (64, 1000, 1000), (64, 1000, 2), (1, 4096, 4096), (64, 4096, 4096),
          (256, 4096, 4096), (1024, 1024, 1024)]

for rows, inner, cols in SHAPES:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    w = rng.standard_normal((cols, inner), dtype=np.float32)
    c = np.empty((rows, cols), np.float32)
    best = float("inf")
    for round_ in range(8):  # round 0 warms up
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < 0.1:
            np.matmul(a, w.T, out=c)
            calls += 1
        if round_:
            best = min(best, (time.perf_counter() - start) / calls)
    print(f"[{rows} x {inner}] x [{inner} x {cols}]: {2 * rows * inner * cols / best / 1e9:.1f} GFLOP/s")
