//! The linear-algebra ops on the CPU. Twins: shaders/linalg.wgsl.

use rayon::prelude::*;

use super::{Axis, Layout, MatmulShape, Reduce, ReduceOp};
use crate::backend::cpu::simd::{Isa, Kernel};

/// c (+)= op(a) op(w) for every group, a read from `a_offset` (see `MatmulShape`).
pub(super) fn matmul(
    av: &[f32],
    a_offset: usize,
    wv: &[f32],
    out: &mut [f32],
    shape: MatmulShape,
    accumulate: bool,
) {
    let MatmulShape {
        groups,
        rows,
        inner,
        cols,
        shared_w,
        layout,
    } = shape;
    if inner == 0 {
        // An empty sum: C is zero, or unchanged when accumulating.
        if !accumulate {
            out[..shape.c_len()].fill(0.0);
        }
    } else if rows * cols > 0 {
        // One task per (network, block of C's columns), each a single-threaded product (`product`
        // or `DotRows`): measured as fast as or faster than the crates' own threading on every
        // shape we run (benches/gemm_choice), and a block of C needs no more than its columns of W.
        let threads = rayon::current_num_threads();
        let blocks = threads
            .div_ceil(groups)
            .min(cols.div_ceil(MIN_COLS_PER_TASK))
            .min((rows * inner * cols).div_ceil(MIN_TASK_WORK))
            .max(1);
        let per_block = cols.div_ceil(blocks);
        let c_base = SharedMut(out.as_mut_ptr());
        (0..groups * blocks).into_par_iter().for_each(|task| {
            let (g, first_col) = (task / blocks, (task % blocks) * per_block);
            let width = per_block.min(cols.saturating_sub(first_col));
            let a_g = &av[a_offset + g * rows * inner..][..rows * inner];
            let w_g = if shared_w {
                &wv[..cols * inner]
            } else {
                &wv[g * cols * inner..][..cols * inner]
            };
            if width == 0 {
                return;
            }
            if layout == Layout::ABt && rows < FAER_MIN {
                // SAFETY: as for `product` below; C's block is columns first_col..+width of
                // group g's rows, written by this task alone.
                let c = unsafe { c_base.at(g * rows * cols + first_col) };
                return Isa::detected().run(DotRows {
                    a: a_g,
                    w: &w_g[first_col * inner..][..width * inner],
                    rows,
                    inner,
                    c: SharedMut(c),
                    c_rs: cols,
                    accumulate,
                });
            }
            // Strides (column, row) of A as a [rows, inner] matrix and of W as [inner, cols],
            // and where this block's first column of W starts.
            let (a_cs, a_rs) = if layout == Layout::AtB {
                (rows as isize, 1)
            } else {
                (1, inner as isize)
            };
            let (w_cs, w_rs, w_first) = if layout == Layout::ABt {
                (inner as isize, 1, first_col * inner)
            } else {
                (1, cols as isize, first_col)
            };
            // SAFETY: C row-major [rows, cols] of group g starts at g * rows * cols inside
            // `out`, which holds groups * rows * cols values (the op's check). This task
            // writes only the columns first_col..first_col + width of it, which no other task
            // touches, through row stride `cols`. A and W are read through the strides above,
            // which stay inside a_g ([rows * inner]) and w_g ([cols * inner]) for every
            // (row < rows, n < inner, column < first_col + width <= cols).
            unsafe {
                product(
                    Dims {
                        rows,
                        cols: width,
                        inner,
                    },
                    c_base.at(g * rows * cols + first_col),
                    cols as isize,
                    (a_g.as_ptr(), a_rs, a_cs),
                    (w_g.as_ptr().add(w_first), w_rs, w_cs),
                    accumulate,
                )
            }
        });
    }
}

#[derive(Clone, Copy)]
struct Dims {
    rows: usize,
    cols: usize,
    inner: usize,
}

/// C (+)= A B on one thread: C [rows, cols] with row stride `c_rs` (unit column stride), A
/// [rows, inner] and B [inner, cols] as (pointer, row stride, column stride). faer's kernels
/// (AVX-512 where the processor has it, chosen at run time) for products at least FAER_MIN wide
/// both ways, the gemm crate's for the narrow ones: on this project's 2-core AVX-512 machine faer
/// ran [64 x 1000] x [1000 x 1000] at 180 GFLOP/s against gemm's 161 and OpenBLAS's 146, and
/// [256 x 4096] x [4096 x 4096] at 195 against 136 and 177; gemm ran the readout's
/// [64 x 1000] x [1000 x 2] at 92 against faer's 13 (benches/gemm_choice, BENCHMARKS.md).
///
/// # Safety
/// Every element the dimensions and strides address must lie inside its buffer, and no other
/// thread may touch C's elements meanwhile.
unsafe fn product(
    d: Dims,
    c: *mut f32,
    c_rs: isize,
    (a, a_rs, a_cs): (*const f32, isize, isize),
    (b, b_rs, b_cs): (*const f32, isize, isize),
    accumulate: bool,
) {
    if d.rows >= FAER_MIN && d.cols >= FAER_MIN {
        // SAFETY: the caller's contract, passed on.
        let (c, a, b) = unsafe {
            (
                faer::MatMut::from_raw_parts_mut(c, d.rows, d.cols, c_rs, 1),
                faer::MatRef::from_raw_parts(a, d.rows, d.inner, a_rs, a_cs),
                faer::MatRef::from_raw_parts(b, d.inner, d.cols, b_rs, b_cs),
            )
        };
        let accum = if accumulate {
            faer::Accum::Add
        } else {
            faer::Accum::Replace
        };
        faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, faer::Par::Seq);
    } else {
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                d.rows,
                d.cols,
                d.inner,
                c,
                1,
                c_rs,
                accumulate,
                a,
                a_cs,
                a_rs,
                b,
                b_cs,
                b_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }
}

/// Rows and columns of C from which a product runs on faer's kernels (see `product`); C = A W^T
/// with fewer rows runs as dot products (`DotRows`).
const FAER_MIN: usize = 8;

/// C = A W^T (or C += A W^T) for a few rows of A, as dot products of A's rows with W's rows,
/// which are both contiguous: one pass over W that runs at the memory's speed (the single-trial
/// step is a matrix-vector product; packing W for a GEMM kernel would read it twice). Compiled for
/// each instruction set; every lane adds in the same order on all of them, so all give the same
/// bits.
struct DotRows<'a> {
    /// [rows, inner].
    a: &'a [f32],
    /// This block's rows of W: [width, inner].
    w: &'a [f32],
    rows: usize,
    inner: usize,
    /// C's first element of this block; row stride `c_rs`.
    c: SharedMut,
    c_rs: usize,
    accumulate: bool,
}

impl Kernel for DotRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let inner = self.inner;
        for i in 0..self.rows {
            let a = &self.a[i * inner..][..inner];
            // A's row stays in the L1 cache while W's rows stream past it once.
            for (j, w) in self.w.chunks_exact(inner).enumerate() {
                let sum = dot(a, w);
                // SAFETY: element (i, j) of this task's block of C (see `matmul`).
                unsafe {
                    let c = self.c.at(i * self.c_rs + j);
                    *c = if self.accumulate { *c + sum } else { sum };
                }
            }
        }
    }
}

/// a . w: four running sums of 16 lanes (four 512-bit vectors, four independent chains of adds
/// in flight), folded pairwise in a fixed order. Four separate arrays, not one of 64: the
/// compiler kept a single large array in memory instead of registers. The tail goes through the
/// same lanes, padded with zeros (a scalar tail cost more than the vector part at N = 1000).
#[inline(always)]
fn dot(a: &[f32], w: &[f32]) -> f32 {
    let (a_blocks, a_tail) = a.as_chunks::<{ 4 * DOT_LANE }>();
    let (w_blocks, w_tail) = w[..a.len()].as_chunks::<{ 4 * DOT_LANE }>();
    let mut sums = (
        [0.0f32; DOT_LANE],
        [0.0f32; DOT_LANE],
        [0.0f32; DOT_LANE],
        [0.0f32; DOT_LANE],
    );
    for (a, w) in a_blocks.iter().zip(w_blocks) {
        sums = dot_block(sums, a, w);
    }
    let (mut pad_a, mut pad_w) = ([0.0f32; 4 * DOT_LANE], [0.0f32; 4 * DOT_LANE]);
    pad_a[..a_tail.len()].copy_from_slice(a_tail);
    pad_w[..w_tail.len()].copy_from_slice(w_tail);
    let (s0, s1, s2, s3) = dot_block(sums, &pad_a, &pad_w);
    let v: [f32; DOT_LANE] = std::array::from_fn(|l| (s0[l] + s2[l]) + (s1[l] + s3[l]));
    let h: [f32; 8] = std::array::from_fn(|l| v[l] + v[l + 8]);
    let h: [f32; 4] = std::array::from_fn(|l| h[l] + h[l + 4]);
    let h: [f32; 2] = std::array::from_fn(|l| h[l] + h[l + 2]);
    h[0] + h[1]
}

type DotLanes = [f32; DOT_LANE];

/// The four running sums of `dot` after one block of 4 DOT_LANE values.
#[inline(always)]
fn dot_block(
    (mut s0, mut s1, mut s2, mut s3): (DotLanes, DotLanes, DotLanes, DotLanes),
    a: &[f32; 4 * DOT_LANE],
    w: &[f32; 4 * DOT_LANE],
) -> (DotLanes, DotLanes, DotLanes, DotLanes) {
    for l in 0..DOT_LANE {
        s0[l] += a[l] * w[l];
        s1[l] += a[DOT_LANE + l] * w[DOT_LANE + l];
        s2[l] += a[2 * DOT_LANE + l] * w[2 * DOT_LANE + l];
        s3[l] += a[3 * DOT_LANE + l] * w[3 * DOT_LANE + l];
    }
    (s0, s1, s2, s3)
}

/// f32 lanes of a 512-bit vector.
const DOT_LANE: usize = 16;

/// dst[i] = scale * reduce(...) over the [rows, cols] matrix `s`.
pub(super) fn reduce(s: &[f32], dst: &mut [f32], reduce: Reduce) {
    let Reduce {
        cols,
        axis,
        op,
        scale,
        ..
    } = reduce;
    let finish = |v: f64| (v * scale as f64) as f32;
    match (axis, op) {
        (Axis::Rows, _) => {
            let isa = Isa::detected();
            dst.par_iter_mut()
                .zip(s.par_chunks(cols.max(1)))
                .for_each(|(d, row)| *d = finish(isa.run(RowReduce { row, op })))
        }
        // Columns: each task owns COL_BLOCK adjacent columns and walks the rows in memory
        // order, so the reads stay contiguous instead of striding by `cols`.
        (Axis::Cols, ReduceOp::Sum | ReduceOp::SumSquares) => dst
            .par_chunks_mut(COL_BLOCK)
            .enumerate()
            .for_each(|(blk, d)| {
                let mut acc = [0.0f64; COL_BLOCK];
                let acc = &mut acc[..d.len()];
                let square = op == ReduceOp::SumSquares;
                for row in s.chunks(cols.max(1)) {
                    let part = &row[blk * COL_BLOCK..][..d.len()];
                    acc.iter_mut().zip(part).for_each(|(a, v)| {
                        *a += if square {
                            f64::from(*v) * f64::from(*v)
                        } else {
                            f64::from(*v)
                        }
                    });
                }
                d.iter_mut()
                    .zip(acc.iter())
                    .for_each(|(d, a)| *d = finish(*a));
            }),
        (Axis::Cols, ReduceOp::MaxAbs) => {
            dst.par_chunks_mut(COL_BLOCK)
                .enumerate()
                .for_each(|(blk, d)| {
                    let mut acc = [0u32; COL_BLOCK];
                    let acc = &mut acc[..d.len()];
                    for row in s.chunks(cols.max(1)) {
                        let part = &row[blk * COL_BLOCK..][..d.len()];
                        acc.iter_mut()
                            .zip(part)
                            .for_each(|(a, v)| *a = (*a).max(abs_bits(*v)));
                    }
                    d.iter_mut()
                        .zip(acc.iter())
                        .for_each(|(d, a)| *d = finish(max_abs_value(std::slice::from_ref(a))));
                })
        }
    }
}

/// Fewer columns than this per task would make the product's tasks too thin to pay for
/// themselves (the readout's [64 x 1000] x [1000 x 2] runs as one task).
const MIN_COLS_PER_TASK: usize = 64;

/// Multiply-adds below which a product is not split: waking another thread costs about as much
/// as 2^18 multiply-adds (10-20 us) on one core.
const MIN_TASK_WORK: usize = 1 << 18;

/// C's storage, shared by the matmul tasks, each of which writes its own columns only.
struct SharedMut(*mut f32);
// SAFETY: the tasks that receive it write disjoint elements (see `matmul`).
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// # Safety
    /// `offset` must lie inside the buffer, and no two tasks may write the same element.
    unsafe fn at(&self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

/// Independent accumulators per row, so that the compiler may keep them in SIMD registers
/// (a single running sum would force one add after another, in order).
const LANES: usize = 8;

/// Columns per task in a column reduction.
const COL_BLOCK: usize = 256;

/// One row's sum, sum of squares or largest |value| (Inf for any non-finite one), compiled for
/// each instruction set; the lanes combine in the same order on all of them.
struct RowReduce<'a> {
    row: &'a [f32],
    op: ReduceOp,
}

impl Kernel for RowReduce<'_> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        match self.op {
            ReduceOp::Sum | ReduceOp::SumSquares => {
                let mut acc = [0.0f64; LANES];
                add_lanes(&mut acc, self.row, self.op == ReduceOp::SumSquares);
                acc.iter().sum()
            }
            ReduceOp::MaxAbs => {
                let mut acc = [0u32; LANES];
                max_abs_lanes(&mut acc, self.row);
                max_abs_value(&acc)
            }
        }
    }
}

/// Sums (of squares with `square`) accumulate in f64: the CPU result is the more accurate side of
/// every GPU comparison.
#[inline(always)]
fn add_lanes(acc: &mut [f64; LANES], values: &[f32], square: bool) {
    let term = |v: &f32| {
        if square {
            f64::from(*v) * f64::from(*v)
        } else {
            f64::from(*v)
        }
    };
    let mut chunks = values.chunks_exact(LANES);
    for c in &mut chunks {
        acc.iter_mut().zip(c).for_each(|(a, v)| *a += term(v));
    }
    acc.iter_mut()
        .zip(chunks.remainder())
        .for_each(|(a, v)| *a += term(v));
}

/// |v| as bits: for non-negative floats the bit patterns order like the values, and every
/// NaN or Inf lies at or above 0x7f80_0000, so an integer max finds the largest |v| and any
/// non-finite value at once, in SIMD (the same bit test as linalg.wgsl).
fn abs_bits(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

#[inline(always)]
fn max_abs_lanes(acc: &mut [u32; LANES], values: &[f32]) {
    let mut chunks = values.chunks_exact(LANES);
    for c in &mut chunks {
        acc.iter_mut()
            .zip(c)
            .for_each(|(a, v)| *a = (*a).max(abs_bits(*v)));
    }
    acc.iter_mut()
        .zip(chunks.remainder())
        .for_each(|(a, v)| *a = (*a).max(abs_bits(*v)));
}

/// The largest |v| from lanes of `abs_bits`, with NaN and Inf reported as +Inf.
fn max_abs_value(lanes: &[u32]) -> f64 {
    let top = lanes.iter().copied().max().unwrap_or(0);
    if top >= 0x7f80_0000 {
        f64::INFINITY
    } else {
        f64::from(f32::from_bits(top))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set's copy of the dot products and the row reductions gives the portable
    /// copy's bits: inner lengths with and without a tail, a row of one, values over decades.
    #[test]
    fn dot_rows_and_row_reductions_are_the_same_on_every_instruction_set() {
        let value = |k: usize| ((k as f32 * 0.7548).sin() * 6.0).exp() * (k as f32 * 1.3).cos();
        for inner in [1, 15, 64, 1000, 4097] {
            let (rows, width) = (3, 5);
            let a: Vec<f32> = (0..rows * inner).map(value).collect();
            let w: Vec<f32> = (0..width * inner).map(|k| value(k + 11)).collect();
            let product = |isa: Isa| {
                let mut c = vec![1.0f32; rows * width];
                isa.run(DotRows {
                    a: &a,
                    w: &w,
                    rows,
                    inner,
                    c: SharedMut(c.as_mut_ptr()),
                    c_rs: width,
                    accumulate: true,
                });
                c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            };
            let reduced = |isa: Isa| {
                [ReduceOp::Sum, ReduceOp::SumSquares, ReduceOp::MaxAbs].map(|op| {
                    isa.run(RowReduce {
                        row: &a[..inner],
                        op,
                    })
                    .to_bits()
                })
            };
            let (c, r) = (product(Isa::Portable), reduced(Isa::Portable));
            for isa in Isa::available() {
                assert!(
                    product(isa) == c,
                    "{} dot products differ, inner {inner}",
                    isa.name()
                );
                assert_eq!(
                    reduced(isa),
                    r,
                    "{} reductions differ, inner {inner}",
                    isa.name()
                );
            }
        }
    }
}
