"""CUBA (Brette et al. 2007, benchmark 2) in NEST, with the parameters of scenes/cuba.json, for
`cargo bench --bench cuba`: iaf_psc_exp neurons (exact integration), all of the machine's
cores as threads, delay one step (0.1 ms). dale's currents are in mV (tau_m dV/dt = -(V - E_L)
+ I); NEST's are in pA, so a jump of w mV is w C_m / tau_m pA.

Usage: python cuba_nest.py --n N [--probability P | --in-degree KE KI] [--seconds S]
       [--seed SEED] [--threads T]
Prints one JSON line: build and simulate wall times, spikes, synapses and the statistics."""
import json
import os
import time

import numpy as np
from cuba_common import arguments, statistics

parser = arguments(__doc__)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()

import nest  # noqa: E402  (after argparse: NEST prints a banner on import)

try:
    nest.verbosity = nest.VerbosityLevel.ERROR
except AttributeError:  # NEST before 3.9
    nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus({
    "resolution": 0.1,
    "local_num_threads": args.threads,
    "rng_seed": args.seed,
    "print_time": False,
})
n = args.n
excitatory = int(round(0.8 * n))
tau_m, c_m = 20.0, 250.0
params = {
    "C_m": c_m, "tau_m": tau_m, "tau_syn_ex": 5.0, "tau_syn_in": 10.0, "t_ref": 5.0,
    "E_L": -49.0, "V_th": -50.0, "V_reset": -60.0, "I_e": 0.0,
}
start = time.perf_counter()
neurons = nest.Create("iaf_psc_exp", n, params=params)
neurons.V_m = nest.random.uniform(-60.0, -50.0)
e, i = neurons[:excitatory], neurons[excitatory:]
w_e, w_i = 1.62 * c_m / tau_m, -9.0 * c_m / tau_m
if args.in_degree:
    k_e, k_i = args.in_degree
    rule_e = {"rule": "fixed_indegree", "indegree": k_e, "allow_autapses": False, "allow_multapses": False}
    rule_i = {"rule": "fixed_indegree", "indegree": k_i, "allow_autapses": False, "allow_multapses": False}
else:
    p = args.probability if args.probability is not None else 0.02
    rule_e = rule_i = {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": False}
nest.Connect(e, neurons, rule_e, {"weight": w_e, "delay": 0.1})
nest.Connect(i, neurons, rule_i, {"weight": w_i, "delay": 0.1})
recorder = nest.Create("spike_recorder")
nest.Connect(neurons, recorder)
nest.Prepare()
build = time.perf_counter() - start
start = time.perf_counter()
nest.Run(args.seconds * 1000.0)
wall = time.perf_counter() - start
nest.Cleanup()
events = recorder.get("events")
t, k = events["times"], np.asarray(events["senders"]) - neurons[0].global_id
print(json.dumps({
    "peer": "nest " + nest.__version__ + f" iaf_psc_exp, {args.threads} threads",
    "n": n,
    "synapses": nest.GetKernelStatus("num_connections"),
    "build_s": build,
    "wall_s": wall,
    **statistics(t, k, n, args.seconds),
}))
