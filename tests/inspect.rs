//! `inspect::verify` and `inspect::dump` on clean, damaged and torn stores.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ferrocask::inspect::{self, RecordKind};
use ferrocask::{Error, Store};

mod common;

use common::small_segments;

const SEGMENT_HEADER_BYTES: u64 = 40;
const FRAME_HEADER_BYTES: u64 = 24;
/// A record header without an expiry (none of these records has one).
const RECORD_HEADER_BYTES: usize = 16;

/// A closed store with several sealed segments (with hints) and 500 live keys.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    for i in 0..1500u32 {
        store.put(format!("key{}", i % 500), [i as u8; 100]).unwrap();
    }
    store.delete(b"key7").unwrap();
    assert!(store.stats().segments >= 3);
    drop(store);
    dir
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// Offset just past the last record of segment `id`, from a dump.
fn data_end(dir: &Path, id: u64) -> u64 {
    let mut end = 0;
    inspect::dump(dir, |r| {
        if r.segment_id == id {
            end = r.offset + RECORD_HEADER_BYTES as u64 + r.key.len() as u64 + r.value_len as u64;
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    end
}

#[test]
fn a_clean_store_verifies() {
    let dir = populated();
    let report = inspect::verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, 1501);
    assert_eq!(report.tombstones, 1);
    assert_eq!(report.segments, segment_files(dir.path()).len());
    assert!(report.hints_checked >= 2, "{report:?}");
    assert_eq!(report.torn_tail, None);
    let rebuild = report.rebuild.expect("rebuild ran");
    assert_eq!(rebuild.live_keys, 499);
    assert_eq!(rebuild.records_read, 1501);
    assert!(rebuild.segments_from_hints >= 2);
    // And the store still opens with the same content.
    assert_eq!(Store::open_with(dir.path(), small_segments()).unwrap().len(), 499);
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_reported_at_its_frame() {
    let dir = populated();
    let first = segment_files(dir.path())[0].clone();
    // Inside the first record's value of the first frame.
    flip_byte(&first, SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + 24 + 10);
    let report = inspect::verify(dir.path()).unwrap();
    assert!(!report.is_ok());
    let damage = &report.damage[0];
    assert_eq!(damage.path, first);
    assert_eq!(damage.offset, SEGMENT_HEADER_BYTES, "{damage:?}");
    assert!(damage.reason.contains("checksum"), "{damage:?}");
    // The walk resumed after the damaged frame: every other record was still checked.
    assert_eq!(report.records, 1500);
    // The segment's hint no longer matches what the segment holds.
    assert!(report.damage.iter().any(|d| d.path.extension().is_some_and(|e| e == "hint")), "{report:?}");
}

#[test]
fn damage_in_acknowledged_data_of_the_active_segment_is_not_a_torn_tail() {
    let dir = populated();
    let active = segment_files(dir.path()).pop().unwrap();
    flip_byte(&active, SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES as u64 + 10);
    let report = inspect::verify(dir.path()).unwrap();
    assert_eq!(report.torn_tail, None);
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert_eq!((report.damage[0].path.clone(), report.damage[0].offset), (active, SEGMENT_HEADER_BYTES));
    assert!(report.damage[0].reason.contains("acknowledged"));
}

#[test]
fn a_torn_tail_is_reported_as_such_and_left_in_place() {
    let dir = populated();
    let active = segment_files(dir.path()).pop().unwrap();
    let id = u64::from_str_radix(active.file_stem().unwrap().to_str().unwrap(), 16).unwrap();
    let end = data_end(dir.path(), id);
    assert!(end > SEGMENT_HEADER_BYTES);
    // The start of a frame that was being written when the power went: its first frame's
    // header and part of its body, at the end of the data.
    let mut bytes = std::fs::read(&active).unwrap();
    let partial = bytes[SEGMENT_HEADER_BYTES as usize..SEGMENT_HEADER_BYTES as usize + 60].to_vec();
    bytes[end as usize..end as usize + 60].copy_from_slice(&partial);
    std::fs::write(&active, &bytes).unwrap();
    let len_before = std::fs::metadata(&active).unwrap().len();

    let report = inspect::verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let torn = report.torn_tail.expect("torn tail reported");
    assert_eq!((torn.path, torn.offset, torn.bytes), (active.clone(), end, len_before - end));
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len_before, "verify changes nothing");
    assert_eq!(report.rebuild.unwrap().live_keys, 499);

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(store.recovery_report().torn_tail_bytes, len_before - end);
}

#[test]
fn inspecting_an_open_store_is_refused() {
    let dir = populated();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert!(matches!(inspect::verify(dir.path()), Err(Error::Locked { .. })));
    assert!(matches!(inspect::dump(dir.path(), |_| ControlFlow::Continue(())), Err(Error::Locked { .. })));
    drop(store);
    inspect::verify(dir.path()).unwrap();
}

#[test]
fn a_directory_without_a_store_is_an_error_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(inspect::verify(dir.path()), Err(Error::Io { .. })));
    assert!(!dir.path().join("LOCK").exists(), "nothing is created in a foreign directory");
}

#[test]
fn dump_yields_records_in_log_order_and_can_stop() {
    let dir = populated();
    let mut seen = Vec::new();
    let report = inspect::dump(dir.path(), |r| {
        seen.push((r.segment_id, r.offset, r.seq, r.kind, r.key.to_vec(), r.value_len));
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(report.records, 1501);
    assert!(report.damage.is_empty() && report.torn_tail.is_none());
    assert!(seen.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)), "log order");
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2), "sequence numbers increase");
    assert_eq!(seen[0].4, b"key0");
    assert_eq!(seen[0].5, 100);
    let last = seen.last().unwrap();
    assert_eq!((last.3, last.4.as_slice(), last.5), (RecordKind::Delete, &b"key7"[..], 0));

    let mut n = 0;
    let report = inspect::dump(dir.path(), |_| {
        n += 1;
        if n == 10 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!((n, report.records), (10, 10));
}
