//! CPU twin of the sort family: rows in parallel, each sorted by an LSD radix sort of its keys'
//! order keys paired with their positions. The pairs are distinct, so any correct sort of them
//! gives the one order the family promises; a row too long to leave to one thread is cut into
//! halves sorted in parallel and merged in parallel.

use rayon::prelude::*;

use super::SortRows;

/// An f32's key in the family's order: unsigned comparison of keys is numerical comparison of
/// values, with -0 and +0 one key (sort.wgsl's `order_key` computes the same bits).
pub fn order_key(v: f32) -> u32 {
    let bits = if v == 0.0 { 0 } else { v.to_bits() };
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Rows shorter than this are sorted by comparison: the radix sort's four histograms of 256
/// counts cost more than they save.
const RADIX_MIN: usize = 128;
/// A row at least this long, in a batch of fewer rows than threads, is split among threads.
const SPLIT_MIN: usize = 1 << 16;
/// Merges shorter than this run on one thread.
const MERGE_SERIAL: usize = 1 << 14;

pub(super) fn sort_rows(
    keys: &[f32],
    sorted: &mut [f32],
    perm: &mut [u32],
    nan_rows: &mut [u32],
    spec: SortRows,
) {
    let SortRows { rows, len, .. } = spec;
    if rows * len == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let split_depth = if rows < threads && len >= SPLIT_MIN {
        threads.next_power_of_two().trailing_zeros()
    } else {
        0
    };
    (0..rows)
        .into_par_iter()
        .map(|r| &keys[spec.row_start(r)..][..len])
        .zip(sorted[..rows * len].par_chunks_mut(len))
        .zip(perm[..rows * len].par_chunks_mut(len))
        .zip(&mut nan_rows[..rows])
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(pairs, spare), (((keys, sorted), perm), nan)| {
                // (order key, position): the position breaks ties and travels with its key.
                pairs.clear();
                pairs.extend(
                    keys.iter()
                        .enumerate()
                        .map(|(i, &v)| u64::from(order_key(v)) << 32 | i as u64),
                );
                spare.resize(len, 0);
                sort_split(pairs, spare, split_depth);
                for ((p, s), &pair) in perm.iter_mut().zip(sorted.iter_mut()).zip(pairs.iter()) {
                    *p = pair as u32;
                    *s = keys[*p as usize];
                }
                if keys.iter().any(|v| v.is_nan()) {
                    *nan = 1;
                }
            },
        );
}

/// Sorts `a` (`spare` as long); `depth` levels of halves sorted in parallel, then merged.
fn sort_split(a: &mut [u64], spare: &mut [u64], depth: u32) {
    if depth == 0 || a.len() < SPLIT_MIN {
        return sort_pairs(a, spare);
    }
    let mid = a.len() / 2;
    {
        let ((low, high), (spare_low, spare_high)) = (a.split_at_mut(mid), spare.split_at_mut(mid));
        rayon::join(
            || sort_split(low, spare_low, depth - 1),
            || sort_split(high, spare_high, depth - 1),
        );
    }
    let (low, high) = a.split_at(mid);
    merge(low, high, spare);
    a.copy_from_slice(spare);
}

/// Merges sorted `x` and `y` into `out`, halving the work by binary search until it is small.
fn merge(x: &[u64], y: &[u64], out: &mut [u64]) {
    if out.len() < MERGE_SERIAL || x.is_empty() || y.is_empty() {
        let (mut i, mut j) = (0, 0);
        for o in out.iter_mut() {
            if j == y.len() || (i < x.len() && x[i] < y[j]) {
                *o = x[i];
                i += 1;
            } else {
                *o = y[j];
                j += 1;
            }
        }
        return;
    }
    // The pairs are distinct, so which input is split first does not change the result.
    let (x, y) = if x.len() >= y.len() { (x, y) } else { (y, x) };
    let i = x.len() / 2;
    let j = y.partition_point(|&v| v < x[i]);
    let (out_low, out_high) = out.split_at_mut(i + j);
    rayon::join(
        || merge(&x[..i], &y[..j], out_low),
        || merge(&x[i..], &y[j..], out_high),
    );
}

/// LSD radix sort of pairs by their order keys (the high 32 bits), a byte a pass, skipping the
/// bytes every key shares; stable, so equal keys keep their positions' order.
fn sort_pairs(a: &mut [u64], spare: &mut [u64]) {
    if a.len() < RADIX_MIN {
        return a.sort_unstable();
    }
    let mut counts = [[0u32; 256]; 4];
    for &v in a.iter() {
        for (byte, counts) in counts.iter_mut().enumerate() {
            counts[digit(v, byte)] += 1;
        }
    }
    let n = a.len();
    let (mut src, mut dst) = (a, spare);
    let mut in_spare = false;
    for (byte, counts) in counts.iter().enumerate() {
        if counts.iter().any(|&c| c as usize == n) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut total = 0;
        for (next, &c) in next.iter_mut().zip(counts) {
            *next = total;
            total += c as usize;
        }
        for &v in src.iter() {
            let d = digit(v, byte);
            dst[next[d]] = v;
            next[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
        in_spare = !in_spare;
    }
    if in_spare {
        dst.copy_from_slice(src);
    }
}

/// Byte `byte` (0 the lowest) of a pair's order key.
#[inline(always)]
fn digit(pair: u64, byte: usize) -> usize {
    ((pair >> (32 + 8 * byte)) & 0xff) as usize
}

/// w <- (1 - rate) w + rate target for the key of each rank (`transport_step`).
pub(super) fn transport_step(
    weights: &mut [f32],
    perm: &[u32],
    targets: &[f32],
    rate: f32,
    spec: SortRows,
) {
    let SortRows { rows, len, .. } = spec;
    if rows * len == 0 {
        return;
    }
    // Rows are disjoint (stride >= len), so the chunks of `stride` from `offset` hold one each.
    weights[spec.offset..spec.span()]
        .par_chunks_mut(spec.stride.max(len))
        .zip(perm[..rows * len].par_chunks(len))
        .for_each(|(w, ranked)| {
            for (&i, &target) in ranked.iter().zip(targets) {
                let w = &mut w[i as usize];
                *w = (1.0 - rate) * *w + rate * target;
            }
        });
}
