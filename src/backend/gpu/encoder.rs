//! Records ops as a plain list of commands (as vello's Recording does) and turns them into compute
//! passes and copies in one command encoder per submission. Parameters of every recorded dispatch
//! go into one uniform buffer at aligned slots, written once per submission.

use std::collections::HashMap;

use super::kernels::PARAM_BYTES;
use super::GpuContext;
use crate::error::DaleError;

/// Dispatches recorded before a submission is forced: bounds the parameter buffer (slots x
/// alignment, 1 MiB at the usual 256-byte alignment) while still putting hundreds of steps in
/// one submission.
pub const SLOTS: usize = 4096;

/// Storage buffers one kernel may bind (lif_step has six; WebGPU's default limit is eight).
pub const MAX_BINDINGS: usize = 6;

enum Command {
    Dispatch {
        kernel: usize,
        buffers: [u32; MAX_BINDINGS],
        slot: u32,
        groups: [u32; 3],
    },
    Copy {
        src: u32,
        src_offset: u64,
        dst: u32,
        dst_offset: u64,
        bytes: u64,
    },
}

pub struct Recorder {
    commands: Vec<Command>,
    params: Vec<u8>,
    slots: u32,
    slot_bytes: u64,
    params_buf: wgpu::Buffer,
    /// Built once per (kernel, buffers) and kept until one of the buffers is freed.
    bind_groups: HashMap<(usize, [u32; MAX_BINDINGS]), wgpu::BindGroup>,
}

impl Recorder {
    pub fn new(ctx: &GpuContext) -> Self {
        let slot_bytes = (ctx.limits.min_uniform_buffer_offset_alignment as u64).max(PARAM_BYTES);
        let params_buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("op parameters"),
            size: slot_bytes * SLOTS as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            commands: Vec::new(),
            params: Vec::new(),
            slots: 0,
            slot_bytes,
            params_buf,
            bind_groups: HashMap::new(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.slots as usize == SLOTS
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Drops the bind groups that hold buffer `id`, which is being freed.
    pub fn forget(&mut self, id: u32) {
        self.bind_groups.retain(|(_, ids), _| !ids.contains(&id));
    }

    /// Records one dispatch of kernel `kernel` (its index in the table) over `buffers` (storage
    /// bindings 1..), with `params` as its uniform block.
    pub fn dispatch(
        &mut self,
        ctx: &GpuContext,
        all: &[Option<wgpu::Buffer>],
        kernel: usize,
        buffers: &[u32],
        params: &[u8],
        groups: [u32; 3],
    ) {
        debug_assert!(!self.is_full());
        let mut ids = [u32::MAX; MAX_BINDINGS];
        ids[..buffers.len()].copy_from_slice(buffers);
        self.bind_groups.entry((kernel, ids)).or_insert_with(|| {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.params_buf,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAM_BYTES),
                }),
            }];
            for (i, &id) in buffers.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: live(all, id).as_entire_binding(),
                });
            }
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(ctx.kernels.kernel(kernel).entry),
                layout: ctx.kernels.layout(kernel),
                entries: &entries,
            })
        });
        let start = self.params.len();
        self.params.resize(start + self.slot_bytes as usize, 0);
        self.params[start..start + params.len()].copy_from_slice(params);
        self.commands.push(Command::Dispatch {
            kernel,
            buffers: ids,
            slot: self.slots,
            groups,
        });
        self.slots += 1;
    }

    pub fn copy(&mut self, src: u32, src_offset: u64, dst: u32, dst_offset: u64, bytes: u64) {
        self.commands.push(Command::Copy {
            src,
            src_offset,
            dst,
            dst_offset,
            bytes,
        });
    }

    /// Encodes and submits everything recorded; wgpu orders this after earlier submissions and
    /// before later ones, so the caller waits only when it reads back.
    pub fn submit(
        &mut self,
        ctx: &GpuContext,
        all: &[Option<wgpu::Buffer>],
        extra: impl FnOnce(&mut wgpu::CommandEncoder),
    ) -> Result<(), DaleError> {
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        if !self.params.is_empty() {
            ctx.queue.write_buffer(&self.params_buf, 0, &self.params);
        }
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("dale steps"),
            });
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut last_kernel = None;
        for command in &self.commands {
            match *command {
                Command::Dispatch {
                    kernel,
                    buffers,
                    slot,
                    groups,
                } => {
                    let p = pass.get_or_insert_with(|| {
                        last_kernel = None;
                        encoder
                            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("ops"),
                                timestamp_writes: None,
                            })
                            .forget_lifetime()
                    });
                    if last_kernel != Some(kernel) {
                        p.set_pipeline(ctx.kernels.pipeline(kernel));
                        last_kernel = Some(kernel);
                    }
                    let offset = (slot as u64 * self.slot_bytes) as u32;
                    p.set_bind_group(0, &self.bind_groups[&(kernel, buffers)], &[offset]);
                    p.dispatch_workgroups(groups[0], groups[1], groups[2]);
                }
                Command::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    bytes,
                } => {
                    pass = None;
                    encoder.copy_buffer_to_buffer(
                        live(all, src),
                        src_offset,
                        live(all, dst),
                        dst_offset,
                        bytes,
                    );
                }
            }
        }
        drop(pass);
        extra(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        let what: Vec<&str> = self
            .commands
            .iter()
            .filter_map(|c| {
                if let Command::Dispatch { kernel, .. } = c {
                    Some(ctx.kernels.kernel(*kernel).entry)
                } else {
                    None
                }
            })
            .collect();
        self.commands.clear();
        self.params.clear();
        self.slots = 0;
        if let Some(err) = pollster::block_on(scope.pop()) {
            let mut names = what;
            names.dedup();
            return Err(DaleError::Gpu {
                what: format!("a submission of ops [{}]", names.join(", ")),
                message: err.to_string(),
            });
        }
        Ok(())
    }
}

/// Buffer `id`, which the backend has not freed: ops are recorded on live buffers only.
fn live(all: &[Option<wgpu::Buffer>], id: u32) -> &wgpu::Buffer {
    all[id as usize]
        .as_ref()
        .expect("ops are recorded on live buffers; freed ones leave only after submission")
}
