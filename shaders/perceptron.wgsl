// Perceptrons trained by logistic SGD, many problems at once (src/backend/perceptron/; CPU twins
// in its cpu.rs). Problem b has weights w[b, n] and patterns xi[b, mu, n] with labels +-1
// zeta[b, mu], or shares one set (shared_patterns). A window is the patterns (first + k) mod
// patterns, k < count.
//   fields:          h[b, k] = w_b . xi_b^(first + k); a workgroup per field, a tree sum over n.
//   logistic_errors: e = sigmoid(beta h) - (1 + zeta) / 2 written over h, and
//                    beta -= rate_beta sum_k h e; a workgroup per problem.
//   weight_step:     w_i -= rate_weights sum_k xi_i^k e_k; a thread per weight.
//   margin_stats:    stats[b] = (min_mu zeta h / ||w||, #{mu: not zeta h > 0}) from the fields of
//                    all patterns; a workgroup per problem.
//   hold_signs:      w = 0 where w has the opposite sign to its sign +-1 (0: free); a thread per
//                    weight.

struct PerceptronParams {
    problems: u32,
    n: u32,
    patterns: u32,
    shared_patterns: u32,
    first: u32,
    count: u32,
    rate_weights: f32,
    rate_beta: f32,
}

@group(0) @binding(0) var<uniform> pp: PerceptronParams;

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 256>;

// Index of pattern mu's label for problem b; its row of xi starts n times further.
fn pattern(b: u32, mu: u32) -> u32 {
    if (pp.shared_patterns != 0u) {
        return mu;
    }
    return b * pp.patterns + mu;
}

fn window_pattern(k: u32) -> u32 {
    return (pp.first + k) % pp.patterns;
}

// The sum of every thread's v, for every thread.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// The smallest of every thread's v, for every thread.
fn workgroup_min(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            partial[lid] = min(partial[lid], partial[lid + half]);
        }
        workgroupBarrier();
    }
    let smallest = partial[0];
    workgroupBarrier();
    return smallest;
}

@group(0) @binding(1) var<storage, read> f_xi: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_h: array<f32>;

@compute @workgroup_size(256)
fn fields(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let field = wid.x + wid.y * nwg.x;
    if (field >= pp.problems * pp.count) {
        return;
    }
    let b = field / pp.count;
    let row = pattern(b, window_pattern(field % pp.count)) * pp.n;
    var acc = 0.0;
    for (var i = lid; i < pp.n; i += WG) {
        acc += f_xi[row + i] * f_w[b * pp.n + i];
    }
    let total = workgroup_sum(lid, acc);
    if (lid == 0u) {
        f_h[field] = total;
    }
}

@group(0) @binding(1) var<storage, read> e_labels: array<f32>;
@group(0) @binding(2) var<storage, read_write> e_h: array<f32>;
@group(0) @binding(3) var<storage, read_write> e_beta: array<f32>;

@compute @workgroup_size(256)
fn logistic_errors(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = wid.x + wid.y * nwg.x;
    if (b >= pp.problems) {
        return;
    }
    let beta = e_beta[b];
    var acc = 0.0;
    for (var k = lid; k < pp.count; k += WG) {
        let h = e_h[b * pp.count + k];
        let zeta = e_labels[pattern(b, window_pattern(k))];
        let e = 1.0 / (1.0 + exp(-beta * h)) - 0.5 * (1.0 + zeta);
        acc += h * e;
        e_h[b * pp.count + k] = e;
    }
    let gradient = workgroup_sum(lid, acc);
    if (lid == 0u) {
        e_beta[b] = beta - pp.rate_beta * gradient;
    }
}

@group(0) @binding(1) var<storage, read> s_xi: array<f32>;
@group(0) @binding(2) var<storage, read> s_errors: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_w: array<f32>;

@compute @workgroup_size(256)
fn weight_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = (wid.x + wid.y * nwg.x) * WG + lid;
    if (e >= pp.problems * pp.n) {
        return;
    }
    let b = e / pp.n;
    let i = e % pp.n;
    var gradient = 0.0;
    for (var k = 0u; k < pp.count; k++) {
        gradient += s_xi[pattern(b, window_pattern(k)) * pp.n + i] * s_errors[b * pp.count + k];
    }
    s_w[e] -= pp.rate_weights * gradient;
}

@group(0) @binding(1) var<storage, read> m_h: array<f32>;
@group(0) @binding(2) var<storage, read> m_labels: array<f32>;
@group(0) @binding(3) var<storage, read> m_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> m_stats: array<f32>;

@compute @workgroup_size(256)
fn margin_stats(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = wid.x + wid.y * nwg.x;
    if (b >= pp.problems) {
        return;
    }
    var acc = 0.0;
    for (var i = lid; i < pp.n; i += WG) {
        let w = m_w[b * pp.n + i];
        acc += w * w;
    }
    let norm = sqrt(workgroup_sum(lid, acc));
    var smallest = bitcast<f32>(0x7f800000u); // +inf: no patterns
    var errors = 0.0;
    for (var mu = lid; mu < pp.patterns; mu += WG) {
        let signed = m_labels[pattern(b, mu)] * m_h[b * pp.patterns + mu];
        // A NaN field is on neither side: an error.
        if (!(signed > 0.0)) {
            errors += 1.0;
        }
        // The zero vector classifies nothing: margin 0.
        var margin = 0.0;
        if (norm > 0.0) {
            margin = signed / norm;
        }
        smallest = min(smallest, margin);
    }
    smallest = workgroup_min(lid, smallest);
    errors = workgroup_sum(lid, errors);
    if (lid == 0u) {
        m_stats[2u * b] = smallest;
        m_stats[2u * b + 1u] = errors;
    }
}

@group(0) @binding(1) var<storage, read> g_signs: array<f32>;
@group(0) @binding(2) var<storage, read_write> g_w: array<f32>;

@compute @workgroup_size(256)
fn hold_signs(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = (wid.x + wid.y * nwg.x) * WG + lid;
    if (e >= pp.problems * pp.n) {
        return;
    }
    // A NaN weight stays NaN, for the sort's NaN flag to catch.
    if (g_signs[e] * g_w[e] < 0.0) {
        g_w[e] = 0.0;
    }
}
