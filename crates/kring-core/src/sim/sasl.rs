//! The Sim's broker side of SASL: SaslHandshake and SaslAuthenticate for
//! PLAIN, SCRAM-SHA-256/512, OAUTHBEARER (a token equal to a user's
//! password passes), session lifetimes (KIP-368), and Kafka's
//! rule that any other request before authentication, or after the session
//! expired, closes the connection.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use kring_protocol::message::{decode_request_frame, encode_response, RequestKind};
use kring_protocol::messages::sasl_authenticate::SaslAuthenticateResponse;
use kring_protocol::messages::sasl_handshake::SaslHandshakeResponse;
use kring_protocol::messages::ApiKey;
use kring_protocol::ErrorCode;

use crate::producer::sasl::scram::ScramHash;

/// SASL on every simulated broker.
#[derive(Debug, Clone)]
pub struct SimSasl {
    /// Enabled mechanisms (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub mechanisms: Vec<String>,
    /// Users: (name, password), for every enabled mechanism.
    pub users: Vec<(String, String)>,
    /// Session lifetime returned by SaslAuthenticate v1+ (zero: none).
    /// A non-SASL request after it passed closes the connection.
    pub session_lifetime: Duration,
}

impl SimSasl {
    /// PLAIN and SCRAM-SHA-256/512 with one user, no session lifetime.
    pub fn new(user: &str, password: &str) -> SimSasl {
        SimSasl {
            mechanisms: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
                .map(String::from)
                .to_vec(),
            users: vec![(user.to_owned(), password.to_owned())],
            session_lifetime: Duration::ZERO,
        }
    }
}

/// One connection's authentication state.
#[derive(Debug, Default)]
pub struct ConnAuth {
    mechanism: Option<String>,
    /// SCRAM: (hash, user, client-first-bare + "," + server-first, nonce).
    scram: Option<(ScramHash, String, String, String)>,
    authenticated: bool,
    expires: Option<Instant>,
    seq: u64,
}

/// What to do with a request.
pub(crate) enum Verdict {
    /// Not a SASL matter: let the cluster answer it.
    Pass,
    /// Answer with this frame (size prefix included).
    Answer(Bytes),
    /// Close the connection without answering (as Kafka does).
    Close,
}

impl SimSasl {
    pub(crate) fn check(&self, st: &mut ConnAuth, now: Instant, frame: &Bytes) -> Verdict {
        let Ok((header, body)) = decode_request_frame(frame.slice(4..)) else {
            return Verdict::Close;
        };
        let corr = header.correlation_id;
        let v = header.request_api_version;
        let mut out = BytesMut::new();
        match body {
            RequestKind::SaslHandshake(req) => {
                let ok = self.mechanisms.contains(&req.mechanism);
                let resp = SaslHandshakeResponse {
                    error_code: if ok {
                        0
                    } else {
                        ErrorCode::UNSUPPORTED_SASL_MECHANISM.code()
                    },
                    mechanisms: self.mechanisms.clone(),
                    ..Default::default()
                };
                st.mechanism = ok.then_some(req.mechanism);
                st.scram = None;
                encode_response(&mut out, corr, v, &resp).expect("encodable");
                Verdict::Answer(out.freeze())
            }
            RequestKind::SaslAuthenticate(req) => {
                let resp = self.authenticate(st, now, v, &req.auth_bytes);
                encode_response(&mut out, corr, v, &resp).expect("encodable");
                Verdict::Answer(out.freeze())
            }
            _ if header.request_api_key == ApiKey::ApiVersions.key() => Verdict::Pass,
            _ if !st.authenticated => Verdict::Close,
            _ if st.expires.is_some_and(|e| now >= e) => Verdict::Close,
            _ => Verdict::Pass,
        }
    }

    fn fail(msg: &str) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse {
            error_code: ErrorCode::SASL_AUTHENTICATION_FAILED.code(),
            error_message: Some(msg.to_owned()),
            ..Default::default()
        }
    }

    fn done(
        &self,
        st: &mut ConnAuth,
        now: Instant,
        v: i16,
        bytes: Vec<u8>,
    ) -> SaslAuthenticateResponse {
        st.authenticated = true;
        st.scram = None;
        let lifetime = if v >= 1 && !self.session_lifetime.is_zero() {
            st.expires = Some(now + self.session_lifetime);
            self.session_lifetime.as_millis() as i64
        } else {
            st.expires = None;
            0
        };
        SaslAuthenticateResponse {
            auth_bytes: Bytes::from(bytes),
            session_lifetime_ms: lifetime,
            ..Default::default()
        }
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    fn authenticate(
        &self,
        st: &mut ConnAuth,
        now: Instant,
        v: i16,
        msg: &[u8],
    ) -> SaslAuthenticateResponse {
        let Some(mech) = st.mechanism.clone() else {
            return Self::fail("SaslAuthenticate before SaslHandshake");
        };
        let bad = || Self::fail("Authentication failed: Invalid username or password");
        match mech.as_str() {
            "PLAIN" => {
                let parts: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
                let [_, user, pass] = parts[..] else {
                    return Self::fail("malformed PLAIN message");
                };
                let user = String::from_utf8_lossy(user);
                match self.password(&user) {
                    Some(p) if p.as_bytes() == pass => {
                        st.mechanism = None;
                        self.done(st, now, v, Vec::new())
                    }
                    _ => bad(),
                }
            }
            "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
                let hash = if mech == "SCRAM-SHA-256" {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let text = String::from_utf8_lossy(msg).into_owned();
                match st.scram.take() {
                    None => {
                        let Some(bare) = text.strip_prefix("n,,") else {
                            return Self::fail("malformed client-first message");
                        };
                        let user = bare
                            .strip_prefix("n=")
                            .and_then(|r| r.split(',').next())
                            .unwrap_or_default()
                            .replace("=2C", ",")
                            .replace("=3D", "=");
                        let Some(cnonce) = bare.split(",r=").nth(1) else {
                            return Self::fail("client-first message without a nonce");
                        };
                        st.seq += 1;
                        let nonce = format!("{cnonce}sim{}", st.seq);
                        let server_first =
                            format!("r={nonce},s={},i=4096", B64.encode(b"sim-salt"));
                        st.scram = Some((hash, user, format!("{bare},{server_first}"), nonce));
                        SaslAuthenticateResponse {
                            auth_bytes: Bytes::from(server_first.into_bytes()),
                            ..Default::default()
                        }
                    }
                    Some((hash, user, partial, nonce)) => {
                        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
                            return Self::fail("client-final message without a proof");
                        };
                        if without_proof != format!("c=biws,r={nonce}") {
                            return Self::fail("client-final message with a wrong nonce");
                        }
                        let Some(pass) = self.password(&user) else {
                            return bad();
                        };
                        let salted = hash.salted_password(pass.as_bytes(), b"sim-salt", 4096);
                        let (stored, server_key) = hash.keys(&salted);
                        let auth = format!("{partial},{without_proof}");
                        let sig = hash.hmac(&stored, &[auth.as_bytes()]);
                        let Ok(proof) = B64.decode(proof) else {
                            return bad();
                        };
                        let client_key: Vec<u8> =
                            proof.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
                        if proof.len() != sig.len() || hash.hash(&client_key) != stored {
                            return bad();
                        }
                        let v_sig = B64.encode(hash.hmac(&server_key, &[auth.as_bytes()]));
                        st.mechanism = None;
                        self.done(st, now, v, format!("v={v_sig}").into_bytes())
                    }
                }
            }
            "OAUTHBEARER" => {
                // Accepts a token equal to some user's password.
                let text = String::from_utf8_lossy(msg);
                let token = text
                    .strip_prefix("n,,\x01auth=Bearer ")
                    .and_then(|t| t.strip_suffix("\x01\x01"));
                match token {
                    Some(t) if self.users.iter().any(|(_, p)| p == t) => {
                        st.mechanism = None;
                        self.done(st, now, v, Vec::new())
                    }
                    _ => Self::fail("invalid token"),
                }
            }
            _ => Self::fail("mechanism not enabled"),
        }
    }
}
