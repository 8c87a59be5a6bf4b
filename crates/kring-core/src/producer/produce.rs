//! The per-broker sender: draining ready partitions into ProduceRequests,
//! and what a produce response does to each batch.
//!
//! One request takes at most one batch per partition, up to
//! `max.request.size` (the first batch always fits, as in the Java client),
//! and a connection keeps up to `max.in.flight` requests outstanding. The
//! cost of building a request is the partitions it pops from the node's
//! ready queue; partitions that still have batches go to the back of the
//! queue for the next request.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kring_protocol::frame::ProduceFrameWriter;
use kring_protocol::message::{decode_response_frame, response_correlation_id};
use kring_protocol::messages::init_producer_id::InitProducerIdRequest;
use kring_protocol::messages::produce::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceRequest, ProduceResponse,
};
use kring_protocol::produce_fast::decode_produce_response_ok;
use kring_protocol::record::{Compression, SealedBatch};
use kring_protocol::ErrorCode;

use crate::compress::Sealing;
use crate::config::Acks;
use crate::delivery::{BatchOk, DeliveryError, MessageStatus, PerRecord, RecordErrors};
use crate::topics::{Leaving, OpenBatch, PartitionQueue};

use super::conn::{ConnId, ConnState, ReqKind, Target};
use super::delivery_queue::DeliveryTimer;
use super::idempotence::{fatal_to_idempotence, SeqVerdict};
use super::ledger::Stamp;
use super::{BatchKey, PartKey, ProducerCore, TimerKey, Transmit};

/// What `take_batch` found.
enum Take {
    /// A batch to send; `bool`: the partition has more to send.
    Batch(BatchKey, bool),
    /// The next batch does not fit in what is left of this request.
    TooBig,
    /// The partition must wait for an event (earlier sequence in flight,
    /// unresolved sequences).
    Blocked,
    /// Nothing sealed to send.
    Empty,
}

/// A batch taken into the request being built, with what the request
/// needs of it (see [`ProducerCore::note_taken`]).
struct Taken {
    pk: PartKey,
    bk: BatchKey,
    serial: u64,
    /// The stamped batch (moved into the frame).
    bytes: Bytes,
    size: usize,
    records: u32,
    /// Its first attempt (counted in the partition's statistics).
    first: bool,
}

/// Errors meaning "your metadata is stale" (the Java client's
/// `InvalidMetadataException` family).
fn is_invalid_metadata(e: ErrorCode) -> bool {
    matches!(
        e,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            | ErrorCode::LEADER_NOT_AVAILABLE
            | ErrorCode::NOT_LEADER_OR_FOLLOWER
            | ErrorCode::KAFKA_STORAGE_ERROR
            | ErrorCode::FENCED_LEADER_EPOCH
            | ErrorCode::UNKNOWN_LEADER_EPOCH
            | ErrorCode::UNKNOWN_TOPIC_ID
            | ErrorCode::INCONSISTENT_TOPIC_ID
    )
}

/// Fixed bytes of a produce request besides its batches (header, acks,
/// timeout, arrays), generously rounded up.
const REQUEST_OVERHEAD: usize = 64;
/// Per-partition bytes besides the batch.
const PARTITION_OVERHEAD: usize = 16;

impl ProducerCore {
    /// The next request frame to write. Call until `None` after the
    /// `handle_*` calls and `poll_io` of a turn. Builds handshakes, producer
    /// id and metadata requests first, then produce requests for nodes with
    /// ready partitions and room on their connection. With acks=0 the
    /// batches of a returned request are complete once it is returned.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.life.is_finished() {
            return None;
        }
        if let Some(t) = self.conns.pop_sasl_tx() {
            return Some(t);
        }
        if let Some(t) = self.poll_handshake(now) {
            return Some(t);
        }
        self.maybe_bump_epoch();
        self.shared.compress.refill(now);
        if let Some(t) = self.poll_txn(now) {
            return Some(t);
        }
        if let Some(t) = self.poll_init_pid(now) {
            return Some(t);
        }
        if let Some(t) = self.poll_metadata(now) {
            return Some(t);
        }
        while let Some(n) = self.nodes.pop_work() {
            if let Some(t) = self.drain_node(now, n) {
                self.node_drained(n);
                return Some(t);
            }
            self.node_undrained(now, n);
        }
        None
    }

    fn poll_init_pid(&mut self, now: Instant) -> Option<Transmit> {
        if !self.idem.wants_request() || self.life.is_finished() || self.life.fatal().is_some() {
            return None;
        }
        let id = self.control_conn(now)?;
        let version = self.conn(id)?.versions.init_pid;
        if version < 0 {
            self.enter_fatal(
                now,
                DeliveryError::Broker {
                    code: ErrorCode::UNSUPPORTED_VERSION.code(),
                    name: ErrorCode::UNSUPPORTED_VERSION.name(),
                    message: Some(
                        "the broker does not support InitProducerId; disable idempotence".into(),
                    ),
                    status: MessageStatus::NotPersisted,
                },
            );
            return None;
        }
        let req: InitProducerIdRequest = self.idem.request();
        match self.send_request(now, id, version, &req, ReqKind::InitProducerId, true, 256) {
            Ok(t) => {
                self.init_pid_sent();
                Some(t)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode InitProducerId");
                None
            }
        }
    }

    /// Builds one produce request for node `n` if it can send.
    fn drain_node(&mut self, now: Instant, n: i32) -> Option<Transmit> {
        let node = self.nodes.get(&n)?;
        if node.ready.is_empty() {
            return None;
        }
        let Some(cid) = node.conn else {
            self.connect(Target::Node(n));
            return None;
        };
        let c = self.conn(cid)?;
        if c.state != ConnState::Ready || c.is_throttled(now) {
            // A throttled connection: its timer makes the node work again.
            return None;
        }
        let acks = self.cfg.acks;
        if acks != Acks::None && c.in_flight.len() >= self.cfg.max_in_flight {
            return None;
        }
        if self.life.fatal().is_none() && !self.idem.ready() {
            return None;
        }
        let version = c.versions.produce;
        let budget = self.cfg.max_request_size;
        let mut size = REQUEST_OVERHEAD + self.cfg.client_id.len();
        let rounds = node.ready.len();
        let mut entries: Vec<Taken> = Vec::with_capacity(rounds);
        let expects = acks != Acks::None;
        for _ in 0..rounds {
            let Some(pk) = self.nodes.get_mut(&n).and_then(|nd| nd.ready.pop_front()) else {
                break;
            };
            self.stats.partitions_visited += 1;
            self.part(pk).queued = false;
            if self.part(pk).leader != Some(n) {
                self.mark_ready(pk); // leader moved: forward
                continue;
            }
            if self.part(pk).backoff.is_some() {
                continue; // the backoff timer re-adds it
            }
            if self.txn.is_some() && self.txn_holds(pk) {
                continue; // AddPartitionsToTxn's answer re-adds it
            }
            let mark = self.stats.produce_requests + 1;
            let t = &self.topics[pk.0 as usize];
            let topic_extra = if t.request_mark == mark {
                0
            } else {
                t.name.len() + 8
            };
            let room = if entries.is_empty() {
                usize::MAX
            } else {
                budget.saturating_sub(size + topic_extra + PARTITION_OVERHEAD)
            };
            match self.take_batch(now, pk, room) {
                Take::Batch(bk, more) => {
                    self.topics[pk.0 as usize].request_mark = mark;
                    let e = self.note_taken(pk, bk, expects);
                    size += e.size + PARTITION_OVERHEAD + topic_extra;
                    entries.push(e);
                    if more {
                        self.requeue_partition_back(n, pk);
                    }
                }
                Take::TooBig => {
                    self.part(pk).queued = true;
                    self.nodes.get_mut(&n).expect("node").ready.push_front(pk);
                    break;
                }
                Take::Blocked | Take::Empty => {}
            }
        }
        if self.nodes.get(&n).is_some_and(|nd| !nd.ready.is_empty()) {
            self.add_work(n);
        }
        if entries.is_empty() {
            return None;
        }
        self.build_produce(now, cid, version, entries, size)
    }

    /// Counts batch `bk` of `pk` as sent in the request being built (its
    /// attempt, the partition's statistics and, when a response is
    /// expected, its in-flight count) and reads what the request needs of
    /// it: done here, while the batch's and the partition's lines are in
    /// the cache from taking it, not in a second pass over every batch
    /// once the request is written (at 10,000 partitions a request holds
    /// hundreds of batches, and that pass missed on each of them). A
    /// request that cannot be encoded undoes this ([`Self::build_produce`]).
    fn note_taken(&mut self, pk: PartKey, bk: BatchKey, expects: bool) -> Taken {
        let b = &mut self.ledger[bk];
        let first = b.attempts() == 0;
        b.note_attempt();
        let e = Taken {
            pk,
            bk,
            serial: b.serial(),
            bytes: b.bytes(),
            size: b.size(),
            records: b.records(),
            first,
        };
        self.stats.batches_sent += 1;
        let p = self.part(pk);
        if first {
            p.stats.batches += 1;
            p.stats.records += u64::from(e.records);
            p.stats.bytes += e.size as u64;
        }
        if expects {
            p.in_flight += 1;
        }
        e
    }

    fn requeue_partition_back(&mut self, n: i32, pk: PartKey) {
        if !self.part(pk).queued {
            self.part(pk).queued = true;
            self.nodes.get_mut(&n).expect("node").ready.push_back(pk);
        }
    }

    /// Takes the next batch of `pk` that may be sent now.
    fn take_batch(&mut self, now: Instant, pk: PartKey, room: usize) -> Take {
        let dt = self.cfg.delivery_timeout;
        let idem = self.idem.enabled();
        // Without idempotence, max.in.flight 1 is what keeps a partition's
        // order across retries: one batch of the partition in flight, to
        // whichever node (the Java client's `guaranteeMessageOrder` mutes
        // the partition). The per-connection limit alone lets a later batch
        // go to a new leader while an earlier one is in flight at the old.
        // The in-flight batch's answer or loss makes the partition ready.
        if !idem
            && self.cfg.max_in_flight == 1
            && self.cfg.acks != Acks::None
            && self.part(pk).in_flight > 0
        {
            return Take::Blocked;
        }
        loop {
            if let Some(err) = self.life.fatal().cloned() {
                self.fail_partition(now, pk, &err);
                return Take::Empty;
            }
            if !self.part(pk).retry.is_empty() {
                let Some(i) = (if idem {
                    self.seq_pick_resend(pk)
                } else {
                    Some(0)
                }) else {
                    return Take::Blocked;
                };
                let bk = self.part(pk).retry[i];
                if self.ledger[bk].created() + dt <= now {
                    self.part(pk).retry.remove(i);
                    let err = self.timeout_error(bk, "waiting to be retried");
                    self.fail_batch(now, bk, err, false);
                    continue;
                }
                if self.ledger[bk].size() > room {
                    return Take::TooBig;
                }
                self.part(pk).retry.remove(i);
                let p = self.part(pk);
                let more = !p.retry.is_empty() || p.unsent > 0;
                return Take::Batch(bk, more);
            }
            if idem && !self.seq_may_take_new(pk) {
                return Take::Blocked;
            }
            if let Some(t) = self.take_queued(now, pk, room) {
                return t;
            }
            // The batch taken failed (codec, delivery timeout): the next.
        }
    }

    /// Batch `id` of `pk` was just taken from the accumulator: it is no
    /// longer unsent, nor open.
    #[inline(always)]
    fn note_drained(&mut self, pk: PartKey, id: u64) {
        let p = self.part(pk);
        p.unsent -= 1;
        p.drained_below = p.drained_below.max(id + 1);
        if p.open() == Some(id) {
            // Sealed by a producer thread (full) before its notice was
            // read: it is no longer open.
            self.remove_open(pk);
        }
    }

    /// The error of a batch of `pk` created at `created` that has waited
    /// in the accumulator past `delivery.timeout.ms`, if it has.
    #[inline(always)]
    fn accumulator_timeout(
        &mut self,
        now: Instant,
        pk: PartKey,
        created: Instant,
    ) -> Option<DeliveryError> {
        let dt = self.cfg.delivery_timeout;
        (created + dt <= now).then(|| DeliveryError::Timeout {
            timeout_ms: dt.as_millis() as u64,
            stage: "in the accumulator",
            last_error: self.conn_cause(pk),
            status: MessageStatus::NotPersisted,
        })
    }

    /// Holds a batch of `pk` just taken (and not failed:
    /// [`Self::note_drained`], [`Self::accumulator_timeout`]) in the
    /// ledger, stamped for the wire, with its sequence; `more`: the
    /// partition's accumulator has more to send.
    ///
    /// Why the batch comes in parts (its sealed bytes, the few fields the
    /// ledger keeps, its per-record table by reference) rather than as a
    /// `QueuedBatch`: the ~260-byte batch was copied whole at each return,
    /// match and call between the slot and the ledger (callgrind: four
    /// `memcpy` calls per batch in `take_batch`), and a lingered open
    /// batch was first rebuilt into a `QueuedBatch` only to be taken apart
    /// again by the ledger. Now each part is moved once, into the ledger's
    /// slab entry.
    #[inline(always)]
    fn hold_taken(
        &mut self,
        pk: PartKey,
        sealed: SealedBatch,
        leaving: Leaving,
        per_record: &mut PerRecord,
        more: bool,
    ) -> Take {
        let idem = self.idem.enabled();
        let stamp = if idem {
            self.assign_sequence(pk, leaving.record_count)
        } else {
            Stamp::NONE
        };
        let bk = self.ledger.hold(pk, sealed, leaving, per_record, stamp);
        if idem {
            self.sequence_held(pk, bk);
        }
        self.maybe_disarm_delivery(pk);
        let more = more || !self.part(pk).retry.is_empty();
        Take::Batch(bk, more)
    }

    /// Takes the oldest batch of `pk` from the accumulator: the front sealed
    /// batch, else the open batch if it is due (lingered), sealing it now,
    /// and holds it in the ledger ([`Self::hold_taken`]). `None`: the batch
    /// taken failed instead.
    ///
    /// The slot mutex orders this against producer threads: under it, the
    /// open batch is either taken whole (later appends open a new batch,
    /// which comes after it in sequence) or left to them. Compression runs
    /// after the lock is dropped, so appends to the partition do not wait
    /// for it.
    fn take_queued(&mut self, now: Instant, pk: PartKey, room: usize) -> Option<Take> {
        let compression = self.shared.cfg.compression;
        let level = self.shared.cfg.compression_level;
        let p = &self.topics[pk.0 as usize].partitions[pk.1 as usize];
        let due = p.open().filter(|_| p.open_due);
        // The slot borrowed, not its `Arc` cloned: at many partitions the
        // count was a cold line per batch, a locked increment and, at the
        // clone's drop, a locked decrement (cloned only to hand the slot
        // to a compression worker).
        let mut q = p.slot.lock();
        let open_is_due =
            |q: &PartitionQueue| due.is_some_and(|id| q.open.as_ref().is_some_and(|o| o.id == id));
        if let Some(front) = q.sealed.front() {
            let Some(sealed) = front.sealed.done() else {
                // Still being compressed by a worker: nothing behind it
                // may overtake it; its Sealed notice makes the partition
                // ready again.
                return Some(Take::Empty);
            };
            let sz = sealed.as_ref().map_or(0, |s| s.size_in_bytes());
            if sz > room {
                return Some(Take::TooBig);
            }
            let mut qb = q.sealed.pop_front().expect("front");
            let more =
                q.sealed.front().is_some_and(|b| b.sealed.done().is_some()) || open_is_due(&q);
            drop(q);
            self.note_drained(pk, qb.id);
            let failed = match &qb.sealed {
                Sealing::Done(Ok(_)) => None,
                Sealing::Done(Err(e)) => Some(DeliveryError::Encode(Arc::from(e.to_string()))),
                Sealing::Queued(_) | Sealing::Running => Some(DeliveryError::Encode(Arc::from(
                    "a batch was taken before its compression finished",
                ))),
            };
            if let Some(err) = failed.or_else(|| self.accumulator_timeout(now, pk, qb.created)) {
                self.fail_queued(pk, qb, err);
                return None;
            }
            let Sealing::Done(Ok(sealed)) = std::mem::replace(&mut qb.sealed, Sealing::Running)
            else {
                unreachable!("checked above: the batch is sealed");
            };
            let leaving = Leaving {
                record_count: qb.record_count,
                completion: qb.completion.take(),
                created: qb.created,
                reserved: qb.reserved,
                flush_gen: qb.flush_gen,
            };
            // What is left of `qb` is a husk, dropped here.
            return Some(self.hold_taken(pk, sealed, leaving, &mut qb.per_record, more));
        }
        if !open_is_due(&q) {
            return Some(Take::Empty);
        }
        let open = q.open.as_ref().expect("due open batch");
        let size = open.builder.size_in_bytes();
        // Uncompressed, the size is exact; compressed, it is known only
        // after sealing (checked below).
        if compression == Compression::None && size > room {
            return Some(Take::TooBig);
        }
        let offload = self.shared.compress.wants(compression, size);
        let id = open.id;
        if offload {
            // Queued where the sealed batch would go (the queue is empty):
            // batches producer threads seal meanwhile queue behind it.
            let open = q.open.take().expect("due open batch");
            q.sealed.push_back(open.seal_later());
            drop(q);
            let slot = p.slot.clone();
            self.open_taken(pk, id);
            self.shared.offload(slot, pk.0, pk.1, id, size);
            return Some(Take::Empty);
        }
        // Sealed and held from its parts, taken straight out of the slot:
        // never rebuilt into a `QueuedBatch` unless it must wait or fail.
        // (Not wrapped in an `Option` shared with the branch above: each
        // wrap and unwrap of the open batch was a copy of it.)
        let Some(OpenBatch {
            builder,
            completion,
            mut per_record,
            created,
            reserved,
            flush_gen,
            ..
        }) = q.open.take()
        else {
            unreachable!("due open batch");
        };
        drop(q);
        self.open_taken(pk, id);
        let leaving = Leaving {
            record_count: builder.record_count(),
            completion,
            created,
            reserved,
            flush_gen,
        };
        let sealed = match builder.seal_at(compression, level) {
            Ok(s) if s.size_in_bytes() <= room => {
                self.note_drained(pk, id);
                if let Some(err) = self.accumulator_timeout(now, pk, created) {
                    let qb = leaving.into_queued(id, Sealing::Done(Ok(s)), per_record);
                    self.fail_queued(pk, qb, err);
                    return None;
                }
                return Some(self.hold_taken(pk, s, leaving, &mut per_record, false));
            }
            Ok(s) => s,
            Err(e) => {
                self.note_drained(pk, id);
                let err = DeliveryError::Encode(Arc::from(e.to_string()));
                let qb = leaving.into_queued(id, Sealing::Done(Err(e)), per_record);
                self.fail_queued(pk, qb, err);
                return None;
            }
        };
        // Sealed, but it does not fit this request: it leads the
        // partition's queue for the next one (producer threads only ever
        // add behind it).
        let qb = leaving.into_queued(id, Sealing::Done(Ok(sealed)), per_record);
        self.topics[pk.0 as usize].partitions[pk.1 as usize]
            .slot
            .lock()
            .sealed
            .push_front(qb);
        Some(Take::TooBig)
    }

    /// The open batch `id` of `pk` was taken from its slot to be sealed.
    fn open_taken(&mut self, pk: PartKey, id: u64) {
        self.remove_open(pk);
        let p = self.part(pk);
        p.sealed_below = p.sealed_below.max(id + 1);
    }

    /// Fails every unsent batch of `pk` (fatal producer state): the retry
    /// queue, the sealed batches and the open one (which no request will
    /// ever take, so it would otherwise wait for its delivery timeout).
    pub(crate) fn fail_partition(&mut self, now: Instant, pk: PartKey, err: &DeliveryError) {
        while let Some(bk) = self.part(pk).retry.pop_front() {
            self.fail_batch(now, bk, err.clone(), false);
        }
        self.fail_buffered(pk, err);
    }

    fn build_produce(
        &mut self,
        now: Instant,
        cid: ConnId,
        version: i16,
        mut entries: Vec<Taken>,
        size_hint: usize,
    ) -> Option<Transmit> {
        entries.sort_unstable_by_key(|e| e.pk);
        let expects = self.cfg.acks != Acks::None;
        // Everything but the record batches: they are spliced in as
        // chunks of their own, shared rather than copied.
        let head = size_hint.saturating_sub(entries.iter().map(|e| e.size).sum());
        // Written entry by entry from what the take noted (no generated
        // request structs per partition, no second look at the ledger);
        // the correlation id goes in last.
        let topics = entries.chunk_by(|a, b| a.pk.0 == b.pk.0).count();
        let txn_id = self.txn.as_ref().map(|t| t.id());
        let writer = (|| {
            let mut w = ProduceFrameWriter::new(
                Some(&self.cfg.client_id),
                version,
                txn_id,
                self.cfg.acks.wire(),
                self.cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32,
                topics,
                entries.len(),
                head,
            )?;
            for run in entries.chunk_by_mut(|a, b| a.pk.0 == b.pk.0) {
                w.topic(&self.topics[run[0].pk.0 as usize].name, run.len())?;
                for e in run {
                    w.partition(e.pk.1 as i32, std::mem::take(&mut e.bytes))?;
                }
            }
            Ok(w)
        })();
        let keys: Vec<(BatchKey, u64)> = entries.iter().map(|e| (e.bk, e.serial)).collect();
        match writer.and_then(|w| {
            self.send_frame(
                now,
                cid,
                version,
                ReqKind::Produce(keys),
                expects,
                |corr, _client_id| w.finish(corr),
            )
        }) {
            Ok(t) => {
                self.stats.produce_requests += 1;
                if !expects {
                    for e in &entries {
                        self.complete_ok(
                            e.bk,
                            BatchOk {
                                base_offset: -1,
                                log_append_time: -1,
                            },
                        );
                        self.after_partition_progress(now, e.pk);
                    }
                    // Those batches completed here, not in a handler: a
                    // flush (or close) waiting for them completes now, as
                    // the driver may get no further turn (epoll writes
                    // finish without a completion event).
                    self.end_turn(now);
                }
                Some(t)
            }
            Err(e) => {
                let err = DeliveryError::Encode(Arc::from(format!("produce request: {e}")));
                for e in entries {
                    // Not sent after all: undo `note_taken` (the attempt
                    // count stays; the batch fails for good here).
                    self.stats.batches_sent -= 1;
                    let p = self.part(e.pk);
                    if e.first {
                        p.stats.batches -= 1;
                        p.stats.records -= u64::from(e.records);
                        p.stats.bytes -= e.size as u64;
                    }
                    if expects {
                        p.in_flight -= 1;
                    }
                    self.fail_batch(now, e.bk, err.clone(), false);
                }
                None
            }
        }
    }

    /// One response frame (size prefix stripped) arrived on `id`. It must
    /// answer the oldest in-flight request of the connection.
    pub fn handle_response(&mut self, now: Instant, id: ConnId, frame: Bytes) {
        if self.conn(id).is_none() {
            return;
        }
        let corr = match response_correlation_id(&frame) {
            Ok(c) => c,
            Err(_) => {
                self.drop_conn(now, id, "response shorter than its header", true);
                return;
            }
        };
        self.count_response(id, frame.len());
        let Some(inf) = self.pop_in_flight(now, id, corr) else {
            return;
        };
        match inf.kind {
            ReqKind::ApiVersions => self.handle_api_versions(now, id, inf.version, frame),
            ReqKind::SaslHandshake => self.handle_sasl_handshake(now, id, inf.version, frame),
            ReqKind::SaslAuthenticate => self.handle_sasl_authenticate(now, id, inf.version, frame),
            ReqKind::Metadata => self.handle_metadata(now, id, inf.version, frame),
            ReqKind::InitProducerId => {
                match decode_response_frame::<InitProducerIdRequest>(frame, inf.version) {
                    Ok((_, r)) => {
                        self.count_throttle(id, r.throttle_time_ms);
                        self.throttle_conn(now, id, inf.version >= 1, r.throttle_time_ms);
                        self.handle_init_pid(now, r);
                    }
                    Err(e) => {
                        self.init_pid_lost(now);
                        self.drop_conn(
                            now,
                            id,
                            &format!("undecodable InitProducerId response: {e}"),
                            true,
                        );
                    }
                }
            }
            ReqKind::Produce(batches) => self.handle_produce(now, id, inf.version, batches, frame),
            ReqKind::FindCoordinator => self.handle_txn_response(
                now,
                id,
                inf.version,
                super::transaction::TxnRequest::FindCoordinator,
                frame,
            ),
            ReqKind::Txn(req) => self.handle_txn_response(now, id, inf.version, req, frame),
        }
        // The connection has room again.
        if let Some(Target::Node(n)) = self.conn(id).map(|c| c.target) {
            if self.nodes.get(&n).is_some_and(|nd| !nd.ready.is_empty()) {
                self.add_work(n);
            }
        }
        self.end_turn(now);
    }

    fn batch_live(&self, bk: BatchKey, serial: u64) -> bool {
        self.ledger.is_live(bk, serial)
    }

    fn handle_produce(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        batches: Vec<(BatchKey, u64)>,
        frame: Bytes,
    ) {
        if self.handle_produce_ok(now, id, version, &batches, &frame) {
            return;
        }
        let resp: ProduceResponse = match decode_response_frame::<ProduceRequest>(frame, version) {
            Ok((_, r)) => r,
            Err(e) => {
                let reason = format!("undecodable produce response: {e}");
                for (bk, serial) in batches {
                    self.batch_lost(now, bk, serial, &reason);
                }
                self.drop_conn(now, id, &reason, true);
                return;
            }
        };
        self.count_throttle(id, resp.throttle_time_ms);
        self.throttle_conn(now, id, version >= 6, resp.throttle_time_ms);
        // KIP-951: endpoints of nodes named in CurrentLeader hints.
        for ep in &resp.node_endpoints {
            let addr = format!("{}:{}", ep.host, ep.port);
            self.nodes.add(ep.node_id, addr);
        }
        let mut by_part: Vec<(PartKey, &PartitionProduceResponse)> = Vec::new();
        for t in &resp.responses {
            let Some(tid) = self.topics.id_of(t.name.as_str()) else {
                continue;
            };
            for p in &t.partition_responses {
                if p.index >= 0 {
                    by_part.push(((tid, p.index as u32), p));
                }
            }
        }
        by_part.sort_unstable_by_key(|(pk, _)| *pk);
        for (bk, serial) in batches {
            if !self.batch_live(bk, serial) {
                continue;
            }
            let pk = self.ledger[bk].part();
            let p = self.part(pk);
            p.in_flight = p.in_flight.saturating_sub(1);
            let pr = by_part
                .binary_search_by_key(&pk, |(k, _)| *k)
                .ok()
                .map(|i| by_part[i].1);
            match pr {
                None => self.handle_batch_error(
                    now,
                    bk,
                    ErrorCode::UNKNOWN_SERVER_ERROR,
                    true,
                    None,
                    -1,
                    Some("partition missing from the produce response"),
                    &[],
                ),
                Some(pr) => {
                    let err = ErrorCode(pr.error_code);
                    if err.is_ok() || err == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
                        self.partition_ok(now, pk, bk, pr.base_offset, pr.log_append_time_ms);
                    } else {
                        // KIP-951: a broker sets the hint only with these
                        // two errors, and the Java client trusts it with no
                        // other: any other error says nothing about who
                        // leads the partition.
                        let leadership = err == ErrorCode::NOT_LEADER_OR_FOLLOWER
                            || err == ErrorCode::FENCED_LEADER_EPOCH;
                        let hint =
                            (version >= 10 && leadership && pr.current_leader.leader_id >= 0)
                                .then_some((
                                    pr.current_leader.leader_id,
                                    pr.current_leader.leader_epoch,
                                ));
                        let msg = pr.error_message.clone();
                        self.handle_batch_error(
                            now,
                            bk,
                            err,
                            false,
                            hint,
                            pr.log_start_offset,
                            msg.as_deref(),
                            &pr.record_errors,
                        );
                    }
                }
            }
        }
        for n in std::mem::take(&mut self.hinted_away) {
            self.forward_moved(n);
        }
    }

    /// The common answer, read by the fast decoder
    /// (`kring_protocol::produce_fast`): every partition accepted, listed
    /// in the order the request listed them (the order of `batches`).
    /// Returns false, having changed nothing, for any other response (an
    /// error, a leader hint, another order, a batch no longer held): the
    /// generated decoder and the general path take it.
    fn handle_produce_ok(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        batches: &[(BatchKey, u64)],
        frame: &[u8],
    ) -> bool {
        let Some(ok) = decode_produce_response_ok(frame, version) else {
            return false;
        };
        if ok.partitions.len() != batches.len() {
            return false;
        }
        // Every partition matched before anything is applied.
        let mut topic = (usize::MAX, 0u32);
        for (p, &(bk, serial)) in ok.partitions.iter().zip(batches) {
            if !self.batch_live(bk, serial) || p.index < 0 {
                return false;
            }
            if p.topic != topic.0 {
                match self.topics.id_of(ok.topics[p.topic]) {
                    Some(tid) => topic = (p.topic, tid),
                    None => return false,
                }
            }
            if self.ledger[bk].part() != (topic.1, p.index as u32) {
                return false;
            }
        }
        self.count_throttle(id, ok.throttle_time_ms);
        self.throttle_conn(now, id, version >= 6, ok.throttle_time_ms);
        for (p, &(bk, _)) in ok.partitions.iter().zip(batches) {
            let pk = self.ledger[bk].part();
            let part = self.part(pk);
            part.in_flight = part.in_flight.saturating_sub(1);
            self.partition_ok(now, pk, bk, p.base_offset, p.log_append_time_ms);
        }
        true
    }

    /// A response said the broker throttled the connection `throttle_ms`
    /// (a quota): from the versions of KIP-219 on (Produce and Metadata
    /// v6, InitProducerId v1: `client_throttles`) the broker answers at
    /// once and mutes the channel that long, expecting the client to send
    /// nothing meanwhile, as the Java client's `NetworkClient.maybeThrottle`
    /// does. Before those versions the broker delayed the answer itself.
    /// A request written meanwhile — of any kind: produce, metadata,
    /// InitProducerId — would only wait in the muted channel, its request
    /// timeout running; so none is (`Conn::is_throttled`).
    pub(crate) fn throttle_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        client_throttles: bool,
        throttle_ms: i32,
    ) {
        if !client_throttles || throttle_ms <= 0 {
            return;
        }
        let until = now + std::time::Duration::from_millis(throttle_ms as u64);
        let Some(c) = self.conn_mut(id) else {
            return;
        };
        if c.throttled_until.is_some_and(|t| t >= until) {
            return;
        }
        c.throttled_until = Some(until);
        tracing::debug!(%id, throttle_ms, "broker throttled the connection; no request before it ends");
        self.timers.insert(until, TimerKey::Throttle(id));
    }

    /// A connection's throttle may have ended: its node sends again.
    pub(crate) fn throttle_timer(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conn_mut(id) else {
            return;
        };
        if c.throttled_until.is_some_and(|t| t > now) {
            return; // extended by a later answer: its own timer comes
        }
        c.throttled_until = None;
        if let Target::Node(n) = c.target {
            if self.nodes.get(&n).is_some_and(|nd| !nd.ready.is_empty()) {
                self.add_work(n);
            }
        }
    }

    /// A partition of a produce response accepted batch `bk` (or found it
    /// a duplicate): its sequence advances, it completes with the offset
    /// and time the broker gave, the partition may send again.
    fn partition_ok(
        &mut self,
        now: Instant,
        pk: PartKey,
        bk: BatchKey,
        base_offset: i64,
        log_append_time: i64,
    ) {
        if self.idem.enabled() {
            self.seq_batch_ok(pk, bk);
        }
        let base_offset = self.plausible_base_offset(bk, base_offset);
        let (ledger, out) = self.ledger_outlet();
        ledger.complete(
            bk,
            Ok(BatchOk {
                base_offset,
                log_append_time,
            }),
            out,
        );
        // Usually nothing follows: no delivery timer to disarm, nothing
        // more to send, no sequence decision waiting (`finish_held` and
        // `after_partition_progress` would look at each in turn).
        let idem = self.idem.enabled();
        let p = self.part(pk);
        if p.has_unsent_work()
            || !matches!(p.delivery, DeliveryTimer::None)
            || (idem && (p.seq.unresolved.is_some() || p.seq.hold.is_some()))
        {
            self.maybe_disarm_delivery(pk);
            self.after_partition_progress(now, pk);
        }
    }

    /// The base offset to report for a batch the broker accepted: its
    /// answer, unless the log end offset after the batch (`base_offset +
    /// records`) would not fit an `i64` (a broker cannot have written
    /// there). Then the records were written but their offsets are unknown:
    /// -1, the value the Java client reports when the broker gives no
    /// offset. (The Java client adds without a check and would report
    /// wrapped, negative offsets.)
    fn plausible_base_offset(&self, bk: BatchKey, base_offset: i64) -> i64 {
        let b = &self.ledger[bk];
        if base_offset >= 0 && base_offset.checked_add(i64::from(b.records())).is_none() {
            let pk = b.part();
            tracing::warn!(
                topic = %self.topics[pk.0 as usize].name,
                partition = pk.1,
                base_offset,
                records = b.records(),
                "the broker answered an impossible base offset; reporting the records' offsets as unknown (-1)"
            );
            return -1;
        }
        base_offset
    }

    /// A batch's request was lost with its connection (or timed out).
    pub(crate) fn batch_lost(&mut self, now: Instant, bk: BatchKey, serial: u64, reason: &str) {
        if !self.batch_live(bk, serial) {
            return;
        }
        let pk = self.ledger[bk].part();
        let p = self.part(pk);
        p.in_flight = p.in_flight.saturating_sub(1);
        self.handle_batch_error(
            now,
            bk,
            ErrorCode::NETWORK_EXCEPTION,
            false,
            None,
            -1,
            Some(reason),
            &[],
        );
    }

    /// A batch failed with `err`: retry it (after a backoff, unless a
    /// leader hint moved it) or fail it for good.
    #[allow(clippy::too_many_arguments)] // the facts of one partition response
    fn handle_batch_error(
        &mut self,
        now: Instant,
        bk: BatchKey,
        err: ErrorCode,
        force_retriable: bool,
        hint: Option<(i32, i32)>,
        log_start_offset: i64,
        message: Option<&str>,
        record_errors: &[BatchIndexAndErrorMessage],
    ) {
        let pk = self.ledger[bk].part();
        self.ledger[bk].set_last_error(err, message);
        self.part(pk).stats.error(err);
        if force_retriable || super::batch::may_have_appended(err) {
            self.ledger[bk].set_maybe_written(true);
        }
        tracing::debug!(topic = %self.topics[pk.0 as usize].name, partition = pk.1, error = err.name(), message, "batch failed");
        if self.idem.enabled() && fatal_to_idempotence(err) {
            let error = DeliveryError::Broker {
                code: err.code(),
                name: err.name(),
                message: Some(Arc::from(message.unwrap_or(
                    "fatal to the idempotent producer: it sends nothing any more",
                ))),
                status: MessageStatus::NotPersisted,
            };
            // The fatal state first: a sender woken by this batch's
            // failure must find later sends refused.
            self.enter_fatal(now, error.clone());
            self.fail_batch(now, bk, error, false);
            return;
        }
        let mut leader_moved = false;
        if let Some((leader, epoch)) = hint {
            leader_moved = self.apply_leader_hint(pk, leader, epoch);
        }
        if (is_invalid_metadata(err) || err == ErrorCode::NETWORK_EXCEPTION) && !leader_moved {
            self.request_metadata_soon(now);
        }
        if self.should_split(bk, err) {
            match self.split_batch(now, bk) {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    error = %e,
                    "cannot split a batch refused as too large; failing it"
                ),
            }
        }
        let b = &self.ledger[bk];
        let expired = b.created() + self.cfg.delivery_timeout <= now;
        let attempts = b.attempts();
        let verdict = if force_retriable {
            None
        } else {
            self.seq_can_retry(pk, bk, err, log_start_offset)
        };
        let abandon = verdict == Some(SeqVerdict::Abandon);
        let can = force_retriable
            || match verdict {
                Some(v) => v == SeqVerdict::Retry,
                None => err.is_retriable(),
            };
        let message = if abandon && err == ErrorCode::UNKNOWN_PRODUCER_ID {
            Some("the broker lost this producer's state, so it can no longer tell whether this batch was written")
        } else if abandon && self.ledger[bk].maybe_written() {
            Some("the broker acknowledged later records of this partition, so this batch was most likely written, but the broker no longer remembers it to confirm")
        } else if abandon {
            Some("the broker holds later records of this partition; this batch can no longer be written in order")
        } else {
            message
        };
        if can && !expired && attempts <= self.cfg.retries {
            self.requeue(now, pk, bk, !leader_moved);
            return;
        }
        // fail_batch sets the status from the batch's history.
        if !can && !abandon && err != ErrorCode::MESSAGE_TOO_LARGE {
            if let Some(named) = self.named_invalid_records(bk, err, message, record_errors) {
                let error = DeliveryError::InvalidRecords {
                    code: err.code(),
                    name: err.name(),
                    message: message.map(Arc::from),
                    record_error: None,
                    invalid_records: named.len() as u32,
                    status: MessageStatus::NotPersisted,
                };
                self.fail_batch_naming(now, bk, error, Some(named), true);
                return;
            }
        }
        let error = if can && expired {
            self.timeout_error(bk, "retrying")
        } else if can {
            DeliveryError::RetriesExhausted {
                attempts,
                code: err.code(),
                name: err.name(),
                // This attempt's message, as recorded above.
                message: self.ledger[bk].last_error().and_then(|(_, m)| m.cloned()),
                status: MessageStatus::NotPersisted,
            }
        } else if err == ErrorCode::MESSAGE_TOO_LARGE {
            DeliveryError::MessageTooLarge {
                batch_bytes: self.ledger[bk].size(),
                message: message.map(Arc::from),
                status: MessageStatus::NotPersisted,
            }
        } else {
            DeliveryError::Broker {
                code: err.code(),
                name: err.name(),
                message: message.map(Arc::from),
                status: MessageStatus::NotPersisted,
            }
        };
        let broker_fatal = !abandon && !matches!(error, DeliveryError::Timeout { .. });
        self.fail_batch(now, bk, error, broker_fatal);
    }

    /// The records of `bk` a refusal named invalid (KIP-467 record
    /// errors), each with its reason: the broker's message for it, else
    /// for the batch, else the code's description (the Java client's
    /// choice). Indexes outside the batch are ignored; `None` if none is
    /// left.
    fn named_invalid_records(
        &self,
        bk: BatchKey,
        err: ErrorCode,
        message: Option<&str>,
        record_errors: &[BatchIndexAndErrorMessage],
    ) -> Option<RecordErrors> {
        let records = self.ledger[bk].records();
        let named: Vec<(u32, Arc<str>)> = record_errors
            .iter()
            .filter_map(|r| {
                let i = u32::try_from(r.batch_index).ok().filter(|&i| i < records)?;
                let why = r
                    .batch_index_error_message
                    .as_deref()
                    .or(message)
                    .unwrap_or(err.description());
                Some((i, Arc::from(why)))
            })
            .collect();
        (!named.is_empty()).then(|| RecordErrors::new(named))
    }

    /// Inserts `bk` into its partition's retry queue: in sequence order
    /// with idempotence, else in record order (`InBatch::order`), so a
    /// retried batch goes back ahead of later ones (the parts of a split
    /// batch included).
    pub(crate) fn insert_retry(&mut self, pk: PartKey, bk: BatchKey) {
        let batches = &self.ledger;
        let b = &batches[bk];
        let retry = &mut self.topics[pk.0 as usize].partitions[pk.1 as usize].retry;
        let pos = if self.idem.enabled() && b.seq() >= 0 {
            // Kafka's order: sequences wrap from i32::MAX to 0.
            retry
                .iter()
                .position(|&o| kring_protocol::record::sequence_after(batches[o].seq(), b.seq()))
        } else {
            retry.iter().position(|&o| batches[o].order() > b.order())
        };
        match pos {
            Some(i) => retry.insert(i, bk),
            None => retry.push_back(bk),
        }
    }

    /// Puts a batch back for another attempt, in sequence order.
    fn requeue(&mut self, now: Instant, pk: PartKey, bk: BatchKey, with_backoff: bool) {
        self.stats.retries += 1;
        self.part(pk).stats.retries += 1;
        self.insert_retry(pk, bk);
        if with_backoff && self.part(pk).backoff.is_none() {
            let attempt = self.ledger[bk].attempts().saturating_sub(1);
            let d = self.cfg.retry.backoff(attempt, &mut self.rng);
            let h = self.timers.insert(now + d, TimerKey::Backoff(pk));
            self.part(pk).backoff = Some(h);
        }
        let created = self.ledger[bk].created();
        self.arm_delivery(pk, created + self.cfg.delivery_timeout);
        if self.idem.enabled() {
            self.maybe_release_hold(pk);
        }
        self.mark_ready(pk);
    }
}
