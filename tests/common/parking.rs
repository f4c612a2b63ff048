//! A `Vfs` wrapper that parks the thread performing a chosen operation until the test releases
//! it, so that a race between the store's threads can be staged step by step, without sleeps.
//!
//! A [`Rule`] names an operation (a file sync, a directory sync, a create, a mapped read at an
//! offset), a substring of its path, optionally the name of the thread that must perform it, and
//! how many matching operations to let through first. The first operation that matches is held
//! before it reaches the wrapped file system; [`Gate::wait_parked`] waits (bounded) until that
//! has happened, and [`Gate::release`] lets it go on, fail, or panic.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ferrocask::testing::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};

/// An operation a rule can park.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkOp {
    /// `VfsFile::sync_data`.
    Sync,
    /// `Vfs::sync_dir`.
    SyncDir,
    /// `Vfs::open` with `OpenMode::CreateNew`.
    Create,
    /// `VfsFile::write_at`.
    Write,
    /// `Mapping::read` starting exactly at this offset.
    MapRead(u64),
}

/// Which operation to park.
#[derive(Clone, Debug)]
pub struct Rule {
    pub op: ParkOp,
    pub path_contains: String,
    /// Only operations performed by the thread of this name (`std::thread::Builder::name`).
    pub thread: Option<String>,
    /// Matching operations let through before the one that parks.
    pub skip: usize,
}

impl Rule {
    pub fn new(op: ParkOp, path_contains: &str) -> Rule {
        Rule { op, path_contains: path_contains.into(), thread: None, skip: 0 }
    }

    pub fn by_thread(mut self, name: &str) -> Rule {
        self.thread = Some(name.into());
        self
    }

    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
}

/// What a parked operation does once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Performs the operation on the wrapped file system.
    Proceed,
    /// Fails with this error kind without performing it (mapped reads proceed).
    Fail(io::ErrorKind),
    /// Panics in the thread that performs it.
    Panic,
}

struct Armed {
    rule: Rule,
    skip_left: usize,
    parked: bool,
    release: Option<Release>,
}

#[derive(Default)]
struct State {
    rules: Vec<Armed>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The wrapper; see the module doc.
pub struct ParkingVfs {
    inner: Arc<dyn Vfs>,
    shared: Arc<Shared>,
}

/// One armed rule.
pub struct Gate {
    shared: Arc<Shared>,
    id: usize,
}

/// How long a test waits for a thread to reach a parking point before it fails.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(30);

impl ParkingVfs {
    pub fn new(inner: Arc<dyn Vfs>) -> Arc<ParkingVfs> {
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), changed: Condvar::new() });
        Arc::new(ParkingVfs { inner, shared })
    }

    /// Arms `rule`; the returned gate controls the operation it parks.
    pub fn arm(&self, rule: Rule) -> Gate {
        let mut state = self.shared.state.lock().unwrap();
        let skip_left = rule.skip;
        state.rules.push(Armed { rule, skip_left, parked: false, release: None });
        Gate { shared: Arc::clone(&self.shared), id: state.rules.len() - 1 }
    }
}

impl Gate {
    /// Waits until an operation is parked at this gate; false after [`PARK_TIMEOUT`].
    pub fn wait_parked(&self) -> bool {
        self.wait_parked_for(PARK_TIMEOUT)
    }

    /// Waits at most `timeout` (zero: just looks) until an operation is parked at this gate.
    pub fn wait_parked_for(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        while !state.rules[self.id].parked {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        true
    }

    /// Lets the parked operation (or the next one to park here) go on as `how`.
    pub fn release(&self, how: Release) {
        self.shared.state.lock().unwrap().rules[self.id].release = Some(how);
        self.shared.changed.notify_all();
    }
}

impl Shared {
    /// Parks the calling thread if an armed rule matches; returns how to go on.
    fn check(&self, op: ParkOp, path: &Path) -> Release {
        let mut state = self.state.lock().unwrap();
        let name = std::thread::current().name().map(str::to_string);
        let path = path.to_string_lossy();
        let hit = state.rules.iter_mut().position(|armed| {
            let r = &armed.rule;
            let matches = !armed.parked
                && r.op == op
                && path.contains(&r.path_contains)
                && r.thread.as_ref().is_none_or(|t| name.as_ref() == Some(t));
            if matches && armed.skip_left > 0 {
                armed.skip_left -= 1;
                return false;
            }
            matches
        });
        let Some(id) = hit else { return Release::Proceed };
        state.rules[id].parked = true;
        self.changed.notify_all();
        loop {
            if let Some(how) = state.rules[id].release {
                return how;
            }
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Parks if needed, then runs `f` unless the release says otherwise.
    fn gate<T>(&self, op: ParkOp, path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        match self.check(op, path) {
            Release::Proceed => f(),
            Release::Fail(kind) => Err(io::Error::new(kind, format!("injected by the parking vfs at {op:?}"))),
            Release::Panic => panic!("injected panic at {op:?} on {}", path.display()),
        }
    }
}

impl fmt::Debug for ParkingVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkingVfs").finish_non_exhaustive()
    }
}

impl Vfs for ParkingVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let open = || self.inner.open(path, mode);
        let file = if mode == OpenMode::CreateNew { self.shared.gate(ParkOp::Create, path, open)? } else { open()? };
        Ok(Box::new(ParkingFile { inner: file, path: path.to_path_buf(), shared: Arc::clone(&self.shared) }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.shared.gate(ParkOp::SyncDir, dir, || self.inner.sync_dir(dir))
    }

    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        self.inner.lock(path)
    }
}

struct ParkingFile {
    inner: Box<dyn VfsFile>,
    path: PathBuf,
    shared: Arc<Shared>,
}

impl fmt::Debug for ParkingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParkingFile({})", self.path.display())
    }
}

impl VfsFile for ParkingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.shared.gate(ParkOp::Write, &self.path, || self.inner.write_at(buf, offset))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.shared.gate(ParkOp::Sync, &self.path, || self.inner.sync_data())
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        let inner = self.inner.map(len)?;
        Ok(Arc::new(ParkingMapping { inner, path: self.path.clone(), shared: Arc::clone(&self.shared) }))
    }
}

struct ParkingMapping {
    inner: Arc<dyn Mapping>,
    path: PathBuf,
    shared: Arc<Shared>,
}

impl fmt::Debug for ParkingMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParkingMapping({})", self.path.display())
    }
}

impl Mapping for ParkingMapping {
    fn read(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        if self.shared.check(ParkOp::MapRead(offset), &self.path) == Release::Panic {
            panic!("injected panic at a mapped read of {}", self.path.display());
        }
        self.inner.read(offset, len)
    }
}
