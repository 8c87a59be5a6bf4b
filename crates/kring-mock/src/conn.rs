//! One client connection: read frames, answer them in order, apply faults
//! that act on the connection (delays, drops, throttling, mangled
//! responses).
//!
//! Requests a single `read` brings in are all answered before the answers
//! are written, in one `write`: a pipelining client gets its responses
//! coalesced, and the sink answers at the rate the client sends. A fault
//! that delays, mutes or closes flushes the answers queued before it first,
//! so each response leaves exactly when a broker handling requests one at a
//! time would send it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::api::{self, Step};
use crate::frame::FrameReader;
use crate::sink::SinkConn;
use crate::state::Shared;

/// What a request handler needs to know about where it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) broker_id: i32,
    pub(crate) stop: &'a AtomicBool,
    /// Whether a handler may block waiting for data (a Fetch long-poll).
    /// False without sockets ([`crate::MockCluster::handle`]): there is no
    /// clock there, so a Fetch answers with what is stored at once.
    pub(crate) blocking: bool,
}

const PRODUCE: i16 = 0;

/// Serves one connection until the peer closes it, a fault or protocol error
/// closes it, or the broker stops.
/// With `tls`, the connection is TLS (its handshake runs on the first read).
pub(crate) fn serve(
    shared: &Shared,
    broker_id: i32,
    stop: &AtomicBool,
    mut stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    match tls.map(rustls::ServerConnection::new) {
        None => serve_until_closed(shared, broker_id, stop, &mut stream),
        Some(Ok(session)) => {
            let mut tls = rustls::StreamOwned::new(session, stream);
            serve_until_closed(shared, broker_id, stop, &mut tls);
            // Handshake failures already sent their alert.
            tls.conn.send_close_notify();
            let _ = tls.flush();
            stream = tls.sock;
        }
        Some(Err(_)) => {}
    }
    // The broker keeps a clone of the socket (to shut it down on stop), so
    // dropping this handle alone would leave the connection open.
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve_until_closed<S: Read + Write>(
    shared: &Shared,
    broker_id: i32,
    stop: &AtomicBool,
    stream: &mut S,
) {
    let ctx = Ctx {
        shared,
        broker_id,
        stop,
        blocking: true,
    };
    let sink = shared.sink.as_ref();
    let mut reader = FrameReader::new(if sink.is_some() { 1 << 20 } else { 64 << 10 });
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut sink_conn = SinkConn::default();
    let mut sasl_conn = crate::sasl::SaslConn::default();
    loop {
        let n = match reader.read_from(stream) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stop.load(Ordering::Acquire) {
            return;
        }
        loop {
            let range = match reader.next_frame() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => {
                    let _ = stream.write_all(&out);
                    return;
                }
            };
            let frame = &reader.buf()[range];
            if frame.len() < 8 {
                let _ = stream.write_all(&out);
                return;
            }
            let api_key = i16::from_be_bytes([frame[0], frame[1]]);
            if let Some(sasl) = &shared.sasl {
                use crate::sasl::Verdict;
                let verdict = sasl_conn.check(
                    &sasl.lock().unwrap_or_else(|e| e.into_inner()),
                    Instant::now(),
                    frame,
                );
                if !matches!(verdict, Verdict::Pass) {
                    // Answered here, never reaching the dispatch that
                    // counts the rest.
                    shared.counters.count(api_key);
                }
                match verdict {
                    Verdict::Pass => {}
                    Verdict::Answer(f) => {
                        out.extend_from_slice(&f);
                        continue;
                    }
                    Verdict::AnswerAndClose(f) => {
                        out.extend_from_slice(&f);
                        let _ = stream.write_all(&out);
                        return;
                    }
                    Verdict::Close => {
                        let _ = stream.write_all(&out);
                        return;
                    }
                }
            }
            if let (Some(sink), PRODUCE) = (sink, api_key) {
                shared.counters.count(api_key);
                if sink_conn.produce(shared, sink, frame, &mut out).is_err() {
                    let _ = stream.write_all(&out);
                    return;
                }
                continue;
            }
            let step = api::handle(&ctx, Bytes::copy_from_slice(frame));
            if stop.load(Ordering::Acquire) {
                // A stopping broker answers nothing more.
                return;
            }
            match step {
                Step::Silent => {}
                Step::Close => {
                    let _ = stream.write_all(&out);
                    return;
                }
                Step::Reply(r) => {
                    if !r.delay.is_zero() {
                        if flush(stream, &mut out).is_err() {
                            return;
                        }
                        shared.sleep(r.delay, stop);
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                    }
                    if r.cut {
                        out.extend_from_slice(&r.frame[..r.frame.len() / 2]);
                        let _ = stream.write_all(&out);
                        return;
                    }
                    out.extend_from_slice(&r.frame);
                    if !r.mute.is_zero() {
                        if flush(stream, &mut out).is_err() {
                            return;
                        }
                        mute(shared, r.mute, stop);
                    }
                }
            }
        }
        // Count before answering, so a client that has its responses also
        // sees them in the totals.
        if let Some(sink) = sink {
            sink_conn.flush_stats(sink, n as u64);
        }
        if flush(stream, &mut out).is_err() {
            return;
        }
    }
}

fn flush<S: Write>(stream: &mut S, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !out.is_empty() {
        stream.write_all(out)?;
        out.clear();
    }
    Ok(())
}

/// A throttled channel is muted: the broker reads nothing more from it
/// until the throttle time has passed (KIP-219).
fn mute(shared: &Shared, d: Duration, stop: &AtomicBool) {
    shared.sleep(d, stop);
}
