//! Splitting a batch the broker refused as too large.
//!
//! A broker answers MESSAGE_TOO_LARGE for a batch over the topic's
//! `max.message.bytes`. Records that each fit can still make such a batch
//! (`batch.size` and `max.request.size` are the producer's, the limit is
//! the topic's), so, as the Java client's `Sender` does, a refused batch of
//! more than one record is split and its parts are sent again; a batch of
//! one record is the record's own fault and fails with
//! [`DeliveryError::MessageTooLarge`](crate::DeliveryError::MessageTooLarge).
//!
//! Differences from the Java client, and why:
//! - **In two halves (by bytes), not into `batch.size` pieces.** The Java
//!   client re-packs the records into batches of up to `batch.size`; when
//!   the topic's limit is below `batch.size` a batch smaller than
//!   `batch.size` comes back whole and is refused again until its delivery
//!   timeout. Halving converges: a part that is still too large is split
//!   again, at most log2(records) rounds, down to single records.
//! - **With idempotence, a batch of unknown fate is not split**
//!   (`InBatch::maybe_written`: an earlier attempt went unanswered). It may
//!   be in the log under its producer id, epoch and sequence range (if the
//!   topic's limit was lowered between attempts: a broker checks the size
//!   before it looks for duplicates, so the refusal says nothing about an
//!   earlier attempt), and only a re-send of that same range lets the
//!   broker recognise it (the rule `idempotence.rs` keeps); parts under
//!   sub-ranges would be refused as out of order and the partition's
//!   sequences rewritten, duplicating it. It fails as possibly persisted
//!   instead. Without idempotence a retry of such a batch may duplicate it
//!   anyway (at least once), so it is split like any other and its parts
//!   keep its possibly-persisted status.
//!
//! Sequences, as in the Java client: the parts take the refused batch's
//! sequence range in order (the first part its base sequence, the second
//! the base plus the first part's records), so the batches after it, sent
//! or not, keep theirs. Those already in flight get
//! OUT_OF_ORDER_SEQUENCE_NUMBER (the broker has not written the range
//! before them) and are re-sent after the parts, as any batch behind an
//! unwritten one is. Without idempotence the retry queue is kept in record
//! order (`InBatch::order`), so the parts go ahead of any later batch
//! waiting there, and a part retried after an error goes back ahead of
//! the parts after it.
//!
//! Results: both parts share the batch's [`BatchCompletion`], each
//! completing its own records (`InBatch::span`) with its own base offset;
//! see `delivery/completion.rs`. The flush and close accounting counts each part as a
//! batch, and `buffer.memory` charged for the batch is divided between the
//! parts by their share of its bytes.
//!
//! [`BatchCompletion`]: crate::delivery::BatchCompletion

use std::time::Instant;

use kring_protocol::record::{
    decode_batch, increment_sequence, DecodeOptions, Header, Record, RecordBatch,
    RecordBatchBuilder, SealedBatch,
};
use kring_protocol::ErrorCode;

use super::{BatchKey, PartKey, ProducerCore};

/// Bytes a record adds to a batch, roughly (for choosing the split point).
fn approx_size(r: &Record) -> usize {
    let header_bytes: usize = r
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 2)
        .sum();
    r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + header_bytes
        + 8
}

/// Encodes `records` (of `batch`) into a new sealed batch, compressed at
/// `level` (the producer's).
fn rebuild(
    batch: &RecordBatch,
    records: &[Record],
    level: Option<i32>,
) -> Result<SealedBatch, String> {
    let cap =
        kring_protocol::record::layout::HEADER_LEN + records.iter().map(approx_size).sum::<usize>();
    let mut b = RecordBatchBuilder::new(batch.base_timestamp, cap);
    let mut headers: Vec<Header<'_>> = Vec::new();
    for r in records {
        headers.clear();
        headers.extend(r.headers.iter().map(|h| Header {
            key: &h.key,
            value: h.value.as_deref(),
        }));
        b.append(
            batch.timestamp_of(r),
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
    }
    b.seal_at(batch.compression, level)
        .map_err(|e| e.to_string())
}

impl ProducerCore {
    /// Whether a batch the broker answered with `err` is split and sent
    /// again instead of failed: MESSAGE_TOO_LARGE, more than one record,
    /// and, with idempotence, no attempt of it can be in the log.
    pub(crate) fn should_split(&self, bk: BatchKey, err: ErrorCode) -> bool {
        let b = &self.ledger[bk];
        err == ErrorCode::MESSAGE_TOO_LARGE
            && b.records() > 1
            && !(b.maybe_written() && self.idem.enabled())
    }

    /// Splits held batch `bk` (answered, not queued for a retry) in two
    /// parts by bytes and queues both to be sent, first part first. An
    /// error (the batch's own bytes do not decode or re-encode) leaves the
    /// batch as it was.
    pub(crate) fn split_batch(&mut self, now: Instant, bk: BatchKey) -> Result<(), String> {
        let b = &self.ledger[bk];
        let pk: PartKey = b.part();
        let n = b.records();
        // Our own batch: its records were at most max(batch.size, one
        // record under max.request.size) before compression.
        let bound = self
            .cfg
            .max_request_size
            .max(self.shared.cfg.batch_size)
            .saturating_mul(2)
            .max(64 << 20);
        let opts = DecodeOptions {
            verify_crc: false,
            max_decompressed_size: bound,
        };
        let mut raw = b.bytes();
        let batch = decode_batch(&mut raw, &opts).map_err(|e| e.to_string())?;
        let records = batch.records(&opts).map_err(|e| e.to_string())?;
        if records.len() != n as usize || n < 2 {
            return Err(format!("{} records decoded, {n} expected", records.len()));
        }
        let sizes: Vec<usize> = records.iter().map(approx_size).collect();
        let total: usize = sizes.iter().sum();
        let mut at = 1;
        let mut first_bytes = sizes[0];
        while at < records.len() - 1 && first_bytes < total / 2 {
            first_bytes += sizes[at];
            at += 1;
        }
        // The batch was written with the configured codec; its level is
        // the configured one too (none for another codec, defensively).
        let level = Some(self.shared.cfg.compression_level)
            .filter(|_| batch.compression == self.shared.cfg.compression)
            .flatten();
        let first = rebuild(&batch, &records[..at], level)?;
        let second = rebuild(&batch, &records[at..], level)?;
        drop(records);
        let n1 = at as u32;
        let n2 = n - n1;

        // The records' results: from now on per part (the ledger splits
        // the reservation, the per-record data and the flush accounting).
        let b = &self.ledger[bk];
        let reserved_first =
            (b.reserved() as u128 * first_bytes as u128 / total.max(1) as u128) as usize;
        let seq = b.seq();
        let sequenced = self.idem.enabled() && seq >= 0;
        let seq2 = sequenced.then(|| increment_sequence(seq, n1));
        let bk2 = self
            .ledger
            .split(bk, first, second, n1, reserved_first, seq2);
        self.stats.batches_split += 1;

        let p = self.part(pk);
        if sequenced {
            let at = p.seq.pending.iter().position(|&x| x == bk);
            match at {
                Some(i) => p.seq.pending.insert(i + 1, bk2),
                None => p.seq.pending.push_back(bk2),
            }
        }
        // Into the retry queue in sequence (or record) order: ahead of the
        // batches after it.
        self.insert_retry(pk, bk);
        self.insert_retry(pk, bk2);
        let created = self.ledger[bk].created();
        self.arm_delivery(pk, created + self.cfg.delivery_timeout);
        if self.idem.enabled() {
            self.maybe_release_hold(pk);
        }
        tracing::debug!(
            topic = %self.topics[pk.0 as usize].name,
            partition = pk.1,
            records = n,
            first = n1,
            second = n2,
            "batch refused as too large (MESSAGE_TOO_LARGE): split in two and sent again"
        );
        self.mark_ready(pk);
        let _ = now;
        Ok(())
    }
}
