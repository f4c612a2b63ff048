//! The set of live segments and the manifest file that makes it durable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::format::{encode_segment_header, Manifest, SegmentHeader};
use crate::io::{Mapping, OpenMode, Vfs, VfsFile};
use crate::log::{segment_file_name, Segment};
use crate::{Error, Result};

/// Name of the manifest file in the store directory.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the manifest being written, renamed over [`MANIFEST_FILE`] once synced.
pub(crate) const MANIFEST_TMP_FILE: &str = "MANIFEST.tmp";

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

    /// Syncs the store directory. A failure poisons the store whatever its cause (the latch in
    /// `io/checked.rs` decides, and never lets it pass for a harmless `DiskFull`).
    pub(crate) fn sync_dir(&self) -> Result<()> {
        self.vfs.sync_dir(&self.dir).map_err(|e| Error::io("sync directory", &self.dir, e))
    }

    /// Writes `bytes` to a new file `name` durably: to `name.tmp`, synced, renamed, directory
    /// synced. Either the old file or the new one survives any crash.
    pub(crate) fn write_file_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = self.path(&format!("{name}.tmp"));
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

/// The live segments: the in-memory form of the manifest.
#[derive(Debug)]
pub(crate) struct SegmentSet {
    /// Sealed segments (read-only from now on), by id.
    pub(crate) sealed: BTreeMap<u64, Arc<Segment>>,
    /// The segment the writer appends to.
    pub(crate) active: Arc<Segment>,
    /// The id the next new segment gets.
    pub(crate) next_segment_id: u64,
    /// The store's hash key, fixed at creation.
    pub(crate) hash_key: [u8; 16],
}

impl SegmentSet {
    pub(crate) fn manifest(&self) -> Manifest {
        let mut segments: Vec<u64> = self.sealed.keys().copied().collect();
        segments.push(self.active.id);
        segments.sort_unstable();
        Manifest { segments, active: self.active.id, next_segment_id: self.next_segment_id, hash_key: self.hash_key }
    }

    /// The manifest after a roll-over to the new active segment `id`: the old active segment
    /// joins the sealed ones. Sorted whatever order ids were allocated and committed in.
    pub(crate) fn manifest_with_new_active(&self, id: u64) -> Manifest {
        let mut manifest = self.manifest();
        manifest.segments.push(id);
        manifest.segments.sort_unstable();
        manifest.active = id;
        manifest
    }

    /// Takes a fresh segment id.
    pub(crate) fn allocate_id(&mut self) -> u64 {
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        id
    }

    /// Every live segment, sealed ones in id order, then the active one.
    pub(crate) fn all(&self) -> Vec<Arc<Segment>> {
        let mut all: Vec<_> = self.sealed.values().cloned().collect();
        all.push(Arc::clone(&self.active));
        all
    }
}
