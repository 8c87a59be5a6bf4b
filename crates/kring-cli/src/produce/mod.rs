//! `kring produce`: records from stdin or files to a topic, kcat style.
//! The flags mean what they mean to `kcat -P`: `-b`, `-t`, `-p` (`-1`: the
//! partitioner), `-k`, `-K`, `-D`, `-H`, `-z`, `-l`, `-T`, `-c`, `-m`,
//! `-q`, `-v`, `-X name=value` and `-X list`.
//!
//! Before reading any input it waits at most `-m` seconds (default 5) for
//! the topic's metadata, so with no broker answering it fails in seconds
//! with the cause (connection refused, unknown topic, ...) instead of
//! waiting `max.block.ms` per record. Every record then gets its result;
//! the command exits non-zero if any failed, after listing each failed
//! record (its index in the input, from 0) and the error.
//!
//! With `-X transactional.id=ID` the whole input is one transaction:
//! committed when every record was written and the input read to its
//! end, aborted otherwise (then readers with `read_committed` see none of
//! it, and the command fails).

pub mod input;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use kring::config::{property_description, PROPERTY_NAMES};
use kring::{DeliveryFuture, Header, Producer, ProducerConfig, Record};

use crate::args::{duration_arg, kv_arg};
use crate::error::CliError;
use input::{split_key, unescape, RecordReader};

/// Arguments of `kring produce`.
#[derive(Args, Clone, Debug)]
pub struct ProduceArgs {
    /// Produce mode (accepted for kcat compatibility; `produce` is it).
    #[arg(short = 'P')]
    pub produce_mode: bool,
    /// Bootstrap brokers, host:port[,host:port...].
    #[arg(short = 'b', long = "brokers")]
    pub brokers: Option<String>,
    /// Topic to produce to.
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// Partition; -1 (the default) lets the partitioner choose.
    #[arg(short = 'p', long, allow_negative_numbers = true)]
    pub partition: Option<i32>,
    /// Key for every record. With -K, a record's own key wins; records
    /// without a key delimiter get this one.
    #[arg(short = 'k', value_name = "KEY")]
    pub key: Option<String>,
    /// Key delimiter: each record is split on its first occurrence into key
    /// and value (no delimiter in a record: the -k key, or no key).
    #[arg(short = 'K', value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// Record delimiter (escapes \n \r \t \0 \\ \xHH).
    #[arg(short = 'D', value_name = "DELIM", default_value = "\\n")]
    pub delimiter: String,
    /// Header for every record, name=value (repeatable).
    #[arg(short = 'H', value_name = "NAME=VALUE", value_parser = kv_arg)]
    pub headers: Vec<(String, String)>,
    /// Producer property, name=value (repeatable), e.g. -X linger.ms=10;
    /// `-X list` prints every accepted property and exits.
    #[arg(short = 'X', value_name = "NAME=VALUE|list")]
    pub properties: Vec<String>,
    /// Compression codec: none, gzip, snappy, lz4 or zstd (sets
    /// compression.type).
    #[arg(short = 'z', value_name = "CODEC")]
    pub compression: Option<String>,
    /// With one FILE: split it into records on the delimiter, as stdin is.
    /// Without -l each FILE is sent whole, as one record.
    #[arg(short = 'l')]
    pub split_file: bool,
    /// Echo each record sent to stdout (with the delimiter), like tee.
    #[arg(short = 'T')]
    pub tee: bool,
    /// Stop after this many records.
    #[arg(short = 'c', value_name = "CNT")]
    pub count: Option<u64>,
    /// How long to wait for the topic's metadata before giving up, in
    /// seconds (or 500ms, 10s, ...).
    #[arg(short = 'm', value_name = "SECS", default_value = "5", value_parser = duration_arg)]
    pub metadata_timeout: Duration,
    /// Quiet: no summary line (errors are still printed).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Verbose: kring's log on stderr (-v info, -vv debug, -vvv trace),
    /// unless KRING_LOG already chose a level.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Read records from this file instead of stdin (same as -l FILE).
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Files to send: each one whole as a record, or with -l the single
    /// file split on the delimiter. Default: stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Results not yet waited for, oldest first, beyond which reading waits for
/// the oldest (bounded memory for any input size).
const MAX_PENDING: usize = 100_000;

/// The lines `-X list` prints: every accepted property and what it does.
pub fn property_list() -> String {
    let width = PROPERTY_NAMES.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for name in PROPERTY_NAMES {
        let d = property_description(name).unwrap_or("(no description)");
        out.push_str(&format!("{name:<width$}  {d}\n"));
    }
    out
}

/// Where the records come from.
enum Source {
    /// A stream split on the delimiter (stdin, `-f`, `-l FILE`).
    Split(Box<dyn BufRead>),
    /// Files sent whole, one record each.
    Whole(Vec<PathBuf>),
}

fn open_source(a: &ProduceArgs) -> Result<Source, CliError> {
    let open = |path: &PathBuf| -> Result<Box<dyn BufRead>, CliError> {
        Ok(Box::new(BufReader::new(File::open(path).map_err(|e| {
            CliError::io(format!("opening {}", path.display()), e)
        })?)))
    };
    match (&a.file, a.files.as_slice(), a.split_file) {
        (Some(_), [_, ..], _) => Err(CliError::Usage(
            "-f FILE and FILE arguments do not go together (use one)".into(),
        )),
        (Some(f), [], _) => Ok(Source::Split(open(f)?)),
        (None, [], true) => Err(CliError::Usage("-l needs one FILE".into())),
        (None, [], false) => Ok(Source::Split(Box::new(BufReader::new(std::io::stdin())))),
        (None, [f], true) => Ok(Source::Split(open(f)?)),
        (None, [_, _, ..], true) => Err(CliError::Usage(
            "-l takes exactly one FILE (kcat's rule)".into(),
        )),
        (None, files, false) => Ok(Source::Whole(files.to_vec())),
    }
}

/// Installs the stderr log at the level `-v` asks for, unless `KRING_LOG`
/// already installed one.
fn verbose_log(v: u8) {
    let level = match v {
        0 => return,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing::subscriber::set_global_default(crate::log::StderrSubscriber::new(level));
}

/// Runs `kring produce`.
pub fn run(a: ProduceArgs) -> Result<(), CliError> {
    if a.properties.iter().any(|p| p == "list") {
        print!("{}", property_list());
        return Ok(());
    }
    let brokers = a
        .brokers
        .clone()
        .ok_or_else(|| CliError::Usage("-b BROKERS is required".into()))?;
    let topic = a
        .topic
        .clone()
        .ok_or_else(|| CliError::Usage("-t TOPIC is required".into()))?;
    let partition = match a.partition {
        None | Some(-1) => None,
        Some(p) if p >= 0 => Some(p),
        Some(p) => {
            return Err(CliError::invalid(
                "partition",
                p.to_string(),
                "a partition number, or -1 for the partitioner",
            ))
        }
    };
    verbose_log(a.verbose);
    let delim = unescape(&a.delimiter)?;
    let key_delim = a.key_delimiter.as_deref().map(unescape).transpose()?;
    let mut props = vec![("bootstrap.servers".to_string(), brokers.clone())];
    for p in &a.properties {
        props.push(crate::args::parse_key_value(p)?);
    }
    if let Some(z) = &a.compression {
        props.push(("compression.type".to_string(), z.clone()));
    }
    let source = open_source(&a)?;
    let config = ProducerConfig::from_properties(props)
        .map_err(|e| CliError::Kring(format!("configuration: {e}")))?;
    let producer = Producer::builder()
        .config(config)
        .build()
        .map_err(|e| CliError::Kring(format!("starting the producer: {e}")))?;

    // Fail fast: without metadata no record can be sent, and each would
    // wait max.block.ms.
    if let Err(e) = producer.wait_for_metadata(&topic, a.metadata_timeout) {
        producer.close_timeout(Duration::from_secs(1));
        return Err(CliError::Metadata {
            brokers,
            waited: a.metadata_timeout,
            error: e,
        });
    }

    let transactional = producer.is_transactional();
    if transactional {
        producer
            .init_transactions()
            .and_then(|()| producer.begin_transaction())
            .map_err(|e| CliError::Kring(format!("starting the transaction: {e}")))?;
    }

    let headers: Vec<Header<'_>> = a
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k.as_str(),
            value: Some(v.as_bytes()),
        })
        .collect();
    let mut run = Run {
        producer: &producer,
        topic: &topic,
        partition,
        headers: &headers,
        constant_key: a.key.as_deref().map(str::as_bytes),
        tee: a.tee.then(std::io::stdout),
        delim: &delim,
        failed: Vec::new(),
        pending: VecDeque::new(),
        total: 0,
    };
    let limit = a.count.unwrap_or(u64::MAX);
    let read_result = match source {
        Source::Split(reader) => {
            let mut records = RecordReader::new(reader, delim.clone());
            loop {
                if run.total >= limit {
                    break Ok(());
                }
                match records.next_record() {
                    Ok(Some(raw)) => {
                        let (key, value) = match key_delim.as_deref() {
                            Some(d) => split_key(&raw, d),
                            None => (None, &raw[..]),
                        };
                        run.send(key, value, &raw)?;
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(CliError::io("reading the input", e)),
                }
            }
        }
        Source::Whole(files) => {
            let mut result = Ok(());
            for path in files
                .iter()
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
            {
                let mut data = Vec::new();
                if let Err(e) = File::open(path).and_then(|mut f| f.read_to_end(&mut data)) {
                    result = Err(CliError::io(format!("reading {}", path.display()), e));
                    break;
                }
                run.send(None, &data, &data)?;
            }
            result
        }
    };
    // Whatever was sent gets its result, even if reading the input failed.
    producer.flush();
    let Run {
        mut failed,
        pending,
        total,
        ..
    } = run;
    for (i, f) in pending {
        if let Err(e) = f.wait() {
            failed.push((i, e.to_string()));
        }
    }
    if transactional {
        let ended = if failed.is_empty() && read_result.is_ok() {
            producer.commit_transaction().map(|()| "committed")
        } else {
            producer.abort_transaction().map(|()| "aborted")
        };
        match ended {
            Ok(how) if !a.quiet => eprintln!("kring: transaction {how}"),
            Ok(_) => {}
            Err(e) => {
                producer.close();
                return Err(CliError::Kring(format!("ending the transaction: {e}")));
            }
        }
    }
    producer.close();
    failed.sort();
    for (index, error) in &failed {
        eprintln!("kring: record {index} failed: {error}");
    }
    read_result?;
    if failed.is_empty() {
        if !a.quiet {
            eprintln!("kring: {total} records delivered to {topic}");
        }
        Ok(())
    } else {
        Err(CliError::RecordsFailed {
            failed: failed.len() as u64,
            total,
        })
    }
}

/// The state of one `kring produce` run while records are read.
struct Run<'a> {
    producer: &'a Producer,
    topic: &'a str,
    partition: Option<i32>,
    headers: &'a [Header<'a>],
    constant_key: Option<&'a [u8]>,
    tee: Option<std::io::Stdout>,
    delim: &'a [u8],
    failed: Vec<(u64, String)>,
    pending: VecDeque<(u64, DeliveryFuture)>,
    total: u64,
}

impl Run<'_> {
    /// Sends one record (`raw` is what `-T` echoes).
    fn send(&mut self, key: Option<&[u8]>, value: &[u8], raw: &[u8]) -> Result<(), CliError> {
        let index = self.total;
        self.total += 1;
        let mut record = Record::new(self.topic, value).headers(self.headers);
        if let Some(k) = key.or(self.constant_key) {
            record = record.key(k);
        }
        if let Some(p) = self.partition {
            record = record.partition(p);
        }
        match self.producer.send(record) {
            Ok(f) => {
                self.pending.push_back((index, f));
                if let Some(out) = &self.tee {
                    let mut out = out.lock();
                    out.write_all(raw)
                        .and_then(|()| out.write_all(self.delim))
                        .map_err(|e| CliError::io("writing to stdout (-T)", e))?;
                }
            }
            Err(e) => self.failed.push((index, e.to_string())),
        }
        if self.pending.len() > MAX_PENDING {
            let (i, f) = self.pending.pop_front().expect("non-empty");
            if let Err(e) = f.wait() {
                self.failed.push((i, e.to_string()));
            }
        }
        Ok(())
    }
}
