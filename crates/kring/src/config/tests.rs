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
        ("socket.connection.setup.timeout.ms", "11"),
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
    assert_eq!(c.get_connect_timeout(), Duration::from_millis(11));
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
        ("batch.size", "0", "positive"),
        ("retries", "4294967295", "2147483647"),
        ("partitioner", "fnv1a", "sticky"),
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

#[test]
fn default_idempotence_yields_to_explicit_conflicts() {
    let c = props(&[("bootstrap.servers", "a:1"), ("acks", "1")]).unwrap();
    assert!(!c.get_idempotence());
    let c = props(&[("bootstrap.servers", "a:1")]).unwrap();
    assert!(c.get_idempotence());
    assert_eq!(c.get_acks(), Acks::All);
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
        ("statistics.interval.ms", "0"),
        ("debug", "broker,topic,msg"),
    ])
    .unwrap();
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
    assert_eq!(core.linger, Duration::from_micros(500));
    assert_eq!(core.batch_num_messages, 10_000);
    core.validate().unwrap();
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
        ("statistics.interval.ms", "5000", "not supported yet"),
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
        ("batch.size", "0"),
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
    let duration_setters: [SetD; 11] = [
        ProducerConfig::linger,
        ProducerConfig::retry_backoff,
        ProducerConfig::retry_backoff_max,
        ProducerConfig::reconnect_backoff,
        ProducerConfig::reconnect_backoff_max,
        ProducerConfig::delivery_timeout,
        ProducerConfig::request_timeout,
        ProducerConfig::max_block,
        ProducerConfig::metadata_max_age,
        ProducerConfig::connect_timeout,
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
        base().batch_size(0),
        base().batch_size(2 << 20),
        base().buffer_memory(1000),
        base().connect_timeout(Duration::ZERO),
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
fn security_protocol_parses_every_kafka_name_and_unsupported_ones_fail_validation() {
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
    assert!(err.contains("SASL_SSL is not supported yet"), "{err}");
}
