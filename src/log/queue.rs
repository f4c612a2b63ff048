//! The group-commit queue: operations waiting for a leader, and how each one's outcome reaches
//! whoever waits for it (a blocked thread, through the queue's condition variable, or a future,
//! through its [`Slot`]).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::log::encoded::Encoded;
use crate::log::txn::Txn;
use crate::{Error, Result};

/// A transaction's result, type-erased on its way through the queue.
pub(crate) type Outcome = Box<dyn Any + Send>;

/// A transaction closure (see `log/txn.rs`).
pub(crate) type Eval = Box<dyn FnOnce(&mut Txn<'_>) -> Outcome + Send>;

/// One queued operation.
pub(crate) enum Op {
    /// Records the caller encoded: a put, a delete or a batch.
    Write(Encoded),
    /// A transaction the leader evaluates in log order.
    Eval(Eval),
}

/// What a finished operation hands back.
pub(crate) enum Done {
    /// Its records are durable and published.
    Written,
    /// A transaction ran; its writes (if any) are durable and published.
    Evaluated(Outcome),
    /// A transaction's closure panicked: nothing of it was written, and the caller re-raises it.
    Panicked(Box<dyn Any + Send>),
}

pub(crate) type Completed = Result<Done>;

/// Where a future's outcome is left for it.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<(Option<Completed>, Option<Waker>)>,
}

impl Slot {
    pub(crate) fn complete(&self, completed: Completed) {
        let waker = {
            let mut state = self.state.lock();
            state.0 = Some(completed);
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Completed> {
        let mut state = self.state.lock();
        match state.0.take() {
            Some(completed) => Poll::Ready(completed),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A queued operation with its ticket and the state the leader gives it.
pub(crate) struct Pending {
    pub(crate) ticket: u64,
    /// The records to write: the caller's, or those a transaction produced.
    pub(crate) ops: Encoded,
    /// A transaction not yet evaluated.
    pub(crate) eval: Option<Eval>,
    /// A transaction's outcome once evaluated.
    pub(crate) done: Option<Done>,
    /// `None` for a blocked thread, which finds its outcome in `Queue::results`.
    pub(crate) waiter: Option<Arc<Slot>>,
}

impl Pending {
    pub(crate) fn new(ticket: u64, op: Op, waiter: Option<Arc<Slot>>) -> Pending {
        let (ops, eval) = match op {
            Op::Write(ops) => (ops, None),
            Op::Eval(eval) => (Encoded::default(), Some(eval)),
        };
        Pending { ticket, ops, eval, done: None, waiter }
    }

    /// Bytes this operation adds to a frame, as far as known before evaluation.
    pub(crate) fn known_bytes(&self) -> usize {
        self.ops.byte_len()
    }
}

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) pending: VecDeque<Pending>,
    pub(crate) next_ticket: u64,
    /// Every ticket up to and including this one has its outcome.
    pub(crate) done_through: u64,
    /// Outcomes for blocked threads other than a plain `Done::Written`.
    pub(crate) results: HashMap<u64, Completed>,
    pub(crate) leader: bool,
    /// The store is closing: the async driver leaves once the queue is empty.
    pub(crate) closing: bool,
}

impl Queue {
    /// Hands `p` its outcome: `result` is the group's.
    pub(crate) fn deliver(&mut self, p: Pending, result: &Result<()>) {
        let completed = match (result, p.done) {
            // A panicking closure wrote nothing, whatever became of its group: re-raise it.
            (_, Some(Done::Panicked(panic))) => Ok(Done::Panicked(panic)),
            (Ok(()), done) => Ok(done.unwrap_or(Done::Written)),
            (Err(e), _) => Err(e.duplicate()),
        };
        self.done_through = self.done_through.max(p.ticket);
        match p.waiter {
            Some(slot) => slot.complete(completed),
            None if matches!(completed, Ok(Done::Written)) => {}
            None => {
                self.results.insert(p.ticket, completed);
            }
        }
    }

    /// Fails every queued operation: the store is poisoned, so none of them may be written.
    pub(crate) fn fail_all(&mut self, cause: &str) {
        let err = Err(Error::Poisoned { cause: cause.to_string() });
        while let Some(p) = self.pending.pop_front() {
            self.deliver(p, &err);
        }
    }
}
const _: () = assert!(std::mem::size_of::<Pending>() <= 128, "a Pending is moved by value through the queue");
