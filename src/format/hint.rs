//! Hint files: a sealed segment's keys and record locations, without values, so that open can
//! rebuild the index without reading the segment.
//!
//! A hint is only an accelerator: whenever it is missing, fails its checksum or does not match
//! its segment, recovery replays the segment instead.
//!
//! ```text
//! header, HINT_HEADER_BYTES = 40
//! offset width field
//!      0     8 magic "FCASKHNT"
//!      8     2 format version
//!     10     2 reserved, zero
//!     12     4 entry count
//!     16     8 segment id this hint describes
//!     24     8 segment data end: offset just past the segment's last frame
//!     32     8 highest sequence number in the segment
//!
//! entry, HINT_ENTRY_HEADER_BYTES = 28, then the key
//!      0     1 record kind (1 = put, 2 = delete)
//!      1     1 reserved, zero
//!      2     2 key length
//!      4     4 record offset in the segment
//!      8     4 value length
//!     12     8 record sequence number
//!     20     8 record expiry (Unix milliseconds, 0 = never)
//!     28     . key bytes
//!
//! trailer: 4 bytes, CRC-32 (IEEE) of everything before it
//! ```

use super::record::RecordKind;
use super::{get_u16, get_u32, get_u64, FORMAT_VERSION, KEY_BYTES_MAX};

/// Size of the hint file header.
pub const HINT_HEADER_BYTES: usize = 40;
/// Size of a hint entry before its key.
pub const HINT_ENTRY_HEADER_BYTES: usize = 28;
const HINT_MAGIC: &[u8; 8] = b"FCASKHNT";

/// One record's location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintEntry<'a> {
    /// Put or delete.
    pub kind: RecordKind,
    /// Offset of the record in its segment.
    pub offset: u32,
    /// Length of the record's value.
    pub value_len: u32,
    /// The record's sequence number.
    pub seq: u64,
    /// The record's expiry (Unix milliseconds, 0 = never).
    pub expires_ms: u64,
    /// The key.
    pub key: &'a [u8],
}

/// A decoded hint file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintFile<'a> {
    /// The segment described.
    pub segment_id: u64,
    /// Offset just past the segment's last frame.
    pub data_end: u64,
    /// Highest sequence number in the segment.
    pub seq_max: u64,
    /// Entries in segment order.
    pub entries: Vec<HintEntry<'a>>,
}

/// Why a hint file was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HintError(pub &'static str);

/// Encodes a hint file.
pub fn encode_hint(hint: &HintFile<'_>) -> Vec<u8> {
    let keys: usize = hint.entries.iter().map(|e| e.key.len()).sum();
    let mut out = Vec::with_capacity(HINT_HEADER_BYTES + HINT_ENTRY_HEADER_BYTES * hint.entries.len() + keys + 4);
    out.extend_from_slice(HINT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&u32::try_from(hint.entries.len()).expect("entry count fits u32").to_le_bytes());
    out.extend_from_slice(&hint.segment_id.to_le_bytes());
    out.extend_from_slice(&hint.data_end.to_le_bytes());
    out.extend_from_slice(&hint.seq_max.to_le_bytes());
    for e in &hint.entries {
        assert!(!e.key.is_empty() && e.key.len() <= KEY_BYTES_MAX, "hint key length in range");
        out.push(match e.kind {
            RecordKind::Put => 1,
            RecordKind::Delete => 2,
        });
        out.push(0);
        out.extend_from_slice(&(e.key.len() as u16).to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.value_len.to_le_bytes());
        out.extend_from_slice(&e.seq.to_le_bytes());
        out.extend_from_slice(&e.expires_ms.to_le_bytes());
        out.extend_from_slice(e.key);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a hint file. Every entry is bounded by the input before it is read; the entry
/// vector's capacity is bounded by what the input can hold.
pub fn decode_hint(buf: &[u8]) -> Result<HintFile<'_>, HintError> {
    if buf.len() < HINT_HEADER_BYTES + 4 || &buf[..8] != HINT_MAGIC {
        return Err(HintError("not a ferrocask hint file"));
    }
    let crc_at = buf.len() - 4;
    if get_u32(buf, crc_at) != crc32fast::hash(&buf[..crc_at]) {
        return Err(HintError("hint checksum mismatch"));
    }
    if get_u16(buf, 8) != FORMAT_VERSION {
        return Err(HintError("unsupported hint format version"));
    }
    let count = get_u32(buf, 12) as usize;
    let body = &buf[HINT_HEADER_BYTES..crc_at];
    if count > body.len() / (HINT_ENTRY_HEADER_BYTES + 1) {
        return Err(HintError("hint entry count exceeds the file"));
    }
    let mut entries = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        if body.len() - at < HINT_ENTRY_HEADER_BYTES {
            return Err(HintError("hint entry cut short"));
        }
        let kind = match body[at] {
            1 => RecordKind::Put,
            2 => RecordKind::Delete,
            _ => return Err(HintError("bad hint entry kind")),
        };
        let key_len = get_u16(body, at + 2) as usize;
        if body[at + 1] != 0 || key_len == 0 || key_len > KEY_BYTES_MAX {
            return Err(HintError("bad hint entry header"));
        }
        let key_at = at + HINT_ENTRY_HEADER_BYTES;
        if body.len() - key_at < key_len {
            return Err(HintError("hint key cut short"));
        }
        entries.push(HintEntry {
            kind,
            offset: get_u32(body, at + 4),
            value_len: get_u32(body, at + 8),
            seq: get_u64(body, at + 12),
            expires_ms: get_u64(body, at + 20),
            key: &body[key_at..key_at + key_len],
        });
        at = key_at + key_len;
    }
    if at != body.len() {
        return Err(HintError("trailing bytes after the last hint entry"));
    }
    Ok(HintFile { segment_id: get_u64(buf, 16), data_end: get_u64(buf, 24), seq_max: get_u64(buf, 32), entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_round_trips_and_rejects_damage() {
        let hint = HintFile {
            segment_id: 3,
            data_end: 4096,
            seq_max: 77,
            entries: vec![
                HintEntry { kind: RecordKind::Put, offset: 64, value_len: 5, seq: 70, expires_ms: 0, key: b"a" },
                HintEntry { kind: RecordKind::Delete, offset: 200, value_len: 0, seq: 77, expires_ms: 9, key: b"bcd" },
            ],
        };
        let buf = encode_hint(&hint);
        assert_eq!(decode_hint(&buf), Ok(hint));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x04;
            assert!(decode_hint(&bad).is_err(), "flip at {i} accepted");
        }
        for cut in 0..buf.len() {
            assert!(decode_hint(&buf[..cut]).is_err());
        }
    }
}
