//! Records: one put or delete, back to back inside a frame's body (see `frame.rs`).
//!
//! ```text
//! record, RECORD_HEADER_BYTES = 16 (24 with an expiry), then key and value
//! offset width field
//!      0     1 kind: 1 = put, 2 = delete (tombstone, value length 0)
//!      1     1 flags: bit 0 = has expiry; the other bits zero (reserved)
//!      2     2 key length (1..=KEY_BYTES_MAX)
//!      4     4 value length (0..=VALUE_BYTES_MAX)
//!      8     8 sequence number (unique per record, increasing in log order, below COUNTER_LIMIT)
//!     16     8 expiry, milliseconds since the Unix epoch, non-zero (only if flags bit 0)
//!  16/24     . key bytes, then value bytes
//! ```

use std::ops::Range;

use super::{
    get_u16, get_u32, get_u64, put_u64, DecodeError, DecodeErrorKind, Structure, COUNTER_LIMIT, KEY_BYTES_MAX,
    VALUE_BYTES_MAX,
};

// Where each header field starts, each right after the one before (the drawing above).
const OFF_KIND: usize = 0;
const OFF_FLAGS: usize = OFF_KIND + 1;
const OFF_KEY_LEN: usize = OFF_FLAGS + 1;
const OFF_VALUE_LEN: usize = OFF_KEY_LEN + 2;
const OFF_SEQ: usize = OFF_VALUE_LEN + 4;
const OFF_EXPIRES: usize = OFF_SEQ + 8;

/// Size of a record header without an expiry; the key follows it.
pub const RECORD_HEADER_BYTES: usize = OFF_EXPIRES;
/// Size of a record header with an expiry.
pub const RECORD_HEADER_BYTES_MAX: usize = OFF_EXPIRES + 8;
const FLAG_EXPIRES: u8 = 0x01;

/// Header length of a record with expiry `expires_ms` (0 = none).
pub fn record_header_len(expires_ms: u64) -> usize {
    if expires_ms == 0 {
        RECORD_HEADER_BYTES
    } else {
        RECORD_HEADER_BYTES_MAX
    }
}

/// Whether a record with expiry `expires_ms` (0 = never) has expired at the time `now_ms` gives
/// (both in milliseconds since the Unix epoch). At its expiry time a key already reads as absent.
/// The time is asked for only if the record has an expiry: most have none, and reading a clock
/// costs more than a whole lookup in memory.
#[inline]
pub fn is_expired(expires_ms: u64, now_ms: impl FnOnce() -> u64) -> bool {
    expires_ms != 0 && expires_ms <= now_ms()
}

/// What a record does to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Sets the key to the value.
    Put,
    /// Deletes the key (a tombstone).
    Delete,
}

impl RecordKind {
    fn to_byte(self) -> u8 {
        match self {
            RecordKind::Put => 1,
            RecordKind::Delete => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordKind::Put),
            2 => Some(RecordKind::Delete),
            _ => None,
        }
    }
}

/// Appends one record to `out` and returns its header, as a decoder would read it back: the caller
/// knows where each record it encoded sits without decoding it. The caller has checked the limits.
pub fn encode_record(
    out: &mut Vec<u8>,
    kind: RecordKind,
    seq: u64,
    expires_ms: u64,
    key: &[u8],
    value: &[u8],
) -> RecordHeader {
    assert!(!key.is_empty() && key.len() <= KEY_BYTES_MAX, "key length {} outside 1..={KEY_BYTES_MAX}", key.len());
    assert!(value.len() <= VALUE_BYTES_MAX, "value length {} over {VALUE_BYTES_MAX}", value.len());
    assert!(kind == RecordKind::Put || value.is_empty(), "a tombstone carries no value");
    let start = out.len();
    out.push(kind.to_byte());
    out.push(if expires_ms != 0 { FLAG_EXPIRES } else { 0 });
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    if expires_ms != 0 {
        out.extend_from_slice(&expires_ms.to_le_bytes());
    }
    let header_len = out.len() - start;
    debug_assert_eq!(header_len, record_header_len(expires_ms), "the header as drawn above");
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    RecordHeader { kind, key_len: key.len(), value_len: value.len(), seq, expires_ms, header_len }
}

/// One record inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Put or delete.
    pub kind: RecordKind,
    /// The record's sequence number.
    pub seq: u64,
    /// Expiry in Unix milliseconds; 0 = never.
    pub expires_ms: u64,
    /// The key.
    pub key: &'a [u8],
    /// The value (empty for a delete).
    pub value: &'a [u8],
    /// Offset of the record's first byte from the start of its frame.
    pub frame_offset: usize,
}

impl RecordView<'_> {
    /// Encoded length of the record.
    pub fn len(&self) -> usize {
        record_header_len(self.expires_ms) + self.key.len() + self.value.len()
    }

    /// Always false: a record has at least a header. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Decodes the record at the start of `buf` and its length. Inline: replay calls it once per
/// record, and LLVM stopped inlining it when the index changed (+50 instructions per record).
#[inline]
pub(super) fn decode_record(buf: &[u8]) -> Result<(RecordView<'_>, usize), DecodeError> {
    let header = decode_record_header(buf)?;
    let len = header.record_len();
    if buf.len() < len {
        return Err(record_error(DecodeErrorKind::Truncated));
    }
    let view = RecordView {
        kind: header.kind,
        seq: header.seq,
        expires_ms: header.expires_ms,
        key: &buf[header.key_range(0)],
        value: &buf[header.value_range(0)],
        frame_offset: 0,
    };
    Ok((view, len))
}

fn record_error(kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(Structure::Record, kind)
}

/// The fixed part of a record, as the read path needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Put or delete.
    pub kind: RecordKind,
    /// Key length in bytes.
    pub key_len: usize,
    /// Value length in bytes.
    pub value_len: usize,
    /// Sequence number.
    pub seq: u64,
    /// Expiry in Unix milliseconds; 0 = never.
    pub expires_ms: u64,
    /// Length of the header itself (16, or 24 with an expiry); the key starts here.
    pub header_len: usize,
}

impl RecordHeader {
    /// Encoded length of the whole record.
    pub fn record_len(&self) -> usize {
        self.header_len + self.key_len + self.value_len
    }

    /// Where the key is, in a buffer whose record with this header starts at `at`.
    #[inline]
    pub fn key_range(&self, at: usize) -> Range<usize> {
        let start = at + self.header_len;
        start..start + self.key_len
    }

    /// Where the value is, in a buffer whose record with this header starts at `at`.
    #[inline]
    pub fn value_range(&self, at: usize) -> Range<usize> {
        let start = at + self.header_len + self.key_len;
        start..start + self.value_len
    }
}

/// Decodes and bounds-checks a record header. `Truncated` if `buf` ends first, which for a buffer
/// of [`RECORD_HEADER_BYTES`] means the header carries an expiry: read [`RECORD_HEADER_BYTES_MAX`].
#[inline]
pub fn decode_record_header(buf: &[u8]) -> Result<RecordHeader, DecodeError> {
    let invalid = |why| Err(DecodeError::invalid(Structure::Record, why));
    if buf.len() < RECORD_HEADER_BYTES {
        return Err(record_error(DecodeErrorKind::Truncated));
    }
    if buf[OFF_FLAGS] & !FLAG_EXPIRES != 0 {
        return Err(record_error(DecodeErrorKind::Reserved));
    }
    let Some(kind) = RecordKind::from_byte(buf[OFF_KIND]) else { return invalid("unknown record kind") };
    let key_len = get_u16(buf, OFF_KEY_LEN) as usize;
    let value_len = get_u32(buf, OFF_VALUE_LEN) as usize;
    if key_len == 0 || key_len > KEY_BYTES_MAX {
        return invalid("record key length out of range");
    }
    if value_len > VALUE_BYTES_MAX {
        return invalid("record value length over the limit");
    }
    if kind == RecordKind::Delete && value_len != 0 {
        return invalid("tombstone with a value");
    }
    let (expires_ms, header_len) = if buf[OFF_FLAGS] & FLAG_EXPIRES != 0 {
        let Some(header) = buf.get(..RECORD_HEADER_BYTES_MAX) else {
            return Err(record_error(DecodeErrorKind::Truncated));
        };
        (get_u64(header, OFF_EXPIRES), RECORD_HEADER_BYTES_MAX)
    } else {
        (0, RECORD_HEADER_BYTES)
    };
    if header_len == RECORD_HEADER_BYTES_MAX && expires_ms == 0 {
        // An expiry of 0 is written as no expiry: one encoding per record.
        return invalid("record flagged as expiring with an expiry of 0");
    }
    let seq = get_u64(buf, OFF_SEQ);
    if seq >= COUNTER_LIMIT {
        return invalid("record sequence number out of range");
    }
    Ok(RecordHeader { kind, key_len, value_len, seq, expires_ms, header_len })
}

/// Writes sequence number `seq` into the record that starts at `at` in `buf`. Records are
/// encoded with sequence number 0 outside any lock; the group-commit leader stamps them as it
/// builds their frame, so that log order and sequence order agree.
pub fn stamp_seq(buf: &mut [u8], at: usize, seq: u64) {
    put_u64(buf, at + OFF_SEQ, seq);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_rejects_impossible_fields() {
        let mut buf = Vec::new();
        encode_record(&mut buf, RecordKind::Put, 1, 0, b"k", b"v");
        assert!(decode_record_header(&buf).is_ok());
        let mut bad = buf.clone();
        bad[OFF_KEY_LEN] = 0; // key length 0 (the key is 1 byte long)
        assert!(decode_record_header(&bad).is_err());
        let mut bad = buf.clone();
        bad[OFF_KIND] = 9;
        assert!(decode_record_header(&bad).is_err());
    }
}
