//! SASL authentication of a connection (KIP-43 SaslHandshake, KIP-152
//! SaslAuthenticate, KIP-368 re-authentication), sans-IO.
//!
//! After ApiVersions a connection of a `SASL_*` producer stays
//! `Authenticating`: SaslHandshake (v1) names the mechanism, then
//! SaslAuthenticate requests carry the mechanism's messages (one file per
//! mechanism: [`plain`], [`scram`], [`oauthbearer`]) until it is done; only
//! then does the connection become `Ready`. The SASL requests are ordinary
//! in-flight requests of the connection (same FIFO, same request timeout).
//!
//! **Re-authentication.** SaslAuthenticate v1+ returns the session
//! lifetime the broker grants; at a random 85–95 % of it (as the Java
//! client does, so a fleet does not re-authenticate in step), but no
//! sooner than a second after the last exchange (a Kafka broker refuses
//! re-authentication more often than that) the core
//! re-authenticates on the same connection: it stops building new requests
//! for it (`Authenticating` again), sends SaslHandshake + SaslAuthenticate
//! behind whatever is in flight, handles the responses to the earlier
//! requests as they come (Kafka answers in order) and resumes when the
//! exchange succeeds. Nothing in flight is dropped.
//!
//! **Failure.** A refused mechanism, a wrong password or a broken
//! exchange closes the connection with
//! [`LastError::Authentication`](crate::LastError::Authentication) as its
//! cause; the target then waits out its reconnect backoff like any failed
//! connection (no tight retry loop), and records time out naming it.
//! A failure also drops the cached OAUTHBEARER token: the next attempt
//! asks the provider rather than offering a refused token again. An
//! OAUTHBEARER error challenge (RFC 7628: the broker's JSON status, sent
//! before it fails the exchange) is acknowledged and its `status` and
//! `scope` are named in the error.
//!
//! **Randomness.** The SCRAM client nonce must be unpredictable, but the
//! core does no I/O: the caller passes 32 random bytes in
//! [`SaslConfig::nonce_seed`] (the `kring` crate reads them from the OS)
//! and nonces are HMAC-SHA-256(seed, counter) — unpredictable without the
//! seed, reproducible in the Sim with a fixed one.
//!
//! **Secrets.** Passwords and tokens are never logged, never in `Debug`
//! output and never in error messages (which carry only what the broker
//! said, and the mechanism).

pub(crate) mod oauthbearer;
pub(crate) mod plain;
pub(crate) mod scram;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kring_protocol::message::decode_response_frame;
use kring_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
use kring_protocol::messages::sasl_handshake::SaslHandshakeRequest;
use kring_protocol::ErrorCode;
use sha2::Sha256;

use super::conn::{ConnId, ConnState, ReqKind};
use super::{ProducerCore, TimerKey};

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): user name and password in the clear (use TLS).
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628): a bearer token from a provider.
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's SASL name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Parses a SASL mechanism name (case-insensitive).
    pub fn parse(value: &str) -> Option<SaslMechanism> {
        [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
            SaslMechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(value.trim()))
    }
}

/// A bearer token from an [`OAuthTokenProvider`].
#[derive(Clone)]
pub struct OAuthToken {
    /// The token (a JWS compact serialization for Kafka's validators). It
    /// must be an RFC 6750 bearer token (letters, digits, `-._~+/`, then
    /// optional `=` padding): any other token fails the authentication
    /// attempt before it is sent, with an error that does not show it.
    pub value: String,
    /// How long it stays valid from the moment the provider returned it.
    /// The core fetches a new one once 80 % of it has passed.
    pub lifetime: Duration,
    /// The principal it names (for logs only).
    pub principal: String,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("principal", &self.principal)
            .finish()
    }
}

/// Returns a fresh OAUTHBEARER token, or why there is none. Called on the
/// I/O thread when a connection (re-)authenticates and the cached token
/// is past 80 % of its lifetime — not per request; keep it quick (a
/// provider that must call an identity service should refresh in the
/// background and return its latest token). A panic is caught and fails
/// that authentication attempt like an `Err`. While the last token it gave
/// is still valid, a failed refresh is logged and that token is used.
pub type OAuthTokenProvider = Arc<dyn Fn() -> Result<OAuthToken, String> + Send + Sync>;

/// SASL settings (`sasl.*`). `Debug` shows no secret.
#[derive(Clone)]
pub struct SaslConfig {
    /// `sasl.mechanism`.
    pub mechanism: SaslMechanism,
    /// `sasl.username` (PLAIN, SCRAM).
    pub username: String,
    /// `sasl.password` (PLAIN, SCRAM).
    pub password: String,
    /// The OAUTHBEARER token source.
    pub token_provider: Option<OAuthTokenProvider>,
    /// SCRAM with a delegation token (KIP-48; the JAAS option
    /// `tokenauth=true`): `username` is the token id, `password` the
    /// token's HMAC, and the client-first message carries the
    /// `tokenauth=true` extension, which tells the broker to check them
    /// against its delegation tokens instead of its SCRAM users. SCRAM
    /// mechanisms only.
    pub token_auth: bool,
    /// OAUTHBEARER SASL extensions (KIP-342), sent as `key=value` pairs
    /// after the token in the client's first message, in this order (for
    /// example Confluent Cloud's `logicalCluster` and `identityPoolId`).
    /// Keys are letters only and not `auth`; values printable ASCII,
    /// spaces, tabs or line breaks. `Debug` shows the keys only.
    pub oauth_extensions: Vec<(String, String)>,
    /// 32 random bytes the SCRAM client nonces are derived from (the
    /// caller's randomness: the core does no I/O).
    pub nonce_seed: [u8; 32],
}

impl SaslConfig {
    /// PLAIN or SCRAM credentials, with a zero nonce seed (set
    /// [`nonce_seed`](Self::nonce_seed) from a random source).
    pub fn new(mechanism: SaslMechanism, username: &str, password: &str) -> SaslConfig {
        SaslConfig {
            mechanism,
            username: username.to_owned(),
            password: password.to_owned(),
            token_provider: None,
            token_auth: false,
            oauth_extensions: Vec::new(),
            nonce_seed: [0; 32],
        }
    }

    /// OAUTHBEARER with a token provider.
    pub fn oauthbearer(provider: OAuthTokenProvider) -> SaslConfig {
        SaslConfig {
            mechanism: SaslMechanism::OAuthBearer,
            username: String::new(),
            password: String::new(),
            token_provider: Some(provider),
            token_auth: false,
            oauth_extensions: Vec::new(),
            nonce_seed: [0; 32],
        }
    }

    /// Checks the settings fit the mechanism; the error names no secret.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.token_auth
            && !matches!(
                self.mechanism,
                SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
            )
        {
            return Err((
                "sasl.mechanism",
                format!(
                    "delegation token authentication (tokenauth=true) needs SCRAM-SHA-256 or SCRAM-SHA-512, not {}",
                    self.mechanism.name()
                ),
            ));
        }
        if !self.oauth_extensions.is_empty() && self.mechanism != SaslMechanism::OAuthBearer {
            return Err((
                "sasl.oauthbearer.extensions",
                format!(
                    "SASL extensions are OAUTHBEARER's, not {}'s",
                    self.mechanism.name()
                ),
            ));
        }
        for (k, v) in &self.oauth_extensions {
            oauthbearer::check_extension(k, v).map_err(|e| ("sasl.oauthbearer.extensions", e))?;
        }
        match self.mechanism {
            SaslMechanism::OAuthBearer => {
                if self.token_provider.is_none() {
                    return Err((
                        "sasl.mechanism",
                        "OAUTHBEARER needs a token provider".into(),
                    ));
                }
            }
            m => {
                if self.username.is_empty() {
                    return Err(("sasl.username", format!("{} needs a user name", m.name())));
                }
                if self.password.is_empty() {
                    return Err(("sasl.password", format!("{} needs a password", m.name())));
                }
                if m == SaslMechanism::Plain
                    && (self.username.contains('\0') || self.password.contains('\0'))
                {
                    return Err((
                        "sasl.username",
                        "PLAIN credentials cannot contain NUL".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token_provider", &self.token_provider.is_some())
            .field("token_auth", &self.token_auth)
            .field(
                "oauth_extensions",
                &self
                    .oauth_extensions
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The core's SASL state: settings, nonce generator, cached token.
pub(crate) struct SaslState {
    cfg: SaslConfig,
    nonces: u64,
    token: Option<(OAuthToken, Instant)>,
}

impl SaslState {
    pub(crate) fn new(cfg: SaslConfig) -> SaslState {
        SaslState {
            cfg,
            nonces: 0,
            token: None,
        }
    }

    pub(crate) fn mechanism(&self) -> SaslMechanism {
        self.cfg.mechanism
    }

    /// A fresh client nonce: 24 base64 characters of
    /// HMAC-SHA-256(seed, counter).
    fn nonce(&mut self) -> String {
        self.nonces += 1;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.cfg.nonce_seed)
            .expect("HMAC takes any key");
        m.update(&self.nonces.to_be_bytes());
        B64.encode(&m.finalize().into_bytes()[..18])
    }

    /// The cached token, or a new one from the provider once 80 % of the
    /// cached one's lifetime has passed (the cached one while it is valid,
    /// if the provider fails).
    fn token(&mut self, now: Instant) -> Result<String, String> {
        if let Some((t, at)) = &self.token {
            // `checked_add`: a provider may say "never expires" with
            // `Duration::MAX`; past the end of `Instant` it stays fresh.
            if at
                .checked_add(t.lifetime.mul_f64(0.8))
                .is_none_or(|refresh| now < refresh)
            {
                return Ok(t.value.clone());
            }
        }
        let provider = self
            .cfg
            .token_provider
            .clone()
            .ok_or("no OAUTHBEARER token provider")?;
        // User code on the I/O thread, fenced like the delivery callback:
        // a panic fails this attempt (backed off, retried), not the thread.
        let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider()))
            .map_err(|panic| {
                format!(
                    "the token provider panicked: {}",
                    crate::delivery::panic_message(&*panic)
                )
            })
            .and_then(|r| r.map_err(|e| format!("the token provider failed: {e}")))
            // A malformed token is refused before it is cached or sent.
            .and_then(|t| oauthbearer::check_token(&t.value).map(|()| t));
        let t = match fetched {
            Ok(t) => t,
            Err(e) => {
                // A failed refresh keeps the current token while it is
                // valid (the Java client keeps its credential until it
                // expires): an identity service down for a moment does not
                // end sessions that could go on.
                if let Some((t, at)) = &self.token {
                    if at.checked_add(t.lifetime).is_none_or(|end| now < end) {
                        tracing::warn!(error = %e, "OAUTHBEARER token refresh failed; the current token is used until it expires");
                        return Ok(t.value.clone());
                    }
                }
                return Err(e);
            }
        };
        tracing::debug!(principal = %t.principal, lifetime = ?t.lifetime, "new OAUTHBEARER token");
        let v = t.value.clone();
        self.token = Some((t, now));
        Ok(v)
    }

    fn exchange(&mut self, now: Instant) -> Result<Exchange, String> {
        let c = &self.cfg;
        let mech = match c.mechanism {
            SaslMechanism::Plain => Mech::Plain,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if c.mechanism == SaslMechanism::ScramSha256 {
                    scram::ScramHash::Sha256
                } else {
                    scram::ScramHash::Sha512
                };
                let (user, pass) = (c.username.clone(), c.password.clone());
                let token_auth = c.token_auth;
                let nonce = self.nonce();
                Mech::Scram(Box::new(scram::ScramClient::new(
                    hash, &user, &pass, nonce, token_auth,
                )))
            }
            SaslMechanism::OAuthBearer => Mech::OAuth {
                token: self.token(now)?,
                challenge: None,
            },
        };
        Ok(Exchange { mech })
    }

    fn first_message(&self, ex: &Exchange) -> Vec<u8> {
        match &ex.mech {
            Mech::Plain => plain::message(&self.cfg.username, &self.cfg.password),
            Mech::Scram(s) => s.first_message(),
            Mech::OAuth { token, .. } => {
                oauthbearer::first_message(token, &self.cfg.oauth_extensions)
            }
        }
    }
}

impl fmt::Debug for SaslState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslState")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

enum Mech {
    Plain,
    Scram(Box<scram::ScramClient>),
    /// `challenge`: the broker's error challenge, described, once it
    /// was acknowledged.
    OAuth {
        token: String,
        challenge: Option<String>,
    },
}

/// One connection's exchange in progress.
pub(crate) struct Exchange {
    mech: Mech,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exchange")
    }
}

impl Exchange {
    /// The server's bytes of a successful SaslAuthenticate: the next
    /// message to send, or `None` when authenticated.
    fn on_server(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match &mut self.mech {
            Mech::Plain => Ok(None),
            Mech::Scram(s) => s.on_server(bytes),
            Mech::OAuth { challenge, .. } => {
                if bytes.is_empty() {
                    Ok(None)
                } else if let Some(first) = challenge {
                    Err(format!(
                        "the broker sent a second OAUTHBEARER challenge (the first: {first})"
                    ))
                } else {
                    // An error challenge (JSON status): acknowledge it; the
                    // broker then fails the exchange, and the error names
                    // the challenge's status (often the only account of
                    // why the token was refused).
                    *challenge = Some(oauthbearer::describe_challenge(bytes));
                    Ok(Some(oauthbearer::ERROR_ACK.to_vec()))
                }
            }
        }
    }

    /// The broker's OAUTHBEARER error challenge, described, if it sent one.
    fn challenge(&self) -> Option<&str> {
        match &self.mech {
            Mech::OAuth { challenge, .. } => challenge.as_deref(),
            _ => None,
        }
    }
}

/// Per-connection SASL facts.
#[derive(Debug, Default)]
pub(crate) struct ConnSasl {
    /// SaslAuthenticate version (-1: not negotiated yet).
    pub(crate) auth_version: i16,
    pub(crate) exchange: Option<Exchange>,
    /// Re-authenticating (not the first exchange).
    pub(crate) reauth: bool,
    /// The re-authentication timer.
    pub(crate) reauth_timer: Option<crate::timer::TimerHandle>,
}

/// SaslHandshake version: v1 (KIP-152: the tokens travel in
/// SaslAuthenticate). v0 (raw tokens) is gone from Kafka 4.
const HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate versions: v1 adds the session lifetime, v2 is flexible.
const AUTHENTICATE_VERSIONS: (i16, i16) = (0, 2);
/// The least time from one (re-)authentication to the next
/// re-authentication, whatever session lifetime the broker grants. A Kafka
/// broker refuses a re-authentication begun within a second of the
/// previous one (`KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`), so
/// sooner is never useful; and a tiny lifetime (1 ms) otherwise had the
/// core re-authenticate hundreds of times a second, each SCRAM exchange
/// running PBKDF2 on the I/O thread. A broker that then closes the
/// connection for an expired session costs a reconnect (backed off)
/// instead.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

impl ProducerCore {
    /// ApiVersions succeeded on `id`: authenticate before it is ready.
    /// `versions` is the broker's (api key, min, max) list.
    pub(crate) fn start_sasl(
        &mut self,
        now: Instant,
        id: ConnId,
        handshake: Option<(i16, i16)>,
        authenticate: Option<(i16, i16)>,
    ) {
        let ok_handshake = handshake.is_some_and(|(lo, hi)| (lo..=hi).contains(&HANDSHAKE_VERSION));
        let auth_version = authenticate.and_then(|(lo, hi)| {
            let v = hi.min(AUTHENTICATE_VERSIONS.1);
            (v >= lo.max(AUTHENTICATE_VERSIONS.0)).then_some(v)
        });
        let (true, Some(auth_version)) = (ok_handshake, auth_version) else {
            self.auth_failed(
                now,
                id,
                "the broker offers no SaslHandshake v1 / SaslAuthenticate v0-2 (is its listener SASL?)",
            );
            return;
        };
        if let Some(c) = self.conn_mut(id) {
            c.sasl.auth_version = auth_version;
            c.sasl.reauth = false;
        }
        self.send_handshake(now, id);
    }

    fn send_handshake(&mut self, now: Instant, id: ConnId) {
        let Some(sasl) = &self.sasl else { return };
        let req = SaslHandshakeRequest {
            mechanism: sasl.mechanism().name().into(),
            ..Default::default()
        };
        if let Some(c) = self.conn_mut(id) {
            c.state = ConnState::Authenticating;
        }
        match self.send_request(
            now,
            id,
            HANDSHAKE_VERSION,
            &req,
            ReqKind::SaslHandshake,
            true,
            64,
        ) {
            Ok(t) => self.conns.push_sasl_tx(t),
            Err(e) => self.auth_failed(now, id, &format!("cannot encode SaslHandshake: {e}")),
        }
    }

    fn send_authenticate(&mut self, now: Instant, id: ConnId, bytes: Vec<u8>) {
        let Some(version) = self.conn(id).map(|c| c.sasl.auth_version) else {
            return;
        };
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from(bytes),
            ..Default::default()
        };
        let size = req.auth_bytes.len() + 64;
        match self.send_request(
            now,
            id,
            version,
            &req,
            ReqKind::SaslAuthenticate,
            true,
            size,
        ) {
            Ok(t) => self.conns.push_sasl_tx(t),
            Err(e) => self.auth_failed(now, id, &format!("cannot encode SaslAuthenticate: {e}")),
        }
    }

    pub(crate) fn handle_sasl_handshake(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        frame: Bytes,
    ) {
        let r = match decode_response_frame::<SaslHandshakeRequest>(frame, version) {
            Ok((_, r)) => r,
            Err(e) => {
                self.auth_failed(now, id, &format!("undecodable SaslHandshake response: {e}"));
                return;
            }
        };
        let err = ErrorCode(r.error_code);
        if !err.is_ok() {
            let mech = self.sasl.as_ref().map_or("", |s| s.mechanism().name());
            let msg = if err == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
                format!(
                    "the broker does not enable {mech} (it offers: {})",
                    r.mechanisms.join(", ")
                )
            } else {
                format!("SaslHandshake failed: {} ({})", err.name(), err.code())
            };
            self.auth_failed(now, id, &msg);
            return;
        }
        let Some(sasl) = &mut self.sasl else { return };
        let ex = match sasl.exchange(now) {
            Ok(ex) => ex,
            Err(e) => {
                self.auth_failed(now, id, &e);
                return;
            }
        };
        let first = sasl.first_message(&ex);
        if let Some(c) = self.conn_mut(id) {
            c.sasl.exchange = Some(ex);
        }
        self.send_authenticate(now, id, first);
    }

    pub(crate) fn handle_sasl_authenticate(
        &mut self,
        now: Instant,
        id: ConnId,
        version: i16,
        frame: Bytes,
    ) {
        let r = match decode_response_frame::<SaslAuthenticateRequest>(frame, version) {
            Ok((_, r)) => r,
            Err(e) => {
                self.auth_failed(
                    now,
                    id,
                    &format!("undecodable SaslAuthenticate response: {e}"),
                );
                return;
            }
        };
        let err = ErrorCode(r.error_code);
        if !err.is_ok() {
            let mut msg = match r.error_message.as_deref() {
                Some(m) if !m.is_empty() => format!("{} ({}): {m}", err.name(), err.code()),
                _ => format!("{} ({})", err.name(), err.code()),
            };
            let challenge = self
                .conn(id)
                .and_then(|c| c.sasl.exchange.as_ref())
                .and_then(Exchange::challenge);
            if let Some(ch) = challenge {
                msg.push_str(&format!(" (OAUTHBEARER error challenge: {ch})"));
            }
            self.auth_failed(now, id, &msg);
            return;
        }
        let Some(c) = self.conn_mut(id) else { return };
        let Some(ex) = c.sasl.exchange.as_mut() else {
            self.auth_failed(now, id, "SaslAuthenticate response without an exchange");
            return;
        };
        match ex.on_server(&r.auth_bytes) {
            Ok(Some(next)) => self.send_authenticate(now, id, next),
            Ok(None) => self.sasl_done(now, id, r.session_lifetime_ms),
            Err(e) => self.auth_failed(now, id, &e),
        }
    }

    fn sasl_done(&mut self, now: Instant, id: ConnId, lifetime_ms: i64) {
        let Some(c) = self.conn_mut(id) else { return };
        c.sasl.exchange = None;
        let reauth = std::mem::replace(&mut c.sasl.reauth, false);
        self.stats.sasl_authentications += 1;
        if lifetime_ms > 0 {
            // Java's choice: a random point in 85-95 % of the lifetime,
            // but not within a second of this exchange (see
            // MIN_REAUTH_INTERVAL).
            let frac = 0.85 + 0.10 * self.rng.unit();
            let life = Duration::from_millis(lifetime_ms.min(i64::from(i32::MAX)) as u64);
            let at = now + life.mul_f64(frac).max(MIN_REAUTH_INTERVAL);
            let h = self.timers.insert(at, TimerKey::Reauth(id));
            if let Some(old) = self
                .conn_mut(id)
                .and_then(|c| c.sasl.reauth_timer.replace(h))
            {
                self.timers.cancel(old);
            }
        }
        tracing::debug!(%id, reauth, lifetime_ms, "SASL authenticated");
        self.conn_ready(id);
    }

    /// The session is due for re-authentication.
    ///
    /// Not while the broker throttles the connection (KIP-219): the broker
    /// has muted it, and the Java client sends a throttled node nothing,
    /// re-authenticating only as it sends its next request. The exchange
    /// starts when the throttle passes; a SaslHandshake is the one request
    /// a broker takes on a session that expired meanwhile.
    pub(crate) fn reauth_timer(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conn_mut(id) else { return };
        c.sasl.reauth_timer = None;
        if c.state != ConnState::Ready {
            return;
        }
        if let Some(until) = c.throttled_until.filter(|&t| t > now) {
            let h = self.timers.insert(until, TimerKey::Reauth(id));
            if let Some(c) = self.conn_mut(id) {
                c.sasl.reauth_timer = Some(h);
            }
            return;
        }
        c.sasl.reauth = true;
        let in_flight = c.in_flight.len();
        self.stats.sasl_reauthentications += 1;
        tracing::debug!(%id, in_flight, "SASL re-authenticating");
        self.send_handshake(now, id);
    }

    /// Authentication failed on `id`: close it, naming the cause; the
    /// target backs off before the next attempt.
    pub(crate) fn auth_failed(&mut self, now: Instant, id: ConnId, message: &str) {
        let Some(c) = self.conn(id) else { return };
        let target = c.target;
        if let Some(s) = &mut self.sasl {
            // A token the broker refused (revoked, signed with a retired
            // key, expired by its clock) is not offered again on every
            // reconnect until 80 % of its stated lifetime: the next
            // attempt asks the provider.
            s.token = None;
        }
        let mechanism = self.sasl.as_ref().map_or("SASL", |s| s.mechanism().name());
        tracing::warn!(%id, mechanism, message, "SASL authentication failed");
        self.stats.sasl_failures += 1;
        self.record_conn_error(
            target,
            crate::LastError::Authentication {
                mechanism,
                message: message.into(),
            },
        );
        self.drop_conn(
            now,
            id,
            &format!("SASL {mechanism} authentication failed: {message}"),
            true,
        );
        // No usable connection left: sends waiting for metadata fail now
        // with this cause (the Java client throws AuthenticationException
        // from send), instead of at max.block.ms.
        if !self.conns.iter().any(|c| c.state == ConnState::Ready) {
            self.shared
                .auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            self.shared.topics.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SCRAM client nonces: 24 characters, a new one for every exchange,
    /// and a different sequence for a different seed.
    #[test]
    fn every_nonce_is_new() {
        let cfg = |seed: u8| SaslConfig {
            nonce_seed: [seed; 32],
            ..SaslConfig::new(SaslMechanism::ScramSha256, "alice", "secret")
        };
        let mut a = SaslState::new(cfg(1));
        let first: Vec<String> = (0..100).map(|_| a.nonce()).collect();
        let distinct: std::collections::HashSet<&String> = first.iter().collect();
        assert_eq!(distinct.len(), 100);
        assert!(first.iter().all(|n| n.len() == 24), "{first:?}");
        let mut b = SaslState::new(cfg(2));
        assert!(!first.contains(&b.nonce()));
    }

    /// PLAIN separates its fields with NUL, so credentials holding one are
    /// refused, naming the setting and not the secret.
    #[test]
    fn plain_credentials_with_a_nul_are_refused() {
        for (user, pass) in [("al\0ice", "secret"), ("alice", "sec\0ret")] {
            let plain = SaslConfig::new(SaslMechanism::Plain, user, pass);
            let (setting, why) = plain.check().expect_err("NUL refused");
            assert_eq!(setting, "sasl.username");
            assert!(!why.contains("sec"), "{why}");
        }
        assert!(SaslConfig::new(SaslMechanism::Plain, "alice", "secret")
            .check()
            .is_ok());
    }

    /// `Debug` shows what helps (mechanism, user, principal, lifetime) and
    /// never a password or token.
    #[test]
    fn debug_names_the_settings_but_no_secret() {
        let scram = SaslConfig::new(SaslMechanism::ScramSha512, "alice", "hunter2");
        let token = OAuthToken {
            value: "eyJhbGciOiJub25lIn0.c2VjcmV0.".into(),
            lifetime: Duration::from_secs(3600),
            principal: "svc-orders".into(),
        };
        let shown = [
            format!("{scram:?}"),
            format!("{:?}", SaslState::new(scram.clone())),
        ];
        for s in &shown {
            assert!(s.contains("ScramSha512") && s.contains("alice"), "{s}");
            assert!(!s.contains("hunter2"), "{s}");
        }
        let t = format!("{token:?}");
        assert!(t.contains("svc-orders") && t.contains("3600"), "{t}");
        assert!(!t.contains("c2VjcmV0"), "{t}");
    }
}
