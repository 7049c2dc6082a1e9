#!/usr/bin/env python3
"""LAPACK's matrix balancing (gebal, through SciPy's `scipy.linalg.matrix_balance`, scaling only,
no permutation) as a peer of `dale balance` (issue 24). gebal scales rows and columns by powers
of 2 until no row's and column's 2-norms (diagonal left out) are far apart, which lowers the
p = 2 cost sum_ij J_ij^2 that dale minimises exactly; it stops at its own criterion, not at a
gradient tolerance.

    balance_gebal.py J.npy

Prints one JSON line: seconds for the balancing alone (the matrix already in memory, as float32,
which gebal takes as sgebal), the p = 2 cost before and after, and SciPy's version.
"""
import json
import sys
import time

import numpy as np
import scipy
from scipy.linalg import matrix_balance


def cost(j):
    """sum_ij J_ij^2, self-synapses included (as dale's total_cost; neither method moves them)."""
    return float(np.square(j, dtype=np.float64).sum())


def main():
    j = np.load(sys.argv[1]).astype(np.float32, copy=False)
    before = cost(j)
    t = time.perf_counter()
    balanced, _ = matrix_balance(j, permute=False)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "cost_before": before,
                      "cost_after": cost(balanced), "scipy": scipy.__version__}))


if __name__ == "__main__":
    main()
