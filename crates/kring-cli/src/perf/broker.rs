//! The broker a benchmark runs against, always in a process of its own so
//! that the client's CPU figures are the client's alone: a kring-mock sink
//! (this binary re-executed as `kring mock-sink`), a tansu started for the
//! run, a 1-node Apache Kafka (via kring-testcluster), or any broker the
//! user names with `--bootstrap`. Also makes sure
//! the topic exists with the partitions the workload asks for.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use kring_testcluster::{ClusterConfig, KafkaCluster};

use crate::error::CliError;

/// What a [`BrokerProcess`] runs.
enum Running {
    /// A child process of ours (the sink, tansu).
    Child(Child),
    /// An Apache Kafka node (its JVM is the harness's child; dropping the
    /// cluster kills it and removes its files).
    Kafka(Box<KafkaCluster>),
}

/// A broker process this run started; killed when dropped.
pub struct BrokerProcess {
    running: Running,
    /// `host:port` to bootstrap from.
    pub bootstrap: String,
    /// What it is, for reports.
    pub description: String,
}

impl BrokerProcess {
    /// Starts `kring mock-sink` (this same executable) with the topic
    /// already created, and reads its bootstrap address from its first
    /// stdout line. The sink exits when its stdin closes, so it cannot
    /// outlive this process even if this one is killed.
    /// With `tls`, the sink serves TLS with that identity.
    pub fn mock_sink(
        topic: &str,
        partitions: u32,
        tls: Option<&super::tls::TlsFiles>,
    ) -> Result<Self, CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::io("locating the kring executable", e))?;
        let mut command = Command::new(exe);
        command.args([
            "mock-sink",
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
        ]);
        if let Some(t) = tls {
            command
                .arg("--tls-cert")
                .arg(&t.cert)
                .arg("--tls-key")
                .arg(&t.key);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| CliError::io("starting the kring-mock sink", e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let bootstrap = line.trim().to_string();
        if read.is_err() || bootstrap.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CliError::Child(
                "the kring-mock sink did not print its bootstrap address".into(),
            ));
        }
        let pid = child.id();
        Ok(BrokerProcess {
            running: Running::Child(child),
            bootstrap: bootstrap.clone(),
            description: format!(
                "kring-mock sink at {bootstrap} (pid {pid}){}",
                if tls.is_some() { ", TLS" } else { "" }
            ),
        })
    }

    /// Starts a tansu broker with in-memory storage on a free port and
    /// waits until it accepts connections.
    pub fn tansu(binary: &Path) -> Result<Self, CliError> {
        let port = free_port()?;
        let child = kring_testcluster::tansu_command(binary, port)
            .spawn()
            .map_err(|e| CliError::io(format!("starting tansu ({})", binary.display()), e))?;
        let bootstrap = format!("127.0.0.1:{port}");
        let pid = child.id();
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&bootstrap).is_err() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CliError::Child(format!(
                    "tansu did not start on {bootstrap}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(BrokerProcess {
            running: Running::Child(child),
            bootstrap: bootstrap.clone(),
            description: format!("tansu at {bootstrap} (pid {pid})"),
        })
    }

    /// Starts a 1-node Apache Kafka (KRaft, broker and controller in one
    /// JVM) with settings for a benchmark on a small machine: a 1 GiB
    /// heap, the JIT's full tiers (the harness's test default stops at C1
    /// to start faster), serial GC, two network and two I/O threads, and
    /// the log flushed by the OS, as Kafka does by default.
    pub fn kafka() -> Result<Self, CliError> {
        let mut cfg = ClusterConfig::new(1);
        cfg.heap_mb = 1024;
        cfg.jvm_args
            .retain(|a| !a.starts_with("-XX:TieredStopAtLevel"));
        let cluster = KafkaCluster::start(cfg)
            .map_err(|e| CliError::Child(format!("starting Apache Kafka: {e}")))?;
        let bootstrap = cluster.bootstrap();
        let node = cluster.node_ids()[0];
        let pid = cluster
            .pid(node)
            .map_or_else(|| "?".to_string(), |p| p.to_string());
        Ok(BrokerProcess {
            description: format!(
                "Apache Kafka {} (1 KRaft node, 1 GiB heap) at {bootstrap} (pid {pid})",
                kring_testcluster::KAFKA_VERSION
            ),
            bootstrap,
            running: Running::Kafka(Box::new(cluster)),
        })
    }

    /// Process id of the broker.
    pub fn pid(&self) -> Option<u32> {
        match &self.running {
            Running::Child(c) => Some(c.id()),
            Running::Kafka(k) => k.pid(k.node_ids()[0]),
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Running::Child(child) = &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where to find tansu: `$TANSU`, then the test installer's cache, then
/// the tools directory of this machine, then `$PATH`.
pub fn find_tansu() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("TANSU") {
        candidates.push(p.into());
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/kring/bin/tansu"));
    }
    candidates.push("/work/tools/tansu".into());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("tansu")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn free_port() -> Result<u16, CliError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| CliError::io("finding a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| CliError::io("finding a free port", e))
}

/// Runs a future to completion on this thread (the admin client's futures
/// are resolved by its own background thread, so no runtime is needed).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A librdkafka configuration for `bootstrap` with `security` properties.
fn admin_config(bootstrap: &str, security: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in security {
        c.set(k, v);
    }
    c
}

/// Partitions of `topic` according to the broker, or `None` if it does
/// not exist.
fn topic_partitions(
    bootstrap: &str,
    topic: &str,
    security: &[(String, String)],
) -> Result<Option<usize>, CliError> {
    // A metadata request for a missing topic must not create it (with the
    // broker's default partition count).
    let p: BaseProducer = admin_config(bootstrap, security)
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| CliError::Rdkafka(format!("metadata client: {e}")))?;
    let md = p
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| CliError::Rdkafka(format!("metadata from {bootstrap}: {e}")))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// Creates `topic` with `partitions` partitions unless it exists; fails if
/// it exists with a different number of partitions.
/// `properties` are the workload's; its `security.*` and `ssl.*` ones
/// (how to reach the broker) are used.
pub fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: u32,
    properties: &[(String, String)],
) -> Result<(), CliError> {
    let security: Vec<(String, String)> = properties
        .iter()
        .filter(|(k, _)| k.starts_with("security.") || k.starts_with("ssl."))
        .cloned()
        .collect();
    let want = partitions as usize;
    let admin: AdminClient<DefaultClientContext> = admin_config(bootstrap, &security)
        .create()
        .map_err(|e| CliError::Rdkafka(format!("admin client: {e}")))?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let results = block_on(admin.create_topics([&new], &opts))
        .map_err(|e| CliError::Rdkafka(format!("creating topic {topic}: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(CliError::Rdkafka(format!("creating topic {t}: {code}")));
            }
        }
    }
    // Wait until the broker serves metadata for every partition (and check
    // the count of a topic that already existed).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match topic_partitions(bootstrap, topic, &security)? {
            Some(have) if have == want => return Ok(()),
            Some(have) if have > want => return check_count(topic, have, want),
            _ if Instant::now() > deadline => {
                return Err(CliError::Rdkafka(format!(
                    "topic {topic} was created but its metadata never showed {want} partitions"
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn check_count(topic: &str, have: usize, want: usize) -> Result<(), CliError> {
    if have == want {
        Ok(())
    } else {
        Err(CliError::invalid(
            "--partitions",
            want.to_string(),
            format!("topic {topic} already exists with {have} partitions; use another --topic"),
        ))
    }
}
