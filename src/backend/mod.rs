//! Buffers and ops. A backend owns typed buffers and runs ops; models are written against the
//! op families (`linalg`, `rate`, `train`, `balance`, `sort`, `perceptron`), each a trait that every backend has.
//!
//! An op is one unit in its family's folder (as in vello, where each stage's WGSL and CPU code
//! pair up): its spec, its `#[repr(C)]` Params (mirrored by the WGSL struct of the same name), its
//! bounds check, its CPU twin and its kernel descriptor. A backend implements only `Backend`:
//! memory, and `run` for any op. The CPU backend (`cpu`) runs an op's twin at once; the GPU
//! backend (`gpu`, wgpu) records the op's dispatches and submits many steps at once.

pub mod balance;
pub mod cpu;
pub mod gpu;
pub mod linalg;
mod op;
pub mod perceptron;
pub mod rate;
pub mod select;
pub mod sort;
pub mod spiking;
pub mod train;

use std::marker::PhantomData;

pub use balance::BalanceOps;
pub use linalg::LinalgOps;
pub use op::{spread, Access, Binding, DeviceLimits, Dispatch, Kernel, Op, Params};
pub use perceptron::PerceptronOps;
pub use rate::RateOps;
pub use sort::SortOps;
pub use train::TrainOps;

use crate::error::DaleError;

/// Every kernel, by family: the GPU backend compiles these once when it opens a device.
pub fn kernels() -> impl Iterator<Item = &'static Kernel> {
    [
        linalg::KERNELS,
        rate::KERNELS,
        train::KERNELS,
        balance::KERNELS,
        sort::KERNELS,
        perceptron::KERNELS,
        spiking::KERNELS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// The element types a buffer may hold: 4-byte scalars, as WGSL storage arrays take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    F32,
    U32,
}

/// A type a buffer may hold.
pub trait Element: bytemuck::Pod + Send + Sync + 'static {
    const TYPE: ElementType;
}

impl Element for f32 {
    const TYPE: ElementType = ElementType::F32;
}

impl Element for u32 {
    const TYPE: ElementType = ElementType::U32;
}

/// A buffer of `len` values of type T owned by a backend. Small and `Copy`, as in vello's
/// recordings; the label names it in errors and GPU validation messages.
#[derive(Debug)]
pub struct Buf<T> {
    pub id: u32,
    pub len: usize,
    pub label: &'static str,
    element: PhantomData<T>,
}

impl<T> Clone for Buf<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Buf<T> {}

impl<T> PartialEq for Buf<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for Buf<T> {}

impl<T: Element> Buf<T> {
    pub fn raw(self) -> RawBuf {
        RawBuf {
            id: self.id,
            len: self.len,
            label: self.label,
            element: T::TYPE,
        }
    }
}

/// A buffer with its element type as a value: what backends store and kernels bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBuf {
    pub id: u32,
    pub len: usize,
    pub label: &'static str,
    pub element: ElementType,
}

impl RawBuf {
    /// The typed handle, checking the element type.
    pub fn typed<T: Element>(self) -> Buf<T> {
        assert_eq!(
            self.element,
            T::TYPE,
            "buffer '{}' holds {:?}",
            self.label,
            self.element
        );
        Buf {
            id: self.id,
            len: self.len,
            label: self.label,
            element: PhantomData,
        }
    }
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

    /// phi'(v), as train.wgsl computes it.
    pub fn slope(self, v: f32) -> f32 {
        match self {
            Phi::Linear => 1.0,
            Phi::Relu => f32::from(u8::from(v > 0.0)),
            Phi::Tanh => {
                let th = v.tanh();
                1.0 - th * th
            }
        }
    }

    /// The code the kernels switch on (rate.wgsl, train.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Phi::Linear => 0,
            Phi::Relu => 1,
            Phi::Tanh => 2,
        }
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
    /// Largest number of 4-byte values one buffer may hold on this backend.
    pub max_buffer_len: usize,
    /// Values all buffers together may hold where they share the host's memory (the CPU
    /// backend); None where they live in a device's own memory, whose size wgpu does not report
    /// (running out there is a GPU error, not a crash).
    pub shared_memory_len: Option<usize>,
}

/// The largest v <= `value` for which `fits(v)` holds, by bisection (`fits` holds for every v up
/// to some bound and none beyond); 0 when none does.
pub fn largest_that_fits(value: usize, fits: impl Fn(usize) -> bool) -> usize {
    if fits(value) {
        return value;
    }
    let (mut lo, mut hi) = (0usize, value);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Memory and ops, untyped so that models can hold `&mut dyn Backend`; `BufferOps` gives the
/// typed calls and the family traits the ops. Ops are recorded, not necessarily run: the GPU
/// backend batches them into one submission and runs them at a download or `finish`. Offsets and
/// lengths are in values. Bounds are checked when an op is recorded: a bad bound is a bug in
/// dale and panics, naming the op and the buffer.
pub trait Backend: Send {
    fn info(&self) -> BackendInfo;
    fn alloc_raw(
        &mut self,
        label: &'static str,
        len: usize,
        element: ElementType,
    ) -> Result<RawBuf, DaleError>;
    /// Writes `bytes` (whole values of dst's type) at value `offset`.
    fn upload_raw(&mut self, dst: RawBuf, offset: usize, bytes: &[u8]) -> Result<(), DaleError>;
    /// Reads `out.len()` bytes (whole values) from value `offset`, after everything recorded.
    fn download_raw(&mut self, src: RawBuf, offset: usize, out: &mut [u8])
        -> Result<(), DaleError>;
    fn copy_raw(
        &mut self,
        src: RawBuf,
        src_offset: usize,
        dst: RawBuf,
        dst_offset: usize,
        len: usize,
    );
    /// Gives the buffer back. Ops recorded before still see it; its handle must not be used again.
    fn free_raw(&mut self, buf: RawBuf);
    /// All of the buffer's values, after everything recorded, and the buffer given back: a
    /// download and a free, where the CPU backend hands its storage over without copying it (a
    /// balanced 1 GiB J read back needs no second GiB).
    fn take_raw(&mut self, buf: RawBuf) -> Result<Vec<u32>, DaleError> {
        let mut words = crate::host::zeroed_vec::<u32>(buf.len);
        self.download_raw(buf, 0, bytemuck::cast_slice_mut(&mut words))?;
        self.free_raw(buf);
        Ok(words)
    }
    /// Runs (CPU) or records (GPU) one op, after its bounds check.
    fn run(&mut self, op: &dyn Op);
    /// Runs everything recorded and waits for it.
    fn finish(&mut self) -> Result<(), DaleError>;
}

/// Typed buffers on any backend.
pub trait BufferOps: Backend {
    fn alloc<T: Element>(&mut self, label: &'static str, len: usize) -> Result<Buf<T>, DaleError> {
        Ok(self.alloc_raw(label, len, T::TYPE)?.typed())
    }

    /// A new buffer holding `data`.
    fn alloc_from<T: Element>(
        &mut self,
        label: &'static str,
        data: &[T],
    ) -> Result<Buf<T>, DaleError> {
        let buf = self.alloc(label, data.len())?;
        self.upload(buf, 0, data)?;
        Ok(buf)
    }

    fn upload<T: Element>(
        &mut self,
        dst: Buf<T>,
        offset: usize,
        data: &[T],
    ) -> Result<(), DaleError> {
        check_range(dst.raw(), offset, data.len(), "upload");
        self.upload_raw(dst.raw(), offset, bytemuck::cast_slice(data))
    }

    fn download<T: Element>(
        &mut self,
        src: Buf<T>,
        offset: usize,
        len: usize,
    ) -> Result<Vec<T>, DaleError> {
        check_range(src.raw(), offset, len, "download");
        let mut out = crate::host::zeroed_vec::<T>(len);
        self.download_raw(src.raw(), offset, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }

    fn copy<T: Element>(
        &mut self,
        src: Buf<T>,
        src_offset: usize,
        dst: Buf<T>,
        dst_offset: usize,
        len: usize,
    ) {
        check_range(src.raw(), src_offset, len, "copy");
        check_range(dst.raw(), dst_offset, len, "copy");
        assert_ne!(
            src.id, dst.id,
            "copy: source and destination '{}' are one buffer",
            dst.label
        );
        self.copy_raw(src.raw(), src_offset, dst.raw(), dst_offset, len)
    }

    fn free<T: Element>(&mut self, buf: Buf<T>) {
        self.free_raw(buf.raw())
    }

    /// All of `buf`'s values, and `buf` freed (`Backend::take_raw`).
    fn take<T: Element>(&mut self, buf: Buf<T>) -> Result<Vec<T>, DaleError> {
        Ok(bytemuck::allocation::cast_vec(self.take_raw(buf.raw())?))
    }
}

impl<B: Backend + ?Sized> BufferOps for B {}

/// Buffers that live and die together, such as a run's or a trainer's: `free` gives them all
/// back, so that a scene that builds trainer after trainer holds one trainer's memory at a time.
#[derive(Debug, Default)]
pub struct Scope {
    bufs: Vec<RawBuf>,
}

impl Scope {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alloc<T: Element>(
        &mut self,
        be: &mut (impl Backend + ?Sized),
        label: &'static str,
        len: usize,
    ) -> Result<Buf<T>, DaleError> {
        let buf = be.alloc::<T>(label, len)?;
        self.bufs.push(buf.raw());
        Ok(buf)
    }

    pub fn alloc_from<T: Element>(
        &mut self,
        be: &mut (impl Backend + ?Sized),
        label: &'static str,
        data: &[T],
    ) -> Result<Buf<T>, DaleError> {
        let buf = self.alloc(be, label, data.len())?;
        be.upload(buf, 0, data)?;
        Ok(buf)
    }

    pub fn free(self, be: &mut (impl Backend + ?Sized)) {
        for buf in self.bufs {
            be.free_raw(buf);
        }
    }

    /// Frees one of the scope's buffers before the others.
    pub fn free_one<T: Element>(&mut self, be: &mut (impl Backend + ?Sized), buf: Buf<T>) {
        self.forget(buf);
        be.free(buf);
    }

    /// One of the scope's buffers read back and freed before the others (`BufferOps::take`).
    pub fn take<T: Element>(
        &mut self,
        be: &mut (impl Backend + ?Sized),
        buf: Buf<T>,
    ) -> Result<Vec<T>, DaleError> {
        self.forget(buf);
        be.take(buf)
    }

    fn forget<T: Element>(&mut self, buf: Buf<T>) {
        let at = self.bufs.iter().position(|b| b.id == buf.id);
        self.bufs
            .swap_remove(at.expect("the buffer belongs to this scope"));
    }
}

/// A backend's buffers by id: a freed id is taken again by the next allocation (the GPU backend
/// forgets the freed buffer's bind groups first).
pub(crate) struct Slots<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(value);
                id
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Frees the id, and returns the value it held.
    pub(crate) fn remove(&mut self, id: u32) -> Option<T> {
        self.free.push(id);
        self.slots[id as usize].take()
    }

    /// The slot itself: None once removed (or while the CPU backend lends it to an op).
    pub(crate) fn slot(&mut self, id: u32) -> &mut Option<T> {
        &mut self.slots[id as usize]
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.slots[id as usize].as_ref()
    }

    /// Every slot, by id, for recording commands on them.
    pub(crate) fn all(&self) -> &[Option<T>] {
        &self.slots
    }
}

/// Panics unless `offset..offset + len` lies inside `buf`, naming the op and the buffer.
pub(crate) fn check_range(buf: RawBuf, offset: usize, len: usize, op: &str) {
    assert!(
        offset + len <= buf.len,
        "{op}: range {offset}..{} is outside buffer '{}' of {} values",
        offset + len,
        buf.label,
        buf.len
    );
}
