//! A batch buffer's whole cycle — filled, sealed, stamped (frozen into
//! `Bytes` for a request), taken back once the request's clone is gone,
//! and filled again — allocates nothing after the buffer's first batch: a
//! counting global allocator watches the process while it runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use kring_protocol::record::{Compression, RecordBatchBuilder};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_reused_batch_buffer_allocates_nothing() {
    let value = [7u8; 100];
    let mut buf = None;
    let mut first = std::ptr::null();
    let mut before = 0;
    for round in 0..100 {
        if round == 1 {
            before = ALLOCATIONS.load(Ordering::Relaxed);
        }
        let mut b = match buf.take() {
            Some(m) => RecordBatchBuilder::in_buffer(1_000, m),
            None => RecordBatchBuilder::new(1_000, 256),
        };
        b.append(1_000 + round, None, Some(&value), &[]);
        let bytes = b.seal(Compression::None).unwrap().stamp(-1, -1, -1, false);
        if round == 0 {
            first = bytes.as_ptr();
        }
        // The request's reference, gone once its send completed.
        drop(std::hint::black_box(bytes.clone()));
        let back = bytes
            .try_into_mut()
            .expect("the only reference gives its buffer back");
        assert_eq!(back.as_ptr(), first, "the same buffer, not a copy");
        buf = Some(back);
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0);
}
