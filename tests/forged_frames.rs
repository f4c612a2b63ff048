//! A stored value can hold bytes laid out exactly like a frame (magic, lengths, checksum); they
//! must never count as one (issue 10, item 6). Frame checksums are seeded with a random salt per
//! segment that no writer of values knows, so recovery's search for "frames of a later sync group"
//! after a torn tail finds none in a value, and salvage imports nothing from one.

mod common;

use std::fs;
use std::path::Path;

use common::{segment_files, unpreallocated as options};
use ferrocask::format::{encode_record, finish_frame, start_frame, FrameSalt, RecordKind};
use ferrocask::{Options, Store};

const FORGED_GROUP: u64 = 1 << 40;
const FORGED_KEY: &[u8] = b"forged";

/// Well-formed frames of group 2^40 holding a put of [`FORGED_KEY`], as a value's author could
/// write them: one checksummed as format version 1 did (no salt), the others under guessed salts.
fn forged_frames() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, salt) in [0, 0, 1, u64::MAX].into_iter().enumerate() {
        let start = start_frame(&mut out);
        encode_record(&mut out, RecordKind::Put, 1 << 50, 0, FORGED_KEY, b"from inside a value");
        finish_frame(&mut out, start, FORGED_GROUP, 1, FrameSalt(salt));
        if i == 0 {
            let crc = crc32fast::hash(&out[start + 8..]);
            out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
    }
    out
}

/// A value whose bytes hold the forged frames, then some padding.
fn carrier_value() -> Vec<u8> {
    [forged_frames(), vec![0xcc; 64]].concat()
}

fn put_ten_keys_and_the_carrier(store: &Store) {
    for i in 0..10u32 {
        store.put(format!("key{i}"), format!("value{i}")).unwrap();
    }
    store.put(b"carrier", carrier_value()).unwrap();
}

fn assert_ten_keys(store: &Store) {
    for i in 0..10u32 {
        assert_eq!(store.get(format!("key{i}")).unwrap().as_deref(), Some(format!("value{i}").as_bytes()));
    }
}

/// Writes ten keys, then the carrier as the last frame, and tears that frame by cutting its last
/// bytes off the file: after the bad frame's start lie the forged frames, intact. The frame ends
/// at the last non-zero byte (the carrier ends in padding), not at the end of the file: on Windows
/// mapping extends the active segment to a power of two.
fn store_with_a_torn_carrier(dir: &Path) {
    put_ten_keys_and_the_carrier(&Store::open_with(dir, options()).unwrap());
    let segment = &segment_files(dir)[0];
    let frames_end = fs::read(segment).unwrap().iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    fs::OpenOptions::new().write(true).open(segment).unwrap().set_len(frames_end - 3).unwrap();
}

fn assert_torn_carrier_recovered(store: &Store) {
    assert_eq!(store.get(b"carrier").unwrap(), None, "the torn record is gone");
    assert_ten_keys(store);
    assert_eq!(store.get(FORGED_KEY).unwrap(), None, "a record from inside a value was imported");
    let report = store.recovery_report();
    assert!(report.torn_tail_bytes > 0, "{report:?}");
    assert!(report.dropped.is_empty(), "a torn tail is not damage: {report:?}");
}

#[test]
fn a_value_holding_a_frame_of_a_later_group_leaves_a_torn_tail_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    store_with_a_torn_carrier(dir.path());
    let store = Store::open_with(dir.path(), options()).expect("a torn tail opens, whatever values hold");
    assert_torn_carrier_recovered(&store);
    store.put(b"after", b"reopen").unwrap();
    drop(store);
    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_ten_keys(&store);
    assert_eq!(store.get(b"after").unwrap().as_deref(), Some(&b"reopen"[..]));
}

#[test]
fn salvage_imports_no_record_from_inside_a_value() {
    let dir = tempfile::tempdir().unwrap();
    store_with_a_torn_carrier(dir.path());
    let store = Store::open_with(dir.path(), Options { salvage: true, ..options() }).unwrap();
    assert_torn_carrier_recovered(&store);
}

/// Compaction copies the value into a new segment with a salt of its own; salvage skipping damage
/// there resumes at the next frame of that segment, and the value holds none.
#[test]
fn a_value_copied_by_compaction_does_not_count_as_a_frame_either() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), Options { write_hints: false, ..options() }).unwrap();
        put_ten_keys_and_the_carrier(&store);
        store.compact().unwrap();
        assert_eq!(store.get(b"carrier").unwrap().as_deref(), Some(&carrier_value()[..]));
        store.put(b"after-compaction", b"x").unwrap();
    }
    let compacted = segment_files(dir.path()).into_iter().find(|p| fs::read(p).unwrap()[10] == 2).unwrap();
    common::flip_byte(&compacted, 50); // inside the compacted segment's first frame, before the value
    let store = Store::open_with(dir.path(), Options { salvage: true, ..options() }).unwrap();
    let report = store.recovery_report();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(store.get(FORGED_KEY).unwrap(), None, "a record from inside a copied value was imported");
    assert_eq!(store.get(b"after-compaction").unwrap().as_deref(), Some(&b"x"[..]));
}
