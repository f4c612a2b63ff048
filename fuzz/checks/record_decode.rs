//! `record_decode`: arbitrary bytes into the frame decoder (and, for free, the other decoders).
//!
//! Never panics; an accepted frame re-encodes from its decoded fields to exactly its bytes, so the
//! decoder accepts nothing the encoder could not have written. The decoders allocate nothing
//! sized by an untrusted length (`decode_frame` allocates nothing at all; `decode_hint` bounds its
//! entry vector by the input; `decode_manifest` by the exact file length), which libFuzzer's
//! `-malloc_limit_mb` checks too.

use ferrocask::format::{
    decode_frame, decode_hint, decode_manifest, decode_record_header, decode_segment_header, encode_hint,
    encode_manifest, encode_record, encode_segment_header, finish_frame, start_frame, RecordKind, RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};

use super::common::SALT;

/// Input: byte 0 holds flags; bit 0 set: the checksums of the frames, manifest and hint are fixed
/// up before decoding (so the fuzzer reaches the record parser). The rest is the bytes decoded;
/// frames are decoded under the checks' fixed salt (`common::SALT`).
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    if flags & 1 == 0 {
        check_frame(rest);
        check_others(rest);
        return;
    }
    let mut frame = rest.to_vec();
    super::common::fix_frame_crcs(&mut frame, 0);
    check_frame(&frame);
    let mut other = rest.to_vec();
    if other.len() >= 4 {
        refresh_crc(&mut other);
    }
    check_others(&other);
}

fn check_frame(data: &[u8]) {
    let _ = decode_record_header(data);
    let Ok(frame) = decode_frame(data, SALT) else { return };
    assert!(frame.len <= data.len(), "frame longer than its input");
    let mut out = Vec::new();
    let start = start_frame(&mut out);
    let mut count = 0u32;
    for record in frame.records() {
        let r = record.expect("every record of an accepted frame decodes");
        assert_eq!(r.frame_offset, out.len() - start, "records are back to back");
        let header = decode_record_header(&data[r.frame_offset..]).expect("record header decodes");
        assert_eq!(header.record_len(), r.len());
        assert!(r.kind == RecordKind::Put || r.value.is_empty(), "a tombstone with a value");
        encode_record(&mut out, r.kind, r.seq, r.expires_ms, r.key, r.value);
        count += 1;
    }
    assert_eq!(count, frame.record_count, "record count");
    let len = finish_frame(&mut out, start, frame.group, frame.record_count, SALT);
    assert_eq!(len, frame.len);
    assert!(out[..] == data[..frame.len], "an accepted frame does not re-encode to its bytes");
    assert!(frame.len > 24 + RECORD_HEADER_BYTES);
}

/// The other decoders: no panic, and what they accept re-encodes to the same bytes.
fn check_others(data: &[u8]) {
    if let Ok(header) = decode_segment_header(data) {
        let mut out = Vec::new();
        encode_segment_header(&header, &mut out);
        // Every byte is checksummed and the reserved byte is checked: the header re-encodes exactly.
        assert_eq!(out[..], data[..SEGMENT_HEADER_BYTES], "segment header re-encodes");
    }
    if let Ok(manifest) = decode_manifest(data) {
        // The reserved bytes are checked for zero, so the manifest re-encodes exactly.
        let out = encode_manifest(&manifest);
        assert!(out == data, "manifest re-encodes");
    }
    if let Ok(hint) = decode_hint(data) {
        let out = encode_hint(&hint);
        assert!(out == data, "hint re-encodes");
    }
}

fn refresh_crc(buf: &mut [u8]) {
    let at = buf.len() - 4;
    let crc = crc32(&buf[..at]);
    buf[at..].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 (IEEE), bitwise: the checks need no dependency beyond the store's own.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
