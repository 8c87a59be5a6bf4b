//! The producer's settings in the core's terms.
//!
//! `ProducerConfig` is the user-facing shape (Kafka property names, explicit
//! versus default settings); `kring_core::Config` is what the sans-IO core
//! runs with. Everything the core needs comes from here, the connect
//! timeouts too: the core decides each connect attempt's timeout and the
//! driver applies it.

use std::sync::Arc;

use kring_core::{Config, DeliveryCallback, PartitionerChoice};

use super::{PartitionerKind, ProducerConfig};

impl ProducerConfig {
    /// The core's configuration. `partitioner` overrides
    /// [`get_partitioner`](ProducerConfig::get_partitioner) (a custom one
    /// given to the builder); `on_delivery` is the producer-level callback.
    pub(crate) fn to_core(
        &self,
        partitioner: Option<PartitionerChoice>,
        on_delivery: Option<DeliveryCallback>,
    ) -> Config {
        let partitioner = partitioner.unwrap_or(match self.get_partitioner() {
            PartitionerKind::Default if self.get_partitioner_ignore_keys() => {
                PartitionerChoice::UniformSticky
            }
            PartitionerKind::Default => PartitionerChoice::Default,
            PartitionerKind::Sticky => PartitionerChoice::UniformSticky,
            PartitionerKind::RoundRobin => PartitionerChoice::RoundRobin,
        });
        Config {
            partitioner_adaptive: self.get_partitioner_adaptive_partitioning_enable(),
            partitioner_availability_timeout: self.get_partitioner_availability_timeout(),
            bootstrap: self.bootstrap_servers().to_vec(),
            client_id: self.get_client_id().to_owned(),
            acks: self.get_acks(),
            linger: self.get_linger(),
            // `batch.size=0` disables batching, as in the Java client: a
            // batch is sealed after its first record.
            batch_size: self.get_batch_size().max(1),
            batch_num_messages: if self.get_batch_size() == 0 {
                1
            } else {
                self.get_batch_num_messages()
            },
            max_request_size: self.get_max_request_size(),
            buffer_memory: self.get_buffer_memory(),
            compression: self.get_compression(),
            compression_level: self.core_compression_level(),
            enable_idempotence: self.get_idempotence(),
            transactional_id: self.get_transactional_id().map(str::to_owned),
            transaction_timeout: self.get_transaction_timeout(),
            max_in_flight: self.get_max_in_flight(),
            retries: self.get_retries(),
            retry_backoff: self.get_retry_backoff(),
            retry_backoff_max: self.get_retry_backoff_max(),
            reconnect_backoff: self.get_reconnect_backoff(),
            reconnect_backoff_max: self.get_reconnect_backoff_max(),
            connect_timeout: self.get_connect_timeout(),
            connect_timeout_max: self.get_connect_timeout_max(),
            delivery_timeout: self.get_delivery_timeout(),
            request_timeout: self.get_request_timeout(),
            metadata_max_age: self.get_metadata_max_age(),
            metadata_max_idle: self.get_metadata_max_idle(),
            connections_max_idle: self.get_connections_max_idle(),
            max_block: self.get_max_block(),
            security_protocol: self.get_security_protocol(),
            sasl: self.sasl_to_core(),
            topic_metadata_propagation: self.get_topic_metadata_propagation(),
            statistics_interval: self.get_statistics_interval(),
            partitioner,
            on_delivery: match on_delivery {
                // librdkafka's `delivery.report.only.error`: the callback
                // hears of failed records only.
                Some(cb) if self.get_delivery_report_only_error() => {
                    let only_errors: DeliveryCallback = Arc::new(move |r| {
                        if r.result.is_err() {
                            cb(r);
                        }
                    });
                    Some(only_errors)
                }
                cb => cb,
            },
            jitter_seed: jitter_seed(),
            ..Config::default()
        }
    }
}

/// A seed for the core's backoff jitter, different in every producer: the
/// jitter is there so that clients that failed together do not retry and
/// reconnect together, which one constant seed (the core's default, fixed
/// for its tests) would defeat. From std's `RandomState` (OS randomness).
fn jitter_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x6a69_7474_6572_u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Acks, Compression};

    /// Two producers jitter their backoffs differently (a constant seed
    /// would have every client that failed together retry together).
    #[test]
    fn each_producer_gets_its_own_jitter_seed() {
        let c = ProducerConfig::from_properties([("bootstrap.servers", "a:1")])
            .unwrap()
            .validate()
            .unwrap();
        let seeds: std::collections::HashSet<u64> =
            (0..4).map(|_| c.to_core(None, None).jitter_seed).collect();
        assert_eq!(seeds.len(), 4);
    }

    #[test]
    fn every_setting_reaches_the_core() {
        let c = ProducerConfig::from_properties([
            ("bootstrap.servers", "a:1,b:2"),
            ("client.id", "me"),
            ("acks", "1"),
            ("linger.ms", "7"),
            ("batch.size", "1000"),
            ("compression.type", "zstd"),
            ("max.in.flight.requests.per.connection", "9"),
            ("retries", "3"),
            ("retry.backoff.ms", "10"),
            ("retry.backoff.max.ms", "20"),
            ("reconnect.backoff.ms", "30"),
            ("reconnect.backoff.max.ms", "40"),
            ("delivery.timeout.ms", "50000"),
            ("request.timeout.ms", "4000"),
            ("buffer.memory", "123456"),
            ("max.block.ms", "6"),
            ("max.request.size", "99999"),
            ("partitioner", "round_robin"),
            ("metadata.max.age.ms", "8"),
            ("metadata.max.idle.ms", "5001"),
            ("connections.max.idle.ms", "60000"),
            ("statistics.interval.ms", "250"),
            ("socket.connection.setup.timeout.ms", "11"),
            ("socket.connection.setup.timeout.max.ms", "12"),
        ])
        .unwrap()
        .validate()
        .unwrap();
        let k = c.to_core(None, None);
        assert_eq!(k.bootstrap, ["a:1", "b:2"]);
        assert_eq!(k.client_id, "me");
        assert_eq!(k.acks, Acks::Leader);
        assert_eq!(k.linger, Duration::from_millis(7));
        assert_eq!(k.batch_size, 1000);
        assert_eq!(k.compression, Compression::Zstd);
        assert!(!k.enable_idempotence, "turned off by the explicit acks=1");
        assert_eq!(k.max_in_flight, 9);
        assert_eq!(k.retries, 3);
        assert_eq!(k.retry_backoff, Duration::from_millis(10));
        assert_eq!(k.retry_backoff_max, Duration::from_millis(20));
        assert_eq!(k.reconnect_backoff, Duration::from_millis(30));
        assert_eq!(k.reconnect_backoff_max, Duration::from_millis(40));
        assert_eq!(k.delivery_timeout, Duration::from_millis(50000));
        assert_eq!(k.request_timeout, Duration::from_millis(4000));
        assert_eq!(k.buffer_memory, 123_456);
        assert_eq!(k.max_block, Duration::from_millis(6));
        assert_eq!(k.max_request_size, 99_999);
        assert!(matches!(k.partitioner, PartitionerChoice::RoundRobin));
        assert_eq!(k.metadata_max_age, Duration::from_millis(8));
        assert_eq!(k.metadata_max_idle, Duration::from_millis(5001));
        assert_eq!(k.connections_max_idle, Some(Duration::from_secs(60)));
        assert_eq!(k.statistics_interval, Duration::from_millis(250));
        assert_eq!(k.connect_timeout, Duration::from_millis(11));
        assert_eq!(k.connect_timeout_max, Duration::from_millis(12));
        assert!(k.on_delivery.is_none());
        k.validate().unwrap();
    }

    /// The selected codec's level reaches the core in the codec's terms:
    /// the Java property for it, else librdkafka's `compression.level`
    /// (gzip levels above 9 meaning 9, as librdkafka clamps them); the
    /// defaults (-1, Java's lz4 9, librdkafka's lz4 0) are the codec's
    /// default; other codecs' levels are checked but unused.
    #[test]
    fn compression_levels_reach_the_core() {
        let level = |p: &[(&str, &str)]| {
            let mut all = vec![("bootstrap.servers", "a:1")];
            all.extend_from_slice(p);
            let c = ProducerConfig::from_properties(all).unwrap();
            c.validate().unwrap().to_core(None, None).compression_level
        };
        type Props<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Props<'_>, Option<i32>)] = &[
            (&[("compression.type", "gzip")], None),
            (&[("compression.type", "zstd")], None),
            (
                &[
                    ("compression.type", "gzip"),
                    ("compression.gzip.level", "9"),
                ],
                Some(9),
            ),
            (
                &[
                    ("compression.type", "gzip"),
                    ("compression.gzip.level", "-1"),
                ],
                None,
            ),
            (
                &[
                    ("compression.type", "zstd"),
                    ("compression.zstd.level", "-7"),
                ],
                Some(-7),
            ),
            (
                &[
                    ("compression.type", "zstd"),
                    ("compression.zstd.level", "3"),
                ],
                Some(3),
            ),
            (
                &[("compression.type", "lz4"), ("compression.lz4.level", "9")],
                None,
            ),
            (
                &[("compression.codec", "gzip"), ("compression.level", "0")],
                Some(0),
            ),
            (
                &[("compression.codec", "gzip"), ("compression.level", "12")],
                Some(9),
            ),
            (
                &[("compression.codec", "gzip"), ("compression.level", "-1")],
                None,
            ),
            (
                &[("compression.codec", "zstd"), ("compression.level", "12")],
                Some(12),
            ),
            (
                &[("compression.codec", "lz4"), ("compression.level", "0")],
                None,
            ),
            (
                &[("compression.codec", "snappy"), ("compression.level", "0")],
                None,
            ),
            (
                &[("compression.codec", "none"), ("compression.level", "5")],
                None,
            ),
            // Levels of codecs not selected: accepted, unused (Java too).
            (
                &[
                    ("compression.type", "zstd"),
                    ("compression.gzip.level", "1"),
                ],
                None,
            ),
            (
                &[
                    ("compression.type", "gzip"),
                    ("compression.lz4.level", "12"),
                ],
                None,
            ),
            // Order does not matter.
            (
                &[("compression.level", "4"), ("compression.type", "zstd")],
                Some(4),
            ),
        ];
        for (props, want) in cases {
            assert_eq!(level(props), *want, "{props:?}");
        }
        assert_eq!(
            ProducerConfig::default()
                .bootstrap("a:1")
                .compression(Compression::Zstd)
                .compression_zstd_level(19)
                .validate()
                .unwrap()
                .to_core(None, None)
                .compression_level,
            Some(19)
        );
        assert_eq!(
            ProducerConfig::default()
                .bootstrap("a:1")
                .compression(Compression::Gzip)
                .compression_level(1)
                .validate()
                .unwrap()
                .to_core(None, None)
                .compression_level,
            Some(1)
        );
    }

    /// `partitioner.ignore.keys=true` turns the default partitioner into
    /// the key-ignoring sticky one; it leaves round robin (Java: any
    /// partitioner but the built-in one) alone, and false is the default.
    #[test]
    fn partitioner_ignore_keys_reaches_the_core() {
        let core = |p: &[(&str, &str)]| {
            let mut all = vec![("bootstrap.servers", "a:1")];
            all.extend_from_slice(p);
            let c = ProducerConfig::from_properties(all).unwrap();
            c.validate().unwrap().to_core(None, None).partitioner
        };
        assert!(matches!(core(&[]), PartitionerChoice::Default));
        let off = core(&[("partitioner.ignore.keys", "false")]);
        assert!(matches!(off, PartitionerChoice::Default));
        let on = core(&[("partitioner.ignore.keys", "TRUE")]);
        assert!(matches!(on, PartitionerChoice::UniformSticky), "{on:?}");
        let rr = core(&[
            ("partitioner", "round_robin"),
            ("partitioner.ignore.keys", "true"),
        ]);
        assert!(matches!(rr, PartitionerChoice::RoundRobin), "{rr:?}");
    }

    /// The core's checks are the only range checks: `validate` runs them,
    /// so a configuration the core would refuse never gets past it.
    #[test]
    fn core_verdicts_become_config_errors() {
        let err = ProducerConfig::default()
            .bootstrap("a:1")
            .max_request_size(100)
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                crate::ConfigError::OutOfRange {
                    property: "max.request.size",
                    ..
                }
            ),
            "{err}"
        );
    }
}
