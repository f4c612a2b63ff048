//! Compaction and hint files: space is reclaimed online, nothing acknowledged is lost or
//! resurrected, and damaged hints fall back to replay.

mod common;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{flip_byte, hint_files, tiny_segments};
use ferrocask::{Options, Store};

fn options() -> Options {
    Options { segment_bytes: 64 << 10, ..tiny_segments() }
}

#[test]
fn compaction_under_concurrent_writers_readers_iterators_and_deleters_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options()).unwrap();
    let writers = 4u32;
    let keys_per_writer = 50u32;
    let stop = AtomicBool::new(false);
    let finals: Vec<HashMap<String, Option<u32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    // Each writer owns its keys, so its final state is exact; the counter only grows.
                    let mut last = HashMap::new();
                    for round in 0..30u32 {
                        for k in 0..keys_per_writer {
                            let key = format!("w{t}-k{k}");
                            if (round + k) % 11 == 0 {
                                store.delete(&key).unwrap();
                                last.insert(key, None);
                            } else {
                                store.put(&key, round.to_le_bytes()).unwrap();
                                last.insert(key, Some(round));
                            }
                        }
                    }
                    last
                })
            })
            .collect();
        let reader = s.spawn(|| {
            // A value copied by compaction must never replace a newer one: reads never go back.
            let mut seen: HashMap<String, u32> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                for t in 0..writers {
                    for k in 0..keys_per_writer {
                        let key = format!("w{t}-k{k}");
                        if let Some(v) = store.get(&key).unwrap() {
                            let round = u32::from_le_bytes(v[..4].try_into().unwrap());
                            let before = seen.insert(key.clone(), round).unwrap_or(0);
                            assert!(round >= before, "{key} went back from {before} to {round}");
                        }
                    }
                }
            }
        });
        let iterator = s.spawn(|| {
            // An iterator copies a stripe's keys, then reads each: across compactions (which
            // retire the segments its keys were in, and hand their index slots to new segments)
            // every value it yields is one the key had, and never older than one it saw before.
            let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
            while !stop.load(Ordering::Relaxed) {
                for (key, v) in store.iter() {
                    assert!(key.starts_with(b"w"), "a key the writers wrote: {key:?}");
                    let round = u32::from_le_bytes(v[..4].try_into().unwrap());
                    assert!(round < 30, "a value the writers wrote: {round}");
                    let before = seen.insert(key.clone(), round).unwrap_or(0);
                    assert!(round >= before, "{key:?} went back from {before} to {round}");
                }
            }
        });
        let compactor = s.spawn(|| {
            let mut reports = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                reports.push(store.compact().unwrap());
            }
            reports
        });
        let finals = handles.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        iterator.join().unwrap();
        let reports = compactor.join().unwrap();
        assert!(reports.iter().any(|r| r.records_copied > 0), "compaction ran while writers wrote");
        finals
    });
    let check = |store: &Store| {
        for last in &finals {
            for (key, value) in last {
                let got = store.get(key).unwrap().map(|v| u32::from_le_bytes(v[..4].try_into().unwrap()));
                assert_eq!(got, *value, "{key}");
            }
        }
    };
    check(&store);
    drop(store);
    let store = Store::open_with(dir.path(), options()).unwrap();
    check(&store);
}

#[test]
fn deleted_keys_stay_deleted_after_compact_and_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), options()).unwrap();
        store.put(b"victim", b"old value").unwrap();
        for i in 0..2000u32 {
            store.put(format!("filler{i}"), [1u8; 64]).unwrap(); // push the put into a sealed segment
        }
        store.delete(b"victim").unwrap();
        assert!(store.stats().segments > 2);
        store.compact().unwrap();
        assert_eq!(store.get(b"victim").unwrap(), None);
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.get(b"victim").unwrap(), None);
    store.compact().unwrap();
    drop(store);
    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.get(b"victim").unwrap(), None);
    assert_eq!(store.len(), 2000);
}

#[test]
fn a_delete_in_the_active_segment_shadows_a_compacted_put_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), options()).unwrap();
        store.put(b"victim", b"old value").unwrap();
        store.compact().unwrap(); // the put now lives in a compacted segment
        store.delete(b"victim").unwrap(); // the tombstone lives in the active segment
    }
    let store = Store::open_with(dir.path(), options()).unwrap();
    assert_eq!(store.get(b"victim").unwrap(), None);
}

fn store_with_hints(dir: &std::path::Path) -> HashMap<String, Vec<u8>> {
    let store = Store::open_with(dir, options()).unwrap();
    let mut model = HashMap::new();
    for i in 0..3000u32 {
        let key = format!("key{}", i % 700);
        if i % 13 == 0 {
            store.delete(&key).unwrap();
            model.remove(&key);
        } else {
            let value = format!("value-{i}").into_bytes();
            store.put(&key, &value).unwrap();
            model.insert(key, value);
        }
    }
    drop(store); // writes any missing hint files
    assert!(hint_files(dir).len() >= 2, "several sealed segments with hints");
    model
}

fn assert_matches(dir: &std::path::Path, model: &HashMap<String, Vec<u8>>) -> ferrocask::RecoveryReport {
    let store = Store::open_with(dir, options()).unwrap();
    assert_eq!(store.len(), model.len());
    for i in 0..700u32 {
        let key = format!("key{i}");
        assert_eq!(store.get(&key).unwrap().map(|v| v.into_vec()), model.get(&key).cloned(), "{key}");
    }
    store.recovery_report().clone()
}

#[test]
fn open_uses_hint_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = store_with_hints(dir.path());
    let report = assert_matches(dir.path(), &model);
    assert_eq!(report.segments_from_hints, hint_files(dir.path()).len());
}

#[test]
fn corrupt_truncated_or_missing_hints_fall_back_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let model = store_with_hints(dir.path());
    let hints = hint_files(dir.path());
    flip_byte(&hints[0], 50);
    let len = fs::metadata(&hints[1]).unwrap().len();
    fs::OpenOptions::new().write(true).open(&hints[1]).unwrap().set_len(len / 2).unwrap();
    if let Some(third) = hints.get(2) {
        fs::remove_file(third).unwrap();
    }
    let report = assert_matches(dir.path(), &model);
    assert_eq!(report.hints_rejected, 2, "{report:?}");
    assert!(report.segments_replayed >= 3, "{report:?}");
}

#[test]
fn a_hint_of_another_segment_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let model = store_with_hints(dir.path());
    let hints = hint_files(dir.path());
    fs::copy(&hints[1], &hints[0]).unwrap(); // a valid hint, but for the wrong segment
    let report = assert_matches(dir.path(), &model);
    assert_eq!(report.hints_rejected, 1, "{report:?}");
}
