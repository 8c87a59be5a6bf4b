//! A batch's shared result and the per-record handles that read it.
//!
//! Why one object per batch: the broker accepts or refuses a batch as a
//! unit, so completing it is one lock, one store and one broadcast, and a
//! handle is `(Arc<BatchCompletion>, index)`: three words, no allocation
//! per record. A batch split after MESSAGE_TOO_LARGE completes part by
//! part, and only then allocates a table of the parts' results.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::oneshot::OneShot;

use super::*;

/// The records `first..first + count` of a batch, when the broker refused
/// the batch as too large and the core split it: each part is sent (and
/// completed) on its own, with its own base offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u32,
    pub(crate) count: u32,
}

/// The results of a batch that was split (only then allocated).
#[derive(Debug)]
struct Parts {
    /// Records without a result yet.
    remaining: u32,
    /// Each completed part: its span and result.
    done: Vec<(Span, Outcome)>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The whole batch's result (the normal path: one store).
    result: Option<Outcome>,
    /// Set when the batch was split: the parts' results.
    parts: Option<Box<Parts>>,
}

impl Slot {
    /// Record `index`'s result, once the batch is complete.
    fn record_result(
        &self,
        partition: i32,
        index: u32,
        timestamp_ms: i64,
    ) -> Option<Result<RecordMetadata, DeliveryError>> {
        if let Some(o) = &self.result {
            return Some(outcome_for(o, partition, index, timestamp_ms));
        }
        let parts = self.parts.as_ref().filter(|p| p.remaining == 0)?;
        // Sorted by first index once the last part arrived.
        let i = parts
            .done
            .partition_point(|(s, _)| s.first.saturating_add(s.count) <= index);
        let (span, o) = parts
            .done
            .get(i)
            .filter(|(s, _)| index >= s.first && index - s.first < s.count)?;
        Some(outcome_for(o, partition, index - span.first, timestamp_ms))
    }
}

fn outcome_for(
    o: &Outcome,
    partition: i32,
    index_in_part: u32,
    timestamp_ms: i64,
) -> Result<RecordMetadata, DeliveryError> {
    match o {
        Ok(ok) => Ok(ok.metadata(partition, index_in_part, timestamp_ms)),
        Err(e) => Err(e.for_record(index_in_part)),
    }
}

/// The shared result of one batch. Created when the batch opens; completed
/// exactly once by the core — as a whole, or, when the broker refused the
/// batch as too large and the core split it, part by part (each record's
/// result then comes from its part: the part's base offset plus the
/// record's position in the part). Handles resolve when every record has
/// its result.
pub struct BatchCompletion {
    partition: i32,
    /// Settled when every record has its result.
    slot: OneShot<Slot>,
}

impl fmt::Debug for BatchCompletion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchCompletion")
            .field("partition", &self.partition)
            .field("done", &self.slot.is_settled())
            .finish()
    }
}

impl BatchCompletion {
    pub(crate) fn new(partition: i32) -> Arc<Self> {
        Arc::new(BatchCompletion {
            partition,
            slot: OneShot::default(),
        })
    }

    /// Makes a finished batch's completion new again, for a batch of
    /// `partition`, if nothing else refers to it (no handle could see the
    /// next batch's result). False, and nothing changed, otherwise.
    pub(crate) fn reset(this: &mut Arc<Self>, partition: i32) -> bool {
        match Arc::get_mut(this) {
            Some(c) => {
                *c = BatchCompletion {
                    partition,
                    slot: OneShot::default(),
                };
                true
            }
            None => false,
        }
    }

    /// The partition of the batch.
    #[cfg(test)]
    pub(crate) fn partition(&self) -> i32 {
        self.partition
    }

    /// Whether the batch has its final result.
    pub fn is_done(&self) -> bool {
        self.slot.is_settled()
    }

    /// Stores the result and wakes every waiter. Returns false (and changes
    /// nothing) if the batch was already complete or was split: a batch is
    /// completed at most once, and a split batch only through its parts.
    pub(crate) fn complete(&self, _key: &Settle, outcome: Outcome) -> bool {
        self.slot
            .settle(|s| {
                if s.parts.is_some() {
                    return (false, false);
                }
                s.result = Some(outcome);
                (true, true)
            })
            .unwrap_or(false)
    }

    /// Marks the batch, of `records` records, as split: from now on it is
    /// completed only by [`complete_part`](Self::complete_part), once per
    /// part. Splitting a part again needs no call (the parts still cover
    /// the same records). Returns false if it was already complete.
    pub(crate) fn split(&self, _key: &Settle, records: u32) -> bool {
        self.slot
            .settle(|s| {
                if s.parts.is_none() {
                    s.parts = Some(Box::new(Parts {
                        remaining: records,
                        done: Vec::with_capacity(2),
                    }));
                }
                (false, true)
            })
            .unwrap_or(false)
    }

    /// Completes the records of `span` (a part of a split batch), or the
    /// whole batch if `span` is `None`. The batch is done (handles resolve,
    /// waiters wake) once every record has its result. Returns false (and
    /// changes nothing) if those records already have one.
    pub(crate) fn complete_part(&self, key: &Settle, span: Option<Span>, outcome: Outcome) -> bool {
        let Some(span) = span else {
            return self.complete(key, outcome);
        };
        self.slot
            .settle(|s| {
                let Some(parts) = s.parts.as_mut() else {
                    return (false, false);
                };
                let end = span.first.saturating_add(span.count);
                let overlaps = parts
                    .done
                    .iter()
                    .any(|(d, _)| span.first < d.first + d.count && d.first < end);
                if overlaps || span.count > parts.remaining {
                    return (false, false);
                }
                parts.remaining -= span.count;
                parts.done.push((span, outcome));
                if parts.remaining > 0 {
                    return (false, true);
                }
                parts.done.sort_unstable_by_key(|(s, _)| s.first);
                (true, true)
            })
            .unwrap_or(false)
    }
}

/// Logs the first waker panic only (a broken executor would otherwise log
/// once per batch).
static WAKER_PANIC_LOGGED: AtomicBool = AtomicBool::new(false);

/// Wakes a task registered by a delivery or flush future. A waker is an
/// executor's code: one that panics must not stop the other wakers, nor
/// unwind into the I/O thread that completes batches.
pub(crate) fn wake_fenced(w: Waker) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
        if !WAKER_PANIC_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                panic = %panic_message(&*panic),
                "a future's waker panicked; caught (further waker panics are not logged)"
            );
        }
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// One record's pending delivery result.
///
/// Cheap to hold (an `Arc`, an index and the record's timestamp). Resolve it
/// by [`wait`](Self::wait), by awaiting it, or by
/// [`try_result`](Self::try_result).
#[derive(Debug)]
pub struct DeliveryHandle {
    batch: Arc<BatchCompletion>,
    index: u32,
    /// Where this handle's task waker sits in the batch's list, once
    /// polled (see `OneShot::poll_settled_in`).
    waker_slot: u32,
    timestamp_ms: i64,
}

impl Clone for DeliveryHandle {
    /// A clone is awaited on its own: it registers its own waker.
    fn clone(&self) -> Self {
        DeliveryHandle::new(self.batch.clone(), self.index, self.timestamp_ms)
    }
}

impl DeliveryHandle {
    /// The address of its batch's completion (tests: is it a reused one?).
    #[cfg(test)]
    pub(crate) fn batch_addr(&self) -> usize {
        Arc::as_ptr(&self.batch) as usize
    }

    pub(crate) fn new(batch: Arc<BatchCompletion>, index: u32, timestamp_ms: i64) -> Self {
        DeliveryHandle {
            batch,
            index,
            waker_slot: crate::oneshot::NO_SLOT,
            timestamp_ms,
        }
    }

    /// The record's index in its batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The batch this record belongs to.
    pub fn batch(&self) -> &Arc<BatchCompletion> {
        &self.batch
    }

    /// The result if it is known, without blocking.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, DeliveryError>> {
        if !self.batch.is_done() {
            return None;
        }
        self.result_in(&self.batch.slot.lock().value)
    }

    fn result_in(&self, s: &Slot) -> Option<Result<RecordMetadata, DeliveryError>> {
        s.record_result(self.batch.partition, self.index, self.timestamp_ms)
    }

    /// Blocks the calling thread until the result is known.
    pub fn wait(&self) -> Result<RecordMetadata, DeliveryError> {
        let s = self.batch.slot.wait();
        self.result_in(&s.value)
            .expect("a settled batch has every record's result")
    }

    /// Blocks up to `timeout`; `None` if the result is still unknown then.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<RecordMetadata, DeliveryError>> {
        let (s, done) = self.batch.slot.wait_timeout(timeout);
        if !done {
            return None;
        }
        self.result_in(&s.value)
    }
}

impl Future for DeliveryHandle {
    type Output = Result<RecordMetadata, DeliveryError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.batch.slot.poll_settled_in(cx, &mut this.waker_slot) {
            Some(s) => Poll::Ready(
                this.result_in(&s.value)
                    .expect("a settled batch has every record's result"),
            ),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use crate::test_wake::CountWake;

    struct PanicWake;
    impl Wake for PanicWake {
        fn wake(self: Arc<Self>) {
            panic!("waker bug");
        }
    }

    #[test]
    fn one_completion_resolves_every_record() {
        let b = BatchCompletion::new(3);
        let hs: Vec<_> = (0..5)
            .map(|i| DeliveryHandle::new(b.clone(), i, 1000 + i64::from(i)))
            .collect();
        assert!(hs[0].try_result().is_none());
        assert!(b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 40,
                log_append_time: -1
            })
        ));
        for (i, h) in hs.iter().enumerate() {
            let md = h.wait().unwrap();
            assert_eq!(md.partition, 3);
            assert_eq!(md.offset, 40 + i as i64);
            assert_eq!(md.timestamp_ms, 1000 + i as i64);
        }
        // Completed at most once.
        assert!(!b.complete(&key(), Err(aborted("x").into())));
        assert!(hs[0].wait().is_ok());
    }

    /// A split batch: each part completes its records with its own base
    /// offset; handles resolve once every part has its result; a part is
    /// completed at most once and the whole batch can no longer be.
    #[test]
    fn a_split_batch_completes_part_by_part() {
        let b = BatchCompletion::new(2);
        let hs: Vec<_> = (0..5)
            .map(|i| DeliveryHandle::new(b.clone(), i, 100))
            .collect();
        assert!(b.split(&key(), 5));
        let ok = |base| {
            Ok(BatchOk {
                base_offset: base,
                log_append_time: -1,
            })
        };
        assert!(!b.complete(&key(), ok(0)), "not as a whole once split");
        assert!(b.complete_part(&key(), Some(Span { first: 0, count: 2 }), ok(10)));
        assert!(!b.is_done());
        assert!(hs[0].try_result().is_none());
        assert!(hs[0].wait_timeout(Duration::from_millis(1)).is_none());
        // Overlapping an earlier part: refused.
        assert!(!b.complete_part(&key(), Some(Span { first: 1, count: 1 }), ok(99)));
        // The rest split again: 2..3 fails, 3..5 lands at 50.
        assert!(b.complete_part(
            &key(),
            Some(Span { first: 2, count: 1 }),
            Err(aborted("big").into())
        ));
        assert!(!b.is_done());
        assert!(b.complete_part(&key(), Some(Span { first: 3, count: 2 }), ok(50)));
        assert!(b.is_done());
        let offsets: Vec<Option<i64>> =
            hs.iter().map(|h| h.wait().ok().map(|m| m.offset)).collect();
        assert_eq!(offsets, vec![Some(10), Some(11), None, Some(50), Some(51)]);
        assert!(!b.complete_part(&key(), Some(Span { first: 3, count: 2 }), ok(70)));
        assert_eq!(hs[4].wait().unwrap().offset, 51);
    }

    /// Parts complete in whatever order their requests are answered: a
    /// part right before one already completed is not an overlap.
    #[test]
    fn split_parts_complete_in_any_order() {
        let b = BatchCompletion::new(2);
        let hs: Vec<_> = (0..4)
            .map(|i| DeliveryHandle::new(b.clone(), i, 100))
            .collect();
        assert!(b.split(&key(), 4));
        let ok = |base| {
            Ok(BatchOk {
                base_offset: base,
                log_append_time: -1,
            })
        };
        assert!(b.complete_part(&key(), Some(Span { first: 3, count: 1 }), ok(30)));
        assert!(b.complete_part(&key(), Some(Span { first: 1, count: 2 }), ok(20)));
        assert!(!b.is_done());
        assert!(b.complete_part(&key(), Some(Span { first: 0, count: 1 }), ok(10)));
        assert!(b.is_done());
        let offsets: Vec<i64> = hs.iter().map(|h| h.wait().unwrap().offset).collect();
        assert_eq!(offsets, vec![10, 20, 21, 30]);
    }

    #[test]
    fn log_append_time_and_unknown_offset() {
        let b = BatchCompletion::new(0);
        let h = DeliveryHandle::new(b.clone(), 2, 5);
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: -1,
                log_append_time: 777,
            }),
        );
        let md = h.try_result().unwrap().unwrap();
        assert_eq!(md.offset, -1);
        assert_eq!(md.timestamp_ms, 777);
    }

    #[test]
    fn blocking_waiter_is_woken_from_another_thread() {
        let b = BatchCompletion::new(1);
        let h = DeliveryHandle::new(b.clone(), 0, 0);
        let t = std::thread::spawn(move || h.wait());
        // No sleep: the waiter either already waits or will see the result.
        b.complete(&key(), Err(aborted("closed").into()));
        assert!(matches!(
            t.join().unwrap(),
            Err(DeliveryError::Aborted { .. })
        ));
    }

    /// `wait_timeout` gives `None` while the result is unknown and the
    /// record's own result once it is (a zero timeout never blocks).
    #[test]
    fn wait_timeout_is_none_until_the_result_is_known() {
        let b = BatchCompletion::new(4);
        let h = DeliveryHandle::new(b.clone(), 1, 0);
        assert!(h.wait_timeout(Duration::ZERO).is_none());
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 70,
                log_append_time: -1,
            }),
        );
        let md = h
            .wait_timeout(Duration::ZERO)
            .expect("known")
            .expect("delivered");
        assert_eq!((md.partition, md.offset), (4, 71));
    }

    #[test]
    fn future_registers_waker_once_and_is_woken() {
        let b = BatchCompletion::new(0);
        let mut h = DeliveryHandle::new(b.clone(), 1, 0);
        let cw = Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(cw.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut h).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut h).poll(&mut cx).is_pending());
        assert_eq!(b.slot.waiting_tasks(), 1, "same waker kept once");
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 10,
                log_append_time: -1,
            }),
        );
        assert_eq!(cw.0.load(Ordering::SeqCst), 1);
        match Pin::new(&mut h).poll(&mut cx) {
            Poll::Ready(Ok(md)) => assert_eq!(md.offset, 11),
            other => panic!("{other:?}"),
        }
    }

    /// Each record's handle of a batch awaited by its own task registers
    /// its waker once however often it is polled, a re-poll from another
    /// task replaces it, and a clone registers its own: at completion each
    /// registered task is woken once. (Registration no longer searches the
    /// batch's list: see `OneShot::poll_settled_in`.)
    #[test]
    fn each_handle_keeps_one_registration() {
        const N: usize = 300;
        let b = BatchCompletion::new(0);
        let counts: Vec<Arc<CountWake>> = (0..N + 2)
            .map(|_| Arc::new(CountWake(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        let mut handles: Vec<DeliveryHandle> = (0..N)
            .map(|i| DeliveryHandle::new(b.clone(), i as u32, 0))
            .collect();
        for _ in 0..3 {
            for (h, w) in handles.iter_mut().zip(&wakers) {
                assert!(Pin::new(h).poll(&mut Context::from_waker(w)).is_pending());
            }
        }
        assert_eq!(b.slot.waiting_tasks(), N, "one registration per handle");
        // Handle 0 is polled by another task now: that one is woken.
        assert!(Pin::new(&mut handles[0])
            .poll(&mut Context::from_waker(&wakers[N]))
            .is_pending());
        // A clone of handle 1, awaited by yet another task.
        let mut clone = handles[1].clone();
        assert!(Pin::new(&mut clone)
            .poll(&mut Context::from_waker(&wakers[N + 1]))
            .is_pending());
        assert_eq!(b.slot.waiting_tasks(), N + 1);
        b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 0,
                log_append_time: -1,
            }),
        );
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken[0], 0, "replaced by the task that polled it last");
        assert!(woken[1..].iter().all(|&n| n == 1), "{woken:?}");
        assert!(Pin::new(&mut clone)
            .poll(&mut Context::from_waker(&wakers[N + 1]))
            .is_ready());
    }

    #[test]
    fn a_delivery_handle_stays_three_words() {
        assert_eq!(std::mem::size_of::<DeliveryHandle>(), 24);
    }

    /// A waker that panics (a broken executor) does not stop the
    /// completion: the result is stored, the other wakers are woken.
    #[test]
    fn a_panicking_waker_does_not_stop_completion() {
        let b = BatchCompletion::new(0);
        let mut h1 = DeliveryHandle::new(b.clone(), 0, 0);
        let mut h2 = DeliveryHandle::new(b.clone(), 1, 0);
        let bad = Waker::from(Arc::new(PanicWake));
        let cw = Arc::new(CountWake(AtomicUsize::new(0)));
        let good = Waker::from(cw.clone());
        assert!(Pin::new(&mut h1)
            .poll(&mut Context::from_waker(&bad))
            .is_pending());
        assert!(Pin::new(&mut h2)
            .poll(&mut Context::from_waker(&good))
            .is_pending());
        assert!(b.complete(
            &key(),
            Ok(BatchOk {
                base_offset: 3,
                log_append_time: -1,
            })
        ));
        assert_eq!(cw.0.load(Ordering::SeqCst), 1);
        assert_eq!(h1.try_result().unwrap().unwrap().offset, 3);
        assert_eq!(h2.wait().unwrap().offset, 4);
    }
}
