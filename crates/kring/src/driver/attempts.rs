//! Connection attempts before a socket exists, shared by both backends:
//! name lookups in flight (with the frames the engine queued meanwhile),
//! their deadlines, and failures found before a socket reached the kernel,
//! which the loop reports to the engine at the top of its next turn.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Frame;

use super::conn::SendQueue;
use super::resolver::{ConnectError, Lookups};

/// A connection attempt whose host name is being looked up.
struct Resolving<C> {
    conn: C,
    name: String,
    /// The attempt's connect timeout (it bounds the lookup too).
    timeout: Duration,
    deadline: Instant,
    /// Frames the engine queued meanwhile.
    queue: SendQueue,
}

/// A lookup that found addresses: connect to them, in order.
pub(crate) struct Resolved<C> {
    pub(crate) conn: C,
    pub(crate) name: String,
    pub(crate) addrs: VecDeque<SocketAddr>,
    /// The attempt's connect timeout, for each address's connect.
    pub(crate) timeout: Duration,
    /// Frames the engine queued while the name was being looked up.
    pub(crate) queue: SendQueue,
}

/// Pending attempts of one I/O thread.
pub(crate) struct Attempts<C> {
    lookups: Lookups,
    /// Attempts waiting for their lookup, by lookup id.
    resolving: HashMap<u64, Resolving<C>>,
    /// The lookup id of each connection that waits for one.
    by_conn: HashMap<C, u64>,
    next_lookup: u64,
    /// Failures not yet reported to the engine.
    failures: VecDeque<(C, io::ErrorKind, String)>,
}

impl<C: Copy + Eq + Hash + std::fmt::Debug> Attempts<C> {
    pub(crate) fn new(lookups: Lookups) -> Attempts<C> {
        Attempts {
            lookups,
            resolving: HashMap::new(),
            by_conn: HashMap::new(),
            next_lookup: 0,
            failures: VecDeque::new(),
        }
    }

    /// Start an attempt to reach `addr` for `conn`, superseding any earlier
    /// one. An IP literal needs no lookup: its address comes back at once.
    /// Otherwise a lookup starts, bounded by the attempt's connect
    /// `timeout` (its answer comes from [`settle`](Self::settle)), or its
    /// failure is queued.
    pub(crate) fn begin(
        &mut self,
        now: Instant,
        conn: C,
        addr: &str,
        timeout: Duration,
    ) -> Option<SocketAddr> {
        self.forget(conn);
        if let Ok(sa) = addr.parse::<SocketAddr>() {
            return Some(sa);
        }
        // Every attempt resolves anew: brokers behind DNS move.
        let id = self.next_lookup;
        self.next_lookup += 1;
        match self.lookups.start(id, addr) {
            Ok(()) => {
                tracing::debug!(?conn, %addr, "resolving");
                self.resolving.insert(
                    id,
                    Resolving {
                        conn,
                        name: addr.to_owned(),
                        timeout,
                        deadline: now + timeout,
                        queue: SendQueue::default(),
                    },
                );
                self.by_conn.insert(conn, id);
            }
            Err(err) => self.fail(conn, &err),
        }
        None
    }

    /// Drop what is pending for `conn` outside its socket: a lookup (its
    /// answer will be ignored) and an unreported failure.
    pub(crate) fn forget(&mut self, conn: C) {
        if let Some(id) = self.by_conn.remove(&conn) {
            self.resolving.remove(&id);
        }
        self.failures.retain(|(c, _, _)| *c != conn);
    }

    /// Queue a frame for a connection still being looked up; gives the
    /// frame back if `conn` has no lookup running.
    pub(crate) fn queue_frame(&mut self, conn: C, frame: Frame) -> Result<(), Frame> {
        match self
            .by_conn
            .get(&conn)
            .and_then(|id| self.resolving.get_mut(id))
        {
            Some(r) => {
                r.queue.push_frame(frame);
                Ok(())
            }
            None => Err(frame),
        }
    }

    /// Queue a failure for the engine (reported by the loop's next turn).
    pub(crate) fn fail(&mut self, conn: C, err: &ConnectError) {
        self.failures.push_back((conn, err.kind(), err.to_string()));
    }

    /// Take in finished lookups and fail those that overran the timeout.
    /// Returns the lookups that found addresses.
    pub(crate) fn settle(&mut self, now: Instant) -> Vec<Resolved<C>> {
        let mut resolved = Vec::new();
        for (id, answer) in self.lookups.take_done() {
            let Some(r) = self.resolving.remove(&id) else {
                continue; // timed out, closed or superseded meanwhile
            };
            self.by_conn.remove(&r.conn);
            match answer {
                Ok(addrs) if !addrs.is_empty() => {
                    tracing::debug!(conn = ?r.conn, name = %r.name, ?addrs, "resolved");
                    resolved.push(Resolved {
                        conn: r.conn,
                        name: r.name,
                        addrs: addrs.into(),
                        timeout: r.timeout,
                        queue: r.queue,
                    });
                }
                Ok(_) => self.fail(r.conn, &ConnectError::NoAddress { name: r.name }),
                Err(source) => self.fail(
                    r.conn,
                    &ConnectError::Resolve {
                        name: r.name,
                        source,
                    },
                ),
            }
        }
        if self.resolving.values().any(|r| r.deadline <= now) {
            let expired: Vec<u64> = self
                .resolving
                .iter()
                .filter(|(_, r)| r.deadline <= now)
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                let r = self.resolving.remove(&id).expect("listed above");
                self.by_conn.remove(&r.conn);
                let err = ConnectError::ResolveTimeout {
                    name: r.name,
                    after: r.timeout,
                };
                self.fail(r.conn, &err);
            }
        }
        resolved
    }

    /// The earliest lookup deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.resolving.values().map(|r| r.deadline).min()
    }

    /// Bytes of frames queued on lookups.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.resolving.values().map(|r| r.queue.bytes()).sum()
    }

    /// Whether failures wait to be reported.
    pub(crate) fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    /// The next failure to report to the engine.
    pub(crate) fn next_failure(&mut self) -> Option<(C, io::ErrorKind, String)> {
        self.failures.pop_front()
    }
}
