//! Producer settings, with the Java client's names and defaults.
//!
//! Why Java's defaults: users tune Kafka producers from the Java
//! documentation; the same names and defaults mean the same behaviour.
//! Differences are noted on the field.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use kring_protocol::record::Compression;

use crate::delivery::DeliveryCallback;
use crate::error::ConfigError;
use crate::partitioner::{
    DefaultPartitioner, Partitioner, RoundRobinPartitioner, UniformStickyPartitioner,
};
pub use crate::producer::sasl::{OAuthToken, OAuthTokenProvider, SaslConfig, SaslMechanism};

/// `acks`: how many replicas must acknowledge a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response; a record counts as delivered once it was
    /// handed to the network (its offset is reported as -1).
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all` (-1): every in-sync replica wrote it. The default.
    All,
}

impl Acks {
    /// The wire value.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// `security.protocol`: how connections to brokers are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: plain TCP. The default.
    #[default]
    Plaintext,
    /// `SSL`: TLS, no SASL.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL authentication over plain TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The property value, as Kafka writes it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses a property value (case-insensitive).
    pub fn parse(value: &str) -> Option<SecurityProtocol> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(value.trim()))
    }

    /// Whether connections run TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL after ApiVersions.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `partitioner.class` / `partitioner.ignore.keys`.
#[derive(Clone, Default)]
pub enum PartitionerChoice {
    /// Keys by murmur2, keyless records sticky (the Java default).
    #[default]
    Default,
    /// Ignore keys, everything sticky (`partitioner.ignore.keys=true`).
    UniformSticky,
    /// One record per partition in turn.
    RoundRobin,
    /// A custom partitioner.
    Custom(Arc<dyn Partitioner>),
}

impl fmt::Debug for PartitionerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionerChoice::Default => f.write_str("Default"),
            PartitionerChoice::UniformSticky => f.write_str("UniformSticky"),
            PartitionerChoice::RoundRobin => f.write_str("RoundRobin"),
            PartitionerChoice::Custom(p) => write!(f, "Custom({p:?})"),
        }
    }
}

impl PartitionerChoice {
    pub(crate) fn build(&self) -> Arc<dyn Partitioner> {
        match self {
            PartitionerChoice::Default => Arc::new(DefaultPartitioner),
            PartitionerChoice::UniformSticky => Arc::new(UniformStickyPartitioner),
            PartitionerChoice::RoundRobin => Arc::new(RoundRobinPartitioner::default()),
            PartitionerChoice::Custom(p) => p.clone(),
        }
    }
}

/// Every producer setting. Construct with `Config::default()` and override
/// fields; [`Config::validate`] runs when the core is created.
#[derive(Clone)]
pub struct Config {
    /// `bootstrap.servers`: `host:port` addresses to fetch metadata from.
    pub bootstrap: Vec<String>,
    /// `client.id`, sent in every request header. Default `"kring"`.
    pub client_id: String,
    /// `acks`. Default [`Acks::All`].
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records. Default 5 ms
    /// (the Java default since Kafka 4.0).
    pub linger: Duration,
    /// `batch.size`: target uncompressed batch size in bytes. Default 16384.
    pub batch_size: usize,
    /// `batch.num.messages` (librdkafka): a batch is sealed once it holds
    /// this many records. Default `i32::MAX` (no cap beyond `batch.size`,
    /// as in the Java client).
    pub batch_num_messages: u32,
    /// `max.request.size`: the largest request (and record) in bytes.
    /// Default 1 MiB.
    pub max_request_size: usize,
    /// `buffer.memory`: bytes of records buffered before `send` blocks.
    /// Default 32 MiB.
    pub buffer_memory: usize,
    /// `compression.type`. Default none.
    pub compression: Compression,
    /// The level `compression` compresses at (the Java client's
    /// `compression.gzip.level` / `compression.zstd.level`, librdkafka's
    /// `compression.level`, in the codec's own terms): gzip 0-9, zstd
    /// its range ([`Compression::levels`]). `None` (the default): the
    /// codec's default (gzip 6, zstd 3). lz4 and snappy take none.
    pub compression_level: Option<i32>,
    /// `enable.idempotence`. Default true (requires acks=all,
    /// max_in_flight <= 5, retries > 0).
    pub enable_idempotence: bool,
    /// `transactional.id`: makes the producer transactional (KIP-98):
    /// records are sent only inside transactions (`Shared::begin_transaction`
    /// … `commit_transaction`), which readers with `read_committed` see
    /// whole or not at all. Needs idempotence. Default none.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a
    /// transaction stay open before aborting it (sent with
    /// InitProducerId). Default 60 s, as in the Java client.
    pub transaction_timeout: Duration,
    /// `max.in.flight.requests.per.connection`. Default 5.
    pub max_in_flight: usize,
    /// `retries`. Default `i32::MAX` (delivery timeout bounds retrying).
    pub retries: u32,
    /// `retry.backoff.ms`. Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`. Default 1000 ms. Below `retry.backoff.ms`
    /// it is the backoff of every retry (the Java client's rule: its
    /// exponential backoff starts from the smaller of the two).
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`. Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`. Default 1000 ms. Below
    /// `reconnect.backoff.ms` it is the delay of every reconnect, as in the
    /// Java client.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`: the connect timeout of an
    /// attempt to reach a broker address after none failed (the driver
    /// bounds its name lookup, the TCP connect to each resolved address
    /// and the TLS handshake by it). Each consecutive failed attempt to
    /// the same address doubles it, with ±20 % jitter, up to
    /// [`connect_timeout_max`](Self::connect_timeout_max); a connection
    /// that got through resets it (the Java client's rule). Default 10 s.
    /// Each [`IoCommand::Connect`](crate::IoCommand::Connect) carries its
    /// attempt's timeout.
    pub connect_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`: the most the connect
    /// timeout grows to. Default 30 s. Not above `connect_timeout`, it is
    /// every attempt's timeout, without growth or jitter, as in the Java
    /// client.
    pub connect_timeout_max: Duration,
    /// `delivery.timeout.ms`: upper bound from `send` to a final result.
    /// Default 120 s. Must be at least `linger + request_timeout`.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms`. Default 30 s.
    pub request_timeout: Duration,
    /// `metadata.max.age.ms`: periodic metadata refresh. Default 5 min.
    pub metadata_max_age: Duration,
    /// `metadata.max.idle.ms`: a topic nothing was sent to for this long,
    /// with nothing buffered or in flight, is left out of metadata
    /// requests until it is sent to again (which asks for its metadata
    /// soon). Its partitions' state, idempotent sequences included, is
    /// kept. Default 5 min; at least 5 s, as in the Java client.
    pub metadata_max_idle: Duration,
    /// `connections.max.idle.ms`: a ready connection with nothing in
    /// flight and no request or response for this long is closed (and
    /// opened again when needed), so that it is the client, not the
    /// broker's own idle timeout (10 min by default), that ends it, and
    /// never under a request just written. `None`: never (Java's -1,
    /// librdkafka's 0). Default 9 min, as in the Java client.
    pub connections_max_idle: Option<Duration>,
    /// `max.block.ms`: how long `send` may block for metadata or buffer
    /// memory (the caller turns it into a deadline). Default 60 s.
    pub max_block: Duration,
    /// `topic.metadata.propagation.max.ms` (librdkafka): how long after a
    /// topic was first used the brokers' UNKNOWN_TOPIC_OR_PARTITION is taken
    /// as "maybe still being created". Past it the topic counts as missing:
    /// waiting sends fail with `TopicError` (UNKNOWN_TOPIC_OR_PARTITION) and
    /// later sends fail at once, each asking for fresh metadata so the topic
    /// is used as soon as it exists. Default 5 s (librdkafka: 30 s, the Java
    /// client waits out `max.block.ms`): a KRaft broker learns a new topic
    /// within a second of its creation, and a send to a topic that does not
    /// exist should say so promptly.
    pub topic_metadata_propagation: Duration,
    /// `security.protocol`. Default [`SecurityProtocol::Plaintext`].
    pub security_protocol: SecurityProtocol,
    /// `sasl.*`: required by `SASL_PLAINTEXT` / `SASL_SSL`, ignored
    /// otherwise (as the Java client does).
    pub sasl: Option<SaslConfig>,
    /// Partitioner. Default: murmur2 for keys, sticky otherwise.
    pub partitioner: PartitionerChoice,
    /// `partitioner.adaptive.partitioning.enable` (KIP-794): when the
    /// sticky partitioner moves on, it prefers partitions with fewer
    /// batches waiting to be sent, so partitions led by a slow broker get
    /// fewer keyless records. Default true, as in the Java client; false
    /// picks the next partition uniformly among those with a leader.
    pub partitioner_adaptive: bool,
    /// `partitioner.availability.timeout.ms` (KIP-794): with adaptive
    /// partitioning, a broker that has had batches ready for longer than
    /// this without being able to take them (its connection down, throttled
    /// or with `max.in.flight` requests unanswered) has its partitions left
    /// out when the sticky partitioner moves on, until it takes a request
    /// again. Zero (the default, as in Java) turns this off. No effect
    /// with `partitioner_adaptive` false.
    pub partitioner_availability_timeout: Duration,
    /// Optional per-record delivery callback, run on the I/O thread.
    pub on_delivery: Option<DeliveryCallback>,
    /// `statistics.interval.ms`: how often [`on_statistics`](Self::on_statistics)
    /// is called. Zero (the default) never calls it; otherwise at least
    /// 1 ms.
    pub statistics_interval: Duration,
    /// Optional statistics callback, run on the I/O thread every
    /// `statistics_interval` (fenced: a panic is caught and counted).
    pub on_statistics: Option<crate::StatisticsCallback>,
    /// Seed of the jitter PRNG (tests fix it; any value works).
    pub jitter_seed: u64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bootstrap", &self.bootstrap)
            .field("client_id", &self.client_id)
            .field("acks", &self.acks)
            .field("linger", &self.linger)
            .field("batch_size", &self.batch_size)
            .field("batch_num_messages", &self.batch_num_messages)
            .field("max_request_size", &self.max_request_size)
            .field("buffer_memory", &self.buffer_memory)
            .field("compression", &self.compression)
            .field("compression_level", &self.compression_level)
            .field("enable_idempotence", &self.enable_idempotence)
            .field("max_in_flight", &self.max_in_flight)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("retry_backoff_max", &self.retry_backoff_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("connect_timeout_max", &self.connect_timeout_max)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("metadata_max_age", &self.metadata_max_age)
            .field("metadata_max_idle", &self.metadata_max_idle)
            .field("connections_max_idle", &self.connections_max_idle)
            .field("max_block", &self.max_block)
            .field(
                "topic_metadata_propagation",
                &self.topic_metadata_propagation,
            )
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("partitioner", &self.partitioner)
            .field("partitioner_adaptive", &self.partitioner_adaptive)
            .field(
                "partitioner_availability_timeout",
                &self.partitioner_availability_timeout,
            )
            .field("transactional_id", &self.transactional_id)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("on_delivery", &self.on_delivery.is_some())
            .field("statistics_interval", &self.statistics_interval)
            .field("on_statistics", &self.on_statistics.is_some())
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bootstrap: Vec::new(),
            client_id: "kring".to_owned(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            batch_num_messages: i32::MAX as u32,
            max_request_size: 1_048_576,
            buffer_memory: 32 * 1024 * 1024,
            compression: Compression::None,
            compression_level: None,
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            max_in_flight: 5,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            connect_timeout: Duration::from_secs(10),
            connect_timeout_max: Duration::from_secs(30),
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
            metadata_max_idle: Duration::from_secs(300),
            connections_max_idle: Some(Duration::from_secs(540)),
            max_block: Duration::from_secs(60),
            topic_metadata_propagation: Duration::from_secs(5),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            partitioner: PartitionerChoice::Default,
            partitioner_adaptive: true,
            partitioner_availability_timeout: Duration::ZERO,
            on_delivery: None,
            statistics_interval: Duration::ZERO,
            on_statistics: None,
            jitter_seed: 0x006b_7269_6e67,
        }
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The longest duration any setting may have: `i32::MAX` milliseconds
/// (about 24.8 days), the range of Kafka's millisecond settings. Bounding
/// every duration keeps deadline arithmetic (`now + linger`,
/// `linger + request_timeout`, ...) free of overflow.
pub const MAX_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

/// The shortest `metadata.max.idle.ms`, as in the Java client: a topic is
/// not forgotten between two sends a few seconds apart.
pub const METADATA_MAX_IDLE_MIN: Duration = Duration::from_secs(5);

/// The largest `max.request.size`: a Kafka frame's size is an `i32`.
pub const MAX_REQUEST_SIZE: usize = i32::MAX as usize;

/// Checks one `bootstrap.servers` entry: `host:port` with a non-empty host
/// free of whitespace and a port in 1..=65535 (`[v6]:port` for IPv6). A
/// URL scheme is not part of an entry (the `kring` crate strips
/// `PLAINTEXT://`; TLS and SASL are chosen with `security.protocol`).
pub fn check_bootstrap_entry(a: &str) -> Result<(), String> {
    if let Some((scheme, _)) = a.split_once("://") {
        return Err(format!(
            "`{a}`: the {scheme}:// prefix is not accepted (use host:port, or PLAINTEXT://host:port, and choose TLS/SASL with security.protocol)"
        ));
    }
    if a.chars().any(char::is_whitespace) {
        return Err(format!("`{a}` contains whitespace"));
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("`{a}` is not host:port"));
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("`{a}` has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!("`{a}`: write an IPv6 address as [address]:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("`{a}`: the port must be a number from 1 to 65535")),
    }
}

impl Config {
    /// A compression level is one the codec has, and lz4 (only the fast
    /// compressor here) and snappy take none: a level that would not be
    /// used is refused rather than ignored.
    fn check_compression_level(&self) -> Result<(), ConfigError> {
        let Some(level) = self.compression_level else {
            return Ok(());
        };
        let codec = self.compression;
        let setting = match codec {
            Compression::Gzip => "compression.gzip.level",
            Compression::Lz4 => "compression.lz4.level",
            Compression::Zstd => "compression.zstd.level",
            Compression::None | Compression::Snappy => "compression.level",
        };
        match codec.levels() {
            Some(range) if range.contains(&level) => Ok(()),
            Some(range) => Err(invalid(
                setting,
                format!(
                    "{level} is not a {codec} level ({}..={})",
                    range.start(),
                    range.end()
                ),
            )),
            None if codec == Compression::Lz4 => Err(invalid(
                setting,
                format!(
                    "{level}: kring's lz4 (lz4_flex) has no high-compression mode, only the \
                     fast compressor (the Java client's default level 9, librdkafka's -1 or 0)"
                ),
            )),
            None => Err(invalid(
                setting,
                format!("{level}: compression.type={codec} takes no level"),
            )),
        }
    }

    /// Checks the settings the way the Java client does, and bounds every
    /// value so that no later arithmetic can overflow or allocate without
    /// limit. This is the one validation of the producer's settings: the
    /// `kring` crate runs it too, before it builds anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap.is_empty() {
            return Err(invalid("bootstrap.servers", "no address given"));
        }
        for a in &self.bootstrap {
            check_bootstrap_entry(a).map_err(|r| invalid("bootstrap.servers", r))?;
        }
        if self.client_id.len() > i16::MAX as usize {
            return Err(invalid("client.id", "longer than 32767 bytes"));
        }
        for (setting, d) in [
            ("linger.ms", self.linger),
            ("retry.backoff.ms", self.retry_backoff),
            ("retry.backoff.max.ms", self.retry_backoff_max),
            ("reconnect.backoff.ms", self.reconnect_backoff),
            ("reconnect.backoff.max.ms", self.reconnect_backoff_max),
            ("socket.connection.setup.timeout.ms", self.connect_timeout),
            (
                "socket.connection.setup.timeout.max.ms",
                self.connect_timeout_max,
            ),
            ("delivery.timeout.ms", self.delivery_timeout),
            ("request.timeout.ms", self.request_timeout),
            ("metadata.max.age.ms", self.metadata_max_age),
            ("metadata.max.idle.ms", self.metadata_max_idle),
            ("max.block.ms", self.max_block),
            (
                "topic.metadata.propagation.max.ms",
                self.topic_metadata_propagation,
            ),
            ("statistics.interval.ms", self.statistics_interval),
        ] {
            if d > MAX_DURATION {
                return Err(invalid(
                    setting,
                    format!(
                        "{} ms exceeds the maximum of {} ms",
                        d.as_millis(),
                        MAX_DURATION.as_millis()
                    ),
                ));
            }
        }
        // Below a millisecond (possible only through the typed setter) the
        // I/O thread would do little but build statistics.
        if !self.statistics_interval.is_zero()
            && self.statistics_interval < Duration::from_millis(1)
        {
            return Err(invalid(
                "statistics.interval.ms",
                format!(
                    "{:?} is below 1 ms (0 turns statistics off)",
                    self.statistics_interval
                ),
            ));
        }
        self.check_compression_level()?;
        match self.security_protocol {
            SecurityProtocol::Plaintext | SecurityProtocol::Ssl => {}
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => match &self.sasl {
                None => {
                    return Err(invalid(
                        "sasl.mechanism",
                        format!(
                            "{} needs a SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (kring has no GSSAPI, the Java default)",
                            self.security_protocol.name()
                        ),
                    ))
                }
                Some(s) => s
                    .check()
                    .map_err(|(setting, reason)| invalid(setting, reason))?,
            },
        }
        if self.max_request_size < 128 {
            return Err(invalid("max.request.size", "must be at least 128 bytes"));
        }
        if self.max_request_size > MAX_REQUEST_SIZE {
            return Err(invalid(
                "max.request.size",
                format!("must be at most {MAX_REQUEST_SIZE} bytes"),
            ));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch.size", "must be at least 1"));
        }
        if self.batch_size > self.max_request_size {
            return Err(invalid(
                "batch.size",
                format!(
                    "{} bytes exceeds max.request.size ({} bytes): no request could carry such a batch",
                    self.batch_size, self.max_request_size
                ),
            ));
        }
        if self.batch_num_messages == 0 || self.batch_num_messages > i32::MAX as u32 {
            return Err(invalid(
                "batch.num.messages",
                "must be within 1..=2147483647",
            ));
        }
        if self.buffer_memory < self.batch_size {
            return Err(invalid(
                "buffer.memory",
                format!(
                    "{} bytes is smaller than batch.size ({} bytes)",
                    self.buffer_memory, self.batch_size
                ),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(invalid(
                "max.in.flight.requests.per.connection",
                "must be at least 1",
            ));
        }
        if self.max_in_flight > i32::MAX as usize {
            return Err(invalid(
                "max.in.flight.requests.per.connection",
                "must be at most 2147483647",
            ));
        }
        if self.retries > i32::MAX as u32 {
            return Err(invalid("retries", "must be at most 2147483647"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request.timeout.ms", "must be positive"));
        }
        // A zero timeout would fail every connect before it started.
        for (setting, d) in [
            ("socket.connection.setup.timeout.ms", self.connect_timeout),
            (
                "socket.connection.setup.timeout.max.ms",
                self.connect_timeout_max,
            ),
        ] {
            if d.is_zero() {
                return Err(invalid(setting, "must be positive"));
            }
        }
        // Both are bounded above, so the sum cannot overflow.
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(invalid(
                "delivery.timeout.ms",
                format!(
                    "{} ms is below linger.ms + request.timeout.ms ({} ms)",
                    self.delivery_timeout.as_millis(),
                    (self.linger + self.request_timeout).as_millis()
                ),
            ));
        }
        if self.metadata_max_age.is_zero() {
            return Err(invalid("metadata.max.age.ms", "must be positive"));
        }
        if let Some(d) = self.connections_max_idle {
            if d.is_zero() || d > MAX_DURATION {
                return Err(invalid(
                    "connections.max.idle.ms",
                    format!(
                        "{} ms is outside 1..={} ms (None: never close idle connections)",
                        d.as_millis(),
                        MAX_DURATION.as_millis()
                    ),
                ));
            }
        }
        if self.metadata_max_idle < METADATA_MAX_IDLE_MIN {
            return Err(invalid(
                "metadata.max.idle.ms",
                format!(
                    "{} ms is below the minimum of {} ms",
                    self.metadata_max_idle.as_millis(),
                    METADATA_MAX_IDLE_MIN.as_millis()
                ),
            ));
        }
        if let Some(id) = &self.transactional_id {
            if !self.enable_idempotence {
                return Err(ConfigError::IdempotenceConflict(
                    "enable.idempotence=true (a transactional.id needs it)",
                ));
            }
            if id.is_empty() || id.len() > i16::MAX as usize {
                return Err(invalid(
                    "transactional.id",
                    "must be 1 to 32767 bytes".to_owned(),
                ));
            }
            let ms = self.transaction_timeout.as_millis();
            if ms == 0 || ms > i32::MAX as u128 {
                return Err(invalid(
                    "transaction.timeout.ms",
                    format!("{ms} ms is outside 1..={} ms", i32::MAX),
                ));
            }
        }
        if self.enable_idempotence {
            if self.acks != Acks::All {
                return Err(ConfigError::IdempotenceConflict("acks=all"));
            }
            if self.max_in_flight > 5 {
                return Err(ConfigError::IdempotenceConflict(
                    "max.in.flight.requests.per.connection <= 5",
                ));
            }
            if self.retries == 0 {
                return Err(ConfigError::IdempotenceConflict("retries > 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config {
            bootstrap: vec!["127.0.0.1:9092".into()],
            ..Config::default()
        }
    }

    /// A transactional id must be a Kafka string, needs idempotence, and
    /// its timeout must fit InitProducerId's int32.
    #[test]
    fn transactional_settings_are_checked() {
        let tx = |id: &str| Config {
            transactional_id: Some(id.to_owned()),
            ..base()
        };
        assert!(tx("tx-1").validate().is_ok());
        assert!(tx("").validate().is_err());
        assert!(tx(&"x".repeat(i16::MAX as usize + 1)).validate().is_err());
        let no_idem = Config {
            enable_idempotence: false,
            ..tx("tx-1")
        };
        assert!(matches!(
            no_idem.validate(),
            Err(ConfigError::IdempotenceConflict(_))
        ));
        for (ms, ok) in [
            (0, false),
            (1, true),
            (i32::MAX as u64, true),
            (i32::MAX as u64 + 1, false),
        ] {
            let c = Config {
                transaction_timeout: Duration::from_millis(ms),
                ..tx("tx-1")
            };
            assert_eq!(c.validate().is_ok(), ok, "{ms} ms");
        }
    }

    #[test]
    fn java_defaults() {
        let c = Config::default();
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.batch_size, 16384);
        assert_eq!(c.max_request_size, 1_048_576);
        assert_eq!(c.buffer_memory, 33_554_432);
        assert!(c.enable_idempotence);
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.retries, 2_147_483_647);
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(1000));
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.metadata_max_age, Duration::from_secs(300));
        assert_eq!(c.metadata_max_idle, Duration::from_secs(300));
        assert_eq!(c.connections_max_idle, Some(Duration::from_secs(540)));
        assert_eq!(c.max_block, Duration::from_secs(60));
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.connect_timeout_max, Duration::from_secs(30));
        assert_eq!(c.client_id, "kring");
        assert!(base().validate().is_ok());
    }

    /// `acks` on the wire: 0, 1, and -1 for all.
    #[test]
    fn acks_wire_values() {
        assert_eq!(
            [Acks::None, Acks::Leader, Acks::All].map(Acks::wire),
            [0, 1, -1]
        );
    }

    /// Each limit `validate` checks takes its own edge value and refuses
    /// the next one.
    #[test]
    fn limits_take_their_edge_values() {
        let ok = |c: Config| assert!(c.validate().is_ok(), "{c:?}");
        let refused = |c: Config, setting: &str| match c.validate() {
            Err(ConfigError::Invalid { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("{setting}: {other:?}"),
        };
        ok(Config {
            delivery_timeout: MAX_DURATION,
            ..base()
        });
        refused(
            Config {
                delivery_timeout: MAX_DURATION + Duration::from_millis(1),
                ..base()
            },
            "delivery.timeout.ms",
        );
        for (setting, set) in [
            (
                "socket.connection.setup.timeout.ms",
                (|c, d| c.connect_timeout = d) as fn(&mut Config, Duration),
            ),
            ("socket.connection.setup.timeout.max.ms", |c, d| {
                c.connect_timeout_max = d
            }),
        ] {
            let with = |d| {
                let mut c = base();
                set(&mut c, d);
                c
            };
            ok(with(Duration::from_millis(1)));
            ok(with(MAX_DURATION));
            refused(with(Duration::ZERO), setting);
            refused(with(MAX_DURATION + Duration::from_millis(1)), setting);
        }
        // A max below the start is the Java client's constant timeout, not
        // an error.
        ok(Config {
            connect_timeout: Duration::from_secs(60),
            connect_timeout_max: Duration::from_secs(1),
            ..base()
        });
        ok(Config {
            client_id: "c".repeat(i16::MAX as usize),
            ..base()
        });
        refused(
            Config {
                client_id: "c".repeat(i16::MAX as usize + 1),
                ..base()
            },
            "client.id",
        );
        for (idle, fits) in [
            (None, true),
            (Some(Duration::from_millis(1)), true),
            (Some(MAX_DURATION), true),
            (Some(Duration::ZERO), false),
            (Some(MAX_DURATION + Duration::from_millis(1)), false),
        ] {
            let c = Config {
                connections_max_idle: idle,
                ..base()
            };
            if fits {
                ok(c);
            } else {
                refused(c, "connections.max.idle.ms");
            }
        }
        ok(Config {
            metadata_max_idle: METADATA_MAX_IDLE_MIN,
            ..base()
        });
        refused(
            Config {
                metadata_max_idle: METADATA_MAX_IDLE_MIN - Duration::from_millis(1),
                ..base()
            },
            "metadata.max.idle.ms",
        );
        refused(
            Config {
                metadata_max_idle: MAX_DURATION + Duration::from_millis(1),
                ..base()
            },
            "metadata.max.idle.ms",
        );
        for (size, fits) in [
            (127, false),
            (128, true),
            (MAX_REQUEST_SIZE, true),
            (MAX_REQUEST_SIZE + 1, false),
        ] {
            let c = Config {
                max_request_size: size,
                batch_size: size.min(128),
                ..base()
            };
            if fits {
                ok(c);
            } else {
                refused(c, "max.request.size");
            }
        }
        let batch = base().batch_size;
        ok(Config {
            buffer_memory: batch,
            ..base()
        });
        refused(
            Config {
                buffer_memory: batch - 1,
                ..base()
            },
            "buffer.memory",
        );
        ok(Config {
            batch_num_messages: i32::MAX as u32,
            ..base()
        });
        for n in [0, i32::MAX as u32 + 1] {
            refused(
                Config {
                    batch_num_messages: n,
                    ..base()
                },
                "batch.num.messages",
            );
        }
        let (no_idempotence, max) = (
            Config {
                enable_idempotence: false,
                ..base()
            },
            i32::MAX as usize,
        );
        ok(Config {
            max_in_flight: max,
            retries: max as u32,
            ..no_idempotence.clone()
        });
        refused(
            Config {
                max_in_flight: max + 1,
                ..no_idempotence.clone()
            },
            "max.in.flight.requests.per.connection",
        );
        refused(
            Config {
                retries: max as u32 + 1,
                ..no_idempotence
            },
            "retries",
        );
    }

    /// A level the codec has is accepted; one it lacks, and any level for
    /// lz4 (only the fast compressor) or snappy, is refused with a reason.
    #[test]
    fn compression_levels_are_the_codecs_own() {
        let with = |compression, level| {
            Config {
                compression,
                compression_level: level,
                ..base()
            }
            .validate()
        };
        for (codec, level) in [
            (Compression::Gzip, 0),
            (Compression::Gzip, 9),
            (Compression::Zstd, -131_072),
            (Compression::Zstd, 22),
        ] {
            with(codec, Some(level)).unwrap_or_else(|e| panic!("{codec} {level}: {e}"));
        }
        for codec in Compression::ALL {
            with(codec, None).unwrap();
        }
        for (codec, level, setting, says) in [
            (Compression::Gzip, 10, "compression.gzip.level", "0..=9"),
            (Compression::Gzip, -1, "compression.gzip.level", "0..=9"),
            (Compression::Zstd, 23, "compression.zstd.level", "..=22"),
            (
                Compression::Lz4,
                12,
                "compression.lz4.level",
                "high-compression",
            ),
            (
                Compression::Snappy,
                1,
                "compression.level",
                "takes no level",
            ),
            (Compression::None, 1, "compression.level", "takes no level"),
        ] {
            match with(codec, Some(level)) {
                Err(ConfigError::Invalid { setting: s, reason }) => {
                    assert_eq!(s, setting, "{codec} {level}");
                    assert!(reason.contains(says), "{codec} {level}: {reason}");
                }
                other => panic!("{codec} {level}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_bad_settings() {
        assert!(Config::default().validate().is_err(), "no bootstrap");
        let c = Config {
            bootstrap: vec!["nohost".into()],
            ..base()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                setting: "bootstrap.servers",
                ..
            })
        ));
        let c = Config {
            acks: Acks::Leader,
            ..base()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::IdempotenceConflict("acks=all"))
        );
        let c = Config {
            acks: Acks::Leader,
            enable_idempotence: false,
            ..base()
        };
        assert!(c.validate().is_ok());
        let c = Config {
            delivery_timeout: Duration::from_secs(10),
            ..base()
        };
        assert!(c.validate().is_err());
        let c = Config {
            max_in_flight: 6,
            ..base()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::IdempotenceConflict(_))
        ));
    }

    #[test]
    fn port_zero_and_nonsense_bootstrap_are_refused() {
        for bad in [
            "host:0",
            "host:",
            ":9092",
            "host",
            "ho st:9092",
            "host:9092 ",
            "host:65536",
            "SSL://host:9093",
            "::1:9092",
            "[]:9092",
        ] {
            let c = Config {
                bootstrap: vec![bad.into()],
                ..base()
            };
            assert!(
                matches!(
                    c.validate(),
                    Err(ConfigError::Invalid {
                        setting: "bootstrap.servers",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        for good in ["host:1", "[::1]:9092", "10.0.0.1:65535"] {
            let c = Config {
                bootstrap: vec![good.into()],
                ..base()
            };
            assert_eq!(c.validate(), Ok(()), "{good}");
        }
    }

    #[test]
    fn extreme_values_are_errors_and_creating_a_core_never_panics() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            MAX_DURATION,
            MAX_DURATION + Duration::from_millis(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ];
        let sizes = [
            0,
            1,
            127,
            128,
            16_384,
            MAX_REQUEST_SIZE,
            MAX_REQUEST_SIZE + 1,
            usize::MAX,
        ];
        let now = kring_testclock::origin();
        let mut accepted = 0;
        let mut refused = 0;
        // A panic anywhere here fails the test.
        let mut check = |c: Config| {
            let ok = c.validate().is_ok();
            let created = crate::ProducerCore::new(c, now).is_ok();
            assert_eq!(ok, created, "validate and ProducerCore::new disagree");
            if ok {
                accepted += 1;
            } else {
                refused += 1;
            }
        };
        for &d in &durations {
            type Set = fn(&mut Config, Duration);
            let setters: [Set; 13] = [
                |c, d| c.linger = d,
                |c, d| c.retry_backoff = d,
                |c, d| c.retry_backoff_max = d,
                |c, d| c.reconnect_backoff = d,
                |c, d| c.reconnect_backoff_max = d,
                |c, d| c.delivery_timeout = d,
                |c, d| c.request_timeout = d,
                |c, d| c.metadata_max_age = d,
                |c, d| c.metadata_max_idle = d,
                |c, d| c.connections_max_idle = Some(d),
                |c, d| c.max_block = d,
                |c, d| c.connect_timeout = d,
                |c, d| c.connect_timeout_max = d,
            ];
            for set in setters {
                let mut c = base();
                set(&mut c, d);
                check(c);
                // Everything at once.
                let mut c = base();
                for set in setters {
                    set(&mut c, d);
                }
                check(c);
            }
        }
        for &a in &sizes {
            for &b in &sizes {
                for &m in &sizes {
                    check(Config {
                        batch_size: a,
                        max_request_size: b,
                        buffer_memory: m,
                        ..base()
                    });
                }
                check(Config {
                    max_in_flight: a,
                    enable_idempotence: false,
                    ..base()
                });
            }
        }
        for retries in [0, 1, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX] {
            check(Config { retries, ..base() });
        }
        assert!(accepted > 0 && refused > 0, "{accepted} {refused}");
        // The named extremes.
        for c in [
            Config {
                linger: Duration::MAX,
                ..base()
            },
            Config {
                batch_size: 0,
                ..base()
            },
            Config {
                batch_size: 2 << 20,
                ..base()
            },
            Config {
                buffer_memory: 100,
                ..base()
            },
            Config {
                request_timeout: Duration::ZERO,
                ..base()
            },
            Config {
                max_block: Duration::MAX,
                ..base()
            },
        ] {
            assert!(
                matches!(c.validate(), Err(ConfigError::Invalid { .. })),
                "{c:?}"
            );
        }
    }
}
