//! Transactions (KIP-98), the handle's half: the state a user's calls
//! move through, the operations they wait for, and their errors.
//!
//! Why the state lives here and not only in the I/O thread: the Java
//! client refuses a send outside a transaction, and a second `commit`
//! while one is running, at the call (`TransactionManager`'s state
//! machine is checked by the calling thread). kring does the same with
//! [`TxnState`], under one lock, and tells the I/O thread what to do with
//! notices. Which batches belong to a transaction is decided where they
//! are announced: a batch may only open while the notice queue's gate is
//! open (`NoticeInner::txn_gate`), and the gate opens with the `Begin`
//! notice and closes with the `End` notice, under the queue's lock. So
//! every batch the I/O thread hears of between the two belongs to the
//! transaction, and no send racing with a commit can slip a batch past
//! it: it is refused with [`SendError::Transaction`](crate::SendError).
//!
//! The I/O thread's half (coordinator, AddPartitionsToTxn, EndTxn, the
//! epoch) is `producer::transaction`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::delivery::DeliveryError;
use crate::oneshot::OneShot;

/// Why a transactional call failed.
///
/// What to do next follows the Java client: after
/// [`Abortable`](Self::Abortable) abort the transaction (the producer stays
/// usable); after [`Fatal`](Self::Fatal) the producer can only be closed
/// (another producer took its `transactional.id`, or the broker refused it
/// for good); after [`Timeout`](Self::Timeout) the same call may be made
/// again and waits for the same operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The producer has no `transactional.id`.
    #[error("the producer has no transactional.id")]
    NotTransactional,
    /// The call is not allowed in the transaction's current state (for
    /// example `commit` with no transaction begun, `begin` before
    /// `init_transactions`).
    #[error("cannot {op} {state}")]
    InvalidState {
        /// The call.
        op: &'static str,
        /// Where the producer is, in words.
        state: &'static str,
    },
    /// The operation did not finish within the time the call waited
    /// (`max.block.ms`). It goes on: calling the same method again waits
    /// for it.
    #[error("{op} did not finish within {waited:?}; call it again to keep waiting")]
    Timeout {
        /// The call.
        op: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// The transaction cannot be committed (a record of it failed, or the
    /// coordinator refused a partition); abort it, then go on.
    #[error("the transaction must be aborted: {0}")]
    Abortable(DeliveryError),
    /// The transactional producer cannot go on: close it.
    #[error("the transactional producer cannot go on: {0}")]
    Fatal(DeliveryError),
    /// The producer is closing or closed.
    #[error("the producer is closed")]
    Closed,
}

/// Where the transactional producer is (the Java client's
/// `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    AbortableError,
    FatalError,
}

impl Phase {
    /// The phase in words, for errors ("cannot commit …").
    pub(crate) fn words(self) -> &'static str {
        match self {
            Phase::Uninitialized => "before init_transactions",
            Phase::Initializing => "while init_transactions is running",
            Phase::Ready => "with no transaction begun",
            Phase::InTransaction => "inside a transaction",
            Phase::Committing => "while the transaction commits",
            Phase::Aborting => "while the transaction aborts",
            Phase::AbortableError => "after an error that requires an abort",
            Phase::FatalError => "after a fatal error",
        }
    }
}

/// One running operation (init, commit, abort): settled once by the I/O
/// thread.
pub(crate) type TxnOp = OneShot<Option<Result<(), TransactionError>>>;

/// Which operation is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Init,
    Commit,
    Abort,
    SendOffsets,
}

impl OpKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Init => "init_transactions",
            OpKind::Commit => "commit_transaction",
            OpKind::Abort => "abort_transaction",
            OpKind::SendOffsets => "send_offsets_to_transaction",
        }
    }
}

/// The consumer group whose offsets a transaction commits (the Java
/// client's `ConsumerGroupMetadata`): its id, and the consumer's
/// generation and member id, which let the group coordinator refuse the
/// commit of a consumer that has left the group (a zombie), as KIP-447
/// intends. Without them (`new`) the commit is checked by group id only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub(crate) group_id: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// A group by id only (generation -1, no member id).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// The consumer's generation and member id, as its group coordinator
    /// gave them.
    #[must_use]
    pub fn member(mut self, generation_id: i32, member_id: impl Into<String>) -> Self {
        self.generation_id = generation_id;
        self.member_id = member_id.into();
        self
    }

    /// The consumer's `group.instance.id` (static membership, KIP-345).
    #[must_use]
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }
}

/// One partition's offset to commit with a transaction: the offset of the
/// next record to consume (the last one processed + 1), as Kafka commits
/// offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    /// The topic consumed.
    pub topic: String,
    /// The partition consumed.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last record consumed, if known (-1: none).
    pub leader_epoch: i32,
    /// Metadata stored with the offset.
    pub metadata: Option<String>,
}

impl OffsetToCommit {
    /// `offset` of `topic`/`partition`, no leader epoch, no metadata.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        OffsetToCommit {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        }
    }
}

/// The handle's view of the transaction. Changed by callers (init, begin,
/// commit, abort) and by the I/O thread (an operation finished, an error).
#[derive(Debug)]
pub(crate) struct TxnState {
    pub(crate) phase: Phase,
    /// The running operation, if any.
    pub(crate) op: Option<(OpKind, Arc<TxnOp>)>,
    /// Why the phase is `AbortableError` or `FatalError`.
    pub(crate) error: Option<DeliveryError>,
}

/// The transactional state of a producer with a `transactional.id`.
#[derive(Debug)]
pub(crate) struct Txn {
    state: Mutex<TxnState>,
}

impl Txn {
    pub(crate) fn new() -> Self {
        Txn {
            state: Mutex::new(TxnState {
                phase: Phase::Uninitialized,
                op: None,
                error: None,
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, TxnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Settles `op` with `result` (a second settle is ignored).
pub(crate) fn settle(op: &TxnOp, result: Result<(), TransactionError>) {
    op.settle(|slot| {
        *slot = Some(result);
        (true, ())
    });
}

/// A running transactional operation (init, commit or abort). Wait for it
/// by blocking ([`wait_timeout`](Self::wait_timeout)) or by awaiting it.
#[derive(Debug, Clone)]
pub struct TransactionHandle {
    pub(crate) op: Arc<TxnOp>,
    pub(crate) kind: OpKind,
    /// Whether the caller must wake the I/O thread (see
    /// [`AppendOutcome::wake`](crate::AppendOutcome::wake)).
    pub wake: bool,
}

impl TransactionHandle {
    /// The operation's name (`"commit_transaction"`, …).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Whether it has finished.
    pub fn is_done(&self) -> bool {
        self.op.is_settled()
    }

    /// Blocks up to `timeout`; `None` if it has not finished by then (it
    /// goes on).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<(), TransactionError>> {
        let (slot, done) = self.op.wait_timeout(timeout);
        if done {
            slot.value.clone()
        } else {
            None
        }
    }
}

impl Future for TransactionHandle {
    type Output = Result<(), TransactionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.op.poll_settled(cx) {
            Some(slot) => Poll::Ready(slot.value.clone().unwrap_or(Err(TransactionError::Closed))),
            None => Poll::Pending,
        }
    }
}
