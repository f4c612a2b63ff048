//! The one door to the file system.
//!
//! Every file and directory operation the store performs goes through [`Vfs`] and [`VfsFile`]:
//! create, open, read, write, sync, rename, remove, truncate, lock, list and map. The real
//! implementation ([`RealFs`]) is a thin layer over `std` and `memmap2`; the simulated one
//! (`SimFs` in `sim/`, compiled only for tests and the `testing` feature) keeps written and
//! durable state apart so that tests can inject failures and simulate power loss at any
//! operation.
//!
//! Contracts are written on each method: an implementation must honour them exactly, because the
//! durability protocol (DESIGN.md) is argued in terms of them and nothing else.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

mod checked;
mod platform;
mod real;
pub(crate) mod rng;
#[cfg(any(test, feature = "testing"))]
pub mod sim;

pub(crate) use checked::{refused_cause, CheckedVfs, Latch};
pub use real::RealFs;

/// How [`Vfs::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new, empty file for reading and writing; fails with `AlreadyExists` if it exists.
    CreateNew,
    /// Open an existing file for reading and writing; fails with `NotFound` if missing.
    ReadWrite,
    /// Open an existing file for reading only; fails with `NotFound` if missing.
    ReadOnly,
}

/// A file system as the store sees it. Paths are absolute or relative to the process's working
/// directory, exactly as with `std::fs`.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates `path` and its missing parents. Not durable until [`Vfs::sync_dir`] of the parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Opens or creates a file. A created file's directory entry is durable only after
    /// [`Vfs::sync_dir`] of its directory; its contents only after [`VfsFile::sync_data`].
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>>;

    /// Lists the names (not paths) of the regular files directly inside `dir`, in no order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Atomically replaces `to` with `from`. Durable only after [`Vfs::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file. Open handles and mappings of it stay valid. Durable only after
    /// [`Vfs::sync_dir`]. On Windows a file that is mapped cannot be removed (the call fails), so
    /// the store removes a segment only once its last mapping is gone (`Segment`'s retirement).
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes every create, rename and remove done so far inside `dir` durable. On Windows the
    /// real file system does nothing here: NTFS journals those changes, and the next file sync
    /// commits the journal (`io/platform.rs`).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes an exclusive, advisory lock on the file at `path` (created if missing) without
    /// waiting. Returns an error of kind `WouldBlock` if any holder, in this process or another,
    /// has it. The lock is released when the returned guard is dropped or the process dies.
    fn lock(&self, path: &Path) -> io::Result<LockGuard>;
}

/// An open file. All methods take `&self`: positioned reads and writes need no cursor, so one
/// handle can be shared by a writer and readers.
#[allow(clippy::len_without_is_empty, reason = "a file's length is a syscall result, not a container size")]
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset`; `UnexpectedEof` if the file is shorter.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`, extending the file if needed. On error, any prefix of
    /// `buf` may have been written. Not durable until [`VfsFile::sync_data`] returns `Ok`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes every write and length change to this file so far durable (fdatasync). If it fails,
    /// nothing about what is durable may be assumed, and it must not be retried as if the data
    /// were safe.
    fn sync_data(&self) -> io::Result<()>;

    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Truncates or extends (with zeros) the file to `len` bytes. Durable after `sync_data`.
    /// Cutting a file that is mapped may instead overwrite the bytes from `len` to the end with
    /// zeros and keep the length (Windows cannot cut a mapped file): a caller may rely only on
    /// nothing but zeros following `len`, and takes the length from [`VfsFile::len`].
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Maps the first `len` bytes for reading. The mapping sees later writes to the file (shared
    /// page cache) and stays valid after the file is removed. `len` may exceed the file's current
    /// length; bytes past the end of the file must not be read until the file has grown over them.
    /// An implementation may extend the file with zeros to `len` to make the mapping possible
    /// (Windows cannot map past the end of a file; such a file needs write access): a caller
    /// takes the file's length from [`VfsFile::len`] after mapping.
    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>>;
}

/// A read-only view of a file's bytes, see [`VfsFile::map`].
pub trait Mapping: Send + Sync + fmt::Debug {
    /// The bytes `offset..offset + len`, borrowed where the implementation can (the real
    /// file system never copies). `None` if the range is outside the mapping's length.
    ///
    /// A range inside the mapping but past the file's current end must not be read: the real
    /// file system faults there (`SIGBUS`, killing the process) once the range reaches a page
    /// wholly past the end, and the simulation panics on any such range, so tests catch the bug.
    fn read(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>>;

    /// All the mapping's bytes as one slice, where the implementation holds them so (the real
    /// file system does; the default, and the simulation, say `None` and are read through
    /// [`Mapping::read`]): for a reader of many records of one file, which then indexes the
    /// slice instead of calling through the trait per record. The same rule holds for each byte
    /// of it: one past the file's current end must not be read.
    fn bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// Holds a directory lock from [`Vfs::lock`] until dropped.
pub struct LockGuard(#[allow(dead_code, reason = "held only for its Drop")] Box<dyn Any + Send + Sync>);

impl LockGuard {
    /// Wraps whatever releases the lock on drop.
    pub fn new(inner: impl Any + Send + Sync) -> Self {
        LockGuard(Box::new(inner))
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Creates `dir` and any missing parents, then syncs every ancestor, so that each new directory
/// entry is durable: any of them may hold one (this call's, or one that an earlier call which
/// crashed mid-way left unsynced). A failed sync is an error, wherever it is: a store or backup
/// in a tree whose entries may not be durable must not be reported as created (and for a store,
/// the poison latch counts any failed directory sync anyway). Store open and backup both create
/// their directory with it.
pub(crate) fn create_dir_durably(vfs: &dyn Vfs, dir: &Path) -> crate::Result<()> {
    vfs.create_dir_all(dir).map_err(|e| crate::Error::io("create directory", dir, e))?;
    // A relative path's last ancestor is "": the working directory, which holds the entry of
    // the path's first component and so needs its sync too (as ".").
    for ancestor in dir.ancestors().skip(1).map(|a| if a.as_os_str().is_empty() { Path::new(".") } else { a }) {
        vfs.sync_dir(ancestor).map_err(|e| crate::Error::io("sync directory", ancestor, e))?;
    }
    Ok(())
}
