//! With the `log` feature, kring's warnings reach a `log` logger (as
//! `env_logger` users have) when no tracing subscriber is installed.
#![cfg(feature = "log")]

use std::sync::Mutex;

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn kring_warnings_reach_the_log_facade() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    // An explicit delivery.timeout.ms below linger + request.timeout makes
    // kring lower request.timeout.ms with a warning.
    let config = kring::ProducerConfig::from_properties([
        ("bootstrap.servers", "127.0.0.1:9092"),
        ("delivery.timeout.ms", "10000"),
    ])
    .unwrap()
    .validate()
    .unwrap();
    assert!(config.get_request_timeout() < std::time::Duration::from_secs(10));
    let seen = CAPTURE.0.lock().unwrap();
    assert!(
        seen.iter()
            .any(|(level, target, msg)| *level == log::Level::Warn
                && target.starts_with("kring")
                && msg.contains("request.timeout.ms lowered")),
        "{seen:?}"
    );
}
