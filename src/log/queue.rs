//! The group-commit queue: operations waiting for a leader, and how each one's outcome reaches
//! whoever waits for it (a blocked thread, through the queue's condition variable, or a future,
//! through its [`Slot`]).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::format::{encode_record, record_header_len, RecordHeader, RecordKind};
use crate::log::txn::Txn;
use crate::{Error, Result};

/// Records encoded by a caller, waiting for a frame, each with the header and position its
/// encoder gave it: the leader stamps sequence numbers into them and publishes them from these,
/// without decoding bytes this process has just encoded (a debug build checks them against a
/// full decode of the frame).
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    /// The first record. Most operations are one put or delete: kept inline, it costs no
    /// allocation of its own.
    first: Option<Placed>,
    /// Every record after the first.
    rest: Vec<Placed>,
}

/// Where one encoded record starts in its [`Encoded`]'s bytes, and its header, packed: operations
/// are moved through the queue by value, and a larger `Pending` costs a `memcpy` per move.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed {
    at: u32,
    value_len: u32,
    expires_ms: u64,
    key_len: u16,
    header_len: u8,
    pub(crate) kind: RecordKind,
}

impl Placed {
    /// The encoder has checked the limits, so every field fits: a key is at most `KEY_BYTES_MAX`
    /// long, a value at most `VALUE_BYTES_MAX`, and an operation's bytes fit in one frame.
    #[inline]
    fn new(at: usize, header: &RecordHeader) -> Placed {
        debug_assert!(at <= u32::MAX as usize && header.key_len <= u16::MAX as usize && header.header_len <= 255);
        Placed {
            at: at as u32,
            value_len: header.value_len as u32,
            expires_ms: header.expires_ms,
            key_len: header.key_len as u16,
            header_len: header.header_len as u8,
            kind: header.kind,
        }
    }

    /// The record's header, as encoded (sequence number 0).
    #[inline]
    pub(crate) fn header(&self) -> RecordHeader {
        RecordHeader {
            kind: self.kind,
            key_len: usize::from(self.key_len),
            value_len: self.value_len as usize,
            seq: 0,
            expires_ms: self.expires_ms,
            header_len: usize::from(self.header_len),
        }
    }

    /// Where the record starts in its operation's bytes.
    #[inline]
    pub(crate) fn at(&self) -> usize {
        self.at as usize
    }

    /// The record's expiry (0 = never).
    #[inline]
    pub(crate) fn expires_ms(&self) -> u64 {
        self.expires_ms
    }
}

impl Encoded {
    /// No records yet, in a buffer of `bytes` bytes (what the records will take, if known).
    pub(crate) fn with_capacity(bytes: usize) -> Encoded {
        Encoded { bytes: Vec::with_capacity(bytes), ..Encoded::default() }
    }

    /// One record, in a buffer of exactly its size: grown from empty record field by record field,
    /// the buffer would be reallocated three times for a small put, which costs more than all the
    /// rest of encoding it.
    pub(crate) fn one(kind: RecordKind, expires_ms: u64, key: &[u8], value: &[u8]) -> Encoded {
        let mut ops = Encoded::with_capacity(record_header_len(expires_ms) + key.len() + value.len());
        ops.push(kind, expires_ms, key, value);
        ops
    }

    /// Appends a record with sequence number 0 (the leader stamps the real one). The caller has
    /// checked the limits.
    #[inline]
    pub(crate) fn push(&mut self, kind: RecordKind, expires_ms: u64, key: &[u8], value: &[u8]) {
        let at = self.bytes.len();
        let header = encode_record(&mut self.bytes, kind, 0, expires_ms, key, value);
        let placed = Placed::new(at, &header);
        match self.first {
            None => self.first = Some(placed),
            Some(_) => self.rest.push(placed),
        }
    }

    /// The encoded records, back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes the records take.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// How many records there are.
    #[inline]
    pub(crate) fn record_count(&self) -> u32 {
        u32::from(self.first.is_some()) + u32::try_from(self.rest.len()).expect("a frame's records fit u32")
    }

    /// Every record, in order.
    #[inline]
    pub(crate) fn records(&self) -> impl Iterator<Item = &Placed> {
        self.first.iter().chain(&self.rest)
    }

    /// The key of one of these records.
    #[inline]
    pub(crate) fn key(&self, record: &Placed) -> &[u8] {
        &self.bytes[record.header().key_range(record.at())]
    }

    /// The value of one of these records.
    #[inline]
    pub(crate) fn value(&self, record: &Placed) -> &[u8] {
        &self.bytes[record.header().value_range(record.at())]
    }
}

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
