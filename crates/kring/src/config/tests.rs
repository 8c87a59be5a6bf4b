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
        ("max.request.size", "999"),
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
    assert_eq!(c.get_max_request_size(), 999);
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
            name: "linger".into()
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
    let err = props(&[
        ("bootstrap.servers", "a:1"),
        ("linger.ms", "1000"),
        ("request.timeout.ms", "30000"),
        ("delivery.timeout.ms", "30000"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("delivery.timeout.ms"), "{err}");
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
