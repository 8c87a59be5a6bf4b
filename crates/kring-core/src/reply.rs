//! What an append hands back about its record: a delivery handle, or
//! nothing.
//!
//! Why two kinds: a handle refers to its batch's completion, and making
//! that reference costs a reference-count increment (and, when the handle
//! is dropped, a decrement) on a line the I/O thread writes when the batch
//! completes; the completion itself is a cache line a batch touches on both
//! threads. A caller that takes results through the delivery callback
//! (librdkafka's and the Java client's usual way) needs none of it: with
//! records spread over many partitions each of those touches is a cache
//! miss (a `perf` profile at 10,000 partitions put 40 % of `send`'s time on
//! the handle's increment alone). So a batch makes its completion only when
//! a record of it is sent with a handle, and appends are generic over
//! [`Reply`]: [`WithHandle`] (`send`, `send_async`) or [`NoHandle`]
//! (`produce`, `produce_async`, `try_send`).

use std::sync::Arc;

use crate::delivery::{BatchCompletion, DeliveryHandle, PerRecord};
use crate::spare_parts::SpareParts;

/// Whether an append hands back a delivery handle.
pub(crate) trait Reply {
    /// The append's reference to its batch, taken under the partition's
    /// lock: its completion, or nothing.
    type Batch;
    /// What the caller gets: a [`DeliveryHandle`], or nothing.
    type Delivery;
    /// A new batch's completion (made now only if this record wants a
    /// handle) and per-record table.
    fn open(parts: &SpareParts, partition: i32) -> (Option<Arc<BatchCompletion>>, PerRecord);
    /// The record's reference to its batch's completion, made on the first
    /// record that wants one.
    fn batch(
        completion: &mut Option<Arc<BatchCompletion>>,
        parts: &SpareParts,
        partition: i32,
    ) -> Self::Batch;
    /// The caller's delivery, made outside the lock.
    fn delivery(batch: Self::Batch, index: u32, timestamp_ms: i64) -> Self::Delivery;
}

/// The record's result comes back through a [`DeliveryHandle`] (and the
/// callback, if one is set).
pub(crate) enum WithHandle {}

/// The record's result goes only to the delivery callback, if one is set.
pub(crate) enum NoHandle {}

impl Reply for WithHandle {
    type Batch = Arc<BatchCompletion>;
    type Delivery = DeliveryHandle;

    #[inline(always)]
    fn open(parts: &SpareParts, partition: i32) -> (Option<Arc<BatchCompletion>>, PerRecord) {
        let (c, t) = parts.take_both(partition);
        (Some(c), t)
    }

    #[inline(always)]
    fn batch(
        completion: &mut Option<Arc<BatchCompletion>>,
        parts: &SpareParts,
        partition: i32,
    ) -> Arc<BatchCompletion> {
        completion
            .get_or_insert_with(|| parts.take_completion(partition))
            .clone()
    }

    #[inline(always)]
    fn delivery(batch: Arc<BatchCompletion>, index: u32, timestamp_ms: i64) -> DeliveryHandle {
        DeliveryHandle::new(batch, index, timestamp_ms)
    }
}

impl Reply for NoHandle {
    type Batch = ();
    type Delivery = ();

    #[inline(always)]
    fn open(parts: &SpareParts, _partition: i32) -> (Option<Arc<BatchCompletion>>, PerRecord) {
        (None, parts.take_table())
    }

    #[inline(always)]
    fn batch(_: &mut Option<Arc<BatchCompletion>>, _: &SpareParts, _: i32) {}

    #[inline(always)]
    fn delivery(_: (), _: u32, _: i64) {}
}
