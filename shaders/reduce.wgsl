// Tree reductions of a row-major [rows, cols] matrix in workgroup memory: sum, or max |v| where
// any NaN or Inf gives +Inf (tested on the bits, since WGSL compilers may assume NaN never occurs).
//   reduce_rows: out[out_offset + r] = scale * reduce_c src[r, c]   (one workgroup per row)
//   reduce_cols: out[out_offset + c] = scale * reduce_r src[r, c]   (16 columns per workgroup)
// Twin: CpuBackend::reduce in src/backend/cpu.rs.

struct Params {
    rows: u32,
    cols: u32,
    op: u32,         // 0 sum, 1 max-abs, 2 sum of squares
    out_offset: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, 256>;

fn magnitude(v: f32) -> f32 {
    if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) {
        return bitcast<f32>(0x7f800000u); // +Inf
    }
    return abs(v);
}

fn combine(a: f32, b: f32) -> f32 {
    if (p.op != 1u) {
        return a + b;
    }
    return max(a, b);
}

fn element(v: f32) -> f32 {
    if (p.op == 0u) {
        return v;
    }
    if (p.op == 2u) {
        return v * v;
    }
    return magnitude(v);
}

@compute @workgroup_size(256, 1, 1)
fn reduce_rows(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    var acc = 0.0;
    if (row < p.rows) {
        for (var c = t; c < p.cols; c += 256u) {
            acc = combine(acc, element(src[row * p.cols + c]));
        }
    }
    partial[t] = acc;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if (t < half) {
            partial[t] = combine(partial[t], partial[t + half]);
        }
        workgroupBarrier();
    }
    if (t == 0u && row < p.rows) {
        out[p.out_offset + row] = p.scale * partial[0];
    }
}

@compute @workgroup_size(16, 16, 1)
fn reduce_cols(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let col = (wid.x + wid.y * nwg.x) * 16u + lid.x;
    var acc = 0.0;
    if (col < p.cols) {
        for (var r = lid.y; r < p.rows; r += 16u) {
            acc = combine(acc, element(src[r * p.cols + col]));
        }
    }
    let slot = lid.y * 16u + lid.x;
    partial[slot] = acc;
    workgroupBarrier();
    for (var half = 8u; half > 0u; half >>= 1u) {
        if (lid.y < half) {
            partial[slot] = combine(partial[slot], partial[slot + half * 16u]);
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && col < p.cols) {
        out[p.out_offset + col] = p.scale * partial[lid.x];
    }
}
