//! A client assertion (RFC 7523) for one token request, as Java 4.4's
//! `DefaultAssertionCreator` makes it: the ready-made JWT of
//! `sasl.oauthbearer.assertion.file` as it is, or a JWT signed here with
//! the private key, whose header and claims are layered in Java's order —
//! the configured `aud`, `iss` and `sub`, then the template file's
//! `header` and `payload`, then `alg`, `typ`, `iat`, `exp`, `nbf` and
//! (if asked) `jti`, each layer over the one before. Files are read again
//! for each assertion, so a rotated key or assertion needs no restart.
//! Errors name files and shapes, never key material or an assertion.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use serde_json::{Map, Value};

use crate::config::assertion::{AssertionSettings, SigningAlgorithm};

/// The assertion to send at `now_ms` (milliseconds since the epoch).
pub(crate) fn assertion(s: &AssertionSettings, now_ms: u64) -> Result<String, String> {
    if let Some(path) = &s.file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("the assertion file {} cannot be read: {e}", path.display()))?;
        let jwt = text.trim();
        if jwt.split('.').count() != 3 || jwt.contains(char::is_whitespace) {
            return Err(format!(
                "the assertion file {} does not hold a JWT (three dot-separated parts)",
                path.display()
            ));
        }
        return Ok(jwt.to_owned());
    }
    let (mut header, mut payload) = (Map::new(), Map::new());
    for (claim, value) in [("aud", &s.aud), ("iss", &s.iss), ("sub", &s.sub)] {
        if let Some(v) = value {
            payload.insert(claim.to_owned(), Value::from(v.as_str()));
        }
    }
    if let Some(path) = &s.template_file {
        let (h, p) = template(path)?;
        header.extend(h);
        payload.extend(p);
    }
    header.insert("alg".into(), Value::from(s.algorithm.name()));
    header.insert("typ".into(), Value::from("JWT"));
    let now = now_ms / 1000;
    payload.insert("iat".into(), Value::from(now));
    payload.insert("exp".into(), Value::from(now + u64::from(s.exp_seconds)));
    payload.insert(
        "nbf".into(),
        Value::from(now.saturating_sub(u64::from(s.nbf_seconds))),
    );
    let rng = SystemRandom::new();
    if s.jti {
        payload.insert("jti".into(), Value::from(uuid_v4(&rng)?));
    }
    let b64 = |v: &Map<String, Value>| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Value::Object(v.clone()).to_string())
    };
    let signing_input = format!("{}.{}", b64(&header), b64(&payload));
    let key_path = s
        .private_key_file
        .as_ref()
        .ok_or("no sasl.oauthbearer.assertion.private.key.file to sign the assertion with")?;
    let signature = sign(
        s.algorithm,
        key_path,
        s.passphrase.as_deref(),
        signing_input.as_bytes(),
        &rng,
    )?;
    Ok(format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A JSON object's members.
type Object = Map<String, Value>;

/// The `header` and `payload` objects of a template file (either may be
/// missing).
fn template(path: &std::path::Path) -> Result<(Object, Object), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("the assertion template {shown} cannot be read: {e}"))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the assertion template {shown} is not JSON: {e}"))?;
    let part = |name: &str| match json.get(name) {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!(
            "the assertion template {shown}: `{name}` is not a JSON object"
        )),
    };
    if !json.is_object() {
        return Err(format!(
            "the assertion template {shown} is not a JSON object"
        ));
    }
    Ok((part("header")?, part("payload")?))
}

/// Signs `message` with the key in `path` (PEM; decrypted with
/// `passphrase` if it is an encrypted PKCS #8 key).
fn sign(
    algorithm: SigningAlgorithm,
    path: &std::path::Path,
    passphrase: Option<&str>,
    message: &[u8],
    rng: &SystemRandom,
) -> Result<Vec<u8>, String> {
    use crate::driver::tls::encrypted_key::{load, KeyError, LEGACY};
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| format!("the assertion's private key {shown} cannot be read: {e}"))?;
    let key = load(&pem, passphrase).map_err(|e| {
        let why = match e {
            KeyError::NoKey => "holds no PEM private key (PKCS #8 `BEGIN PRIVATE KEY`)".to_owned(),
            KeyError::Legacy => format!("is {LEGACY}"),
            KeyError::NeedsPassword => {
                "is encrypted: set sasl.oauthbearer.assertion.private.key.passphrase".to_owned()
            }
            KeyError::Decrypt(why) => format!("holds {why}"),
        };
        format!("the assertion's private key {shown} {why}")
    })?;
    let unusable = |what: &str| {
        format!(
            "the assertion's private key {shown} is not {what} key for {}",
            algorithm.name()
        )
    };
    match algorithm {
        SigningAlgorithm::Rs256 => {
            let pair = match &key {
                PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
                PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
                _ => return Err(unusable("an RSA")),
            }
            .map_err(|_| unusable("a usable RSA"))?;
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig)
                .map_err(|_| format!("signing the assertion with {shown} failed"))?;
            Ok(sig)
        }
        SigningAlgorithm::Es256 => {
            let PrivateKeyDer::Pkcs8(k) = &key else {
                return Err(unusable("a PKCS #8 P-256"));
            };
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_pkcs8_der(),
                rng,
            )
            .map_err(|_| unusable("a P-256"))?;
            pair.sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| format!("signing the assertion with {shown} failed"))
        }
    }
}

/// A random (version 4) UUID, as Java's `UUID.randomUUID()` prints it.
fn uuid_v4(rng: &SystemRandom) -> Result<String, String> {
    let mut b = [0u8; 16];
    rng.fill(&mut b)
        .map_err(|_| "no randomness for the assertion's jti".to_owned())?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject as _;
    use std::path::PathBuf;

    /// A 2048-bit RSA key made for these tests only (`openssl genpkey
    /// -algorithm RSA -pkeyopt rsa_keygen_bits:2048`); it signs nothing
    /// anywhere else.
    const TEST_RSA_KEY: &str = include_str!("testdata/rsa-2048-test-key.pem");

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kring-assertion-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn decode(part: &str) -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    const NOW: u64 = 1_700_000_000_123;

    /// RS256: Java's claims and header, layered over the template, and a
    /// signature the key's public half verifies.
    #[test]
    fn an_rs256_assertion_carries_javas_claims_and_verifies() {
        let d = dir("rs256");
        let key = d.join("key.pem");
        std::fs::write(&key, TEST_RSA_KEY).unwrap();
        let template = d.join("template.json");
        std::fs::write(
            &template,
            r#"{"header":{"kid":"k-1","alg":"none"},"payload":{"iss":"from-template","tenant":"t9","iat":1}}"#,
        )
        .unwrap();
        let s = AssertionSettings {
            aud: Some("https://idp.example/token".into()),
            iss: Some("svc-orders".into()),
            sub: Some("svc-orders@example".into()),
            private_key_file: Some(key.clone()),
            template_file: Some(template),
            ..AssertionSettings::default()
        };
        let jwt = assertion(&s, NOW).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], "k-1");
        let claims = decode(parts[1]);
        let now = NOW / 1000;
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 300);
        assert_eq!(claims["nbf"], now - 60);
        assert_eq!(claims["aud"], "https://idp.example/token");
        // The template's claims lie over the configured ones.
        assert_eq!(claims["iss"], "from-template");
        assert_eq!(claims["sub"], "svc-orders@example");
        assert_eq!(claims["tenant"], "t9");
        assert!(claims.get("jti").is_none());
        let der = PrivateKeyDer::from_pem_slice(TEST_RSA_KEY.as_bytes()).unwrap();
        let PrivateKeyDer::Pkcs8(k) = der else {
            panic!("the test key is PKCS #8")
        };
        let pair = RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).unwrap();
        let public = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            pair.public().as_ref(),
        );
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        public.verify(input.as_bytes(), &sig).unwrap();
        let mut forged = input.into_bytes();
        forged[10] ^= 1;
        assert!(public.verify(&forged, &sig).is_err());
        // The same key as PKCS #1 (`BEGIN RSA PRIVATE KEY`) signs alike.
        std::fs::write(&key, include_str!("testdata/rsa-2048-test-key-pkcs1.pem")).unwrap();
        let jwt = assertion(&s, NOW).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        public.verify(input.as_bytes(), &sig).unwrap();
        std::fs::remove_dir_all(d).unwrap();
    }

    /// ES256: a fixed-size (r, s) signature as JWS wants it, the claim
    /// lifetimes configured, and a fresh jti per assertion.
    #[test]
    fn an_es256_assertion_has_a_jws_signature_and_fresh_jtis() {
        let d = dir("es256");
        let key = d.join("key.pem");
        let pair = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&key, pair.serialize_pem()).unwrap();
        let s = AssertionSettings {
            algorithm: SigningAlgorithm::Es256,
            exp_seconds: 600,
            nbf_seconds: 0,
            jti: true,
            private_key_file: Some(key),
            ..AssertionSettings::default()
        };
        let a = assertion(&s, NOW).unwrap();
        let b = assertion(&s, NOW).unwrap();
        let parts: Vec<&str> = a.split('.').collect();
        assert_eq!(decode(parts[0])["alg"], "ES256");
        let claims = decode(parts[1]);
        assert_eq!(claims["exp"], NOW / 1000 + 600);
        assert_eq!(claims["nbf"], NOW / 1000);
        let jti = claims["jti"].as_str().unwrap().to_owned();
        assert_eq!(jti.len(), 36);
        // Version 4, variant RFC 4122 (10xx), on every draw.
        let rng = SystemRandom::new();
        for _ in 0..64 {
            let u = uuid_v4(&rng).unwrap();
            let dashes: Vec<usize> = u.match_indices('-').map(|(i, _)| i).collect();
            assert_eq!(dashes, [8, 13, 18, 23], "{u}");
            assert_eq!(&u[14..15], "4", "{u}");
            assert!("89ab".contains(&u[19..20]), "{u}");
        }
        assert_ne!(decode(b.split('.').nth(1).unwrap())["jti"], claims["jti"]);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[2])
            .unwrap();
        assert_eq!(sig.len(), 64);
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key_raw(),
        );
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        std::fs::remove_dir_all(d).unwrap();
    }

    /// A ready-made assertion file is sent as it is; bad files, wrong
    /// keys and templates fail with the file named and nothing of the key.
    #[test]
    fn files_and_their_failures() {
        let d = dir("files");
        let file = d.join("assertion.jwt");
        std::fs::write(&file, "  aGVhZA.cGF5bG9hZA.c2ln\n").unwrap();
        let from_file = AssertionSettings {
            file: Some(file.clone()),
            ..AssertionSettings::default()
        };
        assert_eq!(
            assertion(&from_file, NOW).unwrap(),
            "aGVhZA.cGF5bG9hZA.c2ln"
        );
        for not_a_jwt in ["not a jwt", "a.b c.d", "a.b"] {
            std::fs::write(&file, not_a_jwt).unwrap();
            let e = assertion(&from_file, NOW).unwrap_err();
            assert!(e.contains("does not hold a JWT"), "{not_a_jwt}: {e}");
        }

        let rsa = d.join("rsa.pem");
        std::fs::write(&rsa, TEST_RSA_KEY).unwrap();
        let secret_line = TEST_RSA_KEY.lines().nth(1).unwrap();
        let es = AssertionSettings {
            algorithm: SigningAlgorithm::Es256,
            private_key_file: Some(rsa.clone()),
            ..AssertionSettings::default()
        };
        let bad_template = d.join("t.json");
        std::fs::write(&bad_template, r#"{"payload":[1]}"#).unwrap();
        let garbage = d.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        for (s, want) in [
            (es, "not a P-256 key for ES256"),
            (
                AssertionSettings {
                    private_key_file: Some(d.join("missing.pem")),
                    ..AssertionSettings::default()
                },
                "cannot be read",
            ),
            (
                AssertionSettings {
                    private_key_file: Some(garbage),
                    ..AssertionSettings::default()
                },
                "holds no PEM private key",
            ),
            (
                AssertionSettings {
                    private_key_file: Some(rsa.clone()),
                    template_file: Some(bad_template),
                    ..AssertionSettings::default()
                },
                "`payload` is not a JSON object",
            ),
        ] {
            let e = assertion(&s, NOW).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains(secret_line), "{e}");
        }
        std::fs::remove_dir_all(d).unwrap();
    }
}
