//! OAUTHBEARER (RFC 7628) client messages as Kafka uses them (KIP-255).

/// The initial client response: GS2 header without authorization id,
/// then `auth=Bearer <token>` between `\x01` separators. The token must
/// have passed [`check_token`].
pub(crate) fn first_message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
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

#[cfg(test)]
mod tests {
    use super::check_token;

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
            super::first_message("vF9dft4qmT"),
            b"n,,\x01auth=Bearer vF9dft4qmT\x01\x01"
        );
    }
}
