//! The real file system: `std::fs` for files and directories, `memmap2` for the read path.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

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
        File::open(dir)?.sync_all()
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
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn map(&self, len: u64) -> io::Result<Arc<dyn Mapping>> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("mapping larger than the address space"))?;
        if len == 0 {
            return Ok(Arc::new(RealMapping { map: None }));
        }
        // SAFETY: the mapping is read-only and private to this store: the directory is held under
        // an exclusive lock (`Vfs::lock`), so no other cooperating process writes or truncates the
        // file while it is mapped. The store itself only appends past the bytes it reads and never
        // truncates a mapped file below a byte that an index entry points to; readers only read
        // ranges that lie below the file's durable end (DESIGN.md, "Read path"), so no access can
        // touch a page beyond the end of the file.
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
}
