//! The replicated key-value map on a ferrocask store, with its applied log id, membership and
//! snapshots.
//!
//! Files of a node directory (DESIGN.md, "Replication on openraft"):
//!
//! ```text
//! CURRENT            the live generation G, as decimal text (replaced by rename)
//! sm-G/              the state-machine store: kv/<key> data, sm/applied, sm/membership
//! snapshot-G         the current snapshot of generation G (replaced by rename)
//! ```
//!
//! `apply` writes an entry's data, the applied log id and the membership in one [`Batch`], so
//! the three never disagree after a crash. A snapshot is installed by building a fresh store
//! `sm-(G+1)` and its snapshot file, then renaming a new `CURRENT` over the old one: a crash before
//! that rename leaves generation G whole (the next open removes the half-built one), a crash after
//! it leaves G+1 whole.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocask::{Batch, Store};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::codec::{decode, encode};
use crate::keys::{data_key, APPLIED, DATA_PREFIX, MEMBERSHIP};
use crate::{NodeId, Request, Response, StorageError, TypeConfig};

type Id = LogId<NodeId>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// Bytes of data after which `apply` and snapshot install start a new batch (a batch must fit in
/// one segment; default segments are 64 MiB).
const BATCH_BYTES_MAX: usize = 8 << 20;

/// The state machine of one node. Cheap to clone: clones share the live generation (the snapshot
/// builder and the key-value reads are clones).
#[derive(Clone)]
pub struct StateMachine {
    root: Arc<PathBuf>,
    live: Arc<RwLock<Generation>>,
}

struct Generation {
    number: u64,
    store: Arc<Store>,
}

/// A snapshot file: the meta, then the data (a [`SnapshotData`] encoded).
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: Meta,
    data: Vec<u8>,
}

/// The data of a snapshot as sent to a follower: every key-value pair, sorted by key.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn io_err(e: impl std::error::Error + 'static) -> openraft::AnyError {
    openraft::AnyError::new(&e)
}

impl StateMachine {
    /// Opens the state machine under the node directory `root` (see the module doc for the files),
    /// removing the leftovers of an install that a crash interrupted.
    pub fn open(root: &Path) -> Result<StateMachine, StorageError> {
        let fail = |e: std::io::Error| StorageIOError::read_state_machine(&e);
        fs::create_dir_all(root).map_err(fail)?;
        let number = match fs::read_to_string(root.join("CURRENT")) {
            Ok(text) => text.trim().parse::<u64>().map_err(|e| StorageIOError::read_state_machine(&e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_durably(root, "CURRENT", b"0").map_err(fail)?;
                0
            }
            Err(e) => return Err(fail(e).into()),
        };
        remove_other_generations(root, number).map_err(fail)?;
        let store = Store::open(generation_dir(root, number)).map_err(|e| StorageIOError::read_state_machine(&e))?;
        let live = Generation { number, store: Arc::new(store) };
        Ok(StateMachine { root: Arc::new(root.to_path_buf()), live: Arc::new(RwLock::new(live)) })
    }

    /// The value of `key` as of the last applied entry (a local read: linearizable only after
    /// [`openraft::Raft::ensure_linearizable`]).
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ferrocask::Error> {
        let live = self.live.read().await;
        Ok(live.store.get(data_key(key))?.map(|v| v.into_vec()))
    }

    /// Every key-value pair, sorted by key (for comparing replicas).
    pub async fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let live = self.live.read().await;
        sorted_pairs(&live.store)
    }

    /// The last applied log id and membership.
    async fn applied(&self) -> Result<(Option<Id>, Membership), StorageError> {
        let live = self.live.read().await;
        read_applied(&live.store)
    }
}

fn generation_dir(root: &Path, number: u64) -> PathBuf {
    root.join(format!("sm-{number}"))
}

fn snapshot_name(number: u64) -> String {
    format!("snapshot-{number}")
}

fn sorted_pairs(store: &Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut pairs: Vec<_> =
        store.scan_prefix(DATA_PREFIX).map(|(k, v)| (k[DATA_PREFIX.len()..].to_vec(), v.into_vec())).collect();
    pairs.sort();
    pairs
}

fn read_applied(store: &Store) -> Result<(Option<Id>, Membership), StorageError> {
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, StorageError> {
        Ok(store.get(key).map_err(|e| StorageIOError::read_state_machine(&e))?.map(|v| v.into_vec()))
    };
    let applied = match read(APPLIED)? {
        Some(bytes) => Some(decode(&bytes).map_err(|e| StorageIOError::read_state_machine(&e))?),
        None => None,
    };
    let membership = match read(MEMBERSHIP)? {
        Some(bytes) => decode(&bytes).map_err(|e| StorageIOError::read_state_machine(&e))?,
        None => Membership::default(),
    };
    Ok((applied, membership))
}

/// Removes every `sm-N` directory and `snapshot-N` file but generation `keep`'s, and temp files.
fn remove_other_generations(root: &Path, keep: u64) -> std::io::Result<()> {
    let keep_dir = format!("sm-{keep}");
    let keep_snapshot = snapshot_name(keep);
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("sm-") && name != keep_dir {
            fs::remove_dir_all(entry.path())?;
        } else if (name.starts_with("snapshot-") && name != keep_snapshot) || name.ends_with(".tmp") {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Writes `root/name` so that a crash leaves the old contents or the new, never a mix: write a
/// temp file, sync it, rename it over `name`, sync the directory.
fn write_durably(root: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = root.join(format!("{name}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, root.join(name))?;
    fs::File::open(root)?.sync_all()
}

fn read_snapshot(root: &Path, number: u64) -> Result<Option<SnapshotFile>, StorageError> {
    match fs::read(root.join(snapshot_name(number))) {
        Ok(bytes) => Ok(Some(decode(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageIOError::read_snapshot(None, &e).into()),
    }
}

/// Adds one entry's effect to `batch`; returns the bytes of data it added.
fn stage(batch: &mut Batch, entry: &Entry<TypeConfig>) -> Result<usize, StorageError> {
    match &entry.payload {
        EntryPayload::Blank => Ok(0),
        EntryPayload::Normal(Request::Put { key, value }) => {
            batch.put(data_key(key), value);
            Ok(key.len() + value.len())
        }
        EntryPayload::Normal(Request::Delete { key }) => {
            batch.delete(data_key(key));
            Ok(key.len())
        }
        EntryPayload::Membership(membership) => {
            let stored = Membership::new(Some(entry.log_id), membership.clone());
            batch.put(MEMBERSHIP, encode(&stored).map_err(|e| StorageIOError::apply(entry.log_id, io_err(e)))?);
            Ok(0)
        }
    }
}

/// Seals `batch` with the applied log id it brings the state machine to and writes it.
async fn commit(store: &Store, mut batch: Batch, applied: Id) -> Result<(), StorageError> {
    batch.put(APPLIED, encode(&applied).map_err(|e| StorageIOError::apply(applied, io_err(e)))?);
    store.write_async(batch).await.map_err(|e| StorageIOError::apply(applied, &e))?;
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<Id>, Membership), StorageError> {
        self.applied().await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let live = self.live.write().await;
        let mut responses = Vec::new();
        let mut batch = Batch::new();
        let mut bytes = 0;
        let mut last = None;
        for entry in entries {
            bytes += stage(&mut batch, &entry)?;
            last = Some(entry.log_id);
            responses.push(Response {});
            if bytes >= BATCH_BYTES_MAX {
                commit(&live.store, std::mem::take(&mut batch), entry.log_id).await?;
                bytes = 0;
                last = None;
            }
        }
        if let Some(applied) = last {
            commit(&live.store, batch, applied).await?;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let fail = |e: &dyn std::error::Error| StorageIOError::write_snapshot(Some(meta.signature()), io_err_dyn(e));
        let decoded: SnapshotData = decode(&data).map_err(|e| fail(&e))?;
        let mut live = self.live.write().await;
        let number = live.number + 1;
        let dir = generation_dir(&self.root, number);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| fail(&e))?;
        }
        let store = Store::open(&dir).map_err(|e| fail(&e))?;
        let mut batch = Batch::new();
        let mut bytes = 0;
        for (key, value) in &decoded.pairs {
            batch.put(data_key(key), value);
            bytes += key.len() + value.len();
            if bytes >= BATCH_BYTES_MAX {
                store.write(std::mem::take(&mut batch)).map_err(|e| fail(&e))?;
                bytes = 0;
            }
        }
        if let Some(applied) = meta.last_log_id {
            batch.put(APPLIED, encode(&applied).map_err(|e| fail(&e))?);
        }
        batch.put(MEMBERSHIP, encode(&meta.last_membership).map_err(|e| fail(&e))?);
        store.write(batch).map_err(|e| fail(&e))?;
        let file = encode(&SnapshotFile { meta: meta.clone(), data }).map_err(|e| fail(&e))?;
        write_durably(&self.root, &snapshot_name(number), &file).map_err(|e| fail(&e))?;
        // The commit point: from here on a reopen finds generation `number`.
        write_durably(&self.root, "CURRENT", number.to_string().as_bytes()).map_err(|e| fail(&e))?;
        let old = std::mem::replace(&mut *live, Generation { number, store: Arc::new(store) });
        drop(live);
        drop(old);
        // Leftovers are removed at the next open if this fails (the old store may still be open
        // in a reader's hands for a moment; its files are unlinked either way).
        let _ = fs::remove_dir_all(generation_dir(&self.root, number - 1));
        let _ = fs::remove_file(self.root.join(snapshot_name(number - 1)));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let live = self.live.read().await;
        Ok(read_snapshot(&self.root, live.number)?
            .map(|file| Snapshot { meta: file.meta, snapshot: Box::new(Cursor::new(file.data)) }))
    }
}

fn io_err_dyn(e: &dyn std::error::Error) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // The read lock keeps `apply` and `install_snapshot` out while the data is copied, so the
        // pairs, the applied log id and the membership describe one state.
        let live = self.live.read().await;
        let pairs = sorted_pairs(&live.store);
        let (last_log_id, last_membership) = read_applied(&live.store)?;
        let fail = |e: &dyn std::error::Error| StorageIOError::write_snapshot(None, io_err_dyn(e));
        let data = encode(&SnapshotData { pairs }).map_err(|e| fail(&e))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
            None => format!("none-{nanos}"),
        };
        let meta = Meta { last_log_id, last_membership, snapshot_id };
        let file = encode(&SnapshotFile { meta: meta.clone(), data: data.clone() }).map_err(|e| fail(&e))?;
        write_durably(&self.root, &snapshot_name(live.number), &file).map_err(|e| fail(&e))?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_removes_an_install_that_did_not_reach_its_commit_point() {
        let dir = tempfile::tempdir().unwrap();
        drop(StateMachine::open(dir.path()).unwrap());
        // What a crash between building generation 1 and renaming CURRENT leaves behind.
        drop(Store::open(generation_dir(dir.path(), 1)).unwrap());
        fs::write(dir.path().join(snapshot_name(1)), b"half").unwrap();
        fs::write(dir.path().join("CURRENT.tmp"), b"1").unwrap();
        let sm = StateMachine::open(dir.path()).unwrap();
        assert_eq!(sm.live.try_read().unwrap().number, 0);
        assert!(!generation_dir(dir.path(), 1).exists());
        assert!(!dir.path().join(snapshot_name(1)).exists());
        assert!(!dir.path().join("CURRENT.tmp").exists());
    }
}
