//! The per-record side table a batch keeps when a delivery callback is
//! set: each record's timestamp (run-length encoded, the first runs
//! inline) and, once any record carries one, each record's context.
//!
//! Why a table of its own: the callback needs per record what a handle
//! would carry, but a fire-and-forget sender holds no handles; the table
//! is sized and charged to `buffer.memory` before it grows.

/// A batch's per-record side table, kept only when a delivery callback is
/// set: each record's timestamp and, from the first record that carries a
/// context on, each record's context (the earlier ones 0). A batch whose
/// records carry none never allocates the second vector, so sending without
/// context costs what it did before contexts existed.
///
/// Timestamps are kept run-length encoded: records sent in the same
/// millisecond (nearly all of a batch's, at any real rate) share one
/// entry, so a record costs a compare and an increment rather than a
/// vector push, and a batch's table stays a few entries long instead of
/// regrowing with every doubling of its record count.
///
/// The first [`INLINE_RUNS`] runs are kept inline, each as milliseconds
/// after the first and a count in 16 bits; only later runs (or one that
/// does not fit 16 bits) go to a vector. Why: at 10,000 partitions a batch
/// holds a handful of records, each usually its own run (the partition's
/// records come milliseconds apart), and a vector is a separate heap
/// object, cold again by the time the partition's next record comes: the
/// sending thread missed on it at every append past the inline runs, and
/// the I/O thread again when it reported the batch (4 % of the CPU at
/// 10,000 partitions with two inline runs of 16 bytes each).
#[derive(Debug, Default)]
#[repr(C)] // what `push` reads first (see `topics::PartitionSlot`)
pub(crate) struct PerRecord {
    /// The first run's timestamp; inline runs are kept relative to it.
    base: i64,
    /// Inline runs: (ms after `base`, records in a row with it); the first
    /// `inline_len` are in use.
    inline: [(u16, u16); INLINE_RUNS],
    /// Records in the table.
    len: u32,
    inline_len: u8,
    /// A run went to `later`: every run after it goes there too.
    spilled: bool,
    /// `contexts` is not empty: the one thing `push` asks of it.
    has_contexts: bool,
    contexts: Vec<u64>,
    /// The runs after the inline ones, in record order.
    later: Vec<(i64, u32)>,
}

/// How many runs of timestamps a [`PerRecord`] keeps inline.
const INLINE_RUNS: usize = 8;

/// What [`PerRecord::plan_push`] found one more record needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// One more in the inline run at this index (the last one).
    SameRun(usize),
    /// A new inline run, this many ms after the first (a free one, with
    /// no context and nothing spilled: what `push` would make of it).
    NewInline(u16),
    /// Anything else (a run past the inline ones, a context), as
    /// [`PerRecord::push`] does.
    Other,
}

/// The capacity a [`PerRecord`] vector of capacity `cap` grows to when it
/// must hold `need` entries: doubling, at least 4. Explicit (with
/// `reserve_exact`) rather than `Vec`'s own policy, so the growth is known
/// before it happens and charged to `buffer.memory` first.
fn grown(cap: usize, need: usize) -> usize {
    need.max(cap.saturating_mul(2)).max(4)
}

impl PerRecord {
    /// How many of its first bytes an append touches.
    #[cfg(test)]
    pub(crate) const HOT_BYTES: usize = std::mem::offset_of!(PerRecord, contexts);

    /// Records one more record.
    #[inline(always)]
    pub(crate) fn push(&mut self, timestamp_ms: i64, context: u64) {
        if context != 0 || self.has_contexts {
            self.push_context(context);
        }
        let n = self.inline_len as usize;
        if !self.spilled && n != 0 {
            let last = &mut self.inline[n - 1];
            if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                last.1 += 1;
                self.len += 1;
                return;
            }
        }
        self.new_run(timestamp_ms, 1);
        self.len += 1;
    }

    /// How [`push_planned`](Self::push_planned) will record one more
    /// record with `timestamp_ms` and `context`, decided before the record
    /// is appended; `None` if it makes a vector grow (see
    /// [`push_grows`](Self::push_grows)), which must be charged first.
    ///
    /// Why: the append fast path asked `push_grows` before appending and
    /// then `push` after, and both looked for the same last run (a record
    /// sharing its millisecond with the one before, nearly all of them):
    /// the second look is the plan. A record starting a new inline run
    /// (at 10,000 partitions, most of them: a partition's records come
    /// milliseconds apart) is planned too, and recorded without `push`'s
    /// call to `new_run`.
    #[inline(always)]
    pub(crate) fn plan_push(&self, timestamp_ms: i64, context: u64) -> Option<Push> {
        if context == 0 && !self.has_contexts && !self.spilled {
            let n = self.inline_len as usize;
            if n != 0 {
                let i = (n - 1) % INLINE_RUNS;
                let last = self.inline[i];
                if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                    return Some(Push::SameRun(i));
                }
            }
            if let Some((delta, _)) = self.as_inline(timestamp_ms, 1) {
                return Some(Push::NewInline(delta));
            }
        }
        (!self.push_grows(timestamp_ms, context)).then_some(Push::Other)
    }

    /// Records one more record as [`plan_push`](Self::plan_push) planned
    /// (nothing changed the table in between): what [`push`](Self::push)
    /// does.
    #[inline(always)]
    pub(crate) fn push_planned(&mut self, plan: Push, timestamp_ms: i64, context: u64) {
        match plan {
            Push::SameRun(i) => {
                self.inline[i % INLINE_RUNS].1 += 1;
                self.len += 1;
            }
            Push::NewInline(delta) => {
                let n = self.inline_len as usize;
                if n == 0 {
                    self.base = timestamp_ms;
                }
                self.inline[n % INLINE_RUNS] = (delta, 1);
                self.inline_len += 1;
                self.len += 1;
            }
            Push::Other => self.push(timestamp_ms, context),
        }
    }

    /// Heap bytes the table holds (its vectors' capacity): charged to
    /// `buffer.memory` with its batch (see `shared`).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.contexts.capacity() * std::mem::size_of::<u64>()
            + self.later.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    /// Whether recording one more record with `timestamp_ms` and `context`
    /// makes a vector grow (an allocation). Touches the vectors only when
    /// the record could go to one: a record sharing its millisecond with
    /// the one before and without a context reads the inline runs alone.
    #[inline(always)]
    pub(crate) fn push_grows(&self, timestamp_ms: i64, context: u64) -> bool {
        ((context != 0 || self.has_contexts) && self.len as usize >= self.contexts.capacity())
            || (self.adds_run_later(timestamp_ms) && self.later.len() == self.later.capacity())
    }

    /// [`heap_bytes`](Self::heap_bytes) after recording one more record
    /// with `timestamp_ms` and `context` (the vectors grow exactly as
    /// predicted here: see `grown`).
    pub(crate) fn heap_bytes_after_push(&self, timestamp_ms: i64, context: u64) -> usize {
        let mut contexts = self.contexts.capacity();
        if (context != 0 || self.has_contexts) && self.len as usize >= contexts {
            contexts = grown(contexts, self.len as usize + 1);
        }
        let mut later = self.later.capacity();
        if self.adds_run_later(timestamp_ms) && self.later.len() == later {
            later = grown(later, later + 1);
        }
        contexts * std::mem::size_of::<u64>() + later * std::mem::size_of::<(i64, u32)>()
    }

    /// Whether one more record with `timestamp_ms` starts a run in
    /// `later` (as `push` and `new_run` decide).
    #[inline(always)]
    fn adds_run_later(&self, timestamp_ms: i64) -> bool {
        if !self.spilled {
            let n = self.inline_len as usize;
            if n != 0 {
                let last = self.inline[n - 1];
                if self.base + i64::from(last.0) == timestamp_ms && last.1 != u16::MAX {
                    return false;
                }
            }
            if self.as_inline(timestamp_ms, 1).is_some() {
                return false;
            }
        }
        !matches!(self.later.last(), Some(last) if last.0 == timestamp_ms && last.1 != u32::MAX)
    }

    /// Whether the table holds heap memory a later batch could reuse (a
    /// context vector, or runs beyond the inline ones). One that does not
    /// is no better than a new one.
    pub(crate) fn has_capacity(&self) -> bool {
        self.contexts.capacity() != 0 || self.later.capacity() != 0
    }

    /// This table emptied, its vectors' capacity kept (for a new batch).
    pub(crate) fn emptied(mut self) -> PerRecord {
        self.later.clear();
        self.contexts.clear();
        PerRecord {
            base: 0,
            inline: [(0, 0); INLINE_RUNS],
            len: 0,
            inline_len: 0,
            spilled: false,
            has_contexts: false,
            contexts: self.contexts,
            later: self.later,
        }
    }

    /// The contexts vector's capacity (0: no record carried a context, so
    /// none was allocated).
    #[cfg(test)]
    pub(super) fn contexts_capacity(&self) -> usize {
        self.contexts.capacity()
    }

    /// Records in the table.
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Adds `records` in a row with `timestamp_ms`, after every record so
    /// far: inline while there is room and it fits, else to `later` (as
    /// part of its last run when that has the same timestamp). `len` is
    /// the caller's.
    #[inline]
    fn new_run(&mut self, timestamp_ms: i64, records: u32) {
        if !self.spilled {
            if let Some(run) = self.as_inline(timestamp_ms, records) {
                let n = self.inline_len as usize;
                if n == 0 {
                    self.base = timestamp_ms;
                }
                self.inline[n] = run;
                self.inline_len += 1;
                return;
            }
            self.spilled = true;
        }
        match self.later.last_mut() {
            Some(last) if last.0 == timestamp_ms && last.1.checked_add(records).is_some() => {
                last.1 += records;
            }
            _ => {
                if self.later.len() == self.later.capacity() {
                    let cap = grown(self.later.capacity(), self.later.len() + 1);
                    self.later.reserve_exact(cap - self.later.len());
                }
                self.later.push((timestamp_ms, records))
            }
        }
    }

    /// A new run as an inline entry (ms after `base`, records), if one is
    /// free and both fit 16 bits.
    #[inline]
    fn as_inline(&self, timestamp_ms: i64, records: u32) -> Option<(u16, u16)> {
        let n = self.inline_len as usize;
        if n == INLINE_RUNS {
            return None;
        }
        let delta = if n == 0 {
            0
        } else {
            u16::try_from(timestamp_ms.checked_sub(self.base)?).ok()?
        };
        Some((delta, u16::try_from(records).ok()?))
    }

    #[inline(never)]
    fn push_context(&mut self, context: u64) {
        let need = self.len as usize + 1;
        if need > self.contexts.capacity() {
            let cap = grown(self.contexts.capacity(), need);
            self.contexts.reserve_exact(cap - self.contexts.len());
        }
        self.contexts.resize(self.len as usize, 0);
        self.contexts.push(context);
        self.has_contexts = true;
    }

    /// The runs (timestamp, records in a row with it), in record order.
    pub(super) fn runs(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        let base = self.base;
        self.inline[..self.inline_len as usize]
            .iter()
            .map(move |&(d, n)| (base + i64::from(d), u32::from(n)))
            .chain(self.later.iter().copied())
    }

    /// A table of `runs` (none empty) holding `len` records.
    fn from_runs(runs: Vec<(i64, u32)>, len: u32, contexts: Vec<u64>) -> PerRecord {
        let mut t = PerRecord {
            has_contexts: !contexts.is_empty(),
            contexts,
            ..PerRecord::default()
        };
        for (ts, n) in runs {
            t.new_run(ts, n);
        }
        t.len = len;
        t
    }

    /// Splits the table at record `at`: keeps records `..at`, returns
    /// records `at..` (a batch split in two parts).
    pub(crate) fn split_off(&mut self, at: usize) -> PerRecord {
        let at32 = u32::try_from(at).unwrap_or(u32::MAX);
        let mut runs: Vec<(i64, u32)> = self.runs().collect();
        let mut tail_runs = Vec::new();
        if at32 < self.len {
            // The run holding record `at`, and how many of its records
            // come before `at`.
            let mut first = 0u32;
            let mut i = 0;
            while i < runs.len() && first + runs[i].1 <= at32 {
                first += runs[i].1;
                i += 1;
            }
            tail_runs = runs.split_off(i);
            let before = at32 - first;
            if before > 0 {
                let (ts, n) = tail_runs[0];
                runs.push((ts, before));
                tail_runs[0] = (ts, n - before);
            }
        }
        let tail_len = self.len.saturating_sub(at32);
        let contexts = if at < self.contexts.len() {
            self.contexts.split_off(at)
        } else {
            Vec::new()
        };
        let head = PerRecord::from_runs(
            runs,
            self.len - tail_len,
            std::mem::take(&mut self.contexts),
        );
        *self = head;
        PerRecord::from_runs(tail_runs, tail_len, contexts)
    }

    /// Record `i`'s context (0 when none).
    pub(crate) fn context(&self, i: usize) -> u64 {
        self.contexts.get(i).copied().unwrap_or(0)
    }

    /// Each record's timestamp, in order.
    #[cfg(test)]
    pub(crate) fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs()
            .flat_map(|(ts, n)| std::iter::repeat_n(ts, n as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_record_splits_with_its_contexts() {
        let mut r = PerRecord::default();
        for i in 0..4 {
            r.push(i, if i == 1 { 7 } else { 0 });
        }
        let tail = r.split_off(2);
        assert_eq!(r.timestamps().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!((r.context(0), r.context(1)), (0, 7));
        assert_eq!(tail.timestamps().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!((tail.context(0), tail.context(1)), (0, 0));
    }

    /// Timestamps kept inline and in the vector come back in order: runs
    /// past the inline ones, a timestamp before the first or more than
    /// 65,535 ms after it (not inline: everything after it goes to the
    /// vector too), and a run longer than 65,535 records.
    #[test]
    fn per_record_keeps_every_timestamp_inline_or_not() {
        let mut seqs: Vec<Vec<i64>> = vec![
            (0..20).map(|i| 1_000 + 3 * i).collect(),
            vec![500, 500, 499, 600, 600],
            vec![7, 7, 70_000, 8, 9, 9, 10],
            vec![i64::MAX, i64::MIN, 0, 0],
        ];
        seqs.push(std::iter::repeat_n(42, 70_000).chain([43, 42]).collect());
        for ts in &seqs {
            let mut r = PerRecord::default();
            for &t in ts {
                r.push(t, 0);
            }
            assert_eq!(r.len as usize, ts.len());
            assert_eq!(&r.timestamps().collect::<Vec<_>>(), ts);
            let e = r.emptied();
            assert_eq!((e.len, e.runs().count()), (0, 0));
        }
        // Up to the inline runs within 65 s of the first, no vector.
        let mut r = PerRecord::default();
        for i in 0..INLINE_RUNS as i64 {
            r.push(1_000 + 9_000 * i, 0);
            r.push(1_000 + 9_000 * i, 0);
        }
        assert_eq!((r.later.capacity(), r.runs().count()), (0, INLINE_RUNS));
        r.push(0, 0);
        assert_eq!(r.later.len(), 1);
    }

    /// A push planned before the append (`plan_push`, then
    /// `push_planned`) leaves the table exactly as `push` does, and
    /// declines exactly when `push` would grow a vector: runs extended,
    /// new inline runs (the first, later ones, one more than 65,535 ms
    /// after the first), runs in the vector, runs of 65,535 records, and
    /// contexts from some record on.
    #[test]
    fn a_planned_push_is_a_push() {
        let mut seqs: Vec<Vec<(i64, u64)>> = vec![
            (0..40).map(|i| (1_000 + 3 * (i / 4), 0)).collect(),
            vec![(500, 0), (500, 0), (499, 0), (600, 7), (600, 0), (600, 9)],
            vec![(7, 0), (7, 0), (70_000, 0), (8, 0), (9, 1), (9, 0), (10, 0)],
            vec![(i64::MAX, 0), (i64::MIN, 0), (0, 0), (0, 0)],
            (0..30).map(|i| (100 * i, 0)).collect(),
        ];
        seqs.push(
            std::iter::repeat_n((42, 0), 70_000)
                .chain([(43, 0), (42, 3), (42, 0)])
                .collect(),
        );
        for seq in &seqs {
            let (mut pushed, mut planned) = (PerRecord::default(), PerRecord::default());
            for &(t, c) in seq {
                let grows = planned.push_grows(t, c);
                match planned.plan_push(t, c) {
                    Some(plan) => {
                        assert!(!grows);
                        planned.push_planned(plan, t, c);
                    }
                    None => {
                        // The general path charges the growth, then pushes.
                        assert!(grows);
                        planned.push(t, c);
                    }
                }
                pushed.push(t, c);
                assert_eq!(
                    (
                        planned.base,
                        planned.inline,
                        planned.len,
                        planned.inline_len
                    ),
                    (pushed.base, pushed.inline, pushed.len, pushed.inline_len)
                );
                assert_eq!(
                    (planned.spilled, planned.has_contexts),
                    (pushed.spilled, pushed.has_contexts)
                );
                assert_eq!(
                    (&planned.contexts, &planned.later),
                    (&pushed.contexts, &pushed.later)
                );
            }
            let ts: Vec<i64> = seq.iter().map(|&(t, _)| t).collect();
            assert_eq!(planned.timestamps().collect::<Vec<_>>(), ts);
        }
    }

    /// What a push will hold on the heap is known before it happens, and
    /// is what it then holds: `buffer.memory` is charged before a vector
    /// grows, and never under-counts. Contexts from the second or the
    /// eleventh record on, runs past the inline ones, and both together.
    #[test]
    fn heap_bytes_are_predicted_before_each_push() {
        let seqs: Vec<Vec<(i64, u64)>> = vec![
            (0..40).map(|i| (1_000 + 3 * (i / 4), 0)).collect(),
            (0..40).map(|i| (100 * i, 0)).collect(),
            (0..40).map(|i| (7, u64::from(i % 3 == 1))).collect(),
            (0..60).map(|i| (70_000 * i, i as u64)).collect(),
            (0..30).map(|i| (7, u64::from(i >= 10))).collect(),
        ];
        for seq in &seqs {
            let mut r = PerRecord::default();
            assert_eq!(r.heap_bytes(), 0);
            for &(t, c) in seq {
                let predicted = r.heap_bytes_after_push(t, c);
                let grows = r.push_grows(t, c);
                let before = r.heap_bytes();
                r.push(t, c);
                let held = r.contexts.capacity() * 8 + r.later.capacity() * 16;
                assert_eq!((r.heap_bytes(), held), (predicted, predicted), "{seq:?}");
                assert_eq!(grows, predicted > before, "{seq:?}");
            }
        }
        // The ones that go to the heap do, and doubling keeps it a few
        // allocations: 60 contexts in 4 · 2^k slots, 59 later runs too.
        let mut r = PerRecord::default();
        for &(t, c) in &seqs[3] {
            r.push(t, c);
        }
        assert_eq!((r.contexts.capacity(), r.later.capacity()), (64, 64));
        assert!(r.has_capacity());
        assert!(!PerRecord::default().has_capacity());
    }

    /// Runs of equal timestamps split anywhere, inside a run or at its
    /// edge, and keep every record's timestamp.
    #[test]
    fn per_record_runs_split_anywhere() {
        let ts = [5, 5, 5, 6, 6, 9, 5, 5, 10];
        for at in 0..=ts.len() + 1 {
            let mut r = PerRecord::default();
            for &t in &ts {
                r.push(t, 0);
            }
            assert_eq!(r.runs().count(), 5);
            let tail = r.split_off(at);
            let cut = at.min(ts.len());
            assert_eq!(r.timestamps().collect::<Vec<_>>(), ts[..cut], "at {at}");
            assert_eq!(tail.timestamps().collect::<Vec<_>>(), ts[cut..], "at {at}");
            assert_eq!((r.len as usize, tail.len as usize), (cut, ts.len() - cut));
            // Split again: the parts split as a whole table does.
            let mut r2 = tail;
            let t2 = r2.split_off(1);
            assert_eq!(
                r2.timestamps().chain(t2.timestamps()).collect::<Vec<_>>(),
                ts[cut..]
            );
        }
        // Past the inline runs and outside 16 bits, split anywhere.
        let ts: Vec<i64> = (0..12)
            .map(|i| 100 * i)
            .chain([70_000, 70_000, 5, 6])
            .collect();
        for at in 0..=ts.len() {
            let mut r = PerRecord::default();
            for &t in &ts {
                r.push(t, 0);
            }
            let tail = r.split_off(at);
            assert_eq!(r.timestamps().collect::<Vec<_>>(), ts[..at], "at {at}");
            assert_eq!(tail.timestamps().collect::<Vec<_>>(), ts[at..], "at {at}");
        }
    }
}
