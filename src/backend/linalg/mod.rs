//! Linear algebra and reductions, the ops every model runs: batched matrix products in three
//! layouts, and row or column reductions (sum, max |v| with NaN/Inf as +Inf, sum of squares).
//! Kernels: shaders/linalg.wgsl; CPU twins: cpu.rs.

mod cpu;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = ("linalg.wgsl", include_str!("../../../shaders/linalg.wgsl"));
/// Side of the C tile one matmul workgroup computes.
const MATMUL_TILE: usize = 64;
/// Columns one reduce_cols workgroup reduces.
const REDUCE_COLS_PER_GROUP: usize = 16;

/// Shape of a batched product, done `groups` times with independent operands. A group is one
/// network; rows are the trials that share it. `shared_w` uses one W for every group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    pub groups: usize,
    pub rows: usize,
    pub inner: usize,
    pub cols: usize,
    pub shared_w: bool,
    pub layout: Layout,
}

/// How A and W are stored; C is always row-major [rows, cols].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// c[r, k] = sum_n a[r, n] w[k, n]: A [rows, inner], W [cols, inner], the way J (post x pre),
    /// W_in and W_out are written in the papers: every forward product of the rate network.
    ABt,
    /// c[r, k] = sum_n a[r, n] w[n, k]: A [rows, inner], W [inner, cols]; the backward pass's
    /// delta J (J^T delta per trial) and e W_out.
    AB,
    /// c[r, k] = sum_n a[n, r] w[n, k]: A [inner, rows], W [inner, cols]; weight gradients summed
    /// over time steps and trials (delta^T r).
    AtB,
}

impl MatmulShape {
    pub fn a_len(&self) -> usize {
        self.groups * self.rows * self.inner
    }
    pub fn w_len(&self) -> usize {
        let one = self.cols * self.inner;
        if self.shared_w {
            one
        } else {
            self.groups * one
        }
    }
    pub fn c_len(&self) -> usize {
        self.groups * self.rows * self.cols
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// max |v|; any NaN or Inf gives +Inf, so that divergence can be read from one number.
    MaxAbs,
    /// sum v^2 (a loss, a squared norm).
    SumSquares,
}

/// Which way a [rows, cols] matrix is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// One value per row (reduce along the columns of each row): out has `rows` values.
    Rows,
    /// One value per column (reduce down the rows): out has `cols` values.
    Cols,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reduce {
    pub rows: usize,
    pub cols: usize,
    pub axis: Axis,
    pub op: ReduceOp,
    /// Multiplies each result (1/cols turns a row sum into a mean).
    pub scale: f32,
}

impl Reduce {
    pub fn out_len(&self) -> usize {
        match self.axis {
            Axis::Rows => self.rows,
            Axis::Cols => self.cols,
        }
    }
}

/// The linear-algebra ops, on any backend.
pub trait LinalgOps: Backend {
    /// c = op(a) op(W) as `shape.layout` says (c += with `accumulate`); `a` starts at `a_offset`.
    fn matmul(
        &mut self,
        a: Buf<f32>,
        a_offset: usize,
        w: Buf<f32>,
        c: Buf<f32>,
        shape: MatmulShape,
        accumulate: bool,
    ) {
        self.run(&Matmul {
            a,
            a_offset,
            w,
            c,
            shape,
            accumulate,
        })
    }

    /// out[out_offset + i] = scale * reduce(...) as `Reduce` describes.
    fn reduce(&mut self, src: Buf<f32>, out: Buf<f32>, out_offset: usize, reduce: Reduce) {
        self.run(&Reduction {
            src,
            out,
            out_offset,
            reduce,
        })
    }
}

impl<B: Backend + ?Sized> LinalgOps for B {}

params! {
    pub struct MatmulParams {
        pub rows: u32,
        pub inner: u32,
        pub cols: u32,
        pub a_offset: u32,
        /// 0 when every group shares one W.
        pub w_group_stride: u32,
        pub accumulate: u32,
        /// The layout: 0 ABt, 1 AB, 2 AtB (`layout` is a WGSL keyword).
        pub operands: u32,
    }
}

params! {
    pub struct ReduceParams {
        pub rows: u32,
        pub cols: u32,
        /// 0 sum, 1 max |v|, 2 sum of squares.
        pub op: u32,
        pub out_offset: u32,
        pub scale: f32,
    }
}

pub static MATMUL: Kernel = Kernel::new::<MatmulParams>(
    WGSL,
    "matmul",
    &[
        Binding::read::<f32>("a"),
        Binding::read::<f32>("w"),
        Binding::write::<f32>("c"),
    ],
);
const REDUCE_BINDINGS: &[Binding] = &[Binding::read::<f32>("src"), Binding::write::<f32>("out")];
pub static REDUCE_ROWS: Kernel = Kernel::new::<ReduceParams>(WGSL, "reduce_rows", REDUCE_BINDINGS);
pub static REDUCE_COLS: Kernel = Kernel::new::<ReduceParams>(WGSL, "reduce_cols", REDUCE_BINDINGS);

pub static KERNELS: &[&Kernel] = &[&MATMUL, &REDUCE_ROWS, &REDUCE_COLS];

struct Matmul {
    a: Buf<f32>,
    a_offset: usize,
    w: Buf<f32>,
    c: Buf<f32>,
    shape: MatmulShape,
    accumulate: bool,
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn check(&self) {
        let s = &self.shape;
        check_range(self.a.raw(), self.a_offset, s.a_len(), "matmul a");
        check_range(self.w.raw(), 0, s.w_len(), "matmul w");
        check_range(self.c.raw(), 0, s.c_len(), "matmul c");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut c = mem.take(self.c);
        cpu::matmul(
            mem.get(self.a),
            self.a_offset,
            mem.get(self.w),
            &mut c,
            self.shape,
            self.accumulate,
        );
        mem.put(c);
    }

    fn dispatches(&self, _: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.shape;
        if s.c_len() == 0 {
            return Vec::new();
        }
        let params = MatmulParams {
            rows: s.rows as u32,
            inner: s.inner as u32,
            cols: s.cols as u32,
            a_offset: self.a_offset as u32,
            w_group_stride: if s.shared_w {
                0
            } else {
                (s.cols * s.inner) as u32
            },
            accumulate: self.accumulate as u32,
            operands: match s.layout {
                Layout::ABt => 0,
                Layout::AB => 1,
                Layout::AtB => 2,
            },
        };
        let groups = [
            s.cols.div_ceil(MATMUL_TILE),
            s.rows.div_ceil(MATMUL_TILE),
            s.groups,
        ]
        .map(|v| v as u32);
        vec![Dispatch::new(
            &MATMUL,
            &[self.a.raw(), self.w.raw(), self.c.raw()],
            params,
            groups,
        )]
    }
}

struct Reduction {
    src: Buf<f32>,
    out: Buf<f32>,
    out_offset: usize,
    reduce: Reduce,
}

impl Op for Reduction {
    fn name(&self) -> &'static str {
        "reduce"
    }

    fn check(&self) {
        let r = &self.reduce;
        check_range(self.src.raw(), 0, r.rows * r.cols, "reduce src");
        check_range(self.out.raw(), self.out_offset, r.out_len(), "reduce out");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut out = mem.take(self.out);
        let r = self.reduce;
        cpu::reduce(
            &mem.get(self.src)[..r.rows * r.cols],
            &mut out[self.out_offset..self.out_offset + r.out_len()],
            r,
        );
        mem.put(out);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let r = self.reduce;
        if r.out_len() == 0 {
            return Vec::new();
        }
        let params = ReduceParams {
            rows: r.rows as u32,
            cols: r.cols as u32,
            op: match r.op {
                ReduceOp::Sum => 0,
                ReduceOp::MaxAbs => 1,
                ReduceOp::SumSquares => 2,
            },
            out_offset: self.out_offset as u32,
            scale: r.scale,
        };
        let (kernel, groups) = match r.axis {
            Axis::Rows => (&REDUCE_ROWS, spread(r.rows, limits)),
            Axis::Cols => (
                &REDUCE_COLS,
                spread(r.cols.div_ceil(REDUCE_COLS_PER_GROUP), limits),
            ),
        };
        vec![Dispatch::new(
            kernel,
            &[self.src.raw(), self.out.raw()],
            params,
            groups,
        )]
    }
}
