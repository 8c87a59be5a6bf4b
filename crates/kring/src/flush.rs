//! The public handle of a flush started with
//! [`Producer::begin_flush`](crate::Producer::begin_flush).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Completes when every record sent before the
/// [`begin_flush`](crate::Producer::begin_flush) call that returned it has
/// its final result. Wait for it by blocking ([`wait`](Self::wait),
/// [`wait_timeout`](Self::wait_timeout)) or as a future (any runtime).
#[derive(Debug)]
#[must_use = "a FlushHandle does nothing unless waited for or polled"]
pub struct FlushHandle(pub(crate) kring_core::FlushHandle);

impl FlushHandle {
    pub(crate) fn new(inner: kring_core::FlushHandle) -> Self {
        FlushHandle(inner)
    }

    /// Whether the flush has completed.
    pub fn is_done(&self) -> bool {
        self.0.is_done()
    }

    /// Blocks until the flush completes (at once if the producer has
    /// closed). Should the producer's I/O thread have died without
    /// finishing, this may never return: prefer
    /// [`Producer::flush`](crate::Producer::flush), which notices.
    pub fn wait(&self) {
        self.0.wait()
    }

    /// Blocks up to `timeout`; returns whether the flush completed.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.0.wait_timeout(timeout)
    }
}

impl Future for FlushHandle {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}
