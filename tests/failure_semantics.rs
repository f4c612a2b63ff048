//! What callers see when the disk fails: failed syncs poison the store (reads keep working,
//! nothing unacknowledged was promised), a full disk gives `Error::DiskFull` and leaves the store
//! usable once space is back, and a directory has one owner at a time.

use std::path::Path;
use std::sync::Arc;

use ferrocask::testing::{CrashMode, Fault, FaultKind, OpKind, SimFs, Vfs};
use ferrocask::{Batch, Error, Options, Store};

mod common;

const DIR: &str = "/db";

/// The common base with the preallocation each test chooses (several run with and without it),
/// values of up to 8 KiB and no hint files.
fn options(preallocate_bytes: u64) -> Options {
    Options { preallocate_bytes, value_bytes_max: 8 << 10, write_hints: false, ..common::options() }
}

fn open(fs: &Arc<SimFs>, options: &Options) -> Store {
    Store::open_on(fs.clone(), Path::new(DIR), options.clone()).expect("open")
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(len, b'0' + (i % 10) as u8);
    v
}

/// Puts `key{i}` for `i` in `range`, each acknowledged.
fn put_range(store: &Store, range: std::ops::Range<usize>, len: usize) {
    for i in range {
        store.put(format!("key{i}"), value(i, len)).unwrap();
    }
}

/// Every `key{i}` in `range` reads back as written.
fn assert_readable(store: &Store, range: std::ops::Range<usize>, len: usize, context: &str) {
    for i in range {
        let got = store.get(format!("key{i}")).unwrap_or_else(|e| panic!("{context}: get key{i}: {e}"));
        assert_eq!(got.as_deref(), Some(&value(i, len)[..]), "{context}: key{i}");
    }
}

/// After a crash in every mode, the acknowledged keys are all there.
fn assert_survives_every_crash(fs: &Arc<SimFs>, options: &Options, acked: std::ops::Range<usize>, len: usize) {
    for mode in CrashMode::ALL {
        fs.clear_faults();
        fs.crash(mode, 7);
        let store = Store::open_on(fs.clone(), Path::new(DIR), options.clone())
            .unwrap_or_else(|e| panic!("reopen after a crash in {mode:?}: {e}"));
        assert_readable(&store, acked.clone(), len, &format!("after a crash in {mode:?}"));
    }
}

fn assert_poisoned<T: std::fmt::Debug>(result: ferrocask::Result<T>, what: &str) {
    assert!(matches!(result, Err(Error::Poisoned { .. })), "{what}: expected Poisoned, got {result:?}");
}

/// Every kind of write is refused on a poisoned store, and reads still work.
fn assert_refuses_writes_keeps_reads(store: &Store, acked: std::ops::Range<usize>, len: usize) {
    assert_poisoned(store.put(b"later", b"x"), "put");
    assert_poisoned(store.delete(format!("key{}", acked.start)), "delete of a present key");
    let mut batch = Batch::new();
    batch.put(b"a", b"1").delete(b"b");
    assert_poisoned(store.write(batch), "batch");
    assert_poisoned(store.compact(), "compact");
    assert_readable(store, acked, len, "poisoned store");
    assert_eq!(store.get(b"later").unwrap(), None);
}

/// Puts 1 KiB values until one fails; the 16th does not fit in the first segment and rolls over,
/// so a fault armed on the roll-over's operations fires by then. Returns how many were
/// acknowledged and the error.
fn put_until_rollover_fails(store: &Store) -> (usize, Error) {
    let mut acked = 0;
    loop {
        match store.put(format!("key{acked}"), value(acked, 1000)) {
            Ok(()) => acked += 1,
            Err(e) => return (acked, e),
        }
        assert!(acked < 40, "no roll-over happened");
    }
}

#[test]
fn a_failed_sync_fails_the_write_and_poisons_the_store_but_reads_keep_working() {
    for preallocate in [0, 4 << 10] {
        let options = options(preallocate);
        let fs = SimFs::new();
        let store = open(&fs, &options);
        put_range(&store, 0..5, 100);
        fs.inject(Fault::matching(OpKind::Sync, ".seg", FaultKind::SyncFails).times(1));
        let failed = store.put(b"key5", value(5, 100));
        assert!(matches!(failed, Err(Error::Io { .. })), "the write whose sync failed: {failed:?}");
        assert_refuses_writes_keeps_reads(&store, 0..5, 100);
        drop(store);
        assert_survives_every_crash(&fs, &options, 0..5, 100);
    }
}

/// Regression: deleting a key the index does not hold returned `Ok` without looking at the
/// poison flag, so a poisoned store acknowledged a "write" after a failed one.
#[test]
fn a_poisoned_store_refuses_even_a_delete_of_a_missing_key() {
    let options = options(0);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    put_range(&store, 0..2, 100);
    fs.inject(Fault::matching(OpKind::Sync, ".seg", FaultKind::SyncFails).times(1));
    assert!(store.put(b"key2", value(2, 100)).is_err());
    assert_poisoned(store.delete(b"key2"), "delete of the key whose put failed");
    assert_poisoned(store.delete(b"never-written"), "delete of a missing key");
}

#[test]
fn a_failed_directory_sync_during_a_rollover_poisons_like_a_failed_sync() {
    let options = options(0);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    fs.inject(Fault::matching(OpKind::SyncDir, DIR, FaultKind::SyncFails).times(1));
    // 1 KiB values: the 16th does not fit in the first segment and rolls over.
    let (acked, err) = put_until_rollover_fails(&store);
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_refuses_writes_keeps_reads(&store, 0..acked, 1000);
    drop(store);
    assert_survives_every_crash(&fs, &options, 0..acked, 1000);
}

/// A directory sync that fails for lack of space is still a failed sync: it poisons.
#[test]
fn a_directory_sync_failing_with_no_space_poisons_too() {
    let options = options(0);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    fs.inject(Fault::matching(OpKind::SyncDir, DIR, FaultKind::NoSpace).times(1));
    let (acked, err) = put_until_rollover_fails(&store);
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_refuses_writes_keeps_reads(&store, 0..acked, 1000);
}

/// A failed directory sync at compaction's commit point poisons, like any failed sync.
#[test]
fn a_failed_directory_sync_during_compaction_poisons() {
    let options = options(0);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    put_range(&store, 0..40, 1000);
    put_range(&store, 0..40, 1000);
    fs.inject(Fault::matching(OpKind::SyncDir, DIR, FaultKind::SyncFails).times(1));
    // compact() rolls first (one directory sync), so the fault may hit the roll or the commit:
    // either way the compaction fails and the store refuses writes.
    assert!(store.compact().is_err());
    assert_refuses_writes_keeps_reads(&store, 0..40, 1000);
    drop(store);
    assert_survives_every_crash(&fs, &options, 0..40, 1000);
}

#[test]
fn disk_full_during_a_write_is_typed_and_later_writes_work() {
    for kind in [FaultKind::NoSpace, FaultKind::ShortWrite] {
        for preallocate in [0, 4 << 10] {
            for seed in 0..4 {
                let context = format!("{kind:?}, preallocate {preallocate}, seed {seed}");
                let options = options(preallocate);
                let fs = SimFs::new();
                fs.reseed_faults(seed);
                let store = open(&fs, &options);
                put_range(&store, 0..3, 300);
                fs.inject(Fault::matching(OpKind::Write, ".seg", kind).times(1));
                let full = store.put(b"key3", value(3, 300));
                assert!(matches!(full, Err(Error::DiskFull { .. })), "{context}: {full:?}");
                assert_readable(&store, 0..3, 300, &context);
                put_range(&store, 3..20, 300);
                drop(store);
                assert_survives_every_crash(&fs, &options, 0..20, 300);
            }
        }
    }
}

/// The ways a roll-over can meet a full disk: creating the new segment, writing its header,
/// writing the new manifest.
#[test]
fn disk_full_during_a_rollover_is_typed_and_later_writes_work() {
    let faults = [
        Fault::matching(OpKind::Create, ".seg", FaultKind::NoSpace),
        Fault::matching(OpKind::Write, "0000000000000002.seg", FaultKind::ShortWrite),
        Fault::matching(OpKind::Create, "MANIFEST", FaultKind::NoSpace),
        Fault::matching(OpKind::Write, "MANIFEST", FaultKind::ShortWrite),
    ];
    for fault in faults {
        let context = format!("{fault:?}");
        let options = options(4 << 10);
        let fs = SimFs::new();
        let store = open(&fs, &options);
        fs.inject(fault.times(1));
        let mut acked = 0;
        let err = loop {
            match store.put(format!("key{acked}"), value(acked, 1000)) {
                Ok(()) => acked += 1,
                Err(e) => break e,
            }
            assert!(acked < 40, "{context}: no roll-over happened");
        };
        assert!(matches!(err, Error::DiskFull { .. }), "{context}: {err:?}");
        assert_readable(&store, 0..acked, 1000, &context);
        put_range(&store, acked..acked + 30, 1000);
        drop(store);
        assert_survives_every_crash(&fs, &options, 0..acked + 30, 1000);
    }
}

/// Regression: a short write left part of a frame past the end of the active segment's data;
/// when the next write rolled over, that segment was sealed with the garbage in it, and
/// recovery (which treats damage in a sealed segment as corruption) refused to open the store.
#[test]
fn a_short_write_just_before_a_rollover_leaves_an_openable_store() {
    let options = options(0);
    for seed in 0..8 {
        for mode in [CrashMode::Nothing, CrashMode::Everything] {
            let fs = SimFs::new();
            fs.reseed_faults(seed);
            let store = open(&fs, &options);
            put_range(&store, 0..14, 1000);
            fs.inject(Fault::matching(OpKind::Write, ".seg", FaultKind::ShortWrite).times(1));
            assert!(matches!(store.put(b"key14", value(14, 1000)), Err(Error::DiskFull { .. })));
            // Too big for what is left of the segment: rolls over.
            store.put(b"key14", value(14, 3000)).unwrap();
            drop(store);
            fs.crash(mode, seed);
            let store = Store::open_on(fs.clone(), Path::new(DIR), options.clone())
                .unwrap_or_else(|e| panic!("seed {seed}, {mode:?}: reopen failed: {e}"));
            assert_readable(&store, 0..14, 1000, "after the roll-over");
            assert_eq!(store.get(b"key14").unwrap().as_deref(), Some(&value(14, 3000)[..]));
        }
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    let fs = SimFs::new();
    let store = open(&fs, &options(0));
    let second = Store::open_on(fs.clone(), Path::new(DIR), options(0));
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    drop(store);
    open(&fs, &options(0));
}

/// The store's files that the manifest does not name: segment and hint files of other ids, and
/// temporary files.
fn files_the_manifest_does_not_name(fs: &SimFs) -> Vec<String> {
    let manifest =
        ferrocask::format::decode_manifest(&fs.read_file(&Path::new(DIR).join("MANIFEST")).unwrap()).unwrap();
    let named = |name: &str| {
        let Some((stem, ext)) = name.rsplit_once('.') else { return true };
        match ext {
            "seg" | "hint" => u64::from_str_radix(stem, 16).is_ok_and(|id| manifest.segments.contains(&id)),
            "tmp" => false,
            _ => true,
        }
    };
    let mut names: Vec<String> = fs.list(Path::new(DIR)).unwrap().into_iter().filter(|n| !named(n)).collect();
    names.sort();
    names
}

/// A compaction that fails midway (here: a full disk while writing an output) removes every
/// output segment and hint file it made, at once, so the space it took is free again without a
/// reopen; the store keeps reading and writing, and a later compaction succeeds.
#[test]
fn a_compaction_failing_for_a_full_disk_removes_its_outputs_at_once() {
    // (faults: operation and file suffix each, which output counting from 0, fault, recycling).
    // A recycled output (`Options::recycle_segments`) is a retired segment file renamed into
    // place, already allocated, so a full disk cannot fail its writes: with recycling on, the
    // first run's first output is still new (the pool starts empty), and an output that would be
    // recycled meets a full disk only when its rename fails and the new file it falls back to
    // cannot be created.
    type Case = (&'static [(OpKind, &'static str)], u64, FaultKind, bool);
    let cases: [Case; 6] = [
        (&[(OpKind::Write, "seg")], 0, FaultKind::NoSpace, true),
        (&[(OpKind::Write, "seg")], 0, FaultKind::NoSpace, false),
        (&[(OpKind::Write, "seg")], 1, FaultKind::ShortWrite, false),
        (&[(OpKind::Create, "seg")], 1, FaultKind::NoSpace, false),
        (&[(OpKind::Write, "hint.tmp")], 0, FaultKind::ShortWrite, true),
        (&[(OpKind::Rename, "seg"), (OpKind::Create, "seg")], 1, FaultKind::NoSpace, true),
    ];
    for (faults, output, kind, recycle_segments) in cases {
        let options = Options { write_hints: true, recycle_segments, ..options(4 << 10) };
        if faults.iter().any(|&(op, _)| op == OpKind::Rename) {
            // The control: without the faults, this run does recycle outputs, so the rename
            // the faults hit is a pooled file's.
            let fs = SimFs::new();
            let store = open(&fs, &options);
            put_range(&store, 0..40, 1000);
            put_range(&store, 0..40, 1000);
            store.compact().unwrap();
            assert!(store.stats().recycled_compaction_outputs > 0, "no output recycled: {:?}", store.stats());
        }
        let fs = SimFs::new();
        let store = open(&fs, &options);
        put_range(&store, 0..40, 1000);
        put_range(&store, 0..40, 1000);
        let manifest =
            ferrocask::format::decode_manifest(&fs.read_file(&Path::new(DIR).join("MANIFEST")).unwrap()).unwrap();
        // compact() first rolls the (non-empty) active segment, taking the next id; the outputs
        // take the ones after it.
        let id = manifest.next_segment_id + 1 + output;
        let context = format!("{faults:?} {kind:?} on output {output} (id {id}), recycling {recycle_segments}");
        for &(op, suffix) in faults {
            fs.inject(Fault::matching(op, format!("{id:016x}.{suffix}"), kind).times(1));
        }
        let failed = store.compact();
        assert!(matches!(failed, Err(Error::DiskFull { .. })), "{context}: {failed:?}");
        assert_eq!(files_the_manifest_does_not_name(&fs), Vec::<String>::new(), "{context}: leftovers");
        assert_readable(&store, 0..40, 1000, &context);
        put_range(&store, 40..45, 1000);
        let report = store.compact().unwrap_or_else(|e| panic!("{context}: the retry failed: {e}"));
        assert!(report.segments_written > 1, "{context}: {report:?}");
        assert_eq!(files_the_manifest_does_not_name(&fs), Vec::<String>::new(), "{context}: after the retry");
        assert_readable(&store, 0..45, 1000, &context);
        drop(store);
        assert_survives_every_crash(&fs, &options, 0..45, 1000);
    }
}

/// Fuzz finding `ops_model/empty-batch-on-a-poisoned-store`: an empty batch returned `Ok` from a
/// poisoned store, which acknowledges nothing (as with a delete of a missing key).
#[test]
fn regression_a_poisoned_store_refuses_an_empty_batch() {
    let options = options(0);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    fs.inject(Fault::matching(OpKind::Sync, ".seg", FaultKind::SyncFails).times(1));
    assert!(store.put(b"key0", value(0, 100)).is_err());
    assert_poisoned(store.write(Batch::new()), "an empty batch");
}

/// Fuzz finding `ops_model/reopen-after-a-failed-sync`: after a failed sync the simulated disk,
/// like Linux, may have dropped the unsynced frames while the page cache still shows them. A
/// store reopened without a crash showed them, took a new write and synced it; a power loss then
/// kept the new write's frame but not the ones beneath it (a hole: `Corruption`, or the new
/// write lost). Open now writes the last group's frames again before its sync.
#[test]
fn regression_frames_a_reopened_store_shows_after_a_failed_sync_become_durable() {
    let options = Options { sync: ferrocask::SyncMode::Every(std::time::Duration::from_secs(3600)), ..options(0) };
    let fs = SimFs::new();
    let store = open(&fs, &options);
    put_range(&store, 0..3, 100);
    store.sync().unwrap();
    put_range(&store, 3..6, 100); // acknowledged, not synced
    fs.inject(Fault::matching(OpKind::Sync, ".seg", FaultKind::SyncFails).times(1));
    assert!(store.sync().is_err());
    drop(store);
    let store = open(&fs, &options); // no crash: the unsynced frames are still readable
    assert_readable(&store, 0..6, 100, "reopened after the failed sync");
    put_range(&store, 6..7, 100);
    store.sync().unwrap();
    fs.crash(CrashMode::Nothing, 3);
    drop(store);
    let store = Store::open_on(fs.clone(), Path::new(DIR), options.clone()).expect("the store opens after the crash");
    assert_readable(&store, 0..7, 100, "after the crash, everything the reopened store showed or synced");
}
