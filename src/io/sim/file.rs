//! The handles a [`SimFs`] gives out: open files ([`SimFile`]), mappings
//! ([`SimMapping`]) and lock guards ([`SimLock`]). Every one belongs to a crash generation and is
//! dead once a crash bumps it.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::content::Inode;
use super::fault::no_space;
#[cfg(doc)]
use super::SimFs;
use super::{Mapping, OpKind, Shared, VfsFile};

/// An open file of a [`SimFs`].
#[derive(Debug)]
pub(super) struct SimFile {
    pub(super) shared: Arc<Shared>,
    pub(super) inode: Arc<Inode>,
    /// The normalised path it was opened with, for fault matching.
    pub(super) path: PathBuf,
    /// The crash generation it belongs to.
    pub(super) generation: u64,
    pub(super) writable: bool,
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
pub(super) struct SimMapping {
    pub(super) shared: Arc<Shared>,
    pub(super) inode: Arc<Inode>,
    pub(super) len: u64,
    pub(super) generation: u64,
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
pub(super) struct SimLock {
    pub(super) shared: Arc<Shared>,
    pub(super) path: PathBuf,
    pub(super) generation: u64,
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

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}
