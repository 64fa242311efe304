//! Transparent huge pages for the engine's large arrays.
//!
//! In a book that does not fit in cache, nearly every record a command touches is also on a
//! page the TLB does not map, and under virtualisation a page walk costs several memory
//! accesses of its own. Backing the order pool, the level pool and the index tables with 2 MiB
//! pages removes most of those walks: +8–10 % on the benchmark's 1M-order deep book when the
//! kernel honours the advice (`cargo run --release -p bench --bin matcher -- --workload
//! deep_book`, THP `madvise` vs `always`).
//!
//! The advice is given once, when an array is allocated and before it is first written, so the
//! kernel can fault it in as huge pages (THP mode `madvise`, the default of Debian and Ubuntu,
//! or `always`; with `never` it is ignored). It changes how memory is backed, never its
//! contents: the engine behaves identically with or without it.

/// `n` copies of `fill` in a new `Vec`, its memory advised for huge pages before being written.
pub(crate) fn filled_vec<T: Clone>(n: usize, fill: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise(v.as_mut_ptr().cast::<u8>(), n * std::mem::size_of::<T>());
    v.resize(n, fill);
    v
}

#[cfg(target_os = "linux")]
fn advise(ptr: *mut u8, len: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    // Only the whole huge pages inside the allocation: a partial one would reach into memory
    // the allocation does not own.
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize + len) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        // SAFETY: `start..end` lies inside the allocation just made and not yet shared;
        // MADV_HUGEPAGE changes only how the kernel backs those pages, never their contents or
        // validity. Failure (a kernel without THP) leaves them as they were, so it is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_ptr: *mut u8, _len: usize) {}
