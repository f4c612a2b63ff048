//! The on-disk format, encoded and decoded in one place, with no I/O.
//!
//! DESIGN.md draws every structure here byte by byte; the constants below are those drawings. All
//! integers are little-endian. Encoders append to a `Vec<u8>`; decoders read from `&[u8]` and
//! return typed results, never trusting a length field before bounding it by the input. This is
//! the code that recovery, compaction, `verify`, `dump` and the fuzzers share.

mod error;
mod frame;
pub(crate) mod hash;
mod hint;
mod keyspace;
mod manifest;
mod record;
mod segment;

pub use error::{DecodeError, DecodeErrorKind, Structure};
pub use frame::{
    decode_frame, finish_frame, start_frame, FrameSalt, FrameView, Records, FRAME_HEADER_BYTES, FRAME_MAGIC,
};
pub use hint::{
    decode_hint, decode_hint_with, encode_hint, encoded_entry_len, hint_entry_count, HintEntry, HintFile, HintSummary,
    HINT_DATA_END_OFFSET, HINT_HEADER_BYTES, HINT_SEGMENT_ID_OFFSET, HINT_SEQ_MAX_OFFSET,
};
pub use keyspace::{
    decode_registry, encode_registry, keyspace_of, keyspace_prefix, name_is_valid, registry_key, KeyspaceId,
    KeyspaceKind, Registry, RegistryEntry, KEYSPACES_MAX, KEYSPACE_ID_BYTES, KEYSPACE_KEY_OVERHEAD_BYTES,
    KEYSPACE_MARKER, KEYSPACE_NAME_BYTES_MAX, KEYSPACE_USER_KEY_BYTES_MAX, REGISTRY_HEADER_BYTES, REGISTRY_ID,
    REGISTRY_VERSION,
};
pub use manifest::{decode_manifest, encode_manifest, Manifest, MANIFEST_SEGMENTS_MAX};
pub use record::{
    decode_record_header, encode_record, is_expired, record_header_len, stamp_seq, RecordHeader, RecordKind,
    RecordView, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES_MAX,
};
pub use segment::{
    decode_segment_header, encode_segment_header, SegmentHeader, SegmentKind, COMPACTED_FRAME_GROUP,
    SEGMENT_HEADER_BYTES, SEGMENT_HEADER_FIRST_GROUP_OFFSET, SEGMENT_HEADER_ID_OFFSET, SEGMENT_HEADER_KIND_OFFSET,
};

/// The format version written into every file header. Bump it on any layout change and keep a
/// fixture of the old format in `tests/fixtures/`. Version 2 seeds frame checksums with a
/// per-segment salt; this build reads version 2 only.
pub const FORMAT_VERSION: u16 = 2;

/// Length of every file's magic (segment, manifest, hint).
const FILE_MAGIC_BYTES: usize = 8;
/// Where every file keeps its format version: a `u16` right after its magic, so that a file of
/// another version can be named as such whatever else changed in its layout (decoders report it
/// as [`DecodeErrorKind::Version`]).
const OFF_FILE_VERSION: usize = FILE_MAGIC_BYTES;
/// Length of the CRC-32 that ends the manifest and every hint file.
const CRC_BYTES: usize = 4;

/// Longest key accepted, in bytes. The record stores the key length in a `u16`.
pub const KEY_BYTES_MAX: usize = 4096;

/// Longest value accepted, in bytes (also bounded by what fits in one segment, see `Options`).
pub const VALUE_BYTES_MAX: usize = 64 << 20;

/// Sequence numbers and group numbers stay below this. Both count up by one from 1 (per record,
/// per sync), so no store reaches it; a larger one in a checksummed record or segment header was
/// not written by a store, and decoders reject it. This also keeps the writer's `+ 1` on either
/// counter from ever overflowing, whatever a file holds.
pub const COUNTER_LIMIT: u64 = 1 << 62;

/// Largest segment file, in bytes. Index entries hold a `u32` offset into a segment.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 31;

/// Most live segments (sealed and active) a store's writer lets it hold at once: just under
/// half the segments an index entry can name (its 20-bit slot, `index/segments.rs`), the rest
/// left to compaction, whose outputs take their slots before its inputs give theirs back. A
/// write that would need one more segment fails with `Error::TooManySegments` (compact, or
/// use larger segments). At the default 64 MiB segments that is about 32 TiB.
pub const LIVE_SEGMENTS_MAX: usize = (1 << 19) - (1 << 10);

/// Smallest segment file, in bytes: the header plus one frame holding one record with a
/// maximum-length key and a small value must fit.
pub const SEGMENT_BYTES_MIN: u64 = 16 << 10;

const _: () = assert!(KEY_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
const _: () = assert!(VALUE_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX);
const _: () = assert!(
    (SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES_MAX + KEY_BYTES_MAX) as u64 + 1024
        <= SEGMENT_BYTES_MIN
);

/// The hash of `key` under a store's hash key, as hint entries hold it (SipHash-1-3).
pub fn key_hash(hash_key: [u8; 16], key: &[u8]) -> u64 {
    crate::format::hash::KeyHasher::new(hash_key).hash(key)
}

/// Reads a little-endian `u16` at `at`; the caller has bounded `at + 2 <= buf.len()`.
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

/// Reads a little-endian `u32` at `at`; the caller has bounded `at + 4 <= buf.len()`.
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads a little-endian `u64` at `at`; the caller has bounded `at + 8 <= buf.len()`.
pub(crate) fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Writes a little-endian `u32` at `at`.
pub(crate) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian `u64` at `at`.
pub(crate) fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
