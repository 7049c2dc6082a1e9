//! Perceptrons trained by logistic SGD (paper 003, eq. 7 with the trainable norm beta of its
//! Table 1), many independent problems at once: the fields of a window of patterns, the SGD step
//! on them, and the margins of all patterns. Kernels: shaders/perceptron.wgsl; CPU twins: cpu.rs.

mod cpu;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = (
    "perceptron.wgsl",
    include_str!("../../../shaders/perceptron.wgsl"),
);
/// Threads of a workgroup.
const WG: usize = 256;

/// `problems` perceptrons of n weights (w [problems, n]), each with its own `patterns` patterns
/// xi [problems, patterns, n] and labels zeta = +-1 [problems, patterns], or one set shared by
/// all (xi [patterns, n], labels [patterns]) when `shared_patterns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perceptrons {
    pub problems: usize,
    pub n: usize,
    pub patterns: usize,
    pub shared_patterns: bool,
}

impl Perceptrons {
    pub fn weights_len(&self) -> usize {
        self.problems * self.n
    }

    pub fn labels_len(&self) -> usize {
        match self.shared_patterns {
            true => self.patterns,
            false => self.problems * self.patterns,
        }
    }

    pub fn patterns_len(&self) -> usize {
        self.labels_len() * self.n
    }

    /// Index of pattern mu's label for problem b (its row of xi starts n times further).
    pub fn pattern(&self, b: usize, mu: usize) -> usize {
        match self.shared_patterns {
            true => mu,
            false => b * self.patterns + mu,
        }
    }
}

/// The patterns (first + k) mod patterns, k < count: one mini-batch, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub first: usize,
    pub count: usize,
}

impl Window {
    pub fn pattern(&self, k: usize, patterns: usize) -> usize {
        (self.first + k) % patterns
    }
}

/// Learning rates of the SGD step: eta_1 for the weights, and the norm beta's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub weights: f32,
    pub beta: f32,
}

/// The perceptron ops, on any backend.
pub trait PerceptronOps: Backend {
    /// h[b, k] = w_b . xi_b^mu for the window's pattern mu = (first + k) mod patterns;
    /// h is [problems, window.count].
    fn fields(
        &mut self,
        xi: Buf<f32>,
        w: Buf<f32>,
        h: Buf<f32>,
        spec: Perceptrons,
        window: Window,
    ) {
        self.run(&Fields {
            xi,
            w,
            h,
            spec,
            window,
        })
    }

    /// One step of logistic SGD on the window, whose fields `fields` left in h: with
    /// e = sigmoid(beta h) - y, y = (1 + zeta) / 2,
    ///   w_i  <- w_i  - rates.weights sum_k xi_i^k e_k   (eq. 7)
    ///   beta <- beta - rates.beta    sum_k h_k e_k      (the gradient of the same loss in beta)
    /// h holds e afterwards.
    #[allow(clippy::too_many_arguments)]
    fn logistic_step(
        &mut self,
        xi: Buf<f32>,
        labels: Buf<f32>,
        h: Buf<f32>,
        w: Buf<f32>,
        beta: Buf<f32>,
        spec: Perceptrons,
        window: Window,
        rates: Rates,
    ) {
        self.run(&LogisticStep {
            xi,
            labels,
            h,
            w,
            beta,
            spec,
            window,
            rates,
        })
    }

    /// From h = the fields of all patterns (window 0, patterns): stats[b] = (the smallest margin
    /// zeta^mu h^mu / ||w_b|| over mu, the number of patterns with zeta^mu h^mu <= 0 or NaN, on
    /// neither side). A problem is
    /// separable at margin kappa when the first is at least kappa (and kappa > 0, or the second is 0).
    fn margin_stats(
        &mut self,
        h: Buf<f32>,
        labels: Buf<f32>,
        w: Buf<f32>,
        stats: Buf<f32>,
        spec: Perceptrons,
    ) {
        self.run(&MarginStats {
            h,
            labels,
            w,
            stats,
            spec,
        })
    }

    /// The sign constraint (section 5.1's sign-constrained student): w_i = 0 where w_i has the
    /// opposite sign to signs_i = +-1, the projection onto the weights of the right signs;
    /// signs_i = 0 leaves w_i free. signs is [problems, n].
    fn hold_signs(&mut self, signs: Buf<f32>, w: Buf<f32>, spec: Perceptrons) {
        self.run(&HoldSigns { signs, w, spec })
    }
}

impl<B: Backend + ?Sized> PerceptronOps for B {}

params! {
    pub struct PerceptronParams {
        pub problems: u32,
        pub n: u32,
        pub patterns: u32,
        pub shared_patterns: u32,
        pub first: u32,
        pub count: u32,
        pub rate_weights: f32,
        pub rate_beta: f32,
    }
}

impl PerceptronParams {
    fn new(spec: Perceptrons, window: Window, rates: Rates) -> Self {
        PerceptronParams {
            problems: spec.problems as u32,
            n: spec.n as u32,
            patterns: spec.patterns as u32,
            shared_patterns: spec.shared_patterns as u32,
            first: window.first as u32,
            count: window.count as u32,
            rate_weights: rates.weights,
            rate_beta: rates.beta,
        }
    }
}

pub static FIELDS: Kernel = Kernel::new::<PerceptronParams>(
    WGSL,
    "fields",
    &[
        Binding::read::<f32>("xi"),
        Binding::read::<f32>("w"),
        Binding::write::<f32>("h"),
    ],
);
pub static LOGISTIC_ERRORS: Kernel = Kernel::new::<PerceptronParams>(
    WGSL,
    "logistic_errors",
    &[
        Binding::read::<f32>("labels"),
        Binding::write::<f32>("h"),
        Binding::write::<f32>("beta"),
    ],
);
pub static WEIGHT_STEP: Kernel = Kernel::new::<PerceptronParams>(
    WGSL,
    "weight_step",
    &[
        Binding::read::<f32>("xi"),
        Binding::read::<f32>("errors"),
        Binding::write::<f32>("w"),
    ],
);
pub static MARGIN_STATS: Kernel = Kernel::new::<PerceptronParams>(
    WGSL,
    "margin_stats",
    &[
        Binding::read::<f32>("h"),
        Binding::read::<f32>("labels"),
        Binding::read::<f32>("w"),
        Binding::write::<f32>("stats"),
    ],
);

pub static HOLD_SIGNS: Kernel = Kernel::new::<PerceptronParams>(
    WGSL,
    "hold_signs",
    &[Binding::read::<f32>("signs"), Binding::write::<f32>("w")],
);

pub static KERNELS: &[&Kernel] = &[
    &FIELDS,
    &LOGISTIC_ERRORS,
    &WEIGHT_STEP,
    &MARGIN_STATS,
    &HOLD_SIGNS,
];

const NO_RATES: Rates = Rates {
    weights: 0.0,
    beta: 0.0,
};

fn check_window(spec: &Perceptrons, window: &Window, op: &str) {
    assert!(
        window.first < spec.patterns.max(1) && (window.count == 0 || spec.patterns > 0),
        "{op}: window {window:?} outside {} patterns",
        spec.patterns
    );
}

struct Fields {
    xi: Buf<f32>,
    w: Buf<f32>,
    h: Buf<f32>,
    spec: Perceptrons,
    window: Window,
}

impl Op for Fields {
    fn name(&self) -> &'static str {
        "fields"
    }

    fn check(&self) {
        let s = &self.spec;
        check_window(s, &self.window, "fields");
        check_range(self.xi.raw(), 0, s.patterns_len(), "fields xi");
        check_range(self.w.raw(), 0, s.weights_len(), "fields w");
        check_range(self.h.raw(), 0, s.problems * self.window.count, "fields h");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut h = mem.take(self.h);
        cpu::fields(
            mem.get(self.xi),
            mem.get(self.w),
            &mut h,
            self.spec,
            self.window,
        );
        mem.put(h);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        let fields = s.problems * self.window.count;
        if fields == 0 {
            return Vec::new();
        }
        vec![Dispatch::new(
            &FIELDS,
            &[self.xi.raw(), self.w.raw(), self.h.raw()],
            PerceptronParams::new(s, self.window, NO_RATES),
            spread(fields, limits),
        )]
    }
}

struct LogisticStep {
    xi: Buf<f32>,
    labels: Buf<f32>,
    h: Buf<f32>,
    w: Buf<f32>,
    beta: Buf<f32>,
    spec: Perceptrons,
    window: Window,
    rates: Rates,
}

impl Op for LogisticStep {
    fn name(&self) -> &'static str {
        "logistic_step"
    }

    fn check(&self) {
        let s = &self.spec;
        check_window(s, &self.window, "logistic_step");
        check_range(self.xi.raw(), 0, s.patterns_len(), "logistic_step xi");
        check_range(self.labels.raw(), 0, s.labels_len(), "logistic_step labels");
        check_range(
            self.h.raw(),
            0,
            s.problems * self.window.count,
            "logistic_step h",
        );
        check_range(self.w.raw(), 0, s.weights_len(), "logistic_step w");
        check_range(self.beta.raw(), 0, s.problems, "logistic_step beta");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut h, mut w, mut beta) = (mem.take(self.h), mem.take(self.w), mem.take(self.beta));
        cpu::logistic_step(
            mem.get(self.xi),
            mem.get(self.labels),
            &mut h,
            &mut w,
            &mut beta,
            self.spec,
            self.window,
            self.rates,
        );
        mem.put(beta);
        mem.put(w);
        mem.put(h);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.problems * self.window.count == 0 {
            return Vec::new();
        }
        let params = PerceptronParams::new(s, self.window, self.rates);
        vec![
            Dispatch::new(
                &LOGISTIC_ERRORS,
                &[self.labels.raw(), self.h.raw(), self.beta.raw()],
                params,
                spread(s.problems, limits),
            ),
            Dispatch::new(
                &WEIGHT_STEP,
                &[self.xi.raw(), self.h.raw(), self.w.raw()],
                params,
                spread(s.weights_len().div_ceil(WG), limits),
            ),
        ]
    }
}

struct MarginStats {
    h: Buf<f32>,
    labels: Buf<f32>,
    w: Buf<f32>,
    stats: Buf<f32>,
    spec: Perceptrons,
}

impl Op for MarginStats {
    fn name(&self) -> &'static str {
        "margin_stats"
    }

    fn check(&self) {
        let s = &self.spec;
        check_range(self.h.raw(), 0, s.problems * s.patterns, "margin_stats h");
        check_range(self.labels.raw(), 0, s.labels_len(), "margin_stats labels");
        check_range(self.w.raw(), 0, s.weights_len(), "margin_stats w");
        check_range(self.stats.raw(), 0, 2 * s.problems, "margin_stats stats");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut stats = mem.take(self.stats);
        cpu::margin_stats(
            mem.get(self.h),
            mem.get(self.labels),
            mem.get(self.w),
            &mut stats,
            self.spec,
        );
        mem.put(stats);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.problems == 0 {
            return Vec::new();
        }
        let all = Window {
            first: 0,
            count: s.patterns,
        };
        vec![Dispatch::new(
            &MARGIN_STATS,
            &[
                self.h.raw(),
                self.labels.raw(),
                self.w.raw(),
                self.stats.raw(),
            ],
            PerceptronParams::new(s, all, NO_RATES),
            spread(s.problems, limits),
        )]
    }
}

struct HoldSigns {
    signs: Buf<f32>,
    w: Buf<f32>,
    spec: Perceptrons,
}

impl Op for HoldSigns {
    fn name(&self) -> &'static str {
        "hold_signs"
    }

    fn check(&self) {
        let len = self.spec.weights_len();
        check_range(self.signs.raw(), 0, len, "hold_signs signs");
        check_range(self.w.raw(), 0, len, "hold_signs w");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut w = mem.take(self.w);
        cpu::hold_signs(mem.get(self.signs), &mut w, self.spec);
        mem.put(w);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let len = self.spec.weights_len();
        if len == 0 {
            return Vec::new();
        }
        let all = Window { first: 0, count: 0 };
        vec![Dispatch::new(
            &HOLD_SIGNS,
            &[self.signs.raw(), self.w.raw()],
            PerceptronParams::new(self.spec, all, NO_RATES),
            spread(len.div_ceil(WG), limits),
        )]
    }
}
