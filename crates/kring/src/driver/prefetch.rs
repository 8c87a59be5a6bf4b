//! The prefetch behind [`kring_core::NextWrite`]: after an append, the
//! sending thread asks for the cache lines the partition's next record
//! will write (see that type for why). It lives here because a prefetch
//! instruction needs `unsafe` in Rust and the core has none.

use kring_core::NextWrite;

/// Prefetches `hint`'s lines into this core's caches. A hint only: no
/// memory is read or written, whatever the addresses.
#[inline(always)]
pub(crate) fn next_write(hint: NextWrite) {
    #[cfg(target_arch = "x86_64")]
    if let Some([last, before]) = hint.lines() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` is unsafe only for its `sse` target
        // feature, which every x86-64 CPU has (it is in the target's
        // baseline). PREFETCHT0 is a hint: it never faults, whatever the
        // address (the hint may be stale, its buffer reused or freed by
        // now), and has no effect the program can observe but timing.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(last as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(before as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = hint;
}
