//! Hint files: a sealed segment's record locations with their keys' hashes, so that open can
//! rebuild the index without reading the segment or hashing a key. Keys themselves are read from
//! the segment only when two hashes meet.
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
//!     32     8 highest sequence number in the segment, below COUNTER_LIMIT
//!
//! entry (variable length; "varint" = unsigned LEB128, at most 10 bytes, no overlong forms)
//!      1 byte   flags: bits 0-1 record kind (1 = put, 2 = delete), bit 7 = has expiry, others zero
//!      varint   key length (1..=KEY_BYTES_MAX)
//!      varint   record offset minus the previous entry's (the first: minus 0); offsets ascend
//!      varint   value length
//!      varint   zigzag(sequence number minus the previous entry's) (the first: minus 0); every
//!               sequence number is below COUNTER_LIMIT, as in the records
//!      8 bytes  the key's hash (SipHash-1-3 under the manifest's hash key), little-endian
//!      8 bytes  expiry, Unix milliseconds (only if bit 7 is set)
//!
//! trailer: 4 bytes, CRC-32 (IEEE) of everything before it
//! ```

use super::record::{record_header_len, RecordKind};
use super::{
    get_u16, get_u32, get_u64, DecodeError, DecodeErrorKind, Structure, COUNTER_LIMIT, CRC_BYTES, FILE_MAGIC_BYTES,
    FORMAT_VERSION, KEY_BYTES_MAX, OFF_FILE_VERSION,
};

const HINT_MAGIC: &[u8; FILE_MAGIC_BYTES] = b"FCASKHNT";
// Where each header field starts, each right after the one before (the drawing above).
const OFF_VERSION: usize = OFF_FILE_VERSION;
const OFF_RESERVED: usize = OFF_VERSION + 2;
const OFF_COUNT: usize = OFF_RESERVED + 2;
const OFF_SEGMENT_ID: usize = OFF_COUNT + 4;
const OFF_DATA_END: usize = OFF_SEGMENT_ID + 8;
const OFF_SEQ_MAX: usize = OFF_DATA_END + 8;

/// Size of the hint file header; the entries follow it.
pub const HINT_HEADER_BYTES: usize = OFF_SEQ_MAX + 8;

// Where header fields are, for messages that name the offset of what is wrong.
/// Where the header keeps the id of the segment described.
pub const HINT_SEGMENT_ID_OFFSET: usize = OFF_SEGMENT_ID;
/// Where the header keeps the segment's data end.
pub const HINT_DATA_END_OFFSET: usize = OFF_DATA_END;
/// Where the header keeps the segment's highest sequence number.
pub const HINT_SEQ_MAX_OFFSET: usize = OFF_SEQ_MAX;

/// Smallest possible encoded entry: flags, four one-byte varints and the hash.
const HINT_ENTRY_BYTES_MIN: usize = 13;
const FLAG_EXPIRES: u8 = 0x80;

/// One record's location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HintEntry {
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
    /// The key's length.
    pub key_len: u16,
    /// The key's hash under the store's hash key.
    pub key_hash: u64,
}

/// A decoded hint file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintFile {
    /// The segment described.
    pub segment_id: u64,
    /// Offset just past the segment's last frame.
    pub data_end: u64,
    /// Highest sequence number in the segment.
    pub seq_max: u64,
    /// Entries in segment order.
    pub entries: Vec<HintEntry>,
}

/// Encodes a hint file. Entries must be in ascending offset order.
pub fn encode_hint(hint: &HintFile) -> Vec<u8> {
    let mut out = Vec::with_capacity(HINT_HEADER_BYTES + 16 * hint.entries.len() + CRC_BYTES);
    out.extend_from_slice(HINT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&u32::try_from(hint.entries.len()).expect("entry count fits u32").to_le_bytes());
    out.extend_from_slice(&hint.segment_id.to_le_bytes());
    out.extend_from_slice(&hint.data_end.to_le_bytes());
    out.extend_from_slice(&hint.seq_max.to_le_bytes());
    debug_assert_eq!(out.len(), HINT_HEADER_BYTES, "the header drawn above");
    let (mut offset, mut seq) = (0u32, 0u64);
    for (i, e) in hint.entries.iter().enumerate() {
        assert!(e.key_len > 0 && usize::from(e.key_len) <= KEY_BYTES_MAX, "hint key length in range");
        assert!(i == 0 || e.offset > offset, "hint entries ascend by offset");
        let kind = match e.kind {
            RecordKind::Put => 1,
            RecordKind::Delete => 2,
        };
        out.push(if e.expires_ms != 0 { kind | FLAG_EXPIRES } else { kind });
        put_varint(&mut out, u64::from(e.key_len));
        put_varint(&mut out, u64::from(e.offset - offset));
        put_varint(&mut out, u64::from(e.value_len));
        put_varint(&mut out, zigzag(e.seq.wrapping_sub(seq) as i64));
        out.extend_from_slice(&e.key_hash.to_le_bytes());
        if e.expires_ms != 0 {
            out.extend_from_slice(&e.expires_ms.to_le_bytes());
        }
        (offset, seq) = (e.offset, e.seq);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

impl HintEntry {
    /// Encoded length of the record the entry describes.
    pub fn record_len(&self) -> u64 {
        (record_header_len(self.expires_ms) + usize::from(self.key_len)) as u64 + u64::from(self.value_len)
    }

    /// Offset just past the record the entry describes.
    pub fn record_end(&self) -> u64 {
        u64::from(self.offset) + self.record_len()
    }
}

/// A hint file's header fields, and what its entries say taken together: what a reader checks
/// against the segment before trusting the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HintSummary {
    /// The segment described.
    pub segment_id: u64,
    /// Offset just past the segment's last frame.
    pub data_end: u64,
    /// Highest sequence number in the segment.
    pub seq_max: u64,
    /// Number of entries.
    pub entries: usize,
    /// The first entry (the lowest offset), if any.
    pub first: Option<HintEntry>,
    /// The last entry (the highest offset), if any.
    pub last: Option<HintEntry>,
    /// The highest sequence number among the entries (0 if none).
    pub entry_seq_max: u64,
    /// The furthest any entry's record reaches (0 if none).
    pub records_end: u64,
}

impl HintSummary {
    fn new(segment_id: u64, data_end: u64, seq_max: u64) -> HintSummary {
        HintSummary {
            segment_id,
            data_end,
            seq_max,
            entries: 0,
            first: None,
            last: None,
            entry_seq_max: 0,
            records_end: 0,
        }
    }

    fn add(&mut self, e: &HintEntry) {
        self.entries += 1;
        self.first.get_or_insert(*e);
        self.last = Some(*e);
        self.entry_seq_max = self.entry_seq_max.max(e.seq);
        self.records_end = self.records_end.max(e.record_end());
    }
}

impl HintFile {
    /// The summary [`decode_hint_with`] would return for this file.
    pub fn summary(&self) -> HintSummary {
        let mut summary = HintSummary::new(self.segment_id, self.data_end, self.seq_max);
        self.entries.iter().for_each(|e| summary.add(e));
        summary
    }
}

/// Decodes a hint file into a vector of entries. See [`decode_hint_with`].
pub fn decode_hint(buf: &[u8]) -> Result<HintFile, DecodeError> {
    let mut entries = Vec::with_capacity(hint_entry_count(buf).unwrap_or(0));
    let summary = decode_hint_with(buf, |e| entries.push(e))?;
    Ok(HintFile { segment_id: summary.segment_id, data_end: summary.data_end, seq_max: summary.seq_max, entries })
}

/// Decodes a hint file, handing each entry to `on_entry` in order without collecting them. On an
/// error, entries already handed over must be discarded: the checksum is verified first, but the
/// structure only as decoding goes.
pub fn decode_hint_with(buf: &[u8], mut on_entry: impl FnMut(HintEntry)) -> Result<HintSummary, DecodeError> {
    let error = |kind| Err(DecodeError::new(Structure::Hint, kind));
    let invalid = |why| error(DecodeErrorKind::Invalid(why));
    if buf.len() < HINT_HEADER_BYTES + CRC_BYTES {
        return error(DecodeErrorKind::Truncated);
    }
    if buf[..FILE_MAGIC_BYTES] != HINT_MAGIC[..] {
        return error(DecodeErrorKind::BadMagic);
    }
    let crc_at = buf.len() - CRC_BYTES;
    if get_u32(buf, crc_at) != crc32fast::hash(&buf[..crc_at]) {
        return error(DecodeErrorKind::BadChecksum);
    }
    let version = get_u16(buf, OFF_VERSION);
    if version != FORMAT_VERSION {
        return error(DecodeErrorKind::Version(version));
    }
    if get_u16(buf, OFF_RESERVED) != 0 {
        return error(DecodeErrorKind::Reserved);
    }
    let seq_max = get_u64(buf, OFF_SEQ_MAX);
    if seq_max >= COUNTER_LIMIT {
        return invalid("hint's highest sequence number is out of range");
    }
    let count = get_u32(buf, OFF_COUNT) as usize;
    let mut r = Reader { buf: &buf[HINT_HEADER_BYTES..crc_at], at: 0 };
    if count > r.buf.len() / HINT_ENTRY_BYTES_MIN {
        return invalid("hint entry count exceeds the file");
    }
    let mut summary = HintSummary::new(get_u64(buf, OFF_SEGMENT_ID), get_u64(buf, OFF_DATA_END), seq_max);
    let (mut offset, mut seq) = (0u32, 0u64);
    for i in 0..count {
        let Some(e) = r.entry(offset, seq) else { return invalid("malformed hint entry") };
        if i > 0 && e.offset <= offset {
            return invalid("hint entries out of order");
        }
        (offset, seq) = (e.offset, e.seq);
        summary.add(&e);
        on_entry(e);
    }
    if r.at != r.buf.len() {
        return invalid("trailing bytes after the last hint entry");
    }
    Ok(summary)
}

/// The entry count a hint file announces, without checking the file, capped by what `buf` could
/// hold: safe for sizing a vector before decoding.
pub fn hint_entry_count(buf: &[u8]) -> Option<usize> {
    (buf.len() >= HINT_HEADER_BYTES && buf[..FILE_MAGIC_BYTES] == HINT_MAGIC[..])
        .then(|| (get_u32(buf, OFF_COUNT) as usize).min(buf.len() / HINT_ENTRY_BYTES_MIN))
}

/// A cursor over hint entries; every read is bounds-checked. Open decodes one entry per record
/// of the store, so the common shapes (one-byte varints, the fixed-width hash) take a short path
/// that the compiler inlines into the decoding loop; the checks are the same on every path.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn entry(&mut self, prev_offset: u32, prev_seq: u64) -> Option<HintEntry> {
        let flags = self.byte()?;
        let kind = match flags & !FLAG_EXPIRES {
            1 => RecordKind::Put,
            2 => RecordKind::Delete,
            _ => return None,
        };
        let key_len = usize::try_from(self.varint()?).ok().filter(|&l| (1..=KEY_BYTES_MAX).contains(&l))?;
        let offset = prev_offset.checked_add(u32::try_from(self.varint()?).ok()?)?;
        let value_len = u32::try_from(self.varint()?).ok()?;
        // Bounded as a record's is: the writer's `+ 1` after the highest one must never overflow.
        let seq = Some(prev_seq.wrapping_add(unzigzag(self.varint()?) as u64)).filter(|&s| s < COUNTER_LIMIT)?;
        let key_hash = self.u64()?;
        let expires_ms = if flags & FLAG_EXPIRES != 0 {
            // An expiry of 0 is written as no expiry: one encoding per entry.
            Some(self.u64()?).filter(|&ms| ms != 0)?
        } else {
            0
        };
        if kind == RecordKind::Delete && value_len != 0 {
            return None;
        }
        Some(HintEntry { kind, offset, value_len, seq, expires_ms, key_len: key_len as u16, key_hash })
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.buf.get(self.at..self.at.checked_add(8)?)?.try_into().ok()?;
        self.at += 8;
        Some(u64::from_le_bytes(bytes))
    }

    /// Unsigned LEB128; rejects more than 10 bytes, overflow and overlong encodings. A value
    /// below 128 (one byte, never overlong) is read inline.
    #[inline(always)]
    fn varint(&mut self) -> Option<u64> {
        let b = *self.buf.get(self.at)?;
        if b < 0x80 {
            self.at += 1;
            return Some(u64::from(b));
        }
        self.varint_long()
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                return (i == 0 || b != 0).then_some(value);
            }
        }
        None
    }
}

/// Encoded length of `entry` when it follows an entry at `prev_offset` with `prev_seq` (0 and 0
/// for the first), so tools can name the byte offset of an entry in a hint file.
pub fn encoded_entry_len(entry: &HintEntry, prev_offset: u32, prev_seq: u64) -> usize {
    let varint_len = |v: u64| (64 - v.leading_zeros() as usize).div_ceil(7).max(1);
    1 + varint_len(u64::from(entry.key_len))
        + varint_len(u64::from(entry.offset.wrapping_sub(prev_offset)))
        + varint_len(u64::from(entry.value_len))
        + varint_len(zigzag(entry.seq.wrapping_sub(prev_seq) as i64))
        + 8
        + if entry.expires_ms != 0 { 8 } else { 0 }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
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
                HintEntry {
                    kind: RecordKind::Put,
                    offset: 64,
                    value_len: 5,
                    seq: 70,
                    expires_ms: 0,
                    key_len: 1,
                    key_hash: 11,
                },
                HintEntry {
                    kind: RecordKind::Delete,
                    offset: 200,
                    value_len: 0,
                    seq: 77,
                    expires_ms: 9,
                    key_len: 3,
                    key_hash: u64::MAX,
                },
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

    #[test]
    fn a_hint_with_a_nonzero_reserved_byte_is_rejected_even_under_a_valid_checksum() {
        let hint = HintFile { segment_id: 3, data_end: 4096, seq_max: 0, entries: Vec::new() };
        for at in [OFF_RESERVED, OFF_RESERVED + 1] {
            let mut bad = encode_hint(&hint);
            bad[at] = 1;
            let crc_at = bad.len() - CRC_BYTES;
            let crc = crc32fast::hash(&bad[..crc_at]);
            bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(
                decode_hint(&bad),
                Err(DecodeError::new(Structure::Hint, DecodeErrorKind::Reserved)),
                "byte {at}"
            );
        }
    }

    #[test]
    fn the_summary_decoding_gathers_is_the_files_own() {
        let entry = |offset, seq, expires_ms| HintEntry {
            kind: RecordKind::Put,
            offset,
            value_len: 10,
            seq,
            expires_ms,
            key_len: 3,
            key_hash: 1,
        };
        let hint =
            HintFile { segment_id: 4, data_end: 500, seq_max: 9, entries: vec![entry(40, 9, 0), entry(90, 2, 7)] };
        let summary = decode_hint_with(&encode_hint(&hint), |_| {}).unwrap();
        assert_eq!(summary, hint.summary());
        assert_eq!((summary.first, summary.last), (Some(hint.entries[0]), Some(hint.entries[1])));
        assert_eq!((summary.entry_seq_max, summary.records_end), (9, 90 + 24 + 3 + 10));
    }

    /// Fuzz finding (record_decode, regression `record_decode/hint-expiry-flag-with-zero-expiry`):
    /// an entry flagged as expiring with an expiry of 0 decoded to "no expiry" and so re-encoded
    /// differently. It is now rejected: every entry has one encoding.
    #[test]
    fn regression_an_expiry_flag_with_a_zero_expiry_is_rejected() {
        let entry = HintEntry {
            kind: RecordKind::Put,
            offset: 64,
            value_len: 1,
            seq: 1,
            expires_ms: 5,
            key_len: 1,
            key_hash: 9,
        };
        let hint = HintFile { segment_id: 1, data_end: 100, seq_max: 1, entries: vec![entry] };
        let mut bytes = encode_hint(&hint);
        let expiry_at = bytes.len() - CRC_BYTES - 8;
        bytes[expiry_at..expiry_at + 8].copy_from_slice(&[0; 8]);
        let crc_at = bytes.len() - CRC_BYTES;
        let crc = crc32fast::hash(&bytes[..crc_at]);
        bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_hint(&bytes).is_err());
    }

    /// Issue 10, item 7: a checksummed hint whose middle entry carries a sequence number at or
    /// above COUNTER_LIMIT (with `seq_max` to match) was accepted; recovery's `seq_max + 1`
    /// overflowed, or a later write got a sequence number its own record decoder rejects.
    #[test]
    fn regression_sequence_numbers_at_the_limit_are_rejected() {
        let entry = |offset, seq| HintEntry {
            kind: RecordKind::Put,
            offset,
            value_len: 1,
            seq,
            expires_ms: 0,
            key_len: 1,
            key_hash: 9,
        };
        for seq in [COUNTER_LIMIT, COUNTER_LIMIT + 1, u64::MAX] {
            let entries = vec![entry(40, 1), entry(60, seq), entry(80, 3)];
            for seq_max in [seq, 3] {
                let hint = HintFile { segment_id: 1, data_end: 100, seq_max, entries: entries.clone() };
                assert!(decode_hint(&encode_hint(&hint)).is_err(), "entry seq {seq}, seq_max {seq_max}");
            }
        }
        let hint = HintFile { segment_id: 1, data_end: 100, seq_max: COUNTER_LIMIT, entries: vec![entry(40, 1)] };
        assert!(decode_hint(&encode_hint(&hint)).is_err(), "seq_max at the limit");
        let top = COUNTER_LIMIT - 1;
        let hint = HintFile { segment_id: 1, data_end: 100, seq_max: top, entries: vec![entry(40, 1), entry(60, top)] };
        assert_eq!(decode_hint(&encode_hint(&hint)), Ok(hint), "the largest allowed sequence number decodes");
    }

    #[test]
    fn varints_round_trip_and_reject_overlong_forms() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader { buf: &out, at: 0 };
            assert_eq!(r.varint(), Some(v));
            assert_eq!(r.at, out.len());
        }
        assert_eq!(Reader { buf: &[0x80, 0x00], at: 0 }.varint(), None, "overlong zero");
        assert_eq!(Reader { buf: &[0xff; 11], at: 0 }.varint(), None, "too long");
        for v in [0i64, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn a_typical_entry_costs_about_fifteen_bytes() {
        let entries: Vec<_> = (0..1000u32)
            .map(|i| HintEntry {
                kind: RecordKind::Put,
                offset: 40 + i * 140,
                value_len: 100,
                seq: 5000 + u64::from(i),
                expires_ms: 0,
                key_len: 16,
                key_hash: u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            })
            .collect();
        let hint = HintFile { segment_id: 1, data_end: 40 + 1000 * 140, seq_max: 5999, entries };
        let bytes = encode_hint(&hint);
        let per_entry = (bytes.len() - HINT_HEADER_BYTES - 4) as f64 / 1000.0;
        let mut prev = (0, 0);
        let summed: usize = hint
            .entries
            .iter()
            .map(|e| {
                let len = encoded_entry_len(e, prev.0, prev.1);
                prev = (e.offset, e.seq);
                len
            })
            .sum();
        assert_eq!(summed, bytes.len() - HINT_HEADER_BYTES - 4);
        assert!(per_entry <= 15.0, "{per_entry} bytes per entry");
        assert_eq!(decode_hint(&bytes).unwrap(), hint);
    }
}
