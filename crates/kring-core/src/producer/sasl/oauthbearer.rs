//! OAUTHBEARER (RFC 7628) client messages as Kafka uses them (KIP-255).

/// The initial client response: GS2 header without authorization id,
/// then `auth=Bearer <token>` between `\x01` separators.
pub(crate) fn first_message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// What the client sends after the server answered with an error
/// challenge (a JSON status): a lone `\x01`, after which the server fails
/// the exchange (RFC 7628 section 3.2.3).
pub(crate) const ERROR_ACK: &[u8] = b"\x01";

#[cfg(test)]
mod tests {
    #[test]
    fn rfc7628_initial_response() {
        assert_eq!(
            super::first_message("vF9dft4qmT"),
            b"n,,\x01auth=Bearer vF9dft4qmT\x01\x01"
        );
    }
}
