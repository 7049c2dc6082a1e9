//! Networks of LIF neurons with exponential current synapses (issue 18), many independent
//! networks in lockstep sharing one connectivity: each step integrates every neuron exactly and
//! delivers the step's spikes to the next (a delay of one step). Spike lists are kept on the
//! device for `record_every` steps and read back together. Uses the op family spiking.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::spiking::{Lif, SpikingOps, Synapses};
use crate::backend::{Backend, BufferOps, Scope};
use crate::error::DaleError;

/// How the synapses are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wiring {
    /// Each ordered pair (j -> i, i != j) with this probability.
    Probability(f64),
    /// Each neuron receives exactly this many synapses from the excitatory block and this many
    /// from the inhibitory one, from distinct neurons other than itself.
    InDegree {
        excitatory: usize,
        inhibitory: usize,
    },
}

/// Synaptic weights in compressed sparse rows, one row per presynaptic neuron (scipy.sparse's
/// csr_matrix of W[j, i]), each row's targets ascending and distinct; the first `excitatory`
/// neurons are excitatory.
#[derive(Clone, Debug, PartialEq)]
pub struct Connectivity {
    pub n: usize,
    pub excitatory: usize,
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Connectivity {
    /// Random synapses of weight w_e from the excitatory block and w_i from the inhibitory one,
    /// the same for a seed on every machine: row j from its own stream of the seed, gaps between
    /// targets geometric (probability wiring), or each target's sources drawn apart (in-degree).
    pub fn random(
        n: usize,
        excitatory: usize,
        wiring: Wiring,
        (w_e, w_i): (f32, f32),
        seed: u64,
    ) -> Self {
        let weight = |j: usize| if j < excitatory { w_e } else { w_i };
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); n];
        match wiring {
            Wiring::Probability(p) => {
                for (j, row) in rows.iter_mut().enumerate() {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(j as u64);
                    if p <= 0.0 {
                        continue;
                    }
                    // Target k is kept with probability p: the gaps between kept targets are
                    // geometric, drawn by inversion.
                    let mut k = 0usize;
                    loop {
                        let skip = if p >= 1.0 {
                            0
                        } else {
                            let u: f64 = rng.random::<f64>();
                            ((1.0 - u).ln() / (1.0 - p).ln()).floor() as usize
                        };
                        k = k.saturating_add(skip);
                        if k >= n {
                            break;
                        }
                        if k != j {
                            row.push(k as u32);
                        }
                        k += 1;
                    }
                }
            }
            Wiring::InDegree {
                excitatory: k_e,
                inhibitory: k_i,
            } => {
                for i in 0..n {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(i as u64);
                    for (block, k) in [(0..excitatory, k_e), (excitatory..n, k_i)] {
                        // Sources in the block other than i, k of them distinct.
                        let others: Vec<usize> = block.filter(|j| *j != i).collect();
                        let k = k.min(others.len());
                        for s in rand::seq::index::sample(&mut rng, others.len(), k) {
                            rows[others[s]].push(i as u32);
                        }
                    }
                }
            }
        }
        let mut c = Connectivity {
            n,
            excitatory,
            indptr: vec![0],
            indices: Vec::new(),
            weights: Vec::new(),
        };
        for (j, row) in rows.iter().enumerate() {
            c.indices.extend(row);
            c.weights.extend(std::iter::repeat_n(weight(j), row.len()));
            c.indptr.push(c.indices.len() as u32);
        }
        c
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpikingParams {
    pub lif: Lif,
    pub connectivity: Connectivity,
    /// V at the start, [networks, n]; currents start at zero and no neuron is refractory.
    pub v0: Vec<f32>,
    pub steps: usize,
    /// Steps whose spike lists stay on the device between read-backs.
    pub record_every: usize,
}

/// The spikes of a run: (step, network, neuron), in step order, each step's ascending per
/// network.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikingRun {
    pub spikes: Vec<(u32, u32, u32)>,
    /// V at the end, [networks, n].
    pub v: Vec<f32>,
}

pub fn simulate(
    backend: &mut dyn Backend,
    params: &SpikingParams,
) -> Result<SpikingRun, DaleError> {
    let mut scope = Scope::new();
    let result = simulate_in(backend, &mut scope, params);
    scope.free(backend);
    result
}

fn simulate_in(
    backend: &mut dyn Backend,
    scope: &mut Scope,
    params: &SpikingParams,
) -> Result<SpikingRun, DaleError> {
    let lif = params.lif;
    let (networks, n, len) = (lif.networks, lif.n, lif.len());
    let c = &params.connectivity;
    let synapses = Synapses {
        networks,
        n,
        nnz: c.nnz(),
        excitatory: c.excitatory,
    };
    let v = scope.alloc_from(backend, "V", &params.v0)?;
    let currents = scope.alloc::<f32>(backend, "currents", 2 * len)?;
    let refractory = scope.alloc::<u32>(backend, "refractory steps left", len)?;
    let chunk = params.record_every.clamp(1, params.steps.max(1));
    // Each step of a chunk lists its spikes in its own slice.
    let lists = scope.alloc::<u32>(backend, "spike lists", chunk * len)?;
    let counts = scope.alloc::<u32>(backend, "spike counts", chunk * networks)?;
    let indptr = scope.alloc_from(backend, "indptr", &c.indptr)?;
    let indices = scope.alloc_from(backend, "indices", &c.indices)?;
    let weights = scope.alloc_from(backend, "weights", &c.weights)?;
    let mut run = SpikingRun {
        spikes: Vec::new(),
        v: Vec::new(),
    };
    let mut step = 0;
    while step < params.steps {
        let this = chunk.min(params.steps - step);
        for slot in 0..this {
            backend.lif_step(v, currents, refractory, lists, counts, slot, lif);
            backend.deliver_spikes(
                lists, counts, slot, indptr, indices, weights, currents, synapses,
            );
        }
        let all_counts = backend.download(counts, 0, this * networks)?;
        let all_lists = backend.download(lists, 0, this * len)?;
        for s in 0..this {
            for b in 0..networks {
                let count = all_counts[s * networks + b] as usize;
                let list = &all_lists[s * len + b * n..][..count];
                run.spikes
                    .extend(list.iter().map(|k| ((step + s) as u32, b as u32, *k)));
            }
        }
        step += this;
    }
    run.v = backend.download(v, 0, len)?;
    Ok(run)
}
