//! The handle `send` returns: a future for async code, `wait()` for
//! threads.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::backend::{Delivery, DeliveryResult};

/// The final result of one record, as a `Send` future usable from any
/// runtime (the I/O thread wakes the registered waker), or with
/// [`wait`](DeliveryFuture::wait) from a plain thread.
///
/// Dropping it does not cancel the record: it is still delivered, and the
/// result is discarded.
#[must_use = "a dropped DeliveryFuture still delivers the record but loses its result"]
pub struct DeliveryFuture {
    inner: Option<Box<dyn Delivery>>,
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryFuture")
            .field("done", &self.inner.is_none())
            .finish()
    }
}

impl DeliveryFuture {
    pub(crate) fn new(inner: Box<dyn Delivery>) -> Self {
        DeliveryFuture { inner: Some(inner) }
    }

    /// Block the calling thread until the record's final result.
    pub fn wait(mut self) -> DeliveryResult {
        let inner = self
            .inner
            .take()
            .expect("DeliveryFuture waited on after it completed");
        inner.wait()
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        let inner = self
            .inner
            .as_mut()
            .expect("DeliveryFuture polled after it completed");
        let res = inner.poll(cx);
        if res.is_ready() {
            self.inner = None;
        }
        res
    }
}
