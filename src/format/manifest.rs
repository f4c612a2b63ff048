//! The manifest: which segments make up the store, and which one is active.
//!
//! It is replaced atomically (write `MANIFEST.tmp`, sync it, rename over `MANIFEST`, sync the
//! directory), which is the commit point of a segment roll-over and of a compaction.
//!
//! ```text
//! offset width field
//!      0     8 magic "FCASKMAN"
//!      8     2 format version
//!     10     2 reserved, zero (a decoder rejects anything else)
//!     12     4 segment count n (at least 1)
//!     16     8 next segment id (greater than every id below)
//!     24     8 active segment id (one of the ids below)
//!     32    16 hash key: the store's secret SipHash key (see src/format/hash.rs), fixed at creation
//!     48   8*n segment ids, ascending
//!   48+8n    4 CRC-32 (IEEE) of all preceding bytes
//! ```

use super::{
    get_u16, get_u32, get_u64, DecodeError, DecodeErrorKind, Structure, CRC_BYTES, FILE_MAGIC_BYTES, FORMAT_VERSION,
    OFF_FILE_VERSION,
};

const MANIFEST_MAGIC: &[u8; FILE_MAGIC_BYTES] = b"FCASKMAN";
// Where each fixed field starts, each right after the one before (the drawing above).
const OFF_VERSION: usize = OFF_FILE_VERSION;
const OFF_RESERVED: usize = OFF_VERSION + 2;
const OFF_COUNT: usize = OFF_RESERVED + 2;
const OFF_NEXT_ID: usize = OFF_COUNT + 4;
const OFF_ACTIVE: usize = OFF_NEXT_ID + 8;
const OFF_HASH_KEY: usize = OFF_ACTIVE + 8;
/// The fixed part; the segment ids follow it, `ID_BYTES` each.
const MANIFEST_FIXED_BYTES: usize = OFF_HASH_KEY + 16;
const ID_BYTES: usize = 8;
/// Most segments a manifest lists; bounds allocation when decoding.
pub const MANIFEST_SEGMENTS_MAX: usize = 1 << 20;

/// The decoded manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Live segment ids, ascending; includes the active one.
    pub segments: Vec<u64>,
    /// The segment writers append to.
    pub active: u64,
    /// The id the next new segment gets.
    pub next_segment_id: u64,
    /// The key of the store's key hash; hint files hold hashes made with it.
    pub hash_key: [u8; 16],
}

/// Encodes `manifest` into a new buffer.
pub fn encode_manifest(manifest: &Manifest) -> Vec<u8> {
    assert!(manifest.segments.contains(&manifest.active), "the active segment is listed");
    assert!(manifest.segments.windows(2).all(|w| w[0] < w[1]), "segment ids ascend");
    assert!(manifest.segments.iter().all(|&id| id < manifest.next_segment_id), "next id is fresh");
    let mut out = Vec::with_capacity(manifest_len(manifest.segments.len()));
    out.extend_from_slice(MANIFEST_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&(manifest.segments.len() as u32).to_le_bytes());
    out.extend_from_slice(&manifest.next_segment_id.to_le_bytes());
    out.extend_from_slice(&manifest.active.to_le_bytes());
    out.extend_from_slice(&manifest.hash_key);
    for id in &manifest.segments {
        out.extend_from_slice(&id.to_le_bytes());
    }
    debug_assert_eq!(out.len() + CRC_BYTES, manifest_len(manifest.segments.len()), "the layout drawn above");
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The length of a manifest listing `segments` segments.
fn manifest_len(segments: usize) -> usize {
    MANIFEST_FIXED_BYTES + ID_BYTES * segments + CRC_BYTES
}

/// Decodes a manifest file's bytes.
pub fn decode_manifest(buf: &[u8]) -> Result<Manifest, DecodeError> {
    let error = |kind| Err(DecodeError::new(Structure::Manifest, kind));
    if buf.len() < manifest_len(0) {
        return error(DecodeErrorKind::Truncated);
    }
    if buf[..FILE_MAGIC_BYTES] != MANIFEST_MAGIC[..] {
        return error(DecodeErrorKind::BadMagic);
    }
    let count = get_u32(buf, OFF_COUNT) as usize;
    if count == 0 || count > MANIFEST_SEGMENTS_MAX || buf.len() != manifest_len(count) {
        return error(DecodeErrorKind::Invalid("manifest length does not match its segment count"));
    }
    let crc_at = buf.len() - CRC_BYTES;
    if get_u32(buf, crc_at) != crc32fast::hash(&buf[..crc_at]) {
        return error(DecodeErrorKind::BadChecksum);
    }
    let version = get_u16(buf, OFF_VERSION);
    if version != FORMAT_VERSION {
        return error(DecodeErrorKind::Version(version));
    }
    // Zero is the only value this version writes: anything else is a foreign or damaged file (or
    // one from a future version that forgot to bump the version), not a manifest to trust.
    if get_u16(buf, OFF_RESERVED) != 0 {
        return error(DecodeErrorKind::Reserved);
    }
    let segments: Vec<u64> = (0..count).map(|i| get_u64(buf, MANIFEST_FIXED_BYTES + ID_BYTES * i)).collect();
    let mut hash_key = [0u8; 16];
    hash_key.copy_from_slice(&buf[OFF_HASH_KEY..MANIFEST_FIXED_BYTES]);
    let manifest =
        Manifest { segments, active: get_u64(buf, OFF_ACTIVE), next_segment_id: get_u64(buf, OFF_NEXT_ID), hash_key };
    let ascending = manifest.segments.windows(2).all(|w| w[0] < w[1]);
    let fresh = manifest.segments.iter().all(|&id| id < manifest.next_segment_id);
    if !ascending || !fresh || !manifest.segments.contains(&manifest.active) {
        return error(DecodeErrorKind::Invalid("manifest lists inconsistent segment ids"));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_flips() {
        let m = Manifest { segments: vec![1, 4, 9], active: 9, next_segment_id: 10, hash_key: [7; 16] };
        let buf = encode_manifest(&m);
        assert_eq!(decode_manifest(&buf), Ok(m));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x80;
            assert!(decode_manifest(&bad).is_err(), "flip at {i} accepted");
        }
        for cut in 0..buf.len() {
            assert!(decode_manifest(&buf[..cut]).is_err());
        }
    }

    /// The checksum alone would not catch it: a reserved byte set under a matching CRC.
    #[test]
    fn a_manifest_with_a_nonzero_reserved_byte_is_rejected_even_under_a_valid_checksum() {
        let m = Manifest { segments: vec![1, 2], active: 2, next_segment_id: 3, hash_key: [1; 16] };
        for at in [OFF_RESERVED, OFF_RESERVED + 1] {
            let mut bad = encode_manifest(&m);
            bad[at] = 1;
            let crc_at = bad.len() - CRC_BYTES;
            let crc = crc32fast::hash(&bad[..crc_at]);
            bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
            let reserved = DecodeError::new(Structure::Manifest, DecodeErrorKind::Reserved);
            assert_eq!(decode_manifest(&bad), Err(reserved), "byte {at}");
        }
    }
}
