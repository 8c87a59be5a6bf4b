//! Kafka property names (`linger.ms`, `acks`, ...) to typed settings, so a
//! Java or librdkafka producer's configuration can be used as it is.

use std::str::FromStr;
use std::time::Duration;

use super::{Acks, Compression, ConfigError, PartitionerKind, ProducerConfig};

/// Every property [`ProducerConfig::from_properties`] accepts.
pub const PROPERTY_NAMES: &[&str] = &[
    "acks",
    "batch.size",
    "bootstrap.servers",
    "buffer.memory",
    "client.id",
    "compression.type",
    "delivery.timeout.ms",
    "enable.idempotence",
    "linger.ms",
    "max.block.ms",
    "max.in.flight.requests.per.connection",
    "max.request.size",
    "metadata.max.age.ms",
    "partitioner",
    "reconnect.backoff.max.ms",
    "reconnect.backoff.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.max.ms",
    "retry.backoff.ms",
    "socket.connection.setup.timeout.ms",
];

impl ProducerConfig {
    /// A configuration from Kafka property names and string values, e.g.
    /// `[("bootstrap.servers", "127.0.0.1:9092"), ("linger.ms", "10")]`.
    /// Unknown names and unparsable values are errors naming the property
    /// and what it accepts. Cross-checks happen in
    /// [`validate`](ProducerConfig::validate), when the producer is built.
    pub fn from_properties<I, K, V>(properties: I) -> Result<ProducerConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        properties
            .into_iter()
            .try_fold(ProducerConfig::default(), |c, (k, v)| {
                c.set(k.as_ref(), v.as_ref())
            })
    }

    /// Set one property by its Kafka name.
    pub fn set(self, name: &str, value: &str) -> Result<ProducerConfig, ConfigError> {
        let v = value.trim();
        Ok(match name {
            "bootstrap.servers" => self.bootstrap(v),
            "client.id" => self.client_id(v),
            "acks" => self.acks(match v.to_ascii_lowercase().as_str() {
                "0" => Acks::None,
                "1" => Acks::Leader,
                "-1" | "all" => Acks::All,
                _ => return Err(ConfigError::invalid("acks", value, "one of 0, 1, -1, all")),
            }),
            "linger.ms" => self.linger(millis("linger.ms", v)?),
            "batch.size" => self.batch_size(size("batch.size", v)?),
            "compression.type" => {
                self.compression(Compression::from_str(&v.to_ascii_lowercase()).map_err(|_| {
                    ConfigError::invalid(
                        "compression.type",
                        value,
                        "one of none, gzip, snappy, lz4, zstd",
                    )
                })?)
            }
            "enable.idempotence" => self.idempotence(boolean("enable.idempotence", v)?),
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight(size("max.in.flight.requests.per.connection", v)?)
            }
            "retries" => self.retries(
                v.parse::<u32>()
                    .ok()
                    .filter(|&r| r <= i32::MAX as u32)
                    .ok_or_else(|| {
                        ConfigError::invalid("retries", value, "an integer from 0 to 2147483647")
                    })?,
            ),
            "retry.backoff.ms" => self.retry_backoff(millis("retry.backoff.ms", v)?),
            "retry.backoff.max.ms" => self.retry_backoff_max(millis("retry.backoff.max.ms", v)?),
            "reconnect.backoff.ms" => self.reconnect_backoff(millis("reconnect.backoff.ms", v)?),
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max(millis("reconnect.backoff.max.ms", v)?)
            }
            "delivery.timeout.ms" => self.delivery_timeout(millis("delivery.timeout.ms", v)?),
            "request.timeout.ms" => self.request_timeout(millis("request.timeout.ms", v)?),
            "buffer.memory" => self.buffer_memory(size("buffer.memory", v)?),
            "max.block.ms" => self.max_block(millis("max.block.ms", v)?),
            "max.request.size" => self.max_request_size(size("max.request.size", v)?),
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
            "metadata.max.age.ms" => self.metadata_max_age(millis("metadata.max.age.ms", v)?),
            "socket.connection.setup.timeout.ms" => {
                self.connect_timeout(millis("socket.connection.setup.timeout.ms", v)?)
            }
            _ => {
                return Err(ConfigError::UnknownProperty {
                    name: name.to_owned(),
                })
            }
        })
    }
}

fn millis(property: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::invalid(property, v, "a non-negative number of milliseconds"))
}

fn size(property: &'static str, v: &str) -> Result<usize, ConfigError> {
    v.parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ConfigError::invalid(property, v, "a positive integer"))
}

fn boolean(property: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(property, v, "true or false")),
    }
}
