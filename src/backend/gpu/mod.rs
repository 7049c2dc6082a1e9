//! The GPU backend: every op is one WGSL dispatch, recorded and submitted in chunks; nothing is
//! read back unless `download` asks. The only module of dale that imports wgpu.

mod device;
mod encoder;
mod kernels;

use std::sync::Arc;

pub use device::{adapters, backend_name, GpuContext, NATIVE};
use encoder::Recorder;
use kernels::Kernel;

use super::{
    check_difference, check_range, Alpha, Axis, Backend, BackendInfo, Buf, CostFlows, Costs,
    EulerBackward, EulerStep, HStep, HUpdate, MatmulShape, Reduce, SgdStep, TaskTransform, Weights,
};
use crate::error::DaleError;

/// Threads of a 1-D workgroup (rate.wgsl, reduce.wgsl).
const WG: usize = 256;
/// Side of the C tile one matmul workgroup computes (matmul.wgsl).
const MATMUL_TILE: usize = 64;
/// Rows of c0 one cost_flows_bands workgroup reads (balance.wgsl).
const BAND: usize = 32;

pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    buffers: Vec<wgpu::Buffer>,
    recorder: Recorder,
    /// An error from a submission that recording forced; returned by the next finish or read.
    deferred: Option<DaleError>,
    /// Working memory of ops that reduce in two dispatches (cost_flows), grown on demand.
    scratch: Option<Buf>,
}

impl GpuBackend {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        let recorder = Recorder::new(&ctx);
        Self {
            ctx,
            buffers: Vec::new(),
            recorder,
            deferred: None,
            scratch: None,
        }
    }

    /// Submits what was recorded (with `extra` commands at the end), surfacing any earlier error.
    fn submit(&mut self, extra: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<(), DaleError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        self.recorder.submit(&self.ctx, &self.buffers, extra)
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    fn dispatch(&mut self, kernel: Kernel, buffers: &[Buf], params: &[u32], groups: [u32; 3]) {
        if self.recorder.is_full() {
            if let Err(e) = self.recorder.submit(&self.ctx, &self.buffers, |_| {}) {
                self.deferred.get_or_insert(e);
            }
        }
        let ids: Vec<u32> = buffers.iter().map(|b| b.id).collect();
        self.recorder
            .dispatch(&self.ctx, &self.buffers, kernel, &ids, params, groups);
    }

    /// A scratch buffer of at least `len` values. A larger one replaces it under a new id, so
    /// that ops already recorded keep the one they were recorded with.
    fn scratch(&mut self, len: usize) -> Result<Buf, DaleError> {
        match self.scratch {
            Some(b) if b.len >= len => Ok(b),
            _ => {
                let b = self.alloc("scratch", len)?;
                self.scratch = Some(b);
                Ok(b)
            }
        }
    }

    /// Workgroup counts for `n` workgroups of a 1-D kernel, folded into two dimensions past the
    /// per-dimension limit; the kernels rebuild the flat index from num_workgroups.
    fn spread(&self, n: usize) -> [u32; 3] {
        let max = self.ctx.limits.max_compute_workgroups_per_dimension as usize;
        let x = n.clamp(1, max);
        let y = n.div_ceil(x).max(1);
        assert!(
            y <= max,
            "{n} workgroups exceed this adapter's {max} x {max}"
        );
        [x as u32, y as u32, 1]
    }
}

fn bits(v: f32) -> u32 {
    v.to_bits()
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        self.ctx.info.clone()
    }

    fn alloc(&mut self, label: &'static str, len: usize) -> Result<Buf, DaleError> {
        let max = self.ctx.info.max_buffer_len;
        if len > max {
            return Err(DaleError::TooLarge {
                path: label.into(),
                value: len,
                largest: max,
                backend: self.ctx.info.name.clone(),
                why: "values in one buffer".into(),
            });
        }
        let scope = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            // A binding may not be empty: zero-length buffers still get one value.
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(DaleError::Gpu {
                what: format!("allocating '{label}' ({len} values)"),
                message: err.to_string(),
            });
        }
        let id = self.buffers.len() as u32;
        self.buffers.push(buffer);
        Ok(Buf { id, len, label })
    }

    fn upload(&mut self, dst: Buf, offset: usize, data: &[f32]) -> Result<(), DaleError> {
        check_range(dst, offset, data.len(), "upload");
        // queue.write_buffer lands before the next submission: submit what was recorded first,
        // so that earlier ops still see the old contents.
        self.submit(|_| {})?;
        if !data.is_empty() {
            self.ctx.queue.write_buffer(
                &self.buffers[dst.id as usize],
                (offset * 4) as u64,
                bytemuck::cast_slice(data),
            );
        }
        Ok(())
    }

    fn download(&mut self, src: Buf, offset: usize, len: usize) -> Result<Vec<f32>, DaleError> {
        check_range(src, offset, len, "download");
        if len == 0 {
            return Ok(Vec::new());
        }
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (len * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let source = self.buffers[src.id as usize].clone();
        self.submit(|encoder| {
            encoder.copy_buffer_to_buffer(
                &source,
                (offset * 4) as u64,
                &staging,
                0,
                (len * 4) as u64,
            );
        })?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| DaleError::Gpu {
                what: format!("reading back '{}'", src.label),
                message: e.to_string(),
            })?;
        rx.recv()
            .expect("map_async always calls back after a blocking poll")
            .map_err(|e| DaleError::Gpu {
                what: format!("mapping '{}'", src.label),
                message: e.to_string(),
            })?;
        let view = slice.get_mapped_range().map_err(|e| DaleError::Gpu {
            what: format!("mapping '{}'", src.label),
            message: e.to_string(),
        })?;
        let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    fn copy(&mut self, src: Buf, src_offset: usize, dst: Buf, dst_offset: usize, len: usize) {
        check_range(src, src_offset, len, "copy");
        check_range(dst, dst_offset, len, "copy");
        if len > 0 {
            self.recorder.copy(
                src.id,
                (src_offset * 4) as u64,
                dst.id,
                (dst_offset * 4) as u64,
                (len * 4) as u64,
            );
        }
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
        if shape.c_len() == 0 {
            return;
        }
        let w_group_stride = if shape.shared_w {
            0
        } else {
            shape.cols * shape.inner
        };
        let params = [
            shape.rows,
            shape.inner,
            shape.cols,
            a_offset,
            w_group_stride,
            accumulate as usize,
            shape.layout.code() as usize,
        ]
        .map(|v| v as u32);
        let groups = [
            shape.cols.div_ceil(MATMUL_TILE),
            shape.rows.div_ceil(MATMUL_TILE),
            shape.groups,
        ]
        .map(|v| v as u32);
        self.dispatch(Kernel::Matmul, &[a, w, c], &params, groups);
    }

    fn euler_step(&mut self, x: Buf, r: Buf, drive: Buf, step: EulerStep) {
        step.check(x, r, drive);
        if step.len == 0 {
            return;
        }
        let params = [
            step.len as u32,
            bits(step.leak),
            step.phi.code(),
            bits(step.noise_std),
            step.seed as u32,
            (step.seed >> 32) as u32,
            step.step,
        ];
        let groups = self.spread(step.len.div_ceil(WG));
        self.dispatch(Kernel::EulerStep, &[x, r, drive], &params, groups);
    }

    fn reduce(&mut self, src: Buf, out: Buf, out_offset: usize, reduce: Reduce) {
        reduce.check(src, out, out_offset);
        if reduce.out_len() == 0 {
            return;
        }
        let params = [
            reduce.rows as u32,
            reduce.cols as u32,
            reduce.op.code(),
            out_offset as u32,
            bits(reduce.scale),
        ];
        let (kernel, groups) = match reduce.axis {
            Axis::Rows => (Kernel::ReduceRows, self.spread(reduce.rows)),
            Axis::Cols => (Kernel::ReduceCols, self.spread(reduce.cols.div_ceil(16))),
        };
        self.dispatch(kernel, &[src, out], &params, groups);
    }

    fn euler_backward(&mut self, delta: Buf, back: Buf, x: Buf, readout: Buf, spec: EulerBackward) {
        spec.check(delta, back, x, readout);
        if spec.len == 0 {
            return;
        }
        let params = bptt_params(
            spec.len,
            spec.phi.code(),
            spec.next,
            spec.out,
            spec.x,
            spec.readout,
            [spec.leak, 0.0, 0.0],
        );
        let groups = self.spread(spec.len.div_ceil(WG));
        self.dispatch(
            Kernel::EulerBackward,
            &[delta, back, x, readout],
            &params,
            groups,
        );
    }

    fn scaled_difference(&mut self, a: Buf, b: Buf, out: Buf, len: usize, scale: f32) {
        check_difference(a, b, out, len);
        if len == 0 {
            return;
        }
        let params = bptt_params(len, 0, 0, 0, 0, 0, [scale, 0.0, 0.0]);
        let groups = self.spread(len.div_ceil(WG));
        self.dispatch(Kernel::ScaledDifference, &[a, b, out], &params, groups);
    }

    fn sgd_step(&mut self, w: Buf, grad: Buf, spec: SgdStep) {
        spec.check(w, grad);
        if spec.len == 0 {
            return;
        }
        let params = bptt_params(
            spec.len,
            0,
            0,
            spec.offset,
            0,
            0,
            [spec.lr, spec.l2, spec.grad_scale],
        );
        let groups = self.spread(spec.len.div_ceil(WG));
        self.dispatch(Kernel::SgdStep, &[w, grad], &params, groups);
    }

    fn costs(&mut self, w: Buf, alpha: Buf, c: Buf, spec: Costs) {
        spec.check(w, alpha, c);
        if spec.is_empty() {
            return;
        }
        let (mode, shared) = match spec.alpha {
            Alpha::One => (0, false),
            Alpha::PerColumn { shared } => (1, shared),
            Alpha::Full { shared } => (2, shared),
        };
        // Alpha::One reads no alpha; w stands in for the binding.
        let alpha = if spec.alpha == Alpha::One { w } else { alpha };
        let params = balance_params(
            spec.groups,
            spec.rows,
            spec.cols,
            0,
            mode,
            shared as u32,
            0,
            spec.p,
            0.0,
        );
        let groups = self.spread(spec.len().div_ceil(WG));
        self.dispatch(Kernel::Costs, &[w, alpha, c], &params, groups);
    }

    fn cost_flows(&mut self, c0: Buf, scale: Buf, flows: Buf, spec: CostFlows) {
        let CostFlows {
            groups,
            n,
            aggregate,
        } = spec;
        spec.check(c0, scale, flows);
        if groups * n == 0 {
            return;
        }
        let bands = n.div_ceil(BAND);
        let partial = match self.scratch(groups * (bands + 1) * n) {
            Ok(b) => b,
            Err(e) => {
                self.deferred.get_or_insert(e);
                return;
            }
        };
        let params = balance_params(groups, 0, 0, n, aggregate.code(), 0, 0, 0.0, 0.0);
        let max = self.ctx.limits.max_compute_workgroups_per_dimension as usize;
        assert!(bands <= max && groups <= max, "cost_flows: {bands} bands x {groups} networks exceed this adapter's {max} workgroups per dimension");
        self.dispatch(
            Kernel::CostFlowsBands,
            &[c0, scale, partial],
            &params,
            [bands as u32, groups as u32, 1],
        );
        let finish = self.spread((groups * n).div_ceil(WG));
        self.dispatch(
            Kernel::CostFlowsFinish,
            &[partial, scale, flows],
            &params,
            finish,
        );
    }

    fn h_update(&mut self, flows: Buf, h: Buf, scale: Buf, history: Buf, spec: HUpdate) {
        let HUpdate {
            groups,
            n,
            p,
            step,
            history_offset,
        } = spec;
        spec.check(flows, h, scale, history);
        if groups * n == 0 {
            return;
        }
        let (mode, dt) = match step {
            HStep::Flow { dt } => (0, dt),
            HStep::Osborne => (1, 0.0),
        };
        let params = balance_params(groups, 0, 0, n, mode, 0, history_offset as u32, p, dt);
        let wgs = self.spread(groups);
        self.dispatch(Kernel::HUpdate, &[flows, h, scale, history], &params, wgs);
    }

    fn task_transform(&mut self, src: Buf, h: Buf, dst: Buf, spec: TaskTransform) {
        spec.check(src, h, dst);
        if spec.is_empty() {
            return;
        }
        let (rows, cols) = spec.rows_cols();
        let mode = match spec.weights {
            Weights::Recurrent => 0,
            Weights::Input { .. } => 1,
            Weights::Output { .. } => 2,
        };
        let params = balance_params(spec.groups, rows, cols, spec.n, mode, 0, 0, 0.0, 0.0);
        let groups = self.spread(spec.len().div_ceil(WG));
        self.dispatch(Kernel::TaskTransform, &[src, h, dst], &params, groups);
    }

    fn finish(&mut self) -> Result<(), DaleError> {
        self.submit(|_| {})?;
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| DaleError::Gpu {
                what: "waiting for the queue".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }
}

/// The Params block of balance.wgsl, in its field order.
#[allow(clippy::too_many_arguments)]
fn balance_params(
    groups: usize,
    rows: usize,
    cols: usize,
    n: usize,
    mode: u32,
    shared: u32,
    offset: u32,
    p: f32,
    dt: f32,
) -> [u32; 9] {
    [
        groups as u32,
        rows as u32,
        cols as u32,
        n as u32,
        mode,
        shared,
        offset,
        bits(p),
        bits(dt),
    ]
}

/// The Params block of bptt.wgsl, in its field order.
/// `floats` are (a, l2, b).
fn bptt_params(
    len: usize,
    phi: u32,
    next: usize,
    out: usize,
    x: usize,
    readout: usize,
    floats: [f32; 3],
) -> [u32; 9] {
    [
        len as u32,
        phi,
        next as u32,
        out as u32,
        x as u32,
        readout as u32,
        bits(floats[0]),
        bits(floats[1]),
        bits(floats[2]),
    ]
}
