//! `verify`: every check open relies on, over every segment, reporting each damaged place instead
//! of stopping at the first one as open does.

use std::path::Path;

use super::{damage_of, lock_store, open_listed, read_manifest, Damage, Rebuild, TornTail, VerifyReport};
use crate::engine::recovery::rebuild_read_only;
use crate::format::hash::KeyHasher;
use crate::format::{
    decode_hint, encoded_entry_len, HintEntry, HintFile, Manifest, RecordKind, RecordView, SegmentHeader, SegmentKind,
    HINT_DATA_END_OFFSET, HINT_HEADER_BYTES, HINT_SEQ_MAX_OFFSET, SEGMENT_HEADER_FIRST_GROUP_OFFSET,
    SEGMENT_HEADER_KIND_OFFSET,
};
use crate::log::{
    check_hint, entry_for, hint_file_name, is_orphan, parse_file_name, segment_file_name, walk_segment, GroupRule,
    LogDir, Segment, SegmentFile, Walked,
};
use crate::options::Options;
use crate::Result;

/// Verifies the store in `dir` without opening it; see [`verify_with_progress`].
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with_progress(dir, |_, _| {})
}

/// Verifies the store in `dir` without opening it, calling `progress(bytes_done, bytes_total)`
/// as segment bytes are checked.
///
/// Checks the manifest, every segment header, every frame's checksum and records, the order of
/// sync groups (within each log segment and from one log segment to the next), that sequence
/// numbers increase within each log segment, that every hint file passes the checks open makes
/// and matches its segment entry by entry, and finally that the index rebuilds as open would
/// rebuild it. Each damaged place is reported with its file, offset and reason; the walk resumes
/// at the next valid frame. A torn tail of the active segment is reported as such, not as damage.
///
/// Fails with [`Error::Locked`](crate::Error::Locked) if a store has the directory open, and with
/// an I/O error if `dir` holds no store (neither a manifest nor a segment file).
pub fn verify_with_progress(dir: impl AsRef<Path>, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport> {
    let (dir, _lock, names) = lock_store(dir.as_ref())?;
    let mut verifier = Verifier::new(&dir, &names)?;
    let total: u64 = verifier.ids.iter().filter_map(|&id| dir.file_len(&segment_file_name(id))).sum();
    progress(0, total);
    for id in verifier.ids.clone() {
        verifier.check_segment(id)?;
        progress(verifier.report.segment_bytes, total);
    }
    verifier.check_rebuild();
    Ok(verifier.report)
}

/// What verify carries from one segment to the next.
struct Verifier<'a> {
    dir: &'a LogDir,
    /// The manifest, if it is readable.
    manifest: Option<Manifest>,
    /// Hint entries hold key hashes made with the manifest's key; without it they cannot be checked.
    hasher: Option<KeyHasher>,
    /// The segments to check, in id order, and the active one.
    ids: Vec<u64>,
    active: u64,
    /// The last group of the previous log segment that held a frame, and that segment's id.
    last_log_group: Option<(u64, u64)>,
    /// A hint file disagrees with its segment. Open might trust it, so the rebuild (which would
    /// use it) proves nothing and is not attempted.
    hint_damage: bool,
    report: VerifyReport,
}

/// What walking one segment found, beyond what goes straight into the report.
#[derive(Default)]
struct Walk {
    /// Where the segment's valid data ends.
    data_end: u64,
    /// The highest sequence number of its records.
    seq_max: u64,
    /// The previous record's sequence number.
    last_seq: Option<u64>,
    /// The hint entries its records call for, if there is a hint file to compare them with.
    entries: Option<Vec<HintEntry>>,
    /// Damaged places (offset in the segment, reason), in the order found.
    damage: Vec<(u64, String)>,
}

impl<'a> Verifier<'a> {
    /// Reads the manifest; without one, takes the segment files that are there, the newest as the
    /// active one. Lists the orphans.
    fn new(dir: &'a LogDir, names: &[String]) -> Result<Verifier<'a>> {
        let mut report = VerifyReport::default();
        let manifest = read_manifest(dir)?.map_err(|damage| report.damage.push(damage)).ok();
        let (ids, active) = match &manifest {
            Some(m) => (m.segments.clone(), m.active),
            None => {
                let mut ids: Vec<u64> =
                    names.iter().filter_map(|n| parse_file_name(n)).filter(|f| !f.1).map(|f| f.0).collect();
                ids.sort_unstable();
                let active = ids.last().copied().unwrap_or(0);
                (ids, active)
            }
        };
        report.orphans = names.iter().filter(|n| is_orphan(n, &ids)).map(|n| dir.path(n)).collect();
        let hasher = manifest.as_ref().map(|m| KeyHasher::new(m.hash_key));
        Ok(Verifier { dir, manifest, hasher, ids, active, last_log_group: None, hint_damage: false, report })
    }

    /// Checks segment `id`: its header, every frame and record, and its hint file.
    fn check_segment(&mut self, id: u64) -> Result<()> {
        self.report.segments += 1;
        let file = match open_listed(self.dir, id)? {
            Ok(file) => file,
            Err(damage) => {
                self.report.damage.push(damage);
                return Ok(());
            }
        };
        let active = id == self.active;
        self.report.segment_bytes += file.file_len;
        self.check_header(&file, active);
        let hint = if active { None } else { self.dir.read_file(&hint_file_name(id))? };
        let (header, file_len) = (file.header, file.file_len);
        let segment = file.into_segment();
        let walk = self.walk(&segment, header, file_len, active, hint.is_some());
        if let Some(hint) = hint {
            self.check_hint_file(&segment, file_len, &hint, &walk);
        }
        Ok(())
    }

    /// The header's kind, and its first group against the previous log segment's last.
    fn check_header(&mut self, file: &SegmentFile, active: bool) {
        let damage = |offset: usize, reason| Damage { path: file.path.clone(), offset: offset as u64, reason };
        if active && file.header.kind != SegmentKind::Log {
            let reason = "the active segment is not a log segment".into();
            self.report.damage.push(damage(SEGMENT_HEADER_KIND_OFFSET, reason));
        }
        let Some((group, prev)) = self.last_log_group.filter(|_| file.header.kind == SegmentKind::Log) else { return };
        let first = file.header.first_group;
        if first <= group {
            let reason = format!("first group {first} does not follow group {group} of log segment {prev}");
            self.report.damage.push(damage(SEGMENT_HEADER_FIRST_GROUP_OFFSET, reason));
        }
    }

    /// Walks every frame of the segment with the scanner recovery uses, counting frames and
    /// records and noting damage, skipping every damaged range to the next valid frame.
    fn walk(&mut self, segment: &Segment, header: SegmentHeader, file_len: u64, active: bool, hinted: bool) -> Walk {
        let log = header.kind == SegmentKind::Log;
        let mut walk = Walk { entries: hinted.then(Vec::new), ..Walk::default() };
        let mut skipped = Vec::new();
        let bytes = segment.read(0, file_len as usize).unwrap_or_default();
        let report = &mut self.report;
        let hasher = self.hasher.as_ref();
        let rule = log.then(|| GroupRule::new(header.first_group));
        let on_frame = |at: usize, frame: &crate::format::FrameView<'_>| {
            report.frames += 1;
            for r in frame.records().flatten() {
                report.records += 1;
                report.tombstones += u64::from(r.kind == RecordKind::Delete);
                walk.record((at + r.frame_offset) as u32, &r, log, hasher);
            }
        };
        let walked = walk_segment(&bytes, header.salt, rule, active, on_frame, |bad| {
            skipped.push((bad.start as u64, bad.reason.clone()));
            true
        });
        let Walked::Done(end) = walked else { unreachable!("damage is always skipped") };
        for (offset, reason) in skipped.into_iter().chain(std::mem::take(&mut walk.damage)) {
            self.report.damage.push(Damage { path: segment.path.clone(), offset, reason });
        }
        if let Some(at) = end.torn_at {
            self.report.torn_tail = Some(TornTail { path: segment.path.clone(), offset: at, bytes: file_len - at });
        }
        if let Some(rule) = end.rule.filter(|rule| !rule.first) {
            self.last_log_group = Some((rule.last, segment.id));
        }
        walk.data_end = end.data_end;
        walk
    }

    /// Checks a sealed segment's hint file: first as open does (what fails there makes open
    /// replay the segment), then entry by entry against what the walk found (what open trusts).
    fn check_hint_file(&mut self, segment: &Segment, file_len: u64, bytes: &[u8], walk: &Walk) {
        self.report.hints_checked += 1;
        let replayed = |offset, reason| Some((offset, format!("{reason}; open will replay the segment instead")));
        let found = match decode_hint(bytes) {
            Err(e) => replayed(0, e.to_string()),
            Ok(hint) => match check_hint(segment, file_len, &hint.summary(), self.hasher.as_ref()) {
                Err(mismatch) => replayed(mismatch.offset, mismatch.reason),
                Ok(()) => compare_hint(&hint, walk, self.hasher.is_some()),
            },
        };
        if let Some((offset, reason)) = found {
            self.hint_damage = true;
            self.report.damage.push(Damage { path: self.dir.path(&hint_file_name(segment.id)), offset, reason });
        }
    }

    /// Rebuilds the index read-only, exactly as open would, unless that proves nothing: without a
    /// manifest there is no store to open, and a hint that disagrees with its segment may be
    /// trusted by open. With damage found, the rebuild runs in salvage mode, past that damage.
    fn check_rebuild(&mut self) {
        if self.manifest.is_none() || self.hint_damage {
            return;
        }
        let clean = self.report.damage.is_empty();
        let options = Options { salvage: !clean, ..Options::default() };
        match rebuild_read_only(self.dir, &options) {
            Ok(opened) => {
                let rebuild = Rebuild {
                    live_keys: opened.index.len(),
                    records_read: opened.report.records_read,
                    segments_from_hints: opened.report.segments_from_hints,
                    segments_replayed: opened.report.segments_replayed,
                };
                if clean && rebuild.records_read != self.report.records {
                    let reason = format!(
                        "the index rebuild read {} records but the segments hold {}",
                        rebuild.records_read, self.report.records
                    );
                    self.report.damage.push(Damage { path: self.dir.dir.clone(), offset: 0, reason });
                }
                self.report.rebuild = Some(rebuild);
            }
            Err(e) if clean => self.report.damage.push(damage_of(self.dir, e)),
            Err(_) => {} // already reported, more precisely, by the walk
        }
    }
}

impl Walk {
    /// One valid record at `offset` in a segment (a log segment if `log`).
    fn record(&mut self, offset: u32, r: &RecordView<'_>, log: bool, hasher: Option<&KeyHasher>) {
        self.seq_max = self.seq_max.max(r.seq);
        if let Some(last) = self.last_seq.filter(|&last| log && r.seq <= last) {
            self.damage
                .push((u64::from(offset), format!("sequence number {} does not increase (previous {last})", r.seq)));
        }
        self.last_seq = Some(r.seq);
        if let Some(entries) = &mut self.entries {
            entries.push(entry_for(offset, r, hasher));
        }
    }
}

/// Compares a hint that passed open's checks with what the segment holds, entry by entry: the
/// first disagreement, with its offset in the hint file. Key hashes are compared only if they
/// could be computed (`hashed`: the manifest, which holds the hash key, was readable).
fn compare_hint(hint: &HintFile, walk: &Walk, hashed: bool) -> Option<(u64, String)> {
    let (data_end, seq_max) = (walk.data_end, walk.seq_max);
    if hint.data_end != data_end {
        let reason = format!("hint says the data ends at {} but the segment's data ends at {data_end}", hint.data_end);
        return Some((HINT_DATA_END_OFFSET as u64, reason));
    }
    if hint.seq_max != seq_max {
        let reason = format!("hint says the highest sequence number is {} but it is {seq_max}", hint.seq_max);
        return Some((HINT_SEQ_MAX_OFFSET as u64, reason));
    }
    let expected = walk.entries.as_deref().unwrap_or_default();
    let mut at = HINT_HEADER_BYTES as u64;
    let mut prev = (0u32, 0u64);
    for (i, (got, want)) in hint.entries.iter().zip(expected).enumerate() {
        let got_unhashed = HintEntry { key_hash: if hashed { got.key_hash } else { 0 }, ..*got };
        if got_unhashed != *want {
            let reason = format!(
                "hint entry {i} ({:?} at segment offset {}, seq {}) does not match the segment's record {i} ({:?} at offset {}, seq {})",
                got.kind, got.offset, got.seq, want.kind, want.offset, want.seq
            );
            return Some((at, reason));
        }
        at += encoded_entry_len(got, prev.0, prev.1) as u64;
        prev = (got.offset, got.seq);
    }
    if hint.entries.len() != expected.len() {
        let reason = format!("hint lists {} records but the segment holds {}", hint.entries.len(), expected.len());
        return Some((at, reason));
    }
    None
}
