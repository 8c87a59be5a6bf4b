//! The I/O thread's half: [`ProducerCore`], a sans-IO state machine.
//!
//! Why sans-IO (quinn-proto style): the core never touches a socket or the
//! clock. The driver feeds it events (`handle_*`), asks what to do
//! (`poll_io`, `poll_transmit`) and when to call back (`poll_timeout`). The
//! same code then runs under the io_uring driver and under the
//! deterministic `Sim` harness (`sim.rs`), where linger, retries,
//! timeouts and idempotence are tested by jumping simulated time.
//!
//! Shape of the state: [`ProducerCore`]'s fields are private to this
//! module, and each group of them is an owned sub-state with private
//! fields and a narrow API that keeps its invariant (quinn-proto's
//! `Connection` and its `streams`, `paths`, `timers`):
//! - the partition table ([`part_table`]): topics and partitions by id
//!   (per partition, [`partition`]: leader, an "enqueued" flag, the retry
//!   queue, idempotence sequences, timers), the name index and the set of
//!   partitions with an open batch;
//! - broker nodes and the work list ([`nodes`]): per node a ready queue
//!   with at most one entry per partition, and a connection; a node is on
//!   the work list of nodes to drain at most once;
//! - the connection table ([`conns`]): connections, bootstrap addresses,
//!   the handshake and SASL queues and the driver's socket commands (the
//!   connection logic is [`conn`]);
//! - every timer ([`timers`]): the deadline heap ([`crate::timer`]), the
//!   linger FIFO ([`linger`]) and the block-deadline timer;
//! - metadata scheduling ([`metadata`]), idempotence ([`idempotence`]),
//!   statistics ([`stats`]) and the lifecycle ([`lifecycle`]: closing,
//!   finished, fatal, forward only);
//! - the batch ledger ([`ledger`]): every batch from its announcement to
//!   its final result, with private fields, the only code that completes,
//!   fails or splits a batch ("every record gets exactly one final
//!   result").
//!
//! **Invariant:** nothing iterates all partitions on the send path. A
//! partition enters a node's ready queue only through an event (sealed
//! batch, linger expiry, backoff expiry, response, leader change, flush),
//! and each sender cycle visits only the partitions it pops
//! ([`CoreStats::partitions_visited`] counts them).

mod batch;
mod conn;
mod conns;
mod delivery_queue;
mod idempotence;
mod ledger;
mod lifecycle;
mod linger;
mod metadata;
mod nodes;
mod part_table;
mod partition;
mod produce;
pub(crate) mod sasl;
mod split;
mod stall;
mod stats;
mod timers;
mod transaction;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kring_protocol::Frame;

use crate::backoff::{ConnectTimeout, ExponentialBackoff, SplitMix64};
use crate::config::{Acks, Config};
use crate::delivery::{DeliveryCallback, DeliveryError};
use crate::error::ConfigError;
use crate::notice::{FlushRequest, Notice};
use crate::shared::Shared;

pub use conn::ConnId;
use conn::Target;
use conns::Conns;
use idempotence::Idempotence;
use ledger::Ledger;
pub(crate) use ledger::Settle;
use lifecycle::Lifecycle;
use metadata::MetadataState;
use nodes::Nodes;
use part_table::PartTable;
pub(crate) use stats::StatsState;
pub use stats::{
    BrokerState, BrokerStatistics, ErrorCount, Latency, PartitionStatistics, Statistics,
    StatisticsCallback, StatisticsRequest, TopicStatistics, TotalStatistics,
};
use timers::Timers;

/// Hasher for small integer keys (node ids): one multiply instead of
/// SipHash, on a path taken several times per ready partition.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHash;

/// The hasher [`IdHash`] builds.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_i32(&mut self, n: i32) {
        self.0 = (u64::from(n as u32) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A topic id and partition index.
pub(crate) type PartKey = (u32, u32);
/// A batch's key in the core's batch slab.
pub(crate) type BatchKey = usize;

/// A socket operation for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoCommand {
    /// Open a TCP connection to `addr` (`host:port`) and report the result
    /// with [`ProducerCore::handle_connected`] or
    /// [`ProducerCore::handle_connect_failed`].
    Connect {
        /// The core's name for the connection.
        conn: ConnId,
        /// `host:port`.
        addr: String,
        /// How long this attempt may take before it fails as timed out:
        /// the name lookup, the TCP connect (each resolved address tried
        /// gets this long) and, with TLS, the handshake after it. The core
        /// grows it per consecutive failed attempt to the address
        /// ([`Config::connect_timeout`] up to
        /// [`Config::connect_timeout_max`]); a driver uses it as given.
        timeout: Duration,
    },
    /// Close the connection. The core has already forgotten it: report
    /// nothing more about it (events for it are ignored anyway).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// A request frame for the driver to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection.
    pub conn: ConnId,
    /// One complete request, 4-byte size prefix included, as chunks to
    /// write back to back (a ProduceRequest's record batches are chunks of
    /// their own, shared with the batches rather than copied: write each
    /// as its own iovec and keep the chunks alive until the kernel is done
    /// with them). Frames of one connection must reach the wire in the
    /// order they were polled.
    pub frame: Frame,
}

/// Counters describing what the core did (for tests, benches and metrics).
#[derive(Debug, Default, Clone)]
pub struct CoreStats {
    /// Partitions popped from ready queues by the sender (lessons.md #1:
    /// this grows with partitions *sent*, not with partitions that exist).
    pub partitions_visited: u64,
    /// Produce requests built.
    pub produce_requests: u64,
    /// Batches handed to the driver (first sends and retries).
    pub batches_sent: u64,
    /// Batches re-queued for another attempt.
    pub retries: u64,
    /// Records failed by a purge (`Purged`).
    pub records_purged: u64,
    /// Metadata requests built.
    pub metadata_requests: u64,
    /// Connections asked for.
    pub connects: u64,
    /// Notices drained from producer threads.
    pub notices: u64,
    /// Batches completed successfully.
    pub batches_ok: u64,
    /// Batches failed.
    pub batches_failed: u64,
    /// Times the producer epoch was bumped.
    pub epoch_bumps: u64,
    /// Batches the broker refused as too large (MESSAGE_TOO_LARGE) that
    /// were split in two and sent again.
    pub batches_split: u64,
    /// Delivery callback invocations that panicked (caught; the first is
    /// logged).
    pub callback_panics: u64,
    /// SASL exchanges completed (first authentications and
    /// re-authentications).
    pub sasl_authentications: u64,
    /// SASL re-authentications started (KIP-368).
    pub sasl_reauthentications: u64,
    /// SASL authentications that failed.
    pub sasl_failures: u64,
    /// Connections closed after `connections.max.idle.ms` without a
    /// request or a response.
    pub idle_closes: u64,
}

/// Timer kinds in the deadline queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKey {
    Backoff(PartKey),
    Delivery(PartKey),
    Request(ConnId),
    Reconnect(Target),
    Metadata,
    ProducerId,
    /// The earliest `max.block.ms` deadline of an async sender.
    BlockDeadline,
    /// The periodic statistics callback (`statistics.interval.ms`).
    Statistics,
    /// Time to re-authenticate the connection (KIP-368).
    Reauth(ConnId),
    /// The broker's throttle of the connection ends (KIP-219).
    Throttle(ConnId),
    /// A node has waited `partitioner.availability.timeout.ms` with
    /// batches ready it could not take (`stall.rs`).
    NodeStall(i32),
    /// A transactional request's retry backoff ended (`transaction`).
    Txn,
}

/// Settings the core uses, derived from [`Config`].
#[derive(Debug)]
pub(crate) struct CoreConfig {
    pub(crate) client_id: String,
    pub(crate) acks: Acks,
    pub(crate) linger: Duration,
    pub(crate) max_request_size: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) retries: u32,
    pub(crate) retry: ExponentialBackoff,
    pub(crate) reconnect: ExponentialBackoff,
    pub(crate) connect_timeout: ConnectTimeout,
    pub(crate) delivery_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) metadata_max_age: Duration,
    pub(crate) metadata_max_idle: Duration,
    pub(crate) connections_max_idle: Option<Duration>,
    pub(crate) max_block: Duration,
    pub(crate) topic_metadata_propagation: Duration,
    /// `partitioner.availability.timeout.ms` when it applies (positive,
    /// adaptive partitioning on): see `stall.rs`.
    pub(crate) availability_timeout: Option<Duration>,
    pub(crate) idempotence: bool,
    pub(crate) bootstrap: Vec<String>,
}

/// The producer's I/O-thread state machine. Owned by one thread (the
/// driver's); producer threads talk to it through [`Shared`].
///
/// # Driving it
/// On every turn the driver: reports what happened (`handle_connected`,
/// `handle_connect_failed`, `handle_disconnected`, `handle_response`),
/// calls [`handle_wakeup`](Self::handle_wakeup), calls
/// [`handle_timeout`](Self::handle_timeout) if
/// [`poll_timeout`](Self::poll_timeout) is due, drains
/// [`poll_io`](Self::poll_io) then [`poll_transmit`](Self::poll_transmit)
/// until `None`, and sleeps until an I/O completion, a wake-up or the
/// `poll_timeout` deadline if [`prepare_park`](Self::prepare_park) returns
/// true.
pub struct ProducerCore {
    cfg: CoreConfig,
    shared: Arc<Shared>,
    callback: Option<DeliveryCallback>,
    /// The deadline heap, the linger FIFO and the block-deadline timer.
    timers: Timers,
    rng: SplitMix64,
    stats: CoreStats,

    /// Topics and partitions by id, the name index and the open set
    /// (private inside: see `part_table.rs`).
    topics: PartTable,

    /// Broker nodes and the work list (private inside: see `nodes.rs`).
    nodes: Nodes,

    /// Connections, bootstrap addresses, handshake and SASL queues,
    /// socket commands (private inside: see `conns.rs`).
    conns: Conns,
    /// SASL settings and state (`SASL_*` security protocols).
    sasl: Option<sasl::SaslState>,

    /// Every batch from its announcement to its final result, and the
    /// flush and close waiters (private inside: see `ledger.rs`).
    ledger: Ledger,
    meta: MetadataState,
    idem: Idempotence,
    /// With a `transactional.id`: the coordinator and the transaction
    /// (private inside: see `transaction.rs`).
    txn: Option<transaction::TxnCore>,

    /// Closing, finished, the fatal error: forward only.
    life: Lifecycle,

    notice_buf: Vec<Notice>,
    /// What the notices' creation times count from (`notice::Stamp`).
    notice_base: Instant,
    /// The flush generation of the last `Flush` or `Close` notice read:
    /// the generation of the batches announced after it (senders read
    /// `NoticeInner::flush_gen` under the same lock that orders the
    /// notices).
    notice_gen: u64,
    /// Batches announced by the `Opened` notices read so far this turn
    /// and not yet counted into the ledger (one ledger update per run of
    /// them, not one per batch: `handle_wakeup`).
    unannounced: u32,
    /// Nodes whose ready queue holds a partition a leader hint (KIP-951)
    /// moved away while a produce response was read; forwarded once per
    /// response (`forward_moved`), not once per hinted partition.
    hinted_away: Vec<i32>,
    /// Statistics settings, the periodic timer, callback counters.
    statistics: StatsState,
}

impl std::fmt::Debug for ProducerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerCore")
            .field("topics", &self.topics.len())
            .field("nodes", &self.nodes.len())
            .field("conns", &self.conns.len())
            .field("pending_batches", &self.ledger.pending())
            .field("closing", &self.life.is_closing())
            .field("finished", &self.life.is_finished())
            .finish()
    }
}

impl ProducerCore {
    /// Creates the core and the state shared with producer threads.
    /// Validates `config` ([`Config::validate`]).
    pub fn new(config: Config, now: Instant) -> Result<(ProducerCore, Arc<Shared>), ConfigError> {
        config.validate()?;
        let shared = Arc::new(Shared::new(&config));
        let cfg = CoreConfig {
            client_id: config.client_id.clone(),
            acks: config.acks,
            linger: config.linger,
            max_request_size: config.max_request_size,
            max_in_flight: config.max_in_flight,
            retries: config.retries,
            retry: ExponentialBackoff {
                initial: config.retry_backoff,
                max: config.retry_backoff_max,
                jitter: 0.2,
            },
            reconnect: ExponentialBackoff {
                initial: config.reconnect_backoff,
                max: config.reconnect_backoff_max,
                jitter: 0.2,
            },
            connect_timeout: ConnectTimeout {
                base: config.connect_timeout,
                max: config.connect_timeout_max,
            },
            delivery_timeout: config.delivery_timeout,
            request_timeout: config.request_timeout,
            metadata_max_age: config.metadata_max_age,
            metadata_max_idle: config.metadata_max_idle,
            connections_max_idle: config.connections_max_idle,
            max_block: config.max_block,
            topic_metadata_propagation: config.topic_metadata_propagation,
            availability_timeout: (config.partitioner_adaptive
                && !config.partitioner_availability_timeout.is_zero())
            .then_some(config.partitioner_availability_timeout),
            idempotence: config.enable_idempotence,
            bootstrap: config.bootstrap.clone(),
        };
        let bootstrap = cfg
            .bootstrap
            .iter()
            .map(|a| conn::BootEntry::new(a.clone()))
            .collect();
        let mut core = ProducerCore {
            idem: Idempotence::new(cfg.idempotence, config.transactional_id.is_some()),
            txn: config
                .transactional_id
                .as_deref()
                .map(|id| transaction::TxnCore::new(id, config.transaction_timeout)),
            cfg,
            shared: shared.clone(),
            callback: config.on_delivery.clone(),
            timers: Timers::new(),
            rng: SplitMix64::new(config.jitter_seed),
            stats: CoreStats::default(),
            topics: PartTable::default(),
            nodes: Nodes::default(),
            conns: Conns::new(bootstrap),
            sasl: config
                .security_protocol
                .uses_sasl()
                .then(|| config.sasl.clone().map(sasl::SaslState::new))
                .flatten(),
            ledger: Ledger::new(config.transactional_id.is_some()),
            meta: MetadataState::default(),
            life: Lifecycle::default(),
            notice_buf: Vec::new(),
            notice_base: now,
            notice_gen: 0,
            unannounced: 0,
            hinted_away: Vec::new(),
            statistics: StatsState::new(
                now,
                config.statistics_interval,
                config.on_statistics.clone(),
            ),
        };
        core.arm_statistics(now);
        // Learn the cluster at once: a metadata request (with no topics)
        // tells us the brokers; idempotence needs a producer id.
        core.request_metadata(now);
        Ok((core, shared))
    }

    /// The state shared with producer threads.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Counters of what the core did.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// Batches announced by producer threads and not completed yet.
    pub fn pending_batches(&self) -> u64 {
        self.ledger.pending()
    }

    /// Drains the notices producer threads left (new and sealed batches,
    /// topics needing metadata, flush and close). Call on every turn,
    /// after a wake-up and before polling.
    pub fn handle_wakeup(&mut self, now: Instant) {
        self.shared.notices.unparked();
        let mut buf = std::mem::take(&mut self.notice_buf);
        if let Some(base) = self.shared.notices.drain_into(&mut buf) {
            self.notice_base = base;
        }
        self.stats.notices += buf.len() as u64;
        let mut memory_wanted = false;
        for n in buf.drain(..) {
            match n {
                Notice::MemoryWanted => memory_wanted = true,
                Notice::Opened { .. } | Notice::Sealed { .. } | Notice::Compressed { .. } => {
                    self.handle_notice(now, n);
                }
                _ => {
                    // Every other notice may read the ledger or change the
                    // flush generation: the batches announced before it
                    // are counted first.
                    self.count_announced();
                    self.handle_notice(now, n);
                }
            }
        }
        self.count_announced();
        if memory_wanted {
            // After every notice of the turn: the batches announced after
            // the request (whose senders counted on it, see
            // `NoticeQueue::push_memory_wanted`) are covered too.
            self.expire_lingers_beyond(now);
        }
        self.notice_buf = buf;
        self.end_turn(now);
    }

    /// Counts the batches announced since the last call into the ledger,
    /// in the current flush generation (they were all announced in it:
    /// `Flush` and `Close` notices, which change it, count the ones before
    /// them first).
    fn count_announced(&mut self) {
        let n = std::mem::take(&mut self.unannounced);
        if n > 0 {
            self.ledger.announce(self.notice_gen, n);
        }
    }

    fn handle_notice(&mut self, now: Instant, n: Notice) {
        match n {
            Notice::TopicWanted { topic, seen } => self.topic_wanted(now, topic, seen),
            Notice::Opened {
                topic,
                partition,
                created,
            } => self.batch_opened(now, (topic, partition), created),
            Notice::Sealed { topic, partition } => self.batch_sealed((topic, partition)),
            Notice::Compressed { topic, partition } => self.batch_compressed((topic, partition)),
            Notice::Waiting { deadline } => {
                self.arm_block_deadline(crate::notice::unstamp(self.notice_base, deadline));
            }
            Notice::MemoryWanted => self.expire_lingers_beyond(now),
            Notice::Statistics(req) => self.answer_statistics(now, &req),
            Notice::Flush(req) => {
                let FlushRequest { gen, signal } = *req;
                self.notice_gen = gen;
                self.seal_all_open();
                self.ledger.add_flush(gen, signal);
            }
            Notice::Close(req) => {
                let FlushRequest { gen, signal } = *req;
                self.notice_gen = gen;
                self.life.begin_close();
                self.txn_close(now, gen);
                // Senders blocked waiting for metadata give up now, and
                // async senders waiting for memory see the close.
                self.shared.topics.wake_all();
                self.shared.pool.tasks.wake_all();
                self.seal_all_open();
                self.ledger.add_close(gen, signal);
            }
            Notice::Purge { signal } => {
                self.purge_buffered(now);
                signal.set();
            }
            Notice::Txn(n) => self.handle_txn_notice(now, *n),
        }
    }

    /// Runs every timer due at `now`. Call when `now >= poll_timeout()`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_lingers(now);
        loop {
            // The heap and the delivery queue in deadline order.
            let queued_first = match (self.timers.deliveries().peek(), self.timers.heap_peek()) {
                (Some(d), Some(h)) => d <= h,
                (d, _) => d.is_some(),
            };
            if queued_first {
                if let Some(pk) = self.pop_due_delivery(now) {
                    self.delivery_expired(now, pk);
                    continue;
                }
            }
            let Some(key) = self.timers.pop_due(now) else {
                break;
            };
            match key {
                TimerKey::Backoff(pk) => self.backoff_expired(pk),
                TimerKey::Delivery(pk) => self.delivery_expired(now, pk),
                TimerKey::Request(c) => self.request_timer(now, c),
                TimerKey::Reconnect(t) => self.reconnect_timer(now, t),
                TimerKey::Metadata => self.metadata_timer(),
                TimerKey::ProducerId => self.idem.timer_fired(),
                TimerKey::Statistics => self.statistics_timer(now),
                TimerKey::Reauth(c) => self.reauth_timer(now, c),
                TimerKey::Throttle(c) => self.throttle_timer(now, c),
                TimerKey::NodeStall(n) => self.node_stall_timer(now, n),
                TimerKey::Txn => self.txn_timer(),
                TimerKey::BlockDeadline => {
                    let next = [
                        self.shared.pool.tasks.expire(now),
                        self.shared.topics.tasks.expire(now),
                    ];
                    if let Some(next) = next.into_iter().flatten().min() {
                        self.arm_block_deadline(next);
                    }
                }
            }
        }
        self.end_turn(now);
    }

    /// Makes sure the block-deadline timer fires no later than `deadline`.
    fn arm_block_deadline(&mut self, deadline: Instant) {
        self.timers.arm_block_deadline(deadline);
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called: linger, retry backoff, request and delivery timeouts,
    /// reconnect backoff, metadata refresh. `None` when nothing is
    /// scheduled (only after close). Poll after every `handle_*` call.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The next socket operation to perform. Poll until `None` after the
    /// `handle_*` calls of a turn (and after `poll_transmit`, which may ask
    /// for connections).
    #[must_use]
    pub fn poll_io(&mut self) -> Option<IoCommand> {
        self.conns.pop_io()
    }

    /// Marks the I/O thread parked, so the next producer notice asks for a
    /// wake-up. Returns false if notices arrived meanwhile: do not sleep,
    /// run another turn. Call right before sleeping.
    #[must_use]
    pub fn prepare_park(&mut self) -> bool {
        self.shared.notices.prepare_park()
    }

    /// Starts close from the I/O thread (for example when the last producer
    /// handle is dropped): appends fail from now on, every open batch is
    /// sealed, and the core finishes once every record has its result.
    /// Same as [`Shared::begin_close`] followed by
    /// [`handle_wakeup`](Self::handle_wakeup).
    pub fn close(&mut self, now: Instant) -> crate::FlushHandle {
        let h = self.shared.begin_close();
        self.handle_wakeup(now);
        h
    }

    /// Whether close was requested (the core may still be delivering).
    pub fn is_closing(&self) -> bool {
        self.life.is_closing()
    }

    /// True once close was requested, every record has its final result and
    /// every connection was asked to close. The driver then exits.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.life.is_finished()
    }

    /// Fails everything still pending with [`DeliveryError::Aborted`] and
    /// finishes (a forced close, or the driver stopping on a fatal error).
    /// Rejects further appends. No record is left without a result.
    pub fn abort(&mut self, now: Instant, reason: &str) {
        let reason: Arc<str> = Arc::from(reason);
        let err = DeliveryError::Aborted {
            reason: reason.clone(),
            status: crate::delivery::MessageStatus::NotPersisted,
        };
        // Stop producer threads first, then collect what they queued.
        let ((), _) = self.shared.notices.with(|n| {
            if !n.closed {
                self.shared.notices.set_closed(n);
            }
        });
        self.handle_wakeup(now);
        self.shared.topics.wake_all();
        self.shared.pool.tasks.wake_all();
        self.life.set_fatal(err.clone());
        self.fail_everything(now, &err);
        self.life.begin_close();
        self.end_turn(now);
    }

    /// How every turn of the I/O thread ends: what finished batches leave
    /// is handed back to the sending threads (once per turn, not per
    /// batch: see `memory`), flushes whose batches are all done complete,
    /// and a closing core with nothing left finishes.
    pub(crate) fn end_turn(&mut self, now: Instant) {
        self.ledger.hand_back(&self.shared);
        self.ledger.check_flushes();
        self.check_finished(now);
    }

    fn check_finished(&mut self, now: Instant) {
        if !self.life.is_closing() || self.life.is_finished() || self.ledger.pending() > 0 {
            return;
        }
        if self.ledger.flushes_waiting() || !self.txn_settled() {
            return;
        }
        // Every record has its result: close all connections and stop.
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            self.forget_conn(id);
            self.conns.push_close(id);
        }
        self.timers.clear();
        for t in &mut self.topics {
            t.clear_timers();
        }
        self.meta = MetadataState::default();
        self.nodes.clear_work();
        self.life.finish();
        self.statistics.disarm();
        self.keep_final_statistics(now);
        // No batch will take a spare buffer any more: their charge goes
        // back, so a closed producer holds nothing of `buffer.memory`.
        self.ledger.release_unwritten(&self.shared);
        self.shared.pool.drop_spares();
        self.ledger.release_close_waiters();
        self.shared.txn_closed();
        if let Some(t) = self.txn.as_mut() {
            t.fail_offsets(&crate::TransactionError::Closed);
        }
        // The driver reads no notice from now on: flushes, purges and
        // closes asked for since this turn's notices were read complete
        // here (every record has its result), later ones at once
        // (`Shared::begin_flush`).
        let (unread, _) = self.shared.notices.with(|n| {
            n.finished = true;
            std::mem::take(&mut n.list)
        });
        for n in unread {
            match n {
                Notice::Flush(req) | Notice::Close(req) => req.signal.set(),
                Notice::Purge { signal } => signal.set(),
                Notice::Txn(n) => {
                    if let crate::notice::TxnNotice::Init(op)
                    | crate::notice::TxnNotice::Offsets { op, .. }
                    | crate::notice::TxnNotice::End { op, .. } = *n
                    {
                        crate::txn::settle(&op, Err(crate::TransactionError::Closed));
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
