//! The async write path: every write operation as a future that resolves when the group holding
//! it is durable and published, exactly when the blocking call would return.
//!
//! No runtime is needed or assumed. The operation is checked and queued when the method is
//! called (not when the future is first polled); the group-commit leader completes it through a
//! one-shot [`Slot`] and wakes the task. Groups that only futures are waiting for are led by the
//! store's async driver thread, started on first use, so no caller's thread ever blocks on a
//! sync, and a thousand waiting tasks cost a thousand small slots, not a thousand threads.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::format::RecordKind;
use crate::log::{Done, Encoded, Expiry, Op, Slot, Txn};
use crate::rmw::{batch_txn, cas_txn, condition_failed, erase, erase_at, unerase, update_txn, Cas, Update, Updated};
use crate::store::Store;
use crate::value::Batch;
use crate::Result;

/// A write in flight; resolves to the same result as the blocking call. See the module doc of
/// [`Store::put_async`].
///
/// The write happens whether or not the future is polled: dropping it only forgoes the result.
/// `Send`, `'static` and `Unpin`, so it can be spawned on any executor.
#[must_use = "the write is queued either way, but only the future says whether it succeeded"]
pub struct WriteFuture<T> {
    state: State<T>,
}

enum State<T> {
    Queued { slot: Arc<Slot>, convert: fn(Done) -> Result<T> },
    Ready(Option<Result<T>>),
}

impl<T> WriteFuture<T> {
    pub(crate) fn ready(result: Result<T>) -> WriteFuture<T> {
        WriteFuture { state: State::Ready(Some(result)) }
    }

    fn queued(submitted: Result<Arc<Slot>>, convert: fn(Done) -> Result<T>) -> WriteFuture<T> {
        match submitted {
            Ok(slot) => WriteFuture { state: State::Queued { slot, convert } },
            Err(e) => WriteFuture::ready(Err(e)),
        }
    }
}

impl<T> Future for WriteFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.get_mut().state {
            State::Ready(result) => Poll::Ready(result.take().expect("a WriteFuture is not polled after it resolved")),
            State::Queued { slot, convert } => slot.poll(cx).map(|completed| completed.and_then(*convert)),
        }
    }
}

impl<T> Unpin for WriteFuture<T> {}

fn written(_: Done) -> Result<()> {
    Ok(())
}

/// A transaction whose typed result is itself a `Result`.
fn evaluated<R: 'static>(done: Done) -> Result<R> {
    unerase::<Result<R>>(done)
}

impl Store {
    /// [`Store::put`] as a future: resolves once the put is durable and published, without
    /// blocking any thread meanwhile. Works under any executor.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let store = std::sync::Arc::new(ferrocask::Store::open(dir.path())?);
    /// let tasks: Vec<_> = (0..100u32)
    ///     .map(|i| tokio::spawn(store.put_async(i.to_be_bytes(), b"durable")))
    ///     .collect();
    /// for task in tasks {
    ///     task.await.unwrap()?; // each resolves once its group commit is durable
    /// }
    /// assert_eq!(store.len(), 100);
    /// # Ok::<(), ferrocask::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn put_async(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> WriteFuture<()> {
        self.put_expiring_async(key.as_ref(), value.as_ref(), Expiry::Never)
    }

    /// [`Store::put_with_ttl`] as a future.
    pub fn put_with_ttl_async(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, ttl: Duration) -> WriteFuture<()> {
        self.put_expiring_async(key.as_ref(), value.as_ref(), Expiry::After(ttl.max(Duration::from_millis(1))))
    }

    fn put_expiring_async(&self, key: &[u8], value: &[u8], expiry: Expiry) -> WriteFuture<()> {
        let mut batch = Batch::new();
        batch.put_with_expiry(key, value, expiry);
        self.write_async(batch)
    }

    /// [`Store::delete`] as a future.
    pub fn delete_async(&self, key: impl AsRef<[u8]>) -> WriteFuture<()> {
        let key = key.as_ref();
        if let Err(e) = self.check_key(key) {
            return WriteFuture::ready(Err(e));
        }
        WriteFuture::queued(self.submit(Op::Write(Encoded::one(RecordKind::Delete, 0, key, &[]))), written)
    }

    /// [`Store::write`] as a future (preconditions included).
    pub fn write_async(&self, batch: Batch) -> WriteFuture<()> {
        if batch.is_empty() && batch.conditions.is_empty() {
            return WriteFuture::ready(self.engine.writer.refuse_writes());
        }
        if let Err(e) = self.check_batch(&batch) {
            return WriteFuture::ready(Err(e));
        }
        if batch.needs_leader() {
            let txn = move |tx: &mut Txn<'_>| -> Result<()> {
                match batch_txn(batch)(tx)? {
                    Some(key) => Err(condition_failed(&key)),
                    None => Ok(()),
                }
            };
            return WriteFuture::queued(self.submit(Op::Eval(erase(txn))), evaluated::<()>);
        }
        match self.encode_batch(&batch) {
            Ok(ops) => WriteFuture::queued(self.submit(Op::Write(ops)), written),
            Err(e) => WriteFuture::ready(Err(e)),
        }
    }

    /// [`Store::write_if`] as a future.
    pub fn write_if_async(&self, batch: Batch) -> WriteFuture<bool> {
        if let Err(e) = self.check_batch(&batch) {
            return WriteFuture::ready(Err(e));
        }
        let txn = move |tx: &mut Txn<'_>| -> Result<bool> { batch_txn(batch)(tx).map(|failed| failed.is_none()) };
        WriteFuture::queued(self.submit(Op::Eval(erase(txn))), evaluated::<bool>)
    }

    /// [`Store::compare_and_swap`] as a future.
    pub fn compare_and_swap_async(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> WriteFuture<Cas> {
        self.compare_and_swap_with_async(key, expected, new, Expiry::Keep)
    }

    /// [`Store::compare_and_swap_with`] (the written key's expiry given explicitly) as a future.
    pub fn compare_and_swap_with_async(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        expiry: Expiry,
    ) -> WriteFuture<Cas> {
        match cas_txn(self, key.as_ref(), expected, new, expiry) {
            Ok(txn) => WriteFuture::queued(self.submit(Op::Eval(erase(txn))), evaluated::<Cas>),
            Err(e) => WriteFuture::ready(Err(e)),
        }
    }

    /// [`Store::update`] as a future.
    pub fn update_async<F>(&self, key: impl AsRef<[u8]>, f: F) -> WriteFuture<Updated>
    where
        F: FnOnce(Option<&[u8]>) -> Update + Send + 'static,
    {
        let key = key.as_ref();
        if let Err(e) = self.check_key(key) {
            return WriteFuture::ready(Err(e));
        }
        WriteFuture::queued(self.submit(Op::Eval(erase(update_txn(key.to_vec(), f)))), evaluated::<Updated>)
    }

    /// [`Store::transaction`] as a future. A panic of `f` resumes in the task that polls it.
    pub fn transaction_async<R, F>(&self, f: F) -> WriteFuture<R>
    where
        F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        WriteFuture::queued(self.submit(Op::Eval(erase(f))), |done| Ok(unerase::<R>(done)))
    }

    /// [`Store::transaction_async`], left for the caller to lead: it is queued at once, but the
    /// store's async driver thread is not woken for it. The caller leads it (and everything
    /// queued with it) by calling [`Store::lead_queued`] soon, on a thread that may block for a
    /// sync: an event loop that queues the writes of every request it has read, then leads
    /// their group itself and replies, costs no thread hand-off per group.
    ///
    /// Nothing else changes: the future resolves when the write is durable and published, with
    /// the same result. If the caller never leads, the write waits until any other write's
    /// group is led (a leader that finds operations queued after its group wakes the driver for
    /// them), so forgetting to lead delays the write; it is never lost or acknowledged early.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let a = store.transaction_async_deferred(|tx| tx.put("a", "1"));
    /// let b = store.transaction_async_deferred(|tx| tx.put("b", "2"));
    /// assert_eq!(store.lead_queued()?, 1, "both in one group, led on this thread");
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async { a.await?.and(b.await?) })?;
    /// assert_eq!(store.get("b")?.as_deref(), Some(&b"2"[..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn transaction_async_deferred<R, F>(&self, f: F) -> WriteFuture<R>
    where
        F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        WriteFuture::queued(self.submit_with(Op::Eval(erase(f)), false), |done| Ok(unerase::<R>(done)))
    }

    /// [`Store::transaction_at`] (run at a fixed time, not the store's clock) as a future.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// use std::time::Duration;
    /// use ferrocask::Expiry;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let ttl = Expiry::After(Duration::from_secs(1));
    /// store.transaction_async_at(5_000, move |tx| tx.put_with_expiry("k", "v", ttl)).await??;
    /// assert_eq!(store.meta("k")?.map(|m| m.expires_ms), None, "expired by the wall clock");
    /// let expires = store.transaction_async_at(5_500, |tx| tx.meta("k").and_then(|m| m.expires_ms)).await?;
    /// assert_eq!(expires, Some(6_000));
    /// # Ok::<(), ferrocask::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn transaction_async_at<R, F>(&self, now_ms: u64, f: F) -> WriteFuture<R>
    where
        F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        WriteFuture::queued(self.submit(Op::Eval(erase_at(now_ms, f))), |done| Ok(unerase::<R>(done)))
    }
}
