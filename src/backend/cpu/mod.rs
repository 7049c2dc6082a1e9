//! The CPU backend: a real fallback (GEMM from the `gemm` crate, rayon over rows and batch
//! entries) and the reference every WGSL kernel is checked against. Ops run at once; a plain f64
//! loop oracle in tests/ checks these in turn.

mod balance;
mod bptt;
mod memory;

pub use balance::power;
pub use bptt::slope;
pub use memory::zeroed_vec;

use rayon::prelude::*;

use super::noise::fill_gaussian_noise;
use super::{
    check_difference, check_range, Axis, Backend, BackendInfo, Buf, CostFlows, Costs,
    EulerBackward, EulerStep, HUpdate, Layout, MatmulShape, Phi, Reduce, ReduceOp, SgdStep,
    TaskTransform,
};
use crate::error::DaleError;

/// Elementwise work is split into blocks of this many values per rayon task: large enough that
/// task overhead vanishes, small enough to spread a [64 x 1000] state over all cores.
const BLOCK: usize = 4096;

#[derive(Default)]
pub struct CpuBackend {
    bufs: Vec<Vec<f32>>,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the output buffer out so that inputs can be borrowed beside it; `put` returns it.
    fn take(&mut self, out: Buf, inputs: &[Buf], op: &str) -> Vec<f32> {
        for b in inputs {
            assert_ne!(
                b.id, out.id,
                "{op}: output buffer '{}' is also an input",
                out.label
            );
        }
        std::mem::take(&mut self.bufs[out.id as usize])
    }

    fn put(&mut self, out: Buf, data: Vec<f32>) {
        self.bufs[out.id as usize] = data;
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "cpu".into(),
            name: format!("CPU backend ({} threads)", rayon::current_num_threads()),
            device_type: "Cpu".into(),
            driver: "gemm crate + rayon".into(),
            max_buffer_len: isize::MAX as usize / std::mem::size_of::<f32>(),
        }
    }

    fn alloc(&mut self, label: &'static str, len: usize) -> Result<Buf, DaleError> {
        let id = self.bufs.len() as u32;
        self.bufs.push(zeroed_vec(len));
        Ok(Buf { id, len, label })
    }

    fn upload(&mut self, dst: Buf, offset: usize, data: &[f32]) -> Result<(), DaleError> {
        check_range(dst, offset, data.len(), "upload");
        self.bufs[dst.id as usize][offset..offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn download(&mut self, src: Buf, offset: usize, len: usize) -> Result<Vec<f32>, DaleError> {
        check_range(src, offset, len, "download");
        let mut out = zeroed_vec(len);
        out.copy_from_slice(&self.bufs[src.id as usize][offset..offset + len]);
        Ok(out)
    }

    fn copy(&mut self, src: Buf, src_offset: usize, dst: Buf, dst_offset: usize, len: usize) {
        check_range(src, src_offset, len, "copy");
        check_range(dst, dst_offset, len, "copy");
        let mut out = self.take(dst, &[src], "copy");
        out[dst_offset..dst_offset + len]
            .copy_from_slice(&self.bufs[src.id as usize][src_offset..src_offset + len]);
        self.put(dst, out);
    }

    fn matmul(
        &mut self,
        a: Buf,
        a_offset: usize,
        w: Buf,
        c: Buf,
        shape: MatmulShape,
        accumulate: bool,
    ) {
        shape.check(a, a_offset, w, c);
        let MatmulShape {
            groups,
            rows,
            inner,
            cols,
            shared_w,
            layout,
        } = shape;
        let mut out = self.take(c, &[a, w], "matmul");
        let (av, wv) = (&self.bufs[a.id as usize], &self.bufs[w.id as usize]);
        if inner == 0 {
            // An empty sum: C is zero, or unchanged when accumulating.
            if !accumulate {
                out[..shape.c_len()].fill(0.0);
            }
        } else if rows * cols > 0 {
            // One task per (network, block of C's columns), each a single-threaded gemm call:
            // measured faster than gemm's own threading on every shape we run but the narrowest
            // (benches/gemm_choice), and it needs no heap beyond gemm's packing buffer.
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
                // `out`, which holds groups * rows * cols values (check_range above). This task
                // writes only the columns first_col..first_col + width of it, which no other task
                // touches, through row stride `cols`. A and W are read through the strides above,
                // which stay inside a_g ([rows * inner]) and w_g ([cols * inner]) for every
                // (row < rows, n < inner, column < first_col + width <= cols).
                unsafe {
                    gemm::gemm(
                        rows,
                        width,
                        inner,
                        c_base.at(g * rows * cols + first_col),
                        1,
                        cols as isize,
                        accumulate,
                        a_g.as_ptr(),
                        a_cs,
                        a_rs,
                        w_g.as_ptr().add(w_first),
                        w_cs,
                        w_rs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            });
        }
        self.put(c, out);
    }

    fn euler_step(&mut self, x: Buf, r: Buf, drive: Buf, step: EulerStep) {
        step.check(x, r, drive);
        let mut xs = self.take(x, &[r, drive], "euler_step");
        let mut rs = self.take(r, &[drive], "euler_step");
        let d = &self.bufs[drive.id as usize];
        xs[..step.len]
            .par_chunks_mut(BLOCK)
            .zip(rs[..step.len].par_chunks_mut(BLOCK))
            .zip(d[..step.len].par_chunks(BLOCK))
            .enumerate()
            .for_each(|(block, ((xb, rb), db))| {
                // Same operation order as rate.wgsl, so both backends round alike; each pass is
                // a plain loop over the block so that it compiles to SIMD.
                for (xi, di) in xb.iter_mut().zip(db) {
                    *xi += step.leak * (*di - *xi);
                }
                if step.noise_std != 0.0 {
                    let mut noise = [0.0f32; BLOCK];
                    let noise = &mut noise[..xb.len()];
                    fill_gaussian_noise(step.seed, step.step, (block * BLOCK) as u32, noise);
                    for (xi, zi) in xb.iter_mut().zip(noise.iter()) {
                        *xi += step.noise_std * zi;
                    }
                }
                match step.phi {
                    Phi::Linear => rb.copy_from_slice(xb),
                    Phi::Relu => rb
                        .iter_mut()
                        .zip(xb.iter())
                        .for_each(|(ri, xi)| *ri = xi.max(0.0)),
                    Phi::Tanh => rb
                        .iter_mut()
                        .zip(xb.iter())
                        .for_each(|(ri, xi)| *ri = xi.tanh()),
                }
            });
        self.put(r, rs);
        self.put(x, xs);
    }

    fn reduce(&mut self, src: Buf, out: Buf, out_offset: usize, reduce: Reduce) {
        let Reduce {
            rows,
            cols,
            axis,
            op,
            scale,
        } = reduce;
        reduce.check(src, out, out_offset);
        let mut o = self.take(out, &[src], "reduce");
        let s = &self.bufs[src.id as usize][..rows * cols];
        let dst = &mut o[out_offset..out_offset + reduce.out_len()];
        let finish = |v: f64| (v * scale as f64) as f32;
        match (axis, op) {
            (Axis::Rows, ReduceOp::Sum | ReduceOp::SumSquares) => dst
                .par_iter_mut()
                .zip(s.par_chunks(cols.max(1)))
                .for_each(|(d, row)| {
                    let mut acc = [0.0f64; LANES];
                    add_lanes(&mut acc, row, op == ReduceOp::SumSquares);
                    *d = finish(acc.iter().sum());
                }),
            (Axis::Rows, ReduceOp::MaxAbs) => dst
                .par_iter_mut()
                .zip(s.par_chunks(cols.max(1)))
                .for_each(|(d, row)| {
                    let mut acc = [0u32; LANES];
                    max_abs_lanes(&mut acc, row);
                    *d = finish(max_abs_value(&acc));
                }),
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
        self.put(out, o);
    }

    fn euler_backward(&mut self, delta: Buf, back: Buf, x: Buf, readout: Buf, spec: EulerBackward) {
        spec.check(delta, back, x, readout);
        let mut d = self.take(delta, &[back, x, readout], "euler_backward");
        bptt::euler_backward(
            &mut d,
            &self.bufs[back.id as usize],
            &self.bufs[x.id as usize],
            &self.bufs[readout.id as usize],
            spec,
        );
        self.put(delta, d);
    }

    fn scaled_difference(&mut self, a: Buf, b: Buf, out: Buf, len: usize, scale: f32) {
        check_difference(a, b, out, len);
        let mut o = self.take(out, &[a, b], "scaled_difference");
        bptt::scaled_difference(
            &self.bufs[a.id as usize][..len],
            &self.bufs[b.id as usize][..len],
            &mut o[..len],
            scale,
        );
        self.put(out, o);
    }

    fn sgd_step(&mut self, w: Buf, grad: Buf, spec: SgdStep) {
        spec.check(w, grad);
        let mut ws = self.take(w, &[grad], "sgd_step");
        bptt::sgd_step(&mut ws, &self.bufs[grad.id as usize], spec);
        self.put(w, ws);
    }

    fn costs(&mut self, w: Buf, alpha: Buf, c: Buf, spec: Costs) {
        spec.check(w, alpha, c);
        let mut out = self.take(c, &[w, alpha], "costs");
        balance::costs(
            &self.bufs[w.id as usize],
            &self.bufs[alpha.id as usize],
            &mut out,
            spec,
        );
        self.put(c, out);
    }

    fn cost_flows(&mut self, c0: Buf, scale: Buf, flows: Buf, spec: CostFlows) {
        spec.check(c0, scale, flows);
        let mut out = self.take(flows, &[c0, scale], "cost_flows");
        balance::cost_flows(
            &self.bufs[c0.id as usize],
            &self.bufs[scale.id as usize],
            &mut out,
            spec,
        );
        self.put(flows, out);
    }

    fn h_update(&mut self, flows: Buf, h: Buf, scale: Buf, history: Buf, spec: HUpdate) {
        spec.check(flows, h, scale, history);
        let mut hs = self.take(h, &[flows], "h_update");
        let mut ss = self.take(scale, &[flows], "h_update");
        let mut hist = self.take(history, &[flows], "h_update");
        balance::h_update(
            &self.bufs[flows.id as usize],
            &mut hs,
            &mut ss,
            &mut hist,
            spec,
        );
        self.put(history, hist);
        self.put(scale, ss);
        self.put(h, hs);
    }

    fn task_transform(&mut self, src: Buf, h: Buf, dst: Buf, spec: TaskTransform) {
        spec.check(src, h, dst);
        let mut out = self.take(dst, &[src, h], "task_transform");
        balance::task_transform(
            &self.bufs[src.id as usize],
            &self.bufs[h.id as usize],
            &mut out,
            spec,
        );
        self.put(dst, out);
    }

    fn finish(&mut self) -> Result<(), DaleError> {
        Ok(())
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
// SAFETY: the tasks that receive it write disjoint elements (see CpuBackend::matmul).
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

/// Sums (of squares with `square`) accumulate in f64: the CPU result is the more accurate side of
/// every GPU comparison.
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
/// non-finite value at once, in SIMD (the same bit test as reduce.wgsl).
fn abs_bits(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

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
