//! An OAuth 2 token endpoint for tests: a real HTTP/1.1 server on
//! 127.0.0.1 that answers the `client_credentials` grant (RFC 6749 §4.4)
//! for one client, or a request carrying a client assertion (RFC 7523)
//! whose ES256 signature and claims it verifies, with an unsigned JWS
//! (what Kafka's unsecured OAUTHBEARER validator accepts), and 401
//! `invalid_client` to anyone else. It counts the requests it answered
//! with a token.

use std::io::{BufRead, BufReader, Read, Write};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A running token endpoint.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/oauth2/token`.
    pub url: String,
    /// Tokens handed out.
    pub issued: Arc<AtomicU32>,
}

/// An unsigned JWS for `sub`, valid for `lifetime` from now.
pub fn unsigned_jwt(sub: &str, lifetime: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = format!(
        r#"{{"sub":"{sub}","iat":{now},"exp":{}}}"#,
        now + lifetime.as_secs()
    );
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// What a token request carried.
pub struct TokenRequest {
    /// The `Authorization` header ("" if none).
    pub auth: String,
    /// The form body.
    pub body: String,
}

impl TokenServer {
    /// Serves tokens for `sub` to `client_id`/`secret` asking for `scope`.
    pub fn start(client_id: &str, secret: &str, scope: &str, sub: &str) -> TokenServer {
        let want_auth = format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")));
        let want_body = format!("grant_type=client_credentials&scope={scope}");
        TokenServer::start_with(sub, move |r| r.auth == want_auth && r.body == want_body)
    }

    /// Serves tokens for `sub` to every request `accept` passes.
    pub fn start_with(
        sub: &str,
        accept: impl Fn(&TokenRequest) -> bool + Send + 'static,
    ) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
        let issued = Arc::new(AtomicU32::new(0));
        let (count, sub) = (issued.clone(), sub.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &accept, &sub, &count);
            }
        });
        TokenServer { url, issued }
    }
}

/// A check of client assertions signed with the P-256 key whose public
/// point is `public` (ES256), with `iss` and `aud` claims as given and not
/// expired, sent as `grant` (`jwt-bearer`: KIP-1139's grant;
/// `client_assertion`: KIP-1258's client_credentials) asking for `scope`.
pub fn es256_assertion_check(
    grant: &'static str,
    public: Vec<u8>,
    iss: &'static str,
    aud: String,
    scope: &'static str,
) -> impl Fn(&TokenRequest) -> bool + Send + 'static {
    move |r| {
        let form: std::collections::HashMap<&str, &str> = r
            .body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let jwt = match grant {
            "jwt-bearer" => {
                if form.get("grant_type")
                    != Some(&"urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
                {
                    return false;
                }
                form.get("assertion")
            }
            _ => {
                if form.get("grant_type") != Some(&"client_credentials")
                    || form.get("client_assertion_type")
                        != Some(&"urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer")
                {
                    return false;
                }
                form.get("client_assertion")
            }
        };
        let Some(jwt) = jwt else { return false };
        if !r.auth.is_empty() || form.get("scope") != Some(&scope) {
            return false;
        }
        let Some((input, sig)) = jwt.rsplit_once('.') else {
            return false;
        };
        let b64 = URL_SAFE_NO_PAD;
        let Ok(sig) = b64.decode(sig) else {
            return false;
        };
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &public,
        );
        if key.verify(input.as_bytes(), &sig).is_err() {
            return false;
        }
        let claims: serde_json::Value = input
            .split('.')
            .nth(1)
            .and_then(|p| b64.decode(p).ok())
            .and_then(|p| serde_json::from_slice(&p).ok())
            .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        claims["iss"] == iss
            && claims["aud"] == aud.as_str()
            && claims["exp"].as_u64().is_some_and(|exp| exp > now)
            && claims["nbf"].as_u64().is_some_and(|nbf| nbf <= now)
    }
}

fn answer(
    stream: TcpStream,
    accept: &dyn Fn(&TokenRequest) -> bool,
    sub: &str,
    issued: &AtomicU32,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let post = line.starts_with("POST /oauth2/token ");
    let (mut auth, mut len, mut form) = (String::new(), 0usize, false);
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        match k.to_ascii_lowercase().as_str() {
            "authorization" => auth = v.trim().to_owned(),
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "content-type" => form = v.trim() == "application/x-www-form-urlencoded",
            _ => {}
        }
    }
    let mut body = vec![0; len.min(1 << 16)];
    r.read_exact(&mut body)?;
    let request = TokenRequest {
        auth,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let ok = post && form && accept(&request);
    let (status, json) = if ok {
        issued.fetch_add(1, Ordering::Relaxed);
        let token = unsigned_jwt(sub, Duration::from_secs(3600));
        (
            "200 OK",
            format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"error":"invalid_client","error_description":"client authentication failed"}"#
                .to_owned(),
        )
    };
    let mut w = stream;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )?;
    w.flush()
}
