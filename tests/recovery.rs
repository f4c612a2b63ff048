//! Recovery: torn tails are cut, damage before the end is reported precisely.

mod common;

use std::fs;

use common::{copy_store, flip_byte, frames_end, hint_files, segment_files, tiny_segments, unpreallocated};
use ferrocask::{Batch, Error, Options, Store};

#[test]
fn truncating_the_last_record_at_every_offset_keeps_every_earlier_record() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = {
        let store = Store::open_with(dir.path(), unpreallocated()).unwrap();
        for i in 0..20u32 {
            store.put(format!("key{i}"), format!("value{i}")).unwrap();
        }
        let seg = &segment_files(dir.path())[0];
        let before = frames_end(seg);
        let mut batch = Batch::new();
        batch.put(b"last-a", b"1").put(b"last-b", b"2").delete(b"key0");
        store.write(batch).unwrap();
        (before, frames_end(seg))
    };
    assert!(after > before);
    for cut in before..after {
        let copy = copy_store(dir.path());
        let seg = &segment_files(copy.path())[0];
        fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(cut).unwrap();
        let store = Store::open_with(copy.path(), unpreallocated()).unwrap();
        for i in 0..20u32 {
            let value = store.get(format!("key{i}")).unwrap();
            assert_eq!(value.as_deref(), Some(format!("value{i}").as_bytes()), "cut at {cut}");
        }
        assert_eq!(store.get(b"last-a").unwrap(), None, "cut at {cut}: the torn batch is all or nothing");
        assert_eq!(store.get(b"last-b").unwrap(), None);
        assert_eq!(store.recovery_report().torn_tail_bytes, cut - before, "cut at {cut}");
        drop(store);
        // The cut is durable: a second open finds a clean log and can append to it.
        let store = Store::open_with(copy.path(), unpreallocated()).unwrap();
        assert_eq!(store.recovery_report().torn_tail_bytes, 0);
        store.put(b"after", b"reopen").unwrap();
    }
}

#[test]
fn garbage_appended_to_the_active_segment_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
    }
    let seg = &segment_files(dir.path())[0];
    let mut bytes = fs::read(seg).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.splice(end..end + 37, (0..37u8).map(|i| i.wrapping_mul(73) | 1));
    fs::write(seg, bytes).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(store.recovery_report().torn_tail_bytes > 0);
    store.put(b"c", b"3").unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(), 3);
}

#[test]
fn damage_in_a_sealed_segment_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), tiny_segments()).unwrap();
        for i in 0..400u32 {
            store.put(format!("key{i}"), [7u8; 100]).unwrap();
        }
    }
    for hint in hint_files(dir.path()) {
        fs::remove_file(hint).unwrap(); // force replay of every segment
    }
    let first = segment_files(dir.path())[0].clone();
    flip_byte(&first, 200);
    match Store::open_with(dir.path(), tiny_segments()) {
        Err(Error::Corruption { path, offset, .. }) => {
            assert_eq!(path, first);
            assert!(offset <= 200, "offset {offset} should be the frame holding byte 200");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_bad_frame_followed_by_a_later_sync_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10u32 {
            store.put(format!("key{i}"), format!("value{i}")).unwrap();
        }
    }
    let seg = &segment_files(dir.path())[0];
    flip_byte(seg, 50); // inside the first frame (bytes 40..98); nine later frames follow
    match Store::open(dir.path()) {
        Err(Error::Corruption { path, offset, reason }) => {
            assert_eq!(&path, seg);
            assert_eq!(offset, 40, "the first frame starts after the 40-byte header");
            assert!(reason.contains("later sync group"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn salvage_mode_skips_damage_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10u32 {
            store.put(format!("key{i}"), format!("value{i}")).unwrap();
        }
    }
    flip_byte(&segment_files(dir.path())[0], 50);
    let store = Store::open_with(dir.path(), Options { salvage: true, ..Options::default() }).unwrap();
    let report = store.recovery_report();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert_eq!(report.dropped[0].start, 40);
    assert_eq!(store.get(b"key0").unwrap(), None, "the damaged record is dropped");
    for i in 1..10u32 {
        assert_eq!(store.get(format!("key{i}")).unwrap().as_deref(), Some(format!("value{i}").as_bytes()));
    }
}

#[test]
fn a_foreign_file_as_segment_is_corruption_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let seg = &segment_files(dir.path())[0];
    fs::write(seg, b"this is not a segment at all, just some text that happens to be here").unwrap();
    assert!(matches!(Store::open(dir.path()), Err(Error::Corruption { offset: 0, .. })));
}

#[test]
fn a_damaged_manifest_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    flip_byte(&dir.path().join("MANIFEST"), 20);
    assert!(matches!(Store::open(dir.path()), Err(Error::Corruption { .. })));
}

#[test]
fn segment_files_without_a_manifest_are_corruption_not_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put(b"precious", b"data").unwrap();
    }
    fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    assert!(matches!(Store::open(dir.path()), Err(Error::Corruption { .. })));
}

#[test]
fn concurrent_writers_then_reopen_match_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { segment_bytes: 256 << 10, ..tiny_segments() };
    let expected: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
        let store = Store::open_with(dir.path(), options.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u32 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..300u32 {
                        store.put(format!("own-{t}-{i}"), format!("{t}:{i}")).unwrap();
                        store.put(format!("shared-{}", i % 16), format!("{t}:{i}")).unwrap();
                        if i % 7 == 0 {
                            store.delete(format!("own-{t}-{}", i / 2)).unwrap();
                        }
                    }
                });
            }
        });
        let stats = store.stats();
        assert!(stats.records_per_sync > 1.0, "writers shared syncs: {stats:?}");
        let keys: Vec<Vec<u8>> = (0..8u32)
            .flat_map(|t| (0..300u32).map(move |i| format!("own-{t}-{i}").into_bytes()))
            .chain((0..16u32).map(|i| format!("shared-{i}").into_bytes()))
            .collect();
        keys.into_iter().map(|k| (k.clone(), store.get(&k).unwrap().map(|v| v.into_vec()))).collect()
    };
    let store = Store::open_with(dir.path(), options).unwrap();
    for (key, value) in &expected {
        assert_eq!(store.get(key).unwrap().map(|v| v.into_vec()), *value, "{}", String::from_utf8_lossy(key));
    }
    assert_eq!(store.len(), expected.iter().filter(|(_, v)| v.is_some()).count());
}

/// Regression: open read the active segment's header through a mapping of `segment_bytes`, so an
/// active segment cut below one page (here: to nothing) was read past the end of the file, which
/// raises SIGBUS on a real mapping and killed the process instead of reporting corruption.
#[test]
fn an_active_segment_cut_to_nothing_is_corruption_not_a_crash() {
    for len in [0, 10] {
        let dir = tempfile::tempdir().unwrap();
        Store::open_with(dir.path(), unpreallocated()).unwrap().put(b"k", b"v").unwrap();
        let seg = &segment_files(dir.path())[0];
        fs::OpenOptions::new().write(true).open(seg).unwrap().set_len(len).unwrap();
        let opened = Store::open_with(dir.path(), unpreallocated());
        assert!(matches!(opened, Err(Error::Corruption { .. })), "cut to {len}: {opened:?}");
    }
}
