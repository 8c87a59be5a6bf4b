//! PLAIN (RFC 4616): one message, `authzid NUL authcid NUL password`, with
//! an empty authorization id as Kafka expects.

/// The PLAIN message for `user` / `password`.
pub(crate) fn message(user: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(user.len() + password.len() + 2);
    m.push(0);
    m.extend_from_slice(user.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc4616_layout() {
        assert_eq!(
            super::message("tim", "tanstaaftanstaaf"),
            b"\0tim\0tanstaaftanstaaf"
        );
    }
}
