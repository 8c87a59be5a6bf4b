//! An OAuth 2 token endpoint for tests: a real HTTP/1.1 server on
//! 127.0.0.1 that answers the `client_credentials` grant (RFC 6749 §4.4)
//! for one client with an unsigned JWS (what Kafka's unsecured OAUTHBEARER
//! validator accepts), and 401 `invalid_client` to anyone else. It counts
//! the requests it answered with a token.

use std::io::{BufRead, BufReader, Read, Write};
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

/// base64 of `data` in `alphabet` (no padding when `pad` is false).
fn b64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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
        b64(br#"{"alg":"none"}"#, URL, false),
        b64(claims.as_bytes(), URL, false)
    )
}

impl TokenServer {
    /// Serves tokens for `sub` to `client_id`/`secret` asking for `scope`.
    pub fn start(client_id: &str, secret: &str, scope: &str, sub: &str) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
        let issued = Arc::new(AtomicU32::new(0));
        let want_auth = format!(
            "Basic {}",
            b64(format!("{client_id}:{secret}").as_bytes(), STD, true)
        );
        let want_body = format!("grant_type=client_credentials&scope={scope}");
        let (count, sub) = (issued.clone(), sub.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &want_auth, &want_body, &sub, &count);
            }
        });
        TokenServer { url, issued }
    }
}

fn answer(
    stream: TcpStream,
    want_auth: &str,
    want_body: &str,
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
    let ok = post && form && auth == want_auth && body == want_body.as_bytes();
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
