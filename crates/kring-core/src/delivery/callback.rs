//! The per-producer delivery callback: its report type and the loop that
//! calls it once per record of a completed batch, fenced against panics.
//!
//! Why fenced here: the callback is the user's code running on the I/O
//! thread; a panic must cost that one call, never another record's
//! result or the thread.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;

/// What the per-producer callback sees for each record.
#[derive(Debug)]
#[non_exhaustive]
pub struct DeliveryReport<'a> {
    /// Topic of the record.
    pub topic: &'a str,
    /// The record's partition (also when it failed).
    pub partition: i32,
    /// Index of the record in its batch (its order of `send` within the
    /// batch).
    pub index: u32,
    /// The value the record was sent with
    /// ([`RecordRef::context`](crate::RecordRef::context)); 0 for none.
    pub context: u64,
    /// The record's result.
    pub result: Result<RecordMetadata, &'a DeliveryError>,
}

/// A per-producer hook called once per record on the I/O thread when its
/// batch completes. It must be quick and must not block (it runs on the
/// thread that drives every broker connection).
///
/// It runs fenced: a panic is caught at each call, the record's result
/// stands (its handle resolves as if the callback had returned), the
/// callback is still called for every later record, and the I/O thread
/// goes on. The first panic is logged (a `tracing` warning), later ones are
/// only counted. The process's panic hook still runs for each panic (by
/// default it prints the message to stderr).
pub type DeliveryCallback = Arc<dyn Fn(&DeliveryReport<'_>) + Send + Sync>;

/// Panics caught while calling a delivery callback for one batch.
#[derive(Debug, Default)]
pub(crate) struct CallbackPanics {
    pub(crate) count: u64,
    /// The first panic's message.
    pub(crate) first: Option<String>,
}

/// Calls `cb` for each record of a completed batch (or part of a split
/// batch: `first` is the index of its first record in the batch), each
/// call fenced: a panic is caught and counted, and the next record is
/// reported as usual.
///
/// One report is built per batch and reused: per record only its index,
/// context and (when delivered) offset and timestamp are stored again, not
/// the topic, partition and outcome that every record of the batch shares
/// (10 instructions per record fewer; BENCHMARKS.md, branch `perrecord3`).
/// The timestamp is taken per run of equal timestamps.
pub(crate) fn report_batch(
    cb: &DeliveryCallback,
    topic: &str,
    partition: i32,
    first: u32,
    records: &PerRecord,
    outcome: &Outcome,
) -> CallbackPanics {
    let mut panics = CallbackPanics::default();
    let mut i = 0usize;
    match outcome {
        Ok(ok) => {
            let mut report = DeliveryReport {
                topic,
                partition,
                index: first,
                context: 0,
                result: Ok(ok.metadata(partition, 0, 0)),
            };
            // Without a negative base or an overflow anywhere in the
            // batch (always, from a broker), each offset is a plain sum.
            let plain = ok.base_offset >= 0
                && ok
                    .base_offset
                    .checked_add(i64::from(records.len()))
                    .is_some();
            for (ts, n) in records.runs() {
                // The batch's partition, the run's timestamp.
                let run = ok.metadata(partition, 0, ts);
                for _ in 0..n {
                    let offset = if plain {
                        ok.base_offset + i as i64
                    } else {
                        ok.offset(i as u32)
                    };
                    report.index = first + i as u32;
                    report.context = records.context(i);
                    report.result = Ok(RecordMetadata { offset, ..run });
                    report_one(cb, &report, &mut panics);
                    i += 1;
                }
            }
        }
        Err(e) if e.records.is_some() => {
            // Records named invalid: each its own error (rare; a clone
            // per record).
            for _ in 0..records.len() {
                let own = e.for_record(i as u32);
                let report = DeliveryReport {
                    topic,
                    partition,
                    index: first + i as u32,
                    context: records.context(i),
                    result: Err(&own),
                };
                report_one(cb, &report, &mut panics);
                i += 1;
            }
        }
        Err(e) => {
            let mut report = DeliveryReport {
                topic,
                partition,
                index: first,
                context: 0,
                result: Err(&e.error),
            };
            for _ in 0..records.len() {
                report.index = first + i as u32;
                report.context = records.context(i);
                report_one(cb, &report, &mut panics);
                i += 1;
            }
        }
    }
    panics
}

/// One record's report (see [`report_batch`]).
#[inline(always)]
fn report_one(cb: &DeliveryCallback, report: &DeliveryReport<'_>, panics: &mut CallbackPanics) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(report))) {
        panics.count += 1;
        if panics.first.is_none() {
            panics.first = Some(panic_message(&*panic));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn callback_reports_each_record_once() {
        let seen = Arc::new(Mutex::new(vec![]));
        let s2 = seen.clone();
        let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
            s2.lock().unwrap().push((
                r.index,
                r.partition,
                r.context,
                r.result.as_ref().map(|m| m.offset).ok(),
            ));
        });
        let mut records = PerRecord::default();
        records.push(1, 0);
        records.push(2, 0);
        assert!(records.contexts_capacity() == 0, "no context, no table");
        records.push(3, 42);
        records.push(4, 0);
        let _ = report_batch(
            &cb,
            "t",
            5,
            0,
            &records,
            &Ok(BatchOk {
                base_offset: 7,
                log_append_time: -1,
            }),
        );
        let _ = report_batch(
            &cb,
            "t",
            5,
            0,
            &records,
            &Err(DeliveryError::Aborted {
                reason: "x".into(),
                status: MessageStatus::NotPersisted,
            }
            .into()),
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (0, 5, 0, Some(7)),
                (1, 5, 0, Some(8)),
                (2, 5, 42, Some(9)),
                (3, 5, 0, Some(10)),
                (0, 5, 0, None),
                (1, 5, 0, None),
                (2, 5, 42, None),
                (3, 5, 0, None),
            ]
        );
    }

    /// Records the broker named invalid each get their own reason, in
    /// their own report, at their index in the whole batch (a split
    /// part's records start at its `first`), with their own context.
    #[test]
    fn named_invalid_records_get_their_own_reasons_at_their_indexes() {
        let mut records = PerRecord::default();
        for context in [0, 7, 0, 9] {
            records.push(1, context);
        }
        let error = DeliveryError::InvalidRecords {
            code: 87,
            name: "INVALID_RECORD",
            message: None,
            record_error: None,
            invalid_records: 2,
            status: MessageStatus::NotPersisted,
        };
        let named = RecordErrors::new(vec![(3, "bad key".into()), (1, "bad value".into())]);
        let seen = Arc::new(Mutex::new(vec![]));
        let s = seen.clone();
        let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
            let reason = match r.result {
                Err(DeliveryError::InvalidRecords { record_error, .. }) => record_error.clone(),
                ref other => panic!("not an invalid-records error: {other:?}"),
            };
            s.lock().unwrap().push((r.index, r.context, reason));
        });
        let outcome = Err(BatchError {
            error,
            records: Some(named),
        });
        let panics = report_batch(&cb, "t", 5, 10, &records, &outcome);
        assert_eq!(panics.count, 0);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (10, 0, None),
                (11, 7, Some("bad value".into())),
                (12, 0, None),
                (13, 9, Some("bad key".into())),
            ]
        );
    }

    /// Each report's offset and timestamp are the handle's for the same
    /// record: a plain sum, unknown (-1) for a negative base or an
    /// overflowing sum, and LogAppendTime over the record's own timestamp.
    #[test]
    fn report_offsets_and_timestamps_match_the_handles() {
        let mut records = PerRecord::default();
        for ts in [1, 1, 2, 3, 3, 3] {
            records.push(ts, 0);
        }
        let cases = [
            (7, -1),
            (-1, -1),
            (i64::MAX - 3, -1),
            (i64::MAX - 5, 777),
            (i64::MAX - 6, -1),
        ];
        for (base_offset, log_append_time) in cases {
            let ok = BatchOk {
                base_offset,
                log_append_time,
            };
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let cb: DeliveryCallback = Arc::new(move |r: &DeliveryReport<'_>| {
                let m = r.result.as_ref().expect("delivered");
                s.lock()
                    .unwrap()
                    .push((r.index, m.partition, m.offset, m.timestamp_ms));
            });
            let _ = report_batch(&cb, "t", 5, 10, &records, &Ok(ok));
            let expected: Vec<_> = records
                .timestamps()
                .enumerate()
                .map(|(i, ts)| {
                    let m = ok.metadata(5, i as u32, ts);
                    (10 + i as u32, m.partition, m.offset, m.timestamp_ms)
                })
                .collect();
            assert_eq!(*seen.lock().unwrap(), expected, "base {base_offset}");
        }
    }
}
