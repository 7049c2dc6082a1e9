//! Networks of LIF neurons with exponential current synapses (issue 18), many independent
//! networks in lockstep sharing one connectivity: each step integrates every neuron exactly and
//! delivers the step's spikes to the next (a delay of one step). Spike lists are kept on the
//! device for `record_every` steps and read back together. Uses the op family spiking.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::spiking::{Lif, SpikingOps, Synapses, WeightBufs};
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

/// The synapses of n neurons, W[pre, post] the jump of the target's current when `pre` spikes
/// (I_e's for the first `excitatory` neurons, I_i's for the rest; signs as given).
#[derive(Clone, Debug, PartialEq)]
pub struct Connectivity {
    pub n: usize,
    pub excitatory: usize,
    pub weights: Weights,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    Sparse(Csr),
    /// [n, n], row-major, zero where there is no synapse: delivered by `deliver_spikes_dense`.
    Dense(Vec<f32>),
}

/// Compressed sparse rows, one row per presynaptic neuron (scipy.sparse's csr_matrix of
/// W[pre, post]), each row's targets ascending and distinct.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Csr {
    /// Row j's targets and weights.
    pub fn row(&self, j: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[j] as usize..self.indptr[j + 1] as usize;
        (&self.indices[range.clone()], &self.weights[range])
    }
}

/// Why a CSR matrix from a file was refused: the array at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrError {
    pub array: &'static str,
    pub message: String,
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
                        // k distinct sources among the block's neurons other than i: the s-th
                        // of those is block.start + s, or one further from i on.
                        let others = block.len() - usize::from(block.contains(&i));
                        for s in rand::seq::index::sample(&mut rng, others, k.min(others)) {
                            let j = block.start + s;
                            rows[j + usize::from(j >= i && block.contains(&i))].push(i as u32);
                        }
                    }
                }
            }
        }
        let mut csr = Csr {
            indptr: vec![0],
            indices: Vec::new(),
            weights: Vec::new(),
        };
        for (j, row) in rows.iter().enumerate() {
            csr.indices.extend(row);
            csr.weights
                .extend(std::iter::repeat_n(weight(j), row.len()));
            csr.indptr.push(csr.indices.len() as u32);
        }
        Connectivity {
            n,
            excitatory,
            weights: Weights::Sparse(csr),
        }
    }

    /// CSR arrays as scipy.sparse writes them (rows presynaptic, n x n): indptr [n + 1] from 0,
    /// non-decreasing, ending at the length of indices and data; indices in 0..n. A row's
    /// targets may come in any order and repeat: repeats are summed, as scipy reads them.
    pub fn from_csr(
        n: usize,
        excitatory: usize,
        indptr: &[i64],
        indices: &[i64],
        data: &[f32],
    ) -> Result<Self, CsrError> {
        let err = |array, message: String| Err(CsrError { array, message });
        if indptr.len() != n + 1 {
            return err(
                "indptr",
                format!(
                    "{} pointers; a matrix of {n} rows has n + 1 = {}",
                    indptr.len(),
                    n + 1
                ),
            );
        }
        if indices.len() != data.len() {
            return err(
                "indices",
                format!(
                    "{} indices for {} values in data; allowed: one index per value",
                    indices.len(),
                    data.len()
                ),
            );
        }
        if indices.len() > u32::MAX as usize {
            return err(
                "indices",
                format!("{} synapses; allowed: at most 2^32 - 1", indices.len()),
            );
        }
        if indptr[0] != 0 || indptr[n] != indices.len() as i64 {
            return err(
                "indptr",
                format!(
                    "runs from {} to {}; allowed: from 0 to the number of synapses, {}",
                    indptr[0],
                    indptr[n],
                    indices.len()
                ),
            );
        }
        if let Some(j) = (0..n).find(|&j| indptr[j + 1] < indptr[j]) {
            return err(
                "indptr",
                format!(
                    "decreases at row {j} ({} then {}); allowed: non-decreasing pointers",
                    indptr[j],
                    indptr[j + 1]
                ),
            );
        }
        if let Some(k) = indices.iter().position(|&i| !(0..n as i64).contains(&i)) {
            return err(
                "indices",
                format!(
                    "index {} at position {k} (row {}); allowed: 0 to {}",
                    indices[k],
                    indptr.partition_point(|&p| p <= k as i64) - 1,
                    n as i64 - 1
                ),
            );
        }
        let mut csr = Csr {
            indptr: vec![0],
            indices: Vec::with_capacity(indices.len()),
            weights: Vec::with_capacity(indices.len()),
        };
        let mut row: Vec<(u32, f32)> = Vec::new();
        for j in 0..n {
            let range = indptr[j] as usize..indptr[j + 1] as usize;
            row.clear();
            row.extend(
                indices[range.clone()]
                    .iter()
                    .map(|&i| i as u32)
                    .zip(data[range].iter().copied()),
            );
            row.sort_by_key(|(i, _)| *i);
            for &(i, w) in &row {
                if csr.indices.len() > csr.indptr[j] as usize && csr.indices.last() == Some(&i) {
                    *csr.weights.last_mut().expect("a weight beside each index") += w;
                } else {
                    csr.indices.push(i);
                    csr.weights.push(w);
                }
            }
            csr.indptr.push(csr.indices.len() as u32);
        }
        Ok(Connectivity {
            n,
            excitatory,
            weights: Weights::Sparse(csr),
        })
    }

    /// Dense weights [n, n], W[pre, post].
    pub fn dense(n: usize, excitatory: usize, weights: Vec<f32>) -> Self {
        assert_eq!(weights.len(), n * n, "dense weights hold n^2 values");
        Connectivity {
            n,
            excitatory,
            weights: Weights::Dense(weights),
        }
    }

    /// The synapses (non-zero weights).
    pub fn synapses(&self) -> usize {
        match &self.weights {
            Weights::Sparse(csr) => csr.indices.len(),
            Weights::Dense(w) => w.iter().filter(|w| **w != 0.0).count(),
        }
    }

    /// The values the weights take on the device.
    pub fn stored_values(&self) -> usize {
        match &self.weights {
            Weights::Sparse(csr) => csr.indices.len(),
            Weights::Dense(w) => w.len(),
        }
    }

    /// The targets and weights of neuron j's synapses.
    pub fn row(&self, j: usize) -> Vec<(u32, f32)> {
        match &self.weights {
            Weights::Sparse(csr) => {
                let (targets, w) = csr.row(j);
                targets.iter().copied().zip(w.iter().copied()).collect()
            }
            Weights::Dense(w) => (0..self.n as u32)
                .zip(w[j * self.n..][..self.n].iter().copied())
                .filter(|(_, w)| *w != 0.0)
                .collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpikingParams {
    pub lif: Lif,
    pub connectivity: Connectivity,
    /// V at the start, [networks, n]; currents start at zero and no neuron is refractory.
    pub v0: Vec<f32>,
    pub steps: usize,
    /// Steps whose spike lists stay on the device between read-backs; fewer where their room
    /// (networks x n values a step) would pass 2^22 values.
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

/// Steps whose spike lists a chunk holds: `record_every` at most, and no more than the run, or
/// than keep the lists' room (and the packed copy's: `len` = networks x n values a step) within
/// 2^22 values (16 MiB: each step of a chunk touches its own pages); one at least.
pub fn chunk_steps(record_every: usize, steps: usize, len: usize) -> usize {
    record_every.min(steps).min((1 << 22) / len.max(1)).max(1)
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
        nnz: c.stored_values(),
        excitatory: c.excitatory,
    };
    let v = scope.alloc_from(backend, "V", &params.v0)?;
    let currents = scope.alloc::<f32>(backend, "currents", 2 * len)?;
    let refractory = scope.alloc::<u32>(backend, "refractory steps left", len)?;
    let chunk = chunk_steps(params.record_every, params.steps, len);
    // Each step of a chunk lists its spikes in its own slice.
    let lists = scope.alloc::<u32>(backend, "spike lists", chunk * len)?;
    let counts = scope.alloc::<u32>(backend, "spike counts", chunk * networks)?;
    let offsets = scope.alloc::<u32>(backend, "spike list offsets", chunk * networks + 1)?;
    let packed = scope.alloc::<u32>(backend, "packed spikes", chunk * len)?;
    let weights = match &c.weights {
        Weights::Sparse(csr) => WeightBufs::Sparse {
            indptr: scope.alloc_from(backend, "indptr", &csr.indptr)?,
            indices: scope.alloc_from(backend, "indices", &csr.indices)?,
            weights: scope.alloc_from(backend, "weights", &csr.weights)?,
        },
        Weights::Dense(w) => WeightBufs::Dense(scope.alloc_from(backend, "weights", w)?),
    };
    let mut run = SpikingRun {
        spikes: Vec::new(),
        v: Vec::new(),
    };
    let mut step = 0;
    while step < params.steps {
        let this = chunk.min(params.steps - step);
        backend.lif_steps(
            v, currents, refractory, lists, counts, weights, this, lif, synapses,
        );
        backend.pack_spikes(lists, counts, offsets, packed, this, networks, n);
        let all_counts = backend.download(counts, 0, this * networks)?;
        let total: usize = all_counts.iter().map(|c| *c as usize).sum();
        let mut all_spikes = backend.download(packed, 0, total)?.into_iter();
        for s in 0..this {
            for b in 0..networks {
                let count = all_counts[s * networks + b] as usize;
                run.spikes.extend(
                    all_spikes
                        .by_ref()
                        .take(count)
                        .map(|k| ((step + s) as u32, b as u32, k)),
                );
            }
        }
        step += this;
    }
    run.v = backend.download(v, 0, len)?;
    Ok(run)
}
