//! A minimal pipelined Produce load generator, to measure the ceiling of
//! kring-mock's sink: pre-encoded requests, up to N in flight per
//! connection, responses counted (not decoded) as they come back.
//!
//! By default it starts `kring-mock --sink` (the binary next to this
//! example in the target directory) as a separate process, so the sink's CPU
//! time can be read from `/proc/<pid>/stat` and is not mixed with the load
//! generator's. Build both first:
//!
//! ```text
//! cargo build --release -p kring-mock --bins --examples
//! target/release/examples/sink_load --partitions 16 --batch-bytes 16384 --record-bytes 100 --inflight 32 --seconds 10
//! ```
//!
//! With `--bootstrap HOST:PORT` it drives an already running sink instead
//! (pass `--sink-pid` to also report that process's CPU).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use kring_mock::frame::FrameReader;
use kring_mock::procstat::{cpu_time, CpuTime};
use kring_protocol::message::{decode_response_frame, encode_request};
use kring_protocol::messages::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kring_protocol::record::{Compression, RecordBatchBuilder};

/// Pipelined Produce load against a kring-mock sink.
#[derive(Debug, Parser)]
struct Args {
    /// Drive this sink instead of starting one.
    #[arg(long)]
    bootstrap: Option<String>,
    /// With --bootstrap: the sink's pid, to report its CPU.
    #[arg(long)]
    sink_pid: Option<u32>,
    /// Partitions per request (one batch each).
    #[arg(long, default_value_t = 16)]
    partitions: i32,
    /// Target size of each batch.
    #[arg(long, default_value_t = 16384)]
    batch_bytes: usize,
    /// Value size of each record (no key, no headers).
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 32)]
    inflight: u64,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Produce version (3-11).
    #[arg(long, default_value_t = 9)]
    version: i16,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

struct Sink {
    bootstrap: String,
    pid: Option<u32>,
    child: Option<Child>,
}

fn start_sink(args: &Args) -> Sink {
    if let Some(b) = &args.bootstrap {
        return Sink {
            bootstrap: b.clone(),
            pid: args.sink_pid,
            child: None,
        };
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("kring-mock"))
        .expect("target dir");
    let mut child = Command::new(&bin)
        .args(["--sink", "--default-partitions"])
        .arg(args.partitions.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); build it with `cargo build --release -p kring-mock --bins`",
                bin.display()
            )
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("bootstrap line");
    Sink {
        bootstrap: line.trim().to_string(),
        pid: Some(child.id()),
        child: Some(child),
    }
}

/// One batch of `record_bytes`-byte values filling about `batch_bytes`.
fn make_batch(args: &Args) -> (Bytes, usize) {
    let value = vec![b'x'; args.record_bytes];
    let mut b = RecordBatchBuilder::new(1_700_000_000_000, args.batch_bytes + 256);
    loop {
        let next = b.record_size(1_700_000_000_000, None, Some(&value), &[]);
        if b.record_count() > 0 && b.size_in_bytes() + next > args.batch_bytes {
            break;
        }
        b.append(1_700_000_000_000, None, Some(&value), &[]);
    }
    let n = b.record_count() as usize;
    let sealed = b.seal(Compression::None).expect("seal");
    (sealed.stamp(-1, -1, -1, false), n)
}

fn make_request(args: &Args, batch: &Bytes) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: (0..args.partitions)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(batch.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

/// Drives one connection until `stop`: a writer keeps up to `inflight`
/// requests outstanding (writing as many copies as there is room for in
/// one `write`), a reader counts response frames.
fn run_connection(
    addr: &str,
    frame: Arc<Vec<u8>>,
    frame_len: usize,
    inflight: u64,
    stop: Arc<AtomicBool>,
) -> Arc<Counters> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut rd = stream.try_clone().expect("clone");
    let mut wr = stream;
    let counters = Arc::new(Counters::default());
    let room = Arc::new((Mutex::new(()), Condvar::new()));
    {
        let counters = counters.clone();
        let room = room.clone();
        thread::spawn(move || {
            let mut reader = FrameReader::new(1 << 20);
            loop {
                match reader.read_from(&mut rd) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let mut n = 0;
                while let Ok(Some(_)) = reader.next_frame() {
                    n += 1;
                }
                counters.received.fetch_add(n, Ordering::Release);
                let _g = room.0.lock().unwrap();
                room.1.notify_one();
            }
        });
    }
    {
        let counters = counters.clone();
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let outstanding = counters.sent.load(Ordering::Relaxed)
                    - counters.received.load(Ordering::Acquire);
                let k = inflight.saturating_sub(outstanding);
                if k == 0 {
                    let g = room.0.lock().unwrap();
                    let outstanding = counters.sent.load(Ordering::Relaxed)
                        - counters.received.load(Ordering::Acquire);
                    if outstanding >= inflight {
                        let _ = room.1.wait_timeout(g, Duration::from_millis(50)).unwrap();
                    }
                    continue;
                }
                if wr.write_all(&frame[..k as usize * frame_len]).is_err() {
                    return;
                }
                counters.sent.fetch_add(k, Ordering::Relaxed);
            }
        });
    }
    counters
}

fn total(cs: &[Arc<Counters>]) -> u64 {
    cs.iter().map(|c| c.received.load(Ordering::Acquire)).sum()
}

fn main() {
    let args = Args::parse();
    let mut sink = start_sink(&args);
    let addr = sink
        .bootstrap
        .split(',')
        .next()
        .expect("an address")
        .to_string();
    let (batch, records_per_batch) = make_batch(&args);
    let req = make_request(&args, &batch);
    let mut one = Vec::new();
    encode_request(&mut one, 1, Some("sink-load"), args.version, &req).expect("encode");
    let frame_len = one.len();

    // Check once that the sink accepts the request.
    {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.write_all(&one).expect("write");
        let mut r = FrameReader::new(0);
        let body = loop {
            assert!(
                r.read_from(&mut s).expect("read") > 0,
                "sink closed the connection"
            );
            if let Some(f) = r.next_frame().expect("frame") {
                break Bytes::copy_from_slice(&r.buf()[f]);
            }
        };
        let (_, resp) =
            decode_response_frame::<ProduceRequest>(body, args.version).expect("decode");
        let errors: Vec<i16> = resp.responses[0]
            .partition_responses
            .iter()
            .map(|p| p.error_code)
            .filter(|&e| e != 0)
            .collect();
        assert!(errors.is_empty(), "sink answered errors {errors:?}");
    }

    let mut copies = Vec::with_capacity(frame_len * args.inflight as usize);
    for _ in 0..args.inflight {
        copies.extend_from_slice(&one);
    }
    let copies = Arc::new(copies);
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Vec<Arc<Counters>> = (0..args.connections)
        .map(|_| {
            run_connection(
                &addr,
                copies.clone(),
                frame_len,
                args.inflight,
                stop.clone(),
            )
        })
        .collect();

    thread::sleep(Duration::from_secs(1));
    let cpu0 = sink.pid.map(|p| cpu_time(Some(p)).expect("sink cpu"));
    let me0 = cpu_time(None).expect("own cpu");
    let (t0, r0) = (Instant::now(), total(&conns));
    thread::sleep(Duration::from_secs(args.seconds));
    let (t1, r1) = (Instant::now(), total(&conns));
    let cpu1 = sink.pid.map(|p| cpu_time(Some(p)).expect("sink cpu"));
    let me1 = cpu_time(None).expect("own cpu");
    stop.store(true, Ordering::Relaxed);

    let secs = (t1 - t0).as_secs_f64();
    let reqs = (r1 - r0) as f64;
    let records = reqs * f64::from(args.partitions) * records_per_batch as f64;
    println!(
        "sink_load: v{} {} partitions x {} B batches ({} records of {} B), {} in flight x {} connection(s), {:.1}s",
        args.version,
        args.partitions,
        batch.len(),
        records_per_batch,
        args.record_bytes,
        args.inflight,
        args.connections,
        secs
    );
    println!(
        "  {:.0} requests/s, {:.2} M records/s, {:.0} MB/s of requests",
        reqs / secs,
        records / secs / 1e6,
        reqs * frame_len as f64 / secs / 1e6
    );
    let show = |who: &str, a: CpuTime, b: CpuTime| {
        let used = (b.total() - a.total()).as_secs_f64();
        println!(
            "  {who} cpu: {:.2} cores (user {:.2}s, system {:.2}s), {:.2} us/request, {:.1} ns/record",
            used / secs,
            (b.user - a.user).as_secs_f64(),
            (b.system - a.system).as_secs_f64(),
            used / reqs * 1e6,
            used / records * 1e9
        );
    };
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        show("sink", a, b);
    }
    show("load generator", me0, me1);
    if let Some(mut child) = sink.child.take() {
        drop(child.stdin.take());
        let _ = child.wait();
    }
}
