//! What one benchmark run does, independent of the client that runs it: how
//! many records, their size and content, which partitions receive them, and
//! the producer properties. Both clients get exactly the same workload, so
//! the only difference between their figures is the client.

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::args::{duration_arg, format_duration, kv_arg};

/// Default run length when neither `--records` nor `--duration` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);

/// Compression codecs both clients support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (deflate).
    Gzip,
    /// Snappy (xerial framing).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The value of the `compression.type` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// `acks`: how many replicas must have the record before the broker answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// No answer at all (fire and forget at the protocol level).
    #[value(name = "0")]
    Zero,
    /// The leader has it.
    #[value(name = "1")]
    One,
    /// Every in-sync replica has it.
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    /// The value of the `acks` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::Zero => "0",
            Acks::One => "1",
            Acks::All => "all",
        }
    }
}

/// Whether the idempotent producer is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Idempotence {
    /// On exactly when `acks=all` (librdkafka and the Java client refuse
    /// idempotence with any other `acks`).
    Auto,
    /// Always on (requires `--acks all`).
    On,
    /// Always off.
    Off,
}

/// The workload flags of `kring perf`.
#[derive(Args, Clone, Debug)]
pub struct Workload {
    /// Number of records to send (default: run for --duration).
    #[arg(long, conflicts_with = "duration")]
    pub records: Option<u64>,
    /// How long to send, e.g. 10s (default 5s).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<Duration>,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
    /// Only this many partitions receive records (spread evenly over the
    /// topic; the partition of each record is chosen round-robin over them).
    #[arg(long)]
    pub active_partitions: Option<u32>,
    /// acks: 0, 1 or all.
    #[arg(long, value_enum, default_value = "1")]
    pub acks: Acks,
    /// Compression codec.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Compression,
    /// linger.ms: how long a batch may wait for more records.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// batch.size in bytes.
    #[arg(long, default_value_t = 16384)]
    pub batch_size: u32,
    /// max.in.flight.requests.per.connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: u32,
    /// enable.idempotence: auto means on exactly when acks=all.
    #[arg(long, value_enum, default_value = "auto")]
    pub idempotence: Idempotence,
    /// Send at most this many records per second (default: as fast as the
    /// client accepts them). A fixed rate below both clients' maximum makes
    /// their latencies comparable; at full speed latency mostly measures
    /// how much each client lets queue up.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Topic to produce to (created if missing).
    #[arg(long, default_value = "kring-perf")]
    pub topic: String,
    /// Any producer property, name=value (repeatable; applied last, to both clients).
    #[arg(short = 'X', value_name = "NAME=VALUE", value_parser = kv_arg)]
    pub properties: Vec<(String, String)>,
    /// kring's I/O backend (`io.backend`: auto, io_uring or epoll); other
    /// clients ignore it. `-X io.backend=...` works too, for kring alone.
    #[arg(long, value_name = "BACKEND", value_parser = ["auto", "io_uring", "epoll"])]
    pub io_backend: Option<String>,
}

/// When a run stops sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this many records.
    Records(u64),
    /// After this much time.
    Duration(Duration),
}

impl Workload {
    /// When the run stops sending.
    pub fn stop(&self) -> Stop {
        match (self.records, self.duration) {
            (Some(n), _) => Stop::Records(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(DEFAULT_DURATION),
        }
    }

    /// Whether enable.idempotence is on for this workload.
    pub fn idempotent(&self) -> bool {
        match self.idempotence {
            Idempotence::Auto => self.acks == Acks::All,
            Idempotence::On => true,
            Idempotence::Off => false,
        }
    }

    /// Number of partitions that receive records.
    pub fn active(&self) -> u32 {
        self.active_partitions
            .unwrap_or(self.partitions)
            .clamp(1, self.partitions.max(1))
    }

    /// The partitions that receive records, spread evenly over the topic.
    pub fn active_partition_ids(&self) -> Vec<i32> {
        let total = u64::from(self.partitions.max(1));
        let n = u64::from(self.active());
        (0..n).map(|j| (j * total / n) as i32).collect()
    }

    /// The Kafka producer properties both clients are configured with: the
    /// workload flags first, then every `-X` in order (a later one wins).
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = vec![
            ("acks".into(), self.acks.as_str().into()),
            ("linger.ms".into(), self.linger_ms.to_string()),
            ("batch.size".into(), self.batch_size.to_string()),
            ("compression.type".into(), self.compression.as_str().into()),
            (
                "max.in.flight.requests.per.connection".into(),
                self.max_in_flight.to_string(),
            ),
            ("enable.idempotence".into(), self.idempotent().to_string()),
        ];
        for (k, v) in &self.properties {
            p.retain(|(pk, _)| pk != k);
            p.push((k.clone(), v.clone()));
        }
        p
    }

    /// The same workload as command-line flags, to hand to a child process.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        match self.stop() {
            Stop::Records(n) => a.extend(["--records".into(), n.to_string()]),
            Stop::Duration(d) => a.extend(["--duration".into(), format_duration(d)]),
        }
        a.extend(["--value-size".into(), self.value_size.to_string()]);
        a.extend(["--partitions".into(), self.partitions.to_string()]);
        if let Some(n) = self.active_partitions {
            a.extend(["--active-partitions".into(), n.to_string()]);
        }
        a.extend(["--acks".into(), self.acks.as_str().into()]);
        a.extend(["--compression".into(), self.compression.as_str().into()]);
        a.extend(["--linger-ms".into(), self.linger_ms.to_string()]);
        a.extend(["--batch-size".into(), self.batch_size.to_string()]);
        a.extend(["--max-in-flight".into(), self.max_in_flight.to_string()]);
        let idem = match self.idempotence {
            Idempotence::Auto => "auto",
            Idempotence::On => "on",
            Idempotence::Off => "off",
        };
        a.extend(["--idempotence".into(), idem.into()]);
        if let Some(r) = self.rate {
            a.extend(["--rate".into(), r.to_string()]);
        }
        a.extend(["--topic".into(), self.topic.clone()]);
        for (k, v) in &self.properties {
            a.extend(["-X".into(), format!("{k}={v}")]);
        }
        if let Some(b) = &self.io_backend {
            a.extend(["--io-backend".into(), b.clone()]);
        }
        a
    }

    /// One line describing the workload, for reports.
    pub fn describe(&self) -> String {
        let stop = match self.stop() {
            Stop::Records(n) => format!("{n} records"),
            Stop::Duration(d) => format_duration(d),
        };
        format!(
            "{} B values, {}/{} partitions receiving, acks={}, compression={}, linger.ms={}, \
             batch.size={}, max.in.flight={}, idempotence={}, {} per run",
            self.value_size,
            self.active(),
            self.partitions,
            self.acks.as_str(),
            self.compression.as_str(),
            self.linger_ms,
            self.batch_size,
            self.max_in_flight,
            if self.idempotent() { "on" } else { "off" },
            stop
        ) + &self
            .rate
            .map(|r| format!(", paced at {r} records/s"))
            .unwrap_or_default()
    }
}

/// Record values: a small pool of distinct, text-like values of the
/// requested size. Text-like so that compressed runs compress as real
/// payloads do (neither random nor all zeros); a pool so that consecutive
/// records differ without generating bytes per record.
pub struct Payloads {
    values: Vec<Vec<u8>>,
}

impl Payloads {
    /// Number of distinct values.
    pub const POOL: usize = 64;

    /// Builds the pool for values of `size` bytes, deterministically.
    pub fn new(size: usize) -> Self {
        const WORDS: [&str; 24] = [
            "kafka",
            "record",
            "batch",
            "partition",
            "offset",
            "leader",
            "broker",
            "topic",
            "ring",
            "linger",
            "acks",
            "epoch",
            "sequence",
            "producer",
            "value",
            "header",
            "\"id\":",
            "\"ts\":",
            "{",
            "}",
            ",",
            "0",
            "42",
            "1700000000",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let values = (0..Self::POOL)
            .map(|_| {
                let mut v = Vec::with_capacity(size + 16);
                while v.len() < size {
                    let r = next();
                    if r % 4 == 0 {
                        // A number: unique-ish content, as ids and timestamps are.
                        v.extend_from_slice((r >> 20).to_string().as_bytes());
                    } else {
                        v.extend_from_slice(WORDS[(r >> 32) as usize % WORDS.len()].as_bytes());
                    }
                    v.push(b' ');
                }
                v.truncate(size);
                v
            })
            .collect();
        Payloads { values }
    }

    /// The value of record number `seq`.
    #[inline]
    pub fn get(&self, seq: u64) -> &[u8] {
        &self.values[(seq as usize) % Self::POOL]
    }
}

/// Drives the send loop shared by both clients: picks each record's
/// partition (round-robin over the active ones) and value, and decides when
/// to stop. The clock is read once every [`SendLoop::CLOCK_EVERY`] records.
pub struct SendLoop<'a> {
    stop: Stop,
    rate: Option<u64>,
    partitions: &'a [i32],
    payloads: &'a Payloads,
}

impl<'a> SendLoop<'a> {
    /// One record in this many is a latency sample; the clock is read only
    /// then (for its send time, the stop condition and pacing).
    pub const CLOCK_EVERY: u64 = 64;

    /// A loop over `partitions` with values from `payloads`.
    pub fn new(stop: Stop, partitions: &'a [i32], payloads: &'a Payloads) -> Self {
        SendLoop {
            stop,
            rate: None,
            partitions,
            payloads,
        }
    }

    /// Paces the loop to at most `rate` records per second (`None`: unpaced).
    pub fn with_rate(mut self, rate: Option<u64>) -> Self {
        self.rate = rate.filter(|&r| r > 0);
        self
    }

    /// Whether record `seq` is a sample: one record in every block of
    /// [`SendLoop::CLOCK_EVERY`], at an offset that rotates from block to
    /// block so that samples visit every partition of a round-robin.
    #[inline]
    pub fn is_sample(seq: u64) -> bool {
        let n = Self::CLOCK_EVERY;
        seq % n == (seq / n) % n
    }

    /// Calls `send(seq, partition, value, sample)` for every record until
    /// the stop condition; `sample` is `Some(ns since start)` for sampled
    /// records (see [`SendLoop::is_sample`]), whose latency is measured.
    /// The clock is read only at samples: a clock read per record would be
    /// a visible share of a client's CPU. Returns how many were sent, or
    /// the first error of `send`.
    pub fn run<E>(
        &self,
        start: Instant,
        mut send: impl FnMut(u64, i32, &[u8], Option<u64>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let n_parts = self.partitions.len() as u64;
        let mut seq: u64 = 0;
        let mut part_idx: u64 = 0;
        loop {
            if let Stop::Records(n) = self.stop {
                if seq >= n {
                    return Ok(seq);
                }
            }
            let sample = if Self::is_sample(seq) {
                let mut now = start.elapsed();
                if let Some(rate) = self.rate {
                    let due = Duration::from_secs_f64(seq as f64 / rate as f64);
                    if due > now {
                        std::thread::sleep(due - now);
                        now = start.elapsed();
                    }
                }
                if let Stop::Duration(d) = self.stop {
                    if now >= d {
                        return Ok(seq);
                    }
                }
                Some(now.as_nanos() as u64)
            } else {
                None
            };
            let partition = self.partitions[part_idx as usize];
            part_idx += 1;
            if part_idx == n_parts {
                part_idx = 0;
            }
            send(seq, partition, self.payloads.get(seq), sample)?;
            seq += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        w: Workload,
    }

    fn parse(args: &[&str]) -> Workload {
        W::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
            .w
    }

    #[test]
    fn defaults() {
        let w = parse(&[]);
        assert_eq!(w.stop(), Stop::Duration(DEFAULT_DURATION));
        assert_eq!(w.active(), 16);
        assert!(!w.idempotent());
        let p = w.properties();
        assert!(p.contains(&("acks".into(), "1".into())));
        assert!(p.contains(&("enable.idempotence".into(), "false".into())));
    }

    #[test]
    fn args_round_trip() {
        let w = parse(&[
            "--records",
            "1000",
            "--value-size",
            "1000",
            "--partitions",
            "10000",
            "--active-partitions",
            "10",
            "--acks",
            "all",
            "--compression",
            "zstd",
            "-X",
            "a.b=c",
            "--topic",
            "t1",
        ]);
        let args: Vec<String> = w.to_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let w2 = parse(&args);
        assert_eq!(w2.to_args(), w.to_args());
        assert_eq!(w2.stop(), Stop::Records(1000));
        assert!(w2.idempotent());
        assert_eq!(w2.active_partition_ids().len(), 10);
    }

    #[test]
    fn x_overrides_flags() {
        let w = parse(&["-X", "linger.ms=50", "-X", "linger.ms=7"]);
        let lingers: Vec<_> = w
            .properties()
            .into_iter()
            .filter(|(k, _)| k == "linger.ms")
            .collect();
        assert_eq!(lingers, vec![("linger.ms".to_string(), "7".to_string())]);
    }

    #[test]
    fn active_partitions_spread_and_distinct() {
        let w = parse(&["--partitions", "10000", "--active-partitions", "10"]);
        let ids = w.active_partition_ids();
        assert_eq!(
            ids,
            vec![0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]
        );
        let w = parse(&["--partitions", "4", "--active-partitions", "99"]);
        assert_eq!(w.active_partition_ids(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn payloads_have_the_size_and_vary() {
        for size in [0, 1, 100, 1000] {
            let p = Payloads::new(size);
            assert_eq!(p.get(0).len(), size);
            assert_eq!(p.get(12345).len(), size);
        }
        let p = Payloads::new(100);
        assert_ne!(p.get(0), p.get(1));
    }

    #[test]
    fn send_loop_round_robin_and_count() {
        let parts = [3, 5, 7];
        let payloads = Payloads::new(10);
        let lp = SendLoop::new(Stop::Records(7), &parts, &payloads);
        let mut seen = Vec::new();
        let n = lp
            .run::<()>(Instant::now(), |seq, p, v, _| {
                assert_eq!(v.len(), 10);
                seen.push((seq, p));
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 7);
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![3, 5, 7, 3, 5, 7, 3]
        );
    }

    #[test]
    fn samples_are_one_per_block_and_visit_every_partition() {
        let n = SendLoop::CLOCK_EVERY;
        let samples: Vec<u64> = (0..n * n).filter(|&s| SendLoop::is_sample(s)).collect();
        assert_eq!(samples.len() as u64, n);
        // 16 partitions round-robin: every partition gets sampled.
        let mut parts: Vec<u64> = samples.iter().map(|s| s % 16).collect();
        parts.sort();
        parts.dedup();
        assert_eq!(parts.len(), 16);
    }

    #[test]
    fn send_loop_stops_on_error() {
        let parts = [0];
        let payloads = Payloads::new(1);
        let lp = SendLoop::new(Stop::Records(100), &parts, &payloads);
        let r = lp.run(
            Instant::now(),
            |seq, _, _, _| if seq == 4 { Err(seq) } else { Ok(()) },
        );
        assert_eq!(r, Err(4));
    }

    #[test]
    fn send_loop_paces_to_the_rate() {
        let parts = [0];
        let payloads = Payloads::new(1);
        // Samples (where pacing happens) are at seq 0, 65 and 130; at
        // 6,400/s the one at 130 is due at 20.3 ms, so 131 records cannot
        // take less than 20 ms.
        let lp = SendLoop::new(Stop::Records(131), &parts, &payloads).with_rate(Some(6400));
        let start = Instant::now();
        assert_eq!(lp.run::<()>(start, |_, _, _, _| Ok(())), Ok(131));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn send_loop_duration_zero_sends_nothing() {
        let parts = [0];
        let payloads = Payloads::new(1);
        let lp = SendLoop::new(Stop::Duration(Duration::ZERO), &parts, &payloads);
        assert_eq!(lp.run::<()>(Instant::now(), |_, _, _, _| Ok(())), Ok(0));
    }
}
