//! Server-side SASL (KIP-43 SaslHandshake v0-1, KIP-152 SaslAuthenticate
//! v0-2, KIP-368 session lifetimes) for PLAIN, SCRAM-SHA-256/512 and
//! OAUTHBEARER (any non-empty unsigned token passes, as Kafka's unsecured
//! validator would let a well-formed one).
//!
//! Behaviour, as a Kafka SASL listener:
//! - ApiVersions is answered before authentication (and lists
//!   SaslHandshake and SaslAuthenticate); any other request before the
//!   exchange succeeded closes the connection;
//! - SaslHandshake names a mechanism: an unknown one gets
//!   UNSUPPORTED_SASL_MECHANISM with the enabled list;
//! - SaslAuthenticate failures answer SASL_AUTHENTICATION_FAILED with
//!   Kafka's message, then the connection is closed;
//! - with a session lifetime, v1+ responses carry it, and a request other
//!   than SaslHandshake after the session expired closes the connection; a
//!   SaslHandshake on an authenticated connection starts re-authentication.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kring_protocol::message::{decode_request_header, encode_response};
use kring_protocol::messages::sasl_authenticate::{
    SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use kring_protocol::messages::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use kring_protocol::messages::RequestKind;
use sha2::{Digest, Sha256, Sha512};

const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const API_VERSIONS: i16 = 18;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const ITERATIONS: u32 = 4096;

/// SASL settings of a mock cluster ([`crate::MockClusterBuilder::sasl`]).
#[derive(Debug, Clone)]
pub struct MockSasl {
    /// Enabled mechanisms. Default: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,
    /// OAUTHBEARER.
    pub mechanisms: Vec<String>,
    /// Users (name, password) for PLAIN and both SCRAM mechanisms.
    pub users: Vec<(String, String)>,
    /// Session lifetime reported by SaslAuthenticate v1+ (zero: none, as
    /// Kafka without `connections.max.reauth.ms`).
    pub session_lifetime: Duration,
    /// Delegation tokens (KIP-48: token id, token HMAC as base64), for a
    /// SCRAM client-first message carrying the `tokenauth=true`
    /// extension. As in Kafka, such a message is checked against these
    /// only, and one without it against `users` only.
    pub delegation_tokens: Vec<(String, String)>,
}

impl Default for MockSasl {
    fn default() -> Self {
        MockSasl {
            mechanisms: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
                .map(String::from)
                .to_vec(),
            users: Vec::new(),
            session_lifetime: Duration::ZERO,
            delegation_tokens: Vec::new(),
        }
    }
}

impl MockSasl {
    /// Adds a user.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Only these mechanisms.
    pub fn mechanisms(mut self, m: &[&str]) -> Self {
        self.mechanisms = m.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets the session lifetime (KIP-368).
    pub fn session_lifetime(mut self, d: Duration) -> Self {
        self.session_lifetime = d;
        self
    }

    /// Adds a delegation token (KIP-48): a SCRAM client authenticates
    /// with it by sending `id` as its user name, `hmac` as its password
    /// and the `tokenauth=true` extension.
    pub fn delegation_token(mut self, id: &str, hmac: &str) -> Self {
        self.delegation_tokens
            .push((id.to_owned(), hmac.to_owned()));
        self
    }

    /// Adds `name`, or replaces its password.
    pub(crate) fn set_user(&mut self, name: &str, password: &str) {
        match self.users.iter_mut().find(|(u, _)| u == name) {
            Some(u) => u.1 = password.to_owned(),
            None => self.users.push((name.to_owned(), password.to_owned())),
        }
    }

    /// The SCRAM secret of `user`: a delegation token's HMAC with
    /// `tokenauth=true`, else a user's password.
    fn scram_secret(&self, user: &str, token_auth: bool) -> Option<&str> {
        if token_auth {
            self.delegation_tokens
                .iter()
                .find(|(id, _)| id == user)
                .map(|(_, hmac)| hmac.as_str())
        } else {
            self.password(user)
        }
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted(self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ITERATIONS, &mut out);
                out.to_vec()
            }
            Hash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, ITERATIONS, &mut out);
                out.to_vec()
            }
        }
    }
}

/// A SCRAM exchange between its two steps.
#[derive(Debug)]
struct ScramPending {
    hash: Hash,
    user: String,
    /// client-first-bare "," server-first.
    partial: String,
    nonce: String,
    /// The client-first message carried `tokenauth=true` (KIP-48).
    token_auth: bool,
}

/// One connection's SASL state, for a caller that runs connections itself
/// over the sans-IO entry point ([`crate::MockCluster::screen_sasl`]; the
/// TCP server keeps one per connection).
#[derive(Debug, Default)]
pub struct SaslSession(pub(crate) SaslConn);

/// What a SASL listener does with a request before the dispatch sees it
/// ([`crate::MockCluster::screen_sasl`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum SaslStep {
    /// Not SASL's business (or no SASL): hand the request to
    /// [`crate::MockCluster::handle`].
    Pass,
    /// Send this response frame (size prefix included).
    Reply(Vec<u8>),
    /// Send this response frame, then close the connection (a failed
    /// handshake or authentication).
    ReplyAndClose(Vec<u8>),
    /// Close the connection without answering (a request before
    /// authentication or after the session expired).
    Close,
}

/// One connection's authentication state.
#[derive(Debug, Default)]
pub(crate) struct SaslConn {
    mechanism: Option<String>,
    scram: Option<ScramPending>,
    authenticated: bool,
    expires: Option<Instant>,
    seq: u64,
}

/// What the connection does with a request.
pub(crate) enum Verdict {
    /// Not SASL's business: dispatch it.
    Pass,
    /// Send this frame (size prefix included).
    Answer(Vec<u8>),
    /// Send this frame, then close (a failed authentication).
    AnswerAndClose(Vec<u8>),
    /// Close without answering.
    Close,
}

impl SaslConn {
    /// Screens one request frame (without its size prefix).
    pub(crate) fn check(&mut self, sasl: &MockSasl, now: Instant, frame: &[u8]) -> Verdict {
        if frame.len() < 4 {
            return Verdict::Close;
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        match api_key {
            SASL_HANDSHAKE | SASL_AUTHENTICATE => {}
            API_VERSIONS => return Verdict::Pass,
            _ if !self.authenticated => return Verdict::Close,
            _ if self.expires.is_some_and(|e| now >= e) => return Verdict::Close,
            _ => return Verdict::Pass,
        }
        let mut buf = Bytes::copy_from_slice(frame);
        let Ok(header) = decode_request_header(&mut buf) else {
            return Verdict::Close;
        };
        let Ok(req) = RequestKind::decode(api_key, version, &mut buf) else {
            return Verdict::Close;
        };
        let corr = header.correlation_id;
        let mut out = Vec::new();
        match req {
            RequestKind::SaslHandshake(SaslHandshakeRequest { mechanism, .. }) => {
                let ok = sasl.mechanisms.contains(&mechanism);
                let resp = SaslHandshakeResponse {
                    error_code: if ok { 0 } else { UNSUPPORTED_SASL_MECHANISM },
                    mechanisms: sasl.mechanisms.clone(),
                    ..Default::default()
                };
                self.mechanism = ok.then_some(mechanism);
                self.scram = None;
                if encode_response(&mut out, corr, version, &resp).is_err() {
                    return Verdict::Close;
                }
                if ok {
                    Verdict::Answer(out)
                } else {
                    Verdict::AnswerAndClose(out)
                }
            }
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest { auth_bytes, .. }) => {
                let resp = self.authenticate(sasl, now, version, &auth_bytes);
                let failed = resp.error_code != 0;
                if encode_response(&mut out, corr, version, &resp).is_err() {
                    return Verdict::Close;
                }
                if failed {
                    Verdict::AnswerAndClose(out)
                } else {
                    Verdict::Answer(out)
                }
            }
            _ => Verdict::Close,
        }
    }

    fn fail(msg: &str) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse {
            error_code: SASL_AUTHENTICATION_FAILED,
            error_message: Some(msg.to_owned()),
            ..Default::default()
        }
    }

    fn done(
        &mut self,
        sasl: &MockSasl,
        now: Instant,
        version: i16,
        bytes: Vec<u8>,
    ) -> SaslAuthenticateResponse {
        self.authenticated = true;
        self.mechanism = None;
        self.scram = None;
        let lifetime = if version >= 1 && !sasl.session_lifetime.is_zero() {
            self.expires = Some(now + sasl.session_lifetime);
            i64::try_from(sasl.session_lifetime.as_millis()).unwrap_or(i64::MAX)
        } else {
            self.expires = None;
            0
        };
        SaslAuthenticateResponse {
            auth_bytes: Bytes::from(bytes),
            session_lifetime_ms: lifetime,
            ..Default::default()
        }
    }

    fn authenticate(
        &mut self,
        sasl: &MockSasl,
        now: Instant,
        version: i16,
        msg: &[u8],
    ) -> SaslAuthenticateResponse {
        let Some(mech) = self.mechanism.clone() else {
            return Self::fail("SaslAuthenticate before a successful SaslHandshake");
        };
        let bad = || Self::fail("Authentication failed: Invalid username or password");
        match mech.as_str() {
            "PLAIN" => {
                let parts: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
                let [_, user, pass] = parts[..] else {
                    return Self::fail("Authentication failed: malformed PLAIN message");
                };
                match sasl.password(&String::from_utf8_lossy(user)) {
                    Some(p) if p.as_bytes() == pass => self.done(sasl, now, version, Vec::new()),
                    _ => bad(),
                }
            }
            "OAUTHBEARER" => {
                let text = String::from_utf8_lossy(msg);
                let token = text
                    .strip_prefix("n,,\x01auth=Bearer ")
                    .and_then(|t| t.strip_suffix("\x01\x01"));
                match token {
                    Some(t) if !t.is_empty() => self.done(sasl, now, version, Vec::new()),
                    _ => Self::fail("Authentication failed: invalid OAUTHBEARER message"),
                }
            }
            "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
                let hash = if mech == "SCRAM-SHA-256" {
                    Hash::Sha256
                } else {
                    Hash::Sha512
                };
                let text = String::from_utf8_lossy(msg).into_owned();
                match self.scram.take() {
                    None => self.scram_first(hash, &text),
                    Some(p) => self.scram_final(sasl, now, version, p, &text),
                }
            }
            _ => Self::fail("mechanism not enabled"),
        }
    }

    fn scram_first(&mut self, hash: Hash, text: &str) -> SaslAuthenticateResponse {
        let Some(bare) = text.strip_prefix("n,,") else {
            return Self::fail("Authentication failed: malformed client-first message");
        };
        let mut user = None;
        let mut cnonce = None;
        let mut token_auth = false;
        for part in bare.split(',') {
            if let Some(u) = part.strip_prefix("n=") {
                user = Some(u.replace("=2C", ",").replace("=3D", "="));
            } else if let Some(r) = part.strip_prefix("r=") {
                cnonce = Some(r.to_owned());
            } else if let Some(v) = part.strip_prefix("tokenauth=") {
                // Kafka's ScramExtensions: only "true" turns it on.
                token_auth = v.eq_ignore_ascii_case("true");
            }
        }
        let (Some(user), Some(cnonce)) = (user, cnonce) else {
            return Self::fail("Authentication failed: malformed client-first message");
        };
        self.seq += 1;
        let nonce = format!("{cnonce}mock{}x{:x}", self.seq, std::process::id());
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(salt(&user)));
        self.scram = Some(ScramPending {
            hash,
            user,
            partial: format!("{bare},{server_first}"),
            nonce,
            token_auth,
        });
        SaslAuthenticateResponse {
            auth_bytes: Bytes::from(server_first.into_bytes()),
            ..Default::default()
        }
    }

    fn scram_final(
        &mut self,
        sasl: &MockSasl,
        now: Instant,
        version: i16,
        p: ScramPending,
        text: &str,
    ) -> SaslAuthenticateResponse {
        let bad = || Self::fail("Authentication failed: Invalid username or password");
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return Self::fail("Authentication failed: client-final message without a proof");
        };
        if without_proof != format!("c=biws,r={}", p.nonce) {
            return Self::fail("Authentication failed: client-final message with a wrong nonce");
        }
        let Some(password) = sasl.scram_secret(&p.user, p.token_auth) else {
            return bad();
        };
        let h = p.hash;
        let salted = h.salted(password.as_bytes(), &salt(&p.user));
        let stored = h.hash(&h.hmac(&salted, b"Client Key"));
        let auth = format!("{},{without_proof}", p.partial);
        let signature = h.hmac(&stored, auth.as_bytes());
        let Ok(proof) = B64.decode(proof) else {
            return bad();
        };
        if proof.len() != signature.len() {
            return bad();
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if h.hash(&client_key) != stored {
            return bad();
        }
        let server_sig = h.hmac(&h.hmac(&salted, b"Server Key"), auth.as_bytes());
        self.done(
            sasl,
            now,
            version,
            format!("v={}", B64.encode(server_sig)).into_bytes(),
        )
    }
}

/// A fixed per-user salt (the mock keeps no credential store).
fn salt(user: &str) -> Vec<u8> {
    Sha256::digest(format!("kring-mock-salt:{user}").as_bytes())[..16].to_vec()
}
