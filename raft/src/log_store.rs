//! The Raft log on a ferrocask store: entries, vote, committed and purged pointers.
//!
//! Durability mapping (DESIGN.md, "Replication on openraft"):
//!
//! * the committed log id is not stored (openraft 0.9's default): a `save_committed` would sit
//!   on the write path of every commit, and openraft learns the committed id again from the
//!   leader (or, on a leader, from a quorum's logs); the state machine's applied position is
//!   what a restart resumes from.
//!
//! * `append` puts all its entries in one [`Batch`] and queues it with
//!   [`Store::write_async`]; the flushed callback fires from a single completion task, in append
//!   order, only once that write's group commit is durable. Until then the entries are readable
//!   from `pending`, as openraft requires (the store publishes a write only once it is durable).
//! * `save_vote`, `truncate` and `purge` are queued behind every earlier append and awaited:
//!   a ferrocask write is durable only once everything queued before it is (the log is synced as
//!   a prefix), so vote and log writes are never reordered.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use ferrocask::{Batch, Store, WriteFuture};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::codec::{decode, encode};
use crate::keys::{log_index, log_key, PURGED, VOTE};
use crate::{NodeId, StorageError, TypeConfig};

type Id = LogId<NodeId>;

/// A completed append waiting for its group commit: the write, the ids it holds, the callback.
type Flush = (WriteFuture<()>, Vec<Id>, LogFlushed<TypeConfig>);

/// The log store of one node. Cheap to clone: clones share one store (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

struct Shared {
    store: Store,
    /// Appended entries whose write is not yet durable (and so not yet readable from `store`).
    pending: Mutex<BTreeMap<u64, Entry<TypeConfig>>>,
    bounds: Mutex<Bounds>,
    /// Feeds the completion task that fires flushed callbacks in append order.
    flushes: Mutex<Option<mpsc::UnboundedSender<Flush>>>,
}

#[derive(Clone, Copy, Default)]
struct Bounds {
    last_purged: Option<Id>,
    /// The index of the first entry held (`None`: none is). Not always `last_purged + 1`: a log
    /// may start anywhere, and every index from here to `last` has an entry.
    first: Option<u64>,
    last: Option<Id>,
}

impl LogStore {
    /// Opens (or creates) the log store in `dir`.
    pub fn open(dir: &Path) -> Result<LogStore, StorageError> {
        let store = Store::open(dir).map_err(|e| StorageIOError::read_logs(&e))?;
        let last_purged: Option<Id> = read_key(&store, PURGED).map_err(StorageIOError::read_logs)?;
        let indexes: Vec<u64> = store.keys().filter_map(|k| log_index(&k)).collect();
        let (first, last_index) = (indexes.iter().min().copied(), indexes.iter().max().copied());
        let shared = Shared { store, pending: Mutex::default(), bounds: Mutex::default(), flushes: Mutex::new(None) };
        let last = match last_index {
            Some(index) => Some(shared.entry(index)?.map(|e| e.log_id).ok_or_else(|| {
                StorageIOError::read_log_at_index(index, &std::io::Error::other("the last log entry vanished"))
            })?),
            None => None,
        };
        *shared.bounds.lock() = Bounds { last_purged, first, last };
        Ok(LogStore { shared: Arc::new(shared) })
    }

    /// The underlying store (for statistics).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    fn flush_queue(&self) -> mpsc::UnboundedSender<Flush> {
        let mut slot = self.shared.flushes.lock();
        if let Some(tx) = slot.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(complete_flushes(Arc::clone(&self.shared), rx));
        *slot = Some(tx.clone());
        tx
    }
}

/// Fires the flushed callbacks in the order the appends were queued, each once its write is
/// durable; a durable write leaves `pending` (the store now serves it).
async fn complete_flushes(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Flush>) {
    while let Some((write, ids, callback)) = rx.recv().await {
        let result = write.await;
        if result.is_ok() {
            let mut pending = shared.pending.lock();
            for id in &ids {
                if pending.get(&id.index).is_some_and(|e| e.log_id == *id) {
                    pending.remove(&id.index);
                }
            }
        }
        callback.log_io_completed(result.map_err(std::io::Error::other));
    }
}

impl Shared {
    fn entry(&self, index: u64) -> Result<Option<Entry<TypeConfig>>, StorageError> {
        if let Some(entry) = self.pending.lock().get(&index) {
            return Ok(Some(entry.clone()));
        }
        let read = |e: &dyn std::error::Error| {
            StorageIOError::read_log_at_index(index, openraft::AnyError::error(e.to_string()))
        };
        match self.store.get(log_key(index)).map_err(|e| read(&e))? {
            Some(bytes) => Ok(Some(decode(&bytes).map_err(|e| read(&e))?)),
            None => Ok(None),
        }
    }

    /// Log id of the entry at `index`, which may be the purged one.
    fn log_id_at(&self, index: u64) -> Result<Option<Id>, StorageError> {
        let purged = self.bounds.lock().last_purged;
        if purged.is_some_and(|p| p.index == index) {
            return Ok(purged);
        }
        Ok(self.entry(index)?.map(|e| e.log_id))
    }
}

/// The error for a missing entry between the first and the last of the log.
fn hole(index: u64) -> StorageError {
    StorageIOError::read_log_at_index(
        index,
        openraft::AnyError::error(format!("no log entry at index {index}, inside the log's bounds")),
    )
    .into()
}

fn read_key<T: DeserializeOwned>(store: &Store, key: &[u8]) -> Result<Option<T>, openraft::AnyError> {
    match store.get(key).map_err(|e| openraft::AnyError::new(&e))? {
        Some(bytes) => Ok(Some(decode(&bytes).map_err(|e| openraft::AnyError::new(&e))?)),
        None => Ok(None),
    }
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>, openraft::AnyError> {
    encode(value).map_err(|e| openraft::AnyError::new(&e))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let bounds = *self.shared.bounds.lock();
        let (Some(first), Some(last)) = (bounds.first, bounds.last.map(|l| l.index)) else { return Ok(Vec::new()) };
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(first);
        let end = match range.end_bound() {
            Bound::Included(&e) => e,
            Bound::Excluded(&0) => return Ok(Vec::new()),
            Bound::Excluded(&e) => e - 1,
            Bound::Unbounded => u64::MAX,
        }
        .min(last);
        let mut entries = Vec::new();
        // Empty when start > end. Between the first entry not purged and the last, every index
        // has an entry: a hole is lost or corrupt log, never skipped (openraft would take the
        // entries after it for the ones it asked for).
        for index in start..=end {
            match self.shared.entry(index)? {
                Some(entry) => entries.push(entry),
                None => return Err(hole(index)),
            }
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let bounds = *self.shared.bounds.lock();
        Ok(LogState { last_purged_log_id: bounds.last_purged, last_log_id: bounds.last.or(bounds.last_purged) })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = encoded(vote).map_err(StorageIOError::write_vote)?;
        self.shared.store.put_async(VOTE, bytes).await.map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(read_key(&self.shared.store, VOTE).map_err(StorageIOError::read_vote)?)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Batch::new();
        let mut ids = Vec::new();
        let mut staged = Vec::new();
        for entry in entries {
            let bytes = encoded(&entry).map_err(|e| StorageIOError::write_log_entry(entry.log_id, e))?;
            batch.put(log_key(entry.log_id.index), bytes);
            ids.push(entry.log_id);
            staged.push(entry);
        }
        let Some(&last) = ids.last() else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        // Readable before the write is queued, so a reader never misses an entry in between.
        self.shared.pending.lock().extend(staged.into_iter().map(|e| (e.log_id.index, e)));
        {
            let mut bounds = self.shared.bounds.lock();
            bounds.first = bounds.first.or(Some(ids[0].index));
            bounds.last = Some(last);
        }
        let write = self.shared.store.write_async(batch);
        self.flush_queue()
            .send((write, ids, callback))
            .map_err(|_| StorageIOError::write_logs(&std::io::Error::other("the flush task is gone")))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: Id) -> Result<(), StorageError> {
        let last = self.shared.bounds.lock().last;
        let Some(last) = last.filter(|l| l.index >= log_id.index) else { return Ok(()) };
        self.shared.pending.lock().retain(|&index, _| index < log_id.index);
        let mut batch = Batch::new();
        for index in log_id.index..=last.index {
            batch.delete(log_key(index));
        }
        self.shared.store.write_async(batch).await.map_err(|e| StorageIOError::write_logs(&e))?;
        let new_last = match log_id.index.checked_sub(1) {
            Some(prev) => self.shared.log_id_at(prev)?,
            None => None,
        };
        let mut bounds = self.shared.bounds.lock();
        bounds.last = new_last;
        if bounds.first.is_some_and(|f| f >= log_id.index) {
            bounds.first = None;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: Id) -> Result<(), StorageError> {
        let bounds = *self.shared.bounds.lock();
        if bounds.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let first = bounds.last_purged.map_or(0, |p| p.index + 1);
        let mut batch = Batch::new();
        // The marker and the deletions in one batch: a crash leaves both or neither.
        batch.put(PURGED, encoded(&log_id).map_err(StorageIOError::write_logs)?);
        for index in first..=log_id.index.min(bounds.last.map_or(0, |l| l.index)) {
            batch.delete(log_key(index));
        }
        self.shared.store.write_async(batch).await.map_err(|e| StorageIOError::write_logs(&e))?;
        self.shared.pending.lock().retain(|&index, _| index > log_id.index);
        let mut bounds = self.shared.bounds.lock();
        bounds.last_purged = Some(log_id);
        if bounds.last.is_none_or(|l| l.index <= log_id.index) {
            bounds.last = None;
            bounds.first = None;
        } else {
            bounds.first = bounds.first.map(|f| f.max(log_id.index + 1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::blank_ent;

    use super::*;

    /// The adversary: a log that lost an entry in the middle (a bad disk, a bug in purge or
    /// truncate). Reading across it must fail, not hand openraft entry 4 as the one after 2.
    #[test]
    fn a_hole_in_the_log_is_an_error_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for index in [1, 2, 4, 5] {
            store.put(log_key(index), encode(&blank_ent::<TypeConfig>(1, 0, index)).unwrap()).unwrap();
        }
        drop(store);
        let mut log = LogStore::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(log.try_get_log_entries(1..3)).unwrap().len(), 2, "before the hole");
        let err = rt.block_on(log.try_get_log_entries(1..=5)).unwrap_err();
        assert!(err.to_string().contains("index 3"), "{err}");
    }
}
