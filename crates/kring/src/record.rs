//! What is sent and what comes back.

use bytes::Bytes;

/// A record to send. Keys, values and header values are `Bytes`, so a
/// caller that already holds `Bytes` sends them without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The topic.
    pub topic: String,
    /// A fixed partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` is Kafka's null key).
    pub key: Option<Bytes>,
    /// The value (`None` is a null value, a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order; a key may repeat.
    pub headers: Vec<Header>,
    /// Create time in milliseconds since the epoch; `None` stamps the time
    /// of `send`.
    pub timestamp: Option<i64>,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header key.
    pub key: String,
    /// The header value (`None` is null).
    pub value: Option<Bytes>,
}

impl Record {
    /// A keyless record with a value.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Record {
        Record {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Set the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Record {
        self.key = Some(key.into());
        self
    }

    /// Send to this partition instead of asking the partitioner.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Record {
        self.headers.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Set the create time (milliseconds since the epoch).
    #[must_use]
    pub fn timestamp(mut self, millis: i64) -> Record {
        self.timestamp = Some(millis);
        self
    }
}

/// Where a delivered record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// The offset, or `-1` with `acks=0` (the broker does not answer).
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's log append
    /// time if the topic uses `LogAppendTime`.
    pub timestamp: i64,
}
