//! The store directory: which files in it are the store's, its lock, and opening, creating and
//! atomically replacing the files in it. Shared by the store and `inspect`, so that both name the
//! same files, take the same lock and judge a segment file by the same rules.

use std::path::PathBuf;
use std::sync::Arc;

use crate::format::{
    decode_segment_header, encode_segment_header, SegmentHeader, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_ID_OFFSET,
};
use crate::io::{LockGuard, Mapping, OpenMode, Vfs, VfsFile};
use crate::log::{parse_file_name, segment_file_name, Segment, POOL_SUFFIX};
use crate::{Error, Result};

/// Name of the manifest file in the store directory.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the lock file that keeps a second `Store` (or `inspect`) out of a directory.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// What [`LogDir::write_file_atomic`] appends to a name while the file is being written.
const TMP_SUFFIX: &str = ".tmp";

/// The temporary file `LogDir::write_file_atomic` writes before renaming it to `name`.
pub(crate) fn temp_name(name: &str) -> String {
    format!("{name}{TMP_SUFFIX}")
}

/// The store directory and the file system it lives on.
#[derive(Clone, Debug)]
pub(crate) struct LogDir {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
}

impl LogDir {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Takes the directory's lock, without waiting: [`Error::Locked`] if a store (in this or
    /// another process) or an `inspect` holds it. Released when the guard is dropped.
    pub(crate) fn lock(&self) -> Result<LockGuard> {
        let path = self.path(LOCK_FILE);
        self.vfs.lock(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked { dir: self.dir.clone() },
            _ => Error::io("lock", &path, e),
        })
    }

    /// Syncs the store directory. A failure poisons the store whatever its cause (the latch in
    /// `io/checked.rs` decides, and never lets it pass for a harmless `DiskFull`).
    pub(crate) fn sync_dir(&self) -> Result<()> {
        self.vfs.sync_dir(&self.dir).map_err(|e| Error::io("sync directory", &self.dir, e))
    }

    /// Writes `bytes` to a new file `name` durably: to `name.tmp`, synced, renamed, directory
    /// synced. Either the old file or the new one survives any crash.
    pub(crate) fn write_file_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.path(&temp_name(name));
        let target = self.path(name);
        match self.vfs.remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &tmp, e)),
        }
        let file = self.vfs.open(&tmp, OpenMode::CreateNew).map_err(|e| Error::io("create", &tmp, e))?;
        file.write_at(bytes, 0).map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_data().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(file);
        self.vfs.rename(&tmp, &target).map_err(|e| Error::io("rename", &target, e))?;
        self.sync_dir()
    }

    /// Opens an existing file for reading, with its length; `None` if it does not exist.
    fn open_existing(&self, name: &str) -> Result<Option<OpenFile>> {
        let path = self.path(name);
        let file = match self.vfs.open(&path, OpenMode::ReadOnly) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let len = usize::try_from(len).map_err(|_| Error::io("read", &path, too_big()))?;
        Ok(Some((path, file, len)))
    }

    /// Reads a whole file, `None` if it does not exist.
    pub(crate) fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some((path, file, len)) = self.open_existing(name)? else { return Ok(None) };
        let mut buf = vec![0u8; len];
        file.read_at(&mut buf, 0).map_err(|e| Error::io("read", &path, e))?;
        Ok(Some(buf))
    }

    /// Maps a whole file for reading, with its length; `None` if it does not exist. Used for
    /// hint files, so open does not copy them into zeroed buffers.
    pub(crate) fn map_file(&self, name: &str) -> Result<Option<(Arc<dyn Mapping>, usize)>> {
        let Some((path, file, len)) = self.open_existing(name)? else { return Ok(None) };
        let map = file.map(len as u64).map_err(|e| Error::io("map", &path, e))?;
        Ok(Some((map, len)))
    }

    /// A file's length, `None` if it does not exist or cannot be opened.
    pub(crate) fn file_len(&self, name: &str) -> Option<u64> {
        self.vfs.open(&self.path(name), OpenMode::ReadOnly).ok()?.len().ok()
    }

    pub(crate) fn remove_if_exists(&self, name: &str) -> Result<bool> {
        let path = self.path(name);
        match self.vfs.remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }
}

/// A file opened by [`LogDir::open_existing`]: its path, handle and length.
type OpenFile = (PathBuf, Box<dyn VfsFile>, usize);

fn too_big() -> std::io::Error {
    std::io::Error::other("file larger than memory")
}

/// Creates segment `id` with its header, synced, but does not sync the directory or list it in
/// the manifest (the caller does both, in that order).
pub(crate) fn create_segment_file(dir: &LogDir, header: &SegmentHeader) -> Result<(PathBuf, Box<dyn VfsFile>)> {
    let path = dir.path(&segment_file_name(header.id));
    let file = dir.vfs.open(&path, OpenMode::CreateNew).map_err(|e| Error::io("create", &path, e))?;
    let mut bytes = Vec::new();
    encode_segment_header(header, &mut bytes);
    file.write_at(&bytes, 0).map_err(|e| Error::io("write", &path, e))?;
    file.sync_data().map_err(|e| Error::io("sync", &path, e))?;
    Ok((path, file))
}

/// Makes the pooled file `pool_name` (`log/pool.rs`) segment `header.id`: renames it to the
/// segment's name and writes the new header over the old one, synced. Like
/// [`create_segment_file`], it neither syncs the directory nor lists the segment in the manifest
/// (the caller does both, in that order). Everything past the header is still the old segment's:
/// frames checksummed under another salt, and of earlier sync groups, which recovery never takes
/// for the new segment's (DESIGN.md, "Recycled segment files").
pub(crate) fn reuse_segment_file(
    dir: &LogDir,
    pool_name: &str,
    header: &SegmentHeader,
) -> Result<(PathBuf, Box<dyn VfsFile>)> {
    let path = dir.path(&segment_file_name(header.id));
    dir.vfs.rename(&dir.path(pool_name), &path).map_err(|e| Error::io("rename", &path, e))?;
    let file = dir.vfs.open(&path, OpenMode::ReadWrite).map_err(|e| Error::io("open", &path, e))?;
    let mut bytes = Vec::new();
    encode_segment_header(header, &mut bytes);
    file.write_at(&bytes, 0).map_err(|e| Error::io("write", &path, e))?;
    file.sync_data().map_err(|e| Error::io("sync", &path, e))?;
    Ok((path, file))
}

/// Whether `name`, a file in a store directory whose manifest lists the segments `live`, is a
/// leftover that open removes (and `verify` lists): the segment or hint file of a segment no
/// manifest lists (an interrupted roll-over or compaction, before or after its commit point), a
/// file an atomic replace was writing when it was interrupted, or a retired segment file kept for
/// reuse (`log/pool.rs`: the pool lives in RAM, so at open its files are leftovers, never read).
/// Anything else is not ours.
pub(crate) fn is_orphan(name: &str, live: &[u64]) -> bool {
    match parse_file_name(name) {
        Some((id, _)) => !live.contains(&id),
        None => name.ends_with(TMP_SUFFIX) || is_pool_file(name),
    }
}

/// Whether `name` is a pool file's (`pool_file_name`): 16 hex digits and the pool suffix.
fn is_pool_file(name: &str) -> bool {
    name.strip_suffix(POOL_SUFFIX).is_some_and(|stem| stem.len() == 16 && u64::from_str_radix(stem, 16).is_ok())
}

/// A segment file opened and mapped as long as it is, with its header decoded and checked.
pub(crate) struct SegmentFile {
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn VfsFile>,
    pub(crate) file_len: u64,
    pub(crate) map: Arc<dyn Mapping>,
    pub(crate) header: SegmentHeader,
}

impl SegmentFile {
    /// The segment, its data not yet known to end past its header.
    pub(crate) fn into_segment(self) -> Arc<Segment> {
        let SegmentFile { path, file, file_len, map, header } = self;
        let data_end = SEGMENT_HEADER_BYTES as u64;
        Arc::new(Segment::new(header.id, header.kind, header.salt, path, file, (map, file_len), data_end))
    }
}

/// Opens segment `id`, which the manifest lists, maps it whole and checks its header. A missing
/// file or a bad header is [`Error::Corruption`] naming the file and the offset: the manifest
/// vouches for every segment it lists, and for the store's format version too, so a listed
/// segment of another version is damage, not an old store.
pub(crate) fn open_segment(dir: &LogDir, id: u64, mode: OpenMode) -> Result<SegmentFile> {
    let path = dir.path(&segment_file_name(id));
    let corruption =
        |offset: usize, reason: String| Error::Corruption { path: path.clone(), offset: offset as u64, reason };
    let file = dir.vfs.open(&path, mode).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => corruption(0, "segment listed in the manifest is missing".into()),
        _ => Error::io("open", &path, e),
    })?;
    let file_len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    let map = file.map(file_len).map_err(|e| Error::io("map", &path, e))?;
    // Read only what the file holds: a segment cut below its header is corruption, not a read
    // past the end (which faults).
    let header_len = SEGMENT_HEADER_BYTES.min(usize::try_from(file_len).unwrap_or(usize::MAX));
    let header_bytes = map.read(0, header_len).unwrap_or_default();
    let header = decode_segment_header(&header_bytes).map_err(|e| corruption(0, e.to_string()))?;
    drop(header_bytes);
    if header.id != id {
        return Err(corruption(SEGMENT_HEADER_ID_OFFSET, format!("header names segment {}", header.id)));
    }
    Ok(SegmentFile { path, file, file_len, map, header })
}
