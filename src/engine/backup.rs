//! Online backup: a consistent copy of a live store, made through the `Vfs`.
//!
//! The copy is a cut of the log: every frame up to the active segment's tail at one moment, and
//! every sealed segment at that moment. Taking the compaction mutex keeps sealed segments from
//! being deleted meanwhile; the writer's log mutex is held only while the cut is captured, so
//! writers keep going while the bytes are copied. Frames are published to the index only after
//! they are written, under that same mutex, so the cut holds exactly the writes acknowledged
//! (or about to be) at that moment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::format::{encode_manifest, Manifest};
use crate::io::{create_dir_durably, OpenMode};
use crate::log::{hint_file_name, segment_file_name, LogDir, Segment, MANIFEST_FILE};
use crate::{Error, Result};

/// Bytes copied per write.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What [`Store::backup_to`](crate::Store::backup_to) copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup's directory.
    pub path: PathBuf,
    /// Segment files copied (sealed ones whole, the active one up to the cut).
    pub segments: usize,
    /// Hint files copied.
    pub hints: usize,
    /// Bytes written to the backup (segments, hints and manifest).
    pub bytes: u64,
    /// Wall time.
    pub duration: Duration,
}

/// The consistent cut: what the backup holds.
struct Cut {
    sealed: Vec<Arc<Segment>>,
    active: Arc<Segment>,
    active_end: u64,
    next_segment_id: u64,
    hash_key: [u8; 16],
}

pub(crate) fn backup(engine: &Engine, target: &Path) -> Result<BackupReport> {
    // From inside a transaction, a copy (and waiting for a running compaction) would hold up
    // the whole group.
    engine.writer.refuse_if_reentrant()?;
    let started = Instant::now();
    // The copy is written around the latch: a failure there fails the backup, not the store.
    let vfs = &engine.unlatched_vfs;
    match vfs.list(target) {
        Ok(names) if names.is_empty() => {}
        Ok(_) => return Err(Error::BackupTarget { path: target.to_path_buf(), reason: "is not empty".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("list", target, e)),
    }
    // No compaction may delete a segment of the cut until the copy is done.
    let _compaction = engine.compaction.lock();
    let cut = {
        let log = engine.writer.log.lock();
        let set = engine.sets.lock();
        Cut {
            sealed: set.sealed.values().cloned().collect(),
            active: Arc::clone(&log.segment),
            active_end: log.tail,
            next_segment_id: set.next_segment_id,
            hash_key: set.hash_key,
        }
    };
    // Every new ancestor's entry must be durable too, or a nested new target (`a/b/c`) can vanish
    // with a power loss even though its files and manifest were synced.
    create_dir_durably(vfs.as_ref(), target)?;
    let out = LogDir { vfs: Arc::clone(vfs), dir: target.to_path_buf() };
    let mut report = BackupReport { path: target.to_path_buf(), ..BackupReport::default() };
    for segment in &cut.sealed {
        report.bytes += copy_segment(&out, segment, segment.data_end())?;
        report.segments += 1;
        // A hint is optional (open replays a segment without one); copy it if there is one.
        if let Some(hint) = engine.dir.read_file(&hint_file_name(segment.id))? {
            write_new_file(&out, &hint_file_name(segment.id), &hint)?;
            report.bytes += hint.len() as u64;
            report.hints += 1;
        }
    }
    report.bytes += copy_segment(&out, &cut.active, cut.active_end)?;
    report.segments += 1;
    // Every file is synced; make their entries durable before the manifest names them. The
    // manifest is the backup's commit point: without it, the directory does not open as a store.
    out.sync_dir()?;
    let mut segments: Vec<u64> = cut.sealed.iter().map(|s| s.id).chain([cut.active.id]).collect();
    segments.sort_unstable();
    let manifest =
        Manifest { segments, active: cut.active.id, next_segment_id: cut.next_segment_id, hash_key: cut.hash_key };
    let bytes = encode_manifest(&manifest);
    out.write_file_atomic(MANIFEST_FILE, &bytes)?;
    report.bytes += bytes.len() as u64;
    report.duration = started.elapsed();
    Ok(report)
}

/// Copies the first `len` bytes of `segment` into a new file of the same name, synced.
fn copy_segment(out: &LogDir, segment: &Segment, len: u64) -> Result<u64> {
    let name = segment_file_name(segment.id);
    let path = out.path(&name);
    let file = out.vfs.open(&path, OpenMode::CreateNew).map_err(|e| Error::io("create", &path, e))?;
    let mut at = 0;
    while at < len {
        let n = (len - at).min(COPY_CHUNK_BYTES as u64) as usize;
        let bytes = segment.read(at, n).ok_or_else(|| Error::Corruption {
            path: segment.path().to_path_buf(),
            offset: at,
            reason: "segment shorter than its data".into(),
        })?;
        file.write_at(&bytes, at).map_err(|e| Error::io("write", &path, e))?;
        at += n as u64;
    }
    file.sync_data().map_err(|e| Error::io("sync", &path, e))?;
    Ok(len)
}

fn write_new_file(out: &LogDir, name: &str, bytes: &[u8]) -> Result<()> {
    let path = out.path(name);
    let file = out.vfs.open(&path, OpenMode::CreateNew).map_err(|e| Error::io("create", &path, e))?;
    file.write_at(bytes, 0).map_err(|e| Error::io("write", &path, e))?;
    file.sync_data().map_err(|e| Error::io("sync", &path, e))
}
