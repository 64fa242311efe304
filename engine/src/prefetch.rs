//! Software prefetch: a hint that starts loading a cache line the engine is about to touch, so
//! that independent cache misses overlap instead of waiting for each other.
//!
//! In a deep book the records a command touches are scattered over hundreds of megabytes: a
//! cancel reads an index bucket, the order, its two queue neighbours and its client-index bucket.
//! Only the first two depend on each other; the engine asks for the other three as soon as it
//! knows the order, and the CPU fetches them in parallel. A prefetch changes timing, never
//! behaviour: it reads nothing the engine sees and cannot fault.

/// Starts loading the cache line holding `*r` into every cache level.
#[inline(always)]
pub(crate) fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: `_mm_prefetch` is a hint: it never faults and reads nothing into the program.
        // SSE is part of the x86_64 baseline, so the instruction always exists.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = r;
    }
}
