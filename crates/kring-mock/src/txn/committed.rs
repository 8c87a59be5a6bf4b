//! What a read_committed consumer of a partition gets: the records below
//! the last stable offset, without control batches and without the
//! records of aborted transactions (Kafka's consumer drops those using the
//! aborted-transaction list a READ_COMMITTED Fetch returns). Records of a
//! transaction still open are beyond the last stable offset, so they are
//! not returned either — until it commits.

use kring_protocol::DecodeError;

use crate::log::PartitionLog;
use crate::records::{self, StoredRecord};

/// Every record a read_committed consumer reading from offset 0 would get.
/// On a decode error, the offset of the batch that failed.
pub(crate) fn read_committed(log: &PartitionLog) -> Result<Vec<StoredRecord>, (i64, DecodeError)> {
    let lso = log.last_stable_offset();
    let mut out = Vec::new();
    for b in log.batches() {
        if b.base_offset >= lso {
            break;
        }
        if b.header.is_control()
            || (b.header.is_transactional()
                && log.txns().is_aborted(b.header.producer_id, b.base_offset))
        {
            continue;
        }
        records::decode_into(b, &mut out).map_err(|e| (b.base_offset, e))?;
    }
    Ok(out)
}
