//! The segment file header.
//!
//! ```text
//! offset width field
//!      0     8 magic "FCASKSEG"
//!      8     2 format version (FORMAT_VERSION)
//!     10     1 kind: 1 = log (appended by writers), 2 = compacted (written whole by compaction)
//!     11     5 reserved, zero
//!     16     8 segment id
//!     24     8 first group: the group number the first frame must carry (log segments), below
//!               COUNTER_LIMIT
//!     32     4 CRC-32 (IEEE) of bytes 0..32
//!     36     4 reserved, zero
//! ```

use super::{get_u16, get_u32, get_u64, COUNTER_LIMIT, FORMAT_VERSION};

/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 40;

const SEGMENT_MAGIC: &[u8; 8] = b"FCASKSEG";
const OFF_VERSION: usize = 8;
const OFF_KIND: usize = 10;
const OFF_ID: usize = 16;
const OFF_FIRST_GROUP: usize = 24;
const OFF_CRC: usize = 32;

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
    out.extend_from_slice(&[0; 5]);
    out.extend_from_slice(&header.id.to_le_bytes());
    out.extend_from_slice(&header.first_group.to_le_bytes());
    let crc = crc32fast::hash(&out[start..start + OFF_CRC]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    debug_assert_eq!(out.len() - start, SEGMENT_HEADER_BYTES);
}

/// Decodes a segment header from the start of `buf`, or says why it is not one.
pub fn decode_segment_header(buf: &[u8]) -> Result<SegmentHeader, &'static str> {
    if buf.len() < SEGMENT_HEADER_BYTES {
        return Err("file is shorter than a segment header");
    }
    if &buf[..8] != SEGMENT_MAGIC {
        return Err("not a ferrocask segment (bad magic)");
    }
    if get_u32(buf, OFF_CRC) != crc32fast::hash(&buf[..OFF_CRC]) {
        return Err("segment header checksum mismatch");
    }
    if get_u16(buf, OFF_VERSION) != FORMAT_VERSION {
        return Err("unsupported segment format version");
    }
    let kind = match buf[OFF_KIND] {
        1 => SegmentKind::Log,
        2 => SegmentKind::Compacted,
        _ => return Err("unknown segment kind"),
    };
    let first_group = get_u64(buf, OFF_FIRST_GROUP);
    if first_group >= COUNTER_LIMIT {
        return Err("segment's first group number is out of range");
    }
    Ok(SegmentHeader { kind, id: get_u64(buf, OFF_ID), first_group })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_every_flip() {
        let header = SegmentHeader { kind: SegmentKind::Log, id: 7, first_group: 42 };
        let mut buf = Vec::new();
        encode_segment_header(&header, &mut buf);
        assert_eq!(decode_segment_header(&buf), Ok(header));
        for i in 0..OFF_CRC + 4 {
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
            encode_segment_header(&SegmentHeader { kind: SegmentKind::Log, id: 2, first_group }, &mut buf);
            assert!(decode_segment_header(&buf).is_err(), "first group {first_group}");
        }
    }
}
