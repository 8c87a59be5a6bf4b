//! Producer settings: typed, with the Java client's names, defaults and
//! cross-checks, so a configuration ported from a Java or librdkafka
//! producer means the same thing here.
//!
//! A setting remembers whether it was set explicitly: like the Java client,
//! kring turns idempotence off quietly when only the *default* of
//! `enable.idempotence` conflicts with an explicit `acks`, but refuses a
//! configuration that explicitly asks for both. Likewise a default
//! `batch.size` (or `delivery.timeout.ms`) yields to the explicit settings
//! it would conflict with.

pub(crate) mod assertion;
mod describe;
mod error;
pub(crate) mod oauth;
mod properties;
mod sasl;
mod ssl;
mod to_core;

use std::time::Duration;

pub use describe::property_description;
pub use error::ConfigError;
pub use kring_core::{Acks, Compression, OAuthToken, SaslMechanism, SecurityProtocol};
pub use properties::PROPERTY_NAMES;
#[cfg(all(test, feature = "tls"))]
pub(crate) use ssl::TlsVersions;
pub(crate) use ssl::{Pem, SslSettings};
pub use ssl::{TlsCipherSuite, TlsVersion};

/// How a partition is chosen for a record sent without one (`partitioner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PartitionerKind {
    /// The Java client's default: keyed records go to
    /// `murmur2(key) % partitions`; keyless records stick to one partition
    /// until a batch is full, then move on (KIP-480). librdkafka calls it
    /// `murmur2_random`.
    #[default]
    Default,
    /// Keys are ignored: every record uses the sticky keyless strategy
    /// (what Java's `partitioner.ignore.keys=true` makes of the default).
    Sticky,
    /// Keys are ignored: each record goes to the next partition in turn
    /// (Java's `RoundRobinPartitioner`).
    RoundRobin,
}

/// Which kernel interface the I/O thread uses (`io.backend`, kring only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IoBackend {
    /// io_uring where the kernel allows it, else epoll (the default). The
    /// choice and its reason are logged once when the producer starts.
    #[default]
    Auto,
    /// io_uring only: building the producer fails where it is refused (old
    /// kernel, seccomp profile, `kernel.io_uring_disabled`).
    IoUring,
    /// epoll with non-blocking sockets: works wherever Linux does.
    Epoll,
}

impl IoBackend {
    /// The property value: `auto`, `io_uring` or `epoll`.
    pub fn as_str(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::IoUring => "io_uring",
            IoBackend::Epoll => "epoll",
        }
    }

    /// Parses a property value (any case; `io-uring` and `iouring` too).
    pub fn parse(v: &str) -> Option<IoBackend> {
        match v.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(IoBackend::Auto),
            "io_uring" | "io-uring" | "iouring" => Some(IoBackend::IoUring),
            "epoll" => Some(IoBackend::Epoll),
            _ => None,
        }
    }
}

impl std::fmt::Display for IoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A setting with whether the user chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Setting<T> {
    value: T,
    explicit: bool,
}

impl<T> Setting<T> {
    const fn default(value: T) -> Self {
        Setting {
            value,
            explicit: false,
        }
    }
    fn set(&mut self, value: T) {
        self.value = value;
        self.explicit = true;
    }
}

/// The producer's configuration. Build it with the typed setters or from
/// Kafka property names ([`ProducerConfig::from_properties`]); it is
/// checked when the producer is built ([`ProducerConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    bootstrap_servers: Vec<String>,
    client_id: String,
    acks: Setting<Acks>,
    linger: Duration,
    batch_size: Setting<usize>,
    batch_num_messages: u32,
    compression: Compression,
    compression_gzip_level: Setting<i32>,
    compression_lz4_level: Setting<i32>,
    compression_zstd_level: Setting<i32>,
    compression_level: Setting<i32>,
    enable_idempotence: Setting<bool>,
    transactional_id: Option<String>,
    transaction_timeout: Duration,
    max_in_flight: Setting<usize>,
    retries: Setting<u32>,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    reconnect_backoff: Duration,
    reconnect_backoff_max: Duration,
    delivery_timeout: Setting<Duration>,
    request_timeout: Duration,
    buffer_memory: usize,
    max_block: Duration,
    max_request_size: usize,
    partitioner: PartitionerKind,
    partitioner_ignore_keys: bool,
    partitioner_adaptive: bool,
    partitioner_availability_timeout: Duration,
    metadata_max_age: Duration,
    metadata_max_idle: Duration,
    connections_max_idle: Option<Duration>,
    connect_timeout: Duration,
    connect_timeout_max: Duration,
    security_protocol: SecurityProtocol,
    topic_metadata_propagation: Duration,
    statistics_interval: Duration,
    sasl: sasl::SaslSettings,
    ssl: SslSettings,
    io_backend: IoBackend,
    compression_threads: Option<u32>,
    send_buffer: u32,
    receive_buffer: u32,
    socket_keepalive: bool,
    delivery_report_only_error: bool,
}

impl Default for ProducerConfig {
    /// The Java client's defaults (Kafka 4.0), without bootstrap servers.
    fn default() -> Self {
        ProducerConfig {
            bootstrap_servers: Vec::new(),
            client_id: "kring".to_owned(),
            acks: Setting::default(Acks::All),
            linger: Duration::from_millis(5),
            batch_size: Setting::default(16 * 1024),
            batch_num_messages: i32::MAX as u32,
            compression: Compression::None,
            compression_gzip_level: Setting::default(GZIP_LEVELS.default),
            compression_lz4_level: Setting::default(LZ4_LEVELS.default),
            compression_zstd_level: Setting::default(ZSTD_LEVELS.default),
            compression_level: Setting::default(RDKAFKA_LEVELS.default),
            enable_idempotence: Setting::default(true),
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            max_in_flight: Setting::default(5),
            retries: Setting::default(i32::MAX as u32),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            delivery_timeout: Setting::default(Duration::from_secs(120)),
            request_timeout: Duration::from_secs(30),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            partitioner: PartitionerKind::Default,
            partitioner_ignore_keys: false,
            partitioner_adaptive: true,
            partitioner_availability_timeout: Duration::ZERO,
            metadata_max_age: Duration::from_secs(300),
            metadata_max_idle: Duration::from_secs(300),
            connections_max_idle: Some(Duration::from_secs(540)),
            connect_timeout: Duration::from_secs(10),
            connect_timeout_max: Duration::from_secs(30),
            security_protocol: SecurityProtocol::Plaintext,
            topic_metadata_propagation: Duration::from_secs(5),
            statistics_interval: Duration::ZERO,
            sasl: sasl::SaslSettings::default(),
            ssl: SslSettings::default(),
            io_backend: IoBackend::Auto,
            compression_threads: None,
            send_buffer: 0,
            receive_buffer: 0,
            socket_keepalive: true,
            delivery_report_only_error: false,
        }
    }
}

macro_rules! setters {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty => |$cfg:ident, $v:ident| $body:expr; )*) => {
        impl ProducerConfig {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $v: $ty) -> Self {
                    let $cfg = &mut self;
                    $body;
                    self
                }
            )*
        }
        impl crate::producer::ProducerBuilder {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, $v: $ty) -> Self {
                    self.config = self.config.$name($v);
                    self
                }
            )*
        }
    };
}

setters! {
    /// `bootstrap.servers`: a comma-separated list of `host:port` (or
    /// `PLAINTEXT://host:port`) to fetch metadata from. Required.
    bootstrap: &str => |c, v| c.bootstrap_servers = split_servers(v);
    /// `client.id`: sent with every request, shown in broker logs.
    client_id: &str => |c, v| c.client_id = v.to_owned();
    /// `acks`.
    acks: Acks => |c, v| c.acks.set(v);
    /// `linger.ms`: how long a batch waits for more records before it is
    /// sent.
    linger: Duration => |c, v| c.linger = v;
    /// `batch.size`: the size in bytes at which a batch is sealed. 0
    /// disables batching, as in the Java client: every record is a batch
    /// of its own.
    batch_size: usize => |c, v| c.batch_size.set(v);
    /// `batch.num.messages` (librdkafka): a batch is sealed once it holds
    /// this many records (1..=2147483647; default no cap beyond
    /// `batch.size`).
    batch_num_messages: u32 => |c, v| c.batch_num_messages = v;
    /// `compression.type`.
    compression: Compression => |c, v| c.compression = v;
    /// `compression.level` (librdkafka): the level of whichever codec
    /// `compression.type` selects, -1 (the codec's default, the default)
    /// to 12: gzip 0 (stored) to 9 (10-12 mean 9, as in librdkafka), zstd
    /// 0-12 (0: its default, 3); lz4 and snappy only -1 or 0 (kring's lz4
    /// has only the fast compressor). For the Java client's per-codec
    /// levels see [`compression_gzip_level`](Self::compression_gzip_level)
    /// and its siblings; setting both for the selected codec is refused.
    compression_level: i32 => |c, v| c.compression_level.set(v);
    /// `compression.gzip.level` (Java, KIP-390): 1 (fastest) to 9
    /// (smallest), or -1 (the default): deflate's default, 6.
    compression_gzip_level: i32 => |c, v| c.compression_gzip_level.set(v);
    /// `compression.lz4.level` (Java, KIP-390): 1 to 17, default 9. The
    /// Java client uses lz4's fast compressor at 9 and its high-compression
    /// one otherwise; kring's lz4 (`lz4_flex`) has only the fast one, so
    /// only 9 is accepted and any other level is refused when the producer
    /// is built (with `compression.type=lz4`), not silently ignored.
    compression_lz4_level: i32 => |c, v| c.compression_lz4_level.set(v);
    /// `compression.zstd.level` (Java, KIP-390): -131072 to 22, default 3.
    compression_zstd_level: i32 => |c, v| c.compression_zstd_level.set(v);
    /// `enable.idempotence`: exactly-once, in-order writes per partition
    /// (needs `acks=all`, `retries > 0`, `max.in.flight <= 5`).
    idempotence: bool => |c, v| c.enable_idempotence.set(v);
    /// `transactional.id`: makes the producer transactional (KIP-98, the
    /// Java client's transactions): call `init_transactions` once, then
    /// send records between `begin_transaction` and `commit_transaction`
    /// (or `abort_transaction`); readers with `isolation.level=read_committed`
    /// see a transaction's records all or none. Needs idempotence (an
    /// explicit `enable.idempotence=false` is refused), so `acks=all`.
    transactional_id: &str => |c, v| c.transactional_id = Some(v.to_owned());
    /// `transaction.timeout.ms`: how long the coordinator lets a
    /// transaction stay open before aborting it (default 60 s; the
    /// broker's `transaction.max.timeout.ms`, 15 min by default, bounds it).
    transaction_timeout: Duration => |c, v| c.transaction_timeout = v;
    /// `max.in.flight.requests.per.connection`.
    max_in_flight: usize => |c, v| c.max_in_flight.set(v);
    /// `retries`: how often a failed batch is retried (within
    /// `delivery.timeout.ms`).
    retries: u32 => |c, v| c.retries.set(v);
    /// `retry.backoff.ms`: the first retry delay.
    retry_backoff: Duration => |c, v| c.retry_backoff = v;
    /// `retry.backoff.max.ms`: the largest retry delay (exponential growth
    /// with jitter up to it).
    retry_backoff_max: Duration => |c, v| c.retry_backoff_max = v;
    /// `reconnect.backoff.ms`: the first delay before reconnecting to a
    /// broker that could not be reached.
    reconnect_backoff: Duration => |c, v| c.reconnect_backoff = v;
    /// `reconnect.backoff.max.ms`: the largest reconnect delay (exponential
    /// growth with jitter up to it).
    reconnect_backoff_max: Duration => |c, v| c.reconnect_backoff_max = v;
    /// `delivery.timeout.ms`: the upper bound from `send` to a final result.
    delivery_timeout: Duration => |c, v| c.delivery_timeout.set(v);
    /// `request.timeout.ms`: how long one request may go unanswered.
    request_timeout: Duration => |c, v| c.request_timeout = v;
    /// `buffer.memory`: bytes of records buffered before `send` blocks.
    buffer_memory: usize => |c, v| c.buffer_memory = v;
    /// `max.block.ms`: how long `send` may block on a full buffer (or
    /// missing metadata) before it fails.
    max_block: Duration => |c, v| c.max_block = v;
    /// `max.request.size`: the largest request, and so the largest record.
    max_request_size: usize => |c, v| c.max_request_size = v;
    /// `partitioner`.
    partitioner: PartitionerKind => |c, v| c.partitioner = v;
    /// `partitioner.ignore.keys` (Java, KIP-794): when true, the default
    /// partitioner places keyed records as it places keyless ones (sticky,
    /// uniformly over the available partitions) instead of by
    /// `murmur2(key)`, as [`PartitionerKind::Sticky`] does. Default false.
    /// No effect on `round_robin`, `sticky` or a custom partitioner (the
    /// Java client's: only its built-in partitioner reads it).
    partitioner_ignore_keys: bool => |c, v| c.partitioner_ignore_keys = v;
    /// `partitioner.adaptive.partitioning.enable` (Java, KIP-794): when
    /// the sticky partitioner moves on to another partition, it prefers
    /// one with fewer batches waiting to be sent, so partitions led by a
    /// slow broker get fewer keyless records. Default true, as in Java;
    /// false picks uniformly among the partitions with a leader. Applies
    /// wherever records are placed sticky (keyless records of `default`,
    /// `sticky`, `partitioner.ignore.keys`, and a custom partitioner that
    /// leaves the choice to kring).
    partitioner_adaptive_partitioning_enable: bool => |c, v| c.partitioner_adaptive = v;
    /// `partitioner.availability.timeout.ms` (Java, KIP-794): with
    /// adaptive partitioning, a broker that has had batches ready for
    /// longer than this without taking a produce request (connection down,
    /// throttled, or `max.in.flight` requests unanswered) gets no more
    /// keyless records until it takes one again. Zero (the default) turns
    /// this off.
    partitioner_availability_timeout: Duration => |c, v| c.partitioner_availability_timeout = v;
    /// `metadata.max.age.ms`: metadata is refreshed at least this often.
    metadata_max_age: Duration => |c, v| c.metadata_max_age = v;
    /// `metadata.max.idle.ms` (Java): a topic nothing was sent to for this
    /// long, with nothing buffered or in flight, is left out of metadata
    /// requests until the next send to it, so a producer that wrote to many
    /// short-lived topics stops asking about them. What kring keeps of the
    /// topic (partitions, idempotent sequences) stays, so that send needs
    /// no metadata first; it asks for the topic's leaders soon after.
    /// Default 5 min; at least 5 s, as in Java.
    metadata_max_idle: Duration => |c, v| c.metadata_max_idle = v;
    /// `connections.max.idle.ms`: a broker connection with no request or
    /// response for this long and nothing in flight is closed by kring,
    /// and opened again when something needs it. Closing first, before
    /// the broker's own idle timeout (`connections.max.idle.ms`, 10 min by
    /// default on brokers), keeps a request from being written into a
    /// connection the broker is closing. `None` never closes (the
    /// property's -1, or librdkafka's 0). Default 9 min, as in Java.
    connections_max_idle: Option<Duration> => |c, v| c.connections_max_idle = v;
    /// `socket.connection.setup.timeout.ms`: how long the first attempt to
    /// connect to a broker may take (looking up its name, the TCP connect
    /// and, with TLS, the handshake; default 10 s). As in the Java client,
    /// each consecutive failed attempt to the same broker doubles it, with
    /// ±20 % jitter, up to
    /// [`connect_timeout_max`](Self::connect_timeout_max); a connection
    /// that gets through resets it. Above that max (default 30 s) every
    /// attempt gets the max: raise both for a longer one.
    connect_timeout: Duration => |c, v| c.connect_timeout = v;
    /// `socket.connection.setup.timeout.max.ms`: the most the connect
    /// timeout grows to over consecutive failed attempts to a broker
    /// (default 30 s). Not above
    /// [`connect_timeout`](Self::connect_timeout), it is every attempt's
    /// timeout, without growth or jitter (the Java client's rule).
    connect_timeout_max: Duration => |c, v| c.connect_timeout_max = v;
    /// `security.protocol`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or
    /// `SASL_SSL`.
    security_protocol: SecurityProtocol => |c, v| c.security_protocol = v;
    /// `sasl.mechanism` (librdkafka: `sasl.mechanisms`). Prefer
    /// [`sasl_plain`](Self::sasl_plain) and its siblings, which set the
    /// credentials too.
    sasl_mechanism: SaslMechanism => |c, v| c.sasl.mechanism = Some(v);
    /// `sasl.username` (PLAIN, SCRAM).
    sasl_username: &str => |c, v| c.sasl.username = Some(v.to_owned());
    /// `sasl.password` (PLAIN, SCRAM). Never logged or shown by `Debug`.
    sasl_password: &str => |c, v| c.sasl.password = Some(v.to_owned());
    /// SCRAM with a delegation token (KIP-48; the JAAS option
    /// `tokenauth=true`): `sasl.username` is the token id,
    /// `sasl.password` the token's HMAC, and the broker checks them
    /// against its delegation tokens. SCRAM-SHA-256/512 only (another
    /// mechanism fails the build). Default false.
    sasl_token_auth: bool => |c, v| c.sasl.token_auth = v;
    /// `topic.metadata.propagation.max.ms` (librdkafka): how long after its
    /// first use a topic the brokers report as UNKNOWN_TOPIC_OR_PARTITION
    /// is waited for (it may be in the middle of being created). Past it,
    /// sends to the topic fail at once with `SendError::TopicError`, each
    /// asking for fresh metadata so the topic is used once it exists.
    /// Default 5 s (librdkafka: 30 s; the Java client waits `max.block.ms`).
    topic_metadata_propagation: Duration => |c, v| c.topic_metadata_propagation = v;
    /// `statistics.interval.ms` (librdkafka): how often the
    /// [`on_statistics`](crate::ProducerBuilder::on_statistics) callback is
    /// called with a [`Statistics`](crate::Statistics) snapshot. Zero (the
    /// default) never calls it; without a callback it has no effect
    /// ([`Producer::statistics`](crate::Producer::statistics) works either
    /// way). It is also the period of the RTT window.
    statistics_interval: Duration => |c, v| c.statistics_interval = v;
    /// `ssl.ca.location` (Java: `ssl.truststore.location` with
    /// `ssl.truststore.type=PEM`): a PEM file of CA certificates (or a
    /// directory of them) the broker's certificate must chain to. Without
    /// it (or `ssl_ca_pem`) the operating system's trust store is used.
    ssl_ca_location: impl Into<std::path::PathBuf> => |c, v| c.ssl.ca = Some(Pem::File(v.into()));
    /// `ssl.ca.pem` (Java: `ssl.truststore.certificates`): the CA
    /// certificates as PEM text.
    ssl_ca_pem: &str => |c, v| c.ssl.ca = Some(Pem::Inline(v.to_owned()));
    /// `ssl.certificate.location`: the client certificate chain (PEM file)
    /// for brokers that require client authentication (mTLS).
    ssl_certificate_location: impl Into<std::path::PathBuf> => |c, v| c.ssl.certificate = Some(Pem::File(v.into()));
    /// `ssl.certificate.pem` (Java: `ssl.keystore.certificate.chain`): the
    /// client certificate chain as PEM text.
    ssl_certificate_pem: &str => |c, v| c.ssl.certificate = Some(Pem::Inline(v.to_owned()));
    /// `ssl.key.location`: the client's private key (PEM file: PKCS#8,
    /// PKCS#1 or SEC1; an encrypted PKCS#8 key with `ssl.key.password`).
    ssl_key_location: impl Into<std::path::PathBuf> => |c, v| c.ssl.key = Some(Pem::File(v.into()));
    /// `ssl.key.pem` (Java: `ssl.keystore.key`): the client's private key
    /// as PEM text. Never shown in `Debug` output or errors.
    ssl_key_pem: &str => |c, v| c.ssl.key = Some(Pem::Inline(v.to_owned()));
    /// `ssl.keystore.location`: one file holding the client's private key
    /// and its certificate chain — PEM (Java's `ssl.keystore.type=PEM`) or
    /// PKCS #12 (Java's default type, and librdkafka's meaning), with
    /// `ssl.keystore.password`.
    ssl_keystore_location: impl Into<std::path::PathBuf> => |c, v| c.ssl.keystore = Some(v.into());
    /// `ssl.key.password`: the password of an encrypted PKCS #8 private
    /// key (`ENCRYPTED PRIVATE KEY`: PBES2, PBKDF2 or scrypt with AES-CBC,
    /// as `openssl pkcs8 -topk8` and Java write it). A wrong password, or
    /// OpenSSL's older `Proc-Type: 4,ENCRYPTED` form, fails the build with
    /// a typed error. Never shown in `Debug` output or errors.
    ssl_key_password: &str => |c, v| c.ssl.key_password = Some(v.to_owned());
    /// `ssl.keystore.password`: the password of a PKCS #12 key store
    /// (`ssl.keystore.location`), which checks its integrity and decrypts
    /// it (the key too, unless `ssl.key.password` is set). Never shown in
    /// `Debug` output or errors.
    ssl_keystore_password: &str => |c, v| c.ssl.keystore_password = (!v.is_empty()).then(|| v.to_owned());
    /// `ssl.truststore.password`: the password of a PKCS #12 trust store
    /// (`ssl.truststore.location`). Never shown in `Debug` output or
    /// errors.
    ssl_truststore_password: &str => |c, v| c.ssl.truststore_password = (!v.is_empty()).then(|| v.to_owned());
    /// `ssl.endpoint.identification.algorithm`: `true` (`https`, the
    /// default) checks that the broker's certificate is valid for the host
    /// name (or IP address) kring connects to; `false` (`none`) skips that
    /// check (the chain is still verified).
    ssl_endpoint_identification: bool => |c, v| c.ssl.verify_hostname = v;
    /// `ssl.enabled.protocols`: the TLS versions offered to brokers
    /// (default both, TLS 1.3 preferred). An empty list is refused when
    /// the producer is built.
    ssl_enabled_protocols: &[TlsVersion] => |c, v| c.ssl.versions = ssl::TlsVersions::of(v);
    /// `ssl.cipher.suites`: the cipher suites offered to brokers, in order
    /// of preference; empty (the default) offers every suite kring's TLS
    /// implements. Suites of a TLS version `ssl.enabled.protocols` leaves
    /// out are not offered; a list with none for the enabled versions is
    /// refused when the producer is built.
    ssl_cipher_suites: &[TlsCipherSuite] => |c, v| c.ssl.cipher_suites = dedup(v);
    /// `io.backend` (kring only): `auto` (default: io_uring, else epoll
    /// where io_uring is refused), `io_uring` or `epoll`.
    io_backend: IoBackend => |c, v| c.io_backend = v;
    /// `compression.threads` (kring only): threads that compress the
    /// batches the I/O thread seals (lingered, flushed, closed), so the
    /// one I/O thread does not become the limit with zstd or gzip; full
    /// batches are compressed by the thread that filled them either way.
    /// Default: 1 on hosts with at least 4 CPUs, else 0 (on 2 cores the
    /// producer and I/O threads already use both, and the hand-off costs
    /// more CPU per record than it saves; see BENCHMARKS.md). 0
    /// compresses them on the I/O thread, or with gzip, and zstd from
    /// level 9, on sending threads while they wait in `send` for
    /// `buffer.memory`. No thread is started with `compression.type=none`.
    compression_threads: u32 => |c, v| c.compression_threads = Some(v);
    /// `send.buffer.bytes` (librdkafka: `socket.send.buffer.bytes`): the
    /// kernel's send buffer (`SO_SNDBUF`) of each broker connection, in
    /// bytes. 0, kring's default, leaves it to the kernel, which grows it
    /// with the connection's bandwidth and latency; a size fixes it (Java
    /// fixes 131072 by default). Linux caps it at `net.core.wmem_max`.
    /// At most 2147483647.
    send_buffer_bytes: u32 => |c, v| c.send_buffer = v;
    /// `receive.buffer.bytes` (librdkafka: `socket.receive.buffer.bytes`):
    /// the kernel's receive buffer (`SO_RCVBUF`) of each broker
    /// connection, in bytes; 0, the default, leaves it to the kernel (Java
    /// fixes 32768). Linux caps it at `net.core.rmem_max`. At most
    /// 2147483647.
    receive_buffer_bytes: u32 => |c, v| c.receive_buffer = v;
    /// `socket.keepalive.enable` (librdkafka): TCP keepalive probes on
    /// broker connections, so one whose broker vanished without closing
    /// it is noticed even while idle. Default true, as the Java client
    /// always sets it (librdkafka's default is false).
    socket_keepalive: bool => |c, v| c.socket_keepalive = v;
    /// `delivery.report.only.error` (librdkafka): the
    /// [`on_delivery`](crate::ProducerBuilder::on_delivery) callback is
    /// called for failed records only (default false: for every record).
    /// Handles returned by `send` still resolve for every record.
    delivery_report_only_error: bool => |c, v| c.delivery_report_only_error = v;
}

/// Splits `bootstrap.servers` at commas, trims each entry and drops a
/// `PLAINTEXT://` prefix (any case), as librdkafka and the Java client
/// accept it. Entries are checked when the producer is built
/// ([`kring_core::check_bootstrap_entry`]).
fn split_servers(v: &str) -> Vec<String> {
    const PLAINTEXT: &str = "plaintext://";
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.get(..PLAINTEXT.len()) {
            Some(p) if p.eq_ignore_ascii_case(PLAINTEXT) => &s[PLAINTEXT.len()..],
            _ => s,
        })
        .map(str::to_owned)
        .collect()
}

/// Reading settings back. A setting's builder setter owns its bare name
/// (`linger(Duration)`), so its getter is `get_linger()`, the scheme of
/// `std::process::Command` (`arg`/`get_args`, `current_dir`/
/// `get_current_dir`); a value with no setter of that name has none
/// (`bootstrap_servers()`).
impl ProducerConfig {
    /// The bootstrap servers, `host:port` each.
    pub fn bootstrap_servers(&self) -> &[String] {
        &self.bootstrap_servers
    }
    /// `client.id`.
    pub fn get_client_id(&self) -> &str {
        &self.client_id
    }
    /// `acks`.
    pub fn get_acks(&self) -> Acks {
        self.acks.value
    }
    /// `linger.ms`.
    pub fn get_linger(&self) -> Duration {
        self.linger
    }
    /// `batch.size`.
    pub fn get_batch_size(&self) -> usize {
        self.batch_size.value
    }
    /// `batch.num.messages`.
    pub fn get_batch_num_messages(&self) -> u32 {
        self.batch_num_messages
    }
    /// `compression.type`.
    pub fn get_compression(&self) -> Compression {
        self.compression
    }
    /// `compression.level` (librdkafka; -1: not set, the codec's default).
    pub fn get_compression_level(&self) -> i32 {
        self.compression_level.value
    }
    /// `compression.gzip.level`.
    pub fn get_compression_gzip_level(&self) -> i32 {
        self.compression_gzip_level.value
    }
    /// `compression.lz4.level`.
    pub fn get_compression_lz4_level(&self) -> i32 {
        self.compression_lz4_level.value
    }
    /// `compression.zstd.level`.
    pub fn get_compression_zstd_level(&self) -> i32 {
        self.compression_zstd_level.value
    }
    /// The level batches are compressed at, in the codec's own terms
    /// (`None`: the codec's default), from the selected codec's Java
    /// property or else librdkafka's `compression.level`. Levels the codec
    /// lacks are passed on for the core to refuse.
    pub(crate) fn core_compression_level(&self) -> Option<i32> {
        let rdkafka = Some(self.compression_level.value)
            .filter(|&l| self.compression_level.explicit && l != RDKAFKA_LEVELS.default);
        let java =
            |s: &Setting<i32>, default: i32| Some(s.value).filter(|&l| s.explicit && l != default);
        match self.compression {
            Compression::None => None,
            Compression::Gzip if self.compression_gzip_level.explicit => {
                java(&self.compression_gzip_level, GZIP_LEVELS.default)
            }
            Compression::Gzip => rdkafka.map(|l| l.min(9)),
            // Java's 9 is lz4's fast compressor, kring's only one.
            Compression::Lz4 if self.compression_lz4_level.explicit => {
                java(&self.compression_lz4_level, LZ4_LEVELS.default)
            }
            // librdkafka's 0 is LZ4F's fast compressor too.
            Compression::Lz4 | Compression::Snappy => rdkafka.filter(|&l| l != 0),
            Compression::Zstd if self.compression_zstd_level.explicit => {
                Some(self.compression_zstd_level.value)
            }
            Compression::Zstd => rdkafka,
        }
    }

    /// Each level within its property's range (the Java client's, and
    /// librdkafka's for `compression.level`), and not the selected codec's
    /// level set twice.
    fn check_compression_levels(&self) -> Result<(), ConfigError> {
        for (levels, setting) in [
            (GZIP_LEVELS, self.compression_gzip_level),
            (LZ4_LEVELS, self.compression_lz4_level),
            (ZSTD_LEVELS, self.compression_zstd_level),
            (RDKAFKA_LEVELS, self.compression_level),
        ] {
            let v = setting.value;
            if !(levels.min..=levels.max).contains(&v) && v != levels.default {
                return Err(ConfigError::OutOfRange {
                    property: levels.property,
                    reason: format!("{v} is not within {}", levels.accepted),
                });
            }
        }
        let own = match self.compression {
            Compression::Gzip => Some((&self.compression_gzip_level, GZIP_LEVELS.property)),
            Compression::Lz4 => Some((&self.compression_lz4_level, LZ4_LEVELS.property)),
            Compression::Zstd => Some((&self.compression_zstd_level, ZSTD_LEVELS.property)),
            Compression::None | Compression::Snappy => None,
        };
        if let Some((own, property)) = own {
            if own.explicit && self.compression_level.explicit {
                return Err(ConfigError::Conflict(format!(
                    "both {property} ({}) and compression.level ({}) set the {} level: set one",
                    own.value, self.compression_level.value, self.compression
                )));
            }
        }
        Ok(())
    }

    /// `enable.idempotence` (after [`validate`](Self::validate), the value in
    /// force).
    pub fn get_idempotence(&self) -> bool {
        self.enable_idempotence.value
    }
    /// `transactional.id`, if set.
    pub fn get_transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }
    /// `transaction.timeout.ms`.
    pub fn get_transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }
    /// `max.in.flight.requests.per.connection`.
    pub fn get_max_in_flight(&self) -> usize {
        self.max_in_flight.value
    }
    /// `retries`.
    pub fn get_retries(&self) -> u32 {
        self.retries.value
    }
    /// `retry.backoff.ms`.
    pub fn get_retry_backoff(&self) -> Duration {
        self.retry_backoff
    }
    /// `retry.backoff.max.ms`.
    pub fn get_retry_backoff_max(&self) -> Duration {
        self.retry_backoff_max
    }
    /// `reconnect.backoff.ms`.
    pub fn get_reconnect_backoff(&self) -> Duration {
        self.reconnect_backoff
    }
    /// `reconnect.backoff.max.ms`.
    pub fn get_reconnect_backoff_max(&self) -> Duration {
        self.reconnect_backoff_max
    }
    /// `delivery.timeout.ms`.
    pub fn get_delivery_timeout(&self) -> Duration {
        self.delivery_timeout.value
    }
    /// `request.timeout.ms`.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// `buffer.memory`.
    pub fn get_buffer_memory(&self) -> usize {
        self.buffer_memory
    }
    /// `max.block.ms`.
    pub fn get_max_block(&self) -> Duration {
        self.max_block
    }
    /// `max.request.size`.
    pub fn get_max_request_size(&self) -> usize {
        self.max_request_size
    }
    /// `partitioner`.
    pub fn get_partitioner(&self) -> PartitionerKind {
        self.partitioner
    }
    /// `partitioner.ignore.keys`.
    pub fn get_partitioner_ignore_keys(&self) -> bool {
        self.partitioner_ignore_keys
    }
    /// `partitioner.adaptive.partitioning.enable`.
    pub fn get_partitioner_adaptive_partitioning_enable(&self) -> bool {
        self.partitioner_adaptive
    }
    /// `partitioner.availability.timeout.ms`.
    pub fn get_partitioner_availability_timeout(&self) -> Duration {
        self.partitioner_availability_timeout
    }
    /// `topic.metadata.propagation.max.ms`.
    pub fn get_topic_metadata_propagation(&self) -> Duration {
        self.topic_metadata_propagation
    }
    /// `statistics.interval.ms`.
    pub fn get_statistics_interval(&self) -> Duration {
        self.statistics_interval
    }
    /// `security.protocol`.
    pub fn get_security_protocol(&self) -> SecurityProtocol {
        self.security_protocol
    }
    /// `ssl.endpoint.identification.algorithm` (`true` for `https`).
    pub fn get_ssl_endpoint_identification(&self) -> bool {
        self.ssl.verify_hostname
    }
    /// `ssl.enabled.protocols`: the TLS versions offered, newest first.
    pub fn get_ssl_enabled_protocols(&self) -> Vec<TlsVersion> {
        let v = self.ssl.versions;
        [(v.tls13, TlsVersion::Tls13), (v.tls12, TlsVersion::Tls12)]
            .into_iter()
            .filter_map(|(on, version)| on.then_some(version))
            .collect()
    }
    /// `ssl.cipher.suites`: the suites offered, in order of preference
    /// (empty: all of them).
    pub fn get_ssl_cipher_suites(&self) -> &[TlsCipherSuite] {
        &self.ssl.cipher_suites
    }
    /// The TLS settings.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn ssl(&self) -> &SslSettings {
        &self.ssl
    }
    /// `metadata.max.age.ms`.
    pub fn get_metadata_max_age(&self) -> Duration {
        self.metadata_max_age
    }
    /// `connections.max.idle.ms` (`None`: never).
    pub fn get_connections_max_idle(&self) -> Option<Duration> {
        self.connections_max_idle
    }
    /// `metadata.max.idle.ms`.
    pub fn get_metadata_max_idle(&self) -> Duration {
        self.metadata_max_idle
    }
    /// `io.backend`.
    pub fn get_io_backend(&self) -> IoBackend {
        self.io_backend
    }
    /// `compression.threads`: as set, else 1 where
    /// [`std::thread::available_parallelism`] is at least 4, else 0.
    pub fn get_compression_threads(&self) -> u32 {
        self.compression_threads.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            u32::from(cpus >= 4)
        })
    }
    /// `socket.connection.setup.timeout.ms`.
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// `socket.connection.setup.timeout.max.ms`.
    pub fn get_connect_timeout_max(&self) -> Duration {
        self.connect_timeout_max
    }
    /// `send.buffer.bytes` (0: the kernel's).
    pub fn get_send_buffer_bytes(&self) -> u32 {
        self.send_buffer
    }
    /// `receive.buffer.bytes` (0: the kernel's).
    pub fn get_receive_buffer_bytes(&self) -> u32 {
        self.receive_buffer
    }
    /// `socket.keepalive.enable`.
    pub fn get_socket_keepalive(&self) -> bool {
        self.socket_keepalive
    }
    /// `delivery.report.only.error`.
    pub fn get_delivery_report_only_error(&self) -> bool {
        self.delivery_report_only_error
    }

    /// Check the configuration and settle the settings that depend on
    /// others:
    /// - `bootstrap.servers` is required;
    /// - explicit `enable.idempotence=true` needs `acks=all`, `retries > 0`
    ///   and `max.in.flight.requests.per.connection <= 5`; when idempotence
    ///   was only the default, a conflicting explicit setting turns it off;
    /// - `delivery.timeout.ms >= linger.ms + request.timeout.ms`: when
    ///   delivery.timeout.ms was not set explicitly, it is raised to that
    ///   sum; when it was, `request.timeout.ms` is lowered to fit (with a
    ///   warning, as librdkafka does), and only a `delivery.timeout.ms` not
    ///   above `linger.ms` is refused;
    /// - a `batch.size` left at its default is lowered to `max.request.size`
    ///   or `buffer.memory` where either is smaller (the Java client accepts
    ///   such settings); an explicit one above them is refused;
    /// - `socket.connection.setup.timeout.ms` above
    ///   `socket.connection.setup.timeout.max.ms` is accepted with a
    ///   warning, as the Java client does: every connect attempt then gets
    ///   the max;
    /// - then every range and cross-check is the core's own
    ///   ([`kring_core::Config::validate`]): kring and kring-core run the
    ///   same checks, so they cannot disagree, and any configuration this
    ///   accepts builds a producer. Extreme values (`Duration::MAX`, zero
    ///   sizes, ...) are [`ConfigError`]s, never panics.
    pub fn validate(mut self) -> Result<ProducerConfig, ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing {
                property: "bootstrap.servers",
            });
        }
        for (property, size) in [
            ("send.buffer.bytes", self.send_buffer),
            ("receive.buffer.bytes", self.receive_buffer),
        ] {
            // The kernel takes an int.
            if size > i32::MAX as u32 {
                return Err(ConfigError::OutOfRange {
                    property,
                    reason: "must be at most 2147483647 bytes (0: the kernel's own)".to_owned(),
                });
            }
        }
        if !self.ssl.versions.tls12 && !self.ssl.versions.tls13 {
            return Err(ConfigError::OutOfRange {
                property: "ssl.enabled.protocols",
                reason: "must list TLSv1.2, TLSv1.3 or both".to_owned(),
            });
        }
        let enabled = self.get_ssl_enabled_protocols();
        let suites = &self.ssl.cipher_suites;
        if !suites.is_empty() && !suites.iter().any(|s| enabled.contains(&s.version())) {
            return Err(ConfigError::OutOfRange {
                property: "ssl.cipher.suites",
                reason: format!(
                    "lists no suite of the enabled TLS versions ({}): {}",
                    enabled
                        .iter()
                        .map(|v| v.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    suites
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        self.check_oidc()?;
        check_codec_built("compression.type", self.compression)?;
        self.check_compression_levels()?;
        self.check_idempotence()?;
        if !self.batch_size.explicit {
            let fit = self.max_request_size.min(self.buffer_memory);
            // A fit of 0 is refused below, by the core's own checks.
            if self.batch_size.value > fit && fit > 0 {
                self.batch_size.value = fit;
            }
        }
        // Saturating: out-of-range durations are refused by the core below.
        let floor = self.linger.saturating_add(self.request_timeout);
        if self.delivery_timeout.value < floor {
            if !self.delivery_timeout.explicit {
                self.delivery_timeout.value = floor;
            } else if self.delivery_timeout.value > self.linger {
                let lowered = self.delivery_timeout.value - self.linger;
                tracing::warn!(
                    delivery_timeout_ms = self.delivery_timeout.value.as_millis() as u64,
                    linger_ms = self.linger.as_secs_f64() * 1e3,
                    from_ms = self.request_timeout.as_millis() as u64,
                    to_ms = lowered.as_millis() as u64,
                    "request.timeout.ms lowered to fit delivery.timeout.ms - linger.ms"
                );
                self.request_timeout = lowered;
            } else {
                return Err(ConfigError::Conflict(format!(
                    "delivery.timeout.ms ({} ms) must be above linger.ms ({} ms)",
                    self.delivery_timeout.value.as_millis(),
                    self.linger.as_secs_f64() * 1e3
                )));
            }
        }
        self.to_core(None, None).validate()?;
        if self.retry_backoff > self.retry_backoff_max {
            // As the Java client warns (`warnDisablingExponentialBackoff`).
            tracing::warn!(
                retry_backoff_ms = self.retry_backoff.as_millis() as u64,
                retry_backoff_max_ms = self.retry_backoff_max.as_millis() as u64,
                "retry.backoff.ms is above retry.backoff.max.ms: every retry waits the max"
            );
        }
        if self.connect_timeout > self.connect_timeout_max {
            // As the Java client warns (`warnDisablingExponentialBackoff`).
            tracing::warn!(
                connect_timeout_ms = self.connect_timeout.as_millis() as u64,
                connect_timeout_max_ms = self.connect_timeout_max.as_millis() as u64,
                "socket.connection.setup.timeout.ms is above socket.connection.setup.timeout.max.ms: \
                 every connect attempt gets the max"
            );
        }
        if self.security_protocol.uses_tls() && !cfg!(feature = "tls") {
            return Err(ConfigError::OutOfRange {
                property: "security.protocol",
                reason: format!(
                    "{} needs TLS, but this build of kring has its `tls` cargo feature off \
                     (enable the feature `tls` of the `kring` crate)",
                    self.security_protocol.name()
                ),
            });
        }
        Ok(self)
    }

    fn check_idempotence(&mut self) -> Result<(), ConfigError> {
        let transactional = self.transactional_id.is_some();
        if transactional && !self.enable_idempotence.value {
            // The Java client's rule: transactions need idempotence.
            return Err(ConfigError::Conflict(
                "transactional.id requires enable.idempotence=true".to_owned(),
            ));
        }
        if !self.enable_idempotence.value {
            return Ok(());
        }
        let conflicts = [
            (
                self.acks.value != Acks::All,
                "acks to all",
                self.acks.explicit,
            ),
            (
                self.retries.value == 0,
                "retries to a non-zero value",
                self.retries.explicit,
            ),
            (
                self.max_in_flight.value > 5,
                "max.in.flight.requests.per.connection to at most 5",
                self.max_in_flight.explicit,
            ),
        ];
        for (conflict, need, _) in conflicts {
            if conflict && (self.enable_idempotence.explicit || transactional) {
                let why = if transactional {
                    "transactional.id (which needs idempotence)"
                } else {
                    "enable.idempotence=true"
                };
                return Err(ConfigError::Conflict(format!(
                    "{why} requires setting {need}"
                )));
            }
        }
        if conflicts.iter().any(|&(conflict, _, _)| conflict) {
            tracing::info!(
                "idempotence disabled: the configuration conflicts with it and enable.idempotence was not set"
            );
            self.enable_idempotence.value = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// A compression level property's range and default.
#[derive(Debug, Clone, Copy)]
struct Levels {
    property: &'static str,
    min: i32,
    max: i32,
    /// Accepted besides `min..=max` (gzip's -1).
    default: i32,
    accepted: &'static str,
}

/// The Java client's `CompressionType.GZIP` levels (Deflater's).
const GZIP_LEVELS: Levels = Levels {
    property: "compression.gzip.level",
    min: 1,
    max: 9,
    default: -1,
    accepted: "1..=9, or -1 for the default",
};
/// The Java client's `CompressionType.LZ4` levels (lz4-java's).
const LZ4_LEVELS: Levels = Levels {
    property: "compression.lz4.level",
    min: 1,
    max: 17,
    default: 9,
    accepted: "1..=17",
};
/// The Java client's `CompressionType.ZSTD` levels (zstd's).
const ZSTD_LEVELS: Levels = Levels {
    property: "compression.zstd.level",
    min: -131_072,
    max: 22,
    default: 3,
    accepted: "-131072..=22",
};
/// librdkafka's `compression.level`.
const RDKAFKA_LEVELS: Levels = Levels {
    property: "compression.level",
    min: -1,
    max: 12,
    default: -1,
    accepted: "-1..=12",
};

/// zstd without kring's `zstd` feature is refused when configured, not when
/// the first batch is sealed.
pub(crate) fn check_codec_built(
    property: &'static str,
    codec: Compression,
) -> Result<(), ConfigError> {
    if codec == Compression::Zstd && !cfg!(feature = "zstd") {
        return Err(ConfigError::InvalidValue {
            property,
            value: codec.name().to_owned(),
            expected: "one of none, gzip, snappy, lz4 (zstd needs kring's `zstd` feature, \
                       which this build was compiled without)",
        });
    }
    Ok(())
}

#[cfg(all(test, not(feature = "zstd")))]
mod without_zstd_tests {
    use super::*;

    /// Built without the `zstd` feature (`cargo test -p kring
    /// --no-default-features --lib zstd_without`): zstd is a ConfigError whether
    /// named as a property or set through the typed setter, and the other
    /// codecs are still accepted.
    #[test]
    fn zstd_without_the_feature_is_a_config_error() {
        for name in ["compression.type", "compression.codec"] {
            let e = ProducerConfig::from_properties([(name, "zstd")]).unwrap_err();
            assert!(
                matches!(e, ConfigError::InvalidValue { value: ref v, .. } if v == "zstd"),
                "{e}"
            );
            assert!(e.to_string().contains("`zstd` feature"), "{e}");
        }
        let e = ProducerConfig::default()
            .bootstrap("127.0.0.1:9092")
            .compression(Compression::Zstd)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("`zstd` feature"), "{e}");
        ProducerConfig::from_properties([("compression.type", "lz4")]).unwrap();
    }
}

/// `list` without repeats, in its order.
fn dedup<T: PartialEq + Copy>(list: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for &x in list {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}
