//! OAUTHBEARER tokens from an OAuth 2 token endpoint (KIP-768, the
//! `client_credentials` grant): `sasl.oauthbearer.token.endpoint.url`,
//! the client id and secret (Java 4.1+'s
//! `sasl.oauthbearer.client.credentials.client.*`, librdkafka's
//! `sasl.oauthbearer.client.*`), `sasl.oauthbearer.scope`, and Java's
//! `sasl.login.*` refresh, retry and timeout settings with Java's defaults
//! and ranges. The settings only: fetching and refreshing is
//! `crate::oauth`, started when the producer is built. The secret never
//! reaches `Debug` output or an error. Client assertions (Java 4.4's
//! `sasl.oauthbearer.assertion.*`, KIP-1139 and KIP-1258) are
//! `super::assertion`. Java's other OAuth names load as they would in a
//! Java client: the broker's validation settings are checked and ignored,
//! Java's own retriever and validator classes accepted.

use std::time::Duration;

pub(crate) use super::assertion::AssertionSettings;
use super::{ConfigError, ProducerConfig};

/// When a token is refreshed, as the Java client's
/// `ExpiringCredentialRefreshConfig` (`sasl.login.refresh.*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RefreshPolicy {
    /// `sasl.login.refresh.window.factor` (0.5–1.0, default 0.8): the
    /// share of a token's lifetime after which it is refreshed.
    pub(crate) window_factor: f64,
    /// `sasl.login.refresh.window.jitter` (0–0.25, default 0.05): a random
    /// share added to the factor.
    pub(crate) window_jitter: f64,
    /// `sasl.login.refresh.min.period.seconds` (0–900, default 60): the
    /// least time between two refreshes.
    pub(crate) min_period: Duration,
    /// `sasl.login.refresh.buffer.seconds` (0–3600, default 300): refresh
    /// at least this long before the token expires.
    pub(crate) buffer: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            window_factor: 0.8,
            window_jitter: 0.05,
            min_period: Duration::from_secs(60),
            buffer: Duration::from_secs(300),
        }
    }
}

/// The token endpoint and how to use it.
#[derive(Clone, PartialEq)]
pub(crate) struct OidcSettings {
    /// `sasl.oauthbearer.token.endpoint.url`: `https://`, `http://`, or
    /// `file://` (a file holding the token, read again at each refresh,
    /// as the Java client's `FileJwtRetriever`).
    pub(crate) endpoint: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    /// `sasl.oauthbearer.scope`.
    pub(crate) scope: Option<String>,
    /// `sasl.oauthbearer.header.urlencode` (default false): URL-encode the
    /// id and secret inside the Basic authorization header (RFC 6749
    /// §2.3.1).
    pub(crate) header_urlencode: bool,
    /// `sasl.oauthbearer.sub.claim.name` (default `sub`): the claim that
    /// names the principal.
    pub(crate) sub_claim: String,
    /// `sasl.oauthbearer.scope.claim.name` (default `scope`): the claim
    /// that, when present, must hold the token's scopes (a string or a
    /// list of strings).
    pub(crate) scope_claim: String,
    pub(crate) refresh: RefreshPolicy,
    /// `sasl.login.retry.backoff.ms` (default 100).
    pub(crate) retry_backoff: Duration,
    /// `sasl.login.retry.backoff.max.ms` (default 10000): also the time a
    /// fetch keeps retrying before it fails.
    pub(crate) retry_backoff_max: Duration,
    /// `sasl.login.connect.timeout.ms` (default: 10 s; Java: the JDK's).
    pub(crate) connect_timeout: Duration,
    /// `sasl.login.read.timeout.ms` (default: 30 s; Java: the JDK's).
    pub(crate) read_timeout: Duration,
    /// The CAs an `https://` endpoint's certificate must chain to
    /// (librdkafka's `https.ca.location` / `https.ca.pem`); `None` is the
    /// system trust store (also `https.ca.location=probe`).
    pub(crate) ca: Option<super::ssl::Pem>,
    /// `sasl.oauthbearer.assertion.*`: a signed (or ready-made) JWT in
    /// place of the client secret, or as the jwt-bearer grant.
    pub(crate) assertion: AssertionSettings,
    /// `sasl.oauthbearer.jwt.retriever.class` naming `JwtBearerJwtRetriever`:
    /// the jwt-bearer grant (KIP-1139) instead of `client_credentials`.
    pub(crate) jwt_bearer: bool,
}

/// The request a token fetch sends to an http(s):// endpoint, as Java 4.4
/// chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenRequest {
    /// `client_credentials` with the id and secret in Basic authorization.
    ClientSecret,
    /// `client_credentials` authenticated by a client assertion (KIP-1258).
    ClientAssertion,
    /// The jwt-bearer grant (KIP-1139).
    JwtBearer,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            endpoint: None,
            client_id: None,
            client_secret: None,
            scope: None,
            header_urlencode: false,
            sub_claim: "sub".to_owned(),
            scope_claim: "scope".to_owned(),
            refresh: RefreshPolicy::default(),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(10_000),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            ca: None,
            assertion: AssertionSettings::default(),
            jwt_bearer: false,
        }
    }
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("header_urlencode", &self.header_urlencode)
            .field("sub_claim", &self.sub_claim)
            .field("scope_claim", &self.scope_claim)
            .field("refresh", &self.refresh)
            .field("retry_backoff", &self.retry_backoff)
            .field("retry_backoff_max", &self.retry_backoff_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("ca", &self.ca.is_some())
            .field("assertion", &self.assertion)
            .field("jwt_bearer", &self.jwt_bearer)
            .finish()
    }
}

impl OidcSettings {
    /// Whether any token-endpoint setting was given (then the endpoint is
    /// required and the mechanism must be OAUTHBEARER).
    pub(crate) fn is_set(&self) -> bool {
        self.endpoint.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || self.assertion.is_set()
            || self.jwt_bearer
    }

    /// What a fetch from an http(s):// endpoint sends.
    pub(crate) fn token_request(&self) -> TokenRequest {
        if self.jwt_bearer {
            TokenRequest::JwtBearer
        } else if self.assertion.replaces_secret() {
            TokenRequest::ClientAssertion
        } else {
            TokenRequest::ClientSecret
        }
    }

    /// The settings a fetch needs, checked; the error names no secret.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.endpoint else {
            return Err(ConfigError::Missing {
                property: "sasl.oauthbearer.token.endpoint.url",
            });
        };
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("file") if self.jwt_bearer => {
                return Err(ConfigError::invalid(
                    "sasl.oauthbearer.token.endpoint.url",
                    url,
                    "an https:// or http:// URL (JwtBearerJwtRetriever posts its grant there)",
                ))
            }
            Some("file") => {}
            Some("http" | "https") if self.token_request() != TokenRequest::ClientSecret => {
                self.assertion.check()?
            }
            Some("http" | "https") => {
                if self.client_id.as_deref().is_none_or(str::is_empty) {
                    return Err(ConfigError::Missing {
                        property: "sasl.oauthbearer.client.credentials.client.id",
                    });
                }
                if self.client_secret.as_deref().is_none_or(str::is_empty) {
                    return Err(ConfigError::Missing {
                        property: "sasl.oauthbearer.client.credentials.client.secret",
                    });
                }
            }
            _ => {
                return Err(ConfigError::invalid(
                    "sasl.oauthbearer.token.endpoint.url",
                    url,
                    "an https://, http:// or file:// URL",
                ))
            }
        }
        let r = &self.refresh;
        let ranges = [
            (
                "sasl.login.refresh.window.factor",
                (0.5..=1.0).contains(&r.window_factor),
                "must be between 0.5 and 1.0",
            ),
            (
                "sasl.login.refresh.window.jitter",
                (0.0..=0.25).contains(&r.window_jitter),
                "must be between 0 and 0.25",
            ),
            (
                "sasl.login.refresh.min.period.seconds",
                r.min_period <= Duration::from_secs(900),
                "must be between 0 and 900",
            ),
            (
                "sasl.login.refresh.buffer.seconds",
                r.buffer <= Duration::from_secs(3600),
                "must be between 0 and 3600",
            ),
        ];
        for (property, ok, reason) in ranges {
            if !ok {
                return Err(ConfigError::OutOfRange {
                    property,
                    reason: reason.to_owned(),
                });
            }
        }
        for (property, claim) in [
            ("sasl.oauthbearer.sub.claim.name", &self.sub_claim),
            ("sasl.oauthbearer.scope.claim.name", &self.scope_claim),
        ] {
            if claim.trim().is_empty() {
                return Err(ConfigError::OutOfRange {
                    property,
                    reason: "must name a claim".to_owned(),
                });
            }
        }
        if !cfg!(feature = "oidc") && scheme.as_deref() != Some("file") {
            return Err(ConfigError::Unsupported {
                property: "sasl.oauthbearer.token.endpoint.url",
                value: url.clone(),
                reason: "kring was built without its `oidc` feature (the HTTP client); \
                         enable it, or give a file:// URL",
            });
        }
        Ok(())
    }
}

impl ProducerConfig {
    /// SASL OAUTHBEARER with tokens from an OAuth 2 token endpoint, the
    /// `client_credentials` grant (KIP-768; Java's
    /// `sasl.oauthbearer.token.endpoint.url` with
    /// `sasl.oauthbearer.client.credentials.client.id` and `.secret`,
    /// librdkafka's `sasl.oauthbearer.method=oidc`). When the producer is
    /// built it fetches the first token (retrying for up to
    /// `sasl.login.retry.backoff.max.ms`; `build` fails if it cannot), then
    /// a background thread refreshes it as the Java client does
    /// (`sasl.login.refresh.*`); the I/O thread never waits for the
    /// endpoint. The URL may also be `file://` (a file holding the token,
    /// read again at each refresh). Set `security.protocol` to
    /// `SASL_SSL` or `SASL_PLAINTEXT` too.
    #[must_use]
    pub fn oauthbearer_client_credentials(
        mut self,
        token_endpoint_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        self.sasl.mechanism = Some(kring_core::SaslMechanism::OAuthBearer);
        self.sasl.oidc.endpoint = Some(token_endpoint_url.to_owned());
        self.sasl.oidc.client_id = Some(client_id.to_owned());
        self.sasl.oidc.client_secret = Some(client_secret.to_owned());
        self
    }

    /// `sasl.oauthbearer.scope`: the scope the token request asks for
    /// (none by default).
    #[must_use]
    pub fn oauthbearer_scope(mut self, scope: &str) -> Self {
        self.sasl.oidc.scope = (!scope.trim().is_empty()).then(|| scope.trim().to_owned());
        self
    }

    /// OAuthBearerLoginModule's `clientId`, `clientSecret` and `scope`
    /// from `sasl.jaas.config`.
    pub(super) fn oauth_jaas(mut self, o: super::sasl::JaasOAuth) -> Self {
        let s = &mut self.sasl.oidc;
        s.client_id = o.client_id.or(s.client_id.take());
        s.client_secret = o.client_secret.or(s.client_secret.take());
        s.scope = o.scope.filter(|v| !v.trim().is_empty()).or(s.scope.take());
        for (k, v) in o.extensions {
            self = self.oauthbearer_extension(&k, &v);
        }
        self
    }

    /// An OAUTHBEARER SASL extension (KIP-342): `key=value` sent after the
    /// token when authenticating, as Confluent Cloud's `logicalCluster`
    /// and `identityPoolId` must be (librdkafka's
    /// `sasl.oauthbearer.extensions`, the JAAS line's `extension_<key>`).
    /// Setting a key again replaces its value. Checked when the producer
    /// is built: letters only for the key, and not `auth`.
    #[must_use]
    pub fn oauthbearer_extension(mut self, key: &str, value: &str) -> Self {
        let ext = &mut self.sasl.oauth_extensions;
        match ext.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_owned(),
            None => ext.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    /// librdkafka's `sasl.oauthbearer.extensions`: `key=value` pairs
    /// separated by commas.
    fn oauthbearer_extensions_list(self, v: &str) -> Result<Self, ConfigError> {
        let mut c = self;
        for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, val)) = pair.split_once('=') else {
                return Err(ConfigError::invalid(
                    "sasl.oauthbearer.extensions",
                    v,
                    "key=value pairs separated by commas",
                ));
            };
            c = c.oauthbearer_extension(k.trim(), val.trim());
        }
        Ok(c)
    }

    /// A token endpoint needs OAUTHBEARER and no token provider beside it.
    pub(super) fn check_oidc(&self) -> Result<(), ConfigError> {
        if !self.sasl.oidc.is_set() {
            return Ok(());
        }
        if self.sasl.mechanism != Some(kring_core::SaslMechanism::OAuthBearer) {
            return Err(ConfigError::Conflict(format!(
                "a token endpoint (sasl.oauthbearer.*) needs sasl.mechanism=OAUTHBEARER, not {}",
                self.sasl.mechanism.map_or("none", |m| m.name())
            )));
        }
        if self.sasl.token_provider.is_some() {
            return Err(ConfigError::Conflict(
                "both a token provider and a token endpoint (sasl.oauthbearer.token.endpoint.url) \
                 are set: choose one"
                    .to_owned(),
            ));
        }
        self.sasl.oidc.check()
    }

    /// The token endpoint settings (with their defaults), if any is set.
    pub(crate) fn oidc_settings(&self) -> Option<&OidcSettings> {
        self.sasl.oidc.is_set().then_some(&self.sasl.oidc)
    }

    /// Sets one `sasl.oauthbearer.*` / `sasl.login.*` property of the
    /// token endpoint; `None` when `name` is not one of them.
    pub(super) fn set_oidc_property(
        mut self,
        name: &str,
        value: &str,
    ) -> Option<Result<ProducerConfig, ConfigError>> {
        let v = value.trim();
        if name == "sasl.oauthbearer.extensions" {
            return Some(self.oauthbearer_extensions_list(v));
        }
        if let Some(r) = self.sasl.oidc.assertion.set(name, value) {
            return Some(r.map(|()| self));
        }
        if name == "sasl.oauthbearer.jwt.retriever.class" {
            return Some(retriever(v).map(|jwt_bearer| {
                self.sasl.oidc.jwt_bearer = jwt_bearer;
                self
            }));
        }
        if let Some(r) = java_client_only(name, v) {
            return Some(r.map(|()| self));
        }
        let o = &mut self.sasl.oidc;
        let r = (|| {
            match name {
                "sasl.oauthbearer.token.endpoint.url" => o.endpoint = Some(v.to_owned()),
                "sasl.oauthbearer.client.credentials.client.id" | "sasl.oauthbearer.client.id" => {
                    o.client_id = Some(v.to_owned())
                }
                "sasl.oauthbearer.client.credentials.client.secret"
                | "sasl.oauthbearer.client.secret" => o.client_secret = Some(value.to_owned()),
                "sasl.oauthbearer.scope" => o.scope = (!v.is_empty()).then(|| v.to_owned()),
                "sasl.oauthbearer.header.urlencode" => {
                    o.header_urlencode = super::properties::boolean(name_of(name), v)?
                }
                "sasl.oauthbearer.sub.claim.name" => o.sub_claim = v.to_owned(),
                "sasl.oauthbearer.scope.claim.name" => o.scope_claim = v.to_owned(),
                "sasl.login.refresh.window.factor" => o.refresh.window_factor = float(name, v)?,
                "sasl.login.refresh.window.jitter" => o.refresh.window_jitter = float(name, v)?,
                "sasl.login.refresh.min.period.seconds" => {
                    o.refresh.min_period = Duration::from_secs(seconds(name, v)?)
                }
                "sasl.login.refresh.buffer.seconds" => {
                    o.refresh.buffer = Duration::from_secs(seconds(name, v)?)
                }
                "sasl.login.retry.backoff.ms" => {
                    o.retry_backoff = super::properties::millis(name_of(name), v)?
                }
                "sasl.login.retry.backoff.max.ms" => {
                    o.retry_backoff_max = super::properties::millis(name_of(name), v)?
                }
                "sasl.login.connect.timeout.ms" => {
                    o.connect_timeout = super::properties::millis(name_of(name), v)?
                }
                "sasl.login.read.timeout.ms" => {
                    o.read_timeout = super::properties::millis(name_of(name), v)?
                }
                "https.ca.location" => {
                    o.ca = (!v.is_empty() && v != "probe").then(|| super::ssl::Pem::File(v.into()))
                }
                "https.ca.pem" => o.ca = (!v.is_empty()).then(|| super::ssl::Pem::Inline(v.into())),
                _ => return Ok(false),
            }
            Ok(true)
        })();
        match r {
            Ok(false) => None,
            Ok(true) => {
                if name == "sasl.oauthbearer.token.endpoint.url" {
                    self.sasl.mechanism = self
                        .sasl
                        .mechanism
                        .or(Some(kring_core::SaslMechanism::OAuthBearer));
                }
                Some(Ok(self))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl crate::producer::ProducerBuilder {
    /// See [`ProducerConfig::oauthbearer_client_credentials`].
    #[must_use]
    pub fn oauthbearer_client_credentials(
        mut self,
        token_endpoint_url: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        self.config = self.config.oauthbearer_client_credentials(
            token_endpoint_url,
            client_id,
            client_secret,
        );
        self
    }

    /// See [`ProducerConfig::oauthbearer_scope`].
    #[must_use]
    pub fn oauthbearer_scope(mut self, scope: &str) -> Self {
        self.config = self.config.oauthbearer_scope(scope);
        self
    }

    /// See [`ProducerConfig::oauthbearer_extension`].
    #[must_use]
    pub fn oauthbearer_extension(mut self, key: &str, value: &str) -> Self {
        self.config = self.config.oauthbearer_extension(key, value);
        self
    }
}

/// The broker's token validation settings, which the Java client's
/// configuration accepts too (a properties file shared by brokers and
/// clients loads) and which change nothing in a client: checked for
/// Java's type, then ignored, as in Java.
const BROKER_VALIDATION: &[&str] = &[
    "sasl.oauthbearer.allow.unverified.audience",
    "sasl.oauthbearer.allow.unverified.issuer",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.url",
];

/// `sasl.oauthbearer.jwt.retriever.class`: whether it names the jwt-bearer
/// grant's retriever; Java's others are what kring does anyway (the
/// endpoint's scheme picks between a token file and a request).
fn retriever(v: &str) -> Result<bool, ConfigError> {
    let class = v.strip_prefix(JAVA_PACKAGE).unwrap_or(v);
    match class {
        "JwtBearerJwtRetriever" => Ok(true),
        "" | "DefaultJwtRetriever" | "ClientCredentialsJwtRetriever" | "FileJwtRetriever" => {
            Ok(false)
        }
        _ => Err(ConfigError::unsupported(
            "sasl.oauthbearer.jwt.retriever.class",
            v,
            "kring runs no Java classes; it has DefaultJwtRetriever, \
             ClientCredentialsJwtRetriever, FileJwtRetriever and JwtBearerJwtRetriever built in, \
             and other token sources can be a token provider",
        )),
    }
}

/// The package of Java's OAuth classes.
const JAVA_PACKAGE: &str = "org.apache.kafka.common.security.oauthbearer.";

/// Java 4.x's OAuth names that set nothing kring has: `Some(Ok)` where the
/// value asks for what kring does (or only the broker reads it),
/// `Some(Err)` naming why otherwise; `None` for any other name.
fn java_client_only(name: &str, v: &str) -> Option<Result<(), ConfigError>> {
    if BROKER_VALIDATION.contains(&name) {
        let property = name_of(name);
        let ok = if name.ends_with(".ms") {
            v.parse::<i64>().is_ok()
        } else if name.ends_with(".seconds") {
            v.parse::<i32>().is_ok()
        } else if name.contains(".allow.") {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "false")
        } else {
            true
        };
        return Some(if ok {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                property,
                v,
                "a value of Java's type (the broker's setting; it changes nothing in a client)",
            ))
        });
    }
    match name {
        "sasl.oauthbearer.jwt.validator.class" => {
            let class = v.strip_prefix(JAVA_PACKAGE).unwrap_or(v);
            Some(match class {
                "" | "DefaultJwtValidator" | "ClientJwtValidator" => Ok(()),
                _ => Err(ConfigError::unsupported(
                    name_of(name),
                    v,
                    "kring runs no Java classes; it checks a token's claims as \
                     ClientJwtValidator does",
                )),
            })
        }
        _ => None,
    }
}

/// `name` as the `&'static str` of [`PROPERTY_NAMES`](super::PROPERTY_NAMES).
fn name_of(name: &str) -> &'static str {
    super::properties::name_of(name)
}

fn float(name: &str, v: &str) -> Result<f64, ConfigError> {
    v.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| ConfigError::invalid(name_of(name), v, "a number"))
}

fn seconds(name: &str, v: &str) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .map_err(|_| ConfigError::invalid(name_of(name), v, "a whole number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
        let mut p = vec![
            ("bootstrap.servers", "h:9092"),
            // Not SASL_SSL: these tests run without the `tls` feature too.
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
        ];
        p.extend_from_slice(extra);
        ProducerConfig::from_properties(p)
    }

    #[test]
    fn java_and_librdkafka_names_set_the_same_settings() {
        for names in [
            [
                "sasl.oauthbearer.client.credentials.client.id",
                "sasl.oauthbearer.client.credentials.client.secret",
            ],
            [
                "sasl.oauthbearer.client.id",
                "sasl.oauthbearer.client.secret",
            ],
        ] {
            let c = props(&[
                (
                    "sasl.oauthbearer.token.endpoint.url",
                    "https://idp.example/token",
                ),
                (names[0], "kring-app"),
                (names[1], "hunter2"),
                ("sasl.oauthbearer.scope", "kafka.write"),
                ("sasl.login.refresh.window.factor", "0.9"),
                ("sasl.login.refresh.buffer.seconds", "120"),
                ("sasl.login.retry.backoff.max.ms", "2000"),
                ("sasl.oauthbearer.sub.claim.name", "client_id"),
                ("sasl.oauthbearer.scope.claim.name", "scp"),
            ])
            .unwrap()
            .validate()
            .unwrap();
            let o = c.oidc_settings().unwrap();
            assert_eq!(o.client_id.as_deref(), Some("kring-app"));
            assert_eq!(o.scope.as_deref(), Some("kafka.write"));
            assert_eq!(o.refresh.window_factor, 0.9);
            assert_eq!(o.refresh.buffer, Duration::from_secs(120));
            assert_eq!(o.retry_backoff_max, Duration::from_secs(2));
            assert_eq!(
                (o.sub_claim.as_str(), o.scope_claim.as_str()),
                ("client_id", "scp")
            );
            let shown = format!("{c:?}");
            assert!(
                shown.contains("kring-app") && !shown.contains("hunter2"),
                "{shown}"
            );
        }
    }

    /// Built without the HTTP client, an http(s):// endpoint is refused
    /// once the rest of the settings hold; a token file still works.
    #[cfg(not(feature = "oidc"))]
    #[test]
    fn token_endpoints_over_http_without_the_oidc_feature_are_refused() {
        let c = props(&[
            (
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example/t",
            ),
            ("sasl.oauthbearer.client.id", "app"),
            ("sasl.oauthbearer.client.secret", "hunter2"),
        ])
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("`oidc` feature") && !e.contains("hunter2"),
            "{e}"
        );
        props(&[("sasl.oauthbearer.token.endpoint.url", "file:///run/token")])
            .unwrap()
            .validate()
            .unwrap();
    }

    /// Before Java 4.1 the id, secret and scope were options of the JAAS
    /// line; kring reads them there too, and refuses what it cannot do.
    #[test]
    fn the_oauthbearer_jaas_line_and_the_java_and_librdkafka_switches() {
        let c = props(&[
            ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/t"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="jaas-app" clientSecret="hunter2" scope="kafka";"#,
            ),
            (
                "sasl.login.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
            ),
            ("sasl.oauthbearer.method", "oidc"),
            // Java's own retriever and validator, and the broker's
            // validation settings: accepted, changing nothing.
            (
                "sasl.oauthbearer.jwt.retriever.class",
                "org.apache.kafka.common.security.oauthbearer.ClientCredentialsJwtRetriever",
            ),
            (
                "sasl.oauthbearer.jwt.validator.class",
                "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator",
            ),
            ("sasl.oauthbearer.jwks.endpoint.url", "https://idp.example/jwks"),
            ("sasl.oauthbearer.jwks.endpoint.refresh.ms", "3600000"),
            ("sasl.oauthbearer.expected.audience", "kafka,kafka2"),
            ("sasl.oauthbearer.expected.issuer", "https://idp.example"),
            ("sasl.oauthbearer.clock.skew.seconds", "30"),
            ("sasl.oauthbearer.allow.unverified.audience", "false"),
        ])
        .unwrap()
        .validate()
        .unwrap();
        let o = c.oidc_settings().unwrap();
        assert_eq!(o.client_id.as_deref(), Some("jaas-app"));
        assert_eq!(o.client_secret.as_deref(), Some("hunter2"));
        assert_eq!(o.scope.as_deref(), Some("kafka"));
        for (name, value, want) in [
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="hunter2";"#,
                "unsecured",
            ),
            (
                "sasl.login.callback.handler.class",
                "com.example.MyHandler",
                "no Java classes",
            ),
            ("sasl.oauthbearer.method", "magic", "oidc"),
            (
                "sasl.oauthbearer.jwt.retriever.class",
                "com.example.MyRetriever",
                "no Java classes",
            ),
            (
                "sasl.oauthbearer.jwks.endpoint.refresh.ms",
                "soon",
                "Java's type",
            ),
            (
                "sasl.oauthbearer.allow.unverified.issuer",
                "yes",
                "Java's type",
            ),
            (
                "sasl.oauthbearer.jwks.endpoint.urls",
                "x",
                "unknown property",
            ),
            ("sasl.login.refresh.window.factor", "lots", "a number"),
        ] {
            let e = props(&[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(want), "{name}={value}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // librdkafka's CAs for an https:// endpoint; `probe` is the
        // system's store.
        let with_ca = |v: &str| {
            props(&[
                (
                    "sasl.oauthbearer.token.endpoint.url",
                    "https://idp.example/t",
                ),
                ("https.ca.location", v),
            ])
            .unwrap()
            .sasl
            .oidc
            .ca
        };
        assert!(with_ca("probe").is_none());
        assert!(matches!(
            with_ca("/etc/idp-ca.pem"),
            Some(super::super::ssl::Pem::File(_))
        ));
        // SASL extensions: librdkafka's list and the JAAS line's
        // `extension_*`, in order, a key set again replaced; checked at
        // validation, naming the key and not the value; `Debug` shows keys.
        let c = props(&[
            ("sasl.oauthbearer.extensions", "logicalCluster=lkc-1, identityPoolId=pool-2"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required extension_traceId="t-9" extension_logicalCluster="lkc-7";"#,
            ),
        ])
        .unwrap()
        .oauthbearer_token_provider(|| Err("unused".into()));
        let core = c.sasl_to_core().unwrap();
        let ext: Vec<(&str, &str)> = core
            .oauth_extensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            ext,
            [
                ("logicalCluster", "lkc-7"),
                ("identityPoolId", "pool-2"),
                ("traceId", "t-9")
            ]
        );
        let shown = format!("{c:?} {core:?}");
        assert!(
            shown.contains("identityPoolId") && !shown.contains("pool-2"),
            "{shown}"
        );
        c.clone().validate().unwrap();
        for (k, v, want) in [
            ("auth", "hunter2", "carries the token"),
            ("log_cluster", "hunter2", "letters only"),
            ("k", "hunter2\u{1}", "printable ASCII"),
        ] {
            let e = c
                .clone()
                .oauthbearer_extension(k, v)
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains("sasl.oauthbearer.extensions"),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = props(&[("sasl.oauthbearer.extensions", "novalue")]).unwrap_err();
        assert!(e.to_string().contains("key=value"), "{e}");
        // Login settings alone ask for no token endpoint.
        let c = props(&[("sasl.login.retry.backoff.ms", "200")]).unwrap();
        assert!(c.oidc_settings().is_none());
    }

    #[test]
    fn out_of_range_and_missing_settings_are_refused_without_the_secret() {
        let base = [
            (
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example/token",
            ),
            ("sasl.oauthbearer.client.id", "app"),
            ("sasl.oauthbearer.client.secret", "hunter2"),
        ];
        for (extra, want) in [
            (("sasl.login.refresh.window.factor", "0.4"), "window.factor"),
            (("sasl.login.refresh.window.jitter", "0.3"), "window.jitter"),
            (
                ("sasl.login.refresh.min.period.seconds", "901"),
                "min.period",
            ),
            (("sasl.login.refresh.buffer.seconds", "3601"), "buffer"),
            (
                ("sasl.oauthbearer.token.endpoint.url", "ftp://x/y"),
                "endpoint.url",
            ),
            (("sasl.oauthbearer.client.id", ""), "client.id"),
            (("sasl.oauthbearer.sub.claim.name", " "), "sub.claim.name"),
            (
                ("sasl.oauthbearer.scope.claim.name", ""),
                "scope.claim.name",
            ),
        ] {
            let mut p = base.to_vec();
            p.push(extra);
            let e = props(&p)
                .and_then(ProducerConfig::validate)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // A file needs no client credentials.
        props(&[(
            "sasl.oauthbearer.token.endpoint.url",
            "file:///run/secrets/token",
        )])
        .unwrap()
        .validate()
        .unwrap();
        // Another mechanism with a token endpoint is a contradiction.
        let e = props(&base)
            .unwrap()
            .sasl_mechanism(kring_core::SaslMechanism::Plain)
            .sasl_plain("a", "b")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("OAUTHBEARER"), "{e}");
    }
    /// Java 4.4's client assertions: the jwt-bearer grant (KIP-1139) and
    /// `client_assertion` (KIP-1258), chosen as Java chooses, checked with
    /// Java's ranges, the passphrase refused and never shown.
    #[cfg(feature = "oidc")]
    #[test]
    fn client_assertion_settings_choose_the_request_and_are_checked() {
        use super::super::assertion::SigningAlgorithm;
        let endpoint = (
            "sasl.oauthbearer.token.endpoint.url",
            "https://idp.example/token",
        );
        let c = props(&[
            endpoint,
            (
                "sasl.oauthbearer.jwt.retriever.class",
                "org.apache.kafka.common.security.oauthbearer.JwtBearerJwtRetriever",
            ),
            ("sasl.oauthbearer.assertion.algorithm", "es256"),
            (
                "sasl.oauthbearer.assertion.private.key.file",
                "/etc/kafka/key.pem",
            ),
            (
                "sasl.oauthbearer.assertion.claim.aud",
                "https://idp.example",
            ),
            ("sasl.oauthbearer.assertion.claim.sub", "svc"),
            ("sasl.oauthbearer.assertion.claim.exp.seconds", "86400"),
            ("sasl.oauthbearer.assertion.claim.nbf.seconds", "0"),
            ("sasl.oauthbearer.assertion.claim.jti.include", "true"),
            (
                "sasl.oauthbearer.assertion.template.file",
                "/etc/kafka/t.json",
            ),
        ])
        .unwrap()
        .validate()
        .unwrap();
        let o = c.oidc_settings().unwrap();
        assert_eq!(o.token_request(), TokenRequest::JwtBearer);
        let shown = format!("{o:?}");
        assert!(
            shown.contains("Es256") && shown.contains("/etc/kafka/key.pem"),
            "{shown}"
        );
        // Java's spelling in any case; an assertion setting alone asks for
        // a token endpoint.
        let c = props(&[endpoint, ("sasl.oauthbearer.assertion.algorithm", "rs256")]).unwrap();
        assert_eq!(
            c.sasl.oidc.assertion.algorithm,
            super::super::assertion::SigningAlgorithm::Rs256
        );
        let e = props(&[("sasl.oauthbearer.assertion.claim.iss", "svc")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("token.endpoint.url"), "{e}");
        let a = &o.assertion;
        assert_eq!(a.algorithm, SigningAlgorithm::Es256);
        assert_eq!((a.exp_seconds, a.nbf_seconds, a.jti), (86_400, 0, true));
        assert_eq!(a.aud.as_deref(), Some("https://idp.example"));
        // An `iss` claim (or an assertion file) authenticates
        // client_credentials in place of the secret; the id is optional.
        let c = props(&[
            endpoint,
            ("sasl.oauthbearer.assertion.claim.iss", "svc"),
            (
                "sasl.oauthbearer.assertion.private.key.file",
                "/etc/kafka/key.pem",
            ),
            (
                "sasl.oauthbearer.assertion.private.key.passphrase",
                "hunter2 ",
            ),
        ])
        .unwrap()
        .validate()
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let a = &c.oidc_settings().unwrap().assertion;
        assert_eq!(a.passphrase.as_deref(), Some("hunter2 "), "not trimmed");
        assert_eq!(
            c.oidc_settings().unwrap().token_request(),
            TokenRequest::ClientAssertion
        );
        let c = props(&[endpoint, ("sasl.oauthbearer.assertion.file", "/run/a.jwt")])
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(
            c.oidc_settings().unwrap().token_request(),
            TokenRequest::ClientAssertion
        );
        // Without either, the secret is still needed.
        let e = props(&[endpoint, ("sasl.oauthbearer.assertion.claim.sub", "svc")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("client.id"), "{e}");
        let refused = [
            (
                vec![("sasl.oauthbearer.assertion.claim.iss", "svc")],
                "assertion.private.key.file",
            ),
            (
                vec![("sasl.oauthbearer.assertion.claim.exp.seconds", "86401")],
                "between 0 and 86400",
            ),
            (
                vec![("sasl.oauthbearer.assertion.claim.nbf.seconds", "-1")],
                "between 0 and 3600",
            ),
            (
                vec![("sasl.oauthbearer.assertion.algorithm", "HS256")],
                "RS256 or ES256",
            ),
            (
                vec![
                    ("sasl.oauthbearer.token.endpoint.url", "file:///run/token"),
                    (
                        "sasl.oauthbearer.jwt.retriever.class",
                        "JwtBearerJwtRetriever",
                    ),
                ],
                "posts its grant",
            ),
        ];
        for (extra, want) in refused {
            let mut p = vec![endpoint];
            p.extend(extra);
            let c = props(&p);
            if let Ok(c) = &c {
                let shown = format!("{c:?}");
                assert!(!shown.contains("hunter2"), "{shown}");
            }
            let e = c
                .and_then(ProducerConfig::validate)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{p:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
