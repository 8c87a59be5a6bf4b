//! What is sent.
//!
//! Why a borrowed record: `send` encodes the record straight into its
//! partition's open batch (one copy, into the buffer that goes on the wire),
//! so the producer never needs to own the caller's bytes. Borrowing lets a
//! caller send from whatever it holds (`&[u8]`, `Vec`, `Bytes`, a memory
//! map) with no allocation per record.

pub use kring_protocol::record::Header;

/// A record to send, borrowed from the caller for the duration of
/// [`Producer::send`](crate::Producer::send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The topic.
    pub topic: &'a str,
    /// A fixed partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None` is Kafka's null key).
    pub key: Option<&'a [u8]>,
    /// The value (`None` is a null value, a tombstone on compacted topics).
    pub value: Option<&'a [u8]>,
    /// Headers, in order; a key may repeat.
    pub headers: &'a [Header<'a>],
    /// Create time in milliseconds since the epoch; `None` stamps the wall
    /// clock time of `send`. A negative time fails the send with
    /// [`SendError::InvalidTimestamp`](crate::SendError::InvalidTimestamp).
    pub timestamp: Option<i64>,
    /// An opaque value of the caller's, handed back with this record's
    /// result to the [`on_delivery`](crate::ProducerBuilder::on_delivery)
    /// callback ([`DeliveryReport::context`](crate::DeliveryReport::context)),
    /// as librdkafka's `msg_opaque`: an index, an id, a pointer-sized
    /// token. Not sent to the broker. 0 (the default) means none. Kept
    /// only when a callback is set, in the batch's per-record table:
    /// no allocation per record.
    pub context: u64,
}

impl<'a> Record<'a> {
    /// A keyless record with a value.
    pub fn new(topic: &'a str, value: &'a [u8]) -> Record<'a> {
        Record {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp: None,
            context: 0,
        }
    }

    /// Set the key.
    #[must_use]
    pub fn key(mut self, key: &'a [u8]) -> Record<'a> {
        self.key = Some(key);
        self
    }

    /// Set the value (`None`: a tombstone).
    #[must_use]
    pub fn value(mut self, value: Option<&'a [u8]>) -> Record<'a> {
        self.value = value;
        self
    }

    /// Send to this partition instead of asking the partitioner.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Record<'a> {
        self.partition = Some(partition);
        self
    }

    /// Set the headers.
    #[must_use]
    pub fn headers(mut self, headers: &'a [Header<'a>]) -> Record<'a> {
        self.headers = headers;
        self
    }

    /// Set the create time (milliseconds since the epoch). It must be
    /// non-negative, as in the Java client: a negative time fails the send
    /// at once with
    /// [`SendError::InvalidTimestamp`](crate::SendError::InvalidTimestamp).
    #[must_use]
    pub fn timestamp(mut self, millis: i64) -> Record<'a> {
        self.timestamp = Some(millis);
        self
    }

    /// Set the value the delivery callback gets back with this record's
    /// result (see [`Record::context`](Record#structfield.context)).
    #[must_use]
    pub fn context(mut self, context: u64) -> Record<'a> {
        self.context = context;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_every_field() {
        let h = [Header {
            key: "h",
            value: Some(b"v"),
        }];
        let r = Record::new("t", b"v")
            .key(b"k")
            .partition(3)
            .headers(&h)
            .timestamp(42)
            .context(9);
        assert_eq!(r.topic, "t");
        assert_eq!(r.key, Some(&b"k"[..]));
        assert_eq!(r.value, Some(&b"v"[..]));
        assert_eq!(r.partition, Some(3));
        assert_eq!(r.headers, &h);
        assert_eq!(r.timestamp, Some(42));
        assert_eq!(r.context, 9);
        assert_eq!(r.value(None).value, None);
    }
}
