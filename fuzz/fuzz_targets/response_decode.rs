//! Decoding a response frame never panics, whatever the API key, version
//! and bytes.
//!
//! Input: `[key][version][frame...]`. `key` picks one of the APIs kring
//! speaks (or, past the end of the list, an unknown key); `version` ranges
//! one past each end of the API's versions. The frame is a response without
//! its size prefix: header (v0/v1 as the API and version require), then body.
#![no_main]

use bytes::Bytes;
use kring_protocol::message::{
    response_correlation_id, response_header_version, ApiKey, Decodable, ResponseKind,
};
use kring_protocol::messages::ResponseHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [key, version, frame @ ..] = data else {
        return;
    };
    let (api_key, version) = match ApiKey::ALL.get(usize::from(*key) % (ApiKey::ALL.len() + 1)) {
        Some(k) => {
            let span = (k.max_version() - k.min_version() + 3) as u8;
            (k.key(), k.min_version() - 1 + i16::from(version % span))
        }
        None => (i16::from(*key) + 100, i16::from(*version)),
    };
    let _ = response_correlation_id(frame);
    let mut buf = Bytes::copy_from_slice(frame);
    let header_version = match ApiKey::try_from(api_key) {
        Ok(k) => response_header_version(k, version),
        Err(_) => 0,
    };
    if ResponseHeader::decode(&mut buf, header_version).is_ok() {
        let _ = ResponseKind::decode(api_key, version, &mut buf);
    }
});
