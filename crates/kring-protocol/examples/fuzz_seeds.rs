//! Writes seed corpora for the `message_roundtrip` and `response_decode`
//! fuzz targets: the sample of every request and response at every version
//! (and the all-nulls variant), in each target's input format.
//!
//! ```text
//! cargo run -p kring-protocol --features samples --example fuzz_seeds -- fuzz/corpus
//! ```

use bytes::BytesMut;
use kring_protocol::message::{
    encode_response_frame, ApiKey, Encodable, RequestKind, ResponseKind,
};
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let roundtrip = dir.join("message_roundtrip");
    let responses = dir.join("response_decode");
    std::fs::create_dir_all(&roundtrip)?;
    std::fs::create_dir_all(&responses)?;
    let mut n = 0;
    for (index, key) in ApiKey::ALL.into_iter().enumerate() {
        let min = key.min_version();
        for version in min..=key.max_version() {
            // Both targets map the version byte by modulo from the lowest
            // version (response_decode from one below it).
            let v = (version - min) as u8;
            for nulls in [false, true] {
                let (req, resp) = if nulls {
                    (
                        RequestKind::sample_with_nulls(key, version),
                        ResponseKind::sample_with_nulls(key, version),
                    )
                } else {
                    (
                        RequestKind::sample(key, version),
                        ResponseKind::sample(key, version),
                    )
                };
                let name = format!(
                    "{}-v{version}{}",
                    key.name(),
                    if nulls { "-nulls" } else { "" }
                );
                let mut body = BytesMut::new();
                req.encode(&mut body, version).expect("samples encode");
                std::fs::write(
                    roundtrip.join(format!("req-{name}")),
                    [&[0, index as u8, v], &body[..]].concat(),
                )?;
                body.clear();
                resp.encode(&mut body, version).expect("samples encode");
                std::fs::write(
                    roundtrip.join(format!("resp-{name}")),
                    [&[1, index as u8, v], &body[..]].concat(),
                )?;
                let mut frame = BytesMut::new();
                encode_response_frame(&mut frame, 1, version, &resp).expect("samples encode");
                std::fs::write(
                    responses.join(name),
                    [&[index as u8, v + 1], &frame[4..]].concat(),
                )?;
                n += 3;
            }
        }
    }
    println!("wrote {n} seeds under {}", dir.display());
    Ok(())
}
