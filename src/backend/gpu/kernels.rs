//! The kernel table: built once per device from the one list of kernels (`backend::kernels`),
//! each WGSL file compiled once, one pipeline per entry point with an explicit layout (binding 0:
//! the op's Params at a dynamic offset; then its storage buffers in order, with their access).

use super::encoder::MAX_BINDINGS;
use crate::backend::{Access, Kernel};
use crate::error::DaleError;

/// Bytes of one op's parameters (`op::PARAM_BYTES`).
pub const PARAM_BYTES: u64 = 64;

pub struct Kernels {
    kernels: Vec<&'static Kernel>,
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    pub fn build(device: &wgpu::Device) -> Result<Self, DaleError> {
        let mut table = Kernels {
            kernels: Vec::new(),
            layouts: Vec::new(),
            pipelines: Vec::new(),
        };
        let mut modules: Vec<(&str, wgpu::ShaderModule)> = Vec::new();
        for kernel in crate::backend::kernels() {
            assert!(
                !table
                    .kernels
                    .iter()
                    .any(|k| k.entry == kernel.entry && k.file == kernel.file),
                "kernel {} of {} is listed twice",
                kernel.entry,
                kernel.file
            );
            assert!(
                kernel.bindings.len() <= MAX_BINDINGS,
                "kernel {} binds {} buffers; the recorder holds {MAX_BINDINGS}",
                kernel.entry,
                kernel.bindings.len()
            );
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            if !modules.iter().any(|(f, _)| *f == kernel.file) {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.file),
                    source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
                });
                modules.push((kernel.file, module));
            }
            let module = &modules
                .iter()
                .find(|(f, _)| *f == kernel.file)
                .expect("module was just added")
                .1;
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(PARAM_BYTES),
                },
                count: None,
            }];
            for (i, binding) in kernel.bindings.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: binding.access == Access::Read,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(err) = pollster::block_on(scope.pop()) {
                return Err(DaleError::Gpu {
                    what: format!("compiling {}, entry {}", kernel.file, kernel.entry),
                    message: err.to_string(),
                });
            }
            table.kernels.push(kernel);
            table.layouts.push(layout);
            table.pipelines.push(pipeline);
        }
        Ok(table)
    }

    /// The kernel's place in the table. Kernels are statics, so one address is one kernel.
    pub fn index(&self, kernel: &'static Kernel) -> usize {
        self.kernels
            .iter()
            .position(|k| std::ptr::eq(*k, kernel))
            .unwrap_or_else(|| panic!("kernel {} is not in backend::kernels()", kernel.entry))
    }

    pub fn kernel(&self, index: usize) -> &'static Kernel {
        self.kernels[index]
    }

    pub fn layout(&self, index: usize) -> &wgpu::BindGroupLayout {
        &self.layouts[index]
    }

    pub fn pipeline(&self, index: usize) -> &wgpu::ComputePipeline {
        &self.pipelines[index]
    }
}
