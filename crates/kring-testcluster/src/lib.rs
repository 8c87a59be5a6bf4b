//! Apache Kafka clusters for kring's tests and benchmarks.
//!
//! [`KafkaCluster::start`] runs N KRaft nodes (combined broker and
//! controller roles) on 127.0.0.1, each its own JVM with its own formatted
//! storage under `$TMPDIR`, and returns once every broker is listed in
//! Metadata. Topics are created, and leaders looked up, with kring-protocol's
//! own messages over a plain `TcpStream` — no JVM per admin call. Nodes can
//! be SIGKILLed, SIGTERMed (controlled shutdown), SIGSTOPped, SIGCONTed and
//! restarted on the same storage. Nodes are numbered from 0, as Strimzi
//! and ZooKeeper-era clusters number their brokers, so every test against
//! the cluster meets a broker whose id a client could mistake for "none".
//!
//! Teardown never depends on `Drop` alone: every JVM runs under a `sh`
//! watchdog that SIGKILLs it and removes its directory as soon as the test
//! process is gone (see `process.rs`), so a cluster in a `static`
//! ([`KafkaCluster::shared`]) or a test binary killed mid-run leaves nothing
//! behind. Set `KRING_KEEP_KAFKA=1` to keep the directories (and node logs)
//! for a post-mortem.
//!
//! A cluster can also serve clients on a secured listener
//! ([`ClusterConfig::secured`]: `SASL_PLAINTEXT`, `SSL` with optional mTLS,
//! or `SASL_SSL`; PLAIN users in the listener's JAAS config, SCRAM users
//! written into the metadata log at format time, OAUTHBEARER with Kafka's
//! unsecured token validator). The harness itself keeps talking to the
//! PLAINTEXT listener; clients under test use [`KafkaCluster::secured_bootstrap`].
//!
//! [`tansu_command`] is the command line of the other real broker, tansu.
//!
//! The jars come from `scripts/install-deps` (Apache Kafka 4.4.0, pinned in
//! `tests/kafka/pom.xml`), found through `$KRING_KAFKA_LIBS` or
//! `~/.cache/kring/kafka-4.4.0/libs`; `java` is `$KRING_JAVA`, else `java`
//! on `PATH`.

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use kring_protocol::ErrorCode;

mod admin;
mod process;
mod tansu;

pub use tansu::tansu_command;

use process::{Janitor, Jvm};

/// The Apache Kafka version the harness runs (pinned in `tests/kafka/pom.xml`).
pub const KAFKA_VERSION: &str = "4.4.0";

/// A harness failure.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Java or the Kafka jars are not installed.
    #[error("{0} (run scripts/install-deps and eval its output)")]
    NotInstalled(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A node did not start; carries the end of its log.
    #[error("node {node} did not start: {reason}\n--- end of {log} ---\n{tail}")]
    NodeStart {
        /// The node id.
        node: i32,
        /// What went wrong.
        reason: String,
        /// The node's log file.
        log: String,
        /// The last lines of that log.
        tail: String,
    },
    /// Waiting for a condition timed out.
    #[error("timed out after {waited:?} waiting for {what}; last: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The last observation or error.
        last: String,
    },
    /// A broker answered with an error code.
    #[error("{what}: {} ({}){}", code.name(), code.0, message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The request.
        what: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// A response could not be decoded or made no sense.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The node is not running (killed, terminated or never started).
    #[error("node {0} is not running")]
    NotRunning(i32),
    /// No node with this id.
    #[error("no node {0} in this cluster")]
    NoSuchNode(i32),
    /// The partition has no leader right now.
    #[error("{topic}-{partition} has no leader")]
    NoLeader {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

/// How to run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of nodes, each broker and controller (1 or 3).
    pub nodes: usize,
    /// Maximum heap per JVM, MiB.
    pub heap_mb: u32,
    /// Broker properties added to (or replacing) the harness defaults.
    pub broker_props: Vec<(String, String)>,
    /// JVM options besides the heap. The default favours start-up time and
    /// footprint (serial GC, C1 only, class-data sharing); a throughput
    /// benchmark may want to drop `-XX:TieredStopAtLevel=1`.
    pub jvm_args: Vec<String>,
    /// How long [`KafkaCluster::start`] and [`KafkaCluster::restart`] wait.
    pub start_timeout: Duration,
    /// A second client listener, secured, beside the PLAINTEXT one.
    pub secured: Option<SecureListener>,
}

/// The protocol of the secured client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSecurity {
    /// SASL over plain TCP.
    SaslPlaintext,
    /// TLS (mutual if [`ServerTls::client_ca_pem`] is set).
    Ssl,
    /// SASL over TLS.
    SaslSsl,
}

impl ListenerSecurity {
    /// Kafka's name for it (`listener.security.protocol.map`).
    pub fn kafka_name(self) -> &'static str {
        match self {
            ListenerSecurity::SaslPlaintext => "SASL_PLAINTEXT",
            ListenerSecurity::Ssl => "SSL",
            ListenerSecurity::SaslSsl => "SASL_SSL",
        }
    }

    fn uses_tls(self) -> bool {
        !matches!(self, ListenerSecurity::SaslPlaintext)
    }

    fn uses_sasl(self) -> bool {
        !matches!(self, ListenerSecurity::Ssl)
    }
}

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// The server side of TLS, as PEM text: written to files in the node's
/// directory and configured as `ssl.keystore.type=PEM` /
/// `ssl.truststore.type=PEM`.
#[derive(Clone)]
pub struct ServerTls {
    /// The broker's certificate chain, leaf first (valid for `127.0.0.1`).
    pub cert_chain_pem: String,
    /// The broker's private key, unencrypted PKCS#8 (`BEGIN PRIVATE KEY`:
    /// Kafka's PEM keystore reads no other form).
    pub key_pem: String,
    /// With CA certificates, clients must present a certificate signed by
    /// one of them (`ssl.client.auth=required`, mTLS).
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The secured client listener and its users.
#[derive(Clone)]
pub struct SecureListener {
    /// Its protocol.
    pub security: ListenerSecurity,
    /// PLAIN users: (name, password).
    pub plain_users: Vec<(String, String)>,
    /// SCRAM users: (mechanism, name, password), created at format time
    /// (neither name nor password may contain `,`, `=`, `[` or `]`).
    pub scram_users: Vec<(ScramMechanism, String, String)>,
    /// TLS material, required for `Ssl` and `SaslSsl`.
    pub tls: Option<ServerTls>,
}

impl std::fmt::Debug for SecureListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureListener")
            .field("security", &self.security)
            .field(
                "plain_users",
                &self.plain_users.iter().map(|u| &u.0).collect::<Vec<_>>(),
            )
            .field(
                "scram_users",
                &self
                    .scram_users
                    .iter()
                    .map(|u| (u.0, &u.1))
                    .collect::<Vec<_>>(),
            )
            .field("tls", &self.tls)
            .finish()
    }
}

impl SecureListener {
    /// A listener of this protocol without users or TLS material.
    pub fn new(security: ListenerSecurity) -> SecureListener {
        SecureListener {
            security,
            plain_users: Vec::new(),
            scram_users: Vec::new(),
            tls: None,
        }
    }

    /// Adds a PLAIN user.
    pub fn plain_user(mut self, name: &str, password: &str) -> SecureListener {
        self.plain_users
            .push((name.to_owned(), password.to_owned()));
        self
    }

    /// Adds a SCRAM user for one mechanism.
    pub fn scram_user(
        mut self,
        mechanism: ScramMechanism,
        name: &str,
        password: &str,
    ) -> SecureListener {
        self.scram_users
            .push((mechanism, name.to_owned(), password.to_owned()));
        self
    }

    /// Sets the TLS material.
    pub fn tls(mut self, tls: ServerTls) -> SecureListener {
        self.tls = Some(tls);
        self
    }

    fn check(&self) -> Result<(), ClusterError> {
        let bad = |m: String| Err(ClusterError::Protocol(m));
        match (self.security.uses_tls(), self.tls.is_some()) {
            (true, false) => return bad(format!("{:?} needs TLS material", self.security)),
            (false, true) => return bad("SASL_PLAINTEXT takes no TLS material".into()),
            _ => {}
        }
        let has_users = !self.plain_users.is_empty() || !self.scram_users.is_empty();
        if !self.security.uses_sasl() && has_users {
            return bad("an SSL listener has no SASL users".into());
        }
        let plain_ok = |s: &str| !s.is_empty() && !s.contains(['"', '\\', '\n']);
        if let Some((u, _)) = self
            .plain_users
            .iter()
            .find(|(u, p)| !plain_ok(u) || !plain_ok(p) || u.contains([' ', '=', ';']))
        {
            return bad(format!(
                "PLAIN user {u:?}: name or password the JAAS config cannot hold"
            ));
        }
        let scram_ok = |s: &str| !s.is_empty() && !s.contains([',', '=', '[', ']', '"', '\n']);
        if let Some((_, u, _)) = self
            .scram_users
            .iter()
            .find(|(_, u, p)| !scram_ok(u) || !scram_ok(p))
        {
            return bad(format!(
                "SCRAM user {u:?}: name or password StorageTool cannot parse"
            ));
        }
        Ok(())
    }
}

/// The secured listener's name in the broker configuration.
const SECURED: &str = "SECURED";

impl ClusterConfig {
    /// `nodes` nodes with the defaults.
    pub fn new(nodes: usize) -> ClusterConfig {
        ClusterConfig {
            nodes,
            heap_mb: 512,
            broker_props: Vec::new(),
            jvm_args: [
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ]
            .map(String::from)
            .to_vec(),
            start_timeout: Duration::from_secs(120),
            secured: None,
        }
    }

    /// Adds a secured client listener (see [`SecureListener`]); the
    /// PLAINTEXT one stays for the harness.
    pub fn secured(mut self, listener: SecureListener) -> ClusterConfig {
        self.secured = Some(listener);
        self
    }

    /// Adds (or replaces) a broker property.
    pub fn prop(mut self, key: &str, value: impl ToString) -> ClusterConfig {
        self.broker_props.push((key.to_owned(), value.to_string()));
        self
    }
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig::new(1)
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition index.
    pub partition: i32,
    /// Leader node, -1 if none.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// Replica nodes.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The partition's error code in the Metadata response.
    pub error: ErrorCode,
}

struct Node {
    id: i32,
    broker_port: u16,
    controller_port: u16,
    /// The secured client listener's port (0 without one).
    secured_port: u16,
    dir: PathBuf,
    jvm: Option<Jvm>,
    paused: bool,
}

impl Node {
    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// Running and not paused: can answer requests.
    fn answering(&mut self) -> bool {
        !self.paused && self.running()
    }

    fn running(&mut self) -> bool {
        let exited = self.jvm.as_mut().is_some_and(Jvm::exited);
        if exited {
            self.jvm = None;
            self.paused = false;
        }
        self.jvm.is_some()
    }
}

/// A running Apache Kafka cluster. Every method takes `&self`, so a cluster
/// can live in a `static`; dropping it SIGKILLs every node and removes its
/// files.
pub struct KafkaCluster {
    cfg: ClusterConfig,
    java: PathBuf,
    libs: PathBuf,
    root: PathBuf,
    keep: bool,
    nodes: Vec<Mutex<Node>>,
    /// Removes `root` once the process is gone, unless `keep`. Dropped last.
    _janitor: Option<Janitor>,
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("root", &self.root)
            .field("bootstrap", &self.bootstrap())
            .finish()
    }
}

/// Admin calls to one broker are bounded by this.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaCluster {
    /// Formats storage per node, starts each node as its own JVM and waits
    /// until every broker is in Metadata. A port taken between choosing it
    /// and the broker binding it makes the harness start over on new ports.
    pub fn start(cfg: ClusterConfig) -> Result<KafkaCluster, ClusterError> {
        if !(1..=9).contains(&cfg.nodes) {
            return Err(ClusterError::Protocol(format!(
                "a cluster has 1 to 9 nodes, not {}",
                cfg.nodes
            )));
        }
        if let Some(s) = &cfg.secured {
            s.check()?;
        }
        let java = java_binary()?;
        let libs = kafka_libs()?;
        let keep = std::env::var_os("KRING_KEEP_KAFKA").is_some_and(|v| !v.is_empty() && v != "0");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let root = make_root()?;
            let janitor = if keep {
                None
            } else {
                match Janitor::spawn(&root) {
                    Ok(j) => Some(j),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&root);
                        return Err(e);
                    }
                }
            };
            let mut cluster = KafkaCluster {
                cfg: cfg.clone(),
                java: java.clone(),
                libs: libs.clone(),
                root,
                keep,
                nodes: Vec::new(),
                _janitor: janitor,
            };
            match cluster.start_attempt() {
                Ok(()) => return Ok(cluster),
                Err(e) if attempt < 3 && port_clash(&e) => {
                    drop(cluster);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start_attempt(&mut self) -> Result<(), ClusterError> {
        let n = self.cfg.nodes;
        let per_node = if self.cfg.secured.is_some() { 3 } else { 2 };
        let ports = free_ports(per_node * n)?;
        for i in 0..n {
            let id = i32::try_from(i).expect("at most 9 nodes");
            let dir = self.root.join(format!("node-{id}"));
            std::fs::create_dir_all(dir.join("data")).map_err(|source| ClusterError::Io {
                context: format!("creating {}", dir.display()),
                source,
            })?;
            self.nodes.push(Mutex::new(Node {
                id,
                broker_port: ports[per_node * i],
                controller_port: ports[per_node * i + 1],
                secured_port: if per_node == 3 {
                    ports[per_node * i + 2]
                } else {
                    0
                },
                dir,
                jvm: None,
                paused: false,
            }));
        }
        let voters = self
            .nodes
            .iter()
            .map(|n| {
                let n = lock(n);
                format!("{}@127.0.0.1:{}", n.id, n.controller_port)
            })
            .collect::<Vec<_>>()
            .join(",");
        for node in &self.nodes {
            let node = lock(node);
            self.write_configs(&node, &voters)?;
        }
        let scram = self
            .cfg
            .secured
            .as_ref()
            .is_some_and(|s| !s.scram_users.is_empty());
        if scram {
            // SCRAM credentials go into the bootstrap checkpoint: format
            // each node with them rather than copy the shared template.
            self.format_storage()?;
        } else {
            match self.storage_template() {
                Ok((cluster_id, checkpoint)) => self.copy_storage(&cluster_id, &checkpoint)?,
                // No writable cache: format each node (a JVM each).
                Err(_) => self.format_storage()?,
            }
        }
        for node in &self.nodes {
            let mut node = lock(node);
            let jvm = self.spawn_node(&node)?;
            node.jvm = Some(jvm);
        }
        self.wait_brokers(self.cfg.start_timeout, None)
    }

    fn write_configs(&self, node: &Node, voters: &str) -> Result<(), ClusterError> {
        let n = self.cfg.nodes;
        let rf = n.min(3);
        let min_isr = if rf >= 3 { 2 } else { 1 };
        let mut props: Vec<(String, String)> = [
            ("process.roles", "broker,controller".to_owned()),
            ("node.id", node.id.to_string()),
            ("controller.quorum.voters", voters.to_owned()),
            (
                "listeners",
                format!(
                    "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    node.broker_port, node.controller_port
                ),
            ),
            (
                "advertised.listeners",
                format!("PLAINTEXT://127.0.0.1:{}", node.broker_port),
            ),
            ("controller.listener.names", "CONTROLLER".to_owned()),
            ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
            ),
            ("log.dirs", node.dir.join("data").display().to_string()),
            ("auto.create.topics.enable", "false".to_owned()),
            ("group.initial.rebalance.delay.ms", "0".to_owned()),
            ("offsets.topic.replication.factor", rf.to_string()),
            ("offsets.topic.num.partitions", "1".to_owned()),
            ("transaction.state.log.replication.factor", rf.to_string()),
            ("transaction.state.log.min.isr", min_isr.to_string()),
            ("transaction.state.log.num.partitions", "1".to_owned()),
            (
                "share.coordinator.state.topic.replication.factor",
                rf.to_string(),
            ),
            ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
            (
                "share.coordinator.state.topic.num.partitions",
                "1".to_owned(),
            ),
            ("num.network.threads", "2".to_owned()),
            ("num.io.threads", "2".to_owned()),
            ("num.recovery.threads.per.data.dir", "1".to_owned()),
            ("background.threads", "2".to_owned()),
            // A SIGKILLed node cannot register again until its old session
            // expires (9 s by default): keep restarts and fencing quick.
            ("broker.session.timeout.ms", "4000".to_owned()),
            ("broker.heartbeat.interval.ms", "500".to_owned()),
            ("log.segment.bytes", (64 << 20).to_string()),
            ("log.index.size.max.bytes", (1 << 20).to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(secured) = &self.cfg.secured {
            self.secure_props(node, secured, &mut props)?;
        }
        for (k, v) in &self.cfg.broker_props {
            match props.iter_mut().find(|(pk, _)| pk == k) {
                Some(p) => p.1.clone_from(v),
                None => props.push((k.clone(), v.clone())),
            }
        }
        let mut text = String::from("# written by kring-testcluster\n");
        for (k, v) in &props {
            let _ = writeln!(text, "{k}={v}");
        }
        write_file(&node.dir.join("server.properties"), &text)?;
        write_file(&node.dir.join("log4j2.properties"), LOG4J2)
    }

    /// The secured listener's properties (and TLS files) for one node.
    fn secure_props(
        &self,
        node: &Node,
        secured: &SecureListener,
        props: &mut Vec<(String, String)>,
    ) -> Result<(), ClusterError> {
        let set = |props: &mut Vec<(String, String)>, k: &str, v: String| match props
            .iter_mut()
            .find(|(pk, _)| pk == k)
        {
            Some(p) => p.1 = v,
            None => props.push((k.to_owned(), v)),
        };
        let l = SECURED.to_ascii_lowercase();
        set(
            props,
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{},{SECURED}://127.0.0.1:{}",
                node.broker_port, node.controller_port, node.secured_port
            ),
        );
        set(
            props,
            "advertised.listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{},{SECURED}://127.0.0.1:{}",
                node.broker_port, node.secured_port
            ),
        );
        set(
            props,
            "listener.security.protocol.map",
            format!(
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{SECURED}:{}",
                secured.security.kafka_name()
            ),
        );
        if secured.security.uses_sasl() {
            set(
                props,
                &format!("listener.name.{l}.sasl.enabled.mechanisms"),
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER".to_owned(),
            );
            let mut plain =
                String::from("org.apache.kafka.common.security.plain.PlainLoginModule required");
            for (user, password) in &secured.plain_users {
                let _ = write!(plain, " user_{user}=\"{password}\"");
            }
            plain.push(';');
            set(
                props,
                &format!("listener.name.{l}.plain.sasl.jaas.config"),
                plain,
            );
            for m in ["scram-sha-256", "scram-sha-512"] {
                set(
                    props,
                    &format!("listener.name.{l}.{m}.sasl.jaas.config"),
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned(),
                );
            }
            // No server callback handler configured: the broker validates
            // OAUTHBEARER tokens with its unsecured (unsigned JWS) validator.
            set(
                props,
                &format!("listener.name.{l}.oauthbearer.sasl.jaas.config"),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginStringClaim_sub=\"broker\";"
                    .to_owned(),
            );
        }
        if let Some(tls) = &secured.tls {
            let keystore = node.dir.join("secured-keystore.pem");
            let mut pem = tls.key_pem.trim_end().to_owned();
            pem.push('\n');
            pem.push_str(tls.cert_chain_pem.trim_end());
            pem.push('\n');
            write_file(&keystore, &pem)?;
            set(
                props,
                &format!("listener.name.{l}.ssl.keystore.type"),
                "PEM".into(),
            );
            set(
                props,
                &format!("listener.name.{l}.ssl.keystore.location"),
                keystore.display().to_string(),
            );
            if let Some(ca) = &tls.client_ca_pem {
                let truststore = node.dir.join("secured-truststore.pem");
                write_file(&truststore, ca)?;
                set(
                    props,
                    &format!("listener.name.{l}.ssl.truststore.type"),
                    "PEM".into(),
                );
                set(
                    props,
                    &format!("listener.name.{l}.ssl.truststore.location"),
                    truststore.display().to_string(),
                );
                set(
                    props,
                    &format!("listener.name.{l}.ssl.client.auth"),
                    "required".into(),
                );
            }
        }
        Ok(())
    }

    /// Formatted KRaft storage to copy: the cluster id and the bootstrap
    /// checkpoint that `kafka.tools.StorageTool format` writes. Neither
    /// depends on node ids, ports or paths (with a static
    /// `controller.quorum.voters` the checkpoint holds only feature levels),
    /// so one format, cached beside the jars, serves every cluster and saves
    /// a JVM start per node.
    fn storage_template(&self) -> Result<(String, PathBuf), ClusterError> {
        let base = self.libs.parent().unwrap_or(&self.libs).to_path_buf();
        let template = base.join("kraft-storage-template");
        let checkpoint_dir = template.join("__cluster_metadata-0");
        let read = |template: &Path| -> Option<(String, PathBuf)> {
            let meta = std::fs::read_to_string(template.join("meta.properties")).ok()?;
            let id = meta.lines().find_map(|l| l.strip_prefix("cluster.id="))?;
            let checkpoint = std::fs::read_dir(&checkpoint_dir)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "checkpoint"))?;
            Some((id.trim().to_owned(), checkpoint))
        };
        if let Some(t) = read(&template) {
            return Ok(t);
        }
        // Format into a private directory, then rename it into place (a
        // concurrent test process may win the rename; either result is
        // good).
        let tmp = base.join(format!(
            ".kraft-template-{}-{:x}",
            std::process::id(),
            random_u64()
        ));
        let data = tmp.join("data");
        std::fs::create_dir_all(&data).map_err(|source| ClusterError::Io {
            context: format!("creating {}", data.display()),
            source,
        })?;
        let props = format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:9\n\
             listeners=PLAINTEXT://127.0.0.1:8,CONTROLLER://127.0.0.1:9\n\
             controller.listener.names=CONTROLLER\nlog.dirs={}\n",
            data.display()
        );
        let result = write_file(&tmp.join("server.properties"), &props).and_then(|()| {
            let log = open_log(&tmp.join("format.log"))?;
            let status = Command::new(&self.java)
                .args([
                    "-Xmx256m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-Xshare:auto",
                ])
                .arg("-cp")
                .arg(self.libs.join("*"))
                .args([
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    &random_uuid(),
                    "-c",
                ])
                .arg(tmp.join("server.properties"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|source| ClusterError::Io {
                    context: "duplicating a log file handle".into(),
                    source,
                })?)
                .stderr(log)
                .status()
                .map_err(|source| ClusterError::Io {
                    context: format!("running {}", self.java.display()),
                    source,
                })?;
            if status.success() {
                let _ = std::fs::rename(&data, &template);
                Ok(())
            } else {
                Err(ClusterError::Protocol(format!(
                    "StorageTool format failed ({status})"
                )))
            }
        });
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
        read(&template).ok_or_else(|| ClusterError::Protocol("no usable storage template".into()))
    }

    /// Lays out every node's storage from the template: the bootstrap
    /// checkpoint and a `meta.properties` of its own.
    fn copy_storage(&self, cluster_id: &str, checkpoint: &Path) -> Result<(), ClusterError> {
        for node in &self.nodes {
            let node = lock(node);
            let data = node.dir.join("data");
            let meta_dir = data.join("__cluster_metadata-0");
            std::fs::create_dir_all(&meta_dir).map_err(|source| ClusterError::Io {
                context: format!("creating {}", meta_dir.display()),
                source,
            })?;
            let name = checkpoint.file_name().unwrap_or_default();
            std::fs::copy(checkpoint, meta_dir.join(name)).map_err(|source| ClusterError::Io {
                context: format!("copying {}", checkpoint.display()),
                source,
            })?;
            write_file(
                &data.join("meta.properties"),
                &format!(
                    "#\nnode.id={}\ndirectory.id={}\nversion=1\ncluster.id={cluster_id}\n",
                    node.id,
                    random_uuid()
                ),
            )?;
        }
        Ok(())
    }

    /// Formats every node's storage, the nodes in parallel.
    fn format_storage(&self) -> Result<(), ClusterError> {
        let cluster_id = random_uuid();
        let mut children = Vec::new();
        for node in &self.nodes {
            let node = lock(node);
            let log = open_log(&node.log())?;
            let child = Command::new(&self.java)
                .args([
                    "-Xmx256m",
                    "-XX:+UseSerialGC",
                    "-XX:TieredStopAtLevel=1",
                    "-Xshare:auto",
                ])
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    node.dir.join("log4j2.properties").display()
                ))
                .arg(format!("-Dkring.node.log={}", node.log().display()))
                .arg("-cp")
                .arg(self.libs.join("*"))
                .args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                .arg(node.dir.join("server.properties"))
                .args(self.cfg.secured.iter().flat_map(|s| {
                    s.scram_users.iter().flat_map(|(m, user, password)| {
                        [
                            "--add-scram".to_owned(),
                            format!("{}=[name={user},password={password}]", m.name()),
                        ]
                    })
                }))
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|source| ClusterError::Io {
                    context: "duplicating a log file handle".into(),
                    source,
                })?)
                .stderr(log)
                .spawn()
                .map_err(|source| ClusterError::Io {
                    context: format!("running {}", self.java.display()),
                    source,
                })?;
            children.push((node.id, node.log(), child));
        }
        let mut result = Ok(());
        for (id, log, mut child) in children {
            let status = child.wait().map_err(|source| ClusterError::Io {
                context: "waiting for kafka.tools.StorageTool".into(),
                source,
            })?;
            if !status.success() && result.is_ok() {
                result = Err(ClusterError::NodeStart {
                    node: id,
                    reason: format!("kafka.tools.StorageTool format failed ({status})"),
                    log: log.display().to_string(),
                    tail: tail(&log, 30),
                });
            }
        }
        result
    }

    fn spawn_node(&self, node: &Node) -> Result<Jvm, ClusterError> {
        let mut args = vec![
            format!("-Xmx{}m", self.cfg.heap_mb),
            format!("-Xms{}m", self.cfg.heap_mb.min(128)),
        ];
        args.extend(self.cfg.jvm_args.iter().cloned());
        args.push(format!(
            "-Dlog4j2.configurationFile={}",
            node.dir.join("log4j2.properties").display()
        ));
        args.push(format!("-Dkring.node.log={}", node.log().display()));
        args.push("-cp".into());
        args.push(self.libs.join("*").display().to_string());
        args.push("kafka.Kafka".into());
        args.push(node.dir.join("server.properties").display().to_string());
        Jvm::spawn(&self.java, &args, &node.log())
    }

    /// Waits until every running, unpaused node answers Metadata listing
    /// every running node. Without `restarted` every node must run (one that
    /// exits fails the wait at once, with its log); with `restarted`, only
    /// that node must, and the others are whichever run.
    fn wait_brokers(&self, timeout: Duration, restarted: Option<i32>) -> Result<(), ClusterError> {
        let start = Instant::now();
        let all = restarted.is_none();
        let mut last = String::from("nothing yet");
        loop {
            // Snapshot who runs and who answers.
            let mut expected = BTreeSet::new();
            let mut ask = Vec::new();
            for node in &self.nodes {
                let mut node = lock(node);
                if node.running() {
                    expected.insert(node.id);
                    if !node.paused {
                        ask.push((node.id, node.broker_port));
                    }
                } else if all || restarted == Some(node.id) {
                    return Err(ClusterError::NodeStart {
                        node: node.id,
                        reason: "its JVM exited while waiting for the brokers".to_owned(),
                        log: node.log().display().to_string(),
                        tail: tail(&node.log(), 40),
                    });
                }
            }
            let mut ok = !ask.is_empty();
            for &(id, port) in &ask {
                match admin::metadata(addr(port), None, ADMIN_TIMEOUT) {
                    Ok(m) => {
                        let seen: BTreeSet<i32> = m.brokers.iter().map(|b| b.node_id).collect();
                        if !expected.is_subset(&seen) {
                            last =
                                format!("node {id} lists brokers {seen:?}, expected {expected:?}");
                            ok = false;
                            break;
                        }
                    }
                    Err(e) => {
                        last = format!("node {id}: {e}");
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(ClusterError::Timeout {
                    what: format!("brokers {expected:?} in Metadata"),
                    waited: start.elapsed(),
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One cluster of `nodes` nodes (1 or 3) per process, started on first
    /// use with [`ClusterConfig::new`] and torn down when the process exits
    /// (by the node watchdogs: statics are never dropped). Panics if it
    /// cannot start: the tests that call it need it.
    pub fn shared(nodes: usize) -> &'static KafkaCluster {
        static ONE: OnceLock<KafkaCluster> = OnceLock::new();
        static THREE: OnceLock<KafkaCluster> = OnceLock::new();
        let cell = match nodes {
            1 => &ONE,
            3 => &THREE,
            n => panic!("KafkaCluster::shared serves 1 or 3 nodes, not {n}"),
        };
        cell.get_or_init(|| {
            KafkaCluster::start(ClusterConfig::new(nodes))
                .unwrap_or_else(|e| panic!("cannot start a {nodes}-node Kafka cluster: {e}"))
        })
    }

    /// The bootstrap list: `127.0.0.1:a,127.0.0.1:b,...`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", lock(n).broker_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The secured listener's bootstrap list (`None` without one).
    pub fn secured_bootstrap(&self) -> Option<String> {
        self.cfg.secured.as_ref()?;
        Some(
            self.nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", lock(n).secured_port))
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// A node's secured listener address (`None` without one). Panics on
    /// an unknown node.
    pub fn secured_addr(&self, node: i32) -> Option<SocketAddr> {
        self.cfg.secured.as_ref()?;
        Some(addr(
            lock(self.node(node).expect("a node of this cluster")).secured_port,
        ))
    }

    /// The node ids, ascending (0..N).
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| lock(n).id).collect()
    }

    /// A node's broker (PLAINTEXT) address. Panics on an unknown node.
    pub fn broker_addr(&self, node: i32) -> SocketAddr {
        addr(lock(self.node(node).expect("a node of this cluster")).broker_port)
    }

    /// The directory holding the node's configuration, data and log.
    pub fn node_dir(&self, node: i32) -> PathBuf {
        lock(self.node(node).expect("a node of this cluster"))
            .dir
            .clone()
    }

    /// The node's log file (WARN and above, plus the JVM's own output).
    pub fn node_log(&self, node: i32) -> PathBuf {
        lock(self.node(node).expect("a node of this cluster")).log()
    }

    /// The last `lines` lines of every node's log, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for id in self.node_ids() {
            let log = self.node_log(id);
            let _ = writeln!(out, "--- {} ---\n{}", log.display(), tail(&log, lines));
        }
        out
    }

    /// Java's pid for a running node.
    pub fn pid(&self, node: i32) -> Option<u32> {
        let mut n = lock(self.node(node).ok()?);
        if n.running() {
            n.jvm.as_ref().map(Jvm::pid)
        } else {
            None
        }
    }

    /// Whether the node's JVM is running (paused counts as running).
    pub fn is_running(&self, node: i32) -> bool {
        self.node(node).is_ok_and(|n| lock(n).running())
    }

    /// Creates a topic (`configs` such as `("min.insync.replicas", "2")`)
    /// and waits until every running broker knows a leader for every
    /// partition.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &[(&str, &str)],
    ) -> Result<(), ClusterError> {
        let start = Instant::now();
        let timeout = Duration::from_secs(60);
        let mut last_err = None;
        let mut created = false;
        for port in self.answering_ports() {
            match admin::create_topic(
                addr(port),
                name,
                partitions,
                replication,
                configs,
                Duration::from_secs(30),
            ) {
                Ok(resp) => {
                    let Some(t) = resp.topics.iter().find(|t| t.name == name) else {
                        return Err(ClusterError::Protocol(format!(
                            "CreateTopics response without {name}"
                        )));
                    };
                    if t.error_code != 0 {
                        return Err(ClusterError::Kafka {
                            what: format!("CreateTopics {name}"),
                            code: ErrorCode(t.error_code),
                            message: t.error_message.clone(),
                        });
                    }
                    created = true;
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        if !created {
            return Err(last_err.unwrap_or(ClusterError::Protocol("no node is running".into())));
        }
        let mut last = String::new();
        loop {
            let mut ok = true;
            for port in self.answering_ports() {
                match self.describe_on(port, name) {
                    Ok(parts)
                        if parts.len() == partitions as usize
                            && parts.iter().all(|p| p.leader >= 0) => {}
                    Ok(parts) => {
                        last = format!("{parts:?}");
                        ok = false;
                    }
                    Err(e) => {
                        last = e.to_string();
                        ok = false;
                    }
                }
            }
            if ok {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(ClusterError::Timeout {
                    what: format!("leaders of every partition of {name}"),
                    waited: start.elapsed(),
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The topic's partitions as the first answering node sees them.
    pub fn describe_topic(&self, topic: &str) -> Result<Vec<PartitionState>, ClusterError> {
        let mut last = ClusterError::Protocol("no node is running".into());
        for port in self.answering_ports() {
            match self.describe_on(port, topic) {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn describe_on(&self, port: u16, topic: &str) -> Result<Vec<PartitionState>, ClusterError> {
        let m = admin::metadata(addr(port), Some(&[topic]), ADMIN_TIMEOUT)?;
        let t = m
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic))
            .ok_or_else(|| ClusterError::Protocol(format!("Metadata response without {topic}")))?;
        if t.error_code != 0 {
            return Err(ClusterError::Kafka {
                what: format!("Metadata {topic}"),
                code: ErrorCode(t.error_code),
                message: None,
            });
        }
        let mut parts: Vec<PartitionState> = t
            .partitions
            .iter()
            .map(|p| PartitionState {
                partition: p.partition_index,
                leader: p.leader_id,
                leader_epoch: p.leader_epoch,
                replicas: p.replica_nodes.clone(),
                isr: p.isr_nodes.clone(),
                error: ErrorCode(p.error_code),
            })
            .collect();
        parts.sort_by_key(|p| p.partition);
        Ok(parts)
    }

    /// The partition's current leader as the first answering node sees it.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Result<i32, ClusterError> {
        let parts = self.describe_topic(topic)?;
        match parts.iter().find(|p| p.partition == partition) {
            Some(p) if p.leader >= 0 => Ok(p.leader),
            Some(_) => Err(ClusterError::NoLeader {
                topic: topic.to_owned(),
                partition,
            }),
            None => Err(ClusterError::Kafka {
                what: format!("Metadata {topic}"),
                code: ErrorCode(3), // UNKNOWN_TOPIC_OR_PARTITION
                message: Some(format!("no partition {partition}")),
            }),
        }
    }

    /// SIGKILLs the node and waits until its JVM is gone. No-op if it is
    /// not running.
    pub fn kill(&self, node: i32) {
        let Ok(n) = self.node(node) else { return };
        let mut n = lock(n);
        if let Some(mut jvm) = n.jvm.take() {
            jvm.kill();
        }
        n.paused = false;
    }

    /// SIGTERMs the node (controlled shutdown) and waits until its JVM has
    /// exited; SIGKILLs it after two minutes. A paused node is resumed so it
    /// can shut down.
    pub fn terminate(&self, node: i32) {
        let Ok(n) = self.node(node) else { return };
        let mut n = lock(n);
        if let Some(mut jvm) = n.jvm.take() {
            jvm.signal("TERM");
            if n.paused {
                jvm.signal("CONT");
            }
            if !jvm.wait_exit(Duration::from_secs(120)) {
                jvm.kill();
            }
        }
        n.paused = false;
    }

    /// SIGSTOPs the node.
    pub fn pause(&self, node: i32) {
        let Ok(n) = self.node(node) else { return };
        let mut n = lock(n);
        if n.running() {
            if let Some(jvm) = &mut n.jvm {
                jvm.signal("STOP");
            }
            n.paused = true;
        }
    }

    /// SIGCONTs the node.
    pub fn resume(&self, node: i32) {
        let Ok(n) = self.node(node) else { return };
        let mut n = lock(n);
        if n.running() {
            if let Some(jvm) = &mut n.jvm {
                jvm.signal("CONT");
            }
        }
        n.paused = false;
    }

    /// Starts a stopped node again on its storage and ports, and waits until
    /// every running broker lists it in Metadata. A running node is killed
    /// first.
    pub fn restart(&self, node: i32) -> Result<(), ClusterError> {
        let n = self.node(node)?;
        {
            let mut n = lock(n);
            if let Some(mut jvm) = n.jvm.take() {
                jvm.kill();
            }
            n.paused = false;
            let jvm = self.spawn_node(&n)?;
            n.jvm = Some(jvm);
        }
        self.wait_brokers(self.cfg.start_timeout, Some(node))
    }

    /// Waits until every node runs and every unpaused one lists all nodes in
    /// Metadata. Fails at once if a node is not running.
    pub fn wait_all_brokers(&self, timeout: Duration) -> Result<(), ClusterError> {
        for n in &self.nodes {
            let mut n = lock(n);
            if !n.running() {
                return Err(ClusterError::NotRunning(n.id));
            }
        }
        self.wait_brokers(timeout, None)
    }

    /// The broker ids a node lists in Metadata right now.
    pub fn brokers_seen_by(&self, node: i32) -> Result<Vec<i32>, ClusterError> {
        let port = {
            let mut n = lock(self.node(node)?);
            if !n.answering() {
                return Err(ClusterError::NotRunning(node));
            }
            n.broker_port
        };
        Self::metadata_brokers(port, ADMIN_TIMEOUT)
    }

    /// Asks the node for Metadata whatever the harness believes its state
    /// is (paused included), waiting at most `timeout`: the broker ids it
    /// lists, or the error (refused when killed, a timeout when paused).
    pub fn ping(&self, node: i32, timeout: Duration) -> Result<Vec<i32>, ClusterError> {
        let port = lock(self.node(node)?).broker_port;
        Self::metadata_brokers(port, timeout)
    }

    /// Runs one of Apache Kafka's command-line tools (`class`, such as
    /// `org.apache.kafka.tools.AclCommand`, the code behind
    /// `kafka-acls.sh`) against the PLAINTEXT listener of the first
    /// answering node (`--bootstrap-server` is added) and returns what it
    /// printed, or an error with that text if it failed.
    pub fn tool(&self, class: &str, args: &[&str]) -> Result<String, ClusterError> {
        let port = *self
            .answering_ports()
            .first()
            .ok_or_else(|| ClusterError::Protocol("no node is running".into()))?;
        let out = Command::new(&self.java)
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-cp")
            .arg(self.libs.join("*"))
            .arg(class)
            .args(["--bootstrap-server", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| ClusterError::Io {
                context: format!("running {class}"),
                source,
            })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(ClusterError::Protocol(format!(
                "{class} {args:?} failed ({}): {text}",
                out.status
            )))
        }
    }

    /// Kafka's ACL tool ([`tool`](Self::tool) with `AclCommand`) with
    /// `args` (`--add`, `--allow-principal User:alice`, `--operation
    /// Write`, `--topic t`, ...). The cluster needs an authorizer
    /// (`authorizer.class.name`) and the harness's principal,
    /// `User:ANONYMOUS`, among `super.users`.
    ///
    /// An `--add` returns once the controller committed the ACL; the broker
    /// applies it from its metadata log, so a caller that must see it in
    /// force waits with [`wait_for_acl`](Self::wait_for_acl).
    pub fn acl(&self, args: &[&str]) -> Result<String, ClusterError> {
        self.tool("org.apache.kafka.tools.AclCommand", args)
    }

    /// Deletes a topic (Kafka's `TopicCommand --delete`) and waits until no
    /// answering node lists it.
    pub fn delete_topic(&self, name: &str) -> Result<(), ClusterError> {
        self.tool(
            "org.apache.kafka.tools.TopicCommand",
            &["--delete", "--topic", name],
        )?;
        let start = Instant::now();
        loop {
            let mut last = String::new();
            let gone =
                self.answering_ports()
                    .into_iter()
                    .all(|port| match self.describe_on(port, name) {
                        Err(ClusterError::Kafka { code, .. })
                            if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION =>
                        {
                            true
                        }
                        other => {
                            last = format!("{other:?}");
                            false
                        }
                    });
            if gone {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(ClusterError::Timeout {
                    what: format!("the deletion of {name}"),
                    waited: start.elapsed(),
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the broker lists an ACL of `principal` (`User:alice`)
    /// on the resource `resource` (`["--topic", "t"]`), i.e. until the
    /// broker's authorizer has applied it.
    pub fn wait_for_acl(&self, principal: &str, resource: &[&str]) -> Result<(), ClusterError> {
        let start = Instant::now();
        let mut args = vec!["--list"];
        args.extend_from_slice(resource);
        loop {
            let listed = self.acl(&args)?;
            if listed.contains(&format!("principal={principal}")) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(ClusterError::Timeout {
                    what: format!("an ACL of {principal} on {resource:?}"),
                    waited: start.elapsed(),
                    last: listed,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn metadata_brokers(port: u16, timeout: Duration) -> Result<Vec<i32>, ClusterError> {
        let m = admin::metadata(addr(port), None, timeout)?;
        let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn node(&self, id: i32) -> Result<&Mutex<Node>, ClusterError> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.nodes.get(i))
            .ok_or(ClusterError::NoSuchNode(id))
    }

    /// Broker ports of the nodes that can answer, lowest id first.
    fn answering_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let mut n = lock(n);
                n.answering().then_some(n.broker_port)
            })
            .collect()
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            let mut n = lock(n);
            if let Some(mut jvm) = n.jvm.take() {
                jvm.kill();
            }
        }
        if std::thread::panicking() && !self.nodes.is_empty() {
            eprintln!("kring-testcluster: node logs\n{}", self.log_tails(30));
        }
        if self.keep {
            eprintln!("kring-testcluster: kept {}", self.root.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// log4j2 configuration for a node: WARN and above to `-Dkring.node.log`.
const LOG4J2: &str = "\
status = warn
appender.node.type = File
appender.node.name = node
appender.node.fileName = ${sys:kring.node.log}
appender.node.append = true
appender.node.layout.type = PatternLayout
appender.node.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.node.ref = node
logger.kafka.name = kafka.server.KafkaServer
logger.kafka.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
";

fn lock(n: &Mutex<Node>) -> MutexGuard<'_, Node> {
    // A panic while holding a node lock leaves the node as it was; keep
    // going so teardown still works.
    n.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// `$KRING_JAVA`, else `java` on `PATH`.
pub fn java_binary() -> Result<PathBuf, ClusterError> {
    if let Some(p) = std::env::var_os("KRING_JAVA") {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("java"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| ClusterError::NotInstalled("java is not on PATH".into()))
}

/// The directory of Apache Kafka jars: `$KRING_KAFKA_LIBS`, else
/// `~/.cache/kring/kafka-4.4.0/libs` (or under `$KRING_CACHE`).
pub fn kafka_libs() -> Result<PathBuf, ClusterError> {
    let dir = match std::env::var_os("KRING_KAFKA_LIBS") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("KRING_CACHE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kring")))
                .ok_or_else(|| {
                    ClusterError::NotInstalled("neither KRING_KAFKA_LIBS nor HOME is set".into())
                })?;
            cache.join(format!("kafka-{KAFKA_VERSION}/libs"))
        }
    };
    let jar = dir.join(format!("kafka_2.13-{KAFKA_VERSION}.jar"));
    if jar.is_file() {
        Ok(dir)
    } else {
        Err(ClusterError::NotInstalled(format!(
            "Apache Kafka {KAFKA_VERSION} jars not found: no {}",
            jar.display()
        )))
    }
}

/// The small Java programs of `tests/kafka/src` (the record reader):
/// `kring-kafka-support.jar` beside the Kafka jars' directory.
pub fn support_jar() -> Result<PathBuf, ClusterError> {
    let libs = kafka_libs()?;
    let jar = libs
        .parent()
        .unwrap_or(&libs)
        .join("kring-kafka-support.jar");
    if jar.is_file() {
        Ok(jar)
    } else {
        Err(ClusterError::NotInstalled(format!("no {}", jar.display())))
    }
}

/// A fresh directory under `$TMPDIR` for one cluster.
fn make_root() -> Result<PathBuf, ClusterError> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    loop {
        let dir = base.join(format!(
            "kring-kafka-{}-{}-{:08x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            random_u64() as u32
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(ClusterError::Io {
                    context: format!("creating {}", dir.display()),
                    source,
                })
            }
        }
    }
}

/// `n` distinct ports that were free a moment ago (bound to :0 together).
fn free_ports(n: usize) -> Result<Vec<u16>, ClusterError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ClusterError::Io {
            context: "binding 127.0.0.1:0".into(),
            source,
        })?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|source| ClusterError::Io {
            context: "local_addr".into(),
            source,
        })
}

/// Whether a start failed because a port was taken.
fn port_clash(e: &ClusterError) -> bool {
    matches!(e, ClusterError::NodeStart { tail, .. } if tail.contains("Address already in use"))
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// A random Kafka UUID (16 bytes, base64url without padding), never one of
/// the reserved ids (all zeros, or zeros and a final one), starting with a
/// letter.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&random_u64().to_be_bytes());
    b[8..].copy_from_slice(&random_u64().to_be_bytes());
    // Top bits 01: never a reserved id, and the first character is a
    // letter (`Q`..`f`), never `-` or `_`, which Kafka's StorageTool
    // would read as an option (`-t -xyz...`).
    b[0] = (b[0] & 0x3f) | 0x40;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &byte in &b {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

fn write_file(path: &Path, text: &str) -> Result<(), ClusterError> {
    std::fs::write(path, text).map_err(|source| ClusterError::Io {
        context: format!("writing {}", path.display()),
        source,
    })
}

fn open_log(path: &Path) -> Result<std::fs::File, ClusterError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| ClusterError::Io {
            context: format!("opening {}", path.display()),
            source,
        })
}

/// The last `lines` lines of a file ("" if unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_22_base64url_chars_and_differ() {
        let a = random_uuid();
        let b = random_uuid();
        assert_eq!(a.len(), 22);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    /// A leading `-` made StorageTool take the id for an option (1 start
    /// in 16 before): 500 ids would all but surely contain one.
    #[test]
    fn uuids_never_start_with_an_option_dash() {
        for _ in 0..500 {
            let id = random_uuid();
            let first = id.as_bytes()[0];
            assert!(first.is_ascii_alphabetic(), "{id}");
        }
    }
}
