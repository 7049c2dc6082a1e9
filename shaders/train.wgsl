// Training the rate network by gradient descent through time (BPTT), elementwise ops:
//   euler_backward:    delta[out + i] = (1 - leak) delta[next + i] + leak phi'(x[x + i]) back[i]
//                                       + readout[readout + i]
//                      the adjoint of one Euler step x' = x + leak (-x + J phi(x) + W_in u), with
//                      back = delta' J formed by matmul (layout AB) and readout = e W_out
//   scaled_difference: out[i] = scale (a[i] - b[i])    (output errors)
//   sgd_step:          w[o + i] -= lr (grad_scale grad[o + i] + 2 l2 w[o + i])   (loss + l2 sum w^2)
// Twins: src/backend/train/cpu.rs.

struct EulerBackwardParams {
    len: u32,
    phi: u32,     // 0 linear, 1 relu, 2 tanh
    leak: f32,
    next: u32,
    out: u32,
    x: u32,
    readout: u32,
}

struct ScaledDifferenceParams {
    len: u32,
    scale: f32,
}

struct SgdStepParams {
    offset: u32,
    len: u32,
    lr: f32,
    grad_scale: f32,
    l2: f32,
}

@group(0) @binding(0) var<uniform> bw: EulerBackwardParams;
@group(0) @binding(0) var<uniform> diff: ScaledDifferenceParams;
@group(0) @binding(0) var<uniform> sgd: SgdStepParams;

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, t: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * 256u + t;
}

fn slope(v: f32) -> f32 {
    switch bw.phi {
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
    if (i >= bw.len) {
        return;
    }
    let through_j = bw.leak * slope(bw_x[bw.x + i]) * bw_back[i];
    bw_delta[bw.out + i] = (1.0 - bw.leak) * bw_delta[bw.next + i] + through_j + bw_readout[bw.readout + i];
}

@group(0) @binding(1) var<storage, read> diff_a: array<f32>;
@group(0) @binding(2) var<storage, read> diff_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> diff_out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn scaled_difference(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    if (i >= diff.len) {
        return;
    }
    diff_out[i] = diff.scale * (diff_a[i] - diff_b[i]);
}

@group(0) @binding(1) var<storage, read_write> sgd_w: array<f32>;
@group(0) @binding(2) var<storage, read> sgd_grad: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn sgd_step(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(wid, nwg, t);
    if (i >= sgd.len) {
        return;
    }
    let w = sgd_w[sgd.offset + i];
    sgd_w[sgd.offset + i] = w - sgd.lr * (sgd.grad_scale * sgd_grad[sgd.offset + i] + 2.0 * sgd.l2 * w);
}
