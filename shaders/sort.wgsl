// Batched segmented sort (src/backend/sort/; CPU twin in its cpu.rs).
//
// Each row of keys [rows, len] is sorted on its own into sorted and perm by the pair
// (order_key(key), position): ascending by value, -0 and +0 equal, ties by position. The pairs
// are distinct, so every correct sort, this one and the CPU's, gives the same order.
//
// The network is a bitonic merge sort in the form whose every comparator leaves the smaller pair
// at the lower position: merging two sorted runs of run / 2 into one of `run`, position t of the
// first half meets position run - 1 - t (the mirroring step), then positions meet at distances
// run / 4, run / 8, ..., 1. Each row is padded to pad = 2^pad_log2 >= len with positions past
// len that act as +infinity: a comparator never moves one (its partner, always below it in the
// same row, keeps the smaller pair), so padding is never stored and work and perm stay
// [rows, len]. Positions are flat over the padded [rows, pad] batch; no run crosses a row.
//   sort_blocks:   each BLOCK of padded positions sorted into runs of 2^run_log2 in workgroup
//                  memory (a whole row when pad <= BLOCK, several rows a workgroup when
//                  shorter); reads keys, flags rows holding NaN, writes work (order keys) and
//                  perm (original positions).
//   merge_step:    one step of a merge wider than BLOCK at distance >= BLOCK, or its
//                  mirroring step: one comparator a thread, on work and perm.
//   merge_blocks:  a merge's steps at distances BLOCK / 2 ... 1, in workgroup memory.
//   gather_sorted: sorted[r, i] = keys[r, perm[r, i]].
// Keys row r starts at offset + r * stride (a population's slice of each perceptron's weights);
// work, perm and sorted are packed [rows, len].

struct SortParams {
    rows: u32,
    len: u32,
    offset: u32,        // row r's keys start at offset + r * stride
    stride: u32,
    pad_log2: u32,
    run_log2: u32,      // the runs a step forms; sort_blocks: the longest it forms
    distance_log2: u32, // merge_step: its comparators' distance; run_log2 for the mirroring step
}

@group(0) @binding(0) var<uniform> sp: SortParams;
@group(0) @binding(1) var<storage, read> keys: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<u32>;
@group(0) @binding(3) var<storage, read_write> perm: array<u32>;
@group(0) @binding(4) var<storage, read_write> nan_rows: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> sorted: array<f32>;

const WG: u32 = 256u;
const BLOCK_LOG2: u32 = 11u;
const BLOCK: u32 = 2048u;
// A padding position in workgroup memory, as key and position: above every key (NaN aside).
const PAST: u32 = 0xffffffffu;

var<workgroup> block_keys: array<u32, 2048>;
var<workgroup> block_pos: array<u32, 2048>;

// Unsigned order of the result is numerical order of v; -0 and +0 are one key. On the bits, so
// that no driver's flushing of subnormals to zero changes the order.
fn order_key(v: f32) -> u32 {
    var bits = bitcast<u32>(v);
    if (bits == 0x80000000u) {
        bits = 0u;
    }
    if ((bits & 0x80000000u) != 0u) {
        return ~bits;
    }
    return bits | 0x80000000u;
}

fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// The position in its row of padded position q.
fn pos_of(q: u32) -> u32 {
    return q & ((1u << sp.pad_log2) - 1u);
}

// Where padded position q is stored in work and perm, or PAST for padding.
fn stored_at(q: u32) -> u32 {
    let row = q >> sp.pad_log2;
    let pos = pos_of(q);
    if (row >= sp.rows || pos >= sp.len) {
        return PAST;
    }
    return row * sp.len + pos;
}

// The two positions comparator c joins in a step: within runs of 2^run_log2, mirrored when
// distance_log2 == run_log2, else 2^distance_log2 apart.
fn comparator(c: u32, run_log2: u32, distance_log2: u32) -> vec2<u32> {
    if (distance_log2 == run_log2) {
        let half_log2 = run_log2 - 1u;
        let first = (c >> half_log2) << run_log2;
        let t = c & ((1u << half_log2) - 1u);
        return vec2<u32>(first + t, first + (1u << run_log2) - 1u - t);
    }
    let low = ((c >> distance_log2) << (distance_log2 + 1u)) | (c & ((1u << distance_log2) - 1u));
    return vec2<u32>(low, low + (1u << distance_log2));
}

// One step on the block in workgroup memory: BLOCK / 2 comparators, then a barrier.
fn block_step(lid: u32, run_log2: u32, distance_log2: u32) {
    for (var c = lid; c < BLOCK / 2u; c += WG) {
        let ab = comparator(c, run_log2, distance_log2);
        let ka = block_keys[ab.x];
        let kb = block_keys[ab.y];
        if (kb < ka || (kb == ka && block_pos[ab.y] < block_pos[ab.x])) {
            block_keys[ab.x] = kb;
            block_keys[ab.y] = ka;
            let p = block_pos[ab.x];
            block_pos[ab.x] = block_pos[ab.y];
            block_pos[ab.y] = p;
        }
    }
    workgroupBarrier();
}

fn store_block(lid: u32, first: u32) {
    for (var e = lid; e < BLOCK; e += WG) {
        let at = stored_at(first + e);
        if (at != PAST) {
            work[at] = block_keys[e];
            perm[at] = block_pos[e];
        }
    }
}

@compute @workgroup_size(256)
fn sort_blocks(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let first = workgroup_index(wid, nwg) * BLOCK;
    for (var e = lid; e < BLOCK; e += WG) {
        let q = first + e;
        let at = stored_at(q);
        var key = PAST;
        var pos = PAST;
        if (at != PAST) {
            let v = keys[sp.offset + (q >> sp.pad_log2) * sp.stride + pos_of(q)];
            if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
                atomicMax(&nan_rows[q >> sp.pad_log2], 1u);
            }
            key = order_key(v);
            pos = pos_of(q);
        }
        block_keys[e] = key;
        block_pos[e] = pos;
    }
    workgroupBarrier();
    for (var run_log2 = 1u; run_log2 <= sp.run_log2; run_log2++) {
        block_step(lid, run_log2, run_log2);
        for (var d = i32(run_log2) - 2; d >= 0; d--) {
            block_step(lid, run_log2, u32(d));
        }
    }
    store_block(lid, first);
}

@compute @workgroup_size(256)
fn merge_blocks(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let first = workgroup_index(wid, nwg) * BLOCK;
    for (var e = lid; e < BLOCK; e += WG) {
        let at = stored_at(first + e);
        var key = PAST;
        var pos = PAST;
        if (at != PAST) {
            key = work[at];
            pos = perm[at];
        }
        block_keys[e] = key;
        block_pos[e] = pos;
    }
    workgroupBarrier();
    for (var d = i32(BLOCK_LOG2) - 1; d >= 0; d--) {
        block_step(lid, sp.run_log2, u32(d));
    }
    store_block(lid, first);
}

@compute @workgroup_size(256)
fn merge_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = workgroup_index(wid, nwg) * WG + lid;
    if (c >= (sp.rows << sp.pad_log2) / 2u) {
        return;
    }
    let ab = comparator(c, sp.run_log2, sp.distance_log2);
    let b = stored_at(ab.y);
    if (b == PAST) {
        return;
    }
    let a = stored_at(ab.x);
    let ka = work[a];
    let kb = work[b];
    let pa = perm[a];
    let pb = perm[b];
    if (kb < ka || (kb == ka && pb < pa)) {
        work[a] = kb;
        work[b] = ka;
        perm[a] = pb;
        perm[b] = pa;
    }
}

@compute @workgroup_size(256)
fn gather_sorted(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = workgroup_index(wid, nwg) * WG + lid;
    if (i >= sp.rows * sp.len) {
        return;
    }
    let p = perm[i];
    if (p < sp.len) {
        sorted[i] = keys[sp.offset + (i / sp.len) * sp.stride + p];
    }
}

// transport_step: paper 003's eq. 9 on each row, the key of rank k moved toward targets[k]:
// w <- (1 - rate) w + rate targets[k] (exact at rate 0 and 1). One thread per (row, rank); the
// ranks of a row name distinct keys.

struct TransportParams {
    rows: u32,
    len: u32,
    offset: u32,
    stride: u32,
    rate: f32,
}

@group(0) @binding(0) var<uniform> tp: TransportParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> ranked: array<u32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;

@compute @workgroup_size(256)
fn transport_step(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = workgroup_index(wid, nwg) * WG + lid;
    if (e >= tp.rows * tp.len) {
        return;
    }
    let rank = e % tp.len;
    let i = tp.offset + (e / tp.len) * tp.stride + ranked[e];
    weights[i] = (1.0 - tp.rate) * weights[i] + tp.rate * targets[rank];
}
