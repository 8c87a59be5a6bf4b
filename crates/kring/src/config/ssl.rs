//! TLS settings (`ssl.*`): where the trust anchors, the client certificate
//! and its key come from, and whether the broker's name is verified.
//!
//! Both spellings are accepted: librdkafka's (`ssl.ca.location`,
//! `ssl.ca.pem`, `ssl.certificate.location`, `ssl.key.location`, ...) and
//! the Java client's (`ssl.truststore.location` /
//! `ssl.truststore.certificates`, `ssl.keystore.location` /
//! `ssl.keystore.certificate.chain` / `ssl.keystore.key`). Store files may
//! be PEM or PKCS #12 (`ssl.*.type` PEM or PKCS12; the content decides,
//! so librdkafka's PKCS #12 `ssl.keystore.location` reads too), with
//! `ssl.keystore.password` / `ssl.truststore.password`. Files are read
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
    /// A key store with both the key and the certificate chain
    /// (`ssl.keystore.location`): PEM, or PKCS #12 (told apart by content).
    pub(crate) keystore: Option<PathBuf>,
    /// `ssl.key.password`.
    pub(crate) key_password: Option<String>,
    /// `ssl.keystore.password`: a PKCS #12 key store's password.
    pub(crate) keystore_password: Option<String>,
    /// `ssl.truststore.password`: a PKCS #12 trust store's password.
    pub(crate) truststore_password: Option<String>,
    /// `ssl.endpoint.identification.algorithm=https` (the default) versus
    /// `none` (or empty).
    pub(crate) verify_hostname: bool,
    /// `ssl.enabled.protocols`: the TLS versions offered (both by
    /// default, as Java's default `TLSv1.2,TLSv1.3`).
    pub(crate) versions: TlsVersions,
    /// `ssl.cipher.suites`: the suites offered, in order of preference;
    /// empty (the default, Java's `null`) offers all of them.
    pub(crate) cipher_suites: Vec<TlsCipherSuite>,
}

/// A TLS cipher suite kring's TLS (rustls) can offer (`ssl.cipher.suites`):
/// the AEAD suites with forward secrecy, which every Kafka listener on a
/// current JDK or OpenSSL accepts. Suites without them (CBC, static RSA
/// key exchange, ...) are not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsCipherSuite {
    /// TLS 1.3 `TLS_AES_128_GCM_SHA256`.
    Tls13Aes128GcmSha256,
    /// TLS 1.3 `TLS_AES_256_GCM_SHA384`.
    Tls13Aes256GcmSha384,
    /// TLS 1.3 `TLS_CHACHA20_POLY1305_SHA256`.
    Tls13Chacha20Poly1305Sha256,
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    EcdheEcdsaAes128GcmSha256,
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    EcdheEcdsaAes256GcmSha384,
    /// TLS 1.2 `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256`.
    EcdheEcdsaChacha20Poly1305Sha256,
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    EcdheRsaAes128GcmSha256,
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    EcdheRsaAes256GcmSha384,
    /// TLS 1.2 `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256`.
    EcdheRsaChacha20Poly1305Sha256,
}

/// Each suite with its IANA name (Java's) and its OpenSSL name
/// (librdkafka's; TLS 1.3 suites have the IANA one there too).
pub(super) const CIPHER_SUITES: [(TlsCipherSuite, &str, &str); 9] = {
    use TlsCipherSuite::*;
    [
        (
            Tls13Aes256GcmSha384,
            "TLS_AES_256_GCM_SHA384",
            "TLS_AES_256_GCM_SHA384",
        ),
        (
            Tls13Aes128GcmSha256,
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
        ),
        (
            Tls13Chacha20Poly1305Sha256,
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
        ),
        (
            EcdheEcdsaAes256GcmSha384,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
        ),
        (
            EcdheEcdsaAes128GcmSha256,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ),
        (
            EcdheEcdsaChacha20Poly1305Sha256,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
        ),
        (
            EcdheRsaAes256GcmSha384,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ),
        (
            EcdheRsaAes128GcmSha256,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ),
        (
            EcdheRsaChacha20Poly1305Sha256,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ),
    ]
};

impl TlsCipherSuite {
    /// The suite's IANA name, as Java names it (`TLS_AES_128_GCM_SHA256`).
    pub fn name(self) -> &'static str {
        CIPHER_SUITES
            .iter()
            .find(|(s, ..)| *s == self)
            .map(|(_, iana, _)| *iana)
            .expect("every suite is listed")
    }

    /// The TLS version the suite belongs to.
    pub fn version(self) -> TlsVersion {
        use TlsCipherSuite::*;
        match self {
            Tls13Aes128GcmSha256 | Tls13Aes256GcmSha384 | Tls13Chacha20Poly1305Sha256 => {
                TlsVersion::Tls13
            }
            _ => TlsVersion::Tls12,
        }
    }
}

impl std::str::FromStr for TlsCipherSuite {
    type Err = ();
    /// The IANA name (Java's `ssl.cipher.suites`) or the OpenSSL name
    /// (librdkafka's), any case.
    fn from_str(s: &str) -> Result<Self, ()> {
        CIPHER_SUITES
            .iter()
            .find(|(_, iana, openssl)| {
                s.eq_ignore_ascii_case(iana) || s.eq_ignore_ascii_case(openssl)
            })
            .map(|(suite, ..)| *suite)
            .ok_or(())
    }
}

/// `ssl.cipher.suites`: suite names separated by commas (Java) or colons
/// (librdkafka's OpenSSL list), in order of preference. Names of suites
/// kring's TLS does not implement are left out with a warning, as an
/// OpenSSL cipher list skips what it does not know, so a configuration
/// listing older suites beside current ones still loads; a list naming
/// none kring implements is `Err`. Empty: every suite (the default).
pub(crate) fn parse_cipher_suites(v: &str) -> Result<Vec<TlsCipherSuite>, &'static str> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for name in v.split([',', ':']).map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<TlsCipherSuite>() {
            // Repeats go in the setter (`ProducerConfig::ssl_cipher_suites`).
            Ok(suite) => out.push(suite),
            Err(()) => skipped.push(name),
        }
    }
    if out.is_empty() && !skipped.is_empty() {
        return Err(
            "names no suite kring's TLS implements: the TLS 1.3 suites, and the TLS 1.2 \
             ECDHE suites with AES-GCM or ChaCha20-Poly1305 (IANA or OpenSSL names)",
        );
    }
    if !skipped.is_empty() {
        tracing::warn!(
            ignored = ?skipped,
            "ssl.cipher.suites: suites kring's TLS does not implement are not offered"
        );
    }
    Ok(out)
}

/// A TLS protocol version (`ssl.enabled.protocols`). kring's TLS (rustls)
/// speaks TLS 1.2 and 1.3 only; the older versions are broken and Kafka
/// brokers have not needed them since Java 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (`TLSv1.2`).
    Tls12,
    /// TLS 1.3 (`TLSv1.3`).
    Tls13,
}

impl TlsVersion {
    /// Java's name: `TLSv1.2` or `TLSv1.3`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

impl std::str::FromStr for TlsVersion {
    type Err = ();
    /// Java's names, `TLSv1.2` and `TLSv1.3` (any case).
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "tlsv1.2" => Ok(TlsVersion::Tls12),
            "tlsv1.3" => Ok(TlsVersion::Tls13),
            _ => Err(()),
        }
    }
}

/// Which TLS versions a producer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlsVersions {
    pub(crate) tls12: bool,
    pub(crate) tls13: bool,
}

impl TlsVersions {
    /// The versions of `list` (none offered for an empty list, which
    /// validation refuses).
    pub(crate) fn of(list: &[TlsVersion]) -> TlsVersions {
        TlsVersions {
            tls12: list.contains(&TlsVersion::Tls12),
            tls13: list.contains(&TlsVersion::Tls13),
        }
    }
}

/// `ssl.enabled.protocols`: a comma-separated list of `TLSv1.2` and
/// `TLSv1.3`. Old versions (`TLSv1`, `TLSv1.1`, ...) listed beside them
/// are left out with a warning, as current JDKs disable them whatever the
/// list says, so a Java configuration naming them still loads; a list of
/// old versions only, or anything else, is `Err` with the reason.
pub(crate) fn parse_enabled_protocols(v: &str) -> Result<Vec<TlsVersion>, &'static str> {
    let mut out = Vec::new();
    let mut old = Vec::new();
    for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<TlsVersion>() {
            Ok(version) => out.push(version),
            Err(()) if is_old_tls(name) => old.push(name),
            Err(()) => return Err("a comma-separated list of TLSv1.2 and TLSv1.3"),
        }
    }
    if out.is_empty() {
        return Err(if old.is_empty() {
            "TLSv1.2, TLSv1.3 or both (an empty list offers nothing)"
        } else {
            ONLY_NEW_TLS
        });
    }
    if !old.is_empty() {
        tracing::warn!(
            ignored = ?old,
            "ssl.enabled.protocols: versions before TLSv1.2 are not offered"
        );
    }
    Ok(out)
}

/// `ssl.protocol` (Java: the `SSLContext` protocol, which the enabled
/// protocols override): `TLS`, `TLSv1.2` and `TLSv1.3` are what kring
/// does; the old versions and SSL are refused.
pub(crate) fn ssl_protocol_accepted(v: &str) -> Result<(), &'static str> {
    if v.eq_ignore_ascii_case("TLS") || v.parse::<TlsVersion>().is_ok() {
        Ok(())
    } else if is_old_tls(v) {
        Err(ONLY_NEW_TLS)
    } else {
        Err("not a TLS protocol kring knows: TLS, TLSv1.2 or TLSv1.3")
    }
}

const ONLY_NEW_TLS: &str =
    "kring speaks TLSv1.2 and TLSv1.3 only; SSL, TLSv1 and TLSv1.1 are broken and not offered";

fn is_old_tls(name: &str) -> bool {
    ["tlsv1", "tlsv1.1", "sslv3", "sslv2", "ssl", "sslv2hello"]
        .contains(&name.to_ascii_lowercase().as_str())
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings {
            ca: None,
            certificate: None,
            key: None,
            keystore: None,
            key_password: None,
            keystore_password: None,
            truststore_password: None,
            verify_hostname: true,
            versions: TlsVersions {
                tls12: true,
                tls13: true,
            },
            cipher_suites: Vec::new(),
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
            .field(
                "keystore_password",
                &self.keystore_password.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "truststore_password",
                &self.truststore_password.as_ref().map(|_| "<redacted>"),
            )
            .field("verify_hostname", &self.verify_hostname)
            .field("versions", &self.versions)
            .field("cipher_suites", &self.cipher_suites)
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

/// `ssl.truststore.type` / `ssl.keystore.type`: kring reads PEM and
/// PKCS #12 stores (telling them apart by their content), not JKS.
pub(crate) fn is_readable_store_type(v: &str) -> bool {
    v.eq_ignore_ascii_case("PEM") || v.eq_ignore_ascii_case("PKCS12")
}
