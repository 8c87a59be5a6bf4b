//! A waker that counts its wake-ups, for tests of what wakes a task and
//! how often.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;

/// Counts how many times it was woken (`.0`).
pub(crate) struct CountWake(pub(crate) AtomicUsize);

impl Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `n` tasks' wakers, each counting its wake-ups.
pub(crate) fn counted_wakers(n: usize) -> (Vec<Arc<CountWake>>, Vec<std::task::Waker>) {
    let counts: Vec<Arc<CountWake>> = (0..n)
        .map(|_| Arc::new(CountWake(AtomicUsize::new(0))))
        .collect();
    let wakers = counts.iter().map(|c| c.clone().into()).collect();
    (counts, wakers)
}

/// One round of a test's executor: polls each task left in `tasks` whose
/// wake-up count moved since `seen` (its last poll), with its own waker;
/// `poll` returns whether the task finished (it is then dropped). Returns
/// whether any task was polled.
pub(crate) fn poll_woken<T>(
    tasks: &mut [Option<T>],
    counts: &[Arc<CountWake>],
    wakers: &[std::task::Waker],
    seen: &mut [usize],
    mut poll: impl FnMut(usize, &mut T, &mut std::task::Context<'_>) -> bool,
) -> bool {
    let mut polled = false;
    for i in 0..tasks.len() {
        let n = counts[i].0.load(Ordering::SeqCst);
        let Some(t) = tasks[i].as_mut() else {
            continue;
        };
        if n == seen[i] {
            continue;
        }
        seen[i] = n;
        polled = true;
        let mut cx = std::task::Context::from_waker(&wakers[i]);
        if poll(i, t, &mut cx) {
            tasks[i] = None;
        }
    }
    polled
}
