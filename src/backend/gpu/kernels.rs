//! The kernel table: each WGSL file of shaders/ compiled once per device, one pipeline per entry
//! point, each with an explicit layout (binding 0: the op's parameters at a dynamic offset;
//! then its storage buffers in order).

use crate::error::DaleError;

/// Bytes of one op's parameters: every Params struct in shaders/ fits in 16 words.
pub const PARAM_BYTES: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matmul,
    EulerStep,
    ReduceRows,
    ReduceCols,
    Costs,
    CostFlowsBands,
    CostFlowsFinish,
    HUpdate,
    TaskTransform,
    EulerBackward,
    ScaledDifference,
    SgdStep,
}

impl Kernel {
    pub const ALL: [Kernel; 12] = [
        Kernel::Matmul,
        Kernel::EulerStep,
        Kernel::ReduceRows,
        Kernel::ReduceCols,
        Kernel::Costs,
        Kernel::CostFlowsBands,
        Kernel::CostFlowsFinish,
        Kernel::HUpdate,
        Kernel::TaskTransform,
        Kernel::EulerBackward,
        Kernel::ScaledDifference,
        Kernel::SgdStep,
    ];

    fn source(self) -> (&'static str, &'static str) {
        match self {
            Kernel::Matmul => ("matmul.wgsl", include_str!("../../../shaders/matmul.wgsl")),
            Kernel::EulerStep => ("rate.wgsl", include_str!("../../../shaders/rate.wgsl")),
            Kernel::ReduceRows | Kernel::ReduceCols => {
                ("reduce.wgsl", include_str!("../../../shaders/reduce.wgsl"))
            }
            Kernel::Costs
            | Kernel::CostFlowsBands
            | Kernel::CostFlowsFinish
            | Kernel::HUpdate
            | Kernel::TaskTransform => (
                "balance.wgsl",
                include_str!("../../../shaders/balance.wgsl"),
            ),
            Kernel::EulerBackward | Kernel::ScaledDifference | Kernel::SgdStep => {
                ("bptt.wgsl", include_str!("../../../shaders/bptt.wgsl"))
            }
        }
    }

    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Matmul => "matmul",
            Kernel::EulerStep => "euler_step",
            Kernel::ReduceRows => "reduce_rows",
            Kernel::ReduceCols => "reduce_cols",
            Kernel::Costs => "costs",
            Kernel::CostFlowsBands => "cost_flows_bands",
            Kernel::CostFlowsFinish => "cost_flows_finish",
            Kernel::HUpdate => "h_update",
            Kernel::TaskTransform => "task_transform",
            Kernel::EulerBackward => "euler_backward",
            Kernel::ScaledDifference => "scaled_difference",
            Kernel::SgdStep => "sgd_step",
        }
    }

    /// Whether each storage binding (1, 2, ...) is read-only.
    fn storage(self) -> &'static [bool] {
        match self {
            Kernel::Matmul => &[true, true, false],
            Kernel::EulerStep => &[false, false, true],
            Kernel::ReduceRows | Kernel::ReduceCols => &[true, false],
            Kernel::Costs
            | Kernel::CostFlowsBands
            | Kernel::CostFlowsFinish
            | Kernel::TaskTransform => &[true, true, false],
            Kernel::HUpdate => &[true, false, false, false],
            Kernel::EulerBackward => &[false, true, true, true],
            Kernel::ScaledDifference => &[true, true, false],
            Kernel::SgdStep => &[false, true],
        }
    }
}

pub struct Kernels {
    layouts: Vec<wgpu::BindGroupLayout>,
    pipelines: Vec<wgpu::ComputePipeline>,
}

impl Kernels {
    pub fn build(device: &wgpu::Device) -> Result<Self, DaleError> {
        let mut layouts = Vec::new();
        let mut pipelines = Vec::new();
        let mut modules: Vec<(&str, wgpu::ShaderModule)> = Vec::new();
        for kernel in Kernel::ALL {
            let (file, text) = kernel.source();
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            if !modules.iter().any(|(f, _)| *f == file) {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(file),
                    source: wgpu::ShaderSource::Wgsl(text.into()),
                });
                modules.push((file, module));
            }
            let module = &modules
                .iter()
                .find(|(f, _)| *f == file)
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
            for (i, &read_only) in kernel.storage().iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.entry()),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.entry()),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.entry()),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(kernel.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
            if let Some(err) = pollster::block_on(scope.pop()) {
                return Err(DaleError::Gpu {
                    what: format!("compiling {file}, entry {}", kernel.entry()),
                    message: err.to_string(),
                });
            }
            layouts.push(layout);
            pipelines.push(pipeline);
        }
        Ok(Self { layouts, pipelines })
    }

    fn index(kernel: Kernel) -> usize {
        Kernel::ALL
            .iter()
            .position(|k| *k == kernel)
            .expect("every kernel is in ALL")
    }

    pub fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[Self::index(kernel)]
    }

    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines[Self::index(kernel)]
    }
}
