//! The transactional calls of the producer's handle (init, begin, commit,
//! abort) and the I/O thread's way of reporting back. See `crate::txn`
//! for why the state is checked here and how batches are tied to a
//! transaction.

use std::sync::Arc;

use crate::delivery::DeliveryError;
use crate::notice::{Notice, TxnGate, TxnNotice};
use crate::txn::{settle, OpKind, Phase, TransactionError, TransactionHandle, Txn, TxnOp};

use super::Shared;

impl Shared {
    fn txn(&self) -> Result<&Txn, TransactionError> {
        self.txn.as_ref().ok_or(TransactionError::NotTransactional)
    }

    /// Where the transaction is, in words (a refused send says it).
    pub(crate) fn txn_phase_words(&self) -> &'static str {
        self.txn.as_ref().map_or("", |t| t.lock().phase.words())
    }

    /// Whether the producer has a `transactional.id`.
    pub fn is_transactional(&self) -> bool {
        self.txn.is_some()
    }

    /// The error a call made in `phase` gets, when it is not allowed.
    fn refused(phase: Phase, error: Option<&DeliveryError>, op: &'static str) -> TransactionError {
        match (phase, error) {
            (Phase::FatalError, Some(e)) => TransactionError::Fatal(e.clone()),
            (Phase::AbortableError, Some(e)) => TransactionError::Abortable(e.clone()),
            _ => TransactionError::InvalidState {
                op,
                state: phase.words(),
            },
        }
    }

    /// Starts `init_transactions` (the Java client's `initTransactions`):
    /// finds the transaction coordinator and gets the producer id and
    /// epoch for the `transactional.id`, fencing any earlier producer with
    /// the same id and aborting its open transaction. A call while an
    /// earlier one runs (it timed out at the caller) waits for that one.
    pub fn init_transactions(&self) -> Result<TransactionHandle, TransactionError> {
        self.start_op(OpKind::Init, &[Phase::Uninitialized], Phase::Initializing)
    }

    /// Begins a transaction (local: no request). Sends are refused outside
    /// one.
    pub fn begin_transaction(&self) -> Result<bool, TransactionError> {
        let txn = self.txn()?;
        let mut st = txn.lock();
        if self.notices.is_closed() {
            return Err(TransactionError::Closed);
        }
        if st.phase != Phase::Ready {
            return Err(Self::refused(
                st.phase,
                st.error.as_ref(),
                "begin_transaction",
            ));
        }
        st.phase = Phase::InTransaction;
        let (_, wake) = self.notices.with(|n| {
            n.txn_gate = TxnGate::Open;
            n.list.push(Notice::Txn(Box::new(TxnNotice::Begin)));
        });
        Ok(wake)
    }

    /// Starts committing the transaction: every record sent in it is sent
    /// at once (linger ends), and once all have their results the
    /// coordinator is asked to commit. Sends are refused from now until
    /// the next `begin_transaction`. If a record of the transaction failed,
    /// the handle fails with [`TransactionError::Abortable`].
    pub fn commit_transaction(&self) -> Result<TransactionHandle, TransactionError> {
        self.start_op(OpKind::Commit, &[Phase::InTransaction], Phase::Committing)
    }

    /// Starts aborting the transaction: records not sent yet fail with
    /// [`DeliveryError::Aborted`], records in flight finish, then the
    /// coordinator is asked to abort (readers with `read_committed` never
    /// see the transaction's records). Allowed inside a transaction and
    /// after an abortable error.
    pub fn abort_transaction(&self) -> Result<TransactionHandle, TransactionError> {
        self.start_op(
            OpKind::Abort,
            &[Phase::InTransaction, Phase::AbortableError],
            Phase::Aborting,
        )
    }

    /// Starts `send_offsets_to_transaction` (the Java client's
    /// `sendOffsetsToTransaction`): `offsets` of `group` are committed
    /// with the transaction — visible to the group if it commits, never if
    /// it aborts (exactly-once consume-transform-produce). Inside a
    /// transaction only. The coordinator learns the group
    /// (AddOffsetsToTxn), then the group's coordinator takes the offsets
    /// (TxnOffsetCommit); the handle completes when it has.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: Vec<crate::txn::OffsetToCommit>,
        group: crate::txn::ConsumerGroupMetadata,
    ) -> Result<TransactionHandle, TransactionError> {
        let txn = self.txn()?;
        let mut st = txn.lock();
        if self.notices.is_closed() {
            return Err(TransactionError::Closed);
        }
        if st.phase != Phase::InTransaction {
            return Err(Self::refused(
                st.phase,
                st.error.as_ref(),
                OpKind::SendOffsets.name(),
            ));
        }
        if st.op.is_some() {
            return Err(TransactionError::InvalidState {
                op: OpKind::SendOffsets.name(),
                state: "while an earlier send_offsets_to_transaction runs",
            });
        }
        let op = Arc::new(TxnOp::default());
        let op2 = op.clone();
        let (_, wake) = self.notices.with(|n| {
            n.list.push(Notice::Txn(Box::new(TxnNotice::Offsets {
                group,
                offsets,
                op: op2,
            })));
        });
        st.op = Some((OpKind::SendOffsets, op.clone()));
        Ok(TransactionHandle {
            op,
            kind: OpKind::SendOffsets,
            wake,
        })
    }

    fn start_op(
        &self,
        kind: OpKind,
        from: &[Phase],
        to: Phase,
    ) -> Result<TransactionHandle, TransactionError> {
        let txn = self.txn()?;
        let mut st = txn.lock();
        if let Some((k, op)) = &st.op {
            if *k == kind {
                // The same call again (the first one timed out): wait for
                // the same operation.
                return Ok(TransactionHandle {
                    op: op.clone(),
                    kind,
                    wake: false,
                });
            }
        }
        if self.notices.is_closed() {
            return Err(TransactionError::Closed);
        }
        if !from.contains(&st.phase) {
            return Err(Self::refused(st.phase, st.error.as_ref(), kind.name()));
        }
        let op = Arc::new(TxnOp::default());
        let op2 = op.clone();
        let (finished, wake) = self.notices.with(|n| {
            if n.finished {
                return true;
            }
            let notice = match kind {
                OpKind::Init => TxnNotice::Init(op2),
                OpKind::SendOffsets => unreachable!("send_offsets_to_transaction has its own path"),
                OpKind::Commit | OpKind::Abort => {
                    // Like a flush: every batch opened before waits.
                    n.flush_gen += 1;
                    n.txn_gate = TxnGate::Closed;
                    TxnNotice::End {
                        commit: kind == OpKind::Commit,
                        gen: n.flush_gen,
                        op: op2,
                    }
                }
            };
            n.list.push(Notice::Txn(Box::new(notice)));
            false
        });
        if finished {
            return Err(TransactionError::Closed);
        }
        st.phase = to;
        st.op = Some((kind, op.clone()));
        Ok(TransactionHandle { op, kind, wake })
    }

    /// I/O thread: the running operation `op` succeeded; the phase becomes
    /// `phase` (Ready after init, commit and abort).
    pub(crate) fn txn_op_done(&self, op: &Arc<TxnOp>, phase: Phase) {
        let Some(txn) = &self.txn else { return };
        let mut st = txn.lock();
        if st.phase == Phase::FatalError {
            return;
        }
        st.phase = phase;
        st.error = None;
        if st.op.as_ref().is_some_and(|(_, o)| Arc::ptr_eq(o, op)) {
            st.op = None;
        }
        drop(st);
        settle(op, Ok(()));
    }

    /// I/O thread: a `send_offsets_to_transaction` finished; the phase
    /// stays.
    pub(crate) fn txn_offsets_done(&self, op: &Arc<TxnOp>) {
        if let Some(txn) = &self.txn {
            let mut st = txn.lock();
            if st.op.as_ref().is_some_and(|(_, o)| Arc::ptr_eq(o, op)) {
                st.op = None;
            }
        }
        settle(op, Ok(()));
    }

    /// I/O thread: the transaction must be aborted (`err` says why). A
    /// running commit fails with it; sends are refused until the abort.
    /// Ignored while aborting or after a fatal error.
    pub(crate) fn txn_abortable(&self, err: &DeliveryError) {
        let Some(txn) = &self.txn else { return };
        let mut st = txn.lock();
        if matches!(
            st.phase,
            Phase::Aborting | Phase::AbortableError | Phase::FatalError
        ) {
            return;
        }
        st.phase = Phase::AbortableError;
        st.error = Some(err.clone());
        self.notices.with(|n| n.txn_gate = TxnGate::Closed);
        if let Some((kind, op)) = st.op.take() {
            drop(st);
            debug_assert_ne!(kind, OpKind::Init, "no batch before init");
            settle(&op, Err(TransactionError::Abortable(err.clone())));
        }
    }

    /// I/O thread: the transactional producer cannot go on. The running
    /// operation fails with `err`, and every later call too.
    pub(crate) fn txn_fatal(&self, err: &DeliveryError) {
        let Some(txn) = &self.txn else { return };
        let mut st = txn.lock();
        if st.phase == Phase::FatalError {
            return;
        }
        st.phase = Phase::FatalError;
        st.error = Some(err.clone());
        self.notices.with(|n| n.txn_gate = TxnGate::Closed);
        if let Some((_, op)) = st.op.take() {
            drop(st);
            settle(&op, Err(TransactionError::Fatal(err.clone())));
        }
    }

    /// I/O thread: the core finished; a running operation fails with
    /// [`TransactionError::Closed`].
    pub(crate) fn txn_closed(&self) {
        let Some(txn) = &self.txn else { return };
        let op = txn.lock().op.take();
        if let Some((_, op)) = op {
            settle(&op, Err(TransactionError::Closed));
        }
    }
}
