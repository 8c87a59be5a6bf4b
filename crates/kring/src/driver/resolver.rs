//! Name resolution off the I/O thread.
//!
//! `getaddrinfo` blocks, for as long as the system's DNS configuration
//! says (seconds per server and attempt). Run on the I/O thread it would
//! stall every broker's traffic, every linger and every timeout. So the I/O
//! thread hands each name to a short-lived lookup thread, which posts the
//! result to a shared list and wakes the I/O thread through its eventfd.
//! The I/O thread bounds each lookup by its attempt's connect timeout (the
//! one its `Connect` command carries) and ignores a result that arrives
//! after it gave up (or after the connection was closed or asked for
//! again). Lookup threads are capped: one stuck in the system resolver
//! keeps counting until it returns, so a resolver that hangs cannot make
//! the I/O thread spawn without bound.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::IoWaker;

/// Lookup threads running at once, abandoned ones included.
pub(crate) const MAX_LOOKUPS: usize = 16;

type ResolveFn = dyn Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// Turns `"host:port"` into addresses, blocking. The system resolver
/// outside tests; tests plug in their own.
#[derive(Clone)]
pub(crate) struct Resolver(Arc<ResolveFn>);

impl Resolver {
    /// The system resolver (`getaddrinfo`), addresses in its order.
    pub(crate) fn system() -> Resolver {
        Resolver(Arc::new(|name: &str| {
            name.to_socket_addrs().map(Iterator::collect)
        }))
    }

    /// A resolver of the caller's (tests).
    #[cfg(test)]
    pub(crate) fn new(
        f: impl Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Resolver {
        Resolver(Arc::new(f))
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// Why a connection attempt failed before a socket reached the kernel.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The resolver answered with an error.
    Resolve { name: String, source: io::Error },
    /// The resolver answered with no address.
    NoAddress { name: String },
    /// The resolver did not answer within the connect timeout.
    ResolveTimeout { name: String, after: Duration },
    /// Too many lookups are still running (the system resolver hangs).
    TooManyLookups { name: String },
    /// No lookup thread could be started.
    Spawn { name: String, source: io::Error },
    /// No socket could be created for any resolved address.
    Socket { name: String, source: io::Error },
}

impl ConnectError {
    /// The kind of failure, for the core's typed cause.
    pub(crate) fn kind(&self) -> io::ErrorKind {
        match self {
            ConnectError::Resolve { source, .. }
            | ConnectError::Spawn { source, .. }
            | ConnectError::Socket { source, .. } => source.kind(),
            ConnectError::NoAddress { .. } => io::ErrorKind::NotFound,
            ConnectError::ResolveTimeout { .. } => io::ErrorKind::TimedOut,
            ConnectError::TooManyLookups { .. } => io::ErrorKind::WouldBlock,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Resolve { name, source } => {
                write!(f, "cannot resolve {name}: {source}")
            }
            ConnectError::NoAddress { name } => write!(f, "{name} resolved to no address"),
            ConnectError::ResolveTimeout { name, after } => {
                write!(f, "resolving {name} timed out after {after:?}")
            }
            ConnectError::TooManyLookups { name } => write!(
                f,
                "cannot resolve {name}: {MAX_LOOKUPS} name lookups are still running"
            ),
            ConnectError::Spawn { name, source } => {
                write!(f, "cannot resolve {name}: no lookup thread: {source}")
            }
            ConnectError::Socket { name, source } => {
                write!(f, "cannot connect to {name}: {source}")
            }
        }
    }
}

/// A finished lookup: its id and the resolver's answer.
pub(crate) type Done = (u64, io::Result<Vec<SocketAddr>>);

/// The lookups started by one I/O thread.
pub(crate) struct Lookups {
    resolver: Resolver,
    waker: IoWaker,
    done: Arc<Mutex<Vec<Done>>>,
    running: Arc<AtomicUsize>,
}

impl Lookups {
    pub(crate) fn new(resolver: Resolver, waker: IoWaker) -> Lookups {
        Lookups {
            resolver,
            waker,
            done: Arc::default(),
            running: Arc::default(),
        }
    }

    /// Start resolving `name` on a lookup thread; its answer comes back
    /// from [`take_done`](Self::take_done) under `id`, and the I/O thread
    /// is woken for it.
    pub(crate) fn start(&self, id: u64, name: &str) -> Result<(), ConnectError> {
        if self.running.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(ConnectError::TooManyLookups {
                name: name.to_owned(),
            });
        }
        let (resolver, waker) = (self.resolver.clone(), self.waker.clone());
        let (done, running) = (Arc::clone(&self.done), Arc::clone(&self.running));
        let owned = name.to_owned();
        let spawned = std::thread::Builder::new()
            .name("kring-resolve".to_owned())
            .spawn(move || {
                let answer =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (resolver.0)(&owned)))
                        .unwrap_or_else(|_| Err(io::Error::other("the resolver panicked")));
                done.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((id, answer));
                running.fetch_sub(1, Ordering::AcqRel);
                waker.wake();
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(source) => {
                self.running.fetch_sub(1, Ordering::AcqRel);
                Err(ConnectError::Spawn {
                    name: name.to_owned(),
                    source,
                })
            }
        }
    }

    /// Answers that arrived since the last call.
    pub(crate) fn take_done(&self) -> Vec<Done> {
        std::mem::take(
            &mut *self
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
