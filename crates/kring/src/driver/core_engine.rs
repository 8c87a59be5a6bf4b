//! The producer core as the driver's engine: a forwarding impl, one line
//! per method, because [`Engine`] restates the driver-facing half of
//! [`ProducerCore`] one to one.

use std::time::Instant;

use bytes::Bytes;
use kring_core::{ConnId, ProducerCore};

use super::{Engine, IoCommand, Transmit};

impl Engine for ProducerCore {
    type Conn = ConnId;

    fn handle_wakeup(&mut self, now: Instant) {
        ProducerCore::handle_wakeup(self, now);
    }

    fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        ProducerCore::handle_connected(self, now, conn);
    }

    fn handle_connect_failed(
        &mut self,
        now: Instant,
        conn: ConnId,
        kind: std::io::ErrorKind,
        reason: &str,
    ) {
        ProducerCore::handle_connect_error(self, now, conn, kind, reason);
    }

    fn handle_disconnected(&mut self, now: Instant, conn: ConnId, reason: &str) {
        ProducerCore::handle_disconnected(self, now, conn, reason);
    }

    fn handle_tls_failed(
        &mut self,
        now: Instant,
        conn: ConnId,
        kind: kring_core::TlsFailure,
        reason: &str,
    ) {
        ProducerCore::handle_tls_error(self, now, conn, kind, reason);
    }

    fn handle_response(&mut self, now: Instant, conn: ConnId, frame: Bytes) {
        ProducerCore::handle_response(self, now, conn, frame);
    }

    fn handle_timeout(&mut self, now: Instant) {
        ProducerCore::handle_timeout(self, now);
    }

    fn poll_io(&mut self) -> Option<IoCommand<ConnId>> {
        ProducerCore::poll_io(self).map(|c| match c {
            kring_core::IoCommand::Connect {
                conn,
                addr,
                timeout,
            } => IoCommand::Connect {
                conn,
                addr,
                timeout,
            },
            kring_core::IoCommand::Close { conn } => IoCommand::Close { conn },
        })
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<ConnId>> {
        ProducerCore::poll_transmit(self, now).map(|t| Transmit {
            conn: t.conn,
            frame: t.frame,
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        ProducerCore::poll_timeout(self)
    }

    fn prepare_park(&mut self) -> bool {
        ProducerCore::prepare_park(self)
    }

    fn is_finished(&self) -> bool {
        ProducerCore::is_finished(self)
    }

    fn abort(&mut self, now: Instant, reason: &str) {
        ProducerCore::abort(self, now, reason);
    }
}
