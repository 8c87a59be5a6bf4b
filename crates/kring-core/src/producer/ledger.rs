//! The batch ledger: the one owner of every batch the I/O thread knows of,
//! from the notice that announced it to its final result.
//!
//! **Invariant:** every batch (and every part of a split batch) leaves the
//! ledger exactly once, through [`Ledger::complete`] (held batches),
//! [`Ledger::fail_queued`] or [`Ledger::fail_open`] (batches that never
//! left the accumulator), and only there is its `buffer.memory`
//! reservation released, the delivery callback run (fenced), its handles
//! resolved and the flush accounting updated. [`Ledger::split`] turns one
//! held batch into two, each then owing its own result for its records.
//! Every field here and every field of [`InBatch`] that this accounting
//! depends on is private to this module, so "every record gets exactly one
//! final result" is kept by module privacy, not by convention: no other
//! part of the core can drop a batch from the slab, skip the callback or
//! forget a flush.
//!
//! What the rest of the core may still change on a held batch is narrow and
//! named: restamping producer id/epoch/sequence after an epoch bump
//! ([`InBatch::restamp_after_bump`]; the first stamp is the ledger's, in
//! [`Ledger::hold`]), the attempt count, the last broker error and the
//! "may have been written" flag (the retry and idempotence logic owns
//! those facts).
//!
//! The batch's [`BatchCompletion`] (what
//! users' handles wait on) can only be settled with a [`Settle`], which
//! only this module can make: nothing else in the crate can resolve a
//! batch's handles behind the ledger's back.

use std::collections::{BTreeMap, VecDeque};
use std::ops::{Index, IndexMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kring_protocol::record::SealedBatch;
use kring_protocol::ErrorCode;
use slab::Slab;

use crate::delivery::{
    report_batch, BatchCompletion, CallbackPanics, DeliveryCallback, DeliveryError, MessageStatus,
    Outcome, PerRecord, Span,
};
use crate::shared::Shared;
use crate::signal::Signal;
use crate::topics::{Leaving, OpenBatch, QueuedBatch};

/// Finished batches' buffers handed back to the pool together (see
/// `Ledger::finished_bufs`).
const RETURN_EVERY: usize = 32;

/// The right to settle a [`BatchCompletion`]
/// (complete it, split it, complete a part). Its field is private to this
/// module, so only the ledger can make one: the completion's settling
/// methods take it, and "a batch's handles resolve only through the
/// ledger" is kept by privacy.
pub(crate) struct Settle(());

impl Settle {
    /// A key for the delivery module's own unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Settle {
        Settle(())
    }
}

use super::partition::TopicCore;
use super::{BatchKey, CoreStats, PartKey};

/// The producer fields a batch is stamped with: producer id, epoch and base
/// sequence (each -1 without idempotence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) pid: i64,
    pub(crate) epoch: i16,
    pub(crate) seq: i32,
}

impl Stamp {
    /// Without idempotence: no producer id, epoch or sequence.
    pub(crate) const NONE: Stamp = Stamp {
        pid: -1,
        epoch: -1,
        seq: -1,
    };
}

/// A batch drained from the accumulator and held by the ledger (on the
/// wire or waiting for a retry).
///
/// Laid out by hand: a slab entry of four cache lines, aligned, so a
/// batch costs four lines wherever its entry is (296 bytes in the
/// compiler's order, at any offset in their lines, were five or six): at
/// 10,000 partitions a response completes hundreds of batches held since
/// their request was built, each line a miss of its own. Line 0 holds
/// what counting the batch into a request and matching and acknowledging
/// its response read, line 1 the bytes and what finishing hands back,
/// line 2 the per-record table's inline timestamps (the delivery
/// callback's), line 3 the rest of the table and what only retries,
/// splits and failures read. (The slab marks an entry occupied in a
/// niche of the table's last vector, on line 3; completing a batch moves
/// the whole entry out of the slab, so all four lines are read once per
/// batch in any case.)
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct InBatch {
    // Line 0.
    created: Instant,
    serial: u64,
    part: PartKey,
    /// Producer id, base sequence and epoch it was stamped with (-1
    /// without idempotence).
    pid: i64,
    flush_gen: u64,
    records: u32,
    seq: i32,
    /// Sends so far.
    attempts: u32,
    epoch: i16,
    /// An attempt may have been written: it went unanswered, or was
    /// answered with an error a broker may raise after appending
    /// (`batch::may_have_appended`). Such a batch is only ever re-sent
    /// with the producer id, epoch and sequence it was sent with, so the
    /// broker can recognise it as a duplicate; cleared only when the broker
    /// proves it absent (see `idempotence.rs`). Fails as possibly
    /// persisted.
    maybe_written: bool,
    // Line 1.
    /// The wire bytes, stamped (its length is the batch's size).
    data: Bytes,
    /// The handles' completion, if any record was sent with a handle.
    completion: Option<Arc<BatchCompletion>>,
    reserved: usize,
    /// Which records of the batch this is, once split; `None`: all.
    span: Option<Span>,
    /// The batch's place in its partition's record order: the serial it
    /// was drained with (`order_serial`) and, for a part of a split
    /// batch, its first record's index.
    order_first: u32,
    // Lines 2-3.
    /// Per-record timestamps and contexts (callback only).
    per_record: PerRecord,
    order_serial: u64,
    /// The broker's message for `last_error` (allocated only for a failed
    /// attempt).
    last_error_message: Option<Arc<str>>,
    /// The broker error the last attempt was answered with.
    last_error: Option<ErrorCode>,
}

impl InBatch {
    /// A serial unique among every batch the ledger ever held: tells a
    /// response for an earlier holder of the same slab key apart.
    pub(super) fn serial(&self) -> u64 {
        self.serial
    }

    /// The batch's place in its partition's record order. The retry queue
    /// of a partition without idempotence is kept in this order (with
    /// idempotence, sequence order).
    pub(super) fn order(&self) -> (u64, u32) {
        (self.order_serial, self.order_first)
    }

    /// Its partition.
    pub(super) fn part(&self) -> PartKey {
        self.part
    }

    /// Its encoded size in bytes.
    pub(super) fn size(&self) -> usize {
        self.data.len()
    }

    /// Its record count.
    pub(super) fn records(&self) -> u32 {
        self.records
    }

    /// When its first record was appended (the delivery timeout's start).
    pub(super) fn created(&self) -> Instant {
        self.created
    }

    /// Bytes of `buffer.memory` it holds (released by the ledger only).
    pub(super) fn reserved(&self) -> usize {
        self.reserved
    }

    /// Sends so far.
    pub(super) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// One more send of it was written into a request.
    pub(super) fn note_attempt(&mut self) {
        self.attempts += 1;
    }

    /// Base sequence (-1 without idempotence).
    pub(super) fn seq(&self) -> i32 {
        self.seq
    }

    /// The producer id it was stamped with.
    pub(super) fn pid(&self) -> i64 {
        self.pid
    }

    /// The epoch it was stamped with.
    pub(super) fn epoch(&self) -> i16 {
        self.epoch
    }

    /// The last broker error it was answered with, and its message.
    pub(super) fn last_error(&self) -> Option<(ErrorCode, Option<&Arc<str>>)> {
        self.last_error
            .map(|code| (code, self.last_error_message.as_ref()))
    }

    /// Records the broker error an attempt was answered with, and the
    /// broker's message for it (replacing an earlier attempt's).
    pub(super) fn set_last_error(&mut self, err: ErrorCode, message: Option<&str>) {
        self.last_error = Some(err);
        self.last_error_message = message.map(Arc::from);
    }

    /// Whether an attempt may have been written.
    pub(super) fn maybe_written(&self) -> bool {
        self.maybe_written
    }

    /// Sets or clears (the broker proved it absent) "an attempt may have
    /// been written".
    pub(super) fn set_maybe_written(&mut self, maybe: bool) {
        self.maybe_written = maybe;
    }

    /// Whether the batch may be in the log if it fails now.
    pub(super) fn status(&self) -> MessageStatus {
        if self.maybe_written {
            MessageStatus::PossiblyPersisted
        } else {
            MessageStatus::NotPersisted
        }
    }

    /// The wire bytes (stamped).
    pub(super) fn bytes(&self) -> Bytes {
        self.data.clone()
    }

    /// Restamps with a sequence rewritten by an epoch bump: a copy with
    /// the new producer fields.
    pub(super) fn restamp_after_bump(&mut self, pid: i64, epoch: i16, seq: i32) {
        self.pid = pid;
        self.epoch = epoch;
        self.seq = seq;
        self.data = kring_protocol::record::restamp(&self.data, pid, epoch, seq);
    }
}

/// The parts of the core a batch's final result touches besides the
/// ledger: borrowed for one completion, so the ledger needs no access to
/// the rest of the core and the core exposes nothing more.
pub(super) struct Outlet<'a> {
    /// Memory is released into `shared.pool`; callback panics counted.
    pub(super) shared: &'a Shared,
    /// The producer's delivery callback, if any.
    pub(super) callback: Option<&'a DeliveryCallback>,
    /// Batch and panic counters.
    pub(super) stats: &'a mut CoreStats,
    /// Topic names (for the callback) and partition counters.
    pub(super) topics: &'a mut [TopicCore],
}

/// Every batch from the notice announcing it to its final result, and the
/// flush and close waiters that depend on them. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Batches drained from the accumulator, not finished yet.
    batches: Slab<InBatch>,
    /// The last serial handed out.
    serial: u64,
    /// Batches announced and not finished (held or still in the
    /// accumulator); briefly negative when a batch ends before its
    /// announcement is read.
    pending: i64,
    /// Unfinished batches per flush generation (entries at zero removed).
    incomplete: FlushCounts,
    /// Flushes (and closes) waiting, in generation order.
    flushes: VecDeque<(u64, Arc<Signal>)>,
    /// Close waiters: set when the core finishes, not when their flush
    /// generation completes.
    close_signals: Vec<Arc<Signal>>,
    /// Finished batches' completions and tables, handed back to the
    /// sending threads once per turn ([`hand_back`](Self::hand_back)).
    finished_parts: Vec<(Option<Arc<BatchCompletion>>, PerRecord)>,
    /// Buffers of finished batches, each with the `buffer.memory` it is
    /// charged, handed back to the pool together, every
    /// [`RETURN_EVERY`] batches and at the turn's end
    /// ([`hand_back`](Self::hand_back)): the pool's lock and counters are
    /// taken once per group instead of once per batch. They stay charged
    /// until then, as they were while their batches were held; while a
    /// sender waits for memory, a buffer goes back at once instead
    /// (`complete`).
    ///
    /// Why groups, not once per turn: a response completes up to thousands
    /// of batches, and memory held back that long made a sending thread at
    /// full speed wait for it more often (each wait makes open batches due
    /// early, `expire_lingers_beyond`): batches got smaller (at 10,000
    /// partitions, 1.4-3.4 records against 3.5-5.4) and CPU per message
    /// rose by half.
    finished_bufs: Vec<(Bytes, usize)>,
    /// `finished_bufs` nobody else holds any more, on their way to the
    /// pool (kept for its capacity).
    reusable: Vec<(BytesMut, usize)>,
    /// Buffers of finished batches whose request the driver still held
    /// (not written yet: acks=0; or a send the kernel has not released),
    /// each with the `buffer.memory` it is charged. The charge goes back
    /// once the driver has let go ([`hand_back`](Self::hand_back)).
    ///
    /// Why not at once: with acks=0 a batch finishes when its request is
    /// built, and released then, its memory was taken again by new batches
    /// while the request still waited for the socket: a broker reading
    /// slowly let unwritten requests pile up without bound.
    unwritten: Vec<(Bytes, usize)>,
    /// Batches carry the transactional attribute.
    transactional: bool,
}

impl Index<BatchKey> for Ledger {
    type Output = InBatch;
    fn index(&self, bk: BatchKey) -> &InBatch {
        &self.batches[bk]
    }
}

impl IndexMut<BatchKey> for Ledger {
    /// Only the narrow mutators of [`InBatch`] are reachable through this.
    fn index_mut(&mut self, bk: BatchKey) -> &mut InBatch {
        &mut self.batches[bk]
    }
}

impl Ledger {
    /// An empty ledger; `transactional`: batches are stamped with the
    /// transactional attribute (a producer with a `transactional.id`).
    pub(super) fn new(transactional: bool) -> Ledger {
        Ledger {
            transactional,
            ..Ledger::default()
        }
    }

    /// Whether a batch of a flush generation below `gen` is unfinished.
    pub(super) fn any_below(&self, gen: u64) -> bool {
        self.incomplete.any_below(gen)
    }

    /// Batches announced and not finished.
    pub(super) fn pending(&self) -> u64 {
        self.pending.max(0) as u64
    }

    /// Whether nothing is owed: no batch held or announced, no flush
    /// generation incomplete.
    pub(super) fn is_settled(&self) -> bool {
        self.batches.is_empty() && self.pending == 0 && self.incomplete.is_empty()
    }

    /// Producer threads opened `n` batches in flush generation
    /// `flush_gen`.
    pub(super) fn announce(&mut self, flush_gen: u64, n: u32) {
        self.pending += i64::from(n);
        // Batches of this generation may have finished before their
        // notices were read (failed unsent): the counts then meet at zero.
        self.incomplete.add(flush_gen, i64::from(n));
    }

    /// Takes a sealed batch drained from the accumulator into the ledger.
    /// The caller fails a batch whose sealing failed instead
    /// ([`fail_queued`](Self::fail_queued)). The batch is stamped here
    /// with `stamp` (producer id, epoch, base sequence; all -1 without
    /// idempotence), so it is built once, ready for the wire.
    ///
    /// The batch comes in parts, each moved once into its slab entry (the
    /// per-record table out of `per_record`, left empty): taken as a whole
    /// `QueuedBatch`, it was copied again for the call (see
    /// `ProducerCore::hold_taken`).
    pub(super) fn hold(
        &mut self,
        pk: PartKey,
        sealed: SealedBatch,
        b: Leaving,
        per_record: &mut PerRecord,
        stamp: Stamp,
    ) -> BatchKey {
        let Stamp { pid, epoch, seq } = stamp;
        self.serial += 1;
        self.batches.insert(InBatch {
            created: b.created,
            serial: self.serial,
            part: pk,
            pid,
            flush_gen: b.flush_gen,
            records: b.record_count,
            seq,
            attempts: 0,
            epoch,
            maybe_written: false,
            data: sealed.stamp(pid, epoch, seq, self.transactional),
            completion: b.completion,
            reserved: b.reserved,
            span: None,
            order_first: 0,
            per_record: std::mem::take(per_record),
            order_serial: self.serial,
            last_error_message: None,
            last_error: None,
        })
    }

    /// Whether `bk` still holds the batch that had `serial`.
    pub(super) fn is_live(&self, bk: BatchKey, serial: u64) -> bool {
        self.batches.get(bk).is_some_and(|b| b.serial == serial)
    }

    /// The keys of every held batch.
    pub(super) fn keys(&self) -> Vec<BatchKey> {
        self.batches.iter().map(|(k, _)| k).collect()
    }

    /// The final result of held batch `bk`. Returns its partition.
    pub(super) fn complete(&mut self, bk: BatchKey, outcome: Outcome, out: Outlet<'_>) -> PartKey {
        let shared = out.shared;
        let b = self.batches.remove(bk);
        // The buffer goes back to the pool for a later batch if nothing
        // else holds it (see `memory`); the pool then owns its charge.
        // Normally at the turn's end, with the turn's other buffers.
        if shared.pool.memory_wanted() {
            self.return_buffer(shared, b.data, b.reserved);
        } else {
            self.finished_bufs.push((b.data, b.reserved));
            if self.finished_bufs.len() >= RETURN_EVERY {
                self.return_finished(shared);
            }
        }
        self.finish(
            b.part,
            b.records,
            b.completion.as_deref(),
            b.span,
            0,
            b.flush_gen,
            &b.per_record,
            outcome,
            out,
        );
        // Only what the sending threads may reuse (`spare_parts`): a
        // table without heap memory is no better than a new one.
        if b.completion.is_some() || b.per_record.has_capacity() {
            self.finished_parts.push((b.completion, b.per_record));
        }
        b.part
    }

    /// A finished batch's buffer, `charged` bytes of the pool: back to the
    /// pool if nothing else holds it, else kept (still charged) until the
    /// driver lets go of it ([`unwritten`](Self::unwritten)).
    fn return_buffer(&mut self, shared: &Shared, bytes: Bytes, charged: usize) {
        match bytes.try_into_mut() {
            Ok(buf) => shared.pool.recycle(buf, charged),
            Err(bytes) => self.unwritten.push((bytes, charged)),
        }
    }

    /// Hands what this turn's finished batches leave back to the sending
    /// threads, in one go: completions and tables (`spare_parts`),
    /// buffers sorted into the spares (`memory`). Called at the end of
    /// every turn of the I/O thread.
    pub(super) fn hand_back(&mut self, shared: &Shared) {
        shared.parts.put_all(&mut self.finished_parts);
        self.return_finished(shared);
        let mut i = 0;
        while i < self.unwritten.len() {
            if self.unwritten[i].0.is_unique() {
                let (bytes, charged) = self.unwritten.swap_remove(i);
                match bytes.try_into_mut() {
                    Ok(buf) => shared.pool.recycle(buf, charged),
                    Err(_) => shared.pool.release(charged),
                }
            } else {
                i += 1;
            }
        }
        shared.pool.sort_returned();
    }

    /// Hands the finished batches' buffers kept so far back to the pool
    /// together ([`finished_bufs`](Self::finished_bufs)).
    fn return_finished(&mut self, shared: &Shared) {
        if self.finished_bufs.is_empty() {
            return;
        }
        for (bytes, charged) in self.finished_bufs.drain(..) {
            match bytes.try_into_mut() {
                Ok(buf) => self.reusable.push((buf, charged)),
                Err(bytes) => self.unwritten.push((bytes, charged)),
            }
        }
        shared.pool.recycle_all(&mut self.reusable);
    }

    /// The core finished: the buffers the driver still holds are no
    /// longer charged (nothing will be appended any more).
    pub(super) fn release_unwritten(&mut self, shared: &Shared) {
        for (_, charged) in self.unwritten.drain(..).chain(self.finished_bufs.drain(..)) {
            shared.pool.release(charged);
        }
    }

    /// The end of a sealed batch that never left the accumulator.
    pub(super) fn fail_queued(
        &mut self,
        pk: PartKey,
        qb: QueuedBatch,
        err: DeliveryError,
        out: Outlet<'_>,
    ) {
        self.finish(
            pk,
            qb.record_count,
            qb.completion.as_deref(),
            None,
            qb.reserved,
            qb.flush_gen,
            &qb.per_record,
            Err(err.into()),
            out,
        );
    }

    /// The end of a batch still open (never sealed). Returns its record
    /// count.
    pub(super) fn fail_open(
        &mut self,
        pk: PartKey,
        ob: OpenBatch,
        err: DeliveryError,
        out: Outlet<'_>,
    ) -> u32 {
        let records = ob.builder.record_count();
        self.finish(
            pk,
            records,
            ob.completion.as_deref(),
            None,
            ob.reserved,
            ob.flush_gen,
            &ob.per_record,
            Err(err.into()),
            out,
        );
        records
    }

    /// The one completion path: memory, counters, callback, handles, flush
    /// accounting, each exactly once per batch (or part).
    #[allow(clippy::too_many_arguments)] // the pieces of a batch being finished
    fn finish(
        &mut self,
        pk: PartKey,
        records: u32,
        completion: Option<&BatchCompletion>,
        span: Option<Span>,
        reserved: usize,
        flush_gen: u64,
        per_record: &PerRecord,
        outcome: Outcome,
        out: Outlet<'_>,
    ) {
        out.shared.pool.release(reserved);
        let part = &mut out.topics[pk.0 as usize].partitions[pk.1 as usize].stats;
        if outcome.is_ok() {
            out.stats.batches_ok += 1;
            part.acked += u64::from(records);
        } else {
            out.stats.batches_failed += 1;
            part.failed += u64::from(records);
        }
        if let Some(cb) = out.callback {
            let topic = &out.topics[pk.0 as usize].name;
            let first = span.map_or(0, |s| s.first);
            let panics = report_batch(cb, topic, pk.1 as i32, first, per_record, &outcome);
            if panics.count > 0 {
                callback_panicked(out.shared, out.stats, topic, panics);
            }
        }
        if let Some(c) = completion {
            let completed = c.complete_part(&Settle(()), span, outcome);
            debug_assert!(completed, "a batch completed twice");
        }
        // May go below zero for a moment: a batch purged or failed before
        // the I/O thread read its `Opened` notice is announced after its
        // end (`announce` then brings the counts back to zero).
        self.pending -= 1;
        self.incomplete.add(flush_gen, -1);
    }

    /// Splits held batch `bk` in two parts, `first` (its first `n1`
    /// records, keeping `bk` and `reserved_first` bytes of its
    /// reservation) and `second` (the rest, a new key, returned). Both are
    /// stamped: with the batch's producer id and epoch and its sequence and
    /// `seq2` when `seq2` is given, else unsequenced. The second part owes
    /// its own result: one more pending batch in the same flush generation.
    pub(super) fn split(
        &mut self,
        bk: BatchKey,
        first: SealedBatch,
        second: SealedBatch,
        n1: u32,
        reserved_first: usize,
        seq2: Option<i32>,
    ) -> BatchKey {
        let second_serial = self.serial + 1;
        let first_serial = self.serial + 2;
        self.serial += 2;
        let b = &mut self.batches[bk];
        let n = b.records;
        debug_assert!(0 < n1 && n1 < n && reserved_first <= b.reserved);
        let span = b.span.unwrap_or(Span { first: 0, count: n });
        if let (None, Some(c)) = (b.span, &b.completion) {
            c.split(&Settle(()), n);
        }
        let (pid, epoch, seq) = (b.pid, b.epoch, b.seq);
        // Both parts stamped: with the batch's producer id, epoch and
        // sequence (and `seq2`), or unsequenced.
        let (pid, epoch, seq1, seq2) = match seq2 {
            Some(seq2) => (pid, epoch, seq, seq2),
            None => (-1, -1, -1, -1),
        };
        let n2 = n - n1;
        let part2 = InBatch {
            created: b.created,
            serial: second_serial,
            part: b.part,
            pid,
            flush_gen: b.flush_gen,
            records: n2,
            seq: seq2,
            attempts: 0,
            epoch,
            // Only without idempotence can it be set here; a part of a
            // batch that may be in the log may be in the log.
            maybe_written: b.maybe_written,
            data: second.stamp(pid, epoch, seq2, self.transactional),
            completion: b.completion.clone(),
            reserved: b.reserved - reserved_first,
            span: Some(Span {
                first: span.first + n1,
                count: n2,
            }),
            order_first: span.first + n1,
            per_record: b.per_record.split_off(n1 as usize),
            order_serial: b.order_serial,
            last_error_message: b.last_error_message.clone(),
            last_error: b.last_error,
        };
        // The first part keeps the batch's key (and so its place in the
        // partition's sequence order).
        b.serial = first_serial;
        b.order_first = span.first;
        b.records = n1;
        b.pid = pid;
        b.epoch = epoch;
        b.seq = seq1;
        b.data = first.stamp(pid, epoch, seq1, self.transactional);
        b.span = Some(Span {
            first: span.first,
            count: n1,
        });
        b.reserved = reserved_first;
        b.attempts = 0;
        let flush_gen = part2.flush_gen;
        let bk2 = self.batches.insert(part2);
        // One more batch to complete before the flushes and close waiting
        // for this one.
        self.pending += 1;
        self.incomplete.add(flush_gen, 1);
        bk2
    }

    /// A flush of generation `gen` waits for every earlier batch.
    pub(super) fn add_flush(&mut self, gen: u64, signal: Arc<Signal>) {
        self.flushes.push_back((gen, signal));
    }

    /// A close: a flush of generation `gen` whose signal is set only when
    /// the core finishes ([`release_close_waiters`](Self::release_close_waiters)).
    pub(super) fn add_close(&mut self, gen: u64, signal: Arc<Signal>) {
        self.flushes.push_back((gen, signal.clone()));
        self.close_signals.push(signal);
    }

    /// Completes flushes whose batches are all done.
    pub(super) fn check_flushes(&mut self) {
        while let Some((gen, _)) = self.flushes.front() {
            if self.incomplete.any_below(*gen) {
                break;
            }
            let (_, s) = self.flushes.pop_front().expect("front");
            if !self.close_signals.iter().any(|c| Arc::ptr_eq(c, &s)) {
                s.set();
            }
        }
    }

    /// Whether a flush (or close) still waits.
    pub(super) fn flushes_waiting(&self) -> bool {
        !self.flushes.is_empty()
    }

    /// The core finished: every close waiter is released. Nothing may be
    /// owed any more.
    pub(super) fn release_close_waiters(&mut self) {
        debug_assert!(
            self.is_settled(),
            "finished with batches owed: {} held, {} pending, {:?} incomplete",
            self.batches.len(),
            self.pending,
            self.incomplete
        );
        for s in self.close_signals.drain(..) {
            s.set();
        }
    }
}

/// Unfinished batches per flush generation. Generations only grow, and
/// nearly every batch is of the newest one (a flush starts the next), so
/// its count is kept beside the map: a batch's announcement and end are an
/// addition, not a map look-up each. Counts may dip below zero for a moment
/// (a batch that ended before its announcement was read).
#[derive(Debug, Default)]
struct FlushCounts {
    /// The newest generation counted, and its count (0: none owed).
    newest: u64,
    newest_count: i64,
    /// Older generations with a count other than zero.
    older: BTreeMap<u64, i64>,
}

impl FlushCounts {
    /// Adds `d` to generation `gen`'s count.
    fn add(&mut self, gen: u64, d: i64) {
        if gen == self.newest {
            self.newest_count += d;
        } else if gen > self.newest {
            if self.newest_count != 0 {
                self.older.insert(self.newest, self.newest_count);
            }
            self.newest = gen;
            self.newest_count = d;
        } else {
            let e = self.older.entry(gen).or_insert(0);
            *e += d;
            if *e == 0 {
                self.older.remove(&gen);
            }
        }
    }

    /// Whether a generation below `gen` has batches owed.
    fn any_below(&self, gen: u64) -> bool {
        (self.newest < gen && self.newest_count != 0) || self.older.range(..gen).next().is_some()
    }

    /// Whether no generation has batches owed.
    fn is_empty(&self) -> bool {
        self.newest_count == 0 && self.older.is_empty()
    }
}

/// The delivery callback panicked (caught): the first time logged as a
/// warning, later only counted (`CoreStats::callback_panics`) and logged at
/// debug level, so a callback that always panics does not flood the log.
fn callback_panicked(shared: &Shared, stats: &mut CoreStats, topic: &str, panics: CallbackPanics) {
    let first_ever = stats.callback_panics == 0;
    stats.callback_panics += panics.count;
    shared
        .callback_panics
        .fetch_add(panics.count, Ordering::Relaxed);
    let message = panics.first.unwrap_or_default();
    if first_ever {
        tracing::warn!(
            topic,
            panic = %message,
            "the on_delivery callback panicked; caught, the record's result stands and later records are reported as usual (further panics are counted in callback_panics)"
        );
    } else {
        tracing::debug!(topic, panic = %message, count = panics.count, "the on_delivery callback panicked again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held batch's slab entry is four cache lines, aligned, and what
    /// the usual batch needs from being counted into a request to being
    /// completed accepted is on the first two: what matching and
    /// acknowledging read on line 0, the bytes and what finishing hands
    /// back on line 1, the callback's timestamps on line 2. At
    /// 296 bytes in the compiler's order (the bytes at 32, the table at
    /// 80, the slab's mark at 184, serial and partition at 192-224, the
    /// counts up to 292), entries at any offset in their lines, they were
    /// spread over the whole entry, five or six lines.
    #[test]
    fn a_held_batch_keeps_the_response_path_on_its_first_two_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(size_of::<InBatch>(), 256, "four cache lines");
        assert_eq!(align_of::<InBatch>(), 64, "entries start on a line");
        // No tag of its own in the slab entry: a niche of the batch marks it.
        assert_eq!(size_of::<Option<InBatch>>(), size_of::<InBatch>());
        let line = |offset: usize, size: usize| {
            assert_eq!(
                offset / 64,
                (offset + size - 1) / 64,
                "a field across lines"
            );
            offset / 64
        };
        assert_eq!(line(offset_of!(InBatch, created), size_of::<Instant>()), 0);
        assert_eq!(line(offset_of!(InBatch, serial), 8), 0);
        assert_eq!(line(offset_of!(InBatch, part), size_of::<PartKey>()), 0);
        assert_eq!(line(offset_of!(InBatch, records), 4), 0);
        assert_eq!(line(offset_of!(InBatch, seq), 4), 0);
        assert_eq!(line(offset_of!(InBatch, pid), 8), 0);
        assert_eq!(line(offset_of!(InBatch, epoch), 2), 0);
        assert_eq!(line(offset_of!(InBatch, flush_gen), 8), 0);
        assert_eq!(line(offset_of!(InBatch, attempts), 4), 0);
        assert_eq!(line(offset_of!(InBatch, data), size_of::<Bytes>()), 1);
        assert_eq!(line(offset_of!(InBatch, completion), 8), 1);
        assert_eq!(line(offset_of!(InBatch, reserved), 8), 1);
        assert_eq!(
            line(offset_of!(InBatch, span), size_of::<Option<Span>>()),
            1
        );
        // The callback's timestamps: the table's first 48 bytes.
        assert_eq!(line(offset_of!(InBatch, per_record), 48), 2);
    }

    /// `FlushCounts` answers as the map of every generation's count it
    /// replaces, whatever the order of announcements and ends (a batch
    /// may end before its announcement, a split adds one to an old
    /// generation).
    #[test]
    fn flush_counts_answer_as_a_map_of_every_generation() {
        let mut counts = FlushCounts::default();
        let mut model: BTreeMap<u64, i64> = BTreeMap::new();
        // A fixed pseudo-random walk over generations 0..6, mostly the
        // newest, with ends before announcements.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut newest = 0u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(97) && newest < 6 {
                newest += 1;
            }
            let gen = if x.is_multiple_of(5) {
                (x >> 8) % (newest + 1)
            } else {
                newest
            };
            let d = if (x >> 20).is_multiple_of(2) { 1 } else { -1 };
            counts.add(gen, d);
            let e = model.entry(gen).or_insert(0);
            *e += d;
            if *e == 0 {
                model.remove(&gen);
            }
            assert_eq!(counts.is_empty(), model.is_empty());
            for g in 0..8 {
                assert_eq!(
                    counts.any_below(g),
                    model.range(..g).next().is_some(),
                    "generation {g}, counts {counts:?}, model {model:?}"
                );
            }
        }
    }
}
