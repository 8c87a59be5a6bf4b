//! Sink mode: a broker that acknowledges Produce requests with increasing
//! offsets per partition without storing, validating or decompressing
//! anything, so that a client benchmark measures the client.
//!
//! What makes it cheap:
//! - Produce is parsed by a hand-rolled single pass (`sink::produce`) that reads
//!   the topic/partition lists and hops over the records by batch header;
//! - a connection answers every request that one `read` brought in with one
//!   `write` (the response frames are appended to one reusable buffer);
//! - offsets are atomics per partition (cache-line padded), found through a
//!   per-connection name → topic cache, so steady state takes no lock and
//!   allocates nothing.
//!
//! Everything else (ApiVersions, Metadata, InitProducerId, …) goes through
//! the ordinary handlers. Metadata (whatever its `allow_auto_topic_creation`
//! says), and Produce too, create unknown topics with the configured
//! partition count, so any client and a raw load generator need no setup.
//! In sink mode Produce is accepted by any broker (leadership is not
//! checked), and faults, idempotence checks, CRC validation and read-back do
//! not apply.

pub(crate) mod produce;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::state::Shared;

/// One partition's next offset, alone on its cache line so partitions
/// acknowledged by different connections do not contend.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct PaddedOffset(pub(crate) AtomicI64);

/// A sink topic: one offset counter per partition.
#[derive(Debug)]
pub(crate) struct SinkTopic {
    pub(crate) partitions: Box<[PaddedOffset]>,
}

/// Totals over the sink's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Produce requests acknowledged (or accepted, for acks=0).
    pub requests: u64,
    /// Records acknowledged.
    pub records: u64,
    /// Request bytes received by sink connections (all APIs).
    pub bytes: u64,
}

/// The sink's topics and counters.
#[derive(Debug, Default)]
pub(crate) struct SinkTopics {
    topics: RwLock<HashMap<Box<[u8]>, Arc<SinkTopic>>>,
    requests: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
}

impl SinkTopics {
    pub(crate) fn stats(&self) -> SinkStats {
        SinkStats {
            requests: self.requests.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(&self, requests: u64, records: u64, bytes: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The topic's offsets, creating the topic in the cluster (with the
    /// default partition count) if it does not exist. `None` for a name
    /// Kafka would refuse.
    pub(crate) fn resolve(&self, shared: &Shared, name: &[u8]) -> Option<Arc<SinkTopic>> {
        if let Some(t) = self
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(t.clone());
        }
        let name_str = std::str::from_utf8(name).ok()?;
        let partitions = {
            let mut st = shared.lock();
            if !st.topics.contains_key(name_str) {
                st.create_topic(name_str, -1, -1, false).ok()?;
            }
            st.topics[name_str].partitions.len()
        };
        let mut map = self.topics.write().unwrap_or_else(|e| e.into_inner());
        let t = map.entry(name.into()).or_insert_with(|| {
            Arc::new(SinkTopic {
                partitions: (0..partitions).map(|_| PaddedOffset::default()).collect(),
            })
        });
        Some(t.clone())
    }
}

/// Per-connection sink state: the topic cache and counters not yet added
/// to the shared totals.
#[derive(Debug, Default)]
pub(crate) struct SinkConn {
    cache: HashMap<Box<[u8]>, Arc<SinkTopic>>,
    requests: u64,
    records: u64,
}

impl SinkConn {
    /// Handles one Produce frame, appending its response to `out`.
    pub(crate) fn produce(
        &mut self,
        shared: &Shared,
        sink: &SinkTopics,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), produce::ParseError> {
        let cache = &mut self.cache;
        let h = produce::handle(frame, out, |name| {
            if let Some(t) = cache.get(name) {
                return Some(t.clone());
            }
            let t = sink.resolve(shared, name)?;
            cache.insert(name.into(), t.clone());
            Some(t)
        })?;
        self.requests += 1;
        self.records += h.records;
        Ok(())
    }

    /// Adds this connection's counts since the last flush to the totals.
    pub(crate) fn flush_stats(&mut self, sink: &SinkTopics, bytes: u64) {
        sink.add(self.requests, self.records, bytes);
        self.requests = 0;
        self.records = 0;
    }
}
