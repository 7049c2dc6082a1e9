//! Sorting, for paper 003's optimal-transport steps: each row of a [rows, len] batch of f32 keys
//! sorted on its own, with its permutation. Kernels: shaders/sort.wgsl; CPU twins: cpu.rs.
//!
//! The order is ascending by value, -0 and +0 equal, ties by position: the order of NumPy's
//! `argsort(kind="stable")`, and the same on both backends to the bit. NaN has no place in it: a
//! row holding one gets 1 in `nan_rows` (never cleared, so that a flag raised at any step is
//! still there when the caller reads it back), and its order is unspecified. The caller turns
//! the flag into an error, as it does with divergence.

mod cpu;

pub use cpu::order_key;

use super::op::params;
use super::{check_range, spread, Backend, Binding, Buf, DeviceLimits, Dispatch, Kernel, Op};
use crate::backend::cpu::Memory;

const WGSL: (&str, &str) = ("sort.wgsl", include_str!("../../../shaders/sort.wgsl"));
/// Threads of a workgroup.
const WG: usize = 256;
/// Keys one workgroup sorts in workgroup memory (log2): 2048 keys and their positions take
/// 16 KiB, the least any WebGPU adapter offers.
const BLOCK_LOG2: u32 = 11;

/// `rows` rows of `len` keys, row r at keys[offset + r * stride..][..len]: a plain [rows, len]
/// batch (`SortRows::packed`), or one population's slice of each perceptron's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortRows {
    pub rows: usize,
    pub len: usize,
    pub offset: usize,
    pub stride: usize,
}

impl SortRows {
    pub fn packed(rows: usize, len: usize) -> Self {
        SortRows {
            rows,
            len,
            offset: 0,
            stride: len,
        }
    }

    /// Keys in the batch: the length of sorted, perm and work, which are packed [rows, len].
    pub fn keys(&self) -> usize {
        self.rows * self.len
    }

    /// Values of the keys' buffer the rows reach.
    pub fn span(&self) -> usize {
        match self.rows {
            0 => 0,
            rows => self.offset + (rows - 1) * self.stride + self.len,
        }
    }

    /// Where row r's keys start.
    pub fn row_start(&self, r: usize) -> usize {
        self.offset + r * self.stride
    }

    /// log2 of the row length padded to a power of two (the sorting network's width).
    fn pad_log2(&self) -> u32 {
        self.len.next_power_of_two().trailing_zeros()
    }
}

/// The sort ops, on any backend.
pub trait SortOps: Backend {
    /// sorted[r, i] = keys[r, perm[r, i]], each row ascending in the order above; rows holding a
    /// NaN get nan_rows[r] = 1. `work` ([rows, len]) is the GPU kernels' scratch.
    fn sort_rows(
        &mut self,
        keys: Buf<f32>,
        sorted: Buf<f32>,
        perm: Buf<u32>,
        work: Buf<u32>,
        nan_rows: Buf<u32>,
        spec: SortRows,
    ) {
        self.run(&Sort {
            keys,
            sorted,
            perm,
            work,
            nan_rows,
            spec,
        })
    }

    /// Paper 003's transport step (eq. 9) on each row: the key of rank k moves toward targets[k],
    /// w <- (1 - rate) w + rate targets[k], which is exact at rate 0 and at rate 1 (eq. 8's
    /// one-step projection). `perm` is sort_rows' permutation of these rows.
    fn transport_step(
        &mut self,
        weights: Buf<f32>,
        perm: Buf<u32>,
        targets: Buf<f32>,
        rate: f32,
        spec: SortRows,
    ) {
        self.run(&Transport {
            weights,
            perm,
            targets,
            rate,
            spec,
        })
    }
}

impl<B: Backend + ?Sized> SortOps for B {}

params! {
    pub struct SortParams {
        pub rows: u32,
        pub len: u32,
        /// Where row r's keys start: offset + r * stride.
        pub offset: u32,
        pub stride: u32,
        /// The row length padded to a power of two, log2.
        pub pad_log2: u32,
        /// The length of the sorted runs a step forms, log2 (sort_blocks: up to which).
        pub run_log2: u32,
        /// merge_step: its comparators' distance, log2; run_log2 for the step that mirrors.
        pub distance_log2: u32,
    }
}

const SORT_BINDINGS: &[Binding] = &[
    Binding::read::<f32>("keys"),
    Binding::write::<u32>("work"),
    Binding::write::<u32>("perm"),
    Binding::write::<u32>("nan_rows"),
    Binding::write::<f32>("sorted"),
];
pub static SORT_BLOCKS: Kernel = Kernel::new::<SortParams>(WGSL, "sort_blocks", SORT_BINDINGS);
pub static MERGE_STEP: Kernel = Kernel::new::<SortParams>(WGSL, "merge_step", SORT_BINDINGS);
pub static MERGE_BLOCKS: Kernel = Kernel::new::<SortParams>(WGSL, "merge_blocks", SORT_BINDINGS);
pub static GATHER_SORTED: Kernel = Kernel::new::<SortParams>(WGSL, "gather_sorted", SORT_BINDINGS);

params! {
    pub struct TransportParams {
        pub rows: u32,
        pub len: u32,
        pub offset: u32,
        pub stride: u32,
        pub rate: f32,
    }
}

pub static TRANSPORT_STEP: Kernel = Kernel::new::<TransportParams>(
    WGSL,
    "transport_step",
    &[
        Binding::write::<f32>("weights"),
        Binding::read::<u32>("ranked"),
        Binding::read::<f32>("targets"),
    ],
);

pub static KERNELS: &[&Kernel] = &[
    &SORT_BLOCKS,
    &MERGE_STEP,
    &MERGE_BLOCKS,
    &GATHER_SORTED,
    &TRANSPORT_STEP,
];

struct Sort {
    keys: Buf<f32>,
    sorted: Buf<f32>,
    perm: Buf<u32>,
    work: Buf<u32>,
    nan_rows: Buf<u32>,
    spec: SortRows,
}

impl Op for Sort {
    fn name(&self) -> &'static str {
        "sort_rows"
    }

    fn check(&self) {
        let s = self.spec;
        assert!(
            s.stride >= s.len || s.rows <= 1,
            "sort_rows: rows overlap: {s:?}"
        );
        check_range(self.keys.raw(), 0, s.span(), "sort_rows keys");
        check_range(self.sorted.raw(), 0, s.keys(), "sort_rows sorted");
        check_range(self.perm.raw(), 0, s.keys(), "sort_rows perm");
        check_range(self.work.raw(), 0, s.keys(), "sort_rows work");
        check_range(self.nan_rows.raw(), 0, s.rows, "sort_rows nan_rows");
        // The kernels index the padded batch in u32; a buffer holds under 2^30 keys, and padding
        // at most doubles them.
        assert!(
            (s.rows as u64) << s.pad_log2() <= 1 << 31,
            "sort_rows: {} rows of {} keys exceed the kernels' u32 positions",
            s.rows,
            s.len
        );
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let (mut sorted, mut perm, mut nan_rows) = (
            mem.take(self.sorted),
            mem.take(self.perm),
            mem.take(self.nan_rows),
        );
        cpu::sort_rows(
            mem.get(self.keys),
            &mut sorted,
            &mut perm,
            &mut nan_rows,
            self.spec,
        );
        mem.put(nan_rows);
        mem.put(perm);
        mem.put(sorted);
    }

    /// A bitonic merge sort: runs of up to 2048 keys sorted in workgroup memory, then each wider
    /// merge as one dispatch per comparator distance of at least 2048 and one in workgroup
    /// memory for the distances below (see sort.wgsl).
    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.keys() == 0 {
            return Vec::new();
        }
        let pad_log2 = s.pad_log2();
        let padded = s.rows << pad_log2;
        let buffers = [
            self.keys.raw(),
            self.work.raw(),
            self.perm.raw(),
            self.nan_rows.raw(),
            self.sorted.raw(),
        ];
        let step = |kernel: &'static Kernel, run_log2: u32, distance_log2: u32, threads: usize| {
            let params = SortParams {
                rows: s.rows as u32,
                len: s.len as u32,
                offset: s.offset as u32,
                stride: s.stride as u32,
                pad_log2,
                run_log2,
                distance_log2,
            };
            let groups = spread(threads.div_ceil(WG), limits);
            Dispatch::new(kernel, &buffers, params, groups)
        };
        let tiles = padded.div_ceil(1 << BLOCK_LOG2) * WG;
        let mut dispatches = vec![step(&SORT_BLOCKS, pad_log2.min(BLOCK_LOG2), 0, tiles)];
        for run_log2 in BLOCK_LOG2 + 1..=pad_log2 {
            // The mirroring step, then the half-cleaners from distance run / 4 down to 1.
            dispatches.push(step(&MERGE_STEP, run_log2, run_log2, padded / 2));
            for distance_log2 in (BLOCK_LOG2..run_log2 - 1).rev() {
                dispatches.push(step(&MERGE_STEP, run_log2, distance_log2, padded / 2));
            }
            dispatches.push(step(&MERGE_BLOCKS, run_log2, 0, tiles));
        }
        dispatches.push(step(&GATHER_SORTED, 0, 0, s.keys()));
        dispatches
    }
}

struct Transport {
    weights: Buf<f32>,
    perm: Buf<u32>,
    targets: Buf<f32>,
    rate: f32,
    spec: SortRows,
}

impl Op for Transport {
    fn name(&self) -> &'static str {
        "transport_step"
    }

    fn check(&self) {
        let s = self.spec;
        assert!(
            s.stride >= s.len || s.rows <= 1,
            "transport_step: rows overlap: {s:?}"
        );
        check_range(self.weights.raw(), 0, s.span(), "transport_step weights");
        check_range(self.perm.raw(), 0, s.keys(), "transport_step perm");
        check_range(self.targets.raw(), 0, s.len, "transport_step targets");
    }

    fn run_cpu(&self, mem: &mut Memory) {
        let mut weights = mem.take(self.weights);
        cpu::transport_step(
            &mut weights,
            mem.get(self.perm),
            mem.get(self.targets),
            self.rate,
            self.spec,
        );
        mem.put(weights);
    }

    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch> {
        let s = self.spec;
        if s.keys() == 0 {
            return Vec::new();
        }
        let params = TransportParams {
            rows: s.rows as u32,
            len: s.len as u32,
            offset: s.offset as u32,
            stride: s.stride as u32,
            rate: self.rate,
        };
        vec![Dispatch::new(
            &TRANSPORT_STEP,
            &[self.weights.raw(), self.perm.raw(), self.targets.raw()],
            params,
            spread(s.keys().div_ceil(WG), limits),
        )]
    }
}
