//! Finished batch buffers kept for the next batches (spares), and the size classes they are kept by.
//!
//! Why finished buffers are kept as *spares*: a batch's buffer is
//! allocated by the sending thread and its last reference dropped by the
//! I/O thread. With glibc's allocator that free goes back to the sending
//! thread's arena under that arena's lock, which the sending thread holds
//! for its own allocations: at 10,000 partitions (a batch of a few records
//! per partition, ~200,000 batches a second) the two threads met on that
//! lock thousands of times a second, each meeting a futex sleep and
//! wake-up, and allocation was over a tenth of the profile. So the I/O
//! thread hands a finished buffer back ([`recycle`](BufferPool::recycle))
//! and the next batch of a similar size takes it
//! ([`take_spare_hinted`](BufferPool::take_spare_hinted)). A spare stays charged to
//! `buffer.memory` by its capacity, so the pool still bounds everything;
//! spares are given up (freed, their charge released) as soon as a
//! reservation does not fit or anyone waits for memory, and they never
//! hold more than half of the pool. Why half: a response completes a
//! request's batches (up to ~1,500 at 10,000 partitions) at once, and the
//! sending thread takes their buffers back one new batch at a time; with
//! an eighth, 13 % of finished buffers found no room and were freed (and
//! as many new ones allocated: 71–87 % of new batches found a spare),
//! with half about 1 % (96–97 % found one). The Java client's pool keeps
//! every free buffer up to the whole of `buffer.memory`.
//!
//! Why the I/O thread hands buffers back once per turn: the spares' lock
//! and stacks are written by the sending thread at every new batch. When
//! the I/O thread also wrote them at every finished batch, their cache
//! lines moved between the two cores twice per batch; at 10,000
//! partitions (a batch every few records) handing back once per turn took
//! a tenth off the client's CPU per message (BENCHMARKS.md, round 6). The
//! ledger keeps finished buffers (still charged) and hands them over
//! together, every 32 and at the turn's end
//! ([`recycle_all`](BufferPool::recycle_all): one lock of the spares, one
//! release). While a sender waits for memory, a finished
//! buffer goes back at once instead ([`recycle`](BufferPool::recycle)),
//! through a stash of its own (`returned`, on a line only the I/O thread
//! writes) sorted into the spares at the turn's end
//! ([`sort_returned`](BufferPool::sort_returned)). Stashed buffers count
//! as spares: a sender short of memory frees them like any other.

use std::sync::MutexGuard;

use bytes::BytesMut;

use crate::next_write::NextWrite;

use super::*;

/// Buffers of finished batches not sorted into the spares yet, each
/// charged by its capacity. Aligned to a cache line of its own: the I/O
/// thread writes it for every finished batch, and sending threads read it
/// only when memory runs short.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(super) struct Returned {
    bufs: Mutex<Vec<BytesMut>>,
    /// Their capacity, readable without the lock.
    bytes: AtomicUsize,
}

impl Returned {
    fn lock(&self) -> MutexGuard<'_, Vec<BytesMut>> {
        self.bufs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every buffer, leaving none; returns them with their capacity.
    fn take_all(&self) -> (Vec<BytesMut>, usize) {
        let bufs = std::mem::take(&mut *self.lock());
        let bytes: usize = bufs.iter().map(BytesMut::capacity).sum();
        (bufs, bytes)
    }
}

/// Size classes of buffers: four per power of two (256, 320, 384, 448,
/// 512, 640, ...), class `i` of size [`class_size`]`(i)`. New batch
/// buffers are sized to a class (see `shared::initial_capacity`) so that a
/// spare of a class fits every batch of that class.
/// Classes up to 3.5 GiB: buffers larger than that are never kept (and
/// `Spares::nonempty` has a bit per class).
const CLASSES: usize = 128;

/// Spares of at most this many bytes are taken oldest first, larger ones
/// newest first (see [`Spares::pop`]).
const OLDEST_FIRST_UP_TO: usize = 4096;

/// Whether `class`'s spares are taken oldest first (see [`Spares`]).
#[inline]
fn oldest_first(class: usize) -> bool {
    class_size(class) <= OLDEST_FIRST_UP_TO
}

/// The largest class at or below `cap` (`cap` at least 4).
fn class_at_or_below(cap: usize) -> usize {
    let p = (usize::BITS - 1 - cap.leading_zeros()) as usize;
    4 * p + ((cap >> (p - 2)) & 3)
}

/// The class a finished buffer of capacity `cap` is kept in as a spare,
/// if any keeps it.
fn spare_class(cap: usize) -> Option<usize> {
    (cap >= 4)
        .then(|| class_at_or_below(cap))
        .filter(|&c| c < CLASSES)
}

/// The size of class `i`.
fn class_size(i: usize) -> usize {
    (4 + (i & 3)) << (i / 4 - 2)
}

/// `n` rounded up to its size class (saturating at `usize::MAX`).
pub(crate) fn round_up_to_class(n: usize) -> usize {
    if n < 4 {
        return 4;
    }
    let i = class_at_or_below(n);
    let size = class_size(i);
    if size == n {
        n
    } else if i + 1 < CLASSES {
        class_size(i + 1)
    } else {
        usize::MAX
    }
}

/// Spare buffers by size class; a buffer sits in the largest class at or
/// below its capacity. Small classes are taken oldest first, large ones
/// newest first.
///
/// Why the order depends on the size: the buffer a batch finished last
/// was last touched by the I/O thread (it sealed, checksummed and sent
/// it), so its lines sit in that core's cache, and the sending thread's
/// first writes into it fetch them across cores. A large buffer is
/// filled in long runs the hardware prefetches ahead of, so this costs
/// little and the newest (whose lines are likeliest still cached at all)
/// is best. A small buffer is the many-partitions case — records of a
/// partition come far apart, each touching a line or two of its own — and
/// every such line is a miss of its own; the oldest spare has had time to
/// leave the I/O thread's cache. Measured with `kring perf` at 10,000
/// partitions and four records per batch: about 9 % less CPU per record
/// (oldest first for every size: 13 %, but 2.5 % more at 16 partitions,
/// which this rule leaves unchanged; BENCHMARKS.md, round 7).
#[derive(Debug)]
pub(super) struct Spares {
    classes: Vec<std::collections::VecDeque<BytesMut>>,
    /// Bit `i` set: class `i` is not empty (freeing all spares visits only
    /// those).
    nonempty: u128,
}

impl Default for Spares {
    fn default() -> Self {
        Spares {
            classes: (0..CLASSES)
                .map(|_| std::collections::VecDeque::new())
                .collect(),
            nonempty: 0,
        }
    }
}

impl Spares {
    fn push(&mut self, class: usize, buf: BytesMut) {
        self.classes[class].push_back(buf);
        self.nonempty |= 1 << class;
    }

    /// The class `take_spare` takes from for a batch of class `i`: the
    /// first non-empty one of `i` and the next three, else of the four
    /// below it, nearest first (one look at `nonempty` each way).
    fn nearest(&self, i: usize) -> Option<usize> {
        let up = (self.nonempty >> i) & 0xF;
        if up != 0 {
            return Some(i + up.trailing_zeros() as usize);
        }
        let below = (1u128 << i) - 1;
        let beyond = (1u128 << i.saturating_sub(4)) - 1;
        let down = self.nonempty & below & !beyond;
        (down != 0).then(|| 127 - down.leading_zeros() as usize)
    }

    fn pop(&mut self, class: usize) -> Option<BytesMut> {
        if self.nonempty & (1 << class) == 0 {
            return None;
        }
        let q = &mut self.classes[class];
        let b = if oldest_first(class) {
            q.pop_front()
        } else {
            q.pop_back()
        };
        if q.is_empty() {
            self.nonempty &= !(1 << class);
        }
        b
    }

    /// The spare [`pop`](Self::pop) would take next from `class`.
    fn peek(&self, class: usize) -> Option<&BytesMut> {
        let q = &self.classes[class];
        if oldest_first(class) {
            q.front()
        } else {
            q.back()
        }
    }

    /// Every spare, leaving none.
    fn take_all(&mut self) -> Vec<BytesMut> {
        let mut all = Vec::new();
        while self.nonempty != 0 {
            let class = self.nonempty.trailing_zeros() as usize;
            all.extend(self.classes[class].drain(..));
            self.nonempty &= !(1 << class);
        }
        all
    }
}

impl BufferPool {
    fn spares(&self) -> MutexGuard<'_, Spares> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`take_spare_hinted`](Self::take_spare_hinted) without the hint.
    #[cfg(test)]
    pub(crate) fn take_spare(&self, n: usize) -> Option<BytesMut> {
        self.take_spare_hinted(n).map(|(b, _)| b)
    }

    /// A spare buffer for a batch expected to need `n` bytes (holding an
    /// earlier batch's bytes, which the next batch writes over; charged by
    /// its capacity, which the caller now holds), if one is
    /// kept: one with room for `n` and less than twice that, else one of
    /// at least half of it (`n` has headroom for a record or a quarter
    /// more; a batch that outgrows it grows as any other, on the sending
    /// thread, and is charged as it grows).
    ///
    /// With it, the first lines of the spare that class gives out next:
    /// the sending thread's next new batch likely takes it, and its first
    /// line was last written by the I/O thread (the batch header it
    /// stamped), so the driver prefetches them (see [`NextWrite`]).
    pub(crate) fn take_spare_hinted(&self, n: usize) -> Option<(BytesMut, NextWrite)> {
        if self.spare_bytes.load(Ordering::Relaxed) == 0 || n < 16 {
            return None;
        }
        // The first class whose buffers all hold `n`: that one and the
        // next three, then the four below it, nearest first.
        let mut i = class_at_or_below(n);
        if class_size(i) < n {
            i += 1;
        }
        if i >= CLASSES {
            return None;
        }
        let mut g = self.spares();
        let c = g.nearest(i)?;
        let b = g.pop(c)?;
        let next = g.peek(c).map_or(NextWrite::NONE, |nb| {
            NextWrite::buffer_head(nb.as_ptr() as usize)
        });
        drop(g);
        self.spare_bytes.fetch_sub(b.capacity(), Ordering::SeqCst);
        Some((b, next))
    }

    /// Hands back the buffer of a finished batch that held `charged` bytes
    /// of the pool (the I/O thread): stashed (still charged by its
    /// capacity, the rest released) until [`sort_returned`] makes it a
    /// spare, if it fits the charge; otherwise freed and the whole charge
    /// released. If anyone waits for memory, every spare is given up.
    ///
    /// [`sort_returned`]: Self::sort_returned
    pub(crate) fn recycle(&self, buf: BytesMut, charged: usize) {
        let cap = buf.capacity();
        if spare_class(cap).is_none() || cap > charged {
            drop(buf);
            self.release(charged);
            return;
        }
        // Not cleared: the next batch writes its records over the old
        // bytes (see `RecordBatchBuilder::in_buffer`).
        {
            let mut g = self.returned.lock();
            g.push(buf);
            // Counted under the lock (a taker subtracts only what it found
            // there), and SeqCst before the waiters are read: a sender
            // that starts waiting after this reads `returned.bytes` after
            // counting itself as waiting (both SeqCst), so either it sees
            // this buffer and frees it, or we see it waiting below.
            self.returned.bytes.fetch_add(cap, Ordering::SeqCst);
        }
        self.release(charged - cap);
        if self.memory_wanted() {
            self.drop_spares();
        }
    }

    /// [`recycle`](Self::recycle) and [`sort_returned`](Self::sort_returned)
    /// for many buffers at once (a turn's finished batches), straight into
    /// the spares: the spares' lock, their counter, the release and the look
    /// for waiters once for all of them. Buffers are kept in the order
    /// given, up to half of the pool (the rest freed, after the lock is let
    /// go, and their charge released). Empties `bufs`.
    ///
    /// No sender misses them: as in `recycle`, `spare_bytes` grows (SeqCst)
    /// before the waiters are read, so a sender that starts waiting either
    /// sees these spares and frees them, or is seen here.
    pub(crate) fn recycle_all(&self, bufs: &mut Vec<(BytesMut, usize)>) {
        let mut kept = 0;
        let mut released = 0;
        {
            let mut g = self.spares();
            let mut room = self
                .spare_limit
                .saturating_sub(self.spare_bytes.load(Ordering::Relaxed));
            for (buf, charged) in bufs.iter_mut() {
                let cap = buf.capacity();
                let class = match spare_class(cap) {
                    Some(class) if cap <= *charged && cap <= room => class,
                    _ => {
                        // Freed below, outside the lock the sending threads
                        // take at every new batch.
                        released += *charged;
                        continue;
                    }
                };
                room -= cap;
                kept += cap;
                released += *charged - cap;
                // Not cleared, as in `recycle`.
                g.push(class, std::mem::take(buf));
            }
            self.spare_bytes.fetch_add(kept, Ordering::SeqCst);
        }
        bufs.clear();
        self.release(released);
        if self.memory_wanted() {
            self.drop_spares();
        }
    }

    /// Whether a sender waits for memory (blocked or a task). Spares are
    /// then given up, and finished buffers go back at once.
    pub(crate) fn memory_wanted(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0 || !self.tasks.is_empty()
    }

    /// Moves the buffers [`recycle`](Self::recycle) stashed into the
    /// spares, up to half of the pool in all (the rest freed and their
    /// charge released). The I/O thread calls this once per turn, after
    /// its completions.
    ///
    /// The stash stays locked until its buffers are spares: a sender
    /// short of memory frees them either before (stashed) or after
    /// (sorted), never misses them in between. So no waiter needs looking
    /// for here: `recycle` looked after stashing each.
    pub(crate) fn sort_returned(&self) {
        if self.returned.bytes.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut stash = self.returned.lock();
        let mut freed = Vec::new();
        let mut kept = 0;
        let mut bytes = 0;
        {
            let mut g = self.spares();
            let mut room = self
                .spare_limit
                .saturating_sub(self.spare_bytes.load(Ordering::Relaxed));
            for b in stash.drain(..) {
                let cap = b.capacity();
                bytes += cap;
                if cap <= room {
                    room -= cap;
                    kept += cap;
                    g.push(class_at_or_below(cap), b);
                } else {
                    freed.push(b);
                }
            }
            // Added before `returned.bytes` drops, so that a reserver
            // never sees both at zero while spares are kept.
            self.spare_bytes.fetch_add(kept, Ordering::SeqCst);
        }
        self.returned.bytes.fetch_sub(bytes, Ordering::SeqCst);
        drop(stash);
        drop(freed);
        self.release(bytes - kept);
    }

    /// Frees every spare and releases its charge (wakes waiting senders).
    /// Not for a thread holding `blocked`'s lock (see
    /// `try_reserve_holding_lock`).
    /// Also how the core gives them up when it finishes (no batch will
    /// take them any more).
    pub(crate) fn drop_spares(&self) {
        let bytes = self.free_spares();
        self.release(bytes);
    }

    /// Frees every spare (stashed ones too); returns their capacity,
    /// still charged.
    pub(super) fn free_spares(&self) -> usize {
        let (returned, returned_bytes) = self.returned.take_all();
        self.returned
            .bytes
            .fetch_sub(returned_bytes, Ordering::SeqCst);
        drop(returned);
        let freed = self.spares().take_all();
        let bytes: usize = freed.iter().map(BytesMut::capacity).sum();
        drop(freed);
        self.spare_bytes.fetch_sub(bytes, Ordering::SeqCst);
        bytes + returned_bytes
    }

    /// Capacity held as spares, sorted or not.
    pub(super) fn all_spare_bytes(&self) -> usize {
        self.spare_bytes.load(Ordering::SeqCst) + self.returned.bytes.load(Ordering::SeqCst)
    }

    /// Capacity held as spares (stashed ones included).
    #[cfg(test)]
    pub(crate) fn spare_bytes(&self) -> usize {
        self.all_spare_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classes are four per power of two, and a class's buffers hold any
    /// request that rounds up to it.
    #[test]
    fn size_classes() {
        let sizes: Vec<usize> = (32..44).map(class_size).collect();
        assert_eq!(
            sizes,
            [256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792]
        );
        for n in 4..70_000 {
            let r = round_up_to_class(n);
            assert!(r >= n && r - n <= n / 4, "{n} -> {r}");
            assert_eq!(class_size(class_at_or_below(r)), r);
            let below = class_size(class_at_or_below(n));
            assert!(below <= n && n - below < below / 4 + 1, "{n}: {below}");
        }
        assert_eq!(round_up_to_class(usize::MAX), usize::MAX);
        assert_eq!(round_up_to_class(16384), 16384);
        // The smallest sizes round up to the smallest class, 4 bytes.
        for n in 0..=4 {
            assert_eq!(round_up_to_class(n), 4, "{n}");
        }
        // The top: class 127 is 3.5 GiB, the largest kept as a spare;
        // above it a size rounds up to no class (saturates).
        let top = 7usize << 29;
        assert_eq!((class_at_or_below(top), class_size(127)), (127, top));
        assert_eq!(round_up_to_class((6 << 29) + 1), top);
        assert_eq!(round_up_to_class(top), top);
        assert_eq!(round_up_to_class(top + 1), usize::MAX);
        assert_eq!(spare_class(top), Some(127));
        assert_eq!(spare_class(4 << 30), None);
        assert_eq!((spare_class(3), spare_class(4)), (None, Some(8)));
    }

    /// What is and is not kept, and what a take prefers: a buffer larger
    /// than its charge is freed, not kept (a spare is charged by its whole
    /// capacity); a need of exactly a class's size takes from that class
    /// before a larger one; needs under 16 bytes take nothing.
    #[test]
    fn spares_keep_their_charge_and_fit_their_class() {
        let p = BufferPool::new(1 << 20);
        assert!(p.try_reserve(1000));
        let buf = BytesMut::with_capacity(1024);
        assert!(buf.capacity() > 512);
        p.recycle(buf, 512);
        p.sort_returned();
        assert_eq!(
            (p.spare_bytes(), p.used()),
            (0, 488),
            "freed, charge released"
        );
        p.release(488);
        let sizes = [16, class_size(40), class_size(44)];
        assert!(p.try_reserve(sizes.iter().sum()));
        {
            let mut g = p.spares();
            for size in sizes {
                let b = BytesMut::with_capacity(size);
                assert_eq!(b.capacity(), size);
                g.push(class_at_or_below(size), b);
                p.spare_bytes.fetch_add(size, Ordering::SeqCst);
            }
        }
        assert!(p.take_spare(0).is_none() && p.take_spare(15).is_none());
        assert_eq!(p.take_spare(16).map(|b| b.capacity()), Some(16));
        let exact = p.take_spare(class_size(40)).map(|b| b.capacity());
        assert_eq!(exact, Some(class_size(40)), "the exact class first");
    }

    /// A class that `pop` empties is known empty: the next take goes on
    /// to the nearest class that still has a spare, and none is found
    /// once all are taken.
    #[test]
    fn an_emptied_class_is_passed_over() {
        let mut s = Spares::default();
        for class in [40, 41] {
            s.push(class, BytesMut::with_capacity(class_size(class)));
        }
        assert_eq!(s.nearest(40), Some(40));
        assert!(s.pop(40).is_some());
        assert_eq!(s.nearest(40), Some(41));
        assert!(s.pop(41).is_some());
        assert_eq!((s.nearest(40), s.nonempty), (None, 0));
        assert!(s.pop(40).is_none());
    }

    /// `Spares::nearest` picks what searching class by class picks: the
    /// first non-empty of `i..i + 4`, else of `i - 4..i` from the top.
    #[test]
    fn nearest_spare_class_is_found_as_by_search() {
        let mut rng = crate::backoff::SplitMix64::new(7);
        for round in 0..20_000u32 {
            let mut s = Spares::default();
            // Sparse and dense masks, and ones near either end.
            let one_in = if round % 3 == 0 { 2 } else { 16 };
            for c in 0..CLASSES {
                if rng.next_u64().is_multiple_of(one_in) {
                    s.nonempty |= 1 << c;
                }
            }
            for i in 4..CLASSES {
                let searched = (i..(i + 4).min(CLASSES))
                    .chain((i - 4..i).rev())
                    .find(|&c| s.nonempty & (1 << c) != 0);
                assert_eq!(s.nearest(i), searched, "class {i}, mask {:#x}", s.nonempty);
            }
        }
    }

    /// A finished buffer is kept charged and handed to the next batch that
    /// fits it; a waiting sender or a reservation that does not fit frees
    /// the spares first.
    #[test]
    fn spares_stay_charged_and_give_way_to_reservations() {
        let p = BufferPool::new(8000);
        assert!(p.try_reserve(1000));
        let buf = BytesMut::with_capacity(640);
        let cap = buf.capacity();
        p.recycle(buf, 1000);
        assert_eq!(p.spare_bytes(), cap);
        assert_eq!(p.used(), cap, "the spare keeps its own charge only");
        assert!(p.take_spare(600).is_none(), "not sorted yet");
        p.sort_returned();
        assert_eq!((p.spare_bytes(), p.used()), (cap, cap));
        // A request over twice its size, or under half, finds nothing.
        assert!(p.take_spare(2 * cap + 1).is_none());
        assert!(p.take_spare(cap / 4).is_none());
        let b = p.take_spare(600).expect("a spare that fits");
        assert!(b.capacity() >= 600 && b.is_empty());
        assert_eq!(p.spare_bytes(), 0);
        assert_eq!(p.used(), cap, "the taker holds the charge now");
        p.recycle(b, cap);
        // A reservation that fits only without the spare frees it, sorted
        // or still stashed.
        assert!(p.try_reserve(8000 - cap / 2));
        assert_eq!(p.spare_bytes(), 0);
        assert_eq!(p.used(), 8000 - cap / 2);
        p.release(8000 - cap / 2);
        assert!(p.try_reserve(1000));
        p.recycle(BytesMut::with_capacity(640), 1000);
        p.sort_returned();
        assert!(p.try_reserve(8000 - cap / 2));
        assert_eq!((p.spare_bytes(), p.used()), (0, 8000 - cap / 2));
    }

    /// Small spares are taken oldest first, large ones newest first.
    #[test]
    fn small_spares_go_oldest_first_large_ones_newest_first() {
        for (cap, oldest) in [(640, true), (OLDEST_FIRST_UP_TO, true), (16_384, false)] {
            let p = BufferPool::new(1 << 20);
            let bufs: Vec<BytesMut> = (0..3).map(|_| BytesMut::with_capacity(cap)).collect();
            let order: Vec<*const u8> = bufs.iter().map(|b| b.as_ptr()).collect();
            for b in bufs {
                let c = b.capacity();
                assert!(p.try_reserve(c));
                p.recycle(b, c);
                p.sort_returned();
            }
            let taken: Vec<*const u8> = (0..3)
                .map(|_| p.take_spare(cap).expect("a spare").as_ptr())
                .collect();
            let mut want = order.clone();
            if !oldest {
                want.reverse();
            }
            assert_eq!(taken, want, "capacity {cap}");
        }
    }

    /// The hint a taken spare comes with names the first lines of the
    /// spare its class gives out next, in either order, and none when the
    /// class is left empty.
    #[test]
    fn a_taken_spare_names_the_next_one() {
        for cap in [640, 16_384] {
            let p = BufferPool::new(1 << 20);
            for _ in 0..3 {
                let b = BytesMut::with_capacity(cap);
                let c = b.capacity();
                assert!(p.try_reserve(c));
                p.recycle(b, c);
                p.sort_returned();
            }
            let mut hint = None;
            for _ in 0..3 {
                let (b, next) = p.take_spare_hinted(cap).expect("a spare");
                if let Some(h) = hint {
                    assert_eq!(
                        h,
                        NextWrite::buffer_head(b.as_ptr() as usize),
                        "capacity {cap}"
                    );
                }
                hint = Some(next);
            }
            assert_eq!(hint, Some(NextWrite::NONE), "capacity {cap}");
        }
    }

    /// A buffer finished while a sender waits for memory is not kept from
    /// it: whichever of the two sees the other first frees the spare
    /// (the recycler, seeing a waiter, or the waiter, re-checking under
    /// its lock — where freeing spares must not take that lock again).
    /// Repeated so both orders occur.
    #[test]
    fn a_waiting_sender_gets_finished_buffers() {
        for _ in 0..300 {
            let p = Arc::new(BufferPool::new(1000));
            assert!(p.try_reserve(1000));
            let t = blocked_reserver(&p, 500);
            p.recycle(BytesMut::with_capacity(512), 1000);
            assert!(t.join().unwrap());
            assert_eq!(p.spare_bytes(), 0);
            assert_eq!(p.used(), 500);
        }
    }

    /// A sender woken in its wait while spares are kept frees them and
    /// proceeds — without taking the wait's lock a second time (it did,
    /// and hung, when first written).
    #[test]
    fn a_sender_woken_with_spares_kept_frees_them() {
        let p = Arc::new(BufferPool::new(1000));
        assert!(p.try_reserve(1000));
        let p2 = p.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(p2.reserve_blocking(500, Duration::from_secs(600)));
        });
        while p.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // 512 of the 1,000 reserved bytes become a spare (as `recycle`
        // does before it looks for waiters), then the waiter is woken.
        {
            let mut g = p.spares();
            g.push(class_at_or_below(512), BytesMut::with_capacity(512));
            p.spare_bytes.fetch_add(512, Ordering::SeqCst);
        }
        p.wake_blocked();
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the woken sender hung");
        assert!(got);
        assert_eq!(p.spare_bytes(), 0);
        assert_eq!(p.used(), 1000 - 512 + 500);
    }

    /// A finished buffer charged by exactly its capacity releases nothing
    /// as it comes back; while a sender waits for memory it is not kept
    /// as a spare but freed, so the waiter gets the memory now rather
    /// than at the end of its `max.block.ms` — handed back alone or with
    /// others.
    #[test]
    fn a_buffer_holding_every_byte_a_waiter_needs_is_freed_for_it() {
        for together in [false, true] {
            let p = Arc::new(BufferPool::new(1024));
            assert!(p.try_reserve(1024));
            let waiter = sleeping_reserver(&p, 1000, Duration::from_secs(600), 1);
            let buf = BytesMut::with_capacity(1024);
            assert_eq!(buf.capacity(), 1024);
            if together {
                p.recycle_all(&mut vec![(buf, 1024)]);
            } else {
                p.recycle(buf, 1024);
            }
            assert!(outcome(&waiter), "together {together}");
            assert_eq!((p.spare_bytes(), p.used()), (0, 1000));
        }
    }

    /// A woken thread that frees the spares and still does not fit hands
    /// the turn to a thread behind it that fits in what they gave back
    /// (rather than leaving it asleep until the next release).
    #[test]
    fn spares_freed_by_a_thread_that_does_not_fit_go_to_one_that_does() {
        let p = Arc::new(BufferPool::new(1000));
        assert!(p.try_reserve(1000));
        let oldest = sleeping_reserver(&p, 600, Duration::from_secs(600), 1);
        let behind = sleeping_reserver(&p, 300, Duration::from_secs(600), 2);
        // 512 bytes of spares: the oldest (600) does not fit but is woken
        // anyway (nobody holds a turn); it frees them, still does not fit,
        // and the one behind it (300) does.
        {
            let mut g = p.spares();
            g.push(class_at_or_below(512), BytesMut::with_capacity(512));
            p.spare_bytes.fetch_add(512, Ordering::SeqCst);
        }
        p.wake_blocked();
        assert!(
            outcome(&behind),
            "what the spares gave back was not handed on"
        );
        assert_eq!((p.spare_bytes(), p.used()), (0, 1000 - 512 + 300));
        p.release(400);
        assert!(outcome(&oldest));
        assert_eq!((p.used(), p.waiters()), (988, 0));
    }

    /// Spares never hold more than half of the pool.
    #[test]
    fn spares_are_bounded() {
        let p = BufferPool::new(8 * 4096);
        assert!(p.try_reserve(8 * 4096));
        for _ in 0..8 {
            p.recycle(BytesMut::with_capacity(4096), 4096);
        }
        assert_eq!(p.spare_bytes(), 8 * 4096, "stashed, all still charged");
        p.sort_returned();
        assert_eq!(p.spare_bytes(), 4 * 4096);
        assert_eq!(p.used(), 4 * 4096);
    }

    /// A turn's buffers handed back together become spares in the order
    /// given, up to half of the pool; the rest are freed and their charge
    /// released, as are buffers no size class keeps and the part of a
    /// charge beyond a buffer's capacity.
    #[test]
    fn buffers_handed_back_together_are_spares_up_to_the_bound() {
        let p = BufferPool::new(8 * 4096);
        assert!(p.try_reserve(8 * 4096));
        let mut bufs: Vec<(BytesMut, usize)> = Vec::new();
        for i in 0..6 {
            let mut b = BytesMut::with_capacity(4096);
            b.extend_from_slice(&[i as u8; 10]);
            bufs.push((b, 4096));
        }
        // Charged more than its capacity: the difference goes back.
        bufs.push((BytesMut::with_capacity(1024), 4096));
        // Too small for any class: freed.
        bufs.push((BytesMut::new(), 4096));
        p.recycle_all(&mut bufs);
        assert!(bufs.is_empty());
        assert_eq!(p.spare_bytes(), 4 * 4096, "half of the pool");
        assert_eq!(p.used(), 4 * 4096);
        // Kept in the order given: the first four, with their bytes (not
        // cleared: a batch writes its records over them).
        let got: Vec<(usize, Vec<u8>)> = std::iter::from_fn(|| p.take_spare(4096))
            .map(|b| (b.capacity(), b.to_vec()))
            .collect();
        let want: Vec<(usize, Vec<u8>)> = (0..4).map(|i| (4096, vec![i as u8; 10])).collect();
        assert_eq!(got, want);
        assert_eq!(p.spare_bytes(), 0);
        assert_eq!(p.used(), 4 * 4096, "taken spares stay charged");
    }

    /// A sender waiting for memory when a turn's buffers come back gets
    /// them (it waits for 600 s otherwise). Repeated so both orders occur
    /// (the sender counted as waiting before or after the spares were
    /// added).
    #[test]
    fn a_waiting_sender_gets_buffers_handed_back_together() {
        for _ in 0..300 {
            let p = Arc::new(BufferPool::new(1000));
            assert!(p.try_reserve(1000));
            let t = blocked_reserver(&p, 500);
            let mut bufs = vec![
                (BytesMut::with_capacity(256), 500),
                (BytesMut::with_capacity(256), 500),
            ];
            p.recycle_all(&mut bufs);
            assert!(t.join().unwrap());
            // It freed what it needed (one spare or both); a spare left
            // stays charged.
            assert!(p.spare_bytes() <= 256);
            assert_eq!(p.used(), 500 + p.spare_bytes());
        }
    }
}
