//! CPU twins of the spiking family: networks in parallel, each network's neurons in order (so
//! that its spikes are listed ascending).

use rayon::prelude::*;

use super::Lif;

/// The state of every neuron, [networks, n] each.
pub(super) struct LifState<'a> {
    pub v: &'a mut [f32],
    pub current_e: &'a mut [f32],
    pub current_i: &'a mut [f32],
    pub refractory: &'a mut [u32],
}

/// As spiking.wgsl's `lif_step`, with the same f32 operations in the same order.
pub(super) fn lif_step(state: LifState, spikes: &mut [u32], counts: &mut [u32], lif: Lif) {
    let p = lif.propagator();
    let n = lif.n;
    let len = lif.len();
    state.v[..len]
        .par_chunks_mut(n)
        .zip(state.current_e[..len].par_chunks_mut(n))
        .zip(state.current_i[..len].par_chunks_mut(n))
        .zip(state.refractory[..len].par_chunks_mut(n))
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
