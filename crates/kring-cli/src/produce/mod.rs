//! `kring produce`: records from stdin or a file to a topic, kcat style
//! (`-b`, `-t`, `-p`, `-K`, `-D`, `-H`, `-X` mean what they mean to kcat).
//! Every record gets its result; the command exits non-zero if any failed,
//! after listing each failed record (its index in the input, from 0) and
//! the error.

pub mod input;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use clap::Args;
use kring::{DeliveryFuture, Header, Producer, ProducerConfig, Record};

use crate::args::kv_arg;
use crate::error::CliError;
use input::{split_key, unescape, RecordReader};

/// Arguments of `kring produce`.
#[derive(Args, Clone, Debug)]
pub struct ProduceArgs {
    /// Bootstrap brokers, host:port[,host:port...].
    #[arg(short = 'b', long = "brokers")]
    pub brokers: String,
    /// Topic to produce to.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Partition (default: the partitioner chooses).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Key delimiter: each record is split on its first occurrence into key
    /// and value (no delimiter in a record: no key).
    #[arg(short = 'K', value_name = "DELIM")]
    pub key_delimiter: Option<String>,
    /// Record delimiter (escapes \n \r \t \0 \\ \xHH).
    #[arg(short = 'D', value_name = "DELIM", default_value = "\\n")]
    pub delimiter: String,
    /// Header for every record, name=value (repeatable).
    #[arg(short = 'H', value_name = "NAME=VALUE", value_parser = kv_arg)]
    pub headers: Vec<(String, String)>,
    /// Producer property, name=value (repeatable), e.g. -X linger.ms=10.
    #[arg(short = 'X', value_name = "NAME=VALUE", value_parser = kv_arg)]
    pub properties: Vec<(String, String)>,
    /// Read records from this file instead of stdin.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
}

/// Results not yet waited for, oldest first, beyond which reading waits for
/// the oldest (bounded memory for any input size).
const MAX_PENDING: usize = 100_000;

/// Runs `kring produce`.
pub fn run(a: ProduceArgs) -> Result<(), CliError> {
    let delim = unescape(&a.delimiter)?;
    let key_delim = a.key_delimiter.as_deref().map(unescape).transpose()?;
    let mut props = vec![("bootstrap.servers".to_string(), a.brokers.clone())];
    props.extend(a.properties.iter().cloned());
    let config = ProducerConfig::from_properties(props)
        .map_err(|e| CliError::Kring(format!("configuration: {e}")))?;
    let producer = Producer::builder()
        .config(config)
        .build()
        .map_err(|e| CliError::Kring(format!("starting the producer: {e}")))?;
    let headers: Vec<Header<'_>> = a
        .headers
        .iter()
        .map(|(k, v)| Header {
            key: k.as_str(),
            value: Some(v.as_bytes()),
        })
        .collect();

    let reader: Box<dyn BufRead> = match &a.file {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).map_err(|e| {
                CliError::io(format!("opening {}", path.display()), e)
            })?))
        }
        None => Box::new(BufReader::new(std::io::stdin().lock())),
    };
    let mut records = RecordReader::new(reader, delim);
    let mut failed: Vec<(u64, String)> = Vec::new();
    let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
    let mut total: u64 = 0;
    let read_result = loop {
        let raw = match records.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break Ok(()),
            Err(e) => break Err(CliError::io("reading the input", e)),
        };
        let index = total;
        total += 1;
        let (key, value) = match key_delim.as_deref() {
            Some(d) => split_key(&raw, d),
            None => (None, &raw[..]),
        };
        let mut record = Record::new(&a.topic, value).headers(&headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = a.partition {
            record = record.partition(p);
        }
        match producer.send(record) {
            Ok(f) => pending.push_back((index, f)),
            Err(e) => failed.push((index, e.to_string())),
        }
        if pending.len() > MAX_PENDING {
            let (i, f) = pending.pop_front().expect("non-empty");
            if let Err(e) = f.wait() {
                failed.push((i, e.to_string()));
            }
        }
    };
    // Whatever was sent gets its result, even if reading the input failed.
    producer.flush();
    for (i, f) in pending {
        if let Err(e) = f.wait() {
            failed.push((i, e.to_string()));
        }
    }
    producer.close();
    failed.sort();
    for (index, error) in &failed {
        eprintln!("kring: record {index} failed: {error}");
    }
    read_result?;
    if failed.is_empty() {
        eprintln!("kring: {total} records delivered to {}", a.topic);
        Ok(())
    } else {
        Err(CliError::RecordsFailed {
            failed: failed.len() as u64,
            total,
        })
    }
}
