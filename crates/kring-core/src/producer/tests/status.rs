//! Every failed record says whether it may nevertheless be in the log
//! (`MessageStatus`, librdkafka's message status): not persisted when no
//! attempt can have been written, possibly persisted when one went
//! unanswered or was answered with an error raised after appending.

use super::*;
use crate::delivery::{DeliveryError, MessageStatus};
use crate::Config;
use kring_protocol::ErrorCode;

fn status(h: &crate::DeliveryHandle) -> (MessageStatus, DeliveryError) {
    let e = h.wait().expect_err("the record failed");
    (e.status(), e)
}

/// Never sent (no broker reachable until the delivery timeout).
#[test]
fn expired_in_the_accumulator_is_not_persisted() {
    let config = Config {
        delivery_timeout: ms(40_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    stop(&sim, 1);
    sim.disconnect_node(1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let (s, e) = status(&h);
    assert!(matches!(e, DeliveryError::Timeout { .. }), "{e}");
    assert_eq!(s, MessageStatus::NotPersisted, "{e}");
}

/// A non-retriable error on the only attempt.
#[test]
fn rejected_by_the_broker_is_not_persisted() {
    let mut sim = sim_with(cfg(), 1, 1);
    fail_produce(&sim, 0, ErrorCode::INVALID_RECORD, 1);
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    sim.drive();
    let (s, e) = status(&h);
    assert!(matches!(e, DeliveryError::Broker { code: 87, .. }), "{e}");
    assert_eq!(s, MessageStatus::NotPersisted, "{e}");
}

/// An error code this client does not know (a newer broker's): nothing
/// says it was raised before the append, so, like UNKNOWN_SERVER_ERROR
/// (the Java client reads an unknown code as that one), the record is
/// possibly persisted; librdkafka's default for an unknown code is
/// "permanent, possibly persisted" too. It fails at once (not retriable),
/// typed with its code, and the producer goes on.
#[test]
fn an_unknown_error_code_is_possibly_persisted() {
    for idempotence in [true, false] {
        let config = Config {
            enable_idempotence: idempotence,
            ..cfg()
        };
        let mut sim = sim_with(config, 1, 1);
        fail_produce(&sim, 0, ErrorCode(200), 1);
        let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
        sim.drive();
        let (s, e) = status(&h);
        assert!(matches!(e, DeliveryError::Broker { code: 200, .. }), "{e}");
        assert_eq!(
            s,
            MessageStatus::PossiblyPersisted,
            "idempotence {idempotence}: {e}"
        );
        let h2 = sim.send("t", Some(0), None, Some(b"z")).unwrap();
        sim.drive();
        assert_eq!(h2.wait().unwrap().offset, 0);
    }
}

/// Retries exhausted: on errors raised before the append, not persisted;
/// on REQUEST_TIMED_OUT (the leader appended, replication timed out),
/// possibly persisted.
#[test]
fn retries_exhausted_status_follows_the_errors_seen() {
    let config = Config {
        retries: 2,
        enable_idempotence: false,
        acks: crate::config::Acks::Leader,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 3);
    fail_produce(&sim, 1, ErrorCode::REQUEST_TIMED_OUT, 3);
    let h0 = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    let h1 = sim.send("t", Some(1), None, Some(b"x")).unwrap();
    sim.drive();
    let (s0, e0) = status(&h0);
    let (s1, e1) = status(&h1);
    assert!(matches!(e0, DeliveryError::RetriesExhausted { .. }), "{e0}");
    assert!(matches!(e1, DeliveryError::RetriesExhausted { .. }), "{e1}");
    assert_eq!(s0, MessageStatus::NotPersisted, "{e0}");
    assert_eq!(s1, MessageStatus::PossiblyPersisted, "{e1}");
}

/// The request went out and was never answered until the delivery
/// timeout: possibly persisted.
#[test]
fn timed_out_with_the_request_unanswered_is_possibly_persisted() {
    let config = Config {
        delivery_timeout: ms(40_000),
        request_timeout: ms(30_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    black_hole(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    let (s, e) = status(&h);
    assert!(matches!(e, DeliveryError::Timeout { .. }), "{e}");
    assert_eq!(s, MessageStatus::PossiblyPersisted, "{e}");
}

/// An earlier attempt went unanswered (request timeout), then the retry
/// is rejected for good: the record may be in the log, as far as the
/// producer can know.
#[test]
fn rejected_after_an_unanswered_attempt_is_possibly_persisted() {
    let mut sim = sim_with(cfg(), 1, 1);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    let hole = black_hole(&sim, 1);
    let (t0, closes) = (sim.now, sim.closes.len());
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    // request.timeout.ms (30 s) closes the connection; the batch waits
    // for a retry.
    sim.drive_until(10_000, |s| {
        s.closes.len() > closes && s.now > t0 + ms(29_000)
    });
    assert!(h.try_result().is_none(), "retried");
    heal(&sim, hole);
    fail_produce(&sim, 0, ErrorCode::INVALID_RECORD, 1);
    sim.drive();
    let (s, e) = status(&h);
    assert!(matches!(e, DeliveryError::Broker { code: 87, .. }), "{e}");
    assert_eq!(s, MessageStatus::PossiblyPersisted, "{e}");
}

/// abort: a record on the wire is possibly persisted, one still in the
/// accumulator is not.
#[test]
fn abort_tells_records_on_the_wire_from_queued_ones() {
    let config = Config {
        linger: ms(0),
        max_in_flight: 1,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    black_hole(&sim, 1);
    let on_wire = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(10));
    // Same leader, one request in flight: this one stays queued.
    let queued = sim.send("t", Some(1), None, Some(b"y")).unwrap();
    let now = sim.now;
    sim.core.abort(now, "test abort");
    let (s, e) = status(&on_wire);
    assert!(matches!(e, DeliveryError::Aborted { .. }), "{e}");
    assert_eq!(s, MessageStatus::PossiblyPersisted, "{e}");
    assert!(log(&sim, 1).is_empty());
    let (s, e) = status(&queued);
    assert!(matches!(e, DeliveryError::Aborted { .. }), "{e}");
    assert_eq!(s, MessageStatus::NotPersisted, "{e}");
}

/// abort: a batch waiting for a retry after a refusal raised before the
/// broker appends (NOT_ENOUGH_REPLICAS) is not on the wire, and stays not
/// persisted.
#[test]
fn abort_of_a_batch_waiting_for_a_retry_keeps_it_not_persisted() {
    let config = Config {
        retry_backoff: ms(60_000),
        retry_backoff_max: ms(60_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    learn_metadata(&mut sim);
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1000);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.run_for(ms(100));
    assert_eq!(sim.core.part((0, 0)).retry.len(), 1, "waits for a retry");
    let now = sim.now;
    sim.core.abort(now, "test abort");
    let (s, e) = status(&h);
    assert!(matches!(e, DeliveryError::Aborted { .. }), "{e}");
    assert_eq!(s, MessageStatus::NotPersisted, "{e}");
}
