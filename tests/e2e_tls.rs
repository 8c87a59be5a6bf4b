//! kring over TLS against kring-mock's TLS listener: every codec with
//! idempotence on, checked byte for byte on the stored log; mutual TLS with
//! PEM files and in-memory PEM (librdkafka and Java property names); and
//! the failures users meet (untrusted certificate, host name mismatch, a
//! plaintext client on a TLS port and the reverse, a refused client, a
//! handshake that never finishes), each a typed `LastError::Tls` naming
//! the cause within `max.block.ms`, with reconnect backoff (no storm).

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kring::{
    Compression, LastError, Producer, ProducerBuilder, Record, SecurityProtocol, SendError,
    TlsFailure,
};
use kring_mock::MockCluster;
use support::pki::{Identity, TestCa};
use support::{mock_records, Checker, Workload};

fn tls_cluster(server: &Identity, client_ca: Option<&str>) -> MockCluster {
    support::trace::init();
    let mut b = MockCluster::builder()
        .brokers(2)
        .topic("t", 4)
        .tls(server.cert_pem.clone(), server.key_pem.clone());
    if let Some(ca) = client_ca {
        b = b.tls_client_auth(ca);
    }
    b.build().expect("mock cluster")
}

fn tls_producer(c: &MockCluster, ca: &TestCa) -> ProducerBuilder {
    support::producer_builder()
        .bootstrap(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .retry_backoff(Duration::from_millis(5))
}

fn check_log(c: &MockCluster, topic: &str, w: &Workload, landed: &[(i32, i64)]) {
    let mut checker = Checker::new("kring-mock log", w, Some(landed));
    let mut records = mock_records(c, topic);
    records.sort();
    for r in &records {
        checker.check(r);
    }
    checker.finish();
}

/// A directory removed on drop, for PEM files.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kring-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every codec over TLS, idempotence on (the default), two brokers: every
/// record lands once, in order, byte-exact, at the offset kring reported.
#[test]
fn every_codec_round_trips_over_tls() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), None);
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = format!("t-{codec:?}");
        c.create_topic(&topic, 4).unwrap();
        let p = tls_producer(&c, &ca)
            .compression(codec)
            .linger(Duration::from_millis(2))
            .build()
            .unwrap();
        let w = Workload::new(3_000);
        let landed = w.send_all(&p, &topic);
        p.close();
        check_log(&c, &topic, &w, &landed);
        println!("{codec:?}: {} records over TLS", w.n);
    }
}

/// Large requests (1 MiB, many TLS records each) and many in flight.
#[test]
fn large_requests_over_tls() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), None);
    let p = tls_producer(&c, &ca)
        .batch_size(1 << 20)
        .linger(Duration::from_millis(20))
        .build()
        .unwrap();
    let mut w = Workload::new(4_000);
    w.value_len = 3_000;
    let landed = w.send_all(&p, "t");
    p.close();
    check_log(&c, "t", &w, &landed);
}

/// Mutual TLS: the broker requires a client certificate; kring presents
/// one from PEM files (librdkafka names), from in-memory PEM (Java PEM
/// names) and from a Java PEM keystore file (key and chain in one file),
/// each also with the key encrypted (PKCS #8) and `ssl.key.password`.
#[test]
fn mutual_tls_with_files_and_in_memory_pem() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), Some(&ca.cert_pem));
    let client = ca.client("kring-client");
    let dir = TempDir::new("mtls");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let cert_file = dir.write("client.pem", &client.cert_pem);
    let key_file = dir.write("client.key", &client.key_pem);
    let keystore = dir.write(
        "keystore.pem",
        &format!("{}{}", client.key_pem, client.cert_pem),
    );
    const PASSWORD: &str = "kring key pass";
    let encrypted_pem = client.encrypted_key_pem(PASSWORD);
    let encrypted_key_file = dir.write("client-encrypted.key", &encrypted_pem);
    let encrypted_keystore = dir.write(
        "keystore-encrypted.pem",
        &format!("{}{}", client.cert_pem, encrypted_pem),
    );
    let bootstrap = c.bootstrap_servers();
    let librdkafka = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca_file.to_str().unwrap()),
        ("ssl.certificate.location", cert_file.to_str().unwrap()),
        ("ssl.key.location", key_file.to_str().unwrap()),
    ];
    let java_inline = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "SSL"),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.certificates", ca.cert_pem.as_str()),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.certificate.chain", client.cert_pem.as_str()),
        ("ssl.keystore.key", client.key_pem.as_str()),
    ];
    let java_files = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "SSL"),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", ca_file.to_str().unwrap()),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", keystore.to_str().unwrap()),
    ];
    let encrypted = |props: &[(&'static str, &str)], key: (&'static str, String)| {
        let mut p: Vec<(&str, String)> = props
            .iter()
            .filter(|(k, _)| *k != key.0)
            .map(|(k, v)| (*k, v.to_string()))
            .collect();
        p.push(key);
        p.push(("ssl.key.password", PASSWORD.to_owned()));
        p
    };
    let owned = |props: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        props.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let runs = [
        ("librdkafka files", owned(&librdkafka)),
        ("Java inline PEM", owned(&java_inline)),
        ("Java PEM keystore file", owned(&java_files)),
        (
            "librdkafka files, encrypted key",
            encrypted(
                &librdkafka,
                (
                    "ssl.key.location",
                    encrypted_key_file.to_str().unwrap().to_owned(),
                ),
            ),
        ),
        (
            "Java inline PEM, encrypted key",
            encrypted(&java_inline, ("ssl.keystore.key", encrypted_pem.clone())),
        ),
        (
            "Java PEM keystore file, encrypted key",
            encrypted(
                &java_files,
                (
                    "ssl.keystore.location",
                    encrypted_keystore.to_str().unwrap().to_owned(),
                ),
            ),
        ),
    ];
    let n_runs = runs.len();
    for (name, props) in runs {
        let config = kring::ProducerConfig::from_properties(props).unwrap();
        let p = support::producer_builder_from(config).build().unwrap();
        let w = Workload::new(200);
        let landed = w.send_all(&p, "t");
        p.close();
        assert_eq!(landed.len(), 200, "{name}");
        println!("{name}: delivered over mTLS");
    }
    let mut records = mock_records(&c, "t");
    records.sort();
    assert_eq!(records.len(), 200 * n_runs);
    // The wrong password fails the build, naming the setting, not the value.
    let wrong = encrypted(
        &librdkafka,
        (
            "ssl.key.location",
            encrypted_key_file.to_str().unwrap().to_owned(),
        ),
    )
    .into_iter()
    .map(|(k, v)| {
        if k == "ssl.key.password" {
            (k, "hunter2".to_owned())
        } else {
            (k, v)
        }
    });
    let e = support::producer_builder_from(kring::ProducerConfig::from_properties(wrong).unwrap())
        .build()
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ssl.key.password") && e.contains("wrong password") && !e.contains("hunter2"),
        "{e}"
    );
}

/// PKCS #12 stores (OpenSSL's and keytool's, under
/// `crates/kring/src/driver/tls/testdata/pkcs12`): Java's configuration
/// (`ssl.keystore.type=PKCS12` key store and trust store with their
/// passwords) and librdkafka's (`ssl.keystore.location` is PKCS #12, the
/// CA a PEM file) each deliver over mutual TLS; a wrong store password
/// fails the build naming the file, not the password.
#[test]
fn mutual_tls_with_pkcs12_stores() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/kring/src/driver/tls/testdata/pkcs12");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let path = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let server = Identity {
        cert_pem: read("server.pem"),
        key_pem: read("server.key"),
    };
    let c = tls_cluster(&server, Some(&read("ca.pem")));
    let bootstrap = c.bootstrap_servers();
    let java = |keystore: &str, store_password: &str| {
        vec![
            ("bootstrap.servers", bootstrap.clone()),
            ("security.protocol", "SSL".to_owned()),
            ("ssl.truststore.type", "PKCS12".to_owned()),
            ("ssl.truststore.location", path("trust.p12")),
            ("ssl.truststore.password", "kring-trust-pass".to_owned()),
            ("ssl.keystore.type", "PKCS12".to_owned()),
            ("ssl.keystore.location", path(keystore)),
            ("ssl.keystore.password", store_password.to_owned()),
            ("ssl.key.password", store_password.to_owned()),
        ]
    };
    let librdkafka = vec![
        ("bootstrap.servers", bootstrap.clone()),
        ("security.protocol", "SSL".to_owned()),
        ("ssl.ca.location", path("ca.pem")),
        ("ssl.keystore.location", path("client.p12")),
        ("ssl.keystore.password", "kring-store-pass".to_owned()),
    ];
    let runs = [
        (
            "Java, OpenSSL's store",
            java("client.p12", "kring-store-pass"),
        ),
        (
            "Java, keytool's store",
            java("client-keytool.p12", "kring-store-pass"),
        ),
        ("librdkafka", librdkafka),
    ];
    let n_runs = runs.len();
    for (name, props) in runs {
        let config = kring::ProducerConfig::from_properties(props).unwrap();
        let p = support::producer_builder_from(config).build().unwrap();
        let w = Workload::new(100);
        let landed = w.send_all(&p, "t");
        p.close();
        assert_eq!(landed.len(), 100, "{name}");
    }
    assert_eq!(mock_records(&c, "t").len(), 100 * n_runs);
    let e = support::producer_builder_from(
        kring::ProducerConfig::from_properties(java("client.p12", "hunter2")).unwrap(),
    )
    .build()
    .map(drop)
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("client.p12") && e.contains("password does not match") && !e.contains("hunter2"),
        "{e}"
    );
}

/// Sends one record with a short `max.block.ms` and returns the TLS cause
/// the metadata timeout names, and how long `send` took.
fn send_fails_with(p: &Producer) -> (TlsFailure, String, Duration) {
    let start = Instant::now();
    let err = p
        .send(Record::new("t", b"v"))
        .expect_err("no metadata can arrive");
    let took = start.elapsed();
    let text = err.to_string();
    match err {
        SendError::MetadataTimeout {
            last_error: Some(LastError::Tls { kind, message }),
            ..
        } => (kind, format!("{text} / {message}"), took),
        other => panic!("expected a metadata timeout naming a TLS failure, got: {other:?}"),
    }
}

const MAX_BLOCK: Duration = Duration::from_millis(1_500);

fn failing(c_bootstrap: &str) -> ProducerBuilder {
    support::producer_builder()
        .bootstrap(c_bootstrap)
        .max_block(MAX_BLOCK)
        .reconnect_backoff(Duration::from_millis(100))
        .reconnect_backoff_max(Duration::from_millis(1_000))
}

/// The failure kind, its message, and that it came within max.block.ms
/// (with room for a loaded machine).
fn expect(p: &Producer, want: TlsFailure, needle: &str) {
    let (kind, message, took) = send_fails_with(p);
    println!("{want:?} after {took:?}: {message}");
    assert_eq!(kind, want, "{message}");
    assert!(message.contains(needle), "{message}");
    assert!(took >= MAX_BLOCK, "{took:?}");
    assert!(took < MAX_BLOCK + Duration::from_secs(5), "{took:?}");
}

#[test]
fn untrusted_certificate_is_named() {
    let ca = TestCa::new("kring test CA");
    let other = TestCa::new("someone else");
    let c = tls_cluster(&ca.server(&["localhost"], true), None);
    let p = failing(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&other.cert_pem)
        .build()
        .unwrap();
    expect(&p, TlsFailure::UntrustedCertificate, "ssl.ca.location");
}

#[test]
fn host_name_mismatch_is_named_and_can_be_switched_off() {
    let ca = TestCa::new("kring test CA");
    // Valid for a name, not for 127.0.0.1 (what kring connects to).
    let c = tls_cluster(&ca.server(&["broker.example"], false), None);
    let p = failing(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .build()
        .unwrap();
    expect(&p, TlsFailure::HostnameMismatch, "127.0.0.1");
    p.close();
    // `ssl.endpoint.identification.algorithm=none`: the chain is still
    // verified, the name is not.
    let config = kring::ProducerConfig::from_properties([
        ("bootstrap.servers", c.bootstrap_servers().as_str()),
        ("security.protocol", "SSL"),
        ("ssl.ca.pem", ca.cert_pem.as_str()),
        ("ssl.endpoint.identification.algorithm", "none"),
    ])
    .unwrap();
    let p = support::producer_builder_from(config).build().unwrap();
    let w = Workload::new(100);
    assert_eq!(w.send_all(&p, "t").len(), 100);
}

#[test]
fn plaintext_client_on_a_tls_port_is_told_to_use_ssl() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), None);
    let p = failing(&c.bootstrap_servers()).build().unwrap();
    expect(&p, TlsFailure::PeerExpectsTls, "security.protocol=SSL");
}

#[test]
fn tls_client_on_a_plaintext_port_is_told_it_is_not_tls() {
    let ca = TestCa::new("kring test CA");
    support::trace::init();
    let c = MockCluster::builder().topic("t", 1).build().unwrap();
    let p = failing(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .build()
        .unwrap();
    expect(&p, TlsFailure::PeerNotTls, "not TLS");
}

#[test]
fn missing_client_certificate_is_refused() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), Some(&ca.cert_pem));
    let p = failing(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .build()
        .unwrap();
    expect(&p, TlsFailure::Refused, "ssl.certificate.location");
}

/// A listener that accepts and never answers: the handshake times out
/// after `socket.connection.setup.timeout.ms`, `send` fails within
/// `max.block.ms` naming it, and reconnects back off (counted).
#[test]
fn a_handshake_that_never_finishes_times_out_and_backs_off() {
    let ca = TestCa::new("kring test CA");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let silent = {
        let accepted = accepted.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                accepted.fetch_add(1, Ordering::Relaxed);
                // Read the ClientHello, answer nothing.
                let _ = s.set_nonblocking(true);
                let _ = s.read(&mut [0u8; 1024]);
                held.push(s);
            }
        })
    };
    let window = Duration::from_millis(3_000);
    let p = failing(&addr.to_string())
        .max_block(window)
        .connect_timeout(Duration::from_millis(200))
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&ca.cert_pem)
        .build()
        .unwrap();
    let start = Instant::now();
    let err = p.send(Record::new("t", b"v")).expect_err("never connects");
    let took = start.elapsed();
    let n = accepted.load(Ordering::Relaxed);
    println!("handshake timeouts: {n} connection attempts in {took:?}: {err}");
    assert!(
        matches!(
            &err,
            SendError::MetadataTimeout {
                last_error: Some(LastError::Tls {
                    kind: TlsFailure::HandshakeTimeout,
                    ..
                }),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        took >= window && took < window + Duration::from_secs(5),
        "{took:?}"
    );
    // Each attempt's handshake timeout starts at 200 ms and doubles (±20 %)
    // per failed attempt, plus a reconnect backoff: about 5 in 3 s; a
    // storm would be hundreds.
    assert!((2..=10).contains(&n), "{n} connection attempts in {took:?}");
    p.close();
    stop.store(true, Ordering::Release);
    let _ = std::net::TcpStream::connect(addr);
    silent.join().unwrap();
}

/// A failing handshake against a live TLS broker (untrusted certificate)
/// is retried with backoff, not in a loop: connections are counted on the
/// broker.
#[test]
fn refused_handshakes_back_off() {
    let ca = TestCa::new("kring test CA");
    let other = TestCa::new("someone else");
    support::trace::init();
    let server = ca.server(&["localhost"], true);
    let c = MockCluster::builder()
        .topic("t", 1)
        .tls(server.cert_pem, server.key_pem)
        .build()
        .unwrap();
    let window = Duration::from_millis(3_000);
    let p = failing(&c.bootstrap_servers())
        .max_block(window)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&other.cert_pem)
        .build()
        .unwrap();
    let _ = p.send(Record::new("t", b"v")).expect_err("untrusted");
    let n = c.connection_count();
    println!("untrusted certificate: {n} connections in {window:?}");
    assert!((2..=10).contains(&n), "{n} connections in {window:?}");
}

/// A self-signed broker certificate given as the CA itself (what OpenSSL
/// and the JVM accept, common in test setups): trusted directly, whether
/// it is marked as a CA or not; its names are still checked.
#[test]
fn a_self_signed_broker_certificate_can_be_trusted_directly() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    support::trace::init();
    let self_signed = |names: &[&str], ip: bool, ca: bool| {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ip {
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        }
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    for ca in [false, true] {
        let (cert, key) = self_signed(&["localhost"], true, ca);
        let c = MockCluster::builder()
            .topic("t", 1)
            .tls(cert.clone(), key)
            .build()
            .unwrap();
        let p = support::producer_builder()
            .bootstrap(&c.bootstrap_servers())
            .security_protocol(SecurityProtocol::Ssl)
            .ssl_ca_pem(&cert)
            .build()
            .unwrap();
        let w = Workload::new(50);
        assert_eq!(w.send_all(&p, "t").len(), 50, "CA flag {ca}");
    }
    // Trusted, but for another name: still a mismatch.
    let (cert, key) = self_signed(&["broker.example"], false, true);
    let c = MockCluster::builder()
        .topic("t", 1)
        .tls(cert.clone(), key)
        .build()
        .unwrap();
    let p = failing(&c.bootstrap_servers())
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&cert)
        .build()
        .unwrap();
    expect(&p, TlsFailure::HostnameMismatch, "127.0.0.1");
}

/// SASL_SSL against kring-mock: SCRAM-SHA-256 inside TLS, idempotence on,
/// two brokers; every record lands once, in order, byte-exact, at the
/// offset kring reported; the mock saw the SASL exchange.
#[test]
fn sasl_scram_over_tls_round_trips() {
    let ca = TestCa::new("kring test CA");
    let server = ca.server(&["localhost"], true);
    let c = MockCluster::builder()
        .brokers(2)
        .topic("t", 4)
        .tls(server.cert_pem.clone(), server.key_pem.clone())
        .sasl(kring_mock::MockSasl::default().user("erin", "m0ck-over-TLS"))
        .build()
        .expect("mock cluster");
    let p = tls_producer(&c, &ca)
        .security_protocol(SecurityProtocol::SaslSsl)
        .sasl_scram_sha256("erin", "m0ck-over-TLS")
        .linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let w = Workload::new(3_000);
    let landed = w.send_all(&p, "t");
    p.close();
    check_log(&c, "t", &w, &landed);
    assert!(
        c.request_count(36) >= 1,
        "SaslAuthenticate was never sent over TLS"
    );
}

/// `io.backend=epoll` forced (whatever `KRING_TEST_IO_BACKEND` says), as
/// in a container that refuses io_uring: records round-trip over TLS in
/// requests of about 1 MiB (each many TLS records, written in parts), and
/// an untrusted certificate fails with the same typed error as on io_uring.
#[test]
fn tls_runs_on_the_epoll_backend() {
    let ca = TestCa::new("kring test CA");
    let c = tls_cluster(&ca.server(&["localhost"], true), None);
    let p = tls_producer(&c, &ca)
        .io_backend(kring::IoBackend::Epoll)
        .batch_size(1 << 20)
        .linger(Duration::from_millis(20))
        .build()
        .unwrap();
    assert_eq!(p.io_backend(), kring::IoBackend::Epoll);
    let mut w = Workload::new(2_000);
    w.value_len = 3_000;
    let landed = w.send_all(&p, "t");
    p.close();
    check_log(&c, "t", &w, &landed);

    let other = TestCa::new("someone else");
    let p = failing(&c.bootstrap_servers())
        .io_backend(kring::IoBackend::Epoll)
        .security_protocol(SecurityProtocol::Ssl)
        .ssl_ca_pem(&other.cert_pem)
        .build()
        .unwrap();
    assert_eq!(p.io_backend(), kring::IoBackend::Epoll);
    expect(&p, TlsFailure::UntrustedCertificate, "ssl.ca.location");
}

/// Connections cut mid-request over TLS, on each backend: before the
/// broker applied the request, after it did (no answer), and halfway
/// through the answer's records. Every record still gets exactly one
/// result and lands exactly once (idempotence), in order.
#[test]
fn connections_cut_mid_request_over_tls_lose_and_duplicate_nothing() {
    const PRODUCE: i16 = 0;
    let ca = TestCa::new("kring test CA");
    for backend in [kring::IoBackend::IoUring, kring::IoBackend::Epoll] {
        let c = tls_cluster(&ca.server(&["localhost"], true), None);
        let faults = [
            c.inject(kring_mock::Fault::drop_before_apply(PRODUCE).times(2)),
            c.inject(kring_mock::Fault::drop_after_apply(PRODUCE).times(2)),
            c.inject(kring_mock::Fault::cut_response(PRODUCE).times(2)),
        ];
        let p = tls_producer(&c, &ca)
            .io_backend(backend)
            .retry_backoff_max(Duration::from_millis(50))
            .build()
            .unwrap();
        let w = Workload::new(3_000);
        let landed = w.send_all(&p, "t");
        assert!(p.close());
        for f in faults {
            assert!(!c.fault_pending(f), "{backend:?}: a fault never fired");
        }
        check_log(&c, "t", &w, &landed);
    }
}
