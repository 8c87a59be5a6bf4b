//! A one-shot completion flag with blocking and async waiting, used for
//! flush and close.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Signal {
    done: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
    cond: Condvar,
}

impl Signal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Signal::default())
    }

    pub(crate) fn set(&self) {
        let wakers = {
            let mut w = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            if self.done.swap(true, Ordering::AcqRel) {
                return;
            }
            std::mem::take(&mut *w)
        };
        self.cond.notify_all();
        for w in wakers {
            crate::delivery::wake_fenced(w);
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.done.load(Ordering::Acquire)
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
        let mut g = self.signal.wakers.lock().unwrap_or_else(|e| e.into_inner());
        while !self.signal.is_set() {
            g = self.signal.cond.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks up to `timeout`; returns whether it completed.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let g = self.signal.wakers.lock().unwrap_or_else(|e| e.into_inner());
        let _g = self
            .signal
            .cond
            .wait_timeout_while(g, timeout, |_| !self.signal.is_set())
            .unwrap_or_else(|e| e.into_inner());
        self.signal.is_set()
    }
}

impl Future for FlushHandle {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = self.signal.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if self.signal.is_set() {
            return Poll::Ready(());
        }
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
