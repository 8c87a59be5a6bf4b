//! Requests from the producer's handle to the I/O thread that are not
//! appends (flush, purge, close), and the state the handle can read
//! (memory in use, partition counts, closed or not).
//!
//! Why apart: each request is one notice plus a signal the caller waits
//! on; none of this is on the per-record path.

use kring_protocol::ErrorCode;

use crate::notice::FlushRequest;
use crate::signal::{FlushHandle, Signal};

use super::*;

impl Shared {
    /// Requests a flush: every batch open now is sealed at once, and the
    /// returned handle completes when every record appended before this
    /// call has its final result. Wake the I/O thread if
    /// [`FlushHandle::wake`] is set.
    pub fn begin_flush(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(move |n| {
            if n.finished {
                return true;
            }
            n.flush_gen += 1;
            let gen = n.flush_gen;
            n.list
                .push(Notice::Flush(Box::new(FlushRequest { gen, signal: s2 })));
            false
        });
        settled_if(signal, finished, wake)
    }

    /// Requests a purge (librdkafka's `rd_kafka_purge` with
    /// `RD_KAFKA_PURGE_F_QUEUE`): every record still buffered in the
    /// accumulator when the I/O thread reads the request — open and sealed
    /// batches not yet taken into a request — fails with
    /// [`DeliveryError::Purged`](crate::DeliveryError::Purged) (not
    /// persisted) and its memory is released. Records on the wire or
    /// waiting for a retry are not touched: they complete as usual. The
    /// producer stays usable. The handle completes once the purge is done.
    /// Wake the I/O thread if [`FlushHandle::wake`] is set.
    pub fn begin_purge(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(move |n| {
            if n.finished {
                return true;
            }
            n.list.push(Notice::Purge { signal: s2 });
            false
        });
        settled_if(signal, finished, wake)
    }

    /// Requests close: flush, then stop. Appends from now on fail with
    /// [`SendError::Closed`]. The handle completes when the core has
    /// finished (every record has its result and connections are closed).
    pub fn begin_close(&self) -> FlushHandle {
        let signal = Signal::new();
        let s2 = signal.clone();
        let (finished, wake) = self.notices.with(|n| {
            if n.finished {
                return true;
            }
            if n.closed {
                // Closing already: a second close waits for the same end.
                n.list.push(Notice::Close(Box::new(FlushRequest {
                    gen: n.flush_gen,
                    signal: s2,
                })));
                return false;
            }
            self.notices.set_closed(n);
            n.flush_gen += 1;
            let gen = n.flush_gen;
            n.list
                .push(Notice::Close(Box::new(FlushRequest { gen, signal: s2 })));
            false
        });
        self.pool.close();
        settled_if(signal, finished, wake)
    }

    /// How many calls of the delivery callback panicked (each caught; see
    /// [`DeliveryCallback`](crate::DeliveryCallback)).
    pub fn callback_panics(&self) -> u64 {
        self.callback_panics
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether close was requested.
    pub fn is_closed(&self) -> bool {
        self.notices.is_closed()
    }

    /// Bytes of `buffer.memory` currently reserved by batches (not by
    /// finished buffers kept for reuse).
    pub fn buffered_bytes(&self) -> usize {
        self.pool.held()
    }

    /// How many times producer threads asked for the I/O thread to be woken
    /// (appends, flushes and closes that found it parked).
    pub fn wake_requests(&self) -> u64 {
        self.notices.wake_count()
    }

    /// The topic's partition count as its latest metadata lists it, if
    /// known; never waits (see [`wait_for_metadata`](Self::wait_for_metadata)
    /// for that). After the topic was created again with fewer partitions
    /// (or while a broker lags behind a partition increase) this is the
    /// smaller count.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics.with_view(|v| {
            v.lookup(topic)
                .filter(|t| t.status == TopicStatus::Ready)
                .map(|t| t.partitions.len() as u32)
        })
    }

    /// The last error metadata reported for a topic that is not usable yet.
    pub fn topic_error(&self, topic: &str) -> Option<ErrorCode> {
        self.topics.with_view(|v| {
            v.lookup(topic).and_then(|t| match t.status {
                TopicStatus::Pending { last_error } => last_error,
                TopicStatus::Failed(e) => Some(e),
                TopicStatus::Ready => None,
            })
        })
    }
}

/// The handle of a flush, purge or close request: complete already if the
/// core had `finished` (no notice was queued; every record has its
/// result).
fn settled_if(signal: Arc<Signal>, finished: bool, wake: bool) -> FlushHandle {
    if finished {
        signal.set();
    }
    FlushHandle { signal, wake }
}
