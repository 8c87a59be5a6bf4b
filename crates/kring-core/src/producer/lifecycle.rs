//! Where the core is in its life: running, closing, finished, and the
//! fatal error that ends sending early.
//!
//! **Invariant:** the lifecycle only moves forward. Close, once begun, is
//! never undone; the core is finished only after close began, and once
//! finished stays so (the driver exits on it); a fatal error, once set,
//! is never cleared (every batch taken from then on fails with it). The
//! fields are private to this module, so no other part of the core can
//! reopen a closing producer or clear a fatal error.

use crate::delivery::DeliveryError;

/// Running → closing → finished, plus the fatal error.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    closing: bool,
    finished: bool,
    /// A fatal error: every batch fails with it.
    fatal: Option<DeliveryError>,
}

impl Lifecycle {
    /// Whether close was requested.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the core finished (close requested, every record has its
    /// result, every connection asked to close).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The fatal error, once one happened.
    pub(crate) fn fatal(&self) -> Option<&DeliveryError> {
        self.fatal.as_ref()
    }

    /// Close was requested (idempotent).
    pub(crate) fn begin_close(&mut self) {
        self.closing = true;
    }

    /// The producer cannot work any more: every batch fails with `err`
    /// (a later fatal error replaces the reported one).
    pub(crate) fn set_fatal(&mut self, err: DeliveryError) {
        self.fatal = Some(err);
    }

    /// Close completed.
    pub(crate) fn finish(&mut self) {
        debug_assert!(self.closing, "finished without close");
        self.finished = true;
    }
}
