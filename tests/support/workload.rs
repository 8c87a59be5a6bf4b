//! Deterministic records for the end-to-end tests, sending them with kring,
//! and checking what a reader got back field by field.
//!
//! Record `i` carries `i` in the first 8 bytes of its value, so a record read
//! back names itself: the checker rebuilds what record `i` must look like
//! (key, value, headers, timestamp), and compares it with what was read,
//! and with the partition and offset kring reported for it. It also checks
//! exactly-once (every `i` seen once) and order (per partition, `i` grows
//! with the offset: records sent from one thread are stored in send order).

use std::collections::HashMap;
use std::time::Duration;

use kring::{DeliveryFuture, Header, Producer, Record};

use super::ReadRecord;

/// Timestamp of record 0; record `i` has `BASE_TIMESTAMP + i`.
pub const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// Which records have keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Every record: `key-{i % distinct}`.
    All,
    /// None (null keys).
    None,
    /// Even records keyed, odd ones not.
    Alternate,
}

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Number of records.
    pub n: usize,
    /// Which records have keys.
    pub keys: Keys,
    /// Distinct keys.
    pub distinct_keys: u64,
    /// Whether records carry headers.
    pub headers: bool,
    /// Value length (at least 8).
    pub value_len: usize,
}

impl Workload {
    /// `n` records of 100 bytes, keyed, with headers.
    pub fn new(n: usize) -> Workload {
        Workload {
            n,
            keys: Keys::All,
            distinct_keys: 10_000,
            headers: true,
            value_len: 100,
        }
    }

    /// The key of record `i`.
    pub fn key(&self, i: u64) -> Option<Vec<u8>> {
        let keyed = match self.keys {
            Keys::All => true,
            Keys::None => false,
            Keys::Alternate => i.is_multiple_of(2),
        };
        keyed.then(|| format!("key-{}", i % self.distinct_keys).into_bytes())
    }

    /// The value of record `i`: `i` big-endian, then bytes derived from `i`.
    pub fn value(&self, i: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.value_len.max(8));
        v.extend_from_slice(&i.to_be_bytes());
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        while v.len() < self.value_len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Letters: compressible enough for the codecs to matter.
            v.push(b'a' + (x % 8) as u8);
        }
        v
    }

    /// The headers of record `i`: its index, a fixed one, and every 7th
    /// record a header with a null value.
    pub fn headers(&self, i: u64) -> Vec<(String, Option<Vec<u8>>)> {
        if !self.headers {
            return Vec::new();
        }
        let mut h = vec![
            ("i".to_owned(), Some(i.to_string().into_bytes())),
            ("client".to_owned(), Some(b"kring".to_vec())),
        ];
        if i.is_multiple_of(7) {
            h.push(("null".to_owned(), None));
        }
        h
    }

    /// Record `i` as a reader must see it at `(partition, offset)`.
    pub fn expected(&self, i: u64, partition: i32, offset: i64) -> ReadRecord {
        ReadRecord {
            partition,
            offset,
            timestamp: BASE_TIMESTAMP + i as i64,
            key: self.key(i),
            value: Some(self.value(i)),
            headers: self.headers(i),
        }
    }

    /// Sends record `i` with `producer` (partitioner's choice of partition).
    pub fn send(&self, producer: &Producer, topic: &str, i: u64) -> DeliveryFuture {
        let key = self.key(i);
        let value = self.value(i);
        let owned = self.headers(i);
        let headers: Vec<Header<'_>> = owned
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let mut rec = Record::new(topic, &value)
            .headers(&headers)
            .timestamp(BASE_TIMESTAMP + i as i64);
        if let Some(k) = &key {
            rec = rec.key(k);
        }
        producer
            .send(rec)
            .unwrap_or_else(|e| panic!("send of record {i}: {e}"))
    }

    /// Sends records `range`, flushes, and returns where each landed (all
    /// must be delivered).
    pub fn send_range(
        &self,
        producer: &Producer,
        topic: &str,
        range: std::ops::Range<usize>,
    ) -> Vec<(i32, i64)> {
        let futures: Vec<DeliveryFuture> = range
            .map(|i| self.send(producer, topic, i as u64))
            .collect();
        assert!(
            producer.flush_timeout(Duration::from_secs(300)),
            "flush did not complete"
        );
        landed(&futures)
    }

    /// Sends every record, flushes, and returns where each landed (all must
    /// be delivered).
    pub fn send_all(&self, producer: &Producer, topic: &str) -> Vec<(i32, i64)> {
        self.send_range(producer, topic, 0..self.n)
    }
}

/// Where each record landed; panics on the first record not delivered.
pub fn landed(futures: &[DeliveryFuture]) -> Vec<(i32, i64)> {
    futures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let md = f
                .wait_timeout(Duration::from_secs(300))
                .unwrap_or_else(|| panic!("record {i} has no result"))
                .unwrap_or_else(|e| panic!("record {i} not delivered: {e}"));
            assert_eq!(md.partition, f.partition(), "record {i}");
            assert!(md.offset >= 0, "record {i}: offset {}", md.offset);
            (md.partition, md.offset)
        })
        .collect()
}

/// Checks records as a reader hands them over.
pub struct Checker<'a> {
    workload: &'a Workload,
    /// Where kring said each record landed, if known.
    reported: Option<&'a [(i32, i64)]>,
    seen: Vec<bool>,
    /// Whether an occurrence of the record was where kring reported it.
    at_reported: Vec<bool>,
    /// Per partition: the last offset, and the index of the last record
    /// seen for the first time.
    last: HashMap<i32, (i64, u64)>,
    count: usize,
    duplicates: Option<usize>,
    ordered: bool,
    reader: &'static str,
}

impl<'a> Checker<'a> {
    /// An exactly-once checker of `workload`, against the reported
    /// positions if given.
    pub fn new(
        reader: &'static str,
        workload: &'a Workload,
        reported: Option<&'a [(i32, i64)]>,
    ) -> Self {
        Checker {
            workload,
            reported,
            seen: vec![false; workload.n],
            at_reported: vec![false; workload.n],
            last: HashMap::new(),
            count: 0,
            duplicates: None,
            ordered: true,
            reader,
        }
    }

    /// An at-least-once checker: a record may be stored again (identical),
    /// and one of its copies must be where kring reported it; order is
    /// checked on first copies. For brokers that do not deduplicate.
    pub fn at_least_once(
        reader: &'static str,
        workload: &'a Workload,
        reported: &'a [(i32, i64)],
    ) -> Self {
        Checker {
            duplicates: Some(0),
            ..Checker::new(reader, workload, Some(reported))
        }
    }

    /// Does not check the order of records within a partition (offsets
    /// must still grow), for brokers that do not enforce it.
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// Checks one record, field by field.
    pub fn check(&mut self, r: &ReadRecord) {
        let who = self.reader;
        let v = r
            .value
            .as_deref()
            .unwrap_or_else(|| panic!("{who}: null value at {}/{}", r.partition, r.offset));
        assert!(
            v.len() >= 8,
            "{who}: short value at {}/{}",
            r.partition,
            r.offset
        );
        let i = u64::from_be_bytes(v[..8].try_into().unwrap());
        assert!(
            (i as usize) < self.workload.n,
            "{who}: unknown record {i} at {}/{}",
            r.partition,
            r.offset
        );
        let want = self.workload.expected(i, r.partition, r.offset);
        assert_eq!(r, &want, "{who}: record {i} differs");
        let again = self.seen[i as usize];
        match (again, self.duplicates.as_mut()) {
            (true, None) => panic!(
                "{who}: record {i} read twice (again at {}/{})",
                r.partition, r.offset
            ),
            (true, Some(d)) => *d += 1,
            (false, _) => self.count += 1,
        }
        self.seen[i as usize] = true;
        if let Some(rep) = self.reported {
            let here = (r.partition, r.offset) == rep[i as usize];
            self.at_reported[i as usize] |= here;
            if self.duplicates.is_none() {
                assert!(
                    here,
                    "{who}: record {i} is at {}/{}, kring reported {:?}",
                    r.partition, r.offset, rep[i as usize]
                );
            }
        }
        let last = self.last.get(&r.partition).copied();
        if let Some((off, _)) = last {
            assert!(
                r.offset > off,
                "{who}: partition {} offsets go back: {} after {off}",
                r.partition,
                r.offset
            );
        }
        let mut last_i = last.map(|l| l.1);
        if !again {
            if let (true, Some(li)) = (self.ordered, last_i) {
                assert!(
                    i > li,
                    "{who}: partition {} out of order: record {i} at offset {} after record {li}",
                    r.partition,
                    r.offset
                );
            }
            last_i = Some(i);
        }
        self.last
            .insert(r.partition, (r.offset, last_i.unwrap_or(i)));
    }

    /// Asserts every record was seen (exactly once, unless duplicates are
    /// allowed) and, if positions were reported, once where reported.
    /// Returns the number of duplicate copies.
    pub fn finish(self) -> usize {
        let missing: Vec<usize> = self
            .seen
            .iter()
            .enumerate()
            .filter(|(_, s)| !**s)
            .map(|(i, _)| i)
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "{}: records missing (first ones): {missing:?}",
            self.reader
        );
        assert_eq!(self.count, self.workload.n);
        if self.reported.is_some() {
            let misplaced: Vec<usize> = self
                .at_reported
                .iter()
                .enumerate()
                .filter(|(_, s)| !**s)
                .map(|(i, _)| i)
                .take(10)
                .collect();
            assert!(
                misplaced.is_empty(),
                "{}: records with no copy where kring reported them: {misplaced:?}",
                self.reader
            );
        }
        self.duplicates.unwrap_or(0)
    }
}

/// Every record of `topic` stored by a kring-mock cluster, as a reader
/// would see it.
pub fn mock_records(cluster: &kring_mock::MockCluster, topic: &str) -> Vec<ReadRecord> {
    let partitions = cluster.partition_count(topic).expect("topic") as i32;
    let mut out = Vec::new();
    for p in 0..partitions {
        for r in cluster.records(topic, p).expect("records") {
            out.push(ReadRecord {
                partition: p,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(|b| b.to_vec()),
                value: r.value.map(|b| b.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, v.map(|b| b.to_vec())))
                    .collect(),
            });
        }
    }
    out
}
