//! What kring reads from an access token: a JWS in compact form whose
//! payload names the principal and the expiry, checked as the Java
//! client's `ClientJwtValidator` does (the signature is the broker's to
//! verify). Errors describe the token's shape, never its text.

use base64::Engine as _;

/// The claims a token must carry.
#[derive(Debug, PartialEq)]
pub(crate) struct Claims {
    /// `exp`, in milliseconds since the epoch.
    pub(crate) expiry_ms: u64,
    /// `iat`, in milliseconds since the epoch, if present.
    pub(crate) issued_ms: Option<u64>,
    /// The principal (the `sub` claim, or the one
    /// `sasl.oauthbearer.sub.claim.name` names).
    pub(crate) principal: String,
}

/// Reads `token`'s claims; `sub_claim` names the principal's claim and
/// `scope_claim` the scopes' (checked when present, not required).
pub(crate) fn claims(token: &str, sub_claim: &str, scope_claim: &str) -> Result<Claims, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "the access token is not a JWT: {} dot-separated parts, 3 expected",
            parts.len()
        ));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| "the access token's payload is not base64url".to_owned())?;
    let json: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|_| "the access token's payload is not JSON".to_owned())?;
    let obj = json
        .as_object()
        .ok_or("the access token's payload is not a JSON object")?;
    let time = |name: &str| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e13)
                .map(|s| Some((s * 1000.0) as u64))
                .ok_or_else(|| {
                    format!("the access token's `{name}` claim is not a time in seconds")
                }),
        }
    };
    let expiry_ms = time("exp")?.ok_or("the access token has no `exp` (expiry) claim")?;
    let issued_ms = time("iat")?;
    let principal = match obj.get(sub_claim) {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(_) => {
            return Err(format!(
                "the access token's `{sub_claim}` claim is not a name"
            ))
        }
        None => return Err(format!("the access token has no `{sub_claim}` claim")),
    };
    if let Some(scope) = obj.get(scope_claim) {
        let ok = scope.is_string()
            || scope
                .as_array()
                .is_some_and(|a| a.iter().all(serde_json::Value::is_string));
        if !ok {
            return Err(format!(
                "the access token's `{scope_claim}` claim is not a string or list of strings"
            ));
        }
    }
    Ok(Claims {
        expiry_ms,
        issued_ms,
        principal,
    })
}

#[cfg(test)]
pub(crate) fn unsigned(payload: &str) -> String {
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.", b(r#"{"alg":"none"}"#), b(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_of_a_token() {
        let t =
            unsigned(r#"{"sub":"svc-orders","iat":1700000000,"exp":1700003600.5,"scope":"a b"}"#);
        assert_eq!(
            claims(&t, "sub", "scope").unwrap(),
            Claims {
                expiry_ms: 1_700_003_600_500,
                issued_ms: Some(1_700_000_000_000),
                principal: "svc-orders".into()
            }
        );
        let t = unsigned(r#"{"client_id":"app","exp":5,"scope":["x","y"]}"#);
        assert_eq!(claims(&t, "client_id", "scope").unwrap().principal, "app");
        // `sasl.oauthbearer.scope.claim.name` names the claim checked.
        let t = unsigned(r#"{"sub":"a","exp":5,"scope":7,"scp":["x"]}"#);
        assert!(claims(&t, "sub", "scp").is_ok());
        let e = claims(&t, "sub", "scope").unwrap_err();
        let t = unsigned(r#"{"sub":"a","exp":5,"scope":"x","scp":7}"#);
        assert!(claims(&t, "sub", "scope").is_ok());
        let e2 = claims(&t, "sub", "scp").unwrap_err();
        assert!(e.contains("`scope`") && e2.contains("`scp`"), "{e} {e2}");
    }

    #[test]
    fn malformed_tokens_are_refused_without_quoting_them() {
        let secretish = "eyJzZWNyZXQiOiJodW50ZXIyIn0";
        for (t, want) in [
            (format!("{secretish}.x"), "not a JWT"),
            (format!("a.{secretish}!.c"), "base64url"),
            (unsigned(r#"["hunter2"]"#), "not a JSON object"),
            (unsigned(r#"{"sub":"hunter2"}"#), "no `exp`"),
            (
                unsigned(r#"{"exp":1,"sub":""}"#),
                "`sub` claim is not a name",
            ),
            (unsigned(r#"{"exp":"hunter2","sub":"a"}"#), "`exp` claim"),
            (unsigned(r#"{"exp":-5,"sub":"a"}"#), "`exp` claim"),
            (unsigned(r#"{"exp":1e13,"sub":"a"}"#), "`exp` claim"),
            (unsigned(r#"{"exp":1e300,"sub":"a"}"#), "`exp` claim"),
            (unsigned(r#"{"exp":5,"iat":-1,"sub":"a"}"#), "`iat` claim"),
            (unsigned(r#"{"exp":1}"#), "no `sub`"),
            (unsigned(r#"{"exp":1,"sub":"a","scope":7}"#), "`scope`"),
        ] {
            let e = claims(&t, "sub", "scope").unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
            assert!(!e.contains("hunter2") && !e.contains(secretish), "{e}");
        }
    }
}
