use std::time::Duration;

use super::*;

fn props(p: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
    ProducerConfig::from_properties(p.iter().copied())?.validate()
}

#[test]
fn every_property_parses() {
    let c = props(&[
        ("bootstrap.servers", "a:1, b:2"),
        ("client.id", "me"),
        ("acks", "1"),
        ("linger.ms", "7"),
        ("batch.size", "1000"),
        ("compression.type", "zstd"),
        ("enable.idempotence", "false"),
        ("max.in.flight.requests.per.connection", "9"),
        ("retries", "3"),
        ("retry.backoff.ms", "10"),
        ("retry.backoff.max.ms", "20"),
        ("reconnect.backoff.ms", "30"),
        ("reconnect.backoff.max.ms", "40"),
        ("delivery.timeout.ms", "50000"),
        ("request.timeout.ms", "4000"),
        ("buffer.memory", "12345"),
        ("max.block.ms", "6"),
        ("max.request.size", "9999"),
        ("partitioner", "sticky"),
        ("metadata.max.age.ms", "8"),
        ("metadata.max.idle.ms", "60000"),
        ("socket.connection.setup.timeout.ms", "11"),
        ("socket.connection.setup.timeout.max.ms", "12"),
    ])
    .unwrap();
    assert_eq!(c.bootstrap_servers(), ["a:1", "b:2"]);
    assert_eq!(c.get_client_id(), "me");
    assert_eq!(c.get_acks(), Acks::Leader);
    assert_eq!(c.get_linger(), Duration::from_millis(7));
    assert_eq!(c.get_batch_size(), 1000);
    assert_eq!(c.get_compression(), Compression::Zstd);
    assert!(!c.get_idempotence());
    assert_eq!(c.get_max_in_flight(), 9);
    assert_eq!(c.get_retries(), 3);
    assert_eq!(c.get_retry_backoff(), Duration::from_millis(10));
    assert_eq!(c.get_retry_backoff_max(), Duration::from_millis(20));
    assert_eq!(c.get_reconnect_backoff(), Duration::from_millis(30));
    assert_eq!(c.get_reconnect_backoff_max(), Duration::from_millis(40));
    assert_eq!(c.get_delivery_timeout(), Duration::from_millis(50000));
    assert_eq!(c.get_request_timeout(), Duration::from_millis(4000));
    assert_eq!(c.get_buffer_memory(), 12345);
    assert_eq!(c.get_max_block(), Duration::from_millis(6));
    assert_eq!(c.get_max_request_size(), 9999);
    assert_eq!(c.get_partitioner(), PartitionerKind::Sticky);
    assert_eq!(c.get_metadata_max_age(), Duration::from_millis(8));
    assert_eq!(c.get_metadata_max_idle(), Duration::from_secs(60));
    assert_eq!(c.get_connect_timeout(), Duration::from_millis(11));
    assert_eq!(c.get_connect_timeout_max(), Duration::from_millis(12));
}

#[test]
fn every_accepted_name_is_listed_and_settable() {
    for name in PROPERTY_NAMES {
        let r = ProducerConfig::default().set(name, "not-a-valid-value-for-most");
        assert!(
            !matches!(r, Err(ConfigError::UnknownProperty { .. })),
            "{name} is listed but not accepted"
        );
    }
}

#[test]
fn acks_spellings() {
    for (v, a) in [
        ("0", Acks::None),
        ("1", Acks::Leader),
        ("-1", Acks::All),
        ("all", Acks::All),
        ("ALL", Acks::All),
    ] {
        let c = ProducerConfig::default().set("acks", v).unwrap();
        assert_eq!(c.get_acks(), a, "{v}");
    }
}

#[test]
fn codecs_parse() {
    for (v, codec) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        assert_eq!(
            ProducerConfig::default()
                .set("compression.type", v)
                .unwrap()
                .get_compression(),
            codec
        );
    }
}

#[test]
fn unknown_property_names_itself_and_the_accepted_ones() {
    let err = props(&[("bootstrap.servers", "a:1"), ("linger", "5")]).unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownProperty {
            name: "linger".into(),
            did_you_mean: None,
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`linger`") && msg.contains("linger.ms") && msg.contains("acks"),
        "{msg}"
    );
}

#[test]
fn invalid_values_name_property_and_accepted_values() {
    for (name, value, hint) in [
        ("acks", "2", "0, 1, -1, all"),
        (
            "compression.type",
            "brotli",
            "none, gzip, snappy, lz4, zstd",
        ),
        ("linger.ms", "-1", "milliseconds"),
        ("enable.idempotence", "yes", "true or false"),
        ("batch.size", "-1", "non-negative"),
        ("retries", "4294967295", "2147483647"),
        ("partitioner", "fnv1a", "sticky"),
        ("partitioner.ignore.keys", "1", "true or false"),
        ("buffer.memory", "0", "a positive integer"),
        ("max.request.size", "0", "a positive integer"),
        (
            "max.in.flight.requests.per.connection",
            "0",
            "a positive integer",
        ),
    ] {
        let err = ProducerConfig::default().set(name, value).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains(value) && msg.contains(hint),
            "{msg}"
        );
    }
}

#[test]
fn bootstrap_is_required_and_checked() {
    assert_eq!(
        props(&[]).unwrap_err(),
        ConfigError::Missing {
            property: "bootstrap.servers"
        }
    );
    for bad in ["localhost", "host:", ":9092", "host:99999", "host:0"] {
        let err = props(&[("bootstrap.servers", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("bootstrap.servers"),
            "{bad}: {err}"
        );
    }
    assert!(props(&[("bootstrap.servers", "[::1]:9092")]).is_ok());
}

#[test]
fn explicit_idempotence_conflicts_are_errors() {
    for (k, v, need) in [
        ("acks", "1", "acks to all"),
        ("retries", "0", "retries"),
        ("max.in.flight.requests.per.connection", "6", "at most 5"),
    ] {
        let err = props(&[
            ("bootstrap.servers", "a:1"),
            ("enable.idempotence", "true"),
            (k, v),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Conflict(m) if m.contains(need)),
            "{err}"
        );
    }
}

/// A `transactional.id` needs idempotence, as in the Java client: its
/// default no longer yields to a conflicting setting, and an explicit
/// `enable.idempotence=false` is refused.
#[test]
fn a_transactional_id_requires_idempotence() {
    let c = props(&[("bootstrap.servers", "a:1"), ("transactional.id", "tx-1")]).unwrap();
    assert_eq!(c.get_transactional_id(), Some("tx-1"));
    assert!(c.get_idempotence());
    assert_eq!(c.get_transaction_timeout(), Duration::from_secs(60));
    for (k, v, need) in [
        ("acks", "1", "acks to all"),
        ("retries", "0", "retries"),
        ("max.in.flight.requests.per.connection", "6", "at most 5"),
        ("enable.idempotence", "false", "enable.idempotence=true"),
    ] {
        let err = props(&[
            ("bootstrap.servers", "a:1"),
            ("transactional.id", "tx-1"),
            (k, v),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Conflict(m) if m.contains(need) && m.contains("transactional.id")),
            "{k}={v}: {err}"
        );
    }
    // Java: an empty id is no id.
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("transactional.id", ""),
        ("acks", "1"),
    ])
    .unwrap();
    assert_eq!(c.get_transactional_id(), None);
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("transaction.timeout.ms", "900000"),
    ])
    .unwrap();
    assert_eq!(c.get_transaction_timeout(), Duration::from_secs(900));
    for bad in ["0", "2147483648", "-1", "soon"] {
        assert!(
            props(&[
                ("bootstrap.servers", "a:1"),
                ("transaction.timeout.ms", bad)
            ])
            .is_err(),
            "transaction.timeout.ms={bad}"
        );
    }
}

#[test]
fn default_idempotence_yields_to_explicit_conflicts() {
    let c = props(&[("bootstrap.servers", "a:1"), ("acks", "1")]).unwrap();
    assert!(!c.get_idempotence());
    let c = props(&[("bootstrap.servers", "a:1")]).unwrap();
    assert!(c.get_idempotence());
    assert_eq!(c.get_acks(), Acks::All);
}

/// A Java configuration with `retry.backoff.ms` (or `reconnect.backoff.ms`)
/// above its `.max.ms` (e.g. `retry.backoff.ms=2000` beside the default
/// max of 1000, common from before Kafka 3.7) builds, as in the Java
/// client, whose backoff then stays at the max; it was refused.
#[test]
fn backoff_above_its_max_is_accepted_as_in_java() {
    for (name, value) in [
        ("retry.backoff.ms", "2000"),
        ("reconnect.backoff.ms", "5000"),
    ] {
        let c = props(&[("bootstrap.servers", "a:1"), (name, value)])
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        assert_eq!(c.to_core(None, None).validate(), Ok(()), "{name}");
    }
}

/// A `max.request.size` or `buffer.memory` below the *default* batch.size
/// (16384) is a valid Java configuration (e.g. `max.request.size=8192`
/// to cap records at 8 KiB): the batch.size the user did not choose is
/// lowered to fit, as delivery.timeout.ms is raised, where it was refused
/// with an error about a batch.size the user never set. An explicit
/// batch.size above either is still refused.
#[test]
fn default_batch_size_yields_to_a_smaller_max_request_size_or_buffer_memory() {
    let c = props(&[("bootstrap.servers", "a:1"), ("max.request.size", "8192")])
        .unwrap_or_else(|e| panic!("max.request.size=8192: {e}"));
    assert_eq!(c.get_batch_size(), 8192);
    c.to_core(None, None).validate().unwrap();
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("buffer.memory", "10000"),
        ("max.request.size", "12000"),
    ])
    .unwrap_or_else(|e| panic!("buffer.memory=10000: {e}"));
    assert_eq!(c.get_batch_size(), 10_000);
    // Chosen: kept, and refused where it cannot be.
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("batch.size", "4096"),
        ("max.request.size", "8192"),
    ])
    .unwrap();
    assert_eq!(c.get_batch_size(), 4096);
    let err = props(&[
        ("bootstrap.servers", "a:1"),
        ("batch.size", "16384"),
        ("max.request.size", "8192"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("batch.size"), "{err}");
}

#[test]
fn delivery_timeout_floor() {
    // Explicit and below linger + request.timeout: request.timeout.ms is
    // lowered to fit, as librdkafka does.
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("linger.ms", "1000"),
        ("request.timeout.ms", "30000"),
        ("delivery.timeout.ms", "30000"),
    ])
    .unwrap();
    assert_eq!(c.get_delivery_timeout(), Duration::from_millis(30_000));
    assert_eq!(c.get_request_timeout(), Duration::from_millis(29_000));
    // Not even linger fits: refused.
    for delivery in ["1000", "999", "0"] {
        let err = props(&[
            ("bootstrap.servers", "a:1"),
            ("linger.ms", "1000"),
            ("delivery.timeout.ms", delivery),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("delivery.timeout.ms"), "{err}");
    }
    // Not explicit: raised to the floor.
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("linger.ms", "100000"),
        ("request.timeout.ms", "30000"),
    ])
    .unwrap();
    assert_eq!(c.get_delivery_timeout(), Duration::from_millis(130_000));
}

#[test]
fn typed_setters_match_properties() {
    let typed = ProducerConfig::default()
        .bootstrap("h:1")
        .linger(Duration::from_millis(3))
        .compression(Compression::Lz4)
        .acks(Acks::All);
    let named = ProducerConfig::from_properties([
        ("bootstrap.servers", "h:1"),
        ("linger.ms", "3"),
        ("compression.type", "lz4"),
        ("acks", "all"),
    ])
    .unwrap();
    assert_eq!(typed, named);
}

#[test]
fn librdkafka_aliases_mean_the_same() {
    let c = props(&[
        ("bootstrap.servers", "PLAINTEXT://a:1,plaintext://b:2"),
        ("message.timeout.ms", "30000"),
        ("queue.buffering.max.ms", "0.5"),
        ("queue.buffering.max.kbytes", "1024"),
        ("compression.codec", "lz4"),
        ("batch.num.messages", "10000"),
        ("security.protocol", "PLAINTEXT"),
        ("statistics.interval.ms", "5000"),
        ("debug", "broker,topic,msg"),
    ])
    .unwrap();
    assert_eq!(c.get_statistics_interval(), Duration::from_secs(5));
    assert_eq!(c.bootstrap_servers(), ["a:1", "b:2"]);
    assert_eq!(c.get_delivery_timeout(), Duration::from_millis(30_000));
    assert_eq!(c.get_linger(), Duration::from_micros(500));
    assert_eq!(c.get_buffer_memory(), 1024 * 1024);
    assert_eq!(c.get_compression(), Compression::Lz4);
    assert_eq!(c.get_batch_num_messages(), 10_000);
    // The obvious translation of a librdkafka config: request.timeout.ms
    // (30 s by default) is lowered to fit below message.timeout.ms.
    assert_eq!(c.get_request_timeout(), Duration::from_micros(29_999_500));
    let core = c.to_core(None, None);
    assert_eq!(core.statistics_interval, Duration::from_secs(5));
    assert_eq!(core.linger, Duration::from_micros(500));
    assert_eq!(core.batch_num_messages, 10_000);
    core.validate().unwrap();
}

/// More librdkafka names: each alias gives what its Java name gives, and
/// its errors name the alias the configuration used.
#[test]
fn more_librdkafka_aliases_mean_the_same() {
    let pairs = [
        ("metadata.broker.list", "bootstrap.servers", "a:1,b:2"),
        ("request.required.acks", "acks", "1"),
        ("request.required.acks", "acks", "-1"),
        ("request.required.acks", "acks", "0"),
        ("message.send.max.retries", "retries", "3"),
        ("message.max.bytes", "max.request.size", "2000000"),
        (
            "topic.metadata.refresh.interval.ms",
            "metadata.max.age.ms",
            "60000",
        ),
    ];
    for (alias, java, value) in pairs {
        let base = ProducerConfig::default().linger(Duration::from_millis(7));
        let by_alias = base.clone().set(alias, value).unwrap();
        let by_java = base.set(java, value).unwrap();
        assert_eq!(by_alias, by_java, "{alias}={value}");
        assert_ne!(
            by_alias,
            ProducerConfig::default().linger(Duration::from_millis(7)),
            "{alias}"
        );
    }
    for (alias, bad) in [
        ("request.required.acks", "2"),
        ("message.send.max.retries", "-1"),
        ("message.max.bytes", "999"),
        ("message.max.bytes", "1000000001"),
        ("topic.metadata.refresh.interval.ms", "-1"),
    ] {
        let e = ProducerConfig::default().set(alias, bad).unwrap_err();
        assert!(e.to_string().contains(alias), "{alias}={bad}: {e}");
    }
    // No count limit is what kring does; a limit is refused naming the
    // byte bound to use instead.
    let c = ProducerConfig::default()
        .set("queue.buffering.max.messages", "0")
        .unwrap();
    assert_eq!(c, ProducerConfig::default());
    let e = ProducerConfig::default()
        .set("queue.buffering.max.messages", "100000")
        .unwrap_err();
    assert!(
        matches!(e, ConfigError::Unsupported { .. })
            && e.to_string().contains("queue.buffering.max.kbytes"),
        "{e}"
    );
    let e = ProducerConfig::default()
        .set("queue.buffering.max.messages", "-1")
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e}");
    for (value, on) in [("true", true), ("false", false)] {
        let c = ProducerConfig::default()
            .set("delivery.report.only.error", value)
            .unwrap();
        assert_eq!(c.get_delivery_report_only_error(), on);
    }
    for switch in [
        "socket.nagle.disable",
        "api.version.request",
        "enable.ssl.certificate.verification",
    ] {
        let c = ProducerConfig::default().set(switch, "true").unwrap();
        assert_eq!(
            c,
            ProducerConfig::default(),
            "{switch}=true changes nothing"
        );
        let e = ProducerConfig::default().set(switch, "false").unwrap_err();
        assert!(
            matches!(e, ConfigError::Unsupported { .. }) && e.to_string().contains(switch),
            "{switch}=false: {e}"
        );
    }
}

/// librdkafka's `message.timeout.ms=0` means no timeout ("a time of 0 is
/// infinite"), a common setting in librdkafka configurations: the alias
/// gives the longest `delivery.timeout.ms` kring has, where it was read
/// as a zero timeout and refused as below `linger.ms`. Java's own
/// `delivery.timeout.ms=0` has no such meaning and is still refused.
#[test]
fn librdkafka_message_timeout_zero_is_no_timeout() {
    let c = props(&[("bootstrap.servers", "a:1"), ("message.timeout.ms", "0")])
        .unwrap_or_else(|e| panic!("message.timeout.ms=0: {e}"));
    assert_eq!(c.get_delivery_timeout(), kring_core::MAX_DURATION);
    assert_eq!(c.get_request_timeout(), Duration::from_secs(30));
    c.to_core(None, None).validate().unwrap();
    assert!(props(&[("bootstrap.servers", "a:1"), ("delivery.timeout.ms", "0")]).is_err());
}

#[test]
fn fractional_linger() {
    let c = ProducerConfig::default().set("linger.ms", "0.25").unwrap();
    assert_eq!(c.get_linger(), Duration::from_micros(250));
    for bad in ["-0.5", "NaN", "inf", "1e400", "x"] {
        assert!(
            ProducerConfig::default().set("linger.ms", bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn unsupported_librdkafka_values_are_clear_errors() {
    for (k, v, hint) in [
        (
            "security.protocol",
            "TLS",
            "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        ),
        ("statistics.interval.ms", "-1", "milliseconds"),
        ("debug", "everything", "debug contexts"),
        ("batch.num.messages", "0", "1 to 2147483647"),
    ] {
        let err = ProducerConfig::default().set(k, v).unwrap_err();
        assert!(err.to_string().contains(hint), "{k}={v}: {err}");
    }
    let err = props(&[("bootstrap.servers", "SSL://a:9093")]).unwrap_err();
    assert!(err.to_string().contains("TLS/SASL"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once_with_hints() {
    let err = ProducerConfig::from_properties([
        ("bootstrap.servers", "a:1"),
        ("linger.mss", "5"),
        ("acks", "2"),
        ("compresion.type", "zstd"),
        ("totally.unknown.thing", "1"),
        ("batch.size", "-1"),
    ])
    .unwrap_err();
    let ConfigError::Multiple(errors) = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 5, "{err}");
    assert_eq!(
        errors[0],
        ConfigError::UnknownProperty {
            name: "linger.mss".into(),
            did_you_mean: Some("linger.ms")
        }
    );
    assert!(matches!(
        &errors[2],
        ConfigError::UnknownProperty {
            did_you_mean: Some("compression.type"),
            ..
        }
    ));
    assert!(matches!(
        &errors[3],
        ConfigError::UnknownProperty {
            did_you_mean: None,
            ..
        }
    ));
    let msg = err.to_string();
    for part in [
        "did you mean `linger.ms`",
        "acks",
        "batch.size",
        "5 configuration problems",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert!(msg.starts_with("5 configuration problems: "), "{msg}");
    // One between each two problems, and one before the accepted names.
    assert_eq!(msg.matches("; ").count(), 5, "{msg}");
    assert!(msg.contains("; kring accepts: "), "{msg}");
    assert!(!msg.contains(": ;"), "{msg}");
}

#[test]
fn bootstrap_nonsense_is_refused_at_build_time() {
    for bad in [
        "a b:1",
        "host:0",
        "host:x",
        "PLAINTEXT://",
        "PLAINTEXT://:9092",
        "[::1:9092",
    ] {
        let err = props(&[("bootstrap.servers", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("bootstrap.servers"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        props(&[("bootstrap.servers", " , ")]).unwrap_err(),
        ConfigError::Missing {
            property: "bootstrap.servers"
        }
    );
}

/// Every extreme value of every setting: `validate` either refuses it with
/// a `ConfigError` or accepts it, and whatever it accepts the core accepts
/// too (one validation path). A panic fails the test.
#[test]
fn extremes_are_config_errors_never_panics() {
    let durations = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(1),
        kring_core::MAX_DURATION,
        kring_core::MAX_DURATION + Duration::from_nanos(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ];
    let sizes = [
        0,
        1,
        127,
        128,
        16_384,
        1 << 20,
        i32::MAX as usize,
        usize::MAX,
    ];
    type SetD = fn(ProducerConfig, Duration) -> ProducerConfig;
    let duration_setters: [SetD; 13] = [
        ProducerConfig::linger,
        ProducerConfig::retry_backoff,
        ProducerConfig::retry_backoff_max,
        ProducerConfig::reconnect_backoff,
        ProducerConfig::reconnect_backoff_max,
        ProducerConfig::delivery_timeout,
        ProducerConfig::request_timeout,
        ProducerConfig::max_block,
        ProducerConfig::metadata_max_age,
        ProducerConfig::metadata_max_idle,
        ProducerConfig::connect_timeout,
        ProducerConfig::connect_timeout_max,
        |c, d| c.linger(d).delivery_timeout(d),
    ];
    type SetS = fn(ProducerConfig, usize) -> ProducerConfig;
    let size_setters: [SetS; 4] = [
        ProducerConfig::batch_size,
        ProducerConfig::buffer_memory,
        ProducerConfig::max_request_size,
        ProducerConfig::max_in_flight,
    ];
    let base = || ProducerConfig::default().bootstrap("h:1");
    let mut checked = 0;
    let mut check = |c: ProducerConfig| {
        if let Ok(c) = c.validate() {
            c.to_core(None, None)
                .validate()
                .expect("kring accepted what the core refuses");
        }
        checked += 1;
    };
    for &d in &durations {
        for set in duration_setters {
            check(set(base(), d));
            for &d2 in &durations {
                for set2 in duration_setters {
                    check(set2(set(base(), d), d2));
                }
            }
        }
    }
    for &n in &sizes {
        for set in size_setters {
            for &m in &sizes {
                for set2 in size_setters {
                    check(set2(set(base(), n), m));
                }
            }
        }
    }
    for r in [0, 1, i32::MAX as u32, u32::MAX] {
        check(base().retries(r));
    }
    assert!(checked > 6000, "{checked}");
    for c in [
        base().linger(Duration::MAX),
        base().request_timeout(Duration::MAX),
        base().request_timeout(Duration::ZERO),
        base().delivery_timeout(Duration::MAX),
        base().max_block(Duration::MAX),
        base().batch_size(2 << 20),
        base().batch_size(16_384).buffer_memory(1000),
        base().connect_timeout(Duration::ZERO),
        base().connect_timeout_max(Duration::ZERO),
    ] {
        assert!(c.clone().validate().is_err(), "{c:?}");
    }
}

/// `linger(Duration::MAX)` panicked in `build()` (an overflowing
/// `linger + request_timeout`); it is a `ConfigError` now.
#[test]
fn linger_max_is_a_build_error() {
    let r = crate::Producer::builder()
        .bootstrap("127.0.0.1:1")
        .linger(Duration::MAX)
        .build();
    assert!(
        matches!(
            r,
            Err(crate::BuildError::Config(ConfigError::OutOfRange {
                property: "linger.ms",
                ..
            }))
        ),
        "{r:?}"
    );
}

#[test]
fn security_protocol_parses_every_kafka_name_and_sasl_ones_need_a_mechanism() {
    for (v, p) in [
        ("PLAINTEXT", SecurityProtocol::Plaintext),
        ("ssl", SecurityProtocol::Ssl),
        ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext),
        ("SASL_SSL", SecurityProtocol::SaslSsl),
    ] {
        let c = ProducerConfig::default()
            .set("security.protocol", v)
            .unwrap();
        assert_eq!(c.get_security_protocol(), p, "{v}");
    }
    let c = ProducerConfig::default()
        .bootstrap("127.0.0.1:9092")
        .security_protocol(SecurityProtocol::SaslSsl);
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("SASL_SSL needs a SASL mechanism"), "{err}");
    let c = ProducerConfig::default()
        .bootstrap("127.0.0.1:9092")
        .security_protocol(SecurityProtocol::SaslSsl)
        .sasl_plain("alice", "pw");
    assert!(c.validate().is_ok());
}

#[test]
fn sasl_properties_reach_the_core_and_never_show_the_password() {
    let c = ProducerConfig::from_properties([
        ("bootstrap.servers", "h:1"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "scram-sha-512"),
        ("sasl.username", "alice"),
        ("sasl.password", " pw-Sekr1t "),
    ])
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(c.get_sasl_mechanism(), Some(SaslMechanism::ScramSha512));
    assert_eq!(c.get_sasl_username(), Some("alice"));
    let k = c.to_core(None, None);
    let s = k.sasl.as_ref().expect("sasl reaches the core");
    assert_eq!(s.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(s.password, " pw-Sekr1t ", "a password is not trimmed");
    assert_ne!(s.nonce_seed, [0; 32], "the nonce seed comes from the OS");
    let again = c.to_core(None, None).sasl.unwrap().nonce_seed;
    assert_ne!(s.nonce_seed, again, "each producer's nonces are its own");
    for text in [format!("{c:?}"), format!("{k:?}"), format!("{s:?}")] {
        assert!(!text.contains("pw-Sekr1t"), "{text}");
        // Shown, not left out: a Debug that printed nothing would pass
        // the line above.
        assert!(text.contains("alice"), "{text}");
    }
    assert!(format!("{c:?}").contains("redacted"));
    let b = crate::Producer::builder()
        .bootstrap("h:1")
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_plain("alice", "pw-Sekr1t");
    assert!(!format!("{b:?}").contains("pw-Sekr1t"));

    // Java's JAAS line.
    let c = ProducerConfig::from_properties([
        ("bootstrap.servers", "h:1"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
        (
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="bob" password="pw-Sekr1t";"#,
        ),
    ])
    .unwrap()
    .validate()
    .unwrap();
    let s = c.to_core(None, None).sasl.unwrap();
    assert_eq!(
        (s.username.as_str(), s.password.as_str()),
        ("bob", "pw-Sekr1t")
    );
    assert!(!format!("{c:?}").contains("pw-Sekr1t"));

    // A SASL protocol needs a mechanism; GSSAPI is named as unsupported.
    let e = ProducerConfig::default()
        .bootstrap("h:1")
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_password("pw-Sekr1t")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sasl.mechanism") && e.contains("GSSAPI"), "{e}");
    assert!(!e.contains("pw-Sekr1t"));
    let e = ProducerConfig::default()
        .set("sasl.mechanism", "GSSAPI")
        .unwrap_err()
        .to_string();
    assert!(e.contains("GSSAPI is not supported"), "{e}");
    let e = ProducerConfig::default()
        .set(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required password="pw-Sekr1t";"#,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("username") && !e.contains("pw-Sekr1t"), "{e}");
    // Missing password: the core's check, in this crate's terms.
    let e = ProducerConfig::default()
        .bootstrap("h:1")
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_mechanism(SaslMechanism::Plain)
        .sasl_username("alice")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sasl.password"), "{e}");
}

#[test]
fn ssl_properties_parse_in_librdkafka_and_java_spellings() {
    let c = ProducerConfig::from_properties([
        ("ssl.ca.location", "/etc/ca.pem"),
        ("ssl.certificate.location", "/etc/client.pem"),
        ("ssl.key.location", "/etc/client.key"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ])
    .unwrap();
    assert_eq!(c.ssl().ca, Some(Pem::File("/etc/ca.pem".into())));
    assert_eq!(
        c.ssl().certificate,
        Some(Pem::File("/etc/client.pem".into()))
    );
    assert_eq!(c.ssl().key, Some(Pem::File("/etc/client.key".into())));
    assert!(!c.get_ssl_endpoint_identification());
    let c = ProducerConfig::from_properties([
        ("ssl.truststore.type", "pem"),
        ("ssl.truststore.certificates", "CA PEM"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.certificate.chain", "CHAIN PEM"),
        ("ssl.keystore.key", "KEY PEM"),
        ("ssl.endpoint.identification.algorithm", "https"),
    ])
    .unwrap();
    assert_eq!(c.ssl().ca, Some(Pem::Inline("CA PEM".into())));
    assert_eq!(c.ssl().certificate, Some(Pem::Inline("CHAIN PEM".into())));
    assert_eq!(c.ssl().key, Some(Pem::Inline("KEY PEM".into())));
    assert!(c.get_ssl_endpoint_identification());
    // Java's way to switch host name verification off: the empty string.
    let c = ProducerConfig::default()
        .set("ssl.endpoint.identification.algorithm", "")
        .unwrap();
    assert!(!c.get_ssl_endpoint_identification());
    // PKCS #12 stores are read (told apart from PEM by content); JKS not.
    ProducerConfig::default()
        .set("ssl.keystore.type", "PKCS12")
        .unwrap()
        .set("ssl.truststore.type", "pkcs12")
        .unwrap();
    for (name, value) in [
        ("ssl.truststore.type", "JKS"),
        ("ssl.keystore.type", "JKS"),
        ("ssl.endpoint.identification.algorithm", "http"),
    ] {
        let err = ProducerConfig::default().set(name, value).unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { property, .. } if *property == name),
            "{err}"
        );
    }
}

/// Key material and passwords never show in `Debug` output: not the
/// configuration's, not the builder's.
#[test]
fn ssl_secrets_never_show_in_debug() {
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nS3CR3TK3YMATERIAL\n-----END PRIVATE KEY-----\n";
    const PASSWORD: &str = "hunter2-passw0rd";
    let c = ProducerConfig::from_properties([
        ("bootstrap.servers", "a:1"),
        ("security.protocol", "SSL"),
        ("ssl.key.pem", KEY),
        ("ssl.key.password", PASSWORD),
        ("ssl.keystore.password", PASSWORD),
        ("ssl.truststore.password", PASSWORD),
        ("ssl.certificate.pem", "CERT"),
        ("ssl.ca.location", "/etc/ca.pem"),
    ])
    .unwrap();
    let builder = crate::Producer::builder().config(c.clone());
    for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{builder:?}")] {
        assert!(!shown.contains("S3CR3TK3Y"), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
        // Where each piece comes from is shown; the key's size only.
        assert!(shown.contains("bytes, redacted)"), "{shown}");
        assert!(shown.contains("inline PEM (4 bytes)"), "{shown}");
        assert!(shown.contains("/etc/ca.pem"), "{shown}");
    }
    assert_eq!(
        format!("{:?}", super::ssl::Pem::Inline(KEY.to_owned())),
        format!("inline PEM ({} bytes, redacted)", KEY.len())
    );
}

#[cfg(feature = "tls")]
#[test]
fn unusable_tls_material_fails_the_build_without_quoting_it() {
    let build = |c: ProducerConfig| {
        crate::Producer::builder()
            .config(
                c.bootstrap("127.0.0.1:9")
                    .security_protocol(SecurityProtocol::Ssl),
            )
            .build()
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJDREVGR0g=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let ca = ca_pem();
    let err = build(
        ProducerConfig::default()
            .ssl_ca_pem(&ca)
            .ssl_certificate_pem(&ca)
            .ssl_key_pem(encrypted)
            .ssl_key_password("pw-not-shown"),
    );
    assert!(
        err.contains("ssl.key.password") && err.contains("ENCRYPTED PRIVATE KEY block"),
        "{err}"
    );
    assert!(
        !err.contains("QUJDREVGR0g") && !err.contains("pw-not-shown"),
        "{err}"
    );
    // An encrypted key without its password, or in OpenSSL's legacy form.
    let err = build(
        ProducerConfig::default()
            .ssl_ca_pem(&ca)
            .ssl_certificate_pem(&ca)
            .ssl_key_pem(encrypted),
    );
    assert!(err.contains("set ssl.key.password"), "{err}");
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nQUJD\n-----END RSA PRIVATE KEY-----\n";
    let err = build(
        ProducerConfig::default()
            .ssl_ca_pem(&ca)
            .ssl_certificate_pem(&ca)
            .ssl_key_pem(legacy)
            .ssl_key_password("pw-not-shown"),
    );
    assert!(err.contains("openssl pkcs8 -topk8"), "{err}");
    assert!(!err.contains("pw-not-shown"), "{err}");
    let err = build(ProducerConfig::default().ssl_ca_location("/nonexistent/ca.pem"));
    assert!(
        err.contains("ssl.ca.location") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
    let err = build(ProducerConfig::default().ssl_ca_pem("not pem at all"));
    assert!(err.contains("ssl.ca.pem"), "{err}");
    let err = build(
        ProducerConfig::default()
            .ssl_ca_pem(&ca)
            .ssl_certificate_pem(&ca),
    );
    assert!(err.contains("no private key"), "{err}");
}

/// A client certificate with somebody else's private key is refused when
/// the producer is built (a typed error naming the problem, no panic), not
/// at the first handshake; the key is not quoted.
#[cfg(feature = "tls")]
#[test]
fn a_client_certificate_with_the_wrong_key_fails_the_build() {
    let cert_key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])
        .unwrap()
        .self_signed(&cert_key)
        .unwrap()
        .pem();
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let body = other_key.lines().nth(1).unwrap().to_owned();
    let err = crate::Producer::builder()
        .config(
            ProducerConfig::default()
                .bootstrap("127.0.0.1:9")
                .security_protocol(SecurityProtocol::Ssl)
                .ssl_ca_pem(&ca_pem())
                .ssl_certificate_pem(&cert)
                .ssl_key_pem(&other_key),
        )
        .build()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            err,
            crate::error::BuildError::Config(crate::ConfigError::Conflict(_))
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("do not fit together"), "{text}");
    assert!(
        !text.contains(&body) && !format!("{err:?}").contains(&body),
        "{text}"
    );
}

/// A real self-signed certificate for the checks above.
#[cfg(feature = "tls")]
fn ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["ca".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

#[cfg(not(feature = "tls"))]
#[test]
fn ssl_without_the_tls_feature_is_a_config_error() {
    let err = ProducerConfig::default()
        .bootstrap("127.0.0.1:9092")
        .security_protocol(SecurityProtocol::Ssl)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("`tls` cargo feature"), "{err}");
}

#[test]
fn io_backend_values() {
    assert_eq!(ProducerConfig::default().get_io_backend(), IoBackend::Auto);
    for (v, b) in [
        ("auto", IoBackend::Auto),
        ("io_uring", IoBackend::IoUring),
        ("IO_URING", IoBackend::IoUring),
        ("epoll", IoBackend::Epoll),
    ] {
        let c = ProducerConfig::default().set("io.backend", v).unwrap();
        assert_eq!(c.get_io_backend(), b, "{v}");
        assert_eq!(IoBackend::parse(b.as_str()), Some(b));
        assert_eq!(b.to_string(), b.as_str());
    }
    let err = ProducerConfig::default()
        .set("io.backend", "kqueue")
        .unwrap_err()
        .to_string();
    assert!(err.contains("io.backend") && err.contains("epoll"), "{err}");
}

#[test]
fn compression_threads_values() {
    let auto = ProducerConfig::default().get_compression_threads();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(auto, u32::from(cpus >= 4), "default follows the CPU count");
    for (v, n) in [("0", 0), ("1", 1), ("64", 64)] {
        let c = ProducerConfig::default()
            .set("compression.threads", v)
            .unwrap();
        assert_eq!(c.get_compression_threads(), n, "{v}");
    }
    for bad in ["65", "-1", "two"] {
        let err = ProducerConfig::default()
            .set("compression.threads", bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("compression.threads"), "{bad}: {err}");
    }
}

#[test]
fn statistics_interval_below_a_millisecond_is_refused() {
    let base = || ProducerConfig::default().bootstrap("a:1");
    let err = base()
        .statistics_interval(Duration::from_nanos(1))
        .validate()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::OutOfRange {
                property: "statistics.interval.ms",
                ..
            }
        ),
        "{err:?}"
    );
    base()
        .statistics_interval(Duration::ZERO)
        .validate()
        .unwrap();
    base()
        .statistics_interval(Duration::from_millis(1))
        .validate()
        .unwrap();
}

/// The compression level properties: the Java client's defaults and
/// ranges (gzip -1 or 1-9, lz4 1-17, zstd -131072-22) and librdkafka's
/// (-1-12), integers only; a level the selected codec cannot use (lz4 other
/// than its fast level, snappy) and the selected codec's level set twice
/// are refused, each error naming the property.
#[test]
fn compression_level_properties() {
    let c = ProducerConfig::default();
    assert_eq!(c.get_compression_gzip_level(), -1);
    assert_eq!(c.get_compression_lz4_level(), 9);
    assert_eq!(c.get_compression_zstd_level(), 3);
    assert_eq!(c.get_compression_level(), -1);
    let c = ProducerConfig::from_properties([
        ("compression.gzip.level", "1"),
        ("compression.lz4.level", "17"),
        ("compression.zstd.level", "-131072"),
        ("compression.level", "12"),
    ])
    .unwrap();
    assert_eq!(c.get_compression_gzip_level(), 1);
    assert_eq!(c.get_compression_lz4_level(), 17);
    assert_eq!(c.get_compression_zstd_level(), -131_072);
    assert_eq!(c.get_compression_level(), 12);
    for name in [
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "compression.level",
    ] {
        let e = ProducerConfig::default().set(name, "high").unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    for (name, value) in [
        ("compression.gzip.level", "0"),
        ("compression.gzip.level", "10"),
        ("compression.gzip.level", "-2"),
        ("compression.lz4.level", "0"),
        ("compression.lz4.level", "18"),
        ("compression.zstd.level", "23"),
        ("compression.zstd.level", "-131073"),
        ("compression.level", "-2"),
        ("compression.level", "13"),
    ] {
        match props(&[("bootstrap.servers", "a:1"), (name, value)]) {
            Err(ConfigError::OutOfRange { property, reason }) => {
                assert_eq!(property, name);
                assert!(reason.contains(value), "{name}={value}: {reason}");
            }
            other => panic!("{name}={value}: {other:?}"),
        }
    }
    for (codec, name, value, says) in [
        ("lz4", "compression.lz4.level", "12", "high-compression"),
        ("lz4", "compression.level", "3", "high-compression"),
        ("snappy", "compression.level", "5", "takes no level"),
    ] {
        let e = props(&[
            ("bootstrap.servers", "a:1"),
            ("compression.type", codec),
            (name, value),
        ])
        .unwrap_err();
        assert!(e.to_string().contains(says), "{codec} {name}={value}: {e}");
    }
    let e = props(&[
        ("bootstrap.servers", "a:1"),
        ("compression.type", "zstd"),
        ("compression.zstd.level", "5"),
        ("compression.level", "5"),
    ])
    .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Conflict(m) if m.contains("compression.zstd.level") && m.contains("compression.level")),
        "{e}"
    );
}

/// `batch.size=0` disables batching, as in the Java client ("a batch size
/// of zero will disable batching entirely"): the core seals every batch
/// after its first record.
#[test]
fn batch_size_zero_is_one_record_per_batch() {
    let c = props(&[("bootstrap.servers", "a:1"), ("batch.size", "0")]).unwrap();
    assert_eq!(c.get_batch_size(), 0);
    let k = c.to_core(None, None);
    assert_eq!((k.batch_size, k.batch_num_messages), (1, 1));
    k.validate().unwrap();
}

/// `key=value` lines of a Java `.properties` file (comments and blank lines
/// skipped; enough of the format for the files below).
fn java_properties(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').expect("key=value"))
        .collect()
}

/// A Java producer's `producer.properties` as written for the Java client
/// (serializers, a built-in partitioner class, the adaptive partitioner's
/// settings written out, empty interceptors and reporters, the socket and
/// metrics defaults) loads unchanged.
#[test]
fn unmodified_java_producer_properties_load() {
    let file = "
        # producer.properties of a Java service
        bootstrap.servers=broker1:9092,broker2:9092
        client.id=orders-producer
        key.serializer=org.apache.kafka.common.serialization.ByteArraySerializer
        value.serializer=org.apache.kafka.common.serialization.ByteArraySerializer
        acks=all
        enable.idempotence=true
        linger.ms=20
        batch.size=65536
        buffer.memory=33554432
        compression.type=lz4
        max.in.flight.requests.per.connection=5
        retries=2147483647
        delivery.timeout.ms=120000
        request.timeout.ms=30000
        max.block.ms=60000
        partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner
        partitioner.adaptive.partitioning.enable=true
        partitioner.availability.timeout.ms=0
        interceptor.classes=
        metric.reporters=
        metrics.sample.window.ms=30000
        metrics.num.samples=2
        metrics.recording.level=INFO
        send.buffer.bytes=131072
        receive.buffer.bytes=32768
        connections.max.idle.ms=540000
        client.dns.lookup=use_all_dns_ips
        transaction.timeout.ms=60000
    ";
    let c = props(&java_properties(file)).unwrap();
    assert_eq!(c.bootstrap_servers(), ["broker1:9092", "broker2:9092"]);
    assert_eq!(c.get_send_buffer_bytes(), 131072);
    assert_eq!(c.get_receive_buffer_bytes(), 32768);
    assert_eq!(c.get_client_id(), "orders-producer");
    assert_eq!(c.get_linger(), Duration::from_millis(20));
    assert_eq!(c.get_batch_size(), 65536);
    assert_eq!(c.get_compression(), Compression::Lz4);
    assert_eq!(c.get_partitioner(), PartitionerKind::RoundRobin);
}

#[test]
fn byte_serializers_are_accepted_others_refused() {
    for property in ["key.serializer", "value.serializer"] {
        for class in [
            "org.apache.kafka.common.serialization.ByteArraySerializer",
            "org.apache.kafka.common.serialization.ByteBufferSerializer",
            "org.apache.kafka.common.serialization.BytesSerializer",
        ] {
            ProducerConfig::default()
                .set(property, class)
                .unwrap_or_else(|e| panic!("{property}={class}: {e}"));
        }
        let class = "org.apache.kafka.common.serialization.StringSerializer";
        let e = ProducerConfig::default().set(property, class).unwrap_err();
        assert!(
            matches!(e, ConfigError::Unsupported { property: p, .. } if p == property),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(property) && msg.contains(class), "{msg}");
        assert!(msg.contains("bytes") && msg.contains("serializ"), "{msg}");
    }
}

#[test]
fn java_partitioner_classes_map_to_kring_partitioners() {
    for (class, kind) in [
        (
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
            PartitionerKind::RoundRobin,
        ),
        // Removed in Kafka 4.0; what they did is kring's default and sticky.
        (
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
            PartitionerKind::Default,
        ),
        (
            "org.apache.kafka.clients.producer.UniformStickyPartitioner",
            PartitionerKind::Sticky,
        ),
    ] {
        let c = ProducerConfig::default()
            .set("partitioner.class", class)
            .unwrap();
        assert_eq!(c.get_partitioner(), kind, "{class}");
    }
    let e = ProducerConfig::default()
        .set("partitioner.class", "com.example.RegionPartitioner")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("partitioner.class")
            && msg.contains("com.example.RegionPartitioner")
            && msg.contains("custom_partitioner"),
        "{msg}"
    );
}

/// Counts the `tracing` warnings given while it is the thread's default
/// subscriber.
#[derive(Default)]
struct WarningCounter(std::sync::atomic::AtomicUsize);

impl tracing::Subscriber for WarningCounter {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Warnings given while `f` runs on this thread.
/// A boolean Java setting kring accepts either way: `true` (which asks
/// for what kring does not do) logs one warning, `false` none.
fn warns_only_when_true(name: &str) {
    for (v, warnings) in [("true", 1), ("false", 0)] {
        let given = warnings_during(|| {
            ProducerConfig::default().set(name, v).unwrap();
        });
        assert_eq!(given, warnings, "{name}={v}");
    }
}

fn warnings_during(f: impl FnOnce()) -> usize {
    let counter = std::sync::Arc::new(WarningCounter::default());
    tracing::subscriber::with_default(counter.clone(), f);
    counter.0.load(std::sync::atomic::Ordering::Relaxed)
}

/// `partitioner.adaptive.partitioning.enable` is kring's own setting now
/// (default true, as in Java), either way without a warning, and reaches
/// the core, as does `partitioner.availability.timeout.ms`.
#[test]
fn adaptive_partitioning_settings() {
    for (v, want) in [("true", true), ("false", false), ("FALSE", false)] {
        let given = warnings_during(|| {
            let c = props(&[
                ("bootstrap.servers", "a:1"),
                ("partitioner.adaptive.partitioning.enable", v),
            ])
            .unwrap();
            assert_eq!(c.get_partitioner_adaptive_partitioning_enable(), want);
            let core = c.to_core(None, None);
            assert_eq!(core.partitioner_adaptive, want, "{v}");
        });
        assert_eq!(given, 0, "partitioner.adaptive.partitioning.enable={v}");
    }
    assert!(ProducerConfig::default().get_partitioner_adaptive_partitioning_enable());
    assert!(ProducerConfig::default()
        .set("partitioner.adaptive.partitioning.enable", "maybe")
        .is_err());
    for (v, want) in [("0", 0), ("5000", 5000)] {
        let c = props(&[
            ("bootstrap.servers", "a:1"),
            ("partitioner.availability.timeout.ms", v),
        ])
        .unwrap();
        let core = c.to_core(None, None);
        assert_eq!(
            core.partitioner_availability_timeout,
            Duration::from_millis(want)
        );
    }
    assert!(ProducerConfig::default()
        .set("partitioner.availability.timeout.ms", "-1")
        .is_err());
}

/// Java settings that are harmless to kring load at the values that match
/// what kring does; any other value is refused, naming the property and
/// why.
#[test]
fn java_only_settings_accept_what_kring_does_and_refuse_the_rest() {
    for (name, value) in [
        ("interceptor.classes", ""),
        ("metric.reporters", ""),
        ("metrics.sample.window.ms", "10000"),
        ("metrics.num.samples", "3"),
        ("metrics.recording.level", "DEBUG"),
        ("client.dns.lookup", "use_all_dns_ips"),
        ("metadata.recovery.strategy", "rebootstrap"),
        ("metadata.recovery.rebootstrap.trigger.ms", "300000"),
        ("config.providers", ""),
        ("transaction.two.phase.commit.enable", "false"),
        ("buffer.memory.allocation.strategy", "incremental"),
        ("buffer.memory.allocation.strategy", "INCREMENTAL"),
        ("buffer.memory.allocation.strategy", "full"),
        ("metadata.cluster.check.enable", "true"),
        ("metadata.cluster.check.enable", "false"),
    ] {
        let c = ProducerConfig::default()
            .set(name, value)
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        assert_eq!(
            c,
            ProducerConfig::default(),
            "{name}={value} changes nothing"
        );
    }
    for (name, value, why) in [
        (
            "interceptor.classes",
            "com.example.TracingInterceptor",
            "interceptor",
        ),
        (
            "metric.reporters",
            "org.apache.kafka.common.metrics.JmxReporter",
            "on_statistics",
        ),
        ("metrics.num.samples", "0", "integer"),
        ("metrics.recording.level", "LOUD", "INFO"),
        (
            "client.dns.lookup",
            "resolve_canonical_bootstrap_servers_only",
            "canonical",
        ),
        ("metadata.recovery.strategy", "none", "rebootstrap"),
        ("metadata.recovery.strategy", "sometimes", "rebootstrap"),
        ("metadata.max.idle.ms", "4999", "5000"),
        ("transaction.timeout.ms", "-5", "milliseconds"),
        ("config.providers", "file", "config provider"),
        (
            "transaction.two.phase.commit.enable",
            "true",
            "transactions",
        ),
        (
            "buffer.memory.allocation.strategy",
            "partial",
            "incremental",
        ),
        ("metadata.cluster.check.enable", "yes please", "true"),
    ] {
        let e = ProducerConfig::default().set(name, value).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains(why),
            "{name}={value}: {msg}"
        );
    }
}

/// Java settings about the cluster's racks and metrics push (often in
/// Java config dumps): `enable.metrics.push` either way (true warns: no
/// client metrics are pushed), `partitioner.rack.aware` false only,
/// `client.rack` any value (only the rack-aware partitioner reads it).
#[test]
fn rack_and_metrics_push_settings() {
    warns_only_when_true("enable.metrics.push");
    ProducerConfig::default()
        .set("partitioner.rack.aware", "false")
        .unwrap()
        .set("client.rack", "eu-west-1a")
        .unwrap();
    let msg = ProducerConfig::default()
        .set("partitioner.rack.aware", "true")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("partitioner.rack.aware") && msg.contains("client.rack"),
        "{msg}"
    );
}

/// librdkafka's `partitioner` names kring implements, aliases included.
#[test]
fn librdkafka_partitioner_names() {
    for (value, kind) in [
        ("default", PartitionerKind::Default),
        ("murmur2_random", PartitionerKind::Default),
        ("sticky", PartitionerKind::Sticky),
        ("round_robin", PartitionerKind::RoundRobin),
    ] {
        let c = ProducerConfig::default().set("partitioner", value).unwrap();
        assert_eq!(c.get_partitioner(), kind, "{value}");
    }
}

/// `client.dns.lookup`: Java's default is accepted; the canonical-name
/// lookup (a Kerberos need) is a known setting kring does not support,
/// said as such, not taken for a typo.
#[test]
fn client_dns_lookup_values() {
    assert!(ProducerConfig::default()
        .set("client.dns.lookup", "use_all_dns_ips")
        .is_ok());
    let e = ProducerConfig::default()
        .set(
            "client.dns.lookup",
            "resolve_canonical_bootstrap_servers_only",
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Unsupported {
                property: "client.dns.lookup",
                ..
            }
        ),
        "{e:?}"
    );
    let e = ProducerConfig::default()
        .set("client.dns.lookup", "default")
        .unwrap_err();
    assert!(matches!(e, ConfigError::InvalidValue { .. }), "{e:?}");
}

/// "Did you mean" reaches a third of a long name: a name missing its
/// `.ms` (three edits) still gets the hint.
#[test]
fn a_long_name_three_edits_off_gets_a_hint() {
    let e = ProducerConfig::default()
        .set("delivery.timeout", "1000")
        .unwrap_err();
    assert_eq!(
        e,
        ConfigError::UnknownProperty {
            name: "delivery.timeout".into(),
            did_you_mean: Some("delivery.timeout.ms"),
        }
    );
}

/// `topic.metadata.propagation.max.ms` reaches the core (its default is the
/// core's own, so only a set value shows it was carried over).
#[test]
fn topic_metadata_propagation_reaches_the_core() {
    let c = props(&[
        ("bootstrap.servers", "a:1"),
        ("topic.metadata.propagation.max.ms", "1234"),
    ])
    .unwrap();
    let core = c.to_core(None, None);
    assert_eq!(core.topic_metadata_propagation, Duration::from_millis(1234));
}

/// Two configurations are equal exactly when their SASL settings are: each
/// field counts, and a token provider is the same only if it is the same
/// `Arc` (a clone), not another closure.
#[test]
fn sasl_settings_take_part_in_equality() {
    let base = || ProducerConfig::default().sasl_plain("u", "p");
    assert_eq!(base(), base());
    for other in [
        ProducerConfig::default(),
        ProducerConfig::default().sasl_scram_sha256("u", "p"),
        ProducerConfig::default().sasl_plain("v", "p"),
        ProducerConfig::default().sasl_plain("u", "q"),
        base().sasl_token_auth(true),
    ] {
        assert_ne!(base(), other, "{other:?}");
    }
    let with_provider =
        || ProducerConfig::default().oauthbearer_token_provider(|| Err("none".to_owned()));
    let a = with_provider();
    assert_eq!(a, a.clone());
    assert_ne!(a, with_provider());
    assert_ne!(
        a,
        ProducerConfig::default().sasl_mechanism(SaslMechanism::OAuthBearer)
    );
}

/// `socket.connection.setup.timeout.ms` and its `.max.ms` accept up to
/// the longest duration the core takes, and no more.
#[test]
fn connect_timeout_may_be_the_longest_duration() {
    let base = || ProducerConfig::default().bootstrap("h:1");
    let c = base()
        .connect_timeout(kring_core::MAX_DURATION)
        .connect_timeout_max(kring_core::MAX_DURATION)
        .validate()
        .unwrap();
    assert_eq!(c.get_connect_timeout(), kring_core::MAX_DURATION);
    assert_eq!(c.get_connect_timeout_max(), kring_core::MAX_DURATION);
    let over = kring_core::MAX_DURATION + Duration::from_millis(1);
    for (property, c) in [
        (
            "socket.connection.setup.timeout.ms",
            base().connect_timeout(over),
        ),
        (
            "socket.connection.setup.timeout.max.ms",
            base().connect_timeout_max(over),
        ),
    ] {
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(property), "{err}");
    }
}

/// `socket.connection.setup.timeout.max.ms` sets how far the connect
/// timeout grows (Java's default 30 s, beside the 10 s start), from the
/// property or the typed setter, and reaches the core, which grows the
/// timeout; zero, or no number of milliseconds, is refused naming the
/// property. A max below the start is the Java client's constant timeout,
/// accepted.
#[test]
fn the_connect_timeout_max_is_settable_and_checked() {
    let d = ProducerConfig::default();
    assert_eq!(d.get_connect_timeout(), Duration::from_secs(10));
    assert_eq!(d.get_connect_timeout_max(), Duration::from_secs(30));
    let c = props(&[
        ("bootstrap.servers", "h:1"),
        ("socket.connection.setup.timeout.max.ms", "45000"),
    ])
    .unwrap();
    assert_eq!(c.get_connect_timeout_max(), Duration::from_secs(45));
    assert_eq!(
        c.to_core(None, None).connect_timeout_max,
        Duration::from_secs(45)
    );
    assert_eq!(
        c,
        ProducerConfig::default()
            .bootstrap("h:1")
            .connect_timeout_max(Duration::from_secs(45))
    );
    let builder = crate::Producer::builder().connect_timeout_max(Duration::from_secs(45));
    assert_eq!(
        builder.config.get_connect_timeout_max(),
        Duration::from_secs(45)
    );
    for (value, says) in [("-1", "milliseconds"), ("soon", "milliseconds")] {
        let e = ProducerConfig::default()
            .set("socket.connection.setup.timeout.max.ms", value)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("socket.connection.setup.timeout.max.ms") && e.contains(says),
            "{value}: {e}"
        );
    }
    for (property, value) in [
        ("socket.connection.setup.timeout.max.ms", "0"),
        ("socket.connection.setup.timeout.ms", "0"),
    ] {
        let e = props(&[("bootstrap.servers", "h:1"), (property, value)]).unwrap_err();
        assert!(
            matches!(e, ConfigError::OutOfRange { property: p, .. } if p == property),
            "{property}={value}: {e}"
        );
        assert!(e.to_string().contains("positive"), "{e}");
    }
    let c = props(&[
        ("bootstrap.servers", "h:1"),
        ("socket.connection.setup.timeout.ms", "60000"),
        ("socket.connection.setup.timeout.max.ms", "5000"),
    ])
    .unwrap();
    let k = c.to_core(None, None);
    assert_eq!(
        (k.connect_timeout, k.connect_timeout_max),
        (Duration::from_secs(60), Duration::from_secs(5))
    );
}

/// An unset `batch.size` is lowered to what one request and the buffer can
/// hold, never raised to it.
#[test]
fn an_unset_batch_size_is_only_ever_lowered_to_fit() {
    let base = || ProducerConfig::default().bootstrap("h:1");
    let c = base().validate().unwrap();
    assert_eq!(c.get_batch_size(), 16_384);
    let c = base().max_request_size(10_000).validate().unwrap();
    assert_eq!(c.get_batch_size(), 10_000);
    let c = base().buffer_memory(12_000).validate().unwrap();
    assert_eq!(c.get_batch_size(), 12_000);
    let c = base().max_request_size(1 << 20).validate().unwrap();
    assert_eq!(c.get_batch_size(), 16_384);
}

/// Each SASL shorthand sets its mechanism and both credentials; the token
/// provider shorthand sets OAUTHBEARER and hands the provider to the core.
#[test]
fn sasl_shorthands_set_mechanism_and_credentials() {
    type Shorthand = fn(ProducerConfig, &str, &str) -> ProducerConfig;
    let shorthands: [(Shorthand, SaslMechanism); 3] = [
        (ProducerConfig::sasl_plain, SaslMechanism::Plain),
        (
            ProducerConfig::sasl_scram_sha256,
            SaslMechanism::ScramSha256,
        ),
        (
            ProducerConfig::sasl_scram_sha512,
            SaslMechanism::ScramSha512,
        ),
    ];
    for (set, mechanism) in shorthands {
        let c = set(ProducerConfig::default(), "u", "p");
        assert_eq!(c.get_sasl_mechanism(), Some(mechanism));
        assert_eq!(c.get_sasl_username(), Some("u"));
        let s = c
            .to_core(None, None)
            .sasl
            .expect("credentials reach the core");
        assert_eq!((s.mechanism, s.password.as_str()), (mechanism, "p"));
    }
    let c = ProducerConfig::default().oauthbearer_token_provider(|| Err("none".to_owned()));
    assert_eq!(c.get_sasl_mechanism(), Some(SaslMechanism::OAuthBearer));
    let s = c
        .to_core(None, None)
        .sasl
        .expect("the provider reaches the core");
    assert!(s.token_provider.is_some());
}

/// Socket buffer sizes: Java's names take -1 for the kernel's own (kring's
/// default) and a size of at least one byte; librdkafka's take 0 for the
/// system's and sizes up to its 100000000. Each reaches the setter, and
/// anything else is refused naming the property.
#[test]
fn socket_buffer_sizes_in_java_and_librdkafka_terms() {
    let d = ProducerConfig::default();
    assert_eq!(
        (d.get_send_buffer_bytes(), d.get_receive_buffer_bytes()),
        (0, 0)
    );
    assert!(d.get_socket_keepalive(), "on by default, as in Java");
    for (value, on) in [("false", false), ("true", true)] {
        let c = ProducerConfig::default()
            .socket_keepalive(!on)
            .set("socket.keepalive.enable", value)
            .unwrap();
        assert_eq!(c.get_socket_keepalive(), on, "{value}");
    }
    assert!(ProducerConfig::default()
        .set("socket.keepalive.enable", "sometimes")
        .is_err());
    for (name, value, send, receive) in [
        ("send.buffer.bytes", "-1", 0, 0),
        ("send.buffer.bytes", "1", 1, 0),
        ("send.buffer.bytes", "1048576", 1048576, 0),
        ("send.buffer.bytes", "2147483647", i32::MAX as u32, 0),
        ("receive.buffer.bytes", "-1", 0, 0),
        ("receive.buffer.bytes", "65536", 0, 65536),
        ("socket.send.buffer.bytes", "0", 0, 0),
        ("socket.send.buffer.bytes", "100000000", 100_000_000, 0),
        ("socket.receive.buffer.bytes", "0", 0, 0),
        ("socket.receive.buffer.bytes", "4096", 0, 4096),
    ] {
        let c = ProducerConfig::default()
            .send_buffer_bytes(7)
            .receive_buffer_bytes(7)
            .set(name, value)
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        let (want_send, want_receive) = if name.contains("send") {
            (send, 7)
        } else {
            (7, receive)
        };
        assert_eq!(
            (c.get_send_buffer_bytes(), c.get_receive_buffer_bytes()),
            (want_send, want_receive),
            "{name}={value}"
        );
    }
    for (name, value) in [
        ("send.buffer.bytes", "0"),
        ("send.buffer.bytes", "-2"),
        ("send.buffer.bytes", "2147483648"),
        ("send.buffer.bytes", "128k"),
        ("receive.buffer.bytes", "0"),
        ("socket.send.buffer.bytes", "-1"),
        ("socket.send.buffer.bytes", "100000001"),
        ("socket.receive.buffer.bytes", "-1"),
    ] {
        let e = ProducerConfig::default().set(name, value).unwrap_err();
        assert!(e.to_string().contains(name), "{name}={value}: {e}");
    }
    // The typed setters take any u32; validation bounds them by the int
    // the kernel takes.
    for c in [
        ProducerConfig::default().send_buffer_bytes(i32::MAX as u32 + 1),
        ProducerConfig::default().receive_buffer_bytes(u32::MAX),
    ] {
        let e = c.bootstrap("localhost:9092").validate().unwrap_err();
        assert!(e.to_string().contains("buffer.bytes"), "{e}");
    }
    let ok = ProducerConfig::default()
        .send_buffer_bytes(i32::MAX as u32)
        .receive_buffer_bytes(i32::MAX as u32)
        .bootstrap("localhost:9092")
        .validate();
    assert!(ok.is_ok(), "{ok:?}");
}

/// `ssl.enabled.protocols` takes Java's version names in any order and
/// case; old versions listed beside TLS 1.2 or 1.3 are left out, as
/// current JDKs leave them out, and a list of nothing else is refused.
/// `ssl.protocol` accepts what kring does and refuses the old versions.
#[test]
fn tls_versions_in_java_terms() {
    use crate::TlsVersion::{Tls12, Tls13};
    assert_eq!(
        ProducerConfig::default().get_ssl_enabled_protocols(),
        [Tls13, Tls12]
    );
    for (value, want) in [
        ("TLSv1.2", &[Tls12][..]),
        ("tlsv1.3", &[Tls13][..]),
        ("TLSv1.2,TLSv1.3", &[Tls13, Tls12][..]),
        (" TLSv1.3 , TLSv1.2 ", &[Tls13, Tls12][..]),
        ("TLSv1,TLSv1.1,TLSv1.2", &[Tls12][..]),
    ] {
        let c = ProducerConfig::default()
            .set("ssl.enabled.protocols", value)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(c.get_ssl_enabled_protocols(), want, "{value}");
    }
    for (value, why) in [
        ("", "empty"),
        ("TLSv1.1", "TLSv1.2 and TLSv1.3 only"),
        ("TLSv1,SSLv3", "TLSv1.2 and TLSv1.3 only"),
        ("TLSv1.2,TLSv1.4", "list of TLSv1.2 and TLSv1.3"),
    ] {
        let e = ProducerConfig::default()
            .set("ssl.enabled.protocols", value)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ssl.enabled.protocols") && e.contains(why),
            "{value}: {e}"
        );
    }
    for ok in ["TLS", "TLSv1.2", "TLSv1.3", "tls"] {
        let c = ProducerConfig::default().set("ssl.protocol", ok).unwrap();
        assert_eq!(c, ProducerConfig::default(), "{ok} changes nothing");
    }
    for refused in ["TLSv1.1", "SSL", "SSLv3", "DTLS"] {
        let e = ProducerConfig::default()
            .set("ssl.protocol", refused)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssl.protocol"), "{refused}: {e}");
    }
    // The typed setter's empty list is refused when the producer is built.
    let e = ProducerConfig::default()
        .bootstrap("localhost:9093")
        .ssl_enabled_protocols(&[])
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("ssl.enabled.protocols"), "{e}");
}

/// `metadata.max.idle.ms` through the typed setter: 5 s (Java's minimum)
/// is taken, anything shorter refused by name, as the property is.
#[test]
fn metadata_max_idle_has_javas_floor() {
    let base = || ProducerConfig::default().bootstrap("h:1");
    let c = base()
        .metadata_max_idle(Duration::from_secs(5))
        .validate()
        .unwrap();
    assert_eq!(c.get_metadata_max_idle(), Duration::from_secs(5));
    assert_eq!(
        ProducerConfig::default().get_metadata_max_idle(),
        Duration::from_secs(300)
    );
    let e = base()
        .metadata_max_idle(Duration::from_millis(4_999))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("metadata.max.idle.ms"), "{e}");
    let c = ProducerConfig::default()
        .set("metadata.max.idle.ms", "5000")
        .unwrap();
    assert_eq!(c.get_metadata_max_idle(), Duration::from_secs(5));
}

/// Java 4.4's memory strategy and cluster check: the values naming what
/// kring does load silently, the others with one warning each.
#[test]
fn java_44_settings_warn_where_kring_differs() {
    warns_only_when_true("metadata.cluster.check.enable");
    for (v, warnings) in [
        ("incremental", 0),
        ("Incremental", 0),
        ("full", 1),
        ("FULL", 1),
    ] {
        let given = warnings_during(|| {
            ProducerConfig::default()
                .set("buffer.memory.allocation.strategy", v)
                .unwrap();
        });
        assert_eq!(given, warnings, "buffer.memory.allocation.strategy={v}");
    }
}

/// `connections.max.idle.ms`: Java's default (9 min); a value of
/// milliseconds; -1 (Java) and 0 (librdkafka) for never; anything else,
/// negative or beyond `i32::MAX` or not a number, refused by name.
#[test]
fn connections_max_idle_property() {
    let idle = |v: &str| {
        ProducerConfig::default()
            .set("connections.max.idle.ms", v)
            .map(|c| c.get_connections_max_idle())
    };
    assert_eq!(
        ProducerConfig::default().get_connections_max_idle(),
        Some(Duration::from_secs(540))
    );
    assert_eq!(idle("540000").unwrap(), Some(Duration::from_secs(540)));
    assert_eq!(idle("1").unwrap(), Some(Duration::from_millis(1)));
    assert_eq!(idle("-1").unwrap(), None);
    assert_eq!(idle("0").unwrap(), None);
    for bad in ["-2", "2147483648", "soon", ""] {
        let e = idle(bad).unwrap_err().to_string();
        assert!(
            e.contains("connections.max.idle.ms") && e.contains("milliseconds"),
            "{bad}: {e}"
        );
    }
    let c = ProducerConfig::default()
        .bootstrap("h:1")
        .connections_max_idle(None)
        .validate()
        .unwrap();
    assert_eq!(c.to_core(None, None).connections_max_idle, None);
    let e = ProducerConfig::default()
        .bootstrap("h:1")
        .connections_max_idle(Some(Duration::ZERO))
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("connections.max.idle.ms"), "{e}");
}

/// Two librdkafka settings kring has no counterpart for are refused with
/// what to do instead (not as unknown names), after their values are
/// checked as librdkafka checks them.
#[test]
fn librdkafka_settings_without_a_counterpart_say_what_to_do() {
    for (name, value, hint) in [
        ("sticky.partitioning.linger.ms", "10", "batch"),
        ("sticky.partitioning.linger.ms", "0", "batch"),
        ("socket.timeout.ms", "60000", "request.timeout.ms"),
    ] {
        match ProducerConfig::default().set(name, value) {
            Err(e @ ConfigError::Unsupported { .. }) => {
                assert!(e.to_string().contains(hint), "{name}={value}: {e}")
            }
            other => panic!("{name}={value}: {other:?}"),
        }
    }
    for (name, value) in [
        ("sticky.partitioning.linger.ms", "900001"),
        ("sticky.partitioning.linger.ms", "soon"),
        ("socket.timeout.ms", "9"),
        ("socket.timeout.ms", "300001"),
    ] {
        assert!(
            matches!(
                ProducerConfig::default().set(name, value),
                Err(ConfigError::InvalidValue { .. })
            ),
            "{name}={value}"
        );
    }
}

/// A `retry.backoff.ms` above `retry.backoff.max.ms` makes every retry
/// wait the max (the core's `ExponentialBackoff`, as Java's); validating
/// such a configuration warns once, as the Java client does, and a
/// backoff below its max does not.
#[test]
fn a_retry_backoff_above_its_max_warns() {
    for (backoff, max, warnings) in [(2_000, 1_000, 1), (100, 1_000, 0), (1_000, 1_000, 0)] {
        let given = warnings_during(|| {
            ProducerConfig::default()
                .bootstrap("h:1")
                .retry_backoff(Duration::from_millis(backoff))
                .retry_backoff_max(Duration::from_millis(max))
                .validate()
                .unwrap();
        });
        assert_eq!(given, warnings, "{backoff} over {max}");
    }
}

/// `ssl.cipher.suites`: Java's IANA names (commas) and librdkafka's
/// OpenSSL names (colons), any case, in the order given, repeats once;
/// suites kring does not implement are skipped with one warning, a list
/// of only those is refused; the suites must include one of an enabled
/// TLS version (checked when the configuration is validated).
#[test]
fn cipher_suites_property() {
    use TlsCipherSuite::*;
    let suites = |v: &str| {
        ProducerConfig::default()
            .set("ssl.cipher.suites", v)
            .map(|c| c.get_ssl_cipher_suites().to_vec())
    };
    assert!(ProducerConfig::default().get_ssl_cipher_suites().is_empty());
    assert_eq!(
        suites("TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").unwrap(),
        [Tls13Aes256GcmSha384, EcdheRsaAes128GcmSha256]
    );
    assert_eq!(
        suites("ECDHE-ECDSA-CHACHA20-POLY1305:ecdhe-rsa-aes256-gcm-sha384:ECDHE-ECDSA-CHACHA20-POLY1305")
            .unwrap(),
        [EcdheEcdsaChacha20Poly1305Sha256, EcdheRsaAes256GcmSha384]
    );
    assert!(suites("").unwrap().is_empty(), "empty: all of them");
    let warnings = warnings_during(|| {
        assert_eq!(
            suites("TLS_RSA_WITH_AES_128_CBC_SHA,TLS_AES_128_GCM_SHA256").unwrap(),
            [Tls13Aes128GcmSha256]
        );
    });
    assert_eq!(warnings, 1, "the skipped suite is warned of");
    let e = suites("TLS_RSA_WITH_AES_128_CBC_SHA:DHE-RSA-AES128-SHA").unwrap_err();
    assert!(
        e.to_string().contains("ssl.cipher.suites") && e.to_string().contains("implements"),
        "{e}"
    );
    // Every suite round-trips through its name.
    for (s, ..) in super::ssl::CIPHER_SUITES {
        assert_eq!(s.name().parse::<TlsCipherSuite>(), Ok(s));
        assert_eq!(
            s.name().starts_with("TLS_ECDHE"),
            s.version() == TlsVersion::Tls12
        );
    }
    // Only TLS 1.3 suites with only TLS 1.2 enabled: nothing to offer.
    let base = || ProducerConfig::default().bootstrap("h:1");
    let e = base()
        .ssl_enabled_protocols(&[TlsVersion::Tls12])
        .ssl_cipher_suites(&[Tls13Aes128GcmSha256])
        .validate()
        .unwrap_err();
    assert!(
        e.to_string().contains("ssl.cipher.suites") && e.to_string().contains("TLSv1.2"),
        "{e}"
    );
    base()
        .ssl_enabled_protocols(&[TlsVersion::Tls12])
        .ssl_cipher_suites(&[Tls13Aes128GcmSha256, EcdheRsaAes128GcmSha256])
        .validate()
        .unwrap();
    let c = base().ssl_cipher_suites(&[EcdheRsaAes128GcmSha256, EcdheRsaAes128GcmSha256]);
    assert_eq!(c.get_ssl_cipher_suites(), [EcdheRsaAes128GcmSha256]);
    assert!(format!("{c:?}").contains("EcdheRsaAes128GcmSha256"));
}

/// The JVM's TLS settings: their JVM defaults (or empty) load, anything
/// else is refused naming why; a store password is never echoed.
#[test]
fn jvm_tls_settings_accept_the_defaults_only() {
    for (name, value) in [
        ("ssl.trustmanager.algorithm", "PKIX"),
        ("ssl.keymanager.algorithm", "SunX509"),
        ("ssl.provider", ""),
        ("security.providers", ""),
        ("ssl.engine.factory.class", ""),
        ("ssl.secure.random.implementation", ""),
        ("ssl.keystore.password", ""),
        ("ssl.truststore.password", ""),
    ] {
        let c = ProducerConfig::default()
            .set(name, value)
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        assert_eq!(c, ProducerConfig::default(), "{name}={value}");
    }
    for (name, value, why) in [
        ("ssl.trustmanager.algorithm", "SunX509", "PKIX"),
        ("ssl.keymanager.algorithm", "NewSunX509", "SunX509"),
        ("ssl.provider", "SunJSSE", "rustls"),
        ("security.providers", "com.example.Creator", "rustls"),
        ("ssl.engine.factory.class", "com.example.Factory", "rustls"),
        ("ssl.secure.random.implementation", "SHA1PRNG", "rustls"),
    ] {
        let e = ProducerConfig::default().set(name, value).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains(why),
            "{name}={value}: {msg}"
        );
        assert!(!msg.contains("hunter2"), "a password in an error: {msg}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }
}
