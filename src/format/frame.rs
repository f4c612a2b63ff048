//! Frames: what one group commit appends with one write and makes durable with one sync. Its
//! single checksum covers all its records, so a frame (and any batch inside it) is all or nothing.
//!
//! ```text
//! frame header, FRAME_HEADER_BYTES = 24
//! offset width field
//!      0     4 magic 0x52_46_43_46 ("FCFR" in file order)
//!      4     4 CRC-32 (IEEE) of the segment's frame salt (8 bytes), then bytes 8..24 of the
//!               header, then the whole body
//!      8     4 body length in bytes
//!     12     4 record count (at least 1)
//!     16     8 group number: consecutive within a log segment, starting at the header's first group
//!     24     . body: `record count` records back to back (see `record.rs`), exactly `body length` bytes
//! ```
//!
//! The checksum is seeded with the frame salt of the segment the frame is written into: a random
//! value drawn when the segment is created and kept in its header (see `segment.rs`), never
//! returned through the API. A user's value may hold bytes laid out exactly like a frame, but its
//! author cannot know the salt, so those bytes fail the checksum (but for the 2^-32 chance of any
//! 32-bit check): no stored value counts as a frame, in that segment or, after compaction or a
//! copy, in any other.

use super::record::{decode_record, RecordView, RECORD_HEADER_BYTES};
use super::{get_u32, get_u64, put_u32, put_u64, DecodeError, DecodeErrorKind, Structure};

// Where each header field starts, each right after the one before (the drawing above).
const OFF_MAGIC: usize = 0;
const OFF_CRC: usize = OFF_MAGIC + 4;
const OFF_BODY_LEN: usize = OFF_CRC + 4;
const OFF_COUNT: usize = OFF_BODY_LEN + 4;
const OFF_GROUP: usize = OFF_COUNT + 4;

/// Size of a frame header; the body follows it.
pub const FRAME_HEADER_BYTES: usize = OFF_GROUP + 8;

/// The per-segment secret that seeds every frame checksum in a segment (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameSalt(pub u64);

impl FrameSalt {
    fn bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

impl std::fmt::Debug for FrameSalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameSalt(..)") // a secret: kept out of logs and error messages
    }
}

/// The checksum of a frame's header bytes 8..24 and body (`covered`) under `salt`.
fn frame_crc(salt: FrameSalt, covered: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.bytes());
    hasher.update(covered);
    hasher.finalize()
}

/// The first four bytes of every frame.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"FCFR");

/// Starts a frame in `out`: reserves its header, to be filled by [`finish_frame`].
pub fn start_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + FRAME_HEADER_BYTES, 0);
    start
}

/// Fills in the header of the frame started at `start` (all bytes after it are its body), its
/// checksum under the salt of the segment it goes into, and returns the frame's total length.
pub fn finish_frame(out: &mut [u8], start: usize, group: u64, record_count: u32, salt: FrameSalt) -> usize {
    let body_len = out.len() - start - FRAME_HEADER_BYTES;
    assert!(record_count > 0, "a frame holds at least one record");
    let frame = &mut out[start..];
    put_u32(frame, OFF_MAGIC, FRAME_MAGIC);
    put_u32(frame, OFF_BODY_LEN, u32::try_from(body_len).expect("frame body fits u32"));
    put_u32(frame, OFF_COUNT, record_count);
    put_u64(frame, OFF_GROUP, group);
    let crc = frame_crc(salt, &frame[OFF_BODY_LEN..]);
    put_u32(frame, OFF_CRC, crc);
    FRAME_HEADER_BYTES + body_len
}

fn frame_error(kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(Structure::Frame, kind)
}

/// The header's lengths or count are impossible.
const BAD_HEADER: DecodeError = DecodeError::invalid(Structure::Frame, "impossible frame header");
/// The checksum matches but the body does not parse into the announced records.
const BAD_RECORD: DecodeError = DecodeError::invalid(Structure::Frame, "malformed record inside a checksummed frame");

/// A decoded, checksum-verified frame borrowing its input.
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    /// The frame's group number.
    pub group: u64,
    /// How many records the body holds.
    pub record_count: u32,
    /// Total length, header included.
    pub len: usize,
    body: &'a [u8],
}

impl<'a> FrameView<'a> {
    /// The frame's records in order, each with its offset from the frame's start.
    pub fn records(&self) -> Records<'a> {
        Records { body: self.body, at: 0 }
    }
}

/// Decodes the frame at the start of `buf`, which is in a segment whose frame salt is `salt`.
/// Lengths are bounded by `buf` before anything is sliced or allocated, and every record is
/// parsed, so an accepted frame is well-formed.
pub fn decode_frame(buf: &[u8], salt: FrameSalt) -> Result<FrameView<'_>, DecodeError> {
    let zero = |header: &[u8]| header.iter().all(|&b| b == 0);
    if buf.len() < FRAME_HEADER_BYTES {
        let kind = if zero(buf) { DecodeErrorKind::Zero } else { DecodeErrorKind::Truncated };
        return Err(frame_error(kind));
    }
    if get_u32(buf, OFF_MAGIC) != FRAME_MAGIC {
        let kind = if zero(&buf[..FRAME_HEADER_BYTES]) { DecodeErrorKind::Zero } else { DecodeErrorKind::BadMagic };
        return Err(frame_error(kind));
    }
    let body_len = get_u32(buf, OFF_BODY_LEN) as usize;
    let record_count = get_u32(buf, OFF_COUNT);
    if record_count == 0 || (record_count as usize).saturating_mul(RECORD_HEADER_BYTES + 1) > body_len {
        return Err(BAD_HEADER);
    }
    let len = FRAME_HEADER_BYTES.checked_add(body_len).ok_or(BAD_HEADER)?;
    if buf.len() < len {
        return Err(frame_error(DecodeErrorKind::Truncated));
    }
    if get_u32(buf, OFF_CRC) != frame_crc(salt, &buf[OFF_BODY_LEN..len]) {
        return Err(frame_error(DecodeErrorKind::BadChecksum));
    }
    let frame = FrameView { group: get_u64(buf, OFF_GROUP), record_count, len, body: &buf[FRAME_HEADER_BYTES..len] };
    let mut parsed = 0u32;
    let mut records = frame.records();
    for record in records.by_ref() {
        record.map_err(|_| BAD_RECORD)?;
        parsed += 1;
    }
    if parsed != record_count || records.at != body_len {
        return Err(BAD_RECORD);
    }
    Ok(frame)
}

/// Iterator over the records of a frame body; yields an error once, at the first malformed record.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.body.len() {
            return None;
        }
        let result = decode_record(&self.body[self.at..]).map(|(mut view, len)| {
            view.frame_offset = FRAME_HEADER_BYTES + self.at;
            self.at += len;
            view
        });
        if result.is_err() {
            self.at = self.body.len() + 1; // stop, and make the length check fail
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{decode_record_header, encode_record, RecordKind};
    use crate::format::COUNTER_LIMIT;

    const SALT: FrameSalt = FrameSalt(0x5a17_0001_d00d_f00d);

    fn sample_frame() -> Vec<u8> {
        let mut buf = Vec::new();
        let start = start_frame(&mut buf);
        encode_record(&mut buf, RecordKind::Put, 10, 0, b"alpha", b"one");
        encode_record(&mut buf, RecordKind::Delete, 11, 0, b"beta", b"");
        encode_record(&mut buf, RecordKind::Put, 12, 99, b"gamma", &[7u8; 300]);
        finish_frame(&mut buf, start, 5, 3, SALT);
        buf
    }

    #[test]
    fn frame_round_trips() {
        let buf = sample_frame();
        let frame = decode_frame(&buf, SALT).unwrap();
        assert_eq!((frame.group, frame.record_count, frame.len), (5, 3, buf.len()));
        let records: Vec<_> = frame.records().map(Result::unwrap).collect();
        assert_eq!(records[0].key, b"alpha");
        assert_eq!(records[0].value, b"one");
        assert_eq!(records[0].frame_offset, FRAME_HEADER_BYTES);
        assert_eq!(records[1].kind, RecordKind::Delete);
        assert_eq!((records[2].seq, records[2].expires_ms, records[2].value.len()), (12, 99, 300));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let buf = sample_frame();
        for cut in 0..buf.len() {
            let err = decode_frame(&buf[..cut], SALT).unwrap_err();
            assert!(matches!(err.kind, DecodeErrorKind::Truncated | DecodeErrorKind::Zero), "cut {cut}: {err:?}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let buf = sample_frame();
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_frame(&bad, SALT).is_err(), "flip of bit {bit} at byte {i} accepted");
            }
        }
    }

    /// Issue 10, item 6: a value can hold a well-formed frame; written under one segment's salt
    /// (or by someone who does not know it) it must not decode in a segment with another.
    #[test]
    fn a_frame_encoded_with_one_salt_does_not_decode_with_another() {
        let buf = sample_frame();
        assert!(decode_frame(&buf, SALT).is_ok());
        for other in [0, 1, SALT.0 ^ 1, SALT.0 ^ (1 << 63), !SALT.0, u64::MAX] {
            let err = decode_frame(&buf, FrameSalt(other)).unwrap_err();
            assert_eq!(err, frame_error(DecodeErrorKind::BadChecksum), "salt {other:#x}");
        }
    }

    #[test]
    fn salt_is_kept_out_of_debug_output() {
        assert_eq!(format!("{SALT:?}"), "FrameSalt(..)");
    }

    #[test]
    fn zeroes_are_recognised_as_unwritten_space() {
        assert_eq!(decode_frame(&[0u8; 64], SALT).unwrap_err(), frame_error(DecodeErrorKind::Zero));
        assert_eq!(decode_frame(&[0u8; 3], SALT).unwrap_err(), frame_error(DecodeErrorKind::Zero));
    }

    #[test]
    fn a_huge_length_field_is_bounded_by_the_input() {
        let mut buf = sample_frame();
        put_u32(&mut buf, OFF_BODY_LEN, u32::MAX);
        assert_eq!(decode_frame(&buf, SALT).unwrap_err(), frame_error(DecodeErrorKind::Truncated));
    }

    /// Fuzz finding (segment_recover, regressions `seq-max-*`): a checksummed frame whose record
    /// carries sequence number u64::MAX (or just below) was accepted, and the writer's next
    /// sequence number overflowed (a panic with overflow checks; without them, new writes got
    /// sequence numbers below the old record's and lost to it after reopen).
    #[test]
    fn regression_sequence_numbers_at_the_limit_are_rejected() {
        for seq in [COUNTER_LIMIT, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            let start = start_frame(&mut buf);
            encode_record(&mut buf, RecordKind::Put, seq, 0, b"k", b"v");
            finish_frame(&mut buf, start, 1, 1, SALT);
            assert_eq!(decode_frame(&buf, SALT).unwrap_err(), BAD_RECORD, "seq {seq}");
        }
        let mut buf = Vec::new();
        encode_record(&mut buf, RecordKind::Put, COUNTER_LIMIT - 1, 0, b"k", b"v");
        assert!(decode_record_header(&buf).is_ok());
    }
}
