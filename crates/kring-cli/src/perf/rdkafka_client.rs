//! The librdkafka side of the benchmark: the `rdkafka` crate's
//! `BaseProducer` over the bundled librdkafka, configured with the same
//! Kafka properties as kring, every record sent to an explicit partition
//! (keyed workloads: with its key and no partition, placed by librdkafka's
//! `murmur2_random` partitioner, the Java client's hash), delivery
//! callbacks counted and timed, served by a dedicated poll thread.
//!
//! The send timestamp travels as the record's delivery opaque (a `usize`
//! of nanoseconds), so latency costs no allocation per record.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::idle::{IdleResult, SETTLE};
use super::measure::{
    max_rss_bytes, switch_deltas, thread_cpu, thread_cpu_report, thread_switches, CpuTime,
    Progress, Stats,
};
use super::result::RunResult;
use super::workload::{run_shares, Payloads, Rec, Workload};
use crate::error::CliError;

/// Delivery opaque that marks a warm-up record (not measured).
const WARM_UP: usize = usize::MAX;

/// Delivery opaque of a measured record whose latency is not sampled;
/// sampled records carry their send time (never 0: it is at least the
/// warm-up's duration after the epoch).
const NOT_SAMPLED: usize = 0;

/// How long flushing may take before the run is declared failed.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

struct Ctx {
    stats: &'static Stats,
    warm_done: AtomicU64,
    warm_error: Mutex<Option<String>>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        if sent_ns == WARM_UP {
            if let Err((e, _)) = result {
                if let Ok(mut w) = self.warm_error.lock() {
                    w.get_or_insert_with(|| e.to_string());
                }
            }
            self.warm_done.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match result {
            Ok(_) if sent_ns == NOT_SAMPLED => self.stats.acked(),
            Ok(_) => self.stats.delivered_sample(sent_ns as u64),
            Err((e, _)) => self.stats.failed(|| e.to_string()),
        }
    }
}

/// A producer plus the thread that polls it for delivery reports.
struct Client {
    producer: Arc<BaseProducer<Ctx>>,
    polling: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn new(w: &Workload, bootstrap: &str) -> Result<Self, CliError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap);
        cfg.set("client.id", "kring-perf-librdkafka");
        if w.keys > 0 {
            // librdkafka's default (consistent_random) hashes with CRC32;
            // this is the Java client's murmur2, which kring uses too.
            cfg.set("partitioner", "murmur2_random");
        }
        for (k, v) in w.properties() {
            cfg.set(k, v);
        }
        let ctx = Ctx {
            stats: Stats::leak(),
            warm_done: AtomicU64::new(0),
            warm_error: Mutex::new(None),
        };
        let producer: BaseProducer<Ctx> = cfg
            .create_with_context(ctx)
            .map_err(|e| CliError::Rdkafka(format!("creating the producer: {e}")))?;
        let mut c = Client {
            producer: Arc::new(producer),
            polling: Arc::new(AtomicBool::new(false)),
            poller: None,
        };
        c.start_polling();
        Ok(c)
    }

    fn start_polling(&mut self) {
        self.polling.store(true, Ordering::Relaxed);
        let p = self.producer.clone();
        let polling = self.polling.clone();
        self.poller = Some(
            std::thread::Builder::new()
                .name("perf-poll".into())
                .spawn(move || {
                    while polling.load(Ordering::Relaxed) {
                        p.poll(Duration::from_millis(50));
                    }
                })
                .expect("spawning the poll thread"),
        );
    }

    fn stop_polling(&mut self) {
        self.polling.store(false, Ordering::Relaxed);
        if let Some(h) = self.poller.take() {
            let _ = h.join();
        }
    }

    fn ctx(&self) -> &Ctx {
        self.producer.context()
    }

    /// Sends one record, waiting out a full local queue.
    /// A keyed record (`key` set) goes without a partition: librdkafka's
    /// partitioner places it.
    fn send(
        &self,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
        opaque: usize,
    ) -> Result<(), CliError> {
        let record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, opaque).payload(value);
        let mut record = match key {
            Some(k) => record.key(k),
            None => record.partition(partition),
        };
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // The poll thread drains delivery reports; give it room.
                    std::thread::sleep(Duration::from_micros(500));
                }
                Err((e, _)) => return Err(CliError::Rdkafka(format!("send: {e}"))),
            }
        }
    }

    /// One record to each partition, flushed: connections and metadata are
    /// in place before anything is measured.
    fn warm_up(&self, w: &Workload, parts: &[i32], payloads: &Payloads) -> Result<(), CliError> {
        for &p in parts {
            self.send(&w.topic, p, None, payloads.get(0), WARM_UP)?;
        }
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| CliError::Rdkafka(format!("warm-up flush: {e}")))?;
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while self.ctx().warm_done.load(Ordering::Relaxed) < parts.len() as u64 {
            if Instant::now() > deadline {
                return Err(CliError::Rdkafka(
                    "warm-up deliveries did not arrive".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(e) = self.ctx().warm_error.lock().ok().and_then(|e| e.clone()) {
            return Err(CliError::Rdkafka(format!("warm-up record failed: {e}")));
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop_polling();
    }
}

/// One measured run of the workload through librdkafka.
pub fn run(w: &Workload, bootstrap: &str, progress: bool) -> Result<RunResult, CliError> {
    let client = Client::new(w, bootstrap)?;
    let parts = w.active_partition_ids();
    let payloads = Payloads::for_workload(w);
    let keys = w.key_pool();
    let shares = w.shares(&parts)?;
    client.warm_up(w, &parts, &payloads)?;

    let stats = client.ctx().stats;
    let _progress = progress.then(|| Progress::start("librdkafka", stats));
    let threads0 = thread_cpu();
    let cpu0 = CpuTime::now();
    let start = Instant::now();
    let start_ns = stats.now_ns();
    let topic = w.topic.as_str();
    let client = &client;
    let sent = run_shares(&shares, &payloads, keys.as_ref(), start, |_| {
        move |rec: Rec<'_>| {
            let opaque = match rec.sample {
                Some(now_ns) => (start_ns + now_ns).max(1) as usize,
                None => NOT_SAMPLED,
            };
            let r = client.send(topic, rec.partition, rec.key, rec.value, opaque);
            stats.sent.fetch_add(1, Ordering::Relaxed);
            r
        }
    })?;
    client
        .producer
        .flush(FLUSH_TIMEOUT)
        .map_err(|e| CliError::Rdkafka(format!("flush: {e}")))?;
    if !stats.wait_all_done(FLUSH_TIMEOUT) {
        return Err(CliError::Rdkafka(
            "delivery reports missing after flush".into(),
        ));
    }
    let elapsed = start.elapsed();
    let cpu = CpuTime::now().since(cpu0);
    eprintln!(
        "librdkafka {}",
        thread_cpu_report(&threads0, &thread_cpu(), cpu.total())
    );
    drop(_progress);

    let (p50, p99, p999, max) = stats.latency_ms();
    let mut r = RunResult {
        client: "librdkafka".into(),
        records: sent.records,
        acked: stats.acked.load(Ordering::Relaxed),
        failed: stats.failed.load(Ordering::Relaxed),
        first_error: stats.first_error(),
        elapsed_s: elapsed.as_secs_f64(),
        cpu_user_s: cpu.user,
        cpu_sys_s: cpu.sys,
        p50_ms: p50,
        p99_ms: p99,
        p999_ms: p999,
        max_ms: max,
        max_rss_mb: max_rss_bytes() as f64 / 1e6,
        ..Default::default()
    };
    r.derive(sent.average_value_size());
    Ok(r)
}

/// An idle librdkafka producer: a few records sent and delivered, then
/// nothing for `idle`; counts the wake-ups of librdkafka's own threads.
/// The poll thread is stopped during the window so only librdkafka's
/// threads are measured.
pub fn idle(w: &Workload, bootstrap: &str, idle: Duration) -> Result<IdleResult, CliError> {
    let mut client = Client::new(w, bootstrap)?;
    let parts = w.active_partition_ids();
    let payloads = Payloads::new(w.value_size);
    client.warm_up(w, &parts[..parts.len().min(4)], &payloads)?;
    client.stop_polling();
    // Let every thread finish what the warm-up left and go to sleep: a
    // thread blocking counts as a context switch, not as a wake-up.
    std::thread::sleep(SETTLE);
    let before = thread_switches();
    std::thread::sleep(idle);
    let after = thread_switches();
    let me = std::process::id();
    let threads: Vec<_> = switch_deltas(&before, &after)
        .into_iter()
        .filter(|t| t.tid != me)
        .collect();
    Ok(IdleResult::new("librdkafka", idle, None, threads))
}
