//! kring-mock: an in-process Kafka cluster speaking the real wire protocol
//! on 127.0.0.1, with fault injection, and a sink mode for benchmarks.
//!
//! Like librdkafka's mock cluster and franz-go's kfake: a test builds a
//! cluster, points any Kafka client at [`MockCluster::bootstrap_servers`],
//! and then reads back what landed ([`MockCluster::records`],
//! [`MockCluster::batches`]), injects faults while the client runs
//! ([`MockCluster::inject`]), stops and starts brokers, and moves partition
//! leaders.
//!
//! ```no_run
//! use kring_mock::{Fault, MockCluster};
//! use kring_protocol::{error_code::ErrorCode, messages::ApiKey};
//! let cluster = MockCluster::builder().brokers(3).topic("t", 16).build()?;
//! let bootstrap = cluster.bootstrap_servers();
//! // Fail the next two Produce requests that touch t/0.
//! cluster.inject(
//!     Fault::error(ApiKey::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER)
//!         .on_partition("t", 0)
//!         .times(2),
//! );
//! // ... run a client against `bootstrap` ...
//! let records = cluster.records("t", 0)?;
//! # Ok::<(), kring_mock::MockError>(())
//! ```
//!
//! # What it serves
//! One module per API key under [`api`], each opening with the versions it
//! serves and how it behaves: ApiVersions, Metadata, Produce (v3–v11),
//! FindCoordinator, InitProducerId, AddPartitionsToTxn (v0–v3), EndTxn
//! (v0–v4), CreateTopics, ListOffsets, Fetch. Requests of other APIs, or
//! of versions outside those ranges, close the connection, as a Kafka
//! broker does.
//!
//! # Transactions
//! A transaction coordinator as Kafka's (transaction version 1: the
//! producer adds partitions, EndTxn writes COMMIT/ABORT markers into
//! them, InitProducerId fences older epochs and aborts what they left
//! open, timeouts abort on the cluster's clock), and partition leaders
//! that verify transactional batches with it (KIP-890 part 1). Tests see
//! a transaction with [`MockCluster::transaction_state`], what a
//! read_committed consumer would read with
//! [`MockCluster::read_committed`], move a coordinator with
//! [`MockCluster::move_transaction_coordinator`], hold markers back with
//! [`MockCluster::hold_transaction_markers`] and move time with
//! [`MockCluster::advance_clock_to`].
//!
//! # SASL
//! [`MockClusterBuilder::sasl`] makes every broker a SASL listener (PLAIN,
//! SCRAM-SHA-256/512, OAUTHBEARER; optional session lifetime for KIP-368
//! re-authentication): see the `sasl` module. A caller of the sans-IO
//! entry point screens each connection's requests itself with
//! [`MockCluster::screen_sasl`] and a [`SaslSession`] per connection;
//! [`MockCluster::set_sasl_user`] changes credentials while it runs.
//!
//! # Storage
//! Each partition keeps an in-memory log of the batches clients sent
//! (validated like a broker validates them: framing, magic, CRC, record
//! encoding), with the broker-assigned base offset and leader epoch written
//! in. Idempotent producers are checked as Kafka checks them (last five
//! batches per producer; duplicates answered with the original offset). See
//! [`log`](crate::StoredBatch) and the `idempotence` module docs.
//!
//! # Sink mode
//! [`MockCluster::sink`] builds brokers that acknowledge Produce with
//! increasing offsets per partition without storing, validating or
//! decompressing anything, answering each read's worth of pipelined requests
//! with one write, so that a client benchmark measures the client. Metadata
//! creates unknown topics with [`MockClusterBuilder::default_partitions`]
//! partitions.
//!
//! # Threads
//! One acceptor thread per broker and one thread per connection, with
//! blocking I/O. Dropping the [`MockCluster`] closes every socket and joins
//! every thread.
//!
//! Everything here is written by hand; the request and response types come
//! from `kring_protocol::messages` (generated).
#![forbid(unsafe_code)]

pub mod api;
mod batch;
mod cluster;
mod conn;
mod faults;
pub mod frame;
mod idempotence;
mod lie;
mod log;
pub mod procstat;
mod records;
mod sasl;
mod server;
pub mod sink;
mod state;
mod tls;
mod txn;

pub use api::{Reply, Step};
pub use batch::{BatchError, BatchHeader};
pub use cluster::{MockCluster, MockClusterBuilder, MockError};
pub use faults::{Fault, FaultAction, FaultId, Hook, RequestInfo};
pub use idempotence::{UnknownProducerPolicy, RETAINED_BATCHES};
pub use lie::Lie;
pub use log::StoredBatch;
pub use records::StoredRecord;
pub use sasl::{MockSasl, SaslSession, SaslStep};
pub use sink::SinkStats;
pub use state::{CreateTopicError, DEFAULT_MAX_MESSAGE_BYTES};
pub use txn::{TransactionInfo, TxnState, MAX_TRANSACTION_TIMEOUT_MS};
