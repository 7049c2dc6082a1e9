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

impl Layout {
    pub fn code(self) -> u32 {
        match self {
            Layout::ABt => 0,
            Layout::AB => 1,
            Layout::AtB => 2,
        }
    }
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
    /// sum v^2 (a loss, a squared norm).
    SumSquares,
}

impl ReduceOp {
    pub fn code(self) -> u32 {
        match self {
            ReduceOp::Sum => 0,
            ReduceOp::MaxAbs => 1,
            ReduceOp::SumSquares => 2,
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

/// One step of the rate network's backward pass through time: the adjoint of `EulerStep`
/// (without noise). With back = delta_{t+1} J (a matmul, layout AB) and readout = the output
/// error's share e_t W_out:
///   delta[out + i] = (1 - leak) delta[next + i] + leak phi'(x[x + i]) back[i] + readout[readout + i]
/// for i < len. Offsets are in values, into the buffers that hold every time step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EulerBackward {
    pub len: usize,
    pub leak: f32,
    pub phi: Phi,
    pub next: usize,
    pub out: usize,
    pub x: usize,
    pub readout: usize,
}

/// Gradient descent on loss + l2 sum w^2 over w[offset..offset + len]:
/// w -= lr (grad_scale grad + 2 l2 w). `grad_scale` carries a factor the gradient's product left
/// out (dt / tau for the recurrent and input weights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub offset: usize,
    pub len: usize,
    pub lr: f32,
    pub grad_scale: f32,
    pub l2: f32,
}

/// Where the cost weights alpha of c_ij = alpha_ij |J_ij|^p (001 eq. 23) come from.
/// `shared`: one alpha for every network of the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpha {
    /// alpha_ij = 1: plain l_p costs.
    One,
    /// alpha_ij = a_j, one value per presynaptic neuron, such as the gain moment sigma_j^2 of the
    /// robustness cost (eq. 13).
    PerColumn { shared: bool },
    /// A full [rows, cols] matrix.
    Full { shared: bool },
}

/// Synaptic costs c[g, i, j] = alpha_ij |w[g, i, j]|^p of `groups` [rows, cols] matrices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    pub groups: usize,
    pub rows: usize,
    pub cols: usize,
    pub p: f32,
    pub alpha: Alpha,
}

impl Costs {
    pub fn len(&self) -> usize {
        self.groups * self.rows * self.cols
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn alpha_len(&self) -> usize {
        let per = |shared: bool, one: usize| if shared { one } else { self.groups * one };
        match self.alpha {
            Alpha::One => 0,
            Alpha::PerColumn { shared } => per(shared, self.cols),
            Alpha::Full { shared } => per(shared, self.rows * self.cols),
        }
    }
}

/// How a neuron totals the costs of its incoming and of its outgoing synapses: the choice of
/// neural gradient of the generalised Lax dynamics (001 section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Sums: g_k = sum_j c_kj - sum_i c_ik, gradient descent on the total cost (eq. 17).
    Sum,
    /// Largest: g_k = max_j c_kj - max_i c_ik; with c = |J| this balances each neuron's largest
    /// incoming and outgoing weight (max-balancing, the paper's ref. 40).
    Max,
}

impl Aggregate {
    pub fn code(self) -> u32 {
        match self {
            Aggregate::Sum => 0,
            Aggregate::Max => 1,
        }
    }
}

/// The incoming and outgoing costs of every neuron of `groups` networks of n neurons, read from
/// the initial costs c0 and the scale s = e^(p h) of the task-preserving transformation, without
/// writing the costs at h: c_ij(h) = c0_ij e^(p (h_j - h_i)) = c0_ij s_j / s_i (eq. 14), so
///   flows[g, k]     = agg_{j != k} c0[g, k, j] s_j / s_k   (incoming cost of k, row k)
///   flows[g, n + k] = agg_{i != k} c0[g, i, k] s_k / s_i   (outgoing cost of k, column k)
/// in one pass over c0 (no transposed copy). Self-synapses are left out: e^(h_k - h_k) = 1 keeps
/// them fixed, and in the sums they would enter both sides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostFlows {
    pub groups: usize,
    pub n: usize,
    pub aggregate: Aggregate,
}

/// How one update moves h, given each neuron's incoming and outgoing costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HStep {
    /// Forward Euler on the balancing flow dh/dt = g (eq. 15-17, with gamma p = 1):
    /// h_k += dt (in_k - out_k).
    Flow { dt: f32 },
    /// Half a parallel Osborne step for power-law costs: h_k += ln(in_k / out_k) / (4 p), half of
    /// the exact minimiser of the total cost along h_k alone. Every term c0_ij e^(p (h_j - h_i))
    /// depends on two coordinates, so by convexity the half step of all k at once lowers the total
    /// cost by at least half the sum of the single-coordinate decreases: it never increases and
    /// stops only at g = 0. A full parallel step can oscillate (two neurons: it swaps h1 and h2).
    Osborne,
}

/// One update of h for `groups` networks of n neurons, from `flows` as `CostFlows` writes them:
/// h += step; h -= mean(h) (the flow conserves sum h = 0, eq. 22; the Osborne step is recentred
/// to the same manifold point); s = e^(p h). Before the update it records, per network, the
/// squared norm of the neural gradients g = in - out and the total off-diagonal cost sum_k in_k:
///   history[history_offset + 2 g] = ||g||^2,  history[history_offset + 2 g + 1] = sum_k in_k.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HUpdate {
    pub groups: usize,
    pub n: usize,
    pub p: f32,
    pub step: HStep,
    pub history_offset: usize,
}

/// Which weights the task-preserving transformation pi_h (001 eq. 4) rescales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// J [n, n] -> e^-H J e^H: J_ij e^(h_j - h_i).
    Recurrent,
    /// W_in [n, m] -> e^-H W_in: W_ik e^(-h_i).
    Input { m: usize },
    /// W_out [k, n] -> W_out e^H: W_kj e^(h_j).
    Output { k: usize },
}

/// dst = pi_h(src) for `groups` networks of n neurons; h is [groups, n].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskTransform {
    pub groups: usize,
    pub n: usize,
    pub weights: Weights,
}

impl TaskTransform {
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.weights {
            Weights::Recurrent => (self.n, self.n),
            Weights::Input { m } => (self.n, m),
            Weights::Output { k } => (k, self.n),
        }
    }
    pub fn len(&self) -> usize {
        let (r, c) = self.rows_cols();
        self.groups * r * c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    /// A new buffer holding `data`.
    fn alloc_from(&mut self, label: &'static str, data: &[f32]) -> Result<Buf, DaleError> {
        let buf = self.alloc(label, data.len())?;
        self.upload(buf, 0, data)?;
        Ok(buf)
    }
    fn download(&mut self, src: Buf, offset: usize, len: usize) -> Result<Vec<f32>, DaleError>;
    fn copy(&mut self, src: Buf, src_offset: usize, dst: Buf, dst_offset: usize, len: usize);
    /// c = op(a) op(W) as `shape.layout` says (c += with `accumulate`); `a` starts at `a_offset`.
    fn matmul(
        &mut self,
        a: Buf,
        a_offset: usize,
        w: Buf,
        c: Buf,
        shape: MatmulShape,
        accumulate: bool,
    );
    /// x <- x + leak (-x + drive) + noise;  r <- phi(x).
    fn euler_step(&mut self, x: Buf, r: Buf, drive: Buf, step: EulerStep);
    /// out[out_offset + i] = scale * reduce(...) as `Reduce` describes.
    fn reduce(&mut self, src: Buf, out: Buf, out_offset: usize, reduce: Reduce);
    /// The adjoint of one Euler step, as `EulerBackward` describes.
    fn euler_backward(&mut self, delta: Buf, back: Buf, x: Buf, readout: Buf, spec: EulerBackward);
    /// out = scale (a - b) over the first `len` values.
    fn scaled_difference(&mut self, a: Buf, b: Buf, out: Buf, len: usize, scale: f32);
    /// One gradient-descent step, as `SgdStep` describes.
    fn sgd_step(&mut self, w: Buf, grad: Buf, spec: SgdStep);
    /// c = alpha |w|^p, as `Costs` describes; `alpha` is not read for `Alpha::One`.
    fn costs(&mut self, w: Buf, alpha: Buf, c: Buf, spec: Costs);
    /// Incoming and outgoing costs of every neuron at h, as `CostFlows` describes.
    fn cost_flows(&mut self, c0: Buf, scale: Buf, flows: Buf, spec: CostFlows);
    /// One update of h and s = e^(p h), as `HUpdate` describes.
    fn h_update(&mut self, flows: Buf, h: Buf, scale: Buf, history: Buf, spec: HUpdate);
    /// dst = pi_h(src) (001 eq. 4), as `TaskTransform` describes.
    fn task_transform(&mut self, src: Buf, h: Buf, dst: Buf, spec: TaskTransform);
    /// Runs everything recorded and waits for it.
    fn finish(&mut self) -> Result<(), DaleError>;
}

// The bounds of every op, checked when it is recorded, the same on both backends. A bad bound is
// a bug in dale and panics, naming the op and the buffer.

impl MatmulShape {
    pub(crate) fn check(&self, a: Buf, a_offset: usize, w: Buf, c: Buf) {
        check_range(a, a_offset, self.a_len(), "matmul a");
        check_range(w, 0, self.w_len(), "matmul w");
        check_range(c, 0, self.c_len(), "matmul c");
    }
}

impl EulerStep {
    pub(crate) fn check(&self, x: Buf, r: Buf, drive: Buf) {
        for b in [x, r, drive] {
            check_range(b, 0, self.len, "euler_step");
        }
        assert_ne!(x.id, r.id, "euler_step: x and r must differ");
    }
}

impl Reduce {
    pub(crate) fn check(&self, src: Buf, out: Buf, out_offset: usize) {
        check_range(src, 0, self.rows * self.cols, "reduce src");
        check_range(out, out_offset, self.out_len(), "reduce out");
    }
}

impl EulerBackward {
    pub(crate) fn check(&self, delta: Buf, back: Buf, x: Buf, readout: Buf) {
        check_range(delta, self.next, self.len, "euler_backward delta (next)");
        check_range(delta, self.out, self.len, "euler_backward delta (out)");
        check_range(back, 0, self.len, "euler_backward back");
        check_range(x, self.x, self.len, "euler_backward x");
        check_range(readout, self.readout, self.len, "euler_backward readout");
        assert!(
            self.out + self.len <= self.next || self.next + self.len <= self.out,
            "euler_backward: delta ranges overlap"
        );
    }
}

impl SgdStep {
    pub(crate) fn check(&self, w: Buf, grad: Buf) {
        check_range(w, self.offset, self.len, "sgd_step w");
        check_range(grad, self.offset, self.len, "sgd_step grad");
    }
}

impl Costs {
    pub(crate) fn check(&self, w: Buf, alpha: Buf, c: Buf) {
        check_range(w, 0, self.len(), "costs w");
        check_range(alpha, 0, self.alpha_len(), "costs alpha");
        check_range(c, 0, self.len(), "costs c");
    }
}

impl CostFlows {
    pub(crate) fn check(&self, c0: Buf, scale: Buf, flows: Buf) {
        let (g, n) = (self.groups, self.n);
        check_range(c0, 0, g * n * n, "cost_flows c0");
        check_range(scale, 0, g * n, "cost_flows scale");
        check_range(flows, 0, g * 2 * n, "cost_flows flows");
    }
}

impl HUpdate {
    pub(crate) fn check(&self, flows: Buf, h: Buf, scale: Buf, history: Buf) {
        let (g, n) = (self.groups, self.n);
        check_range(flows, 0, g * 2 * n, "h_update flows");
        check_range(h, 0, g * n, "h_update h");
        check_range(scale, 0, g * n, "h_update scale");
        check_range(history, self.history_offset, 2 * g, "h_update history");
        assert!(
            h.id != scale.id && h.id != history.id && scale.id != history.id,
            "h_update: h, scale and history must differ"
        );
    }
}

impl TaskTransform {
    pub(crate) fn check(&self, src: Buf, h: Buf, dst: Buf) {
        check_range(src, 0, self.len(), "task_transform src");
        check_range(h, 0, self.groups * self.n, "task_transform h");
        check_range(dst, 0, self.len(), "task_transform dst");
    }
}

/// The bounds of `Backend::scaled_difference`.
pub(crate) fn check_difference(a: Buf, b: Buf, out: Buf, len: usize) {
    for buf in [a, b, out] {
        check_range(buf, 0, len, "scaled_difference");
    }
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
