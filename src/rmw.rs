//! Atomic read-modify-write: transactions, compare-and-swap, updates and conditional batches.
//!
//! All of them are one mechanism: a closure the group-commit leader runs in log order
//! (`log/txn.rs`), so operations on one key in one group see each other's results and the whole
//! group still makes one sync. See DESIGN.md, "Read-modify-write".

use std::panic::resume_unwind;

use crate::log::{Done, Eval, Expiry, Op, Outcome, Txn};
use crate::store::Store;
use crate::value::{Batch, BatchOp, Value};
use crate::{Error, Result};

/// What [`Store::compare_and_swap`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cas {
    /// The key held the expected value (or was absent, as expected), and now holds the new one.
    Applied,
    /// The key did not hold the expected value; nothing was written.
    Mismatch {
        /// What the key held instead (`None`: absent).
        current: Option<Value>,
    },
}

impl Cas {
    /// Whether the swap happened.
    pub fn is_applied(&self) -> bool {
        matches!(self, Cas::Applied)
    }
}

/// What an [`Store::update`] function decides, given the key's current value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Leave the key as it is (nothing is written).
    Keep,
    /// Delete the key.
    Delete,
    /// Set the key to this value, keeping its expiry (as a counter or an append should).
    Set(Vec<u8>),
    /// Set the key to this value with this expiry.
    SetWithExpiry(Vec<u8>, Expiry),
}

/// What [`Store::update`] did: the key's value before and after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Updated {
    /// The value the function was given (`None`: absent).
    pub previous: Option<Value>,
    /// The value the key holds now.
    pub current: Option<Value>,
}

/// Wraps a typed closure for the queue.
pub(crate) fn erase<R, F>(f: F) -> Eval
where
    F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    Box::new(move |txn: &mut Txn<'_>| -> Outcome { Box::new(f(txn)) })
}

/// Wraps a typed closure for the queue, to run at the fixed time `now_ms` instead of the clock
/// reading the leader takes for its group: the closure carries its time, so the queue and the
/// leader need nothing new.
pub(crate) fn erase_at<R, F>(now_ms: u64, f: F) -> Eval
where
    F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    erase(move |txn: &mut Txn<'_>| {
        txn.set_now_ms(now_ms);
        f(txn)
    })
}

/// Unwraps a transaction's typed result, re-raising a panic of its closure in the caller.
pub(crate) fn unerase<R: 'static>(done: Done) -> R {
    match done {
        Done::Evaluated(outcome) => *outcome.downcast::<R>().unwrap_or_else(|_| unreachable!("the closure's own type")),
        Done::Panicked(panic) => resume_unwind(panic),
        Done::Written => unreachable!("a transaction's outcome is Evaluated or Panicked"),
    }
}

/// The transaction of a compare-and-swap, its arguments checked first (blocking and async calls
/// share it).
pub(crate) fn cas_txn(
    store: &Store,
    key: &[u8],
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
    expiry: Expiry,
) -> Result<impl FnOnce(&mut Txn<'_>) -> Result<Cas> + Send + 'static> {
    store.check_key(key)?;
    if let Some(value) = new {
        store.check_value(value)?;
    }
    let (key, expected, new) = (key.to_vec(), expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
    Ok(move |txn: &mut Txn<'_>| {
        let current = txn.get(&key);
        if current.as_deref() != expected.as_deref() {
            return Ok(Cas::Mismatch { current });
        }
        match new {
            Some(value) => txn.put_with_expiry(&key, value, expiry)?,
            None => txn.delete(&key)?,
        }
        Ok(Cas::Applied)
    })
}

/// The transaction of an update.
pub(crate) fn update_txn<F>(key: Vec<u8>, f: F) -> impl FnOnce(&mut Txn<'_>) -> Result<Updated> + Send + 'static
where
    F: FnOnce(Option<&[u8]>) -> Update + Send + 'static,
{
    move |txn| {
        let previous = txn.get(&key);
        match f(previous.as_deref()) {
            Update::Keep => {}
            Update::Delete => txn.delete(&key)?,
            Update::Set(value) => txn.put_with_expiry(&key, value, Expiry::Keep)?,
            Update::SetWithExpiry(value, expiry) => txn.put_with_expiry(&key, value, expiry)?,
        }
        Ok(Updated { current: txn.get(&key), previous })
    }
}

/// The transaction of a conditional batch: `Ok(false)` (nothing written) if a precondition fails.
pub(crate) fn batch_txn(batch: Batch) -> impl FnOnce(&mut Txn<'_>) -> Result<Option<Vec<u8>>> + Send + 'static {
    move |txn| {
        for (key, condition) in &batch.conditions {
            if !condition.holds(txn.get(key).as_deref()) {
                return Ok(Some(key.clone()));
            }
        }
        let applied = batch.ops.iter().try_for_each(|op| match op {
            BatchOp::Put { key, value, expiry } => txn.put_with_expiry(key, value, *expiry),
            BatchOp::Delete { key } => txn.delete(key),
        });
        if let Err(e) = applied {
            txn.discard();
            return Err(e);
        }
        Ok(None)
    }
}

impl Store {
    /// Runs `f` atomically with respect to every other write: it reads the state after every
    /// write queued before it, and its writes (all of them, or none if it returns having called
    /// [`Txn::discard`]) are durable and visible, all at once, when this returns. Transactions of
    /// many threads on one key share one sync (group commit), and each sees the one before.
    ///
    /// `f` runs on the thread that leads the group, while the group's other writers wait: it must
    /// be cheap. It writes through its [`Txn`]: a call from `f` that writes to this store or waits
    /// for its writer (a put, delete, batch, transaction or update, their `_async` twins, `sync`,
    /// `compact`, `backup_to`) fails with [`Error::Reentrant`] and does nothing, since it would
    /// wait for the group `f` is part of. Reads of the store from `f` work and see the state
    /// before the group (the `Txn` sees the group's writes too); another store may be written.
    /// If `f` panics, nothing of it is written and the panic resumes in the caller.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::sync::Arc;
    /// let store = Arc::new(ferrocask::Store::open(dir.path())?);
    /// let same = Arc::clone(&store);
    /// let inner = store.transaction(move |tx| {
    ///     tx.put("through the txn", "ok")?;
    ///     same.put("through the store", "refused")
    /// })?;
    /// assert!(matches!(inner, Err(ferrocask::Error::Reentrant)));
    /// assert!(store.get("through the txn")?.is_some() && store.get("through the store")?.is_none());
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.put("from", "90")?;
    /// // Move a key atomically: nobody sees both or neither.
    /// let moved = store.transaction(|tx| match tx.get("from") {
    ///     Some(v) => tx.delete("from").and_then(|()| tx.put("to", v)).map(|()| true),
    ///     None => Ok(false),
    /// })?;
    /// assert!(moved?);
    /// assert_eq!(store.get("to")?.as_deref(), Some(&b"90"[..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn transaction<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.commit_op(Op::Eval(erase(f))).map(unerase::<R>)
    }

    /// [`Store::transaction`] run at the fixed time `now_ms` (ms since the Unix epoch) instead of
    /// the store's clock: [`Txn::now_ms`] answers it, every expiry check inside the transaction
    /// (reads, [`Txn::len`], scans) is made at it, and [`Expiry::After`] counts from it. For a
    /// replicated state machine, whose replicas must compute the same state from the same log
    /// whatever their clocks say. Reads outside transactions still use the store's clock.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::Expiry;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.transaction_at(1_000, |tx| tx.put_with_expiry("session", "x", Expiry::At(2_000)))??;
    /// assert!(store.transaction_at(1_999, |tx| tx.contains_key("session"))?);
    /// assert!(!store.transaction_at(2_000, |tx| tx.contains_key("session"))?);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn transaction_at<R, F>(&self, now_ms: u64, f: F) -> Result<R>
    where
        F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.commit_op(Op::Eval(erase_at(now_ms, f))).map(unerase::<R>)
    }

    /// Sets `key` to `new` (`None`: deletes it) if it currently holds `expected` (`None`: is
    /// absent), atomically; otherwise says what it holds. A key that is written keeps its expiry.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::Cas;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// assert!(store.compare_and_swap("lock", None, Some(b"owner-1"))?.is_applied());
    /// let again = store.compare_and_swap("lock", None, Some(b"owner-2"))?;
    /// assert_eq!(again, Cas::Mismatch { current: store.get("lock")? });
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn compare_and_swap(&self, key: impl AsRef<[u8]>, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<Cas> {
        self.compare_and_swap_with(key, expected, new, Expiry::Keep)
    }

    /// [`Store::compare_and_swap`] with the written key's expiry given explicitly.
    pub fn compare_and_swap_with(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        expiry: Expiry,
    ) -> Result<Cas> {
        let txn = cas_txn(self, key.as_ref(), expected, new, expiry)?;
        self.transaction(txn)?
    }

    /// Replaces `key`'s value with what `f` makes of it, atomically (see [`Update`]); for
    /// counters, appends and "set if absent". `f` must be cheap; a write to this store from it
    /// fails with [`Error::Reentrant`] (see [`Store::transaction`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::Update;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let incr = |v: Option<&[u8]>| {
    ///     let n: u64 = v.map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap());
    ///     Update::Set((n + 1).to_string().into_bytes())
    /// };
    /// store.update("hits", incr)?;
    /// let updated = store.update("hits", incr)?;
    /// assert_eq!(updated.current.as_deref(), Some(&b"2"[..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn update<F>(&self, key: impl AsRef<[u8]>, f: F) -> Result<Updated>
    where
        F: FnOnce(Option<&[u8]>) -> Update + Send + 'static,
    {
        let key = key.as_ref();
        self.check_key(key)?;
        self.transaction(update_txn(key.to_vec(), f))?
    }

    /// Applies `batch` if, and only if, every precondition it [requires](Batch::require) holds,
    /// atomically with the check: `Ok(true)` if it was applied, `Ok(false)` if a precondition
    /// failed (nothing written). After a crash, all of it or none of it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::{Batch, Condition};
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let mut msetnx = Batch::new();
    /// msetnx.require("a", Condition::Absent).require("b", Condition::Absent).put("a", "1").put("b", "2");
    /// assert!(store.write_if(msetnx.clone())?);
    /// assert!(!store.write_if(msetnx)?, "a and b exist now");
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn write_if(&self, batch: Batch) -> Result<bool> {
        self.check_batch(&batch)?;
        Ok(self.transaction(batch_txn(batch))??.is_none())
    }

    /// Checks every key and value of a batch against the limits.
    pub(crate) fn check_batch(&self, batch: &Batch) -> Result<()> {
        for (key, _) in &batch.conditions {
            self.check_key(key)?;
        }
        for op in &batch.ops {
            match op {
                BatchOp::Put { key, value, .. } => {
                    self.check_key(key)?;
                    self.check_value(value)?;
                }
                BatchOp::Delete { key } => self.check_key(key)?,
            }
        }
        Ok(())
    }
}

/// A failed precondition of [`Store::write`] on a batch with preconditions.
pub(crate) fn condition_failed(key: &[u8]) -> Error {
    Error::ConditionFailed { key: String::from_utf8_lossy(key).into_owned() }
}
