//! The general append: everything the inlined fast path in `mod.rs`
//! leaves out. It opens new batches (charging `buffer.memory`, reusing a
//! spare buffer), runs the partitioner fenced against panics, checks
//! record sizes, and blocks for metadata or memory within `max.block.ms`.
//!
//! Why apart: the fast path (a record into its partition's open batch)
//! is the one per-record cost that matters for throughput and is kept
//! small enough to inline; this path runs once per batch or on a miss.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::delivery::panic_message;
use crate::partitioner::PartitionView;
use crate::topics::{OpenBatch, PartitionSlot};

use super::*;

impl Shared {
    /// [`append`](Self::append) beyond [`append_to_open`](Self::append_to_open),
    /// for a caller that has just tried that itself (a driver's `send`):
    /// every case, the open batch with room included, without trying the
    /// fast path a second time.
    #[inline(never)]
    pub fn append_general(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome, SendError> {
        self.general::<WithHandle>(now, rec, block_deadline)
    }

    /// [`append_general`](Self::append_general) without a delivery handle
    /// (see [`produce`](Self::produce)).
    #[inline(never)]
    pub fn produce_general(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome<()>, SendError> {
        self.general::<NoHandle>(now, rec, block_deadline)
    }

    #[inline(always)]
    fn general<R: Reply>(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
        block_deadline: Instant,
    ) -> Result<AppendOutcome<R::Delivery>, SendError> {
        self.precheck(&rec)?;
        let mut wake = false;
        let mut reserved = 0usize;
        let result = loop {
            let step = match self.attempt::<R>(now, &rec, &mut reserved) {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            match step {
                Step::Done(mut o) => {
                    o.wake |= wake;
                    break Ok(o);
                }
                Step::NeedTopic => {
                    if let Err(e) = self.wait_for_topic(now, rec.topic, block_deadline, &mut wake) {
                        break Err(e);
                    }
                }
                Step::NeedPartition { partition, .. } => {
                    if let Err(e) = self.wait_for_partition(
                        now,
                        rec.topic,
                        partition,
                        block_deadline,
                        &mut wake,
                    ) {
                        break Err(e);
                    }
                }
                Step::NeedMemory { bytes: n, .. } => {
                    debug_assert_eq!(reserved, 0);
                    // Memory comes back when batches complete: the I/O
                    // thread sends the open ones now, not at their linger
                    // deadline, and must know of those sealed so far.
                    wake |= self.notices.push_memory_wanted();
                    self.wake_before_blocking(&mut wake);
                    // Without compression threads, it compresses what the
                    // I/O thread hands off meanwhile (`compress.rs`).
                    let pending = || self.compress.has_help_wanted();
                    let run = || self.help_compress();
                    self.compress.note_blocked(true);
                    let got = self.pool.reserve_blocking_helping(
                        n,
                        &|| self.left(now, block_deadline),
                        Some((&pending, &run)),
                    );
                    self.compress.note_blocked(false);
                    if !got {
                        if self.notices.is_closed() {
                            break Err(SendError::Closed);
                        }
                        break Err(SendError::BufferFull {
                            limit: self.pool.limit(),
                            waited: remaining(now, block_deadline),
                        });
                    }
                    reserved = n;
                }
            }
        };
        // A reservation obtained by blocking but not used (another thread
        // opened a batch with room meanwhile) goes back.
        self.pool.release(reserved);
        result
    }

    /// What fails a record before anything is tried: a closed producer, a
    /// producer in a fatal state, a topic name that cannot be sent, a
    /// negative timestamp, a record too large.
    ///
    /// The append fast path (`to_open`) does not look at the fatal state:
    /// entering it takes every open batch out of the accumulator, so the
    /// fast path finds none and comes here.
    pub(super) fn precheck(&self, rec: &RecordRef<'_>) -> Result<(), SendError> {
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        if let Some(e) = self.fatal.get() {
            return Err(SendError::Fatal(e.clone()));
        }
        if rec.topic.is_empty() || rec.topic.len() > i16::MAX as usize {
            return Err(SendError::InvalidTopic(Arc::from(rec.topic)));
        }
        if rec.timestamp_ms < 0 {
            return Err(SendError::InvalidTimestamp(rec.timestamp_ms));
        }
        self.check_record_size(rec)
    }

    /// One non-blocking try: appended, or what to wait for.
    pub(super) fn attempt<R: Reply>(
        &self,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<Step<R::Delivery>, SendError> {
        self.topics
            .with_view(|v| self.try_append::<R>(v, now, rec, reserved))
    }

    /// Appends a record without ever blocking and without a delivery
    /// handle (its result goes only to the delivery callback, as with
    /// [`produce`](Self::produce)): fails at once where
    /// [`append`](Self::append) would wait, with
    /// [`SendError::BufferFull`] (`waited` zero) when `buffer.memory` is
    /// full (the I/O thread is asked to send the lingering batches now, as
    /// for a blocked sender, so memory comes back as they complete), or
    /// [`SendError::NoMetadataYet`] when the topic's partitions
    /// are not known yet (the metadata is requested, and the I/O thread
    /// woken for it, so a later try succeeds once it arrives). Every other
    /// outcome is [`append`](Self::append)'s, including an immediate
    /// [`SendError::InvalidPartition`] for a partition the topic's latest
    /// metadata does not list (where `append` waits for one that does, if
    /// the topic had the partition).
    pub fn try_produce_now(
        &self,
        now: Instant,
        rec: RecordRef<'_>,
    ) -> Result<AppendOutcome<()>, SendError> {
        self.precheck(&rec)?;
        // Twice at most: metadata may arrive between the first try and the
        // registration below.
        for _ in 0..2 {
            let mut reserved = 0usize;
            let step = self.attempt::<NoHandle>(now, &rec, &mut reserved);
            debug_assert_eq!(reserved, 0, "nothing reserved outside a wait");
            match step? {
                Step::Done(o) => return Ok(o),
                Step::NeedMemory { .. } => {
                    // Refused without waiting, but memory is wanted all the
                    // same: the I/O thread sends the open batches now, not
                    // at their linger deadline, so a later try finds
                    // memory as soon as they complete (as for a blocked
                    // sender; one request however many refusals).
                    let mut wake = self.notices.push_memory_wanted();
                    self.wake_before_blocking(&mut wake);
                    return Err(SendError::BufferFull {
                        limit: self.pool.limit(),
                        waited: std::time::Duration::ZERO,
                    });
                }
                Step::NeedPartition { partition, count } => {
                    // Not there now: ask for metadata (a later try may
                    // find it) and fail without waiting.
                    let (state, _) = self.topics.register(rec.topic);
                    let mut wake = self.notices.push(Notice::TopicWanted {
                        topic: state.id,
                        seen: count,
                    });
                    self.wake_before_blocking(&mut wake);
                    return Err(SendError::InvalidPartition {
                        topic: state.name.clone(),
                        partition,
                        num_partitions: count,
                    });
                }
                Step::NeedTopic => {
                    let (state, _) = self.topics.register(rec.topic);
                    match state.status {
                        TopicStatus::Ready => continue,
                        TopicStatus::Failed(error) => return Err(self.topic_failed(&state, error)),
                        TopicStatus::Pending { last_error } => {
                            let mut wake = self.notices.push(Notice::TopicWanted {
                                topic: state.id,
                                seen: state.partitions.len() as u32,
                            });
                            self.wake_before_blocking(&mut wake);
                            return Err(SendError::NoMetadataYet {
                                topic: state.name.clone(),
                                last_error: self.metadata_cause(last_error),
                            });
                        }
                    }
                }
            }
        }
        Err(SendError::NoMetadataYet {
            topic: Arc::from(rec.topic),
            last_error: None,
        })
    }

    /// Fails a record too large for `max.request.size` or `buffer.memory`
    /// as the only record of a batch. Exact only when the cheap bound says
    /// it could be (this runs on every append).
    fn check_record_size(&self, rec: &RecordRef<'_>) -> Result<(), SendError> {
        let limit = self.cfg.max_request_size.min(self.pool.limit());
        if HEADER_LEN + first_record_size_bound(rec) <= limit {
            return Ok(());
        }
        let size = HEADER_LEN + first_record_size(rec);
        if size > self.cfg.max_request_size {
            return Err(SendError::RecordTooLarge {
                size,
                limit: self.cfg.max_request_size,
                setting: "max.request.size",
            });
        }
        if size > self.pool.limit() {
            return Err(SendError::RecordTooLarge {
                size,
                limit: self.pool.limit(),
                setting: "buffer.memory",
            });
        }
        Ok(())
    }

    /// The locked part: choose the partition and append, or say what to
    /// wait for.
    fn try_append<R: Reply>(
        &self,
        v: &mut crate::topics::ThreadView,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<Step<R::Delivery>, SendError> {
        let (topic, sticky) = v.split(rec.topic);
        let Some(topic) = topic else {
            return Ok(Step::NeedTopic);
        };
        match topic.status {
            TopicStatus::Ready => {}
            TopicStatus::Pending { .. } => return Ok(Step::NeedTopic),
            TopicStatus::Failed(error) => return Err(self.topic_failed(topic, error)),
        }
        let n = topic.partitions.len() as u32;
        let requested = match rec.partition {
            Some(p) => Some(p),
            None => {
                let view = PartitionView {
                    num_partitions: n,
                    available: &topic.available,
                };
                // User code runs fenced: a panic fails this record only.
                let chosen = catch_unwind(AssertUnwindSafe(|| {
                    self.cfg
                        .partitioner
                        .partition(rec.topic, rec.key, rec.value, &view)
                }));
                match chosen {
                    Ok(p) => p.map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
                    Err(panic) => {
                        return Err(SendError::PartitionerPanicked {
                            topic: topic.name.clone(),
                            message: Arc::from(panic_message(&*panic)),
                        })
                    }
                }
            }
        };
        let (partition, is_sticky) = match requested {
            Some(p) if p < 0 || p as u32 >= n => {
                if rec.partition.is_some() && p >= 0 && (p as u32) < topic.had {
                    // A partition the topic had: the latest metadata may
                    // come from a broker lagging behind a partition
                    // increase, or the topic was created again with fewer
                    // partitions. Wait for metadata that has it, as the
                    // Java client does (within max.block.ms).
                    return Ok(Step::NeedPartition {
                        partition: p,
                        count: n,
                    });
                }
                if rec.partition.is_some() && p >= 0 {
                    // The topic may have grown since the count was learnt:
                    // refresh, so a later send sees it. This one fails now
                    // rather than wait out max.block.ms for a partition
                    // that usually does not exist.
                    if self.notices.push(Notice::TopicWanted {
                        topic: topic.id,
                        seen: n,
                    }) {
                        if let Some(w) = self.io_waker.0.get() {
                            w();
                        }
                    }
                }
                return Err(SendError::InvalidPartition {
                    topic: topic.name.clone(),
                    partition: p,
                    num_partitions: n,
                });
            }
            Some(p) => (p as u32, false),
            None => {
                let s = *sticky.get(topic.id);
                let p = if topic.sticky_usable(s.partition) {
                    s.partition
                } else {
                    let p = self.next_sticky(&mut sticky.rng, topic, n, u32::MAX);
                    *sticky.get(topic.id) = crate::topics::Sticky {
                        partition: p,
                        bytes: 0,
                    };
                    p
                };
                (p, true)
            }
        };
        let slot = &topic.partitions[partition as usize];
        let (step, full, added) =
            self.append_to_slot::<R>(slot, topic.id, partition, now, rec, reserved)?;
        if is_sticky && matches!(step, Step::Done(_)) {
            self.after_sticky_append(sticky, topic, n, added, full);
        }
        Ok(step)
    }

    /// Appends under the slot's lock. Returns the step, whether the
    /// record's batch is full (sealed after it), and the bytes added.
    fn append_to_slot<R: Reply>(
        &self,
        slot: &PartitionSlot,
        topic: u32,
        partition: u32,
        now: Instant,
        rec: &RecordRef<'_>,
        reserved: &mut usize,
    ) -> Result<(Step<R::Delivery>, bool, usize), SendError> {
        let batch_size = self.cfg.batch_size;
        let mut q = slot.lock();
        if let Some(open) = q.open.as_mut() {
            // The per-record table's growth is charged before anything is
            // appended (a wait for memory appends nothing): its vectors are
            // the one part of a batch beside its buffer that grows with its
            // records (8 B a context, 16 B a timestamp run). A growth that
            // could never be had seals the batch, as a buffer growth does.
            let mut table_fits = true;
            if self.cfg.keep_timestamps {
                let after = open
                    .per_record
                    .heap_bytes_after_push(rec.timestamp_ms, rec.context);
                let extra = after.saturating_sub(open.table_charged);
                if extra > 0 {
                    if open.reserved + extra > self.pool.limit() {
                        table_fits = false;
                    } else if !self.charge(reserved, extra) {
                        return Ok((
                            Step::NeedMemory {
                                bytes: extra,
                                target: target(topic, partition),
                            },
                            false,
                            0,
                        ));
                    } else {
                        open.reserved += extra;
                        open.table_charged += extra;
                    }
                }
            }
            if table_fits {
                let size = open.builder.size_in_bytes();
                // The common case in one step: the record fits the batch and
                // the buffer as it is (no growth, nothing to charge).
                let appended = open.builder.try_append(
                    rec.timestamp_ms,
                    rec.key,
                    rec.value,
                    rec.headers,
                    batch_size.min(open.builder.capacity()),
                );
                let (index, rs) = match appended {
                    Ok(index) => (Some(index), open.builder.size_in_bytes() - size),
                    Err(rs) => (None, rs),
                };
                // Memory is charged by buffer capacity: when this record makes
                // the buffer grow, the growth is charged first (one atomic per
                // regrowth, none per record). A batch that could never get the
                // growth is sealed and the record goes to a new batch.
                let mut fits = size + rs <= batch_size;
                if index.is_none() && fits {
                    let want = grown_capacity(open.builder.capacity(), size + rs);
                    let extra = want.saturating_sub(open.reserved - open.table_charged);
                    if open.reserved + extra > self.pool.limit() {
                        fits = false;
                    } else if extra > 0 {
                        if !self.charge(reserved, extra) {
                            return Ok((
                                Step::NeedMemory {
                                    bytes: extra,
                                    target: target(topic, partition),
                                },
                                false,
                                0,
                            ));
                        }
                        open.reserved += extra;
                    }
                }
                if fits {
                    let index = match index {
                        Some(index) => index,
                        None => {
                            let index = open.builder.append(
                                rec.timestamp_ms,
                                rec.key,
                                rec.value,
                                rec.headers,
                            );
                            let mut buffer = open.reserved - open.table_charged;
                            self.charge_capacity(&mut buffer, open.builder.capacity());
                            open.reserved = buffer + open.table_charged;
                            index
                        }
                    };
                    let (batch, full, wake) =
                        self.appended_to::<R>(&mut q, topic, partition, rec, index, Push::Other);
                    let next_write = q.next_write(rs);
                    drop(q);
                    let outcome = AppendOutcome {
                        delivery: R::delivery(batch, index, rec.timestamp_ms),
                        partition: partition as i32,
                        wake,
                        next_write,
                        next_buffer: NextWrite::NONE,
                    };
                    return Ok((Step::Done(outcome), full, rs));
                }
            }
        }
        // A new batch is needed: charge its initial buffer first, sized
        // like the partition's previous batch (see `initial_capacity`);
        // it grows from there, each growth charged as it happens.
        let rs = first_record_size(rec);
        let need = initial_capacity(q.last_batch_len, HEADER_LEN + rs, batch_size);
        // A finished batch's buffer of about that size if one is spare
        // (charged already, by its capacity; see `memory`).
        let mut next_buffer = NextWrite::NONE;
        let (need, spare) = match self.pool.take_spare_hinted(need) {
            Some((buf, next)) => {
                self.pool.release(std::mem::take(reserved));
                next_buffer = next;
                (buf.capacity(), Some(buf))
            }
            None => {
                if !self.charge(reserved, need) {
                    return Ok((
                        Step::NeedMemory {
                            bytes: need,
                            target: target(topic, partition),
                        },
                        false,
                        0,
                    ));
                }
                (need, None)
            }
        };

        let old = q
            .open
            .take()
            .map(|o| o.seal(self.cfg.compression, self.cfg.compression_level));
        let id = q.next_id;
        let mut builder = match spare {
            Some(buf) => RecordBatchBuilder::in_buffer(rec.timestamp_ms, buf),
            None => RecordBatchBuilder::new(rec.timestamp_ms, need),
        };
        let index = builder.append(rec.timestamp_ms, rec.key, rec.value, rec.headers);
        let mut need = need;
        self.charge_capacity(&mut need, builder.capacity());
        let full = builder.size_in_bytes() >= batch_size || self.cfg.batch_records <= 1;
        let (mut completion, per_record) = R::open(&self.parts, partition as i32);
        // The table (a kept one may have capacity, up to
        // `spare_parts::MAX_TABLE_BYTES`) with room for this record,
        // charged even past the limit as a buffer's surprise growth is:
        // a few hundred bytes at most, and the next charge then waits.
        let table_charged = if self.cfg.keep_timestamps {
            per_record.heap_bytes_after_push(rec.timestamp_ms, rec.context)
        } else {
            0
        };
        let with_table = need + table_charged;
        self.charge_capacity(&mut need, with_table);
        let batch = R::batch(&mut completion, &self.parts, partition as i32);
        let delivery = R::delivery(batch, index, rec.timestamp_ms);
        let old_sealed = old.map(|b| q.sealed.push_back(b)).is_some();
        let (r, wake) = self.notices.with(|n| {
            if old_sealed {
                n.list.push(Notice::Sealed { topic, partition });
            }
            if n.closed {
                return None;
            }
            if n.txn_gate == crate::notice::TxnGate::Closed {
                return Some(None);
            }
            n.list.push(Notice::Opened {
                topic,
                partition,
                created: now,
            });
            if full {
                n.list.push(Notice::Sealed { topic, partition });
            }
            Some(Some(n.flush_gen))
        });
        let Some(gen) = r else {
            // Closed meanwhile. The old batch is sealed and announced; the
            // I/O thread reaches it without a wake-up from us, because the
            // Close notice precedes this Sealed notice and close seals and
            // readies every partition it knows to have a batch (this one
            // announced its batch before the close).
            drop(q);
            self.pool.release(need);
            return Err(SendError::Closed);
        };
        let Some(gen) = gen else {
            // A transactional producer outside a transaction (see
            // `crate::txn`): the old batch is sealed and announced, as
            // above; this record is refused.
            drop(q);
            self.pool.release(need);
            return Err(SendError::NotInTransaction(self.txn_phase_words()));
        };
        self.commit_new(
            &mut q,
            id,
            builder,
            completion,
            per_record,
            now,
            (need, table_charged),
            gen,
            rec,
            full,
        );
        let next_write = q.next_write(rs);
        drop(q);
        Ok((
            Step::Done(AppendOutcome {
                delivery,
                partition: partition as i32,
                wake,
                next_write,
                next_buffer,
            }),
            full,
            rs,
        ))
    }

    #[allow(clippy::too_many_arguments)] // the pieces of a new batch, assembled under the slot lock
    #[inline(always)]
    fn commit_new(
        &self,
        q: &mut crate::topics::PartitionQueue,
        id: u64,
        builder: RecordBatchBuilder,
        completion: Option<Arc<crate::delivery::BatchCompletion>>,
        mut per_record: crate::delivery::PerRecord,
        now: Instant,
        (reserved, table_charged): (usize, usize),
        flush_gen: u64,
        rec: &RecordRef<'_>,
        full: bool,
    ) {
        q.next_id = id + 1;
        q.last_batch_len = builder.size_in_bytes();
        if self.cfg.keep_timestamps {
            per_record.push(rec.timestamp_ms, rec.context);
            debug_assert!(per_record.heap_bytes() <= table_charged);
        }
        let open = OpenBatch {
            open: crate::topics::Open::Yes,
            id,
            builder,
            completion,
            created: now,
            reserved,
            table_charged,
            flush_gen,
            per_record,
        };
        if full {
            q.sealed
                .push_back(open.seal(self.cfg.compression, self.cfg.compression_level));
        } else {
            q.open = Some(open);
        }
    }
}
