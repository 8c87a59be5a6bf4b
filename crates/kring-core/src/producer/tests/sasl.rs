//! SASL in simulated time: every mechanism authenticates before any other
//! request, failures are typed and backed off, re-authentication (KIP-368)
//! happens before the session expires and keeps in-flight requests.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use kring_protocol::messages::ApiKey;

use super::*;
use crate::error::SendError;
use crate::{LastError, OAuthToken, SaslConfig, SaslMechanism, SecurityProtocol};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use kring_mock::MockSasl;

const PASSWORD: &str = "pa55-W0rd-sim";

fn sasl_cfg(sasl: SaslConfig) -> Config {
    Config {
        security_protocol: SecurityProtocol::SaslPlaintext,
        sasl: Some(SaslConfig {
            nonce_seed: [7; 32],
            ..sasl
        }),
        ..cfg()
    }
}

/// kring-mock's SASL listener with user alice and the given mechanisms.
fn server(mechanisms: &[&str]) -> MockSasl {
    MockSasl::default()
        .user("alice", PASSWORD)
        .mechanisms(mechanisms)
}

/// PLAIN and SCRAM-SHA-256/512, user alice, no session lifetime.
fn alice() -> MockSasl {
    server(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
}

fn sasl_sim(config: Config, server: MockSasl) -> MockSim {
    sim_on(config, cluster(1, 1).sasl(server))
}

fn token_provider(value: &'static str, lifetime: Duration, calls: Arc<AtomicU32>) -> SaslConfig {
    SaslConfig::oauthbearer(Arc::new(move || {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(OAuthToken {
            value: value.to_owned(),
            lifetime,
            principal: "alice".into(),
        })
    }))
}

#[test]
fn every_mechanism_authenticates_before_any_other_request() {
    let calls = Arc::new(AtomicU32::new(0));
    for (mechanism, exchanges) in [
        (SaslMechanism::Plain, 1),
        (SaslMechanism::ScramSha256, 2),
        (SaslMechanism::ScramSha512, 2),
        (SaslMechanism::OAuthBearer, 1),
    ] {
        let sasl = if mechanism == SaslMechanism::OAuthBearer {
            token_provider(PASSWORD, Duration::from_secs(3600), calls.clone())
        } else {
            SaslConfig::new(mechanism, "alice", PASSWORD)
        };
        let mut sim = sasl_sim(
            sasl_cfg(sasl),
            server(&["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]),
        );
        let hs: Vec<_> = (0..20u8)
            .map(|i| sim.send("t", Some(0), None, Some(&[i])).expect("send"))
            .collect();
        sim.drive_bounded(10_000);
        for h in &hs {
            h.try_result().expect("done").expect("delivered");
        }
        assert_eq!(log(&sim, 0).len(), 20);
        assert_eq!(sim.sasl_closes, 0, "{mechanism:?}: no request before SASL");
        // Per connection: ApiVersions, SaslHandshake, SaslAuthenticate x n,
        // then the rest.
        let keys: Vec<i16> = sim.transmitted.iter().map(|r| r.2).collect();
        let want = [ApiKey::ApiVersions.key(), ApiKey::SaslHandshake.key()]
            .into_iter()
            .chain(std::iter::repeat_n(
                ApiKey::SaslAuthenticate.key(),
                exchanges,
            ));
        assert!(
            keys.iter().copied().take(2 + exchanges).eq(want),
            "{mechanism:?}: {keys:?}"
        );
        assert!(sim.core.stats().sasl_authentications >= 1);
        assert_eq!(sim.core.stats().sasl_failures, 0);
    }
    assert!(calls.load(Ordering::Relaxed) >= 1);
}

/// SASL settings under `security.protocol` PLAINTEXT are ignored, as the
/// Java client ignores them: no SaslHandshake, records delivered.
#[test]
fn sasl_settings_without_a_sasl_protocol_are_ignored() {
    let config = Config {
        security_protocol: SecurityProtocol::Plaintext,
        ..sasl_cfg(SaslConfig::new(SaslMechanism::Plain, "alice", PASSWORD))
    };
    let mut sim = sim_on(config, cluster(1, 1));
    let hs: Vec<_> = (0..5u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).expect("send"))
        .collect();
    sim.drive_bounded(10_000);
    for h in &hs {
        h.try_result().expect("done").expect("delivered");
    }
    assert_eq!(log(&sim, 0).len(), 5);
    let keys: Vec<i16> = sim.transmitted.iter().map(|r| r.2).collect();
    assert!(keys.contains(&ApiKey::Produce.key()), "{keys:?}");
    assert!(
        !keys
            .iter()
            .any(|&k| k == ApiKey::SaslHandshake.key() || k == ApiKey::SaslAuthenticate.key()),
        "{keys:?}"
    );
    assert_eq!(sim.core.stats().sasl_authentications, 0);
}

#[test]
fn wrong_password_is_a_typed_error_without_the_secret_and_backs_off() {
    let config = Config {
        max_block: Duration::from_secs(10),
        ..sasl_cfg(SaslConfig::new(
            SaslMechanism::ScramSha256,
            "alice",
            "wrong-secret-xyz",
        ))
    };
    let debug = format!("{config:?}");
    assert!(!debug.contains("wrong-secret-xyz"), "{debug}");
    let mut sim = sasl_sim(config, alice());
    // Sim::send plays a producer thread blocking for metadata (up to 60 s).
    let t0 = sim.now;
    let err = sim.send("t", Some(0), None, Some(b"x")).unwrap_err();
    let waited = sim.now - t0;
    let SendError::MetadataTimeout { last_error, .. } = &err else {
        panic!("{err:?}");
    };
    match last_error {
        Some(LastError::Authentication { mechanism, message }) => {
            assert_eq!(*mechanism, "SCRAM-SHA-256");
            assert!(
                message.contains("Invalid username or password"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("SASL SCRAM-SHA-256 authentication failed"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-xyz") && !format!("{err:?}").contains("wrong-secret-xyz"));
    // Backoff, not a tight loop: reconnect.backoff.ms 50 ms doubling to
    // reconnect.backoff.max.ms 1 s (±20 %), per target (bootstrap entry
    // and node 1 are two targets here).
    let attempts = sim.connects.len() as u64;
    let failures = sim.core.stats().sasl_failures;
    println!(
        "wrong password: {attempts} connects, {failures} SASL failures in {waited:?} simulated"
    );
    assert_eq!(attempts, failures, "every connection failed authentication");
    let bound = 2 * (waited.as_secs() + 8);
    assert!(
        attempts >= 4 && attempts <= bound,
        "{attempts} attempts in {waited:?} (bound {bound})"
    );
}

/// A refused login is a failed connection setup, as in the Java client
/// (which authenticates before the connection leaves CONNECTING): each
/// attempt's connect timeout doubles (±20 %) from
/// `socket.connection.setup.timeout.ms` to its max, as after connects
/// that time out, where a reset after every login would keep it at the
/// base.
#[test]
fn refused_logins_lengthen_the_connect_timeout_like_failed_connects() {
    let config = Config {
        max_block: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(1),
        connect_timeout_max: Duration::from_secs(8),
        ..sasl_cfg(SaslConfig::new(
            SaslMechanism::ScramSha256,
            "alice",
            "wrong-secret-xyz",
        ))
    };
    let mut sim = sasl_sim(config, alice());
    sim.send("t", Some(0), None, Some(b"x")).unwrap_err();
    let addr = sim.connects[0].clone();
    let timeouts: Vec<f64> = sim
        .connects
        .iter()
        .zip(&sim.connect_timeouts)
        .filter(|(a, _)| **a == addr)
        .map(|(_, t)| t.as_secs_f64())
        .collect();
    println!("{addr}: {timeouts:.2?}");
    assert!(timeouts.len() >= 6, "{timeouts:?}");
    for (k, &t) in timeouts.iter().enumerate() {
        let nominal = 2f64.powi(k as i32).min(8.0);
        assert!(
            t >= nominal * 0.8 - 1e-3 && t <= (nominal * 1.2).min(8.0) + 1e-3,
            "attempt {k}: {t} s: {timeouts:?}"
        );
    }
}

/// A re-authentication that fails ends a connection that was ready, so
/// the run of failed setups starts afresh: the next attempt gets the base
/// connect timeout, the ones after it (each login refused) grow from
/// there. The token provider's second token, the one the re-authentication
/// uses, is one the broker refuses.
#[test]
fn a_failed_reauthentication_is_not_a_failed_setup() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let provider = SaslConfig::oauthbearer(Arc::new(move || {
        let first = counter.fetch_add(1, Ordering::Relaxed) == 0;
        Ok(OAuthToken {
            value: if first { "good-token" } else { "revoked-token" }.to_owned(),
            lifetime: Duration::from_secs(5),
            principal: "alice".into(),
        })
    }));
    let config = Config {
        connect_timeout: Duration::from_secs(1),
        connect_timeout_max: Duration::from_secs(30),
        delivery_timeout: Duration::from_secs(3_600),
        ..sasl_cfg(provider)
    };
    let server = server(&["OAUTHBEARER"]).session_lifetime(Duration::from_secs(10));
    let mut sim = hostile_sim(config, server, |_| {});
    sim.cluster.refuse = Some(b"Bearer revoked-token");
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(1000);
    h.try_result().expect("done").expect("delivered");
    let before = sim.connects.len();
    sim.run_for(Duration::from_secs(40));
    let stats = sim.core.stats();
    assert!(stats.sasl_reauthentications >= 1, "{stats:?}");
    assert!(stats.sasl_failures >= 3, "{stats:?}");
    let node = sim.connects[before..].first().expect("a reconnect").clone();
    let after: Vec<f64> = sim.connects[before..]
        .iter()
        .zip(&sim.connect_timeouts[before..])
        .filter(|(a, _)| **a == node)
        .map(|(_, t)| t.as_secs_f64())
        .collect();
    println!("after the failed re-authentication, {node}: {after:.2?}");
    // Two targets share the address (the bootstrap entry and node 1, each
    // with its own run): both start from the base, then double.
    assert!(after.len() >= 4, "{after:?}");
    for (k, &t) in after.iter().take(4).enumerate() {
        let nominal = 2f64.powi(k as i32 / 2);
        assert!(
            t >= nominal * 0.8 - 1e-3 && t <= nominal * 1.2 + 1e-3,
            "attempt {k}: {t} s: {after:?}"
        );
    }
}

#[test]
fn unknown_mechanism_names_what_the_broker_offers() {
    let server = server(&["PLAIN"]);
    let config = Config {
        max_block: Duration::from_secs(2),
        ..sasl_cfg(SaslConfig::new(
            SaslMechanism::ScramSha512,
            "alice",
            PASSWORD,
        ))
    };
    let mut sim = sasl_sim(config, server);
    let err = sim.send("t", Some(0), None, Some(b"x")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("SASL SCRAM-SHA-512 authentication failed: the broker does not enable SCRAM-SHA-512 (it offers: PLAIN)"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
    // No SaslAuthenticate was ever sent.
    assert!(!sim
        .transmitted
        .iter()
        .any(|r| r.2 == ApiKey::SaslAuthenticate.key()));
}

#[test]
fn queued_records_fail_after_delivery_timeout_naming_the_authentication_failure() {
    // Metadata known first (authenticated), then the password stops
    // working and the connection drops: the records queued then time out
    // naming the authentication failure.
    let config = Config {
        delivery_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        linger: ms(5),
        ..sasl_cfg(SaslConfig::new(SaslMechanism::Plain, "alice", PASSWORD))
    };
    let mut sim = sasl_sim(config, alice());
    sim.send("t", Some(0), None, Some(b"first")).unwrap();
    sim.drive_bounded(1000);
    sim.cluster.set_sasl_user("alice", "rotated").unwrap();
    sim.disconnect_node(1);
    let h = sim.send("t", Some(0), None, Some(b"second")).unwrap();
    sim.drive_bounded(100_000);
    let e = h.try_result().expect("done").unwrap_err();
    let text = e.to_string();
    assert!(text.contains("SASL PLAIN authentication failed"), "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains("rotated"));
}

/// A broker that grants no session lifetime (Kafka's default,
/// `connections.max.reauth.ms` 0) is never re-authenticated with.
#[test]
fn no_session_lifetime_means_no_reauthentication() {
    let config = sasl_cfg(SaslConfig::new(
        SaslMechanism::ScramSha256,
        "alice",
        PASSWORD,
    ));
    let mut sim = sasl_sim(config, alice());
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    h.wait().unwrap();
    sim.run_for(Duration::from_secs(3_600));
    let stats = sim.core.stats();
    assert_eq!(stats.sasl_reauthentications, 0);
    // One authentication per connection (bootstrap, then the broker's).
    assert_eq!(stats.sasl_authentications as usize, sim.connects.len());
}

#[test]
fn reauthentication_happens_before_expiry_and_keeps_in_flight_requests() {
    let server = alice().session_lifetime(Duration::from_secs(10));
    let config = Config {
        linger: ms(1),
        ..sasl_cfg(SaslConfig::new(
            SaslMechanism::ScramSha512,
            "alice",
            PASSWORD,
        ))
    };
    let mut sim = sasl_sim(config, server);
    // Slow broker: a produce stays in flight 40 ms.
    slow(&sim, 1, ms(39));
    let mut handles = Vec::new();
    let mut in_flight_at_reauth = Vec::new();
    let mut reauths = 0;
    let mut reauth_at = vec![sim.now];
    let end = sim.now + Duration::from_secs(65);
    while sim.now < end {
        for i in 0..3u8 {
            handles.push(sim.send("t", Some(0), None, Some(&[i])).unwrap());
        }
        let step_end = sim.now + ms(10);
        while sim.now < step_end {
            sim.step();
            let r = sim.core.stats().sasl_reauthentications;
            if r > reauths {
                reauths = r;
                reauth_at.push(sim.now);
                // The SaslHandshake just queued is in flight too.
                let n: usize = sim.core.conns.iter().map(|c| c.in_flight.len()).sum();
                in_flight_at_reauth.push(n.saturating_sub(1));
            }
        }
    }
    sim.drive_bounded(100_000);
    for h in &handles {
        h.try_result().expect("done").expect("delivered");
    }
    let stats = sim.core.stats().clone();
    println!(
        "re-auth: {} records, {} re-authentications, in flight at each: {in_flight_at_reauth:?}, connects {}",
        handles.len(),
        stats.sasl_reauthentications,
        sim.connects.len()
    );
    // 65 s with a 10 s session: a re-authentication every 8.5-9.5 s (as
    // Java: at 85-95 % of the lifetime, from the end of the exchange
    // before, a few milliseconds after it began).
    assert!((6..=8).contains(&stats.sasl_reauthentications), "{stats:?}");
    for w in reauth_at.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= ms(8_500) && gap < ms(9_600), "{reauth_at:?}");
    }
    assert_eq!(sim.sasl_closes, 0, "no request after a session expired");
    assert_eq!(stats.retries, 0, "nothing in flight was lost");
    assert_eq!(stats.sasl_failures, 0);
    assert!(
        in_flight_at_reauth.iter().any(|&n| n > 0),
        "some re-authentication started with requests in flight: {in_flight_at_reauth:?}"
    );
    assert_eq!(log(&sim, 0).len(), handles.len());
    // Between a re-authentication's SaslHandshake and its last
    // SaslAuthenticate no produce request went out on that connection.
    let mut authenticating = false;
    let mut auths = 0;
    for &(_, _, key, _) in &sim.transmitted {
        if key == ApiKey::SaslHandshake.key() {
            authenticating = true;
            auths = 0;
        } else if key == ApiKey::SaslAuthenticate.key() {
            auths += 1;
            if auths == 2 {
                authenticating = false;
            }
        } else {
            assert!(
                !authenticating,
                "request {key} sent while re-authenticating"
            );
        }
    }
}

/// KIP-368 with KIP-219: a re-authentication that falls due while the
/// broker throttles the connection waits until the throttle has passed,
/// as every other request does (the broker has muted the connection; the
/// Java client sends a throttled node nothing). Every Produce answer here
/// throttles for 400 ms, so most re-authentications fall due inside a
/// throttle; they still come before the session expires, and every record
/// is delivered once.
#[test]
fn reauthentication_waits_for_a_throttle_to_pass() {
    use std::time::Instant;
    let server = alice().session_lifetime(Duration::from_secs(10));
    let config = Config {
        linger: ms(1),
        ..sasl_cfg(SaslConfig::new(SaslMechanism::Plain, "alice", PASSWORD))
    };
    let mut sim = sasl_sim(config, server);
    sim.cluster
        .inject(Fault::throttle(ApiKey::Produce, ms(400)).always());
    let mut handles = Vec::new();
    let mut seen = sim.transmitted.len();
    let mut handshakes = 0;
    // A re-authentication deferred by a throttle: its handshake went out
    // the instant the throttle ended.
    let mut at_throttle_end = 0;
    let mut throttle_ends: Vec<Instant> = Vec::new();
    let end = sim.now + Duration::from_secs(45);
    while sim.now < end {
        handles.push(sim.send("t", Some(0), None, Some(b"r")).unwrap());
        let step_end = sim.now + ms(50);
        while sim.now < step_end {
            sim.step();
            for &(conn, _, key, _) in &sim.transmitted[seen..] {
                let throttled = sim
                    .core
                    .conns
                    .get(conn)
                    .is_some_and(|c| c.is_throttled(sim.now));
                if key == ApiKey::SaslHandshake.key() {
                    handshakes += 1;
                    assert!(!throttled, "SaslHandshake on a throttled connection");
                    at_throttle_end += usize::from(throttle_ends.contains(&sim.now));
                }
            }
            seen = sim.transmitted.len();
            for c in sim.core.conns.iter() {
                if let Some(t) = c.throttled_until {
                    if !throttle_ends.contains(&t) {
                        throttle_ends.push(t);
                    }
                }
            }
        }
    }
    sim.drive_bounded(100_000);
    for h in &handles {
        h.try_result().expect("done").expect("delivered");
    }
    let stats = sim.core.stats().clone();
    println!(
        "throttled re-auth: {} records, {handshakes} handshakes, {at_throttle_end} at a throttle's end, {} re-authentications",
        handles.len(),
        stats.sasl_reauthentications
    );
    // 45 s with a 10 s session: a re-authentication every 8.5-9.9 s.
    assert!((4..=5).contains(&stats.sasl_reauthentications), "{stats:?}");
    assert!(
        at_throttle_end >= 1,
        "no re-authentication fell due in a throttle"
    );
    assert_eq!(sim.sasl_closes, 0, "no request after a session expired");
    assert_eq!(stats.sasl_failures, 0);
    assert_eq!(log(&sim, 0).len(), handles.len());
}

#[test]
fn oauthbearer_token_is_cached_and_refreshed_before_expiry() {
    let calls = Arc::new(AtomicU32::new(0));
    let server = server(&["OAUTHBEARER"]).session_lifetime(Duration::from_secs(10));
    let config = sasl_cfg(token_provider(
        PASSWORD,
        Duration::from_secs(30),
        calls.clone(),
    ));
    let mut sim = sasl_sim(config, server);
    sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(1000);
    sim.run_for(Duration::from_secs(100));
    let stats = sim.core.stats();
    // ~10 re-authentications; the token (30 s, refreshed past 24 s) is
    // fetched about every third one, not per exchange.
    let n = calls.load(Ordering::Relaxed);
    println!(
        "oauth: {} authentications, {n} token fetches",
        stats.sasl_authentications
    );
    assert!(stats.sasl_authentications >= 10);
    assert!((4..=6).contains(&n), "{n} token fetches");
    assert_eq!(sim.sasl_closes, 0);
}

#[test]
fn a_failing_token_provider_is_an_authentication_error() {
    let server = server(&["OAUTHBEARER"]);
    let config = Config {
        max_block: Duration::from_secs(2),
        ..sasl_cfg(SaslConfig::oauthbearer(Arc::new(|| {
            Err("idp unreachable".into())
        })))
    };
    let mut sim = sasl_sim(config, server);
    let text = sim
        .send("t", Some(0), None, Some(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(
            "SASL OAUTHBEARER authentication failed: the token provider failed: idp unreachable"
        ),
        "{text}"
    );
}

#[test]
fn sasl_settings_are_validated_without_echoing_secrets() {
    let base = |s: SaslConfig| Config {
        bootstrap: vec!["h:1".into()],
        ..sasl_cfg(s)
    };
    let e = base(SaslConfig::new(SaslMechanism::Plain, "", "pw-secret"))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sasl.username") && !e.contains("pw-secret"),
        "{e}"
    );
    let e = base(SaslConfig::new(SaslMechanism::ScramSha256, "u", ""))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("sasl.password"), "{e}");
    let mut c = base(SaslConfig::new(SaslMechanism::Plain, "u", "p"));
    c.sasl = None;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("sasl.mechanism"));
    assert!(base(SaslConfig::new(SaslMechanism::Plain, "u", "p"))
        .validate()
        .is_ok());
}

use crate::test_wake::CountWake;

/// A send waiting for metadata fails as soon as authentication fails (the
/// Java client's AuthenticationException from `send`), long before its
/// `max.block.ms`, and is woken for it.
#[test]
fn a_waiting_send_fails_when_authentication_fails() {
    let mut sim = sasl_sim(
        sasl_cfg(SaslConfig::new(
            SaslMechanism::Plain,
            "alice",
            "wrong-pw-123",
        )),
        alice(),
    );
    let rec = crate::RecordRef {
        partition: Some(0),
        ..crate::RecordRef::plain("t", b"v")
    };
    let count = Arc::new(CountWake(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let shared = sim.shared.clone();
    let t0 = sim.now;
    let mut a = shared.append_async(t0, t0 + Duration::from_secs(60));
    assert!(a.poll_append(sim.now, &rec, &mut cx).is_pending());
    sim.drive_until(10_000, |s| s.core.stats().sasl_failures > 0);
    sim.settle();
    assert!(count.0.load(Ordering::SeqCst) >= 1, "woken by the failure");
    let took = sim.now - t0;
    match a.poll_append(sim.now, &rec, &mut cx) {
        std::task::Poll::Ready(Err(SendError::AuthenticationFailed { topic, cause })) => {
            assert_eq!(&*topic, "t");
            assert!(matches!(
                cause,
                LastError::Authentication {
                    mechanism: "PLAIN",
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    println!("async send failed after {took:?} of simulated time (max.block.ms 60 s)");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// A provider for a token that never expires may say so with
/// `Duration::MAX`: the cache check `fetched_at + 80 % of lifetime` must
/// not overflow `Instant` (a panic on the I/O thread) when the token is
/// looked up again (the second connection, a re-authentication).
#[test]
fn a_never_expiring_oauth_token_does_not_overflow_the_refresh_check() {
    let calls = Arc::new(AtomicU32::new(0));
    let server = server(&["OAUTHBEARER"]).session_lifetime(Duration::from_secs(10));
    let config = sasl_cfg(token_provider(PASSWORD, Duration::MAX, calls.clone()));
    let mut sim = sasl_sim(config, server);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(1000);
    h.try_result().expect("done").expect("delivered");
    sim.run_for(Duration::from_secs(30));
    let stats = sim.core.stats();
    assert!(stats.sasl_authentications >= 3, "{stats:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 1, "the token is cached");
    assert_eq!(sim.sasl_closes, 0);
}

/// kring-mock's SASL listener with its SaslAuthenticate answers rewritten
/// by `rewrite` (a broker that lies: a forged server signature, a hostile
/// iteration count, an odd session lifetime).
struct Hostile {
    inner: MockCluster,
    rewrite:
        Box<dyn FnMut(&mut kring_protocol::messages::sasl_authenticate::SaslAuthenticateResponse)>,
    /// SaslAuthenticate requests whose frame contains this are refused
    /// (SASL_AUTHENTICATION_FAILED, then the connection is closed).
    refuse: Option<&'static [u8]>,
}

impl crate::sim::SimBroker for Hostile {
    type Session = kring_mock::SaslSession;

    fn bootstrap(&self) -> String {
        self.inner.bootstrap()
    }
    fn accept(&mut self, addr: &str) -> Option<i32> {
        self.inner.accept(addr)
    }
    fn latency(&self, node: i32) -> Duration {
        crate::sim::SimBroker::latency(&self.inner, node)
    }
    fn handle(&mut self, node: i32, frame: bytes::Bytes) -> crate::sim::BrokerStep {
        crate::sim::SimBroker::handle(&mut self.inner, node, frame)
    }
    fn screen(
        &mut self,
        node: i32,
        session: &mut Self::Session,
        now: std::time::Instant,
        frame: &bytes::Bytes,
    ) -> crate::sim::Screen {
        use crate::sim::Screen;
        use kring_protocol::message::{decode_response_frame, encode_response};
        use kring_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
        let key = i16::from_be_bytes([frame[4], frame[5]]);
        let version = i16::from_be_bytes([frame[6], frame[7]]);
        if key == ApiKey::SaslAuthenticate.key()
            && self
                .refuse
                .is_some_and(|r| frame.windows(r.len()).any(|w| w == r))
        {
            let header =
                kring_protocol::message::decode_request_header(&mut frame.slice(4..)).unwrap();
            let r = kring_protocol::messages::sasl_authenticate::SaslAuthenticateResponse {
                error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.code(),
                error_message: Some("Authentication failed: invalid_token".into()),
                ..Default::default()
            };
            let mut out = Vec::new();
            encode_response(&mut out, header.correlation_id, version, &r).unwrap();
            return Screen::AnswerAndClose(bytes::Bytes::from(out));
        }
        let verdict = self.inner.screen(node, session, now, frame);
        let (resp, close) = match verdict {
            Screen::Answer(resp) => (resp, false),
            Screen::AnswerAndClose(resp) => (resp, true),
            other => return other,
        };
        let mut rewrite = |resp: bytes::Bytes| {
            if key != ApiKey::SaslAuthenticate.key() {
                return resp;
            }
            let (corr, mut r) =
                decode_response_frame::<SaslAuthenticateRequest>(resp.slice(4..), version).unwrap();
            (self.rewrite)(&mut r);
            let mut out = Vec::new();
            encode_response(&mut out, corr, version, &r).unwrap();
            bytes::Bytes::from(out)
        };
        let resp = rewrite(resp);
        if close {
            Screen::AnswerAndClose(resp)
        } else {
            Screen::Answer(resp)
        }
    }
}

fn hostile_sim(
    config: Config,
    server: MockSasl,
    rewrite: impl FnMut(&mut kring_protocol::messages::sasl_authenticate::SaslAuthenticateResponse)
        + 'static,
) -> Sim<Hostile> {
    let inner = cluster(1, 1).sasl(server).build_unbound().unwrap();
    Sim::new(
        config,
        Hostile {
            inner,
            rewrite: Box::new(rewrite),
            refuse: None,
        },
        kring_testclock::origin(),
    )
}

/// A broker whose server-final signature is wrong (it does not know the
/// password: a man in the middle, or a spoofed listener) fails the
/// exchange with a typed error; nothing is produced on the connection.
#[test]
fn a_forged_scram_server_signature_fails_authentication() {
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let config = Config {
            max_block: Duration::from_secs(2),
            ..sasl_cfg(SaslConfig::new(mechanism, "alice", PASSWORD))
        };
        let mut sim = hostile_sim(config, alice(), |r| {
            if let Some(sig) = r.auth_bytes.strip_prefix(b"v=") {
                let mut forged = b"v=".to_vec();
                let mut raw = B64.decode(sig).unwrap();
                raw[0] ^= 1;
                forged.extend_from_slice(B64.encode(raw).as_bytes());
                r.auth_bytes = bytes::Bytes::from(forged);
            }
        });
        let err = sim.send("t", Some(0), None, Some(b"x")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("SASL {} authentication failed", mechanism.name()))
                && text.contains("signature"),
            "{mechanism:?}: {text}"
        );
        assert_eq!(sim.core.stats().sasl_authentications, 0);
        assert!(sim.core.stats().sasl_failures >= 1);
        assert!(
            !sim.transmitted
                .iter()
                .any(|r| r.2 == ApiKey::Produce.key() || r.2 == ApiKey::Metadata.key()),
            "{mechanism:?}: a request went out after a forged signature"
        );
    }
}

/// A session lifetime of 1 ms (or a negative one) does not wedge the
/// connection: records are delivered.
#[test]
fn tiny_zero_and_negative_session_lifetimes() {
    for lifetime in [1i64, 0, -1, -5000, i64::MIN, i64::MAX] {
        let config = sasl_cfg(SaslConfig::new(SaslMechanism::Plain, "alice", PASSWORD));
        let mut sim = hostile_sim(config, alice(), move |r| {
            if r.error_code == 0 {
                r.session_lifetime_ms = lifetime;
            }
        });
        let hs: Vec<_> = (0..20u8)
            .map(|i| sim.send("t", Some(0), None, Some(&[i])).unwrap())
            .collect();
        sim.run_for(Duration::from_secs(2));
        for h in &hs {
            h.try_result().expect("done").expect("delivered");
        }
        let st = sim.core.stats();
        println!(
            "lifetime {lifetime}: {} authentications, {} re-authentications, {} failures, {} connects",
            st.sasl_authentications,
            st.sasl_reauthentications,
            st.sasl_failures,
            sim.connects.len()
        );
    }
}

/// What a driver author might log: every frame the core hands over, with
/// `{:?}`. The SASL ones carry the PLAIN password, the OAUTHBEARER token
/// and the SCRAM client proof; none of it may show.
#[test]
fn transmit_debug_shows_no_credentials() {
    use crate::sim::{BrokerStep, Screen, SimBroker};
    use crate::{IoCommand, ProducerCore};
    const TOKEN: &str = "eyJhbGciOiJub25lIn0.c2VjcmV0LXRva2Vu.";
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ] {
        let mut cl = cluster(1, 1)
            .sasl(alice().mechanisms(&[mechanism.name()]))
            .build_unbound()
            .unwrap();
        let sasl = if mechanism == SaslMechanism::OAuthBearer {
            token_provider(TOKEN, Duration::from_secs(3600), Arc::default())
        } else {
            SaslConfig::new(mechanism, "alice", PASSWORD)
        };
        let config = Config {
            bootstrap: vec![cl.bootstrap()],
            ..sasl_cfg(sasl)
        };
        let now = kring_testclock::origin();
        let (mut core, _shared) = ProducerCore::new(config, now).unwrap();
        core.handle_wakeup(now);
        assert!(core.poll_transmit(now).is_none());
        let conn = match core.poll_io() {
            Some(IoCommand::Connect { conn, .. }) => conn,
            other => panic!("{other:?}"),
        };
        core.handle_connected(now, conn);
        let mut session = Default::default();
        let mut sasl_frames = 0;
        while let Some(t) = core.poll_transmit(now) {
            let frame = t.frame.to_bytes();
            let key = i16::from_be_bytes([frame[4], frame[5]]);
            // The frame, and the core's state with an exchange in progress
            // (the SCRAM client holds the password; a queued SASL frame,
            // the credentials).
            core.conns.push_sasl_tx(t.clone());
            let shown = [
                format!("{t:?}"),
                format!("{t:#?}"),
                format!("{:?}", t.frame),
                format!("{:?}", core.conns),
                format!("{:?}", core.sasl),
                format!("{core:?}"),
            ];
            assert_eq!(core.conns.pop_sasl_tx().as_ref(), Some(&t));
            for s in &shown {
                assert!(
                    !s.contains(PASSWORD) && !s.contains("c2VjcmV0LXRva2Vu") && !s.contains(",p="),
                    "{mechanism:?}: {s}"
                );
            }
            if key == ApiKey::SaslAuthenticate.key() {
                sasl_frames += 1;
            }
            if key == ApiKey::Metadata.key() {
                break;
            }
            let resp = match SimBroker::screen(&mut cl, 1, &mut session, now, &frame) {
                Screen::Answer(r) => r,
                Screen::Pass => match SimBroker::handle(&mut cl, 1, frame) {
                    BrokerStep::Respond { frame, .. } => frame,
                    other => panic!("{other:?}"),
                },
                other => panic!("{mechanism:?}: {other:?}"),
            };
            core.handle_response(now, conn, resp.slice(4..));
        }
        let want = if matches!(
            mechanism,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        ) {
            2
        } else {
            1
        };
        assert_eq!(sasl_frames, want, "{mechanism:?}");
        assert_eq!(core.stats().sasl_authentications, 1, "{mechanism:?}");
    }
}

/// The token provider is user code on the I/O thread, fenced like the
/// delivery callback: one that panics is an authentication failure of
/// that attempt (named, backed off), not the end of the I/O thread; the
/// next attempt asks it again.
#[test]
fn a_panicking_token_provider_is_an_authentication_error() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let provider = SaslConfig::oauthbearer(Arc::new(move || {
        if c.fetch_add(1, Ordering::Relaxed) == 0 {
            panic!("idp client bug");
        }
        Ok(OAuthToken {
            value: "tok".into(),
            lifetime: Duration::from_secs(3600),
            principal: "alice".into(),
        })
    }));
    let mut sim = sasl_sim(sasl_cfg(provider), server(&["OAUTHBEARER"]));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(10_000);
    h.try_result().expect("done").expect("delivered");
    let st = sim.core.stats();
    assert_eq!(st.sasl_failures, 1, "{st:?}");
    assert!(calls.load(Ordering::Relaxed) >= 2);
    match sim.core.conns.last_error() {
        Some(LastError::Authentication { message, .. }) => {
            assert!(message.contains("panicked: idp client bug"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A token the broker refused (revoked, signed with a retired key, expired
/// by the broker's clock) is not offered again: the next attempt asks the
/// provider, instead of replaying the refused token on every reconnect
/// until 80 % of the lifetime the provider gave it has passed.
#[test]
fn a_refused_oauth_token_is_not_reused() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let provider = SaslConfig::oauthbearer(Arc::new(move || {
        let first = c.fetch_add(1, Ordering::Relaxed) == 0;
        Ok(OAuthToken {
            value: if first { "revoked" } else { "fresh" }.into(),
            lifetime: Duration::from_secs(3600),
            principal: "alice".into(),
        })
    }));
    let mut sim = hostile_sim(sasl_cfg(provider), server(&["OAUTHBEARER"]), |_| {});
    sim.cluster.refuse = Some(b"Bearer revoked");
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(10_000);
    h.try_result().expect("done").expect("delivered");
    let st = sim.core.stats();
    assert_eq!(st.sasl_failures, 1, "{st:?}");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

/// The provider failing when the token is due for a refresh (an identity
/// service down for a moment) does not end sessions while the token it
/// gave last is still valid: that token is offered again (as the Java
/// client keeps its credential until it expires when a refresh fails).
/// Once it has expired, the failure is the provider's.
#[test]
fn a_failing_refresh_keeps_using_the_unexpired_token() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let provider = SaslConfig::oauthbearer(Arc::new(move || {
        if c.fetch_add(1, Ordering::Relaxed) > 0 {
            return Err("idp unreachable".into());
        }
        Ok(OAuthToken {
            value: "tok".into(),
            lifetime: Duration::from_secs(20),
            principal: "alice".into(),
        })
    }));
    let server = server(&["OAUTHBEARER"]).session_lifetime(Duration::from_secs(3));
    let mut sim = sasl_sim(sasl_cfg(provider), server);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_bounded(1000);
    h.try_result().expect("done").expect("delivered");
    // A re-authentication every 2.55-2.85 s: those after 16 s (80 % of
    // the token's 20 s) try a refresh, while the token is still valid.
    sim.run_for(Duration::from_millis(19_500));
    let st = sim.core.stats().clone();
    assert!(st.sasl_reauthentications >= 6, "{st:?}");
    assert_eq!(st.sasl_failures, 0, "{st:?}");
    assert!(calls.load(Ordering::Relaxed) >= 2, "a refresh was tried");
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.drive_bounded(1000);
    h.try_result().expect("done").expect("delivered");
    // Past the token's end: the provider's failure is the error.
    sim.run_for(Duration::from_secs(5));
    assert!(sim.core.stats().sasl_failures >= 1);
    match sim.core.conns.last_error() {
        Some(LastError::Authentication { message, .. }) => {
            assert!(message.contains("idp unreachable"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// A token from the provider that is not an RFC 6750 bearer token (here
/// with `\x01`, the OAUTHBEARER separator, which would smuggle a
/// key/value pair into the client-first message) is refused before it is
/// sent, as an authentication error that does not print the token.
#[test]
fn a_malformed_oauth_token_is_refused_before_it_is_sent() {
    let provider = token_provider(
        "s3cretTok\x01host=evil.example",
        Duration::from_secs(3600),
        Arc::default(),
    );
    let config = Config {
        max_block: Duration::from_secs(2),
        ..sasl_cfg(provider)
    };
    let mut sim = sasl_sim(config, server(&["OAUTHBEARER"]));
    let text = sim
        .send("t", Some(0), None, Some(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("SASL OAUTHBEARER authentication failed")
            && text.contains("not a valid bearer token"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains("evil"), "{text}");
    assert_eq!(sim.core.stats().sasl_authentications, 0);
    assert!(
        !sim.transmitted
            .iter()
            .any(|r| r.2 == ApiKey::SaslAuthenticate.key()),
        "the token was sent"
    );
}

/// A broker refusing the token answers the client-first message with an
/// RFC 7628 error challenge (a JSON status), then fails the exchange once
/// it is acknowledged, here with a bare message: the authentication error
/// names the challenge's status and scope, the only account of why.
#[test]
fn an_oauth_error_challenge_is_named_in_the_error() {
    let provider = token_provider(
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.",
        Duration::from_secs(3600),
        Arc::default(),
    );
    let config = Config {
        max_block: Duration::from_secs(2),
        ..sasl_cfg(provider)
    };
    let mut sim = hostile_sim(config, server(&["OAUTHBEARER"]), |r| {
        if r.error_code == 0 {
            r.auth_bytes = bytes::Bytes::from_static(
                br#"{"status":"invalid_token","scope":"kafka produce","openid-configuration":"https://idp.example/.well-known/openid-configuration"}"#,
            );
        } else if r.error_code != 0 {
            r.error_message = Some("Authentication failed".into());
        }
    });
    let text = sim
        .send("t", Some(0), None, Some(b"x"))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("SASL OAUTHBEARER authentication failed")
            && text.contains("status invalid_token")
            && text.contains("scope kafka produce"),
        "{text}"
    );
    assert_eq!(sim.core.stats().sasl_authentications, 0);
}

/// KIP-48 delegation tokens: with `token_auth` the SCRAM client-first
/// message carries `tokenauth=true`, and the broker checks the token id
/// and HMAC against its delegation tokens (not its SCRAM users), for both
/// SCRAM mechanisms; the same credentials without the extension are
/// refused, as a token id is no user.
#[test]
fn scram_with_a_delegation_token_sends_tokenauth() {
    const HMAC: &str = "dG9rZW4taG1hYy1zZWNyZXQ=";
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        for token_auth in [true, false] {
            let config = Config {
                max_block: Duration::from_secs(2),
                ..sasl_cfg(SaslConfig {
                    token_auth,
                    ..SaslConfig::new(mechanism, "tokenid-1", HMAC)
                })
            };
            let server = alice().delegation_token("tokenid-1", HMAC);
            let mut sim = sasl_sim(config, server);
            let r = sim.send("t", Some(0), None, Some(b"x"));
            if token_auth {
                let h = r.expect("authenticated with the token");
                sim.drive_bounded(1000);
                h.try_result().expect("done").expect("delivered");
                assert_eq!(sim.core.stats().sasl_failures, 0);
            } else {
                let text = r.unwrap_err().to_string();
                assert!(text.contains("authentication failed"), "{text}");
                assert!(!text.contains(HMAC), "{text}");
            }
        }
    }
}

/// `token_auth` with a mechanism other than SCRAM is refused when the
/// producer is built.
#[test]
fn token_auth_needs_scram() {
    let config = Config {
        bootstrap: vec!["h:1".into()],
        ..sasl_cfg(SaslConfig {
            token_auth: true,
            ..SaslConfig::new(SaslMechanism::Plain, "tokenid-1", PASSWORD)
        })
    };
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("tokenauth=true") && e.contains("SCRAM"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
}

/// A broker granting a 1 ms session (KIP-368) does not make the core
/// re-authenticate in a loop (it did ~690 times a second, each SCRAM
/// exchange running PBKDF2 on the I/O thread): re-authentications are at
/// least a second apart, as a Kafka broker requires (a re-authentication
/// started within a second of the previous one is refused,
/// `KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`). Records still go
/// through.
#[test]
fn reauthentication_is_at_most_once_a_second() {
    let config = sasl_cfg(SaslConfig::new(SaslMechanism::Plain, "alice", PASSWORD));
    let mut sim = hostile_sim(config, alice(), |r| {
        if r.error_code == 0 {
            r.session_lifetime_ms = 1;
        }
    });
    let h = sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.run_for(Duration::from_millis(100));
    h.try_result().expect("done").expect("delivered");
    let authenticates = |sim: &Sim<Hostile>| {
        sim.transmitted
            .iter()
            .filter(|r| r.2 == ApiKey::SaslAuthenticate.key())
            .count()
    };
    let before = authenticates(&sim);
    let hs: Vec<_> = (0..10u8)
        .map(|i| {
            sim.run_for(Duration::from_secs(1));
            sim.send("t", Some(0), None, Some(&[i])).unwrap()
        })
        .collect();
    sim.run_for(Duration::from_millis(100));
    for h in &hs {
        h.try_result().expect("done").expect("delivered");
    }
    let n = authenticates(&sim) - before;
    assert!(
        (8..=12).contains(&n),
        "{n} SaslAuthenticate requests in 10 s"
    );
    assert_eq!(sim.core.stats().sasl_failures, 0);
}
