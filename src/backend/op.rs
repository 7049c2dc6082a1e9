//! What an op is to a backend: a bounds check, a CPU twin, and the dispatches of its kernel(s),
//! each with a `Params` block whose fields mirror the WGSL struct of the same name.

use super::cpu::Memory;
use super::{Element, ElementType, RawBuf};

/// One op, ready to run: its buffers and its spec. Written once in its family's folder.
pub trait Op {
    fn name(&self) -> &'static str;
    /// Panics on a bound outside a buffer (a bug in dale), naming the op and the buffer.
    fn check(&self);
    /// The CPU twin, run at once on the CPU backend's memory.
    fn run_cpu(&self, mem: &mut Memory);
    /// The kernel dispatches, in order; none when there is nothing to compute.
    fn dispatches(&self, limits: &DeviceLimits) -> Vec<Dispatch>;
}

/// A kernel's uniform parameters: a `#[repr(C)]` block of 4-byte scalars, declared with
/// `params!` so that its fields can be compared with the WGSL struct `WGSL_NAME`
/// (tests/params_mirror_wgsl.rs).
pub trait Params: bytemuck::Pod {
    const WGSL_NAME: &'static str;
    /// (field, type) in declaration order, types as WGSL writes them.
    const FIELDS: &'static [(&'static str, &'static str)];
}

/// Declares a kernel's Params struct: `#[repr(C)]`, Pod, and its field list for the mirror test.
macro_rules! params {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ident,)* }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::backend::Params for $name {
            const WGSL_NAME: &'static str = stringify!($name);
            const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), stringify!($ty))),*];
        }
    };
}
pub(crate) use params;

/// Bytes of one op's parameters: every Params block fits in 16 values (checked by `Kernel::new`).
pub const PARAM_BYTES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// A storage binding of a kernel (bindings 1, 2, ... in order; 0 is the Params block).
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub name: &'static str,
    pub element: ElementType,
    pub access: Access,
}

impl Binding {
    pub const fn read<T: Element>(name: &'static str) -> Self {
        Binding {
            name,
            element: T::TYPE,
            access: Access::Read,
        }
    }

    pub const fn write<T: Element>(name: &'static str) -> Self {
        Binding {
            name,
            element: T::TYPE,
            access: Access::ReadWrite,
        }
    }
}

/// One WGSL entry point: its file, its Params struct, and its storage bindings.
#[derive(Debug)]
pub struct Kernel {
    pub file: &'static str,
    pub source: &'static str,
    pub entry: &'static str,
    pub params: &'static str,
    pub params_fields: &'static [(&'static str, &'static str)],
    pub bindings: &'static [Binding],
}

impl Kernel {
    /// `wgsl` is (file name, source) of the family's shader.
    pub const fn new<P: Params>(
        wgsl: (&'static str, &'static str),
        entry: &'static str,
        bindings: &'static [Binding],
    ) -> Self {
        assert!(std::mem::size_of::<P>() <= PARAM_BYTES);
        Kernel {
            file: wgsl.0,
            source: wgsl.1,
            entry,
            params: P::WGSL_NAME,
            params_fields: P::FIELDS,
            bindings,
        }
    }
}

/// The limits of the device that shape dispatches.
#[derive(Clone, Copy, Debug)]
pub struct DeviceLimits {
    pub max_workgroups_per_dimension: u32,
}

/// One dispatch of a kernel: its buffers in binding order, its parameters and workgroup counts.
#[derive(Debug)]
pub struct Dispatch {
    pub kernel: &'static Kernel,
    pub buffers: Vec<RawBuf>,
    pub params: [u8; PARAM_BYTES],
    pub workgroups: [u32; 3],
}

impl Dispatch {
    pub fn new<P: Params>(
        kernel: &'static Kernel,
        buffers: &[RawBuf],
        params: P,
        workgroups: [u32; 3],
    ) -> Self {
        assert_eq!(
            P::WGSL_NAME,
            kernel.params,
            "{}: parameters of the wrong kernel",
            kernel.entry
        );
        let mut block = [0u8; PARAM_BYTES];
        block[..std::mem::size_of::<P>()].copy_from_slice(bytemuck::bytes_of(&params));
        Dispatch {
            kernel,
            buffers: buffers.to_vec(),
            params: block,
            workgroups,
        }
    }
}

/// Workgroup counts for `n` workgroups of a 1-D kernel, folded into two dimensions past the
/// per-dimension limit; the kernels rebuild the flat index from num_workgroups.
pub fn spread(n: usize, limits: &DeviceLimits) -> [u32; 3] {
    let max = limits.max_workgroups_per_dimension as usize;
    let x = n.clamp(1, max);
    let y = n.div_ceil(x).max(1);
    assert!(
        y <= max,
        "{n} workgroups exceed this adapter's {max} x {max}"
    );
    [x as u32, y as u32, 1]
}
