//! The GPU backend: every op is one or more WGSL dispatches, recorded and submitted in chunks;
//! nothing is read back unless a download asks. The only module of dale that imports wgpu.

mod device;
mod encoder;
mod kernels;
pub mod select;

use std::sync::Arc;

pub use device::GpuContext;
use encoder::{Recorder, MAX_BINDINGS};

use super::{Access, Backend, BackendInfo, DeviceLimits, ElementType, Op, RawBuf, Slots};
use crate::error::DaleError;

pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// Ids are reused after their bind groups are forgotten.
    buffers: Slots<wgpu::Buffer>,
    /// Freed while recorded ops still used them: released after the next submission.
    freed: Vec<u32>,
    recorder: Recorder,
    /// An error from a submission that recording forced; returned by the next finish or read.
    deferred: Option<DaleError>,
}

impl GpuBackend {
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        let recorder = Recorder::new(&ctx);
        Self {
            ctx,
            buffers: Slots::default(),
            freed: Vec::new(),
            recorder,
            deferred: None,
        }
    }

    /// Submits what was recorded (with `extra` commands at the end), surfacing any earlier error,
    /// then lets go of the buffers freed meanwhile.
    fn submit(&mut self, extra: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<(), DaleError> {
        let result = self.recorder.submit(&self.ctx, self.buffers.all(), extra);
        self.release();
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        result
    }

    /// Drops freed buffers (wgpu keeps one alive until submitted work that uses it is done).
    fn release(&mut self) {
        for id in self.freed.drain(..) {
            self.recorder.forget(id);
            self.buffers.remove(id);
        }
    }

    fn buffer(&self, buf: RawBuf) -> &wgpu::Buffer {
        self.buffers
            .get(buf.id)
            .unwrap_or_else(|| panic!("buffer '{}' was freed", buf.label))
    }

    /// Records one dispatch after checking its buffers against the kernel's bindings: count,
    /// element type, and no buffer written through one binding and bound to another.
    fn dispatch(&mut self, op: &str, d: super::Dispatch) {
        let kernel = d.kernel;
        assert_eq!(
            d.buffers.len(),
            kernel.bindings.len(),
            "{op}: kernel {} binds {} buffers",
            kernel.entry,
            kernel.bindings.len()
        );
        for (i, (buf, binding)) in d.buffers.iter().zip(kernel.bindings).enumerate() {
            assert_eq!(
                buf.element, binding.element,
                "{op}: buffer '{}' holds {:?}, binding {} takes {:?}",
                buf.label, buf.element, binding.name, binding.element
            );
            if binding.access == Access::ReadWrite {
                let shared = d
                    .buffers
                    .iter()
                    .enumerate()
                    .any(|(k, b)| k != i && b.id == buf.id);
                assert!(
                    !shared,
                    "{op}: buffer '{}' is written through {} and bound again",
                    buf.label, binding.name
                );
            }
        }
        if self.recorder.is_full() {
            if let Err(e) = self.recorder.submit(&self.ctx, self.buffers.all(), |_| {}) {
                self.deferred.get_or_insert(e);
            }
            self.release();
        }
        let mut ids = [0u32; MAX_BINDINGS];
        for (slot, buf) in ids.iter_mut().zip(&d.buffers) {
            *slot = buf.id;
        }
        let index = self.ctx.kernels.index(kernel);
        self.recorder.dispatch(
            &self.ctx,
            self.buffers.all(),
            index,
            &ids[..d.buffers.len()],
            &d.params,
            d.workgroups,
        );
    }
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        self.ctx.info.clone()
    }

    fn alloc_raw(
        &mut self,
        label: &'static str,
        len: usize,
        element: ElementType,
    ) -> Result<RawBuf, DaleError> {
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
        let id = self.buffers.insert(buffer);
        Ok(RawBuf {
            id,
            len,
            label,
            element,
        })
    }

    fn upload_raw(&mut self, dst: RawBuf, offset: usize, bytes: &[u8]) -> Result<(), DaleError> {
        // queue.write_buffer lands before the next submission: submit what was recorded first,
        // so that earlier ops still see the old contents.
        self.submit(|_| {})?;
        if !bytes.is_empty() {
            self.ctx
                .queue
                .write_buffer(self.buffer(dst), (offset * 4) as u64, bytes);
        }
        Ok(())
    }

    fn download_raw(
        &mut self,
        src: RawBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), DaleError> {
        if out.is_empty() {
            return Ok(());
        }
        let bytes = out.len() as u64;
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let source = self.buffer(src).clone();
        self.submit(|encoder| {
            encoder.copy_buffer_to_buffer(&source, (offset * 4) as u64, &staging, 0, bytes);
        })?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        let gpu_err = |what: &str, e: String| DaleError::Gpu {
            what: format!("{what} '{}'", src.label),
            message: e,
        };
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| gpu_err("reading back", e.to_string()))?;
        rx.recv()
            .expect("map_async always calls back after a blocking poll")
            .map_err(|e| gpu_err("mapping", e.to_string()))?;
        let view = slice
            .get_mapped_range()
            .map_err(|e| gpu_err("mapping", e.to_string()))?;
        out.copy_from_slice(&view);
        drop(view);
        staging.unmap();
        Ok(())
    }

    fn copy_raw(
        &mut self,
        src: RawBuf,
        src_offset: usize,
        dst: RawBuf,
        dst_offset: usize,
        len: usize,
    ) {
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

    fn free_raw(&mut self, buf: RawBuf) {
        assert!(
            self.buffers.get(buf.id).is_some() && !self.freed.contains(&buf.id),
            "buffer '{}' is freed twice",
            buf.label
        );
        self.freed.push(buf.id);
        if self.recorder.is_empty() {
            self.release();
        }
    }

    fn run(&mut self, op: &dyn Op) {
        op.check();
        let limits = DeviceLimits {
            max_workgroups_per_dimension: self.ctx.limits.max_compute_workgroups_per_dimension,
        };
        for d in op.dispatches(&limits) {
            self.dispatch(op.name(), d);
        }
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
