//! Point 6: the idempotent producer — producer id, sequences, order across
//! retries with 5 requests in flight, duplicates, unknown producer, gaps.

use super::*;
use crate::Config;
use kring_mock::{Fault, Lie, UnknownProducerPolicy};
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

/// Values in the log of partition 0, as u32s.
fn values(sim: &MockSim) -> Vec<u32> {
    log(sim, 0)
        .iter()
        .map(|r| u32::from_be_bytes(r.value.as_deref().unwrap()[..4].try_into().unwrap()))
        .collect()
}

fn pipelined() -> Config {
    Config {
        linger: ms(0),
        batch_size: 100,
        ..cfg()
    }
}

/// Sends `n` numbered records to partition 0 in separate batches.
fn send_numbered(sim: &mut MockSim, range: std::ops::Range<u32>) -> Vec<crate::DeliveryHandle> {
    range
        .map(|i| {
            let mut v = i.to_be_bytes().to_vec();
            v.resize(60, 0); // one record per 100-byte batch
            sim.send("t", Some(0), None, Some(&v)).unwrap()
        })
        .collect()
}

/// Record 0 sent and acknowledged, then the next `times` Produce requests
/// for partition 0 answered with `code`.
fn one_acknowledged_then_failing(sim: &mut MockSim, code: ErrorCode, times: u32) {
    let w = send_numbered(sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    fail_produce(sim, 0, code, times);
}

/// Records 1 and 2 sent in batches of their own, delivered, and the
/// partition's log is records 0, 1 and 2 in order.
fn records_1_and_2_delivered_in_order(sim: &mut MockSim) {
    let hs = send_numbered(sim, 1..3);
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    assert_eq!(values(sim), vec![0, 1, 2]);
}

#[test]
fn init_producer_id_comes_first_and_sequences_grow() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let hs = send_numbered(&mut sim, 0..10);
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    // What the core sent, in order (to its only broker).
    let keys: Vec<i16> = sim.transmitted.iter().map(|r| r.2).collect();
    let pid_at = keys
        .iter()
        .position(|&k| k == ApiKey::InitProducerId.key())
        .unwrap();
    let produce_at = keys
        .iter()
        .position(|&k| k == ApiKey::Produce.key())
        .unwrap();
    assert!(pid_at < produce_at);
    let seqs: Vec<i32> = log(&sim, 0).iter().map(|r| r.base_sequence).collect();
    assert_eq!(seqs, (0..10).collect::<Vec<i32>>());
    assert_eq!(values(&sim), (0..10).collect::<Vec<u32>>());
}

/// The first of several in-flight batches fails; the broker then rejects
/// the later ones as out of order; everything is retried in sequence order
/// and lands exactly once, in order.
#[test]
fn order_is_kept_across_retries_with_five_in_flight() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    slow(&sim, 1, ms(10));
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    let hs = send_numbered(&mut sim, 1..21);
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, 1 + i as i64);
    }
    assert_eq!(values(&sim), (0..21).collect::<Vec<u32>>());
    assert!(
        sim.core.stats().retries >= 5,
        "later in-flight batches were retried too"
    );
}

/// A response is lost after the write: the retry is a duplicate, which the
/// broker recognises; the record is stored once.
#[test]
fn lost_response_retry_is_deduplicated() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    sim.cluster
        .inject(Fault::drop_after_apply(ApiKey::Produce).on_broker(1));
    let hs = send_numbered(&mut sim, 1..4);
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, 1 + i as i64);
    }
    assert_eq!(values(&sim), vec![0, 1, 2, 3]);
}

#[test]
fn duplicate_sequence_number_counts_as_success() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::DUPLICATE_SEQUENCE_NUMBER, 1);
    let hs = send_numbered(&mut sim, 1..2);
    sim.drive();
    let md = hs[0].wait().expect("success");
    assert_eq!(
        md.offset, -1,
        "the broker gave no offset with the duplicate"
    );
    assert_eq!(sim.core.stats().retries, 0);
}

/// The broker lost the producer's state (log truncated): the batch gets
/// UNKNOWN_PRODUCER_ID; the producer bumps its epoch, restarts the
/// sequence at 0 and the batch lands.
#[test]
fn unknown_producer_id_bumps_the_epoch() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let w = send_numbered(&mut sim, 0..3);
    sim.drive();
    for h in w {
        h.wait().unwrap();
    }
    sim.cluster.forget_producers("t", 0).unwrap();
    let hs = send_numbered(&mut sim, 3..6);
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    assert_eq!(values(&sim), (0..6).collect::<Vec<u32>>());
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    assert_eq!(sim.core.statistics(sim.now).totals.epoch_bumps, 1);
    let last = log(&sim, 0).last().unwrap().producer_epoch;
    assert_eq!(last, 1, "epoch bumped");
    assert_eq!(log(&sim, 0)[3].base_sequence, 0, "sequence restarted");
}

/// UNKNOWN_PRODUCER_ID without a log start offset (-1: a broker that
/// cannot say whether it lost the producer's state, KIP-360) is retried
/// as it is, under the same epoch and sequence, as the Java client does.
#[test]
fn unknown_producer_id_without_a_log_start_offset_is_retried_as_is() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::UNKNOWN_PRODUCER_ID, 1);
    records_1_and_2_delivered_in_order(&mut sim);
    assert_eq!(sim.core.stats().epoch_bumps, 0);
    assert!(sim.core.stats().retries >= 1);
    assert!(log(&sim, 0).iter().all(|r| r.producer_epoch == 0));
}

/// A batch fails for good after being sent: sequences after it would be
/// rejected as out of order, so the epoch is bumped and later batches
/// start again at 0.
#[test]
fn a_fatal_batch_error_bumps_the_epoch_and_later_batches_continue() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let hs = send_numbered(&mut sim, 1..5);
    sim.drive();
    assert!(hs[0].wait().is_err());
    for h in &hs[1..] {
        h.wait().unwrap();
    }
    assert_eq!(values(&sim), vec![0, 2, 3, 4]);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    assert_eq!(
        (sim.core.stats().batches_ok, sim.core.stats().batches_failed),
        (4, 1)
    );
}

/// A real gap (the broker says OUT_OF_ORDER_SEQUENCE_NUMBER for the batch
/// right after the last acknowledged one, and again once nothing else of
/// the partition is in flight): the epoch is bumped and the batch is
/// retried.
#[test]
fn out_of_order_for_the_next_batch_bumps_the_epoch() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, 3);
    records_1_and_2_delivered_in_order(&mut sim);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
}

/// The same error once, while the next batch is in flight: the core waits
/// for that batch's answer before deciding, and the retry is accepted under
/// the same epoch (the Java client would bump at once).
#[test]
fn a_transient_out_of_order_with_batches_in_flight_does_not_bump() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, 1);
    records_1_and_2_delivered_in_order(&mut sim);
    assert_eq!(sim.core.stats().epoch_bumps, 0);
}

/// After an epoch bump the partition's sequence state follows the new
/// epoch's batches: a transient OUT_OF_ORDER_SEQUENCE_NUMBER then is
/// decided as it is before any bump, with no second bump.
#[test]
fn after_a_bump_a_transient_out_of_order_does_not_bump_again() {
    let mut sim = sim_with(pipelined(), 1, 1);
    one_acknowledged_then_failing(&mut sim, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let hs = send_numbered(&mut sim, 1..3);
    sim.drive();
    assert!(hs[0].wait().is_err());
    hs[1].wait().unwrap();
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    let epoch = log(&sim, 0).last().expect("stored").producer_epoch;
    assert!(epoch > 0, "the new epoch's batches are stored");

    fail_produce(&sim, 0, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, 1);
    let hs = send_numbered(&mut sim, 3..5);
    sim.drive();
    for h in &hs {
        h.wait().unwrap();
    }
    assert_eq!(values(&sim), vec![0, 2, 3, 4]);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    assert!(log(&sim, 0)
        .iter()
        .skip(1)
        .all(|r| r.producer_epoch == epoch));
}

/// A broker answering InitProducerId with success but no producer id
/// (-1) has given the producer nothing to send with: it asks again after
/// a backoff, and its records go out under the id it then gets, never
/// unsequenced.
#[test]
fn init_producer_id_answered_without_an_id_is_asked_again() {
    let mut sim = sim_with(pipelined(), 1, 1);
    sim.cluster
        .inject(Fault::lie(ApiKey::InitProducerId, Lie::ProducerId(-1)).times(2));
    let hs = send_numbered(&mut sim, 0..3);
    sim.drive();
    for h in &hs {
        h.wait().expect("delivered");
    }
    assert_eq!(requests(&sim, ApiKey::InitProducerId), 3);
    let log = log(&sim, 0);
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|r| r.producer_id >= 0 && r.base_sequence >= 0),
        "sent under a producer id: {:?}",
        log.iter()
            .map(|r| (r.producer_id, r.base_sequence))
            .collect::<Vec<_>>()
    );
}

/// A broker that does not serve InitProducerId at all (not advertised in
/// ApiVersions) cannot give an idempotent producer an id: its records
/// fail at once with UNSUPPORTED_VERSION, saying to disable idempotence,
/// rather than waiting out their delivery timeout while the producer
/// asks in a version the broker does not speak.
#[test]
fn a_broker_without_init_producer_id_fails_an_idempotent_producer_at_once() {
    use crate::delivery::DeliveryError;
    let mut sim = sim_with(pipelined(), 1, 1);
    sim.cluster
        .set_max_version(ApiKey::InitProducerId, Some(-1));
    let t0 = sim.now;
    // The producer is failed by the time the send's metadata came (the
    // blocking send drives the sim), or soon after.
    let e = match sim.send("t", Some(0), None, Some(b"x")) {
        Err(crate::error::SendError::Fatal(e)) => e,
        Err(e) => panic!("{e:?}"),
        Ok(h) => {
            sim.drive_until(100_000, |_| h.try_result().is_some());
            h.wait().unwrap_err()
        }
    };
    assert!(
        matches!(e, DeliveryError::Broker { code, .. } if code == ErrorCode::UNSUPPORTED_VERSION.code()),
        "{e:?}"
    );
    assert!(e.to_string().contains("disable idempotence"), "{e}");
    assert!(sim.now - t0 < ms(100), "{:?}", sim.now - t0);
    assert_eq!(requests(&sim, ApiKey::InitProducerId), 0);
    assert!(log(&sim, 0).is_empty());
}

/// InitProducerId refused with a retriable error is asked again after
/// `retry.backoff.ms`, the wait growing with each failure as a produce
/// retry's does (100 ms, then about 200, then about 400, each ±20 %).
#[test]
fn init_producer_id_retries_back_off_exponentially() {
    let mut sim = sim_with(pipelined(), 1, 1);
    sim.cluster.inject(
        Fault::error(
            ApiKey::InitProducerId,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        )
        .times(3),
    );
    let h = send_numbered(&mut sim, 0..1);
    let mut at = Vec::new();
    let mut seen = 0;
    for _ in 0..2_000 {
        let n = requests(&sim, ApiKey::InitProducerId);
        if n > seen {
            seen = n;
            at.push(sim.now);
        }
        if seen == 4 {
            break;
        }
        sim.run_for(ms(1));
    }
    assert_eq!(at.len(), 4, "four InitProducerId requests within 2 s");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= ms(80) && gaps[0] <= ms(121), "{gaps:?}");
    assert!(gaps[1] >= ms(160) && gaps[1] <= ms(241), "{gaps:?}");
    assert!(gaps[2] >= ms(320) && gaps[2] <= ms(481), "{gaps:?}");
    sim.drive();
    h[0].wait().expect("delivered once the producer id came");
}

/// A batch whose first attempt went unanswered (the connection closed
/// before the broker applied it) is of unknown fate; its retry answered
/// OUT_OF_ORDER_SEQUENCE_NUMBER, with no batch of the partition after it,
/// proves it absent (had it been written, the broker would remember it
/// and answer DUPLICATE_SEQUENCE_NUMBER). It is then an ordinary gap: the
/// epoch is bumped and the batch rewritten, and it is delivered once.
#[test]
fn out_of_order_proves_a_batch_of_unknown_fate_absent() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    sim.cluster
        .inject(Fault::drop_before_apply(ApiKey::Produce).times(1));
    fail_produce(&sim, 0, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, 2);
    let hs = send_numbered(&mut sim, 1..2);
    sim.drive();
    let md = hs[0].wait().expect("delivered");
    assert_eq!(values(&sim), vec![0, 1]);
    assert_eq!(md.offset, 1);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    let log = log(&sim, 0);
    assert_eq!(
        (log[1].producer_epoch, log[1].base_sequence),
        (log[0].producer_epoch + 1, 0),
        "rewritten under the next epoch"
    );
}

/// A batch that expired after being sent (every attempt swallowed by a
/// hung broker, so never written) leaves its partition's sequences
/// unresolved: the acknowledged sequences do not reach the next one, so
/// the epoch is bumped before the next batch goes out, and that batch is
/// accepted at its first attempt under the new epoch (not sent into a
/// gap and refused as out of order first).
#[test]
fn a_batch_expired_after_sending_leaves_a_gap_that_a_bump_closes_first() {
    let config = Config {
        request_timeout: ms(100),
        delivery_timeout: ms(300),
        ..pipelined()
    };
    let mut sim = sim_with(config, 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    sim.cluster.inject(Fault::swallow(ApiKey::Produce).times(5));
    let a = send_numbered(&mut sim, 1..2);
    sim.drive_until(100_000, |_| a[0].try_result().is_some());
    match a[0].wait() {
        Err(e @ crate::DeliveryError::Timeout { .. }) => {
            assert_eq!(e.status(), crate::MessageStatus::PossiblyPersisted, "{e}")
        }
        other => panic!("expected a delivery timeout: {other:?}"),
    }
    sim.cluster.clear_faults();
    let (produces, retries) = (requests(&sim, ApiKey::Produce), sim.core.stats().retries);
    let b = send_numbered(&mut sim, 2..3);
    sim.drive();
    b[0].wait().expect("delivered");
    assert_eq!(values(&sim), vec![0, 2]);
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    assert_eq!(
        (
            requests(&sim, ApiKey::Produce) - produces,
            sim.core.stats().retries - retries
        ),
        (1, 0),
        "the next batch went out once, under the new epoch"
    );
}

/// Retried batches of different partitions do not block each other.
#[test]
fn partitions_retry_independently() {
    let config = Config {
        linger: ms(0),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 3);
    let t0 = sim.now;
    let h0 = sim.send("t", Some(0), None, Some(b"a")).unwrap();
    let h1 = sim.send("t", Some(1), None, Some(b"b")).unwrap();
    sim.drive_until(1000, |_| h1.try_result().is_some());
    assert!(
        sim.now - t0 < ms(20),
        "partition 1 did not wait for 0's backoff"
    );
    assert!(h0.try_result().is_none());
    sim.drive();
    h0.wait().unwrap();
}

/// The duplicate at a producer's start, in the MockSim: a broker that
/// accepts any first sequence from an unknown producer (Kafka 2.5+), the
/// first batch refused (NOT_ENOUGH_REPLICAS), the connection dropped after
/// the next request is written. Before, the second batch went out behind
/// the first, landed first, and the retried first batch got
/// OUT_OF_ORDER_SEQUENCE_NUMBER; the epoch was bumped and every batch re-sent
/// from sequence 0 — the second batch was stored twice. Now a partition
/// sends one batch at a time until the broker acknowledged one of the
/// epoch: every record lands once, in order.
#[test]
fn refused_first_batch_at_start_keeps_order_and_duplicates_nothing() {
    let accept = cluster(1, 1).unknown_producer_policy(UnknownProducerPolicy::Accept);
    let mut sim = sim_on(pipelined(), accept);
    slow(&sim, 1, ms(5));
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    let mut hs = send_numbered(&mut sim, 0..1);
    sim.drive_until(1_000, |s| requests(s, ApiKey::Produce) == 1);
    sim.cluster
        .inject(Fault::drop_after_apply(ApiKey::Produce).on_broker(1));
    hs.extend(send_numbered(&mut sim, 1..5));
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, i as i64);
    }
    assert_eq!(values(&sim), vec![0, 1, 2, 3, 4]);
}

/// The same mid-stream, after the broker lost the producer's state (so it
/// accepts any sequence again, KIP-360): the batch after the refused one
/// lands, its answer is lost with the connection, the three behind it
/// vanish; the refused batch's retry gets OUT_OF_ORDER_SEQUENCE_NUMBER.
/// Before, the epoch was bumped and all five re-sent from sequence 0 — the
/// landed batch was stored twice, out of order. Now the batches of unknown
/// fate are re-sent with their own sequences first (the landed one is a
/// duplicate), and the refused batch, which can no longer be written in
/// order, fails at once as not persisted.
#[test]
fn lost_answer_behind_a_refused_batch_is_not_rewritten() {
    let accept = cluster(1, 1).unknown_producer_policy(UnknownProducerPolicy::Accept);
    let mut sim = sim_on(pipelined(), accept);
    slow(&sim, 1, ms(5));
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    sim.cluster.forget_producers("t", 0).unwrap();
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    let mut hs = send_numbered(&mut sim, 1..2);
    sim.drive_until(1_000, |s| requests(s, ApiKey::Produce) == 2);
    sim.cluster
        .inject(Fault::drop_after_apply(ApiKey::Produce).on_broker(1));
    hs.extend(send_numbered(&mut sim, 2..6));
    sim.drive();
    let results: Vec<_> = hs.iter().map(|h| h.wait()).collect();
    let stored = values(&sim);
    let mut sorted = stored.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), stored.len(), "stored twice: {stored:?}");
    assert_eq!(sorted, stored, "out of order: {stored:?}");
    for (i, r) in results.iter().enumerate() {
        let rec = i as u32 + 1;
        match r {
            Ok(md) => assert_eq!(stored.get(md.offset as usize), Some(&rec), "record {rec}"),
            Err(e) => {
                assert_eq!(e.status(), crate::MessageStatus::NotPersisted, "{e}");
                assert!(!stored.contains(&rec), "record {rec} failed but stored");
            }
        }
    }
    assert_eq!(stored, vec![0, 2, 3, 4, 5]);
}

/// Record 0 acknowledged; then five batches in flight: batch 1 appended
/// but answered NOT_ENOUGH_REPLICAS_AFTER_APPEND (fate unknown to the
/// client, queued for a retry), batches 2-5 acknowledged behind it.
/// Returns the handles of records 1-5.
fn written_batch_then_four_acknowledged(config: Config) -> (MockSim, Vec<crate::DeliveryHandle>) {
    let mut sim = sim_with(config, 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    let slowed = slow(&sim, 1, ms(10));
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, 1);
    let hs = send_numbered(&mut sim, 1..6);
    sim.drive_until(10_000, |s| s.core.stats().retries == 1);
    heal(&sim, slowed);
    (sim, hs)
}

/// Chaos seed 13001, reduced. A batch is answered
/// NOT_ENOUGH_REPLICAS_AFTER_APPEND (appended, fate unknown to the
/// client); its retry hangs until the request timeout; meanwhile more than
/// the broker's window of later batches is acknowledged, so the broker
/// forgets the written batch and answers its next retry with
/// OUT_OF_ORDER_SEQUENCE_NUMBER instead of DUPLICATE_SEQUENCE_NUMBER.
/// Before, kring re-sent it under its own sequence until the delivery
/// timeout, and every later batch of the partition waited behind it and
/// timed out too. Now the acknowledged later sequences settle it: it ends
/// at once as possibly persisted (the broker took the sequences after it,
/// which it accepts only in order while it knows the producer), and the
/// partition goes on.
#[test]
fn written_batch_the_broker_forgot_ends_at_once_and_the_partition_goes_on() {
    let config = Config {
        request_timeout: ms(1_000),
        delivery_timeout: ms(30_000),
        ..pipelined()
    };
    let (mut sim, mut hs) = written_batch_then_four_acknowledged(config);
    // Its retry is a duplicate, answered too late: the request times out,
    // with the four new batches sent behind it applied but unanswered.
    // The broker now remembers only the last five of the eight batches
    // after it.
    sim.cluster
        .inject(Fault::delay(ApiKey::Produce, ms(5_000)).on_partition("t", 0));
    let sent_at = sim.now;
    hs.extend(send_numbered(&mut sim, 6..12));
    sim.drive();
    let r1 = hs[0].wait();
    let e = r1.expect_err("the broker no longer knows batch 1 and cannot say it is a duplicate");
    assert!(
        !matches!(e, crate::DeliveryError::Timeout { .. }),
        "waited for the delivery timeout: {e}"
    );
    assert_eq!(e.status(), crate::MessageStatus::PossiblyPersisted, "{e}");
    assert!(
        e.to_string().contains("OUT_OF_ORDER_SEQUENCE_NUMBER"),
        "{e}"
    );
    assert!(
        sim.now < sent_at + ms(10_000),
        "ended {:?} after the retry",
        sim.now - sent_at
    );
    for (i, h) in hs.iter().enumerate().skip(1) {
        assert_eq!(h.wait().unwrap().offset, i as i64 + 1, "record {}", i + 1);
    }
    assert_eq!(values(&sim), (0..12).collect::<Vec<u32>>());
    // The sequences after it stay valid: no epoch bump rewrites them.
    assert_eq!(sim.core.stats().epoch_bumps, 0);
}

/// A batch is appended but its answer is lost with the connection (fate
/// unknown); the broker then loses the producer's state (a broker before
/// KIP-360 answers UNKNOWN_PRODUCER_ID to a non-zero first sequence). No
/// retry can be recognised as a duplicate now, and a re-send under a new
/// epoch could store it twice: it fails as possibly persisted (as
/// librdkafka fails a retried batch answered so). Before, kring bumped the
/// epoch at once, which rewrote every pending batch, this one included: it
/// was re-sent under epoch 1 from sequence 0 and stored a second time.
#[test]
fn written_batch_answered_unknown_producer_id_is_not_rewritten() {
    let mut sim = sim_with(pipelined(), 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    sim.cluster
        .inject(Fault::drop_after_apply(ApiKey::Produce).on_broker(1));
    let hs = send_numbered(&mut sim, 1..2);
    // Applied, the answer lost with the connection.
    sim.drive_until(10_000, |s| s.cluster.faults_fired() >= 1);
    assert_eq!(values(&sim), vec![0, 1]);
    sim.cluster.forget_producers("t", 0).unwrap();
    sim.drive();
    let r = hs[0].wait();
    let stored = values(&sim);
    assert_eq!(
        stored,
        vec![0, 1],
        "record 1 stored twice (epochs: {:?})",
        log(&sim, 0)
            .iter()
            .map(|r| (r.producer_epoch, r.base_sequence))
            .collect::<Vec<_>>()
    );
    if let Err(e) = r {
        assert_eq!(e.status(), crate::MessageStatus::PossiblyPersisted, "{e}");
    }
}

/// An OUT_OF_ORDER_SEQUENCE_NUMBER proves a batch absent only if fewer
/// than the broker's window of batches can have been written after it;
/// batches that failed after an attempt that may have been written count
/// among them. Batch 1 is appended (NOT_ENOUGH_REPLICAS_AFTER_APPEND),
/// batches 2-5 acknowledged; its retry is a duplicate answered too late
/// (request timeout) with batches 6-9 applied behind it, unanswered. The
/// broker now remembers 5-9 only. Batches 6-9 wait in the retry queue
/// behind batch 1 and expire there (possibly persisted) while batch 1's
/// next retry is in flight; that retry is answered OUT_OF_ORDER. Before,
/// 6-9 counted nowhere once failed, only four batches (2-5) seemed to
/// follow batch 1, and it failed as NOT persisted although it is in the
/// log at offset 1.
#[test]
fn written_batch_is_not_reported_unwritten_after_later_batches_expire() {
    let config = Config {
        request_timeout: ms(5_000),
        delivery_timeout: ms(6_000),
        ..pipelined()
    };
    let (mut sim, mut hs) = written_batch_then_four_acknowledged(config);
    // Batch 1's retry: a duplicate whose answer comes after the request
    // timeout; batches 6-9 behind it are applied, unanswered.
    sim.cluster
        .inject(Fault::delay(ApiKey::Produce, ms(20_000)).on_partition("t", 0));
    hs.extend(send_numbered(&mut sim, 6..10));
    sim.drive_until(100_000, |s| s.core.stats().retries >= 6);
    assert_eq!(values(&sim), (0..10).collect::<Vec<u32>>());
    // Batch 1's next retry is answered (OUT_OF_ORDER) only after 6-9
    // expired in the retry queue.
    sim.cluster
        .inject(Fault::delay(ApiKey::Produce, ms(4_000)).on_partition("t", 0));
    sim.drive();
    let stored = values(&sim);
    for h in &hs[5..9] {
        let e = h.wait().expect_err("expired in the retry queue");
        assert!(matches!(e, crate::DeliveryError::Timeout { .. }), "{e}");
        assert_eq!(e.status(), crate::MessageStatus::PossiblyPersisted, "{e}");
    }
    for (i, h) in hs.iter().enumerate() {
        let rec = i as u32 + 1;
        if let Err(e) = h.wait() {
            if e.status() == crate::MessageStatus::NotPersisted {
                assert!(
                    !stored.contains(&rec),
                    "record {rec} failed as not persisted but is stored: {e}"
                );
            }
        }
    }
}

/// The retry queue is kept in Kafka's wrapping sequence order. Batches
/// straddling the wrap from `i32::MAX` to 0 all wait for a retry; only the
/// partition's lowest pending sequence (`i32::MAX - 1`) may be re-sent,
/// from the front of the queue. Before, the queue compared raw sequences,
/// put the batch after the wrap (sequence 0) first, re-sent nothing, and
/// the partition stalled until the delivery timeout failed all three.
#[test]
fn retries_across_the_sequence_wrap_are_resent_in_order() {
    let config = Config {
        delivery_timeout: ms(30_000),
        ..pipelined()
    };
    let mut sim = sim_with(config, 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    let start = i32::MAX - 1;
    {
        let s = &mut sim.core.part((0, 0)).seq;
        s.last_acked = start - 1;
        s.next = start;
    }
    sim.cluster.set_last_sequence("t", 0, start - 1).unwrap();
    // Batch 1 (sequence MAX-1) refused before the append; 2 (MAX) and
    // 3 (0) behind it in flight, refused as out of order.
    slow(&sim, 1, ms(10));
    fail_produce(&sim, 0, ErrorCode::NOT_ENOUGH_REPLICAS, 1);
    let sent_at = sim.now;
    let hs = send_numbered(&mut sim, 1..4);
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        let r = h.wait();
        assert!(
            r.is_ok(),
            "record {}: {r:?} after {:?}",
            i + 1,
            sim.now - sent_at
        );
    }
    assert_eq!(values(&sim), (0..4).collect::<Vec<u32>>());
    assert!(
        sim.now < sent_at + ms(10_000),
        "took {:?}",
        sim.now - sent_at
    );
}

/// A broker that lost the producer's state a second time: the epoch is
/// bumped again. Batch 1 fails for good (MESSAGE_TOO_LARGE) and the epoch
/// is bumped: batches 2-4 are rewritten to epoch 1, sequences 0-2. Batch 2
/// is acknowledged (and 3, sent at once behind it), then the broker (before
/// KIP-360) loses the producer's state: batch 4 (sequence 2, never written)
/// is refused with UNKNOWN_PRODUCER_ID. Before, a batch whose sequence was
/// once rewritten by a bump was retried without another bump (the Java
/// client's rule for batches in flight at a bump, which cannot exist in
/// kring: it bumps only when nothing is in flight), refused the same way
/// every time, and it and every later batch waited for the delivery
/// timeout.
#[test]
fn unknown_producer_id_after_a_bump_does_not_stall_the_partition() {
    let config = Config {
        delivery_timeout: ms(30_000),
        ..pipelined()
    };
    let mut sim = sim_with(config, 1, 1);
    let w = send_numbered(&mut sim, 0..1);
    sim.drive();
    w[0].wait().unwrap();
    slow(&sim, 1, ms(10));
    fail_produce(&sim, 0, ErrorCode::MESSAGE_TOO_LARGE, 1);
    let sent_at = sim.now;
    let hs = send_numbered(&mut sim, 1..5);
    sim.drive_until(10_000, |_| hs[1].try_result().is_some());
    assert!(hs[0].wait().is_err());
    hs[1].wait().unwrap();
    assert_eq!(sim.core.stats().epoch_bumps, 1);
    sim.cluster.forget_producers("t", 0).unwrap();
    sim.drive();
    let stored = values(&sim);
    for (i, h) in hs.iter().enumerate().skip(2) {
        let rec = i as u32 + 1;
        match h.wait() {
            Ok(_) => assert_eq!(stored.iter().filter(|&&v| v == rec).count(), 1),
            Err(e) => assert!(
                !matches!(e, crate::DeliveryError::Timeout { .. }),
                "record {rec} waited for the delivery timeout: {e}"
            ),
        }
    }
    assert!(
        sim.now < sent_at + ms(10_000),
        "took {:?}",
        sim.now - sent_at
    );
}
