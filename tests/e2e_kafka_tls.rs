//! kring against Apache Kafka 4.4 over an SSL listener that requires client
//! certificates (mTLS), certificates made in the test: every codec with
//! idempotence on, read back with librdkafka (over the harness's PLAINTEXT
//! listener) byte-exact at the offsets kring reported; TLS 1.2 and 1.3
//! each alone (`ssl.enabled.protocols`), and single cipher suites
//! (`ssl.cipher.suites`); and a client without
//! a certificate, trusting the wrong CA, or speaking the wrong protocol
//! (plaintext to SSL, TLS to PLAINTEXT) fails with a typed TLS cause.
//! Then SASL_SSL (SCRAM-SHA-512 inside TLS): every codec read back, and a
//! wrong password named as a SASL failure.

mod support;

use std::time::{Duration, Instant};

use kring::{
    Compression, LastError, Record, SecurityProtocol, SendError, TlsCipherSuite, TlsFailure,
    TlsVersion,
};
use kring_testcluster::{
    ClusterConfig, KafkaCluster, ListenerSecurity, ScramMechanism, SecureListener, ServerTls,
};
use support::pki::TestCa;
use support::{read_rdkafka, Checker, Workload};

const PARTITIONS: i32 = 3;

#[test]
fn mutual_tls_against_kafka() {
    support::trace::init();
    let ca = TestCa::new("kring test CA");
    let server = ca.server(&["localhost"], true);
    let t = Instant::now();
    let cluster = KafkaCluster::start(ClusterConfig::new(1).secured(
        SecureListener::new(ListenerSecurity::Ssl).tls(ServerTls {
            cert_chain_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            client_ca_pem: Some(ca.cert_pem.clone()),
        }),
    ))
    .expect("an SSL cluster");
    eprintln!("cluster ready in {:?}", t.elapsed());
    let secured = cluster.secured_bootstrap().expect("an SSL listener");
    let client = ca.client("kring-client");
    let producer = |codec: Compression, idempotence: bool| {
        support::producer_builder()
            .bootstrap(&secured)
            .security_protocol(SecurityProtocol::Ssl)
            .ssl_ca_pem(&ca.cert_pem)
            .ssl_certificate_pem(&client.cert_pem)
            .ssl_key_pem(&client.key_pem)
            .compression(codec)
            .idempotence(idempotence)
            .build()
            .unwrap()
    };

    // A first, non-idempotent round (see e2e_kafka_interop's
    // `idempotent_writes_to_just_created_topics`), then every codec with
    // idempotence on, each into its own topic.
    let cases = [
        (Compression::None, false),
        (Compression::None, true),
        (Compression::Gzip, true),
        (Compression::Snappy, true),
        (Compression::Lz4, true),
        (Compression::Zstd, true),
    ];
    for (i, (codec, idempotence)) in cases.into_iter().enumerate() {
        let topic = format!("tls-{i}-{codec:?}");
        cluster.create_topic(&topic, PARTITIONS, 1, &[]).unwrap();
        let p = producer(codec, idempotence);
        let w = Workload::new(500);
        let t = Instant::now();
        let landed = w.send_all(&p, &topic);
        p.close();
        let read = read_rdkafka(&cluster.bootstrap(), &topic, PARTITIONS, w.n);
        let mut checker = Checker::new("librdkafka", &w, Some(&landed));
        for r in &read {
            checker.check(r);
        }
        checker.finish();
        eprintln!(
            "{codec:?}, idempotence {idempotence}: {} records over mTLS in {:?}, read back",
            w.n,
            t.elapsed()
        );
    }

    // Each TLS version alone (`ssl.enabled.protocols`), then one cipher
    // suite at a time (`ssl.cipher.suites`): a TLS 1.3 suite, and the TLS
    // 1.2 ECDHE suites of both key types (whichever the test CA's server
    // key is), against the JVM's TLS, which speaks both versions.
    let one_version = |v| (vec![v], vec![]);
    for (versions, suites) in [
        one_version(TlsVersion::Tls12),
        one_version(TlsVersion::Tls13),
        (
            vec![TlsVersion::Tls13],
            vec![TlsCipherSuite::Tls13Chacha20Poly1305Sha256],
        ),
        (
            vec![TlsVersion::Tls12],
            vec![
                TlsCipherSuite::EcdheRsaAes256GcmSha384,
                TlsCipherSuite::EcdheEcdsaAes256GcmSha384,
            ],
        ),
    ] {
        let p = support::producer_builder()
            .bootstrap(&secured)
            .security_protocol(SecurityProtocol::Ssl)
            .ssl_ca_pem(&ca.cert_pem)
            .ssl_certificate_pem(&client.cert_pem)
            .ssl_key_pem(&client.key_pem)
            .ssl_enabled_protocols(&versions)
            .ssl_cipher_suites(&suites)
            .build()
            .unwrap();
        let w = Workload::new(100);
        let landed = w.send_all(&p, "tls-0-None");
        assert_eq!(landed.len(), 100, "{versions:?} {suites:?}");
        p.close();
        eprintln!("{versions:?} only, suites {suites:?}: 100 records acknowledged");
    }

    // No client certificate: the broker refuses the session.
    let p = support::producer_builder()
        .bootstrap(&secured)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .max_block(Duration::from_secs(3))
        .build()
        .unwrap();
    let err = p.send(Record::new("tls-0-None", b"v")).unwrap_err();
    eprintln!("without a client certificate: {err}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Tls {
                    kind: TlsFailure::Refused,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
    p.close();

    // The broker's certificate from a CA kring does not trust.
    let other = TestCa::new("someone else");
    let p = support::producer_builder()
        .bootstrap(&secured)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&other.cert_pem)
        .ssl_certificate_pem(&client.cert_pem)
        .ssl_key_pem(&client.key_pem)
        .max_block(Duration::from_secs(3))
        .build()
        .unwrap();
    let err = p.send(Record::new("tls-0-None", b"v")).unwrap_err();
    eprintln!("untrusted broker: {err}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Tls {
                    kind: TlsFailure::UntrustedCertificate,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );

    // A plaintext client on the SSL listener is told to use SSL (Kafka
    // answers its request with a TLS alert).
    let p = support::producer_builder()
        .bootstrap(&secured)
        .max_block(Duration::from_secs(3))
        .build()
        .unwrap();
    let err = p.send(Record::new("tls-0-None", b"v")).unwrap_err();
    eprintln!("plaintext client on the SSL listener: {err}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Tls {
                    kind: TlsFailure::PeerExpectsTls,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
    p.close();

    // And a TLS client on the PLAINTEXT listener is told it is not TLS.
    let p = support::producer_builder()
        .bootstrap(&cluster.bootstrap())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .max_block(Duration::from_secs(3))
        .build()
        .unwrap();
    let err = p.send(Record::new("tls-0-None", b"v")).unwrap_err();
    eprintln!("TLS client on the PLAINTEXT listener: {err}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Tls {
                    kind: TlsFailure::PeerNotTls,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
}

/// SASL_SSL, the combination managed clusters run: SCRAM-SHA-512 over TLS
/// (server authentication only), every codec with idempotence on, read
/// back byte-exact by librdkafka at the offsets kring reported; a wrong
/// password over TLS fails `send` naming the SASL cause, not TLS.
#[test]
fn sasl_ssl_scram_against_kafka() {
    support::trace::init();
    const PW: &str = "dave-Scr4m-over-TLS";
    let ca = TestCa::new("kring test CA");
    let server = ca.server(&["localhost"], true);
    let t = Instant::now();
    let cluster = KafkaCluster::start(
        ClusterConfig::new(1).secured(
            SecureListener::new(ListenerSecurity::SaslSsl)
                .scram_user(ScramMechanism::Sha512, "dave", PW)
                .tls(ServerTls {
                    cert_chain_pem: server.cert_pem.clone(),
                    key_pem: server.key_pem.clone(),
                    client_ca_pem: None,
                }),
        ),
    )
    .expect("a SASL_SSL cluster");
    eprintln!("cluster ready in {:?}", t.elapsed());
    let secured = cluster.secured_bootstrap().expect("a SASL_SSL listener");
    let producer = |codec: Compression, password: &str| {
        support::producer_builder()
            .bootstrap(&secured)
            .security_protocol(SecurityProtocol::SaslSsl)
            .ssl_ca_pem(&ca.cert_pem)
            .sasl_scram_sha512("dave", password)
            .compression(codec)
            .max_block(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let topic = format!("sasl-ssl-{i}-{codec:?}");
        cluster.create_topic(&topic, PARTITIONS, 1, &[]).unwrap();
        let p = producer(codec, PW);
        let w = Workload::new(400);
        let landed = w.send_all(&p, &topic);
        p.close();
        let read = read_rdkafka(&cluster.bootstrap(), &topic, PARTITIONS, w.n);
        let mut checker = Checker::new("librdkafka", &w, Some(&landed));
        for r in &read {
            checker.check(r);
        }
        checker.finish();
        eprintln!("{codec:?}: {} records over SASL_SSL, read back", w.n);
    }

    let p = producer(Compression::None, "not-the-password");
    let t = Instant::now();
    let err = p.send(Record::new("sasl-ssl-0-None", b"v")).unwrap_err();
    eprintln!("wrong password over TLS after {:?}: {err}", t.elapsed());
    assert!(
        matches!(&err, SendError::AuthenticationFailed { .. })
            || matches!(
                &err,
                SendError::MetadataTimeout {
                    last_error: Some(LastError::Authentication { .. }),
                    ..
                }
            ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
    p.close();
}
