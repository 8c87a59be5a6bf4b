//! User code runs fenced, and a lying broker cannot crash the core: a
//! panicking delivery callback or partitioner, partitions out of range,
//! absurd partition indexes and offsets, sequences at the wrap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::config::PartitionerChoice;
use crate::delivery::{DeliveryCallback, DeliveryReport};
use crate::error::SendError;
use crate::partitioner::{PartitionView, Partitioner};
use crate::shared::RecordRef;
use kring_mock::{Fault, Lie};
use kring_protocol::messages::ApiKey;

/// The repro of issue 15: 20 records, the callback panics on the 6th. The
/// panic is caught: every record still gets its result (handles and
/// callback, once each), later records keep getting callbacks, and close
/// finishes.
#[test]
fn panicking_callback_does_not_stop_deliveries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let oks = Arc::new(Mutex::new(Vec::new()));
    let (c2, o2) = (calls.clone(), oks.clone());
    let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
        let n = c2.fetch_add(1, Ordering::SeqCst) + 1;
        o2.lock()
            .unwrap()
            .push(r.result.as_ref().map(|m| m.offset).ok());
        if n == 6 {
            panic!("user callback bug");
        }
    });
    let config = Config {
        on_delivery: Some(cb),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let hs: Vec<_> = (0..20u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).unwrap())
        .collect();
    sim.drive();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().offset, i as i64, "record {i}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 20, "one callback per record");
    assert_eq!(sim.core.stats().callback_panics, 1);
    // Later records keep getting callbacks.
    let later = sim.send("t", Some(0), None, Some(b"later")).unwrap();
    sim.drive();
    assert_eq!(later.wait().unwrap().offset, 20);
    assert_eq!(calls.load(Ordering::SeqCst), 21);
    let offsets: Vec<_> = oks.lock().unwrap().clone();
    assert_eq!(offsets, (0..21).map(Some).collect::<Vec<_>>());
    let c = sim.close();
    sim.drive();
    assert!(c.is_done());
    assert!(sim.core.is_finished());
}

/// A callback that panics on every record fails nothing and stops nothing.
#[test]
fn callback_panicking_on_every_record_is_counted_not_fatal() {
    let cb: DeliveryCallback = Arc::new(|_: &DeliveryReport<'_>| panic!("always"));
    let config = Config {
        on_delivery: Some(cb),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 2);
    let hs: Vec<_> = (0..10)
        .map(|i| sim.send("t", Some(i % 2), None, Some(b"v")).unwrap())
        .collect();
    sim.drive();
    assert!(hs.iter().all(|h| h.wait().is_ok()));
    assert_eq!(sim.core.stats().callback_panics, 10);
    assert_eq!(sim.shared.callback_panics(), 10);
    let totals = sim.core.statistics(sim.now).totals;
    assert_eq!(totals.delivery_callback_panics, 10);
}

#[derive(Debug)]
struct Fixed(u32);

impl Partitioner for Fixed {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        view: &PartitionView<'_>,
    ) -> Option<u32> {
        match key {
            Some(b"boom") => panic!("partitioner bug"),
            Some(b"beyond") => Some(view.num_partitions + self.0),
            _ => Some(0),
        }
    }
}

fn custom(offset: u32) -> Config {
    Config {
        partitioner: PartitionerChoice::Custom(Arc::new(Fixed(offset))),
        ..cfg()
    }
}

/// Runs `append` on another thread: today's code spins forever there,
/// which must fail the test rather than hang it.
fn append_watched(sim: &MockSim, key: &'static [u8]) -> Result<i32, SendError> {
    let shared = sim.shared.clone();
    let now = sim.now;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rec = RecordRef {
            topic: "t",
            partition: None,
            key: Some(key),
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
            context: 0,
        };
        let _ = tx.send(shared.append(now, rec, now).map(|o| o.partition));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("append did not return (it loops)")
}

/// A custom partitioner returning a partition the topic does not have fails
/// that record at once with InvalidPartition (it used to loop in `append`).
#[test]
fn partitioner_out_of_range_fails_at_once() {
    for beyond in [0, 1, u32::MAX - 8] {
        let mut sim = sim_with(custom(beyond), 1, 8);
        sim.send("t", None, Some(b"k"), Some(b"v")).unwrap();
        sim.drive();
        let notices = sim.core.stats().notices;
        match append_watched(&sim, b"beyond") {
            Err(SendError::InvalidPartition {
                partition,
                num_partitions: 8,
                ..
            }) => assert_eq!(partition, i32::try_from(8 + beyond).unwrap_or(i32::MAX)),
            other => panic!("{other:?}"),
        }
        sim.settle();
        assert!(
            sim.core.stats().notices <= notices + 1,
            "no stream of notices"
        );
        // The producer goes on.
        let h = sim.send("t", None, Some(b"k"), Some(b"v")).unwrap();
        sim.drive();
        assert_eq!(h.wait().unwrap().partition, 0);
    }
}

/// A panicking partitioner fails that record with a typed error; the next
/// records are partitioned as usual.
#[test]
fn panicking_partitioner_fails_the_record() {
    let mut sim = sim_with(custom(0), 1, 3);
    sim.send("t", None, Some(b"k"), Some(b"v")).unwrap();
    match sim.send("t", None, Some(b"boom"), Some(b"v")) {
        Err(SendError::PartitionerPanicked { topic, message }) => {
            assert_eq!(&*topic, "t");
            assert!(message.contains("partitioner bug"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let h = sim.send("t", None, Some(b"k"), Some(b"v")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 1);
}

/// An explicit partition beyond a known count fails at once (no
/// `max.block.ms` wait), and asks for fresh metadata so a topic that grew
/// is seen by later sends.
#[test]
fn explicit_partition_beyond_known_count_fails_at_once() {
    let mut sim = sim_with(cfg(), 1, 8);
    sim.send("t", Some(0), None, Some(b"v")).unwrap();
    sim.drive();
    let t0 = sim.now;
    match sim.send("t", Some(999), None, Some(b"v")) {
        Err(SendError::InvalidPartition {
            partition: 999,
            num_partitions: 8,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.now, t0, "no wait");
    // The topic grows; the refresh asked for above makes it visible.
    sim.cluster.add_partitions("t", 8).unwrap();
    sim.run_for(ms(2_000));
    let h = sim.send("t", Some(12), None, Some(b"v")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 12);
}

/// While the count is unknown, the send waits for metadata, then decides.
#[test]
fn explicit_partition_of_an_unknown_topic_waits_for_metadata_then_decides() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.cluster.create_topic("u", 2).unwrap();
    let t0 = sim.now;
    match sim.send("u", Some(7), None, Some(b"v")) {
        Err(SendError::InvalidPartition {
            partition: 7,
            num_partitions: 2,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(sim.now - t0 < ms(1_000), "{:?}", sim.now - t0);
    let h = sim.send("t", Some(1), None, Some(b"v")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().partition, 1);
}

/// A Metadata response naming partition index `i32::MAX` (or 2^30, or a
/// negative one, or one just past the entries it lists) must not size
/// anything by it: such entries are a protocol error for the topic and
/// are ignored; the listed partitions work.
#[test]
fn absurd_partition_indexes_in_metadata_are_ignored() {
    let mut sim = sim_with(cfg(), 1, 2);
    sim.cluster.create_topic("only-bogus", 1).unwrap();
    // kring-mock's metadata lies, each narrowed to its topic: `t` lists
    // four bogus partitions besides its two (the last, 6, is the number
    // of entries: one past the highest index the entries allow),
    // `only-bogus` lists its one partition under index i32::MAX.
    for index in [i32::MAX, 1 << 30, -7, 6] {
        let lie = Fault::lie(ApiKey::Metadata, Lie::ExtraPartitionIndex(index));
        sim.cluster.inject(lie.on_partition("t", 0).always());
    }
    let lie = Fault::lie(ApiKey::Metadata, Lie::PartitionIndex(i32::MAX));
    sim.cluster
        .inject(lie.on_partition("only-bogus", 0).always());
    let hs: Vec<_> = (0..2)
        .map(|p| sim.send("t", Some(p), None, Some(b"v")).unwrap())
        .collect();
    sim.drive();
    for (p, h) in hs.iter().enumerate() {
        assert_eq!(h.wait().unwrap().partition, p as i32);
    }
    assert_eq!(sim.shared.partition_count("t"), Some(2));
    assert!(matches!(
        sim.send("t", Some(2), None, Some(b"v")),
        Err(SendError::InvalidPartition {
            num_partitions: 2,
            ..
        })
    ));
    // A topic with nothing usable stays unknown: a typed timeout, no
    // panic, no allocation.
    match sim.send("only-bogus", None, None, Some(b"v")) {
        Err(SendError::MetadataTimeout { topic, .. }) => assert_eq!(&*topic, "only-bogus"),
        other => panic!("{other:?}"),
    }
}

/// A ProduceResponse with `base_offset` near `i64::MAX`: the records were
/// written (no error), but their offsets cannot be `base + index`. They
/// are reported with the unknown offset -1, by handles and callback alike.
#[test]
fn absurd_base_offset_reports_unknown_offsets() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
        s2.lock()
            .unwrap()
            .push(r.result.as_ref().map(|m| m.offset).ok());
    });
    let config = Config {
        on_delivery: Some(cb),
        linger: ms(50),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    let lie = sim
        .cluster
        .inject(Fault::lie(ApiKey::Produce, Lie::BaseOffset(i64::MAX - 2)).always());
    let hs: Vec<_> = (0..5u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).unwrap())
        .collect();
    sim.drive();
    for h in &hs {
        assert_eq!(h.wait().unwrap().offset, -1);
    }
    assert_eq!(*seen.lock().unwrap(), vec![Some(-1); 5]);
    // A plausible offset is reported as usual afterwards.
    sim.cluster.remove_fault(lie);
    let h = sim.send("t", Some(0), None, Some(b"x")).unwrap();
    sim.drive();
    assert_eq!(h.wait().unwrap().offset, 5);
}

/// Sequences wrap from `i32::MAX` to 0, in the core and in the MockSim's
/// broker alike: a batch straddling the wrap and the one after it are
/// accepted in order, without OUT_OF_ORDER_SEQUENCE_NUMBER retries.
#[test]
fn sequences_wrap_to_zero_like_kafka() {
    let config = Config {
        linger: ms(50),
        max_in_flight: 1,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 1);
    sim.send("t", Some(0), None, Some(b"first")).unwrap();
    sim.drive();
    // Move the producer near the wrap on both sides: the core's next
    // sequence and the broker's record of the last one appended.
    let start = i32::MAX - 2;
    let pk = (0, 0);
    {
        let s = &mut sim.core.part(pk).seq;
        s.last_acked = start - 1;
        s.next = start;
    }
    sim.cluster.set_last_sequence("t", 0, start - 1).unwrap();
    let retries = sim.core.stats().retries;
    let batch1: Vec<_> = (0..5u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[i])).unwrap())
        .collect();
    sim.drive();
    let batch2: Vec<_> = (0..3u8)
        .map(|i| sim.send("t", Some(0), None, Some(&[10 + i])).unwrap())
        .collect();
    sim.drive();
    for h in batch1.iter().chain(&batch2) {
        h.wait().unwrap();
    }
    assert_eq!(sim.core.stats().retries, retries, "no retry");
    let log = log(&sim, 0);
    assert_eq!(log.len(), 9, "each record stored once");
    let seqs: Vec<i32> = log[1..].iter().map(|r| r.base_sequence).collect();
    assert_eq!(seqs[0], start);
    assert!(
        seqs[5..].iter().all(|&s| s == 2),
        "the batch after the wrap starts at 2: {seqs:?}"
    );
}
