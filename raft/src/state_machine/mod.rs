//! The state machine: the application's data on one ferrocask store, its applied position and
//! membership, and snapshots.
//!
//! The data store (`<root>/data`) is write-back ([`SyncMode::Every`]): applying needs no fsync of
//! its own, since the Raft log is the durability. A crash may lose a suffix of the applied state;
//! the applied position is written in the same transaction as each command's effect, so what
//! survives is a prefix of the log, and openraft replays the rest from [`Position::applied`].
//!
//! The store's clock ([`Options::clock`]) is the state machine's: the time of the last applied
//! command, not the wall clock. Reads outside transactions and compaction (which drops expired
//! records) then agree with what the transactions saw, on every replica; a wall clock ahead of
//! the leader's would let compaction drop a key a later command still reads as live.

mod apply;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrocask::{ManualClock, Options, Store, SyncMode};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::codec::{decode, encode};
use crate::keys::{MEMBERSHIP, POSITION};
use crate::types::Apply;
use crate::{NodeId, Response, StorageError, TypeConfig};

type Id = LogId<NodeId>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The data store's directory under the state machine's root.
const DATA_DIR: &str = "data";
/// How often the data store's background thread syncs it. Loses nothing that matters (the log
/// replays it); bounds how much a power loss makes openraft replay.
const DATA_SYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Bytes of a store transaction the state machine keeps for the position it writes after each
/// command (key, value and record header, with room to spare), with `Txn::reserve_bytes`: a
/// command whose writes would leave less fails with `BatchTooLarge` inside the application's
/// `Apply` (which answers it with an error and leaves nothing behind), never the whole apply.
pub const TXN_RESERVED_BYTES: usize = 256;

/// How far the state machine has applied the log, written with every command's effect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// The last entry applied whole.
    applied: Option<Id>,
    /// The entry after it, if some of its commands are applied: its id and how many.
    partial: Option<(Id, u64)>,
    /// The state machine's clock: the time the last command ran at (ms since the Unix epoch).
    clock_ms: u64,
}

/// The state machine of one node. Cheap to clone: clones share the store (the snapshot builder
/// is a clone).
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    store: Arc<Store>,
    clock: Arc<ManualClock>,
    apply: Arc<dyn Apply>,
    /// Held shared while a snapshot is built and exclusively while one is installed, so a build
    /// never copies a store half replaced.
    contents: RwLock<()>,
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    encode(value).map_err(|e| AnyError::new(&e))
}

fn read_sm(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

fn read_key<T: serde::de::DeserializeOwned + Default>(store: &Store, key: &[u8]) -> Result<T, StorageError> {
    match store.get(key).map_err(read_sm)? {
        Some(bytes) => decode(&bytes).map_err(read_sm),
        None => Ok(T::default()),
    }
}

fn read_position(store: &Store) -> Result<Position, StorageError> {
    read_key(store, POSITION)
}

fn read_membership(store: &Store) -> Result<Membership, StorageError> {
    read_key(store, MEMBERSHIP)
}

/// The data store's options: write-back, on the state machine's clock.
fn data_options(clock: Arc<ManualClock>) -> Options {
    Options { sync: SyncMode::Every(DATA_SYNC_INTERVAL), clock, ..Options::default() }
}

impl StateMachine {
    /// Opens the state machine in `root` (created if missing), finishing a snapshot install a
    /// crash interrupted. `apply` runs the application's commands.
    pub fn open(root: &Path, apply: Arc<dyn Apply>) -> Result<StateMachine, StorageError> {
        std::fs::create_dir_all(root).map_err(read_sm)?;
        snapshot::remove_leftovers(root).map_err(read_sm)?;
        // 0 until the position says what time it is: nothing reads as expired meanwhile.
        let clock = Arc::new(ManualClock::new(0));
        // The application's ordered prefixes (the server's collections) are declared on the data
        // store it runs its commands on.
        let options = apply
            .ordered_prefixes()
            .iter()
            .fold(data_options(Arc::clone(&clock)), |options, prefix| options.ordered_prefix(*prefix));
        let store = Store::open_with(root.join(DATA_DIR), options).map_err(read_sm)?;
        snapshot::resume(root, &store, &clock)?;
        clock.set_ms(read_position(&store)?.clock_ms);
        let shared =
            Shared { root: root.to_path_buf(), store: Arc::new(store), clock, apply, contents: RwLock::new(()) };
        Ok(StateMachine { shared: Arc::new(shared) })
    }

    /// The store that holds the replicated data: user keys unprefixed, as the application wrote
    /// them, plus the state machine's own keys under [`RESERVED_PREFIX`](crate::RESERVED_PREFIX)
    /// (see [`reserved_key_count`](crate::reserved_key_count)). The same store for the
    /// node's whole life (a snapshot install replaces its contents in place), so the application
    /// may keep the `Arc` and read it. Its clock is the state machine's (see the module doc).
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// The application that runs each command (what [`Node::start`](crate::node::Node::start)
    /// was given).
    pub fn application(&self) -> &Arc<dyn Apply> {
        &self.shared.apply
    }

    /// The state machine's clock: the time the last applied command ran at.
    pub fn clock_ms(&self) -> u64 {
        use ferrocask::Clock;
        self.shared.clock.now_ms()
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<Id>, Membership), StorageError> {
        let store = &self.shared.store;
        Ok((read_position(store)?.applied, read_membership(store)?))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let shared = &self.shared;
        let start = read_position(&shared.store)?;
        let (steps, mut responses, end) = apply::plan(entries, &start)?;
        apply::run(&shared.store, &shared.apply, &steps, &mut responses).await?;
        // Only now, with every transaction at `end.clock_ms` written: a compaction that reads
        // this clock syncs the log before it drops anything, so a crash can never keep what it
        // dropped and lose the position that made it expired.
        shared.clock.set_ms(end.clock_ms);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<std::io::Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(std::io::Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &Meta, data: Box<std::io::Cursor<Vec<u8>>>) -> Result<(), StorageError> {
        let _contents = self.shared.contents.write().await;
        let shared = Arc::clone(&self.shared);
        let meta = meta.clone();
        let bytes = data.into_inner();
        blocking(move || {
            snapshot::install(&shared.root, &shared.store, &shared.clock, &meta, bytes, snapshot::Step::Renamed)
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let root = self.shared.root.clone();
        blocking(move || snapshot::current(&root)).await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _contents = self.shared.contents.read().await;
        let shared = Arc::clone(&self.shared);
        blocking(move || snapshot::build(&shared.root, &shared.store)).await
    }
}

/// Runs file and store I/O that blocks off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?
}

#[cfg(test)]
mod tests;
