//! SASL settings: `sasl.mechanism` (librdkafka: `sasl.mechanisms`),
//! `sasl.username`, `sasl.password`, Java's `sasl.jaas.config` (PLAIN and
//! SCRAM credentials, with `tokenauth=true` for delegation tokens;
//! OAuthBearerLoginModule's token endpoint client and SASL extensions),
//! and an OAUTHBEARER token provider. `Debug` never shows the password,
//! the JAAS text or an extension's value, and no error message repeats
//! them. The token endpoint's own settings are `oauth.rs`.

use std::io::Read as _;
use std::sync::Arc;

use kring_core::{OAuthToken, OAuthTokenProvider, SaslConfig, SaslMechanism};

use super::{ConfigError, ProducerConfig};

/// The `sasl.*` settings as given.
#[derive(Clone, Default)]
pub(super) struct SaslSettings {
    pub(super) mechanism: Option<SaslMechanism>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) token_provider: Option<OAuthTokenProvider>,
    /// SCRAM with a delegation token (KIP-48).
    pub(super) token_auth: bool,
    /// OAUTHBEARER tokens from a token endpoint.
    pub(super) oidc: super::oauth::OidcSettings,
    /// OAUTHBEARER SASL extensions (KIP-342).
    pub(super) oauth_extensions: Vec<(String, String)>,
}

impl PartialEq for SaslSettings {
    fn eq(&self, o: &Self) -> bool {
        self.mechanism == o.mechanism
            && self.username == o.username
            && self.password == o.password
            && self.token_auth == o.token_auth
            && self.oidc == o.oidc
            && self.oauth_extensions == o.oauth_extensions
            && match (&self.token_provider, &o.token_provider) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for SaslSettings {}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token_provider", &self.token_provider.is_some())
            .field("token_auth", &self.token_auth)
            .field("oidc", &self.oidc)
            .field(
                "oauth_extensions",
                &self
                    .oauth_extensions
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What `sasl.mechanism` accepts.
const MECHANISMS: &str =
    "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (GSSAPI is not supported)";

pub(super) fn parse_mechanism(
    property: &'static str,
    v: &str,
) -> Result<SaslMechanism, ConfigError> {
    SaslMechanism::parse(v).ok_or_else(|| ConfigError::invalid(property, v, MECHANISMS))
}

/// What kring takes from a JAAS line.
pub(super) struct JaasLogin {
    pub(super) username: String,
    pub(super) password: String,
    /// `tokenauth=true` (ScramLoginModule only): a delegation token.
    pub(super) token_auth: bool,
    /// OAuthBearerLoginModule's `clientId`, `clientSecret` and `scope`
    /// (KIP-768, before Java 4.1 gave them properties of their own).
    pub(super) oauth: Option<JaasOAuth>,
}

/// The token endpoint options of an OAuthBearerLoginModule line.
#[derive(Default)]
pub(super) struct JaasOAuth {
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) scope: Option<String>,
    /// `extension_<key>="value"`: SASL extensions (KIP-342).
    pub(super) extensions: Vec<(String, String)>,
}

impl std::fmt::Debug for JaasLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token_auth", &self.token_auth)
            .field(
                "oauth_client_id",
                &self.oauth.as_ref().and_then(|o| o.client_id.as_deref()),
            )
            .finish_non_exhaustive()
    }
}

/// `username`, `password` and `tokenauth` of a Java JAAS line for PLAIN
/// or SCRAM, or `clientId`, `clientSecret`, `scope` and `extension_<key>`
/// of one for OAUTHBEARER:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required
/// username="alice" password="secret";` (values quoted or bare, `\"`
/// escapes inside quotes). Errors never quote the text.
pub(super) fn parse_jaas(text: &str) -> Result<JaasLogin, ConfigError> {
    let bad = |reason: &str| ConfigError::OutOfRange {
        property: "sasl.jaas.config",
        reason: reason.to_owned(),
    };
    let text = text.trim().trim_end_matches(';').trim();
    let (module, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("expected `<LoginModule> required username=\"..\" password=\"..\";`"))?;
    let module_name = module.rsplit('.').next().unwrap_or(module);
    if !matches!(
        module_name,
        "PlainLoginModule" | "ScramLoginModule" | "OAuthBearerLoginModule"
    ) {
        return Err(bad(
            "kring reads PlainLoginModule, ScramLoginModule and OAuthBearerLoginModule lines only",
        ));
    }
    let rest = rest.trim_start();
    let rest = ["required", "requisite", "sufficient", "optional"]
        .iter()
        .find_map(|f| rest.strip_prefix(f))
        .ok_or_else(|| bad("the login module needs a control flag (`required`)"))?;
    let mut username = None;
    let mut password = None;
    let mut token_auth = false;
    let oauth_module = module_name == "OAuthBearerLoginModule";
    let mut oauth = JaasOAuth::default();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim().to_owned();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(bad("an option's quoted value is not closed"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(bad("an option without a name"));
        }
        match key.as_str() {
            "username" => username = Some(value),
            "password" => password = Some(value),
            // KIP-48 delegation tokens: SCRAM's client-first message then
            // carries the `tokenauth=true` extension. Anything but true or
            // false is refused (the Java client reads it as false), so a
            // typo does not turn into a refused login.
            "tokenauth" => {
                token_auth = if value.eq_ignore_ascii_case("true") {
                    true
                } else if value.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(bad("the tokenauth option must be true or false"));
                };
                if token_auth && module_name != "ScramLoginModule" {
                    return Err(bad(
                        "tokenauth=true (a delegation token) needs ScramLoginModule and a SCRAM mechanism",
                    ));
                }
            }
            k if oauth_module && k.starts_with("extension_") => oauth
                .extensions
                .push((k["extension_".len()..].to_owned(), value)),
            "clientId" if oauth_module => oauth.client_id = Some(value),
            "clientSecret" if oauth_module => oauth.client_secret = Some(value),
            "scope" if oauth_module => oauth.scope = Some(value),
            k if oauth_module && k.starts_with("unsecuredLogin") => {
                return Err(bad(
                    "kring does not make unsecured OAUTHBEARER tokens (unsecuredLogin* options): \
                     give a token endpoint or a token provider",
                ))
            }
            _ => {} // other options are not kring's
        }
    }
    if oauth_module {
        return Ok(JaasLogin {
            username: String::new(),
            password: String::new(),
            token_auth: false,
            oauth: Some(oauth),
        });
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(JaasLogin {
            username,
            password,
            token_auth,
            oauth: None,
        }),
        _ => Err(bad(
            "the JAAS line needs both username and password options",
        )),
    }
}

/// 32 bytes from the OS for the SCRAM nonce seed (`/dev/urandom`; if it
/// cannot be read, the std hasher's per-process random keys stand in).
fn nonce_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_ok();
    if !ok {
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in seed.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    seed
}

impl ProducerConfig {
    /// The core's SASL settings, `None` without a mechanism.
    pub(super) fn sasl_to_core(&self) -> Option<SaslConfig> {
        let s = &self.sasl;
        Some(SaslConfig {
            mechanism: s.mechanism?,
            username: s.username.clone().unwrap_or_default(),
            password: s.password.clone().unwrap_or_default(),
            // With a token endpoint, the provider is the token source
            // `build` starts (`crate::oauth`); until then, one that says so.
            token_provider: match &s.token_provider {
                None if s.oidc.is_set() => Some(Arc::new(|| {
                    Err("the token endpoint's token source has not started".to_owned())
                })),
                p => p.clone(),
            },
            token_auth: s.token_auth,
            oauth_extensions: s.oauth_extensions.clone(),
            nonce_seed: nonce_seed(),
        })
    }

    fn sasl_credentials(mut self, mechanism: SaslMechanism, user: &str, password: &str) -> Self {
        self.sasl.mechanism = Some(mechanism);
        self.sasl.username = Some(user.to_owned());
        self.sasl.password = Some(password.to_owned());
        self
    }

    /// SASL PLAIN with these credentials (`sasl.mechanism=PLAIN`,
    /// `sasl.username`, `sasl.password`). Set `security.protocol` to
    /// `SASL_PLAINTEXT` or `SASL_SSL` too.
    #[must_use]
    pub fn sasl_plain(self, user: &str, password: &str) -> Self {
        self.sasl_credentials(SaslMechanism::Plain, user, password)
    }

    /// SASL SCRAM-SHA-256 with these credentials.
    #[must_use]
    pub fn sasl_scram_sha256(self, user: &str, password: &str) -> Self {
        self.sasl_credentials(SaslMechanism::ScramSha256, user, password)
    }

    /// SASL SCRAM-SHA-512 with these credentials.
    #[must_use]
    pub fn sasl_scram_sha512(self, user: &str, password: &str) -> Self {
        self.sasl_credentials(SaslMechanism::ScramSha512, user, password)
    }

    /// SASL OAUTHBEARER with tokens from `provider`, called on the I/O
    /// thread when a connection (re-)authenticates and the last token is
    /// past 80 % of its lifetime. A panic in it is caught and fails that
    /// authentication attempt, like an `Err`.
    #[must_use]
    pub fn oauthbearer_token_provider<F>(mut self, provider: F) -> Self
    where
        F: Fn() -> Result<OAuthToken, String> + Send + Sync + 'static,
    {
        self.sasl.mechanism = Some(SaslMechanism::OAuthBearer);
        self.sasl.token_provider = Some(Arc::new(provider));
        self
    }

    /// `sasl.mechanism`, if set.
    pub fn get_sasl_mechanism(&self) -> Option<SaslMechanism> {
        self.sasl.mechanism
    }

    /// `sasl.username`, if set.
    pub fn get_sasl_username(&self) -> Option<&str> {
        self.sasl.username.as_deref()
    }
}

impl crate::producer::ProducerBuilder {
    /// See [`ProducerConfig::sasl_plain`].
    #[must_use]
    pub fn sasl_plain(mut self, user: &str, password: &str) -> Self {
        self.config = self.config.sasl_plain(user, password);
        self
    }

    /// See [`ProducerConfig::sasl_scram_sha256`].
    #[must_use]
    pub fn sasl_scram_sha256(mut self, user: &str, password: &str) -> Self {
        self.config = self.config.sasl_scram_sha256(user, password);
        self
    }

    /// See [`ProducerConfig::sasl_scram_sha512`].
    #[must_use]
    pub fn sasl_scram_sha512(mut self, user: &str, password: &str) -> Self {
        self.config = self.config.sasl_scram_sha512(user, password);
        self
    }

    /// See [`ProducerConfig::oauthbearer_token_provider`].
    #[must_use]
    pub fn oauthbearer_token_provider<F>(mut self, provider: F) -> Self
    where
        F: Fn() -> Result<OAuthToken, String> + Send + Sync + 'static,
    {
        self.config = self.config.oauthbearer_token_provider(provider);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_for_plain_and_scram() {
        for line in [
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr\"et";"#,
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required  password="s3cr\"et"  username=alice ;"#,
        ] {
            let l = parse_jaas(line).unwrap();
            assert_eq!(
                (l.username.as_str(), l.password.as_str()),
                ("alice", "s3cr\"et")
            );
            assert!(!l.token_auth);
            let shown = format!("{l:?}");
            assert!(
                shown.contains("alice") && shown.contains("redacted"),
                "{shown}"
            );
            assert!(!shown.contains("s3cr"), "{shown}");
        }
        for (line, want) in [
            (
                r#"com.example.Krb5LoginModule required username="a" password="hunter2";"#,
                "PlainLoginModule",
            ),
            (
                r#"org.apache.kafka.common.security.plain.PlainLoginModule username="a" password="hunter2";"#,
                "control flag",
            ),
            (
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="a";"#,
                "password",
            ),
            (
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="hunter2"#,
                "not closed",
            ),
        ] {
            let e = parse_jaas(line).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    /// KIP-48: `tokenauth=true` in a ScramLoginModule line selects
    /// delegation token authentication (it was ignored, and the token id
    /// was then refused as an unknown SCRAM user); elsewhere, or with a
    /// value that is neither true nor false, the line is refused.
    #[test]
    fn jaas_tokenauth() {
        const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required";
        for (opts, want) in [
            (
                r#"username="tok-id" password="hunter2" tokenauth=true"#,
                true,
            ),
            (
                r#"tokenauth="TRUE" username="tok-id" password="hunter2""#,
                true,
            ),
            (
                r#"username="tok-id" password="hunter2" tokenauth=false"#,
                false,
            ),
        ] {
            let l = parse_jaas(&format!("{SCRAM} {opts};")).unwrap();
            assert_eq!(l.token_auth, want, "{opts}");
            assert_eq!(l.username, "tok-id");
        }
        for line in [
            format!(r#"{SCRAM} username="a" password="hunter2" tokenauth=yes;"#),
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="hunter2" tokenauth=true;"#.to_owned(),
        ] {
            let e = parse_jaas(&line).unwrap_err().to_string();
            assert!(e.contains("tokenauth"), "{line}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let props = [
            ("bootstrap.servers", "h:9092"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="tok-id" password="hunter2" tokenauth="true";"#,
            ),
        ];
        let c = ProducerConfig::from_properties(props).unwrap();
        assert!(c.sasl_to_core().unwrap().token_auth);
        // The mechanism is checked when the producer is built.
        let plain = c.clone().sasl_mechanism(SaslMechanism::Plain);
        let e = plain.validate().unwrap_err().to_string();
        assert!(
            e.contains("tokenauth=true") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
