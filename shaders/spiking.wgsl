// Spiking neurons (src/backend/spiking/; CPU twins in its cpu.rs): LIF neurons with exponential
// current synapses, state [networks, n], integrated exactly over one step.
//   clear_counts: counts[b] = 0, before lif_step lists a step's spikes.
//   lif_step:     a thread per neuron: V' = rest + (V - rest) leak + I_e gain_e + I_i gain_i (or
//                 V = reset while refractory, counting down), I' = I decay; V' >= threshold is a
//                 spike: V = reset, refractory = refractory_steps, and the neuron's index is
//                 appended to its network's list (spikes[b n + slot], slot from an atomic count:
//                 the list's order is the GPU's).

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
}

@group(0) @binding(0) var<uniform> lp: LifParams;

const WG: u32 = 256u;

fn flat_index(lid: u32, wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@group(0) @binding(1) var<storage, read_write> c_counts: array<u32>;

@compute @workgroup_size(256)
fn clear_counts(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = flat_index(lid, wid, nwg);
    if (b * lp.neurons < lp.len) {
        c_counts[b] = 0u;
    }
}

@group(0) @binding(1) var<storage, read_write> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> current_e: array<f32>;
@group(0) @binding(3) var<storage, read_write> current_i: array<f32>;
@group(0) @binding(4) var<storage, read_write> refractory: array<u32>;
@group(0) @binding(5) var<storage, read_write> spikes: array<u32>;
@group(0) @binding(6) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(256)
fn lif_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat_index(lid, wid, nwg);
    if (e >= lp.len) {
        return;
    }
    let sitting_out = refractory[e] > 0u;
    var voltage: f32;
    if (sitting_out) {
        voltage = lp.reset;
        refractory[e] -= 1u;
    } else {
        voltage = lp.rest + (v[e] - lp.rest) * lp.leak + current_e[e] * lp.gain_e
            + current_i[e] * lp.gain_i;
    }
    current_e[e] *= lp.decay_e;
    current_i[e] *= lp.decay_i;
    if (!sitting_out && voltage >= lp.threshold) {
        voltage = lp.reset;
        refractory[e] = lp.refractory_steps;
        let b = e / lp.neurons;
        let slot = atomicAdd(&counts[b], 1u);
        spikes[b * lp.neurons + slot] = e - b * lp.neurons;
    }
    v[e] = voltage;
}
