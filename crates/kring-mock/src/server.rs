//! A broker's listener: one acceptor thread, one thread per connection.
//!
//! Blocking `std::net` I/O, a thread per connection: simple, and a Kafka
//! client opens few connections per broker. Stopping a broker closes its
//! listener (new connects are refused), shuts every accepted socket down
//! (which wakes their threads out of `read`/`write`), wakes any thread
//! waiting in a delay or a Fetch long-poll, and joins them all: no thread
//! outlives [`BrokerServer::stop`] or the cluster's drop.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::conn;
use crate::state::Shared;

struct Conn {
    stream: TcpStream,
    thread: JoinHandle<()>,
}

struct Running {
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

/// One broker's network side.
pub(crate) struct BrokerServer {
    pub(crate) id: i32,
    pub(crate) addr: SocketAddr,
    running: Option<Running>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for BrokerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerServer")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl BrokerServer {
    /// Binds `addr` (port 0 picks a free port) and starts accepting.
    /// With `tls`, every connection is TLS.
    pub(crate) fn start(
        shared: Arc<Shared>,
        id: i32,
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let mut b = BrokerServer {
            id,
            addr,
            running: None,
            tls,
        };
        b.running = Some(spawn_acceptor(shared, id, listener, b.tls.clone())?);
        Ok(b)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Listens again on the same address after [`stop`](Self::stop).
    pub(crate) fn restart(&mut self, shared: Arc<Shared>) -> io::Result<()> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)?;
        self.running = Some(spawn_acceptor(shared, self.id, listener, self.tls.clone())?);
        Ok(())
    }

    /// Closes the listener and every connection, and joins their threads.
    pub(crate) fn stop(&mut self, shared: &Shared) {
        let Some(r) = self.running.take() else {
            return;
        };
        r.stop.store(true, Ordering::Release);
        // Wake the acceptor out of accept(); it sees the flag and exits,
        // closing the listener. If the connect fails the acceptor is not
        // blocked in accept on a live listener anyway.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = r.acceptor.join();
        let conns = std::mem::take(&mut *r.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for c in &conns {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        // Threads waiting on the condition variable (delays, Fetch
        // long-polls) re-check the stop flag.
        shared.notify();
        for c in conns {
            let _ = c.thread.join();
        }
    }
}

fn spawn_acceptor(
    shared: Arc<Shared>,
    id: i32,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
    let acceptor = {
        let stop = stop.clone();
        let conns = conns.clone();
        thread::Builder::new()
            .name(format!("kring-mock-{id}-accept"))
            .spawn(move || accept_loop(shared, id, listener, tls, stop, conns))?
    };
    Ok(Running {
        stop,
        acceptor,
        conns,
    })
}

fn accept_loop(
    shared: Arc<Shared>,
    id: i32,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<Conn>>>,
) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            return;
        }
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            let tls = tls.clone();
            thread::Builder::new()
                .name(format!("kring-mock-{id}-conn"))
                .spawn(move || conn::serve(&shared, id, &stop, stream, tls))
        };
        let Ok(thread) = thread else {
            continue;
        };
        let mut list = conns.lock().unwrap_or_else(|e| e.into_inner());
        // Reap connections that ended, so a long-running broker does not
        // accumulate handles.
        let mut i = 0;
        while i < list.len() {
            if list[i].thread.is_finished() {
                let c = list.swap_remove(i);
                let _ = c.thread.join();
            } else {
                i += 1;
            }
        }
        list.push(Conn {
            stream: clone,
            thread,
        });
    }
}
