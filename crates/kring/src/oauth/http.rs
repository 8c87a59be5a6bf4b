//! The HTTP side of a token fetch (feature `oidc`): the
//! `client_credentials` request as the Java client's
//! `ClientCredentialsRequestGenerator` sends it (Basic authorization in
//! standard base64, optionally URL-encoded id and secret, the scope
//! form-encoded), the answer's `access_token`, and RFC 6749 §5.2 error
//! answers made into messages that never carry the secret.

use base64::Engine as _;

use super::endpoint::Failure;
use crate::config::oauth::OidcSettings;

/// Bytes of an answer read at most (a token response is a few KiB).
const MAX_BODY: u64 = 1 << 20;

/// HTTP statuses that retrying cannot change (the Java client's list).
fn unretryable(status: u16) -> bool {
    matches!(status, 400..=407 | 409..=415 | 501 | 505)
}

/// The HTTP client: kring's rustls with the ring provider and the
/// system's trust store, the `sasl.login.*` timeouts, no redirects (a
/// redirect would resend the credentials elsewhere), statuses as answers.
pub(super) fn agent(s: &OidcSettings) -> Result<ureq::Agent, String> {
    use std::sync::Arc;

    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() && s.url().starts_with("https://") {
        return Err(format!(
            "no trusted CA certificates in the system's store for {}",
            s.url()
        ));
    }
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

/// One `client_credentials` request with `s`'s credentials.
pub(super) fn post(agent: &ureq::Agent, s: &OidcSettings) -> Result<String, Failure> {
    let url = s.url();
    let secret = s.client_secret.as_deref().unwrap_or_default();
    let (id, secret_enc) = if s.header_urlencode {
        (
            form_encode(s.client_id.as_deref().unwrap_or_default()),
            form_encode(secret),
        )
    } else {
        (s.client_id.clone().unwrap_or_default(), secret.to_owned())
    };
    // RFC 7617: standard base64, not the URL alphabet.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret_enc}"));
    let mut body = "grant_type=client_credentials".to_owned();
    if let Some(scope) = &s.scope {
        body.push_str("&scope=");
        body.push_str(&form_encode(scope));
    }
    let redact = |m: String| redact(m, secret);
    let mut resp = agent
        .post(url)
        .header("Accept", "application/json")
        .header("Authorization", &format!("Basic {basic}"))
        .header("Cache-Control", "no-cache")
        .header("Content-Type", "application/x-www-form-urlencoded")
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
}
