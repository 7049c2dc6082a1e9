//! CPU twins of the spiking family: networks in parallel, each network's neurons, and its
//! spikes, in order. Delivery is event-driven: only the rows of neurons that spiked are read.

use rayon::prelude::*;

use super::{Lif, Synapses};

/// As spiking.wgsl's `lif_step` and `compact_spikes`, with the same f32 operations in the same
/// order; currents are [2, networks, n].
pub(super) fn lif_step(
    v: &mut [f32],
    currents: &mut [f32],
    refractory: &mut [u32],
    spikes: &mut [u32],
    counts: &mut [u32],
    lif: Lif,
) {
    let p = lif.propagator();
    let (n, len) = (lif.n, lif.len());
    let (current_e, current_i) = currents[..2 * len].split_at_mut(len);
    v[..len]
        .par_chunks_mut(n)
        .zip(current_e.par_chunks_mut(n))
        .zip(current_i.par_chunks_mut(n))
        .zip(refractory[..len].par_chunks_mut(n))
        .zip(spikes[..len].par_chunks_mut(n))
        .zip(&mut counts[..lif.networks])
        .for_each(|(((((v, e), i), refractory), spikes), count)| {
            *count = 0;
            for k in 0..n {
                let sitting_out = refractory[k] > 0;
                if sitting_out {
                    v[k] = p.reset;
                    refractory[k] -= 1;
                } else {
                    v[k] = p.rest + (v[k] - p.rest) * p.leak + e[k] * p.gain_e + i[k] * p.gain_i;
                }
                e[k] *= p.decay_e;
                i[k] *= p.decay_i;
                if !sitting_out && v[k] >= p.threshold {
                    v[k] = p.reset;
                    refractory[k] = p.refractory_steps;
                    spikes[*count as usize] = k as u32;
                    *count += 1;
                }
            }
        });
}

/// The spike lists of `lif_step`.
pub(super) struct Spikes<'a> {
    pub list: &'a [u32],
    pub counts: &'a [u32],
}

/// Weights in compressed sparse rows, one row per presynaptic neuron.
pub(super) struct Csr<'a> {
    pub indptr: &'a [u32],
    pub indices: &'a [u32],
    pub weights: &'a [f32],
}

/// As spiking.wgsl's `deliver_spikes`.
pub(super) fn deliver_spikes(spikes: Spikes, csr: Csr, currents: &mut [f32], s: Synapses) {
    let (n, len) = (s.n, s.networks * s.n);
    let (current_e, current_i) = currents[..2 * len].split_at_mut(len);
    current_e
        .par_chunks_mut(n)
        .zip(current_i.par_chunks_mut(n))
        .enumerate()
        .for_each(|(b, (e, i))| {
            for &j in &spikes.list[b * n..][..spikes.counts[b] as usize] {
                let j = j as usize;
                let target = if j < s.excitatory { &mut *e } else { &mut *i };
                let row = csr.indptr[j] as usize..csr.indptr[j + 1] as usize;
                for (&k, &w) in csr.indices[row.clone()].iter().zip(&csr.weights[row]) {
                    target[k as usize] += w;
                }
            }
        });
}

/// As spiking.wgsl's `deliver_spikes_dense`: each target's currents take the listed rows'
/// weights in list order, as a thread of the kernel adds them.
pub(super) fn deliver_spikes_dense(
    spikes: Spikes,
    weights: &[f32],
    currents: &mut [f32],
    s: Synapses,
) {
    let (n, len) = (s.n, s.networks * s.n);
    let (current_e, current_i) = currents[..2 * len].split_at_mut(len);
    current_e
        .par_chunks_mut(n)
        .zip(current_i.par_chunks_mut(n))
        .enumerate()
        .for_each(|(b, (e, i))| {
            for &j in &spikes.list[b * n..][..spikes.counts[b] as usize] {
                let j = j as usize;
                let target = if j < s.excitatory { &mut *e } else { &mut *i };
                for (c, w) in target.iter_mut().zip(&weights[j * n..][..n]) {
                    *c += w;
                }
            }
        });
}
