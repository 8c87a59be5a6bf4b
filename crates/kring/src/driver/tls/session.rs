//! The rustls side of [`super`]: the connector and the session.

use std::io::{IoSlice, Read, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use kring_core::TlsFailure;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
};

use crate::config::{ConfigError, Pem, SslSettings, TlsCipherSuite};

use super::{Received, TlsError};

/// The crypto behind every TLS connection: rustls's `ring` backend, chosen
/// because it builds without cmake, where aws-lc-rs needs it. rustls
/// 0.23.48 deprecates it for lacking post-quantum key exchange
/// (X25519MLKEM768); it offers X25519 and the NIST curves, which every
/// Kafka listener accepts, and switching backends is a build-time choice
/// for kring's users to ask for, not a lint to follow.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client side of TLS for every connection of one producer: trust
/// anchors, client certificate and verification policy, built once.
#[derive(Debug, Clone)]
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// Reads and checks the TLS settings (files included).
    pub(crate) fn new(settings: &SslSettings) -> Result<TlsConnector, ConfigError> {
        let provider = offering(crypto_provider(), &settings.cipher_suites);
        let (roots, pinned) = root_store(settings)?;
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (settings.versions.tls13, &rustls::version::TLS13),
            (settings.versions.tls12, &rustls::version::TLS12),
        ]
        .into_iter()
        .filter_map(|(on, v)| on.then_some(v))
        .collect();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| conflict(format!("TLS setup failed: {e}")))?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| conflict(format!("TLS setup failed: {e}")))?;
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                inner,
                verify_hostname: settings.verify_hostname,
                pinned,
            }));
        let config = match client_identity(settings)? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                conflict(format!(
                    "the client certificate and key do not fit together or are unusable: {e}"
                ))
            })?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }

    /// A session for a connection to `addr` (`host:port`): the host is the
    /// SNI name and the name the certificate must be valid for (an IP
    /// literal is checked against the certificate's IP addresses).
    pub(crate) fn start(&self, addr: &str) -> Result<TlsSession, TlsError> {
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            TlsError::new(
                TlsFailure::HostnameMismatch,
                format!("`{host}` is not a valid TLS server name"),
            )
        })?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| TlsError::new(TlsFailure::Protocol, e.to_string()))?;
        // The driver drains the ciphertext after every request it
        // encrypts; the in-flight limit bounds what is queued.
        conn.set_buffer_limit(None);
        Ok(TlsSession { conn })
    }
}

/// `provider` offering only `suites`, in their order (`ssl.cipher.suites`;
/// empty: all of them, in the provider's order).
fn offering(provider: Arc<CryptoProvider>, suites: &[TlsCipherSuite]) -> Arc<CryptoProvider> {
    if suites.is_empty() {
        return provider;
    }
    let mut p = (*provider).clone();
    p.cipher_suites = suites
        .iter()
        .filter_map(|&want| {
            let id = suite_id(want);
            provider
                .cipher_suites
                .iter()
                .find(|s| s.suite() == id)
                .copied()
        })
        .collect();
    Arc::new(p)
}

/// rustls's id of `suite`.
fn suite_id(suite: TlsCipherSuite) -> rustls::CipherSuite {
    use rustls::CipherSuite as C;
    use TlsCipherSuite::*;
    match suite {
        Tls13Aes128GcmSha256 => C::TLS13_AES_128_GCM_SHA256,
        Tls13Aes256GcmSha384 => C::TLS13_AES_256_GCM_SHA384,
        Tls13Chacha20Poly1305Sha256 => C::TLS13_CHACHA20_POLY1305_SHA256,
        EcdheEcdsaAes128GcmSha256 => C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        EcdheEcdsaAes256GcmSha384 => C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        EcdheEcdsaChacha20Poly1305Sha256 => C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        EcdheRsaAes128GcmSha256 => C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        EcdheRsaAes256GcmSha384 => C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        EcdheRsaChacha20Poly1305Sha256 => C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    }
}

/// `host` of `host:port` (`[v6]:port` gives `v6`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// One connection's TLS session.
pub(crate) struct TlsSession {
    conn: ClientConnection,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl TlsSession {
    /// Whether the handshake is still running (no request may be sent).
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Encrypt queued request bytes (after the handshake), given as the
    /// chunks of one or more frames: one vectored write, so rustls cuts
    /// full-size records across chunk boundaries (no concatenation first,
    /// and no tiny record per small chunk). The ciphertext is collected
    /// with [`take_ciphertext`](Self::take_ciphertext).
    pub(crate) fn encrypt<'a>(
        &mut self,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), TlsError> {
        debug_assert!(!self.conn.is_handshaking());
        let fail = |e: std::io::Error| {
            TlsError::new(TlsFailure::Protocol, format!("encrypting failed: {e}"))
        };
        let mut slices: Vec<IoSlice<'a>> = chunks
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(IoSlice::new)
            .collect();
        let mut rest = &mut slices[..];
        let mut writer = self.conn.writer();
        // With no buffer limit (set at creation) rustls takes everything at
        // once; loop anyway rather than rely on it.
        while !rest.is_empty() {
            match writer.write_vectored(rest) {
                Ok(0) => return Err(fail(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(())
    }

    /// Append every TLS record waiting to be sent to `out`.
    pub(crate) fn take_ciphertext(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(out).unwrap_or(0) == 0 {
                break;
            }
        }
    }

    /// Take in ciphertext the broker sent; decrypted bytes are appended to
    /// `plain`. Handshake messages advance the handshake (its replies are
    /// then waiting in [`take_ciphertext`](Self::take_ciphertext)).
    pub(crate) fn receive(
        &mut self,
        mut cipher: &[u8],
        plain: &mut BytesMut,
    ) -> Result<Received, TlsError> {
        let mut received = Received::default();
        while !cipher.is_empty() {
            let handshaking = self.conn.is_handshaking();
            match self.conn.read_tls(&mut cipher) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(TlsError::new(TlsFailure::Protocol, e.to_string())),
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| classify(&e, handshaking))?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let old = plain.len();
                plain.resize(old + n, 0);
                if let Err(e) = self.conn.reader().read_exact(&mut plain[old..]) {
                    plain.truncate(old);
                    return Err(TlsError::new(TlsFailure::Protocol, e.to_string()));
                }
            }
            if state.peer_has_closed() {
                received.closed = true;
            }
        }
        Ok(received)
    }
}

/// Classify a rustls error; `handshaking` says whether it arrived during
/// the handshake (where bytes that are not TLS mean a plaintext listener).
fn classify(e: &rustls::Error, handshaking: bool) -> TlsError {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            TlsError::new(
                TlsFailure::UntrustedCertificate,
                format!(
                    "the broker's certificate is not trusted ({e}); set ssl.ca.location (or \
                 ssl.ca.pem) to the CA that signed it"
                ),
            )
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TlsError::new(
            TlsFailure::HostnameMismatch,
            format!(
                "the broker's certificate does not match the address connected to ({e}); \
                 connect by a name the certificate lists, or set \
                 ssl.endpoint.identification.algorithm=none"
            ),
        ),
        E::InvalidCertificate(_) => TlsError::new(
            TlsFailure::InvalidCertificate,
            format!("the broker's certificate was rejected: {e}"),
        ),
        E::AlertReceived(rustls::AlertDescription::ProtocolVersion) => TlsError::new(
            TlsFailure::Refused,
            "the broker speaks none of the TLS versions offered (alert ProtocolVersion); \
             check ssl.enabled.protocols"
                .to_owned(),
        ),
        E::PeerIncompatible(why) if handshaking => TlsError::new(
            TlsFailure::Protocol,
            format!(
                "the broker's TLS does not fit what kring offers ({why:?}); if it is a TLS \
                 version, check ssl.enabled.protocols, if a cipher suite, ssl.cipher.suites"
            ),
        ),
        E::AlertReceived(rustls::AlertDescription::HandshakeFailure) if handshaking => {
            TlsError::new(
                TlsFailure::Refused,
                "the broker refused the TLS handshake (alert HandshakeFailure): it shares no \
                 cipher suite with the ones offered (check ssl.cipher.suites), or it requires \
                 a client certificate (set ssl.certificate.location and ssl.key.location)"
                    .to_owned(),
            )
        }
        E::AlertReceived(alert) => TlsError::new(
            TlsFailure::Refused,
            format!(
                "the broker refused the TLS session (alert {alert:?}); if the listener \
                 requires client authentication, set ssl.certificate.location and \
                 ssl.key.location to a certificate it trusts"
            ),
        ),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } if handshaking => TlsError::new(
            TlsFailure::PeerNotTls,
            format!(
                "the broker did not answer with TLS ({e}); is this a PLAINTEXT listener? \
                 (security.protocol is SSL)"
            ),
        ),
        _ => TlsError::new(TlsFailure::Protocol, format!("TLS error: {e}")),
    }
}

/// webpki's verification, with two allowances: without
/// `ssl.endpoint.identification.algorithm=https` the name is not checked
/// (webpki checks the chain before the name, so a name error means the
/// chain was accepted); and a broker certificate that is itself one of the
/// configured `ssl.ca.*` certificates (a self-signed broker certificate,
/// trusted directly, as OpenSSL and the JVM accept it) is trusted, its
/// name still checked.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_hostname: bool,
    /// The explicitly configured CA certificates (none for the system
    /// trust store).
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::Other(_),
            )) if self
                .pinned
                .iter()
                .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                if self.verify_hostname {
                    let parsed = ParsedCertificate::try_from(end_entity)?;
                    verify_server_name(&parsed, server_name)?;
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn conflict(msg: String) -> ConfigError {
    ConfigError::Conflict(msg)
}

fn bad(property: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::OutOfRange {
        property,
        reason: reason.into(),
    }
}

fn read_file(property: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| bad(property, format!("cannot read {}: {e}", path.display())))
}

/// The trust anchors: `ssl.ca.*`, or the system's.
/// Also returns the configured CA certificates themselves (empty for the
/// system store), which a broker certificate may match directly.
#[allow(clippy::type_complexity)]
fn root_store(
    settings: &SslSettings,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), ConfigError> {
    let mut store = RootCertStore::empty();
    let certs = ca_certs(
        settings.ca.as_ref(),
        "ssl.ca.location",
        "ssl.ca.pem",
        settings.truststore_password.as_deref(),
    )?;
    let pinned = if settings.ca.is_some() {
        certs.clone()
    } else {
        Vec::new()
    };
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad(
            "ssl.ca.location",
            "none of the CA certificates could be used",
        ));
    }
    Ok((store, pinned))
}

/// The CA certificates `ca` names (a PEM or PKCS #12 file, a directory of
/// PEM files as librdkafka accepts, or PEM text), or the system trust
/// store's when it is `None`; `location` and `pem` are the properties
/// errors name (`ssl.ca.*` for brokers, `https.ca.*` for an OAuth token
/// endpoint); `password` opens a PKCS #12 file.
pub(crate) fn ca_certs(
    ca: Option<&Pem>,
    location: &'static str,
    pem: &'static str,
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    Ok(match ca {
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(bad(
                    location,
                    format!(
                        "no CA certificates found in the system trust store{why}; set \
                         {location} to the CA that signed the server's certificate"
                    ),
                ));
            }
            found.certs
        }
        Some(Pem::Inline(text)) => certs_in(pem, text.as_bytes(), pem)?,
        Some(Pem::File(path)) if path.is_dir() => {
            let mut all = Vec::new();
            let entries = std::fs::read_dir(path)
                .map_err(|e| bad(location, format!("cannot read {}: {e}", path.display())))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_file() {
                    if let Ok(bytes) = std::fs::read(&p) {
                        all.extend(CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok));
                    }
                }
            }
            if all.is_empty() {
                return Err(bad(
                    location,
                    format!("no PEM certificates in the directory {}", path.display()),
                ));
            }
            all
        }
        Some(Pem::File(path)) => {
            let bytes = read_file(location, path)?;
            let what = path.display().to_string();
            if super::pkcs12::looks_like_pkcs12(&bytes) {
                let pw = password.unwrap_or_default();
                let store = super::pkcs12::read(&bytes, pw, pw)
                    .map_err(|why| bad(location, format!("{what} is {why}")))?;
                if store.certs.is_empty() {
                    return Err(bad(location, format!("{what} holds no certificate")));
                }
                store.certs
            } else {
                certs_in(location, &bytes, &what)?
            }
        }
    })
}

/// Every certificate of a PEM text; `what` names it in errors.
fn certs_in(
    property: &'static str,
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(property, format!("{what} is not valid PEM")))?;
    if certs.is_empty() {
        return Err(bad(
            property,
            format!("{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM text, decrypted with `password`
/// (`ssl.key.password`) if it is an encrypted PKCS #8 key. Neither the
/// text nor the password is quoted in errors.
fn key_in(
    property: &'static str,
    pem: &[u8],
    what: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    use super::encrypted_key::{load, KeyError, LEGACY};
    load(pem, password).map_err(|e| match e {
        KeyError::NoKey => bad(
            property,
            format!("{what} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1)"),
        ),
        KeyError::Legacy => bad(property, format!("{what} is {LEGACY}")),
        KeyError::NeedsPassword => bad(
            "ssl.key.password",
            format!(
                "{what} is an encrypted private key: set ssl.key.password to its \
                 password (or decrypt it once with `openssl pkey` and keep that file \
                 protected)"
            ),
        ),
        KeyError::Decrypt(why) => bad("ssl.key.password", format!("{what} holds {why}")),
    })
}

/// The key of a PKCS #12 key store and its chain, the certificate of the
/// key first (found by its public key), then the store's others.
#[allow(clippy::type_complexity)]
fn pkcs12_identity(
    settings: &SslSettings,
    bytes: &[u8],
    what: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    const P: &str = "ssl.keystore.location";
    let password = settings.keystore_password.as_deref().unwrap_or_default();
    let key_password = settings.key_password.as_deref().unwrap_or(password);
    let store = super::pkcs12::read(bytes, password, key_password)
        .map_err(|why| bad(P, format!("{what} is {why}")))?;
    let key = store
        .key
        .ok_or_else(|| bad(P, format!("{what} holds no private key")))?;
    let signer = crypto_provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|_| bad(P, format!("{what} holds a private key kring cannot use")))?;
    let leaf = store
        .certs
        .iter()
        .position(|c| {
            rustls::sign::CertifiedKey::new(vec![c.clone()], signer.clone())
                .keys_match()
                .is_ok()
        })
        .ok_or_else(|| {
            bad(
                P,
                format!("{what} holds no certificate for its private key"),
            )
        })?;
    let mut chain = store.certs;
    let leaf = chain.remove(leaf);
    chain.insert(0, leaf);
    Ok((chain, key))
}

/// The client certificate chain and key, if configured.
#[allow(clippy::type_complexity)]
fn client_identity(
    settings: &SslSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConfigError> {
    let password = settings.key_password.as_deref();
    if let Some(path) = &settings.keystore {
        const P: &str = "ssl.keystore.location";
        if settings.certificate.is_some() || settings.key.is_some() {
            return Err(conflict(
                "set either ssl.keystore.location or the certificate and key \
                 (ssl.certificate.* / ssl.key.*), not both"
                    .into(),
            ));
        }
        let bytes = read_file(P, path)?;
        let what = path.display().to_string();
        if super::pkcs12::looks_like_pkcs12(&bytes) {
            return pkcs12_identity(settings, &bytes, &what).map(Some);
        }
        let chain = certs_in(P, &bytes, &what)?;
        let key = key_in(P, &bytes, &what, password)?;
        return Ok(Some((chain, key)));
    }
    let chain = match &settings.certificate {
        None => None,
        Some(Pem::Inline(t)) => Some(certs_in(
            "ssl.certificate.pem",
            t.as_bytes(),
            "ssl.certificate.pem",
        )?),
        Some(Pem::File(p)) => {
            let bytes = read_file("ssl.certificate.location", p)?;
            Some(certs_in(
                "ssl.certificate.location",
                &bytes,
                &p.display().to_string(),
            )?)
        }
    };
    let key = match &settings.key {
        None => None,
        Some(Pem::Inline(t)) => Some(key_in(
            "ssl.key.pem",
            t.as_bytes(),
            "ssl.key.pem",
            password,
        )?),
        Some(Pem::File(p)) => {
            let bytes = read_file("ssl.key.location", p)?;
            Some(key_in(
                "ssl.key.location",
                &bytes,
                &p.display().to_string(),
                password,
            )?)
        }
    };
    match (chain, key) {
        (Some(chain), Some(key)) => Ok(Some((chain, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(conflict(
            "a client certificate is set (ssl.certificate.*) but no private key \
             (ssl.key.location or ssl.key.pem)"
                .into(),
        )),
        (None, Some(_)) => Err(conflict(
            "a private key is set (ssl.key.*) but no client certificate \
             (ssl.certificate.location or ssl.certificate.pem)"
                .into(),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::TlsVersion;
    use crate::driver::conn::SendQueue;
    use crate::driver::tls::seal;
    use bytes::Bytes;

    /// A rustls server config with a self-signed certificate for `name`,
    /// and that certificate's PEM (for a client to trust it). Shared with
    /// the driver's TLS tests. Each certificate has a subject (and so an
    /// issuer) of its own, as real self-signed certificates do: trusting
    /// another one then fails as an unknown issuer, which is the verdict
    /// the verifier's directly trusted certificates are told apart in.
    pub(crate) fn self_signed_server(name: &str) -> (Arc<rustls::ServerConfig>, String) {
        self_signed_server_with(name, |_| {})
    }

    /// [`self_signed_server`] with the certificate's parameters changed
    /// by `adjust` first (say, its validity).
    pub(crate) fn self_signed_server_with(
        name: &str,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> (Arc<rustls::ServerConfig>, String) {
        self_signed_server_speaking(name, adjust, rustls::DEFAULT_VERSIONS)
    }

    /// [`self_signed_server_with`] speaking only `versions`.
    fn self_signed_server_speaking(
        name: &str,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<rustls::ServerConfig>, String) {
        self_signed_server_of(name, adjust, versions, &[])
    }

    /// [`self_signed_server_speaking`] offering only `suites` (all when
    /// empty). Its key is ECDSA (rcgen's default), so of the TLS 1.2
    /// suites only the ECDHE_ECDSA ones can be negotiated with it.
    fn self_signed_server_of(
        name: &str,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: &[TlsCipherSuite],
    ) -> (Arc<rustls::ServerConfig>, String) {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("kring test {serial}"));
        adjust(&mut params);
        let cert = params.self_signed(&key).unwrap();
        let provider = offering(crypto_provider(), suites);
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        (Arc::new(config), cert.pem())
    }

    /// A client session against an in-memory rustls server: the
    /// handshake, request frames sealed from a plaintext queue into one
    /// ciphertext buffer, the server's answer decrypted back — no socket.
    #[test]
    fn a_session_runs_without_any_socket() {
        let (server_config, pem) = self_signed_server("broker.test");
        let mut server = rustls::ServerConnection::new(server_config).unwrap();
        let settings = SslSettings {
            ca: Some(Pem::Inline(pem)),
            ..SslSettings::default()
        };
        let mut client = TlsConnector::new(&settings)
            .unwrap()
            .start("broker.test:9093")
            .unwrap();
        let (mut plain, mut wire) = (SendQueue::default(), SendQueue::default());
        plain.push(Bytes::from_static(b"\0\0\0\x05hello"));
        plain.push(Bytes::from_static(b"\0\0\0\x05world"));
        let mut answers = BytesMut::new();
        let mut server_got = Vec::new();
        for _ in 0..10 {
            let open = !client.is_handshaking();
            seal(&mut client, open, &mut plain, &mut wire).unwrap();
            while !wire.is_empty() {
                let batch = wire.take_batch();
                for chunk in batch.slices() {
                    let mut rd = chunk;
                    while !rd.is_empty() {
                        server.read_tls(&mut rd).unwrap();
                        server.process_new_packets().unwrap();
                    }
                }
            }
            let _ = server.reader().read_to_end(&mut server_got);
            if server_got.len() == 18 && !server.is_handshaking() {
                server.writer().write_all(b"\0\0\0\x02ok").unwrap();
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            client.receive(&to_client, &mut answers).unwrap();
            if !answers.is_empty() {
                break;
            }
        }
        assert_eq!(server_got, b"\0\0\0\x05hello\0\0\0\x05world");
        assert_eq!(&answers[..], b"\0\0\0\x02ok");
        assert!(plain.is_empty());
    }

    /// An untrusted certificate is classified as such.
    #[test]
    fn certificate_failures_are_classified() {
        let untrusted = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            classify(&untrusted, true).kind,
            TlsFailure::UntrustedCertificate
        );
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(classify(&name, true).kind, TlsFailure::HostnameMismatch);
        let garbage = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(classify(&garbage, true).kind, TlsFailure::PeerNotTls);
        assert_eq!(classify(&garbage, false).kind, TlsFailure::Protocol);
    }

    #[test]
    fn host_names_and_ip_literals() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    /// Runs the handshake of `settings` against an in-memory `server`
    /// for `broker.test`: `Ok` with the version negotiated once it
    /// finished, else the client's error.
    fn handshake(
        settings: &SslSettings,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<rustls::ProtocolVersion, TlsError> {
        handshake_with(settings, server).map(|s| s.protocol_version().expect("negotiated"))
    }

    /// [`handshake`], giving the server's side of the finished handshake.
    fn handshake_with(
        settings: &SslSettings,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<rustls::ServerConnection, TlsError> {
        let mut server = rustls::ServerConnection::new(server).unwrap();
        let mut client = TlsConnector::new(settings)
            .unwrap()
            .start("broker.test:9093")?;
        let (mut plain, mut wire) = (SendQueue::default(), SendQueue::default());
        for _ in 0..10 {
            seal(&mut client, false, &mut plain, &mut wire)?;
            while !wire.is_empty() {
                for chunk in wire.take_batch().slices() {
                    let mut rd = chunk;
                    while !rd.is_empty() && server.read_tls(&mut rd).is_ok() {
                        let _ = server.process_new_packets();
                    }
                }
            }
            let mut to_client = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut to_client).unwrap();
            }
            client.receive(&to_client, &mut BytesMut::new())?;
            if !client.is_handshaking() {
                return Ok(server);
            }
        }
        panic!("the handshake neither finished nor failed");
    }

    /// `ssl.enabled.protocols` decides the versions offered: a client of
    /// one version negotiates it with a server of both, and fails against
    /// a server of only the other one; a client of both takes 1.3 where
    /// it can.
    #[test]
    fn enabled_protocols_choose_the_versions_offered() {
        use rustls::version::{TLS12, TLS13};
        use rustls::ProtocolVersion::{TLSv1_2, TLSv1_3};
        use TlsVersion::{Tls12, Tls13};
        let both: &[&'static rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];
        for (client, server, negotiated) in [
            (&[Tls12][..], both, Some(TLSv1_2)),
            (&[Tls13][..], both, Some(TLSv1_3)),
            (&[Tls12, Tls13][..], both, Some(TLSv1_3)),
            (&[Tls12, Tls13][..], &[&TLS12][..], Some(TLSv1_2)),
            (&[Tls12][..], &[&TLS13][..], None),
            (&[Tls13][..], &[&TLS12][..], None),
        ] {
            let (server_config, pem) = self_signed_server_speaking("broker.test", |_| {}, server);
            let settings = SslSettings {
                ca: Some(Pem::Inline(pem)),
                versions: crate::config::TlsVersions::of(client),
                ..SslSettings::default()
            };
            let got = handshake(&settings, server_config);
            match negotiated {
                Some(v) => assert_eq!(got.unwrap(), v, "{client:?}"),
                None => {
                    let e = got.unwrap_err();
                    assert!(
                        e.message.contains("ssl.enabled.protocols"),
                        "{client:?}: {e:?}"
                    );
                }
            }
        }
    }

    /// `ssl.cipher.suites` decides the suites offered: against a server
    /// of one suite, a client offering it (alone or among others, by Java
    /// or OpenSSL name) negotiates it, and a client offering only others
    /// fails naming `ssl.cipher.suites`; with no list, every suite is
    /// offered.
    #[test]
    fn cipher_suites_choose_the_suites_offered() {
        use rustls::version::{TLS12, TLS13};
        use TlsCipherSuite::*;
        let cases: [(
            &[&'static rustls::SupportedProtocolVersion],
            TlsCipherSuite,
            &str,
            bool,
        ); 7] = [
            (
                &[&TLS13],
                Tls13Aes256GcmSha384,
                "TLS_AES_256_GCM_SHA384",
                true,
            ),
            (
                &[&TLS13],
                Tls13Aes256GcmSha384,
                "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384",
                true,
            ),
            (&[&TLS13], Tls13Aes256GcmSha384, "", true),
            (
                &[&TLS13],
                Tls13Aes256GcmSha384,
                "TLS_AES_128_GCM_SHA256",
                false,
            ),
            (
                &[&TLS12],
                EcdheEcdsaAes128GcmSha256,
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                true,
            ),
            (
                &[&TLS12],
                EcdheEcdsaAes128GcmSha256,
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                true,
            ),
            (
                &[&TLS12],
                EcdheEcdsaAes128GcmSha256,
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                false,
            ),
        ];
        for (versions, served, offered, agrees) in cases {
            let (server, pem) = self_signed_server_of("broker.test", |_| {}, versions, &[served]);
            let settings = SslSettings {
                ca: Some(Pem::Inline(pem)),
                cipher_suites: offered
                    .split([',', ':'])
                    .filter(|n| !n.is_empty())
                    .map(|n| n.parse().unwrap())
                    .collect(),
                ..SslSettings::default()
            };
            match handshake_with(&settings, server) {
                Ok(s) if agrees => {
                    let got = s.negotiated_cipher_suite().expect("negotiated").suite();
                    assert_eq!(got, suite_id(served), "{offered}");
                }
                Err(e) if !agrees => {
                    assert!(e.message.contains("ssl.cipher.suites"), "{offered}: {e:?}")
                }
                Ok(_) => panic!("{offered}: negotiated a suite the server does not offer"),
                Err(e) => panic!("{offered}: {e:?}"),
            }
        }
    }

    /// `ssl.ca.location` names a PEM file or, as librdkafka allows, a
    /// directory whose files' certificates all count (files holding none
    /// are skipped); a directory without any, or a path that cannot be
    /// read, is a configuration error naming it.
    #[test]
    fn ca_location_is_a_file_or_a_directory() {
        let (server, pem) = self_signed_server("broker.test");
        let (_, other_pem) = self_signed_server("broker.test");
        let dir = std::env::temp_dir().join(format!("kring-ca-{}", std::process::id()));
        let (trusted, other, empty) = (dir.join("trusted"), dir.join("other"), dir.join("empty"));
        for d in [&trusted, &other, &empty] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(trusted.join("a.pem"), &other_pem).unwrap();
        std::fs::write(trusted.join("b.pem"), &pem).unwrap();
        std::fs::write(trusted.join("README"), "not a certificate").unwrap();
        std::fs::write(other.join("a.pem"), &other_pem).unwrap();
        let with = |path: std::path::PathBuf| SslSettings {
            ca: Some(Pem::File(path)),
            ..SslSettings::default()
        };
        for location in [trusted.join("b.pem"), trusted.clone()] {
            handshake(&with(location.clone()), server.clone())
                .unwrap_or_else(|e| panic!("{}: {e:?}", location.display()));
        }
        for location in [other.join("a.pem"), other.clone()] {
            let e = handshake(&with(location.clone()), server.clone()).unwrap_err();
            assert_eq!(
                e.kind,
                TlsFailure::UntrustedCertificate,
                "{}",
                location.display()
            );
        }
        for (location, says) in [
            (empty.clone(), "no PEM certificates in the directory"),
            (dir.join("missing.pem"), "cannot read"),
            (trusted.join("README"), "README"),
        ] {
            let e = TlsConnector::new(&with(location.clone())).unwrap_err();
            assert!(e.to_string().contains(says), "{}: {e}", location.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
