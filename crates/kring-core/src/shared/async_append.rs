//! Appends from async code: the same steps as a blocking append, but
//! where that would block (metadata, `buffer.memory`) the future
//! registers its waker and returns `Pending`.
//!
//! Why no executor timer: the I/O thread holds each waiting append's
//! deadline and wakes it then, so `max.block.ms` holds under any runtime
//! and the core stays free of clock reads.

use std::task::{Context, Poll};

use crate::wait::WaitList;

use super::*;

impl Shared {
    /// Starts an append that waits by yielding instead of blocking: poll it
    /// with [`AsyncAppend::poll_append`]. `now` is the send's clock reading
    /// and `block_deadline` its `now + max.block.ms`; the I/O thread wakes
    /// the task at that deadline (no timer of the caller's executor is
    /// needed).
    pub fn append_async(&self, now: Instant, block_deadline: Instant) -> AsyncAppend<'_> {
        AsyncAppend {
            shared: self,
            start: now,
            deadline: block_deadline,
            reserved: 0,
            wake: false,
            waiting: None,
            target: 0,
            checked: false,
            auth_gen: self.auth_gen(),
        }
    }
}

/// What an [`AsyncAppend`] is registered to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitOn {
    Memory,
    Topic,
}

/// An append that waits for `buffer.memory` or metadata by returning
/// `Pending` (from [`Shared::append_async`]).
///
/// While it waits, its task's waker sits in the wait list of what it waits
/// for (woken when memory is released, when metadata is published, at
/// close), and the I/O thread holds its deadline and wakes it then: after
/// that the append fails with the same error a blocking append gives at
/// `max.block.ms` ([`SendError::BufferFull`] or
/// [`SendError::MetadataTimeout`]). Dropping it cancels the append: its
/// registration and any memory it reserved go back.
#[derive(Debug)]
#[must_use = "an AsyncAppend does nothing unless polled"]
pub struct AsyncAppend<'s> {
    shared: &'s Shared,
    start: Instant,
    deadline: Instant,
    /// Memory obtained after waiting, not used yet.
    reserved: usize,
    /// The I/O thread is owed a wake-up.
    wake: bool,
    waiting: Option<(WaitOn, Option<usize>)>,
    /// The partition (`topic << 32 | partition`) of the record when it
    /// last waited for memory.
    target: u64,
    checked: bool,
    /// [`Shared::auth_failures`] when the send began.
    auth_gen: u64,
}

impl AsyncAppend<'_> {
    /// Tries to append `rec` (the same record on every poll); `now` is the
    /// caller's current clock reading. `Pending` means the task's waker is
    /// registered and will be woken. Once it returned `Ready`, do not poll
    /// it again: a poll after `Ready(Ok)` appends the record a second time
    /// (kring's futures refuse to be polled after completing).
    pub fn poll_append(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome, SendError>> {
        self.poll_with::<WithHandle>(now, rec, cx)
    }

    /// [`poll_append`](Self::poll_append) for a record whose result only
    /// the delivery callback needs: no handle (see [`Shared::produce`]).
    /// An append is polled one way or the other throughout.
    pub fn poll_produce(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<()>, SendError>> {
        self.poll_with::<NoHandle>(now, rec, cx)
    }

    fn poll_with<R: Reply>(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<R::Delivery>, SendError>> {
        let r = self.step::<R>(now, rec, cx);
        if r.is_ready() {
            self.finish();
        }
        r
    }

    fn step<R: Reply>(
        &mut self,
        now: Instant,
        rec: &RecordRef<'_>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AppendOutcome<R::Delivery>, SendError>> {
        let sh = self.shared;
        if !self.checked {
            if let Err(e) = sh.precheck(rec) {
                return Poll::Ready(Err(e));
            }
            self.checked = true;
        }
        loop {
            if sh.notices.is_closed() {
                return Poll::Ready(Err(SendError::Closed));
            }
            let step = match sh.attempt::<R>(now, rec, &mut self.reserved) {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e)),
            };
            match step {
                Step::Done(mut o) => {
                    o.wake |= std::mem::take(&mut self.wake);
                    if let Some((WaitOn::Memory, Some(_))) = self.waiting {
                        // It waited for memory and got it: the tasks
                        // waiting with records for the same partition may
                        // fit in the batch it opened.
                        sh.pool.tasks.wake_target(self.target);
                    }
                    return Poll::Ready(Ok(o));
                }
                Step::NeedTopic => {
                    let (state, _) = sh.topics.register(rec.topic);
                    let id = state.id as usize;
                    if self.register(WaitOn::Topic, 0, 0, cx) {
                        self.wake |= sh.notices.push(Notice::TopicWanted {
                            topic: state.id,
                            seen: state.partitions.len() as u32,
                        });
                    }
                    // Re-checked under the table's lock, after registering:
                    // a publish either came before (seen here) or wakes us.
                    let map = sh.topics.snapshot();
                    let st = &map.by_id[id];
                    if sh.notices.is_closed() {
                        return Poll::Ready(Err(SendError::Closed));
                    }
                    match st.status {
                        TopicStatus::Ready => continue,
                        TopicStatus::Failed(error) => {
                            return Poll::Ready(Err(SendError::TopicError {
                                topic: st.name.clone(),
                                error,
                            }))
                        }
                        TopicStatus::Pending { last_error } => {
                            if let Some(e) = sh.auth_error(&st.name, self.auth_gen) {
                                return Poll::Ready(Err(e));
                            }
                            if self.timed_out(now) {
                                return Poll::Ready(Err(SendError::MetadataTimeout {
                                    topic: st.name.clone(),
                                    waited: remaining(self.start, self.deadline),
                                    last_error: sh.metadata_cause(last_error),
                                }));
                            }
                            sh.wake_before_blocking(&mut self.wake);
                            return Poll::Pending;
                        }
                    }
                }
                Step::NeedPartition { partition, count } => {
                    // As `wait_for_partition`, by yielding.
                    let (state, _) = sh.topics.register(rec.topic);
                    let id = state.id as usize;
                    if self.register(WaitOn::Topic, 0, 0, cx) {
                        self.wake |= sh.notices.push(Notice::TopicWanted {
                            topic: state.id,
                            seen: count,
                        });
                    }
                    // Re-checked after registering, as for a topic.
                    let map = sh.topics.snapshot();
                    let st = &map.by_id[id];
                    if sh.notices.is_closed() {
                        return Poll::Ready(Err(SendError::Closed));
                    }
                    if st.status != TopicStatus::Ready || st.partitions.len() > partition as usize {
                        continue;
                    }
                    if self.timed_out(now) {
                        return Poll::Ready(Err(SendError::InvalidPartition {
                            topic: st.name.clone(),
                            partition,
                            num_partitions: st.partitions.len() as u32,
                        }));
                    }
                    sh.wake_before_blocking(&mut self.wake);
                    return Poll::Pending;
                }
                Step::NeedMemory { bytes: n, target } => {
                    debug_assert_eq!(self.reserved, 0);
                    self.target = target;
                    self.register(WaitOn::Memory, n, target, cx);
                    // Memory released before the registration is seen here;
                    // released after it, it wakes us.
                    if sh.pool.try_reserve(n) {
                        self.reserved = n;
                        continue;
                    }
                    if self.timed_out(now) {
                        return Poll::Ready(Err(SendError::BufferFull {
                            limit: sh.pool.limit(),
                            waited: remaining(self.start, self.deadline),
                        }));
                    }
                    // Memory comes back when batches complete: the I/O
                    // thread sends the open ones now, not at their linger
                    // deadline, and must know of those sealed so far.
                    self.wake |= sh.notices.push_memory_wanted();
                    sh.wake_before_blocking(&mut self.wake);
                    return Poll::Pending;
                }
            }
        }
    }

    /// The deadline passed: by the caller's clock, or the I/O thread said
    /// so.
    fn timed_out(&self, now: Instant) -> bool {
        if now >= self.deadline {
            return true;
        }
        match self.waiting {
            Some((on, key)) => self.list(on).expired(key),
            None => false,
        }
    }

    fn list(&self, on: WaitOn) -> &WaitList {
        match on {
            WaitOn::Memory => &self.shared.pool.tasks,
            WaitOn::Topic => &self.shared.topics.tasks,
        }
    }

    /// What `on`'s resource has free now (memory; metadata has no amount).
    fn free(&self, on: WaitOn) -> usize {
        match on {
            WaitOn::Memory => self.shared.pool.free_now(),
            WaitOn::Topic => 0,
        }
    }

    /// Registers the task's waker in `on`'s list (moving it from the other
    /// list if needed), waiting for `need` of it (bytes of memory).
    /// Returns whether this is a new wait; a new wait's deadline is
    /// announced to the I/O thread.
    fn register(&mut self, on: WaitOn, need: usize, target: u64, cx: &mut Context<'_>) -> bool {
        let mut key = match self.waiting.take() {
            Some((was, key)) if was == on => key,
            Some((was, mut key)) => {
                self.list(was).remove(&mut key, || self.free(was));
                None
            }
            None => None,
        };
        let new = self
            .list(on)
            .register(&mut key, cx.waker(), self.deadline, need, target);
        self.waiting = Some((on, key));
        if new {
            let deadline = self.deadline;
            self.wake |= self
                .shared
                .notices
                .with(|n| {
                    let deadline = n.stamp(deadline);
                    n.list.push(Notice::Waiting { deadline });
                })
                .1;
        }
        new
    }

    /// Ends the wait: the registration goes, unused memory goes back, an
    /// owed wake-up is delivered.
    fn finish(&mut self) {
        if let Some((on, mut key)) = self.waiting.take() {
            self.list(on).remove(&mut key, || self.free(on));
        }
        self.shared.pool.release(std::mem::take(&mut self.reserved));
        self.shared.wake_before_blocking(&mut self.wake);
    }
}

impl Drop for AsyncAppend<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wake::CountWake;

    /// An async append waiting for metadata is woken by the core at its
    /// deadline (its own executor has no timer) and then fails as a
    /// blocking append would: the core's word that the deadline passed
    /// decides, whatever clock reading the poll brings.
    #[test]
    fn async_append_is_expired_by_the_cores_deadline_queue() {
        let now = kring_testclock::origin();
        let (mut core, shared) = core_without_brokers(now);
        let deadline = now + std::time::Duration::from_secs(3);
        let rec = RecordRef::plain("t", b"v");
        let count = Arc::new(CountWake(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut a = shared.append_async(now, deadline);
        assert!(a.poll_append(now, &rec, &mut cx).is_pending());
        assert!(!shared.topics.tasks.is_empty());
        core.handle_wakeup(now);
        assert!(core.poll_timeout().is_some_and(|t| t <= deadline));
        // Run the core's timers up to the deadline.
        while let Some(t) = core.poll_timeout().filter(|&t| t <= deadline) {
            core.handle_timeout(t);
        }
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        match a.poll_append(now, &rec, &mut cx) {
            Poll::Ready(Err(SendError::MetadataTimeout { waited, .. })) => {
                assert_eq!(waited, std::time::Duration::from_secs(3));
            }
            other => panic!("{other:?}"),
        }
        assert!(shared.topics.tasks.is_empty(), "deregistered");
    }
}
