//! The connection table: every connection the core has, the bootstrap
//! addresses, and the queues that name connections (ApiVersions to send,
//! SASL requests to send first, socket commands for the driver).
//!
//! Why its own owner: a [`ConnId`] outlives its connection (in a timer
//! key, a driver event, a queued request), so everything that resolves or
//! queues an id must agree on which ids are live. **Invariant:** ids are
//! minted only here ([`Conns::open`]), never reused (a serial), and every
//! lookup checks the serial, so a stale id never reaches a newer
//! connection in the same slab slot; removing a connection
//! ([`Conns::remove`]) also drops it from the handshake and SASL queues,
//! so neither ever holds a forgotten id; every `Connect` command names a
//! connection opened here, and a `Close` command only one already removed
//! (the driver hears nothing more about it). The fields are private to
//! this module; the connection logic (`conn.rs`) goes through these
//! methods.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use slab::Slab;

use super::conn::{BootEntry, Conn, Target};
use super::{IoCommand, Transmit};

/// The core's name for a connection. Never reused within a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    idx: u32,
    serial: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.serial)
    }
}

/// Connections, bootstrap addresses and the queues naming connections.
#[derive(Debug)]
pub(crate) struct Conns {
    slab: Slab<Conn>,
    serial: u32,
    bootstrap: Vec<BootEntry>,
    /// Where the next control-connection search starts (round robin over
    /// known brokers, then bootstrap addresses).
    boot_next: usize,
    /// Connections that need their ApiVersions request sent.
    handshakes: VecDeque<ConnId>,
    /// SASL requests built in response handlers, sent first.
    sasl_tx: VecDeque<Transmit>,
    /// Socket commands for the driver.
    io: VecDeque<IoCommand>,
    /// The last connection failure to any broker: the cause reported for
    /// a timed-out batch whose partition has no leader to blame.
    last_error: Option<crate::LastError>,
}

impl Conns {
    pub(crate) fn new(bootstrap: Vec<BootEntry>) -> Self {
        Conns {
            slab: Slab::new(),
            serial: 0,
            bootstrap,
            boot_next: 0,
            handshakes: VecDeque::new(),
            sasl_tx: VecDeque::new(),
            io: VecDeque::new(),
            last_error: None,
        }
    }

    /// The live connection `id`.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab.get(id.idx as usize).filter(|c| c.id == id)
    }

    /// The live connection `id`.
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab.get_mut(id.idx as usize).filter(|c| c.id == id)
    }

    /// Adds a connection to `addr` for `t` and asks the driver to connect
    /// it within `timeout`.
    pub(crate) fn open(&mut self, t: Target, addr: String, timeout: Duration) -> ConnId {
        self.serial = self.serial.wrapping_add(1);
        let entry = self.slab.vacant_entry();
        let id = ConnId {
            idx: entry.key() as u32,
            serial: self.serial,
        };
        entry.insert(Conn::new(id, t));
        tracing::debug!(%id, %addr, ?t, ?timeout, "connecting");
        self.io.push_back(IoCommand::Connect {
            conn: id,
            addr,
            timeout,
        });
        id
    }

    /// Removes a connection, and its queued handshake and SASL requests.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        self.get(id)?;
        let c = self.slab.remove(id.idx as usize);
        self.sasl_tx.retain(|t| t.conn != id);
        self.handshakes.retain(|&h| h != id);
        Some(c)
    }

    /// Asks the driver to close `id`, which was removed already.
    pub(crate) fn push_close(&mut self, id: ConnId) {
        debug_assert!(self.get(id).is_none(), "closing a live connection");
        self.io.push_back(IoCommand::Close { conn: id });
    }

    /// The next socket command for the driver.
    pub(crate) fn pop_io(&mut self) -> Option<IoCommand> {
        self.io.pop_front()
    }

    /// Every live connection.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slab.iter().map(|(_, c)| c)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// `id` needs its ApiVersions request sent.
    pub(crate) fn queue_handshake(&mut self, id: ConnId) {
        self.handshakes.push_back(id);
    }

    /// The next connection waiting for its ApiVersions request.
    pub(crate) fn pop_handshake(&mut self) -> Option<ConnId> {
        self.handshakes.pop_front()
    }

    /// A SASL request to send before anything else.
    pub(crate) fn push_sasl_tx(&mut self, t: Transmit) {
        debug_assert!(
            self.get(t.conn).is_some(),
            "SASL request of a dead connection"
        );
        self.sasl_tx.push_back(t);
    }

    /// The next SASL request to send.
    pub(crate) fn pop_sasl_tx(&mut self) -> Option<Transmit> {
        self.sasl_tx.pop_front()
    }

    /// The bootstrap addresses (`Target::Bootstrap` indexes them).
    pub(crate) fn bootstrap(&self) -> &[BootEntry] {
        &self.bootstrap
    }

    /// Bootstrap address `i`.
    pub(crate) fn boot_mut(&mut self, i: usize) -> Option<&mut BootEntry> {
        self.bootstrap.get_mut(i)
    }

    /// Where the next control-connection search starts.
    pub(crate) fn boot_cursor(&self) -> usize {
        self.boot_next
    }

    pub(crate) fn set_boot_cursor(&mut self, next: usize) {
        self.boot_next = next;
    }

    /// The last connection failure to any broker.
    pub(crate) fn last_error(&self) -> Option<&crate::LastError> {
        self.last_error.as_ref()
    }

    pub(crate) fn set_last_error(&mut self, e: crate::LastError) {
        self.last_error = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_stale_id_never_reaches_a_newer_connection() {
        let mut conns = Conns::new(Vec::new());
        let a = conns.open(Target::Node(1), "a:1".into(), SECOND);
        assert!(conns.remove(a).is_some());
        let b = conns.open(Target::Node(1), "a:1".into(), SECOND);
        assert_eq!(a.idx, b.idx, "the slab slot is reused");
        assert!(conns.get(a).is_none());
        assert!(conns.remove(a).is_none());
        assert_eq!(conns.get(b).map(|c| c.id), Some(b));
    }

    #[test]
    fn removing_a_connection_drops_its_queued_work() {
        let mut conns = Conns::new(Vec::new());
        let a = conns.open(Target::Node(1), "a:1".into(), SECOND);
        let b = conns.open(Target::Node(2), "b:2".into(), 2 * SECOND);
        conns.queue_handshake(a);
        conns.queue_handshake(b);
        conns.push_sasl_tx(Transmit {
            conn: a,
            frame: Default::default(),
        });
        conns.remove(a);
        conns.push_close(a);
        assert_eq!(conns.pop_handshake(), Some(b));
        assert_eq!(conns.pop_handshake(), None);
        assert!(conns.pop_sasl_tx().is_none());
        let io: Vec<IoCommand> = std::iter::from_fn(|| conns.pop_io()).collect();
        assert_eq!(
            io,
            [
                IoCommand::Connect {
                    conn: a,
                    addr: "a:1".into(),
                    timeout: SECOND,
                },
                IoCommand::Connect {
                    conn: b,
                    addr: "b:2".into(),
                    timeout: 2 * SECOND,
                },
                IoCommand::Close { conn: a },
            ]
        );
    }
}
