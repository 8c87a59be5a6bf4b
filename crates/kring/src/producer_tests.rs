//! The producer's own logic against a real broker (kring-mock, in process,
//! real wire protocol): futures and blocking waits, waking the I/O thread
//! only when the core says so, flush, close, close with a bound, drop.
//! The end-to-end suite (root `tests/e2e_*.rs`) covers the rest.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use kring_mock::{Fault, MockCluster};

use crate::test_support::{builder, cluster, PRODUCE};
use crate::{
    BuildError, ConfigError, DeliveryError, DeliveryReport, Header, Producer, Record, SendError,
};

fn block_on<F: Future>(f: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn assert_send_sync<T: Send + Sync>(_: &T) {}

#[test]
fn send_resolves_as_future_and_by_wait() {
    let c = cluster(1);
    let p = builder(&c).build().unwrap();
    assert_send_sync(&p);
    let h = [Header {
        key: "h",
        value: Some(b"hv"),
    }];
    let f = p
        .send(
            Record::new("t", b"a")
                .key(b"k")
                .headers(&h)
                .timestamp(1_700_000_000_000),
        )
        .unwrap();
    assert_send_sync(&f);
    assert_eq!(f.partition(), 0);
    let md = block_on(f.clone()).unwrap();
    assert_eq!((md.partition, md.offset), (0, 0));
    assert_eq!(md.timestamp_ms, 1_700_000_000_000);
    assert_eq!(f.try_result(), Some(Ok(md)), "a handle resolves again");
    let before = crate::producer_tests::now_ms();
    let md = p.send(Record::new("t", b"b")).unwrap().wait().unwrap();
    assert_eq!(md.offset, 1);
    assert!(md.timestamp_ms >= before, "wall clock stamped");

    let log = c.records("t", 0).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(log[0].value.as_deref(), Some(&b"a"[..]));
    assert_eq!(log[0].timestamp, 1_700_000_000_000);
    assert_eq!(
        log[0].headers,
        vec![("h".to_owned(), Some(bytes::Bytes::from_static(b"hv")))]
    );
    assert_eq!(log[1].value.as_deref(), Some(&b"b"[..]));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn max_block_bounds_waiting_for_an_unknown_topic() {
    let c = MockCluster::builder()
        .auto_create_topics(false)
        .build()
        .unwrap();
    let p = builder(&c)
        .max_block(Duration::from_millis(300))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = p.send(Record::new("missing", b"x")).unwrap_err();
    let waited = start.elapsed();
    assert!(
        matches!(&err, SendError::MetadataTimeout { topic, .. } if &**topic == "missing"),
        "{err}"
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn try_send_reports_through_the_callback_and_wakes_rarely() {
    let c = cluster(4);
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (ok2, failed2) = (ok.clone(), failed.clone());
    let p = builder(&c)
        .linger(Duration::from_millis(20))
        .on_delivery(move |r: &DeliveryReport<'_>| {
            assert_eq!(r.topic, "t");
            match r.result {
                Ok(_) => ok2.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed2.fetch_add(1, Ordering::Relaxed),
            };
        })
        .build()
        .unwrap();
    // try_send never waits: until the topic's metadata is known it fails
    // (NoMetadataYet); a blocking send waits for it.
    p.send(Record::new("t", b"first")).unwrap().wait().unwrap();
    let n = 20_000;
    for i in 1..n {
        let v = format!("{i}");
        p.try_send(Record::new("t", v.as_bytes()).key(v.as_bytes()))
            .unwrap();
    }
    p.flush();
    assert_eq!(ok.load(Ordering::Relaxed), n);
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    let total: usize = (0..4).map(|i| c.records("t", i).unwrap().len()).sum();
    assert_eq!(total, n);
    let m = p.metrics();
    // One wake per new batch at most, never one per record.
    assert!(
        m.wake_requests < (n / 100) as u64,
        "{} wake requests for {n} records",
        m.wake_requests
    );
    assert_eq!(m.buffered_bytes, 0, "every batch released its memory");
}

#[test]
fn produce_reports_each_record_once_through_the_callback_in_order() {
    let c = cluster(3);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r2 = reports.clone();
    let p = builder(&c)
        .linger(Duration::from_millis(5))
        .on_delivery(move |r: &DeliveryReport<'_>| {
            let offset = r.result.as_ref().map(|m| m.offset).ok();
            r2.lock().unwrap().push((r.context, r.partition, offset));
        })
        .build()
        .unwrap();
    // The first record waits for the topic's metadata, as `send` would.
    let n = 6_000u64;
    for i in 0..n {
        let v = format!("{i}");
        p.produce(
            Record::new("t", v.as_bytes())
                .partition((i % 3) as i32)
                .context(i),
        )
        .unwrap();
    }
    p.flush();
    let mut reports = reports.lock().unwrap().clone();
    reports.sort_unstable();
    assert_eq!(reports.len() as u64, n, "each record reported once");
    for (i, &(ctx, partition, offset)) in reports.iter().enumerate() {
        let i = i as u64;
        assert_eq!(ctx, i, "a record reported twice or never");
        assert_eq!(partition, (i % 3) as i32);
        assert_eq!(offset, Some((i / 3) as i64), "record {i} out of order");
    }
    for part in 0..3 {
        let stored = c.records("t", part).unwrap();
        assert_eq!(stored.len() as u64, n / 3);
        let first = stored[0].value.as_deref().map(|v| v.to_vec());
        assert_eq!(first, Some(format!("{part}").into_bytes()));
    }
    assert_eq!(p.metrics().buffered_bytes, 0);
}

/// `delivery.report.only.error`: the callback hears of the records that
/// failed and of no other, while every record's handle still resolves.
#[test]
fn only_failed_records_reach_the_callback_when_asked() {
    for only_error in [false, true] {
        let c = cluster(2);
        // Partition 1 refuses every batch (INVALID_RECORD, not retried).
        c.inject(Fault::error(PRODUCE, 87i16).on_partition("t", 1).always());
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r2 = Arc::clone(&reports);
        let config = crate::ProducerConfig::default()
            .bootstrap(&c.bootstrap_servers())
            .set("delivery.report.only.error", &only_error.to_string())
            .unwrap();
        let p = Producer::builder()
            .config(config)
            .on_delivery(move |r: &DeliveryReport<'_>| {
                r2.lock().unwrap().push((r.partition, r.result.is_ok()));
            })
            .build()
            .unwrap();
        let handles: Vec<_> = (0..200)
            .map(|i| p.send(Record::new("t", b"v").partition(i % 2)).unwrap())
            .collect();
        let results: Vec<bool> = handles.iter().map(|h| h.wait().is_ok()).collect();
        assert_eq!(results.iter().filter(|&&ok| ok).count(), 100);
        p.close();
        let mut reports = reports.lock().unwrap().clone();
        reports.sort_unstable();
        let failed = vec![(1, false); 100];
        if only_error {
            assert_eq!(reports, failed);
        } else {
            let mut all = vec![(0, true); 100];
            all.extend(failed);
            all.sort_unstable();
            assert_eq!(reports, all);
        }
    }
}

/// Sends records "0", "1", ... to `t` and returns their futures in order.
fn send_numbered(p: &Producer, n: usize) -> Vec<crate::DeliveryFuture> {
    (0..n)
        .map(|i| p.send(Record::new("t", format!("{i}").as_bytes())).unwrap())
        .collect()
}

#[test]
fn close_delivers_everything_then_refuses() {
    let c = cluster(2);
    let p = builder(&c)
        .linger(Duration::from_secs(3600))
        .batch_size(1 << 20)
        .build()
        .unwrap();
    let futures = send_numbered(&p, 100);
    assert!(futures.iter().all(|f| f.try_result().is_none()));
    assert_eq!(format!("{p:?}"), "Producer { closed: false, .. }");
    let start = Instant::now();
    assert!(p.close());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(format!("{p:?}"), "Producer { closed: true, .. }");
    for f in &futures {
        f.wait().unwrap();
    }
    assert_eq!(
        p.send(Record::new("t", b"late")).unwrap_err(),
        SendError::Closed
    );
    assert!(p.close(), "closing again returns the first outcome");
    let start = Instant::now();
    assert!(
        p.flush_timeout(Duration::from_secs(30)),
        "a closed producer has nothing left to flush: done at once"
    );
    p.flush();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
}

/// Delivers a first record (metadata and producer id in place), then
/// makes `c` hold every produce request for 30 s and sends one record
/// more: its pending result.
fn stuck_after_warm_up(c: &MockCluster, p: &Producer) -> crate::DeliveryFuture {
    p.send(Record::new("t", b"first")).unwrap().wait().unwrap();
    c.inject(Fault::delay(PRODUCE, Duration::from_secs(30)).always());
    p.send(Record::new("t", b"stuck")).unwrap()
}

#[test]
fn close_timeout_aborts_what_is_left() {
    let c = cluster(1);
    let p = builder(&c).linger(Duration::ZERO).build().unwrap();
    let f = stuck_after_warm_up(&c, &p);
    let start = Instant::now();
    assert!(!p.close_timeout(Duration::from_millis(200)));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(f.wait(), Err(DeliveryError::Aborted { .. })),
        "{:?}",
        f.wait()
    );
}

/// `close` waits up to `delivery.timeout.ms` + `request.timeout.ms`: a
/// record stuck at a broker that never answers gets its own result, a
/// delivery timeout, before that bound, and nothing is aborted. The retry
/// backoff outlasts the delivery timeout, so no retry is in flight at the
/// deadline (one sent just before 400 ms would answer only at its own
/// request timeout, right at the close bound).
#[test]
fn close_waits_for_the_delivery_timeout() {
    let c = cluster(1);
    let p = builder(&c)
        .linger(Duration::ZERO)
        .request_timeout(Duration::from_millis(300))
        .delivery_timeout(Duration::from_millis(400))
        .retry_backoff(Duration::from_secs(1))
        .retry_backoff_max(Duration::from_secs(1))
        .build()
        .unwrap();
    let f = stuck_after_warm_up(&c, &p);
    let start = Instant::now();
    assert!(p.close(), "a record was aborted");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(f.wait(), Err(DeliveryError::Timeout { .. })),
        "{:?}",
        f.wait()
    );
}

/// Dropping the producer closes it: what is buffered is delivered, not
/// aborted.
#[test]
fn drop_delivers_what_is_buffered() {
    let c = cluster(1);
    let p = builder(&c)
        .linger(Duration::from_secs(3600))
        .build()
        .unwrap();
    let futures = send_numbered(&p, 10);
    drop(p);
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.wait().unwrap().offset, i as i64);
    }
    assert_eq!(c.records("t", 0).unwrap().len(), 10);
}

#[test]
fn drop_never_loses_a_record_silently() {
    let c = cluster(1);
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = results.clone();
    let p = builder(&c)
        .linger(Duration::ZERO)
        .request_timeout(Duration::from_millis(300))
        .delivery_timeout(Duration::from_millis(400))
        .on_delivery(move |r: &DeliveryReport<'_>| {
            r2.lock().unwrap().push(r.result.is_ok());
        })
        .build()
        .unwrap();
    let f = stuck_after_warm_up(&c, &p);
    let start = Instant::now();
    drop(p);
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = f.wait().unwrap_err();
    assert!(
        matches!(
            err,
            DeliveryError::Timeout { .. } | DeliveryError::Aborted { .. }
        ),
        "{err}"
    );
    assert_eq!(*results.lock().unwrap(), vec![true, false]);
}

#[test]
fn from_properties_builds_and_rejects() {
    let c = cluster(1);
    let p = Producer::from_properties([
        ("bootstrap.servers", c.bootstrap_servers().as_str()),
        ("linger.ms", "0"),
        ("compression.type", "zstd"),
    ])
    .unwrap();
    assert_eq!(
        p.send(Record::new("t", b"z"))
            .unwrap()
            .wait()
            .unwrap()
            .offset,
        0
    );
    assert_eq!(c.batches("t", 0).unwrap()[0].header.attributes & 7, 4);

    let err =
        Producer::from_properties([("bootstrap.servers", "a:1"), ("lingr.ms", "1")]).unwrap_err();
    assert!(matches!(
        err,
        BuildError::Config(ConfigError::UnknownProperty { .. })
    ));
    let err = Producer::builder()
        .bootstrap("a:1")
        .max_request_size(10)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            BuildError::Config(ConfigError::OutOfRange {
                property: "max.request.size",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn too_large_records_fail_at_send() {
    let c = cluster(1);
    let p = builder(&c)
        .max_request_size(1000)
        .batch_size(1000)
        .build()
        .unwrap();
    let big = vec![0u8; 2000];
    assert!(matches!(
        p.send(Record::new("t", &big)).unwrap_err(),
        SendError::RecordTooLarge {
            setting: "max.request.size",
            ..
        }
    ));
}

/// A negative explicit timestamp fails `send`, `produce` and `try_send` at
/// once (the Java client's `ProducerRecord` refuses it), also while the
/// partition has an open batch with room (the fast path); nothing is
/// written.
#[test]
fn negative_timestamps_fail_at_send() {
    let c = cluster(1);
    let p = builder(&c).linger(Duration::from_secs(30)).build().unwrap();
    let first = p.send(Record::new("t", b"ok").timestamp(0)).unwrap();
    p.flush();
    first.wait().unwrap();
    // An open batch for the negatives to find.
    let open = p.send(Record::new("t", b"ok2").timestamp(0)).unwrap();
    for t in [-1, -5, i64::MIN] {
        let e = p.produce(Record::new("t", b"v").timestamp(t)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid timestamp {t}: timestamps must be non-negative"),
        );
        let e = p.send(Record::new("t", b"v").timestamp(t)).unwrap_err();
        assert_eq!(e, SendError::InvalidTimestamp(t));
        assert_eq!(
            e.to_string(),
            format!("invalid timestamp {t}: timestamps must be non-negative"),
        );
        let e = p.try_send(Record::new("t", b"v").timestamp(t)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("invalid timestamp {t}: timestamps must be non-negative"),
        );
    }
    p.flush();
    assert_eq!(open.wait().unwrap().offset, 1);
    assert_eq!(c.records("t", 0).unwrap().len(), 2);
}

/// The first send to a topic after the producer went idle blocks for
/// metadata while the I/O thread sleeps in the kernel: the sender must
/// wake it before blocking, not after (it would wait `max.block.ms`).
#[test]
fn first_send_after_idle_wakes_the_io_thread_before_blocking() {
    let c = cluster(1);
    let p = builder(&c)
        .max_block(Duration::from_secs(5))
        .build()
        .unwrap();
    // Let the I/O thread connect, learn the cluster and park (the scenario
    // itself needs real idleness; nothing here waits for a timer).
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.metrics().connects == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let wakes = p.metrics().wake_requests;
    let start = Instant::now();
    p.send(Record::new("t", b"x")).unwrap().wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        p.metrics().wake_requests > wakes,
        "the I/O thread was parked and had to be woken"
    );
}

/// `io.backend` chooses the backend, `Producer::io_backend` says which one
/// runs, and records are delivered on each. `auto` runs io_uring where the
/// kernel allows it (the seccomp test in `tests/io_backend_fallback.rs`
/// covers where it does not).
#[test]
fn each_io_backend_delivers_and_says_which_it_is() {
    let c = cluster(2);
    let uring_allowed = crate::driver::io_uring_usable();
    for (asked, expect) in [
        (crate::IoBackend::Epoll, Some(crate::IoBackend::Epoll)),
        (
            crate::IoBackend::IoUring,
            uring_allowed.then_some(crate::IoBackend::IoUring),
        ),
        (
            crate::IoBackend::Auto,
            // In this crate's tests `auto` yields to KRING_TEST_IO_BACKEND.
            Some(match crate::driver::test_backend() {
                crate::IoBackend::Auto if uring_allowed => crate::IoBackend::IoUring,
                crate::IoBackend::Auto => crate::IoBackend::Epoll,
                forced => forced,
            }),
        ),
    ] {
        let built = builder(&c).io_backend(asked).build();
        let Some(expect) = expect else {
            assert!(built.is_err(), "{asked}: io_uring is refused here");
            continue;
        };
        let p = built.unwrap();
        assert_eq!(p.io_backend(), expect, "{asked}");
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let v = format!("{asked}-{i}");
                p.send(Record::new("t", v.as_bytes())).unwrap()
            })
            .collect();
        for h in handles {
            h.wait().unwrap();
        }
    }
}

/// With compression threads, two sending threads and batches that linger
/// out (never full), every record is delivered once, each thread's records
/// in order within a partition, the broker decodes every compressed batch
/// to the records sent, and close does not wait for anything but the
/// deliveries.
#[test]
fn lingered_batches_compressed_by_compression_threads_arrive_in_order() {
    let c = cluster(2);
    let delivered = Arc::new(AtomicUsize::new(0));
    let d2 = delivered.clone();
    let p = builder(&c)
        .linger(Duration::from_millis(1))
        .compression(crate::Compression::Gzip)
        .compression_threads(2)
        .on_delivery(move |r| {
            assert!(r.result.is_ok(), "{:?}", r.result);
            d2.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    // A new thread names itself once it runs: look for a while.
    let zip_thread_runs = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .any(|n| n.starts_with("kring-zip-"))
    };
    let t0 = Instant::now();
    while !zip_thread_runs() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(zip_thread_runs(), "a compression thread runs");
    const PER_THREAD: u32 = 600;
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let p = &p;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let v = format!("thread {t} record {i:04} with a text-like value");
                    drop(
                        p.send(Record::new("t", v.as_bytes()).partition((i % 2) as i32))
                            .unwrap(),
                    );
                    if i % 50 == 0 {
                        // Let batches linger out while nothing fills them.
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            });
        }
    });
    let start = Instant::now();
    assert!(p.close_timeout(Duration::from_secs(30)));
    assert!(start.elapsed() < Duration::from_secs(5), "close was prompt");
    // Close stopped and joined the compression threads.
    assert!(!zip_thread_runs(), "a compression thread outlived close");
    assert_eq!(delivered.load(Ordering::Relaxed), 2 * PER_THREAD as usize);
    for part in 0..2 {
        let log = c.records("t", part).unwrap();
        assert_eq!(log.len(), PER_THREAD as usize);
        for t in 0..2u32 {
            let mine = thread_records(&log, t, 4);
            let want: Vec<u32> = (0..PER_THREAD).filter(|i| i % 2 == part as u32).collect();
            assert_eq!(mine, want, "thread {t}, partition {part}");
        }
    }
    let batches = c.batches("t", 0).unwrap();
    assert!(batches.len() > 1, "several batches: {}", batches.len());
    assert!(batches.iter().all(|b| b.header.attributes & 7 == 1), "gzip");
}

/// The record numbers thread `t` sent, in log order, read from values
/// `"thread {t} record {i}..."` with `digits` digits.
fn thread_records(log: &[kring_mock::StoredRecord], t: u32, digits: usize) -> Vec<u32> {
    let prefix = format!("thread {t} record ");
    log.iter()
        .filter_map(|r| {
            let v = std::str::from_utf8(r.value.as_deref()?).ok()?;
            v.strip_prefix(&prefix)?.get(..digits)?.parse().ok()
        })
        .collect()
}

/// Two sending threads, `per_thread` records each compressed with `codec`,
/// round-robin over `parts` partitions of a fresh mock cluster, with the
/// producer `configure` sets up. Checks that every record is delivered
/// once without a flush or close (which would seal what is left: lingered
/// batches alone must make their way), that no memory stays charged, and
/// that each thread's records are in order within each partition, every
/// batch compressed. Returns the producer's metrics then.
fn two_threads_lingered(
    codec: crate::Compression,
    parts: u32,
    per_thread: u32,
    configure: impl FnOnce(crate::ProducerBuilder) -> crate::ProducerBuilder,
) -> crate::Metrics {
    let c = cluster(parts as i32);
    let delivered = Arc::new(AtomicUsize::new(0));
    let d2 = delivered.clone();
    let b = builder(&c)
        .linger(Duration::from_millis(1))
        .compression(codec)
        .on_delivery(move |r| {
            assert!(r.result.is_ok(), "{:?}", r.result);
            d2.fetch_add(1, Ordering::Relaxed);
        });
    let p = configure(b).build().unwrap();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let p = &p;
            s.spawn(move || {
                for i in 0..per_thread {
                    let v = format!("thread {t} record {i:05} with a text-like value");
                    let r = Record::new("t", v.as_bytes()).partition((i % parts) as i32);
                    drop(p.send(r).unwrap());
                }
            });
        }
    });
    let total = 2 * per_thread as usize;
    let t0 = Instant::now();
    while delivered.load(Ordering::Relaxed) < total && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = delivered.load(Ordering::Relaxed);
    assert_eq!(n, total, "delivered unflushed");
    let m = p.metrics();
    assert_eq!(m.buffered_bytes, 0, "memory returned");
    assert!(p.close_timeout(Duration::from_secs(30)));
    for part in 0..parts {
        let log = c.records("t", part as i32).unwrap();
        assert_eq!(log.len(), (2 * per_thread / parts) as usize);
        for t in 0..2u32 {
            let mine = thread_records(&log, t, 5);
            let want: Vec<u32> = (0..per_thread).filter(|i| i % parts == part).collect();
            assert_eq!(mine, want, "thread {t}, partition {part}");
        }
        let batches = c.batches("t", part as i32).unwrap();
        let id = match codec {
            crate::Compression::Gzip => 1,
            crate::Compression::Zstd => 4,
            other => unreachable!("{other:?}: not used here"),
        };
        assert!(
            batches.iter().all(|b| b.header.attributes & 7 == id),
            "{codec:?}"
        );
    }
    m
}

/// Compression threads kept a request's worth behind (a small
/// `max.request.size`, more lingered batches than its budget lets the I/O
/// thread compress itself), so the I/O thread hands off some lingered
/// batches and compresses others itself, while two sending threads race
/// it and the worker: everything arrives once and in order
/// ([`two_threads_lingered`]).
#[test]
fn batches_beside_busy_compression_threads_arrive_once_in_order() {
    two_threads_lingered(crate::Compression::Gzip, 500, 20_000, |b| {
        b.batch_size(4_096)
            .max_request_size(4_096)
            .compression_threads(1)
    });
}

/// Without compression threads, two sending threads that fill a small
/// `buffer.memory` with lingered batches over many partitions block, and
/// compress what the I/O thread hands them meanwhile: some batches are
/// compressed that way, and everything arrives once and in order
/// ([`two_threads_lingered`]).
#[test]
fn threads_blocked_for_memory_compress_and_everything_arrives_once_in_order() {
    let m = two_threads_lingered(crate::Compression::Gzip, 200, 20_000, |b| {
        b.buffer_memory(256 * 1024).compression_threads(0)
    });
    assert!(
        m.batches_compressed_while_blocked > 0,
        "no batch compressed by a blocked thread: {m:?}"
    );
}

/// The same with zstd at level 9, where blocked threads help too
/// (`blocked_senders_compress`).
#[test]
fn threads_blocked_for_memory_compress_zstd_from_level_9() {
    let m = two_threads_lingered(crate::Compression::Zstd, 200, 20_000, |b| {
        b.buffer_memory(256 * 1024)
            .compression_threads(0)
            .compression_zstd_level(9)
    });
    assert!(
        m.batches_compressed_while_blocked > 0,
        "no batch compressed by a blocked thread: {m:?}"
    );
}

/// One ProduceRequest of 2,000 one-record batches (2,000 partitions of one
/// broker): each batch a chunk of its own, about 4,000 chunks in one frame,
/// more than one `SENDMSG` takes (IOV_MAX), written over several sends on
/// each backend. Every record lands in its partition, from one request.
#[test]
fn a_request_of_more_batches_than_iov_max_arrives_whole() {
    let c = cluster(2000);
    let uring_allowed = crate::driver::io_uring_usable();
    for backend in [crate::IoBackend::Epoll, crate::IoBackend::IoUring] {
        if backend == crate::IoBackend::IoUring && !uring_allowed {
            continue;
        }
        let requests_before = c.request_count(PRODUCE);
        let p = builder(&c)
            .io_backend(backend)
            .linger(Duration::from_secs(3600))
            .build()
            .unwrap();
        let handles: Vec<_> = (0..2000)
            .map(|i| {
                let v = format!("{backend}-{i}");
                p.send(Record::new("t", v.as_bytes()).partition(i)).unwrap()
            })
            .collect();
        // Nothing is ready before close seals every batch at once.
        assert!(handles.iter().all(|h| h.try_result().is_none()));
        assert!(p.close());
        for (i, h) in handles.iter().enumerate() {
            assert_eq!(h.wait().unwrap().partition, i as i32);
        }
        assert_eq!(
            c.request_count(PRODUCE) - requests_before,
            1,
            "{backend}: all 2,000 batches in one request"
        );
        for i in [0, 1023, 1024, 1999] {
            let recs = c.records("t", i).unwrap();
            let last = recs.last().expect("a record").value.clone().unwrap();
            assert_eq!(&last[..], format!("{backend}-{i}").as_bytes());
        }
    }
}

/// Awaiting a flush or a purge begun after close completes (it waited
/// forever: nothing reads the request once the I/O thread has stopped).
#[test]
fn flush_and_purge_begun_after_close_can_be_awaited() {
    let c = cluster(1);
    let p = builder(&c).build().unwrap();
    p.send(Record::new("t", b"a")).unwrap().wait().unwrap();
    assert!(p.close());
    let flush = p.begin_flush();
    let purge = p.begin_purge();
    // A bound only, so that the bug fails the test instead of hanging it.
    assert!(flush.wait_timeout(Duration::from_secs(10)), "flush hangs");
    assert!(purge.wait_timeout(Duration::from_secs(10)), "purge hangs");
    block_on(flush);
    block_on(purge);
    assert!(p.flush_timeout(Duration::from_secs(10)));
    assert!(p.purge());
}

/// With acks=0 a record is reported delivered once its request is built:
/// close must then still write that request before the socket goes. (The
/// I/O thread stopped as soon as the core finished, cancelling the writes
/// under way: records reported delivered were never written.)
#[test]
fn close_with_acks_0_writes_every_request_it_reported_delivered() {
    let c = cluster(1);
    let mut backends = vec![crate::IoBackend::Epoll];
    if crate::driver::io_uring_usable() {
        backends.push(crate::IoBackend::IoUring);
    }
    for (round, backend) in backends.into_iter().enumerate() {
        let p = builder(&c)
            .io_backend(backend)
            .acks(crate::Acks::None)
            .linger(Duration::from_secs(3600))
            .batch_size(900_000)
            .max_request_size(64 << 20)
            .buffer_memory(256 << 20)
            .build()
            .unwrap();
        // Metadata and a connection first.
        let warm_up = p.send(Record::new("t", b"warm-up")).unwrap();
        p.flush();
        warm_up.wait().unwrap();
        // Far more than a socket takes at once: close has to wait for the
        // writes.
        let v = vec![7u8; 800_000];
        let sent: Vec<_> = (0..40)
            .map(|_| p.send(Record::new("t", &v).partition(0)).unwrap())
            .collect();
        assert!(p.close(), "{backend}");
        assert!(sent.iter().all(|f| matches!(f.try_result(), Some(Ok(_)))));
        // Nothing tells when the broker has read them (acks=0): wait for
        // its log, bounded.
        let want = 41 * (round + 1);
        let start = Instant::now();
        let mut stored = 0;
        while start.elapsed() < Duration::from_secs(10) {
            stored = c.records("t", 0).unwrap().len();
            if stored >= want {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(
            stored, want,
            "{backend}: records reported delivered were lost"
        );
    }
}

/// With acks=0 a batch completes when its request is built, but the I/O
/// thread still holds the request until the socket takes it: its
/// `buffer.memory` stays charged until then, so a broker that stops
/// reading stops the senders (at `max.block.ms`) instead of the producer
/// queueing requests without bound. (Released at completion, 64 MiB of
/// requests queued behind a 1 MiB `buffer.memory`.)
#[test]
fn acks_0_requests_waiting_to_be_written_stay_within_buffer_memory() {
    let c = cluster(1);
    let limit = 1 << 20;
    let p = builder(&c)
        .acks(crate::Acks::None)
        .linger(Duration::ZERO)
        .batch_size(64 << 10)
        .buffer_memory(limit)
        .max_block(Duration::from_millis(200))
        .build()
        .unwrap();
    let warm_up = p.send(Record::new("t", b"warm-up")).unwrap();
    p.flush();
    warm_up.wait().unwrap();
    // The broker stops reading: its connection thread waits in the hook.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let g2 = gate.clone();
    c.set_hook(PRODUCE, move |_| {
        let (open, cv) = &*g2;
        let mut o = open.lock().unwrap();
        while !*o {
            o = cv.wait(o).unwrap();
        }
        Vec::new()
    });
    let v = vec![7u8; 60_000];
    let mut refused = 0;
    for _ in 0..1000 {
        match p.send(Record::new("t", &v)) {
            Ok(_) => {}
            Err(SendError::BufferFull { .. }) => {
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    let m = p.metrics();
    let held = m.request_bytes_held;
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    // The socket's own buffers take a few MiB besides.
    assert!(
        refused == 3 && held <= 2 * limit as u64,
        "{held} bytes of requests held by the I/O thread with buffer.memory {limit}, \
         {refused} sends refused"
    );
    assert!(p.close());
}

/// Which codecs and levels have blocked sending threads compress
/// (`blocked_senders_compress`): gzip, and zstd from level 9 whichever
/// property sets it; not zstd's default or level 6, nor lz4 or snappy.
#[test]
fn blocked_senders_compress_gzip_and_slow_zstd_levels() {
    let with = |props: &[(&str, &str)]| {
        let mut c = crate::ProducerConfig::default();
        for (k, v) in props {
            c = c.set(k, v).unwrap();
        }
        crate::producer::blocked_senders_compress(&c)
    };
    assert!(with(&[("compression.type", "gzip")]));
    assert!(with(&[
        ("compression.type", "gzip"),
        ("compression.gzip.level", "1")
    ]));
    assert!(!with(&[("compression.type", "zstd")]));
    assert!(!with(&[
        ("compression.type", "zstd"),
        ("compression.zstd.level", "6")
    ]));
    assert!(with(&[
        ("compression.type", "zstd"),
        ("compression.zstd.level", "9")
    ]));
    assert!(with(&[
        ("compression.type", "zstd"),
        ("compression.level", "12")
    ]));
    assert!(!with(&[
        ("compression.type", "zstd"),
        ("compression.level", "-1")
    ]));
    assert!(!with(&[("compression.type", "lz4")]));
    assert!(!with(&[("compression.type", "snappy")]));
    assert!(!with(&[("compression.type", "none")]));
}
