//! The prefetch behind [`kring_core::NextWrite`]: after an append, the
//! sending thread asks for the cache lines the partition's next record
//! will write, and after opening a batch those of the spare buffer its
//! next batch will take (see that type for why). It lives here because a prefetch
//! instruction needs `unsafe` in Rust and the core has none.

use kring_core::{AppendOutcome, NextWrite};

/// Prefetches the lines an append's outcome names: where the
/// partition's next record goes, and the spare buffer the next new batch
/// takes ([`AppendOutcome::next_buffer`], set only on the path that
/// opened a batch).
#[inline(always)]
pub(crate) fn after_append<D>(o: &AppendOutcome<D>) {
    lines(o.next_write);
    lines(o.next_buffer);
}

/// Prefetches `hint`'s lines into this core's caches. A hint only: no
/// memory is read or written, whatever the addresses.
#[inline(always)]
fn lines(hint: NextWrite) {
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
