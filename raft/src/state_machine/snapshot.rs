//! Snapshots: building one from an online copy of the data store, installing one in place, and
//! the snapshot files.
//!
//! Files of the state machine directory (besides `data/`, the store):
//!
//! ```text
//! snapshot              the current snapshot (a SnapshotFile), replaced by rename
//! snapshot.installing   a received snapshot while it is installed
//! build-*/              the copy a build reads (removed when the build ends, or at the next open)
//! ```
//!
//! Install is crash-safe in place (finding 5): the received snapshot is made durable as
//! `snapshot.installing`, then the store is marked `INSTALLING` (synced), then its contents are
//! replaced in batches, then the position and membership are written and the mark cleared in one
//! batch (synced), then the file is renamed to `snapshot`. A crash before the mark leaves the old
//! state (the open removes the file); with the mark, the open redoes the replacement from the
//! file; after the clear, the new state is whole. openraft purges the log up to the snapshot only
//! after `install_snapshot` returns, by which time the new position is durable.

use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocask::{Batch, Expiry, ManualClock, Options, Store};
use openraft::storage::Snapshot;
use openraft::{AnyError, StorageIOError};
use serde::{Deserialize, Serialize};

use super::{encoded, read_membership, read_position, Membership, Meta, Position};
use crate::codec::decode;
use crate::keys::{is_reserved, INSTALLING, MEMBERSHIP, POSITION};
use crate::{StorageError, TypeConfig};

/// The current snapshot's file.
pub(super) const SNAPSHOT_FILE: &str = "snapshot";
/// A received snapshot while it is installed.
pub(super) const INSTALLING_FILE: &str = "snapshot.installing";
/// Prefix of the directories a build copies the store into.
pub(super) const BUILD_DIR_PREFIX: &str = "build-";
/// Bytes a record takes besides its key and value, at most (header with an expiry).
const RECORD_OVERHEAD_BYTES: usize = 24;

/// A snapshot file: the meta, then the data (a [`SnapshotData`] encoded) as sent to followers.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: Meta,
    data: Vec<u8>,
}

/// The data of a snapshot: the state machine's whole state at one applied position.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SnapshotData {
    /// Includes an entry applied in part, so the installer resumes it rather than repeating it,
    /// and the clock, so it runs the next entries at the same times as every other replica.
    pub(super) position: Position,
    pub(super) membership: Membership,
    /// Every application key live at the position's clock, sorted by key.
    pub(super) pairs: Vec<Pair>,
}

/// One application key.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pair {
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
    /// When it expires (ms since the Unix epoch), `None` = never.
    pub(super) expires_ms: Option<u64>,
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

/// Builds a snapshot of `store` (blocking: run it off the async workers) and makes it the
/// current one. Apply goes on meanwhile: the copy is taken online, at one point of the log.
pub(super) fn build(root: &Path, store: &Store) -> Result<Snapshot<TypeConfig>, StorageError> {
    let copy_dir = tempfile::Builder::new().prefix(BUILD_DIR_PREFIX).tempdir_in(root).map_err(write_err)?;
    let copy_path = copy_dir.path().join("copy");
    store.backup_to(&copy_path).map_err(write_err)?;
    // Finding 5: openraft may purge the log up to this snapshot as soon as it is returned, so the
    // state it describes must be durable in the data store first (the store is write-back; the
    // log was its durability until now). Everything written before the sync is durable after it.
    let durable = read_position(store)?;
    store.sync().map_err(write_err)?;
    let data = read_copy(&copy_path)?;
    drop(copy_dir);
    assert!(
        durable.applied >= data.position.applied,
        "the data store is durable at least up to the snapshot: {durable:?} against {:?}",
        data.position
    );
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let snapshot_id = match data.position.applied {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
        None => format!("none-{nanos}"),
    };
    let meta = Meta { last_log_id: data.position.applied, last_membership: data.membership.clone(), snapshot_id };
    let bytes = encoded(&data).map_err(write_err)?;
    let file = SnapshotFile { meta: meta.clone(), data: bytes.clone() };
    write_durably(root, SNAPSHOT_FILE, &encoded(&file).map_err(write_err)?).map_err(write_err)?;
    Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
}

/// Reads the state of the store copy at `path`, at the copy's own clock.
fn read_copy(path: &Path) -> Result<SnapshotData, StorageError> {
    let clock = std::sync::Arc::new(ManualClock::new(0));
    let options = Options { clock: clock.clone(), auto_compact: false, ..Options::default() };
    let copy = Store::open_with(path, options).map_err(read_err)?;
    assert!(!copy.contains_key(INSTALLING).map_err(read_err)?, "no snapshot is built while one is installed");
    let position = read_position(&copy)?;
    let membership = read_membership(&copy)?;
    // Live at the state machine's time, not the wall clock's: the copy is the replicated state.
    clock.set_ms(position.clock_ms);
    let mut pairs = Vec::new();
    for (key, _) in copy.iter() {
        if is_reserved(&key) {
            continue;
        }
        if let Some((value, expires_ms)) = copy.get_with_expiry(&key).map_err(read_err)? {
            pairs.push(Pair { key, value: value.into_vec(), expires_ms });
        }
    }
    pairs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(SnapshotData { position, membership, pairs })
}

/// The current snapshot, if one was built or installed.
pub(super) fn current(root: &Path) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    Ok(read_file(&root.join(SNAPSHOT_FILE))?
        .map(|f| Snapshot { meta: f.meta, snapshot: Box::new(Cursor::new(f.data)) }))
}

fn read_file(path: &Path) -> Result<Option<SnapshotFile>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(decode(&bytes).map_err(read_err)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_err(e)),
    }
}

/// The steps of an install, in order; tests stop an install after any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    /// `snapshot.installing` is durable.
    FileWritten,
    /// The store is marked as installing, durably.
    Marked,
    /// The old contents are deleted.
    Cleared,
    /// The snapshot's keys are written (the position not yet).
    Filled,
    /// The position and membership are written and the mark cleared, durably.
    Unmarked,
    /// `snapshot.installing` is the current snapshot.
    Renamed,
}

/// Installs the received snapshot in place (blocking), stopping after `stop_after` (tests).
pub(super) fn install(
    root: &Path,
    store: &Store,
    clock: &ManualClock,
    meta: &Meta,
    bytes: Vec<u8>,
    stop_after: Step,
) -> Result<(), StorageError> {
    let data: SnapshotData = decode(&bytes).map_err(read_err)?;
    if data.position.applied != meta.last_log_id {
        return Err(read_err(format!(
            "a snapshot whose data is at {:?} but whose meta says {:?}",
            data.position.applied, meta.last_log_id
        )));
    }
    let file = SnapshotFile { meta: meta.clone(), data: bytes };
    write_durably(root, INSTALLING_FILE, &encoded(&file).map_err(write_err)?).map_err(write_err)?;
    if stop_after == Step::FileWritten {
        return Ok(());
    }
    store.put(INSTALLING, meta.snapshot_id.as_bytes()).map_err(write_err)?;
    store.sync().map_err(write_err)?;
    if stop_after == Step::Marked {
        return Ok(());
    }
    replace(root, store, clock, &data, stop_after)
}

/// Redoes an install the mark says a crash interrupted (on open).
pub(super) fn resume(root: &Path, store: &Store, clock: &ManualClock) -> Result<(), StorageError> {
    let Some(mark) = store.get(INSTALLING).map_err(read_err)? else {
        return finish_or_forget(root, store);
    };
    let file = read_file(&root.join(INSTALLING_FILE))?
        .ok_or_else(|| read_err("the store is marked as installing a snapshot, but its file is gone"))?;
    if file.meta.snapshot_id.as_bytes() != &*mark {
        return Err(read_err(format!("the store installs {mark:?}, but the file holds {}", file.meta.snapshot_id)));
    }
    let data: SnapshotData = decode(&file.data).map_err(read_err)?;
    replace(root, store, clock, &data, Step::Renamed)
}

/// Without a mark, a leftover `snapshot.installing` is either one whose install finished but was
/// not yet renamed (the store is at its position: rename it) or one whose install never set its
/// mark (the old state is whole: remove it).
fn finish_or_forget(root: &Path, store: &Store) -> Result<(), StorageError> {
    let Some(file) = read_file(&root.join(INSTALLING_FILE))? else { return Ok(()) };
    let position = read_position(store)?;
    let decoded: SnapshotData = decode(&file.data).map_err(read_err)?;
    if decoded.position == position {
        rename_durably(root, INSTALLING_FILE, SNAPSHOT_FILE).map_err(write_err)
    } else {
        fs::remove_file(root.join(INSTALLING_FILE)).map_err(write_err)
    }
}

/// Replaces the store's contents with `data` (the mark set), clears the mark, renames the file.
fn replace(
    root: &Path,
    store: &Store,
    clock: &ManualClock,
    data: &SnapshotData,
    stop_after: Step,
) -> Result<(), StorageError> {
    // Every record visible, expired or not, so every old key is deleted; and every snapshot key
    // written with its expiry reads as live until the position sets the clock.
    clock.set_ms(0);
    let budget = store.batch_bytes_max() / 2;
    let mut batch = Sized::default();
    for key in store.keys() {
        if key != INSTALLING {
            batch.add(store, budget, key.len(), |b| {
                b.delete(&key);
            })?;
        }
    }
    batch.flush(store)?;
    if stop_after == Step::Cleared {
        return Ok(());
    }
    for pair in &data.pairs {
        let expiry = pair.expires_ms.map_or(Expiry::Never, Expiry::At);
        batch.add(store, budget, pair.key.len() + pair.value.len(), |b| {
            b.put_with_expiry(&pair.key, &pair.value, expiry);
        })?;
    }
    batch.flush(store)?;
    if stop_after == Step::Filled {
        return Ok(());
    }
    let mut last = Batch::new();
    last.put(POSITION, encoded(&data.position).map_err(write_err)?);
    last.put(MEMBERSHIP, encoded(&data.membership).map_err(write_err)?);
    last.delete(INSTALLING);
    store.write(last).map_err(write_err)?;
    store.sync().map_err(write_err)?;
    clock.set_ms(data.position.clock_ms);
    if stop_after == Step::Unmarked {
        return Ok(());
    }
    rename_durably(root, INSTALLING_FILE, SNAPSHOT_FILE).map_err(write_err)
}

/// A batch that is written once it reaches its byte budget.
#[derive(Default)]
struct Sized {
    batch: Batch,
    bytes: usize,
}

impl Sized {
    fn add(
        &mut self,
        store: &Store,
        budget: usize,
        len: usize,
        op: impl FnOnce(&mut Batch),
    ) -> Result<(), StorageError> {
        if self.bytes + len + RECORD_OVERHEAD_BYTES > budget {
            self.flush(store)?;
        }
        op(&mut self.batch);
        self.bytes += len + RECORD_OVERHEAD_BYTES;
        Ok(())
    }

    fn flush(&mut self, store: &Store) -> Result<(), StorageError> {
        if self.bytes > 0 {
            store.write(std::mem::take(&mut self.batch)).map_err(write_err)?;
            self.bytes = 0;
        }
        Ok(())
    }
}

/// Writes `root/name` so that a crash leaves the old contents or the new, never a mix: write a
/// temp file, sync it, rename it over `name`, sync the directory.
fn write_durably(root: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!("{name}.tmp");
    let mut file = fs::File::create(root.join(&tmp))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    rename_durably(root, &tmp, name)
}

fn rename_durably(root: &Path, from: &str, to: &str) -> std::io::Result<()> {
    fs::rename(root.join(from), root.join(to))?;
    fs::File::open(root)?.sync_all()
}

/// Removes what an interrupted build or file write left (on open).
pub(super) fn remove_leftovers(root: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(BUILD_DIR_PREFIX) {
            fs::remove_dir_all(entry.path())?;
        } else if name.ends_with(".tmp") {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
