//! Kafka property names (`linger.ms`, `acks`, ...) to typed settings, so a
//! Java or librdkafka producer's configuration can be used as it is.
//!
//! librdkafka's names are aliases where they mean the same thing:
//! `message.timeout.ms` (= `delivery.timeout.ms`; its 0, no timeout, is
//! the longest `delivery.timeout.ms`, about 24.8 days), `queue.buffering.max.ms`
//! (= `linger.ms`), `queue.buffering.max.kbytes` (`buffer.memory` in KiB),
//! `compression.codec` (= `compression.type`), `statistics.interval.ms`
//! (the period of the `on_statistics` callback), `batch.num.messages` (a cap on records per batch),
//! `metadata.broker.list` (= `bootstrap.servers`), `request.required.acks`
//! (= `acks`), `message.send.max.retries` (= `retries`),
//! `message.max.bytes` (= `max.request.size`, in librdkafka's range),
//! `topic.metadata.refresh.interval.ms` (= `metadata.max.age.ms`; its -1,
//! no periodic refresh, is refused), the switches kring always has on
//! (`socket.nagle.disable`, `api.version.request`,
//! `enable.ssl.certificate.verification`: true accepted, false refused),
//! `queue.buffering.max.messages` (0 only: kring bounds its buffer in
//! bytes), `delivery.report.only.error` (the callback hears failures only),
//! `socket.send.buffer.bytes` and `socket.receive.buffer.bytes` (= Java's
//! `send.buffer.bytes` and `receive.buffer.bytes`, with 0 for the
//! system's default where Java has -1) and
//! `debug` (contexts are checked; kring logs through `tracing`, whose
//! subscriber filter chooses the level).
//!
//! Java settings with no kring counterpart are accepted at the values that
//! ask for what kring does, and refused, naming why, at any other
//! (`java_only`): the byte serializers (`key.serializer`,
//! `value.serializer`); `partitioner.class` naming a built-in Java
//! partitioner kring has; empty
//! `interceptor.classes` and `metric.reporters`; Java's metrics sampling;
//! `metadata.recovery.strategy=rebootstrap` and its
//! trigger (kring goes back to the bootstrap servers whenever no known
//! broker can be reached);
//! `client.dns.lookup=use_all_dns_ips`; `ssl.protocol` naming TLS 1.2 or
//! 1.3 (`ssl.enabled.protocols` chooses the versions); `transaction.timeout.ms`;
//! `enable.metrics.push` (no client metrics are pushed either way),
//! `metadata.cluster.check.enable` (no cluster check is sent either way),
//! `buffer.memory.allocation.strategy` (kring's is incremental; `full`
//! warns), empty `config.providers`, `transaction.two.phase.commit.enable=false`,
//! the JVM's TLS machinery at its defaults (`ssl.trustmanager.algorithm=PKIX`,
//! `ssl.keymanager.algorithm=SunX509`, empty `ssl.provider`,
//! `security.providers`, `ssl.engine.factory.class`,
//! `ssl.secure.random.implementation`),
//! `partitioner.rack.aware=false` and any `client.rack`.

use std::str::FromStr;
use std::time::Duration;

use super::{
    Acks, Compression, ConfigError, IoBackend, PartitionerKind, ProducerConfig, SecurityProtocol,
};

/// The most `compression.threads` accepted.
const MAX_COMPRESSION_THREADS: u32 = 64;

/// Every property [`ProducerConfig::from_properties`] accepts.
pub const PROPERTY_NAMES: &[&str] = &[
    "acks",
    "api.version.request",
    "batch.num.messages",
    "batch.size",
    "bootstrap.servers",
    "buffer.memory",
    "buffer.memory.allocation.strategy",
    "client.dns.lookup",
    "client.id",
    "client.rack",
    "compression.codec",
    "compression.gzip.level",
    "compression.level",
    "compression.lz4.level",
    "compression.threads",
    "compression.type",
    "compression.zstd.level",
    "config.providers",
    "connections.max.idle.ms",
    "debug",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "enable.idempotence",
    "enable.metrics.push",
    "enable.ssl.certificate.verification",
    "https.ca.location",
    "https.ca.pem",
    "interceptor.classes",
    "io.backend",
    "key.serializer",
    "linger.ms",
    "max.block.ms",
    "max.in.flight.requests.per.connection",
    "max.request.size",
    "message.max.bytes",
    "message.send.max.retries",
    "message.timeout.ms",
    "metadata.broker.list",
    "metadata.cluster.check.enable",
    "metadata.max.age.ms",
    "metadata.max.idle.ms",
    "metadata.recovery.rebootstrap.trigger.ms",
    "metadata.recovery.strategy",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "partitioner",
    "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms",
    "partitioner.class",
    "partitioner.ignore.keys",
    "partitioner.rack.aware",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "receive.buffer.bytes",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "sasl.jaas.config",
    "sasl.login.callback.handler.class",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.retry.backoff.max.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.oauthbearer.allow.unverified.audience",
    "sasl.oauthbearer.allow.unverified.issuer",
    "sasl.oauthbearer.assertion.algorithm",
    "sasl.oauthbearer.assertion.claim.aud",
    "sasl.oauthbearer.assertion.claim.exp.seconds",
    "sasl.oauthbearer.assertion.claim.iss",
    "sasl.oauthbearer.assertion.claim.jti.include",
    "sasl.oauthbearer.assertion.claim.nbf.seconds",
    "sasl.oauthbearer.assertion.claim.sub",
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.template.file",
    "sasl.oauthbearer.client.credentials.client.id",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.header.urlencode",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.jwt.retriever.class",
    "sasl.oauthbearer.jwt.validator.class",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.password",
    "sasl.username",
    "security.protocol",
    "security.providers",
    "send.buffer.bytes",
    "socket.connection.setup.timeout.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.keepalive.enable",
    "socket.nagle.disable",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "socket.timeout.ms",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
    "ssl.engine.factory.class",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keymanager.algorithm",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.protocol",
    "ssl.provider",
    "ssl.secure.random.implementation",
    "ssl.trustmanager.algorithm",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "statistics.interval.ms",
    "sticky.partitioning.linger.ms",
    "topic.metadata.propagation.max.ms",
    "topic.metadata.refresh.interval.ms",
    "transaction.timeout.ms",
    "transaction.two.phase.commit.enable",
    "transactional.id",
    "value.serializer",
];

/// librdkafka's `debug` contexts, accepted by the `debug` property.
const DEBUG_CONTEXTS: &[&str] = &[
    "all",
    "generic",
    "broker",
    "topic",
    "metadata",
    "feature",
    "queue",
    "msg",
    "protocol",
    "cgrp",
    "security",
    "fetch",
    "interceptor",
    "plugin",
    "consumer",
    "admin",
    "eos",
    "mock",
    "assignor",
    "conf",
    "telemetry",
];

impl ProducerConfig {
    /// A configuration from Kafka property names and string values, e.g.
    /// `[("bootstrap.servers", "127.0.0.1:9092"), ("linger.ms", "10")]`.
    /// Unknown names (with the closest accepted name as a hint) and
    /// unparsable values are errors naming the property and what it
    /// accepts; all of them are reported at once
    /// ([`ConfigError::Multiple`] when there are several). Cross-checks
    /// happen in [`validate`](ProducerConfig::validate), when the producer
    /// is built.
    pub fn from_properties<I, K, V>(properties: I) -> Result<ProducerConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ProducerConfig::default();
        let mut errors = Vec::new();
        for (k, v) in properties {
            match config.clone().set(k.as_ref(), v.as_ref()) {
                Ok(c) => config = c,
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(config),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Multiple(errors)),
        }
    }

    /// Set one property by its Kafka name.
    pub fn set(self, name: &str, value: &str) -> Result<ProducerConfig, ConfigError> {
        let v = value.trim();
        Ok(match name {
            "bootstrap.servers" | "metadata.broker.list" => self.bootstrap(v),
            "client.id" => self.client_id(v),
            "acks" | "request.required.acks" => self.acks(match v.to_ascii_lowercase().as_str() {
                "0" => Acks::None,
                "1" => Acks::Leader,
                "-1" | "all" => Acks::All,
                _ => {
                    let property = name_of(name);
                    return Err(ConfigError::invalid(
                        property,
                        value,
                        "one of 0, 1, -1, all",
                    ));
                }
            }),
            "linger.ms" => self.linger(fractional_millis("linger.ms", v)?),
            "queue.buffering.max.ms" => {
                self.linger(fractional_millis("queue.buffering.max.ms", v)?)
            }
            "batch.size" => self
                .batch_size(v.parse::<usize>().map_err(|_| {
                    ConfigError::invalid("batch.size", v, "a non-negative integer")
                })?),
            "compression.type" | "compression.codec" => {
                let property = name_of(name);
                let codec = Compression::from_str(&v.to_ascii_lowercase()).map_err(|_| {
                    ConfigError::invalid(property, value, "one of none, gzip, snappy, lz4, zstd")
                })?;
                super::check_codec_built(property, codec)?;
                self.compression(codec)
            }
            "compression.level" => self.compression_level(level("compression.level", v)?),
            "compression.gzip.level" => {
                self.compression_gzip_level(level("compression.gzip.level", v)?)
            }
            "compression.lz4.level" => {
                self.compression_lz4_level(level("compression.lz4.level", v)?)
            }
            "compression.zstd.level" => {
                self.compression_zstd_level(level("compression.zstd.level", v)?)
            }
            "enable.idempotence" => self.idempotence(boolean("enable.idempotence", v)?),
            "transactional.id" => {
                if v.is_empty() {
                    // Java: an empty id means none.
                    self
                } else {
                    self.transactional_id(v)
                }
            }
            "transaction.timeout.ms" => {
                let d = millis("transaction.timeout.ms", v)?;
                if d.is_zero() || d.as_millis() > i32::MAX as u128 {
                    return Err(ConfigError::invalid(
                        "transaction.timeout.ms",
                        v,
                        "1 to 2147483647 milliseconds",
                    ));
                }
                self.transaction_timeout(d)
            }
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight(size("max.in.flight.requests.per.connection", v)?)
            }
            "retries" | "message.send.max.retries" => self.retries(
                v.parse::<u32>()
                    .ok()
                    .filter(|&r| r <= i32::MAX as u32)
                    .ok_or_else(|| {
                        let property = name_of(name);
                        ConfigError::invalid(property, value, "an integer from 0 to 2147483647")
                    })?,
            ),
            "retry.backoff.ms" => self.retry_backoff(millis("retry.backoff.ms", v)?),
            "retry.backoff.max.ms" => self.retry_backoff_max(millis("retry.backoff.max.ms", v)?),
            "reconnect.backoff.ms" => self.reconnect_backoff(millis("reconnect.backoff.ms", v)?),
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max(millis("reconnect.backoff.max.ms", v)?)
            }
            "delivery.timeout.ms" => self.delivery_timeout(millis("delivery.timeout.ms", v)?),
            // librdkafka: "a time of 0 is infinite"; the longest kring has.
            "message.timeout.ms" => self.delivery_timeout(
                Some(millis("message.timeout.ms", v)?)
                    .filter(|d| !d.is_zero())
                    .unwrap_or(kring_core::MAX_DURATION),
            ),
            "request.timeout.ms" => self.request_timeout(millis("request.timeout.ms", v)?),
            "buffer.memory" => self.buffer_memory(size("buffer.memory", v)?),
            "queue.buffering.max.kbytes" => self.buffer_memory(
                size("queue.buffering.max.kbytes", v)?
                    .checked_mul(1024)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "queue.buffering.max.kbytes",
                            value,
                            "a positive number of KiB that fits in memory",
                        )
                    })?,
            ),
            "compression.threads" => self.compression_threads(
                v.parse::<u32>()
                    .ok()
                    .filter(|&n| n <= MAX_COMPRESSION_THREADS)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "compression.threads",
                            value,
                            "an integer from 0 to 64",
                        )
                    })?,
            ),
            "batch.num.messages" => self.batch_num_messages(
                v.parse::<u32>()
                    .ok()
                    .filter(|&n| (1..=i32::MAX as u32).contains(&n))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "batch.num.messages",
                            value,
                            "an integer from 1 to 2147483647",
                        )
                    })?,
            ),
            "security.protocol" => {
                self.security_protocol(SecurityProtocol::parse(v).ok_or_else(|| {
                    ConfigError::invalid(
                        "security.protocol",
                        value,
                        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    )
                })?)
            }
            "io.backend" => self.io_backend(IoBackend::parse(v).ok_or_else(|| {
                ConfigError::invalid("io.backend", value, "one of auto, io_uring, epoll")
            })?),
            "statistics.interval.ms" => {
                self.statistics_interval(millis("statistics.interval.ms", v)?)
            }
            "debug" => {
                let contexts: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                if let Some(bad) = contexts
                    .iter()
                    .find(|c| !DEBUG_CONTEXTS.contains(&c.to_ascii_lowercase().as_str()))
                {
                    return Err(ConfigError::InvalidValue {
                        property: "debug",
                        value: (*bad).to_owned(),
                        expected: "comma-separated librdkafka debug contexts (all, broker, topic, metadata, msg, protocol, ...)",
                    });
                }
                if !contexts.is_empty() {
                    tracing::info!(
                        debug = v,
                        "kring logs through `tracing`: debug output is chosen by the subscriber's filter, e.g. KRING_LOG / RUST_LOG=kring=debug,kring_core=debug"
                    );
                }
                self
            }
            "max.block.ms" => self.max_block(millis("max.block.ms", v)?),
            "max.request.size" => self.max_request_size(size("max.request.size", v)?),
            // librdkafka: the largest request, 1000 to 1000000000.
            "message.max.bytes" => self.max_request_size(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1000..=1_000_000_000).contains(n))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "message.max.bytes",
                            value,
                            "a size in bytes from 1000 to 1000000000",
                        )
                    })?,
            ),
            "topic.metadata.refresh.interval.ms" => {
                if v == "-1" {
                    return Err(ConfigError::unsupported(
                        "topic.metadata.refresh.interval.ms",
                        value,
                        "kring always refreshes metadata periodically \
                         (metadata.max.age.ms)",
                    ));
                }
                self.metadata_max_age(millis("topic.metadata.refresh.interval.ms", v)?)
            }
            // librdkafka switches that kring always has on: accepted on,
            // refused off.
            "socket.nagle.disable"
            | "api.version.request"
            | "enable.ssl.certificate.verification" => {
                let (property, why) = match name {
                    "socket.nagle.disable" => (
                        "socket.nagle.disable",
                        "kring always sends requests at once (TCP_NODELAY)",
                    ),
                    "api.version.request" => (
                        "api.version.request",
                        "kring always asks brokers for their API versions (Kafka 0.10 and later)",
                    ),
                    _ => (
                        "enable.ssl.certificate.verification",
                        "kring always verifies the broker's certificate; trust a private CA \
                         with ssl.ca.location, or skip only the host name check with \
                         ssl.endpoint.identification.algorithm=none",
                    ),
                };
                if !boolean(property, v)? {
                    return Err(ConfigError::unsupported(property, value, why));
                }
                self
            }
            "partitioner" => self.partitioner(match v {
                "default" | "murmur2_random" => PartitionerKind::Default,
                "sticky" => PartitionerKind::Sticky,
                "round_robin" => PartitionerKind::RoundRobin,
                _ => {
                    return Err(ConfigError::invalid(
                        "partitioner",
                        value,
                        "one of default (alias murmur2_random), sticky, round_robin",
                    ))
                }
            }),
            "partitioner.class" => self.partitioner(match v {
                "org.apache.kafka.clients.producer.RoundRobinPartitioner" => {
                    PartitionerKind::RoundRobin
                }
                // Removed in Kafka 4.0 (KIP-794 made them the built-in
                // partitioner's behaviour): keys hashed with murmur2,
                // keyless records sticky; and keys ignored, all sticky.
                "org.apache.kafka.clients.producer.internals.DefaultPartitioner" => {
                    PartitionerKind::Default
                }
                "org.apache.kafka.clients.producer.UniformStickyPartitioner" => {
                    PartitionerKind::Sticky
                }
                _ => {
                    return Err(ConfigError::unsupported(
                        "partitioner.class",
                        v,
                        "kring runs no Java class; RoundRobinPartitioner (and the removed \
                         DefaultPartitioner and UniformStickyPartitioner) map to kring's own \
                         partitioners, any other partitioner is set in code with \
                         ProducerBuilder::custom_partitioner",
                    ))
                }
            }),
            "key.serializer"
            | "value.serializer"
            | "enable.metrics.push"
            | "partitioner.rack.aware"
            | "client.rack"
            | "interceptor.classes"
            | "metric.reporters"
            | "metrics.sample.window.ms"
            | "metrics.num.samples"
            | "metrics.recording.level"
            | "metadata.recovery.strategy"
            | "metadata.recovery.rebootstrap.trigger.ms"
            | "client.dns.lookup"
            | "transaction.two.phase.commit.enable"
            | "config.providers"
            | "buffer.memory.allocation.strategy"
            | "metadata.cluster.check.enable"
            | "ssl.keymanager.algorithm"
            | "ssl.trustmanager.algorithm"
            | "ssl.provider"
            | "security.providers"
            | "ssl.engine.factory.class"
            | "ssl.secure.random.implementation" => {
                java_only(name, v)?;
                self
            }
            "partitioner.ignore.keys" => {
                self.partitioner_ignore_keys(boolean("partitioner.ignore.keys", v)?)
            }
            "partitioner.availability.timeout.ms" => self.partitioner_availability_timeout(millis(
                "partitioner.availability.timeout.ms",
                v,
            )?),
            "partitioner.adaptive.partitioning.enable" => self
                .partitioner_adaptive_partitioning_enable(boolean(
                    "partitioner.adaptive.partitioning.enable",
                    v,
                )?),
            "metadata.max.age.ms" => self.metadata_max_age(millis("metadata.max.age.ms", v)?),
            // Java's -1 and librdkafka's 0 both mean never.
            "connections.max.idle.ms" => self.connections_max_idle(
                v.parse::<i64>()
                    .ok()
                    .filter(|&ms| (-1..=i64::from(i32::MAX)).contains(&ms))
                    .map(|ms| (ms > 0).then(|| Duration::from_millis(ms as u64)))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "connections.max.idle.ms",
                            v,
                            "a number of milliseconds up to 2147483647, or -1 or 0 for never",
                        )
                    })?,
            ),
            "metadata.max.idle.ms" => self.metadata_max_idle(
                v.parse::<u64>()
                    .ok()
                    .filter(|&ms| ms >= 5000)
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "metadata.max.idle.ms",
                            v,
                            "a number of milliseconds from 5000",
                        )
                    })?,
            ),
            "socket.connection.setup.timeout.ms" => {
                self.connect_timeout(millis("socket.connection.setup.timeout.ms", v)?)
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.connect_timeout_max(millis("socket.connection.setup.timeout.max.ms", v)?)
            }
            "send.buffer.bytes" => self.send_buffer_bytes(java_buffer("send.buffer.bytes", v)?),
            "receive.buffer.bytes" => {
                self.receive_buffer_bytes(java_buffer("receive.buffer.bytes", v)?)
            }
            "delivery.report.only.error" => {
                self.delivery_report_only_error(boolean("delivery.report.only.error", v)?)
            }
            // librdkafka settings with no kring counterpart at any value:
            // refused with what to do instead, rather than as unknown.
            "sticky.partitioning.linger.ms" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|&ms| ms <= 900_000)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "sticky.partitioning.linger.ms",
                            value,
                            "a number of milliseconds from 0 to 900000",
                        )
                    })?;
                return Err(ConfigError::unsupported(
                    "sticky.partitioning.linger.ms",
                    value,
                    "kring's sticky partitioner (the Java client's, KIP-480 and KIP-794) \
                     moves to another partition when the batch it fills is full or sent, \
                     not after a time: remove this setting \
                     (partitioner.adaptive.partitioning.enable chooses how the next \
                     partition is picked)",
                ));
            }
            "socket.timeout.ms" => {
                v.parse::<u32>()
                    .ok()
                    .filter(|&ms| (10..=300_000).contains(&ms))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "socket.timeout.ms",
                            value,
                            "a number of milliseconds from 10 to 300000",
                        )
                    })?;
                return Err(ConfigError::unsupported(
                    "socket.timeout.ms",
                    value,
                    "kring has one request timeout, request.timeout.ms (the Java \
                     client's): how long a request waits for its response, which is \
                     librdkafka's socket.timeout.ms, and the broker's ack timeout, which \
                     is librdkafka's request.timeout.ms; set request.timeout.ms instead",
                ));
            }
            "queue.buffering.max.messages" => {
                // librdkafka: 0 disables the count limit, which is what
                // kring does.
                if v != "0" {
                    v.parse::<u32>()
                        .ok()
                        .filter(|&n| n <= i32::MAX as u32)
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                "queue.buffering.max.messages",
                                value,
                                "an integer from 0 to 2147483647",
                            )
                        })?;
                    return Err(ConfigError::unsupported(
                        "queue.buffering.max.messages",
                        value,
                        "kring bounds what it buffers in bytes, not records: set \
                         queue.buffering.max.kbytes (or buffer.memory) instead, and 0 here",
                    ));
                }
                self
            }
            "socket.keepalive.enable" => {
                self.socket_keepalive(boolean("socket.keepalive.enable", v)?)
            }
            "socket.send.buffer.bytes" => {
                self.send_buffer_bytes(rdkafka_buffer("socket.send.buffer.bytes", v)?)
            }
            "socket.receive.buffer.bytes" => {
                self.receive_buffer_bytes(rdkafka_buffer("socket.receive.buffer.bytes", v)?)
            }
            "sasl.mechanism" => {
                self.sasl_mechanism(super::sasl::parse_mechanism("sasl.mechanism", v)?)
            }
            "sasl.mechanisms" => {
                self.sasl_mechanism(super::sasl::parse_mechanism("sasl.mechanisms", v)?)
            }
            "sasl.username" => self.sasl_username(v),
            // Not trimmed: a password may begin or end with a space.
            "sasl.password" => self.sasl_password(value),
            "sasl.jaas.config" => {
                let login = super::sasl::parse_jaas(value)?;
                match login.oauth {
                    Some(o) => self.oauth_jaas(o),
                    None => self
                        .sasl_username(&login.username)
                        .sasl_password(&login.password)
                        .sasl_token_auth(login.token_auth),
                }
            }
            // librdkafka: `oidc` fetches tokens from the token endpoint,
            // `default` takes them from the application (kring's token
            // provider).
            "sasl.oauthbearer.method" => match v.to_ascii_lowercase().as_str() {
                "oidc" | "default" => self,
                _ => {
                    return Err(ConfigError::invalid(
                        "sasl.oauthbearer.method",
                        value,
                        "oidc (a token endpoint) or default (a token provider)",
                    ))
                }
            },
            // Java's OIDC login handler is what kring's token endpoint
            // support does; other handler classes cannot run here.
            "sasl.login.callback.handler.class" => {
                if !matches!(
                    v,
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
                        | "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler"
                        | ""
                ) {
                    return Err(ConfigError::unsupported(
                        "sasl.login.callback.handler.class",
                        value,
                        "kring runs no Java classes; OAuthBearerLoginCallbackHandler (a token \
                         endpoint, sasl.oauthbearer.token.endpoint.url) is built in, and other \
                         token sources can be a token provider",
                    ));
                }
                self
            }
            "ssl.ca.location" | "ssl.truststore.location" => self.ssl_ca_location(v),
            "ssl.ca.pem" | "ssl.truststore.certificates" => self.ssl_ca_pem(v),
            "ssl.certificate.location" => self.ssl_certificate_location(v),
            "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => self.ssl_certificate_pem(v),
            "ssl.key.location" => self.ssl_key_location(v),
            "ssl.key.pem" | "ssl.keystore.key" => self.ssl_key_pem(v),
            "ssl.keystore.location" => self.ssl_keystore_location(v),
            // Not trimmed: a password may end in whitespace.
            "ssl.key.password" => self.ssl_key_password(value),
            "ssl.cipher.suites" => self.ssl_cipher_suites(
                &super::ssl::parse_cipher_suites(v)
                    .map_err(|why| ConfigError::invalid("ssl.cipher.suites", value, why))?,
            ),
            "ssl.enabled.protocols" => self.ssl_enabled_protocols(
                &super::ssl::parse_enabled_protocols(v)
                    .map_err(|why| ConfigError::invalid("ssl.enabled.protocols", value, why))?,
            ),
            "ssl.protocol" => {
                super::ssl::ssl_protocol_accepted(v)
                    .map_err(|why| ConfigError::unsupported("ssl.protocol", value, why))?;
                self
            }
            "ssl.endpoint.identification.algorithm" => self.ssl_endpoint_identification(
                super::ssl::parse_endpoint_identification(v).ok_or_else(|| {
                    ConfigError::invalid(
                        "ssl.endpoint.identification.algorithm",
                        value,
                        "https, or none (or empty) to skip host name verification",
                    )
                })?,
            ),
            "ssl.truststore.type" | "ssl.keystore.type" => {
                if !super::ssl::is_readable_store_type(v) {
                    let property = name_of(name);
                    return Err(ConfigError::invalid(
                        property,
                        value,
                        "PEM or PKCS12 (kring reads no JKS stores: convert one with `keytool \
                         -importkeystore -srckeystore s.jks -destkeystore s.p12 -deststoretype PKCS12`)",
                    ));
                }
                self
            }
            // Not trimmed: a password may end in whitespace.
            "ssl.keystore.password" => self.ssl_keystore_password(value),
            "ssl.truststore.password" => self.ssl_truststore_password(value),
            "topic.metadata.propagation.max.ms" => {
                self.topic_metadata_propagation(millis("topic.metadata.propagation.max.ms", v)?)
            }
            n if n.starts_with("sasl.oauthbearer.")
                || n.starts_with("sasl.login.")
                || n.starts_with("https.ca.") =>
            {
                match self.set_oidc_property(n, value) {
                    Some(r) => r?,
                    None => {
                        return Err(ConfigError::UnknownProperty {
                            name: name.to_owned(),
                            did_you_mean: closest_name(name),
                        })
                    }
                }
            }
            _ => {
                return Err(ConfigError::UnknownProperty {
                    name: name.to_owned(),
                    did_you_mean: closest_name(name),
                })
            }
        })
    }
}

/// The Java serializers that hand the bytes they are given on unchanged.
const BYTE_SERIALIZERS: &[&str] = &[
    "org.apache.kafka.common.serialization.ByteArraySerializer",
    "org.apache.kafka.common.serialization.ByteBufferSerializer",
    "org.apache.kafka.common.serialization.BytesSerializer",
];

/// Java's `send.buffer.bytes` / `receive.buffer.bytes`: -1 for the OS
/// default (0 in kring), else a size of at least 1 byte (Java refuses 0
/// when it connects).
fn java_buffer(name: &'static str, v: &str) -> Result<u32, ConfigError> {
    match v.parse::<i64>() {
        Ok(-1) => Ok(0),
        Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(n as u32),
        _ => Err(ConfigError::invalid(
            name,
            v,
            "a size in bytes from 1 to 2147483647, or -1 for the OS default",
        )),
    }
}

/// librdkafka's `socket.send.buffer.bytes` / `socket.receive.buffer.bytes`:
/// 0 (the system default) to 100000000, librdkafka's range.
fn rdkafka_buffer(name: &'static str, v: &str) -> Result<u32, ConfigError> {
    v.parse::<u32>()
        .ok()
        .filter(|&n| n <= 100_000_000)
        .ok_or_else(|| {
            ConfigError::invalid(
                name,
                v,
                "a size in bytes from 0 (the system default) to 100000000",
            )
        })
}

/// Java settings with no kring counterpart: `Ok` where the value asks for
/// what kring does anyway (so the setting changes nothing), an error naming
/// the property and why where it asks for something kring does not do.
///
/// - `key.serializer`, `value.serializer`: kring takes records as bytes
///   and the application serializes them; only the serializers that pass
///   bytes through are accepted.
/// - `interceptor.classes`, `metric.reporters`: empty only (kring runs no
///   Java class; `metric.reporters` defaults to JmxReporter in Java, and
///   kring's statistics come from `statistics.interval.ms` and
///   `ProducerBuilder::on_statistics`).
/// - `metrics.sample.window.ms`, `metrics.num.samples`,
///   `metrics.recording.level`: how Java samples its own metrics, which
///   kring does not have; any valid value is accepted and changes nothing.
/// - `client.dns.lookup`: `use_all_dns_ips` (Java's default) is what kring
///   does, trying each address of a name in turn;
///   `resolve_canonical_bootstrap_servers_only` is refused.
fn java_only(name: &str, v: &str) -> Result<(), ConfigError> {
    match name {
        "key.serializer" | "value.serializer" => {
            let property = name_of(name);
            if !BYTE_SERIALIZERS.contains(&v) {
                return Err(ConfigError::unsupported(
                    property,
                    v,
                    "kring takes records as bytes and the application serializes them; \
                     only ByteArraySerializer, ByteBufferSerializer and BytesSerializer \
                     (org.apache.kafka.common.serialization), which pass bytes through, \
                     are accepted",
                ));
            }
        }
        "enable.metrics.push" => {
            if boolean("enable.metrics.push", v)? {
                tracing::warn!(
                    "enable.metrics.push=true: kring pushes no client metrics to the cluster \
                     (KIP-714; Java's behaviour with false); use on_statistics for its own"
                );
            }
        }
        "metadata.cluster.check.enable" => {
            if boolean("metadata.cluster.check.enable", v)? {
                tracing::warn!(
                    "metadata.cluster.check.enable=true: kring does not send brokers its \
                     cluster and node ids, so a broker cannot tell a misrouted connection \
                     (Java's behaviour with false, and with brokers before 4.4)"
                );
            }
        }
        "buffer.memory.allocation.strategy" => match v.to_ascii_lowercase().as_str() {
            // What kring does: a batch's buffer grows as records are
            // appended (by doubling, up to batch.size) and is charged to
            // buffer.memory as it grows.
            "incremental" => {}
            "full" => tracing::warn!(
                "buffer.memory.allocation.strategy=full: kring charges a batch to \
                 buffer.memory as its buffer grows (incremental), never a whole batch.size \
                 up front"
            ),
            _ => {
                return Err(ConfigError::invalid(
                    "buffer.memory.allocation.strategy",
                    v,
                    "full or incremental",
                ))
            }
        },
        // The JVM's TLS machinery: kring's TLS is rustls, which verifies
        // certificates by PKIX path validation (webpki) and has one key.
        "ssl.trustmanager.algorithm" => {
            if !v.eq_ignore_ascii_case("PKIX") {
                return Err(ConfigError::unsupported(
                    "ssl.trustmanager.algorithm",
                    v,
                    "kring verifies broker certificates by PKIX path validation (rustls and \
                     webpki), not through a JSSE trust manager; only PKIX (the JVM's \
                     default) is accepted",
                ));
            }
        }
        "ssl.keymanager.algorithm" => {
            if !v.eq_ignore_ascii_case("SunX509") && !v.eq_ignore_ascii_case("PKIX") {
                return Err(ConfigError::unsupported(
                    "ssl.keymanager.algorithm",
                    v,
                    "kring presents the one client certificate configured, without a JSSE \
                     key manager; only the JVM's SunX509 (or PKIX) is accepted",
                ));
            }
        }
        "ssl.provider"
        | "security.providers"
        | "ssl.engine.factory.class"
        | "ssl.secure.random.implementation" => {
            if !v.is_empty() {
                return Err(ConfigError::unsupported(
                    name_of(name),
                    v,
                    "kring's TLS is rustls with the ring provider, not a JVM security \
                     provider or engine; only an empty value (the JVM's default) is accepted",
                ));
            }
        }
        "config.providers" => {
            if !v.is_empty() {
                return Err(ConfigError::unsupported(
                    "config.providers",
                    v,
                    "kring runs no Java class and has no config providers: resolve \
                     ${provider:path:key} references before handing the properties to \
                     kring; only an empty list is accepted",
                ));
            }
        }
        "transaction.two.phase.commit.enable" => {
            if boolean("transaction.two.phase.commit.enable", v)? {
                return Err(ConfigError::unsupported(
                    "transaction.two.phase.commit.enable",
                    v,
                    "kring has no two-phase commit of transactions (KIP-939); only false (Java's default) is accepted",
                ));
            }
        }
        "partitioner.rack.aware" => {
            if boolean("partitioner.rack.aware", v)? {
                return Err(ConfigError::unsupported(
                    "partitioner.rack.aware",
                    v,
                    "kring's partitioner does not prefer partitions whose leader is in \
                     client.rack; only false (Java's default) is accepted",
                ));
            }
        }
        // Read by Java's producer only for `partitioner.rack.aware`, which
        // kring refuses: any value changes nothing.
        "client.rack" => {}
        "interceptor.classes" => {
            if !v.is_empty() {
                return Err(ConfigError::unsupported(
                    "interceptor.classes",
                    v,
                    "kring runs no Java class and has no interceptors: do that work around \
                     send and in ProducerBuilder::on_delivery; only an empty list is accepted",
                ));
            }
        }
        "metric.reporters" => {
            if !v.is_empty() {
                return Err(ConfigError::unsupported(
                    "metric.reporters",
                    v,
                    "kring runs no Java class and has no JMX or metric reporters: its \
                     statistics go to ProducerBuilder::on_statistics every \
                     statistics.interval.ms; only an empty list is accepted",
                ));
            }
        }
        "metrics.sample.window.ms" => {
            millis("metrics.sample.window.ms", v)?;
        }
        "metrics.num.samples" => {
            v.parse::<u32>()
                .ok()
                .filter(|&n| (1..=i32::MAX as u32).contains(&n))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "metrics.num.samples",
                        v,
                        "an integer from 1 to 2147483647",
                    )
                })?;
        }
        "metrics.recording.level" => {
            if !["INFO", "DEBUG", "TRACE"].contains(&v) {
                return Err(ConfigError::invalid(
                    "metrics.recording.level",
                    v,
                    "INFO, DEBUG or TRACE",
                ));
            }
        }
        "metadata.recovery.rebootstrap.trigger.ms" => {
            millis("metadata.recovery.rebootstrap.trigger.ms", v)?;
        }
        "metadata.recovery.strategy" => match v {
            "rebootstrap" => {}
            "none" => {
                return Err(ConfigError::unsupported(
                    "metadata.recovery.strategy",
                    v,
                    "kring always goes back to bootstrap.servers (resolved again) when it \
                     can reach none of the brokers it knows, as rebootstrap does",
                ));
            }
            _ => {
                return Err(ConfigError::invalid(
                    "metadata.recovery.strategy",
                    v,
                    "rebootstrap (or none, which kring does not do)",
                ))
            }
        },
        "client.dns.lookup" => match v {
            "use_all_dns_ips" => {}
            "resolve_canonical_bootstrap_servers_only" => {
                return Err(ConfigError::unsupported(
                    "client.dns.lookup",
                    v,
                    "kring does not resolve canonical host names (a Kerberos need; kring has \
                     no GSSAPI); it tries every address of a name, Java's use_all_dns_ips",
                ))
            }
            _ => {
                return Err(ConfigError::invalid(
                    "client.dns.lookup",
                    v,
                    "use_all_dns_ips or resolve_canonical_bootstrap_servers_only",
                ))
            }
        },
        _ => {
            return Err(ConfigError::UnknownProperty {
                name: name.to_owned(),
                did_you_mean: closest_name(name),
            })
        }
    }
    Ok(())
}

pub(super) fn millis(property: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::invalid(property, v, "a non-negative number of milliseconds"))
}

/// Milliseconds with an optional fraction (`0.5`), as librdkafka accepts
/// for `linger.ms`.
fn fractional_millis(property: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<f64>()
        .ok()
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok())
        .ok_or_else(|| ConfigError::invalid(property, v, "a non-negative number of milliseconds"))
}

/// The accepted property name nearest to `name` (Levenshtein distance, at
/// most a third of the name's length), for "did you mean" hints.
fn closest_name(name: &str) -> Option<&'static str> {
    let limit = (name.len() / 3).max(2);
    PROPERTY_NAMES
        .iter()
        .map(|&p| (edit_distance(&name.to_ascii_lowercase(), p), p))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, p)| p)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn size(property: &'static str, v: &str) -> Result<usize, ConfigError> {
    v.parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ConfigError::invalid(property, v, "a positive integer"))
}

/// A compression level; its range is checked by `validate`.
fn level(property: &'static str, v: &str) -> Result<i32, ConfigError> {
    v.parse::<i32>()
        .map_err(|_| ConfigError::invalid(property, v, "an integer compression level"))
}

pub(super) fn boolean(property: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(property, v, "true or false")),
    }
}

/// `name` as the `&'static str` of [`PROPERTY_NAMES`] (errors name the
/// property statically); names not listed there are not passed here.
pub(super) fn name_of(name: &str) -> &'static str {
    PROPERTY_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("property")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("linger.ms", "linger.ms", 0),
            ("lingr.ms", "linger.ms", 1),
            ("kitten", "sitting", 3),
            ("delivery.timeout", "delivery.timeout.ms", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a:?} {b:?}");
            assert_eq!(edit_distance(b, a), d, "{b:?} {a:?}");
        }
    }

    /// Every listed name comes back as itself (errors name what was set);
    /// an unlisted one cannot reach an error by it.
    #[test]
    fn name_of_gives_back_each_listed_name() {
        for &n in PROPERTY_NAMES {
            assert_eq!(name_of(n), n);
        }
        assert_eq!(name_of("no.such.property"), "property");
        // The aliases whose errors go through it name the one set.
        for (name, value) in [
            ("request.required.acks", "7"),
            ("compression.codec", "brotli"),
            ("message.send.max.retries", "-3"),
            ("ssl.keystore.type", "JKS9"),
            ("value.serializer", "com.example.Avro"),
        ] {
            let e = ProducerConfig::default().set(name, value).unwrap_err();
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
    }
}
