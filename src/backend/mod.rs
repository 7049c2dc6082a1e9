//! The `Backend` trait: buffers of f32 and the ops every model is written against.
//! Two implementations: `cpu` (a fast multithreaded fallback that is also the reference the GPU is
//! checked against) and `gpu` (wgpu compute shaders). Models never see which one they run on.

pub mod cpu;
pub mod gpu;
pub mod noise;
pub mod select;

pub use noise::gaussian_noise;

use crate::error::DaleError;

/// A buffer of `len` f32 values owned by a backend. Small and `Copy`, as in vello's recordings;
/// the label names the buffer in errors and GPU validation messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Buf {
    pub id: u32,
    pub len: usize,
    pub label: &'static str,
}

/// Firing-rate nonlinearity phi of the rate network (001 eq. 1). Linear and ReLU are homogeneous,
/// which the task-preserving transformation (Prop. 1) needs; tanh is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phi {
    Linear,
    Relu,
    Tanh,
}

impl Phi {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Phi::Linear => x,
            Phi::Relu => x.max(0.0),
            Phi::Tanh => x.tanh(),
        }
    }
    /// The code the kernels switch on (rate.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Phi::Linear => 0,
            Phi::Relu => 1,
            Phi::Tanh => 2,
        }
    }
}

/// Shape of a batched product C = A W^T, done `groups` times with independent operands:
/// c[g, r, k] (+)= sum_n a[g, r, n] * w[g, k, n].
/// W is stored row-major as [cols, inner], the way J (post x pre), W_in (N x M) and W_out (K x N)
/// are written in the papers, so every product of the rate network is this one op. A group is one
/// network; rows are the trials that share it. `shared_w` uses one W for every group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    pub groups: usize,
    pub rows: usize,
    pub inner: usize,
    pub cols: usize,
    pub shared_w: bool,
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

/// One forward-Euler step of tau dx/dt = -x + drive (+ sigma xi), then r = phi(x), over `len`
/// state values. `drive` already holds J phi(x) + W_in u for this step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EulerStep {
    pub len: usize,
    /// dt / tau.
    pub leak: f32,
    pub phi: Phi,
    /// Standard deviation of the noise added to x in one step: sigma sqrt(dt) / tau for white
    /// noise of amplitude sigma in tau dx/dt. Zero switches noise off.
    pub noise_std: f32,
    pub seed: u64,
    /// Global step index: the noise counter, so that chunking never changes the stream.
    pub step: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    /// max |v|; any NaN or Inf gives +Inf, so that divergence can be read from one number.
    MaxAbs,
}

impl ReduceOp {
    pub fn code(self) -> u32 {
        match self {
            ReduceOp::Sum => 0,
            ReduceOp::MaxAbs => 1,
        }
    }
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

/// What a backend is, for `dale devices`, logs and manifest.json.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackendInfo {
    /// "cpu" or the wgpu backend ("vulkan", "metal", "dx12", "gl").
    pub kind: String,
    pub name: String,
    pub device_type: String,
    pub driver: String,
    /// Largest number of f32 values one buffer may hold on this backend.
    pub max_buffer_len: usize,
}

/// Buffers and ops. Ops are recorded, not necessarily run: the GPU backend batches them into one
/// submission and runs them at `download` or `finish`. Offsets and lengths are in f32 values.
/// Buffer bounds are checked when an op is recorded: a bad bound is a bug in dale and panics.
pub trait Backend {
    fn info(&self) -> BackendInfo;
    fn alloc(&mut self, label: &'static str, len: usize) -> Result<Buf, DaleError>;
    fn upload(&mut self, dst: Buf, offset: usize, data: &[f32]) -> Result<(), DaleError>;
    fn download(&mut self, src: Buf, offset: usize, len: usize) -> Result<Vec<f32>, DaleError>;
    fn copy(&mut self, src: Buf, src_offset: usize, dst: Buf, dst_offset: usize, len: usize);
    /// c = a W^T (or c += a W^T with `accumulate`); `a` starts at `a_offset`.
    fn matmul(&mut self, a: Buf, a_offset: usize, w: Buf, c: Buf, shape: MatmulShape, accumulate: bool);
    /// x <- x + leak (-x + drive) + noise;  r <- phi(x).
    fn euler_step(&mut self, x: Buf, r: Buf, drive: Buf, step: EulerStep);
    /// out[out_offset + i] = scale * reduce(...) as `Reduce` describes.
    fn reduce(&mut self, src: Buf, out: Buf, out_offset: usize, reduce: Reduce);
    /// Runs everything recorded and waits for it.
    fn finish(&mut self) -> Result<(), DaleError>;
}

pub(crate) fn check_range(buf: Buf, offset: usize, len: usize, op: &str) {
    assert!(
        offset + len <= buf.len,
        "{op}: range {offset}..{} is outside buffer '{}' of {} values",
        offset + len,
        buf.label,
        buf.len
    );
}
