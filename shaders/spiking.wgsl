// Spiking neurons (src/backend/spiking/; CPU twins in its cpu.rs): LIF neurons with exponential
// current synapses, V [networks, n], currents [2, networks, n] (I_e, then I_i).
//   lif_step:       a thread per neuron: V' = rest + (V - rest) leak + I_e gain_e + I_i gain_i
//                   (or V = reset while refractory, counting down), I' = I decay; V' >= threshold
//                   is a spike: V = reset, refractory = refractory_steps, flag 1 (else 0) in the
//                   step's slot of the spike buffer (slot x networks x n onward).
//   compact_spikes: a workgroup per network turns its flags into the ascending list of the
//                   neurons that spiked, in place (a prefix sum per block of 256), and its count.
//   deliver_spikes: a workgroup per network walks its list in order; for each spike its threads
//                   add the row's weights to the targets' I_e (excitatory rows) or I_i. A row names
//                   each target once, and a storage barrier separates spikes: the sums run in list
//                   order, as on the CPU.
//   deliver_spikes_dense: a thread per target adds, in list order, the weight onto it of each
//                   neuron its network listed (dense W[pre, post]): again the CPU's order.
//   scan_counts:    one workgroup: offsets = the exclusive prefix sum of the counts of a chunk's
//                   lists (steps x networks), and their total last.
//   pack_spikes:    a workgroup per list copies it to packed[offsets[list] ..]: the chunk's
//                   spikes in one run of memory, for one read-back.
//   threshold_spikes: a workgroup per trial: margin = V - threshold; every neuron with margin > 0
//                   spikes, or (one_per_step) only the one with the largest, the lowest index
//                   among equal ones (a reduction over the workgroup); traces decay, and traces
//                   and counts add 1 where a neuron spiked.
//   poisson_inputs: a thread per input of a trial: a spike when the uniform of (seed, step, index)
//                   (hash.wgsl, prepended) is at most its probability (the probability itself,
//                   where `expected`); the spike is written, the trace decays and adds it.
//   filter_spikes:  a thread per value: the trace decays and adds the spike.

struct LifParams {
    neurons: u32,
    len: u32,
    leak: f32,
    decay_e: f32,
    decay_i: f32,
    gain_e: f32,
    gain_i: f32,
    rest: f32,
    threshold: f32,
    reset: f32,
    refractory_steps: u32,
    slot: u32,
}

struct DeliverParams {
    networks: u32,
    neurons: u32,
    excitatory: u32,
    slot: u32,
}

@group(0) @binding(0) var<uniform> lp: LifParams;

const WG: u32 = 256u;

fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@group(0) @binding(1) var<storage, read_write> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> currents: array<f32>;
@group(0) @binding(3) var<storage, read_write> refractory: array<u32>;
@group(0) @binding(4) var<storage, read_write> spike_flags: array<u32>;

@compute @workgroup_size(256)
fn lif_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = workgroup_index(wid, nwg) * WG + lid;
    if (e >= lp.len) {
        return;
    }
    let sitting_out = refractory[e] > 0u;
    var voltage: f32;
    if (sitting_out) {
        voltage = lp.reset;
        refractory[e] -= 1u;
    } else {
        voltage = lp.rest + (v[e] - lp.rest) * lp.leak + currents[e] * lp.gain_e
            + currents[lp.len + e] * lp.gain_i;
    }
    currents[e] *= lp.decay_e;
    currents[lp.len + e] *= lp.decay_i;
    var spiked = 0u;
    if (!sitting_out && voltage >= lp.threshold) {
        voltage = lp.reset;
        refractory[e] = lp.refractory_steps;
        spiked = 1u;
    }
    v[e] = voltage;
    spike_flags[lp.slot * lp.len + e] = spiked;
}

@group(0) @binding(1) var<storage, read_write> flags: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;

var<workgroup> scan: array<u32, 256>;

// The inclusive prefix sum of `value` over the workgroup's threads, in thread order; scan[WG - 1]
// holds the total until the caller's next barrier. Every thread of the workgroup must call it.
fn workgroup_scan(lid: u32, value: u32) -> u32 {
    scan[lid] = value;
    workgroupBarrier();
    for (var offset = 1u; offset < WG; offset <<= 1u) {
        var add = 0u;
        if (lid >= offset) {
            add = scan[lid - offset];
        }
        workgroupBarrier();
        scan[lid] += add;
        workgroupBarrier();
    }
    return scan[lid];
}

@compute @workgroup_size(256)
fn compact_spikes(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = workgroup_index(wid, nwg);
    if (b * lp.neurons >= lp.len) {
        return;
    }
    let base = lp.slot * lp.len + b * lp.neurons;
    var count = 0u;
    for (var start = 0u; start < lp.neurons; start += WG) {
        let k = start + lid;
        var flag = 0u;
        if (k < lp.neurons) {
            flag = flags[base + k];
        }
        let inclusive = workgroup_scan(lid, flag);
        let block = scan[WG - 1u];
        workgroupBarrier();
        // Every flag of this block was read above; the list's positions so far end below the
        // next block's flags.
        if (flag == 1u) {
            flags[base + count + inclusive - 1u] = k;
        }
        count += block;
    }
    if (lid == 0u) {
        counts[lp.slot * (lp.len / lp.neurons) + b] = count;
    }
}

@group(0) @binding(0) var<uniform> dp: DeliverParams;
@group(0) @binding(1) var<storage, read> d_spikes: array<u32>;
@group(0) @binding(2) var<storage, read> d_counts: array<u32>;
@group(0) @binding(3) var<storage, read> d_indptr: array<u32>;
@group(0) @binding(4) var<storage, read> d_indices: array<u32>;
@group(0) @binding(5) var<storage, read> d_weights: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_currents: array<f32>;

@compute @workgroup_size(256)
fn deliver_spikes(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = workgroup_index(wid, nwg);
    if (b >= dp.networks) {
        return;
    }
    let count = d_counts[dp.slot * dp.networks + b];
    for (var s = 0u; s < count; s++) {
        let j = d_spikes[(dp.slot * dp.networks + b) * dp.neurons + s];
        var population = 0u;
        if (j >= dp.excitatory) {
            population = 1u;
        }
        let offset = (population * dp.networks + b) * dp.neurons;
        let end = d_indptr[j + 1u];
        for (var k = d_indptr[j] + lid; k < end; k += WG) {
            d_currents[offset + d_indices[k]] += d_weights[k];
        }
        storageBarrier();
    }
}

@group(0) @binding(3) var<storage, read> dense_weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> dense_currents: array<f32>;

@compute @workgroup_size(256)
fn deliver_spikes_dense(@builtin(local_invocation_index) lid: u32,
                        @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>) {
    let len = dp.networks * dp.neurons;
    let e = workgroup_index(wid, nwg) * WG + lid;
    if (e >= len) {
        return;
    }
    let b = e / dp.neurons;
    let post = e - b * dp.neurons;
    let list = (dp.slot * dp.networks + b) * dp.neurons;
    let count = d_counts[dp.slot * dp.networks + b];
    var current_e = dense_currents[e];
    var current_i = dense_currents[len + e];
    for (var s = 0u; s < count; s++) {
        let j = d_spikes[list + s];
        let w = dense_weights[j * dp.neurons + post];
        if (j < dp.excitatory) {
            current_e += w;
        } else {
            current_i += w;
        }
    }
    dense_currents[e] = current_e;
    dense_currents[len + e] = current_i;
}

struct PackParams {
    lists: u32,
    neurons: u32,
}

@group(0) @binding(0) var<uniform> pp: PackParams;
@group(0) @binding(1) var<storage, read> s_counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> s_offsets: array<u32>;

@compute @workgroup_size(256)
fn scan_counts(@builtin(local_invocation_index) lid: u32) {
    var total = 0u;
    for (var start = 0u; start < pp.lists; start += WG) {
        let k = start + lid;
        var count = 0u;
        if (k < pp.lists) {
            count = s_counts[k];
        }
        let inclusive = workgroup_scan(lid, count);
        if (k < pp.lists) {
            s_offsets[k] = total + inclusive - count;
        }
        total += scan[WG - 1u];
        workgroupBarrier();
    }
    if (lid == 0u) {
        s_offsets[pp.lists] = total;
    }
}

@group(0) @binding(1) var<storage, read> p_lists: array<u32>;
@group(0) @binding(2) var<storage, read> p_counts: array<u32>;
@group(0) @binding(3) var<storage, read> p_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> p_packed: array<u32>;

@compute @workgroup_size(256)
fn pack_spikes(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let list = workgroup_index(wid, nwg);
    if (list >= pp.lists) {
        return;
    }
    let at = p_offsets[list];
    for (var k = lid; k < p_counts[list]; k += WG) {
        p_packed[at + k] = p_lists[list * pp.neurons + k];
    }
}

struct ThresholdParams {
    trials: u32,
    neurons: u32,
    decay: f32,
    one_per_step: u32,
}

@group(0) @binding(0) var<uniform> tp: ThresholdParams;
@group(0) @binding(1) var<storage, read> t_v: array<f32>;
@group(0) @binding(2) var<storage, read> t_thresholds: array<f32>;
@group(0) @binding(3) var<storage, read_write> t_traces: array<f32>;
@group(0) @binding(4) var<storage, read_write> t_spikes: array<f32>;
@group(0) @binding(5) var<storage, read_write> t_counts: array<u32>;

var<workgroup> best_margin: array<f32, 256>;
var<workgroup> best_index: array<u32, 256>;

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(256)
fn threshold_spikes(@builtin(local_invocation_index) lid: u32,
                    @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = workgroup_index(wid, nwg);
    if (b >= tp.trials) {
        return;
    }
    let base = b * tp.neurons;
    var chosen = NONE;
    if (tp.one_per_step == 1u) {
        // Each thread's largest margin above 0 over its neurons (ascending, so the first of
        // equal ones), then the workgroup's: the larger margin, or the lower index of equal ones.
        var margin = 0.0;
        var index = NONE;
        for (var k = lid; k < tp.neurons; k += WG) {
            let m = t_v[base + k] - t_thresholds[k];
            if (m > margin) {
                margin = m;
                index = k;
            }
        }
        best_margin[lid] = margin;
        best_index[lid] = index;
        workgroupBarrier();
        for (var half = WG / 2u; half > 0u; half >>= 1u) {
            if (lid < half) {
                let m = best_margin[lid + half];
                let i = best_index[lid + half];
                if (m > best_margin[lid] || (m == best_margin[lid] && i < best_index[lid])) {
                    best_margin[lid] = m;
                    best_index[lid] = i;
                }
            }
            workgroupBarrier();
        }
        chosen = best_index[0];
    }
    for (var k = lid; k < tp.neurons; k += WG) {
        let m = t_v[base + k] - t_thresholds[k];
        var spike = 0.0;
        if ((tp.one_per_step == 1u && k == chosen) || (tp.one_per_step == 0u && m > 0.0)) {
            spike = 1.0;
            t_counts[base + k] += 1u;
        }
        t_spikes[base + k] = spike;
        t_traces[base + k] = t_traces[base + k] * tp.decay + spike;
    }
}

struct PoissonParams {
    len: u32,
    inputs: u32,
    decay: f32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    expected: u32,
}

@group(0) @binding(0) var<uniform> pn: PoissonParams;
@group(0) @binding(1) var<storage, read> n_probabilities: array<f32>;
@group(0) @binding(2) var<storage, read_write> n_spikes: array<f32>;
@group(0) @binding(3) var<storage, read_write> n_traces: array<f32>;

@compute @workgroup_size(256)
fn poisson_inputs(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = workgroup_index(wid, nwg) * WG + lid;
    if (e >= pn.len) {
        return;
    }
    let p = n_probabilities[e % pn.inputs];
    var spike = p;
    if (pn.expected == 0u) {
        let u = unit(mix(stream_key(pn.seed_lo, pn.seed_hi, pn.step) ^ mix(e)));
        spike = select(0.0, 1.0, u <= p);
    }
    n_spikes[e] = spike;
    n_traces[e] = n_traces[e] * pn.decay + spike;
}

struct FilterParams {
    len: u32,
    decay: f32,
}

@group(0) @binding(0) var<uniform> fp: FilterParams;
@group(0) @binding(1) var<storage, read> f_spikes: array<f32>;
@group(0) @binding(2) var<storage, read_write> f_traces: array<f32>;

@compute @workgroup_size(256)
fn filter_spikes(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = workgroup_index(wid, nwg) * WG + lid;
    if (e >= fp.len) {
        return;
    }
    f_traces[e] = f_traces[e] * fp.decay + f_spikes[e];
}
