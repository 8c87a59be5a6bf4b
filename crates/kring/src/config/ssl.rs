//! TLS settings (`ssl.*`): where the trust anchors, the client certificate
//! and its key come from, and whether the broker's name is verified.
//!
//! Both spellings are accepted: librdkafka's (`ssl.ca.location`,
//! `ssl.ca.pem`, `ssl.certificate.location`, `ssl.key.location`, ...) and
//! the Java client's PEM forms (`ssl.truststore.type=PEM` with
//! `ssl.truststore.location` / `ssl.truststore.certificates`,
//! `ssl.keystore.type=PEM` with `ssl.keystore.location` /
//! `ssl.keystore.certificate.chain` / `ssl.keystore.key`). Files are read
//! when the producer is built. Key material and passwords never appear in
//! `Debug` output or error messages.

use std::fmt;
use std::path::PathBuf;

/// PEM text, or a file holding it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Pem {
    /// A file (or, for CA certificates, a directory of files).
    File(PathBuf),
    /// The PEM text itself.
    Inline(String),
}

impl Pem {
    /// `Debug` that shows where the material comes from but not what it is.
    fn describe(&self, f: &mut fmt::Formatter<'_>, secret: bool) -> fmt::Result {
        match self {
            Pem::File(p) => write!(f, "file {p:?}"),
            Pem::Inline(s) if secret => write!(f, "inline PEM ({} bytes, redacted)", s.len()),
            Pem::Inline(s) => write!(f, "inline PEM ({} bytes)", s.len()),
        }
    }
}

impl fmt::Debug for Pem {
    /// Inline PEM is never shown: it may be a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, true)
    }
}

/// The TLS settings of a producer.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SslSettings {
    /// Trust anchors (`ssl.ca.location`, `ssl.ca.pem`,
    /// `ssl.truststore.*`); `None` is the system trust store.
    pub(crate) ca: Option<Pem>,
    /// The client certificate chain (`ssl.certificate.*`,
    /// `ssl.keystore.certificate.chain`).
    pub(crate) certificate: Option<Pem>,
    /// The client's private key (`ssl.key.*`, `ssl.keystore.key`).
    pub(crate) key: Option<Pem>,
    /// A PEM file with both the key and the certificate chain
    /// (`ssl.keystore.location` with `ssl.keystore.type=PEM`).
    pub(crate) keystore: Option<PathBuf>,
    /// `ssl.key.password`.
    pub(crate) key_password: Option<String>,
    /// `ssl.endpoint.identification.algorithm=https` (the default) versus
    /// `none` (or empty).
    pub(crate) verify_hostname: bool,
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings {
            ca: None,
            certificate: None,
            key: None,
            keystore: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

impl fmt::Debug for SslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Show<'a>(&'a Option<Pem>, bool);
        impl fmt::Debug for Show<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    None => f.write_str("None"),
                    Some(p) => p.describe(f, self.1),
                }
            }
        }
        f.debug_struct("SslSettings")
            .field("ca", &Show(&self.ca, false))
            .field("certificate", &Show(&self.certificate, false))
            .field("key", &Show(&self.key, true))
            .field("keystore", &self.keystore)
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<redacted>"),
            )
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

/// `ssl.endpoint.identification.algorithm`: `https` verifies the broker's
/// name, `none` (librdkafka) or the empty string (Java) does not.
pub(crate) fn parse_endpoint_identification(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "https" => Some(true),
        "none" | "" => Some(false),
        _ => None,
    }
}

/// `ssl.truststore.type` / `ssl.keystore.type`: kring reads PEM only.
pub(crate) fn is_pem_store_type(v: &str) -> bool {
    v.eq_ignore_ascii_case("PEM")
}
