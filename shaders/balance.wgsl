// Synaptic balancing (paper 001), over `groups` independent networks of n neurons.
//   costs:              c = alpha |w|^p                                       (eq. 23)
//   cost_flows_bands:   per band of 32 rows: row totals of c0_kj s_j, and column partials of
//                       c0_ik / s_i, in one pass over c0 (no transposed copy)
//   cost_flows_finish:  in_k = row total / s_k, out_k = s_k * sum of the band partials
//   h_update:           one workgroup per network: h += step, h -= mean(h), s = e^(p h), and
//                       ||g||^2 and sum_k in_k recorded before the step; an anchor neuron is held
//                       at h = 0, the others recentred among themselves
//   task_transform:     J -> e^-H J e^H, W_in -> e^-H W_in, W_out -> W_out e^H  (eq. 4)
// The self-synapse c_kk is left out of in_k and out_k. Twins: src/backend/balance/cpu.rs.

struct CostsParams {
    groups: u32,
    rows: u32,
    cols: u32,
    alpha: u32,        // 0 alpha = 1, 1 one alpha per column, 2 a full matrix
    alpha_shared: u32, // 1: one alpha for every network
    p: f32,
}

struct CostFlowsParams {
    groups: u32,
    n: u32,
    aggregate: u32,    // 0 sum, 1 max
}

struct HUpdateParams {
    groups: u32,
    n: u32,
    p: f32,
    step: u32,         // 0 flow, 1 Osborne
    dt: f32,
    history_offset: u32,
    anchor: u32,       // the neuron held at h = 0; n or more: none
}

struct TaskTransformParams {
    groups: u32,
    rows: u32,
    cols: u32,
    n: u32,
    weights: u32,      // 0 J, 1 W_in, 2 W_out
}

@group(0) @binding(0) var<uniform> cp: CostsParams;
@group(0) @binding(0) var<uniform> cf: CostFlowsParams;
@group(0) @binding(0) var<uniform> hu: HUpdateParams;
@group(0) @binding(0) var<uniform> tt: TaskTransformParams;

const WG: u32 = 256u;
const BAND: u32 = 32u;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// |a|^p for a >= 0, with p = 1 and 2 exact and 0^p = 0 (pow(0, p) is not defined in WGSL).
fn power(a: f32, q: f32) -> f32 {
    if (a == 0.0) {
        return 0.0;
    }
    if (q == 1.0) {
        return a;
    }
    if (q == 2.0) {
        return a * a;
    }
    return pow(a, q);
}

fn combine(a: f32, b: f32) -> f32 {
    if (cf.aggregate == 0u) {
        return a + b;
    }
    return max(a, b);
}

@group(0) @binding(1) var<storage, read> costs_alpha: array<f32>;
// In place: the weights in, their costs out.
@group(0) @binding(2) var<storage, read_write> costs_c: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn costs(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    let per = cp.rows * cp.cols;
    if (i >= cp.groups * per) {
        return;
    }
    let g = i / per;
    let e = i % per;
    var alpha = 1.0;
    if (cp.alpha == 1u) {
        alpha = costs_alpha[select(g * cp.cols, 0u, cp.alpha_shared == 1u) + e % cp.cols];
    } else if (cp.alpha == 2u) {
        alpha = costs_alpha[select(g * per, 0u, cp.alpha_shared == 1u) + e];
    }
    costs_c[i] = alpha * power(abs(costs_c[i]), cp.p);
}

// Partials of one network: [bands * n column partials][n row totals].
@group(0) @binding(1) var<storage, read> bands_c0: array<f32>;
@group(0) @binding(2) var<storage, read> bands_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> bands_partial: array<f32>;

var<workgroup> row_parts: array<f32, 4096>;

// Workgroup (band, network). Thread t walks columns t, t + 256, ...; for each it reads the
// band's 32 rows (consecutive threads read consecutive addresses of a row), adds c0_ij / s_i into
// its column partial and c0_ij s_j into its own total of row i.
@compute @workgroup_size(256, 1, 1)
fn cost_flows_bands(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = cf.n;
    let band = wid.x;
    let g = wid.y;
    let bands = (n + BAND - 1u) / BAND;
    let first = band * BAND;
    let base = g * n * n;
    let pbase = g * (bands + 1u) * n;
    var inv: array<f32, 32>;
    var acc: array<f32, 32>;
    for (var r = 0u; r < BAND; r++) {
        let i = first + r;
        inv[r] = 0.0;
        if (i < n) {
            inv[r] = 1.0 / bands_scale[g * n + i];
        }
        acc[r] = 0.0;
    }
    for (var j = t; j < n; j += WG) {
        let sj = bands_scale[g * n + j];
        var col = 0.0;
        for (var r = 0u; r < BAND; r++) {
            let i = first + r;
            if (i < n && i != j) {
                let c = bands_c0[base + i * n + j];
                acc[r] = combine(acc[r], c * sj);
                col = combine(col, c * inv[r]);
            }
        }
        bands_partial[pbase + band * n + j] = col;
    }
    // Row totals: 32 rows x 256 threads, in two rounds of 16 rows through workgroup memory.
    for (var round = 0u; round < 2u; round++) {
        for (var r = 0u; r < 16u; r++) {
            row_parts[r * WG + t] = acc[round * 16u + r];
        }
        workgroupBarrier();
        let row = t / 16u;
        let part = t % 16u;
        var s = 0.0;
        for (var q = 0u; q < 16u; q++) {
            s = combine(s, row_parts[row * WG + part * 16u + q]);
        }
        workgroupBarrier();
        row_parts[row * 16u + part] = s;
        workgroupBarrier();
        if (t < 16u) {
            var total = 0.0;
            for (var q = 0u; q < 16u; q++) {
                total = combine(total, row_parts[t * 16u + q]);
            }
            let i = first + round * 16u + t;
            if (i < n) {
                bands_partial[pbase + bands * n + i] = total;
            }
        }
        workgroupBarrier();
    }
}

@group(0) @binding(1) var<storage, read> finish_partial: array<f32>;
@group(0) @binding(2) var<storage, read> finish_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> finish_flows: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn cost_flows_finish(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    let n = cf.n;
    if (i >= cf.groups * n) {
        return;
    }
    let g = i / n;
    let k = i % n;
    let bands = (n + BAND - 1u) / BAND;
    let pbase = g * (bands + 1u) * n;
    var col = 0.0;
    for (var b = 0u; b < bands; b++) {
        col = combine(col, finish_partial[pbase + b * n + k]);
    }
    let s = finish_scale[i];
    finish_flows[g * 2u * n + k] = finish_partial[pbase + bands * n + k] / s;
    finish_flows[g * 2u * n + n + k] = col * s;
}

@group(0) @binding(1) var<storage, read> update_flows: array<f32>;
@group(0) @binding(2) var<storage, read_write> update_h: array<f32>;
@group(0) @binding(3) var<storage, read_write> update_scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> update_history: array<f32>;

var<workgroup> sums: array<vec4<f32>, 256>;

// Y = e^(p delta) for the step delta along h_k alone that solves in e^(-p delta) -
// out e^(p delta) = nu: the positive root of out Y^2 + nu Y - in = 0, in the form that does not
// cancel; 1 where no finite step exists. Twin: osborne_on_constraint in src/backend/balance/cpu.rs.
fn osborne_on_constraint(inc: f32, out: f32, nu: f32) -> f32 {
    let s = sqrt(nu * nu + 4.0 * inc * out);
    var y = 0.0;
    if (nu >= 0.0) {
        y = 2.0 * inc / (nu + s);
    } else {
        y = (s - nu) / (2.0 * out);
    }
    // NaN fails y > 0; 3.4e38 is the largest f32.
    if (y > 0.0 && y <= 3.4e38) {
        return y;
    }
    return 1.0;
}

@compute @workgroup_size(256, 1, 1)
fn h_update(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= hu.groups) {
        return; // the whole workgroup leaves together
    }
    let n = hu.n;
    let anchored = hu.anchor < n;
    let moving = select(n, max(n - 1u, 1u), anchored); // the anchor alone divides by nothing
    // With an anchor: nu, the mean neural gradient of the moving neurons (the multiplier of the
    // constraint sum h = 0), which the Osborne step solves g_k = nu for and ||g|| is measured
    // from (sum (g_k - nu)^2, which does not cancel as sum g_k^2 - (sum g_k)^2 / n would).
    var nu = 0.0;
    if (anchored) {
        var part = 0.0;
        for (var k = t; k < n; k += WG) {
            if (k != hu.anchor) {
                part += update_flows[g * 2u * n + k] - update_flows[g * 2u * n + n + k];
            }
        }
        sums[t] = vec4<f32>(part, 0.0, 0.0, 0.0);
        workgroupBarrier();
        for (var half = WG / 2u; half > 0u; half >>= 1u) {
            if (t < half) {
                sums[t] += sums[t + half];
            }
            workgroupBarrier();
        }
        nu = sums[0].x / f32(moving);
        workgroupBarrier();
    }
    // ||g||^2 (about nu), sum in_k and sum h_k over the neurons that move (all but the anchor).
    var acc = vec4<f32>(0.0);
    for (var k = t; k < n; k += WG) {
        let inc = update_flows[g * 2u * n + k];
        let out = update_flows[g * 2u * n + n + k];
        let d = inc - out;
        if (k == hu.anchor) {
            acc.y += inc;
            continue;
        }
        var step = 0.0;
        if (hu.step == 0u) {
            step = hu.dt * d;
        } else if (nu != 0.0) { // Osborne with an anchor
            step = log(osborne_on_constraint(inc, out, nu)) / (2.0 * hu.p); // half of delta
        } else if (inc != out) {
            step = log(inc / out) / (4.0 * hu.p);
        }
        let h = update_h[g * n + k] + step;
        update_h[g * n + k] = h;
        acc += vec4<f32>((d - nu) * (d - nu), inc, h, 0.0);
    }
    sums[t] = acc;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (t < half) {
            sums[t] += sums[t + half];
        }
        workgroupBarrier();
    }
    let total = sums[0];
    let mean = total.z / f32(moving);
    for (var k = t; k < n; k += WG) {
        var h = 0.0;
        if (k != hu.anchor) {
            h = update_h[g * n + k] - mean;
        }
        update_h[g * n + k] = h;
        update_scale[g * n + k] = exp(hu.p * h);
    }
    if (t == 0u) {
        update_history[hu.history_offset + 2u * g] = total.x;
        update_history[hu.history_offset + 2u * g + 1u] = total.y;
    }
}

@group(0) @binding(1) var<storage, read> transform_h: array<f32>;
// Transformed in place, so that a 1 GiB J needs no second GiB for the result.
@group(0) @binding(2) var<storage, read_write> transform_weights: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn task_transform(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    let per = tt.rows * tt.cols;
    if (i >= tt.groups * per) {
        return;
    }
    let g = i / per;
    let row = (i % per) / tt.cols;
    let col = i % tt.cols;
    var e = 0.0;
    if (tt.weights == 0u) {
        e = transform_h[g * tt.n + col] - transform_h[g * tt.n + row];
    } else if (tt.weights == 1u) {
        e = -transform_h[g * tt.n + row];
    } else {
        e = transform_h[g * tt.n + col];
    }
    transform_weights[i] = transform_weights[i] * exp(e);
}
