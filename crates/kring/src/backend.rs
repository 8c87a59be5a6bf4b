//! What the producer needs from the core's producer-thread side.
//!
//! These traits restate the contract of `kring_core::Shared` (append, flush,
//! close) and of its delivery handles, so the public API's logic (blocking
//! bounds, waking the I/O thread only when told to, close and drop) does not
//! depend on the core's internals. The glue to the core is one impl per
//! trait.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{DeliveryError, SendError};
use crate::record::{Record, RecordMetadata};

/// A record's final result.
pub type DeliveryResult = Result<RecordMetadata, DeliveryError>;

/// A callback that receives a record's final result, on the I/O thread.
pub(crate) type Callback = Box<dyn FnOnce(DeliveryResult) + Send>;

/// The producer-thread side of the core.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Append a record, blocking until `block_deadline` at most for buffer
    /// space or metadata. `wake` is true when the I/O thread is parked and
    /// must be woken for this work.
    fn append(
        &self,
        now: Instant,
        record: &Record,
        block_deadline: Instant,
    ) -> Result<Appended, SendError>;
    /// Like [`append`](Backend::append), with the final result going to
    /// `callback` instead of a handle. Returns `wake`.
    fn append_with_callback(
        &self,
        now: Instant,
        record: &Record,
        block_deadline: Instant,
        callback: Callback,
    ) -> Result<bool, SendError>;
    /// Seal every open batch; the completion resolves when every record
    /// appended before has its final result.
    fn begin_flush(&self) -> (Box<dyn Completion>, bool);
    /// Refuse new records and seal every open batch; the completion
    /// resolves when every record has its final result.
    fn begin_close(&self) -> (Box<dyn Completion>, bool);
}

/// An appended record.
pub(crate) struct Appended {
    pub(crate) delivery: Box<dyn Delivery>,
    pub(crate) wake: bool,
}

/// A pending delivery result.
pub(crate) trait Delivery: Send + 'static {
    /// Poll for the result, registering the task's waker.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<DeliveryResult>;
    /// Block until the result arrives.
    fn wait(self: Box<Self>) -> DeliveryResult;
}

/// A flush or close in progress.
pub(crate) trait Completion: Send {
    /// Block until done or `timeout`; `true` when done.
    fn wait_timeout(&self, timeout: Duration) -> bool;
}
