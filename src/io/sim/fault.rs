//! The fault model's types: which operations a [`Fault`] hits ([`FaultWhen`], [`OpKind`]), what
//! it does ([`FaultKind`], [`AfterFault`]), the armed faults and operation count of a
//! [`SimFs`] ([`FaultState`]), and the errors a refused operation returns.

use std::io;
use std::path::Path;

#[cfg(doc)]
use super::{Mapping, OpenMode, SimFs, Vfs, VfsFile};
use crate::io::rng::Rng;

/// `EIO` on Linux.
const EIO: i32 = 5;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

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

/// Operation counting and fault injection state.
pub(super) struct FaultState {
    pub(super) op_count: u64,
    pub(super) halted: bool,
    pub(super) armed: Vec<Armed>,
    /// Picks short-write lengths.
    pub(super) rng: Rng,
}

impl FaultState {
    pub(super) fn new() -> Self {
        FaultState { op_count: 0, halted: false, armed: Vec::new(), rng: Rng::new(0x5EED) }
    }

    /// The first armed fault hitting operation number `index`, disarming it if used up. Also
    /// drops `Nth` faults whose operation went by without them (it was halted or dead).
    pub(super) fn fire(&mut self, index: u64, op: OpKind, paths: &[&Path]) -> Option<Armed> {
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
pub(super) struct Armed {
    pub(super) trigger: Trigger,
    pub(super) what: FaultKind,
    pub(super) then: AfterFault,
}

/// When an [`Armed`] fault fires; `Nth` is turned into an absolute operation number.
#[derive(Clone)]
pub(super) enum Trigger {
    At(u64),
    Matching { op: OpKind, path_contains: String, left: Option<u32> },
}

impl Trigger {
    pub(super) fn hits(&self, index: u64, op: OpKind, paths: &[&Path]) -> bool {
        match self {
            Trigger::At(at) => *at == index,
            Trigger::Matching { op: want, path_contains, left } => {
                *want == op && *left != Some(0) && paths.iter().any(|p| slashed(p).contains(path_contains.as_str()))
            }
        }
    }
}

/// An `EIO` error.
pub(super) fn eio(why: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(EIO);
    io::Error::new(os.kind(), format!("{why}: {os}"))
}

/// An `ENOSPC` error, of kind `StorageFull` on every platform.
pub(super) fn no_space() -> io::Error {
    let os = io::Error::from_raw_os_error(ENOSPC);
    if os.kind() == io::ErrorKind::StorageFull {
        os
    } else {
        io::Error::new(io::ErrorKind::StorageFull, "no space left on device (simulated)")
    }
}

/// The error of every operation on a handle from before a crash.
pub(super) fn dead_handle() -> io::Error {
    io::Error::other("simulated handle is dead: the file system crashed after it was made")
}
