//! The I/O driver: one I/O thread that owns the ring (or the epoll set) and
//! every broker connection.
//!
//! Why a driver of our own rather than an async runtime: the producer core
//! (`kring-core`) is sans-IO, so all the driver has to do is move bytes
//! between the core and the kernel and tell the core what happened. Doing
//! that directly on io_uring lets one thread coalesce every queued request of
//! a connection into a single `SENDMSG`, keep a receive armed on every
//! socket, and sleep in one `io_uring_enter` until a completion, a producer
//! wake-up (an eventfd read kept armed on the ring) or the core's earliest
//! deadline. There is no fixed tick: an idle producer never wakes up.
//!
//! The driver talks to the core through the small [`Engine`] trait, so it can
//! be tested with a scripted engine and real sockets, independent of the
//! core's policies.
//!
//! Where io_uring is refused (a seccomp profile such as Docker's default,
//! `kernel.io_uring_disabled`, an old kernel), the same loop runs on epoll
//! with non-blocking sockets ([`epoll_loop`]); `io.backend` chooses, and by
//! default (`auto`) io_uring is tried first. Both backends share the write
//! queues, response framing, name lookups, socket setup and TLS
//! ([`tls::Link`]), so every feature runs on either.
//!
//! All `unsafe` code of the `kring` crate lives in this module.

mod attempts;
pub(crate) mod clock;
mod conn;
mod core_engine;
mod engine;
mod epoll_loop;
mod error;
mod event_loop;
mod eventfd;
mod framing;
mod handle;
pub(crate) mod prefetch;
mod resolver;
mod socket;
pub(crate) mod tls;

pub use engine::{Engine, Frame, IoCommand, Transmit};
pub use error::DriverError;
pub use eventfd::IoWaker;
pub use handle::{Driver, DriverConfig, DriverMetrics};
pub use socket::SocketOptions;

#[cfg(test)]
pub(crate) use event_loop::io_uring_usable;
#[cfg(test)]
pub(crate) use handle::test_backend;
#[cfg(test)]
mod tests;
