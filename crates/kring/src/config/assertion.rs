//! Client assertions for the token endpoint, Java 4.4's
//! `sasl.oauthbearer.assertion.*`: a JWT the client signs with its own
//! private key (or reads ready-made from a file) and sends in place of a
//! client secret. Two requests carry one (RFC 7523):
//!
//! - KIP-1258's `client_assertion`: the `client_credentials` grant,
//!   authenticated by the assertion instead of Basic authorization. Java
//!   uses it when `sasl.oauthbearer.assertion.file` or
//!   `sasl.oauthbearer.assertion.claim.iss` is set, the file first.
//! - KIP-1139's jwt-bearer grant: the assertion is the grant itself,
//!   chosen by `sasl.oauthbearer.jwt.retriever.class` naming
//!   `JwtBearerJwtRetriever`.
//!
//! The settings only, with Java's defaults and ranges; building and
//! signing the assertion is `crate::oauth::assertion`. The key's
//! passphrase never reaches `Debug` output or an error.

use std::path::PathBuf;

use super::ConfigError;

/// `sasl.oauthbearer.assertion.algorithm`: how the assertion is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Java's default).
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl SigningAlgorithm {
    /// The JWS `alg` name.
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
        }
    }
}

/// Where an assertion comes from and what it claims.
#[derive(Clone, PartialEq)]
pub(crate) struct AssertionSettings {
    /// `sasl.oauthbearer.assertion.algorithm` (RS256 or ES256, default RS256).
    pub(crate) algorithm: SigningAlgorithm,
    /// `sasl.oauthbearer.assertion.claim.aud`.
    pub(crate) aud: Option<String>,
    /// `sasl.oauthbearer.assertion.claim.iss`.
    pub(crate) iss: Option<String>,
    /// `sasl.oauthbearer.assertion.claim.sub`.
    pub(crate) sub: Option<String>,
    /// `sasl.oauthbearer.assertion.claim.exp.seconds` (0–86400, default
    /// 300): `exp` is this long after `iat`.
    pub(crate) exp_seconds: u32,
    /// `sasl.oauthbearer.assertion.claim.nbf.seconds` (0–3600, default
    /// 60): `nbf` is this long before `iat`.
    pub(crate) nbf_seconds: u32,
    /// `sasl.oauthbearer.assertion.claim.jti.include` (default false): a
    /// random `jti` in each assertion.
    pub(crate) jti: bool,
    /// `sasl.oauthbearer.assertion.file`: a ready-made assertion, read
    /// again for each request (it takes precedence over signing here).
    pub(crate) file: Option<PathBuf>,
    /// `sasl.oauthbearer.assertion.private.key.file`: the signing key, a
    /// PEM PKCS #8 private key (PKCS #1 also for RS256; encrypted PKCS #8
    /// with the passphrase), read again for each request.
    pub(crate) private_key_file: Option<PathBuf>,
    /// `sasl.oauthbearer.assertion.private.key.passphrase`: the password of
    /// an encrypted PKCS #8 key (`ENCRYPTED PRIVATE KEY`).
    pub(crate) passphrase: Option<String>,
    /// `sasl.oauthbearer.assertion.template.file`: JSON with `header` and
    /// `payload` objects merged into the assertion (over the claims above,
    /// under `alg`, `typ`, `iat`, `exp`, `nbf` and `jti`).
    pub(crate) template_file: Option<PathBuf>,
}

impl Default for AssertionSettings {
    fn default() -> Self {
        AssertionSettings {
            algorithm: SigningAlgorithm::Rs256,
            aud: None,
            iss: None,
            sub: None,
            exp_seconds: 300,
            nbf_seconds: 60,
            jti: false,
            file: None,
            private_key_file: None,
            passphrase: None,
            template_file: None,
        }
    }
}

impl std::fmt::Debug for AssertionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSettings")
            .field("algorithm", &self.algorithm)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("sub", &self.sub)
            .field("exp_seconds", &self.exp_seconds)
            .field("nbf_seconds", &self.nbf_seconds)
            .field("jti", &self.jti)
            .field("file", &self.file)
            .field("private_key_file", &self.private_key_file)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("template_file", &self.template_file)
            .finish()
    }
}

impl AssertionSettings {
    /// Whether any assertion setting was given.
    pub(crate) fn is_set(&self) -> bool {
        *self != AssertionSettings::default()
    }

    /// Whether the `client_credentials` request is authenticated by an
    /// assertion rather than the client secret (Java: an assertion file or
    /// an `iss` claim is configured).
    pub(crate) fn replaces_secret(&self) -> bool {
        self.file.is_some() || self.iss.is_some()
    }

    /// The settings an assertion needs, checked when one is sent.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.file.is_some() {
            return Ok(());
        }
        if self.private_key_file.is_none() {
            return Err(ConfigError::Missing {
                property: "sasl.oauthbearer.assertion.private.key.file",
            });
        }
        Ok(())
    }

    /// Sets one `sasl.oauthbearer.assertion.*` property; `None` when
    /// `name` is not one of them.
    pub(super) fn set(&mut self, name: &str, value: &str) -> Option<Result<(), ConfigError>> {
        let v = value.trim();
        let text = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let path = |v: &str| (!v.is_empty()).then(|| PathBuf::from(v));
        let property = super::properties::name_of(name);
        match name {
            "sasl.oauthbearer.assertion.algorithm" => {
                self.algorithm = match v.to_ascii_uppercase().as_str() {
                    "RS256" => SigningAlgorithm::Rs256,
                    "ES256" => SigningAlgorithm::Es256,
                    _ => return Some(Err(ConfigError::invalid(property, v, "RS256 or ES256"))),
                }
            }
            "sasl.oauthbearer.assertion.claim.aud" => self.aud = text(v),
            "sasl.oauthbearer.assertion.claim.iss" => self.iss = text(v),
            "sasl.oauthbearer.assertion.claim.sub" => self.sub = text(v),
            "sasl.oauthbearer.assertion.claim.exp.seconds" => match seconds(property, v, 86_400) {
                Ok(s) => self.exp_seconds = s,
                Err(e) => return Some(Err(e)),
            },
            "sasl.oauthbearer.assertion.claim.nbf.seconds" => match seconds(property, v, 3_600) {
                Ok(s) => self.nbf_seconds = s,
                Err(e) => return Some(Err(e)),
            },
            "sasl.oauthbearer.assertion.claim.jti.include" => {
                match super::properties::boolean(property, v) {
                    Ok(b) => self.jti = b,
                    Err(e) => return Some(Err(e)),
                }
            }
            "sasl.oauthbearer.assertion.file" => self.file = path(v),
            "sasl.oauthbearer.assertion.private.key.file" => self.private_key_file = path(v),
            // Not trimmed: a passphrase may end in whitespace.
            "sasl.oauthbearer.assertion.private.key.passphrase" => {
                self.passphrase = (!value.is_empty()).then(|| value.to_owned())
            }
            "sasl.oauthbearer.assertion.template.file" => self.template_file = path(v),
            _ => return None,
        }
        Some(Ok(()))
    }
}

/// Whole seconds from 0 to `max`.
fn seconds(property: &'static str, v: &str, max: u32) -> Result<u32, ConfigError> {
    let s: i64 = v
        .parse()
        .map_err(|_| ConfigError::invalid(property, v, "a whole number of seconds"))?;
    u32::try_from(s)
        .ok()
        .filter(|s| *s <= max)
        .ok_or_else(|| ConfigError::OutOfRange {
            property,
            reason: format!("must be between 0 and {max}"),
        })
}
