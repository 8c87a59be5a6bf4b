//! Fault injection: rules a test installs on a running cluster to make
//! chosen requests fail in chosen ways.
//!
//! A [`Fault`] names an API key, an [`FaultAction`], and optionally a broker
//! and a partition; it fires for the next N matching requests (one by
//! default) or until removed. Every connection thread checks the table after
//! decoding a request and before applying it, so a fault installed from the
//! test thread affects the very next request that matches. Several faults can
//! match one request; each fires (and counts down), and their actions
//! combine: an error, a delay and a throttle can apply together, a dropped
//! connection wins over everything; of several errors for one partition,
//! the earliest installed fault's is answered (so faults installed in
//! order with growing counts script a sequence of errors).
//!
//! For conditions a rule cannot express, a [`Hook`] per API key (style of
//! franz-go kfake's `ControlKey`) sees every request of its key and returns
//! the actions to apply to it.

use std::time::Duration;

/// What happens to a request a fault matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this Kafka error code instead of applying the request.
    /// With a partition filter only that partition fails (the others are
    /// applied); without one every partition (or the top-level error) does.
    /// Produce's NOT_ENOUGH_REPLICAS_AFTER_APPEND (20) is the exception: as
    /// from Kafka, the batch is appended first.
    Error(i16),
    /// Answer with this Kafka error code, the broker's `error_message` and
    /// per-record errors (KIP-467 `record_errors`: a record's index in its
    /// batch and the reason), as a Kafka leader refuses a batch holding
    /// invalid records. Narrowed and counted as [`Error`](Self::Error);
    /// Produce only (other keys answer the bare code), and a Produce
    /// response before v8 carries neither the message nor the record
    /// errors.
    ErrorWithRecords {
        /// The partition's error code.
        code: i16,
        /// The partition's `error_message`.
        message: Option<String>,
        /// `(batch_index, batch_index_error_message)` per record.
        record_errors: Vec<(i32, Option<String>)>,
    },
    /// Apply the request but hold the response back this long. Responses on
    /// a connection stay in order, so later responses wait too.
    Delay(Duration),
    /// Close the connection without applying the request: nothing landed.
    DropBeforeApply,
    /// Read the request and do nothing with it: not applied, never
    /// answered, the connection stays open — a hung broker, which only the
    /// client's request timeout gets it out of. Later requests on the
    /// connection are still answered (unless this fault matches them too).
    Swallow,
    /// Apply the request, then close the connection without answering: the
    /// data landed but the client cannot know ("did it land?").
    DropAfterApply,
    /// Answer with `throttle_time_ms` set to this duration and then stop
    /// reading from the connection for as long, as a Kafka broker mutes a
    /// throttled channel (KIP-219).
    Throttle(Duration),
    /// Apply the request and send a well-framed response whose body is cut
    /// to `keep` bytes (the size prefix matches the cut body), so the client
    /// receives a complete frame that fails to decode. `keep` counts from the
    /// start of the response header, so `keep >= 4` keeps the correlation id.
    TruncateResponse {
        /// Bytes of header+body to keep.
        keep: usize,
    },
    /// Apply the request, then send a response of the right length whose
    /// bytes after the correlation id are garbage.
    CorruptResponse,
    /// Apply the request, send the first half of the response frame, then
    /// close the connection: the client sees a frame cut off by EOF.
    CutResponse,
    /// Apply the request and answer it, with the response rewritten: a
    /// field, or which partitions it lists and in what order (Metadata,
    /// Produce and InitProducerId; see [`Lie`](crate::Lie)). With a
    /// partition filter a Metadata lie touches only that topic, a Produce
    /// lie only that partition.
    Lie(crate::Lie),
}

/// A fault rule. Build one with a constructor, narrow it with
/// [`on_broker`](Self::on_broker) / [`on_partition`](Self::on_partition),
/// set how often it fires with [`times`](Self::times) / [`always`](Self::always),
/// and install it with [`crate::MockCluster::inject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(crate) api_key: i16,
    pub(crate) action: FaultAction,
    pub(crate) broker: Option<i32>,
    pub(crate) partition: Option<(String, i32)>,
    /// `None`: until removed.
    pub(crate) remaining: Option<u32>,
}

impl Fault {
    /// A fault for requests of `api_key` (an `i16` or a
    /// `kring_protocol::messages::ApiKey`) doing `action`, firing once.
    pub fn new(api_key: impl Into<i16>, action: FaultAction) -> Self {
        Fault {
            api_key: api_key.into(),
            action,
            broker: None,
            partition: None,
            remaining: Some(1),
        }
    }

    /// Answer with Kafka error `code` (an `i16` or a
    /// `kring_protocol::error_code::ErrorCode`).
    pub fn error(api_key: impl Into<i16>, code: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::Error(code.into()))
    }

    /// Answer with Kafka error `code`, `message` and per-record errors
    /// (`(index in the batch, reason)`), see
    /// [`FaultAction::ErrorWithRecords`].
    pub fn error_with_records(
        api_key: impl Into<i16>,
        code: impl Into<i16>,
        message: Option<&str>,
        record_errors: &[(i32, Option<&str>)],
    ) -> Self {
        Self::new(
            api_key,
            FaultAction::ErrorWithRecords {
                code: code.into(),
                message: message.map(str::to_owned),
                record_errors: record_errors
                    .iter()
                    .map(|(i, m)| (*i, m.map(str::to_owned)))
                    .collect(),
            },
        )
    }

    /// Delay the response by `d`.
    pub fn delay(api_key: impl Into<i16>, d: Duration) -> Self {
        Self::new(api_key, FaultAction::Delay(d))
    }

    /// Close the connection before applying the request.
    pub fn drop_before_apply(api_key: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::DropBeforeApply)
    }

    /// Neither apply nor answer the request; keep the connection open.
    pub fn swallow(api_key: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::Swallow)
    }

    /// Apply the request, then close the connection without answering.
    pub fn drop_after_apply(api_key: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::DropAfterApply)
    }

    /// Set `throttle_time_ms` to `d` and mute the connection for `d`.
    pub fn throttle(api_key: impl Into<i16>, d: Duration) -> Self {
        Self::new(api_key, FaultAction::Throttle(d))
    }

    /// Send a complete frame holding only the first `keep` bytes of the
    /// response.
    pub fn truncate_response(api_key: impl Into<i16>, keep: usize) -> Self {
        Self::new(api_key, FaultAction::TruncateResponse { keep })
    }

    /// Send a response whose body is garbage.
    pub fn corrupt_response(api_key: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::CorruptResponse)
    }

    /// Send half a response frame, then close the connection.
    pub fn cut_response(api_key: impl Into<i16>) -> Self {
        Self::new(api_key, FaultAction::CutResponse)
    }

    /// Answer with a field of the response rewritten.
    pub fn lie(api_key: impl Into<i16>, lie: crate::Lie) -> Self {
        Self::new(api_key, FaultAction::Lie(lie))
    }

    /// Only requests sent to broker `id`.
    pub fn on_broker(mut self, id: i32) -> Self {
        self.broker = Some(id);
        self
    }

    /// Only requests that touch this partition. For APIs that name no
    /// partitions (ApiVersions, InitProducerId, a Metadata request for all
    /// topics) a partition fault never matches.
    pub fn on_partition(mut self, topic: impl Into<String>, partition: i32) -> Self {
        self.partition = Some((topic.into(), partition));
        self
    }

    /// Fire for the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Fire for every matching request until removed.
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }
}

/// What a [hook](crate::MockCluster::set_hook) sees of a request, after
/// it was decoded and before it is applied.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The broker that received it.
    pub broker_id: i32,
    /// Its API key.
    pub api_key: i16,
    /// Its version.
    pub api_version: i16,
    /// Its correlation id.
    pub correlation_id: i32,
    /// The client id from its header.
    pub client_id: Option<&'a str>,
    /// The partitions it touches (as faults match them).
    pub partitions: &'a [(&'a str, i32)],
}

/// A hook: called for every request of its API key; the actions it returns
/// apply to that request as if faults had fired (an error applies to every
/// partition).
pub type Hook = dyn Fn(&RequestInfo<'_>) -> Vec<FaultAction> + Send + Sync;

/// Handle to an installed fault, for [`crate::MockCluster::remove_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(pub(crate) u64);

/// An injected error's message and per-record errors
/// ([`FaultAction::ErrorWithRecords`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorDetail {
    pub(crate) message: Option<String>,
    pub(crate) record_errors: Vec<(i32, Option<String>)>,
}

/// An error a fault injects: its partition filter, code, and message and
/// record errors.
pub(crate) type InjectedError = (Option<(String, i32)>, i16, Option<ErrorDetail>);

/// The faults that fired for one request, combined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fired {
    /// Error codes to inject: `(partition filter, code, message and
    /// record errors)`.
    pub(crate) errors: Vec<InjectedError>,
    pub(crate) delay: Duration,
    pub(crate) throttle: Duration,
    pub(crate) drop_before: bool,
    pub(crate) swallow: bool,
    pub(crate) drop_after: bool,
    pub(crate) truncate: Option<usize>,
    pub(crate) corrupt: bool,
    pub(crate) cut: bool,
    /// Lies to tell, each narrowed to its fault's partition filter.
    pub(crate) lies: Vec<(Option<(String, i32)>, crate::Lie)>,
}

impl Fired {
    /// Adds the effect of one action; `partition` narrows an error to one
    /// partition.
    pub(crate) fn add(&mut self, partition: Option<(String, i32)>, action: &FaultAction) {
        match action {
            FaultAction::Error(code) => self.errors.push((partition, *code, None)),
            FaultAction::ErrorWithRecords {
                code,
                message,
                record_errors,
            } => self.errors.push((
                partition,
                *code,
                Some(ErrorDetail {
                    message: message.clone(),
                    record_errors: record_errors.clone(),
                }),
            )),
            FaultAction::Delay(d) => self.delay += *d,
            FaultAction::Throttle(d) => self.throttle = self.throttle.max(*d),
            FaultAction::DropBeforeApply => self.drop_before = true,
            FaultAction::Swallow => self.swallow = true,
            FaultAction::DropAfterApply => self.drop_after = true,
            FaultAction::TruncateResponse { keep } => self.truncate = Some(*keep),
            FaultAction::CorruptResponse => self.corrupt = true,
            FaultAction::CutResponse => self.cut = true,
            FaultAction::Lie(lie) => self.lies.push((partition, lie.clone())),
        }
    }

    /// Whether any fault fired.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        *self == Fired::default()
    }

    /// The error to inject for `(topic, partition)`, if any.
    pub(crate) fn error_for(&self, topic: &str, partition: i32) -> Option<i16> {
        self.error_detail_for(topic, partition)
            .map(|(code, _)| code)
    }

    /// The error to inject for `(topic, partition)` with its message and
    /// record errors, if the fault that answers gave them.
    pub(crate) fn error_detail_for(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<(i16, Option<&ErrorDetail>)> {
        self.errors
            .iter()
            .find_map(|(filter, code, detail)| match filter {
                None => Some((*code, detail.as_ref())),
                Some((t, p)) if t == topic && *p == partition => Some((*code, detail.as_ref())),
                Some(_) => None,
            })
    }

    /// The error to inject for the request as a whole (only faults without a
    /// partition filter).
    pub(crate) fn error_for_request(&self) -> Option<i16> {
        self.errors
            .iter()
            .find_map(|(filter, code, _)| filter.is_none().then_some(*code))
    }
}

/// Installed faults and hooks.
#[derive(Default)]
pub(crate) struct FaultTable {
    next_id: u64,
    rules: Vec<(FaultId, Fault)>,
    fired_total: u64,
    hooks: Vec<(i16, std::sync::Arc<Hook>)>,
}

impl std::fmt::Debug for FaultTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultTable")
            .field("rules", &self.rules)
            .field("fired_total", &self.fired_total)
            .field(
                "hooks",
                &self.hooks.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FaultTable {
    /// Installs (or with `None` removes) the hook for `api_key`.
    pub(crate) fn set_hook(&mut self, api_key: i16, hook: Option<std::sync::Arc<Hook>>) {
        self.hooks.retain(|(k, _)| *k != api_key);
        if let Some(h) = hook {
            self.hooks.push((api_key, h));
        }
    }

    /// The hook for `api_key`, to be called without the table locked (a
    /// hook may itself inject faults).
    pub(crate) fn hook(&self, api_key: i16) -> Option<std::sync::Arc<Hook>> {
        self.hooks
            .iter()
            .find(|(k, _)| *k == api_key)
            .map(|(_, h)| h.clone())
    }

    pub(crate) fn insert(&mut self, fault: Fault) -> FaultId {
        let id = FaultId(self.next_id);
        self.next_id += 1;
        self.rules.push((id, fault));
        id
    }

    pub(crate) fn remove(&mut self, id: FaultId) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        self.rules.len() != before
    }

    /// Removes every fault and hook.
    pub(crate) fn clear(&mut self) {
        self.rules.clear();
        self.hooks.clear();
    }

    /// How many times any fault has fired.
    pub(crate) fn fired_total(&self) -> u64 {
        self.fired_total
    }

    /// Whether fault `id` is still installed (it is removed once its count
    /// runs out).
    pub(crate) fn is_pending(&self, id: FaultId) -> bool {
        self.rules.iter().any(|(i, _)| *i == id)
    }

    /// Fires every fault matching a request of `api_key` on `broker` that
    /// touches `partitions`, counting each down.
    pub(crate) fn fire(&mut self, api_key: i16, broker: i32, partitions: &[(&str, i32)]) -> Fired {
        let mut fired = Fired::default();
        if self.rules.is_empty() {
            return fired;
        }
        for (_, f) in self.rules.iter_mut() {
            if f.api_key != api_key || f.broker.is_some_and(|b| b != broker) {
                continue;
            }
            if let Some((t, p)) = &f.partition {
                if !partitions.iter().any(|(tt, pp)| tt == t && pp == p) {
                    continue;
                }
            }
            if let Some(n) = f.remaining.as_mut() {
                *n -= 1;
            }
            self.fired_total += 1;
            fired.add(f.partition.clone(), &f.action);
        }
        self.rules.retain(|(_, f)| f.remaining != Some(0));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_filters() {
        let mut t = FaultTable::default();
        let id = t.insert(Fault::error(0i16, 6i16).on_partition("t", 1).times(2));
        t.insert(
            Fault::delay(3i16, Duration::from_millis(5))
                .on_broker(2)
                .always(),
        );
        assert!(t.fire(0, 1, &[("t", 0)]).is_empty());
        let f = t.fire(0, 1, &[("t", 0), ("t", 1)]);
        assert_eq!(f.error_for("t", 1), Some(6));
        assert_eq!(f.error_for("t", 0), None);
        assert_eq!(f.error_for_request(), None);
        assert!(t.is_pending(id));
        assert!(!t.fire(0, 3, &[("t", 1)]).is_empty());
        assert!(!t.is_pending(id));
        assert!(t.fire(0, 1, &[("t", 1)]).is_empty());
        assert!(t.fire(3, 1, &[]).is_empty());
        for _ in 0..3 {
            assert_eq!(t.fire(3, 2, &[]).delay, Duration::from_millis(5));
        }
        assert_eq!(t.fired_total(), 5);
    }

    #[test]
    fn actions_combine() {
        let mut t = FaultTable::default();
        t.insert(Fault::error(0i16, 7i16));
        t.insert(Fault::throttle(0i16, Duration::from_millis(30)));
        t.insert(Fault::drop_after_apply(0i16));
        let f = t.fire(0, 1, &[]);
        assert_eq!(f.error_for_request(), Some(7));
        assert_eq!(f.error_for("any", 3), Some(7));
        assert_eq!(f.throttle, Duration::from_millis(30));
        assert!(f.drop_after);
        assert!(t.fire(0, 1, &[]).is_empty());
    }
}
