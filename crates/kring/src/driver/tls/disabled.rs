//! Without the `tls` cargo feature: `security.protocol=SSL` is refused when
//! the configuration is validated, so no connector or session can exist.
//! The types have no values; the event loop's TLS paths are unreachable.

use bytes::BytesMut;

use super::{Received, TlsError};

/// No value exists without the `tls` feature.
#[derive(Debug, Clone)]
pub(crate) enum TlsConnector {}

/// No value exists without the `tls` feature.
#[derive(Debug)]
pub(crate) enum TlsSession {}

impl TlsConnector {
    pub(crate) fn start(&self, _addr: &str) -> Result<TlsSession, TlsError> {
        match *self {}
    }
}

impl TlsSession {
    pub(crate) fn is_handshaking(&self) -> bool {
        match *self {}
    }

    pub(crate) fn encrypt<'a>(
        &mut self,
        _chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), TlsError> {
        match *self {}
    }

    pub(crate) fn take_ciphertext(&mut self, _out: &mut Vec<u8>) {
        match *self {}
    }

    pub(crate) fn receive(
        &mut self,
        _cipher: &[u8],
        _plain: &mut BytesMut,
    ) -> Result<Received, TlsError> {
        match *self {}
    }
}
