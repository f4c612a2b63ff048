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
//! * A write or length change is durable once a later `sync_data` of the same file returns `Ok`;
//!   until then a crash keeps whatever the [`CrashMode`] says of it.
//! * **A failed `sync_data` loses the file's unsynced changes**, as Linux may do: after a failed
//!   writeback it reports the error once and marks the dirty pages clean, so a retried fsync
//!   "succeeds" without writing them. Whenever an injected fault (of any [`FaultKind`]) fails a
//!   `sync_data`, every write and length change made to that file since its last successful sync
//!   is dropped from what can reach the disk: no [`CrashMode`] keeps it, and no later successful
//!   sync makes it durable (later writes are unaffected and become durable as usual). What the
//!   process reads back through `read_at` and mappings keeps showing those bytes, as the page
//!   cache does until it evicts them, so the loss shows only after a crash. A sync that fails
//!   because the file system is halted or the handle is dead drops nothing: the crash that
//!   follows decides.
//! * A failed `sync_dir` makes nothing durable, and the pending directory operations stay pending
//!   (a crash may still keep them, per the [`CrashMode`]).
//! * A [`Mapping`] read of bytes past the file's current end, inside the mapping's length, panics:
//!   a real mapping would raise `SIGBUS` there, so such a read is a bug the tests must see.
//! * [`SimFs::new_windows`] adds what the real file system does on Windows (`io/platform.rs`): a
//!   file with a live mapping cannot be removed or renamed over (`PermissionDenied`), cutting a
//!   mapped file zero-fills from the cut and keeps the length, and mapping past the end of a
//!   file first extends it with zeros. So every test can check the Windows rules on any host.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};

/// `EIO` on Linux.
const EIO: i32 = 5;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

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

/// The kind of a counted operation, for [`FaultWhen::Matching`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Vfs::open`] with [`OpenMode::ReadWrite`] or [`OpenMode::ReadOnly`].
    Open,
    /// [`Vfs::open`] with [`OpenMode::CreateNew`].
    Create,
    /// [`VfsFile::read_at`].
    Read,
    /// [`VfsFile::write_at`].
    Write,
    /// [`VfsFile::sync_data`].
    Sync,
    /// [`Vfs::sync_dir`].
    SyncDir,
    /// [`VfsFile::set_len`].
    SetLen,
    /// [`Vfs::rename`]; its path is matched against both the source and the target.
    Rename,
    /// [`Vfs::remove_file`].
    Remove,
    /// [`Vfs::list`].
    List,
    /// [`Vfs::lock`].
    Lock,
    /// [`VfsFile::map`].
    Map,
    /// [`Vfs::create_dir_all`].
    CreateDir,
    /// [`VfsFile::len`].
    Len,
}

/// Which operation(s) a [`Fault`] hits.
///
/// Operations are counted over every trait call on the file system, its files and its mappings,
/// except [`Mapping::read`] (see [`SimFs::op_count`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultWhen {
    /// The `n`th operation counted from the moment the fault is injected (0 = the very next
    /// one). Fires at most once.
    Nth(u64),
    /// Every operation of kind `op` whose path contains `path_contains` (file operations use
    /// the path the file was opened with), at most `times` times if given.
    Matching {
        /// The operation kind to hit.
        op: OpKind,
        /// A substring the operation's path must contain (`""` matches every path).
        path_contains: String,
        /// How many times the fault fires before it disarms; `None` for ever.
        times: Option<u32>,
    },
}

/// What a [`Fault`] does to the operation it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The operation fails with `EIO` and has no effect.
    Eio,
    /// The operation fails with kind `StorageFull` (`ENOSPC`) and has no effect.
    NoSpace,
    /// On a write, a random strict prefix of the buffer is written, then the write fails with
    /// kind `StorageFull`, like a disk filling up mid-write. Other operations fail as with
    /// [`FaultKind::NoSpace`].
    ShortWrite,
    /// On `sync_data` or `sync_dir`, the sync fails with `EIO` and makes nothing durable (a
    /// failed `sync_data` also loses the file's unsynced changes, see the module doc's fault
    /// model, as every fault on a `sync_data` does). Other operations fail as with
    /// [`FaultKind::Eio`].
    SyncFails,
}

/// What happens to the operations after the one a [`Fault`] hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AfterFault {
    /// Later operations work as usual.
    #[default]
    Continue,
    /// Every later operation fails with `EIO` until [`SimFs::crash`]: simulates power loss at
    /// exactly this point.
    Halt,
}

/// A failure to inject with [`SimFs::inject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which operation(s) fail.
    pub when: FaultWhen,
    /// How they fail.
    pub what: FaultKind,
    /// What happens afterwards.
    pub then: AfterFault,
}

impl Fault {
    /// A fault on the `n`th operation from now (0-based), with [`AfterFault::Continue`].
    pub fn nth(n: u64, what: FaultKind) -> Self {
        Fault { when: FaultWhen::Nth(n), what, then: AfterFault::Continue }
    }

    /// A fault on every operation of kind `op` whose path contains `path_contains`, with
    /// [`AfterFault::Continue`] and no limit.
    pub fn matching(op: OpKind, path_contains: impl Into<String>, what: FaultKind) -> Self {
        let when = FaultWhen::Matching { op, path_contains: path_contains.into(), times: None };
        Fault { when, what, then: AfterFault::Continue }
    }

    /// The same fault, halting the file system once it fires.
    pub fn halt(mut self) -> Self {
        self.then = AfterFault::Halt;
        self
    }

    /// The same fault, firing at most `n` times (only meaningful for [`FaultWhen::Matching`]).
    pub fn times(mut self, n: u32) -> Self {
        if let FaultWhen::Matching { times, .. } = &mut self.when {
            *times = Some(n);
        }
        self
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

/// Operation counting and fault injection state.
struct FaultState {
    op_count: u64,
    halted: bool,
    armed: Vec<Armed>,
    /// Picks short-write lengths.
    rng: Rng,
}

impl FaultState {
    fn new() -> Self {
        FaultState { op_count: 0, halted: false, armed: Vec::new(), rng: Rng::new(0x5EED) }
    }

    /// The first armed fault hitting operation number `index`, disarming it if used up. Also
    /// drops `Nth` faults whose operation went by without them (it was halted or dead).
    fn fire(&mut self, index: u64, op: OpKind, paths: &[&Path]) -> Option<Armed> {
        self.armed.retain(|a| !matches!(a.trigger, Trigger::At(at) if at < index));
        let pos = self.armed.iter().position(|a| a.trigger.hits(index, op, paths))?;
        let spent = match &mut self.armed[pos].trigger {
            Trigger::At(_) => true,
            Trigger::Matching { left: Some(left), .. } => {
                *left -= 1;
                *left == 0
            }
            Trigger::Matching { left: None, .. } => false,
        };
        if spent {
            Some(self.armed.remove(pos))
        } else {
            Some(self.armed[pos].clone())
        }
    }
}

/// A path as a string with `/` separators on every platform, so that a fault's
/// `path_contains` (written with `/`) matches paths joined with `\` on Windows.
fn slashed(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// An injected fault waiting to fire.
#[derive(Clone)]
struct Armed {
    trigger: Trigger,
    what: FaultKind,
    then: AfterFault,
}

/// When an [`Armed`] fault fires; `Nth` is turned into an absolute operation number.
#[derive(Clone)]
enum Trigger {
    At(u64),
    Matching { op: OpKind, path_contains: String, left: Option<u32> },
}

impl Trigger {
    fn hits(&self, index: u64, op: OpKind, paths: &[&Path]) -> bool {
        match self {
            Trigger::At(at) => *at == index,
            Trigger::Matching { op: want, path_contains, left } => {
                *want == op && *left != Some(0) && paths.iter().any(|p| slashed(p).contains(path_contains.as_str()))
            }
        }
    }
}

/// The directory tree and lock table.
struct State {
    /// Every existing directory by normalised path; a `BTreeMap` so that parents come before
    /// their children and crashes consume the PRNG in a fixed order.
    dirs: BTreeMap<PathBuf, Dir>,
    /// Normalised paths currently locked.
    locks: HashSet<PathBuf>,
    next_inode: u64,
}

impl State {
    fn new() -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::from("/"), Dir::default());
        dirs.insert(PathBuf::new(), Dir::default());
        State { dirs, locks: HashSet::new(), next_inode: 0 }
    }

    fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn new_inode(&mut self, data: Vec<u8>) -> Arc<Inode> {
        self.next_inode += 1;
        Arc::new(Inode::new(self.next_inode, data))
    }

    /// Creates an empty file named `name` in the existing directory `dir` (pending until synced).
    fn create_file(&mut self, dir: &Path, name: String) -> Arc<Inode> {
        let inode = self.new_inode(Vec::new());
        let d = self.dirs.get_mut(dir).expect("caller checked the directory");
        d.apply(DirOp::Insert(name, Entry::File(inode.clone())));
        inode
    }

    /// Creates the normalised directory `path` and its missing parents; `durable` makes the new
    /// entries durable at once instead of pending.
    fn create_dirs(&mut self, path: &Path, durable: bool) -> io::Result<()> {
        if self.dirs.contains_key(path) {
            return Ok(());
        }
        let parent = path.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.create_dirs(parent, durable)?;
        let name = path_name(path);
        let d = self.dirs.get_mut(parent).expect("just created");
        match d.entries.get(&name) {
            Some(Entry::File(_)) => return Err(io::ErrorKind::NotADirectory.into()),
            Some(Entry::Dir) => {}
            None if durable => {
                d.entries.insert(name.clone(), Entry::Dir);
                d.durable.insert(name, Entry::Dir);
            }
            None => d.apply(DirOp::Insert(name, Entry::Dir)),
        }
        self.dirs.insert(path.to_path_buf(), Dir::default());
        Ok(())
    }

    /// Creates `path` and its parents durably, and makes an existing `path` durable in its
    /// parent chain too (test setup: the directory existed before the test).
    fn create_dirs_durable(&mut self, path: &Path) -> io::Result<()> {
        self.create_dirs(path, true)?;
        let mut child = path;
        while let Some(parent) = child.parent() {
            let d = self.dirs.get_mut(parent).expect("parents of a directory exist");
            d.durable.insert(path_name(child), Entry::Dir);
            child = parent;
        }
        Ok(())
    }

    fn rename(&mut self, from_dir: &Path, from: String, to_dir: &Path, to: String) -> io::Result<()> {
        let entry = match self.dir(from_dir)?.entries.get(&from) {
            None => return Err(io::ErrorKind::NotFound.into()),
            Some(Entry::Dir) => return Err(io::Error::new(io::ErrorKind::Unsupported, "SimFs renames only files")),
            Some(entry) => entry.clone(),
        };
        if matches!(self.dir(to_dir)?.entries.get(&to), Some(Entry::Dir)) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        if from_dir == to_dir {
            if from != to {
                self.dir_mut(from_dir)?.apply(DirOp::Rename(from, to));
            }
            return Ok(());
        }
        // Across directories each side becomes durable with its own directory's sync.
        self.dir_mut(from_dir)?.apply(DirOp::Remove(from));
        self.dir_mut(to_dir)?.apply(DirOp::Insert(to, entry));
        Ok(())
    }

    /// The state after a power loss: see [`CrashMode`].
    fn after_crash(&self, mode: CrashMode, rng: &mut Rng) -> State {
        let mut surviving: BTreeMap<PathBuf, BTreeMap<String, Entry>> = BTreeMap::new();
        for (path, dir) in &self.dirs {
            let kept = match mode {
                CrashMode::Nothing => 0,
                CrashMode::Everything => dir.pending.len(),
                _ => rng.upto(dir.pending.len()),
            };
            let entries = replay(&dir.durable, &dir.pending[..kept]);
            // Parents sort before children, so a parent's fate is already known.
            let alive = match path.parent() {
                None => true,
                Some(parent) => {
                    surviving.get(parent).is_some_and(|e| matches!(e.get(&path_name(path)), Some(Entry::Dir)))
                }
            };
            if alive {
                surviving.insert(path.clone(), entries);
            }
        }
        let fresh = crash_inodes(&surviving, mode, rng);
        let dirs = surviving
            .into_iter()
            .map(|(path, entries)| {
                let entries: BTreeMap<String, Entry> = entries
                    .into_iter()
                    .map(|(name, e)| match e {
                        Entry::File(old) => (name, Entry::File(fresh[&old.id].clone())),
                        Entry::Dir => (name, Entry::Dir),
                    })
                    .collect();
                (path, Dir { durable: entries.clone(), entries, pending: Vec::new() })
            })
            .collect();
        State { dirs, locks: HashSet::new(), next_inode: self.next_inode }
    }
}

/// New inodes (by old inode id) holding what survives of each file reachable from `surviving`.
fn crash_inodes(
    surviving: &BTreeMap<PathBuf, BTreeMap<String, Entry>>,
    mode: CrashMode,
    rng: &mut Rng,
) -> BTreeMap<u64, Arc<Inode>> {
    let mut reachable = BTreeMap::new();
    for entries in surviving.values() {
        for entry in entries.values() {
            if let Entry::File(inode) = entry {
                reachable.insert(inode.id, inode.clone());
            }
        }
    }
    reachable
        .into_iter()
        .map(|(id, inode)| {
            let data = inode.content.lock().after_crash(mode, rng);
            (id, Arc::new(Inode::new(id, data)))
        })
        .collect()
}

/// `durable` with the directory operations `ops` applied in order.
fn replay(durable: &BTreeMap<String, Entry>, ops: &[DirOp]) -> BTreeMap<String, Entry> {
    let mut entries = durable.clone();
    for op in ops {
        op.apply_to(&mut entries);
    }
    entries
}

/// A directory: its entries now, its entries on disk, and what happened in between.
#[derive(Default)]
struct Dir {
    entries: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
    /// Operations since the last `sync_dir`, oldest first.
    pending: Vec<DirOp>,
}

impl Dir {
    /// Performs `op` now and remembers it as not yet durable.
    fn apply(&mut self, op: DirOp) {
        op.apply_to(&mut self.entries);
        self.pending.push(op);
    }
}

/// A directory entry.
#[derive(Clone)]
enum Entry {
    File(Arc<Inode>),
    Dir,
}

/// One directory operation, replayable on any entry map that had the same history.
enum DirOp {
    /// Create a file or directory, or link a file renamed in from another directory.
    Insert(String, Entry),
    Remove(String),
    /// A rename within one directory: a single, atomic journal entry.
    Rename(String, String),
}

impl DirOp {
    fn apply_to(&self, entries: &mut BTreeMap<String, Entry>) {
        match self {
            DirOp::Insert(name, entry) => {
                entries.insert(name.clone(), entry.clone());
            }
            DirOp::Remove(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to) => {
                if let Some(entry) = entries.remove(from) {
                    entries.insert(to.clone(), entry);
                }
            }
        }
    }
}

/// A file's identity and content; lives as long as any entry, handle or mapping refers to it.
struct Inode {
    id: u64,
    content: Mutex<Content>,
    /// Live mappings of it (for the Windows rules).
    mappings: AtomicU64,
}

impl Inode {
    /// An inode whose content is all durable.
    fn new(id: u64, data: Vec<u8>) -> Self {
        let content = Mutex::new(Content { durable: data.clone(), data, pending: Vec::new(), lost: false });
        Inode { id, content, mappings: AtomicU64::new(0) }
    }

    fn is_mapped(&self) -> bool {
        self.mappings.load(Ordering::SeqCst) > 0
    }
}

/// What Windows answers when a mapped file is removed or renamed over (`ERROR_ACCESS_DENIED`).
fn mapped_refusal() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "the file is mapped (Windows rules)")
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inode").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A file's bytes as seen by the process and as on disk.
struct Content {
    /// What reads see.
    data: Vec<u8>,
    /// What survives a crash for sure.
    durable: Vec<u8>,
    /// Changes since the last sync (or the last failed sync, which dropped the older ones),
    /// oldest first; `durable` plus all of them is what the disk would hold if they all reached
    /// it. That is `data` unless `lost` is set.
    pending: Vec<Change>,
    /// A failed sync dropped unsynced changes: `data` shows bytes the disk will never hold.
    lost: bool,
}

/// One not-yet-durable change to a file.
enum Change {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

impl Change {
    fn apply_to(&self, data: &mut Vec<u8>) {
        match self {
            Change::Write { offset, bytes } => write_into(data, *offset, bytes),
            Change::SetLen(len) => data.resize(*len, 0),
        }
    }
}

impl Content {
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        write_into(&mut self.data, offset, bytes);
        self.pending.push(Change::Write { offset, bytes: bytes.to_vec() });
    }

    fn set_len(&mut self, len: usize) {
        self.data.resize(len, 0);
        self.pending.push(Change::SetLen(len));
    }

    /// Makes every pending change durable; replays them rather than copying the whole file, so
    /// frequent syncs of a big file cost only what was written. Changes dropped by a failed sync
    /// are not pending any more, so they stay lost.
    fn sync(&mut self) {
        for change in self.pending.drain(..) {
            change.apply_to(&mut self.durable);
        }
        // A successful sync persists the file's length as it is now, whatever an earlier
        // failed sync dropped: a truncation whose sync failed is redone by the next sync that
        // succeeds, and bytes lost past the old end read as zeros (fuzz finding
        // `ops_model/truncation-lost-by-a-failed-sync`: without this, a lost truncation left
        // bytes past a sealed segment's last frame for ever).
        self.durable.resize(self.data.len(), 0);
        if self.lost {
            // Later writes may have covered everything that was lost.
            self.lost = self.durable != self.data;
        }
        debug_assert!(self.lost || self.durable == self.data);
    }

    /// A sync failed: the unsynced changes never reach the disk (the page cache was marked
    /// clean), though reads still show them.
    fn lose_unsynced(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.lost = self.durable != self.data;
        }
    }

    /// What the disk would hold if every pending change reached it.
    fn written(&self) -> Cow<'_, [u8]> {
        if !self.lost {
            return Cow::Borrowed(&self.data[..]);
        }
        let mut out = self.durable.clone();
        for change in &self.pending {
            change.apply_to(&mut out);
        }
        Cow::Owned(out)
    }

    /// What the disk holds after a crash in `mode`.
    fn after_crash(&self, mode: CrashMode, rng: &mut Rng) -> Vec<u8> {
        match mode {
            CrashMode::Nothing => self.durable.clone(),
            CrashMode::Everything => self.written().into_owned(),
            CrashMode::Prefix => self.prefix_crash(rng),
            CrashMode::Sectors512 | CrashMode::Sectors4096 => {
                self.sector_crash(mode.sector_size().expect("a sector mode"), rng)
            }
        }
    }

    /// The durable bytes plus a random prefix of the pending changes, the last write maybe torn.
    fn prefix_crash(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = self.durable.clone();
        let kept = rng.upto(self.pending.len());
        for (i, change) in self.pending[..kept].iter().enumerate() {
            match change {
                Change::Write { offset, bytes } if i + 1 == kept => {
                    let cut = rng.upto(bytes.len());
                    write_into(&mut out, *offset, &bytes[..cut]);
                }
                _ => change.apply_to(&mut out),
            }
        }
        out
    }

    /// The durable bytes with each sector touched by a pending write independently replaced
    /// by its current content or not. Unsynced length changes are lost, except that a new
    /// sector past the durable end extends the file.
    fn sector_crash(&self, sector: usize, rng: &mut Rng) -> Vec<u8> {
        let mut sectors = Vec::new();
        for change in &self.pending {
            if let Change::Write { offset, bytes } = change {
                let last = (offset + bytes.len() - 1) / sector;
                sectors.extend(offset / sector..=last);
            }
        }
        sectors.sort_unstable();
        sectors.dedup();
        let written = self.written();
        let mut out = self.durable.clone();
        for s in sectors {
            let start = s * sector;
            let end = (start + sector).min(written.len());
            if rng.coin() && start < end {
                write_into(&mut out, start, &written[start..end]);
            }
        }
        out
    }
}

/// Writes `bytes` at `offset`, zero-filling any hole. An empty write never extends.
fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

/// An open file of a [`SimFs`].
#[derive(Debug)]
struct SimFile {
    shared: Arc<Shared>,
    inode: Arc<Inode>,
    /// The normalised path it was opened with, for fault matching.
    path: PathBuf,
    /// The crash generation it belongs to.
    generation: u64,
    writable: bool,
}

impl SimFile {
    fn begin(&self, op: OpKind) -> io::Result<Option<u64>> {
        self.shared.begin(op, &[&self.path], Some(self.generation)).map_err(io::Error::from)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"))
        }
    }
}

impl VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.begin(OpKind::Read)?;
        let content = self.inode.content.lock();
        let start = to_usize(offset)?;
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| content.data.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let short = self.begin(OpKind::Write)?;
        self.check_writable()?;
        let offset = to_usize(offset)?;
        offset.checked_add(buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut content = self.inode.content.lock();
        match short {
            None => {
                content.write(offset, buf);
                Ok(())
            }
            Some(random) => {
                // A strict prefix: the disk filled up before the last byte.
                let cut = usize::try_from(random % (buf.len() as u64).max(1)).expect("below buf.len()");
                content.write(offset, &buf[..cut]);
                Err(no_space())
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        match self.shared.begin(OpKind::Sync, &[&self.path], Some(self.generation)) {
            Ok(_) => {
                self.inode.content.lock().sync();
                Ok(())
            }
            Err(refused) => {
                if refused.by_fault {
                    self.inode.content.lock().lose_unsynced();
                }
                Err(refused.error)
            }
        }
    }

    fn len(&self) -> io::Result<u64> {
        self.begin(OpKind::Len)?;
        Ok(self.inode.content.lock().data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.begin(OpKind::SetLen)?;
        self.check_writable()?;
        let len = to_usize(len)?;
        let mut content = self.inode.content.lock();
        if self.shared.windows && self.inode.is_mapped() && len < content.data.len() {
            // As `io/platform.rs` does where Windows refuses to cut a mapped file.
            let zeros = vec![0u8; content.data.len() - len];
            content.write(len, &zeros);
        } else {
            content.set_len(len);
        }
        Ok(())
    }

    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        self.begin(OpKind::Map)?;
        if self.shared.windows {
            // As `io/platform.rs` does: Windows cannot map past the end of a file.
            let mut content = self.inode.content.lock();
            if (content.data.len() as u64) < len {
                self.check_writable()?;
                content.set_len(to_usize(len)?);
            }
        }
        self.inode.mappings.fetch_add(1, Ordering::SeqCst);
        let mapping =
            SimMapping { shared: self.shared.clone(), inode: self.inode.clone(), len, generation: self.generation };
        Ok(Arc::new(mapping))
    }
}

/// A mapping of a [`SimFile`]: reads copy the inode's current bytes, so later writes show.
#[derive(Debug)]
struct SimMapping {
    shared: Arc<Shared>,
    inode: Arc<Inode>,
    len: u64,
    generation: u64,
}

impl Drop for SimMapping {
    fn drop(&mut self) {
        self.inode.mappings.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Mapping for SimMapping {
    /// Panics on a range inside the mapping that runs past the file's current end, where a real
    /// mapping would raise `SIGBUS`.
    fn read(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        if self.shared.generation.load(Ordering::SeqCst) != self.generation {
            return None;
        }
        let end = offset.checked_add(len as u64)?;
        if end > self.len {
            return None;
        }
        let content = self.inode.content.lock();
        let file_len = content.data.len() as u64;
        assert!(
            end <= file_len,
            "read of mapped bytes {offset}..{end} past the end of the file ({file_len} bytes): a real mapping of \
             {} bytes would fault (SIGBUS) here",
            self.len
        );
        let bytes = &content.data[usize::try_from(offset).ok()?..usize::try_from(end).ok()?];
        Some(Cow::Owned(bytes.to_vec()))
    }
}

/// What a [`SimFs`] lock guard holds; releases the lock on drop unless a crash already did.
struct SimLock {
    shared: Arc<Shared>,
    path: PathBuf,
    generation: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        // Checked under the state lock, which a crash holds while it bumps the generation, so
        // a stale guard can never release a lock taken after the crash.
        if self.shared.generation.load(Ordering::SeqCst) == self.generation {
            state.locks.remove(&self.path);
        }
    }
}

/// A small deterministic PRNG (splitmix64): good enough to pick crash states, and the same on
/// every platform for a given seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (0 if `n` is 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform enough in `0..=n`.
    fn upto(&mut self, n: usize) -> usize {
        let pick = self.below(n as u64 + 1);
        usize::try_from(pick).expect("at most n, which is a usize")
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// `path` with `.` dropped and `..` resolved lexically, so equal paths compare equal.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The last component of a normalised path, as a directory entry name.
fn path_name(path: &Path) -> String {
    normalize(path).components().next_back().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default()
}

/// The normalised parent directory and entry name of a file path.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path);
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "not a file path");
    let parent = path.parent().ok_or_else(invalid)?.to_path_buf();
    let name = path.file_name().ok_or_else(invalid)?.to_str().ok_or_else(invalid)?.to_owned();
    Ok((parent, name))
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

/// An `EIO` error.
fn eio(why: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(EIO);
    io::Error::new(os.kind(), format!("{why}: {os}"))
}

/// An `ENOSPC` error, of kind `StorageFull` on every platform.
fn no_space() -> io::Error {
    let os = io::Error::from_raw_os_error(ENOSPC);
    if os.kind() == io::ErrorKind::StorageFull {
        os
    } else {
        io::Error::new(io::ErrorKind::StorageFull, "no space left on device (simulated)")
    }
}

/// The error of every operation on a handle from before a crash.
fn dead_handle() -> io::Error {
    io::Error::other("simulated handle is dead: the file system crashed after it was made")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/db";

    fn setup() -> Arc<SimFs> {
        let fs = SimFs::new();
        fs.create_dir_all_durable(Path::new(DIR));
        fs
    }

    fn p(name: &str) -> PathBuf {
        Path::new(DIR).join(name)
    }

    /// Creates `name` with `bytes`, entry durable and content synced.
    fn durable_file(fs: &SimFs, name: &str, bytes: &[u8]) -> Box<dyn VfsFile> {
        let f = fs.open(&p(name), OpenMode::CreateNew).unwrap();
        f.write_at(bytes, 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        f
    }

    #[test]
    fn nothing_loses_unsynced_writes_everything_keeps_them() {
        for mode in [CrashMode::Nothing, CrashMode::Everything] {
            let fs = setup();
            let f = durable_file(&fs, "a", b"hello");
            f.write_at(b" world", 5).unwrap();
            fs.crash(mode, 1);
            let want: &[u8] = if mode == CrashMode::Nothing { b"hello" } else { b"hello world" };
            assert_eq!(fs.read_file(&p("a")).unwrap(), want, "{mode:?}");
        }
    }

    #[test]
    fn synced_write_survives_every_mode_and_seed() {
        for mode in CrashMode::ALL {
            for seed in 0..50 {
                let fs = setup();
                let f = durable_file(&fs, "a", &[7; 3000]);
                f.write_at(&[9; 5000], 1000).unwrap();
                f.set_len(100).unwrap();
                fs.crash(mode, seed);
                let got = fs.read_file(&p("a")).unwrap();
                assert!(got.len() >= 100, "{mode:?} {seed}");
                assert!(got[..100].iter().all(|&b| b == 7), "{mode:?} {seed}");
            }
        }
    }

    #[test]
    fn prefix_mode_keeps_an_ordered_prefix() {
        let mut seen = HashSet::new();
        for seed in 0..200 {
            let fs = setup();
            let f = durable_file(&fs, "a", b"");
            for i in 0..4u8 {
                f.write_at(&[i + 1; 10], u64::from(i) * 10).unwrap();
            }
            fs.crash(CrashMode::Prefix, seed);
            let got = fs.read_file(&p("a")).unwrap();
            // Bytes are written in order, so what survived is a prefix of the full content.
            let full: Vec<u8> = (0..4u8).flat_map(|i| [i + 1; 10]).collect();
            assert_eq!(got[..], full[..got.len()], "seed {seed}");
            seen.insert(got.len());
        }
        assert!(seen.len() > 10, "prefix lengths should vary: {seen:?}");
    }

    #[test]
    fn sector_mode_tears_at_sector_boundaries() {
        let mut mixed = false;
        for seed in 0..50 {
            let fs = setup();
            let f = durable_file(&fs, "a", &[1; 2048]);
            f.write_at(&[2; 2048], 0).unwrap();
            fs.crash(CrashMode::Sectors512, seed);
            let got = fs.read_file(&p("a")).unwrap();
            assert_eq!(got.len(), 2048);
            for sector in got.chunks(512) {
                assert!(sector.iter().all(|&b| b == sector[0]), "torn inside a sector");
            }
            mixed |= got.chunks(512).any(|s| s[0] == 1) && got.chunks(512).any(|s| s[0] == 2);
        }
        assert!(mixed);
    }

    #[test]
    fn sector_mode_extends_with_zero_fill() {
        for seed in 0..20 {
            let fs = setup();
            let f = durable_file(&fs, "a", b"");
            f.write_at(&[5; 100], 5000).unwrap();
            fs.crash(CrashMode::Sectors4096, seed);
            let got = fs.read_file(&p("a")).unwrap();
            assert!(got.is_empty() || (got.len() == 5100 && got[..4096].iter().all(|&b| b == 0)), "{seed}");
        }
    }

    #[test]
    fn unsynced_create_is_lost_unless_dir_synced() {
        let fs = setup();
        let f = fs.open(&p("new"), OpenMode::CreateNew).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("new")), None);

        let f = fs.open(&p("new"), OpenMode::CreateNew).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("new")).unwrap(), b"x");
    }

    #[test]
    fn unsynced_directory_is_lost_with_its_files() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/a/b")).unwrap();
        let f = fs.open(Path::new("/a/b/f"), OpenMode::CreateNew).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(Path::new("/a/b")).unwrap();
        fs.crash(CrashMode::Nothing, 0);
        assert!(fs.list_all().is_empty());
        assert_eq!(fs.list(Path::new("/a")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn rename_is_atomic_and_durable_only_after_sync_dir() {
        let fs = setup();
        durable_file(&fs, "old", b"1");
        let tmp = durable_file(&fs, "tmp", b"2");
        drop(tmp);
        fs.rename(&p("tmp"), &p("old")).unwrap();
        assert_eq!(fs.read_file(&p("old")).unwrap(), b"2");
        assert_eq!(fs.read_file(&p("tmp")), None);
        let mut outcomes = HashSet::new();
        for seed in 0..20 {
            let fs2 = setup();
            durable_file(&fs2, "old", b"1");
            durable_file(&fs2, "tmp", b"2");
            fs2.rename(&p("tmp"), &p("old")).unwrap();
            fs2.crash(CrashMode::Prefix, seed);
            // Either the rename happened entirely or not at all.
            let state = (fs2.read_file(&p("old")), fs2.read_file(&p("tmp")));
            assert!(
                state == (Some(b"1".to_vec()), Some(b"2".to_vec())) || state == (Some(b"2".to_vec()), None),
                "{state:?}"
            );
            outcomes.insert(state);
        }
        assert_eq!(outcomes.len(), 2);
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("old")).unwrap(), b"1");

        fs.rename(&p("tmp"), &p("old")).unwrap();
        fs.sync_dir(Path::new(DIR)).unwrap();
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("old")).unwrap(), b"2");
        assert_eq!(fs.list(Path::new(DIR)).unwrap(), vec!["old".to_string()]);
    }

    #[test]
    fn removed_file_handle_and_mapping_still_work() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        let map = f.map(10).unwrap();
        fs.remove_file(&p("a")).unwrap();
        assert_eq!(fs.read_file(&p("a")), None);
        let mut buf = [0; 3];
        f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abc");
        f.write_at(b"def", 3).unwrap();
        assert_eq!(map.read(0, 6).unwrap().as_ref(), b"abcdef");
        assert!(map.read(8, 3).is_none(), "past the end of the mapping");
        // The removal is not durable yet.
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
    }

    #[test]
    fn read_past_end_is_unexpected_eof() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        let mut buf = [0; 4];
        assert_eq!(f.read_at(&mut buf, 0).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fs.open(&p("a"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs.open(&p("zz"), OpenMode::ReadOnly).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(fs.open(Path::new("/nope/a"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::NotFound);
        let ro = fs.open(&p("a"), OpenMode::ReadOnly).unwrap();
        assert!(ro.write_at(b"x", 0).is_err());
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop_and_crash() {
        let fs = setup();
        let guard = fs.lock(&p("LOCK")).unwrap();
        assert_eq!(fs.lock(&p("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(guard);
        let guard = fs.lock(&p("LOCK")).unwrap();
        fs.crash(CrashMode::Everything, 0);
        let again = fs.lock(&p("LOCK")).unwrap();
        // The stale guard must not release the new holder's lock.
        drop(guard);
        assert_eq!(fs.lock(&p("LOCK")).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(again);
        fs.lock(&p("LOCK")).unwrap();
    }

    #[test]
    fn nth_fault_fires_exactly_once_on_the_right_op() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        let start = fs.op_count();
        fs.inject(Fault::nth(2, FaultKind::Eio));
        let mut buf = [0; 1];
        f.read_at(&mut buf, 0).unwrap();
        f.len().unwrap();
        assert!(f.read_at(&mut buf, 0).is_err(), "op 2 fails");
        for _ in 0..10 {
            f.read_at(&mut buf, 0).unwrap();
        }
        assert_eq!(fs.op_count(), start + 13);
        // Mapping reads are not counted.
        let map = f.map(3).unwrap();
        map.read(0, 3).unwrap();
        assert_eq!(fs.op_count(), start + 14);
    }

    #[test]
    fn matching_fault_respects_times_and_path() {
        let fs = setup();
        fs.inject(Fault::matching(OpKind::Create, "seg", FaultKind::NoSpace).times(2));
        assert!(fs.open(&p("other"), OpenMode::CreateNew).is_ok());
        for _ in 0..2 {
            assert_eq!(fs.open(&p("seg1"), OpenMode::CreateNew).unwrap_err().kind(), io::ErrorKind::StorageFull);
        }
        assert!(fs.open(&p("seg1"), OpenMode::CreateNew).is_ok());
    }

    #[test]
    fn halt_makes_later_ops_fail_until_crash() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        fs.inject(Fault::matching(OpKind::Write, "a", FaultKind::Eio).halt());
        assert!(f.write_at(b"x", 0).is_err());
        assert!(fs.is_halted());
        assert!(f.sync_data().is_err());
        assert!(fs.list(Path::new(DIR)).is_err());
        fs.clear_faults();
        fs.crash(CrashMode::Everything, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc", "the failed write had no effect");
        let f = fs.open(&p("a"), OpenMode::ReadWrite).unwrap();
        f.write_at(b"x", 0).unwrap();

        fs.halt();
        assert!(f.len().is_err());
    }

    #[test]
    fn sync_fails_keeps_data_non_durable() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        f.write_at(b"def", 3).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
        assert!(f.sync_data().is_err());
        fs.inject(Fault::matching(OpKind::SyncDir, "", FaultKind::SyncFails).times(1));
        let g = fs.open(&p("b"), OpenMode::CreateNew).unwrap();
        g.sync_data().unwrap();
        assert!(fs.sync_dir(Path::new(DIR)).is_err());
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
        assert_eq!(fs.read_file(&p("b")), None);
    }

    /// Linux may drop the dirty pages of a failed fsync: a retried sync that succeeds must not
    /// make the lost bytes durable (it does persist the file's current length: the lost bytes
    /// read as zeros).
    #[test]
    fn a_failed_sync_loses_the_unsynced_writes_even_after_a_later_successful_sync() {
        for mode in CrashMode::ALL {
            let fs = setup();
            let f = durable_file(&fs, "a", b"abc");
            f.write_at(b"def", 3).unwrap();
            f.set_len(10).unwrap();
            fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
            assert!(f.sync_data().is_err());
            f.sync_data().unwrap();
            let mut buf = [0; 6];
            f.read_at(&mut buf, 0).unwrap();
            assert_eq!(&buf, b"abcdef", "{mode:?}: the page cache still shows the lost bytes");
            fs.crash(mode, 3);
            assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc\0\0\0\0\0\0\0", "{mode:?}");
        }
    }

    #[test]
    fn an_eio_fault_on_a_sync_loses_the_unsynced_writes_too() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        f.write_at(b"def", 3).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::Eio).times(1));
        assert!(f.sync_data().is_err());
        fs.crash(CrashMode::Everything, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abc");
    }

    #[test]
    fn writes_after_a_failed_sync_become_durable_around_the_lost_ones() {
        for mode in [CrashMode::Nothing, CrashMode::Everything] {
            let fs = setup();
            let f = durable_file(&fs, "a", b"0123456789");
            f.write_at(b"xx", 2).unwrap();
            fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
            assert!(f.sync_data().is_err());
            f.write_at(b"yy", 6).unwrap();
            f.write_at(b"zz", 12).unwrap();
            f.sync_data().unwrap();
            fs.crash(mode, 0);
            assert_eq!(fs.read_file(&p("a")).unwrap(), b"012345yy89\0\0zz", "{mode:?}");
        }
    }

    /// Fuzz finding `ops_model/truncation-lost-by-a-failed-sync`: a truncation whose sync failed
    /// stayed undone for ever in the simulation, although a later successful sync persists the
    /// file's current length (as fdatasync does): bytes past a sealed segment's last frame then
    /// came back at a crash and made the store unopenable.
    #[test]
    fn regression_a_sync_after_a_failed_one_persists_the_current_length() {
        for mode in [CrashMode::Nothing, CrashMode::Everything] {
            let fs = setup();
            let f = durable_file(&fs, "a", b"0123456789");
            f.set_len(4).unwrap();
            fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
            assert!(f.sync_data().is_err());
            f.write_at(b"ab", 4).unwrap();
            f.sync_data().unwrap();
            fs.crash(mode, 0);
            assert_eq!(fs.read_file(&p("a")).unwrap(), b"0123ab", "{mode:?}");
        }
    }

    #[test]
    fn the_lost_writes_of_a_failed_sync_never_survive_a_sector_or_prefix_crash() {
        for mode in [CrashMode::Prefix, CrashMode::Sectors512, CrashMode::Sectors4096] {
            for seed in 0..20 {
                let fs = setup();
                let f = durable_file(&fs, "a", &[1; 1024]);
                f.write_at(&[2; 512], 0).unwrap();
                fs.inject(Fault::matching(OpKind::Sync, "", FaultKind::SyncFails).times(1));
                assert!(f.sync_data().is_err());
                f.write_at(&[3; 512], 512).unwrap();
                fs.crash(mode, seed);
                let got = fs.read_file(&p("a")).unwrap();
                assert!(got[..512].iter().all(|&b| b == 1), "{mode:?} {seed}: a lost write survived");
            }
        }
    }

    #[test]
    fn a_sync_refused_by_a_halt_drops_nothing() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        f.write_at(b"def", 3).unwrap();
        fs.halt();
        assert!(f.sync_data().is_err());
        fs.crash(CrashMode::Everything, 0);
        assert_eq!(fs.read_file(&p("a")).unwrap(), b"abcdef");
    }

    #[test]
    #[should_panic(expected = "past the end of the file")]
    fn a_mapping_read_past_the_end_of_the_file_panics_like_sigbus() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        let map = f.map(10).unwrap();
        let _ = map.read(2, 2);
    }

    #[test]
    fn short_write_writes_a_strict_prefix() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"");
        for seed in 0..20 {
            fs.reseed_faults(seed);
            f.set_len(0).unwrap();
            fs.inject(Fault::nth(0, FaultKind::ShortWrite));
            let err = f.write_at(&[1; 100], 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::StorageFull);
            let len = fs.file_len(&p("a")).unwrap();
            assert!(len < 100);
            assert!(fs.read_file(&p("a")).unwrap().iter().all(|&b| b == 1));
        }
    }

    #[test]
    fn old_handles_are_dead_after_crash() {
        let fs = setup();
        let f = durable_file(&fs, "a", b"abc");
        let map = f.map(3).unwrap();
        fs.crash(CrashMode::Everything, 0);
        let mut buf = [0; 3];
        assert!(f.read_at(&mut buf, 0).is_err());
        assert!(f.write_at(b"x", 0).is_err());
        assert!(f.sync_data().is_err());
        assert!(f.len().is_err());
        assert!(map.read(0, 3).is_none());
        let g = fs.open(&p("a"), OpenMode::ReadOnly).unwrap();
        g.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abc");
    }

    #[test]
    fn crash_is_deterministic_per_seed() {
        let run = |seed| {
            let fs = setup();
            for name in ["a", "b", "c"] {
                let f = fs.open(&p(name), OpenMode::CreateNew).unwrap();
                for i in 0..20u8 {
                    f.write_at(&[i; 700], u64::from(i) * 300).unwrap();
                }
            }
            fs.crash(CrashMode::Prefix, seed);
            fs.list_all().into_iter().map(|path| (fs.read_file(&path).unwrap(), path)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
    }

    fn assert_send_sync_debug<T: Send + Sync + fmt::Debug>() {}

    #[test]
    fn helpers_and_debug() {
        let fs = SimFs::new();
        fs.write_file_durable(Path::new("rel/x"), b"12");
        fs.write_file_durable(Path::new("./rel/x"), b"345");
        fs.crash(CrashMode::Nothing, 0);
        assert_eq!(fs.list_all(), vec![PathBuf::from("rel/x")]);
        assert_eq!(fs.file_len(Path::new("rel/x")), Some(3));
        assert!(format!("{fs:?}").contains("SimFs"));
        assert_send_sync_debug::<SimFs>();
    }
}
