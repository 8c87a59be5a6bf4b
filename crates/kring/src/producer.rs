//! The public producer: `send` from any thread, results as futures,
//! blocking waits or a producer-level callback; `flush`, `close`, and a
//! `Drop` that never loses a record silently.
//!
//! The producer is the two halves of `kring-core` joined by the io_uring
//! driver: producer threads call [`Shared`]'s append (no I/O, no lock shared
//! between partitions), and the I/O thread owns the [`ProducerCore`]. The
//! only thing a producer thread does for the I/O thread is write its
//! eventfd, and only when the core says it is parked and the work is new.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kring_core::partitioner::Partitioner;
use kring_core::{
    AppendOutcome, DeliveryCallback, DeliveryReport, FlushHandle, PartitionerChoice, ProducerCore,
    RecordRef, Shared, Statistics, StatisticsCallback,
};

use crate::config::{IoBackend, ProducerConfig};
use crate::delivery::DeliveryFuture;
use crate::driver::prefetch;
use crate::driver::{Driver, DriverConfig, DriverMetrics, IoWaker, SocketOptions};
use crate::error::BuildError;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::SendError;

mod transaction;
mod wall_clock;
use wall_clock::WallClock;

/// Builds a [`Producer`]. Every setter of [`ProducerConfig`] is available
/// here too (`Producer::builder().bootstrap("127.0.0.1:9092").linger(..)`).
#[derive(Clone, Default)]
pub struct ProducerBuilder {
    pub(crate) config: ProducerConfig,
    on_delivery: Option<DeliveryCallback>,
    on_statistics: Option<StatisticsCallback>,
    custom_partitioner: Option<Arc<dyn Partitioner>>,
    /// Test hook: the I/O thread's settings (ring size, fault injection);
    /// socket options and TLS still come from the configuration, and so
    /// do the connect timeouts (the core puts them in each connect
    /// command).
    #[cfg(test)]
    pub(crate) driver: Option<DriverConfig>,
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("on_delivery", &self.on_delivery.is_some())
            .field("on_statistics", &self.on_statistics.is_some())
            .field("custom_partitioner", &self.custom_partitioner)
            .finish()
    }
}

/// The TLS connector for `security.protocol=SSL`: files are read and
/// checked here, so a bad certificate or key fails `build`.
#[cfg(feature = "tls")]
fn tls_connector(
    config: &ProducerConfig,
) -> Result<Option<crate::driver::tls::TlsConnector>, crate::ConfigError> {
    if !config.get_security_protocol().uses_tls() {
        return Ok(None);
    }
    crate::driver::tls::TlsConnector::new(config.ssl()).map(Some)
}

/// Without the `tls` feature, validation already refused TLS.
#[cfg(not(feature = "tls"))]
fn tls_connector(
    _config: &ProducerConfig,
) -> Result<Option<crate::driver::tls::TlsConnector>, crate::ConfigError> {
    Ok(None)
}

impl ProducerBuilder {
    #[cfg(test)]
    fn driver_config(&self) -> DriverConfig {
        self.driver.clone().unwrap_or_default()
    }

    #[cfg(not(test))]
    fn driver_config(&self) -> DriverConfig {
        DriverConfig::default()
    }

    /// Start from a whole configuration (for example one made with
    /// [`ProducerConfig::from_properties`]).
    #[must_use]
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.config = config;
        self
    }

    /// A callback that receives the final result of *every* record (however
    /// it was sent), once, on the I/O thread when its batch completes. It
    /// must be quick and must not block: it runs on the thread that drives
    /// every broker connection. This is how [`Producer::try_send`] learns
    /// results without a handle per record: each [`DeliveryReport`] carries
    /// the record's topic, partition, offset or error, and the
    /// [`Record::context`](crate::Record#structfield.context) it was sent
    /// with.
    ///
    /// It runs fenced: if it panics, the panic is caught at that call. The
    /// record's result stands (its [`DeliveryFuture`] resolves with it), the
    /// callback is still called for every other record, and the I/O thread,
    /// later sends and [`close`](Producer::close) are unaffected. The first
    /// panic is logged as a `tracing` warning; all are counted
    /// ([`Metrics::callback_panics`](crate::Metrics::callback_panics)). The
    /// process's panic hook still runs for each one (by default it prints
    /// to stderr).
    #[must_use]
    pub fn on_delivery(
        mut self,
        callback: impl Fn(&DeliveryReport<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delivery = Some(Arc::new(callback));
        self
    }

    /// A callback that receives a [`Statistics`] snapshot every
    /// [`statistics_interval`](ProducerBuilder::statistics_interval)
    /// (`statistics.interval.ms`), on the I/O thread (a deadline in its
    /// timer queue; no extra thread). It must be quick and must not block,
    /// like [`on_delivery`](ProducerBuilder::on_delivery). Without an
    /// interval it is never called. For librdkafka's JSON form call
    /// [`Statistics::to_json`].
    ///
    /// It runs fenced: a panic is caught, logged once as a `tracing`
    /// warning and counted
    /// ([`TotalStatistics::statistics_callback_panics`](crate::TotalStatistics::statistics_callback_panics));
    /// the producer goes on and the callback is called again at the next
    /// interval.
    #[must_use]
    pub fn on_statistics(mut self, callback: impl Fn(&Statistics) + Send + Sync + 'static) -> Self {
        self.on_statistics = Some(Arc::new(callback));
        self
    }

    /// Choose partitions with `partitioner` instead of the configured
    /// [`PartitionerKind`](crate::PartitionerKind).
    #[must_use]
    pub fn custom_partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.custom_partitioner = Some(partitioner);
        self
    }

    /// Validate the configuration, start the I/O thread and return the
    /// producer. Connecting to the brokers starts at once, in the
    /// background; `build` does not wait for it.
    pub fn build(self) -> Result<Producer, BuildError> {
        let driver_config = self.driver_config();
        let config = self.config.validate()?;
        let tls = tls_connector(&config)?;
        let mut core_config = config.to_core(
            self.custom_partitioner.map(PartitionerChoice::Custom),
            self.on_delivery,
        );
        // A token endpoint: the first token now, refreshed in the
        // background (`crate::oauth`); the core reads the latest.
        if let (Some(oidc), Some(sasl)) = (config.oidc_settings(), core_config.sasl.as_mut()) {
            sasl.token_provider = Some(crate::oauth::start(oidc).map_err(BuildError::Login)?);
        }
        core_config.on_statistics = self.on_statistics;
        let (core, shared) = ProducerCore::new(core_config, Instant::now())?;
        let driver = Driver::start(
            core,
            DriverConfig {
                socket_options: SocketOptions {
                    send: config.get_send_buffer_bytes(),
                    receive: config.get_receive_buffer_bytes(),
                    keepalive: config.get_socket_keepalive(),
                },
                tls,
                backend: io_backend(&config, &driver_config),
                ..driver_config
            },
        )?;
        // A sender that must block inside `append` (for metadata or memory)
        // wakes the I/O thread itself, before blocking.
        let waker = driver.waker().clone();
        let io_backend = driver.backend();
        shared.set_io_waker(Arc::new(move || waker.wake()));
        // `max.block.ms` bounds a whole send: after blocking once, a sender
        // measures what is left of its budget before blocking again.
        shared.set_clock(Instant::now);
        let compressors = Compressors::start(&shared, &config);
        tracing::debug!(bootstrap = ?config.bootstrap_servers(), "producer started");
        Ok(Producer {
            shared,
            io_thread: driver.thread_id(),
            waker: driver.waker().clone(),
            metrics: Arc::clone(driver.metrics()),
            driver: Mutex::new(driver),
            max_block: config.get_max_block(),
            close_bound: config.get_delivery_timeout() + config.get_request_timeout(),
            close_state: Mutex::new(None),
            callback_close: Mutex::new(None),
            clock: WallClock::start(),
            io_backend,
            compressors,
        })
    }
}

/// Batches the I/O thread seals of at least this many uncompressed bytes
/// may go to a compression thread: any size (small ones are covered by
/// the per-request budget below).
const OFFLOAD_MIN_BYTES: usize = 0;

/// The I/O thread still compresses lingered batches itself up to this many
/// uncompressed bytes per second (a few percent of a core), in bursts of
/// up to [`INLINE_BURST`]; only the rest goes to compression threads. At
/// low rates nothing is handed off, so no hand-off latency is added.
const INLINE_BYTES_PER_SEC: usize = 4 << 20;

/// See [`INLINE_BYTES_PER_SEC`].
const INLINE_BURST: usize = 64 << 10;

/// Whether sending threads blocked for `buffer.memory` compress lingered
/// batches when there are no compression threads
/// ([`Shared::enable_compression_help`](kring_core::Shared::enable_compression_help)):
/// where compressing is most of a lingered batch's cost. With gzip it
/// doubled msgs/s at 10,000 partitions for less CPU per message (measured
/// at level 6, the default, and 1, the fastest; every level is on). With
/// zstd it pays from level 9: at 9, 1.2-1.9× msgs/s
/// for up to a fifth more CPU per message, at 12 1.7-2.0× for the same
/// CPU; at the default level (3) msgs/s stayed the same for a third more
/// CPU per message (the I/O thread, relieved, took batches sooner and
/// smaller), and at 6 it was mixed. lz4 and snappy cost less still.
/// BENCHMARKS.md, "Compression and producer threads", rounds 2 and 3.
pub(crate) fn blocked_senders_compress(config: &ProducerConfig) -> bool {
    /// The lowest zstd level at which helping paid (measured: 3, 6, 9, 12).
    const ZSTD_FROM_LEVEL: i32 = 9;
    match config.get_compression() {
        kring_core::Compression::Gzip => true,
        kring_core::Compression::Zstd => config
            .core_compression_level()
            .is_some_and(|l| l >= ZSTD_FROM_LEVEL),
        _ => false,
    }
}

/// The compression threads (`compression.threads`): they compress the
/// batches the I/O thread seals (lingered, flushed, closed), see
/// `kring_core::Shared::enable_compression_offload`. Stopped when the
/// producer closes; the I/O thread compresses whatever comes after.
#[derive(Debug)]
struct Compressors {
    shared: Arc<Shared>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Compressors {
    fn start(shared: &Arc<Shared>, config: &ProducerConfig) -> Compressors {
        let n = if config.get_compression() == kring_core::Compression::None {
            0
        } else {
            config.get_compression_threads()
        };
        let mut threads = Vec::new();
        for i in 0..n {
            let s = Arc::clone(shared);
            let spawned = std::thread::Builder::new()
                .name(format!("kring-zip-{i}"))
                .spawn(move || {
                    while s.wait_for_compression_jobs() {
                        s.run_compression_jobs();
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Fewer threads (or none: the I/O thread compresses).
                    tracing::warn!(error = %e, "could not start a compression thread");
                    break;
                }
            }
        }
        if !threads.is_empty() {
            shared.enable_compression_offload(
                OFFLOAD_MIN_BYTES,
                INLINE_BURST,
                INLINE_BYTES_PER_SEC,
            );
        } else if blocked_senders_compress(config) {
            // No compression threads: sending threads blocked for
            // `buffer.memory` compress lingered batches instead of
            // sleeping.
            shared.enable_compression_help(OFFLOAD_MIN_BYTES, INLINE_BURST, INLINE_BYTES_PER_SEC);
        }
        Compressors {
            shared: Arc::clone(shared),
            threads: Mutex::new(threads),
        }
    }

    /// Stops the threads once they have compressed what was handed to
    /// them, and waits for them.
    fn stop(&self) {
        self.shared.stop_compression_workers();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Compressors {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The core's view of `record`; its timestamp from `now_ms` when the
/// record has none (a closure, so a timestamped record reads no clock).
#[inline(always)]
fn record_ref_with<'r>(record: &Record<'r>, now_ms: impl FnOnce() -> i64) -> RecordRef<'r> {
    RecordRef {
        topic: record.topic,
        partition: record.partition,
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp_ms: record.timestamp.unwrap_or_else(now_ms),
        context: record.context,
    }
}

/// The backend to start: the configured one; in this crate's tests an
/// `auto` left at its default yields to the test driver settings (which
/// follow `KRING_TEST_IO_BACKEND`).
#[cfg(test)]
fn io_backend(config: &ProducerConfig, driver: &DriverConfig) -> IoBackend {
    match config.get_io_backend() {
        IoBackend::Auto => driver.backend,
        b => b,
    }
}

#[cfg(not(test))]
fn io_backend(config: &ProducerConfig, _: &DriverConfig) -> IoBackend {
    config.get_io_backend()
}

/// A Kafka producer. Share it between threads by reference or in an `Arc`;
/// `send` never performs I/O: it encodes the record into its partition's
/// open batch and returns.
///
/// # Drop
/// Dropping a producer closes it ([`close`](Producer::close)): new records
/// are refused, every buffered record is sent at once (ignoring
/// `linger.ms`), and the drop waits until every record has its final
/// result. That wait is bounded by `delivery.timeout.ms` +
/// `request.timeout.ms`, by which time the core has given every record a
/// result anyway; should anything still be pending then, it fails with
/// [`DeliveryError::Aborted`](crate::DeliveryError::Aborted). No record is
/// ever left without a result. Call
/// [`close_timeout`](Producer::close_timeout) first to choose a shorter
/// bound.
pub struct Producer {
    shared: Arc<Shared>,
    driver: Mutex<Driver>,
    waker: IoWaker,
    metrics: Arc<DriverMetrics>,
    max_block: Duration,
    close_bound: Duration,
    /// `None` until closed; then whether every record got its result.
    close_state: Mutex<Option<bool>>,
    /// The close a callback started (it could not wait for it): a later
    /// close waits for that one.
    callback_close: Mutex<Option<FlushHandle>>,
    /// The I/O thread: callbacks run there, and must not wait for it.
    io_thread: Option<std::thread::ThreadId>,
    /// Timestamps for records sent without one (see [`wall_clock`]).
    clock: WallClock,
    /// The backend the I/O thread runs on.
    io_backend: IoBackend,
    /// Threads compressing the batches the I/O thread seals.
    compressors: Compressors,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("closed", &self.shared.is_closed())
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// The I/O backend this producer runs on: [`IoBackend::IoUring`] or
    /// [`IoBackend::Epoll`] (with `io.backend=auto`, whichever the kernel
    /// allowed), never `Auto`.
    pub fn io_backend(&self) -> IoBackend {
        self.io_backend
    }

    /// A builder with the Java client's defaults.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// A producer with this configuration.
    pub fn new(config: ProducerConfig) -> Result<Producer, BuildError> {
        Producer::builder().config(config).build()
    }

    /// A producer configured with Kafka property names and string values,
    /// e.g. `[("bootstrap.servers", "127.0.0.1:9092"), ("linger.ms", "10")]`
    /// (see [`ProducerConfig::from_properties`]).
    pub fn from_properties<I, K, V>(properties: I) -> Result<Producer, BuildError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Producer::new(ProducerConfig::from_properties(properties)?)
    }

    /// The core's view of `record`, timestamped from `now` if it has no
    /// timestamp.
    fn record_ref<'r>(&self, record: &Record<'r>, now: Instant) -> RecordRef<'r> {
        record_ref_with(record, || self.clock.unix_ms(now))
    }

    /// [`record_ref`](Self::record_ref) timestamped from
    /// [`WallClock::now_ms`] (usually no clock read, see `wall_clock`).
    #[inline(always)]
    fn record_ref_now<'r>(&self, record: &Record<'r>) -> RecordRef<'r> {
        record_ref_with(record, || self.clock.now_ms())
    }

    /// What every send path does after an append: wakes the I/O thread if
    /// the append asks for it, and prefetches the lines the outcome names
    /// (`driver::prefetch`).
    #[inline(always)]
    fn appended<D>(&self, o: &AppendOutcome<D>) {
        if o.wake {
            self.waker.wake();
        }
        prefetch::after_append(o);
    }

    /// `now + max.block.ms`.
    fn block_deadline(&self, now: Instant) -> Instant {
        deadline_after(now, self.max_block)
    }

    /// [`send`](Self::send) beyond [`Shared::append_to_open`]: the
    /// general append, with the `Instant` and the block deadline that only
    /// it needs.
    #[inline(never)]
    fn send_general(&self, rec: RecordRef<'_>) -> Result<DeliveryFuture, SendError> {
        let now = self.clock.instant(self.clock.read());
        let o = self
            .shared
            .append_general(now, rec, self.block_deadline(now))?;
        self.appended(&o);
        Ok(DeliveryFuture::new(o.delivery, o.partition))
    }

    /// Send a record. Returns once it is encoded into a batch; blocks only
    /// for the topic's first metadata, for an explicit partition the topic
    /// had but its latest metadata lacks, or while `buffer.memory` is full,
    /// at most `max.block.ms` in total (a send that waits for several
    /// shares one budget). The returned future resolves with the record's
    /// final result.
    ///
    /// Fails at once, without blocking, for a record too large for
    /// `max.request.size` or `buffer.memory`, and for a partition the topic
    /// never had ([`SendError::InvalidPartition`]: an explicit
    /// [`Record::partition`] beyond every count known — this also asks for
    /// fresh metadata, so a topic that grew is seen by later sends — or a
    /// custom [`Partitioner`]'s answer out of range). While the topic's
    /// partition count is not known yet, an explicit partition waits for
    /// the metadata (within `max.block.ms`) and is then decided. An
    /// explicit partition the topic had but its latest metadata lacks (the
    /// topic was deleted and created again with fewer partitions, or a
    /// broker lags behind a partition increase) waits, as the Java client
    /// does, for metadata listing it, and fails with
    /// [`SendError::InvalidPartition`] at `max.block.ms` without. Keys and
    /// the keyless sticky choice use the partitions the latest metadata
    /// lists. A custom
    /// partitioner runs fenced: if it panics, this send fails with
    /// [`SendError::PartitionerPanicked`].
    pub fn send(&self, record: Record<'_>) -> Result<DeliveryFuture, SendError> {
        // The record's timestamp, if it has none, usually without a clock
        // read (see `wall_clock`).
        let rec = self.record_ref_now(&record);
        // Nearly every record goes into an open batch with room: the
        // `Instant` and the block deadline are made only for the others,
        // and the handle goes straight into the future.
        match self.shared.append_to_open(&rec) {
            Some(o) => {
                self.appended(&o);
                Ok(DeliveryFuture::new(o.delivery, o.partition))
            }
            None => self.send_general(rec),
        }
    }

    /// Send a record whose result only the
    /// [`on_delivery`](ProducerBuilder::on_delivery) callback needs: like
    /// [`send`](Producer::send) (it blocks, and fails, in the same cases),
    /// but it returns no handle. librdkafka's `produce` and the Java
    /// client's `send(record, callback)` are used this way.
    ///
    /// The result goes to the callback, if one was set, with the record's
    /// [`Record::context`] to tell records apart; without one it is not
    /// observed (as with a dropped [`DeliveryFuture`]).
    /// [`flush`](Producer::flush) still waits for it.
    ///
    /// Cheaper than `send` followed by dropping the handle: a handle
    /// refers to its batch's completion, which costs two atomic
    /// reference-count changes per record and one completion per batch,
    /// each a cache miss when records go to many partitions. A batch whose
    /// records all came through `produce` (or
    /// [`try_send`](Producer::try_send)) has no completion at all.
    pub fn produce(&self, record: Record<'_>) -> Result<(), SendError> {
        let rec = self.record_ref_now(&record);
        match self.shared.produce_to_open(&rec) {
            Some(o) => {
                self.appended(&o);
                Ok(())
            }
            None => self.produce_general(rec),
        }
    }

    /// [`produce`](Self::produce) beyond [`Shared::produce_to_open`], as
    /// [`send_general`](Self::send_general) is for `send`.
    #[inline(never)]
    fn produce_general(&self, rec: RecordRef<'_>) -> Result<(), SendError> {
        let now = self.clock.instant(self.clock.read());
        let o = self
            .shared
            .produce_general(now, rec, self.block_deadline(now))?;
        self.appended(&o);
        Ok(())
    }

    /// Send a record from async code: like [`send`](Producer::send), but
    /// where `send` would block (the topic's first metadata, or
    /// `buffer.memory` full) the returned future yields instead, and is
    /// woken by the I/O thread when metadata arrives, memory is released,
    /// the producer closes, or `max.block.ms` (counted from the first poll)
    /// passes. At that deadline it fails with the error `send` gives then
    /// ([`SendError::MetadataTimeout`] or [`SendError::BufferFull`]). No
    /// executor timer is involved, so it works under any runtime (tokio,
    /// smol, `futures::executor`, ...) and never blocks the thread that
    /// polls it. Records that need no wait are appended on the first poll,
    /// at the cost of `send`.
    ///
    /// It resolves to the record's [`DeliveryFuture`] once the record is in
    /// a batch, so a task can queue many records before awaiting any
    /// result: `producer.send_async(rec).await?.await?` waits for both.
    /// Dropping the future before it resolves cancels the send (nothing
    /// was queued). Fails at once for the same reasons as `send`
    /// (too large, a partition the topic is known not to have, closed).
    pub fn send_async<'p, 'r>(&'p self, record: Record<'r>) -> SendFuture<'p, 'r> {
        SendFuture(AsyncSend::new(self, record))
    }

    /// Send a record from async code whose result only the
    /// [`on_delivery`](ProducerBuilder::on_delivery) callback needs: what
    /// [`produce`](Producer::produce) is to [`send`](Producer::send),
    /// this is to [`send_async`](Producer::send_async). It yields where
    /// `produce` would block and fails where it would fail (at
    /// `max.block.ms` too), and resolves to `()` once the record is in a
    /// batch; its result goes to the callback.
    pub fn produce_async<'p, 'r>(&'p self, record: Record<'r>) -> ProduceFuture<'p, 'r> {
        ProduceFuture(AsyncSend::new(self, record))
    }

    /// Send a record without ever blocking: fails at once where
    /// [`send`](Producer::send) would wait — with
    /// [`SendError::BufferFull`] (`waited` zero) while `buffer.memory` is
    /// full (the lingering batches are sent now to free it, as for a
    /// blocked `send`, so retrying shortly succeeds once they complete),
    /// or [`SendError::NoMetadataYet`] while the topic's partitions
    /// are not known (the metadata is requested, so retrying shortly
    /// succeeds once it arrives). Otherwise like `send`, including an
    /// immediate [`SendError::InvalidPartition`].
    ///
    /// It returns no handle: the record's result goes to the
    /// [`on_delivery`](ProducerBuilder::on_delivery) callback if one was
    /// set (with the record's [`Record::context`] to tell records apart),
    /// and is otherwise not observed (as with a dropped
    /// [`DeliveryFuture`]); [`flush`](Producer::flush) still waits for it.
    /// For the callback path with blocking back-pressure instead, use
    /// [`produce`](Producer::produce).
    pub fn try_send(&self, record: Record<'_>) -> Result<(), SendError> {
        // Not through `produce`'s fast path: a second caller of it made
        // the compiler take it out of line, 32 instructions more per
        // `produce` (BENCHMARKS.md, round 6).
        let now = Instant::now();
        let rec = self.record_ref(&record, now);
        let outcome = self.shared.try_produce_now(now, rec)?;
        self.appended(&outcome);
        Ok(())
    }

    /// Send every buffered record now (ignoring `linger.ms`) and wait until
    /// every record sent before this call has its final result.
    ///
    /// Inside a callback (which runs on the I/O thread, the thread that
    /// completes the flush) it starts the flush and returns without
    /// waiting, logging an error: waiting there would never end.
    pub fn flush(&self) {
        let h = self.begin_flush();
        self.wait_io(&h.0, None);
    }

    /// Like [`flush`](Producer::flush), giving up waiting after `timeout`
    /// (the records are still sent); `true` when everything completed.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        let h = self.begin_flush();
        self.wait_io(&h.0, Some(timeout))
    }

    /// Start a flush without waiting: the handle completes (blocking
    /// `wait`, or as a future) when every record sent before this call has
    /// its final result.
    pub fn begin_flush(&self) -> crate::FlushHandle {
        let h = self.shared.begin_flush();
        if h.wake {
            self.waker.wake();
        }
        crate::FlushHandle::new(h)
    }

    /// Purge: fail every record still buffered — appended but not yet in a
    /// request — with [`DeliveryError::Purged`](crate::DeliveryError::Purged)
    /// (never sent, so not persisted), release its buffer memory, and wait
    /// until that is done. Every such record gets exactly that one result
    /// (its future resolves, the delivery callback is called). librdkafka's
    /// `rd_kafka_purge` with `RD_KAFKA_PURGE_F_QUEUE`; the Java client has
    /// no equivalent.
    ///
    /// Records already on the wire, or waiting to be retried after an
    /// attempt, are not purged: they complete as usual. (Such a record may
    /// already be in the log, and with idempotence it holds a sequence
    /// number the partition's later records follow; only sending it again
    /// keeps order and exactly-once.) Buffered records have no sequence
    /// yet, so purging them leaves no gap. The producer stays usable:
    /// records sent after `purge` returns are delivered as usual. Records
    /// sent concurrently with it, from other threads, may or may not be
    /// purged.
    ///
    /// Returns `false` only if the producer's I/O thread has stopped
    /// without finishing, or when called inside a callback (see
    /// [`flush`](Producer::flush)). After [`close`](Producer::close)
    /// nothing is buffered, and it returns `true` at once.
    pub fn purge(&self) -> bool {
        let h = self.begin_purge();
        self.wait_io(&h, None)
    }

    /// Start a [`purge`](Producer::purge) without waiting: the handle
    /// completes (blocking `wait`, or as a future) once every record
    /// buffered when the I/O thread took the request has failed with
    /// `Purged`.
    pub fn begin_purge(&self) -> FlushHandle {
        let h = self.shared.begin_purge();
        if h.wake {
            self.waker.wake();
        }
        h
    }

    /// Waits for `h`, up to `timeout`, returning early if the I/O thread
    /// has exited (then nobody will complete it). Returns whether it
    /// completed.
    fn wait_io(&self, h: &FlushHandle, timeout: Option<Duration>) -> bool {
        // The slice only bounds how late an I/O thread that died is noticed;
        // a live one completes the handle, which wakes this thread at once.
        const SLICE: Duration = Duration::from_secs(1);
        if self.on_io_thread() {
            // Called from a callback: the I/O thread completes the handle
            // only after the callback returns, so waiting here would wait
            // for itself (the Java client's KAFKA-10790; since Kafka 4.0
            // its `flush` refuses there too). The work was requested.
            if !h.is_done() {
                tracing::error!(
                    "flush, purge or close called inside a callback (on the I/O thread): \
                     not waiting for it, which would wait for this very thread"
                );
            }
            return h.is_done();
        }
        let start = Instant::now();
        loop {
            // After close (or a failure) nobody completes a new handle.
            // Exited first, then done: an I/O thread that completes the
            // handle and exits between the two reads must not look like
            // one that died without completing it.
            if self.io_thread_exited() && !h.is_done() {
                return false;
            }
            let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
            if h.wait_timeout(left.map_or(SLICE, |l| l.min(SLICE))) {
                return true;
            }
            if left.is_some_and(|l| l <= SLICE) {
                return h.is_done();
            }
        }
    }

    /// Whether the caller runs on the I/O thread (inside a callback),
    /// which must never wait for the I/O thread.
    fn on_io_thread(&self) -> bool {
        self.io_thread == Some(std::thread::current().id())
    }

    fn io_thread_exited(&self) -> bool {
        self.driver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .has_exited()
    }

    /// Close: refuse new records, send every buffered one now, wait for all
    /// results and stop the I/O thread. Waits at most `delivery.timeout.ms`
    /// \+ `request.timeout.ms` (see [Drop](Producer#drop)). Returns `true`
    /// when every record got its result without being aborted.
    pub fn close(&self) -> bool {
        self.close_timeout(self.close_bound)
    }

    /// Close, waiting at most `timeout` for results; records still pending
    /// then fail with [`DeliveryError::Aborted`](crate::DeliveryError::Aborted).
    /// Returns `true` when every record got its result within `timeout`.
    /// Closing again (or concurrently) waits for the first close and
    /// returns its outcome.
    ///
    /// Called inside a callback (on the I/O thread, which cannot wait for
    /// itself) it only starts the close and returns at once, `false` (as
    /// the Java client overrides the timeout to zero there); the I/O
    /// thread goes on delivering what is buffered once the callback
    /// returns, and a later `close` from another thread waits for that.
    pub fn close_timeout(&self, timeout: Duration) -> bool {
        if self.on_io_thread() {
            let h = self.shared.begin_close();
            if h.wake {
                self.waker.wake();
            }
            let done = self.wait_io(&h, Some(Duration::ZERO));
            self.callback_close
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(h);
            return done;
        }
        let mut state = self.close_state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = *state {
            return done;
        }
        let start = Instant::now();
        // The close a callback started, if one did: the I/O thread may have
        // finished it and exited already, and would settle no new one.
        let started = self
            .callback_close
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let h = started.unwrap_or_else(|| self.shared.begin_close());
        if h.wake {
            self.waker.wake();
        }
        let completed = self.wait_io(&h, Some(timeout));
        let mut driver = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        if !completed {
            tracing::warn!(
                ?timeout,
                "close timed out; failing the records still pending"
            );
            driver.stop();
        }
        let left = timeout
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(1));
        if !driver.join_timeout(left) {
            driver.stop();
            driver.join_timeout(Duration::from_secs(10));
        }
        self.compressors.stop();
        *state = Some(completed);
        completed
    }

    /// Waits up to `timeout` for `topic`'s metadata without sending
    /// anything (asking the brokers for it if needed) and returns its
    /// partition count, like the Java client's `partitionsFor`. Fails with
    /// the error a [`send`](Producer::send) to the topic would give: after
    /// `timeout`, [`SendError::MetadataTimeout`] carrying the last cause
    /// (for example connection refused, as a typed
    /// [`LastError`](crate::LastError)); [`SendError::TopicError`] when the
    /// brokers refuse the topic. Use it to fail fast when no broker
    /// answers: `kring produce -m` does.
    pub fn wait_for_metadata(&self, topic: &str, timeout: Duration) -> Result<u32, SendError> {
        let now = Instant::now();
        self.shared
            .wait_for_metadata(now, topic, deadline_after(now, timeout))
    }

    /// Partitions of `topic` its latest metadata lists, if its metadata is
    /// known to this producer (after a first `send` to it).
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.shared.partition_count(topic)
    }

    /// The producer's counters.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(&self.metrics, &self.shared)
    }

    /// A snapshot of the producer's statistics: per broker, per topic and
    /// partition, and totals (see [`Statistics`]).
    ///
    /// The I/O thread builds it between two turns of its loop (this call
    /// asks with a notice and waits for the answer, typically microseconds;
    /// building it visits every partition). Nothing is gathered for it on
    /// the send path: the counters are the I/O thread's own. After
    /// [`close`](Producer::close) it returns the final snapshot, taken when
    /// the producer stopped, if statistics were used before (else, as when
    /// the I/O thread is gone for another reason, a snapshot with only the
    /// buffer memory totals). Called from a callback (which runs on the I/O
    /// thread, which cannot answer while it runs the callback) it returns
    /// that same buffer-only snapshot at once instead of waiting forever;
    /// use [`on_statistics`](ProducerBuilder::on_statistics) there.
    pub fn statistics(&self) -> Statistics {
        const SLICE: Duration = Duration::from_millis(100);
        if let Some(s) = self.shared.final_statistics() {
            return s;
        }
        if self.io_thread == Some(std::thread::current().id()) {
            tracing::debug!("Producer::statistics called on the I/O thread (from a callback): it cannot wait for itself");
            return Statistics::unavailable(&self.shared);
        }
        let (req, wake) = self.shared.request_statistics();
        if wake {
            self.waker.wake();
        }
        loop {
            if let Some(s) = req.wait_timeout(SLICE) {
                return s;
            }
            if self.io_thread_exited() {
                return req
                    .try_take()
                    .or_else(|| self.shared.final_statistics())
                    .unwrap_or_else(|| Statistics::unavailable(&self.shared));
            }
        }
    }
}

/// What [`SendFuture`] and [`ProduceFuture`] share: the record, and from
/// the first poll the send's clock reading (timestamp, start of
/// `max.block.ms`) and the core's pending append.
struct AsyncSend<'p, 'r> {
    producer: &'p Producer,
    record: Record<'r>,
    state: Option<(Instant, kring_core::AsyncAppend<'p>)>,
    done: bool,
}

impl<'p, 'r> AsyncSend<'p, 'r> {
    fn new(producer: &'p Producer, record: Record<'r>) -> Self {
        AsyncSend {
            producer,
            record,
            state: None,
            done: false,
        }
    }

    /// Polls the append with `poll` (the core's `poll_append` or
    /// `poll_produce`); wakes the I/O thread when the append asks for it.
    fn poll<D>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        poll: impl FnOnce(
            &mut kring_core::AsyncAppend<'p>,
            Instant,
            &RecordRef<'_>,
            &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<AppendOutcome<D>, SendError>>,
    ) -> std::task::Poll<Result<AppendOutcome<D>, SendError>> {
        // As for an `async fn`: polling again after completion is a bug of
        // the caller (it would send the record twice).
        assert!(!self.done, "a send future polled after completion");
        let p = self.producer;
        let now = Instant::now();
        let (start, append) = self
            .state
            .get_or_insert_with(|| (now, p.shared.append_async(now, p.block_deadline(now))));
        let rec = p.record_ref(&self.record, *start);
        let r = std::task::ready!(poll(append, now, &rec, cx));
        self.state = None;
        self.done = true;
        if let Ok(o) = &r {
            p.appended(o);
        }
        std::task::Poll::Ready(r)
    }
}

impl std::fmt::Debug for AsyncSend<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSend")
            .field("topic", &self.record.topic)
            .field("started", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`Producer::send_async`]: resolves to the record's
/// [`DeliveryFuture`] once the record is in a batch. `Send`, `Unpin`, and
/// independent of any async runtime. Like an `async fn`'s future, it must
/// not be polled again after it completed (that panics).
#[must_use = "a SendFuture sends nothing unless polled"]
#[derive(Debug)]
pub struct SendFuture<'p, 'r>(AsyncSend<'p, 'r>);

impl std::future::Future for SendFuture<'_, '_> {
    type Output = Result<DeliveryFuture, SendError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.get_mut()
            .0
            .poll(cx, |a, now, rec, cx| a.poll_append(now, rec, cx))
            .map(|r| r.map(|o| DeliveryFuture::new(o.delivery, o.partition)))
    }
}

/// The future of [`Producer::produce_async`]: resolves to `()` once the
/// record is in a batch (its result goes to the delivery callback).
/// `Send`, `Unpin`, and independent of any async runtime; must not be
/// polled again after it completed (that panics).
#[must_use = "a ProduceFuture sends nothing unless polled"]
#[derive(Debug)]
pub struct ProduceFuture<'p, 'r>(AsyncSend<'p, 'r>);

impl std::future::Future for ProduceFuture<'_, '_> {
    type Output = Result<(), SendError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.get_mut()
            .0
            .poll(cx, |a, now, rec, cx| a.poll_produce(now, rec, cx))
            .map(|r| r.map(|_| ()))
    }
}

/// `now + wait`, or a year from now for a wait too long to add to an
/// `Instant` (`Duration::MAX`: "as long as it takes").
fn deadline_after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.close();
    }
}
