//! Transaction markers: the control batches a coordinator has every
//! partition leader of a transaction append when it ends (Kafka's
//! `EndTransactionMarker` in a batch built by
//! `MemoryRecords.withEndTransactionMarker`).
//!
//! A marker is a record batch v2 with the transactional (0x10) and control
//! (0x20) attribute bits, the producer's id and epoch, no sequence (-1),
//! and one record: key = version 0 (i16) + type (i16: 0 ABORT, 1 COMMIT),
//! value = version 0 (i16) + the coordinator epoch (i32). Consumers never
//! return it; a read_committed one uses it to end the producer's
//! transaction.

use bytes::Bytes;
use kring_protocol::record::{layout, Compression, RecordBatchBuilder};

/// Control record type of an ABORT marker.
pub(crate) const ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
pub(crate) const COMMIT: i16 = 1;

/// A marker batch (base offset 0, leader epoch -1, to be assigned on
/// append) ending `producer_id`'s transaction.
pub(crate) fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Bytes {
    let kind = if commit { COMMIT } else { ABORT };
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = RecordBatchBuilder::new(timestamp, 128);
    b.append(timestamp, Some(&key), Some(&value), &[]);
    let sealed = match b.seal(Compression::None) {
        Ok(s) => s,
        Err(e) => unreachable!("an uncompressed one-record batch always seals: {e}"),
    };
    let stamped = sealed.stamp(producer_id, producer_epoch, layout::NO_SEQUENCE, true);
    let mut v = stamped.to_vec();
    let at = layout::ATTRIBUTES;
    let attributes = i16::from_be_bytes([v[at], v[at + 1]]) | layout::ATTR_CONTROL;
    v[layout::ATTRIBUTES..layout::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&v[layout::ATTRIBUTES..]);
    v[layout::CRC..layout::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(v)
}

/// The control record type (`ABORT`/`COMMIT`) of a marker record's key,
/// if it is one.
#[cfg(test)]
pub(crate) fn marker_type(key: Option<&[u8]>) -> Option<i16> {
    match key? {
        [0, 0, a, b] => Some(i16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kring_protocol::record::{decode_batch, DecodeOptions};

    #[test]
    fn a_marker_is_a_valid_control_batch() {
        let raw = control_batch(42, 3, true, 7, 1234);
        let opts = DecodeOptions::default();
        let b = decode_batch(&mut raw.clone(), &opts).unwrap();
        assert!(b.is_control() && b.is_transactional());
        let h = b.header();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, -1)
        );
        assert_eq!((h.record_count, h.max_timestamp), (1, 1234));
        let r = &b.records(&opts).unwrap()[0];
        assert_eq!(marker_type(r.key.as_deref()), Some(COMMIT));
        assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
        let abort = control_batch(42, 3, false, 0, 0);
        let b = decode_batch(&mut abort.clone(), &opts).unwrap();
        let r = &b.records(&opts).unwrap()[0];
        assert_eq!(marker_type(r.key.as_deref()), Some(ABORT));
    }
}
