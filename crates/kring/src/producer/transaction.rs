//! Transactions on the [`Producer`]: the Java client's
//! `initTransactions`, `beginTransaction`, `commitTransaction` and
//! `abortTransaction`, each blocking up to `max.block.ms` as there.
//!
//! The state machine and its rules are kring-core's (`Shared`'s
//! transactional calls and the I/O thread's `transaction` module); this
//! file only waits for them the way the rest of `Producer` waits.

use std::time::{Duration, Instant};

use kring_core::TransactionHandle;

use super::Producer;
use crate::TransactionError;

impl Producer {
    /// Whether the producer has a `transactional.id`.
    pub fn is_transactional(&self) -> bool {
        self.shared.is_transactional()
    }

    /// Prepares a producer with a `transactional.id` for transactions:
    /// finds the transaction coordinator and gets the producer id and
    /// epoch of the id, which fences every earlier producer with the same
    /// `transactional.id` (their next transactional call or send fails
    /// with [`TransactionError::Fatal`]) and aborts the transaction such a
    /// producer left open. Call once, before the first
    /// [`begin_transaction`](Self::begin_transaction). Blocks up to
    /// `max.block.ms`; after [`TransactionError::Timeout`] call it again to
    /// keep waiting for the same request.
    pub fn init_transactions(&self) -> Result<(), TransactionError> {
        let h = self.shared.init_transactions()?;
        self.wait_transaction(&h)
    }

    /// Begins a transaction. Records can be sent only inside one: outside,
    /// `send` fails at once with [`SendError::NotInTransaction`](crate::SendError::NotInTransaction).
    /// No request is made.
    pub fn begin_transaction(&self) -> Result<(), TransactionError> {
        if self.shared.begin_transaction()? {
            self.waker.wake();
        }
        Ok(())
    }

    /// Commits consumer offsets with the transaction (the Java client's
    /// `sendOffsetsToTransaction`, for exactly-once
    /// consume-transform-produce): the group's offsets become its
    /// committed offsets if the transaction commits, and never if it
    /// aborts. Each [`OffsetToCommit`](crate::OffsetToCommit) names the
    /// next offset to consume (the last one processed + 1). `group` is the
    /// consumer's group metadata: with its generation and member id
    /// ([`ConsumerGroupMetadata::member`](crate::ConsumerGroupMetadata::member)),
    /// a consumer that has left the group (a zombie) cannot commit. Inside a
    /// transaction only; blocks until the group's coordinator has the
    /// offsets, up to `max.block.ms`.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: impl IntoIterator<Item = crate::OffsetToCommit>,
        group: &crate::ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        let h = self
            .shared
            .send_offsets_to_transaction(offsets.into_iter().collect(), group.clone())?;
        self.wait_transaction(&h)
    }

    /// Commits the transaction: sends every record of it at once (ignoring
    /// `linger.ms`), waits until each has its result, then asks the
    /// coordinator to commit; readers with `isolation.level=read_committed`
    /// then see all of its records. If a record of the transaction failed,
    /// nothing is committed and this fails with
    /// [`TransactionError::Abortable`]: call
    /// [`abort_transaction`](Self::abort_transaction). Blocks up to
    /// `max.block.ms`; after [`TransactionError::Timeout`] call it again to
    /// keep waiting for the same commit.
    pub fn commit_transaction(&self) -> Result<(), TransactionError> {
        let h = self.shared.commit_transaction()?;
        self.wait_transaction(&h)
    }

    /// Aborts the transaction: its records not sent yet fail with
    /// [`DeliveryError::Aborted`](crate::DeliveryError::Aborted), those in
    /// flight finish, then the coordinator is asked to abort, and readers
    /// with `read_committed` never see any of its records. Allowed inside
    /// a transaction and after [`TransactionError::Abortable`]. Blocks up
    /// to `max.block.ms`; after [`TransactionError::Timeout`] call it again
    /// to keep waiting for the same abort.
    pub fn abort_transaction(&self) -> Result<(), TransactionError> {
        let h = self.shared.abort_transaction()?;
        self.wait_transaction(&h)
    }

    /// [`init_transactions`](Self::init_transactions) for async code: yields
    /// instead of blocking the executor's thread, and waits without a time
    /// limit (wrap it in your runtime's timeout; dropping the future leaves
    /// the operation running, and calling again waits for it).
    pub async fn init_transactions_async(&self) -> Result<(), TransactionError> {
        let h = self.shared.init_transactions()?;
        self.await_transaction(h).await
    }

    /// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction)
    /// for async code (see [`init_transactions_async`](Self::init_transactions_async)).
    pub async fn send_offsets_to_transaction_async(
        &self,
        offsets: impl IntoIterator<Item = crate::OffsetToCommit>,
        group: &crate::ConsumerGroupMetadata,
    ) -> Result<(), TransactionError> {
        let h = self
            .shared
            .send_offsets_to_transaction(offsets.into_iter().collect(), group.clone())?;
        self.await_transaction(h).await
    }

    /// [`commit_transaction`](Self::commit_transaction) for async code (see
    /// [`init_transactions_async`](Self::init_transactions_async)).
    pub async fn commit_transaction_async(&self) -> Result<(), TransactionError> {
        let h = self.shared.commit_transaction()?;
        self.await_transaction(h).await
    }

    /// [`abort_transaction`](Self::abort_transaction) for async code (see
    /// [`init_transactions_async`](Self::init_transactions_async)).
    pub async fn abort_transaction_async(&self) -> Result<(), TransactionError> {
        let h = self.shared.abort_transaction()?;
        self.await_transaction(h).await
    }

    async fn await_transaction(&self, h: TransactionHandle) -> Result<(), TransactionError> {
        if h.wake {
            self.waker.wake();
        }
        if self.io_thread_exited() && !h.is_done() {
            return Err(TransactionError::Closed);
        }
        h.await
    }

    /// Waits for a transactional operation up to `max.block.ms`.
    fn wait_transaction(&self, h: &TransactionHandle) -> Result<(), TransactionError> {
        if h.wake {
            self.waker.wake();
        }
        if self.on_io_thread() {
            // The I/O thread finishes the operation only after the callback
            // returns (see `wait_io`).
            return Err(TransactionError::InvalidState {
                op: h.name(),
                state: "inside a delivery callback (on the I/O thread)",
            });
        }
        const SLICE: Duration = Duration::from_secs(1);
        let start = Instant::now();
        loop {
            if self.io_thread_exited() && !h.is_done() {
                return Err(TransactionError::Closed);
            }
            let left = self.max_block.saturating_sub(start.elapsed());
            if let Some(r) = h.wait_timeout(left.min(SLICE)) {
                return r;
            }
            if left <= SLICE {
                return Err(TransactionError::Timeout {
                    op: h.name(),
                    waited: self.max_block,
                });
            }
        }
    }
}
