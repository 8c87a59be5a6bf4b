//! Keys and headers: a key picks the partition (murmur2, as the Java
//! client: the same key always lands on the same partition while the
//! partition count stays the same) and travels with the record; headers
//! are name/value pairs (values may be null) for metadata such as trace ids
//! or content types.
//!
//! Run: `cargo run -p kring --example headers_keys -- 127.0.0.1:9092 events`
//! (without arguments it starts an in-process kring-mock broker and prints
//! what it stored).

use kring::{Header, Producer, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mock, bootstrap, topic) = match args.as_slice() {
        [bootstrap, topic] => (None, bootstrap.clone(), topic.clone()),
        _ => {
            let mock = kring_mock::MockCluster::builder()
                .topic("events", 4)
                .build()?;
            let b = mock.bootstrap_servers();
            (Some(mock), b, "events".to_owned())
        }
    };
    let producer = Producer::builder().bootstrap(&bootstrap).build()?;

    let mut pending = Vec::new();
    for (user, action) in [("alice", "login"), ("bob", "login"), ("alice", "logout")] {
        let trace_id = format!("trace-{user}-{action}");
        // Headers borrow their names and values: they only need to live
        // until `send` returns (the record is copied into a batch).
        let headers = [
            Header {
                key: "content-type",
                value: Some(b"text/plain"),
            },
            Header {
                key: "trace-id",
                value: Some(trace_id.as_bytes()),
            },
            // A header with a null value.
            Header {
                key: "tombstone-hint",
                value: None,
            },
        ];
        let record = Record::new(&topic, action.as_bytes())
            .key(user.as_bytes())
            .headers(&headers);
        pending.push((user, producer.send(record)?));
    }
    for (user, delivery) in pending {
        let md = delivery.wait()?;
        println!("{user}: partition {} offset {}", md.partition, md.offset);
    }
    producer.close();

    // With the in-process broker, show what it stored.
    if let Some(mock) = mock {
        for p in 0..4 {
            for r in mock.records(&topic, p)? {
                let key = r.key.as_deref().map(String::from_utf8_lossy);
                let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
                println!("stored in partition {p}: key {key:?}, headers {names:?}");
            }
        }
    }
    Ok(())
}
