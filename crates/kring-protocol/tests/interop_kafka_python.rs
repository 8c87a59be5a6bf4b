//! Interop with an independent implementation: kafka-python.
//!
//! Both directions, every codec (none, gzip, snappy, lz4, zstd):
//! - batches kring writes are read by kafka-python's `MemoryRecords` /
//!   `DefaultRecordBatch` (CRC validated), and every batch and record
//!   field it reports must equal what kring was asked to write;
//! - batches kafka-python's `DefaultRecordBatchBuilder` writes are decoded
//!   by kring, and every field must equal what kafka-python was asked to
//!   write.
//!
//! The python side is `tests/python/kafka_python_records.py`; both sides
//! print the same line format (see that script) and the test compares the
//! whole text. Python is `$KRING_PYTHON` or `python3`. When python,
//! kafka-python or a codec module is missing the test FAILS, naming the
//! install command (scripts/install-deps installs them).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use kring_protocol::record::{
    decode_batches, Compression, DecodeOptions, Header, RecordBatch, RecordBatchBuilder,
};

const INSTALL: &str =
    "python3 -m pip install kafka-python==3.0.12 lz4 python-snappy cramjam zstandard crc32c \
     (or run scripts/install-deps, which sets KRING_PYTHON)";

fn python() -> String {
    std::env::var("KRING_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_python_records.py")
}

fn temp_file(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "kring-interop-{}-{}-{tag}.bin",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs the helper script; any failure to run it fails the test with the
/// install command.
fn run_python(mode: &str, file: &PathBuf) -> String {
    let py = python();
    let out = Command::new(&py)
        .arg(script())
        .arg(mode)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{py}` ({e}); install python3 and then: {INSTALL}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!(
            "kafka-python or a codec module is missing for `{py}`: {stderr}\ninstall: {INSTALL}"
        );
    }
    assert!(
        out.status.success(),
        "kafka_python_records.py {mode} failed ({}): {stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

fn hex(b: Option<&[u8]>) -> String {
    match b {
        None => "-".to_owned(),
        Some(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

#[allow(clippy::too_many_arguments)] // one argument per header field of the dump line
fn batch_line(
    codec: Compression,
    base_offset: i64,
    leader_epoch: i32,
    pid: i64,
    epoch: i16,
    seq: i32,
    txn: bool,
    last_offset_delta: i32,
    base_ts: i64,
    max_ts: i64,
    count: i32,
) -> String {
    format!(
        "batch codec={codec} base_offset={base_offset} leader_epoch={leader_epoch} pid={pid} \
         epoch={epoch} seq={seq} txn={} last_offset_delta={last_offset_delta} base_ts={base_ts} \
         max_ts={max_ts} count={count}",
        txn as u8
    )
}

fn record_line(
    offset: i64,
    ts: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(String, Option<Vec<u8>>)],
) -> String {
    let hs: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{}:{}", hex(Some(k.as_bytes())), hex(v.as_deref())))
        .collect();
    format!(
        "record offset={offset} ts={ts} key={} value={} headers={}",
        hex(key),
        hex(value),
        hs.join(",")
    )
}

/// kring's dump of decoded batches, in the script's format.
fn dump_decoded(batches: &[RecordBatch]) -> String {
    let opts = DecodeOptions::default();
    let mut lines = Vec::new();
    for b in batches {
        lines.push(batch_line(
            b.compression,
            b.base_offset,
            b.partition_leader_epoch,
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
            b.is_transactional(),
            b.last_offset_delta,
            b.base_timestamp,
            b.max_timestamp,
            b.record_count,
        ));
        for r in b.records(&opts).expect("records decode") {
            let headers: Vec<(String, Option<Vec<u8>>)> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
                .collect();
            lines.push(record_line(
                b.offset_of(&r),
                b.timestamp_of(&r),
                r.key.as_deref(),
                r.value.as_deref(),
                &headers,
            ));
        }
    }
    lines.join("\n")
}

struct Rec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn records_for(seed: i64, n: usize) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec {
            ts: 1_600_000_000_000 + seed * 1000 + (i as i64 * 613) % 400 - 50,
            key: (i % 4 != 0).then(|| format!("k{seed}-{}", i % 9).into_bytes()),
            value: (i % 11 != 10)
                .then(|| format!("kring value {i} ").repeat(1 + i % 6).into_bytes()),
            headers: (0..(i % 3))
                .map(|j| {
                    (
                        format!("hdr{j}-ünï"),
                        ((i + j) % 2 == 0).then(|| vec![j as u8; 1 + i % 5]),
                    )
                })
                .collect(),
        })
        .collect()
}

#[test]
fn kafka_python_reads_what_kring_writes() {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for (ci, codec) in Compression::ALL.into_iter().enumerate() {
        // (records, producer id, epoch, base sequence, transactional)
        let plans = [
            (records_for(ci as i64, 60), -1i64, -1i16, -1i32, false),
            (
                records_for(ci as i64 + 10, 5),
                7000 + ci as i64,
                4,
                250,
                ci % 2 == 0,
            ),
        ];
        for (recs, pid, epoch, seq, txn) in plans {
            let base_ts = recs[0].ts - 3;
            let mut b = RecordBatchBuilder::new(base_ts, 4096);
            for r in &recs {
                let headers: Vec<Header<'_>> = r
                    .headers
                    .iter()
                    .map(|(k, v)| Header {
                        key: k,
                        value: v.as_deref(),
                    })
                    .collect();
                b.append(r.ts, r.key.as_deref(), r.value.as_deref(), &headers);
            }
            let bytes = b.seal(codec).unwrap().stamp(pid, epoch, seq, txn);
            wire.extend_from_slice(&bytes);
            expected.push(batch_line(
                codec,
                0,
                -1,
                pid,
                epoch,
                seq,
                txn,
                recs.len() as i32 - 1,
                base_ts,
                recs.iter().map(|r| r.ts).max().unwrap(),
                recs.len() as i32,
            ));
            for (i, r) in recs.iter().enumerate() {
                expected.push(record_line(
                    i as i64,
                    r.ts,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &r.headers,
                ));
            }
        }
    }
    let file = temp_file("kring-written");
    std::fs::write(&file, &wire).unwrap();
    let got = run_python("read", &file);
    let _ = std::fs::remove_file(&file);
    assert_eq!(got.trim_end(), expected.join("\n"));
}

#[test]
fn kring_reads_what_kafka_python_writes() {
    let file = temp_file("python-written");
    let expected = run_python("write", &file);
    let wire = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let batches = decode_batches(Bytes::from(wire), &DecodeOptions::default())
        .expect("kring decodes kafka-python's batches");
    // Every codec is present (the script refuses to fall back to none).
    for codec in Compression::ALL {
        assert!(
            batches.iter().any(|b| b.compression == codec),
            "{codec} missing"
        );
    }
    assert_eq!(dump_decoded(&batches), expected.trim_end());
}
