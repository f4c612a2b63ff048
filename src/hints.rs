//! Writing hint files for sealed segments. Reading them is recovery's business.

use std::sync::Arc;

use crate::format::{encode_hint, HintEntry, HintFile, SEGMENT_HEADER_BYTES};
use crate::hash::KeyHasher;
use crate::log::{hint_file_name, scan_frames, LogDir, ScanEnd, Segment};
use crate::store::Inner;
use crate::Result;

/// Builds the hint file of a sealed segment from its frames.
pub(crate) fn build_hint(segment: &Segment, hasher: &KeyHasher) -> Option<Vec<u8>> {
    let end = segment.data_end();
    let bytes = segment.read(0, end as usize)?;
    let mut entries = Vec::new();
    let mut seq_max = 0;
    let scanned = scan_frames(&bytes, segment.salt, SEGMENT_HEADER_BYTES, None, |at, frame| {
        for r in frame.records().flatten() {
            seq_max = seq_max.max(r.seq);
            entries.push(HintEntry {
                kind: r.kind,
                offset: u32::try_from(at + r.frame_offset).expect("segment offsets fit u32"),
                value_len: r.value.len() as u32,
                seq: r.seq,
                expires_ms: r.expires_ms,
                key_len: r.key.len() as u16,
                key_hash: hasher.hash(r.key),
            });
        }
    });
    // A sealed segment's data ends exactly at `data_end`; anything else means it is not ours to hint.
    if scanned != (ScanEnd::Clean { end: end as usize }) {
        return None;
    }
    Some(encode_hint(&HintFile { segment_id: segment.id, data_end: end, seq_max, entries }))
}

/// Writes (atomically) the hint file of a sealed segment.
pub(crate) fn write_hint(dir: &LogDir, segment: &Segment, hasher: &KeyHasher) -> Result<bool> {
    let Some(bytes) = build_hint(segment, hasher) else { return Ok(false) };
    dir.write_file_atomic(&hint_file_name(segment.id), &bytes)?;
    Ok(true)
}

/// Writes hints for every sealed segment that needs one. Failures are left for a later attempt:
/// a missing hint only makes the next open slower.
///
/// Holds the compaction lock throughout: hint writing and compaction both work on sealed
/// segments, and a hint writer that held a segment while compaction retired it would keep the
/// segment's file on disk after the compaction returned (it goes with the last `Arc`), then write
/// a hint file for a segment no manifest names any more.
pub(crate) fn write_pending(inner: &Inner) {
    let _compaction = inner.compaction.lock();
    let mut pending = std::mem::take(&mut *inner.need_hints.lock());
    pending.extend(inner.writer.take_sealed());
    if !inner.options.write_hints || pending.is_empty() {
        return;
    }
    let mut failed = Vec::new();
    for id in pending {
        let segment: Option<Arc<Segment>> = inner.sets.lock().sealed.get(&id).cloned();
        let Some(segment) = segment else { continue }; // compacted away meanwhile
        if write_hint(&inner.dir, &segment, inner.index.hasher()).is_err() {
            failed.push(id);
        }
    }
    inner.need_hints.lock().extend(failed);
}
