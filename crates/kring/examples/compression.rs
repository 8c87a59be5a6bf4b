//! Compression: set `compression.type` (gzip, snappy, lz4, or zstd with
//! the default `zstd` feature). Batches are compressed as they are sealed,
//! so bigger batches compress better: `linger.ms` and `batch.size` decide
//! how much goes into one.
//!
//! Run: `cargo run -p kring --example compression`
//! (an in-process kring-mock broker; prints each codec's bytes on the wire).

use std::time::Duration;

use kring::{Compression, Producer, ProducerConfig, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = kring_mock::MockCluster::builder().build()?;
    // Repetitive JSON-ish values, as real events often are.
    let values: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                r#"{{"user":"user-{}","action":"view","page":"/items/{}"}}"#,
                i % 50,
                i % 300
            )
        })
        .collect();
    let raw: usize = values.iter().map(String::len).sum();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        if !codec.is_built() {
            println!("{codec}: not in this build (built without the `{codec}` feature)");
            continue;
        }
        let topic = format!("events-{codec}");
        mock.create_topic(&topic, 1)?;
        // The typed setter, or the property: `("compression.type", "lz4")`.
        let config = ProducerConfig::default()
            .bootstrap(&mock.bootstrap_servers())
            .compression(codec)
            .linger(Duration::from_millis(20))
            .batch_size(256 * 1024);
        let producer = Producer::new(config)?;
        for v in &values {
            // Dropping the handle is fine: close() below still waits for
            // every result (and reports failures through its return value).
            drop(producer.send(Record::new(&topic, v.as_bytes()))?);
        }
        assert!(producer.close(), "every record delivered");
        let batches = mock.batches(&topic, 0)?;
        let wire: usize = batches.iter().map(|b| b.bytes.len()).sum();
        println!(
            "{codec:>6}: {} batches, {wire} bytes on the wire for {raw} bytes of values ({:.2}x)",
            batches.len(),
            raw as f64 / wire as f64
        );
    }
    Ok(())
}
