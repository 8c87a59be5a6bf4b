//! Randomized chaos against kring-mock (see `support/chaos.rs`): a fixed
//! set of seeds for CI, plus the soak and single-seed entry points that
//! `scripts/soak` and a failing seed's repro line use.
//!
//! - `KRING_CHAOS_SEED=<seed> [KRING_CHAOS_SCALE=soak] [KRING_CHAOS_SKIP=i,j]
//!   cargo test --release --test e2e_chaos chaos_seed -- --ignored --nocapture`
//!   reruns one seed (`KRING_CHAOS_SHRINK=1` also reduces its schedule);
//! - `scripts/soak N [start_seed]` runs N soak-scale seeds.

#[path = "support/chaos.rs"]
mod chaos;
#[allow(dead_code)] // client certificates: not used by the chaos seeds
#[path = "support/pki.rs"]
mod pki;

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use chaos::{run_seed, shrink, skip_from_env, Scale};

/// Runs `seeds` at CI scale; fails listing every violating seed.
fn ci(seeds: std::ops::RangeInclusive<u64>) {
    let start = Instant::now();
    let mut failing = Vec::new();
    let mut records = 0;
    for seed in seeds.clone() {
        let out = run_seed(seed, Scale::Ci, &HashSet::new());
        records += out.records;
        eprintln!(
            "seed {seed}: {} records, {} acked, {} failed as scheduled, {} failed out of order, {} batches compressed while blocked, {} SASL authentications over {} connections, {} callback panics, {} refused for a lying partitioner, run {:?}, close {:?} [{}]",
            out.records,
            out.acked,
            out.failed_expected,
            out.failed_out_of_order,
            out.compressed_while_blocked,
            out.authentications,
            out.connections,
            out.callback_panics,
        out.refused_as_expected,
            out.run_time,
            out.close_time,
            out.summary()
        );
        if !out.ok() {
            failing.push((seed, out.summary()));
        }
    }
    eprintln!(
        "seeds {seeds:?}: {records} records in {:?}, {} failing",
        start.elapsed(),
        failing.len()
    );
    assert!(failing.is_empty(), "violating seeds: {failing:?}");
}

#[test]
fn chaos_ci_seeds_01_to_10() {
    ci(1..=10);
}

#[test]
fn chaos_ci_seeds_11_to_20() {
    ci(11..=20);
}

#[test]
fn chaos_ci_seeds_21_to_30() {
    ci(21..=30);
}

#[test]
fn chaos_ci_seeds_31_to_40() {
    ci(31..=40);
}

/// A seed whose senders block for a 64 KiB `buffer.memory` through its
/// faults and, with gzip and no compression threads, compress lingered
/// batches while they wait (`Metrics::batches_compressed_while_blocked`):
/// the guarantees hold on that path too. Whether a run reaches it depends
/// on timing (30 to 63 batches in seven release runs here), so the seed
/// runs up to three times until one does; every run must pass the checks.
/// In a debug build (the test suite's) the senders are too slow to fill
/// 64 KiB with lingered batches (0 batches in every debug run tried, of
/// this seed and four others that draw the same settings): there the seed
/// runs once for its checks, and the help path itself is covered by
/// kring's `threads_blocked_for_memory_compress_*` tests.
#[test]
fn chaos_senders_blocked_for_memory_compress_through_faults() {
    const SEED: u64 = 63_320;
    let cfg = chaos::ChaosConfig::generate(SEED, Scale::Soak);
    assert_eq!(
        (cfg.codec, cfg.compression_threads, cfg.buffer_memory),
        (kring::Compression::Gzip, 0, Some(64 << 10)),
        "seed {SEED} no longer draws the settings this test is about: {cfg}"
    );
    let release = !cfg!(debug_assertions);
    let mut reached = 0;
    for run in 1..=(if release { 3 } else { 1 }) {
        let out = run_seed(SEED, Scale::Soak, &HashSet::new());
        eprintln!(
            "run {run}: {} records, {} acked, {} batches compressed while blocked [{}]",
            out.records,
            out.acked,
            out.compressed_while_blocked,
            out.summary()
        );
        assert!(out.ok(), "seed {SEED}, run {run}: {}", out.summary());
        reached = out.compressed_while_blocked;
        if reached > 0 {
            break;
        }
    }
    assert!(
        reached > 0 || !release,
        "no run compressed a batch while blocked"
    );
}

/// One seed from `KRING_CHAOS_SEED` (the repro line of a failing seed).
#[test]
#[ignore = "manual: KRING_CHAOS_SEED=<seed>"]
fn chaos_seed() {
    let seed: u64 = std::env::var("KRING_CHAOS_SEED")
        .expect("KRING_CHAOS_SEED")
        .parse()
        .expect("KRING_CHAOS_SEED: a number");
    let scale = Scale::from_env();
    if std::env::var_os("KRING_CHAOS_SHRINK").is_some() {
        shrink(seed, scale, 2);
        return;
    }
    eprintln!("seed {seed}: {}", chaos::ChaosConfig::generate(seed, scale));
    let out = run_seed(seed, scale, &skip_from_env());
    eprintln!(
        "seed {seed}: {} records, {} acked, {} failed out of order, {} failed but stored, {} batches compressed while blocked, {} SASL authentications over {} connections, {} callback panics, {} refused for a lying partitioner, run {:?}, close {:?} [{}]",
        out.records,
        out.acked,
        out.failed_out_of_order,
        out.failed_but_stored,
        out.compressed_while_blocked,
        out.authentications,
        out.connections,
        out.callback_panics,
        out.refused_as_expected,
        out.run_time,
        out.close_time,
        out.summary()
    );
    assert!(out.ok(), "seed {seed}: {}", out.summary());
}

/// The soak: `KRING_CHAOS_SOAK=<n>` seeds from `KRING_CHAOS_SOAK_START`
/// (default 1000), at soak scale. Prints every failing seed's repro block
/// and a summary.
#[test]
#[ignore = "soak: run with scripts/soak"]
fn chaos_soak() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("KRING_CHAOS_SOAK", 20);
    let first = env("KRING_CHAOS_SOAK_START", 1000);
    // The harness printed "test chaos_soak ... " without a newline.
    println!();
    let start = Instant::now();
    let mut records = 0;
    let (mut acked, mut failed_expected, mut failed_ooo, mut failed_stored) = (0, 0, 0, 0);
    let mut by_kind: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut failing = Vec::new();
    for seed in first..first + n {
        let out = run_seed(seed, Scale::Soak, &HashSet::new());
        records += out.records;
        acked += out.acked;
        failed_expected += out.failed_expected;
        failed_ooo += out.failed_out_of_order;
        failed_stored += out.failed_but_stored;
        println!(
            "seed {seed}: {} {} records ({} acked, {} failed as scheduled, {} failed out of order, {} failed but stored, {} batches compressed while blocked, {} SASL authentications over {} connections, {} callback panics, {} refused for a lying partitioner), run {:.1?}, close {:.1?}{}",
            if out.ok() { "ok" } else { "FAIL" },
            out.records,
            out.acked,
            out.failed_expected,
            out.failed_out_of_order,
            out.failed_but_stored,
            out.compressed_while_blocked,
            out.authentications,
            out.connections,
            out.callback_panics,
        out.refused_as_expected,
            out.run_time,
            out.close_time,
            if out.ok() {
                String::new()
            } else {
                format!(" [{}]", out.summary())
            }
        );
        for (k, (count, _)) in &out.violations {
            let e = by_kind.entry(k).or_default();
            e.0 += 1;
            e.1 += count;
        }
        if !out.ok() {
            failing.push(seed);
        }
    }
    println!(
        "SOAK SUMMARY seeds {first}..{}: {n} seeds, {records} records, {} violating seeds, {:.0?}",
        first + n,
        failing.len(),
        start.elapsed()
    );
    println!(
        "  records: {acked} acked, {failed_expected} failed on partitions with a scheduled fatal error, \
         {failed_ooo} failed with OUT_OF_ORDER_SEQUENCE_NUMBER at once, {failed_stored} failed but stored"
    );
    for (k, (seeds, count)) in &by_kind {
        println!("  {k}: {seeds} seeds, {count} records/events");
    }
    println!("  failing seeds: {failing:?}");
    assert!(failing.is_empty(), "violating seeds: {failing:?}");
}

/// Seeds 1-10 against librdkafka's mock cluster, with the steps it can
/// play (see `chaos::rdkafka_mock`): a second, independent broker
/// implementation for the invariants that do not need deduplication.
#[test]
fn chaos_rdkafka_mock_seeds_01_to_10() {
    let start = Instant::now();
    let mut failing = Vec::new();
    for seed in 1..=10 {
        let out = chaos::rdkafka_mock::run_seed(seed, Scale::Ci);
        eprintln!(
            "librdkafka mock seed {seed}: {} records, {} acked, run {:?}, close {:?} [{}]",
            out.records,
            out.acked,
            out.run_time,
            out.close_time,
            out.summary()
        );
        if !out.ok() {
            failing.push((seed, out.summary()));
        }
    }
    eprintln!("librdkafka mock seeds 1..=10 in {:?}", start.elapsed());
    assert!(failing.is_empty(), "violating seeds: {failing:?}");
}

/// Replays one input of kring-core's Sim chaos run (`kring_core::sim::chaos`,
/// the `producer_sim` fuzz target's body; a fuzzer artifact, say) with its
/// trace: `CHAOS_FILE=path cargo test --test e2e_chaos replay_sim_chaos_file
/// -- --ignored --nocapture`. The file is read here because kring-core does
/// no I/O.
#[test]
#[ignore = "replays the input named by CHAOS_FILE"]
fn replay_sim_chaos_file() {
    let path = std::env::var_os("CHAOS_FILE").expect("CHAOS_FILE=<path of a producer_sim input>");
    let data = std::fs::read(&path).expect("CHAOS_FILE readable");
    let out =
        kring_core::sim::chaos::run_traced(&data, Instant::now(), Some(&mut |l| eprintln!("{l}")));
    eprintln!("{out:?}");
    assert!(out.is_ok(), "{out:?}");
}
