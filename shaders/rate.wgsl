// One forward-Euler step of the rate network (001 eq. 1), elementwise over the [batch, N] state:
//   x <- x + (dt/tau) (-x + drive) + noise_std * xi,   r <- phi(x)          (noise on the state)
//   x <- x + (dt/tau) (-x + drive),   r <- phi(x) + noise_std * xi            (noise on the rates)
// where drive = J phi(x) + W_in u was formed by matmul. xi is N(0, 1) from a counter-based hash
// keyed by (seed, step, index): the same hash as src/backend/rate/noise.rs, Box-Muller on the pair
// (2k, 2k + 1), cos for the even element and sin for the odd one.
// Twin: src/backend/rate/cpu.rs; the noise's twin: src/backend/rate/noise.rs.

struct EulerStepParams {
    len: u32,
    leak: f32,
    phi: u32,        // 0 linear, 1 relu, 2 tanh
    noise_std: f32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    noise_on: u32,   // 0 state, 1 rates
}

@group(0) @binding(0) var<uniform> p: EulerStepParams;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> r: array<f32>;
@group(0) @binding(3) var<storage, read> drive: array<f32>;

fn gaussian_noise(index: u32) -> f32 {
    let key = stream_key(p.seed_lo, p.seed_hi, p.step);
    let pair = index / 2u;
    let u1 = unit(mix(key ^ mix(pair * 2u)));
    let u2 = unit(mix(key ^ mix(pair * 2u + 1u)));
    let angle = 6.283185307179586 * u2;
    return sqrt(-2.0 * log(u1)) * select(cos(angle), sin(angle), (index & 1u) == 1u);
}

fn phi(v: f32) -> f32 {
    switch p.phi {
        case 1u: { return max(v, 0.0); }
        case 2u: { return tanh(v); }
        default: { return v; }
    }
}

@compute @workgroup_size(256, 1, 1)
fn euler_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.len) {
        return;
    }
    var v = x[i] + p.leak * (drive[i] - x[i]);
    var noise = 0.0;
    if (p.noise_std != 0.0) {
        noise = p.noise_std * gaussian_noise(i);
    }
    if (p.noise_on == 0u) {
        v += noise;
        noise = 0.0;
    }
    x[i] = v;
    r[i] = phi(v) + noise;
}

// projected_step (src/backend/rate/): a thread per rate of a trial's row of `neurons`:
// r = max(r + rate (v - thresholds[neuron]), 0).
struct ProjectedParams {
    len: u32,
    neurons: u32,
    rate: f32,
}

@group(0) @binding(0) var<uniform> pp: ProjectedParams;
@group(0) @binding(1) var<storage, read_write> p_r: array<f32>;
@group(0) @binding(2) var<storage, read> p_v: array<f32>;
@group(0) @binding(3) var<storage, read> p_thresholds: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn projected_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= pp.len) {
        return;
    }
    p_r[i] = max(p_r[i] + pp.rate * (p_v[i] - p_thresholds[i % pp.neurons]), 0.0);
}
