//! Statistics: counters the I/O thread keeps, and the snapshot it builds
//! from them on request ([`ProducerCore::statistics`]).
//!
//! Why here and why they cost nothing when unused: every counter lives in
//! state the I/O thread already owns and touches at that moment — the
//! broker's entry when it writes a request or reads a response, the
//! partition's entry when a batch is sent, fails or completes. Producer
//! threads do nothing for statistics: no atomics per record, no lock. The
//! increments are per request and per batch, plain integer adds on the I/O
//! thread. Round-trip times go into a fixed-bucket logarithmic histogram
//! allocated once per broker (no allocation per request). The snapshot is
//! built only when asked for (a [`Notice`] from
//! `Producer::statistics`, or the `statistics.interval.ms` deadline in
//! the core's timer queue, armed only when a statistics callback is set);
//! building it visits every partition and briefly locks each partition's
//! slot to count what is queued there, which is O(partitions) per
//! snapshot, never per record.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kring_protocol::ErrorCode;

use crate::delivery::panic_message;
use crate::notice::Notice;
use crate::oneshot::OneShot;
use crate::shared::Shared;
use crate::timer::TimerHandle;

use super::conn::{Conn, ConnState, ReqKind, Target};
use super::{ConnId, PartKey, ProducerCore, TimerKey};

/// The periodic statistics callback (`on_statistics`), run on the I/O
/// thread every `statistics.interval.ms`.
pub type StatisticsCallback = Arc<dyn Fn(&Statistics) + Send + Sync>;

/// The RTT window used when periodic statistics are off.
const DEFAULT_RTT_WINDOW: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The snapshot (public, owned, plain data)
// ---------------------------------------------------------------------------

/// A snapshot of the producer's statistics, built on the I/O thread.
///
/// Counters (`..._sent`, `..._total`, ...) only grow over the producer's
/// life; gauges (`queued_...`, `in_flight...`, `buffer_memory_used`) are
/// values at the moment of the snapshot. Latency percentiles cover a recent
/// window (see [`Latency`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Statistics {
    /// `client.id`.
    pub client_id: String,
    /// Time since the producer was created.
    pub age: Duration,
    /// Per broker: every node learned from metadata, then every bootstrap
    /// address (`node_id` `None`), in that order, nodes by id.
    pub brokers: Vec<BrokerStatistics>,
    /// Per topic the producer has used, in order of first use.
    pub topics: Vec<TopicStatistics>,
    /// Producer-wide totals.
    pub totals: TotalStatistics,
}

/// The state of the producer's connection to one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BrokerState {
    /// No connection and none being made (nothing to send there yet).
    #[default]
    Idle,
    /// No connection: waiting out the reconnect backoff after a failure.
    Backoff,
    /// A TCP connection is being made.
    Connecting,
    /// Connected, negotiating (ApiVersions, authentication).
    Handshaking,
    /// Ready for requests.
    Up,
}

impl BrokerState {
    /// A short upper-case name (librdkafka's style: `UP`, `DOWN`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BrokerState::Idle => "INIT",
            BrokerState::Backoff => "DOWN",
            BrokerState::Connecting => "CONNECT",
            BrokerState::Handshaking => "APIVERSION_QUERY",
            BrokerState::Up => "UP",
        }
    }
}

/// Latency over a recent window, from a logarithmic histogram (values are
/// exact for min, max and mean; percentiles are bucket bounds, within
/// 12.5 % of the true value).
///
/// The window: responses received in the current and the previous period,
/// a period being `statistics.interval.ms` (30 s when periodic statistics
/// are off). So it reflects the last one to two periods, not all time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// Samples in the window.
    pub count: u64,
    /// Smallest sample.
    pub min: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// One broker (or bootstrap address).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BrokerStatistics {
    /// The broker's node id; `None` for a bootstrap address (used until
    /// the cluster's brokers are known, and whenever no known broker can
    /// be reached).
    pub node_id: Option<i32>,
    /// `host:port`.
    pub addr: String,
    /// Connection state now.
    pub state: BrokerState,
    /// Requests written and not answered yet (gauge).
    pub in_flight_requests: u64,
    /// Requests handed to the connection (produce, metadata, handshakes).
    pub requests_sent: u64,
    /// Bytes of those requests, size prefixes included.
    pub bytes_sent: u64,
    /// Responses received.
    pub responses_received: u64,
    /// Bytes of those responses, size prefixes included.
    pub bytes_received: u64,
    /// Request round-trip time, from handing a request to the connection
    /// to its response, over a recent window.
    pub rtt: Latency,
    /// Connection attempts (successful or not).
    pub connects: u64,
    /// Connection attempts after the first (`connects - 1`).
    pub reconnects: u64,
    /// Connection attempts that failed (refused, unreachable, timed out,
    /// handshake rejected).
    pub connect_failures: u64,
    /// Established connections that were lost or dropped (by the peer, an
    /// I/O error, a request timeout or a malformed response).
    pub disconnects: u64,
    /// Requests that timed out (`request.timeout.ms`).
    pub request_timeouts: u64,
    /// Responses that reported a throttle time > 0.
    pub throttled_responses: u64,
    /// Sum of the throttle times brokers reported (KIP-219).
    pub throttle_time_total: Duration,
    /// The throttle time of the last response that reported one (zero
    /// included).
    pub throttle_time_last: Duration,
}

/// One topic.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TopicStatistics {
    /// The topic's name.
    pub name: String,
    /// Its partitions known to the producer, by index.
    pub partitions: Vec<PartitionStatistics>,
}

/// Errors of one kind that produce attempts of a partition got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCount {
    /// The Kafka error; a lost or timed-out request counts as
    /// `NETWORK_EXCEPTION`.
    pub code: ErrorCode,
    /// How many attempts got it.
    pub count: u64,
}

/// One partition.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PartitionStatistics {
    /// The partition index.
    pub partition: u32,
    /// Its leader's node id, if known.
    pub leader: Option<i32>,
    /// Records in the accumulator, not yet taken into a request (gauge).
    pub queued_records: u64,
    /// Bytes of those records (encoded batch sizes, gauge).
    pub queued_bytes: u64,
    /// Batches on the wire, waiting for their response (gauge).
    pub in_flight_batches: u64,
    /// Records in those batches (gauge).
    pub in_flight_records: u64,
    /// Batches waiting to be retried (gauge).
    pub retry_batches: u64,
    /// Batches sent for the first time.
    pub batches_sent: u64,
    /// Records in those batches.
    pub records_sent: u64,
    /// Bytes of those batches (as written, after compression).
    pub bytes_sent: u64,
    /// Batch re-sends scheduled after an error or a lost request.
    pub retries: u64,
    /// Records whose batch the broker acknowledged (with acks=0: written).
    pub records_acked: u64,
    /// Records that failed for good (any reason, sent or not).
    pub records_failed: u64,
    /// Errors of produce attempts, by kind (an attempt that is then retried
    /// counts too), most frequent first.
    pub errors: Vec<ErrorCount>,
}

impl PartitionStatistics {
    /// Mean records per batch sent (0 before the first batch).
    pub fn avg_batch_records(&self) -> f64 {
        ratio(self.records_sent, self.batches_sent)
    }

    /// Mean bytes per batch sent (0 before the first batch).
    pub fn avg_batch_bytes(&self) -> f64 {
        ratio(self.bytes_sent, self.batches_sent)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Producer-wide totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotalStatistics {
    /// Records sent for the first time (in batches handed to a
    /// connection).
    pub records_sent: u64,
    /// Records acknowledged.
    pub records_acked: u64,
    /// Records that failed for good.
    pub records_failed: u64,
    /// Records in the accumulator (gauge; the sum over partitions).
    pub queued_records: u64,
    /// Batches sent for the first time.
    pub batches_sent: u64,
    /// Batch re-sends scheduled.
    pub retries: u64,
    /// Produce requests built.
    pub produce_requests: u64,
    /// Metadata requests built.
    pub metadata_requests: u64,
    /// Requests on the wire over all connections (gauge).
    pub requests_in_flight: u64,
    /// Bytes of `buffer.memory` held by batches (gauge).
    pub buffer_memory_used: u64,
    /// `buffer.memory`.
    pub buffer_memory_limit: u64,
    /// Producer epoch bumps (idempotence; with transactions, the bumps an
    /// abort ends with).
    pub epoch_bumps: u64,
    /// Delivery callback calls that panicked (caught).
    pub delivery_callback_panics: u64,
    /// Statistics callback calls that panicked (caught).
    pub statistics_callback_panics: u64,
    /// Statistics callback calls so far.
    pub statistics_callbacks: u64,
}

// ---------------------------------------------------------------------------
// Counters kept by the I/O thread
// ---------------------------------------------------------------------------

/// Sub-buckets per power of two (relative bucket width 1/8).
const SUB: usize = 8;
/// Bucket count: exact 0..8 µs, then 8 sub-buckets per power of two up to
/// 2^40 µs (12.7 days); larger values land in the last bucket.
const BUCKETS: usize = 39 * SUB;

/// A fixed-bucket log histogram of microseconds. Recording is a few
/// integer operations; no allocation after creation.
#[derive(Clone)]
pub(crate) struct LogHistogram {
    counts: Box<[u32; BUCKETS]>,
    n: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for LogHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHistogram")
            .field("n", &self.n)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            counts: Box::new([0; BUCKETS]),
            n: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize; // >= 3
    let sub = ((v >> (e - 3)) & (SUB as u64 - 1)) as usize;
    ((e - 2) * SUB + sub).min(BUCKETS - 1)
}

/// The largest value that falls into bucket `i` (the last bucket takes
/// every value past the range).
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    if i >= BUCKETS - 1 {
        return u64::MAX;
    }
    let e = i / SUB + 2;
    let sub = (i % SUB) as u64;
    ((SUB as u64 + sub) << (e - 3)) + (1u64 << (e - 3)) - 1
}

impl LogHistogram {
    pub(crate) fn record(&mut self, us: u64) {
        let c = &mut self.counts[bucket_of(us)];
        *c = c.saturating_add(1);
        self.n += 1;
        self.sum = self.sum.saturating_add(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    fn clear(&mut self) {
        self.counts.fill(0);
        self.n = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    fn merge(&mut self, o: &LogHistogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.n += o.n;
        self.sum = self.sum.saturating_add(o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket
    /// holding it, clamped to the observed min and max.
    fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }

    fn latency(&self) -> Latency {
        if self.n == 0 {
            return Latency::default();
        }
        let us = Duration::from_micros;
        Latency {
            count: self.n,
            min: us(self.min),
            max: us(self.max),
            mean: us(self.sum / self.n),
            p50: us(self.quantile(0.50)),
            p90: us(self.quantile(0.90)),
            p99: us(self.quantile(0.99)),
        }
    }
}

/// Two histogram generations: the current period and the one before.
#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    start: Option<Instant>,
    cur: LogHistogram,
    prev: LogHistogram,
}

impl Window {
    fn roll(&mut self, now: Instant, period: Duration) {
        match self.start {
            None => self.start = Some(now),
            Some(s) => {
                let age = now.saturating_duration_since(s);
                if age >= period {
                    if age >= period * 2 {
                        self.prev.clear();
                    } else {
                        std::mem::swap(&mut self.prev, &mut self.cur);
                    }
                    self.cur.clear();
                    self.start = Some(now);
                }
            }
        }
    }

    pub(crate) fn record(&mut self, now: Instant, period: Duration, us: u64) {
        self.roll(now, period);
        self.cur.record(us);
    }

    /// The samples of the last one to two periods as of `now`.
    fn latency(&self, now: Instant, period: Duration) -> Latency {
        let Some(s) = self.start else {
            return Latency::default();
        };
        let age = now.saturating_duration_since(s);
        if age >= period * 2 {
            Latency::default()
        } else if age >= period {
            self.cur.latency()
        } else {
            let mut h = self.cur.clone();
            h.merge(&self.prev);
            h.latency()
        }
    }
}

/// Counters of one broker (or bootstrap address), kept across its
/// connections.
#[derive(Debug, Default, Clone)]
pub(crate) struct BrokerCounters {
    pub(crate) requests: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) responses: u64,
    pub(crate) bytes_received: u64,
    pub(crate) connects: u64,
    pub(crate) connect_failures: u64,
    pub(crate) disconnects: u64,
    pub(crate) request_timeouts: u64,
    pub(crate) throttled: u64,
    pub(crate) throttle_total_ms: u64,
    pub(crate) throttle_last_ms: u64,
    /// Created on the first response (brokers never answered cost nothing).
    pub(crate) rtt: Option<Box<Window>>,
}

/// Counters of one partition.
#[derive(Debug, Default, Clone)]
#[repr(C)] // `acked` first: the response path's counter (see `PartCore`)
pub(crate) struct PartCounters {
    pub(crate) acked: u64,
    pub(crate) batches: u64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) retries: u64,
    pub(crate) failed: u64,
    /// (error code, count); allocated on the first error.
    pub(crate) errors: Vec<(i16, u64)>,
}

impl PartCounters {
    pub(crate) fn error(&mut self, code: ErrorCode) {
        match self.errors.iter_mut().find(|(c, _)| *c == code.code()) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((code.code(), 1)),
        }
    }
}

/// Statistics settings and state of the core. Private to this module: the
/// periodic timer is armed, re-armed and dropped only by the statistics
/// code here (and [`StatsState::disarm`] when the core finishes), so there
/// is at most one `TimerKey::Statistics` timer.
pub(crate) struct StatsState {
    started: Instant,
    interval: Duration,
    callback: Option<StatisticsCallback>,
    timer: Option<TimerHandle>,
    /// The deadline the timer was armed for.
    due: Instant,
    callbacks: u64,
    panics: u64,
    /// A snapshot was asked for (or a callback is set): the final one is
    /// kept at finish for `statistics()` after close.
    used: bool,
}

impl std::fmt::Debug for StatsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsState")
            .field("interval", &self.interval)
            .field("callback", &self.callback.is_some())
            .field("timer", &self.timer)
            .finish()
    }
}

impl StatsState {
    pub(crate) fn new(
        now: Instant,
        interval: Duration,
        callback: Option<StatisticsCallback>,
    ) -> StatsState {
        StatsState {
            started: now,
            interval,
            used: callback.is_some(),
            callback,
            timer: None,
            due: now,
            callbacks: 0,
            panics: 0,
        }
    }

    /// Forgets the periodic timer (the core finished and dropped every
    /// timer).
    pub(crate) fn disarm(&mut self) {
        self.timer = None;
    }

    /// Whether the periodic timer is armed.
    #[cfg(test)]
    pub(crate) fn is_armed(&self) -> bool {
        self.timer.is_some()
    }

    /// The RTT window period.
    pub(crate) fn period(&self) -> Duration {
        if self.interval.is_zero() {
            DEFAULT_RTT_WINDOW
        } else {
            self.interval
        }
    }
}

impl Conn {
    fn stats_state(&self) -> BrokerState {
        match self.state {
            ConnState::Connecting => BrokerState::Connecting,
            ConnState::Ready => BrokerState::Up,
            #[allow(unreachable_patterns)] // states added for authentication
            _ => BrokerState::Handshaking,
        }
    }
}

// ---------------------------------------------------------------------------
// Asking the I/O thread for a snapshot
// ---------------------------------------------------------------------------

/// A pending request for a snapshot: the I/O thread fills it once (a
/// one-shot, `oneshot.rs`, holding the snapshot until it is taken).
#[derive(Debug, Default)]
pub struct StatisticsRequest {
    slot: OneShot<Option<Statistics>>,
}

impl StatisticsRequest {
    pub(crate) fn fulfil(&self, s: Statistics) {
        self.slot.settle(|v| {
            *v = Some(s);
            (true, ())
        });
    }

    /// The snapshot, if the I/O thread made it.
    pub fn try_take(&self) -> Option<Statistics> {
        self.slot.lock().value.take()
    }

    /// Waits up to `timeout` for the snapshot.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Statistics> {
        self.slot.wait_timeout(timeout).0.value.take()
    }
}

impl Shared {
    /// Asks the I/O thread for a [`Statistics`] snapshot. Returns the
    /// request to wait on and whether the caller must wake the I/O thread.
    /// Unanswered if the I/O thread has stopped: see
    /// [`final_statistics`](Self::final_statistics).
    pub fn request_statistics(&self) -> (Arc<StatisticsRequest>, bool) {
        let req = Arc::new(StatisticsRequest::default());
        let wake = self.notices.push(Notice::Statistics(req.clone()));
        (req, wake)
    }

    /// The snapshot the core took when it finished (after close), if
    /// statistics were used.
    pub fn final_statistics(&self) -> Option<Statistics> {
        self.final_statistics.get().cloned()
    }
}

// ---------------------------------------------------------------------------
// The core's side
// ---------------------------------------------------------------------------

impl ProducerCore {
    /// Arms the periodic statistics deadline if a callback and an interval
    /// are set (called once, at creation).
    pub(crate) fn arm_statistics(&mut self, now: Instant) {
        let st = &self.statistics;
        if st.callback.is_some() && !st.interval.is_zero() {
            let due = now + st.interval;
            let h = self.timers.insert(due, TimerKey::Statistics);
            self.statistics.timer = Some(h);
            self.statistics.due = due;
        } else if st.callback.is_some() {
            tracing::debug!(
                "on_statistics is set but statistics.interval.ms is 0: it is not called"
            );
        }
    }

    /// The statistics deadline: build a snapshot, hand it to the callback
    /// (fenced), re-arm one interval after the previous deadline (or after
    /// `now`, if the I/O thread fell behind by more than an interval).
    pub(crate) fn statistics_timer(&mut self, now: Instant) {
        self.statistics.timer = None;
        let due = self.statistics.due;
        let Some(cb) = self.statistics.callback.clone() else {
            return;
        };
        let snapshot = self.statistics(now);
        self.statistics.callbacks += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(&snapshot))) {
            self.statistics.panics += 1;
            let message = panic_message(&*panic);
            if self.statistics.panics == 1 {
                tracing::warn!(panic = %message, "the on_statistics callback panicked; caught, the producer goes on and the callback is called again at the next interval (further panics are counted in statistics_callback_panics)");
            } else {
                tracing::debug!(panic = %message, "the on_statistics callback panicked again");
            }
        }
        if self.life.is_finished() {
            return;
        }
        let interval = self.statistics.interval;
        let mut next = due + interval;
        if next <= now {
            next = now + interval;
        }
        self.statistics.timer = Some(self.timers.insert(next, TimerKey::Statistics));
        self.statistics.due = next;
    }

    /// Answers a `Producer::statistics` request.
    pub(crate) fn answer_statistics(&mut self, now: Instant, req: &StatisticsRequest) {
        self.statistics.used = true;
        req.fulfil(self.statistics(now));
    }

    /// Keeps the final snapshot (at finish) if statistics were used.
    pub(crate) fn keep_final_statistics(&mut self, now: Instant) {
        if self.statistics.used {
            let s = self.statistics(now);
            let _ = self.shared.final_statistics.set(s);
        }
    }

    /// The counters of the broker (or bootstrap address) `id` connects to.
    fn broker_counters_of(&mut self, id: ConnId) -> Option<&mut BrokerCounters> {
        let t = self.conn(id)?.target;
        self.broker_counters(t)
    }

    /// The counters of a connection target.
    pub(crate) fn broker_counters(&mut self, t: Target) -> Option<&mut BrokerCounters> {
        match t {
            Target::Bootstrap(i) => self.conns.boot_mut(i).map(|b| &mut b.stats),
            Target::Node(n) => self.nodes.get_mut(&n).map(|n| &mut n.stats),
        }
    }

    pub(crate) fn record_rtt(&mut self, id: ConnId, now: Instant, deadline: Instant) {
        // A request's deadline is its send time plus request.timeout.ms.
        let Some(sent) = deadline.checked_sub(self.cfg.request_timeout) else {
            return;
        };
        let us = now.saturating_duration_since(sent).as_micros() as u64;
        let period = self.statistics.period();
        if let Some(b) = self.broker_counters_of(id) {
            b.rtt
                .get_or_insert_with(Default::default)
                .record(now, period, us);
        }
    }

    pub(crate) fn count_response(&mut self, id: ConnId, len: usize) {
        if let Some(b) = self.broker_counters_of(id) {
            b.responses += 1;
            b.bytes_received += len as u64 + 4;
        }
    }

    pub(crate) fn count_throttle(&mut self, id: ConnId, throttle_ms: i32) {
        if let Some(b) = self.broker_counters_of(id) {
            let ms = throttle_ms.max(0) as u64;
            b.throttle_last_ms = ms;
            if ms > 0 {
                b.throttled += 1;
                b.throttle_total_ms = b.throttle_total_ms.saturating_add(ms);
            }
        }
    }

    /// A consistent snapshot of every counter, as of `now`. Visits every
    /// broker and partition (locking each partition's slot briefly to count
    /// its queued records): call it when asked, not per record.
    pub fn statistics(&self, now: Instant) -> Statistics {
        let period = self.statistics.period();
        let mut brokers = Vec::with_capacity(self.nodes.len() + self.conns.bootstrap().len());
        let mut ids: Vec<i32> = self.nodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let n = &self.nodes[&id];
            brokers.push(self.broker_statistics(
                Some(id),
                &n.addr,
                n.conn,
                n.reconnect.timer.is_some(),
                &n.stats,
                now,
                period,
            ));
        }
        for b in self.conns.bootstrap() {
            brokers.push(self.broker_statistics(
                None,
                &b.addr,
                b.conn,
                b.reconnect.timer.is_some(),
                &b.stats,
                now,
                period,
            ));
        }
        let mut totals = TotalStatistics {
            retries: self.stats.retries,
            produce_requests: self.stats.produce_requests,
            metadata_requests: self.stats.metadata_requests,
            requests_in_flight: self.conns.iter().map(|c| c.in_flight.len() as u64).sum(),
            buffer_memory_used: self.shared.pool.held() as u64,
            buffer_memory_limit: self.shared.pool.limit() as u64,
            epoch_bumps: self.stats.epoch_bumps,
            delivery_callback_panics: self.stats.callback_panics,
            statistics_callback_panics: self.statistics.panics,
            statistics_callbacks: self.statistics.callbacks,
            ..TotalStatistics::default()
        };
        let on_wire = self.records_on_the_wire();
        let mut topics = Vec::with_capacity(self.topics.len());
        for (ti, t) in self.topics.iter().enumerate() {
            let mut parts = Vec::with_capacity(t.partitions.len());
            for (i, p) in t.partitions.iter().enumerate() {
                let (queued_records, queued_bytes) = {
                    let q = p.slot.lock();
                    let mut r = 0u64;
                    let mut b = 0u64;
                    if let Some(o) = &q.open {
                        r += u64::from(o.builder.record_count());
                        b += o.builder.size_in_bytes() as u64;
                    }
                    for s in &q.sealed {
                        r += u64::from(s.record_count);
                        b += s.sealed.size_in_bytes() as u64;
                    }
                    (r, b)
                };
                let c = &p.stats;
                totals.queued_records += queued_records;
                totals.batches_sent += c.batches;
                totals.records_sent += c.records;
                totals.records_acked += c.acked;
                totals.records_failed += c.failed;
                let mut errors: Vec<ErrorCount> = c
                    .errors
                    .iter()
                    .map(|&(code, count)| ErrorCount {
                        code: ErrorCode(code),
                        count,
                    })
                    .collect();
                errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.0.cmp(&b.code.0)));
                parts.push(PartitionStatistics {
                    partition: i as u32,
                    leader: p.leader,
                    queued_records,
                    queued_bytes,
                    in_flight_batches: u64::from(p.in_flight),
                    in_flight_records: on_wire.get(&(ti as u32, i as u32)).copied().unwrap_or(0),
                    retry_batches: p.retry.len() as u64,
                    batches_sent: c.batches,
                    records_sent: c.records,
                    bytes_sent: c.bytes,
                    retries: c.retries,
                    records_acked: c.acked,
                    records_failed: c.failed,
                    errors,
                });
            }
            topics.push(TopicStatistics {
                name: t.name.to_string(),
                partitions: parts,
            });
        }
        Statistics {
            client_id: self.cfg.client_id.clone(),
            age: now.saturating_duration_since(self.statistics.started),
            brokers,
            topics,
            totals,
        }
    }

    /// Records of the batches in requests awaiting their response, per
    /// partition (a walk of the requests in flight, paid per snapshot).
    fn records_on_the_wire(&self) -> HashMap<PartKey, u64> {
        let mut on_wire = HashMap::new();
        for c in self.conns.iter() {
            for f in &c.in_flight {
                let ReqKind::Produce(batches) = &f.kind else {
                    continue;
                };
                for &(bk, serial) in batches {
                    if self.ledger.is_live(bk, serial) {
                        let b = &self.ledger[bk];
                        *on_wire.entry(b.part()).or_default() += u64::from(b.records());
                    }
                }
            }
        }
        on_wire
    }

    #[allow(clippy::too_many_arguments)] // one broker's facts
    fn broker_statistics(
        &self,
        node_id: Option<i32>,
        addr: &str,
        conn: Option<ConnId>,
        backing_off: bool,
        c: &BrokerCounters,
        now: Instant,
        period: Duration,
    ) -> BrokerStatistics {
        let live = conn.and_then(|id| self.conn(id));
        let state = match live {
            Some(c) => c.stats_state(),
            None if backing_off => BrokerState::Backoff,
            None => BrokerState::Idle,
        };
        BrokerStatistics {
            node_id,
            addr: addr.to_owned(),
            state,
            in_flight_requests: live.map_or(0, |c| c.in_flight.len() as u64),
            requests_sent: c.requests,
            bytes_sent: c.bytes_sent,
            responses_received: c.responses,
            bytes_received: c.bytes_received,
            rtt: c
                .rtt
                .as_ref()
                .map_or_else(Latency::default, |w| w.latency(now, period)),
            connects: c.connects,
            reconnects: c.connects.saturating_sub(1),
            connect_failures: c.connect_failures,
            disconnects: c.disconnects,
            request_timeouts: c.request_timeouts,
            throttled_responses: c.throttled,
            throttle_time_total: Duration::from_millis(c.throttle_total_ms),
            throttle_time_last: Duration::from_millis(c.throttle_last_ms),
        }
    }
}

// ---------------------------------------------------------------------------
// librdkafka's JSON form
// ---------------------------------------------------------------------------

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_window(out: &mut String, name: &str, l: &Latency, unit_ms: bool) {
    let v = |d: Duration| {
        if unit_ms {
            d.as_millis() as u64
        } else {
            d.as_micros() as u64
        }
    };
    let _ = write!(
        out,
        "\"{name}\":{{\"min\":{},\"max\":{},\"avg\":{},\"sum\":{},\"cnt\":{},\"p50\":{},\"p90\":{},\"p99\":{}}}",
        v(l.min),
        v(l.max),
        v(l.mean),
        v(l.mean).saturating_mul(l.count),
        l.count,
        v(l.p50),
        v(l.p90),
        v(l.p99)
    );
}

impl Statistics {
    /// What can be said without the I/O thread (it has stopped): the
    /// buffer memory totals only.
    pub fn unavailable(shared: &Shared) -> Statistics {
        Statistics {
            totals: TotalStatistics {
                buffer_memory_used: shared.pool.held() as u64,
                buffer_memory_limit: shared.pool.limit() as u64,
                ..TotalStatistics::default()
            },
            ..Statistics::default()
        }
    }

    /// The snapshot as a JSON object in the shape of librdkafka's
    /// statistics (`STATISTICS.md`), for tools that already read it: a
    /// top level with `client_id`, `type`, `age` (µs), `msg_cnt`,
    /// `msg_size`, `msg_size_max`, `tx`, `txbytes`, `rx`, `rxbytes`,
    /// `txmsgs`, `txmsg_bytes`; `brokers` keyed by `host:port/id` (`nodeid`,
    /// `nodename`, `state`, `waitresp_cnt`, `tx`, `txbytes`, `rx`,
    /// `rxbytes`, `connects`, `disconnects`, `req_timeouts`, `rtt` in µs);
    /// `topics` keyed by name with `partitions` keyed by index (`leader`,
    /// `msgq_cnt`, `msgq_bytes`, `msgs_inflight` (records on the wire), `txmsgs`,
    /// `txbytes`, `acked_msgs`, `failed_msgs`, `retries`, `errors`). Only the
    /// fields kring has; names with the same meaning as librdkafka's.
    /// Fields librdkafka has and kring does not (consumer state,
    /// `int_latency`, ...) are absent.
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(512 + 256 * self.brokers.len());
        let t = &self.totals;
        o.push('{');
        o.push_str("\"client_id\":");
        json_str(&mut o, &self.client_id);
        let (tx, txb, rx, rxb) = self.brokers.iter().fold((0, 0, 0, 0), |a, b| {
            (
                a.0 + b.requests_sent,
                a.1 + b.bytes_sent,
                a.2 + b.responses_received,
                a.3 + b.bytes_received,
            )
        });
        let txmsg_bytes: u64 = self
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.bytes_sent)
            .sum();
        let queued_bytes: u64 = self
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.queued_bytes)
            .sum();
        let _ = write!(
            o,
            ",\"type\":\"producer\",\"age\":{},\"msg_cnt\":{},\"msg_size\":{},\"msg_size_max\":{},\"buffer_memory_used\":{},\"tx\":{tx},\"txbytes\":{txb},\"rx\":{rx},\"rxbytes\":{rxb},\"txmsgs\":{},\"txmsg_bytes\":{txmsg_bytes},\"acked_msgs\":{},\"failed_msgs\":{},\"retries\":{}",
            self.age.as_micros() as u64,
            t.queued_records,
            queued_bytes,
            t.buffer_memory_limit,
            t.buffer_memory_used,
            t.records_sent,
            t.records_acked,
            t.records_failed,
            t.retries,
        );
        o.push_str(",\"brokers\":{");
        for (i, b) in self.brokers.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let id = b.node_id.unwrap_or(-1);
            let name = match b.node_id {
                Some(id) => format!("{}/{id}", b.addr),
                None => format!("{}/bootstrap", b.addr),
            };
            json_str(&mut o, &name);
            o.push_str(":{\"name\":");
            json_str(&mut o, &name);
            let _ = write!(o, ",\"nodeid\":{id},\"nodename\":");
            json_str(&mut o, &b.addr);
            let _ = write!(
                o,
                ",\"state\":\"{}\",\"waitresp_cnt\":{},\"tx\":{},\"txbytes\":{},\"rx\":{},\"rxbytes\":{},\"connects\":{},\"connect_failures\":{},\"disconnects\":{},\"req_timeouts\":{},\"throttle_cnt\":{},\"throttle_total_ms\":{},\"throttle_last_ms\":{},",
                b.state.name(),
                b.in_flight_requests,
                b.requests_sent,
                b.bytes_sent,
                b.responses_received,
                b.bytes_received,
                b.connects,
                b.connect_failures,
                b.disconnects,
                b.request_timeouts,
                b.throttled_responses,
                b.throttle_time_total.as_millis() as u64,
                b.throttle_time_last.as_millis() as u64,
            );
            json_window(&mut o, "rtt", &b.rtt, false);
            o.push('}');
        }
        o.push_str("},\"topics\":{");
        for (i, tp) in self.topics.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            json_str(&mut o, &tp.name);
            o.push_str(":{\"topic\":");
            json_str(&mut o, &tp.name);
            o.push_str(",\"partitions\":{");
            for (j, p) in tp.partitions.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let _ = write!(
                    o,
                    "\"{}\":{{\"partition\":{},\"leader\":{},\"msgq_cnt\":{},\"msgq_bytes\":{},\"msgs_inflight\":{},\"txbatches\":{},\"txmsgs\":{},\"txbytes\":{},\"retries\":{},\"acked_msgs\":{},\"failed_msgs\":{},\"errors\":{{",
                    p.partition,
                    p.partition,
                    p.leader.unwrap_or(-1),
                    p.queued_records,
                    p.queued_bytes,
                    p.in_flight_records,
                    p.batches_sent,
                    p.records_sent,
                    p.bytes_sent,
                    p.retries,
                    p.records_acked,
                    p.records_failed,
                );
                for (k, e) in p.errors.iter().enumerate() {
                    if k > 0 {
                        o.push(',');
                    }
                    let _ = write!(o, "\"{}\":{}", e.code.name(), e.count);
                }
                o.push_str("}}");
            }
            o.push_str("}}");
        }
        o.push_str("}}");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for v in (0u64..5000).chain([1 << 20, (1 << 20) + 12345, 1 << 39, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "monotonic at {v}");
            last = b;
            if b < BUCKETS - 1 {
                assert!(bucket_high(b) >= v, "v={v} b={b} high={}", bucket_high(b));
                // Relative width at most 1/8.
                assert!(
                    bucket_high(b) - v <= v / 8 + 1,
                    "v={v} high={}",
                    bucket_high(b)
                );
            }
        }
    }

    /// Each bucket's upper bound is exact: the largest value in it, the
    /// next value the first of the next bucket.
    #[test]
    fn bucket_bounds_are_exact() {
        for b in 0..BUCKETS - 1 {
            let high = bucket_high(b);
            assert_eq!(bucket_of(high), b, "bucket {b} high {high}");
            assert_eq!(bucket_of(high + 1), b + 1, "bucket {b} high {high}");
        }
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn quantiles_of_known_samples() {
        let mut h = LogHistogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000); // 1 ms .. 1 s
        }
        let l = h.latency();
        assert_eq!(l.count, 1000);
        assert_eq!(l.min, Duration::from_millis(1));
        assert_eq!(l.max, Duration::from_millis(1000));
        let p50 = l.p50.as_secs_f64() * 1e3;
        let p99 = l.p99.as_secs_f64() * 1e3;
        assert!((500.0..=500.0 * 1.125).contains(&p50), "p50 {p50}");
        assert!((990.0..=1000.0).contains(&p99), "p99 {p99}");
        assert_eq!(l.mean, Duration::from_micros(500_500));
    }

    /// Values past the bucket range (2^42 µs and up) land in the last
    /// bucket, and its quantiles are the largest sample, not a bound below it.
    #[test]
    fn the_largest_values_land_in_the_last_bucket() {
        let mut h = LogHistogram::default();
        for v in [1 << 42, 1 << 50, u64::MAX - 1, u64::MAX] {
            assert_eq!(bucket_of(v), BUCKETS - 1, "{v}");
            h.record(v);
        }
        assert_eq!(h.counts[BUCKETS - 1], 4);
        // The last bucket has no upper bound below the largest sample.
        assert_eq!(h.quantile(0.5), u64::MAX);
        let mut one = LogHistogram::default();
        one.record(1 << 42);
        assert_eq!(one.quantile(0.99), 1 << 42);
    }

    #[test]
    fn window_forgets_old_periods() {
        let t0 = kring_testclock::origin();
        let p = Duration::from_secs(10);
        let mut w = Window::default();
        w.record(t0, p, 100);
        w.record(t0 + Duration::from_secs(5), p, 300);
        assert_eq!(w.latency(t0 + Duration::from_secs(6), p).count, 2);
        // Next period: the first one is still "previous".
        w.record(t0 + Duration::from_secs(11), p, 200);
        assert_eq!(w.latency(t0 + Duration::from_secs(12), p).count, 3);
        // Two periods on: only the latest period's samples.
        w.record(t0 + Duration::from_secs(22), p, 50);
        let l = w.latency(t0 + Duration::from_secs(22), p);
        assert_eq!(l.count, 2, "{l:?}");
        // Long silence: nothing recent.
        assert_eq!(w.latency(t0 + Duration::from_secs(60), p).count, 0);
    }

    /// Every field of the JSON form, at a value no other field has, and
    /// every broker state's name: a swapped, dropped or miscounted field
    /// changes the string.
    #[test]
    fn the_json_form_carries_every_field_in_librdkafkas_names() {
        let names = [
            BrokerState::Idle,
            BrokerState::Backoff,
            BrokerState::Connecting,
            BrokerState::Handshaking,
            BrokerState::Up,
        ]
        .map(BrokerState::name);
        assert_eq!(names, ["INIT", "DOWN", "CONNECT", "APIVERSION_QUERY", "UP"]);
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let s = Statistics {
            client_id: "c".into(),
            age: us(7_000_001),
            brokers: vec![
                BrokerStatistics {
                    node_id: Some(3),
                    addr: "h:9092".into(),
                    state: BrokerState::Up,
                    in_flight_requests: 2,
                    requests_sent: 11,
                    bytes_sent: 1_100,
                    responses_received: 9,
                    bytes_received: 900,
                    rtt: Latency {
                        count: 4,
                        min: us(100),
                        max: us(900),
                        mean: us(250),
                        p50: us(200),
                        p90: us(800),
                        p99: us(890),
                    },
                    connects: 5,
                    reconnects: 4,
                    connect_failures: 6,
                    disconnects: 7,
                    request_timeouts: 8,
                    throttled_responses: 12,
                    throttle_time_total: ms(1_300),
                    throttle_time_last: ms(140),
                },
                BrokerStatistics {
                    node_id: None,
                    addr: "b:1".into(),
                    state: BrokerState::Backoff,
                    requests_sent: 13,
                    bytes_sent: 130,
                    responses_received: 14,
                    bytes_received: 140,
                    ..Default::default()
                },
            ],
            topics: vec![
                TopicStatistics {
                    name: "t".into(),
                    partitions: vec![
                        PartitionStatistics {
                            partition: 0,
                            leader: Some(3),
                            queued_records: 21,
                            queued_bytes: 2_100,
                            in_flight_batches: 22,
                            in_flight_records: 29,
                            retry_batches: 23,
                            batches_sent: 24,
                            records_sent: 25,
                            bytes_sent: 2_500,
                            retries: 26,
                            records_acked: 27,
                            records_failed: 28,
                            errors: vec![
                                ErrorCount {
                                    code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                                    count: 2,
                                },
                                ErrorCount {
                                    code: ErrorCode::REQUEST_TIMED_OUT,
                                    count: 3,
                                },
                            ],
                        },
                        PartitionStatistics {
                            partition: 1,
                            leader: None,
                            queued_records: 31,
                            queued_bytes: 3_100,
                            bytes_sent: 3_500,
                            ..Default::default()
                        },
                    ],
                },
                TopicStatistics {
                    name: "u".into(),
                    partitions: vec![],
                },
            ],
            totals: TotalStatistics {
                records_sent: 41,
                records_acked: 42,
                records_failed: 43,
                queued_records: 44,
                retries: 45,
                buffer_memory_used: 46,
                buffer_memory_limit: 47,
                ..Default::default()
            },
        };
        let want = concat!(
            r#"{"client_id":"c","type":"producer","age":7000001,"msg_cnt":44,"msg_size":5200,"#,
            r#""msg_size_max":47,"buffer_memory_used":46,"tx":24,"txbytes":1230,"rx":23,"#,
            r#""rxbytes":1040,"txmsgs":41,"txmsg_bytes":6000,"acked_msgs":42,"failed_msgs":43,"#,
            r#""retries":45,"brokers":{"h:9092/3":{"name":"h:9092/3","nodeid":3,"#,
            r#""nodename":"h:9092","state":"UP","waitresp_cnt":2,"tx":11,"txbytes":1100,"rx":9,"#,
            r#""rxbytes":900,"connects":5,"connect_failures":6,"disconnects":7,"req_timeouts":8,"#,
            r#""throttle_cnt":12,"throttle_total_ms":1300,"throttle_last_ms":140,"rtt":{"min":100,"#,
            r#""max":900,"avg":250,"sum":1000,"cnt":4,"p50":200,"p90":800,"p99":890}},"#,
            r#""b:1/bootstrap":{"name":"b:1/bootstrap","nodeid":-1,"nodename":"b:1","#,
            r#""state":"DOWN","waitresp_cnt":0,"tx":13,"txbytes":130,"rx":14,"rxbytes":140,"#,
            r#""connects":0,"connect_failures":0,"disconnects":0,"req_timeouts":0,"throttle_cnt":0,"#,
            r#""throttle_total_ms":0,"throttle_last_ms":0,"rtt":{"min":0,"max":0,"avg":0,"sum":0,"#,
            r#""cnt":0,"p50":0,"p90":0,"p99":0}}},"topics":{"t":{"topic":"t","partitions":{"#,
            r#""0":{"partition":0,"leader":3,"msgq_cnt":21,"msgq_bytes":2100,"msgs_inflight":29,"#,
            r#""txbatches":24,"txmsgs":25,"txbytes":2500,"retries":26,"acked_msgs":27,"#,
            r#""failed_msgs":28,"errors":{"NOT_LEADER_OR_FOLLOWER":2,"REQUEST_TIMED_OUT":3}},"#,
            r#""1":{"partition":1,"leader":-1,"msgq_cnt":31,"msgq_bytes":3100,"msgs_inflight":0,"#,
            r#""txbatches":0,"txmsgs":0,"txbytes":3500,"retries":0,"acked_msgs":0,"failed_msgs":0,"#,
            r#""errors":{}}}},"u":{"topic":"u","partitions":{}}}}"#,
        );
        assert_eq!(s.to_json(), want);
    }

    #[test]
    fn json_escapes_and_nests() {
        let s = Statistics {
            client_id: "a\"b\\c\n\r\t\u{1}\u{1f} é".into(),
            brokers: vec![BrokerStatistics {
                node_id: Some(1),
                addr: "h:1".into(),
                ..Default::default()
            }],
            topics: vec![TopicStatistics {
                name: "t".into(),
                partitions: vec![PartitionStatistics {
                    errors: vec![ErrorCount {
                        code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
                        count: 2,
                    }],
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        let j = s.to_json();
        assert!(
            j.starts_with(r#"{"client_id":"a\"b\\c\n\r\t\u0001\u001f é""#),
            "{j}"
        );
        assert!(
            j.contains("\"brokers\":{\"h:1/1\":{\"name\":\"h:1/1\",\"nodeid\":1"),
            "{j}"
        );
        assert!(
            j.contains("\"errors\":{\"NOT_LEADER_OR_FOLLOWER\":2}"),
            "{j}"
        );
        // Balanced braces and quotes (a cheap well-formedness check).
        let opens = j.matches('{').count();
        let closes = j.matches('}').count();
        assert_eq!(opens, closes, "{j}");
        assert!(j.ends_with("}}"));
    }
}
