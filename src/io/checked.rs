//! The poison latch: a [`Vfs`] wrapper that records the first failure after which the store can
//! no longer say what is durable, and refuses every later call that would change a file.
//!
//! Which failures trip it is decided here, by the operation that failed, never by the caller:
//!
//! | operation that failed                      | trips the latch? | why                                     |
//! |--------------------------------------------|------------------|-----------------------------------------|
//! | `VfsFile::sync_data`, any error (ENOSPC too) | yes            | the kernel may have dropped the dirty pages; a retry could "succeed" over lost data |
//! | `Vfs::sync_dir`, any error                 | yes              | the same, for directory entries          |
//! | `write_at` / `set_len`, ENOSPC or EDQUOT   | no               | nothing was promised about those bytes; the caller reports `DiskFull` and may retry once space is back |
//! | `write_at` / `set_len`, any other error    | yes              | the file's contents are no longer known  |
//! | anything else (open, create, rename, remove, read, map, list, lock) | no | no data was at stake |
//!
//! Once tripped, every mutating call (create, write, set_len, sync, sync_dir, rename, remove,
//! create_dir_all) fails with an error that [`crate::Error::io`] turns into
//! [`crate::Error::Poisoned`], naming the first failure. Reads, maps, lists and opens for reading
//! still work, so a poisoned store keeps serving reads. Only reopening (which runs recovery on a
//! fresh latch) clears it. This is the one mechanism behind "the first failed sync poisons the
//! store": the writer, compaction, hint writing and roll-over all go through it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};
use crate::error::is_disk_full;

/// The first failure that poisoned a store, shared by the store's checked file system and
/// every file opened through it.
#[derive(Debug, Default)]
pub(crate) struct Latch {
    tripped: AtomicBool,
    cause: Mutex<Option<String>>,
}

impl Latch {
    /// Why the store is poisoned, if it is.
    pub(crate) fn cause(&self) -> Option<String> {
        if !self.tripped.load(Ordering::Acquire) {
            return None;
        }
        self.cause.lock().clone()
    }

    /// Poisons the store with `cause` unless it already is; the first cause is kept.
    pub(crate) fn trip(&self, cause: String) {
        let mut slot = self.cause.lock();
        slot.get_or_insert(cause);
        self.tripped.store(true, Ordering::Release);
    }

    /// `Err` with a [`Refused`] payload if the latch is tripped.
    fn check(&self) -> io::Result<()> {
        match self.cause() {
            Some(cause) => Err(io::Error::other(Refused { cause })),
            None => Ok(()),
        }
    }

    /// Trips on `e` (the failure of `op` on `path`) and returns the error to report. A sync that
    /// failed for lack of space is re-kinded so that it cannot pass for a harmless `DiskFull`.
    fn tripped_by(&self, op: &str, path: &Path, e: io::Error) -> io::Error {
        self.trip(format!("{op} {}: {e}", path.display()));
        if is_disk_full(&e) {
            io::Error::other(format!("{op} failed: {e}"))
        } else {
            e
        }
    }

    /// Trips on a failed write or length change, unless the disk was merely full.
    fn on_write_error(&self, op: &str, path: &Path, e: io::Error) -> io::Error {
        if is_disk_full(&e) {
            e
        } else {
            self.tripped_by(op, path, e)
        }
    }
}

/// The payload of every error the latch returns once tripped.
#[derive(Debug)]
pub(crate) struct Refused {
    /// The first failure.
    pub(crate) cause: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused after an earlier failure ({})", self.cause)
    }
}

impl std::error::Error for Refused {}

/// The cause carried by an error the latch refused with, if `e` is one.
pub(crate) fn refused_cause(e: &io::Error) -> Option<&str> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Refused>()).map(|r| r.cause.as_str())
}

/// A [`Vfs`] whose every file shares one [`Latch`].
#[derive(Debug)]
pub(crate) struct CheckedVfs {
    inner: Arc<dyn Vfs>,
    latch: Arc<Latch>,
}

impl CheckedVfs {
    pub(crate) fn new(inner: Arc<dyn Vfs>) -> CheckedVfs {
        CheckedVfs { inner, latch: Arc::new(Latch::default()) }
    }

    pub(crate) fn latch(&self) -> Arc<Latch> {
        Arc::clone(&self.latch)
    }
}

impl Vfs for CheckedVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.latch.check()?;
        self.inner.create_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        if mode == OpenMode::CreateNew {
            self.latch.check()?;
        }
        let file = self.inner.open(path, mode)?;
        Ok(Box::new(CheckedFile { inner: file, path: path.to_path_buf(), latch: Arc::clone(&self.latch) }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.latch.check()?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.latch.check()?;
        self.inner.remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.latch.check()?;
        self.inner.sync_dir(dir).map_err(|e| self.latch.tripped_by("sync directory", dir, e))
    }

    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        self.inner.lock(path)
    }
}

#[derive(Debug)]
struct CheckedFile {
    inner: Box<dyn VfsFile>,
    path: PathBuf,
    latch: Arc<Latch>,
}

impl VfsFile for CheckedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.latch.check()?;
        self.inner.write_at(buf, offset).map_err(|e| self.latch.on_write_error("write", &self.path, e))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.latch.check()?;
        self.inner.sync_data().map_err(|e| self.latch.tripped_by("sync", &self.path, e))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.latch.check()?;
        self.inner.set_len(len).map_err(|e| self.latch.on_write_error("set length of", &self.path, e))
    }

    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        self.inner.map(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::{Fault, FaultKind, OpKind, SimFs};

    fn checked() -> (Arc<SimFs>, CheckedVfs) {
        let fs = SimFs::new();
        let vfs = CheckedVfs::new(fs.clone());
        (fs, vfs)
    }

    #[test]
    fn a_failed_sync_trips_the_latch_and_refuses_every_later_change() {
        let (fs, vfs) = checked();
        let file = vfs.open(Path::new("/f"), OpenMode::CreateNew).unwrap();
        file.write_at(b"abc", 0).unwrap();
        fs.inject(Fault::matching(OpKind::Sync, "/f", FaultKind::SyncFails).times(1));
        let first = file.sync_data().unwrap_err();
        assert!(refused_cause(&first).is_none(), "the first failure is reported as itself");
        assert!(vfs.latch.cause().is_some_and(|c| c.contains("/f")));
        for refused in [
            file.sync_data().unwrap_err(),
            file.write_at(b"x", 0).unwrap_err(),
            file.set_len(0).unwrap_err(),
            vfs.sync_dir(Path::new("/")).unwrap_err(),
            vfs.rename(Path::new("/f"), Path::new("/g")).unwrap_err(),
            vfs.remove_file(Path::new("/f")).unwrap_err(),
            vfs.open(Path::new("/h"), OpenMode::CreateNew).unwrap_err(),
        ] {
            assert!(refused_cause(&refused).is_some_and(|c| c.contains("/f")), "{refused}");
        }
        let mut buf = [0u8; 3];
        file.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"abc", "reads keep working");
    }

    #[test]
    fn a_sync_failing_for_lack_of_space_trips_and_is_not_reported_as_disk_full() {
        let (fs, vfs) = checked();
        fs.inject(Fault::matching(OpKind::SyncDir, "", FaultKind::NoSpace).times(1));
        let e = vfs.sync_dir(Path::new("/")).unwrap_err();
        assert!(!is_disk_full(&e), "{e:?}");
        assert!(vfs.latch.cause().is_some());
    }

    #[test]
    fn a_full_disk_on_a_write_does_not_trip_but_other_write_errors_do() {
        let (fs, vfs) = checked();
        let file = vfs.open(Path::new("/f"), OpenMode::CreateNew).unwrap();
        fs.inject(Fault::matching(OpKind::Write, "/f", FaultKind::NoSpace).times(1));
        assert!(is_disk_full(&file.write_at(b"abc", 0).unwrap_err()));
        assert!(vfs.latch.cause().is_none(), "ENOSPC on a write leaves the store writable");
        file.write_at(b"abc", 0).unwrap();
        fs.inject(Fault::matching(OpKind::Write, "/f", FaultKind::Eio).times(1));
        assert!(file.write_at(b"abc", 0).is_err());
        assert!(vfs.latch.cause().is_some(), "EIO on a write poisons");
    }
}
