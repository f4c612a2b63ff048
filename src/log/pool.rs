//! The pool of retired segment files kept for reuse as the next active segment (DESIGN.md,
//! "Recycled segment files").
//!
//! A segment file that compaction retired is already allocated and written: reusing it as the
//! next active segment means the log's bytes are written once, where a new file would first be
//! filled with zeros (`Writer::ensure_space`) and then written again. Retirement renames the file
//! to a pool name (`pool_file_name`) instead of removing it, while the pool holds fewer than
//! [`POOL_FILES_MAX`] files and their bytes stay within a fraction of the store's live bytes
//! (`POOL_LIVE_DIVISOR`: a small store keeps no big file around); otherwise the file is removed as
//! before. A roll-over, or a compaction run starting an output segment, takes a pooled file,
//! renames it to the new segment's name and writes the new header over the old one
//! (`log::dir::reuse_segment_file`); the old contents after the new data are cut before any
//! manifest lists the segment as sealed.
//!
//! The pool is RAM only. No manifest names a pool file, so a pool file found at open is an orphan
//! (`log::dir::is_orphan`) and recovery removes it, never reading it: which files are the store's
//! is decided by the manifest and `LogDir` alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::format::{SegmentHeader, SegmentKind};
use crate::io::VfsFile;
use crate::log::{create_segment_file, pool_file_name, reuse_segment_file, segment_file_name, LogDir};
use crate::Result;

/// The most retired segment files the pool keeps at once. Two: one for the roll-over after a
/// compaction run that retired several segments, one spare; more would only hold disk.
pub(crate) const POOL_FILES_MAX: usize = 2;
/// The pool's files take at most the store's live bytes divided by this, so that pooled files
/// add at most a quarter of the live data to the disk a store takes, and a small store (whose
/// retired segments are tiny anyway) keeps none.
pub(crate) const POOL_LIVE_DIVISOR: u64 = 4;

/// The pool may always hold this many bytes, whatever the live bytes: two files of the smallest
/// segment size (`SEGMENT_BYTES_MIN`), so that stores of small segments recycle too. A store
/// that closes empties its pool (`SegmentPool::close`), so a small store at rest takes no more.
pub(crate) const POOL_BYTES_FLOOR: u64 = 2 * crate::format::SEGMENT_BYTES_MIN;

/// A pooled file: its name in the store directory and its length.
#[derive(Debug)]
struct Pooled {
    name: String,
    len: u64,
}

#[derive(Debug, Default)]
struct PoolState {
    files: Vec<Pooled>,
    /// The number the next pool file's name carries: names are never reused while open, so a
    /// rename into the pool never replaces a pooled file.
    next_name: u64,
}

/// Retired segment files waiting to be reused (see the module doc).
#[derive(Debug)]
pub(crate) struct SegmentPool {
    dir: LogDir,
    /// Whether retired files are kept: `Options::recycle_segments`, until the store closes.
    enabled: AtomicBool,
    /// The most bytes the pool may hold now: the live bytes / `POOL_LIVE_DIVISOR` at the last
    /// compaction run (`SegmentPool::set_live_bytes`).
    budget_bytes: AtomicU64,
    state: Mutex<PoolState>,
    /// Segment files reused so far as active segments, and as compaction outputs.
    reused: [AtomicU64; 2],
}

impl SegmentPool {
    pub(crate) fn new(dir: LogDir, enabled: bool) -> SegmentPool {
        SegmentPool {
            dir,
            enabled: AtomicBool::new(enabled),
            budget_bytes: AtomicU64::new(POOL_BYTES_FLOOR),
            state: Mutex::new(PoolState::default()),
            reused: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Sizes the pool's budget to a store of `live` bytes (called before a compaction run
    /// retires its inputs), removing pooled files, largest first, while they exceed it: a
    /// store whose data shrank keeps no segment-sized file for it.
    pub(crate) fn set_live_bytes(&self, live: u64) {
        let budget = (live / POOL_LIVE_DIVISOR).max(POOL_BYTES_FLOOR);
        self.budget_bytes.store(budget, Ordering::Relaxed);
        let mut state = self.state.lock();
        while state.files.iter().map(|f| f.len).sum::<u64>() > budget {
            let largest = (0..state.files.len()).max_by_key(|&i| state.files[i].len).expect("files exceed the budget");
            let file = state.files.swap_remove(largest);
            let _ = self.dir.remove_if_exists(&file.name);
        }
    }

    /// Takes the retired file at `path`, `len` bytes long, into the pool if it has room, else
    /// removes it. Called when the retired segment's last `Arc` goes, so nothing maps it. A
    /// failed rename removes the file instead; a failed removal leaves an orphan for the next
    /// open, as before pooling. Neither is synced here: the caller syncs the directory, and until
    /// then a crash leaves the old name or the pool name, both orphans.
    pub(crate) fn offer(&self, path: &Path, len: u64) {
        let vfs = &self.dir.vfs;
        let mut state = self.state.lock();
        let held: u64 = state.files.iter().map(|f| f.len).sum();
        let fits = held.saturating_add(len) <= self.budget_bytes.load(Ordering::Relaxed);
        if self.enabled.load(Ordering::Relaxed) && state.files.len() < POOL_FILES_MAX && fits {
            let name = pool_file_name(state.next_name);
            state.next_name += 1;
            if vfs.rename(path, &self.dir.path(&name)).is_ok() {
                state.files.push(Pooled { name, len });
                return;
            }
        }
        drop(state);
        let _ = vfs.remove_file(path);
    }

    /// Takes the largest pooled file, by name, for reuse; `None` if the pool is empty.
    pub(crate) fn take(&self) -> Option<String> {
        let mut state = self.state.lock();
        let largest = (0..state.files.len()).max_by_key(|&i| state.files[i].len)?;
        Some(state.files.swap_remove(largest).name)
    }

    /// Removes every pooled file and keeps none from now on: the store is closing, and a closed
    /// store takes no disk for files it would only remove at the next open. Returns whether
    /// it removed any (the caller then syncs the directory).
    pub(crate) fn close(&self) -> bool {
        self.enabled.store(false, Ordering::Relaxed);
        let files = std::mem::take(&mut self.state.lock().files);
        for f in &files {
            let _ = self.dir.remove_if_exists(&f.name);
        }
        !files.is_empty()
    }

    /// Creates the file of segment `header.id`, header synced: a pooled file reused if `reuse`
    /// and there is one, else a new file. Returns whether it reused one: the caller must then
    /// cut the old contents that follow its data before any manifest lists it as sealed. A
    /// pooled file that cannot be made the segment is removed and a new file created instead (a
    /// failed sync has poisoned the store through the latch, and then creating fails too).
    pub(crate) fn new_segment_file(
        &self,
        header: &SegmentHeader,
        reuse: bool,
    ) -> Result<(PathBuf, Box<dyn VfsFile>, bool)> {
        if let Some(name) = reuse.then(|| self.take()).flatten() {
            match reuse_segment_file(&self.dir, &name, header) {
                Ok((path, file)) => {
                    let slot = usize::from(header.kind != SegmentKind::Log);
                    self.reused[slot].fetch_add(1, Ordering::Relaxed);
                    return Ok((path, file, true));
                }
                Err(_) => {
                    let _ = self.dir.remove_if_exists(&name);
                    let _ = self.dir.remove_if_exists(&segment_file_name(header.id));
                }
            }
        }
        let (path, file) = create_segment_file(&self.dir, header)?;
        Ok((path, file, false))
    }

    /// Segment files reused so far: as active segments, and as compaction outputs.
    pub(crate) fn reused(&self) -> (u64, u64) {
        (self.reused[0].load(Ordering::Relaxed), self.reused[1].load(Ordering::Relaxed))
    }

    /// Bytes of the files in the pool (they count toward the store's disk).
    pub(crate) fn bytes(&self) -> u64 {
        self.state.lock().files.iter().map(|f| f.len).sum()
    }

    /// Files in the pool.
    pub(crate) fn files(&self) -> usize {
        self.state.lock().files.len()
    }
}
