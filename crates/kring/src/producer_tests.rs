//! Producer tests over a fake core: checks the public API's own logic
//! (waking only when told to, futures, callbacks, flush, close, drop).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::{Appended, Backend, Callback, Completion, Delivery, DeliveryResult};
use crate::driver::{Engine, IoCommand, Transmit};
use crate::{DeliveryError, Producer, ProducerConfig, Record, RecordMetadata, SendError};

#[derive(Default)]
struct Slot {
    result: Mutex<Option<DeliveryResult>>,
    waker: Mutex<Option<Waker>>,
    cv: Condvar,
}

impl Slot {
    fn complete(&self, r: DeliveryResult) {
        *self.result.lock().unwrap() = Some(r);
        self.cv.notify_all();
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
}

enum Sink {
    Handle(Arc<Slot>),
    Callback(Callback),
}

#[derive(Default)]
struct State {
    pending: VecDeque<Sink>,
    parked: bool,
    closing: bool,
    stalled: bool,
    next_offset: i64,
    deadlines: Vec<Duration>,
}

#[derive(Default)]
struct Fake {
    state: Mutex<State>,
    cv: Condvar,
    wakes_requested: AtomicUsize,
}

impl Fake {
    fn push(&self, now: Instant, deadline: Instant, sink: Sink) -> Result<bool, SendError> {
        let mut s = self.state.lock().unwrap();
        if s.closing {
            return Err(SendError::Closed);
        }
        s.deadlines.push(deadline - now);
        s.pending.push_back(sink);
        let wake = std::mem::take(&mut s.parked);
        if wake {
            self.wakes_requested.fetch_add(1, Ordering::Relaxed);
        }
        Ok(wake)
    }
}

struct FakeBackend(Arc<Fake>);

struct Handle(Arc<Slot>);

impl Delivery for Handle {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        match self.0.result.lock().unwrap().take() {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
    fn wait(self: Box<Self>) -> DeliveryResult {
        let mut r = self.0.result.lock().unwrap();
        loop {
            if let Some(r) = r.take() {
                return r;
            }
            r = self.0.cv.wait(r).unwrap();
        }
    }
}

struct Drained(Arc<Fake>);

impl Completion for Drained {
    fn wait_timeout(&self, timeout: Duration) -> bool {
        let s = self.0.state.lock().unwrap();
        let (s, _) = self
            .0
            .cv
            .wait_timeout_while(s, timeout, |s| !s.pending.is_empty())
            .unwrap();
        s.pending.is_empty()
    }
}

impl Backend for FakeBackend {
    fn append(&self, now: Instant, _: &Record, deadline: Instant) -> Result<Appended, SendError> {
        let slot = Arc::new(Slot::default());
        let wake = self
            .0
            .push(now, deadline, Sink::Handle(Arc::clone(&slot)))?;
        Ok(Appended {
            delivery: Box::new(Handle(slot)),
            wake,
        })
    }
    fn append_with_callback(
        &self,
        now: Instant,
        _: &Record,
        deadline: Instant,
        cb: Callback,
    ) -> Result<bool, SendError> {
        self.0.push(now, deadline, Sink::Callback(cb))
    }
    fn begin_flush(&self) -> (Box<dyn Completion>, bool) {
        let wake = std::mem::take(&mut self.0.state.lock().unwrap().parked);
        (Box::new(Drained(Arc::clone(&self.0))), wake)
    }
    fn begin_close(&self) -> (Box<dyn Completion>, bool) {
        let mut s = self.0.state.lock().unwrap();
        s.closing = true;
        let wake = std::mem::take(&mut s.parked);
        (Box::new(Drained(Arc::clone(&self.0))), wake)
    }
}

/// The I/O-thread half: delivers everything pending on each wake-up,
/// unless stalled.
struct FakeEngine(Arc<Fake>);

impl FakeEngine {
    fn finish_all(&self, f: impl Fn(i64) -> DeliveryResult) {
        let sinks: Vec<(Sink, i64)> = {
            let mut s = self.0.state.lock().unwrap();
            let mut out = Vec::new();
            while let Some(sink) = s.pending.pop_front() {
                out.push((sink, s.next_offset));
                s.next_offset += 1;
            }
            out
        };
        for (sink, offset) in sinks {
            let r = f(offset);
            match sink {
                Sink::Handle(slot) => slot.complete(r),
                Sink::Callback(cb) => cb(r),
            }
        }
        self.0.cv.notify_all();
    }
}

impl Engine for FakeEngine {
    type Conn = u8;
    fn handle_wakeup(&mut self, _: Instant) {
        if !self.0.state.lock().unwrap().stalled {
            self.finish_all(|offset| {
                Ok(RecordMetadata {
                    partition: 0,
                    offset,
                    timestamp: 0,
                })
            });
        }
    }
    fn handle_connected(&mut self, _: Instant, _: u8) {}
    fn handle_connect_failed(&mut self, _: Instant, _: u8, _: &str) {}
    fn handle_disconnected(&mut self, _: Instant, _: u8, _: &str) {}
    fn handle_response(&mut self, _: Instant, _: u8, _: Bytes) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_io(&mut self) -> Option<IoCommand<u8>> {
        None
    }
    fn poll_transmit(&mut self, _: Instant) -> Option<Transmit<u8>> {
        None
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn prepare_park(&mut self) -> bool {
        let mut s = self.0.state.lock().unwrap();
        if s.pending.is_empty() || s.stalled {
            s.parked = true;
            true
        } else {
            false
        }
    }
    fn is_finished(&self) -> bool {
        let s = self.0.state.lock().unwrap();
        s.closing && s.pending.is_empty()
    }
    fn abort(&mut self, _: Instant, reason: &str) {
        let reason = reason.to_owned();
        self.finish_all(|_| Err(DeliveryError::Aborted(reason.clone())));
    }
}

fn producer(
    config: ProducerConfig,
    stalled: bool,
) -> (Producer, Arc<Fake>, Arc<Mutex<Vec<DeliveryResult>>>) {
    let fake = Arc::new(Fake::default());
    fake.state.lock().unwrap().stalled = stalled;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let config = config.bootstrap("127.0.0.1:9").validate().unwrap();
    let p = Producer::start(
        &config,
        Arc::new(FakeBackend(Arc::clone(&fake))),
        FakeEngine(Arc::clone(&fake)),
        Some(Arc::new(move |r| sink.lock().unwrap().push(r))),
    )
    .unwrap();
    (p, fake, seen)
}

fn block_on<F: Future>(f: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn send_resolves_as_future_and_by_wait() {
    let (p, _, _) = producer(ProducerConfig::default(), false);
    let f = p.send(Record::new("t", "a")).unwrap();
    assert_send(&f);
    assert_eq!(block_on(f).unwrap().offset, 0);
    assert_eq!(
        p.send(Record::new("t", "b"))
            .unwrap()
            .wait()
            .unwrap()
            .offset,
        1
    );
}

#[test]
fn max_block_becomes_the_append_deadline() {
    let (p, fake, _) = producer(
        ProducerConfig::default().max_block(Duration::from_millis(1234)),
        false,
    );
    p.send(Record::new("t", "a")).unwrap().wait().unwrap();
    assert_eq!(
        fake.state.lock().unwrap().deadlines,
        vec![Duration::from_millis(1234)]
    );
}

#[test]
fn wakes_only_when_the_core_says_parked() {
    let (p, fake, seen) = producer(ProducerConfig::default(), false);
    for i in 0..10_000 {
        p.try_send(Record::new("t", format!("{i}"))).unwrap();
    }
    p.flush();
    assert_eq!(seen.lock().unwrap().len(), 10_000);
    let wakes = fake.wakes_requested.load(Ordering::Relaxed);
    let io_wakeups = p.metrics().io_wakeups;
    assert!(
        wakes >= 1 && io_wakeups as usize <= wakes + 2,
        "{wakes} wake requests, {io_wakeups} wake-ups"
    );
}

#[test]
fn close_delivers_everything_then_refuses() {
    let (p, _, seen) = producer(ProducerConfig::default(), false);
    let futures: Vec<_> = (0..100)
        .map(|i| p.send(Record::new("t", format!("{i}"))).unwrap())
        .collect();
    for i in 0..100 {
        p.try_send(Record::new("t", format!("{i}"))).unwrap();
    }
    assert!(p.close_timeout(Duration::from_secs(10)));
    for f in futures {
        f.wait().unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), 100);
    assert_eq!(
        p.send(Record::new("t", "late")).unwrap_err(),
        SendError::Closed
    );
}

#[test]
fn close_timeout_fails_what_is_left() {
    let (p, _, seen) = producer(ProducerConfig::default(), true);
    let f = p.send(Record::new("t", "stuck")).unwrap();
    p.try_send(Record::new("t", "stuck too")).unwrap();
    assert!(!p.close_timeout(Duration::from_millis(50)));
    assert!(matches!(f.wait(), Err(DeliveryError::Aborted(r)) if r.contains("stopped")));
    assert!(matches!(
        seen.lock().unwrap()[..],
        [Err(DeliveryError::Aborted(_))]
    ));
}

#[test]
fn drop_never_loses_a_record_silently() {
    let config = ProducerConfig::default()
        .linger(Duration::ZERO)
        .request_timeout(Duration::from_millis(100))
        .delivery_timeout(Duration::from_millis(100));
    let (p, _, _) = producer(config, true);
    let f = p.send(Record::new("t", "stuck")).unwrap();
    drop(p);
    assert!(matches!(f.wait(), Err(DeliveryError::Aborted(_))));
}
