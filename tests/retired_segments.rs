//! Issue 16: a segment that compaction retires while a reader still maps it. Windows cannot
//! remove a mapped file, so the file goes once the last reader is done (or, if that removal
//! fails, at the next open), and nothing fails meanwhile. Each test runs on the real file system
//! (the Windows one when the suite runs under Wine) and on `SimFs` with and without the Windows
//! rules, so every platform checks the Windows behaviour.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocask::testing::{CrashMode, RealFs, SimFs, Vfs};
use ferrocask::{Options, Store};

/// Tiny segments, and one index stripe: an iterator's first batch then holds an entry (and so
/// the segment's `Arc`, and its mapping) for every key.
fn options() -> Options {
    Options { stripes: 1, ..common::tiny_segments() }
}

/// Writes enough to fill several segments, half of it overwritten, and returns what is live.
fn fill(store: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut live = BTreeMap::new();
    for round in 0..2u8 {
        for k in 0..60u32 {
            let key = format!("key-{k:03}").into_bytes();
            let value = vec![round ^ k as u8; 700];
            if round == 0 || k % 2 == 0 {
                store.put(&key, &value).unwrap();
                live.insert(key, value);
            }
        }
    }
    live
}

fn segment_names(vfs: &dyn Vfs, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = vfs.list(dir).unwrap().into_iter().filter(|n| n.ends_with(".seg")).collect();
    names.sort();
    names
}

/// Runs `test` on the real file system in a temporary directory, and on `SimFs` with and
/// without the Windows rules.
fn on_each_vfs(test: impl Fn(Arc<dyn Vfs>, &Path)) {
    let tmp = tempfile::tempdir().unwrap();
    test(Arc::new(RealFs), tmp.path());
    for sim in [SimFs::new(), SimFs::new_windows()] {
        test(sim, Path::new("/db"));
    }
}

#[test]
fn a_segment_retired_under_a_live_iterator_is_removed_when_the_iterator_is_done() {
    on_each_vfs(|vfs, dir| {
        let store = Store::open_on(vfs.clone(), dir, options()).unwrap();
        let live = fill(&store);
        let before = segment_names(&*vfs, dir);
        assert!(before.len() >= 3, "several segments: {before:?}");

        let mut iter = store.iter();
        let mut seen: BTreeMap<Vec<u8>, Vec<u8>> = iter.by_ref().take(1).map(|(k, v)| (k, v.into_vec())).collect();
        let report = store.compact().unwrap();
        assert!(report.segments_read >= 2, "{report:?}");
        // `compact` sealed the active segment first, so every segment listed before is retired.
        let during = segment_names(&*vfs, dir);
        let held: Vec<&String> = before.iter().filter(|n| during.contains(n)).collect();
        assert!(!held.is_empty(), "the iterator's batch still maps old segments: {before:?} -> {during:?}");

        seen.extend(iter.by_ref().map(|(k, v)| (k, v.into_vec())));
        assert_eq!(seen, live, "the iterator sees every key, with its value, across the compaction");
        drop(iter);

        let after = segment_names(&*vfs, dir);
        for name in &before {
            assert!(!after.contains(name), "retired {name} is gone once the reader is done: {after:?}");
        }
        for (k, v) in &live {
            assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]));
        }
        drop(store);

        let store = Store::open_on(vfs.clone(), dir, options()).unwrap();
        assert_eq!(store.recovery_report().orphans_removed, 0, "nothing was left behind");
        let reopened: BTreeMap<Vec<u8>, Vec<u8>> = store.iter().map(|(k, v)| (k, v.into_vec())).collect();
        assert_eq!(reopened, live);
    });
}

#[test]
fn a_retired_segment_whose_removal_failed_is_removed_at_the_next_open() {
    let sim = SimFs::new_windows();
    let dir = Path::new("/db");
    let store = Store::open_on(sim.clone(), dir, options()).unwrap();
    let live = fill(&store);
    let before = segment_names(&*sim, dir);

    let mut iter = store.iter();
    let _ = iter.next();
    store.compact().unwrap();
    // The disk goes away before the reader is done: the deferred removal fails.
    sim.halt();
    drop(iter);
    drop(store);
    sim.crash(CrashMode::Nothing, 1);
    let left: Vec<PathBuf> = before.iter().map(|n| dir.join(n)).filter(|p| sim.file_len(p).is_some()).collect();
    assert!(!left.is_empty(), "a retired segment was left behind");

    let store = Store::open_on(sim.clone(), dir, options()).unwrap();
    assert!(store.recovery_report().orphans_removed >= left.len(), "{:?}", store.recovery_report());
    for p in &left {
        assert_eq!(sim.file_len(p), None, "{} removed at open", p.display());
    }
    let reopened: BTreeMap<Vec<u8>, Vec<u8>> = store.iter().map(|(k, v)| (k, v.into_vec())).collect();
    assert_eq!(reopened, live);
}
