//! A snapshot of the producer's counters.

/// Counters of a producer, read with [`Producer::metrics`](crate::Producer::metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Returns of the I/O thread from its kernel wait. An idle producer
    /// keeps this still: the thread sleeps until work or a deadline.
    pub io_wakeups: u64,
    /// Times a producer thread woke the parked I/O thread (new batches,
    /// flush, close). Appending to an open batch never does.
    pub wake_requests: u64,
    /// `SENDMSG` operations completed (each may carry many requests).
    pub sends: u64,
    /// Bytes written to brokers.
    pub bytes_sent: u64,
    /// Bytes read from brokers.
    pub bytes_received: u64,
    /// Responses received.
    pub responses: u64,
    /// TCP connections established.
    pub connects: u64,
    /// Bytes of `buffer.memory` held by batches not yet completed (and by
    /// completed ones whose request the I/O thread still holds unwritten,
    /// as with acks=0).
    pub buffered_bytes: u64,
    /// Calls of the [`on_delivery`](crate::ProducerBuilder::on_delivery)
    /// callback that panicked (each was caught; the record's result stood).
    pub callback_panics: u64,
    /// Bytes of request frames the I/O thread holds: queued for a
    /// connection or being written (bounded per broker by `max.in.flight`
    /// requests of at most `max.request.size`; with acks=0 by
    /// `buffer.memory`). A ProduceRequest's record batches are not copied
    /// into its frame but shared with the batches, so their bytes count
    /// here and in `buffered_bytes` alike until the I/O thread has let go
    /// of the frame.
    pub request_bytes_held: u64,
    /// Lingered batches compressed by sending threads while they waited
    /// for `buffer.memory` (with gzip and `compression.threads` 0, a
    /// thread blocked in `send` compresses what the I/O thread hands off
    /// instead of sleeping).
    pub batches_compressed_while_blocked: u64,
}

impl Metrics {
    pub(crate) fn new(m: &crate::driver::DriverMetrics, shared: &kring_core::Shared) -> Metrics {
        Metrics {
            io_wakeups: m.io_wakeups(),
            wake_requests: shared.wake_requests(),
            sends: m.sends(),
            bytes_sent: m.bytes_sent(),
            bytes_received: m.bytes_received(),
            responses: m.responses(),
            connects: m.connects(),
            buffered_bytes: shared.buffered_bytes() as u64,
            callback_panics: shared.callback_panics(),
            request_bytes_held: m.request_bytes_held(),
            batches_compressed_while_blocked: shared.compression_jobs_by_blocked_senders(),
        }
    }
}
