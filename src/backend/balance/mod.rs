//! Synaptic balancing (paper 001) over `groups` independent networks of n neurons: costs
//! (eq. 23), each neuron's incoming and outgoing costs at h (eq. 14, 17), the update of h (the
//! flow, or a half Osborne step), and the task-preserving transformation (eq. 4).
//! Kernels: shaders/balance.wgsl; CPU twins: cpu.rs.

mod cpu;

pub use cpu::power;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = (
    "balance.wgsl",
    include_str!("../../../shaders/balance.wgsl"),
);
/// Threads of a 1-D workgroup.
const WG: usize = 256;
/// Rows of c0 one cost_flows_bands workgroup reads.
const BAND: usize = 32;

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

/// Synaptic costs c[g, i, j] = alpha_ij |w[g, i, j] weight_scale|^p of `groups` [rows, cols]
/// matrices. `weight_scale` is a power of two (exact): 1, or what brings the largest weight to
/// (1/2, 1] where |w|^p would leave f32 (`Networks::weight_scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    pub groups: usize,
    pub rows: usize,
    pub cols: usize,
    pub p: f32,
    pub alpha: Alpha,
    pub weight_scale: f32,
    /// Log space: c = ln alpha + p ln|w weight_scale| (LOG_ZERO where w = 0 or alpha = 0), for
    /// costs that no scaling keeps within f32.
    pub log: bool,
}

/// ln 0 in log space: finite, so that sums with it stay far below every cost and its
/// exponential is 0. As balance.wgsl has it.
pub const LOG_ZERO: f32 = -3.0e38;

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
    /// Log space (sum aggregate): c0 holds ln c0, `scale` holds u = p h, and the flows are
    /// ln in_k = ln sum_{j != k} e^(ln c0_kj + u_j - u_k) and ln out_k likewise, each summed about
    /// its largest term (two passes over c0).
    pub log: bool,
}

impl CostFlows {
    /// Values of the workspace the op overwrites with per-band partial totals.
    pub fn partials_len(&self) -> usize {
        self.groups * (self.n.div_ceil(BAND) + 1) * self.n
    }
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
    /// With an anchor, the balanced point on sum h = 0 has every moving neuron's g_k equal to the
    /// multiplier nu of that constraint; the step then solves g_k = nu along h_k instead, with nu
    /// the mean g of the moving neurons before the step (the two agree when nu = 0), and the
    /// recentring restores sum h = 0.
    Osborne,
}

/// One update of h for `groups` networks of n neurons, from `flows` as `CostFlows` writes them:
/// h += step; h -= mean(h) (the flow conserves sum h = 0, eq. 22; the Osborne step is recentred
/// to the same manifold point); s = e^(p h). Before the update it records, per network, the
/// squared norm of the neural gradients g = in - out and the total off-diagonal cost sum_k in_k:
///   history[history_offset + 2 g] = ||g||^2,  history[history_offset + 2 g + 1] = sum_k in_k.
/// With an `anchor`, that neuron is held at h = 0 (it takes no step), the others are recentred
/// to sum h = 0 among themselves, and ||g||^2 is that of g projected on that manifold,
/// sum (g_k - mean g)^2 over the others: the projected flow of a cost that an anchored node
/// (the world of the readout-aware cost) makes depend on the overall scale of h.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HUpdate {
    pub groups: usize,
    pub n: usize,
    pub p: f32,
    pub step: HStep,
    pub history_offset: usize,
    pub anchor: Option<usize>,
    /// Log space (Osborne steps, no anchor): `flows` hold ln in_k and ln out_k, h_k moves by
    /// (ln in_k - ln out_k) / (4 p) (none where a side is LOG_ZERO), the scale gets u = p h, and
    /// the history gets ln ||g||^2 and ln sum_k in_k.
    pub log: bool,
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

/// weights <- pi_h(weights) for `groups` networks of n neurons; h is [groups, n].
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

/// The balancing ops, on any backend.
pub trait BalanceOps: Backend {
    /// c <- alpha |c|^p in place, as `Costs` describes: the weights in, their costs out, so that
    /// a 1 GiB J and its costs need no second GiB. `alpha` is not read for `Alpha::One`.
    fn costs(&mut self, c: Buf<f32>, alpha: Buf<f32>, spec: Costs) {
        self.run(&CostsOp { c, alpha, spec })
    }

    /// Incoming and outgoing costs of every neuron at h, as `CostFlows` describes; `partials`
    /// (`spec.partials_len()` values) is the op's workspace.
    fn cost_flows(
        &mut self,
        c0: Buf<f32>,
        scale: Buf<f32>,
        flows: Buf<f32>,
        partials: Buf<f32>,
        spec: CostFlows,
    ) {
        self.run(&CostFlowsOp {
            c0,
            scale,
            flows,
            partials,
            spec,
        })
    }

    /// One update of h and s = e^(p h), as `HUpdate` describes.
    fn h_update(
        &mut self,
        flows: Buf<f32>,
        h: Buf<f32>,
        scale: Buf<f32>,
        history: Buf<f32>,
        spec: HUpdate,
    ) {
        self.run(&HUpdateOp {
            flows,
            h,
            scale,
            history,
            spec,
        })
    }

    /// weights <- pi_h(weights) (001 eq. 4), in place, as `TaskTransform` describes.
    fn task_transform(&mut self, weights: Buf<f32>, h: Buf<f32>, spec: TaskTransform) {
        self.run(&TaskTransformOp { weights, h, spec })
    }
}

impl<B: Backend + ?Sized> BalanceOps for B {}

params! {
    pub struct CostsParams {
        pub groups: u32,
        pub rows: u32,
        pub cols: u32,
        /// 0 alpha = 1, 1 one alpha per column, 2 a full matrix.
        pub alpha: u32,
        /// 1: one alpha for every network.
        pub alpha_shared: u32,
        pub p: f32,
        pub weight_scale: f32,
        /// 1: ln c.
        pub log: u32,
    }
}

params! {
    pub struct CostFlowsParams {
        pub groups: u32,
        pub n: u32,
        /// 0 sum, 1 max.
        pub aggregate: u32,
        /// 0 linear, 1 log space largest values, 2 log space sums.
        pub mode: u32,
    }
}

params! {
    pub struct HUpdateParams {
        pub groups: u32,
        pub n: u32,
        pub p: f32,
        /// 0 flow, 1 Osborne.
        pub step: u32,
        /// The flow's step.
        pub dt: f32,
        pub history_offset: u32,
        /// The neuron held at h = 0; n or more: none.
        pub anchor: u32,
        /// 1: log space.
        pub log: u32,
    }
}

params! {
    pub struct TaskTransformParams {
        pub groups: u32,
        pub rows: u32,
        pub cols: u32,
        pub n: u32,
        /// 0 J, 1 W_in, 2 W_out.
        pub weights: u32,
    }
}

pub static COSTS: Kernel = Kernel::new::<CostsParams>(
    WGSL,
    "costs",
    &[Binding::read::<f32>("alpha"), Binding::write::<f32>("c")],
);
pub static COST_FLOWS_BANDS: Kernel = Kernel::new::<CostFlowsParams>(
    WGSL,
    "cost_flows_bands",
    &[
        Binding::read::<f32>("c0"),
        Binding::read::<f32>("scale"),
        Binding::write::<f32>("partials"),
        Binding::read::<f32>("largest"),
    ],
);
pub static COST_FLOWS_FINISH: Kernel = Kernel::new::<CostFlowsParams>(
    WGSL,
    "cost_flows_finish",
    &[
        Binding::read::<f32>("partials"),
        Binding::read::<f32>("scale"),
        Binding::write::<f32>("flows"),
    ],
);
pub static H_UPDATE: Kernel = Kernel::new::<HUpdateParams>(
    WGSL,
    "h_update",
    &[
        Binding::read::<f32>("flows"),
        Binding::write::<f32>("h"),
        Binding::write::<f32>("scale"),
        Binding::write::<f32>("history"),
    ],
);
pub static TASK_TRANSFORM: Kernel = Kernel::new::<TaskTransformParams>(
    WGSL,
    "task_transform",
    &[Binding::read::<f32>("h"), Binding::write::<f32>("weights")],
);

pub static KERNELS: &[&Kernel] = &[
    &COSTS,
    &COST_FLOWS_BANDS,
    &COST_FLOWS_FINISH,
    &H_UPDATE,
    &TASK_TRANSFORM,
];

struct CostsOp {
    c: Buf<f32>,
    alpha: Buf<f32>,
    spec: Costs,
}

impl Op for CostsOp {
    fn name(&self) -> &'static str {
        "costs"
    }

    fn check(&self) {
        let s = &self.spec;
        check_range(self.alpha.raw(), 0, s.alpha_len(), "costs alpha");
        check_range(self.c.raw(), 0, s.len(), "costs c");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut c = mem.take(self.c);
        cpu::costs(&mut c, mem.get(self.alpha), self.spec);
        mem.put(c);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.is_empty() {
            return Vec::new();
        }
        let (alpha, shared) = match s.alpha {
            Alpha::One => (0, false),
            Alpha::PerColumn { shared } => (1, shared),
            Alpha::Full { shared } => (2, shared),
        };
        let params = CostsParams {
            groups: s.groups as u32,
            rows: s.rows as u32,
            cols: s.cols as u32,
            alpha,
            alpha_shared: shared as u32,
            p: s.p,
            weight_scale: s.weight_scale,
            log: s.log as u32,
        };
        vec![Dispatch::new(
            &COSTS,
            &[self.alpha.raw(), self.c.raw()],
            params,
            spread(s.len().div_ceil(WG), limits),
        )]
    }
}

struct CostFlowsOp {
    c0: Buf<f32>,
    scale: Buf<f32>,
    flows: Buf<f32>,
    partials: Buf<f32>,
    spec: CostFlows,
}

impl Op for CostFlowsOp {
    fn name(&self) -> &'static str {
        "cost_flows"
    }

    fn check(&self) {
        let (g, n) = (self.spec.groups, self.spec.n);
        assert!(
            !self.spec.log || self.spec.aggregate == Aggregate::Sum,
            "cost_flows: log space sums costs"
        );
        check_range(self.c0.raw(), 0, g * n * n, "cost_flows c0");
        check_range(self.scale.raw(), 0, g * n, "cost_flows scale");
        check_range(self.flows.raw(), 0, g * 2 * n, "cost_flows flows");
        check_range(
            self.partials.raw(),
            0,
            self.spec.partials_len(),
            "cost_flows partials",
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut flows, mut partials) = (mem.take(self.flows), mem.take(self.partials));
        cpu::cost_flows(
            mem.get(self.c0),
            mem.get(self.scale),
            &mut flows,
            &mut partials,
            self.spec,
        );
        mem.put(partials);
        mem.put(flows);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let CostFlows {
            groups,
            n,
            aggregate,
            log,
        } = self.spec;
        if groups * n == 0 {
            return Vec::new();
        }
        let bands = n.div_ceil(BAND);
        let max = limits.max_workgroups_per_dimension as usize;
        assert!(
            bands <= max && groups <= max,
            "cost_flows: {bands} bands x {groups} networks exceed this adapter's {max} workgroups per dimension"
        );
        let (c0, scale, flows, partials) = (
            self.c0.raw(),
            self.scale.raw(),
            self.flows.raw(),
            self.partials.raw(),
        );
        // One pass, or in log space two: the largest values (into flows), then the sums about
        // them.
        let modes: &[u32] = if log { &[1, 2] } else { &[0] };
        modes
            .iter()
            .flat_map(|&mode| {
                let params = CostFlowsParams {
                    groups: groups as u32,
                    n: n as u32,
                    aggregate: match aggregate {
                        Aggregate::Sum => 0,
                        Aggregate::Max => 1,
                    },
                    mode,
                };
                [
                    Dispatch::new(
                        &COST_FLOWS_BANDS,
                        &[c0, scale, partials, flows],
                        params,
                        [bands as u32, groups as u32, 1],
                    ),
                    Dispatch::new(
                        &COST_FLOWS_FINISH,
                        &[partials, scale, flows],
                        params,
                        spread((groups * n).div_ceil(WG), limits),
                    ),
                ]
            })
            .collect()
    }
}

struct HUpdateOp {
    flows: Buf<f32>,
    h: Buf<f32>,
    scale: Buf<f32>,
    history: Buf<f32>,
    spec: HUpdate,
}

impl Op for HUpdateOp {
    fn name(&self) -> &'static str {
        "h_update"
    }

    fn check(&self) {
        let s = &self.spec;
        let (g, n) = (s.groups, s.n);
        check_range(self.flows.raw(), 0, g * 2 * n, "h_update flows");
        check_range(self.h.raw(), 0, g * n, "h_update h");
        check_range(self.scale.raw(), 0, g * n, "h_update scale");
        check_range(
            self.history.raw(),
            s.history_offset,
            2 * g,
            "h_update history",
        );
        assert!(
            s.anchor.is_none_or(|a| a < n),
            "h_update: anchor outside the network"
        );
        assert!(
            !s.log || (s.anchor.is_none() && s.step == HStep::Osborne),
            "h_update: log space takes Osborne steps without an anchor"
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut h, mut scale, mut history) = (
            mem.take(self.h),
            mem.take(self.scale),
            mem.take(self.history),
        );
        cpu::h_update(
            mem.get(self.flows),
            &mut h,
            &mut scale,
            &mut history,
            self.spec,
        );
        mem.put(history);
        mem.put(scale);
        mem.put(h);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.groups * s.n == 0 {
            return Vec::new();
        }
        let (step, dt) = match s.step {
            HStep::Flow { dt } => (0, dt),
            HStep::Osborne => (1, 0.0),
        };
        let params = HUpdateParams {
            groups: s.groups as u32,
            n: s.n as u32,
            p: s.p,
            step,
            dt,
            history_offset: s.history_offset as u32,
            anchor: s.anchor.map_or(u32::MAX, |a| a as u32),
            log: s.log as u32,
        };
        let bufs = [self.flows, self.h, self.scale, self.history].map(Buf::raw);
        vec![Dispatch::new(
            &H_UPDATE,
            &bufs,
            params,
            spread(s.groups, limits),
        )]
    }
}

struct TaskTransformOp {
    weights: Buf<f32>,
    h: Buf<f32>,
    spec: TaskTransform,
}

impl Op for TaskTransformOp {
    fn name(&self) -> &'static str {
        "task_transform"
    }

    fn check(&self) {
        let s = &self.spec;
        check_range(self.weights.raw(), 0, s.len(), "task_transform weights");
        check_range(self.h.raw(), 0, s.groups * s.n, "task_transform h");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut weights = mem.take(self.weights);
        cpu::task_transform(&mut weights, mem.get(self.h), self.spec);
        mem.put(weights);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.is_empty() {
            return Vec::new();
        }
        let (rows, cols) = s.rows_cols();
        let params = TaskTransformParams {
            groups: s.groups as u32,
            rows: rows as u32,
            cols: cols as u32,
            n: s.n as u32,
            weights: match s.weights {
                Weights::Recurrent => 0,
                Weights::Input { .. } => 1,
                Weights::Output { .. } => 2,
            },
        };
        vec![Dispatch::new(
            &TASK_TRANSFORM,
            &[self.h.raw(), self.weights.raw()],
            params,
            spread(s.len().div_ceil(WG), limits),
        )]
    }
}
