//! The segment file header.
//!
//! ```text
//! offset width field
//!      0     8 magic "FCASKSEG"
//!      8     2 format version (FORMAT_VERSION), checked before anything else so that a file of
//!               another version is named as such
//!     10     1 kind: 1 = log (appended by writers), 2 = compacted (written whole by compaction)
//!     11     1 reserved, zero
//!     12     8 frame salt: random, drawn when the segment is created; seeds every frame checksum
//!               in the segment (see `record.rs`)
//!     20     8 segment id
//!     28     8 first group: the group number the first frame must carry (log segments), below
//!               COUNTER_LIMIT
//!     36     4 CRC-32 (IEEE) of bytes 0..36
//! ```

use super::frame::FrameSalt;
use super::{
    get_u16, get_u32, get_u64, DecodeError, DecodeErrorKind, Structure, COUNTER_LIMIT, FILE_MAGIC_BYTES,
    FORMAT_VERSION, OFF_FILE_VERSION,
};

const SEGMENT_MAGIC: &[u8; FILE_MAGIC_BYTES] = b"FCASKSEG";

/// The group number every frame of a compacted segment carries (and its header's first group).
/// A log segment's groups start above it once anything was synced, which is what lets a retired
/// compacted segment's file be reused as a log segment: its old frames are of a group the new
/// segment never admits (DESIGN.md, "Recycled segment files").
pub const COMPACTED_FRAME_GROUP: u64 = 1;
// Where each field starts, each right after the one before (the drawing above).
const OFF_VERSION: usize = OFF_FILE_VERSION;
const OFF_KIND: usize = OFF_VERSION + 2;
const OFF_RESERVED: usize = OFF_KIND + 1;
const OFF_SALT: usize = OFF_RESERVED + 1;
const OFF_ID: usize = OFF_SALT + 8;
const OFF_FIRST_GROUP: usize = OFF_ID + 8;
const OFF_CRC: usize = OFF_FIRST_GROUP + 8;

/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = OFF_CRC + 4;

// Where fields are, for messages that name the offset of what is wrong.
/// Where the header keeps the segment's kind.
pub const SEGMENT_HEADER_KIND_OFFSET: usize = OFF_KIND;
/// Where the header keeps the segment id.
pub const SEGMENT_HEADER_ID_OFFSET: usize = OFF_ID;
/// Where the header keeps the segment's first group number.
pub const SEGMENT_HEADER_FIRST_GROUP_OFFSET: usize = OFF_FIRST_GROUP;

/// Who wrote a segment, which decides how recovery treats a bad frame in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// Appended frame by frame by the group-commit writer.
    Log,
    /// Written whole by compaction and synced before it was published.
    Compacted,
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Who wrote the segment.
    pub kind: SegmentKind,
    /// The segment's id, also its file name.
    pub id: u64,
    /// The group number of the first frame (log segments; compacted segments start at 1).
    pub first_group: u64,
    /// Seeds every frame checksum in the segment. Draw it at random for each new segment.
    pub salt: FrameSalt,
}

/// Appends the header's bytes to `out`.
pub fn encode_segment_header(header: &SegmentHeader, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(match header.kind {
        SegmentKind::Log => 1,
        SegmentKind::Compacted => 2,
    });
    out.push(0);
    out.extend_from_slice(&header.salt.0.to_le_bytes());
    out.extend_from_slice(&header.id.to_le_bytes());
    out.extend_from_slice(&header.first_group.to_le_bytes());
    let crc = crc32fast::hash(&out[start..start + OFF_CRC]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, SEGMENT_HEADER_BYTES);
}

/// Decodes a segment header from the start of `buf`, or says why it is not one.
pub fn decode_segment_header(buf: &[u8]) -> Result<SegmentHeader, DecodeError> {
    let error = |kind| Err(DecodeError::new(Structure::SegmentHeader, kind));
    if buf.len() < SEGMENT_HEADER_BYTES {
        return error(DecodeErrorKind::Truncated);
    }
    if buf[..FILE_MAGIC_BYTES] != SEGMENT_MAGIC[..] {
        return error(DecodeErrorKind::BadMagic);
    }
    let version = get_u16(buf, OFF_VERSION);
    if version != FORMAT_VERSION {
        return error(DecodeErrorKind::Version(version));
    }
    if get_u32(buf, OFF_CRC) != crc32fast::hash(&buf[..OFF_CRC]) {
        return error(DecodeErrorKind::BadChecksum);
    }
    if buf[OFF_RESERVED] != 0 {
        return error(DecodeErrorKind::Reserved);
    }
    let kind = match buf[OFF_KIND] {
        1 => SegmentKind::Log,
        2 => SegmentKind::Compacted,
        _ => return error(DecodeErrorKind::Invalid("unknown segment kind")),
    };
    let first_group = get_u64(buf, OFF_FIRST_GROUP);
    if first_group >= COUNTER_LIMIT {
        return error(DecodeErrorKind::Invalid("segment's first group number is out of range"));
    }
    let salt = FrameSalt(get_u64(buf, OFF_SALT));
    Ok(SegmentHeader { kind, id: get_u64(buf, OFF_ID), first_group, salt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_every_flip() {
        let header = SegmentHeader { kind: SegmentKind::Log, id: 7, first_group: 42, salt: FrameSalt(0xabcd) };
        let mut buf = Vec::new();
        encode_segment_header(&header, &mut buf);
        assert_eq!(decode_segment_header(&buf), Ok(header));
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            assert!(decode_segment_header(&bad).is_err(), "flip at byte {i} accepted");
        }
        assert!(decode_segment_header(&buf[..SEGMENT_HEADER_BYTES - 1]).is_err());
    }

    /// Fuzz finding (segment_recover, regression `group-max-active`): a checksummed header with
    /// first group u64::MAX was accepted, and the writer's group counter overflowed after the
    /// first sync (a panic with overflow checks).
    #[test]
    fn regression_first_group_at_the_limit_is_rejected() {
        for first_group in [COUNTER_LIMIT, u64::MAX] {
            let mut buf = Vec::new();
            let header = SegmentHeader { kind: SegmentKind::Log, id: 2, first_group, salt: FrameSalt(3) };
            encode_segment_header(&header, &mut buf);
            assert!(decode_segment_header(&buf).is_err(), "first group {first_group}");
        }
    }

    #[test]
    fn another_format_version_is_named_before_the_checksum_is_checked() {
        let mut buf = Vec::new();
        let header = SegmentHeader { kind: SegmentKind::Log, id: 1, first_group: 1, salt: FrameSalt(9) };
        encode_segment_header(&header, &mut buf);
        buf[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            decode_segment_header(&buf),
            Err(DecodeError::new(Structure::SegmentHeader, DecodeErrorKind::Version(1)))
        );
    }
}
