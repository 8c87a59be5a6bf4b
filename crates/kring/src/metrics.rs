//! A snapshot of the producer's counters.

/// Counters of a producer, read with [`Producer::metrics`](crate::Producer::metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Returns of the I/O thread from its kernel wait. An idle producer
    /// keeps this still: the thread sleeps until work or a deadline.
    pub io_wakeups: u64,
    /// `SENDMSG` operations completed (each may carry many requests).
    pub sends: u64,
    /// Bytes written to brokers.
    pub bytes_sent: u64,
    /// Bytes read from brokers.
    pub bytes_received: u64,
    /// Responses received.
    pub responses: u64,
    /// TCP connections established.
    pub connects: u64,
}

impl Metrics {
    pub(crate) fn from_driver(m: &crate::driver::DriverMetrics) -> Metrics {
        Metrics {
            io_wakeups: m.io_wakeups(),
            sends: m.sends(),
            bytes_sent: m.bytes_sent(),
            bytes_received: m.bytes_received(),
            responses: m.responses(),
            connects: m.connects(),
        }
    }
}
