//! The e2e readers agree with each other and with what librdkafka wrote:
//! checks the test harness itself (tansu start-up, topic creation, both
//! readers and their field-by-field output) independently of kring.

mod support;

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use support::{read_kafka_python, read_rdkafka, Tansu};

#[test]
fn readers_agree_on_what_librdkafka_wrote() {
    let tansu = Tansu::start();
    tansu.create_topic("harness", 4);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("compression.type", "gzip")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let n = 2000;
    for i in 0..n {
        let key = format!("k{i}");
        let value = format!("value-{i}");
        let mut rec = BaseRecord::to("harness")
            .payload(&value)
            .partition(i % 4)
            .timestamp(1_700_000_000_000 + i64::from(i))
            .headers(OwnedHeaders::new().insert(Header {
                key: "h",
                value: Some(key.as_bytes()),
            }));
        if i % 3 != 0 {
            rec = rec.key(&key);
        }
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let a = read_rdkafka(&tansu.bootstrap(), "harness", 4, n as usize);
    let b = read_kafka_python(&tansu.bootstrap(), "harness", 4, n as usize);
    assert_eq!(a, b);
    for r in &a {
        let i: i64 = r.timestamp - 1_700_000_000_000;
        assert_eq!(i64::from(r.partition), i % 4);
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        let key = format!("k{i}").into_bytes();
        assert_eq!(r.key, (i % 3 != 0).then(|| key.clone()));
        assert_eq!(r.headers, vec![("h".to_owned(), Some(key))]);
    }
}
