//! CPU twins of the spiking family: networks in parallel, each network's neurons, and its
//! spikes, in order. Delivery is event-driven: only the rows of neurons that spiked are read.

use rayon::prelude::*;

use super::{Draw, Lif, LifParams, PoissonInputs, SpikeRule, Synapses, Thresholds};
use crate::backend::cpu::simd::{Isa, Kernel};
use crate::backend::rate::noise::uniform;

/// Neurons a thread integrates at a time: networks of more than this spread over the threads.
const BLOCK: usize = 4096;

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
    let n = lif.n;
    networks_of(v, currents, refractory, lif)
        .zip(spikes[..lif.len()].par_chunks_mut(n))
        .zip(&mut counts[..lif.networks])
        .for_each(|((mut net, list), count)| *count = net.step(&p, list));
}

/// One network's neurons: V, I_e, I_i and the steps each has still to sit out.
struct Network<'a> {
    v: &'a mut [f32],
    e: &'a mut [f32],
    i: &'a mut [f32],
    r: &'a mut [u32],
}

/// The networks of [networks, n] state (currents [2, networks, n]), in parallel.
fn networks_of<'a>(
    v: &'a mut [f32],
    currents: &'a mut [f32],
    refractory: &'a mut [u32],
    lif: Lif,
) -> impl IndexedParallelIterator<Item = Network<'a>> {
    let (n, len) = (lif.n, lif.len());
    let (current_e, current_i) = currents[..2 * len].split_at_mut(len);
    v[..len]
        .par_chunks_mut(n)
        .zip(current_e.par_chunks_mut(n))
        .zip(current_i.par_chunks_mut(n))
        .zip(refractory[..len].par_chunks_mut(n))
        .map(|(((v, e), i), r)| Network { v, e, i, r })
}

impl Network<'_> {
    /// One step of every neuron; lists those that spiked in `list`, ascending, and returns how
    /// many. Each block of neurons lists its spikes where it starts in `list`; the blocks'
    /// lists are then moved together, in order.
    fn step(&mut self, p: &LifParams, list: &mut [u32]) -> u32 {
        if self.v.len() <= BLOCK {
            // One block: no task to spread, no lists to join.
            return Isa::detected().run(Integrate {
                v: &mut *self.v,
                e: &mut *self.e,
                i: &mut *self.i,
                r: &mut *self.r,
                p,
                first: 0,
                list,
            }) as u32;
        }
        let found: Vec<usize> = self
            .v
            .par_chunks_mut(BLOCK)
            .zip(self.e.par_chunks_mut(BLOCK))
            .zip(self.i.par_chunks_mut(BLOCK))
            .zip(self.r.par_chunks_mut(BLOCK))
            .zip(list.par_chunks_mut(BLOCK))
            .enumerate()
            .map(|(block, ((((v, e), i), r), list))| {
                Isa::detected().run(Integrate {
                    v,
                    e,
                    i,
                    r,
                    p,
                    first: (block * BLOCK) as u32,
                    list,
                })
            })
            .collect();
        let mut total = 0;
        for (block, c) in found.into_iter().enumerate() {
            list.copy_within(block * BLOCK..block * BLOCK + c, total);
            total += c;
        }
        total as u32
    }
}

/// One exact step of a block of neurons (at most BLOCK), compiled for each instruction set
/// (cpu::simd): the update without branches, so that it runs in vector lanes, flagging spikes
/// in a local array; then the block's list, ascending from neuron `first`. Returns its length.
struct Integrate<'a> {
    v: &'a mut [f32],
    e: &'a mut [f32],
    i: &'a mut [f32],
    r: &'a mut [u32],
    p: &'a LifParams,
    first: u32,
    list: &'a mut [u32],
}

impl Kernel for Integrate<'_> {
    type Output = usize;

    #[inline(always)]
    fn run(self) -> usize {
        let Integrate {
            v,
            e,
            i,
            r,
            p,
            first,
            list,
        } = self;
        // Local copies of the parameters and flags: stores to the state cannot change them, and
        // the compiler checks only the four state arrays for overlap before it vectorises.
        let p = *p;
        let mut flags = [false; BLOCK];
        let neurons = v
            .iter_mut()
            .zip(e.iter_mut())
            .zip(i.iter_mut())
            .zip(r.iter_mut());
        for ((((v, e), i), r), flag) in neurons.zip(flags.iter_mut()) {
            let sitting_out = *r > 0;
            let integrated = p.rest + (*v - p.rest) * p.leak + *e * p.gain_e + *i * p.gain_i;
            let spiked = !sitting_out & (integrated >= p.threshold);
            *v = if sitting_out | spiked {
                p.reset
            } else {
                integrated
            };
            *r = if spiked {
                p.refractory_steps
            } else {
                r.saturating_sub(1)
            };
            *e *= p.decay_e;
            *i *= p.decay_i;
            *flag = spiked;
        }
        list_spikes(&flags[..v.len()], first, list)
    }
}

/// Lists the flagged neurons of a block, ascending from `first`; returns how many. Spikes are
/// rare: a run of FLAG_RUN flags is tested at once (an OR over vector lanes) and walked only
/// where one is set.
#[inline(always)]
fn list_spikes(flags: &[bool], first: u32, list: &mut [u32]) -> usize {
    const FLAG_RUN: usize = 64;
    let mut count = 0;
    for (c, run) in flags.chunks(FLAG_RUN).enumerate() {
        let any = run.iter().fold(0u8, |any, f| any | u8::from(*f));
        if any != 0 {
            for (k, _) in run.iter().enumerate().filter(|(_, f)| **f) {
                list[count] = first + (FLAG_RUN * c + k) as u32;
                count += 1;
            }
        }
    }
    count
}

/// The spike lists of `lif_step`.
pub(super) struct Spikes<'a> {
    pub list: &'a [u32],
    pub counts: &'a [u32],
}

/// Weights in compressed sparse rows, one row per presynaptic neuron.
#[derive(Clone, Copy)]
pub(super) struct Csr<'a> {
    pub indptr: &'a [u32],
    pub indices: &'a [u32],
    pub weights: &'a [f32],
}

/// Adds the synapses of each neuron in `list` (in order) to its targets' I_e (excitatory
/// neurons) or I_i: one network's currents, e and i.
fn deliver(e: &mut [f32], i: &mut [f32], list: &[u32], weights: Weights, excitatory: usize) {
    let n = e.len();
    for &j in list {
        let j = j as usize;
        let target = if j < excitatory { &mut *e } else { &mut *i };
        match weights {
            Weights::Sparse(csr) => {
                let row = csr.indptr[j] as usize..csr.indptr[j + 1] as usize;
                for (&k, &w) in csr.indices[row.clone()].iter().zip(&csr.weights[row]) {
                    target[k as usize] += w;
                }
            }
            Weights::Dense(w) => {
                for (c, w) in target.iter_mut().zip(&w[j * n..][..n]) {
                    *c += w;
                }
            }
        }
    }
}

/// The synapses, as `deliver_spikes` (CSR) or `deliver_spikes_dense` take them.
#[derive(Clone, Copy)]
pub(super) enum Weights<'a> {
    Sparse(Csr<'a>),
    Dense(&'a [f32]),
}

/// As spiking.wgsl's `deliver_spikes` and `deliver_spikes_dense`: each target's currents take
/// the listed rows' weights in list order.
pub(super) fn deliver_spikes(spikes: Spikes, weights: Weights, currents: &mut [f32], s: Synapses) {
    let (n, len) = (s.n, s.networks * s.n);
    let (current_e, current_i) = currents[..2 * len].split_at_mut(len);
    current_e
        .par_chunks_mut(n)
        .zip(current_i.par_chunks_mut(n))
        .enumerate()
        .for_each(|(b, (e, i))| {
            let list = &spikes.list[b * n..][..spikes.counts[b] as usize];
            deliver(e, i, list, weights, s.excitatory);
        });
}

/// `steps` steps of `lif_step` and `deliver_spikes`, each step's lists in its slot. With at least
/// as many networks as threads, each thread takes whole networks through every step (their
/// state stays in its cache); with fewer, each step spreads one network's blocks over them.
#[allow(clippy::too_many_arguments)]
pub(super) fn lif_steps(
    v: &mut [f32],
    currents: &mut [f32],
    refractory: &mut [u32],
    lists: &mut [u32],
    counts: &mut [u32],
    weights: Weights,
    steps: usize,
    lif: Lif,
    synapses: Synapses,
) {
    let (networks, n) = (lif.networks, lif.n);
    let p = lif.propagator();
    if networks >= rayon::current_num_threads() {
        // Network b's list of step s is chunk s networks + b.
        let mut slots: Vec<Vec<(&mut [u32], &mut u32)>> =
            (0..networks).map(|_| Vec::with_capacity(steps)).collect();
        let pairs = lists
            .chunks_mut(n)
            .zip(counts.iter_mut())
            .take(steps * networks);
        for (k, pair) in pairs.enumerate() {
            slots[k % networks].push(pair);
        }
        networks_of(v, currents, refractory, lif)
            .zip(slots)
            .for_each(|(mut net, slots)| {
                for (list, count) in slots {
                    *count = net.step(&p, list);
                    let list = &list[..*count as usize];
                    deliver(net.e, net.i, list, weights, synapses.excitatory);
                }
            });
    } else {
        let len = lif.len();
        for slot in 0..steps {
            lif_step(
                v,
                currents,
                refractory,
                &mut lists[slot * len..],
                &mut counts[slot * networks..],
                lif,
            );
            let spikes = Spikes {
                list: &lists[slot * len..],
                counts: &counts[slot * networks..],
            };
            deliver_spikes(spikes, weights, currents, synapses);
        }
    }
}

/// As spiking.wgsl's `scan_counts` and `pack_spikes`: each list of room n after the last.
pub(super) fn pack_spikes(spikes: Spikes, n: usize, offsets: &mut [u32], packed: &mut [u32]) {
    let mut at = 0;
    for (p, &count) in spikes.counts.iter().enumerate() {
        offsets[p] = at as u32;
        let count = count as usize;
        packed[at..at + count].copy_from_slice(&spikes.list[p * n..][..count]);
        at += count;
    }
    offsets[spikes.counts.len()] = at as u32;
}

/// As spiking.wgsl's `threshold_spikes`: trials in parallel, each trial's neurons in order (the
/// first of equal largest margins is the lowest index).
pub(super) fn threshold_spikes(
    v: &[f32],
    thresholds: &[f32],
    traces: &mut [f32],
    spikes: &mut [f32],
    counts: &mut [u32],
    t: Thresholds,
) {
    let (n, len) = (t.n, t.trials * t.n);
    v[..len]
        .par_chunks(n)
        .zip(traces[..len].par_chunks_mut(n))
        .zip(spikes[..len].par_chunks_mut(n))
        .zip(counts[..len].par_chunks_mut(n))
        .for_each(|(((v, traces), spikes), counts)| {
            let margins = v.iter().zip(thresholds).map(|(v, t)| v - t);
            let chosen = match t.rule {
                SpikeRule::Synchronous => None,
                SpikeRule::OnePerStep => {
                    let (mut best, mut index) = (0.0f32, usize::MAX);
                    for (k, m) in margins.clone().enumerate() {
                        if m > best {
                            (best, index) = (m, k);
                        }
                    }
                    Some(index)
                }
            };
            let neurons = margins.zip(traces).zip(spikes).zip(counts);
            for (k, (((m, trace), spike), count)) in neurons.enumerate() {
                let spiked = match chosen {
                    None => m > 0.0,
                    Some(index) => k == index,
                };
                *spike = if spiked { 1.0 } else { 0.0 };
                *trace = *trace * t.decay + *spike;
                *count += u32::from(spiked);
            }
        });
}

/// As spiking.wgsl's `poisson_inputs`.
pub(super) fn poisson_inputs(
    probabilities: &[f32],
    spikes: &mut [f32],
    traces: &mut [f32],
    s: PoissonInputs,
) {
    let len = s.trials * s.m;
    traces[..len]
        .par_chunks_mut(s.m)
        .zip(spikes[..len].par_chunks_mut(s.m))
        .enumerate()
        .for_each(|(b, (traces, spikes))| {
            let own = if s.per_trial { b * s.m } else { 0 };
            let probabilities = &probabilities[own..own + s.m];
            let inputs = traces.iter_mut().zip(spikes).zip(probabilities);
            for (k, ((trace, spike), p)) in inputs.enumerate() {
                *spike = match s.draw {
                    Draw::Expected => *p,
                    Draw::Poisson if uniform(s.seed, s.step, (b * s.m + k) as u32) <= *p => 1.0,
                    Draw::Poisson => 0.0,
                };
                *trace = *trace * s.decay + *spike;
            }
        });
}

/// As spiking.wgsl's `filter_spikes`.
pub(super) fn filter_spikes(spikes: &[f32], traces: &mut [f32], decay: f32) {
    for (trace, spike) in traces.iter_mut().zip(spikes) {
        *trace = *trace * decay + *spike;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set's copy of the step gives the portable copy's bits and spikes, on a
    /// ragged block with neurons refractory, at threshold and far from it.
    #[test]
    fn integrate_is_the_same_on_every_instruction_set() {
        let n = 1003;
        let p = Lif {
            networks: 1,
            n,
            dt: 0.1,
            tau_m: 20.0,
            tau_e: 5.0,
            tau_i: 10.0,
            rest: -49.0,
            threshold: -50.0,
            reset: -60.0,
            refractory_steps: 50,
        }
        .propagator();
        let run = |isa: Isa| {
            let wave = |k: usize, f: f32| (k as f32 * f).sin().abs();
            let mut v: Vec<f32> = (0..n).map(|k| -60.0 + 11.0 * wave(k, 0.37)).collect();
            let mut e: Vec<f32> = (0..n).map(|k| 3.0 * wave(k, 0.11)).collect();
            let mut i: Vec<f32> = (0..n).map(|k| -4.0 * wave(k, 0.23)).collect();
            let mut r: Vec<u32> = (0..n).map(|k| [0, 0, 3, 0, 50][k % 5]).collect();
            let mut lists = Vec::new();
            for _ in 0..20 {
                let mut list = vec![0u32; n];
                let count = isa.run(Integrate {
                    v: &mut v,
                    e: &mut e,
                    i: &mut i,
                    r: &mut r,
                    p: &p,
                    first: 7,
                    list: &mut list,
                });
                lists.push(list[..count].to_vec());
            }
            let bits = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (bits(&v), bits(&e), bits(&i), r, lists)
        };
        let portable = run(Isa::Portable);
        assert!(
            portable.4.iter().any(|l| !l.is_empty()),
            "some neuron should spike"
        );
        for isa in Isa::available() {
            assert!(run(isa) == portable, "{} differs from portable", isa.name());
        }
    }
}
