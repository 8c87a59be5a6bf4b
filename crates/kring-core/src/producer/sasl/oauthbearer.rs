//! OAUTHBEARER (RFC 7628) client messages as Kafka uses them (KIP-255).

/// The initial client response: GS2 header without authorization id,
/// then `auth=Bearer <token>` and each SASL extension (KIP-342) as
/// `key=value`, each pair ended by `\x01`, and a last `\x01`. The token
/// must have passed [`check_token`], the extensions
/// [`check_extension`].
pub(crate) fn first_message(token: &str, extensions: &[(String, String)]) -> Vec<u8> {
    let mut m = format!("n,,\x01auth=Bearer {token}\x01");
    for (k, v) in extensions {
        m.push_str(k);
        m.push('=');
        m.push_str(v);
        m.push('\x01');
    }
    m.push('\x01');
    m.into_bytes()
}

/// Checks a SASL extension as the Java client does
/// (`OAuthBearerClientInitialResponse`): the key letters only and not
/// `auth`, the value printable ASCII, spaces, tabs or line breaks (RFC
/// 7628's `value`), so that neither can end its pair or start another.
/// The error names the key, never the value.
pub(crate) fn check_extension(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "the OAUTHBEARER extension name `{}` is not letters only (KIP-342)",
            key.escape_debug()
        ));
    }
    if key == "auth" {
        return Err("`auth` is not an OAUTHBEARER extension name: it carries the token".into());
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b))
    {
        return Err(format!(
            "the value of the OAUTHBEARER extension `{key}` is empty or holds a byte outside \
             printable ASCII, space, tab and line breaks (RFC 7628)"
        ));
    }
    Ok(())
}

/// What the client sends after the server answered with an error
/// challenge (a JSON status): a lone `\x01`, after which the server fails
/// the exchange (RFC 7628 section 3.2.3).
pub(crate) const ERROR_ACK: &[u8] = b"\x01";

/// Checks that `token` is an RFC 6750 `b64token` (`1*( ALPHA / DIGIT /
/// "-" / "." / "_" / "~" / "+" / "/" ) *"="`), the only thing the
/// client-first message may carry after `Bearer `: a `\x01` would end the
/// `auth` pair and let the token add pairs of its own (`host=...`), a
/// space or a comma would change how the broker splits it. Kafka's broker
/// accepts no more than this, and the Java client checks a token's format
/// before using it. The error names the offending byte's position, never
/// the token.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    let body = token.trim_end_matches('=');
    if body.is_empty() {
        return Err(if token.is_empty() {
            "the token provider returned an empty token".into()
        } else {
            "the token provider returned a token that is not a valid bearer token (RFC 6750: it holds only '=' padding); it was not sent".into()
        });
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    match body.bytes().position(|b| !allowed(b)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "the token provider returned a token that is not a valid bearer token (RFC 6750: byte {i} of {} is not a letter, digit, '-', '.', '_', '~', '+', '/' or trailing '='); it was not sent",
            token.len()
        )),
    }
}

/// A server's error challenge (RFC 7628 section 3.2.2: a JSON object
/// with `status`, and optionally `scope` and `openid-configuration`) in
/// a few words for the authentication error: `status invalid_token, scope
/// kafka`. Only `status` and `scope` are named, each cut to 100
/// characters without control characters (the text is the broker's).
pub(crate) fn describe_challenge(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let field = |key: &str| {
        json_string_field(&text, key).map(|v| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
    };
    match (field("status"), field("scope")) {
        (Some(status), Some(scope)) => format!("status {status}, scope {scope}"),
        (Some(status), None) => format!("status {status}"),
        (None, _) => format!("{} bytes without a JSON status", bytes.len()),
    }
}

/// The string value of `"key": "..."` in a JSON text (the first such pair,
/// at any depth: enough for the flat object of an RFC 7628 challenge).
fn json_string_field(text: &str, key: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let (s, after) = json_string(&rest[start..])?;
        let after_colon = after.trim_start().strip_prefix(':').map(str::trim_start);
        if s == key {
            if let Some(v) = after_colon.filter(|v| v.starts_with('"')) {
                return json_string(v).map(|(v, _)| v);
            }
        }
        rest = after;
    }
    None
}

/// The JSON string literal at the start of `s` (which starts with `"`),
/// unescaped, and the text after it; `None` if it does not end.
fn json_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' | 'r' | 't' | 'b' | 'f' => out.push(' '),
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{check_extension, check_token, describe_challenge, first_message};

    /// KIP-342: each extension a `key=value` pair of its own after the
    /// token, as Kafka's broker parses them (and Confluent Cloud requires
    /// `logicalCluster` and `identityPoolId`).
    #[test]
    fn extensions_follow_the_token_pair_by_pair() {
        assert_eq!(first_message("t0k", &[]), b"n,,\x01auth=Bearer t0k\x01\x01");
        let ext = [
            ("logicalCluster".to_owned(), "lkc-abc12".to_owned()),
            ("identityPoolId".to_owned(), "pool-X y".to_owned()),
        ];
        assert_eq!(
            first_message("t0k", &ext),
            b"n,,\x01auth=Bearer t0k\x01logicalCluster=lkc-abc12\x01identityPoolId=pool-X y\x01\x01"
        );
        for (k, v) in [("logicalCluster", "lkc-1"), ("a", "b\tc\r\n~")] {
            assert_eq!(check_extension(k, v), Ok(()), "{k}={v:?}");
        }
        for (k, v, want) in [
            ("auth", "hunter2", "carries the token"),
            ("log_cluster", "hunter2", "letters only"),
            ("", "hunter2", "letters only"),
            ("k", "", "empty"),
            ("k", "hunter2\x01host=evil", "printable ASCII"),
            ("k", "hunter2\u{e9}", "printable ASCII"),
        ] {
            let e = check_extension(k, v).unwrap_err();
            assert!(e.contains(want), "{k}={v:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn rfc7628_error_challenge() {
        let ch = br#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://server.example.com/.well-known/openid-configuration"}"#;
        assert_eq!(
            describe_challenge(ch),
            "status invalid_token, scope example_scope"
        );
        assert_eq!(
            describe_challenge(br#"{ "scope" : "a\"b", "status" : "insufficient_scope" }"#),
            "status insufficient_scope, scope a\"b"
        );
        assert_eq!(
            describe_challenge(br#"{"status":"x\u0041\n"}"#),
            "status xA "
        );
        assert_eq!(
            describe_challenge(b"not json"),
            "8 bytes without a JSON status"
        );
        assert_eq!(
            describe_challenge(br#"{"status":"unterminated"#),
            "23 bytes without a JSON status"
        );
        let long = format!(r#"{{"status":"{}"}}"#, "s".repeat(500));
        assert_eq!(
            describe_challenge(long.as_bytes()).len(),
            "status ".len() + 100
        );
    }

    #[test]
    fn rfc6750_b64token() {
        for ok in ["vF9dft4qmT", "eyJ.eyJ.sig", "a-b_c~d+e/f==", "x="] {
            assert_eq!(check_token(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "==",
            "tok\x01host=evil",
            "a b",
            "a,b",
            "a=b",
            "tok\n",
            "t\u{e9}",
        ] {
            let e = check_token(bad).unwrap_err();
            assert!(!bad.is_empty() || e.contains("empty"), "{e}");
        }
        let e = check_token("s3cret\x01host=evil").unwrap_err();
        assert!(e.contains("byte 6 of 16") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn rfc7628_initial_response() {
        assert_eq!(
            super::first_message("vF9dft4qmT", &[]),
            b"n,,\x01auth=Bearer vF9dft4qmT\x01\x01"
        );
    }
}
