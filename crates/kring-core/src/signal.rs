//! Flush, close and purge completion: a [`OneShot`] of nothing, and the
//! public [`FlushHandle`] that waits on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::oneshot::OneShot;

/// Set once by the I/O thread when a flush, close or purge completes.
#[derive(Debug, Default)]
pub(crate) struct Signal(OneShot<()>);

impl Signal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Signal::default())
    }

    /// Sets it and wakes every waiter; a second call does nothing.
    pub(crate) fn set(&self) {
        self.0.settle(|_| (true, ()));
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.is_settled()
    }
}

/// Completes when a flush (or close, or purge) has finished: every record
/// sent before it has its final delivery result (for close, the producer
/// has stopped; for purge, every buffered record was failed). Wait by
/// blocking ([`wait`](Self::wait)) or by awaiting it.
#[derive(Debug, Clone)]
pub struct FlushHandle {
    pub(crate) signal: Arc<Signal>,
    /// Whether the caller must wake the I/O thread (see
    /// [`AppendOutcome::wake`](crate::AppendOutcome::wake)).
    pub wake: bool,
}

impl FlushHandle {
    /// Whether it has completed.
    pub fn is_done(&self) -> bool {
        self.signal.is_set()
    }

    /// Blocks until it completes.
    pub fn wait(&self) {
        drop(self.signal.0.wait());
    }

    /// Blocks up to `timeout`; returns whether it completed.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.signal.0.wait_timeout(timeout).1
    }
}

impl Future for FlushHandle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.signal.0.poll_settled(cx) {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn wait_returns_after_set_from_other_thread() {
        let s = Signal::new();
        let h = FlushHandle {
            signal: s.clone(),
            wake: false,
        };
        assert!(!h.is_done());
        assert!(!h.wait_timeout(Duration::ZERO));
        let t = std::thread::spawn(move || h.wait());
        s.set();
        t.join().unwrap();
        s.set(); // idempotent
        assert!(s.is_set());
    }
    struct PanicWake;
    impl std::task::Wake for PanicWake {
        fn wake(self: Arc<Self>) {
            panic!("waker bug");
        }
    }

    /// A panicking waker on a flush or close handle cannot unwind into the
    /// I/O thread that completes it.
    #[test]
    fn a_panicking_waker_does_not_escape_set() {
        let s = Signal::new();
        let mut h = FlushHandle {
            signal: s.clone(),
            wake: false,
        };
        let bad = Waker::from(Arc::new(PanicWake));
        assert!(Pin::new(&mut h)
            .poll(&mut Context::from_waker(&bad))
            .is_pending());
        s.set();
        assert!(h.is_done());
    }
}
