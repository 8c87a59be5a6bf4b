//! The handle `send` returns: a future for async code, `wait()` for
//! threads.
//!
//! It is the core's [`DeliveryHandle`] itself, wrapped only to give it this
//! crate's name and documentation: a record's result lives in its batch's
//! shared completion, so a handle costs no allocation, and completing a
//! batch of any size is one store and one wake.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use kring_core::DeliveryHandle;

use crate::{DeliveryError, RecordMetadata};

/// A record's final result.
pub type DeliveryResult = Result<RecordMetadata, DeliveryError>;

/// The final result of one record, as a `Send` future usable from any
/// runtime (the I/O thread wakes the registered waker), or with
/// [`wait`](DeliveryFuture::wait) from a plain thread. It may be polled or
/// waited on any number of times, and cloned.
///
/// Dropping it does not cancel the record: it is still delivered, and the
/// result is discarded.
#[derive(Debug, Clone)]
#[must_use = "a dropped DeliveryFuture still delivers the record but loses its result"]
pub struct DeliveryFuture {
    handle: DeliveryHandle,
    partition: i32,
}

impl DeliveryFuture {
    pub(crate) fn new(handle: DeliveryHandle, partition: i32) -> Self {
        DeliveryFuture { handle, partition }
    }

    /// The partition the record was appended to.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Block the calling thread until the record's final result.
    pub fn wait(&self) -> DeliveryResult {
        self.handle.wait()
    }

    /// Block up to `timeout`; `None` if the result is still unknown then.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<DeliveryResult> {
        self.handle.wait_timeout(timeout)
    }

    /// The result if it is known, without blocking.
    pub fn try_result(&self) -> Option<DeliveryResult> {
        self.handle.try_result()
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        Pin::new(&mut self.get_mut().handle).poll(cx)
    }
}
