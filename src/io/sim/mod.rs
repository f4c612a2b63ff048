//! An in-memory, simulated file system for crash and fault-injection tests.
//!
//! [`SimFs`] implements [`Vfs`] and keeps, for every file, what the running process sees apart
//! from what would survive a power loss; likewise for directory entries. Tests can
//!
//! * simulate power loss at any moment with [`SimFs::crash`], choosing which unsynced writes and
//!   directory operations reach the "disk" with a [`CrashMode`] and a seed, and
//! * make any operation fail with [`SimFs::inject`] (I/O errors, a full disk, short writes, failed
//!   syncs), optionally freezing the file system right there ([`AfterFault::Halt`]) so that a
//!   following crash happens at exactly that point.
//!
//! Everything is deterministic for a given sequence of calls and seeds: no clock, no OS
//! randomness, and every iteration that feeds the PRNG runs over ordered maps.
//!
//! # Fault model
//!
//! What a crash keeps:
//!
//! * A write or length change is durable once a later `sync_data` of the same file returns `Ok`;
//!   a successful sync also persists the file's current length. A create, rename or remove is
//!   durable once a later `sync_dir` of its directory returns `Ok` (a rename across directories
//!   needs both directories synced, each side on its own).
//! * What is not durable survives a [`SimFs::crash`] as its [`CrashMode`] says: nothing, all of
//!   it, a random prefix of each file's changes (the last kept write maybe cut at any byte), or
//!   each touched 512- or 4096-byte sector independently old or new. Directory operations
//!   survive as a prefix of each directory's journal, in order, as a metadata journal commits; a
//!   directory whose own entry is lost takes its files with it.
//! * After a crash every handle, mapping and lock guard from before it is dead, every lock is
//!   free, and what survived is all durable.
//!
//! What each fault does ([`Fault`]: which operation it hits, what it does, what follows):
//!
//! * [`FaultKind::Eio`] and [`FaultKind::NoSpace`] fail the operation they hit with `EIO` or
//!   `StorageFull` (`ENOSPC`), and it has no effect. [`FaultKind::ShortWrite`] on a write first
//!   writes a random strict prefix of the buffer, then fails as `NoSpace` does (like a disk
//!   filling up mid-write); [`FaultKind::SyncFails`] fails as `Eio` does. Faults count every
//!   operation but mapping reads ([`SimFs::op_count`]). [`AfterFault::Halt`] then fails every
//!   later operation with `EIO` until the crash, so the crash happens at exactly that point.
//! * **A failed `sync_data` loses the file's unsynced changes**, as Linux may do: after a failed
//!   writeback it reports the error once and marks the dirty pages clean, so a retried fsync
//!   "succeeds" without writing them. Whenever an injected fault (of any [`FaultKind`]) fails a
//!   `sync_data`, every write and length change made to that file since its last successful sync
//!   is dropped from what can reach the disk: no [`CrashMode`] keeps it, and no later successful
//!   sync makes it durable (later writes are unaffected and become durable as usual; bytes lost
//!   past the length a later sync persists read as zeros). What the process reads back through
//!   `read_at` and mappings keeps showing those bytes, as the page cache does until it evicts
//!   them, so the loss shows only after a crash. A sync that fails because the file system is
//!   halted or the handle is dead drops nothing: the crash that follows decides.
//! * A failed `sync_dir` makes nothing durable, and the pending directory operations stay pending
//!   (a crash may still keep them, per the [`CrashMode`]).
//! * A [`Mapping`] read of bytes past the file's current end, inside the mapping's length, panics:
//!   a real mapping would raise `SIGBUS` there, so such a read is a bug the tests must see.
//! * [`SimFs::new_windows`] adds what the real file system does on Windows (`io/platform.rs`): a
//!   file with a live mapping cannot be removed or renamed over (`PermissionDenied`), cutting a
//!   mapped file zero-fills from the cut and keeps the length, and mapping past the end of a
//!   file first extends it with zeros. So every test can check the Windows rules on any host.
//!
//! # Layout
//!
//! This file holds the public face ([`SimFs`], [`CrashMode`]) and the state its handles share;
//! `fault.rs` the fault types and their matching; `dir.rs` the directory tree, its journal and
//! crash replay; `content.rs` each file's current and durable bytes; `file.rs` the file, mapping
//! and lock handles; `tests.rs` the simulator's own tests. Every random choice comes from the
//! project's one seeded PRNG (`crate::io::rng::Rng`). The simulator is compiled only for tests and for builds with the
//! `testing` feature (the crate's own integration tests and `fuzz/`).

mod content;
mod dir;
mod fault;
mod file;
#[cfg(test)]
mod tests;

pub use fault::{AfterFault, Fault, FaultKind, FaultWhen, OpKind};

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};
use crate::io::rng::Rng;
use content::{mapped_refusal, Inode};
use dir::{normalize, split, DirOp, Entry, State};
use fault::{dead_handle, eio, no_space, Armed, FaultState, Trigger};
use file::{SimFile, SimLock};

/// Which of the not-yet-durable changes survive a [`SimFs::crash`].
///
/// Directory operations (create, rename, remove) not yet made durable by [`Vfs::sync_dir`]
/// survive as a prefix of the per-directory list, as a metadata journal commits in order: none
/// for [`CrashMode::Nothing`], all for [`CrashMode::Everything`], a random prefix otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// No unsynced change survives: every file holds exactly its durable content.
    Nothing,
    /// Every change survives: the file system looks as it did just before the crash.
    Everything,
    /// A random-length prefix of each file's unsynced writes and length changes survives, and
    /// the last write that survives may itself be cut at a random byte.
    Prefix,
    /// The region touched by unsynced writes is split into aligned 512-byte sectors; each one
    /// independently holds either its new content or its old durable content (zeros past the
    /// old end of the file).
    Sectors512,
    /// As [`CrashMode::Sectors512`], with 4096-byte sectors.
    Sectors4096,
}

impl CrashMode {
    /// Every mode, for tests that loop over all of them.
    pub const ALL: [CrashMode; 5] =
        [CrashMode::Nothing, CrashMode::Everything, CrashMode::Prefix, CrashMode::Sectors512, CrashMode::Sectors4096];

    /// The sector size of the sector modes.
    fn sector_size(self) -> Option<usize> {
        match self {
            CrashMode::Sectors512 => Some(512),
            CrashMode::Sectors4096 => Some(4096),
            _ => None,
        }
    }
}

/// A simulated, in-memory file system that can crash and fail on demand.
///
/// Create it with [`SimFs::new`] and hand the `Arc` to the store as its [`Vfs`]. Each file keeps
/// its current content (what reads and mappings see) and its durable content (what survives
/// [`SimFs::crash`]), plus the ordered list of writes and length changes since its last
/// `sync_data`. Each directory keeps its current and durable entries plus the ordered list of
/// creates, renames and removes since its last `sync_dir`; directories made by
/// `create_dir_all` are entries of their parent like files. The roots (`/`, and `""` for
/// relative paths) always exist.
///
/// A crash invalidates every file handle, mapping and lock guard made before it.
pub struct SimFs {
    shared: Arc<Shared>,
}

impl SimFs {
    /// An empty file system (only the roots exist).
    pub fn new() -> Arc<SimFs> {
        SimFs::with_rules(false)
    }

    /// An empty file system with the Windows rules for mapped files, as the real file system
    /// has them there: a file with a live mapping cannot be removed or renamed over
    /// (`PermissionDenied`), cutting it with `set_len` zero-fills from the cut instead and keeps
    /// the length, and mapping past the end of a file extends it with zeros first.
    pub fn new_windows() -> Arc<SimFs> {
        SimFs::with_rules(true)
    }

    fn with_rules(windows: bool) -> Arc<SimFs> {
        let shared = Shared {
            generation: AtomicU64::new(0),
            windows,
            state: Mutex::new(State::new()),
            faults: Mutex::new(FaultState::new()),
        };
        Arc::new(SimFs { shared: Arc::new(shared) })
    }

    /// Simulates power loss (see [`CrashMode`]); `seed` drives every random choice, so the same
    /// history, mode and seed give the same result.
    ///
    /// Afterwards every handle, mapping and lock guard from before the crash is dead (operations
    /// fail, mapping reads return `None`), all locks are free, a halt is lifted, and each file
    /// and directory holds only what survived, all of it durable. Injected faults that have not
    /// fired stay armed.
    pub fn crash(&self, mode: CrashMode, seed: u64) {
        // Lock order everywhere: faults, then state, then an inode.
        let mut faults = self.shared.faults.lock();
        let mut state = self.shared.state.lock();
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        let mut rng = Rng::new(seed);
        *state = state.after_crash(mode, &mut rng);
        faults.halted = false;
    }

    /// Arms a fault (see [`Fault`]). Several faults may be armed; the first armed one that
    /// matches an operation fires.
    pub fn inject(&self, fault: Fault) {
        let mut faults = self.shared.faults.lock();
        let trigger = match fault.when {
            FaultWhen::Nth(n) => Trigger::At(faults.op_count.saturating_add(n)),
            FaultWhen::Matching { op, path_contains, times } => Trigger::Matching { op, path_contains, left: times },
        };
        faults.armed.push(Armed { trigger, what: fault.what, then: fault.then });
    }

    /// Disarms every fault not yet fired (a halt stays in force).
    pub fn clear_faults(&self) {
        self.shared.faults.lock().armed.clear();
    }

    /// Halts now: every later operation fails with `EIO` until [`SimFs::crash`].
    pub fn halt(&self) {
        self.shared.faults.lock().halted = true;
    }

    /// Whether the file system is halted (by [`SimFs::halt`] or an [`AfterFault::Halt`] fault).
    pub fn is_halted(&self) -> bool {
        self.shared.faults.lock().halted
    }

    /// How many operations were performed so far: every trait call on the file system, its
    /// files and its mappings except [`Mapping::read`], including calls that failed.
    pub fn op_count(&self) -> u64 {
        self.shared.faults.lock().op_count
    }

    /// Reseeds the PRNG that picks short-write lengths (it starts from a fixed seed).
    pub fn reseed_faults(&self, seed: u64) {
        self.shared.faults.lock().rng = Rng::new(seed);
    }

    /// The current content of the file at `path` (what a reader would see), if it exists.
    /// Not an operation: never counted, never faulted.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        self.with_inode(path, |inode| inode.content.lock().data.clone())
    }

    /// The current length of the file at `path`, if it exists. Not an operation.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        self.with_inode(path, |inode| inode.content.lock().data.len() as u64)
    }

    /// Creates or overwrites the file at `path` with `bytes`, its entry and missing parent
    /// directories all durable at once, for setting up or corrupting files in tests. An existing
    /// file is overwritten in place, so its open handles and mappings see the new bytes. Not an
    /// operation.
    pub fn write_file_durable(&self, path: &Path, bytes: &[u8]) {
        let (dir, name) = split(path).expect("write_file_durable needs a file path");
        let mut state = self.shared.state.lock();
        state.create_dirs_durable(&dir).expect("a parent of the path is a file");
        let inode = match state.dirs[&dir].entries.get(&name) {
            Some(Entry::Dir) => panic!("{} is a directory", path.display()),
            Some(Entry::File(inode)) => {
                let inode = inode.clone();
                let mut content = inode.content.lock();
                content.data = bytes.to_vec();
                content.durable = bytes.to_vec();
                content.pending.clear();
                content.lost = false;
                drop(content);
                inode
            }
            None => state.new_inode(bytes.to_vec()),
        };
        let d = state.dirs.get_mut(&dir).expect("just created");
        d.entries.insert(name.clone(), Entry::File(inode.clone()));
        d.durable.insert(name, Entry::File(inode));
    }

    /// Creates `path` and its missing parents, durable at once (a directory that "already
    /// existed" before the test). Not an operation.
    pub fn create_dir_all_durable(&self, path: &Path) {
        let dir = normalize(path);
        self.shared.state.lock().create_dirs_durable(&dir).expect("a parent of the path is a file");
    }

    /// The paths of every file that currently exists, sorted. Not an operation.
    pub fn list_all(&self) -> Vec<PathBuf> {
        let state = self.shared.state.lock();
        let mut files = Vec::new();
        for (dir, d) in &state.dirs {
            for (name, entry) in &d.entries {
                if matches!(entry, Entry::File(_)) {
                    files.push(dir.join(name));
                }
            }
        }
        files.sort();
        files
    }

    /// Runs `f` on the inode currently at `path`, if there is a file there.
    fn with_inode<T>(&self, path: &Path, f: impl FnOnce(&Inode) -> T) -> Option<T> {
        let (dir, name) = split(path).ok()?;
        let state = self.shared.state.lock();
        match state.dirs.get(&dir)?.entries.get(&name)? {
            Entry::File(inode) => Some(f(inode)),
            Entry::Dir => None,
        }
    }

    /// Counts an operation of the file system itself and applies halts and faults to it.
    fn begin(&self, op: OpKind, paths: &[&Path]) -> io::Result<()> {
        self.shared.begin(op, paths, None).map(|_| ()).map_err(io::Error::from)
    }
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl Vfs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.begin(OpKind::CreateDir, &[path])?;
        self.shared.state.lock().create_dirs(&normalize(path), false)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let kind = if mode == OpenMode::CreateNew { OpKind::Create } else { OpKind::Open };
        self.begin(kind, &[path])?;
        let (dir, name) = split(path)?;
        let mut state = self.shared.state.lock();
        let existing = state.dir(&dir)?.entries.get(&name).cloned();
        let full = dir.join(&name);
        let inode = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateNew, None) => state.create_file(&dir, name),
            (_, None) => return Err(io::ErrorKind::NotFound.into()),
            (_, Some(Entry::Dir)) => return Err(io::ErrorKind::IsADirectory.into()),
            (_, Some(Entry::File(inode))) => inode,
        };
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let writable = mode != OpenMode::ReadOnly;
        let shared = self.shared.clone();
        Ok(Box::new(SimFile { shared, inode, path: full, generation, writable }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.begin(OpKind::List, &[dir])?;
        let state = self.shared.state.lock();
        let d = state.dir(&normalize(dir))?;
        Ok(d.entries.iter().filter(|(_, e)| matches!(e, Entry::File(_))).map(|(name, _)| name.clone()).collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.begin(OpKind::Rename, &[from, to])?;
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let mut state = self.shared.state.lock();
        if self.shared.windows {
            let mapped = |d: &Path, n: &String| matches!(state.dir(d).ok().and_then(|d| d.entries.get(n)), Some(Entry::File(i)) if i.is_mapped());
            if mapped(&from_dir, &from_name) || mapped(&to_dir, &to_name) {
                return Err(mapped_refusal());
            }
        }
        state.rename(&from_dir, from_name, &to_dir, to_name)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.begin(OpKind::Remove, &[path])?;
        let (dir, name) = split(path)?;
        let mut state = self.shared.state.lock();
        let d = state.dir_mut(&dir)?;
        match d.entries.get(&name) {
            None => Err(io::ErrorKind::NotFound.into()),
            Some(Entry::Dir) => Err(io::ErrorKind::IsADirectory.into()),
            Some(Entry::File(inode)) if self.shared.windows && inode.is_mapped() => Err(mapped_refusal()),
            Some(Entry::File(_)) => {
                d.apply(DirOp::Remove(name));
                Ok(())
            }
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.begin(OpKind::SyncDir, &[dir])?;
        let mut state = self.shared.state.lock();
        let d = state.dir_mut(&normalize(dir))?;
        d.durable = d.entries.clone();
        d.pending.clear();
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        self.begin(OpKind::Lock, &[path])?;
        let (dir, name) = split(path)?;
        let mut state = self.shared.state.lock();
        match state.dir(&dir)?.entries.get(&name) {
            Some(Entry::Dir) => return Err(io::ErrorKind::IsADirectory.into()),
            Some(Entry::File(_)) => {}
            // Like the real implementation, locking creates the lock file.
            None => drop(state.create_file(&dir, name.clone())),
        }
        let path = dir.join(name);
        if !state.locks.insert(path.clone()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let generation = self.shared.generation.load(Ordering::SeqCst);
        Ok(LockGuard::new(SimLock { shared: self.shared.clone(), path, generation }))
    }
}

/// What file handles, mappings and lock guards share with the file system.
struct Shared {
    /// Bumped by every crash; handles from an older generation are dead.
    generation: AtomicU64,
    /// Windows rules for mapped files (see [`SimFs::new_windows`]).
    windows: bool,
    /// The directory tree and the lock table.
    state: Mutex<State>,
    /// Operation counting, halting and armed faults.
    faults: Mutex<FaultState>,
}

impl Shared {
    /// Counts one operation and decides its fate: `Err` if the file system is halted, the handle
    /// (of `generation`) is dead or a fault fires; `Ok(Some(r))` with a random `r` if a short
    /// write fault fires on a write, `Ok(None)` to proceed normally.
    fn begin(&self, op: OpKind, paths: &[&Path], generation: Option<u64>) -> Result<Option<u64>, Refused> {
        let mut faults = self.faults.lock();
        let index = faults.op_count;
        faults.op_count += 1;
        if faults.halted {
            return Err(Refused::other(eio("simulated file system is halted")));
        }
        if generation.is_some_and(|g| g != self.generation.load(Ordering::SeqCst)) {
            return Err(Refused::other(dead_handle()));
        }
        let Some(fired) = faults.fire(index, op, paths) else { return Ok(None) };
        if fired.then == AfterFault::Halt {
            faults.halted = true;
        }
        let error = match (fired.what, op) {
            (FaultKind::ShortWrite, OpKind::Write) => return Ok(Some(faults.rng.next())),
            (FaultKind::ShortWrite | FaultKind::NoSpace, _) => no_space(),
            (FaultKind::Eio | FaultKind::SyncFails, _) => eio("simulated I/O error"),
        };
        Err(Refused { error, by_fault: true })
    }
}

/// Why [`Shared::begin`] refused an operation.
struct Refused {
    error: io::Error,
    /// An injected fault fired (rather than a halt or a dead handle refusing the call).
    by_fault: bool,
}

impl Refused {
    fn other(error: io::Error) -> Refused {
        Refused { error, by_fault: false }
    }
}

impl From<Refused> for io::Error {
    fn from(refused: Refused) -> io::Error {
        refused.error
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op_count, halted, armed) = {
            let faults = self.faults.lock();
            (faults.op_count, faults.halted, faults.armed.len())
        };
        let (dirs, locks) = {
            let state = self.state.lock();
            (state.dirs.len(), state.locks.len())
        };
        f.debug_struct("SimFs")
            .field("generation", &self.generation.load(Ordering::SeqCst))
            .field("op_count", &op_count)
            .field("halted", &halted)
            .field("armed_faults", &armed)
            .field("dirs", &dirs)
            .field("locks", &locks)
            .finish()
    }
}
