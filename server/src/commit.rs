//! How a connection's writes reach the store's group commit: queued at once, led by the thread
//! that ran them, after every task that is ready on it has queued its own.
//!
//! A write command is a store transaction queued with `Store::transaction_async_deferred`:
//! nothing wakes the store's async driver thread. The first write queued while no commit is
//! scheduled spawns a committer task on the current runtime. The committer first yields, so every
//! task already runnable on its worker (the other connections whose requests arrived in the same
//! poll) runs and queues its writes, then leads the store's group commits on its own thread
//! (`Store::lead_queued`: evaluate, one write, one fdatasync, publish), blocking that worker for
//! the sync, as Redis's event loop blocks for its `appendfsync always` fsync. It leads only what
//! was queued when it began (one group, or a few if they outgrow a frame): writes another worker
//! queues during its sync have their own committer, so no worker is held in a loop of groups
//! while tasks wait to run on it. The leader completes
//! each write's future on the same thread, so waking its connection is a push on the local run
//! queue, not a wake-up of another thread.
//!
//! What this changes is who leads and when, nothing the store promises: a reply still waits for
//! its future, which resolves once the write is durable and published, and readers still see
//! only published records. No write can wait for ever: `scheduled` is cleared before the
//! committer leads, so a write queued after that schedules another one; a committer that finds
//! another leader returns, and that leader, as every leader does when it ends with operations
//! queued, wakes the store's async driver for them. Without a runtime (the fuzzer's dispatch) there is
//! nothing to spawn a committer on, so writes go to the driver as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferrocask::{Store, Txn, WriteFuture};

/// Whether a committer task is scheduled and has not begun to lead: writes queued meanwhile
/// join its groups instead of spawning another.
#[derive(Debug, Default)]
pub(crate) struct Committer {
    scheduled: AtomicBool,
    /// Committers spawned: one per turn of the loop that queued writes, not one per write.
    spawned: std::sync::atomic::AtomicU64,
}

impl Committer {
    /// How many committer tasks were spawned so far.
    #[cfg(test)]
    pub(crate) fn spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }
}

/// Queues `f` as a store transaction whose group this thread leads soon (see the module doc);
/// the future resolves once it is durable and published.
pub(crate) fn transaction<R, F>(store: &Arc<Store>, committer: &Arc<Committer>, f: F) -> WriteFuture<R>
where
    F: FnOnce(&mut Txn<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return store.transaction_async(f);
    };
    let future = store.transaction_async_deferred(f);
    // Queued first, then the flag: a committer that clears it later leads this write.
    if !committer.scheduled.swap(true, Ordering::AcqRel) {
        committer.spawned.fetch_add(1, Ordering::Relaxed);
        let (store, committer) = (Arc::clone(store), Arc::clone(committer));
        runtime.spawn(async move {
            // Every task runnable now runs first (a yielded task is resumed after the others
            // and the next poll of the sockets), so their writes share this group.
            tokio::task::yield_now().await;
            committer.scheduled.store(false, Ordering::Release);
            // An error here is the store's poison or a bug's; every queued write has been
            // handed it through its own future, which is what replies.
            if let Err(e) = store.lead_queued() {
                tracing::debug!(error = %e, "leading the queued writes failed");
            }
        });
    }
    future
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a current-thread runtime (one event loop, as Redis's), the writes one task queues in a
    /// row, before it awaits any, are one group: one committer, one frame, one sync.
    #[test]
    fn writes_queued_in_one_turn_share_one_committer_and_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let committer = Arc::new(Committer::default());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // The store's driver thread looks at the queue once as it starts (the first async write
        // starts it): started and idle first, it cannot take the turn's writes.
        rt.block_on(store.put_async("warm", "0")).unwrap();
        let frames_before = store.stats().frames;
        rt.block_on(async {
            let futures: Vec<_> =
                (0..10u32).map(|i| transaction(&store, &committer, move |tx| tx.put(i.to_be_bytes(), "v"))).collect();
            for f in futures {
                f.await.unwrap().unwrap();
            }
        });
        assert_eq!(committer.spawned(), 1, "one committer for the whole turn");
        assert_eq!(store.stats().frames, frames_before + 1, "one group for the whole turn");
        assert_eq!(store.len(), 11, "the ten and the warm-up write");
    }

    /// Outside a runtime there is no task to lead: the store's driver does, as before.
    #[test]
    fn without_a_runtime_the_driver_leads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let committer = Arc::new(Committer::default());
        let future = transaction(&store, &committer, |tx| tx.put("k", "v"));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(future).unwrap().unwrap();
        assert_eq!(committer.spawned(), 0);
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
