//! `KRING_LOG=LEVEL`: kring's `tracing` events on stderr.
//!
//! The kring crates report what they do (connections, metadata requests,
//! timeouts) through `tracing`, but a library installs no subscriber and
//! `tracing-subscriber` is not among the project's dependencies. Without
//! one, a benchmark child process that misbehaves says nothing; this is the
//! smallest subscriber that makes it talk: events at or above one level,
//! one line each (time since start, level, thread, target, message and
//! fields), spans ignored. Off unless `KRING_LOG` is set, so benchmarks pay
//! nothing for it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The environment variable naming the level (`error`, `warn`, `info`,
/// `debug` or `trace`).
pub const ENV: &str = "KRING_LOG";

/// Parses a level name (case-insensitive); `None` for anything else,
/// including `off`.
pub fn parse_level(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// Installs the stderr subscriber if `KRING_LOG` names a level. Returns
/// whether it did. A second call (or another subscriber already installed)
/// changes nothing.
pub fn init_from_env() -> bool {
    let Some(level) = std::env::var(ENV).ok().as_deref().and_then(parse_level) else {
        return false;
    };
    tracing::subscriber::set_global_default(StderrSubscriber::new(level)).is_ok()
}

/// Writes events at or above `max` to stderr, one line each.
#[derive(Debug)]
pub struct StderrSubscriber {
    max: Level,
    start: Instant,
    next_span: AtomicU64,
}

impl StderrSubscriber {
    /// A subscriber for events at `max` and more severe.
    pub fn new(max: Level) -> Self {
        StderrSubscriber {
            max,
            start: Instant::now(),
            next_span: AtomicU64::new(1),
        }
    }

    /// The line an event is written as (without the newline).
    fn format(&self, event: &Event<'_>) -> String {
        let meta = event.metadata();
        let mut line = format!(
            "{:>10.6} {:<5} [{}] {}:",
            self.start.elapsed().as_secs_f64(),
            meta.level(),
            std::thread::current().name().unwrap_or("?"),
            meta.target()
        );
        event.record(&mut LineVisitor(&mut line));
        line
    }
}

/// Appends `name=value` for each field, the message bare.
struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for StderrSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = self.format(event);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("DEBUG"), Some(Level::DEBUG));
        assert_eq!(parse_level(" warn "), Some(Level::WARN));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level("verbose"), None);
    }

    #[test]
    fn filters_by_level() {
        let s = StderrSubscriber::new(Level::INFO);
        tracing::subscriber::with_default(s, || {
            assert!(tracing::enabled!(Level::WARN));
            assert!(tracing::enabled!(Level::INFO));
            assert!(!tracing::enabled!(Level::DEBUG));
        });
    }
}
