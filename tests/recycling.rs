//! Retired segment files reused as active segments (`Options::recycle_segments`, DESIGN.md
//! "Recycled segment files"): the old contents of a reused file never count as the new segment's,
//! not even an intact old frame starting exactly where the new data ends; a crash at any step of
//! reusing a file leaves a store holding what was acknowledged and nothing of the old contents;
//! pool files found at open are removed unread; the pool stays small.
//!
//! Every put here is one frame of the same length (5-byte keys, 1000-byte values, no expiry), and
//! every segment header is as long as every other, so the frames of a reused file lie exactly
//! where the new segment's frames go: the adversary is the old file's own genuine frames, under
//! its own salt, at the very offset where recovery stops.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocask::format::FRAME_MAGIC;
use ferrocask::testing::{CrashMode, Fault, FaultKind, SimFs};
use ferrocask::{Options, Store};

const DIR: &str = "/db";
const VALUE_BYTES: usize = 1000;
/// Keys of the first two rounds: about four 16 KiB segments each.
const KEYS: usize = 30;
/// Puts written into the reused file after the one that rolled into it.
const PUTS_AFTER_ROLL: usize = 2;
/// Puts that always fill the active segment and roll into a reused file.
const PUTS_TO_ROLL_MAX: usize = 100;
/// The pool's file limit, as DESIGN.md states it.
const POOL_FILES_MAX: usize = 2;
/// What the pool may hold however little is live, as DESIGN.md states it: two 16 KiB files.
const POOL_BYTES_FLOOR: u64 = 32 << 10;

fn pool_files(fs: &SimFs) -> Vec<PathBuf> {
    fs.list_all().into_iter().filter(|p| p.to_string_lossy().ends_with(".pool")).collect()
}

/// 16 KiB segments, each file exactly as long as its data (no preallocation), everything on the
/// caller's thread.
fn options() -> Options {
    Options { preallocate_bytes: 0, background_thread: false, write_hints: false, ..common::options() }
}

fn key(prefix: char, i: usize) -> Vec<u8> {
    format!("{prefix}{i:04}").into_bytes()
}

fn open(fs: &Arc<SimFs>) -> Store {
    Store::open_on(fs.clone(), Path::new(DIR), options()).expect("the store opens")
}

/// A store whose pool holds retired files full of one-put frames: two rounds over `KEYS` keys
/// ('a' then 'b' values), then a compaction that retires every segment of both.
fn store_with_a_full_pool(fs: &Arc<SimFs>) -> Store {
    let store = open(fs);
    for round in [b'a', b'b'] {
        for i in 0..KEYS {
            store.put(key('k', i), vec![round; VALUE_BYTES]).unwrap();
        }
    }
    store.compact().unwrap();
    assert!(store.stats().pooled_segments > 0, "compaction kept retired files for reuse");
    store
}

/// The puts of `n` keys after the pool is full: enough to roll into a reused file and write
/// `PUTS_AFTER_ROLL` more frames there. Stops at the first failure; returns how many succeeded.
fn put_new_keys(store: &Store, count: usize) -> usize {
    (0..count).position(|i| store.put(key('n', i), vec![b'c'; VALUE_BYTES]).is_err()).unwrap_or(count)
}

/// How many new keys it takes, on a clean run, to roll into a reused file plus `PUTS_AFTER_ROLL`.
fn new_keys_to_write() -> usize {
    let fs = SimFs::new();
    let store = store_with_a_full_pool(&fs);
    let before = store.stats().recycled_segments;
    let rolled = (0..PUTS_TO_ROLL_MAX)
        .position(|i| {
            store.put(key('n', i), vec![b'c'; VALUE_BYTES]).unwrap();
            store.stats().recycled_segments > before
        })
        .expect("the active segment rolled into a reused file");
    rolled + 1 + PUTS_AFTER_ROLL
}

/// The active segment's file and where its data ends.
fn active_file(store: &Store) -> (PathBuf, u64) {
    let stats = store.stats();
    let active = stats.segment_details.iter().find(|s| s.active).expect("an active segment");
    (Path::new(DIR).join(format!("{:016x}.seg", active.id)), active.data_bytes)
}

/// What the store must hold: every 'k' key with its 'b' value, and the first `new_keys` 'n' keys.
fn assert_holds(store: &Store, new_keys: usize, context: &str) {
    for i in 0..KEYS {
        let got = store.get(key('k', i)).unwrap().map(|v| v.to_vec());
        assert_eq!(got, Some(vec![b'b'; VALUE_BYTES]), "{context}: key k{i:04}");
    }
    for i in 0..PUTS_TO_ROLL_MAX {
        let expected = (i < new_keys).then(|| vec![b'c'; VALUE_BYTES]);
        assert_eq!(store.get(key('n', i)).unwrap().map(|v| v.to_vec()), expected, "{context}: key n{i:04}");
    }
}

/// Power is lost with the reused file holding the new segment's frames and, right after them, an
/// intact frame of its old segment (checked: the frame magic starts exactly at the new data's end),
/// then every old frame after it. Recovery stops at the new data's end in every crash mode, on
/// both platforms' rules: the old frames fail the new salt's checksum and are of sync groups the
/// new segment never admits.
#[test]
fn an_old_frame_right_after_the_new_data_is_never_taken() {
    let new_keys = new_keys_to_write();
    for windows in [false, true] {
        for mode in [CrashMode::Everything, CrashMode::Nothing, CrashMode::Prefix, CrashMode::Sectors512] {
            let context = format!("windows {windows}, {mode:?}");
            let fs = if windows { SimFs::new_windows() } else { SimFs::new() };
            let store = store_with_a_full_pool(&fs);
            assert_eq!(put_new_keys(&store, new_keys), new_keys);
            assert!(store.stats().recycled_segments > 0, "{context}: the active segment reuses a file");
            let (path, data_end) = active_file(&store);
            let bytes = fs.read_file(&path).unwrap();
            let at = data_end as usize;
            assert!(bytes.len() > at + 4, "{context}: old contents follow the new data");
            assert_eq!(&bytes[at..at + 4], &FRAME_MAGIC.to_le_bytes(), "{context}: an old frame starts at the end");
            // Power is cut before the store closes (closing would cut the old contents off).
            fs.halt();
            drop(store);
            fs.clear_faults();
            fs.crash(mode, 7);

            let store = open(&fs);
            assert_holds(&store, new_keys, &context);
            let (_, recovered_end) = active_file(&store);
            assert_eq!(recovered_end, data_end, "{context}: recovery ended the data where it ended");
            assert!(store.recovery_report().torn_tail_bytes > 0, "{context}: the old contents were cut as a tail");
        }
    }
}

/// A crash at every file operation of rolling into a reused file and writing to it (the pool
/// file's rename to the new segment's name, its new header and its sync, the directory sync, the
/// manifest naming it, the frames over the old ones), in every crash mode: the reopened store
/// holds every acknowledged put, possibly the one in flight, and nothing of the old contents
/// (an old segment's id or frames would bring back 'a' values or lose 'n' keys).
#[test]
fn a_crash_at_any_step_of_reusing_a_file_never_resurfaces_old_contents() {
    let new_keys = new_keys_to_write();
    let ops = {
        let fs = SimFs::new();
        let store = store_with_a_full_pool(&fs);
        let start = fs.op_count();
        put_new_keys(&store, new_keys);
        fs.op_count() - start
    };
    let modes = [CrashMode::Nothing, CrashMode::Everything, CrashMode::Prefix, CrashMode::Sectors4096];
    for at in 0..ops {
        for mode in modes {
            let context = format!("crash at op {at} of {ops} in {mode:?}");
            let fs = SimFs::new();
            let store = store_with_a_full_pool(&fs);
            fs.inject(Fault::nth(at, FaultKind::Eio).halt());
            let acked = put_new_keys(&store, new_keys);
            drop(store);
            fs.clear_faults();
            fs.crash(mode, at);

            let store = Store::open_on(fs.clone(), Path::new(DIR), options())
                .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            // The put in flight when power went may or may not have survived.
            let in_flight = store.get(key('n', acked)).unwrap().is_some();
            assert_holds(&store, acked + usize::from(in_flight), &context);
        }
    }
}

/// Pool files are the store's (their name says so: 16 hex digits and `.pool`) but no manifest
/// names one, so open removes them unread, even one holding a whole valid segment; a file that
/// only ends in `.pool` is not the store's and is left alone.
#[test]
fn pool_files_found_at_open_are_removed_unread() {
    let fs = SimFs::new();
    let store = store_with_a_full_pool(&fs);
    let (segment, _) = active_file(&store);
    let before = common::contents(&store);
    drop(store);
    let pool_file = Path::new(DIR).join("000000000000002a.pool");
    let not_ours = Path::new(DIR).join("notes.pool");
    fs.write_file_durable(&pool_file, &fs.read_file(&segment).unwrap());
    fs.write_file_durable(&not_ours, b"someone else's");

    let store = open(&fs);
    assert!(common::contents(&store) == before, "the pool file's contents were not read");
    assert_eq!(store.recovery_report().orphans_removed, 1);
    assert!(fs.read_file(&pool_file).is_none(), "the pool file is gone");
    assert!(fs.read_file(&not_ours).is_some(), "a file that is not the store's stays");
}

/// The pool holds at most `POOL_FILES_MAX` files, and no more than `POOL_BYTES_FLOOR` bytes once
/// the live data is small (a store that deleted its data keeps no 64 KiB segment file around), none with recycling off, and none after
/// the store closes.
#[test]
fn the_pool_stays_small() {
    let big = Options { background_thread: false, ..common::small_segments() };
    let fs = SimFs::new();
    let store = Store::open_on(fs.clone(), Path::new(DIR), big.clone()).unwrap();
    for i in 0..2000 {
        store.put(key('k', i), vec![b'a'; VALUE_BYTES]).unwrap();
    }
    for i in 0..2000 {
        store.put(key('k', i), vec![b'b'; VALUE_BYTES]).unwrap();
    }
    store.compact().unwrap();
    let pooled = store.stats().pooled_segments;
    assert!((1..=POOL_FILES_MAX).contains(&pooled), "{pooled} files pooled with 2 MB live");
    for i in 0..2000 {
        store.delete(key('k', i)).unwrap();
    }
    store.compact().unwrap();
    let pool_bytes: u64 = pool_files(&fs).iter().map(|p| fs.file_len(p).unwrap()).sum();
    assert!(pool_bytes <= POOL_BYTES_FLOOR, "a store with nothing live keeps {pool_bytes} bytes in its pool");
    drop(store);
    assert!(pool_files(&fs).is_empty(), "closing empties the pool");

    let fs = SimFs::new();
    let off = Options { recycle_segments: false, ..big };
    let store = Store::open_on(fs.clone(), Path::new(DIR), off).unwrap();
    for round in [b'a', b'b', b'c'] {
        for i in 0..500 {
            store.put(key('k', i), vec![round; VALUE_BYTES]).unwrap();
        }
        store.compact().unwrap();
    }
    let stats = store.stats();
    assert_eq!((stats.pooled_segments, stats.recycled_segments), (0, 0), "recycling off");
}
