"""CUBA (Brette et al. 2007, benchmark 2) in Brian2, runtime mode, with the parameters of
scenes/cuba.json, printing the statistics dale's summary reports: mean rate, mean CV of the
inter-spike intervals (neurons with at least two intervals), and the Fano factor of the
population spike count in 1 ms bins. Usage: python cuba_brian2.py SEED [N] [SECONDS]."""
import json
import sys
import time

import numpy as np
from brian2 import (NeuronGroup, SpikeMonitor, Synapses, defaultclock, ms, mV, run, seed,
                    prefs)

seed_value = int(sys.argv[1]) if len(sys.argv) > 1 else 1
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
seed(seed_value)
np.random.seed(seed_value)
defaultclock.dt = 0.1 * ms

taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
eqs = """
dv/dt  = (ge + gi - (v - El)) / taum : volt (unless refractory)
dge/dt = -ge / taue : volt
dgi/dt = -gi / taui : volt
"""
P = NeuronGroup(n, eqs, threshold="v > Vt", reset="v = Vr", refractory=5 * ms,
                method="exact")
P.v = "Vr + rand() * (Vt - Vr)"
P.ge = 0 * mV
P.gi = 0 * mV
excitatory = int(0.8 * n)
Ce = Synapses(P, P, on_pre="ge += 1.62 * mV")
Ci = Synapses(P, P, on_pre="gi += -9 * mV")
# dale's wiring: each ordered pair other than i -> i with probability 0.02.
Ce.connect("i < excitatory and i != j", p=0.02)
Ci.connect("i >= excitatory and i != j", p=0.02)
spikes = SpikeMonitor(P)
start = time.perf_counter()
run(seconds * 1000 * ms)
wall = time.perf_counter() - start

t = np.asarray(spikes.t / ms)
k = np.asarray(spikes.i)
cvs = []
for neuron in range(n):
    isi = np.diff(np.sort(t[k == neuron]))
    if len(isi) >= 2:
        cvs.append(isi.std() / isi.mean())
bins = np.histogram(t, bins=int(round(seconds * 1000)), range=(0, seconds * 1000))[0]
print(json.dumps({
    "peer": "brian2 " + __import__("brian2").__version__ + " runtime",
    "seed": seed_value,
    "n": n,
    "mean_rate_hz": len(t) / (n * seconds),
    "mean_cv_isi": float(np.mean(cvs)),
    "population_fano_1ms": float(bins.var() / bins.mean()),
    "wall_s": wall,
}))
