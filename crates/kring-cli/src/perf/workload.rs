//! What one benchmark run does, independent of the client that runs it: how
//! many records, their size and content, their keys, which partitions
//! receive them, and the producer properties. Every client gets exactly the
//! same workload, so the only difference between their figures is the
//! client.
//!
//! Two record shapes beyond the default (keyless, one value size, explicit
//! partitions round-robin):
//! - **keyed** (`--keys N`): every record carries one of N distinct keys
//!   ([`Keys`]) and no partition, so each client's own partitioner hashes
//!   the key (murmur2, the Java client's default; librdkafka's
//!   `partitioner=murmur2_random`). The harness knows each record's
//!   partition from a key→partition table computed once with kring's
//!   Java-compatible partitioner, so nothing is hashed per record for its
//!   sake;
//! - **mixed sizes** (`--value-sizes 64:8,512:4,4096:2,16384:1`): values of
//!   several sizes, with weights.
//!
//! Which key and which value a record gets is a pure function of its
//! sequence number ([`pick`]), the same in every client (the Java peer
//! repeats it), cheap (one 64-bit mix, two multiplications to a range) and
//! free of allocation.

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::args::{duration_arg, format_duration, kv_arg};
use crate::error::CliError;

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
    /// Mixed value sizes instead of --value-size: SIZE or SIZE:WEIGHT,
    /// comma-separated (e.g. 64:8,512:4,4096:2,16384:1); each record's size
    /// is drawn from them by a fixed sequence, the same for every client.
    #[arg(long, value_delimiter = ',', value_parser = size_weight_arg, conflicts_with = "value_size")]
    pub value_sizes: Vec<SizeWeight>,
    /// Keyed records: every record carries one of this many distinct keys
    /// and no explicit partition (each client's murmur2 partitioner places
    /// it; 0 = keyless, explicit partitions round-robin).
    #[arg(long, default_value_t = 0, conflicts_with = "active_partitions")]
    pub keys: u32,
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
    /// Producer threads sending through one shared producer (kring and
    /// librdkafka; the Java peer supports 1 only). The receiving
    /// partitions are dealt out among them (thread t sends to every N-th
    /// one), and --records and --rate are split evenly.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// kring's `compression.threads` (0: the I/O thread compresses the
    /// batches it seals; default: kring's default); other clients ignore
    /// it.
    #[arg(long, value_name = "N")]
    pub compression_threads: Option<u32>,
}

/// One entry of `--value-sizes`: a value size and its weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeWeight {
    /// Bytes per value.
    pub size: usize,
    /// Relative frequency (at least 1).
    pub weight: u32,
}

impl SizeWeight {
    /// Parses `SIZE` or `SIZE:WEIGHT`.
    pub fn parse(s: &str) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::invalid("value size", s, why);
        let (size, weight) = match s.split_once(':') {
            Some((a, b)) => (a, b),
            None => (s, "1"),
        };
        let size = size
            .trim()
            .parse()
            .map_err(|_| bad("expected SIZE or SIZE:WEIGHT"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| bad("expected SIZE or SIZE:WEIGHT"))?;
        if weight == 0 || weight > 1000 {
            return Err(bad("the weight must be 1 to 1000"));
        }
        if size > 64 << 20 {
            return Err(bad("at most 64 MiB"));
        }
        Ok(SizeWeight { size, weight })
    }
}

impl std::fmt::Display for SizeWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.size, self.weight)
    }
}

/// clap adapter for [`SizeWeight::parse`].
pub fn size_weight_arg(s: &str) -> Result<SizeWeight, String> {
    SizeWeight::parse(s).map_err(|e| e.to_string())
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

    /// Number of partitions that receive records (keyed: every partition
    /// the keys hash to, the whole topic).
    pub fn active(&self) -> u32 {
        if self.keys > 0 {
            return self.partitions.max(1);
        }
        self.active_partitions
            .unwrap_or(self.partitions)
            .clamp(1, self.partitions.max(1))
    }

    /// The value sizes with their weights: `--value-sizes`, else the one
    /// `--value-size`.
    pub fn value_mix(&self) -> Vec<SizeWeight> {
        if self.value_sizes.is_empty() {
            vec![SizeWeight {
                size: self.value_size,
                weight: 1,
            }]
        } else {
            self.value_sizes.clone()
        }
    }

    /// The key pool of a keyed workload (`None`: keyless).
    pub fn key_pool(&self) -> Option<Keys> {
        (self.keys > 0).then(|| Keys::new(self.keys, self.partitions))
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
        if self.value_sizes.is_empty() {
            a.extend(["--value-size".into(), self.value_size.to_string()]);
        } else {
            let list: Vec<String> = self.value_sizes.iter().map(|s| s.to_string()).collect();
            a.extend(["--value-sizes".into(), list.join(",")]);
        }
        if self.keys > 0 {
            a.extend(["--keys".into(), self.keys.to_string()]);
        }
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
        if self.threads != 1 {
            a.extend(["--threads".into(), self.threads.to_string()]);
        }
        if let Some(n) = self.compression_threads {
            a.extend(["--compression-threads".into(), n.to_string()]);
        }
        a
    }

    /// Each producer thread's share of the workload (see
    /// [`Workload::threads`]): thread t sends to `parts[t]`, `parts[t + N]`,
    /// ..., and gets an even part of `--records` and `--rate`. Keyed
    /// workloads run on one thread only (a key's partition is not the
    /// thread's, so latency samples could not be matched by order).
    pub fn shares(&self, parts: &[i32]) -> Result<Vec<Share>, CliError> {
        let n = self.threads.max(1) as usize;
        if n > 1 && self.keys > 0 {
            return Err(CliError::invalid(
                "--threads",
                n.to_string(),
                "keyed workloads (--keys) run on one thread",
            ));
        }
        if n > parts.len().max(1) {
            return Err(CliError::invalid(
                "--threads",
                n.to_string(),
                format!("more threads than receiving partitions ({})", parts.len()),
            ));
        }
        let split =
            |total: u64, t: usize| total / n as u64 + u64::from((t as u64) < total % n as u64);
        Ok((0..n)
            .map(|t| Share {
                stop: match self.stop() {
                    Stop::Records(r) => Stop::Records(split(r, t)),
                    d => d,
                },
                rate: self.rate.map(|r| split(r, t).max(1)),
                partitions: parts.iter().copied().skip(t).step_by(n).collect(),
            })
            .collect())
    }

    /// One line describing the workload, for reports.
    pub fn describe(&self) -> String {
        let stop = match self.stop() {
            Stop::Records(n) => format!("{n} records"),
            Stop::Duration(d) => format_duration(d),
        };
        let values = if self.value_sizes.is_empty() {
            format!("{} B values", self.value_size)
        } else {
            let list: Vec<String> = self.value_sizes.iter().map(|s| s.to_string()).collect();
            format!(
                "values of {} B (size:weight, {:.0} B on average)",
                list.join(","),
                Payloads::mixed(&self.value_sizes).average_size()
            )
        };
        let keys = if self.keys > 0 {
            format!(", {} distinct keys (murmur2 in the client)", self.keys)
        } else {
            String::new()
        };
        format!(
            "{values}{keys}, {}/{} partitions receiving, acks={}, compression={}, linger.ms={}, \
             batch.size={}, max.in.flight={}, idempotence={}, {} per run",
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
            + &if self.threads > 1 {
                format!(", {} producer threads", self.threads)
            } else {
                String::new()
            }
            + &self
                .compression_threads
                .map(|n| format!(", kring compression.threads={n}"))
                .unwrap_or_default()
    }
}

/// Record values: a small pool of distinct, text-like values per size.
/// Text-like so that compressed runs compress as real payloads do (neither
/// random nor all zeros); a pool so that consecutive records differ without
/// generating bytes per record.
pub struct Payloads {
    values: Vec<Vec<u8>>,
    /// Values of several sizes: a record's value is drawn by [`pick`];
    /// otherwise record `seq` gets value `seq % POOL`.
    mixed: bool,
}

impl Payloads {
    /// Number of distinct values of a single-size pool.
    pub const POOL: usize = 64;
    /// Distinct values per unit of weight in a mixed pool (a size of weight
    /// 4 has 64 values, one of weight 1 has 16).
    pub const PER_WEIGHT: usize = 16;

    /// Builds the pool for values of `size` bytes, deterministically.
    pub fn new(size: usize) -> Self {
        Payloads {
            values: text_values(&[size; Self::POOL]),
            mixed: false,
        }
    }

    /// Builds the pool of a mixed workload: for each size in order,
    /// `PER_WEIGHT × weight` values of that size (a single entry of weight
    /// 1 is [`Payloads::new`]'s pool).
    pub fn mixed(sizes: &[SizeWeight]) -> Self {
        if let [one] = sizes {
            return Self::new(one.size);
        }
        let slots: Vec<usize> = sizes
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.size, Self::PER_WEIGHT * s.weight as usize))
            .collect();
        Payloads {
            values: text_values(&slots),
            mixed: true,
        }
    }

    /// The pool of workload `w`.
    pub fn for_workload(w: &Workload) -> Self {
        Self::mixed(&w.value_mix())
    }

    /// The value of record number `seq`, whose [`mix`] is `h` (unused
    /// unless the pool is mixed).
    #[inline]
    pub fn get_mixed(&self, seq: u64, h: u64) -> &[u8] {
        if self.mixed {
            &self.values[pick(h as u32, self.values.len())]
        } else {
            self.get(seq)
        }
    }

    /// The value of record number `seq` of a single-size pool (and the
    /// value warm-up records carry).
    #[inline]
    pub fn get(&self, seq: u64) -> &[u8] {
        &self.values[(seq as usize) % self.values.len()]
    }

    /// Whether values are drawn from several sizes.
    pub fn is_mixed(&self) -> bool {
        self.mixed
    }

    /// Expected value size of a record: the pool's mean (every value is
    /// equally likely).
    pub fn average_size(&self) -> f64 {
        let total: usize = self.values.iter().map(Vec::len).sum();
        total as f64 / self.values.len().max(1) as f64
    }
}

/// `slots.len()` text-like values, the i-th of `slots[i]` bytes, from one
/// xorshift sequence (the Java peer's `payloads` makes the same bytes).
fn text_values(slots: &[usize]) -> Vec<Vec<u8>> {
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
    slots
        .iter()
        .map(|&size| {
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
        .collect()
}

/// The 64-bit mix of record number `seq` (SplitMix64's output function of
/// `seq`): its high half picks the record's key, its low half its value in
/// a mixed pool. Consecutive records get unrelated keys, as real traffic
/// does, and every client computes the same sequence.
#[inline]
pub fn mix(seq: u64) -> u64 {
    let mut z = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a 32-bit `h` to `0..n` without a division (Lemire's multiply-shift;
/// uniform up to a bias of n/2^32).
#[inline]
pub fn pick(h: u32, n: usize) -> usize {
    ((u64::from(h) * n as u64) >> 32) as usize
}

/// The key pool of a keyed workload: `n` distinct keys of [`Keys::LEN`]
/// bytes (`key-000000000042`), in one buffer, with each key's partition
/// among the topic's, computed once with kring's Java-compatible murmur2
/// partitioner. Every client is expected to put key i into
/// `partition(i)`; the harness reads the table, it never hashes.
pub struct Keys {
    bytes: Vec<u8>,
    partition_of: Vec<i32>,
}

impl Keys {
    /// Bytes per key.
    pub const LEN: usize = 16;

    /// `n` keys (at least 1) and their partitions among `partitions`.
    pub fn new(n: u32, partitions: u32) -> Self {
        let n = n.max(1) as usize;
        let mut bytes = Vec::with_capacity(n * Self::LEN);
        for i in 0..n {
            let k = format!("key-{i:012}");
            debug_assert_eq!(k.len(), Self::LEN);
            bytes.extend_from_slice(k.as_bytes());
        }
        let partition_of = bytes
            .chunks_exact(Self::LEN)
            .map(|k| kring_core::partitioner::partition_for_key(k, partitions.max(1)) as i32)
            .collect();
        Keys {
            bytes,
            partition_of,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.partition_of.len()
    }

    /// Whether the pool is empty (never: it holds at least one key).
    pub fn is_empty(&self) -> bool {
        self.partition_of.is_empty()
    }

    /// Key number `i`.
    #[inline]
    pub fn key(&self, i: usize) -> &[u8] {
        &self.bytes[i * Self::LEN..(i + 1) * Self::LEN]
    }

    /// The partition of key number `i`.
    #[inline]
    pub fn partition(&self, i: usize) -> i32 {
        self.partition_of[i]
    }

    /// The key number of the record whose [`mix`] is `h`.
    #[inline]
    pub fn index_for(&self, h: u64) -> usize {
        pick((h >> 32) as u32, self.len())
    }
}

/// One producer thread's part of a workload (see [`Workload::shares`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// When this thread stops.
    pub stop: Stop,
    /// This thread's pace, if paced.
    pub rate: Option<u64>,
    /// The receiving partitions this thread sends to.
    pub partitions: Vec<i32>,
}

/// Runs one [`SendLoop`] per share, each from `start`: on the calling
/// thread for a single share, else on one scoped thread each
/// (`perf-send-T`). `sender(t)` makes thread t's send function. Returns
/// the records sent by all, or the first error.
pub fn run_shares<E, F>(
    shares: &[Share],
    payloads: &Payloads,
    keys: Option<&Keys>,
    start: Instant,
    sender: impl Fn(usize) -> F + Sync,
) -> Result<Sent, E>
where
    E: Send,
    F: FnMut(Rec<'_>) -> Result<(), E>,
{
    let one = |t: usize, s: &Share| {
        SendLoop::new(s.stop, &s.partitions, payloads)
            .with_rate(s.rate)
            .with_keys(keys)
            .run(start, sender(t))
    };
    if let [s] = shares {
        return one(0, s);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(t, s)| {
                let one = &one;
                std::thread::Builder::new()
                    .name(format!("perf-send-{t}"))
                    .spawn_scoped(scope, move || one(t, s))
                    .expect("spawning a send thread")
            })
            .collect();
        let mut total = Sent::default();
        let mut first_err = None;
        for h in handles {
            match h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
                Ok(s) => {
                    total.records += s.records;
                    total.value_bytes += s.value_bytes;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    })
}

/// One record as the send loop hands it to a client.
#[derive(Clone, Copy, Debug)]
pub struct Rec<'a> {
    /// Sequence number in the run, from 0.
    pub seq: u64,
    /// The partition it goes to: sent explicitly when `key` is `None`;
    /// for a keyed record, where the client's partitioner will put it
    /// (from [`Keys`]), for the latency probes.
    pub partition: i32,
    /// The key of a keyed record; such a record is sent without a
    /// partition.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// `Some(ns since start)` for a latency sample (see
    /// [`SendLoop::is_sample`]).
    pub sample: Option<u64>,
}

/// What a send loop sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Records handed to the client.
    pub records: u64,
    /// Their value bytes.
    pub value_bytes: u64,
}

impl Sent {
    /// Mean value size (0 when nothing was sent).
    pub fn average_value_size(&self) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            self.value_bytes as f64 / self.records as f64
        }
    }
}

/// Drives the send loop shared by every client: picks each record's
/// partition (round-robin over the active ones) or key, and value, and
/// decides when to stop. The clock is read once every
/// [`SendLoop::CLOCK_EVERY`] records.
pub struct SendLoop<'a> {
    stop: Stop,
    rate: Option<u64>,
    partitions: &'a [i32],
    payloads: &'a Payloads,
    keys: Option<&'a Keys>,
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
            keys: None,
        }
    }

    /// Paces the loop to at most `rate` records per second (`None`: unpaced).
    pub fn with_rate(mut self, rate: Option<u64>) -> Self {
        self.rate = rate.filter(|&r| r > 0);
        self
    }

    /// Keyed records from `keys` (`None`: keyless, explicit partitions).
    pub fn with_keys(mut self, keys: Option<&'a Keys>) -> Self {
        self.keys = keys;
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

    /// Calls `send` for every record until the stop condition; sampled
    /// records (see [`SendLoop::is_sample`]) carry their send time. The
    /// clock is read only at samples: a clock read per record would be a
    /// visible share of a client's CPU. Returns what was sent, or the
    /// first error of `send`.
    pub fn run<E>(
        &self,
        start: Instant,
        mut send: impl FnMut(Rec<'_>) -> Result<(), E>,
    ) -> Result<Sent, E> {
        let n_parts = self.partitions.len() as u64;
        let hashed = self.keys.is_some() || self.payloads.is_mixed();
        let mut seq: u64 = 0;
        let mut part_idx: u64 = 0;
        let mut value_bytes: u64 = 0;
        loop {
            if let Stop::Records(n) = self.stop {
                if seq >= n {
                    break;
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
                        break;
                    }
                }
                Some(now.as_nanos() as u64)
            } else {
                None
            };
            let h = if hashed { mix(seq) } else { 0 };
            let (partition, key) = match self.keys {
                Some(keys) => {
                    let i = keys.index_for(h);
                    (keys.partition(i), Some(keys.key(i)))
                }
                None => {
                    let p = self.partitions[part_idx as usize];
                    part_idx += 1;
                    if part_idx == n_parts {
                        part_idx = 0;
                    }
                    (p, None)
                }
            };
            let value = self.payloads.get_mixed(seq, h);
            value_bytes += value.len() as u64;
            send(Rec {
                seq,
                partition,
                key,
                value,
                sample,
            })?;
            seq += 1;
        }
        Ok(Sent {
            records: seq,
            value_bytes,
        })
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
    fn threads_split_partitions_records_and_rate() {
        let w = parse(&[
            "--threads",
            "3",
            "--records",
            "10",
            "--rate",
            "1000",
            "--partitions",
            "7",
        ]);
        let parts = w.active_partition_ids();
        let shares = w.shares(&parts).unwrap();
        assert_eq!(shares.len(), 3);
        assert_eq!(shares[0].partitions, vec![0, 3, 6]);
        assert_eq!(shares[1].partitions, vec![1, 4]);
        assert_eq!(shares[2].partitions, vec![2, 5]);
        let records: Vec<Stop> = shares.iter().map(|s| s.stop).collect();
        assert_eq!(
            records,
            vec![Stop::Records(4), Stop::Records(3), Stop::Records(3)]
        );
        let rates: Vec<Option<u64>> = shares.iter().map(|s| s.rate).collect();
        assert_eq!(rates, vec![Some(334), Some(333), Some(333)]);
        assert!(w.to_args().windows(2).any(|a| a == ["--threads", "3"]));
        // More threads than receiving partitions, or keyed: refused.
        assert!(parse(&["--threads", "3", "--partitions", "2"])
            .shares(&[0, 1])
            .is_err());
        let keyed = parse(&["--threads", "2", "--keys", "10"]);
        assert!(keyed.shares(&keyed.active_partition_ids()).is_err());
        assert_eq!(parse(&[]).shares(&[0, 1]).unwrap().len(), 1);
    }

    #[test]
    fn shares_run_on_their_threads_and_add_up() {
        let w = parse(&["--threads", "2", "--records", "101", "--partitions", "4"]);
        let parts = w.active_partition_ids();
        let payloads = Payloads::new(10);
        let seen = std::sync::Mutex::new(Vec::new());
        let sent = run_shares::<(), _>(
            &w.shares(&parts).unwrap(),
            &payloads,
            None,
            Instant::now(),
            |t| {
                let seen = &seen;
                move |r: Rec<'_>| {
                    seen.lock().unwrap().push((t, r.partition));
                    Ok(())
                }
            },
        )
        .unwrap();
        assert_eq!(sent.records, 101);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 101);
        assert!(seen.iter().all(|&(t, p)| p as usize % 2 == t), "{seen:?}");
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
            .run::<()>(Instant::now(), |r| {
                assert_eq!(r.value.len(), 10);
                assert_eq!(r.key, None);
                seen.push((r.seq, r.partition));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            n,
            Sent {
                records: 7,
                value_bytes: 70
            }
        );
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
            |r| if r.seq == 4 { Err(r.seq) } else { Ok(()) },
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
        assert_eq!(lp.run::<()>(start, |_| Ok(())).map(|s| s.records), Ok(131));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn send_loop_duration_zero_sends_nothing() {
        let parts = [0];
        let payloads = Payloads::new(1);
        let lp = SendLoop::new(Stop::Duration(Duration::ZERO), &parts, &payloads);
        assert_eq!(
            lp.run::<()>(Instant::now(), |_| Ok(())),
            Ok(Sent::default())
        );
    }

    #[test]
    fn key_pool_is_deterministic_distinct_and_fixed_width() {
        let a = Keys::new(10_000, 16);
        let b = Keys::new(10_000, 16);
        assert_eq!(a.len(), 10_000);
        assert_eq!(a.key(42), b"key-000000000042");
        assert_eq!(a.key(9_999), b"key-000000009999");
        let mut all: Vec<&[u8]> = (0..a.len()).map(|i| a.key(i)).collect();
        assert!(all.iter().all(|k| k.len() == Keys::LEN));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10_000, "keys are distinct");
        for i in 0..a.len() {
            assert_eq!(a.key(i), b.key(i));
            assert_eq!(a.partition(i), b.partition(i));
        }
        // A zero-key pool still has one key (never indexes out of range).
        assert_eq!(Keys::new(0, 4).len(), 1);
    }

    #[test]
    fn key_table_is_kring_s_partitioner() {
        for parts in [1, 16, 1000] {
            let keys = Keys::new(5_000, parts);
            let mut hit = vec![0u32; parts as usize];
            for i in 0..keys.len() {
                let want = kring_core::partitioner::partition_for_key(keys.key(i), parts) as i32;
                assert_eq!(keys.partition(i), want, "key {i} of {parts} partitions");
                hit[want as usize] += 1;
            }
            // 5,000 keys spread over every partition (1000: 5 on average).
            if parts <= 16 {
                assert!(hit.iter().all(|&h| h > 0), "{hit:?}");
            }
        }
        // The Java client's murmur2 on a key of the pool's shape, as a
        // fixed point: Utils.murmur2("key-000000000000".getBytes()).
        assert_eq!(
            kring_core::partitioner::murmur2(b"key-000000000000"),
            kring_core::partitioner::murmur2(Keys::new(1, 1).key(0))
        );
    }

    #[test]
    fn record_mix_is_splitmix64() {
        // SplitMix64 seeded with 0: its first outputs (the reference
        // sequence every client, the Java peer too, must reproduce).
        assert_eq!(mix(1), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(2), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(mix(3), 0x06C4_5D18_8009_454F);
        assert_eq!(pick(0, 10), 0);
        assert_eq!(pick(u32::MAX, 10), 9);
        assert_eq!(pick(1 << 31, 10), 5);
    }

    #[test]
    fn keyed_loop_sends_keys_spread_evenly_with_their_partitions() {
        let keys = Keys::new(100, 16);
        let payloads = Payloads::new(10);
        let parts: Vec<i32> = (0..16).collect();
        let lp = SendLoop::new(Stop::Records(100_000), &parts, &payloads).with_keys(Some(&keys));
        let mut per_key = vec![0u32; 100];
        let mut first = Vec::new();
        let sent = lp
            .run::<()>(Instant::now(), |r| {
                let k = r.key.expect("every record keyed");
                let i: usize = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
                assert_eq!(r.partition, keys.partition(i));
                per_key[i] += 1;
                if first.len() < 8 {
                    first.push(i);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(sent.records, 100_000);
        // Every key used, none more than 1.3x or less than 0.7x its share.
        assert!(
            per_key.iter().all(|&c| (700..=1300).contains(&c)),
            "{per_key:?}"
        );
        // Consecutive records get unrelated keys, the same for every run.
        let again: Vec<usize> = (0..8u64).map(|s| keys.index_for(mix(s))).collect();
        assert_eq!(first, again);
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert!(distinct.len() >= 6, "{first:?}");
    }

    #[test]
    fn mixed_sizes_follow_their_weights() {
        let w = parse(&["--value-sizes", "64:8,512:4,4096:2,16384:1"]);
        let payloads = Payloads::for_workload(&w);
        assert!(payloads.is_mixed());
        let expected = (64.0 * 8.0 + 512.0 * 4.0 + 4096.0 * 2.0 + 16384.0) / 15.0;
        assert!((payloads.average_size() - expected).abs() < 1e-9);
        let parts = [0, 1, 2];
        let lp = SendLoop::new(Stop::Records(150_000), &parts, &payloads);
        let mut count = std::collections::BTreeMap::new();
        let mut lens = Vec::new();
        let sent = lp
            .run::<()>(Instant::now(), |r| {
                *count.entry(r.value.len()).or_insert(0u32) += 1;
                if lens.len() < 16 {
                    lens.push(r.value.len());
                }
                Ok(())
            })
            .unwrap();
        for (size, weight) in [(64, 8), (512, 4), (4096, 2), (16384, 1)] {
            let share = f64::from(count[&size]) / 150_000.0;
            let want = f64::from(weight) / 15.0;
            assert!((share - want).abs() < 0.01, "{size}: {share} vs {want}");
        }
        assert!((sent.average_value_size() - expected).abs() / expected < 0.02);
        // The same sequence of sizes for every run (and every client).
        let again: Vec<usize> = (0..16)
            .map(|s| payloads.get_mixed(s, mix(s)).len())
            .collect();
        assert_eq!(lens, again);
        // One size, one weight: the classic single-size pool.
        let one = Payloads::mixed(&[SizeWeight {
            size: 100,
            weight: 1,
        }]);
        assert!(!one.is_mixed());
        assert_eq!(one.get(3), Payloads::new(100).get(3));
    }

    #[test]
    fn size_weights_parse() {
        assert_eq!(
            SizeWeight::parse("64").unwrap(),
            SizeWeight {
                size: 64,
                weight: 1
            }
        );
        assert_eq!(
            SizeWeight::parse("512:4").unwrap(),
            SizeWeight {
                size: 512,
                weight: 4
            }
        );
        for bad in ["", "x", "64:0", "64:x", "1:1:1", "99999999999:1"] {
            assert!(SizeWeight::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keyed_and_mixed_args_round_trip() {
        let w = parse(&[
            "--records",
            "10",
            "--keys",
            "100000",
            "--value-sizes",
            "64:8,512,16384:1",
            "--partitions",
            "1000",
        ]);
        assert_eq!(w.active(), 1000);
        assert_eq!(w.active_partition_ids().len(), 1000);
        let args: Vec<String> = w.to_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let w2 = parse(&args);
        assert_eq!(w2.to_args(), w.to_args());
        assert_eq!(w2.keys, 100_000);
        assert_eq!(w2.value_mix(), w.value_mix());
        assert!(
            w.describe().contains("100000 distinct keys"),
            "{}",
            w.describe()
        );
        assert!(
            w.describe().contains("64:8,512:1,16384:1"),
            "{}",
            w.describe()
        );
        // Keys hash over the whole topic: a receiving subset makes no sense.
        let e = W::try_parse_from(["t", "--keys", "10", "--active-partitions", "2"]);
        assert!(e.is_err());
        let e = W::try_parse_from(["t", "--value-size", "10", "--value-sizes", "2,3"]);
        assert!(e.is_err());
    }
}
