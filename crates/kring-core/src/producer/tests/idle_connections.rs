//! `connections.max.idle.ms`: a ready connection with nothing in flight
//! and no traffic for that long is closed by the client, and opened again
//! by the next request that needs it.

use super::*;

/// One broker (which also answers metadata), `connections.max.idle.ms`
/// `idle`, and metadata refreshed only every hour, so that the periodic
/// refresh does not keep the connection busy.
fn idle_after(idle: Option<Duration>) -> MockSim {
    let config = Config {
        connections_max_idle: idle,
        metadata_max_age: ms(3_600_000),
        metadata_max_idle: ms(3_600_000),
        ..cfg()
    };
    sim_with(config, 1, 1)
}

fn deliver(sim: &mut MockSim, value: &[u8]) -> i64 {
    let h = sim.send("t", Some(0), None, Some(value)).unwrap();
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    h.wait().expect("delivered").offset
}

/// Closed once idle for the whole `connections.max.idle.ms` (not before),
/// as a plain close: no reconnect backoff and no metadata refresh. The
/// next send connects again at once and is delivered.
#[test]
fn an_idle_connection_is_closed_and_opened_again_when_needed() {
    let mut sim = idle_after(Some(ms(60_000)));
    assert_eq!(deliver(&mut sim, b"a"), 0);
    let (closes, connects) = (sim.closes.len(), sim.connects.len());
    sim.run_for(ms(59_000));
    assert_eq!(sim.closes.len(), closes, "not idle for a minute yet");
    assert_eq!(sim.core.stats().idle_closes, 0);
    sim.run_for(ms(2_000));
    assert_eq!(sim.closes.len(), closes + 1, "closed when idle");
    assert_eq!(sim.core.stats().idle_closes, 1);

    let metadata = requests(&sim, ApiKey::Metadata);
    let t0 = sim.now;
    assert_eq!(deliver(&mut sim, b"b"), 1);
    assert_eq!(sim.connects.len(), connects + 1, "connected again");
    assert!(sim.now - t0 < ms(50), "no backoff: {:?}", sim.now - t0);
    assert_eq!(requests(&sim, ApiKey::Metadata), metadata, "no refresh");
    assert_eq!(log(&sim, 0).len(), 2);
}

/// Traffic more often than the idle time keeps the connection: a record
/// every 40 s with `connections.max.idle.ms` at 60 s, for ten minutes.
#[test]
fn a_connection_in_use_is_kept() {
    let mut sim = idle_after(Some(ms(60_000)));
    let connects = {
        deliver(&mut sim, b"first");
        sim.connects.len()
    };
    for i in 0..15 {
        sim.run_for(ms(40_000));
        assert_eq!(deliver(&mut sim, b"again"), i + 1);
    }
    assert_eq!(sim.core.stats().idle_closes, 0);
    assert_eq!(sim.connects.len(), connects, "never reconnected");
}

/// A request in flight longer than the idle time keeps its connection:
/// it is closed by the request timeout (30 s), not as idle at 10 s, and
/// the record is delivered by the retry.
#[test]
fn a_connection_waiting_for_a_response_is_not_idle() {
    let mut sim = idle_after(Some(ms(10_000)));
    deliver(&mut sim, b"first");
    let hole = black_hole(&sim, 1);
    let h = sim.send("t", Some(0), None, Some(b"held")).unwrap();
    sim.run_for(ms(25_000));
    assert!(h.try_result().is_none(), "still waiting for the response");
    assert_eq!(sim.core.stats().idle_closes, 0, "not idle while waiting");
    heal(&sim, hole);
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 1);
    assert_eq!(sim.core.stats().idle_closes, 0);
    assert_eq!(log(&sim, 0).len(), 2);
}

/// `None` (Java's -1, librdkafka's 0): an idle connection stays open.
#[test]
fn idle_closing_can_be_turned_off() {
    let mut sim = idle_after(None);
    deliver(&mut sim, b"a");
    let closes = sim.closes.len();
    sim.run_for(ms(3_000_000));
    assert_eq!(sim.closes.len(), closes);
    assert_eq!(sim.core.stats().idle_closes, 0);
    assert_eq!(deliver(&mut sim, b"b"), 1);
}

/// With `acks=0` nothing is ever in flight for a Produce: the requests
/// written count as traffic, so a record every 40 s keeps a connection
/// whose idle time is 60 s.
#[test]
fn requests_without_responses_count_as_traffic() {
    let config = Config {
        acks: crate::config::Acks::None,
        enable_idempotence: false,
        connections_max_idle: Some(ms(60_000)),
        metadata_max_age: ms(3_600_000),
        metadata_max_idle: ms(3_600_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let send = |sim: &mut MockSim| {
        let h = sim.send("t", Some(0), None, Some(b"v")).unwrap();
        sim.drive_until(1_000_000, |_| h.try_result().is_some());
        h.wait().expect("written");
    };
    send(&mut sim);
    let connects = sim.connects.len();
    for _ in 0..10 {
        sim.run_for(ms(40_000));
        send(&mut sim);
    }
    assert_eq!(sim.core.stats().idle_closes, 0);
    assert_eq!(sim.connects.len(), connects, "never reconnected");
    assert_eq!(log(&sim, 0).len(), 11);
    // Then idle: closed.
    sim.run_for(ms(61_000));
    assert_eq!(sim.core.stats().idle_closes, 1);
}

/// A connection muted by a broker's throttle (KIP-219) longer than the
/// idle time, with a batch waiting for it, is kept: the batch goes when
/// the throttle ends, not earlier over a new connection.
#[test]
fn a_throttled_connection_with_work_waiting_is_kept() {
    let mut sim = idle_after(Some(ms(10_000)));
    deliver(&mut sim, b"first");
    let throttle = sim.cluster.inject(
        Fault::throttle(ApiKey::Produce, ms(25_000))
            .on_broker(1)
            .times(1),
    );
    let h = sim.send("t", Some(0), None, Some(b"throttled")).unwrap();
    sim.drive_until(10_000, |_| h.try_result().is_some());
    h.wait().unwrap();
    sim.cluster.remove_fault(throttle);
    let answered = sim.now;
    let h = sim.send("t", Some(0), None, Some(b"waits")).unwrap();
    sim.drive_until(1_000_000, |_| h.try_result().is_some());
    assert_eq!(h.wait().unwrap().offset, 2);
    assert!(
        sim.now >= answered + ms(25_000),
        "sent after the throttle: {:?}",
        sim.now - answered
    );
    assert_eq!(sim.core.stats().idle_closes, 0);
}
