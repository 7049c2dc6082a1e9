//! Host memory for large arrays (weights of N = 16384 take 1 GiB each): the CPU backend's
//! buffers, downloads, and arrays read from files.
//!
//! The first write to a fresh page costs a page fault: with 4 KiB pages that is ~0.7 s per GiB on
//! the 2-core machine BENCHMARKS.md names, more than one balancing pass over the same GiB. So
//! large buffers ask Linux for transparent huge pages (2 MiB, 512x fewer faults), as NumPy does
//! for its arrays. It is advice only: where the kernel declines, nothing changes but the speed.

/// `len` zeros, from fresh pages (calloc: nothing is written until the caller writes), advised
/// to use huge pages where they are large enough to. Aborts where the memory cannot be had, as
/// `vec!` does: for buffers that already passed `try_zeroed_vec` or a size check.
pub fn zeroed_vec<T: bytemuck::Zeroable>(len: usize) -> Vec<T> {
    try_zeroed_vec(len).unwrap_or_else(|| {
        std::alloc::handle_alloc_error(
            std::alloc::Layout::array::<T>(len).unwrap_or(std::alloc::Layout::new::<T>()),
        )
    })
}

/// `zeroed_vec`, or None where the allocator refuses (a size the machine cannot hold), so that
/// the caller can say which buffer did not fit instead of aborting.
pub fn try_zeroed_vec<T: bytemuck::Zeroable>(len: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    if layout.size() == 0 {
        return Some(std::iter::repeat_with(T::zeroed).take(len).collect());
    }
    // SAFETY: the layout has a non-zero size. A non-null result points to `len` zeroed values
    // of T (all-zero bytes are a valid T: Zeroable), allocated by the global allocator with the
    // layout Vec<T> uses for capacity `len`, so the Vec may own and free it.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            return None;
        }
        let v = Vec::from_raw_parts(ptr, len, len);
        advise_huge_pages(&v);
        Some(v)
    }
}

/// The machine's memory in bytes (MemTotal), where the system says; None elsewhere.
pub fn memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
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
