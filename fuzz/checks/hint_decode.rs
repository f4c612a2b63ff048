//! `hint_decode`: arbitrary hint-file bytes for a sealed segment whose contents are known.
//!
//! A hint only saves reading the segment: whatever it holds, open succeeds. A hint that is not
//! exactly the one the store writes, if rejected, leaves exactly what replaying the segments
//! gives. Open checks a hint's checksum, bounds, highest sequence number and its first and last
//! entries against the segment; a hint that passes those but was altered in the middle with a
//! recomputed checksum is trusted (as a segment with valid checksums is), and then the store
//! must still never return a value that was not written for the key asked.
//!
//! Input: byte 0 picks the mode.
//! * even: the rest is the hint file, as is (the fuzzer rarely gets a checksum right, so this
//!   mostly exercises the decoder and its rejection paths);
//! * odd: structure-aware. The correct hint is built, then edited by the rest of the input, taken
//!   as (operation, argument) byte pairs: drop, duplicate or swap entries, move offsets, change
//!   keys, kinds, sequence numbers, lengths, expiries, the data end, the highest sequence number
//!   or the segment id. It is then encoded with a valid checksum.

use ferrocask::format::{decode_frame, encode_hint, key_hash, HintEntry, HintFile, RecordKind, SEGMENT_HEADER_BYTES};
use ferrocask::testing::SimFs;

use super::common::*;

pub fn sealed_frames() -> Vec<(u64, Vec<Rec>)> {
    vec![
        (1, vec![Rec::put(1, b"k1", b"v1"), Rec::put(2, b"k2", &[0x22; 200])]),
        (2, vec![Rec::del(3, b"k1"), Rec::put(4, b"k3", b"").expiring(NOW_MS + 1000)]),
        (3, vec![Rec::put(5, b"k4", b"x").expiring(NOW_MS - 1), Rec::put(6, b"k1", b"v1b")]),
        (3, vec![Rec::put(7, b"k5", b"five")]),
    ]
}

pub fn active_frames() -> Vec<(u64, Vec<Rec>)> {
    vec![(4, vec![Rec::put(8, b"k2", b"v2new"), Rec::del(9, b"k5"), Rec::put(10, b"k6", b"six")])]
}

/// The hint the store would write for `segment` (id 1).
pub fn correct_hint(segment: &[u8]) -> HintFile {
    let mut entries = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    let mut seq_max = 0;
    while at < segment.len() {
        let frame = decode_frame(&segment[at..], SALT).expect("a valid frame");
        for r in frame.records() {
            let r = r.expect("a valid record");
            seq_max = seq_max.max(r.seq);
            entries.push(HintEntry {
                kind: r.kind,
                offset: (at + r.frame_offset) as u32,
                value_len: r.value.len() as u32,
                seq: r.seq,
                expires_ms: r.expires_ms,
                key_len: r.key.len() as u16,
                key_hash: key_hash(HASH_KEY, r.key),
            });
        }
        at += frame.len;
    }
    HintFile { segment_id: 1, data_end: segment.len() as u64, seq_max, entries }
}

const KEYS: [&[u8]; 8] = [b"k1", b"k2", b"k3", b"k4", b"k5", b"k6", b"k7", b"k22"];

/// Applies the (operation, argument) pairs of `edits` to `hint`.
pub fn edit_hint(hint: &mut HintFile, edits: &[u8]) {
    for pair in edits.chunks_exact(2) {
        let (op, arg) = (pair[0], pair[1]);
        let n = hint.entries.len();
        let i = if n == 0 { 0 } else { usize::from(arg) % n };
        let delta = i64::from(arg as i8);
        match op % 13 {
            0 if n > 0 => {
                hint.entries.remove(i);
            }
            1 if n > 0 => {
                let e = hint.entries[i];
                hint.entries.insert(i, e);
            }
            2 if n > 1 => hint.entries.swap(i, (i + 1) % n),
            3 if n > 0 => {
                let e = &mut hint.entries[usize::from(op / 13) % n];
                e.offset = (i64::from(e.offset) + delta).clamp(0, i64::from(u32::MAX)) as u32;
            }
            4 if n > 0 => hint.entries[usize::from(op / 13) % n].seq = u64::from(arg),
            5 if n > 0 => {
                let e = &mut hint.entries[i];
                e.kind = if e.kind == RecordKind::Put { RecordKind::Delete } else { RecordKind::Put };
            }
            6 if n > 0 => {
                let e = &mut hint.entries[usize::from(op / 13) % n];
                e.value_len = (i64::from(e.value_len) + delta).clamp(0, i64::from(u32::MAX)) as u32;
            }
            7 if n > 0 => {
                let key = KEYS[usize::from(arg) % KEYS.len()];
                let e = &mut hint.entries[usize::from(op / 13) % n];
                (e.key_len, e.key_hash) = (key.len() as u16, key_hash(HASH_KEY, key));
            }
            8 if n > 0 => {
                hint.entries[usize::from(op / 13) % n].expires_ms = match arg % 3 {
                    0 => 0,
                    1 => NOW_MS - 1,
                    _ => NOW_MS + u64::from(arg),
                }
            }
            9 => hint.data_end = (hint.data_end as i64 + delta).max(0) as u64,
            10 => hint.seq_max = u64::from(arg),
            11 => hint.segment_id = u64::from(arg % 4),
            12 => hint.entries.truncate(usize::from(arg) % (n + 1)),
            _ => {}
        }
    }
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let sealed = log_segment(1, 1, &sealed_frames());
    let correct = encode_hint(&correct_hint(&sealed));
    let hint = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut hint = correct_hint(&sealed);
        edit_hint(&mut hint, rest);
        // The encoder takes entries in ascending offset order (the store never writes others).
        hint.entries.sort_by_key(|e| e.offset);
        hint.entries.dedup_by_key(|e| e.offset);
        encode_hint(&hint)
    };

    let fs = SimFs::new();
    fs.write_file_durable(&path("MANIFEST"), &manifest(&[1, 2], 2));
    fs.write_file_durable(&path(&segment_name(1)), &sealed);
    fs.write_file_durable(&path(&hint_name(1)), &hint);
    fs.write_file_durable(&path(&segment_name(2)), &log_segment(2, 4, &active_frames()));

    let mut all = records_of(&sealed_frames());
    all.extend(records_of(&active_frames()));
    let expected = resolve(&all);
    let keys: Vec<Vec<u8>> = KEYS.iter().map(|k| k.to_vec()).collect();

    let store = open(&fs).expect("a store with a bad hint still opens (by replaying the segment)");
    let trusted_edit = hint != correct && store.recovery_report().hints_rejected == 0;
    if trusted_edit {
        // A checksummed hint altered where open does not look: never a value not written for the key.
        for key in &keys {
            if let Some(v) = store.get(key).expect("get") {
                assert!(
                    all.iter().any(|r| r.kind == RecordKind::Put && r.key == *key && r.value[..] == v[..]),
                    "get({key:?}) = {v:?}"
                );
            }
        }
        return;
    }
    assert_holds(&store, &expected, &keys);
    reopen_round_trip(&fs, store);
}
