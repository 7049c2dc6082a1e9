// Training the rate network by gradient descent through time (BPTT), elementwise ops:
//   euler_backward:    delta[out + i] = (1 - leak) delta[next + i] + leak phi'(x[xo + i]) back[i]
//                                       + readout[ro + i]
//                      the adjoint of one Euler step x' = x + leak (-x + J phi(x) + W_in u), with
//                      back = delta' J formed by matmul (layout AB) and readout = e W_out
//   scaled_difference: out[i] = scale (a[i] - b[i])    (output errors)
//   sgd_step:          w[o + i] -= lr (b grad[o + i] + 2 l2 w[o + i])    (loss + l2 sum w^2)
// Twins: src/backend/cpu/bptt.rs.

struct Params {
    len: u32,
    phi: u32,     // 0 linear, 1 relu, 2 tanh
    next: u32,
    out: u32,
    xo: u32,
    ro: u32,
    a: f32,       // euler_backward: leak; scaled_difference: scale; sgd_step: lr
    l2: f32,
    b: f32,       // sgd_step: gradient scale
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, t: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + t;
}

fn slope(v: f32) -> f32 {
    switch p.phi {
        case 1u: { return select(0.0, 1.0, v > 0.0); }
        case 2u: { let th = tanh(v); return 1.0 - th * th; }
        default: { return 1.0; }
    }
}

@group(0) @binding(1) var<storage, read_write> bw_delta: array<f32>;
@group(0) @binding(2) var<storage, read> bw_back: array<f32>;
@group(0) @binding(3) var<storage, read> bw_x: array<f32>;
@group(0) @binding(4) var<storage, read> bw_readout: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn euler_backward(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    if (i >= p.len) {
        return;
    }
    let through_j = p.a * slope(bw_x[p.xo + i]) * bw_back[i];
    bw_delta[p.out + i] = (1.0 - p.a) * bw_delta[p.next + i] + through_j + bw_readout[p.ro + i];
}

@group(0) @binding(1) var<storage, read> diff_a: array<f32>;
@group(0) @binding(2) var<storage, read> diff_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> diff_out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn scaled_difference(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    if (i >= p.len) {
        return;
    }
    diff_out[i] = p.a * (diff_a[i] - diff_b[i]);
}

@group(0) @binding(1) var<storage, read_write> sgd_w: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn sgd_step(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    if (i >= p.len) {
        return;
    }
    let w = sgd_w[p.out + i];
    sgd_w[p.out + i] = w - p.a * (p.b * sgd_grad[p.out + i] + 2.0 * p.l2 * w);
}
