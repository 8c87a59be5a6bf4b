//! kring against Apache Kafka 4.4.0 with a SASL_PLAINTEXT listener
//! (kring-testcluster): PLAIN (JAAS users), SCRAM-SHA-256 and SCRAM-SHA-512
//! (users created at format time) deliver records of every codec with
//! idempotence on, read back byte for byte by librdkafka over the harness's
//! PLAINTEXT listener; the session is re-authenticated (KIP-368,
//! `connections.max.reauth.ms` = 10 s) without reconnecting; a wrong
//! password and a mechanism the listener does not enable fail `send` as
//! soon as the broker refuses (well within `max.block.ms`), naming the
//! cause, and never show the password.
//!
//! OAUTHBEARER (an unsigned JWS accepted by Kafka's unsecured validator)
//! runs on a second cluster where it is enabled.
//!
//! One single-node cluster per test binary (plus the OAUTHBEARER one); nextest runs these one at a
//! time (`.config/nextest.toml`).

mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kring::{Compression, LastError, ProducerBuilder, Record, SendError};
use kring_testcluster::{
    ClusterConfig, KafkaCluster, ListenerSecurity, ScramMechanism, SecureListener,
};

const PLAIN_PW: &str = "alice-Pl41n-pw";
const SCRAM256_PW: &str = "bob-Scr4m256-pw";
const SCRAM512_PW: &str = "carol-Scr4m512-pw";
const REAUTH: Duration = Duration::from_secs(10);

fn cluster() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        KafkaCluster::start(
            ClusterConfig::new(1)
                .secured(
                    SecureListener::new(ListenerSecurity::SaslPlaintext)
                        .plain_user("alice", PLAIN_PW)
                        .scram_user(ScramMechanism::Sha256, "bob", SCRAM256_PW)
                        .scram_user(ScramMechanism::Sha512, "carol", SCRAM512_PW),
                )
                // OAUTHBEARER stays off here: it is the mechanism the
                // broker does not enable.
                .prop(
                    "listener.name.secured.sasl.enabled.mechanisms",
                    "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                )
                .prop("connections.max.reauth.ms", REAUTH.as_millis()),
        )
        .unwrap_or_else(|e| panic!("cannot start a SASL_PLAINTEXT cluster: {e}"))
    })
}

fn builder(c: &KafkaCluster) -> ProducerBuilder {
    support::sasl_plaintext_builder(c)
}

/// Sends `n` records per codec to `topic` (one partition per codec) and
/// checks librdkafka reads exactly them back.
fn deliver_all_codecs(c: &KafkaCluster, b: ProducerBuilder, topic: &str, n: usize) {
    let codecs = Compression::ALL;
    c.create_topic(topic, codecs.len() as i32, 1, &[]).unwrap();
    let mut want = Vec::new();
    for (p, codec) in codecs.iter().enumerate() {
        let producer = b
            .clone()
            .compression(*codec)
            .idempotence(true)
            .build()
            .expect("producer");
        let futures: Vec<_> = (0..n)
            .map(|i| {
                let key = format!("{topic}-{codec:?}-{i}");
                let value = format!("{i}:").repeat(1 + i % 50).into_bytes();
                want.push((p as i32, key.clone().into_bytes(), value.clone()));
                producer
                    .send(
                        Record::new(topic, value.as_slice())
                            .key(key.as_bytes())
                            .partition(p as i32),
                    )
                    .expect("send")
            })
            .collect();
        for f in futures {
            f.wait_timeout(Duration::from_secs(60))
                .expect("a result")
                .expect("delivered");
        }
        assert!(producer.close_timeout(Duration::from_secs(30)));
    }
    let read = support::read_rdkafka(&c.bootstrap(), topic, codecs.len() as i32, want.len());
    let mut got: Vec<(i32, Vec<u8>, Vec<u8>)> = read
        .into_iter()
        .map(|r| (r.partition, r.key.unwrap(), r.value.unwrap()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn plain_delivers_every_codec() {
    let c = cluster();
    deliver_all_codecs(
        c,
        builder(c).sasl_plain("alice", PLAIN_PW),
        "sasl-plain",
        200,
    );
}

#[test]
fn scram_sha256_delivers_every_codec() {
    let c = cluster();
    deliver_all_codecs(
        c,
        builder(c).sasl_scram_sha256("bob", SCRAM256_PW),
        "sasl-scram256",
        200,
    );
}

#[test]
fn scram_sha512_delivers_every_codec_from_properties() {
    let c = cluster();
    let config = kring::ProducerConfig::from_properties([
        ("bootstrap.servers", c.secured_bootstrap().unwrap().as_str()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        (
            "sasl.jaas.config",
            &format!(
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="carol" password="{SCRAM512_PW}";"#
            ),
        ),
        ("linger.ms", "2"),
    ])
    .unwrap();
    deliver_all_codecs(
        c,
        support::producer_builder_from(config),
        "sasl-scram512",
        200,
    );
}

/// Produces for 2.5 session lifetimes: every record is delivered and the
/// producer never reconnects (the broker closes a connection whose session
/// expired, so re-authentication must have happened in place).
#[test]
fn reauthentication_keeps_the_connection() {
    let c = cluster();
    c.create_topic("sasl-reauth", 1, 1, &[]).unwrap();
    let p = builder(c)
        .sasl_scram_sha512("carol", SCRAM512_PW)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut futures = Vec::new();
    let mut connects_after_first = None;
    while start.elapsed() < REAUTH * 5 / 2 {
        for _ in 0..20 {
            futures.push(
                p.send(Record::new("sasl-reauth", b"tick").partition(0))
                    .unwrap(),
            );
        }
        if connects_after_first.is_none() {
            futures[0]
                .wait_timeout(Duration::from_secs(30))
                .unwrap()
                .unwrap();
            connects_after_first = Some(p.metrics().connects);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = futures.len();
    for f in futures {
        f.wait_timeout(Duration::from_secs(60))
            .expect("a result")
            .expect("delivered");
    }
    let connects = p.metrics().connects;
    eprintln!(
        "re-authentication: {n} records over {:?}, connects {} after the first delivery, {connects} at the end",
        start.elapsed(),
        connects_after_first.unwrap()
    );
    assert_eq!(connects, connects_after_first.unwrap(), "no reconnect");
    assert!(p.close_timeout(Duration::from_secs(30)));
}

fn expect_auth_error(
    b: ProducerBuilder,
    topic: &str,
    mechanism: &str,
    message: &str,
    secret: &str,
) {
    let p = b.max_block(Duration::from_secs(30)).build().unwrap();
    let t = Instant::now();
    let r = p.send(Record::new(topic, b"x"));
    let took = t.elapsed();
    eprintln!("{mechanism}: {r:?} after {took:?}");
    let err = r.unwrap_err();
    match &err {
        SendError::AuthenticationFailed {
            cause:
                LastError::Authentication {
                    mechanism: m,
                    message: msg,
                },
            ..
        } => {
            assert_eq!(*m, mechanism);
            assert!(msg.contains(message), "{msg}");
            if mechanism == "OAUTHBEARER" {
                for offered in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
                    assert!(msg.contains(offered), "{msg}");
                }
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(secret), "{text}");
    assert!(p.close_timeout(Duration::from_secs(30)));
}

#[test]
fn wrong_password_fails_send_naming_the_cause() {
    let c = cluster();
    c.create_topic("sasl-denied", 1, 1, &[]).unwrap();
    expect_auth_error(
        builder(c).sasl_scram_sha256("bob", "not-the-Password"),
        "sasl-denied",
        "SCRAM-SHA-256",
        "Authentication failed",
        "not-the-Password",
    );
    expect_auth_error(
        builder(c).sasl_plain("alice", "not-the-Password"),
        "sasl-denied",
        "PLAIN",
        "Authentication failed",
        "not-the-Password",
    );
}

#[test]
fn disabled_mechanism_fails_send_naming_what_the_broker_offers() {
    let c = cluster();
    expect_auth_error(
        builder(c).oauthbearer_token_provider(|| {
            Ok(kring::OAuthToken {
                value: "token-Secret-123".into(),
                lifetime: Duration::from_secs(3600),
                principal: "alice".into(),
            })
        }),
        "sasl-unreachable",
        "OAUTHBEARER",
        "the broker does not enable OAUTHBEARER (it offers: ",
        "token-Secret-123",
    );
}

/// OAUTHBEARER against Kafka's unsecured validator (the harness's default
/// listener enables it): an unsigned JWS from the token provider
/// authenticates and records are read back; then the same from a token
/// endpoint (KIP-768's client_credentials grant, a real HTTP server), set
/// by Java's property names, with SASL extensions (KIP-342), and with a
/// signed client assertion in place of the secret (both of Java 4.4's
/// kinds); and a token endpoint that refuses the client fails `build` at
/// once, naming the endpoint's answer but not the secret.
#[test]
fn oauthbearer_unsigned_token_delivers() {
    let c = KafkaCluster::start(
        ClusterConfig::new(1).secured(SecureListener::new(ListenerSecurity::SaslPlaintext)),
    )
    .unwrap_or_else(|e| panic!("cannot start a SASL_PLAINTEXT cluster: {e}"));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let b = builder(&c).oauthbearer_token_provider(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(kring::OAuthToken {
            value: support::token_server::unsigned_jwt("alice", Duration::from_secs(3600)),
            lifetime: Duration::from_secs(3600),
            principal: "alice".into(),
        })
    });
    deliver_all_codecs(&c, b, "sasl-oauth", 50);
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    const SECRET: &str = "s3cret-Client-Value";
    let server = support::token_server::TokenServer::start(
        "kring-app",
        SECRET,
        "kafka.produce",
        "svc-kring",
    );
    let config = kring::ProducerConfig::from_properties([
        ("bootstrap.servers", c.secured_bootstrap().unwrap().as_str()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
        (
            "sasl.login.callback.handler.class",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        ),
        ("sasl.oauthbearer.token.endpoint.url", server.url.as_str()),
        ("sasl.oauthbearer.client.credentials.client.id", "kring-app"),
        ("sasl.oauthbearer.client.credentials.client.secret", SECRET),
        ("sasl.oauthbearer.scope", "kafka.produce"),
        // KIP-342 extensions, as Confluent Cloud requires: the broker
        // parses each pair (a malformed one fails the login).
        (
            "sasl.oauthbearer.extensions",
            "logicalCluster=lkc-kring1,identityPoolId=pool-Kr1ng",
        ),
        ("linger.ms", "2"),
    ])
    .unwrap();
    deliver_all_codecs(
        &c,
        support::producer_builder_from(config.clone()),
        "sasl-oidc",
        20,
    );
    assert_eq!(
        server.issued.load(std::sync::atomic::Ordering::Relaxed) as usize,
        Compression::ALL.len(),
        "one token per producer, fetched at build (refreshed in 48 minutes at the earliest)"
    );

    // Wrong secret: 401 is final, so `build` fails without retrying.
    let started = Instant::now();
    let refused = support::producer_builder_from(config.clone().oauthbearer_client_credentials(
        &server.url,
        "kring-app",
        "not-the-Secret",
    ))
    .build()
    .map(drop)
    .unwrap_err();
    let text = format!("{refused} {refused:?}");
    eprintln!("{text}");
    assert!(matches!(refused, kring::BuildError::Login(_)), "{text}");
    assert!(
        text.contains("HTTP 401") && text.contains("invalid_client"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-Secret") && !text.contains(SECRET),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Client assertions (Java 4.4's names): kring signs an ES256 JWT for
    // each token request, as the jwt-bearer grant (KIP-1139) and as the
    // client_credentials grant's client_assertion (KIP-1258); the server
    // verifies the signature and the claims before it hands out a token.
    let key = rcgen::KeyPair::generate().unwrap();
    let dir = std::env::temp_dir().join(format!("kring-e2e-assertion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("client-key.pem");
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let other_key_file = dir.join("other-key.pem");
    std::fs::write(
        &other_key_file,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    const AUD: &str = "https://idp.kring.test";
    for (grant, retriever) in [
        (
            "jwt-bearer",
            "org.apache.kafka.common.security.oauthbearer.JwtBearerJwtRetriever",
        ),
        (
            "client_assertion",
            "org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever",
        ),
    ] {
        let server = support::token_server::TokenServer::start_with(
            "svc-kring",
            support::token_server::es256_assertion_check(
                grant,
                key.public_key_raw().to_vec(),
                "kring-app",
                AUD.to_owned(),
                "kafka.produce",
            ),
        );
        let with_key = |key: &std::path::Path| {
            kring::ProducerConfig::from_properties([
                ("bootstrap.servers", c.secured_bootstrap().unwrap().as_str()),
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.token.endpoint.url", server.url.as_str()),
                ("sasl.oauthbearer.jwt.retriever.class", retriever),
                ("sasl.oauthbearer.assertion.algorithm", "ES256"),
                (
                    "sasl.oauthbearer.assertion.private.key.file",
                    key.to_str().unwrap(),
                ),
                ("sasl.oauthbearer.assertion.claim.iss", "kring-app"),
                ("sasl.oauthbearer.assertion.claim.aud", AUD),
                ("sasl.oauthbearer.assertion.claim.jti.include", "true"),
                ("sasl.oauthbearer.scope", "kafka.produce"),
                ("linger.ms", "2"),
            ])
            .unwrap()
        };
        deliver_all_codecs(
            &c,
            support::producer_builder_from(with_key(&key_file)),
            &format!("sasl-assertion-{}", grant.replace('_', "-")),
            10,
        );
        assert_eq!(
            server.issued.load(std::sync::atomic::Ordering::Relaxed) as usize,
            Compression::ALL.len(),
            "{grant}: one token per producer"
        );
        // Signed with a key the server does not know: refused at build.
        let refused = support::producer_builder_from(with_key(&other_key_file))
            .build()
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(refused, kring::BuildError::Login(_))
                && refused.to_string().contains("HTTP 401"),
            "{grant}: {refused}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // Nothing listening: retried until sasl.login.retry.backoff.max.ms.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let started = Instant::now();
    let unreachable = support::producer_builder_from(
        config
            .oauthbearer_client_credentials(&dead, "kring-app", SECRET)
            .set("sasl.login.retry.backoff.max.ms", "1500")
            .unwrap(),
    )
    .build()
    .map(drop)
    .unwrap_err()
    .to_string();
    let took = started.elapsed();
    eprintln!("{unreachable} after {took:?}");
    assert!(unreachable.contains(&dead), "{unreachable}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
