//! Issue 16: a segment that compaction retires must not fail anything that reads meanwhile, and
//! its file must go (Windows cannot remove a mapped file). Readers never hold a segment outside
//! a stripe's lock (an iterator copies a stripe's keys, not its entries: see `index/segments.rs`),
//! so compaction's retire step finds no reader and removes the files at once; a removal that
//! fails anyway is done at the next open. Each test runs on the real file system (the Windows one
//! when the suite runs under Wine) and on `SimFs` with and without the Windows rules, so every
//! platform checks the Windows behaviour.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocask::testing::{Fault, FaultKind, OpKind, RealFs, SimFs, Vfs};
use ferrocask::{Options, Store};

/// Tiny segments, and one index stripe: an iterator's first batch then holds every key.
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
fn a_segment_retired_under_a_live_iterator_is_removed_at_once_and_the_iterator_sees_every_key() {
    on_each_vfs(|vfs, dir| {
        let store = Store::open_on(vfs.clone(), dir, options()).unwrap();
        let live = fill(&store);
        let before = segment_names(&*vfs, dir);
        assert!(before.len() >= 3, "several segments: {before:?}");

        let mut iter = store.iter();
        let mut seen: BTreeMap<Vec<u8>, Vec<u8>> = iter.by_ref().take(1).map(|(k, v)| (k, v.into_vec())).collect();
        let report = store.compact().unwrap();
        assert!(report.segments_read >= 2, "{report:?}");
        // `compact` sealed the active segment first, so every segment listed before is retired;
        // the iterator's batch holds keys, not segments, so none is kept mapped.
        let during = segment_names(&*vfs, dir);
        for name in &before {
            assert!(!during.contains(name), "retired {name} is gone at once: {during:?}");
        }

        seen.extend(iter.by_ref().map(|(k, v)| (k, v.into_vec())));
        assert_eq!(seen, live, "the iterator sees every key, with its value, across the compaction");
        drop(iter);
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

/// The adversary: the removal of retired segment files fails (on Windows, a file another
/// process holds open). Without recycling a retired file is removed when its last map goes;
/// with it (`Options::recycle_segments`), a retired file is renamed into the pool and the pool's
/// files are removed when the store closes: either removal failing leaves files that the next
/// open removes, and compaction and close still succeed.
#[test]
fn a_retired_segment_whose_removal_failed_is_removed_at_the_next_open() {
    for (recycle_segments, suffix) in [(false, ".seg"), (true, ".pool")] {
        let options = Options { recycle_segments, ..options() };
        let sim = SimFs::new_windows();
        let dir = Path::new("/db");
        let store = Store::open_on(sim.clone(), dir, options.clone()).unwrap();
        let live = fill(&store);

        let mut iter = store.iter();
        let _ = iter.next();
        sim.inject(Fault::matching(OpKind::Remove, suffix, FaultKind::Eio));
        store.compact().unwrap();
        drop(iter);
        drop(store);
        sim.clear_faults();
        let left: Vec<PathBuf> = sim.list_all().into_iter().filter(|p| p.to_string_lossy().ends_with(suffix)).collect();
        let left: Vec<PathBuf> = if recycle_segments {
            left
        } else {
            let manifest = ferrocask::format::decode_manifest(&sim.read_file(&dir.join("MANIFEST")).unwrap()).unwrap();
            left.into_iter()
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    let id = u64::from_str_radix(name.trim_end_matches(suffix), 16).unwrap();
                    !manifest.segments.contains(&id) && manifest.active != id
                })
                .collect()
        };
        assert!(!left.is_empty(), "recycling {recycle_segments}: a retired file was left behind");

        let store = Store::open_on(sim.clone(), dir, options).unwrap();
        assert!(store.recovery_report().orphans_removed >= left.len(), "{:?}", store.recovery_report());
        for p in &left {
            assert_eq!(sim.file_len(p), None, "{} removed at open", p.display());
        }
        let reopened: BTreeMap<Vec<u8>, Vec<u8>> = store.iter().map(|(k, v)| (k, v.into_vec())).collect();
        assert_eq!(reopened, live);
    }
}
