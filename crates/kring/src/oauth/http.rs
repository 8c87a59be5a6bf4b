//! The HTTP side of a token fetch (feature `oidc`): the request as Java
//! 4.4's formatters write it — `client_credentials` with the id and secret
//! in Basic authorization (standard base64, optionally URL-encoded id and
//! secret), or with a client assertion (KIP-1258), or the jwt-bearer grant
//! (KIP-1139); the scope form-encoded — the answer's `access_token`, and
//! RFC 6749 §5.2 error answers made into messages that never carry the
//! secret or an assertion.

use base64::Engine as _;

use super::endpoint::Failure;
use crate::config::oauth::{OidcSettings, TokenRequest};

/// Bytes of an answer read at most (a token response is a few KiB).
const MAX_BODY: u64 = 1 << 20;

/// HTTP statuses that retrying cannot change (the Java client's list).
fn unretryable(status: u16) -> bool {
    matches!(status, 400..=407 | 409..=415 | 501 | 505)
}

/// The HTTP client: kring's rustls with the ring provider and the
/// system's trust store, the `sasl.login.*` timeouts, no redirects (a
/// redirect would resend the credentials elsewhere), statuses as answers.
/// ureq's default proxy stays: `ALL_PROXY`, `HTTPS_PROXY` or `HTTP_PROXY`
/// from the environment, minus `NO_PROXY` (librdkafka's libcurl reads the
/// same variables; the Java client reads system properties instead).
pub(super) fn agent(s: &OidcSettings) -> Result<ureq::Agent, String> {
    use std::sync::Arc;

    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let certs: Vec<Certificate<'static>> = if s.url().starts_with("https://") {
        crate::driver::tls::ca_certs(s.ca.as_ref(), "https.ca.location", "https.ca.pem", None)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crate::driver::tls::crypto_provider())
        .root_certs(RootCerts::Specific(Arc::new(certs)))
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(s.connect_timeout))
        .timeout_recv_response(Some(s.read_timeout))
        .timeout_recv_body(Some(s.read_timeout))
        .user_agent("kring")
        .build()
        .into())
}

/// The form body of `s`'s token request and its Basic authorization, if
/// any, as Java 4.4's request formatters write them; `assertion` is the
/// client assertion of the two requests that carry one.
fn request(s: &OidcSettings, assertion: Option<&str>) -> (String, Option<String>) {
    let scope = s
        .scope
        .as_deref()
        .map(|v| format!("&scope={}", form_encode(v.trim())))
        .unwrap_or_default();
    let assertion = form_encode(assertion.unwrap_or_default());
    match s.token_request() {
        TokenRequest::ClientSecret => {
            let secret = s.client_secret.as_deref().unwrap_or_default();
            let id = s.client_id.as_deref().unwrap_or_default();
            let (id, secret) = if s.header_urlencode {
                (form_encode(id), form_encode(secret))
            } else {
                (id.to_owned(), secret.to_owned())
            };
            // RFC 7617: standard base64, not the URL alphabet.
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            (
                format!("grant_type=client_credentials{scope}"),
                Some(format!("Basic {basic}")),
            )
        }
        TokenRequest::ClientAssertion => {
            let id = s
                .client_id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(|id| format!("&client_id={}", form_encode(id)))
                .unwrap_or_default();
            (
                format!(
                    "client_assertion_type={}&client_assertion={assertion}\
                     &grant_type=client_credentials{id}{scope}",
                    form_encode(CLIENT_ASSERTION_TYPE)
                ),
                None,
            )
        }
        TokenRequest::JwtBearer => (
            format!(
                "grant_type={}&assertion={assertion}{scope}",
                form_encode(JWT_BEARER_GRANT)
            ),
            None,
        ),
    }
}

/// RFC 7523 §2.2's `client_assertion_type`.
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 7523 §2.1's `grant_type`.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// One token request with `s`'s credentials at `now_ms` (the time a
/// client assertion is signed at).
pub(super) fn post(agent: &ureq::Agent, s: &OidcSettings, now_ms: u64) -> Result<String, Failure> {
    let url = s.url();
    let assertion = match s.token_request() {
        TokenRequest::ClientSecret => None,
        _ => Some(
            super::assertion::assertion(&s.assertion, now_ms).map_err(|message| Failure {
                retryable: false,
                message,
            })?,
        ),
    };
    let (body, authorization) = request(s, assertion.as_deref());
    // Neither the secret nor the assertion (a credential while it is
    // valid) may reach a message.
    let secret = s.client_secret.as_deref().unwrap_or_default();
    let redact = |m: String| redact(redact(m, secret), assertion.as_deref().unwrap_or_default());
    let mut req = agent
        .post(url)
        .header("Accept", "application/json")
        .header("Cache-Control", "no-cache")
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some(a) = &authorization {
        req = req.header("Authorization", a);
    }
    let mut resp = req
        .send(body.as_bytes())
        .map_err(|e| Failure::retry(redact(format!("token request to {url} failed: {e}"))))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| {
            Failure::retry(redact(format!(
                "reading the answer of {url} (HTTP {status}) failed: {e}"
            )))
        })?;
    if status == 200 || status == 201 {
        return access_token(&text).map_err(|m| Failure {
            retryable: false,
            message: format!("{url} answered HTTP {status}, but {m}"),
        });
    }
    let message = redact(format!(
        "{url} answered HTTP {status}{}",
        error_summary(&text)
    ));
    Err(Failure {
        retryable: !unretryable(status),
        message,
    })
}

/// `access_token` of a token response.
fn access_token(body: &str) -> Result<String, String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "its answer is not JSON".to_owned())?;
    match json.get("access_token") {
        Some(serde_json::Value::String(t)) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        Some(_) => Err("its `access_token` is empty or not a string".to_owned()),
        None => Err("its answer has no `access_token`".to_owned()),
    }
}

/// RFC 6749 §5.2's `error` and `error_description` (or Okta's
/// `errorCode`/`errorSummary`) of an error answer, shortened.
fn error_summary(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|j| j.get(k))
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(200).collect::<String>())
    };
    match (field("error"), field("errorCode")) {
        (Some(e), _) => format!(
            ": {e}{}",
            field("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        (None, Some(e)) => format!(
            ": {e}{}",
            field("errorSummary")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// `message` with every occurrence of `secret` replaced.
fn redact(message: String, secret: &str) -> String {
    if secret.is_empty() {
        message
    } else {
        message.replace(secret, "<redacted>")
    }
}

/// `application/x-www-form-urlencoded` encoding, as Java's `URLEncoder`:
/// letters, digits and `.-*_` stay, a space is `+`, every other byte of
/// the UTF-8 is `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_is_javas() {
        assert_eq!(form_encode("kafka.write a/b"), "kafka.write+a%2Fb");
        assert_eq!(form_encode("p@ss:wörd*_-"), "p%40ss%3Aw%C3%B6rd*_-");
    }

    /// The three requests, byte for byte as Java 4.4's formatters write
    /// them.
    #[test]
    fn request_bodies_are_javas() {
        let secret = OidcSettings {
            client_id: Some("app 1".into()),
            client_secret: Some("p@ss".into()),
            scope: Some(" kafka.write ".into()),
            ..OidcSettings::default()
        };
        let (body, auth) = request(&secret, None);
        assert_eq!(body, "grant_type=client_credentials&scope=kafka.write");
        // base64("app 1:p@ss")
        assert_eq!(auth.as_deref(), Some("Basic YXBwIDE6cEBzcw=="));
        let encoded = OidcSettings {
            header_urlencode: true,
            ..secret.clone()
        };
        // base64("app+1:p%40ss")
        assert_eq!(
            request(&encoded, None).1.as_deref(),
            Some("Basic YXBwKzE6cCU0MHNz")
        );
        let mut assertion = secret.clone();
        assertion.assertion.iss = Some("svc".into());
        assert_eq!(assertion.token_request(), TokenRequest::ClientAssertion);
        let (body, auth) = request(&assertion, Some("h.p.s"));
        assert_eq!(
            body,
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion=h.p.s&grant_type=client_credentials&client_id=app+1&scope=kafka.write"
        );
        assert_eq!(auth, None);
        let bearer = OidcSettings {
            jwt_bearer: true,
            scope: None,
            ..assertion
        };
        assert_eq!(
            request(&bearer, Some("h.p.s")),
            (
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=h.p.s"
                    .to_owned(),
                None
            )
        );
    }

    #[test]
    fn token_answers_and_error_answers() {
        assert_eq!(
            access_token(r#"{"access_token":" a.b.c ","expires_in":3600}"#).unwrap(),
            "a.b.c"
        );
        for body in [r#"{"token":"x"}"#, r#"{"access_token":""}"#, "<html>"] {
            assert!(access_token(body).is_err(), "{body}");
        }
        assert_eq!(
            error_summary(r#"{"error":"invalid_client","error_description":"bad secret"}"#),
            ": invalid_client (bad secret)"
        );
        assert_eq!(
            error_summary(r#"{"errorCode":"E1","errorSummary":"nope"}"#),
            ": E1 (nope)"
        );
        assert_eq!(error_summary("<html>"), "");
        assert_eq!(redact("x hunter2 y".into(), "hunter2"), "x <redacted> y");
        assert!(unretryable(401) && !unretryable(503) && !unretryable(429));
    }

    /// Reads one HTTP request's head and body; `None` if it ends early.
    fn read_request(r: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
        let (mut line, mut len) = (String::new(), 0);
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            line.clear();
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).ok().map(|()| body)
    }

    /// Serves one plain HTTP answer per connection, in order; returns the
    /// URL.
    fn serve_answers(answers: Vec<(u16, &'static str)>) -> String {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for ((status, body), stream) in answers.into_iter().zip(listener.incoming()) {
                let mut stream = stream.unwrap();
                let _ = read_request(&mut BufReader::new(stream.try_clone().unwrap()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        url
    }

    /// 200 and 201 carry the token; other statuses fail, retryable unless
    /// Java's list says retrying cannot help; the answer's error is named
    /// and the secret is not.
    #[test]
    fn statuses_are_answers_and_say_whether_to_retry() {
        let url = serve_answers(vec![
            (200, r#"{"access_token":"a.b.c"}"#),
            (201, r#"{"access_token":"d.e.f"}"#),
            (503, "busy"),
            (
                401,
                r#"{"error":"invalid_client","error_description":"no hunter2"}"#,
            ),
            (200, r#"{"token":"x"}"#),
        ]);
        let settings = OidcSettings {
            endpoint: Some(url),
            client_id: Some("app".into()),
            client_secret: Some("hunter2".into()),
            ..OidcSettings::default()
        };
        let a = agent(&settings).unwrap();
        assert_eq!(post(&a, &settings, 0).unwrap(), "a.b.c");
        assert_eq!(post(&a, &settings, 0).unwrap(), "d.e.f");
        let busy = post(&a, &settings, 0).unwrap_err();
        assert!(
            busy.retryable && busy.message.contains("HTTP 503"),
            "{busy:?}"
        );
        let refused = post(&a, &settings, 0).unwrap_err();
        assert!(!refused.retryable, "{refused:?}");
        assert!(
            refused.message.contains("HTTP 401: invalid_client")
                && !refused.message.contains("hunter2"),
            "{}",
            refused.message
        );
        let odd = post(&a, &settings, 0).unwrap_err();
        assert!(
            !odd.retryable && odd.message.contains("no `access_token`"),
            "{odd:?}"
        );
    }

    /// A test CA and a certificate it signs for localhost and 127.0.0.1:
    /// (the CA's PEM, a rustls server config with the certificate).
    fn https_server_config() -> (String, std::sync::Arc<rustls::ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        use rustls::pki_types::pem::PemObject as _;
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "kring oauth test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(crate::driver::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![leaf.der().clone()],
                    rustls::pki_types::PrivateKeyDer::from_pem_slice(
                        key.serialize_pem().as_bytes(),
                    )
                    .unwrap(),
                )
                .unwrap();
        (ca.pem(), std::sync::Arc::new(config))
    }

    /// Serves `n` connections over TLS with one token answer each (a
    /// handshake the client aborts just ends that connection).
    fn serve_tokens(config: std::sync::Arc<rustls::ServerConfig>, n: usize) -> u16 {
        use std::io::{BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n).flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut r = BufReader::new(&mut tls);
                if read_request(&mut r).is_none() {
                    continue;
                }
                let json = r#"{"access_token":"h.p.s"}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                    json.len()
                );
                let _ = tls.flush();
            }
        });
        port
    }

    /// An https:// endpoint is reached through kring's rustls, trusting
    /// the CAs of `https.ca.pem`; without them (the system's store) its
    /// certificate is refused.
    #[test]
    fn an_https_endpoint_is_trusted_through_https_ca() {
        let (ca_pem, config) = https_server_config();
        let port = serve_tokens(config, 2);
        let settings = OidcSettings {
            endpoint: Some(format!("https://localhost:{port}/token")),
            client_id: Some("app".into()),
            client_secret: Some("hunter2".into()),
            ca: Some(crate::config::Pem::Inline(ca_pem)),
            ..OidcSettings::default()
        };
        let a = agent(&settings).unwrap();
        assert_eq!(post(&a, &settings, 0).unwrap(), "h.p.s");
        let system = OidcSettings {
            ca: None,
            ..settings
        };
        match agent(&system) {
            // A machine with no system CAs refuses at once, naming them.
            Err(e) => assert!(e.contains("https.ca.location"), "{e}"),
            Ok(a) => {
                let e = post(&a, &system, 0).unwrap_err();
                assert!(e.retryable);
                assert!(
                    e.message.contains("localhost") && !e.message.contains("hunter2"),
                    "{}",
                    e.message
                );
                eprintln!("{}", e.message);
            }
        }
    }
}
