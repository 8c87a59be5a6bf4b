//! Points 7-9: delivery results (callback, exactly once), flush, close
//! (lessons.md #3) and idleness (lessons.md #4).

use super::*;
use crate::delivery::{DeliveryCallback, DeliveryError, DeliveryReport};
use crate::error::SendError;
use crate::Config;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// lessons.md #3: with linger and batch size so large that records can only
/// leave through the final drain, close delivers every one of them.
#[test]
fn close_delivers_everything_buffered() {
    let config = Config {
        linger: Duration::from_secs(3600),
        batch_size: 16 << 20,
        max_request_size: 64 << 20,
        buffer_memory: 256 << 20,
        delivery_timeout: Duration::from_secs(7200),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 3);
    let hs: Vec<_> = (0..25u32)
        .map(|i| {
            sim.send("t", Some((i % 3) as i32), None, Some(&i.to_be_bytes()))
                .unwrap()
        })
        .collect();
    sim.run_for(ms(100));
    assert!(
        hs.iter().all(|h| h.try_result().is_none()),
        "nothing left before close"
    );
    assert!(!sim.shared.is_closed());
    let close = sim.close();
    sim.drive_until(10_000, |s| s.core.is_finished());
    assert!(close.is_done());
    let delivered = hs
        .iter()
        .filter(|h| matches!(h.try_result(), Some(Ok(_))))
        .count();
    assert_eq!(delivered, 25, "25 of 25 delivered by close");
    let stored: usize = (0..3).map(|p| log(&sim, p).len()).sum();
    assert_eq!(stored, 25);
    assert!(
        sim.elapsed() < Duration::from_secs(1),
        "close did not wait for linger"
    );
    // Every connection was closed and nothing is scheduled any more.
    assert_eq!(sim.core.poll_timeout(), None);
    assert!(sim.shared.is_closed());
    assert!(matches!(
        sim.send("t", Some(0), None, Some(b"late")),
        Err(SendError::Closed)
    ));
}

/// A send after `close` fails at once with `Closed`, also while its
/// partition's batch is still open (the I/O thread has not read the close
/// yet): close flushes what was sent before it, and nothing after.
#[test]
fn a_send_after_close_fails_while_its_batch_is_still_open() {
    let config = Config {
        linger: ms(1_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"before")).unwrap();
    let close = sim.close();
    let now = sim.now;
    let late = sim.shared.append(now, record_ref(0, b"after"), now);
    assert!(
        matches!(late, Err(SendError::Closed)),
        "{:?}",
        late.map(|o| o.partition)
    );
    sim.drive_until(10_000, |_| close.is_done());
    assert_eq!(h.wait().unwrap().offset, 0);
    assert_eq!(log(&sim, 0).len(), 1);
}

/// A close after a flush waits for the records sent between the two: its
/// handle completes only once they have their results (their answer is
/// held back 500 ms), not when the flush's records had theirs.
#[test]
fn close_after_a_flush_waits_for_the_records_sent_since() {
    let mut sim = sim_with(cfg(), 1, 1);
    learn_metadata(&mut sim);
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    sim.cluster
        .inject(kring_mock::Fault::delay(ApiKey::Produce, ms(500)).times(1));
    let h = sim
        .send("t", Some(0), None, Some(b"after the flush"))
        .unwrap();
    let close = sim.close();
    sim.drive_until(10_000, |s| {
        assert!(
            !close.is_done() || h.try_result().is_some(),
            "close done before the record had its result"
        );
        s.core.is_finished()
    });
    assert!(close.is_done());
    assert_eq!(h.wait().unwrap().offset, 1);
}

#[test]
fn flush_seals_now_and_waits_for_results() {
    let config = Config {
        linger: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(7200),
        ..cfg()
    };
    let mut sim = sim_with(config, 2, 4);
    let before: Vec<_> = (0..8)
        .map(|i| sim.send("t", Some(i % 4), None, Some(b"x")).unwrap())
        .collect();
    sim.run_for(ms(50));
    let flush = sim.flush();
    assert!(!flush.is_done());
    // Once the I/O side has sealed the open batches, new records start new
    // batches that are not part of this flush.
    sim.settle();
    let after = sim.send("t", Some(0), None, Some(b"after")).unwrap();
    sim.drive_until(10_000, |_| flush.is_done());
    assert!(before.iter().all(|h| matches!(h.try_result(), Some(Ok(_)))));
    assert!(
        after.try_result().is_none(),
        "records sent after the flush keep lingering"
    );
    assert!(sim.elapsed() < Duration::from_secs(1));
    // An empty flush completes at once.
    let f2 = sim.flush();
    sim.settle();
    assert!(
        !f2.is_done(),
        "the record sent after the first flush is pending"
    );
    sim.drive_until(10_000, |_| f2.is_done());
    assert!(after.try_result().is_some());
    let f3 = sim.flush();
    sim.settle();
    assert!(f3.is_done());
}

#[test]
fn callback_runs_once_per_record_with_results() {
    type Seen = Arc<Mutex<Vec<(i32, Result<i64, String>)>>>;
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
        assert_eq!(r.topic, "t");
        s2.lock().unwrap().push((
            r.index as i32,
            r.result
                .as_ref()
                .map(|m| m.offset)
                .map_err(|e| e.to_string()),
        ));
    });
    let config = Config {
        on_delivery: Some(cb),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    for i in 0..5u8 {
        sim.send("t", Some(0), None, Some(&[i])).unwrap();
    }
    sim.drive();
    fail_produce(&sim, 0, kring_protocol::ErrorCode::INVALID_TIMESTAMP, 1);
    for i in 0..2u8 {
        sim.send("t", Some(0), None, Some(&[i])).unwrap();
    }
    sim.drive();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 7);
    for i in 0..5 {
        assert_eq!(seen[i], (i as i32, Ok(i as i64)));
    }
    assert!(seen[5]
        .1
        .as_ref()
        .unwrap_err()
        .contains("INVALID_TIMESTAMP"));
    assert!(seen[6].1.is_err());
}

#[test]
fn abort_fails_every_pending_record() {
    let config = Config {
        linger: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(7200),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    let hs: Vec<_> = (0..6)
        .map(|i| sim.send("t", Some(i % 2), None, Some(b"x")).unwrap())
        .collect();
    let now = sim.now;
    sim.core.abort(now, "test abort");
    assert!(sim.core.is_finished());
    for h in hs {
        assert!(matches!(
            h.try_result(),
            Some(Err(DeliveryError::Aborted { .. }))
        ));
    }
    assert_eq!(sim.shared.buffered_bytes(), 0);
    assert!(matches!(
        sim.send("t", Some(0), None, Some(b"x")),
        Err(SendError::Closed)
    ));
}

/// Point 9 and lessons.md #4: once everything is delivered, the next
/// deadline is the metadata refresh, and an idle producer is not woken.
#[test]
fn idle_producer_sleeps_until_the_metadata_refresh() {
    let mut sim = sim_with(cfg(), 2, 4);
    for p in 0..4 {
        sim.send("t", Some(p), None, Some(b"x")).unwrap();
    }
    sim.drive();
    sim.settle();
    let next = sim.core.poll_timeout().expect("the periodic refresh");
    let wait = next - sim.now;
    assert!(wait > Duration::from_secs(290), "next deadline in {wait:?}");
    // Ten idle minutes: only metadata refreshes, no wake-ups from producers.
    let (w0, p0) = (sim.wakes, sim.parks);
    sim.run_for(Duration::from_secs(600));
    assert_eq!(sim.wakes, w0, "no wake-ups while idle");
    assert!(
        sim.parks - p0 <= 8,
        "parked {} times in 10 min",
        sim.parks - p0
    );
}

/// One broker, `t` with one partition, `config` with `linger.ms` 100: one
/// record delivered, and nothing left to do.
fn idle_after_one_record(config: Config) -> MockSim {
    let mut sim = sim_with(
        Config {
            linger: ms(100),
            ..config
        },
        1,
        1,
    );
    sim.send("t", Some(0), None, Some(b"w")).unwrap();
    sim.drive();
    sim.settle();
    sim
}

/// Appending to an open batch never wakes the I/O thread; a new batch
/// wakes it only if it is parked.
#[test]
fn wake_only_for_new_batches_when_parked() {
    let mut sim = idle_after_one_record(cfg());
    // The I/O side parks.
    assert!(sim.core.prepare_park());
    let (w0, r0) = (sim.wakes, sim.shared.wake_requests());
    let hs: Vec<_> = (0..100)
        .map(|_| sim.send("t", Some(0), None, Some(b"x")).unwrap())
        .collect();
    assert_eq!(sim.wakes - w0, 1, "one wake for 100 appends");
    assert_eq!(sim.shared.wake_requests() - r0, 1, "as counted");
    sim.drive();
    for h in hs {
        h.wait().unwrap();
    }
    // Awake (not parked): no wake even for a new batch.
    sim.settle();
    let w1 = sim.wakes;
    sim.send("t", Some(0), None, Some(b"y")).unwrap();
    assert_eq!(sim.wakes, w1);
}

/// A record that fills its open batch to `batch.size` seals it, and wakes
/// the parked I/O thread to send it now rather than at linger. Here
/// `batch.size` is exactly eight records' batch, opened before the park.
#[test]
fn a_record_that_fills_its_batch_wakes_the_parked_io_thread() {
    let rec = record_ref(0, &[0u8; 100]);
    let mut sim = idle_after_one_record(Config {
        batch_size: eight_records_batch(&rec),
        ..cfg()
    });
    let now = sim.now;
    let first = sim.shared.append(now, rec, now).unwrap();
    sim.settle();
    assert!(sim.core.prepare_park());
    let w0 = sim.shared.wake_requests();
    for i in 1..8 {
        let o = sim.shared.append(now, rec, now).unwrap();
        assert_eq!(o.wake, i == 7, "record {i} of the batch");
    }
    assert_eq!(sim.shared.wake_requests() - w0, 1);
    assert!(!first.wake, "appended while awake");
}

/// Close started from the I/O thread (the driver, when the last handle is
/// dropped) has the same flush-then-stop semantics, and releases senders
/// blocked waiting for metadata.
#[test]
fn close_from_the_io_thread_releases_blocked_senders() {
    let mut sim = sim_with(cfg(), 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    let shared = sim.shared.clone();
    let now = sim.now;
    let far = now + Duration::from_secs(3600);
    // A sender waits for a topic that does not exist.
    let waiter = std::thread::spawn(move || {
        shared
            .append(now, crate::RecordRef::plain("missing", b"v"), far)
            .map(|o| o.partition)
    });
    // Wait (without sleeping) until it registered the topic, then let the
    // I/O side answer that the topic does not exist.
    while !sim.shared.topics.snapshot().by_name.contains_key("missing") {
        std::thread::yield_now();
    }
    sim.drive_until(100_000, |s| s.shared.topic_error("missing").is_some());
    assert!(
        !waiter.is_finished(),
        "still blocked: the topic does not exist"
    );
    let now = sim.now;
    let done = sim.core.close(now);
    assert!(sim.core.is_closing());
    sim.drive_until(10_000, |s| s.core.is_finished());
    assert!(done.is_done());
    assert!(h.wait().is_ok());
    assert_eq!(waiter.join().unwrap(), Err(SendError::Closed));
}

/// The idempotent producer's InitProducerId is refused for good
/// (CLUSTER_AUTHORIZATION_FAILED): the producer can send nothing, and a
/// record waiting in a lingering batch fails promptly with that error, as
/// the Java client aborts every incomplete batch on a fatal error — not
/// after delivery.timeout.ms; a later send is refused at once.
#[test]
fn a_fatal_init_producer_id_fails_lingering_records_promptly() {
    let config = Config {
        linger: ms(5),
        ..cfg()
    };
    let cluster = cluster(1, 1).build_unbound().expect("valid mock cluster");
    // A retriable refusal first, so the record is in a batch by the time
    // the fatal one comes (after the retry backoff).
    cluster.inject(
        Fault::error(
            ApiKey::InitProducerId,
            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
        )
        .times(1),
    );
    cluster.inject(
        Fault::error(
            ApiKey::InitProducerId,
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
        )
        .always(),
    );
    let mut sim = Sim::new(config, cluster, kring_testclock::origin());
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    assert!(h.try_result().is_none(), "lingering");
    sim.run_for(ms(2_000));
    match h.try_result() {
        Some(Err(DeliveryError::Broker { .. })) => {}
        other => panic!("after 2 s (delivery.timeout.ms 120 s): {other:?}"),
    }
    assert_eq!(sim.shared.buffered_bytes(), 0);
    // A later send is refused at once with the same error.
    match sim.send("t", Some(0), None, Some(b"y")) {
        Err(SendError::Fatal(DeliveryError::Broker { code: 31, .. })) => {}
        other => panic!("a send after the fatal error: {other:?}"),
    }
}

/// Close releases a sender blocked for `buffer.memory` at once, with
/// `Closed`, as the Java client's `BufferPool.close` does; before, it
/// waited until memory came back or its `max.block.ms` passed (an hour
/// here: the broker answers nothing, so no memory comes back).
#[test]
fn close_releases_a_sender_blocked_for_memory() {
    let config = Config {
        buffer_memory: 16 * 1024,
        batch_size: 4 * 1024,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    sim.send("t", Some(0), None, Some(b"warm")).unwrap();
    sim.drive();
    black_hole(&sim, 1);
    fill_memory(&sim, 4, 1000);
    sim.settle();
    let (waiter, result) = blocked_sender(&sim, 0, 1000, Duration::from_secs(3600));
    let now = sim.now;
    let _closing = sim.core.close(now);
    waiter.join().unwrap();
    assert_eq!(result.recv().unwrap(), Err(SendError::Closed));
}

/// A driver stops reading notices once the core has finished, so a flush,
/// purge or close begun after that — or begun just before and not read by
/// then — must complete without the I/O thread: every record sent before
/// it has its result. (They never completed: a `begin_flush().await` or
/// `begin_purge().await` after close, or racing with it, hung forever.)
#[test]
fn flush_purge_and_close_begun_around_the_finish_complete() {
    let config = Config {
        linger: Duration::ZERO,
        request_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(6),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    h.try_result().expect("delivered").unwrap();
    // The last request is on the wire when a flush is asked for; the
    // core finishes (here: the request times out) in a turn that does
    // not read notices.
    let _stuck = black_hole(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"y")).unwrap();
    assert!(!sim.core.is_closing());
    let close = sim.close();
    sim.settle();
    assert!(!close.is_done());
    assert!(sim.core.is_closing() && !sim.core.is_finished());
    let flush = sim.shared.begin_flush();
    let purge = sim.shared.begin_purge();
    let later = sim.now + Duration::from_secs(60);
    sim.core.handle_timeout(later);
    assert!(sim.core.is_finished());
    assert!(h.try_result().is_some_and(|r| r.is_err()));
    assert!(close.is_done());
    assert!(flush.is_done(), "a flush left unread at the finish");
    assert!(purge.is_done(), "a purge left unread at the finish");
    // Begun after the finish.
    assert!(sim.shared.begin_flush().is_done());
    assert!(sim.shared.begin_purge().is_done());
    assert!(sim.shared.begin_close().is_done());
}
