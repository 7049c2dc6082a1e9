// Synaptic balancing (paper 001), over `groups` independent networks of n neurons.
//   costs:              c = alpha |w s|^p, s a power of two                  (eq. 23)
//   cost_flows_bands:   per band of 32 rows: row totals of c0_kj s_j, and column partials of
//                       c0_ik / s_i, in one pass over c0 (no transposed copy)
//   cost_flows_finish:  in_k = row total / s_k, out_k = s_k * sum of the band partials
//   h_update:           one workgroup per network: h += step, h -= mean(h), s = e^(p h), and
//                       ||g||^2 and sum_k in_k recorded before the step; an anchor neuron is held
//                       at h = 0, the others recentred among themselves
//   task_transform:     J -> e^-H J e^H, W_in -> e^-H W_in, W_out -> W_out e^H  (eq. 4)
// The self-synapse c_kk is left out of in_k and out_k. Twins: src/backend/balance/cpu.rs.
// Log space (where f32 cannot hold the costs themselves): costs holds ln c (LOG_ZERO for no
// synapse), the scale u = p h, and cost_flows runs twice: mode 1 takes each row's largest
// ln c_kj + u_j and each column's largest ln c_ik - u_i, mode 2 sums e^(value - largest) and
// finishes ln in_k and ln out_k; h_update then steps on ln in - ln out and records logs.

struct CostsParams {
    groups: u32,
    rows: u32,
    cols: u32,
    alpha: u32,        // 0 alpha = 1, 1 one alpha per column, 2 a full matrix
    alpha_shared: u32, // 1: one alpha for every network
    p: f32,
    weight_scale: f32, // a power of two: 1, or what keeps every |w|^p within f32
    log: u32,          // 1: ln c
}

struct CostFlowsParams {
    groups: u32,
    n: u32,
    aggregate: u32,    // 0 sum, 1 max
    mode: u32,         // 0 linear, 1 log space largest values, 2 log space sums
}

struct HUpdateParams {
    groups: u32,
    n: u32,
    p: f32,
    step: u32,         // 0 flow, 1 Osborne
    dt: f32,
    history_offset: u32,
    anchor: u32,       // the neuron held at h = 0; n or more: none
    log: u32,          // 1: flows hold ln in, ln out; scale gets p h; the history gets logs
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
// ln 0 in log space: finite, so that adding to it stays far below every cost, and exp gives 0.
const LOG_ZERO: f32 = -3.0e38;

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
    if (cf.aggregate == 1u || cf.mode == 1u) {
        return max(a, b);
    }
    return a + b;
}

// The start of a total: 0, or LOG_ZERO for the largest values of log space.
fn empty() -> f32 {
    return select(0.0, LOG_ZERO, cf.mode == 1u);
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
    let w = abs(costs_c[i]);
    if (cp.log == 1u) {
        costs_c[i] = select(LOG_ZERO, log(alpha) + cp.p * log(w * cp.weight_scale),
                            w > 0.0 && alpha > 0.0);
    } else {
        costs_c[i] = alpha * power(w * cp.weight_scale, cp.p);
    }
}

// Partials of one network: [bands * n column partials][n row totals].
@group(0) @binding(1) var<storage, read> bands_c0: array<f32>;
@group(0) @binding(2) var<storage, read> bands_scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> bands_partial: array<f32>;
// Log space sums: each row's and column's largest value, from the first pass ([2n] a network).
@group(0) @binding(4) var<storage, read> bands_largest: array<f32>;

var<workgroup> row_parts: array<f32, 4096>;

// Workgroup (band, network). Thread t walks columns t, t + 256, ...; for each it reads the
// band's 32 rows (consecutive threads read consecutive addresses of a row), adds c0_ij / s_i into
// its column partial and c0_ij s_j into its own total of row i (in log space: ln c0_ij - u_i and
// ln c0_ij + u_j, their largest values, or their exponentials less those).
@compute @workgroup_size(256, 1, 1)
fn cost_flows_bands(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = cf.n;
    let band = wid.x;
    let g = wid.y;
    let bands = (n + BAND - 1u) / BAND;
    let first = band * BAND;
    let base = g * n * n;
    let pbase = g * (bands + 1u) * n;
    // inv[r]: 1 / s_i, or in log space -u_i; row_shift[r]: row i's largest value (log sums).
    var inv: array<f32, 32>;
    var row_shift: array<f32, 32>;
    var acc: array<f32, 32>;
    for (var r = 0u; r < BAND; r++) {
        let i = first + r;
        inv[r] = 0.0;
        row_shift[r] = 0.0;
        if (i < n) {
            let s = bands_scale[g * n + i];
            inv[r] = select(1.0 / s, -s, cf.mode != 0u);
            if (cf.mode == 2u) {
                row_shift[r] = bands_largest[g * 2u * n + i];
            }
        }
        acc[r] = empty();
    }
    for (var j = t; j < n; j += WG) {
        let sj = bands_scale[g * n + j];
        var col = empty();
        var col_shift = 0.0;
        if (cf.mode == 2u) {
            col_shift = bands_largest[g * 2u * n + n + j];
        }
        for (var r = 0u; r < BAND; r++) {
            let i = first + r;
            if (i < n && i != j) {
                let c = bands_c0[base + i * n + j];
                if (cf.mode == 0u) {
                    acc[r] = combine(acc[r], c * sj);
                    col = combine(col, c * inv[r]);
                } else if (cf.mode == 1u) {
                    acc[r] = max(acc[r], c + sj);
                    col = max(col, c + inv[r]);
                } else {
                    acc[r] += exp(c + sj - row_shift[r]);
                    col += exp(c + inv[r] - col_shift);
                }
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
        var s = empty();
        for (var q = 0u; q < 16u; q++) {
            s = combine(s, row_parts[row * WG + part * 16u + q]);
        }
        workgroupBarrier();
        row_parts[row * 16u + part] = s;
        workgroupBarrier();
        if (t < 16u) {
            var total = empty();
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
    var col = empty();
    for (var b = 0u; b < bands; b++) {
        col = combine(col, finish_partial[pbase + b * n + k]);
    }
    let s = finish_scale[i];
    let row = finish_partial[pbase + bands * n + k];
    let at_in = g * 2u * n + k;
    let at_out = g * 2u * n + n + k;
    if (cf.mode == 0u) {
        finish_flows[at_in] = row / s;
        finish_flows[at_out] = col * s;
    } else if (cf.mode == 1u) {
        // The largest values themselves: the sums' shifts.
        finish_flows[at_in] = row;
        finish_flows[at_out] = col;
    } else {
        // ln in_k = largest + ln(sum) - u_k; ln out_k = largest + ln(sum) + u_k; LOG_ZERO where
        // a side has no terms at all (a network of one neuron).
        finish_flows[at_in] = select(LOG_ZERO, finish_flows[at_in] + log(row) - s, row > 0.0);
        finish_flows[at_out] = select(LOG_ZERO, finish_flows[at_out] + log(col) + s, col > 0.0);
    }
}

@group(0) @binding(1) var<storage, read> update_flows: array<f32>;
@group(0) @binding(2) var<storage, read_write> update_h: array<f32>;
@group(0) @binding(3) var<storage, read_write> update_scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> update_history: array<f32>;

var<workgroup> sums: array<vec4<f32>, 256>;

// The total of v over the workgroup's threads, for every thread: a tree over `sums`, in the
// same order each time. Called where control flow is uniform.
fn workgroup_total(t: u32, v: vec4<f32>) -> vec4<f32> {
    sums[t] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (t < half) {
            sums[t] += sums[t + half];
        }
        workgroupBarrier();
    }
    let total = sums[0];
    workgroupBarrier(); // every thread has read it before sums is written again
    return total;
}

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
        nu = workgroup_total(t, vec4<f32>(part, 0.0, 0.0, 0.0)).x / f32(moving);
    }
    if (hu.log == 1u) {
        h_update_log(t, g);
        return;
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
    let total = workgroup_total(t, acc);
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

// Log space (no anchor, Osborne steps): flows hold ln in_k and ln out_k. h_k moves by
// (ln in_k - ln out_k) / (4 p), none where a side has no synapse (LOG_ZERO); the scale gets
// u = p h. The history gets ln ||g||^2 and ln sum_k in_k, summed about the largest ln in_k or
// ln out_k of the network (m), so that no term leaves f32.
fn h_update_log(t: u32, g: u32) {
    let n = hu.n;
    var m = LOG_ZERO;
    for (var k = t; k < n; k += WG) {
        m = max(m, max(update_flows[g * 2u * n + k], update_flows[g * 2u * n + n + k]));
    }
    sums[t] = vec4<f32>(m, 0.0, 0.0, 0.0);
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (t < half) {
            sums[t].x = max(sums[t].x, sums[t + half].x);
        }
        workgroupBarrier();
    }
    m = sums[0].x;
    workgroupBarrier();
    var acc = vec4<f32>(0.0);
    for (var k = t; k < n; k += WG) {
        let inc = update_flows[g * 2u * n + k];
        let out = update_flows[g * 2u * n + n + k];
        let d = exp(inc - m) - exp(out - m);
        var step = 0.0;
        if (inc > 0.5 * LOG_ZERO && out > 0.5 * LOG_ZERO) {
            step = (inc - out) / (4.0 * hu.p);
        }
        let h = update_h[g * n + k] + step;
        update_h[g * n + k] = h;
        acc += vec4<f32>(d * d, exp(inc - m), h, 0.0);
    }
    let total = workgroup_total(t, acc);
    let mean = total.z / f32(n);
    for (var k = t; k < n; k += WG) {
        let h = update_h[g * n + k] - mean;
        update_h[g * n + k] = h;
        update_scale[g * n + k] = hu.p * h;
    }
    if (t == 0u) {
        update_history[hu.history_offset + 2u * g] = 2.0 * m + log(total.x);
        update_history[hu.history_offset + 2u * g + 1u] = m + log(total.y);
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
