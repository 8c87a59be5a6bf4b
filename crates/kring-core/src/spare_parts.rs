//! A finished batch's bookkeeping (its completion and per-record table),
//! handed back to the sending threads for the next batch.
//!
//! Why: both are allocated by a sending thread when a batch opens and
//! were freed by the I/O thread when it completes. glibc's allocator
//! returns such a free to the allocating thread's arena under that arena's
//! lock, the lock the sending thread takes for its own allocations; at
//! 10,000 partitions (~200,000 batches a second, a few records each) the
//! two threads met on it thousands of times a second, each meeting a
//! futex sleep and wake-up (a `perf` profile of context switches put three
//! quarters of the I/O thread's on freeing completions and buffers). Kept
//! here, a completion no handle refers to any more is reset and reused,
//! and a per-record table keeps its vectors' capacity; what cannot be
//! reused is at least dropped by a sending thread, in its own arena.
//! Buffers go back through the buffer pool instead (`memory`), which keeps
//! them charged to `buffer.memory`.
//!
//! Bounded: at most [`MAX_KEPT`] sets are kept (a few hundred KiB); beyond
//! that the I/O thread drops them itself, as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::delivery::{BatchCompletion, PerRecord};

/// The most sets kept at once.
pub(crate) const MAX_KEPT: usize = 4096;

/// Completions and per-record tables of finished batches.
#[derive(Debug, Default)]
pub(crate) struct SpareParts {
    kept: Mutex<Vec<(Arc<BatchCompletion>, PerRecord)>>,
    /// `kept.len()`, readable without the lock.
    len: AtomicUsize,
}

impl SpareParts {
    /// Keeps a finished batch's completion and table (the I/O thread,
    /// after the batch's results are out), unless [`MAX_KEPT`] are kept.
    pub(crate) fn put(&self, completion: Arc<BatchCompletion>, per_record: PerRecord) {
        if self.len.load(Ordering::Relaxed) >= MAX_KEPT {
            return;
        }
        let mut g = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        g.push((completion, per_record));
        self.len.store(g.len(), Ordering::Relaxed);
    }

    /// A completion and an empty per-record table for a new batch of
    /// `partition`: reused if a kept completion has no other reference
    /// left, else new.
    pub(crate) fn take(&self, partition: i32) -> (Arc<BatchCompletion>, PerRecord) {
        if self.len.load(Ordering::Relaxed) > 0 {
            let kept = {
                let mut g = self.kept.lock().unwrap_or_else(|e| e.into_inner());
                let kept = g.pop();
                self.len.store(g.len(), Ordering::Relaxed);
                kept
            };
            if let Some((mut completion, per_record)) = kept {
                let per_record = per_record.emptied();
                if BatchCompletion::reset(&mut completion, partition) {
                    return (completion, per_record);
                }
                return (BatchCompletion::new(partition), per_record);
            }
        }
        (BatchCompletion::new(partition), PerRecord::default())
    }

    /// Sets kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryHandle;

    /// A completion no handle refers to comes back reset for its new
    /// partition; one a handle still holds is never reused (that handle
    /// would see the next batch's result).
    #[test]
    fn only_unreferenced_completions_are_reused() {
        let parts = SpareParts::default();
        let (a, mut t) = parts.take(3);
        t.push(1000, 0);
        t.push(1001, 0);
        t.push(1002, 0);
        let addr = Arc::as_ptr(&a);
        parts.put(a, t);
        assert_eq!(parts.len(), 1);
        let (b, t) = parts.take(7);
        assert_eq!(Arc::as_ptr(&b), addr, "reused");
        assert_eq!(b.partition(), 7);
        assert!(!b.is_done());
        assert_eq!(t.len(), 0, "the table comes back empty");

        let handle = DeliveryHandle::new(b.clone(), 0, 0);
        parts.put(b, t);
        let (c, _) = parts.take(1);
        assert_ne!(Arc::as_ptr(&c), addr, "still referenced: not reused");
        drop(handle);
        assert_eq!(parts.len(), 0);
    }

    #[test]
    fn at_most_max_kept() {
        let parts = SpareParts::default();
        for _ in 0..MAX_KEPT + 10 {
            parts.put(BatchCompletion::new(0), PerRecord::default());
        }
        assert_eq!(parts.len(), MAX_KEPT);
    }
}
