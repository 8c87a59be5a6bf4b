//! `KRING_TEST_TRACE=1` prints kring's `tracing` events (debug and above;
//! `trace` for everything) on stderr, with the thread name: enough to see
//! what the I/O thread did when an end-to-end test fails, without a
//! subscriber crate.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

struct Printer {
    max: Level,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", f.name(), v);
    }
}

impl Subscriber for Printer {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        let t = std::thread::current();
        eprintln!(
            "[{}] {} {}{}",
            t.name().unwrap_or("?"),
            e.metadata().level(),
            e.metadata().target(),
            f.0
        );
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the printer if `KRING_TEST_TRACE` is set (`trace` for every
/// level, anything else for debug and above). Call first in a test.
pub fn init() {
    let Ok(v) = std::env::var("KRING_TEST_TRACE") else {
        return;
    };
    let max = if v == "trace" {
        Level::TRACE
    } else {
        Level::DEBUG
    };
    let _ = tracing::subscriber::set_global_default(Printer { max });
}
