//! A custom partitioner: records whose key starts with `eu-` go to
//! partition 0, `us-` to partition 1, everything else is spread by the
//! default rule over the rest. The partitioner runs on the sending thread,
//! fenced: if it panicked, that one send would fail with
//! `SendError::PartitionerPanicked` and the producer would carry on.
//!
//! Run: `cargo run -p kring --example custom_partitioner`
//! (an in-process kring-mock broker with a 6-partition topic).

use std::sync::Arc;

use kring::{PartitionView, Partitioner, Producer, Record};

/// Pins two key prefixes to partitions 0 and 1; hashes other keys over
/// partitions 2 and up; keyless records: `None`, the sticky default.
#[derive(Debug)]
struct RegionPartitioner;

impl Partitioner for RegionPartitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        view: &PartitionView<'_>,
    ) -> Option<u32> {
        let key = key?;
        if key.starts_with(b"eu-") {
            return Some(0);
        }
        if key.starts_with(b"us-") {
            return Some(1);
        }
        let rest = view.num_partitions.checked_sub(2).filter(|&n| n > 0)?;
        // Any stable hash will do; FNV-1a keeps the example short.
        let h = key.iter().fold(0x811c_9dc5_u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Some(2 + h % rest)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder()
        .topic("orders", 6)
        .build()?;
    let producer = Producer::builder()
        .bootstrap(&mock.bootstrap_servers())
        .custom_partitioner(Arc::new(RegionPartitioner))
        .build()?;
    let keys = ["eu-1", "us-7", "eu-2", "apac-3", "latam-9", "us-8"];
    let pending: Vec<_> = keys
        .iter()
        .map(|k| producer.send(Record::new("orders", b"order").key(k.as_bytes())))
        .collect::<Result<_, _>>()?;
    for (key, delivery) in keys.iter().zip(pending) {
        let md = delivery.wait()?;
        println!("{key} -> partition {}", md.partition);
        match &key[..3] {
            "eu-" => assert_eq!(md.partition, 0),
            "us-" => assert_eq!(md.partition, 1),
            _ => assert!(md.partition >= 2),
        }
    }
    producer.close();
    Ok(())
}
