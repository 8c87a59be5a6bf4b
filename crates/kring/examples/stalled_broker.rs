//! Memory held while a broker accepts and never reads (issue 15, "stalled
//! broker"): a one-broker kring-mock whose Produce handling sleeps, so
//! after the first Produce request its connection is never read again.
//! Senders fill `buffer.memory`; the process's RSS is printed every second
//! next to the bytes `buffer.memory` accounts for.
//!
//! The mock runs in a child process (this example, with `serve`), so the
//! memory it holds (every request it read before it stalled) is not counted
//! as the producer's.
//!
//! `cargo run -p kring --example stalled_broker [-- PARTITIONS RECORD_BYTES SECONDS]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kring::{Producer, Record};
use kring_mock::{Fault, MockCluster};

const PRODUCE: i16 = 0;

fn status_kib(field: &str) -> u64 {
    proc_status_kib("self", field)
}

fn proc_status_kib(pid: &str, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The child: a one-broker cluster whose Produce handling stalls; prints
/// its bootstrap address and runs until its stdin closes.
fn serve(partitions: i32) {
    let cluster = MockCluster::builder()
        .brokers(1)
        .topic("t", partitions)
        .build()
        .expect("mock cluster");
    cluster.inject(Fault::delay(PRODUCE, Duration::from_secs(3600)).always());
    println!("{}", cluster.bootstrap_servers());
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    std::process::exit(0);
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some("serve") {
        return serve(raw[1].parse().expect("partitions"));
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let partitions = args.first().copied().unwrap_or(16);
    let record_bytes = args.get(1).copied().unwrap_or(1000);
    let seconds = args.get(2).copied().unwrap_or(30) as u64;

    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["serve", &partitions.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mock process");
    let mut bootstrap = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut bootstrap,
    )
    .expect("bootstrap address");
    let bootstrap = bootstrap.trim().to_owned();
    let rss0 = status_kib("VmRSS:");
    let producer = Arc::new(
        Producer::builder()
            .bootstrap(&bootstrap)
            .request_timeout(Duration::from_secs(5))
            .delivery_timeout(Duration::from_secs(20))
            .max_block(Duration::from_secs(5))
            .build()
            .expect("producer"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (p, stop, sent, refused) = (
                Arc::clone(&producer),
                Arc::clone(&stop),
                Arc::clone(&sent),
                Arc::clone(&refused),
            );
            std::thread::spawn(move || {
                let value = vec![7u8; record_bytes];
                while !stop.load(Ordering::Relaxed) {
                    match p.try_send(Record::new("t", &value)) {
                        Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let start = Instant::now();
    println!(
        "t_s rss_mib hwm_mib buffered_mib frames_mib mock_rss_mib sent refused (rss before producer {:.1} MiB)",
        rss0 as f64 / 1024.0
    );
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        let m = producer.metrics();
        println!(
            "{:>3} {:>7.1} {:>7.1} {:>12.1} {:>10.1} {:>12.1} {:>8} {:>8}",
            start.elapsed().as_secs(),
            status_kib("VmRSS:") as f64 / 1024.0,
            status_kib("VmHWM:") as f64 / 1024.0,
            m.buffered_bytes as f64 / (1024.0 * 1024.0),
            m.request_bytes_held as f64 / (1024.0 * 1024.0),
            proc_status_kib(&child.id().to_string(), "VmRSS:") as f64 / 1024.0,
            sent.load(Ordering::Relaxed),
            refused.load(Ordering::Relaxed),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let t = Instant::now();
    let all = producer.close_timeout(Duration::from_secs(30));
    println!(
        "closed in {:?} (all results: {all}); rss {:.1} MiB, hwm {:.1} MiB",
        t.elapsed(),
        status_kib("VmRSS:") as f64 / 1024.0,
        status_kib("VmHWM:") as f64 / 1024.0
    );
    drop(child.stdin.take());
    let _ = child.wait();
}
