// Linear algebra and reductions (src/backend/linalg/; CPU twins in its cpu.rs).
//
// matmul: batched product C (+)= op(A) op(W), per group g, in one of three layouts (Layout):
//   0 ABt: c[g, r, k] = sum_n a[g, r, n] w[g, k, n]   (A [rows, inner], W [cols, inner])
//   1 AB:  c[g, r, k] = sum_n a[g, r, n] w[g, n, k]   (A [rows, inner], W [inner, cols])
//   2 AtB: c[g, r, k] = sum_n a[g, n, r] w[g, n, k]   (A [inner, rows], W [inner, cols])
// Each workgroup of 16 x 16 threads computes a 64 x 64 tile of C, 4 x 4 values per thread, staging
// 16-wide slices of A and W in workgroup memory.

struct MatmulParams {
    rows: u32,
    inner: u32,
    cols: u32,
    a_offset: u32,
    w_group_stride: u32,  // 0 when every group shares one W
    accumulate: u32,
    operands: u32, // the layout: 0 ABt, 1 AB, 2 AtB
}

@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const SLICE: u32 = 16u;
var<workgroup> a_tile: array<f32, 1024>; // [SLICE][TILE]: k-major so that a thread's 4 rows are adjacent
var<workgroup> w_tile: array<f32, 1024>; // [SLICE][TILE]

@compute @workgroup_size(16, 16, 1)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.z;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let a_base = mp.a_offset + g * mp.rows * mp.inner;
    let w_base = g * mp.w_group_stride;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < mp.inner; k0 += SLICE) {
        for (var i = 0u; i < 4u; i++) {
            // Consecutive threads take consecutive addresses: along k where an operand is stored
            // k-contiguous, along rows or columns where it is stored transposed.
            let e = tid + i * 256u;
            var t = e / SLICE;
            var kk = e % SLICE;
            if (mp.operands == 2u) {
                t = e % TILE;
                kk = e / TILE;
            }
            var av = 0.0;
            if (row0 + t < mp.rows && k0 + kk < mp.inner) {
                if (mp.operands == 2u) {
                    av = a[a_base + (k0 + kk) * mp.rows + row0 + t];
                } else {
                    av = a[a_base + (row0 + t) * mp.inner + k0 + kk];
                }
            }
            a_tile[kk * TILE + t] = av;
            t = e / SLICE;
            kk = e % SLICE;
            if (mp.operands != 0u) {
                t = e % TILE;
                kk = e / TILE;
            }
            var wv = 0.0;
            if (col0 + t < mp.cols && k0 + kk < mp.inner) {
                if (mp.operands == 0u) {
                    wv = w[w_base + (col0 + t) * mp.inner + k0 + kk];
                } else {
                    wv = w[w_base + (k0 + kk) * mp.cols + col0 + t];
                }
            }
            w_tile[kk * TILE + t] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < SLICE; kk++) {
            let av = vec4<f32>(a_tile[kk * TILE + lid.y * 4u], a_tile[kk * TILE + lid.y * 4u + 1u],
                               a_tile[kk * TILE + lid.y * 4u + 2u], a_tile[kk * TILE + lid.y * 4u + 3u]);
            let wv = vec4<f32>(w_tile[kk * TILE + lid.x * 4u], w_tile[kk * TILE + lid.x * 4u + 1u],
                               w_tile[kk * TILE + lid.x * 4u + 2u], w_tile[kk * TILE + lid.x * 4u + 3u]);
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], wv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let c_base = g * mp.rows * mp.cols;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (row < mp.rows && col < mp.cols) {
                let at = c_base + row * mp.cols + col;
                var v = acc[i * 4u + j];
                if (mp.accumulate != 0u) {
                    v += c[at];
                }
                c[at] = v;
            }
        }
    }
}

// Tree reductions of a row-major [rows, cols] matrix in workgroup memory: sum, or max |v| where
// any NaN or Inf gives +Inf (tested on the bits, since WGSL compilers may assume NaN never occurs).
//   reduce_rows: out[out_offset + r] = scale * reduce_c src[r, c]   (one workgroup per row)
//   reduce_cols: out[out_offset + c] = scale * reduce_r src[r, c]   (16 columns per workgroup)

struct ReduceParams {
    rows: u32,
    cols: u32,
    op: u32,         // 0 sum, 1 max-abs, 2 sum of squares
    out_offset: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> rp: ReduceParams;
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
    if (rp.op != 1u) {
        return a + b;
    }
    return max(a, b);
}

fn element(v: f32) -> f32 {
    if (rp.op == 0u) {
        return v;
    }
    if (rp.op == 2u) {
        return v * v;
    }
    return magnitude(v);
}

@compute @workgroup_size(256, 1, 1)
fn reduce_rows(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    var acc = 0.0;
    if (row < rp.rows) {
        for (var c = t; c < rp.cols; c += 256u) {
            acc = combine(acc, element(src[row * rp.cols + c]));
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
    if (t == 0u && row < rp.rows) {
        out[rp.out_offset + row] = rp.scale * partial[0];
    }
}

@compute @workgroup_size(16, 16, 1)
fn reduce_cols(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let col = (wid.x + wid.y * nwg.x) * 16u + lid.x;
    var acc = 0.0;
    if (col < rp.cols) {
        for (var r = lid.y; r < rp.rows; r += 16u) {
            acc = combine(acc, element(src[r * rp.cols + col]));
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
    if (lid.y == 0u && col < rp.cols) {
        out[rp.out_offset + col] = rp.scale * partial[lid.x];
    }
}
