//! Where a partition's next record will be written: the cache lines a
//! driver may prefetch right after an append.
//!
//! Why: with records spread over many partitions, a partition's next
//! record comes after the sending thread has written into hundreds or
//! thousands of other batches. The lines that record will write are cold
//! by then: last read by the I/O thread (checksum, send) when the buffer
//! carried an earlier batch, or never touched. Each is a demand miss of
//! its own, since a batch grows by one record per pass over the
//! partitions and the hardware prefetcher sees no stream, and the miss is
//! waited for at the slot's unlock, a locked instruction that drains the
//! stores before it. On a machine whose two cores are far apart that wait
//! is a cross-core round trip per line (BENCHMARKS.md, "Per-batch cost",
//! round 12). Fetching the lines when the previous record is appended
//! takes the wait off the path: by the partition's next record they are
//! in this core's cache.
//!
//! The same goes, once per batch, for the spare buffer the sending
//! thread's next new batch will take: its first line holds the batch
//! header the I/O thread stamped last, so writing it means taking the line
//! from the other core's cache ([`BufferPool::take_spare_hinted`]
//! names it).
//!
//! [`BufferPool::take_spare_hinted`]: crate::memory::BufferPool::take_spare_hinted
//!
//! The core is free of `unsafe`, and a prefetch instruction needs it in
//! Rust, so the core only names the lines ([`NextWrite`], in every
//! [`AppendOutcome`](crate::AppendOutcome)) and the driver issues the
//! prefetches. A hint is an address and nothing more: it is never
//! dereferenced, and a stale one (the batch taken and its buffer reused
//! meanwhile) costs a wasted prefetch, nothing else.

/// Where a partition's next record will end, if it is as long as the
/// last one: the address of its last byte (0: no hint, the batch was
/// sealed). A driver prefetches that byte's cache line and the line
/// before it ([`lines`](Self::lines)): with the line the last record
/// ended in (which it just wrote), that covers every line of a record of
/// up to 129 bytes, and the last two of a longer one (which is written in
/// one sequential copy the hardware prefetcher follows). One address, so
/// that the append path pays an addition for it and the driver two
/// prefetches.
///
/// The lines are not clamped to the buffer's capacity: a read prefetch
/// past it (of a neighbouring allocation) takes nothing from anyone, and
/// the check would cost more on every record than it saves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextWrite(usize);

impl NextWrite {
    /// No hint.
    pub const NONE: NextWrite = NextWrite(0);

    /// For a record of `len` bytes (at least 1: a record is never empty)
    /// written at address `tail`, a heap address.
    #[inline(always)]
    pub(crate) fn after(tail: usize, len: usize) -> NextWrite {
        NextWrite(tail.wrapping_add(len).wrapping_sub(1))
    }

    /// The first two lines of a buffer at address `start`: a recycled
    /// batch buffer the sending thread is about to write a batch header
    /// and first record into.
    #[inline(always)]
    pub(crate) fn buffer_head(start: usize) -> NextWrite {
        NextWrite(start.wrapping_add(64))
    }

    /// The two addresses to prefetch: the next record's last byte and the
    /// byte a cache line (64 bytes) before it (`None`: no hint).
    #[inline(always)]
    pub fn lines(self) -> Option<[usize; 2]> {
        (self.0 != 0).then(|| [self.0, self.0.wrapping_sub(64)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache lines a hint's prefetches reach.
    fn lines(h: NextWrite) -> Vec<usize> {
        let mut v: Vec<usize> = h.lines().into_iter().flatten().map(|a| a & !63).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every line a record of `len` bytes at `tail` spans, except the
    /// one `tail` is in, is among the prefetched lines (for `len` up to
    /// 129); beyond that, the record's last two lines are.
    #[test]
    fn the_prefetched_lines_cover_the_next_record() {
        for tail in 0x1000..0x1040 {
            for len in 1..=300usize {
                let got = lines(NextWrite::after(tail, len));
                let first = (tail & !63) + 64;
                let last = (tail + len - 1) & !63;
                let want: Vec<usize> = (first..=last).step_by(64).collect();
                let need: &[usize] = if want.len() > 2 {
                    &want[want.len() - 2..]
                } else {
                    &want
                };
                assert!(
                    need.iter().all(|l| got.contains(l)),
                    "tail {tail:#x} len {len}: need {need:x?}, got {got:x?}"
                );
                if len <= 129 {
                    assert!(want.len() <= 2, "tail {tail:#x} len {len}");
                }
            }
        }
        assert_eq!(NextWrite::NONE.lines(), None);
    }

    #[test]
    fn a_buffer_head_is_its_first_two_lines() {
        assert_eq!(lines(NextWrite::buffer_head(0x2000)), [0x2000, 0x2040]);
    }
}
