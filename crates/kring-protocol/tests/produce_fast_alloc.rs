//! The fast ProduceResponse decoder sizes its lists by the counts a
//! broker sends, capped by what the frame could hold: a count of 2^31
//! topics or partitions in a small frame must not reserve memory for them.
//! A global allocator records the largest allocation while it decodes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kring_protocol::produce_fast::decode_produce_response_ok;

struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// A ProduceResponse v3 frame (no size prefix) claiming `topics` topics,
/// the first named "t" with `partitions` partitions, then `padding` zero
/// bytes (which read as all-OK partitions until the frame runs out).
fn absurd_frame(topics: i32, partitions: i32, padding: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    f.extend_from_slice(&topics.to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.push(b't');
    f.extend_from_slice(&partitions.to_be_bytes());
    f.resize(f.len() + padding, 0);
    f
}

#[test]
fn absurd_counts_reserve_no_more_than_the_frame_could_hold() {
    for (topics, partitions) in [(1, i32::MAX), (i32::MAX, 1), (i32::MAX, i32::MAX)] {
        let frame = absurd_frame(topics, partitions, 64 * 1024);
        LARGEST.store(0, Ordering::Relaxed);
        let decoded = decode_produce_response_ok(&frame, 3);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert_eq!(decoded, None, "the frame runs out before the counts");
        // A topic takes at least 2 bytes of the frame and is kept in 16, a
        // partition at least 14 and is kept in 40: a list never needs more
        // than 8 times the frame.
        assert!(
            largest <= 8 * frame.len(),
            "{topics} topics, {partitions} partitions: an allocation of {largest} bytes \
             for a frame of {}",
            frame.len()
        );
    }
}
