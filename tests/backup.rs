//! `Store::backup_to`: a consistent copy of a live store that opens as a working store. The
//! API-level tests run on the real and on the simulated file system (`both_backends!`); the
//! crash and fault tests at the end need the simulator.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ferrocask::testing::{CrashMode, SimFs};
use ferrocask::{Batch, Error, Store};

mod common;

use common::options;

fn counter(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("8-byte counter"))
}

both_backends! {
    /// Each writer writes an increasing counter to its own key (and, in the same batch, to a key it
    /// shares with nobody, so that a torn batch would show). A compactor runs too. The backup's value
    /// for each key lies between what was acknowledged before the backup started and the final one.
    fn a_backup_during_writes_is_a_prefix_of_each_writers_history(b) {
        const WRITERS: usize = 3;
        let store = Arc::new(b.open_with(&b.path("live"), options()).unwrap());
        let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..WRITERS {
            let (store, acked, stop) = (store.clone(), acked.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let mut batch = Batch::new();
                    batch.put(format!("writer:{t}"), n.to_le_bytes()).put(format!("shadow:{t}"), n.to_le_bytes());
                    store.write(batch).unwrap();
                    acked[t].store(n, Ordering::SeqCst);
                }
                n
            }));
        }
        let compactor = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    store.compact().unwrap();
                }
            })
        };
        // Let every writer get going (and segments roll) before the backup starts.
        while acked.iter().any(|a| a.load(Ordering::SeqCst) < 100) {
            std::thread::yield_now();
        }
        // A backup of one segment copies nothing sealed; that happens when the compactor has just
        // found every record superseded by writes to the new active segment (often under Wine, whose
        // scheduling differs), so try again until a cut holds a sealed segment too.
        let (mut before, mut report, mut attempt) = (Vec::new(), None, 0);
        while report.as_ref().is_none_or(|r: &ferrocask::BackupReport| r.segments <= 1) && attempt < 100 {
            attempt += 1;
            before = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
            report = Some(store.backup_to(b.path(&format!("backup-{attempt}"))).unwrap());
        }
        stop.store(true, Ordering::SeqCst);
        let finals: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        compactor.join().unwrap();
        let report = report.unwrap();
        assert!(report.segments > 1, "{report:?} after {attempt} attempts");

        let backup = b.open_with(&b.path(&format!("backup-{attempt}")), options()).unwrap();
        assert_eq!(backup.len(), 2 * WRITERS);
        for t in 0..WRITERS {
            let v = counter(&backup.get(format!("writer:{t}")).unwrap().unwrap());
            assert!(
                before[t] <= v && v <= finals[t],
                "writer {t}: backup has {v}, acked before {}, final {}",
                before[t],
                finals[t]
            );
            let shadow = counter(&backup.get(format!("shadow:{t}")).unwrap().unwrap());
            assert_eq!(shadow, v, "writer {t}: a batch is all or nothing in the backup");
        }
        // The live store went on without noticing.
        for (t, last) in finals.iter().enumerate() {
            assert_eq!(counter(&store.get(format!("writer:{t}")).unwrap().unwrap()), *last);
        }
    }

    fn a_backup_is_a_working_store(b) {
        let store = b.open_with(&b.path("live"), options()).unwrap();
        for i in 0..500u32 {
            store.put(format!("k{}", i % 120), i.to_le_bytes()).unwrap();
        }
        store.delete(b"k7").unwrap();
        let expected: Vec<_> = {
            let mut v: Vec<_> = store.iter().map(|(k, v)| (k, v.into_vec())).collect();
            v.sort();
            v
        };
        store.backup_to(b.path("copy")).unwrap();
        store.put(b"after", b"not in the backup").unwrap();
        {
            let copy = b.open_with(&b.path("copy"), options()).unwrap();
            let mut got: Vec<_> = copy.iter().map(|(k, v)| (k, v.into_vec())).collect();
            got.sort();
            assert_eq!(got, expected);
            assert_eq!(copy.get(b"after").unwrap(), None);
            copy.put(b"written to the copy", b"yes").unwrap();
            copy.delete(b"k8").unwrap();
            copy.compact().unwrap();
        }
        let copy = b.open_with(&b.path("copy"), options()).unwrap();
        assert_eq!(copy.get(b"written to the copy").unwrap().as_deref(), Some(&b"yes"[..]));
        assert_eq!(copy.get(b"k8").unwrap(), None);
        assert_eq!(copy.len(), expected.len());
        // The original is untouched by what was done to the copy.
        assert!(store.contains_key(b"k8").unwrap());
    }

    fn the_target_must_be_missing_or_empty(b) {
        let store = b.open(&b.path("live")).unwrap();
        store.put(b"k", b"v").unwrap();
        let full = b.path("full");
        b.create_dir(&full);
        b.write_file(&full.join("notes.txt"), b"mine");
        assert!(matches!(store.backup_to(&full), Err(Error::BackupTarget { .. })));
        assert_eq!(b.read_file(&full.join("notes.txt")), b"mine", "nothing in it was touched");
        assert!(matches!(store.backup_to(b.path("live")), Err(Error::BackupTarget { .. })));
        let empty = b.path("empty");
        b.create_dir(&empty);
        store.backup_to(&empty).unwrap();
        assert!(matches!(store.backup_to(&empty), Err(Error::BackupTarget { .. })), "a second backup into it");
        assert_eq!(b.open(&empty).unwrap().get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}

/// On the simulated disk: once `backup_to` returns, the copy survives power loss (every file and
/// the directory were synced), whatever the crash keeps of unsynced changes.
#[test]
fn a_finished_backup_survives_a_crash() {
    for mode in CrashMode::ALL {
        let fs = SimFs::new();
        fs.create_dir_all_durable(Path::new("/data"));
        fs.create_dir_all_durable(Path::new("/backups"));
        let store = Store::open_on(fs.clone(), Path::new("/data/live"), options()).unwrap();
        for i in 0..300u32 {
            store.put(format!("k{}", i % 50), i.to_le_bytes()).unwrap();
        }
        store.backup_to("/backups/b1").unwrap();
        fs.crash(mode, 42);
        drop(store);
        let copy = Store::open_on(fs.clone(), Path::new("/backups/b1"), options()).unwrap();
        assert_eq!(copy.len(), 50, "{mode:?}");
        for i in 250..300u32 {
            assert_eq!(copy.get(format!("k{}", i % 50)).unwrap().as_deref(), Some(&i.to_le_bytes()[..]), "{mode:?}");
        }
    }
}

/// Regression: `backup_to` synced only the target's direct parent, so a target nested in new
/// directories (`a/b/c` where `a` and `b` did not exist) vanished with a power loss right after
/// the backup returned, though every file in it was synced.
#[test]
fn a_backup_into_new_nested_directories_survives_a_crash_right_after_it_returns() {
    for target in ["/backups/a/b/c", "rel/a/b/c"] {
        let fs = SimFs::new();
        fs.create_dir_all_durable(Path::new("/data"));
        fs.create_dir_all_durable(Path::new("/backups"));
        let store = Store::open_on(fs.clone(), Path::new("/data/live"), options()).unwrap();
        for i in 0..300u32 {
            store.put(format!("k{}", i % 50), i.to_le_bytes()).unwrap();
        }
        store.backup_to(target).unwrap();
        fs.crash(CrashMode::Nothing, 0);
        drop(store);
        let copy = Store::open_on(fs.clone(), Path::new(target), options())
            .unwrap_or_else(|e| panic!("{target}: the backup does not open after the crash: {e}"));
        assert_eq!(copy.len(), 50, "{target}: the backup opened empty (its directory was lost)");
        for i in 250..300u32 {
            assert_eq!(copy.get(format!("k{}", i % 50)).unwrap().as_deref(), Some(&i.to_le_bytes()[..]), "{target}");
        }
    }
}

/// The backup's own files are not the store's: a failed sync in the target fails the backup
/// (`Error::Io`) but must not poison the live store, which keeps taking writes.
#[test]
fn a_failed_sync_in_the_backup_target_fails_the_backup_but_not_the_store() {
    use ferrocask::testing::{Fault, FaultKind, OpKind};
    let fs = SimFs::new();
    let store = Store::open_on(fs.clone(), Path::new("/data/live"), options()).unwrap();
    store.put(b"k", b"v1").unwrap();
    fs.inject(Fault::matching(OpKind::Sync, "/backups/", FaultKind::SyncFails).times(1));
    assert!(matches!(store.backup_to("/backups/b1"), Err(Error::Io { .. })));
    store.put(b"k", b"v2").unwrap();
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
}

/// A new directory's entry lives in its parent, however far up the new part of the path goes,
/// so open and backup sync every ancestor, and a failed sync anywhere fails the call. Before,
/// only the direct parent's failure was reported: a store in a new tree then opened (already
/// poisoned, by the latch) or a backup returned `Ok` while its tree could vanish with a power
/// loss. The failing sync here is the working directory's, which holds the entry of a relative
/// path's first component.
#[test]
fn a_failed_sync_of_a_distant_ancestor_fails_open_and_backup() {
    use ferrocask::testing::{Fault, FaultKind, OpKind};
    let fs = SimFs::new();
    let dot_fails = || Fault::matching(OpKind::SyncDir, ".", FaultKind::SyncFails).times(1);
    fs.inject(dot_fails());
    let refused = Store::open_on(fs.clone(), Path::new("fresh/a/store"), options());
    assert!(matches!(refused, Err(Error::Io { .. })), "open in a new tree: {refused:?}");
    fs.clear_faults();
    let store = Store::open_on(fs.clone(), Path::new("fresh/a/store"), options()).unwrap();
    store.put("k", "v").unwrap();
    fs.inject(dot_fails());
    assert!(matches!(store.backup_to("newer/b"), Err(Error::Io { .. })), "a backup into a new tree");
    fs.clear_faults();
    store.put("k2", "v2").unwrap();
    store.backup_to("newer/b").unwrap();
    fs.crash(CrashMode::Nothing, 0);
    drop(store);
    let copy = Store::open_on(fs.clone(), Path::new("newer/b"), options()).unwrap();
    assert_eq!(copy.get("k2").unwrap().as_deref(), Some(&b"v2"[..]), "the backup's tree survived the crash");
}
