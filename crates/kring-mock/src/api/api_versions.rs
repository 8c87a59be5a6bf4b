//! ApiVersions (key 18): v0–v4.
//!
//! Behavior:
//! - Answers the API keys and version ranges this mock serves (see
//!   [`SERVED`], narrowed by
//!   [`MockCluster::set_max_version`](crate::MockCluster::set_max_version)),
//!   the same list in normal and sink mode. Only versions with a
//!   handler are advertised, so a client never picks a version the mock
//!   would refuse.
//! - A request of a version outside v0–v4 gets a **v0** response with
//!   UNSUPPORTED_VERSION and the full list (KIP-511), so the client can retry
//!   with the highest version both sides speak. The request header is still
//!   parsed as the version implies (v2 with tagged fields from v3 on).
//! - v3+: `client_software_name` and `client_software_version` must match
//!   Kafka's pattern `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`; otherwise
//!   INVALID_REQUEST, as a Kafka broker answers.
//! - No supported or finalized features are reported.
//!
//! Version notes: v1 adds throttle_time_ms; v3 is flexible (its response
//! header stays v0, as for every ApiVersions response); v4 only changes the
//! rules for feature ranges, which the mock does not report.

use kring_protocol::messages::api_versions::{ApiVersion, ApiVersionsRequest, ApiVersionsResponse};

use super::{Answer, Hdr, SERVED};
use crate::faults::Fired;
use crate::state::State;

/// Versions served.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;

/// The API keys and versions served (the mock's, narrowed by version
/// caps), as advertised.
pub(crate) fn api_keys(st: &State) -> Vec<ApiVersion> {
    SERVED
        .iter()
        .filter_map(|(key, _)| {
            let versions = st.served(*key)?;
            Some(ApiVersion {
                api_key: *key,
                min_version: *versions.start(),
                max_version: *versions.end(),
                ..Default::default()
            })
        })
        .collect()
}

/// SaslHandshake v0-1 and SaslAuthenticate v0-2, listed by a SASL
/// listener (`crate::sasl`).
const SASL_KEYS: [(i16, i16, i16); 2] = [(17, 0, 1), (36, 0, 2)];

/// Kafka's rule for client software names and versions.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match b {
        [] => false,
        [one] => edge(one),
        [first, mid @ .., last] => edge(first) && edge(last) && mid.iter().all(inner),
    }
}

pub(crate) fn handle(
    h: &Hdr,
    req: ApiVersionsRequest,
    fired: &Fired,
    mut keys: Vec<ApiVersion>,
    sasl: bool,
) -> Answer {
    let mut error_code = fired.error_for_request().unwrap_or(0);
    if error_code == 0
        && h.version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        error_code = INVALID_REQUEST;
    }
    if sasl {
        keys.extend(SASL_KEYS.map(|(k, lo, hi)| ApiVersion {
            api_key: k,
            min_version: lo,
            max_version: hi,
            ..Default::default()
        }));
    }
    let resp = ApiVersionsResponse {
        error_code,
        api_keys: keys,
        throttle_time_ms: h.throttle_ms,
        ..Default::default()
    };
    h.frame(&resp)
}

/// The v0 answer to an ApiVersions request of a version the mock does not
/// serve.
pub(crate) fn unsupported(correlation_id: i32, keys: Vec<ApiVersion>) -> Answer {
    let resp = ApiVersionsResponse {
        error_code: UNSUPPORTED_VERSION,
        api_keys: keys,
        ..Default::default()
    };
    Hdr {
        version: 0,
        correlation_id,
        throttle_ms: 0,
    }
    .frame(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_field_pattern() {
        for ok in ["a", "librdkafka", "kring-rs", "2.12.1", "a.b-c9"] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", ".", "a b", "a_b", "é"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
    }
}
