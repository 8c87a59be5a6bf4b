//! How each error a Produce response can carry is classified (retried or
//! failed, with which status) and reported to the user.

use std::sync::{Arc, Mutex};

use super::*;
use crate::delivery::{DeliveryError, DeliveryReport, MessageStatus};
use crate::error::SendError;
use crate::Config;
use kring_mock::Fault;
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

/// A batch of three records refused with INVALID_RECORD naming record 1
/// (KIP-467 record errors, as a compacted topic refuses a record without
/// a key): the whole batch fails, as in the Java client, not persisted and
/// not retried; the named record's error carries its reason, the others
/// say they were refused with their batch, not why record 1 was; handles
/// and the callback agree.
#[test]
fn record_errors_reach_each_record() {
    let texts: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let t2 = texts.clone();
    let config = Config {
        on_delivery: Some(Arc::new(move |r: &DeliveryReport<'_>| {
            if let Err(e) = &r.result {
                t2.lock().unwrap().push((r.context, e.to_string()));
            }
        })),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let produced = sim
        .transmitted
        .iter()
        .filter(|r| r.2 == ApiKey::Produce.key())
        .count();
    sim.cluster.inject(
        Fault::error_with_records(
            ApiKey::Produce,
            ErrorCode::INVALID_RECORD,
            Some("One or more records have been rejected"),
            &[(1, Some("Compacted topic cannot accept message without key"))],
        )
        .on_partition("t", 0),
    );
    let hs: Vec<_> = (0..3u64)
        .map(|i| {
            sim.send_with_context("t", Some(0), None, Some(b"x"), i)
                .unwrap()
        })
        .collect();
    sim.drive();
    let sent = sim
        .transmitted
        .iter()
        .filter(|r| r.2 == ApiKey::Produce.key())
        .count();
    assert_eq!(sent - produced, 1, "one batch, not retried");
    let reason = "Compacted topic cannot accept message without key";
    let errs: Vec<DeliveryError> = hs.iter().map(|h| h.wait().unwrap_err()).collect();
    for e in &errs {
        assert_eq!(e.status(), MessageStatus::NotPersisted, "{e}");
        assert!(e.to_string().contains("INVALID_RECORD"), "{e}");
    }
    for (i, e) in errs.iter().enumerate() {
        match e {
            DeliveryError::InvalidRecords {
                code: 87,
                message: Some(m),
                record_error,
                invalid_records: 1,
                ..
            } => {
                assert_eq!(&**m, "One or more records have been rejected");
                assert_eq!(record_error.as_deref(), (i == 1).then_some(reason), "{i}");
            }
            other => panic!("record {i}: {other:?}"),
        }
    }
    let named = errs[1].to_string();
    assert!(named.contains(reason), "the named record says why: {named}");
    for i in [0, 2] {
        let e = errs[i].to_string();
        assert!(
            !e.contains(reason),
            "record {i} was not the invalid one: {e}"
        );
        assert!(e.contains("1 invalid record"), "record {i}: {e}");
    }
    let mut texts = texts.lock().unwrap().clone();
    texts.sort();
    let from_handles: Vec<(u64, String)> = errs
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u64, e.to_string()))
        .collect();
    assert_eq!(texts, from_handles, "the callback reports what handles do");
    assert!(log(&sim, 0).len() == 1, "nothing of the batch written");
}

/// Record errors without a message of their own take the batch's (else
/// the code's description), an index outside the batch is ignored, and
/// before Produce v8 (no record errors on the wire) the batch fails as a
/// plain broker refusal.
#[test]
fn record_errors_fall_back_to_the_batch_message() {
    for max_version in [None, Some(7)] {
        let mut sim = sim_with(cfg(), 1, 1);
        sim.cluster.set_max_version(ApiKey::Produce, max_version);
        sim.cluster.inject(
            Fault::error_with_records(
                ApiKey::Produce,
                ErrorCode::INVALID_TIMESTAMP,
                Some("timestamps out of range"),
                &[(0, None), (2, None), (7, Some("not in the batch"))],
            )
            .on_partition("t", 0),
        );
        let hs: Vec<_> = (0..3)
            .map(|_| sim.send("t", Some(0), None, Some(b"x")).unwrap())
            .collect();
        sim.drive();
        for (i, h) in hs.iter().enumerate() {
            let e = h.wait().unwrap_err();
            assert_eq!(e.status(), MessageStatus::NotPersisted, "{e}");
            match (max_version, &e) {
                (
                    None,
                    DeliveryError::InvalidRecords {
                        code: 32,
                        record_error,
                        invalid_records: 2,
                        ..
                    },
                ) => assert_eq!(
                    record_error.as_deref(),
                    (i != 1).then_some("timestamps out of range"),
                    "{i}"
                ),
                (Some(7), DeliveryError::Broker { code: 32, .. }) => {}
                _ => panic!("{max_version:?} record {i}: {e:?}"),
            }
        }
        assert!(log(&sim, 0).is_empty());
    }
}

/// KIP-219: a broker answering a Produce (v6+) with `throttle_time_ms`
/// mutes the connection that long. The Java client
/// (`NetworkClient.maybeThrottle`) sends the node nothing more until then;
/// a request sent meanwhile only waits in the muted channel, its
/// `request.timeout.ms` running. The record is delivered after the
/// throttle; the in-flight requests of other brokers are unaffected.
#[test]
fn a_throttled_broker_gets_no_produce_request_before_the_throttle_passed() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 2);
    for p in 0..2 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    // Partition 0 is led by broker 1, partition 1 by broker 2.
    sim.cluster
        .inject(Fault::throttle(ApiKey::Produce, ms(500)).on_broker(1));
    let h1 = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| h1.try_result().is_some());
    h1.wait().unwrap();
    let answered = sim.now;
    let to = |s: &MockSim, node: i32| {
        s.transmitted
            .iter()
            .filter(|r| r.1 == node && r.2 == ApiKey::Produce.key())
            .count()
    };
    let (n1, n2) = (to(&sim, 1), to(&sim, 2));
    let h2 = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    let other = sim.send("t", Some(1), None, Some(b"z")).unwrap();
    let (mut first1, mut first2) = (None, None);
    sim.drive_until(10_000, |s| {
        if first1.is_none() && to(s, 1) > n1 {
            first1 = Some(s.now);
        }
        if first2.is_none() && to(s, 2) > n2 {
            first2 = Some(s.now);
        }
        h2.try_result().is_some() && other.try_result().is_some()
    });
    assert_eq!(h2.wait().unwrap().offset, 2);
    assert_eq!(other.wait().unwrap().offset, 1);
    let first1 = first1.expect("sent to broker 1");
    assert!(
        first1 >= answered + ms(500),
        "sent {:?} after the throttled answer",
        first1 - answered
    );
    // And as soon as it passed: the throttle's end unmutes it.
    assert!(
        first1 < answered + ms(510),
        "sent {:?} after the throttled answer",
        first1 - answered
    );
    assert!(first2.expect("sent to broker 2") < answered + ms(10));
}

/// Whose throttle it is: before KIP-219 (Produce v5 and older) the broker
/// delays its answer itself, and the client sends on at once; from v6 on
/// the client keeps the throttle, also when the answer carries an error
/// (read by the general decoder, not the all-OK fast path): the retry
/// waits for the throttle (500 ms), not only for its backoff (100 ms).
#[test]
fn the_client_keeps_a_throttle_only_from_kip_219_on() {
    let produces = |s: &MockSim| {
        s.transmitted
            .iter()
            .filter(|r| r.2 == ApiKey::Produce.key())
            .count()
    };
    for (max_version, error) in [(Some(5), false), (None, true)] {
        let config = Config {
            linger: ms(0),
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        if let Some(v) = max_version {
            sim.cluster.set_max_version(ApiKey::Produce, Some(v));
        }
        learn_metadata(&mut sim);
        sim.cluster
            .inject(Fault::throttle(ApiKey::Produce, ms(500)).times(1));
        if error {
            fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
        }
        let n0 = produces(&sim);
        let h1 = sim.send("t", Some(0), None, Some(b"x")).unwrap();
        sim.drive_until(10_000, |s| produces(s) > n0);
        let first = sim.now;
        let mut next = None;
        if error {
            // The retry.
            sim.drive_until(10_000, |s| {
                if next.is_none() && produces(s) > n0 + 1 {
                    next = Some(s.now);
                }
                h1.try_result().is_some()
            });
            let after = next.expect("retried") - first;
            assert!(
                after >= ms(500),
                "retried {after:?} after the first request"
            );
        } else {
            sim.drive_until(10_000, |_| h1.try_result().is_some());
            let answered = sim.now;
            let h2 = sim.send("t", Some(0), None, Some(b"y")).unwrap();
            sim.drive_until(10_000, |s| {
                if next.is_none() && produces(s) > n0 + 1 {
                    next = Some(s.now);
                }
                h2.try_result().is_some()
            });
            let after = next.expect("sent") - answered;
            assert!(after < ms(10), "sent {after:?} after the throttled answer");
            h2.wait().unwrap();
        }
        h1.wait().unwrap();
    }
}

/// One request, three partitions, three answers: the accepted partition
/// completes at once, the retriable error is retried alone, the refused
/// one fails alone; each record has exactly one result.
#[test]
fn errors_on_some_partitions_of_a_request_touch_only_those() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 3);
    for p in 0..3 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    let produced = |s: &MockSim| {
        s.transmitted
            .iter()
            .filter(|r| r.2 == ApiKey::Produce.key())
            .count()
    };
    let n0 = produced(&sim);
    fail_produce(&sim, 1, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    fail_produce(&sim, 2, ErrorCode::TOPIC_AUTHORIZATION_FAILED, 1);
    let hs: Vec<_> = (0..3)
        .map(|p| sim.send("t", Some(p), None, Some(b"x")).unwrap())
        .collect();
    sim.drive();
    assert_eq!(produced(&sim) - n0, 2, "one request, then the retry");
    assert_eq!(hs[0].wait().unwrap().offset, 1);
    assert_eq!(hs[1].wait().unwrap().offset, 1);
    assert!(matches!(
        hs[2].wait(),
        Err(DeliveryError::Broker { code: 29, .. })
    ));
    assert_eq!(
        (log(&sim, 0).len(), log(&sim, 1).len(), log(&sim, 2).len()),
        (2, 2, 1)
    );
}

/// A retriable error the broker explains (its `error_message`), until the
/// retries run out: `RetriesExhausted` keeps the last attempt's message
/// and shows it, as `Broker` does for a non-retriable error.
#[test]
fn retries_exhausted_keeps_the_brokers_message() {
    let config = Config {
        retries: 2,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.cluster.inject(
        Fault::error_with_records(
            ApiKey::Produce,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            Some("only 1 of 3 replicas in sync"),
            &[],
        )
        .on_partition("t", 0)
        .times(2),
    );
    // The last attempt's message, not an earlier one's.
    sim.cluster.inject(
        Fault::error_with_records(
            ApiKey::Produce,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            Some("only 2 of 3 replicas in sync"),
            &[],
        )
        .on_partition("t", 0)
        .times(3),
    );
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let e = h.wait().unwrap_err();
    assert!(matches!(e, DeliveryError::RetriesExhausted { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("NOT_ENOUGH_REPLICAS") && text.contains(": only 2 of 3 replicas in sync"),
        "{text}"
    );
    assert!(!text.contains("only 1"), "{text}");
}

/// The same error until the delivery timeout: the timeout's last error
/// carries the broker's message.
#[test]
fn timeout_last_error_keeps_the_brokers_message() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.cluster.inject(
        Fault::error_with_records(
            ApiKey::Produce,
            ErrorCode::NOT_ENOUGH_REPLICAS,
            Some("only 1 of 3 replicas in sync"),
            &[],
        )
        .on_partition("t", 0)
        .always(),
    );
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let e = h.wait().unwrap_err();
    let DeliveryError::Timeout { last_error, .. } = &e else {
        panic!("{e:?}");
    };
    let last = last_error.as_ref().expect("a last error").to_string();
    assert!(
        last.contains("NOT_ENOUGH_REPLICAS") && last.contains("only 1 of 3 replicas in sync"),
        "{last}"
    );
    assert!(
        e.to_string().contains("only 1 of 3 replicas in sync"),
        "{e}"
    );
}

/// A record that waits out its delivery timeout for a leader that went
/// down names the leader's connection failure, even while another
/// broker's connection is up.
#[test]
fn timeout_last_error_names_the_leaders_connection_failure() {
    let mut sim = sim_with(cfg(), 2, 2);
    for p in 0..2 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    stop(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000_000, |_| h.try_result().is_some());
    let e = h.wait().unwrap_err();
    let DeliveryError::Timeout { last_error, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(
        matches!(
            last_error,
            Some(crate::LastError::Connect { .. } | crate::LastError::Disconnected { .. })
        ),
        "{last_error:?}"
    );
}

/// A batch the sender takes only after it waited past
/// `delivery.timeout.ms` fails with the accumulator's timeout, unsent,
/// exactly once: the turn's timers ran before the deadline (the linger
/// expired, the delivery timer not yet), its requests are built after it.
/// Both ways a batch leaves the accumulator: a lingered open batch the
/// sender seals as it takes it, and a batch sealed before (by a flush).
#[test]
fn a_batch_taken_past_its_delivery_timeout_fails_unsent() {
    for sealed_by_flush in [false, true] {
        let mut sim = sim_with(cfg(), 1, 1);
        sim.send("t", Some(0), None, Some(b"w")).unwrap();
        sim.drive();
        let sent = sim.core.stats().batches_sent;
        let h = sim.send("t", Some(0), None, Some(b"late")).unwrap();
        let flush = sealed_by_flush.then(|| sim.flush());
        let t0 = sim.now;
        sim.core.handle_wakeup(t0);
        // The linger ends: the partition is ready, its batch still open
        // (or sealed by the flush).
        sim.core.handle_timeout(t0 + cfg().linger);
        let late = t0 + cfg().delivery_timeout;
        assert!(
            sim.core.poll_transmit(late).is_none(),
            "flush {sealed_by_flush}: nothing to send"
        );
        match h.try_result() {
            Some(Err(DeliveryError::Timeout { stage, status, .. })) => {
                assert_eq!(stage, "in the accumulator");
                assert_eq!(status, MessageStatus::NotPersisted);
            }
            other => panic!("flush {sealed_by_flush}: {other:?}"),
        }
        assert_eq!(sim.core.stats().batches_sent, sent);
        sim.now = late;
        sim.drive();
        if let Some(f) = flush {
            assert!(f.is_done());
        }
        assert_eq!(log(&sim, 0).len(), 1, "only the first record is written");
        assert_eq!(sim.core.pending_batches(), 0);
        assert_eq!(sim.shared.buffered_bytes(), 0);
    }
}

/// The broker error code a delivery error carries, if it is one.
fn code_of(e: &DeliveryError) -> Option<i16> {
    match e {
        DeliveryError::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

/// The errors that end an idempotent producer (the Java client's
/// `TransactionManager.maybeTransitionToErrorState`).
const FATAL_TO_IDEMPOTENCE: [ErrorCode; 4] = [
    ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    ErrorCode::PRODUCER_FENCED,
    ErrorCode::UNSUPPORTED_VERSION,
];

/// An idempotent producer's batch answered with one of the errors above:
/// that batch fails with it, not persisted; a batch of another partition
/// in the same request keeps the fate its own answer gives (written); a
/// batch lingering in the accumulator (10 s linger) fails at once with
/// the same error, not at its linger; and every later send is refused at
/// once, as the Java client's `failIfNotReadyForSend` refuses it.
#[test]
fn a_fatal_produce_error_ends_the_idempotent_producer() {
    for code in FATAL_TO_IDEMPOTENCE {
        let config = Config {
            linger: ms(10_000),
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 3);
        let warm: Vec<_> = (0..3)
            .map(|p| sim.send("t", Some(p), None, Some(b"w")).unwrap())
            .collect();
        sim.flush();
        sim.drive();
        for h in &warm {
            h.wait().unwrap();
        }
        fail_produce(&sim, 0, code, 1);
        let a = sim.send("t", Some(0), None, Some(b"a")).unwrap();
        let b = sim.send("t", Some(1), None, Some(b"b")).unwrap();
        sim.flush();
        sim.settle(); // a and b on the wire, in one request
        let c = sim.send("t", Some(2), None, Some(b"c")).unwrap();
        sim.run_for(ms(100));
        match a.try_result() {
            Some(Err(e @ DeliveryError::Broker { .. })) => {
                assert_eq!(code_of(&e), Some(code.code()), "{code:?}");
                assert_eq!(e.status(), MessageStatus::NotPersisted, "{code:?}");
            }
            other => panic!("{code:?}: the refused batch: {other:?}"),
        }
        assert_eq!(b.try_result().map(|r| r.map(|m| m.offset)), Some(Ok(1)));
        match c.try_result() {
            Some(Err(e)) => {
                assert_eq!(code_of(&e), Some(code.code()), "{code:?}: {e}");
                assert_eq!(e.status(), MessageStatus::NotPersisted, "{code:?}");
            }
            other => panic!("{code:?}: the lingering batch after 100 ms: {other:?}"),
        }
        match sim.send("t", Some(1), None, Some(b"later")) {
            Err(SendError::Fatal(e)) => assert_eq!(code_of(&e), Some(code.code())),
            other => panic!("{code:?}: a later send: {other:?}"),
        }
        assert_eq!(sim.shared.buffered_bytes(), 0);
        assert_eq!(log(&sim, 0).len(), 1, "{code:?}");
        assert_eq!(log(&sim, 1).len(), 2, "{code:?}");
        assert_eq!(log(&sim, 2).len(), 1, "{code:?}");
        // Close still completes: every record has its result.
        let done = sim.close();
        sim.drive_until(10_000, |s| s.core.is_finished());
        assert!(done.is_done());
    }
}

/// Without idempotence the same errors fail only their batch (as in the
/// Java client, which has no transaction manager then): later sends go on.
#[test]
fn without_idempotence_those_errors_fail_only_their_batch() {
    for code in FATAL_TO_IDEMPOTENCE {
        let config = Config {
            enable_idempotence: false,
            acks: crate::config::Acks::All,
            linger: ms(0),
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        sim.send("t", Some(0), None, Some(b"w")).unwrap();
        sim.drive();
        fail_produce(&sim, 0, code, 1);
        let a = sim.send("t", Some(0), None, Some(b"a")).unwrap();
        sim.drive();
        assert_eq!(code_of(&a.wait().unwrap_err()), Some(code.code()));
        let b = sim.send("t", Some(0), None, Some(b"b")).unwrap();
        sim.drive();
        assert_eq!(b.wait().unwrap().offset, 1, "{code:?}");
    }
}

/// A throttle holds every request to the throttled connection, not only
/// Produce (the Java client's `NetworkClient`: a throttled node is not
/// ready, `canSendRequest` false): a metadata refresh wanted meanwhile
/// waits for the throttle to pass when no other connection is ready.
#[test]
fn a_throttled_connection_gets_no_metadata_request_before_the_throttle_passed() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.cluster
        .inject(Fault::throttle(ApiKey::Produce, ms(1_000)).times(1));
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    h.wait().unwrap();
    let answered = sim.now;
    let sent = sim.transmitted.len();
    // A topic nobody asked for yet: the core wants metadata now.
    want_metadata(&sim);
    let mut first = None;
    sim.drive_until(10_000, |s| {
        if first.is_none()
            && s.transmitted[sent..]
                .iter()
                .any(|r| r.2 == ApiKey::Metadata.key())
        {
            first = Some(s.now);
        }
        first.is_some()
    });
    let first = first.unwrap();
    assert!(
        first >= answered + ms(1_000),
        "metadata sent {:?} after the throttled answer",
        first - answered
    );
}

/// Makes the core want metadata now: a non-blocking send to a topic
/// nobody asked for yet.
fn want_metadata(sim: &MockSim) {
    let rec = crate::RecordRef {
        topic: "u",
        ..record_ref(0, b"u")
    };
    let refused = sim.shared.try_produce_now(sim.now, rec);
    assert!(
        matches!(refused, Err(SendError::NoMetadataYet { .. })),
        "{refused:?}"
    );
}

/// With another broker's connection ready, a metadata refresh wanted
/// while broker 1's connection is throttled goes there at once (the Java
/// client's `leastLoadedNode` skips a throttled node).
#[test]
fn a_metadata_refresh_skips_a_throttled_connection() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 2);
    for p in 0..2 {
        sim.send("t", Some(p), None, Some(b"w")).unwrap();
    }
    sim.drive();
    // Partition 0 is led by broker 1.
    sim.cluster.inject(
        Fault::throttle(ApiKey::Produce, ms(1_000))
            .on_broker(1)
            .times(1),
    );
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    h.wait().unwrap();
    let answered = sim.now;
    let sent = sim.transmitted.len();
    want_metadata(&sim);
    sim.drive_until(10_000, |s| {
        s.transmitted[sent..]
            .iter()
            .any(|r| r.2 == ApiKey::Metadata.key())
    });
    assert!(sim.now < answered + ms(10), "{:?}", sim.now - answered);
    let to: Vec<i32> = sim.transmitted[sent..]
        .iter()
        .filter(|r| r.2 == ApiKey::Metadata.key())
        .map(|r| r.1)
        .collect();
    assert_eq!(to, [2], "metadata requests by broker");
}

/// A Metadata answer (v6+) carrying `throttle_time_ms` mutes its
/// connection as a Produce answer does (KIP-219, the Java client's
/// `maybeThrottle` for every response): a record sent meanwhile waits for
/// the throttle to pass before its produce request is written.
#[test]
fn a_throttled_metadata_answer_holds_produce_requests_too() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.cluster
        .inject(Fault::throttle(ApiKey::Metadata, ms(1_000)).times(1));
    let sent = sim.transmitted.len();
    want_metadata(&sim);
    let metadata = |s: &MockSim| {
        s.transmitted[sent..]
            .iter()
            .any(|r| r.2 == ApiKey::Metadata.key())
    };
    sim.drive_until(10_000, metadata);
    sim.run_for(ms(5)); // answered, throttled
    let answered = sim.now;
    let sent = sim.transmitted.len();
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    let mut first = None;
    sim.drive_until(10_000, |s| {
        if first.is_none()
            && s.transmitted[sent..]
                .iter()
                .any(|r| r.2 == ApiKey::Produce.key())
        {
            first = Some(s.now);
        }
        h.try_result().is_some()
    });
    assert_eq!(h.wait().unwrap().offset, 1);
    let first = first.expect("sent");
    assert!(
        first >= answered + ms(990),
        "produce sent {:?} after the throttled metadata answer",
        first - answered
    );
}

/// `n` partitions of `t`, partition `p` holding `10 p` records, so the
/// next record of each lands at a different offset; linger long enough
/// for one record per partition to share a request.
fn partitions_at_different_offsets(n: u32) -> MockSim {
    let config = Config {
        linger: ms(20),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, n);
    for p in 1..n as i32 {
        for i in 0..10 * p {
            sim.send("t", Some(p), None, Some(&[i as u8])).unwrap();
        }
    }
    sim.drive();
    sim
}

/// Sends one record to each of the `n` partitions (one request) and
/// checks each handle's offset against where its value is in the log.
fn one_record_each_lands_where_its_handle_says(sim: &mut MockSim, n: i32) {
    let hs: Vec<_> = (0..n)
        .map(|p| sim.send("t", Some(p), None, Some(b"probe")).unwrap())
        .collect();
    sim.drive();
    for (p, h) in hs.iter().enumerate() {
        let md = h.wait().expect("delivered");
        assert_eq!(md.partition, p as i32);
        let log = log(sim, p as i32);
        assert_eq!(
            log.iter()
                .filter(|r| r.value.as_deref() == Some(b"probe"))
                .count(),
            1,
            "partition {p}: stored once"
        );
        assert_eq!(
            log[md.offset as usize].value.as_deref(),
            Some(&b"probe"[..]),
            "partition {p}: the handle's offset {} is the record's",
            md.offset
        );
    }
}

/// A broker answering the partitions of a request in another order than
/// it listed them: each answer is matched to its batch by topic and
/// partition, so every record gets its own partition's offset.
#[test]
fn partitions_answered_in_another_order_get_their_own_offsets() {
    let mut sim = partitions_at_different_offsets(2);
    let requests_before = requests(&sim, ApiKey::Produce);
    sim.cluster
        .inject(Fault::lie(ApiKey::Produce, kring_mock::Lie::ReversePartitions).always());
    one_record_each_lands_where_its_handle_says(&mut sim, 2);
    assert_eq!(
        requests(&sim, ApiKey::Produce) - requests_before,
        1,
        "one request"
    );
}

/// A broker leaving a partition (the request's last) out of its answer,
/// though it applied the batch: that batch is of unknown fate and
/// retried, recognised as a duplicate, and its record is reported once,
/// at the offset it has; no record is left without a result.
#[test]
fn a_partition_left_out_of_the_answer_is_retried_and_reported_once() {
    let mut sim = partitions_at_different_offsets(3);
    let requests_before = requests(&sim, ApiKey::Produce);
    sim.cluster.inject(
        Fault::lie(ApiKey::Produce, kring_mock::Lie::OmitPartition)
            .on_partition("t", 2)
            .times(1),
    );
    one_record_each_lands_where_its_handle_says(&mut sim, 3);
    assert_eq!(
        requests(&sim, ApiKey::Produce) - requests_before,
        2,
        "one retry"
    );
    assert_eq!(sim.core.stats().retries, 1);
}
