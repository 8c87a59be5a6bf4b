//! Sending threads blocked for `buffer.memory`: the line they wait in.
//!
//! Why blocked threads wait in line, each on a condvar of its own: they
//! all slept on one condvar, and every release (one per finished batch,
//! hundreds per response) woke all of them to retake the lock, most only
//! to go back to sleep: with 64 KiB of `buffer.memory`, 128 threads
//! spent 11–17 µs of CPU per 100-byte record against 0.4 for one thread
//! (BENCHMARKS.md, "Threads blocked for memory"). Now a thread takes its
//! place at the back of `blocked` and a release hands turns as
//! `wait::WaitList::wake_next` does for tasks: to the oldest threads whose
//! needs fit in what is free less what threads woken earlier and not back
//! in their wait still claim — and to the oldest one if no woken thread
//! holds a claim, so that progress never depends on that estimate. A
//! woken thread gives up its claim when it re-checks (it reserves, or
//! keeps its place and sleeps again); a thread whose wait passes, or that
//! got its memory, hands turns on to those behind it that fit as it
//! leaves. First come, first served, as the Java client's `BufferPool`
//! (a `Condition` per waiting thread, in a deque, the first signalled).
//! Threads and tasks wait in separate lines, and a release serves the
//! head of each, so neither starves the other. Why not a thread's entry
//! in `tasks`, with a waker that marks and notifies it: the mark must be
//! made under the lock the thread's wait condition reads, and a thread
//! re-checking in its wait holds that lock when, freeing the spares, it
//! wakes `tasks` — such a waker deadlocked there. A sender that does not
//! have to wait (memory is free now) does not queue, as in the Java
//! client.
//!
//! Why the thread's condvar is notified after the lock is let go, and
//! why a woken thread is marked under the lock first: the mark is what
//! the thread's wait condition reads, under the lock, so a notification
//! that comes before the thread sleeps is not lost; notifying after
//! unlocking spares the thread waking to find the lock still held. The
//! one notification made holding the lock is a thread's own, re-checking
//! in its wait, freeing the spares: it may not hand a turn to itself (it
//! is awake and would miss the notification, holding a claim while
//! asleep), and is passed over.
//!

use std::collections::VecDeque;
use std::sync::{Condvar, MutexGuard};

use super::*;

/// What a thread blocked for memory may do meanwhile
/// ([`BufferPool::reserve_blocking_helping`]): whether there is work (cheap:
/// read holding the line's lock), and doing a bounded share of it.
pub(crate) type Help<'a> = (&'a dyn Fn() -> bool, &'a dyn Fn());

/// Threads blocked for memory, first come, first served (the blocking
/// side of [`WaitList`]'s policy; see the module docs).
#[derive(Debug, Default)]
pub(super) struct Blocked {
    /// In the order they blocked.
    queue: VecDeque<BlockedThread>,
    next_id: u64,
    /// The needs of the woken threads, summed.
    claimed: usize,
    /// How many threads are woken.
    woken: usize,
}

/// One blocked thread's place.
#[derive(Debug)]
struct BlockedThread {
    /// Tells this place from the others (the thread looks itself up).
    id: u64,
    /// The bytes it waits for.
    need: usize,
    /// Given a turn and not back in its wait since: it holds a claim on
    /// `need`.
    woken: bool,
    /// What it sleeps on, its own, so that a turn wakes it alone (shared
    /// with the releaser that notifies it after letting the lock go).
    cond: Arc<Condvar>,
}

impl Blocked {
    /// Marks threads woken, oldest first, while their needs fit in `free`
    /// less what woken threads claim — and, with `at_least_one`, the
    /// oldest one if none is woken (memory came back: progress never
    /// depends on `free` being exact) — and adds their condvars to `out`.
    /// Thread `skip` (awake, holding the lock) is passed over.
    fn take_turns(
        &mut self,
        free: usize,
        at_least_one: bool,
        skip: Option<u64>,
        out: &mut Vec<Arc<Condvar>>,
    ) {
        let mut budget = free.saturating_sub(self.claimed);
        let mut force = at_least_one && self.woken == 0;
        for e in self.queue.iter_mut() {
            if e.woken || Some(e.id) == skip {
                continue;
            }
            if e.need > budget && !force {
                break;
            }
            force = false;
            budget = budget.saturating_sub(e.need);
            e.woken = true;
            self.woken += 1;
            self.claimed += e.need;
            out.push(Arc::clone(&e.cond));
            if budget == 0 {
                break;
            }
        }
    }

    /// Gives up a woken thread's claim (it is back in its wait, or left).
    fn unclaim(&mut self, need: usize) {
        self.woken -= 1;
        self.claimed -= need;
    }
}

impl BufferPool {
    /// [`reserve_blocking_helping`](Self::reserve_blocking_helping) for a
    /// fixed `wait`, without help (tests).
    #[cfg(test)]
    pub(crate) fn reserve_blocking(&self, n: usize, wait: Duration) -> bool {
        self.reserve_blocking_helping(n, &|| wait, None)
    }

    /// Reserves `n` bytes, blocking until they fit or `left()` has passed
    /// (asked again after each spell of work). Returns false on timeout,
    /// and at once when the pool closes.
    ///
    /// The thread takes its place at the back of `blocked` and sleeps on
    /// its own condvar until a release hands it a turn (see
    /// [`Blocked::take_turns`]), its wait passes, or the pool closes.
    ///
    /// Meanwhile it does `help`'s work whenever there is some: `help.0`
    /// says whether there is (read holding `blocked`'s lock: it must be
    /// cheap), `help.1` does a bounded share of it (without the lock). The
    /// thread keeps its place meanwhile; a turn handed to it while it works
    /// is taken when it comes back, and past its deadline it takes no more
    /// work. Leaving with work still there, it nudges the next blocked
    /// thread, or, the last, does the work itself: work offered to blocked
    /// threads never waits for one that is gone ([`Self::nudge`]).
    pub(crate) fn reserve_blocking_helping(
        &self,
        n: usize,
        left: &dyn Fn() -> Duration,
        help: Option<Help<'_>>,
    ) -> bool {
        if self.try_reserve(n) {
            return true;
        }
        let mut wait = left();
        if wait.is_zero() {
            return false;
        }
        // Its own condvar: one allocation per wait, where the thread is
        // about to sleep anyway.
        let cond = Arc::new(Condvar::new());
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.blocked();
        let id = g.next_id;
        g.next_id += 1;
        g.queue.push_back(BlockedThread {
            id,
            need: n,
            woken: false,
            cond: Arc::clone(&cond),
        });
        // The condition is evaluated under `blocked`'s lock, and the
        // thread's place is in the queue before the first evaluation;
        // `release`, `close` and `nudge` mark a place (or make work
        // visible) before taking that lock to notify, so none can be
        // missed between the check and the sleep (a release that found
        // the queue without this thread freed its memory before the first
        // check).
        let mut got = false;
        loop {
            let mut work = false;
            // Past its deadline, the thread looks once more, then leaves.
            let helping = help.filter(|_| !wait.is_zero());
            let (g2, _) = cond
                .wait_timeout_while(g, wait, |b| {
                    if self.closed.load(Ordering::SeqCst) {
                        return false;
                    }
                    if let Some(e) = b.queue.iter_mut().find(|e| e.id == id) {
                        if std::mem::take(&mut e.woken) {
                            b.unclaim(n);
                        }
                    }
                    got = self.try_reserve_holding_lock(n, b, id);
                    if got {
                        return false;
                    }
                    if helping.is_some_and(|(pending, _)| pending()) {
                        work = true;
                        return false;
                    }
                    #[cfg(test)]
                    self.sleeps.fetch_add(1, Ordering::SeqCst);
                    true
                })
                .unwrap_or_else(|e| e.into_inner());
            g = g2;
            let Some((_, run)) = helping.filter(|_| work) else {
                break;
            };
            drop(g);
            run();
            wait = left();
            g = self.blocked();
        }
        // Leaving: a claim still held goes, and whoever is next and fits
        // in what is free now gets the turn this thread leaves (its wait
        // passed while the oldest, or it was woken as the pool closed).
        let mut next = Vec::new();
        if let Some(pos) = g.queue.iter().position(|e| e.id == id) {
            if let Some(e) = g.queue.remove(pos) {
                if e.woken {
                    g.unclaim(n);
                }
            }
        }
        if !self.closed.load(Ordering::SeqCst) {
            g.take_turns(self.free_now(), false, None, &mut next);
        }
        // SeqCst: whoever offers work after this sees one blocked thread
        // fewer, or this thread sees the work below.
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(g);
        for c in next {
            c.notify_one();
        }
        if let Some((pending, run)) = help {
            if pending() {
                if self.waiters() == 0 {
                    run();
                } else {
                    self.nudge();
                }
            }
        }
        got
    }

    /// Work for blocked threads was just made visible: the oldest blocked
    /// thread is notified (if it is busy with earlier work, it finds this
    /// work when it is done). Whoever offers work must check
    /// [`waiters`](Self::waiters) after making it visible and do it
    /// itself if no thread is blocked (one that leaves does what it finds
    /// as it goes).
    pub(crate) fn nudge(&self) {
        let front = self.blocked().queue.front().map(|e| Arc::clone(&e.cond));
        if let Some(c) = front {
            c.notify_one();
        }
    }

    fn blocked(&self) -> MutexGuard<'_, Blocked> {
        self.blocked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The producer is closing: senders blocked for memory stop waiting
    /// now (and fail with `Closed`) rather than at `max.block.ms`, as the
    /// Java client's `BufferPool.close` wakes them.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let all: Vec<Arc<Condvar>> = self
            .blocked()
            .queue
            .iter()
            .map(|e| Arc::clone(&e.cond))
            .collect();
        for c in all {
            c.notify_one();
        }
        self.tasks.wake_all();
    }

    /// [`try_reserve`](Self::try_reserve) for blocked thread `id` holding
    /// `blocked`'s lock (`b`): the spares' charge is released without
    /// taking it again.
    fn try_reserve_holding_lock(&self, n: usize, b: &mut Blocked, id: u64) -> bool {
        if self.try_reserve_unspared(n) {
            return true;
        }
        let bytes = self.free_spares();
        if bytes == 0 {
            return false;
        }
        self.used.fetch_sub(bytes, Ordering::SeqCst);
        let got = self.try_reserve_unspared(n);
        if !got {
            // Threads ahead of this one may fit in what the spares gave
            // back (this one, which does not, is passed over: marking it
            // here would be a notification it misses, as it is not
            // asleep). One that got its memory hands turns on as it
            // leaves. Notified holding the lock, which this thread
            // cannot let go of here (rare: spares are kept only while
            // nobody waits).
            let mut next = Vec::new();
            b.take_turns(self.free_now(), false, Some(id), &mut next);
            for c in next {
                c.notify_one();
            }
        }
        self.tasks.wake_next(|| self.free_now());
        got
    }

    /// Wakes the oldest blocked threads whose needs fit in what is free,
    /// or the oldest one if no woken thread holds a claim (after memory
    /// came back). They are notified after the lock is let go, so that
    /// they do not wake to find it held.
    pub(super) fn wake_blocked(&self) {
        let mut next = Vec::new();
        self.blocked()
            .take_turns(self.free_now(), true, None, &mut next);
        for c in next {
            c.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocked reserver whose help is "take the jobs in `jobs`, counting
    /// them into `done`" (the jobs a compression hand-off would offer).
    fn helping_reserver(
        p: &Arc<BufferPool>,
        n: usize,
        jobs: &Arc<AtomicUsize>,
        done: &Arc<AtomicUsize>,
    ) -> std::thread::JoinHandle<bool> {
        let (p2, jobs, done) = (Arc::clone(p), Arc::clone(jobs), Arc::clone(done));
        // Returned once the thread sleeps in its wait (not merely counted
        // as waiting: before its first look, it could take memory freed
        // for a thread ahead of it).
        let before = p.sleeps.load(Ordering::SeqCst);
        let t = std::thread::spawn(move || {
            let pending = || jobs.load(Ordering::SeqCst) > 0;
            let run = || {
                let k = jobs.swap(0, Ordering::SeqCst);
                done.fetch_add(k, Ordering::SeqCst);
            };
            p2.reserve_blocking_helping(n, &|| Duration::from_secs(600), Some((&pending, &run)))
        });
        while p.sleeps.load(Ordering::SeqCst) == before {
            std::thread::yield_now();
        }
        t
    }

    /// A thread blocked for memory does the work offered while it waits
    /// (nudged), keeps waiting for its memory, and gets it on a release.
    #[test]
    fn a_blocked_thread_does_work_offered_and_keeps_waiting() {
        let p = Arc::new(BufferPool::new(100));
        assert!(p.try_reserve(100));
        let (jobs, done) = (Arc::default(), Arc::<AtomicUsize>::default());
        let t = helping_reserver(&p, 50, &jobs, &done);
        for round in 1..=3 {
            jobs.fetch_add(2, Ordering::SeqCst);
            p.nudge();
            while done.load(Ordering::SeqCst) < 2 * round {
                assert!(!t.is_finished(), "left without memory");
                std::thread::yield_now();
            }
        }
        assert_eq!(p.waiters(), 1, "still waiting");
        p.release(60);
        assert!(t.join().unwrap());
        assert_eq!(done.load(Ordering::SeqCst), 6);
        assert_eq!(p.used(), 90);
    }

    /// Work offered that a blocked thread has not taken when it gets its
    /// memory: the next blocked thread is nudged to do it, and the last one
    /// to leave does it itself — offered work never waits for a thread
    /// that is gone.
    #[test]
    fn leaving_threads_pass_work_on_or_do_it() {
        for _ in 0..100 {
            let p = Arc::new(BufferPool::new(100));
            assert!(p.try_reserve(100));
            let (jobs, done) = (Arc::default(), Arc::<AtomicUsize>::default());
            let a = helping_reserver(&p, 50, &jobs, &done);
            let b = helping_reserver(&p, 50, &jobs, &done);
            // Work appears without a nudge (as if the nudge went to a
            // thread just leaving); a release then lets the first go.
            jobs.fetch_add(1, Ordering::SeqCst);
            p.release(50);
            assert!(a.join().unwrap());
            let mut spins = 0u64;
            while done.load(Ordering::SeqCst) < 1 {
                spins += 1;
                assert!(spins < 1 << 26, "the work was left behind");
                std::thread::yield_now();
            }
            // Again with one thread left: it does the work as it leaves.
            jobs.fetch_add(1, Ordering::SeqCst);
            p.release(50);
            assert!(b.join().unwrap());
            assert_eq!(done.load(Ordering::SeqCst), 2);
            assert_eq!(jobs.load(Ordering::SeqCst), 0);
        }
    }

    /// Close wakes a blocked reserver at once, without memory (it fails
    /// with `Closed` in `Shared`), instead of at its `max.block.ms`.
    #[test]
    fn close_releases_blocked_reservers_without_memory() {
        let p = Arc::new(BufferPool::new(10));
        assert!(p.try_reserve(10));
        let t = blocked_reserver(&p, 5);
        p.close();
        assert!(!t.join().unwrap());
        assert_eq!(p.used(), 10);
        assert!(!p.reserve_blocking(5, Duration::from_secs(600)));
    }

    /// Threads blocked for memory are served in the order they blocked,
    /// and a release wakes only the threads it can serve: each of `N`
    /// threads sleeps once. When every release woke every blocked thread
    /// (one condvar, `notify_all`), they went back to sleep `N²/2` times
    /// and were served in any order.
    #[test]
    fn blocked_threads_are_woken_in_turn() {
        const N: usize = 32;
        let p = Arc::new(BufferPool::new(N * 100));
        assert!(p.try_reserve(N * 100));
        let (tx, rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        for i in 0..N {
            let (p2, tx) = (Arc::clone(&p), tx.clone());
            threads.push(std::thread::spawn(move || {
                let got = p2.reserve_blocking(100, Duration::from_secs(600));
                let _ = tx.send((i, got));
            }));
            // Asleep in its wait before the next one blocks.
            while p.sleeps.load(Ordering::SeqCst) < i + 1 {
                std::thread::yield_now();
            }
        }
        let mut order = Vec::new();
        for _ in 0..N {
            p.release(100);
            let (i, got) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("nobody served by a release");
            assert!(got);
            order.push(i);
        }
        for t in threads {
            t.join().unwrap();
        }
        let sleeps = p.sleeps.load(Ordering::SeqCst);
        assert!(
            sleeps <= N + N / 4,
            "{sleeps} sleeps of {N} blocked threads"
        );
        assert_eq!(order, (0..N).collect::<Vec<_>>(), "in turn");
        assert_eq!((p.used(), p.waiters()), (N * 100, 0));
    }

    /// The oldest blocked thread, woken by a release that frees too
    /// little for it, holds up the ones behind it (first come, first
    /// served); when its wait passes it leaves, and the next one, which
    /// fits in what is free, gets its turn then rather than at its own
    /// deadline.
    #[test]
    fn a_blocked_thread_whose_wait_passes_hands_its_turn_on() {
        let p = Arc::new(BufferPool::new(1000));
        assert!(p.try_reserve(1000));
        let first = sleeping_reserver(&p, 600, Duration::from_millis(300), 1);
        let second = sleeping_reserver(&p, 100, Duration::from_secs(600), 2);
        p.release(500);
        assert!(!outcome(&first), "600 bytes never came free");
        assert!(outcome(&second));
        assert_eq!((p.used(), p.waiters()), (600, 0));
        let g = p.blocked();
        assert_eq!((g.queue.len(), g.woken, g.claimed), (0, 0, 0));
    }

    /// A thread whose wait passes takes only its own place out of the
    /// line, not the place of the thread ahead of it, which the next
    /// release serves.
    #[test]
    fn a_thread_leaving_the_line_takes_only_its_own_place() {
        let p = Arc::new(BufferPool::new(1000));
        assert!(p.try_reserve(1000));
        let first = sleeping_reserver(&p, 600, Duration::from_secs(600), 1);
        let second = sleeping_reserver(&p, 100, Duration::from_millis(50), 2);
        assert!(!outcome(&second));
        let needs: Vec<usize> = p.blocked().queue.iter().map(|e| e.need).collect();
        assert_eq!(needs, [600]);
        p.release(600);
        assert!(outcome(&first));
        assert_eq!((p.used(), p.waiters()), (1000, 0));
    }

    /// Close wakes every blocked thread, not only the oldest.
    #[test]
    fn close_releases_every_blocked_reserver() {
        const N: usize = 8;
        let p = Arc::new(BufferPool::new(1000));
        assert!(p.try_reserve(1000));
        let threads: Vec<_> = (0..N)
            .map(|i| sleeping_reserver(&p, 100, Duration::from_secs(600), i + 1))
            .collect();
        p.close();
        for t in &threads {
            assert!(!outcome(t));
        }
        assert_eq!((p.used(), p.waiters()), (1000, 0));
        let g = p.blocked();
        assert_eq!((g.queue.len(), g.woken, g.claimed), (0, 0, 0));
    }

    /// Places in line needing `needs` bytes each (ids 0, 1, ...), none
    /// woken, for `take_turns` alone (no thread sleeps on them).
    fn line(needs: &[usize]) -> Blocked {
        let mut b = Blocked::default();
        for &need in needs {
            b.queue.push_back(BlockedThread {
                id: b.next_id,
                need,
                woken: false,
                cond: Arc::new(Condvar::new()),
            });
            b.next_id += 1;
        }
        b
    }

    /// The ids of the woken places.
    fn woken(b: &Blocked) -> Vec<u64> {
        b.queue.iter().filter(|e| e.woken).map(|e| e.id).collect()
    }

    /// Turns go to the oldest places whose needs fit in what is free less
    /// what woken places claim — a need equal to what is left fits, and
    /// nobody overtakes a place that does not fit — and a woken place is
    /// not woken again: its claim stands until it re-checks.
    #[test]
    fn turns_go_oldest_first_to_needs_that_fit_less_claims() {
        let mut b = line(&[30, 20, 50, 10, 5]);
        let mut out = Vec::new();
        b.take_turns(50, false, None, &mut out);
        assert_eq!(woken(&b), [0, 1]);
        assert_eq!((b.woken, b.claimed, out.len()), (2, 50, 2));
        // 110 free, 50 of it claimed: places 2 and 3 fit in the 60 left,
        // exactly, and the pass stops there.
        b.take_turns(110, false, None, &mut out);
        assert_eq!(woken(&b), [0, 1, 2, 3]);
        assert_eq!((b.woken, b.claimed, out.len()), (4, 110, 4));
        // Place 0 re-checks and goes back to sleep: its claim goes, and
        // it can be woken again.
        b.queue[0].woken = false;
        b.unclaim(30);
        assert_eq!((b.woken, b.claimed), (3, 80));
        b.take_turns(110, false, None, &mut out);
        assert_eq!(woken(&b), [0, 1, 2, 3]);
        assert_eq!((b.woken, b.claimed, out.len()), (4, 110, 5));
        // Place 4 (5 bytes) does not overtake: nothing is left.
        b.take_turns(114, false, None, &mut out);
        assert_eq!((b.woken, out.len()), (4, 5));
    }

    /// Memory came back but fits nobody: the oldest place gets a turn
    /// anyway when no woken place holds a claim (progress does not hang
    /// on `free` being exact), and not when one does; a place awake
    /// holding the lock (`skip`) is passed over.
    #[test]
    fn the_oldest_gets_a_turn_when_nobody_holds_one() {
        let mut b = line(&[100, 100, 10]);
        let mut out = Vec::new();
        b.take_turns(0, false, None, &mut out);
        assert!(out.is_empty());
        b.take_turns(10, true, None, &mut out);
        assert_eq!((woken(&b), b.claimed), (vec![0], 100));
        b.take_turns(10, true, None, &mut out);
        assert_eq!(woken(&b), [0], "a claim is held: no second forced turn");
        let mut b = line(&[100, 100, 10]);
        b.take_turns(100, false, Some(0), &mut out);
        assert_eq!(woken(&b), [1], "the skipped place is passed over");
        let mut b = line(&[100, 100]);
        b.take_turns(10, true, Some(0), &mut out);
        assert_eq!(
            woken(&b),
            [1],
            "the forced turn goes past the skipped place"
        );
    }

    #[test]
    fn blocked_reserver_is_released_by_another_thread() {
        let p = Arc::new(BufferPool::new(10));
        assert!(p.try_reserve(10));
        let t = blocked_reserver(&p, 5);
        p.release(10);
        assert!(t.join().unwrap());
        assert_eq!(p.used(), 5);
    }
}
