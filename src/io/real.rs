//! The real file system: `std::fs` for files and directories, `memmap2` for the read path.
//! What differs between Unix and Windows is in `platform.rs`, nowhere else.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use super::platform;
use super::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Vfs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn VfsFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::ReadOnly => options.read(true),
        };
        Ok(Box::new(RealFile { file: options.open(path)? }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        platform::sync_dir(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(LockGuard::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl VfsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        platform::read_exact_at(&self.file, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        platform::write_all_at(&self.file, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        platform::set_len(&self.file, len)
    }

    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("mapping larger than the address space"))?;
        if len == 0 {
            return Ok(Arc::new(RealMapping { map: None }));
        }
        platform::prepare_map(&self.file, len as u64)?;
        // SAFETY: a file mapping is sound if (1) no mapped byte is read while it is being modified
        // and (2) no access touches a page wholly past the end of the file (that raises SIGBUS).
        // Other processes: the directory is held under an exclusive lock (`Vfs::lock`), so no
        // cooperating process writes or truncates a mapped file. This process keeps both rules
        // (DESIGN.md, "Read path"); each step can be checked where it is named:
        // * Bytes are read only below an end that a successful `write_at` of those bytes
        //   established: index entries are published (`log/writer.rs`, `lead` then `publish`) and
        //   `Segment::data_end` is advanced only after the frame's `write_at` returned `Ok`;
        //   compaction, hints and backup read below `data_end` or the writer's `tail`; recovery
        //   reads are bounded by the length it just read from the file (`engine/recovery.rs`,
        //   `open_file`, `replay`, `ends_at`). So every byte read lies below the file's current
        //   length. In write-back mode (`SyncMode::Every`) those bytes may not be synced yet; only
        //   the length matters here, not durability.
        // * The writer writes only at or past the tail, above every published byte: frames at
        //   `ActiveLog::tail`, zero-filled growth at `ActiveLog::file_len` (`ensure_space`), and a
        //   frame whose write failed (never published) is overwritten by the next one. Compaction
        //   maps an output only once it is written (`rewrite.rs`, `seal_current`); hint files and
        //   the manifest are replaced by rename, never rewritten in place.
        // * Nothing shrinks a mapped file below a published byte: a roll-over cuts an unclean tail
        //   to `log.tail` (`writer.rs`, `roll`), which is at or past every published record;
        //   recovery cuts a torn tail where the last replayed frame ends (`engine/recovery.rs`,
        //   `load_active`); removing a file leaves its mapping intact.
        // * A mapping may be longer than its file (the active segment is mapped at the next power
        //   of two of what it holds, `log::map_len`); the rules above keep reads below the file's
        //   end, and a read past the mapping's own length returns `None` (`RealMapping::read`). On
        //   Windows the file was just extended to the mapping's length (`platform::prepare_map`),
        //   so there it is not. A segment keeps every mapping it had until it is dropped
        //   (`Segment::map_through`), so bytes borrowed from an older one stay valid.
        let map = unsafe { MmapOptions::new().len(len).map(&self.file)? };
        Ok(Arc::new(RealMapping { map: Some(map) }))
    }
}

#[derive(Debug)]
struct RealMapping {
    map: Option<Mmap>,
}

impl Mapping for RealMapping {
    fn read(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let bytes: &[u8] = self.map.as_deref().unwrap_or(&[]);
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        bytes.get(start..end).map(Cow::Borrowed)
    }

    fn bytes(&self) -> Option<&[u8]> {
        Some(self.map.as_deref().unwrap_or(&[]))
    }
}
