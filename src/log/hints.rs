//! Hint files of sealed segments: building one from a segment's frames, writing it, and checking
//! one against its segment before it is trusted (recovery) or reported on (`verify`), by one rule.

use crate::format::hash::KeyHasher;
use crate::format::{
    encode_hint, HintEntry, HintFile, HintSummary, RecordView, FRAME_HEADER_BYTES, HINT_DATA_END_OFFSET,
    HINT_HEADER_BYTES, HINT_SEGMENT_ID_OFFSET, HINT_SEQ_MAX_OFFSET, SEGMENT_HEADER_BYTES,
};
use crate::log::{hint_file_name, scan_frames, LogDir, ScanEnd, Segment};
use crate::Result;

/// The hint entry of record `r`, at `offset` in its segment. Without the store's hash key (a
/// `verify` that could not read the manifest) the key's hash is left 0.
pub(crate) fn entry_for(offset: u32, r: &RecordView<'_>, hasher: Option<&KeyHasher>) -> HintEntry {
    HintEntry {
        kind: r.kind,
        offset,
        value_len: r.value.len() as u32,
        seq: r.seq,
        expires_ms: r.expires_ms,
        key_len: r.key.len() as u16,
        key_hash: hasher.map_or(0, |h| h.hash(r.key)),
    }
}

/// Builds the hint file of a sealed segment from its frames.
pub(crate) fn build_hint(segment: &Segment, hasher: &KeyHasher) -> Option<Vec<u8>> {
    let end = segment.data_end();
    let bytes = segment.read(0, end as usize)?;
    let mut entries = Vec::new();
    let mut seq_max = 0;
    let scanned = scan_frames(&bytes, segment.salt, SEGMENT_HEADER_BYTES, None, |at, frame| {
        for r in frame.records().flatten() {
            seq_max = seq_max.max(r.seq);
            let offset = u32::try_from(at + r.frame_offset).expect("segment offsets fit u32");
            entries.push(entry_for(offset, &r, Some(hasher)));
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

/// Why a hint file does not describe its segment: where in the hint file, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HintMismatch {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

/// Checks a decoded hint file (`hint`, its summary) against `segment`, `file_len` bytes long, as
/// open relies on it (DESIGN.md, "Hint file"): it names the segment, its data end lies within
/// the file with nothing but zeros after it, every entry lies between the segment header and the
/// data end, its highest sequence number is its entries', and its first and last entries match
/// the records at their offsets (kind, lengths, sequence number, expiry, and the hash of the key
/// read from the segment, unless `hasher` is `None`).
///
/// This reads two records, not the segment: a hint whose checksum matches but whose middle
/// entries were altered on purpose passes, just as a segment whose checksums match is trusted.
/// A lookup still compares the key at the record with the key asked for, so such an entry can
/// hide a key but never return another key's value.
pub(crate) fn check_hint(
    segment: &Segment,
    file_len: u64,
    hint: &HintSummary,
    hasher: Option<&KeyHasher>,
) -> std::result::Result<(), HintMismatch> {
    let mismatch = |offset: usize, reason: String| Err(HintMismatch { offset: offset as u64, reason });
    if hint.segment_id != segment.id {
        return mismatch(
            HINT_SEGMENT_ID_OFFSET,
            format!("hint describes segment {} instead of {}", hint.segment_id, segment.id),
        );
    }
    if !(SEGMENT_HEADER_BYTES as u64..=file_len).contains(&hint.data_end) || !ends_at(segment, hint.data_end, file_len)
    {
        let reason = format!("hint says the data ends at {}, where the segment holds no end of data", hint.data_end);
        return mismatch(HINT_DATA_END_OFFSET, reason);
    }
    let below_header = hint.first.is_some_and(|e| u64::from(e.offset) < SEGMENT_HEADER_BYTES as u64);
    if below_header || hint.records_end > hint.data_end {
        return mismatch(HINT_HEADER_BYTES, "hint entries point outside the segment's data".into());
    }
    if hint.seq_max != hint.entry_seq_max {
        let reason = format!(
            "hint says the highest sequence number is {} but its entries' is {}",
            hint.seq_max, hint.entry_seq_max
        );
        return mismatch(HINT_SEQ_MAX_OFFSET, reason);
    }
    for (which, entry) in [("first", hint.first), ("last", hint.last)] {
        if let Some(e) = entry.filter(|e| !entry_matches(segment, e, hasher)) {
            let reason = format!("hint's {which} entry does not match the record at segment offset {}", e.offset);
            return mismatch(HINT_HEADER_BYTES, reason);
        }
    }
    Ok(())
}

/// Whether the record at a hint entry's offset is the one the entry describes (kind, lengths,
/// sequence number, expiry and, given the hash key, the hash of its key).
fn entry_matches(segment: &Segment, e: &HintEntry, hasher: Option<&KeyHasher>) -> bool {
    let Some(h) = segment.record_header(e.offset) else { return false };
    h.kind == e.kind
        && h.key_len == usize::from(e.key_len)
        && h.value_len == e.value_len as usize
        && h.seq == e.seq
        && h.expires_ms == e.expires_ms
        && hasher.is_none_or(|hasher| segment.key(e.offset, &h).is_some_and(|key| hasher.hash(&key) == e.key_hash))
}

/// Whether the segment's data ends at `data_end`: nothing but zeros (or the end of the file) in the
/// next frame header's place.
fn ends_at(segment: &Segment, data_end: u64, file_len: u64) -> bool {
    let rest = (file_len - data_end).min(FRAME_HEADER_BYTES as u64) as usize;
    rest == 0 || segment.read(data_end, rest).is_some_and(|b| b.iter().all(|&x| x == 0))
}
