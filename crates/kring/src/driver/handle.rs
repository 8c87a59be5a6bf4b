//! Starting, observing and stopping the I/O thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::epoll_loop::EpollThread;
use super::event_loop::IoThread;
use super::{DriverError, Engine, IoWaker};
use crate::config::IoBackend;

/// Settings of the I/O thread. The connect timeout is not one of them:
/// each [`IoCommand::Connect`](super::IoCommand::Connect) carries its
/// attempt's own, which the engine decides.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Submission queue entries (the completion queue gets twice as many);
    /// at least 4.
    pub ring_entries: u32,
    /// The largest response accepted; a larger size prefix closes the
    /// connection (it is most likely not a Kafka broker).
    pub max_response_size: usize,
    /// The least free space offered to each receive.
    pub min_read: usize,
    /// Name of the I/O thread.
    pub thread_name: String,
    /// Socket options of every broker connection: buffer sizes
    /// (`send.buffer.bytes`, `receive.buffer.bytes`; by default the
    /// kernel's) and TCP keepalive (on by default).
    pub socket_options: super::SocketOptions,
    /// The kernel interface to use: `Auto` tries io_uring and falls back
    /// to epoll where io_uring is refused.
    pub backend: IoBackend,
    /// Send batches of at least this many bytes with `SENDMSG_ZC` (zero
    /// copy); `None` (the default) never does. On loopback the kernel
    /// copies anyway, so its benefit shows only on a real NIC.
    pub send_zero_copy_from: Option<usize>,
    /// TLS for every connection (`security.protocol=SSL`): the handshake
    /// runs after the TCP connect, and the engine hears `handle_connected`
    /// only once it finished.
    pub(crate) tls: Option<super::tls::TlsConnector>,
    /// Test hook: every n-th submission made to free room in a full
    /// submission queue fails with `EBUSY`, as older kernels answer while
    /// the completion queue overflowed.
    #[cfg(test)]
    pub(crate) busy_every: Option<std::num::NonZeroU32>,
    /// Test hook: the error `busy_every` injects (`EBUSY` unless set;
    /// `EAGAIN` is what any kernel answers when it cannot allocate a
    /// request).
    #[cfg(test)]
    pub(crate) busy_errno: i32,
    /// Test hook: panic in the middle of shutdown, after the sockets'
    /// operations were cancelled and before they completed.
    #[cfg(test)]
    pub(crate) panic_in_shutdown: bool,
    /// Test hook: the drains of shutdown and of the ring's drop guard see
    /// no completion, as if the kernel kept every operation, and give up
    /// after this long instead of `SHUTDOWN_DRAIN`: what they then leak.
    #[cfg(test)]
    pub(crate) drain_sees_nothing_for: Option<Duration>,
    /// Test hook: resolve names with this instead of the system resolver.
    #[cfg(test)]
    pub(crate) resolver: Option<super::resolver::Resolver>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            ring_entries: 256,
            max_response_size: 512 * 1024 * 1024,
            min_read: 64 * 1024,
            thread_name: "kring-io".to_owned(),
            socket_options: super::SocketOptions::default(),
            #[cfg(not(test))]
            backend: IoBackend::Auto,
            // The driver's and the producer's unit tests run on the
            // backend `KRING_TEST_IO_BACKEND` names (scripts/test runs them
            // on each); tests of one backend's own mechanics set it.
            #[cfg(test)]
            backend: test_backend(),
            send_zero_copy_from: None,
            tls: None,
            #[cfg(test)]
            busy_every: None,
            #[cfg(test)]
            busy_errno: libc::EBUSY,
            #[cfg(test)]
            panic_in_shutdown: false,
            #[cfg(test)]
            drain_sees_nothing_for: None,
            #[cfg(test)]
            resolver: None,
        }
    }
}

/// The backend tests run on: `KRING_TEST_IO_BACKEND` (`auto`, `io_uring`,
/// `epoll`), else `Auto`.
#[cfg(test)]
pub(crate) fn test_backend() -> IoBackend {
    match std::env::var("KRING_TEST_IO_BACKEND") {
        Ok(v) if v.is_empty() => IoBackend::Auto,
        Ok(v) => IoBackend::parse(&v).unwrap_or_else(|| {
            panic!("KRING_TEST_IO_BACKEND={v}: expected auto, io_uring or epoll")
        }),
        Err(_) => IoBackend::Auto,
    }
}

/// Counters kept by the I/O thread, readable from any thread.
#[derive(Debug, Default)]
pub struct DriverMetrics {
    pub(crate) io_wakeups: AtomicU64,
    pub(crate) sends: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) responses: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) request_bytes_held: AtomicU64,
    /// Operations whose buffers were freed before their completion was
    /// reaped (must stay 0).
    #[cfg(test)]
    pub(crate) ops_freed_unreaped: AtomicU64,
    /// Operations the ring's drop guard waited for.
    #[cfg(test)]
    pub(crate) drop_guard_drained: AtomicU64,
    /// Operations leaked (never freed) because their completion did not
    /// come within the drain bound.
    #[cfg(test)]
    pub(crate) ops_leaked: AtomicU64,
}

impl DriverMetrics {
    /// Returns from the kernel wait of the I/O thread: each is one wake-up of
    /// the thread (by a completion, a producer wake-up or a deadline).
    pub fn io_wakeups(&self) -> u64 {
        self.io_wakeups.load(Ordering::Relaxed)
    }
    /// `SENDMSG` operations completed.
    pub fn sends(&self) -> u64 {
        self.sends.load(Ordering::Relaxed)
    }
    /// Bytes written to brokers.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }
    /// Bytes read from brokers.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }
    /// Complete responses handed to the engine.
    pub fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }
    /// TCP connections established.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Bytes of request frames held by the I/O thread (queued or being
    /// written), as of its last turn.
    pub fn request_bytes_held(&self) -> u64 {
        self.request_bytes_held.load(Ordering::Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The running I/O thread.
///
/// Dropping it stops the thread: the engine is aborted if it had not
/// finished, every socket is closed, and the drop waits for the thread.
#[derive(Debug)]
pub struct Driver {
    waker: IoWaker,
    metrics: Arc<DriverMetrics>,
    stop: Arc<AtomicBool>,
    exited: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    backend: IoBackend,
}

impl Driver {
    /// Start the I/O thread driving `engine` on the backend
    /// `config.backend` asks for. With [`IoBackend::Auto`], io_uring is
    /// tried first and epoll used where it is refused; one log line says
    /// which backend runs and why. Fails if the backend asked for is not
    /// usable here (see [`DriverError::Unavailable`]).
    pub fn start<E: Engine>(engine: E, config: DriverConfig) -> Result<Driver, DriverError> {
        let waker = IoWaker::new().map_err(DriverError::Start)?;
        let metrics = Arc::new(DriverMetrics::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel::<Result<IoBackend, DriverError>>();
        let (exited_tx, exited) = mpsc::channel::<()>();
        let thread = {
            let waker = waker.clone();
            let metrics = Arc::clone(&metrics);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(config.thread_name.clone())
                .spawn(move || {
                    // Held until the thread ends, so `join_timeout` sees the exit.
                    let _exited = exited_tx;
                    let engine = if config.backend == IoBackend::Epoll {
                        engine
                    } else {
                        // The ring is created on the thread that uses it
                        // (IORING_SETUP_SINGLE_ISSUER requires it).
                        let ring = IoThread::new(
                            engine,
                            config.clone(),
                            waker.clone(),
                            Arc::clone(&metrics),
                            Arc::clone(&stop),
                        );
                        match ring {
                            Ok(mut io) => {
                                if config.backend == IoBackend::Auto {
                                    tracing::info!(
                                        backend = "io_uring",
                                        "kring I/O backend: io_uring (io.backend=auto)"
                                    );
                                }
                                let _ = started_tx.send(Ok(IoBackend::IoUring));
                                io.run();
                                return;
                            }
                            Err((engine, err)) if config.backend == IoBackend::Auto => {
                                tracing::info!(
                                    backend = "epoll",
                                    reason = %err,
                                    "kring I/O backend: epoll, because io_uring was refused \
                                     (io.backend=auto; set io.backend=epoll to skip the attempt)"
                                );
                                engine
                            }
                            Err((mut engine, err)) => {
                                engine.abort(std::time::Instant::now(), &err.to_string());
                                let _ = started_tx.send(Err(err));
                                return;
                            }
                        }
                    };
                    match EpollThread::new(engine, config, waker, metrics, stop) {
                        Ok(mut io) => {
                            let _ = started_tx.send(Ok(IoBackend::Epoll));
                            io.run();
                        }
                        Err((mut engine, err)) => {
                            engine.abort(std::time::Instant::now(), &err.to_string());
                            let _ = started_tx.send(Err(err));
                        }
                    }
                })
                .map_err(DriverError::Start)?
        };
        match started_rx.recv() {
            Ok(Ok(backend)) => Ok(Driver {
                waker,
                metrics,
                stop,
                exited,
                thread: Some(thread),
                backend,
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => {
                let _ = thread.join();
                Err(DriverError::Start(std::io::Error::other(
                    "the I/O thread panicked during start-up",
                )))
            }
        }
    }

    /// The backend the I/O thread runs on: [`IoBackend::IoUring`] or
    /// [`IoBackend::Epoll`], never `Auto`.
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// The handle producer threads use to wake the I/O thread.
    pub fn waker(&self) -> &IoWaker {
        &self.waker
    }

    /// The I/O thread's counters.
    pub fn metrics(&self) -> &Arc<DriverMetrics> {
        &self.metrics
    }

    /// The I/O thread's id (code running on it must not wait for it).
    pub fn thread_id(&self) -> Option<std::thread::ThreadId> {
        self.thread.as_ref().map(|t| t.thread().id())
    }

    /// `true` once the I/O thread has exited.
    pub fn has_exited(&self) -> bool {
        matches!(
            self.exited.try_recv(),
            Err(mpsc::TryRecvError::Disconnected)
        )
    }

    /// Ask the I/O thread to stop now: it aborts the engine (which fails
    /// whatever is pending), closes every socket and exits.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Wait up to `timeout` for the I/O thread to exit (by itself once the
    /// engine is finished, or after [`stop`](Driver::stop)). Returns `true`
    /// if it exited.
    pub fn join_timeout(&mut self, timeout: Duration) -> bool {
        match self.exited.recv_timeout(timeout) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    if t.join().is_err() {
                        tracing::error!("the kring I/O thread panicked");
                    }
                }
                true
            }
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let own = self
            .thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if own {
            // Dropped on the I/O thread itself (the producer's last handle
            // went inside a callback): it cannot wait for its own exit, and
            // stopping it would abort what the close it was given still
            // delivers. Detached; it exits once the engine has finished.
            self.thread = None;
            return;
        }
        if self.thread.is_some() {
            self.stop();
            // The thread only waits for in-kernel cancellations now, which
            // are prompt; the bound guards against a wedged kernel.
            if !self.join_timeout(Duration::from_secs(10)) {
                tracing::error!("the kring I/O thread did not stop within 10 s; detaching it");
            }
        }
    }
}
