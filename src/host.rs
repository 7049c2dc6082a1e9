//! Host memory for large arrays (weights of N = 16384 take 1 GiB each): the CPU backend's
//! buffers, downloads, and arrays read from files.
//!
//! The first write to a fresh page costs a page fault: with 4 KiB pages that is ~0.7 s per GiB on
//! the 2-core machine BENCHMARKS.md names, more than one balancing pass over the same GiB. So
//! large buffers ask Linux for transparent huge pages (2 MiB, 512x fewer faults), as NumPy does
//! for its arrays. It is advice only: where the kernel declines, nothing changes but the speed.

/// `len` zeros, from fresh pages (calloc: nothing is written until the caller writes), advised
/// to use huge pages where they are large enough to.
pub fn zeroed_vec<T: bytemuck::Zeroable + Clone>(len: usize) -> Vec<T> {
    let v = vec![T::zeroed(); len];
    advise_huge_pages(&v);
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(v: &[T]) {
    const HUGE: usize = 2 << 20;
    let start = v.as_ptr() as usize;
    let (first, end) = (
        start.next_multiple_of(HUGE),
        (start + std::mem::size_of_val(v)) / HUGE * HUGE,
    );
    if end > first {
        // SAFETY: [first, end) lies inside `v`'s allocation, and MADV_HUGEPAGE changes how its
        // pages are backed, never their contents. An error only means the advice was not taken.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_: &[T]) {}
