//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side,
//! without channel binding (`n,,`), as Kafka speaks them.
//!
//! Three messages: client-first (`n,,n=user,r=cnonce`, with
//! `,tokenauth=true` for a KIP-48 delegation token), the server's
//! first (`r=cnonce+snonce,s=salt,i=iterations`) answered with
//! client-final (`c=biws,r=nonce,p=proof`), and the server's final
//! (`v=signature`), which is verified so a server that does not know the
//! password cannot pass for the broker.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

/// Kafka refuses fewer (`ScramMechanism` minimum); so does kring, so a
/// server cannot talk the client into a cheap-to-crack proof.
pub(crate) const MIN_ITERATIONS: u32 = 4096;
/// Kafka's maximum. PBKDF2 runs on the I/O thread: a server asking for
/// more is refused rather than obeyed.
pub(crate) const MAX_ITERATIONS: u32 = 16384;

impl ScramHash {
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC of this hash.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// `(StoredKey, ServerKey)` for a salted password (what a server keeps;
    /// the tests play the server).
    #[cfg(test)]
    pub(crate) fn keys(self, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted, &[b"Client Key"]);
        (self.hash(&client_key), self.hmac(salted, &[b"Server Key"]))
    }
}

/// `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
pub(crate) fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Splits `a=x,b=y` into attributes; `None` if malformed.
fn attrs(msg: &str) -> Option<Vec<(char, &str)>> {
    msg.split(',')
        .map(|part| {
            let mut chars = part.chars();
            let k = chars.next()?;
            let rest = chars.as_str().strip_prefix('=')?;
            Some((k, rest))
        })
        .collect()
}

fn attr<'a>(attrs: &[(char, &'a str)], k: char) -> Option<&'a str> {
    attrs.iter().find(|(a, _)| *a == k).map(|(_, v)| *v)
}

/// Where a SCRAM exchange stands.
enum Stage {
    /// Client-first sent; waiting for the server's first message.
    First {
        bare: String,
    },
    /// Client-final sent; waiting for the server's signature.
    Final {
        server_signature: Vec<u8>,
    },
    Done,
}

/// One SCRAM client exchange.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    stage: Stage,
}

impl ScramClient {
    /// `nonce`: printable ASCII without `,` (the caller's random source).
    /// `token_auth`: `user` and `password` are a delegation token's id and
    /// HMAC, announced by the `tokenauth=true` extension (KIP-48), which
    /// is part of the client-first-bare message and so of the proof.
    pub(crate) fn new(
        hash: ScramHash,
        user: &str,
        password: &str,
        nonce: String,
        token_auth: bool,
    ) -> ScramClient {
        let ext = if token_auth { ",tokenauth=true" } else { "" };
        let bare = format!("n={},r={nonce}{ext}", escape_name(user));
        ScramClient {
            hash,
            password: password.as_bytes().to_vec(),
            nonce,
            stage: Stage::First { bare },
        }
    }

    /// The client-first message.
    pub(crate) fn first_message(&self) -> Vec<u8> {
        match &self.stage {
            Stage::First { bare } => format!("n,,{bare}").into_bytes(),
            _ => Vec::new(),
        }
    }

    /// The server's next message: `Ok(Some(reply))` to send, `Ok(None)`
    /// once the server proved itself, `Err` on anything else. Error
    /// strings never contain the password or keys.
    pub(crate) fn on_server(&mut self, msg: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let msg = std::str::from_utf8(msg).map_err(|_| "server message is not UTF-8".to_owned())?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::First { bare } => {
                let a = attrs(msg).ok_or("malformed server-first message")?;
                if attr(&a, 'm').is_some() {
                    return Err("server-first message has a mandatory extension".into());
                }
                let nonce = attr(&a, 'r').ok_or("server-first message without a nonce")?;
                if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
                    return Err("server nonce does not extend the client nonce".into());
                }
                let salt = attr(&a, 's')
                    .and_then(|s| B64.decode(s).ok())
                    .ok_or("server-first message without a valid salt")?;
                let iterations: u32 = attr(&a, 'i')
                    .and_then(|i| i.parse().ok())
                    .ok_or("server-first message without valid iterations")?;
                if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                    return Err(format!(
                        "server asks for {iterations} iterations (kring accepts {MIN_ITERATIONS} to {MAX_ITERATIONS})"
                    ));
                }
                let salted = self.hash.salted_password(&self.password, &salt, iterations);
                let without_proof = format!("c=biws,r={nonce}");
                let auth_message = format!("{bare},{msg},{without_proof}");
                let client_key = self.hash.hmac(&salted, &[b"Client Key"]);
                let stored_key = self.hash.hash(&client_key);
                let signature = self.hash.hmac(&stored_key, &[auth_message.as_bytes()]);
                let proof: Vec<u8> = client_key
                    .iter()
                    .zip(&signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                let server_key = self.hash.hmac(&salted, &[b"Server Key"]);
                let server_signature = self.hash.hmac(&server_key, &[auth_message.as_bytes()]);
                self.stage = Stage::Final { server_signature };
                Ok(Some(
                    format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
                ))
            }
            Stage::Final { server_signature } => {
                let a = attrs(msg).ok_or("malformed server-final message")?;
                let v = attr(&a, 'v')
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or("server-final message without a signature")?;
                // Constant time: compare through the MAC's own check.
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"kring-scram-compare")
                    .expect("HMAC takes any key");
                m.update(&v);
                let tag = m.finalize().into_bytes();
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"kring-scram-compare")
                    .expect("HMAC takes any key");
                m.update(&server_signature);
                if m.verify_slice(&tag).is_err() {
                    return Err(
                        "the server's signature is wrong (it does not know the credentials)".into(),
                    );
                }
                Ok(None)
            }
            Stage::Done => Err("unexpected SCRAM message after the exchange ended".into()),
        }
    }
}

impl Drop for ScramClient {
    fn drop(&mut self) {
        // Best effort: do not leave the password in freed memory.
        self.password.iter_mut().for_each(|b| *b = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc7677_sha256_exchange() {
        let mut c = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
            false,
        );
        assert_eq!(c.first_message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let reply = c
            .on_server(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            c.on_server(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            None
        );
    }

    #[test]
    fn rfc7677_wrong_server_signature_is_refused() {
        let mut c = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
            false,
        );
        c.on_server(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        let e = c
            .on_server(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("signature"), "{e}");
        assert!(!e.contains("pencil"));
    }

    /// A server built from the RFC's definitions checks the client's proof
    /// (SHA-512 has no published vector).
    #[test]
    fn sha512_proof_verifies_against_rfc5802_server_math() {
        for (hash, token_auth) in [
            (ScramHash::Sha256, false),
            (ScramHash::Sha512, false),
            (ScramHash::Sha256, true),
        ] {
            let mut c = ScramClient::new(hash, "al,i=ce", "s3cret", "cnonce123".into(), token_auth);
            let first = String::from_utf8(c.first_message()).unwrap();
            // KIP-48: the extension is part of client-first-bare, so of
            // the signed auth message.
            let ext = if token_auth { ",tokenauth=true" } else { "" };
            assert_eq!(first, format!("n,,n=al=2Ci=3Dce,r=cnonce123{ext}"));
            let server_first = "r=cnonce123SERVER,s=c2FsdHNhbHQ=,i=4096";
            let fin =
                String::from_utf8(c.on_server(server_first.as_bytes()).unwrap().unwrap()).unwrap();
            let (without_proof, proof) = fin.rsplit_once(",p=").unwrap();
            let salted = hash.salted_password(b"s3cret", b"saltsalt", 4096);
            let (stored, server_key) = hash.keys(&salted);
            let auth = format!("{},{server_first},{without_proof}", &first[3..]);
            let sig = hash.hmac(&stored, &[auth.as_bytes()]);
            let client_key: Vec<u8> = B64
                .decode(proof)
                .unwrap()
                .iter()
                .zip(&sig)
                .map(|(a, b)| a ^ b)
                .collect();
            assert_eq!(hash.hash(&client_key), stored, "{hash:?}: proof verifies");
            let v = B64.encode(hash.hmac(&server_key, &[auth.as_bytes()]));
            assert_eq!(c.on_server(format!("v={v}").as_bytes()).unwrap(), None);
        }
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        for (msg, want) in [
            ("r=other,s=c2FsdA==,i=4096", "nonce"),
            ("r=abc,s=c2FsdA==,i=4096", "nonce"),
            ("r=abcX,s=!!,i=4096", "salt"),
            ("r=abcX,s=c2FsdA==,i=1", "iterations"),
            ("r=abcX,s=c2FsdA==,i=4000000000", "iterations"),
            ("r=abcX,s=c2FsdA==", "iterations"),
            ("e=unknown-user", "unknown-user"),
            ("garbage", "malformed"),
            ("m=ext,r=abcX,s=c2FsdA==,i=4096", "extension"),
        ] {
            let mut c = ScramClient::new(ScramHash::Sha256, "u", "p", "abc".into(), false);
            let e = c.on_server(msg.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{msg}: {e}");
        }
    }
}
