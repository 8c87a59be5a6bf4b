//! The floor under kring's CPU per record at many partitions: a minimal
//! two-thread accumulator with no Kafka in it, doing only what any design
//! that fills per-partition batches on the sending thread and sends them
//! from another thread must do.
//!
//! Per record, the sending thread locks the partition's slot, copies a
//! 10-byte record head and a 100-byte value into the partition's buffer
//! (a 61-byte batch header first), and after `records_per_batch` records
//! swaps in a recycled buffer and hands the full one over. The other
//! thread, woken when the hand-over queue was empty, checksums each batch
//! (CRC32C), copies it into a 1 MiB "socket" buffer (the kernel's copy)
//! and hands the buffers back once per turn. No protocol, no timers, no
//! delivery reports, no allocation in steady state.
//!
//! Why: issue #14 asks for CPU per message at 10,000 partitions within
//! 1.5× of the 16-partition figure. With records round-robin over 10,000
//! partitions every slot and buffer line is cold when its record comes,
//! and batches hold a handful of records, each handed between cores. This
//! program measures what that costs on its own, so kring's figures can be
//! read against it (BENCHMARKS.md, round 7).
//!
//! Run: `cargo bench -p kring --bench handoff_floor -- PARTITIONS
//! RECORDS_PER_BATCH [RECORDS [SLOT_LINES [CRC_AT_SEAL]]]`, e.g. `-- 16
//! 148` and `-- 10000 7`; `SLOT_LINES` 3 makes each append write three
//! lines of its slot, as kring's does (default 1). `CRC_AT_SEAL` 1 moves
//! the checksum to the sending thread, computed as it hands a full batch
//! over, and leaves the other thread only the copy: the division of work
//! where the thread that wrote a batch also checksums it (BENCHMARKS.md,
//! "Per-batch cost", round 15, measures it; default 0).
//! Prints CPU ns per record of each thread (`CLOCK_THREAD_CPUTIME_ID`).

#![allow(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One partition's state, a cache line (or more) of its own.
#[repr(align(64))]
struct Slot {
    state: Mutex<Open>,
}

struct Open {
    buf: Vec<u8>,
    records: u32,
    /// Lines an append also writes besides the first (a slot of three
    /// lines, like kring's, with `-- P R N 3`).
    more: [[u64; 8]; 2],
}

/// Batches handed to the sending side's peer (with the checksum the sending
/// thread computed, or 0), and buffers handed back.
struct Handoff {
    sealed: Mutex<Vec<(Vec<u8>, u32)>>,
    free: Mutex<Vec<Vec<u8>>>,
    done: AtomicBool,
}

const HEADER: usize = 61;
const RECORD_HEAD: usize = 10;
const VALUE: usize = 100;

fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The sending peer: checksums (unless `crc_here` is false: the sending
/// thread did) and copies out every batch handed over, returns the
/// buffers once per turn. Returns its CPU time and a checksum
/// of everything it saw (so nothing is optimized away).
fn send_side(h: &Handoff, crc_here: bool) -> (u64, u32) {
    let start = thread_cpu_ns();
    let mut socket = vec![0u8; 1 << 20];
    let mut at = 0usize;
    let mut crc = 0u32;
    let mut turn = Vec::new();
    let mut back = Vec::new();
    loop {
        std::mem::swap(&mut turn, &mut *h.sealed.lock().unwrap());
        if turn.is_empty() {
            if h.done.load(Ordering::Acquire) && h.sealed.lock().unwrap().is_empty() {
                break;
            }
            std::thread::park();
            continue;
        }
        for (mut b, sealed_crc) in turn.drain(..) {
            crc ^= if crc_here {
                crc32c::crc32c(&b)
            } else {
                sealed_crc
            };
            if at + b.len() > socket.len() {
                at = 0;
            }
            socket[at..at + b.len()].copy_from_slice(&b);
            at += b.len();
            b.clear();
            back.push(b);
        }
        h.free.lock().unwrap().append(&mut back);
    }
    (thread_cpu_ns() - start, crc ^ socket[0] as u32)
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "--list") {
        // Test runners list a target's tests first (cargo-nextest, `cargo
        // test -- --list`): this program has none.
        return;
    }
    // `cargo bench` passes `--bench`; anything else (`cargo test
    // --benches`) gets a short run that only checks it works.
    let smoke = !raw.iter().any(|a| a == "--bench");
    let args: Vec<u64> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let partitions = args.first().copied().unwrap_or(10_000) as usize;
    let per_batch = args.get(1).copied().unwrap_or(7) as u32;
    let records = args
        .get(2)
        .copied()
        .unwrap_or(if smoke { 100_000 } else { 20_000_000 });
    let slot_lines = args.get(3).copied().unwrap_or(1) as usize;
    let crc_at_seal = args.get(4).copied().unwrap_or(0) == 1;
    let capacity = HEADER + per_batch as usize * (RECORD_HEAD + VALUE);

    let slots: Vec<Slot> = (0..partitions)
        .map(|_| Slot {
            state: Mutex::new(Open {
                buf: Vec::with_capacity(capacity),
                records: 0,
                more: [[0; 8]; 2],
            }),
        })
        .collect();
    let h = Arc::new(Handoff {
        sealed: Mutex::new(Vec::new()),
        free: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let peer = {
        let h = Arc::clone(&h);
        std::thread::Builder::new()
            .name("floor-io".into())
            .spawn(move || send_side(&h, !crc_at_seal))
            .unwrap()
    };
    let value = [7u8; VALUE];
    let head = [0u8; RECORD_HEAD];
    let start = thread_cpu_ns();
    for i in 0..records {
        let slot = &slots[(i % partitions as u64) as usize];
        let mut open = slot.state.lock().unwrap();
        if open.buf.is_empty() {
            open.buf.extend_from_slice(&[0u8; HEADER]);
        }
        open.buf.extend_from_slice(&head);
        open.buf.extend_from_slice(&value);
        open.records += 1;
        for line in open.more.iter_mut().take(slot_lines - 1) {
            line[0] = i;
        }
        if open.records == per_batch {
            let fresh = h
                .free
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(capacity));
            let full = std::mem::replace(&mut open.buf, fresh);
            open.records = 0;
            let crc = if crc_at_seal {
                crc32c::crc32c(&full)
            } else {
                0
            };
            let mut sealed = h.sealed.lock().unwrap();
            let wake = sealed.is_empty();
            sealed.push((full, crc));
            drop(sealed);
            if wake {
                peer.thread().unpark();
            }
        }
    }
    let sender = thread_cpu_ns() - start;
    h.done.store(true, Ordering::Release);
    peer.thread().unpark();
    let (io, crc) = peer.join().unwrap();
    let per = |ns: u64| ns as f64 / records as f64;
    println!(
        "partitions {partitions}, {per_batch} records/batch: sending thread {:.1} ns/record, \
         other thread {:.1}, total {:.1} (checksum {crc:08x})",
        per(sender),
        per(io),
        per(sender + io)
    );
}
