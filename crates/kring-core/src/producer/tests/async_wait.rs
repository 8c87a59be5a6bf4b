//! Async senders waiting for `buffer.memory`: how many wake-ups a crowd of
//! them costs, and in which order they go.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::*;

use crate::test_wake::{counted_wakers, poll_woken};

/// A sim of 4 partitions with 64 KiB of `buffer.memory` filled with
/// 900-byte records (batches of 1 KiB, no idempotence), and how many went
/// in.
fn memory_full() -> (MockSim, u32) {
    let config = Config {
        buffer_memory: 64 * 1024,
        batch_size: 1024,
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 4);
    learn_metadata(&mut sim);
    let filled = fill_memory(&sim, 4, 900);
    assert!(filled > 0);
    (sim, filled)
}

/// Many async senders wait for memory while batches complete one by one:
/// each release wakes the oldest waiters whose needs fit in what is free
/// (see `wait`). Before, every release woke every waiting task (and each
/// re-poll pushed a `MemoryWanted` notice): `waiters × releases`
/// wake-ups, quadratic in a crowd of tasks (tokio tasks each awaiting a
/// send): 22,000 for these 200. The senders also finish in the order they
/// started waiting.
#[test]
fn async_senders_waiting_for_memory_are_woken_in_turn() {
    const TASKS: usize = 200;
    let (mut sim, filled) = memory_full();
    let shared = sim.shared.clone();
    let value = vec![9u8; 900];
    let deadline = sim.now + Duration::from_secs(3600);
    let (counts, wakers) = counted_wakers(TASKS);
    let mut tasks: Vec<_> = (0..TASKS)
        .map(|_| Some(shared.append_async(sim.now, deadline)))
        .collect();
    let rec = |i: usize| record_ref((i % 4) as i32, &value);
    for (i, t) in tasks.iter_mut().enumerate() {
        let mut cx = Context::from_waker(&wakers[i]);
        let p = t.as_mut().unwrap().poll_produce(sim.now, &rec(i), &mut cx);
        assert!(p.is_pending(), "task {i} found memory at once");
    }
    // An executor: polls a task when its wake-up count moved.
    let mut seen = vec![0usize; TASKS];
    let mut done_order = Vec::new();
    let mut steps = 0;
    while done_order.len() < TASKS {
        steps += 1;
        assert!(steps < 200_000, "{} of {TASKS} done", done_order.len());
        let now = sim.now;
        let polled = poll_woken(&mut tasks, &counts, &wakers, &mut seen, |i, t, cx| {
            let Poll::Ready(r) = t.poll_produce(now, &rec(i), cx) else {
                return false;
            };
            assert_eq!(r.expect("appended").partition, (i % 4) as i32);
            done_order.push(i);
            true
        });
        if !polled {
            assert!(
                sim.step(),
                "{} of {TASKS} done, nothing to do",
                done_order.len()
            );
        }
    }
    let wakes: usize = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).sum();
    eprintln!("{wakes} wake-ups for {TASKS} tasks");
    assert!(
        wakes <= 3 * TASKS,
        "{wakes} wake-ups for {TASKS} waiting tasks"
    );
    assert_eq!(done_order, (0..TASKS).collect::<Vec<_>>(), "in turn");
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    assert_eq!(
        log(&sim, 0).len() + log(&sim, 1).len() + log(&sim, 2).len() + log(&sim, 3).len(),
        filled as usize + TASKS + 1
    );
}

/// Tasks woken for memory and then dropped (their sends cancelled)
/// without polling give up their claims: the tasks behind them are woken,
/// not left waiting for a release that already came.
#[test]
fn cancelled_tasks_hand_their_turn_on() {
    const TASKS: usize = 200;
    let (mut sim, _) = memory_full();
    let shared = sim.shared.clone();
    let value = vec![9u8; 900];
    let deadline = sim.now + Duration::from_secs(3600);
    let (counts, wakers) = counted_wakers(TASKS);
    let mut tasks: Vec<_> = (0..TASKS)
        .map(|_| Some(shared.append_async(sim.now, deadline)))
        .collect();
    for (i, t) in tasks.iter_mut().enumerate() {
        let mut cx = Context::from_waker(&wakers[i]);
        let p = t
            .as_mut()
            .unwrap()
            .poll_produce(sim.now, &record_ref(0, &value), &mut cx);
        assert!(p.is_pending());
    }
    let mut cancelled = 0;
    // Every batch completes; then only hand-overs can wake the rest.
    sim.drive();
    while cancelled < TASKS {
        let woken: Vec<usize> = (0..TASKS)
            .filter(|&i| tasks[i].is_some() && counts[i].0.load(Ordering::SeqCst) > 0)
            .collect();
        assert!(
            !woken.is_empty(),
            "{} tasks left waiting with memory free",
            TASKS - cancelled
        );
        assert_eq!(woken[0], cancelled, "oldest first");
        for i in woken {
            tasks[i] = None;
            cancelled += 1;
        }
    }
    assert_eq!(shared.buffered_bytes(), 0, "nothing left charged");
}

/// Threads blocked in `append` and async tasks wait for memory together,
/// registered alternately: every one of them gets its memory as batches
/// complete. Their lines are kept apart (the threads' in the pool, the
/// tasks' in its wait list) and a release hands a turn to the oldest of
/// each, so neither kind starves the other.
#[test]
fn blocked_threads_and_async_tasks_waiting_together_all_go() {
    const EACH: usize = 16;
    let (mut sim, filled) = memory_full();
    let shared = sim.shared.clone();
    let value = vec![9u8; 900];
    let block = Duration::from_secs(3600);
    let deadline = sim.now + block;
    let (counts, wakers) = counted_wakers(EACH);
    let mut seen = [0usize; EACH];
    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    let mut tasks: Vec<_> = (0..EACH).map(|_| None).collect();
    for i in 0..EACH {
        let (shared2, tx, now) = (shared.clone(), tx.clone(), sim.now);
        threads.push(std::thread::spawn(move || {
            let v = vec![8u8; 900];
            let r = shared2.append(now, record_ref((i % 4) as i32, &v), now + block);
            let _ = tx.send(r.map(|o| (i, o)));
        }));
        while shared.pool.waiters() < i + 1 {
            assert!(!threads[i].is_finished(), "thread {i} did not block");
            std::thread::yield_now();
        }
        let mut t = shared.append_async(sim.now, deadline);
        let mut cx = Context::from_waker(&wakers[i]);
        let p = t.poll_produce(sim.now, &record_ref((i % 4) as i32, &value), &mut cx);
        assert!(p.is_pending(), "task {i} found memory at once");
        tasks[i] = Some(t);
    }
    let mut handles = Vec::new();
    let (mut threads_done, mut tasks_done, mut idle) = (0, 0, 0u64);
    while threads_done < EACH || tasks_done < EACH {
        let mut progress = false;
        // An executor: polls a task when its wake-up count moved.
        let now = sim.now;
        poll_woken(&mut tasks, &counts, &wakers, &mut seen, |i, t, cx| {
            let Poll::Ready(r) = t.poll_produce(now, &record_ref((i % 4) as i32, &value), cx)
            else {
                return false;
            };
            let _ = r.expect("task appended");
            tasks_done += 1;
            progress = true;
            true
        });
        while let Ok(r) = rx.try_recv() {
            handles.push(r.expect("thread appended"));
            threads_done += 1;
            progress = true;
        }
        if progress {
            continue;
        }
        // Simulated time moves on to what is due soon (the broker's
        // answers), never past the batches' delivery timeout while a
        // woken thread is still on its way to append (it appends at the
        // `now` it started with).
        sim.settle();
        if sim
            .next_deadline()
            .is_some_and(|t| t <= sim.now + Duration::from_secs(1))
        {
            sim.step();
        } else {
            idle += 1;
            assert!(
                idle < 2_000_000,
                "{threads_done} threads and {tasks_done} tasks of {EACH} each done"
            );
            std::thread::yield_now();
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    for (i, o) in &handles {
        let r = o.delivery.try_result().expect("settled");
        assert_eq!(r.expect("delivered").partition, (i % 4) as i32);
    }
    let sent: usize = (0..4).map(|p| log(&sim, p).len()).sum();
    assert_eq!(sent, filled as usize + 2 * EACH + 1);
}

/// A test executor: until every task in `tasks` is done, polls those whose
/// wake-up count moved (`poll` gets the sim's time and returns whether the
/// task finished), else lets the sim go on (a step, or 10 ms when nothing
/// is due).
fn run_woken<T: std::fmt::Debug>(
    sim: &mut MockSim,
    tasks: &mut [Option<T>],
    counts: &[Arc<crate::test_wake::CountWake>],
    wakers: &[Waker],
    mut poll: impl FnMut(usize, std::time::Instant, &mut T, &mut Context<'_>) -> bool,
) {
    let mut seen = vec![0usize; tasks.len()];
    for step in 0.. {
        assert!(step < 100_000, "tasks left: {tasks:?}");
        if tasks.iter().all(Option::is_none) {
            break;
        }
        let now = sim.now;
        let polled = poll_woken(tasks, counts, wakers, &mut seen, |i, t, cx| {
            poll(i, now, t, cx)
        });
        if !polled && !sim.step() {
            sim.run_for(ms(10));
        }
    }
}

/// A sim whose I/O side has nothing left to do and is parked, so that the
/// next notice a sender pushes owns its wake-up.
pub(super) fn parked(mut sim: MockSim) -> MockSim {
    sim.settle();
    assert!(sim.core.prepare_park(), "notices pending");
    sim
}

/// Counts the calls of the driver's I/O waker.
pub(super) fn counted_io_waker(sim: &MockSim) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    sim.shared.set_io_waker(Arc::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
    }));
    calls
}

/// An async send that must wait while the I/O thread is parked asks it
/// for what it waits for (memory sooner than linger, or metadata; a
/// partition metadata lacks: `metadata.rs`) and
/// wakes it through the driver's waker before returning `Pending`: the
/// notice that found the thread parked owns the wake-up, and no later
/// notice will wake it.
#[test]
fn an_async_send_wakes_the_parked_io_thread_before_it_waits() {
    // For memory.
    let (sim, _) = memory_full();
    let sim = parked(sim);
    let calls = counted_io_waker(&sim);
    let value = vec![9u8; 900];
    let mut a = sim
        .shared
        .append_async(sim.now, sim.now + Duration::from_secs(60));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(a
        .poll_produce(sim.now, &record_ref(0, &value), &mut cx)
        .is_pending());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "memory");
    drop(a);

    // For a topic's metadata.
    let mut sim = sim_with(cfg(), 1, 2);
    learn_metadata(&mut sim);
    let sim = parked(sim);
    let calls = counted_io_waker(&sim);
    let r = crate::RecordRef {
        topic: "u",
        ..record_ref(0, b"v")
    };
    let mut a = sim
        .shared
        .append_async(sim.now, sim.now + Duration::from_secs(60));
    assert!(a.poll_append(sim.now, &r, &mut cx).is_pending());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "metadata");
}

/// Steps the sim until the sender thread `t` is done (a bounded spin, no
/// sleeping), then joins it; `stuck` says what it waited for.
fn step_until_finished(sim: &mut MockSim, t: std::thread::JoinHandle<()>, stuck: &str) {
    for spins in 0.. {
        if t.is_finished() {
            break;
        }
        assert!(spins < 2_000_000, "{stuck}");
        if !sim.step() {
            std::thread::yield_now();
        }
    }
    t.join().unwrap();
}

/// A sender thread that must block for memory while the I/O thread is
/// parked wakes it (to send the lingering batches now) before it blocks.
#[test]
fn a_blocked_sender_wakes_the_parked_io_thread_first() {
    let (sim, _) = memory_full();
    let mut sim = parked(sim);
    let calls = counted_io_waker(&sim);
    let (t, rx) = blocked_sender(&sim, 0, 900, Duration::from_secs(3600));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    step_until_finished(&mut sim, t, "the sender never got memory");
    assert_eq!(rx.recv().unwrap().expect("appended"), 0);
}

/// A sender thread that must block for a partition its topic had but the
/// latest metadata lacks (a broker lagging behind a partition increase)
/// wakes the parked I/O thread, so that metadata is asked for, before it
/// blocks; it goes on once metadata lists the partition again.
#[test]
fn a_sender_blocked_for_a_partition_wakes_the_parked_io_thread_first() {
    let config = Config {
        metadata_max_age: ms(1_000),
        ..cfg()
    };
    let mut sim = sim_with(config, 1, 3);
    learn_metadata(&mut sim);
    let lag = sim
        .cluster
        .inject(Fault::lie(ApiKey::Metadata, kring_mock::Lie::PartitionsBelow(2)).always());
    sim.run_for(ms(1_500));
    assert_eq!(sim.shared.partition_count("t"), Some(2));
    let mut sim = parked(sim);
    let calls = counted_io_waker(&sim);
    let shared = sim.shared.clone();
    let now = sim.now;
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let r = shared
            .append(now, record_ref(2, b"v"), now + Duration::from_secs(3600))
            .map(|o| o.partition);
        let _ = tx.send(r);
    });
    for spins in 0.. {
        if calls.load(Ordering::SeqCst) > 0 {
            break;
        }
        assert!(!t.is_finished(), "the sender did not block");
        assert!(spins < 20_000_000, "the parked I/O thread was not woken");
        std::thread::yield_now();
    }
    sim.cluster.remove_fault(lag);
    step_until_finished(&mut sim, t, "the sender never got its partition");
    assert_eq!(rx.recv().unwrap().expect("appended"), 2);
}

/// Without a driver's I/O waker, the wake-up an async send came to own
/// while it waited is not dropped: its outcome reports it
/// ([`AppendOutcome::wake`], as `Shared::set_io_waker` says), even when
/// the append itself found the I/O thread awake.
#[test]
fn without_an_io_waker_the_owed_wake_up_comes_back_in_the_outcome() {
    let (sim, _) = memory_full();
    let mut sim = parked(sim);
    let value = vec![9u8; 900];
    let shared = sim.shared.clone();
    let mut a = shared.append_async(sim.now, sim.now + Duration::from_secs(3600));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(a
        .poll_produce(sim.now, &record_ref(0, &value), &mut cx)
        .is_pending());
    sim.drive();
    // Awake: the append's own notices ask for no wake-up.
    sim.core.handle_wakeup(sim.now);
    match a.poll_produce(sim.now, &record_ref(0, &value), &mut cx) {
        Poll::Ready(Ok(o)) => assert!(o.wake, "the owed wake-up was dropped"),
        other => panic!("{other:?}"),
    }
    drop(a);
    assert!(shared.notices.with(|n| n.list.len()).0 > 0);
}

/// An async send checks its record before anything else, as a blocking
/// one does: a negative timestamp or an empty topic fails at once.
#[test]
fn an_async_send_checks_its_record_first() {
    let mut sim = sim_with(cfg(), 1, 2);
    learn_metadata(&mut sim);
    let mut cx = Context::from_waker(Waker::noop());
    let now = sim.now;
    let bad_time = crate::RecordRef {
        timestamp_ms: -1,
        ..record_ref(0, b"v")
    };
    let mut a = sim.shared.append_async(now, now + Duration::from_secs(60));
    match a.poll_append(now, &bad_time, &mut cx) {
        Poll::Ready(Err(crate::SendError::InvalidTimestamp(-1))) => {}
        other => panic!("{other:?}"),
    }
    let no_topic = crate::RecordRef {
        topic: "",
        ..record_ref(0, b"v")
    };
    let mut a = sim.shared.append_async(now, now + Duration::from_secs(60));
    match a.poll_produce(now, &no_topic, &mut cx) {
        Poll::Ready(Err(crate::SendError::InvalidTopic(t))) => assert_eq!(&*t, ""),
        other => panic!("{other:?}"),
    }
}

/// A task that waited for a topic's metadata and then waits for memory
/// moves its registration from the one list to the other: it takes a new
/// place in the memory list, never the place of another task that has
/// the same key there (which would then no longer be woken), and both
/// tasks go.
#[test]
fn a_task_moving_from_metadata_to_memory_takes_a_place_of_its_own() {
    let config = Config {
        buffer_memory: 64 * 1024,
        batch_size: 1024,
        enable_idempotence: false,
        ..cfg()
    };
    let mut sim = sim_on(config, cluster(1, 4).topic("u", 1));
    learn_metadata(&mut sim);
    let shared = sim.shared.clone();
    let value = vec![9u8; 900];
    let deadline = sim.now + Duration::from_secs(3600);
    let (counts, wakers) = counted_wakers(2);
    let recs = [
        crate::RecordRef {
            topic: "u",
            ..record_ref(0, &value)
        },
        record_ref(1, &value),
    ];
    // The first waits for `u`'s metadata (first in the metadata list)
    // and is woken when it comes; before it is polled again, memory fills
    // and the second waits for memory (first in the memory list).
    let mut tasks = [
        Some(shared.append_async(sim.now, deadline)),
        Some(shared.append_async(sim.now, deadline)),
    ];
    let mut cx = Context::from_waker(&wakers[0]);
    let t0 = tasks[0].as_mut().unwrap();
    assert!(t0.poll_produce(sim.now, &recs[0], &mut cx).is_pending());
    sim.drive_until(1_000, |_| counts[0].0.load(Ordering::SeqCst) > 0);
    assert!(fill_memory(&sim, 4, 900) > 0);
    let mut cx = Context::from_waker(&wakers[1]);
    let t1 = tasks[1].as_mut().unwrap();
    assert!(t1.poll_produce(sim.now, &recs[1], &mut cx).is_pending());
    let mut waited_for_memory = false;
    run_woken(
        &mut sim,
        &mut tasks,
        &counts,
        &wakers,
        |i, now, t, cx| match t.poll_produce(now, &recs[i], cx) {
            Poll::Ready(r) => {
                assert_eq!(r.expect("appended").partition, i as i32 % 2);
                true
            }
            Poll::Pending => {
                waited_for_memory |= i == 0;
                false
            }
        },
    );
    assert!(waited_for_memory, "the first task never waited for memory");
    let flush = sim.flush();
    sim.drive();
    assert!(flush.is_done());
    assert_eq!(sim.cluster.records("u", 0).expect("u-0").len(), 1);
}

/// Async senders waiting for a topic that never comes each fail at their
/// own block deadline, whichever registered first: the one timer that
/// wakes waiting tasks is moved earlier for an earlier deadline, and a
/// later one does not push it back.
#[test]
fn async_senders_waiting_for_a_topic_fail_at_their_own_block_deadlines() {
    for deadlines_ms in [[1_000u64, 3_000], [3_000, 1_000]] {
        let mut sim = sim_with(cfg(), 1, 1);
        learn_metadata(&mut sim);
        let shared = sim.shared.clone();
        let start = sim.now;
        let rec = crate::RecordRef {
            topic: "never",
            ..record_ref(0, b"v")
        };
        let (counts, wakers) = counted_wakers(2);
        let mut tasks: Vec<_> = deadlines_ms
            .iter()
            .map(|&d| Some(shared.append_async(start, start + ms(d))))
            .collect();
        for (i, t) in tasks.iter_mut().enumerate() {
            let mut cx = Context::from_waker(&wakers[i]);
            let p = t.as_mut().unwrap().poll_append(start, &rec, &mut cx);
            assert!(p.is_pending(), "task {i}");
        }
        let mut failed_at = [None; 2];
        run_woken(
            &mut sim,
            &mut tasks,
            &counts,
            &wakers,
            |i, now, t, cx| match t.poll_append(now, &rec, cx) {
                Poll::Ready(r) => {
                    assert!(
                        matches!(r, Err(crate::error::SendError::MetadataTimeout { .. })),
                        "{r:?}"
                    );
                    failed_at[i] = Some(now - start);
                    true
                }
                Poll::Pending => false,
            },
        );
        for (i, &d) in deadlines_ms.iter().enumerate() {
            let at = failed_at[i].unwrap();
            assert!(
                at >= ms(d) && at < ms(d + 50),
                "task {i} (deadline {d} ms) failed after {at:?}"
            );
        }
    }
}
