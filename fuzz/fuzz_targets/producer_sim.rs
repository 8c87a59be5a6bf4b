//! The producer state machine under fuzzer-chosen chaos: the bytes choose
//! the configuration, the workload and every broker's behaviour (faults,
//! leader moves, brokers stopped and started), and the real `ProducerCore`
//! runs through kring-core's `Sim` over kring-mock's own request dispatch.
//! After close every guarantee is checked (one result per record, acked
//! records stored once at their offsets, order per sender with idempotence,
//! bounded close): see `kring_core::sim::chaos`. Deterministic: simulated
//! time, no threads, no sockets.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

/// Where simulated time starts. Read once per process; the core never reads
/// the clock, so every run of an input behaves the same whatever it is.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let start = *ORIGIN.get_or_init(Instant::now);
    if let Err(violation) = kring_core::sim::chaos::run(data, start) {
        panic!("guarantee broken: {violation}");
    }
});
