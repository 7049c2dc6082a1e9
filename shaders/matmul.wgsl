// Batched product C (+)= op(A) op(W), per group g, in one of three layouts (Layout in
// src/backend/mod.rs):
//   0 ABt: c[g, r, k] = sum_n a[g, r, n] w[g, k, n]   (A [rows, inner], W [cols, inner])
//   1 AB:  c[g, r, k] = sum_n a[g, r, n] w[g, n, k]   (A [rows, inner], W [inner, cols])
//   2 AtB: c[g, r, k] = sum_n a[g, n, r] w[g, n, k]   (A [inner, rows], W [inner, cols])
// Twin: CpuBackend::matmul in src/backend/cpu.rs. Each workgroup of 16 x 16 threads computes a
// 64 x 64 tile of C, 4 x 4 values per thread, staging 16-wide slices of A and W in workgroup memory.

struct Params {
    rows: u32,
    inner: u32,
    cols: u32,
    a_offset: u32,
    w_group_stride: u32,  // 0 when every group shares one W
    accumulate: u32,
    operands: u32, // Layout code: 0 ABt, 1 AB, 2 AtB
}

@group(0) @binding(0) var<uniform> p: Params;
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
    let a_base = p.a_offset + g * p.rows * p.inner;
    let w_base = g * p.w_group_stride;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.inner; k0 += SLICE) {
        for (var i = 0u; i < 4u; i++) {
            // Consecutive threads take consecutive addresses: along k where an operand is stored
            // k-contiguous, along rows or columns where it is stored transposed.
            let e = tid + i * 256u;
            var t = e / SLICE;
            var kk = e % SLICE;
            if (p.operands == 2u) {
                t = e % TILE;
                kk = e / TILE;
            }
            var av = 0.0;
            if (row0 + t < p.rows && k0 + kk < p.inner) {
                if (p.operands == 2u) {
                    av = a[a_base + (k0 + kk) * p.rows + row0 + t];
                } else {
                    av = a[a_base + (row0 + t) * p.inner + k0 + kk];
                }
            }
            a_tile[kk * TILE + t] = av;
            t = e / SLICE;
            kk = e % SLICE;
            if (p.operands != 0u) {
                t = e % TILE;
                kk = e / TILE;
            }
            var wv = 0.0;
            if (col0 + t < p.cols && k0 + kk < p.inner) {
                if (p.operands == 0u) {
                    wv = w[w_base + (col0 + t) * p.inner + k0 + kk];
                } else {
                    wv = w[w_base + (k0 + kk) * p.cols + col0 + t];
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
    let c_base = g * p.rows * p.cols;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (row < p.rows && col < p.cols) {
                let at = c_base + row * p.cols + col;
                var v = acc[i * 4u + j];
                if (p.accumulate != 0u) {
                    v += c[at];
                }
                c[at] = v;
            }
        }
    }
}
