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
//! A batch has a completion only once a record of it was sent with a
//! handle (`send`); records sent without one (`produce`, `try_send`,
//! results through the delivery callback) never make one, so completions
//! and tables are kept apart.
//!
//! Bounded: at most [`MAX_KEPT`] of each are kept (a few hundred KiB);
//! beyond that the I/O thread drops them itself.
//!
//! Only tables that hold heap memory are kept (a context vector, or runs
//! beyond the inline ones): most batches' tables have none, and a new one
//! costs nothing, while taking a kept one costs the sending thread this
//! module's lock, a line shared with the I/O thread, at every new batch
//! (3 % of all samples at 10,000 partitions).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::delivery::{BatchCompletion, PerRecord};

/// The most completions, and the most tables, kept at once.
pub(crate) const MAX_KEPT: usize = 4096;

/// The largest table kept (heap bytes): a batch takes a kept table's
/// capacity with it and charges it to `buffer.memory` when it opens, past
/// the limit if need be, so what one new batch can add beyond the limit
/// stays this small. Larger tables are dropped.
pub(crate) const MAX_TABLE_BYTES: usize = 1024;

/// The most heap bytes all kept tables hold together: kept tables are not
/// charged to `buffer.memory` (no batch holds them), so this is part of
/// the producer's constant overhead.
pub(crate) const MAX_KEPT_TABLE_BYTES: usize = 256 * 1024;

/// Completions and per-record tables of finished batches.
#[derive(Debug, Default)]
pub(crate) struct SpareParts {
    kept: Mutex<Kept>,
    /// `kept.completions.len()`, readable without the lock.
    completions: AtomicUsize,
    /// `kept.tables.len()`, readable without the lock.
    tables: AtomicUsize,
}

#[derive(Debug, Default)]
struct Kept {
    completions: Vec<Arc<BatchCompletion>>,
    tables: Vec<PerRecord>,
    /// The heap bytes of `tables`.
    table_bytes: usize,
}

impl SpareParts {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps finished batches' completions (those that had one) and
    /// tables, each up to [`MAX_KEPT`], emptying `finished` (the I/O
    /// thread, once per turn, after the batches' results are out). Once
    /// per turn rather than per batch: the sending thread takes from these
    /// lists at every new batch, and their cache lines would otherwise
    /// cross between the cores twice per batch (see `memory`).
    pub(crate) fn put_all(&self, finished: &mut Vec<(Option<Arc<BatchCompletion>>, PerRecord)>) {
        if finished.is_empty() {
            return;
        }
        let mut g = self.lock();
        for (completion, table) in finished.iter_mut() {
            if g.completions.len() >= MAX_KEPT && g.tables.len() >= MAX_KEPT {
                break;
            }
            if g.completions.len() < MAX_KEPT {
                if let Some(c) = completion.take() {
                    g.completions.push(c);
                }
            }
            let bytes = table.heap_bytes();
            if g.tables.len() < MAX_KEPT
                && table.has_capacity()
                && bytes <= MAX_TABLE_BYTES
                && g.table_bytes + bytes <= MAX_KEPT_TABLE_BYTES
            {
                g.table_bytes += bytes;
                g.tables.push(std::mem::take(table));
            }
        }
        self.completions
            .store(g.completions.len(), Ordering::Relaxed);
        self.tables.store(g.tables.len(), Ordering::Relaxed);
        drop(g);
        // What did not fit is dropped here, outside the lock the sending
        // threads take at every new batch.
        finished.clear();
    }

    /// An empty per-record table for a new batch, with a finished batch's
    /// capacity if one is kept.
    pub(crate) fn take_table(&self) -> PerRecord {
        if self.tables.load(Ordering::Relaxed) == 0 {
            return PerRecord::default();
        }
        let t = self.pop_table(&mut self.lock());
        Self::emptied(t)
    }

    /// A completion for a batch of `partition`: reused if a kept one has
    /// no other reference left, else new.
    pub(crate) fn take_completion(&self, partition: i32) -> Arc<BatchCompletion> {
        if self.completions.load(Ordering::Relaxed) == 0 {
            return BatchCompletion::new(partition);
        }
        let c = self.pop_completion(&mut self.lock());
        Self::reused(c, partition)
    }

    /// [`take_completion`](Self::take_completion) and
    /// [`take_table`](Self::take_table) under one lock.
    pub(crate) fn take_both(&self, partition: i32) -> (Arc<BatchCompletion>, PerRecord) {
        if self.completions.load(Ordering::Relaxed) == 0 || self.tables.load(Ordering::Relaxed) == 0
        {
            return (self.take_completion(partition), self.take_table());
        }
        let (c, t) = {
            let mut g = self.lock();
            (self.pop_completion(&mut g), self.pop_table(&mut g))
        };
        (Self::reused(c, partition), Self::emptied(t))
    }

    fn pop_completion(&self, g: &mut Kept) -> Option<Arc<BatchCompletion>> {
        let c = g.completions.pop();
        self.completions
            .store(g.completions.len(), Ordering::Relaxed);
        c
    }

    fn pop_table(&self, g: &mut Kept) -> Option<PerRecord> {
        let t = g.tables.pop();
        if let Some(t) = &t {
            g.table_bytes -= t.heap_bytes();
        }
        self.tables.store(g.tables.len(), Ordering::Relaxed);
        t
    }

    fn emptied(kept: Option<PerRecord>) -> PerRecord {
        kept.map_or_else(PerRecord::default, PerRecord::emptied)
    }

    fn reused(kept: Option<Arc<BatchCompletion>>, partition: i32) -> Arc<BatchCompletion> {
        if let Some(mut c) = kept {
            if BatchCompletion::reset(&mut c, partition) {
                return c;
            }
            // Still referenced by a handle: dropped here, by a sending
            // thread, in its own arena.
        }
        BatchCompletion::new(partition)
    }

    /// Completions and tables kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        (
            self.completions.load(Ordering::Relaxed),
            self.tables.load(Ordering::Relaxed),
        )
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
        let (a, mut t) = parts.take_both(3);
        // Contexts: the table holds a vector, so it is kept.
        t.push(1000, 1);
        t.push(1001, 2);
        t.push(1002, 3);
        let addr = Arc::as_ptr(&a);
        parts.put_all(&mut vec![(Some(a), t)]);
        assert_eq!(parts.len(), (1, 1));
        let (b, t) = parts.take_both(7);
        assert_eq!(Arc::as_ptr(&b), addr, "reused");
        assert_eq!(b.partition(), 7);
        assert!(!b.is_done());
        assert_eq!(t.len(), 0, "the table comes back empty");

        let handle = DeliveryHandle::new(b.clone(), 0, 0);
        parts.put_all(&mut vec![(Some(b), t)]);
        let c = parts.take_completion(1);
        assert_ne!(Arc::as_ptr(&c), addr, "still referenced: not reused");
        drop(handle);
        assert_eq!(parts.len(), (0, 1));
    }

    /// A batch without a completion gives back its table alone.
    #[test]
    fn tables_come_back_without_completions() {
        let parts = SpareParts::default();
        let mut t = parts.take_table();
        t.push(5, 1);
        parts.put_all(&mut vec![(None, t)]);
        assert_eq!(parts.len(), (0, 1));
        let (c, t) = parts.take_both(2);
        assert_eq!((c.partition(), t.len()), (2, 0));
        assert_eq!(parts.len(), (0, 0));
    }

    /// A table that holds no heap memory (inline runs, no contexts) is
    /// not kept: taking it back would cost the lock and gain nothing. Its
    /// completion still is.
    #[test]
    fn tables_without_heap_memory_are_not_kept() {
        let parts = SpareParts::default();
        let (c, mut t) = parts.take_both(1);
        for ms in 0..8 {
            t.push(1000 + ms, 0);
        }
        assert!(!t.has_capacity());
        parts.put_all(&mut vec![(Some(c), t)]);
        assert_eq!(parts.len(), (1, 0));
        // Nine runs: the ninth goes to the vector, and the table is kept.
        let mut t = parts.take_table();
        for ms in 0..9 {
            t.push(1000 + ms, 0);
        }
        assert!(t.has_capacity());
        parts.put_all(&mut vec![(None, t)]);
        assert_eq!(parts.len(), (1, 1));
    }

    fn with_capacity() -> PerRecord {
        let mut t = PerRecord::default();
        t.push(1, 1);
        t
    }

    /// Completions and tables are kept up to their own limits: once
    /// [`MAX_KEPT`] completions are kept, tables still are, and the other
    /// way round.
    #[test]
    fn completions_and_tables_fill_up_apart() {
        let parts = SpareParts::default();
        let mut finished: Vec<_> = (0..MAX_KEPT + 10)
            .map(|_| (Some(BatchCompletion::new(0)), PerRecord::default()))
            .collect();
        parts.put_all(&mut finished);
        assert_eq!(parts.len(), (MAX_KEPT, 0));
        let mut finished: Vec<_> = (0..MAX_KEPT + 10)
            .map(|_| (None, with_capacity()))
            .collect();
        parts.put_all(&mut finished);
        assert_eq!(parts.len(), (MAX_KEPT, MAX_KEPT));
        // The other way round: tables first.
        let parts = SpareParts::default();
        let mut finished: Vec<_> = (0..MAX_KEPT + 10)
            .map(|_| (None, with_capacity()))
            .collect();
        parts.put_all(&mut finished);
        assert_eq!(parts.len(), (0, MAX_KEPT));
        let mut finished: Vec<_> = (0..MAX_KEPT + 10)
            .map(|_| (Some(BatchCompletion::new(0)), PerRecord::default()))
            .collect();
        parts.put_all(&mut finished);
        assert_eq!(parts.len(), (MAX_KEPT, MAX_KEPT));
    }

    /// Kept tables hold at most [`MAX_KEPT_TABLE_BYTES`] of heap memory
    /// together, also after some were taken and others put back.
    #[test]
    fn kept_tables_stay_within_their_byte_limit() {
        let parts = SpareParts::default();
        // A table of a few hundred bytes: its records' contexts.
        let table = || {
            let mut t = PerRecord::default();
            for i in 0..32 {
                t.push(1, i);
            }
            t
        };
        let bytes = table().heap_bytes();
        assert!(bytes <= MAX_TABLE_BYTES, "{bytes}");
        let fit = MAX_KEPT_TABLE_BYTES / bytes;
        assert!(fit < MAX_KEPT, "the byte limit is the one reached: {bytes}");
        let tables = |n: usize| -> Vec<_> { (0..n).map(|_| (None, table())).collect() };
        parts.put_all(&mut tables(fit + 1));
        assert_eq!(parts.len().1, fit);
        // One taken, two put back: one of them fits.
        let _ = parts.take_table();
        parts.put_all(&mut tables(2));
        assert_eq!(parts.len().1, fit);
        assert_eq!(parts.lock().table_bytes, fit * bytes);
        // All taken: all fit again.
        for _ in 0..fit {
            let _ = parts.take_table();
        }
        assert_eq!(parts.lock().table_bytes, 0);
        parts.put_all(&mut tables(fit));
        assert_eq!(parts.len().1, fit);
    }

    #[test]
    fn at_most_max_kept() {
        let parts = SpareParts::default();
        let mut finished: Vec<_> = (0..MAX_KEPT + 10)
            .map(|_| (Some(BatchCompletion::new(0)), with_capacity()))
            .collect();
        parts.put_all(&mut finished);
        assert!(finished.is_empty());
        assert_eq!(parts.len(), (MAX_KEPT, MAX_KEPT));
    }
}
