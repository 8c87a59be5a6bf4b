//! Sends that wait for metadata: a topic not known yet, an explicit
//! partition its latest metadata lacks, and the error a send gets when
//! the wait ends without it (the topic's error, the last connection or
//! authentication failure, or a plain timeout).
//!
//! Why apart: these are the Java client's `waitOnMetadata` semantics,
//! the one place a send blocks on the I/O thread's progress rather than
//! on memory.

use kring_protocol::ErrorCode;

use crate::topics::TopicState;

use super::*;

impl Shared {
    /// The error for a send to a topic metadata refused. The refusal may
    /// not last: a topic that did not exist (UNKNOWN_TOPIC_OR_PARTITION
    /// past its propagation window) may have been created since, and one
    /// the user could not see (TOPIC_AUTHORIZATION_FAILED) may have been
    /// granted to them. So each such send fails with the answer known and
    /// asks the I/O thread for fresh metadata (which it spaces by its
    /// backoff): the topic is used as soon as the cluster allows it, not
    /// at the next `metadata.max.age.ms`. The Java client's
    /// `waitOnMetadata` asks again at every send too. A name the broker
    /// calls invalid cannot change, and is not asked about again.
    pub(super) fn topic_failed(&self, topic: &TopicState, error: ErrorCode) -> SendError {
        if error != ErrorCode::INVALID_TOPIC_EXCEPTION
            && self.notices.push(Notice::TopicWanted {
                topic: topic.id,
                seen: 0,
            })
        {
            if let Some(w) = self.io_waker.0.get() {
                w();
            }
        }
        SendError::TopicError {
            topic: topic.name.clone(),
            error,
        }
    }

    /// Registers the topic (asking the I/O thread for its metadata) and
    /// waits until it is known, failed, or the deadline passes.
    pub(super) fn wait_for_topic(
        &self,
        now: Instant,
        topic: &str,
        deadline: Instant,
        wake: &mut bool,
    ) -> Result<(), SendError> {
        let (state, _) = self.topics.register(topic);
        let id = state.id;
        let seen = state.partitions.len() as u32;
        let auth_gen = self.auth_gen();
        *wake |= self.notices.push(Notice::TopicWanted { topic: id, seen });
        self.wake_before_blocking(wake);
        let map = self.topics.wait_until(self.left(now, deadline), |m| {
            !matches!(m.by_id[id as usize].status, TopicStatus::Pending { .. })
                || self.notices.is_closed()
                || self.auth_gen() != auth_gen
        });
        let st = &map.by_id[id as usize];
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        match st.status {
            TopicStatus::Ready => Ok(()),
            TopicStatus::Failed(error) => Err(SendError::TopicError {
                topic: st.name.clone(),
                error,
            }),
            TopicStatus::Pending { last_error } => Err(self
                .auth_error(&st.name, auth_gen)
                .unwrap_or_else(|| SendError::MetadataTimeout {
                    topic: st.name.clone(),
                    waited: remaining(now, deadline),
                    last_error: self.metadata_cause(last_error),
                })),
        }
    }

    /// Waits until the latest metadata of `topic` (known, ready) lists
    /// `partition`, which it had before, or the deadline passes: the Java
    /// client's `waitOnMetadata` for a partition beyond the current count.
    /// A smaller count than before comes from a broker lagging behind a
    /// partition increase (the partition comes back) or from the topic's
    /// deletion and creation with fewer partitions (it does not). Returns
    /// `Ok` when the send should be tried again (the partition is listed,
    /// or the topic's status changed); at the deadline,
    /// [`SendError::InvalidPartition`] with the count metadata then has.
    pub(super) fn wait_for_partition(
        &self,
        now: Instant,
        topic: &str,
        partition: i32,
        deadline: Instant,
        wake: &mut bool,
    ) -> Result<(), SendError> {
        let (state, _) = self.topics.register(topic);
        let id = state.id as usize;
        *wake |= self.notices.push(Notice::TopicWanted {
            topic: state.id,
            seen: state.partitions.len() as u32,
        });
        self.wake_before_blocking(wake);
        let listed = |t: &TopicState| {
            t.status != TopicStatus::Ready || t.partitions.len() > partition as usize
        };
        let map = self.topics.wait_until(self.left(now, deadline), |m| {
            listed(&m.by_id[id]) || self.notices.is_closed()
        });
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        let st = &map.by_id[id];
        if listed(st) {
            return Ok(());
        }
        Err(SendError::InvalidPartition {
            topic: st.name.clone(),
            partition,
            num_partitions: st.partitions.len() as u32,
        })
    }

    /// Whether a send of `partition` to `topic` waits for metadata that
    /// lists it: the topic had it, its latest metadata does not (for the
    /// simulator, which plays a blocking send's wait by stepping).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn awaits_partition(&self, topic: &str, partition: i32) -> bool {
        partition >= 0
            && self.topics.with_view(|v| {
                v.lookup(topic).is_some_and(|t| {
                    t.status == TopicStatus::Ready
                        && partition as usize >= t.partitions.len()
                        && (partition as u32) < t.had
                })
            })
    }

    pub(super) fn auth_gen(&self) -> u64 {
        self.auth_failures
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// [`SendError::AuthenticationFailed`] if authentication failed since
    /// `since` and that is still the last connection error.
    pub(super) fn auth_error(&self, topic: &Arc<str>, since: u64) -> Option<SendError> {
        if self.auth_gen() == since {
            return None;
        }
        match self
            .conn_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(cause @ crate::LastError::Authentication { .. }) => {
                Some(SendError::AuthenticationFailed {
                    topic: topic.clone(),
                    cause,
                })
            }
            _ => None,
        }
    }

    /// The cause reported when a topic's metadata is missing: the brokers'
    /// error for the topic if they gave one, else the last connection
    /// failure while no broker connection was ready.
    pub(super) fn metadata_cause(
        &self,
        topic_error: Option<kring_protocol::ErrorCode>,
    ) -> Option<crate::LastError> {
        topic_error.map(crate::LastError::broker).or_else(|| {
            self.conn_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
    }

    /// Waits on the caller's thread, until `deadline`, for `topic`'s
    /// partitions to be known, without sending anything: the I/O thread is
    /// asked for the metadata if it does not have it. Returns the partition
    /// count, or the error a blocking [`append`](Self::append) of a record
    /// to the topic would give by then: [`SendError::MetadataTimeout`]
    /// with the last cause (for example connection refused),
    /// [`SendError::TopicError`], [`SendError::InvalidTopic`] or
    /// [`SendError::Closed`].
    pub fn wait_for_metadata(
        &self,
        now: Instant,
        topic: &str,
        deadline: Instant,
    ) -> Result<u32, SendError> {
        if self.notices.is_closed() {
            return Err(SendError::Closed);
        }
        if topic.is_empty() || topic.len() > i16::MAX as usize {
            return Err(SendError::InvalidTopic(Arc::from(topic)));
        }
        if let Some(n) = self.partition_count(topic) {
            return Ok(n);
        }
        let mut wake = false;
        self.wait_for_topic(now, topic, deadline, &mut wake)?;
        // Ready now: read the count from the same published view.
        self.partition_count(topic)
            .ok_or_else(|| SendError::MetadataTimeout {
                topic: Arc::from(topic),
                waited: remaining(now, deadline),
                last_error: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender that blocks for metadata while the I/O thread is parked
    /// must wake it before blocking: what it waits for is the I/O thread's
    /// doing (found by kring's end-to-end tests: without this, the first
    /// send to a topic after the producer went idle waited `max.block.ms`
    /// and failed).
    #[test]
    fn blocking_for_metadata_wakes_a_parked_io_thread_first() {
        let now = kring_testclock::origin();
        let (mut core, shared) = core_without_brokers(now);
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w2 = woken.clone();
        shared.set_io_waker(Arc::new(move || {
            w2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }));
        assert!(core.prepare_park());
        let rec = RecordRef::plain("t", b"v");
        // A deadline of `now`: the wait ends at once, with the wake-up done.
        let err = shared.append(now, rec, now).unwrap_err();
        assert!(matches!(err, SendError::MetadataTimeout { .. }), "{err}");
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
