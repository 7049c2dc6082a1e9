"""What the CUBA peers (cuba_nest.py, cuba_brian2.py) share: their command line and the
statistics dale's summary reports, so that every simulator's spikes are measured alike."""
import argparse

import numpy as np


def arguments(usage):
    """--n N [--probability P | --in-degree KE KI] [--seconds S] [--seed SEED], plus any the
    caller adds to the parser it gets back before calling parse_args()."""
    parser = argparse.ArgumentParser(description=usage)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--probability", type=float, default=None)
    parser.add_argument("--in-degree", type=int, nargs=2, default=None)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    return parser


def statistics(t_ms, neurons, n, seconds):
    """Mean rate (Hz), mean CV of the inter-spike intervals of neurons with at least two, and
    the Fano factor of the population spike count in 1 ms bins."""
    t_ms, neurons = np.asarray(t_ms), np.asarray(neurons)
    order = np.lexsort((t_ms, neurons))
    t_sorted, k_sorted = t_ms[order], neurons[order]
    bounds = np.searchsorted(k_sorted, np.arange(n + 1))
    cvs = []
    for neuron in range(n):
        isi = np.diff(t_sorted[bounds[neuron]:bounds[neuron + 1]])
        if len(isi) >= 2:
            cvs.append(isi.std() / isi.mean())
    bins = np.histogram(t_ms, bins=int(round(seconds * 1000)), range=(0, seconds * 1000))[0]
    return {
        "spikes": int(len(t_ms)),
        "mean_rate_hz": len(t_ms) / (n * seconds),
        "mean_cv_isi": float(np.mean(cvs)) if cvs else None,
        "population_fano_1ms": float(bins.var() / bins.mean()) if bins.mean() > 0 else None,
    }
