//! Read-only inspection of a store directory, without opening a [`Store`](crate::Store): a
//! damaged store cannot be opened, yet it is exactly the one worth inspecting.
//!
//! Both tools take the directory lock (through the same file-system layer as the store),
//! so they never race a writer: while a `Store` has the directory open they fail with
//! [`Error::Locked`]. They never change a segment, hint or manifest file (taking the lock
//! creates the `LOCK` file if it is missing, as opening a store would).
//!
//! * [`verify`] checks everything open relies on and reports every damaged place it finds,
//!   instead of stopping at the first one as open does.
//! * [`dump`] lists the records in log order.
//!
//! Both walk frames with the same decoder and the same torn-tail rule as recovery.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use ferrocask::{inspect, Store};
//! {
//!     let store = Store::open(dir.path())?;
//!     store.put(b"k", b"v")?;
//! } // dropped: the directory is free again
//! let report = inspect::verify(dir.path())?;
//! assert!(report.is_ok(), "{report:?}");
//! assert_eq!(report.records, 1);
//! let mut keys = Vec::new();
//! inspect::dump(dir.path(), |r| {
//!     keys.push(r.key.to_vec());
//!     std::ops::ControlFlow::Continue(())
//! })?;
//! assert_eq!(keys, vec![b"k".to_vec()]);
//! # Ok::<(), ferrocask::Error>(())
//! ```

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{decode_manifest, Manifest, SegmentKind};
use crate::io::{LockGuard, OpenMode, RealFs, Vfs};
use crate::log::{open_segment, parse_file_name, walk_segment, GroupRule, LogDir, SegmentFile, Walked, MANIFEST_FILE};
use crate::{Error, Result};

mod verify;

pub use crate::format::RecordKind;
pub use verify::{verify, verify_with_progress};

/// One damaged place found by [`verify`] (or skipped by [`dump`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The damaged file (a segment, a hint file, or the manifest).
    pub path: PathBuf,
    /// Byte offset of the damage in that file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// An incomplete write at the end of the active segment: what a crash during a group commit
/// leaves. It was never acknowledged, and the next open cuts it. Not damage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The active segment.
    pub path: PathBuf,
    /// Where the incomplete frame starts (the end of the valid data).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file (including preallocated zeros).
    pub bytes: u64,
}

/// What rebuilding the index (exactly as open would, but read-only) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuild {
    /// Live keys after the rebuild (expired keys excluded).
    pub live_keys: usize,
    /// Records (including tombstones) read from hints and frames.
    pub records_read: u64,
    /// Segments loaded from their hint file.
    pub segments_from_hints: usize,
    /// Segments replayed frame by frame.
    pub segments_replayed: usize,
}

/// The outcome of [`verify`]. The store is sound when [`VerifyReport::is_ok`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segments checked (those the manifest lists).
    pub segments: usize,
    /// Bytes of segment files checked.
    pub segment_bytes: u64,
    /// Valid frames.
    pub frames: u64,
    /// Valid records (puts and tombstones) in those frames.
    pub records: u64,
    /// Tombstones among `records`.
    pub tombstones: u64,
    /// Hint files compared with their segments.
    pub hints_checked: usize,
    /// The index rebuild; `None` if it was not attempted (unreadable manifest, or a hint file that
    /// disagrees with its segment, which open would trust).
    pub rebuild: Option<Rebuild>,
    /// A torn tail of the active segment, if any (not damage: the next open cuts it).
    pub torn_tail: Option<TornTail>,
    /// Files the manifest does not list (leftovers of an interrupted roll-over or compaction),
    /// which the next open removes. Not damage.
    pub orphans: Vec<PathBuf>,
    /// Every damaged place found. Empty for a sound store.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// True if no damage was found (a torn tail and orphan files are not damage).
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

/// One record, as [`dump`] yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpRecord<'a> {
    /// The segment holding the record.
    pub segment_id: u64,
    /// Offset of the record in the segment file.
    pub offset: u64,
    /// The sync group of the record's frame.
    pub group: u64,
    /// The record's sequence number.
    pub seq: u64,
    /// Put or delete (tombstone).
    pub kind: RecordKind,
    /// The key.
    pub key: &'a [u8],
    /// Length of the value in bytes (0 for a tombstone).
    pub value_len: usize,
    /// Expiry in Unix milliseconds; 0 = never.
    pub expires_ms: u64,
}

/// What [`dump`] walked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpReport {
    /// Records passed to the callback.
    pub records: u64,
    /// A torn tail of the active segment (its bytes are not records, and are not passed on).
    pub torn_tail: Option<TornTail>,
    /// Damaged ranges skipped.
    pub damage: Vec<Damage>,
}

/// Calls `on_record` with every valid record of the store in `dir`, in log order (segments in id
/// order, records in file order), without opening the store. `on_record` returns
/// `ControlFlow::Break(())` to stop early. Damaged ranges are skipped and listed in the report;
/// a torn tail of the active segment is not passed on.
///
/// Fails with [`Error::Locked`] if a store has the directory open, with an I/O error if `dir`
/// holds no store, and with [`Error::Corruption`] if the manifest is unreadable.
pub fn dump(
    dir: impl AsRef<Path>,
    mut on_record: impl FnMut(&DumpRecord<'_>) -> ControlFlow<()>,
) -> Result<DumpReport> {
    let (dir, _lock, _) = lock_store(dir.as_ref())?;
    let manifest =
        read_manifest(&dir)?.map_err(|d| Error::Corruption { path: d.path, offset: d.offset, reason: d.reason })?;
    let mut report = DumpReport::default();
    let mut stopped = false;
    for &id in &manifest.segments {
        if stopped {
            break;
        }
        let segment = match open_listed(&dir, id)? {
            Ok(s) => s,
            Err(damage) => {
                report.damage.push(damage);
                continue;
            }
        };
        let bytes = segment.map.read(0, segment.file_len as usize).unwrap_or_default();
        let rule = (segment.header.kind == SegmentKind::Log).then(|| GroupRule::new(segment.header.first_group));
        let mut skipped = Vec::new();
        let walked = walk_segment(
            &bytes,
            segment.header.salt,
            rule,
            id == manifest.active,
            |at, frame| {
                for r in frame.records().flatten() {
                    if stopped {
                        return;
                    }
                    let record = DumpRecord {
                        segment_id: id,
                        offset: (at + r.frame_offset) as u64,
                        group: frame.group,
                        seq: r.seq,
                        kind: r.kind,
                        key: r.key,
                        value_len: r.value.len(),
                        expires_ms: r.expires_ms,
                    };
                    report.records += 1;
                    stopped = on_record(&record).is_break();
                }
            },
            |bad| {
                skipped.push(Damage {
                    path: segment.path.clone(),
                    offset: bad.start as u64,
                    reason: bad.reason.clone(),
                });
                true
            },
        );
        report.damage.extend(skipped);
        if let Walked::Done(end) = walked {
            if let Some(at) = end.torn_at {
                report.torn_tail =
                    Some(TornTail { path: segment.path.clone(), offset: at, bytes: segment.file_len - at });
            }
        }
    }
    Ok(report)
}

/// Takes the directory lock of the store in `dir`; also returns the directory's file names.
fn lock_store(dir: &Path) -> Result<(LogDir, LockGuard, Vec<String>)> {
    let dir = LogDir { vfs: Arc::new(RealFs) as Arc<dyn Vfs>, dir: dir.to_path_buf() };
    let names = dir.vfs.list(&dir.dir).map_err(|e| Error::io("list", &dir.dir, e))?;
    if !names.iter().any(|n| n == MANIFEST_FILE || parse_file_name(n).is_some()) {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no ferrocask store here (no MANIFEST)");
        return Err(Error::io("inspect", &dir.dir, missing));
    }
    let lock = dir.lock()?;
    Ok((dir, lock, names))
}

/// The manifest, or the damage that makes it unusable.
fn read_manifest(dir: &LogDir) -> Result<std::result::Result<Manifest, Damage>> {
    let path = dir.path(MANIFEST_FILE);
    Ok(match dir.read_file(MANIFEST_FILE)? {
        None => Err(Damage { path, offset: 0, reason: "segment files exist but the manifest is missing".into() }),
        Some(bytes) => decode_manifest(&bytes).map_err(|e| Damage { path, offset: 0, reason: e.to_string() }),
    })
}

/// Opens and maps segment `id` as open would; damage (not an error) if it is missing or its
/// header is bad, so that the walk goes on with the other segments.
fn open_listed(dir: &LogDir, id: u64) -> Result<std::result::Result<SegmentFile, Damage>> {
    match open_segment(dir, id, OpenMode::ReadOnly) {
        Ok(segment) => Ok(Ok(segment)),
        Err(Error::Corruption { path, offset, reason }) => Ok(Err(Damage { path, offset, reason })),
        Err(e) => Err(e),
    }
}

/// Turns an error of the index rebuild into a damage entry.
fn damage_of(dir: &LogDir, e: Error) -> Damage {
    match e {
        Error::Corruption { path, offset, reason } => Damage { path, offset, reason },
        other => Damage { path: dir.dir.clone(), offset: 0, reason: format!("index rebuild failed: {other}") },
    }
}
