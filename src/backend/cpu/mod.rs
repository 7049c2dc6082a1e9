//! The CPU backend: a real fallback and the reference every WGSL kernel is checked against (a
//! plain f64 loop oracle in tests/ checks it in turn). It runs each op's CPU twin at once; the
//! twins live with their ops, in the family folders (products on faer's and the gemm crate's
//! kernels, rayon over rows and batch entries, and dale's own loops compiled for each instruction
//! set and chosen at run time: `simd`).

pub mod simd;

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::{Backend, BackendInfo, Buf, Element, ElementType, Op, RawBuf, Slots};
use crate::error::DaleError;
use crate::host::{memory_bytes, try_zeroed_vec};

/// Elementwise work is split into blocks of this many values per rayon task: large enough that
/// task overhead vanishes, small enough to spread a [64 x 1000] state over all cores.
pub const BLOCK: usize = 4096;

/// The CPU backend's buffers: 4-byte words, viewed as each buffer's element type.
#[derive(Default)]
pub struct Memory {
    /// None once freed, and while an op holds the buffer it writes (`take`).
    slots: Slots<Vec<u32>>,
}

/// A buffer an op writes, taken out of memory so that its inputs can be borrowed beside it.
pub struct Taken<T> {
    words: Vec<u32>,
    id: u32,
    element: PhantomData<T>,
}

impl<T: Element> Deref for Taken<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        bytemuck::cast_slice(&self.words)
    }
}

impl<T: Element> DerefMut for Taken<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        bytemuck::cast_slice_mut(&mut self.words)
    }
}

impl Memory {
    fn words(&self, id: u32, label: &str) -> &Vec<u32> {
        self.slots.get(id).unwrap_or_else(|| {
            panic!("buffer '{label}' was freed, or is read by an op that also writes it")
        })
    }

    /// The values of an input.
    pub fn get<T: Element>(&self, buf: Buf<T>) -> &[T] {
        bytemuck::cast_slice(self.words(buf.id, buf.label))
    }

    /// An output, until `put` returns it; reading it meanwhile through `get` panics.
    pub fn take<T: Element>(&mut self, buf: Buf<T>) -> Taken<T> {
        let words = self.slots.slot(buf.id).take().unwrap_or_else(|| {
            panic!(
                "buffer '{}' was freed, or is written twice by one op",
                buf.label
            )
        });
        Taken {
            words,
            id: buf.id,
            element: PhantomData,
        }
    }

    pub fn put<T>(&mut self, taken: Taken<T>) {
        *self.slots.slot(taken.id) = Some(taken.words);
    }
}

/// The most 4-byte values one buffer may hold: a third of the machine's memory, since a command
/// holds a host copy of the weights it uploads beside the buffer, and its other arrays; where
/// the system does not say, what an allocation can address.
pub fn max_buffer_len() -> usize {
    memory_bytes().map_or(isize::MAX as usize / 4, |bytes| {
        usize::try_from(bytes / 3 / 4).unwrap_or(usize::MAX)
    })
}

#[derive(Default)]
pub struct CpuBackend {
    mem: Memory,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "cpu".into(),
            name: format!("CPU backend ({} threads)", rayon::current_num_threads()),
            device_type: "Cpu".into(),
            driver: format!(
                "faer and gemm kernels, dale's loops for {}, rayon",
                simd::Isa::detected().name()
            ),
            max_buffer_len: max_buffer_len(),
            shared_memory_len: memory_bytes().map(|b| usize::try_from(b / 4).unwrap_or(usize::MAX)),
        }
    }

    fn alloc_raw(
        &mut self,
        label: &'static str,
        len: usize,
        element: ElementType,
    ) -> Result<RawBuf, DaleError> {
        let words = try_zeroed_vec(len).ok_or_else(|| DaleError::TooLarge {
            path: label.into(),
            value: len,
            largest: max_buffer_len(),
            backend: self.info().name,
            why: "the allocator refused that many values (the machine's memory is in use)".into(),
        })?;
        let id = self.mem.slots.insert(words);
        Ok(RawBuf {
            id,
            len,
            label,
            element,
        })
    }

    fn upload_raw(&mut self, dst: RawBuf, offset: usize, bytes: &[u8]) -> Result<(), DaleError> {
        let words: &[u32] = bytemuck::cast_slice(bytes);
        let slot = self
            .mem
            .slots
            .slot(dst.id)
            .as_mut()
            .unwrap_or_else(|| panic!("upload: buffer '{}' was freed", dst.label));
        slot[offset..offset + words.len()].copy_from_slice(words);
        Ok(())
    }

    fn download_raw(
        &mut self,
        src: RawBuf,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), DaleError> {
        let out: &mut [u32] = bytemuck::cast_slice_mut(out);
        out.copy_from_slice(&self.mem.words(src.id, src.label)[offset..offset + out.len()]);
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
        // Copies move words, whatever the element type.
        let mut out = self
            .mem
            .slots
            .slot(dst.id)
            .take()
            .unwrap_or_else(|| panic!("copy: buffer '{}' was freed", dst.label));
        out[dst_offset..dst_offset + len]
            .copy_from_slice(&self.mem.words(src.id, src.label)[src_offset..src_offset + len]);
        *self.mem.slots.slot(dst.id) = Some(out);
    }

    fn free_raw(&mut self, buf: RawBuf) {
        self.mem.slots.remove(buf.id);
    }

    fn take_raw(&mut self, buf: RawBuf) -> Result<Vec<u32>, DaleError> {
        let words = self.mem.slots.remove(buf.id);
        Ok(words.unwrap_or_else(|| panic!("take: buffer '{}' was freed", buf.label)))
    }

    fn run(&mut self, op: &dyn Op) {
        op.check();
        op.run_cpu(&mut self.mem);
    }

    fn finish(&mut self) -> Result<(), DaleError> {
        Ok(())
    }
}
