"""CUBA (Brette et al. 2007, benchmark 2) in Brian2, runtime mode with its compiled (Cython)
target, with the parameters of scenes/cuba.json, for `cargo bench --bench cuba` and for the
scene's reference ranges. Exact integration, delay one step (Brian2's default for on_pre
without a delay), wiring as dale draws it: each ordered pair but i -> i with probability p, or
a fixed number of inputs per neuron from each block. Brian2 compiles its code objects on the
first run of a process and caches them on disk: the first run of a size is a warm-up (run it
twice and take the second).

Usage: python cuba_brian2.py --n N [--probability P | --in-degree KE KI] [--seconds S]
       [--seed SEED]
Prints one JSON line: build and run wall times, spikes, synapses and the statistics dale's
summary reports (mean rate, mean CV of the inter-spike intervals of neurons with at least two,
Fano factor of the population spike count in 1 ms bins)."""
import json
import time

import numpy as np
from cuba_common import arguments, statistics

args = arguments(__doc__).parse_args()

import brian2  # noqa: E402
from brian2 import NeuronGroup, SpikeMonitor, Synapses, defaultclock, ms, mV, prefs, run, seed  # noqa: E402

prefs.codegen.target = "cython"
seed(args.seed)
np.random.seed(args.seed)
defaultclock.dt = 0.1 * ms
n = args.n
excitatory = int(round(0.8 * n))

taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
eqs = """
dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
dge/dt = -ge / taue : volt
dgi/dt = -gi / taui : volt
"""
start = time.perf_counter()
P = NeuronGroup(n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms, method="exact")
P.v = "Vr + rand() * (Vt - Vr)"
P.ge = 0 * mV
P.gi = 0 * mV
Ce = Synapses(P, P, on_pre="ge += 1.62 * mV")
Ci = Synapses(P, P, on_pre="gi += -9 * mV")
if args.in_degree:
    rng = np.random.default_rng(args.seed)
    targets = np.arange(n)
    for synapses, (first, end), k in ((Ce, (0, excitatory), args.in_degree[0]),
                                      (Ci, (excitatory, n), args.in_degree[1])):
        # k distinct sources per target among the block's neurons other than itself: draw
        # with replacement, redraw the rows that repeat a source.
        inside = (targets >= first) & (targets < end)
        others = (end - first) - inside.astype(int)
        sources = np.zeros((n, k), dtype=np.int64)
        redraw = np.ones(n, dtype=bool)
        while redraw.any():
            rows = np.flatnonzero(redraw)
            s = first + (rng.random((len(rows), k)) * others[rows, None]).astype(np.int64)
            s += (s >= targets[rows, None]) & inside[rows, None]
            sources[rows] = s
            ordered = np.sort(sources, axis=1)
            redraw = np.zeros(n, dtype=bool)
            redraw[rows] = (np.diff(ordered[rows], axis=1) == 0).any(axis=1)
        synapses.connect(i=sources.ravel(), j=np.repeat(targets, k))
else:
    p = args.probability if args.probability is not None else 0.02
    Ce.connect("i < excitatory and i != j", p=p)
    Ci.connect("i >= excitatory and i != j", p=p)
spikes = SpikeMonitor(P)
build = time.perf_counter() - start
start = time.perf_counter()
run(args.seconds * 1000 * ms)
wall = time.perf_counter() - start

t, k = np.asarray(spikes.t / ms), np.asarray(spikes.i)
print(json.dumps({
    "peer": f"brian2 {brian2.__version__} runtime ({prefs.codegen.target})",
    "seed": args.seed,
    "n": n,
    "synapses": int(len(Ce) + len(Ci)),
    "build_s": build,
    "wall_s": wall,
    **statistics(t, k, n, args.seconds),
}))
