//! The store's promises tried by an adversary where the older tests did not look: a concurrent
//! reader of a batch, a leader parked in the middle of publishing, write-back mode after a failed
//! sync and under compaction, a roll-over racing a compaction's commit, a panicking leader, and a
//! writer queued behind a failure in the background. Each test stages its race with a parking
//! file system (tests/common/parking.rs): no sleeps, every wait bounded.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use ferrocask::testing::{CrashMode, Fault, FaultKind, OpKind, SimFs, Vfs};
use ferrocask::{Batch, Error, Options, Store, SyncMode};

mod common;

use common::parking::{Gate, ParkOp, ParkingVfs, Release, Rule, PARK_TIMEOUT};
use common::write_back;

fn dir() -> &'static Path {
    Path::new("/data/store")
}

fn disk() -> Arc<SimFs> {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/data"));
    fs
}

/// Small segments, no background work that could take a parking point meant for another thread.
fn quiet(sync: SyncMode) -> Options {
    Options { sync, preallocate_bytes: 0, write_hints: false, ..common::options() }
}

/// Runs `f` on a thread called `name`; its result arrives on the returned channel.
fn spawn_named<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    rx
}

fn outcome<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(PARK_TIMEOUT).unwrap_or_else(|_| panic!("{what} did not return (a hang)"))
}

fn value(i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("value{i}:").into_bytes();
    v.resize(len, b'.');
    v
}

fn assert_poisoned<T: std::fmt::Debug>(result: ferrocask::Result<T>, what: &str) {
    assert!(matches!(result, Err(Error::Poisoned { .. })), "{what}: expected Poisoned, got {result:?}");
}

/// One writer sets 64 keys to generation g in one batch, g = 1, 2, ...; readers read the keys in
/// a shuffled order. Once a reader has seen generation g anywhere, no later read in the same
/// sweep may show less: a batch becomes visible all at once. In both sync modes.
#[test]
fn a_reader_that_sees_one_key_of_a_batch_sees_all_of_it() {
    const KEYS: usize = 64;
    const BATCHES: u64 = 1500;
    for sync in [SyncMode::Always, write_back()] {
        let store = Arc::new(Store::open_on(disk(), dir(), quiet(sync)).unwrap());
        let key = |i: usize| format!("batch-key-{i}");
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3u64)
            .map(|r| {
                let (store, done) = (Arc::clone(&store), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut rng = common::Rng::new(r + 1);
                    let mut order: Vec<usize> = (0..KEYS).collect();
                    let mut sweeps = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        for i in (1..KEYS).rev() {
                            order.swap(i, rng.below(i as u64 + 1) as usize);
                        }
                        let mut seen = 0u64;
                        for &i in &order {
                            let g = store
                                .get(key(i))
                                .unwrap()
                                .map_or(0, |v| u64::from_le_bytes(v.as_ref().try_into().expect("8-byte generation")));
                            assert!(g >= seen, "{sync:?}: key {i} shows generation {g} after {seen} was seen");
                            seen = g;
                        }
                        sweeps += 1;
                    }
                    sweeps
                })
            })
            .collect();
        for g in 1..=BATCHES {
            let mut batch = Batch::new();
            for i in 0..KEYS {
                batch.put(key(i), g.to_le_bytes());
            }
            store.write(batch).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let sweeps: u64 = readers.into_iter().map(|r| r.join().expect("a reader saw half a batch")).sum();
        assert!(sweeps > 0, "{sync:?}: the readers ran");
    }
}

/// The leader is parked between two records of a batch's publication (at a mapped read it makes
/// while applying the middle record). A reader that then reads the first and the last key must
/// see both new or both old: it waits for the leader rather than seeing half the batch.
#[test]
fn a_reader_never_sees_half_a_batch_while_the_leader_is_parked_mid_publish() {
    let parking = ParkingVfs::new(disk());
    let store = Arc::new(Store::open_on(parking.clone(), dir(), quiet(SyncMode::Always)).unwrap());
    let batch = |tag: &str| {
        let mut b = Batch::new();
        b.put("a", format!("{tag}-a")).put("c", format!("{tag}-c")).put("b", format!("{tag}-b"));
        b
    };
    store.write(batch("old")).unwrap();
    // Segment header (40) + frame header (24): "a" at 64, then "c" (16-byte header, 1-byte
    // key, 5-byte value) at 86. Publishing the new "c" compares keys with the old record there.
    let gate = parking.arm(Rule::new(ParkOp::MapRead(86), ".seg").by_thread("writer"));
    let writer = {
        let store = Arc::clone(&store);
        spawn_named("writer", move || store.write(batch("new")))
    };
    assert!(gate.wait_parked(), "the leader reached the middle of its publication");
    let reader = {
        let store = Arc::clone(&store);
        spawn_named("reader", move || (store.get("a").unwrap(), store.get("b").unwrap()))
    };
    // A reader that returns while the leader is parked proves it did not wait; give it the chance
    // (the assertion below holds however long this wait is).
    let early = reader.recv_timeout(Duration::from_millis(300)).ok();
    gate.release(Release::Proceed);
    let (a, b) = early.unwrap_or_else(|| outcome(&reader, "the reader"));
    outcome(&writer, "the writer").unwrap();
    let (a, b) = (a.unwrap().into_vec(), b.unwrap().into_vec());
    assert_eq!(
        a.starts_with(b"new"),
        b.starts_with(b"new"),
        "the reader saw a = {:?} but b = {:?}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
}

/// Write-back mode: after a failed sync, a retried sync must not report success (the kernel may
/// have dropped the pages it failed to write), and nothing else may be acknowledged either.
#[test]
fn write_back_a_failed_sync_poisons_every_later_sync_write_and_compaction() {
    let fs = disk();
    let store = Store::open_on(fs.clone(), dir(), quiet(write_back())).unwrap();
    store.put("synced", "1").unwrap();
    store.sync().unwrap();
    store.put("unsynced", "2").unwrap();
    fs.inject(Fault::matching(OpKind::Sync, ".seg", FaultKind::SyncFails).times(1));
    assert!(matches!(store.sync(), Err(Error::Io { .. })), "the failed sync reports its error");
    assert_poisoned(store.sync(), "a second sync");
    assert_poisoned(store.put("later", "3"), "a put");
    assert_poisoned(store.delete("synced"), "a delete");
    assert_poisoned(store.delete("never-written"), "a delete of a missing key");
    let mut batch = Batch::new();
    batch.put("x", "y");
    assert_poisoned(store.write(batch), "a batch");
    assert_poisoned(store.compact(), "a compaction");
    assert_eq!(store.get("synced").unwrap().as_deref(), Some(&b"1"[..]), "reads keep working");
    fs.crash(CrashMode::Nothing, 0);
    drop(store);
    let store = Store::open_on(fs.clone(), dir(), quiet(write_back())).unwrap();
    assert_eq!(store.get("synced").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get("later").unwrap(), None);
}

/// Write-back mode: compaction judged "v1" dead because the index pointed at "v2", which was not
/// yet synced. If compaction then drops v1 without making v2 durable, a power loss loses both.
#[test]
fn write_back_compaction_never_drops_a_value_whose_successor_is_unsynced() {
    let fs = disk();
    let parking = ParkingVfs::new(fs.clone());
    // No background thread: nothing syncs unless the test (or compaction) does.
    let options = Options { background_thread: false, ..quiet(write_back()) };
    let store = Arc::new(Store::open_on(parking.clone(), dir(), options.clone()).unwrap());
    // Enough fillers (20 KB) to roll the 16 KiB active segment, so compaction has an input.
    let fillers = 20;
    for i in 0..fillers {
        store.put(format!("filler{i}"), value(i, 1000)).unwrap();
    }
    store.put("k", "v1").unwrap();
    store.sync().unwrap();
    // compact() seals the active segment (syncing it), creates an output for the fillers, and
    // only then looks at "k". Park it at the output's creation and overwrite "k" meanwhile.
    let gate = parking.arm(Rule::new(ParkOp::Create, ".seg").by_thread("compactor").skip(1));
    let compactor = {
        let store = Arc::clone(&store);
        spawn_named("compactor", move || store.compact())
    };
    assert!(gate.wait_parked(), "compaction reached its output");
    store.put("k", "v2").unwrap(); // acknowledged, not synced
    gate.release(Release::Proceed);
    let report = outcome(&compactor, "compaction").unwrap();
    assert!(report.records_dropped >= 1, "v1 was dropped as dead: {report:?}");
    fs.crash(CrashMode::Nothing, 0);
    drop(store);
    let store = Store::open_on(fs.clone(), dir(), options).unwrap();
    let k = store.get("k").unwrap().map(|v| v.into_vec());
    assert!(
        k.as_deref() == Some(b"v1") || k.as_deref() == Some(b"v2"),
        "k after the crash is {k:?}: a synced value was lost"
    );
    for i in 0..fillers {
        assert_eq!(store.get(format!("filler{i}")).unwrap().map(|v| v.into_vec()), Some(value(i, 1000)));
    }
}

/// A roll-over allocates its segment id, then syncs the directory outside the segment-set lock;
/// meanwhile a compaction reaches its commit with outputs of higher ids. The roll-over's manifest
/// must be sorted whatever commits first, and every writer must return (before the fix the
/// leader panicked on an unsorted manifest and every writer waited for ever).
#[test]
fn a_rollover_racing_a_compaction_commit_leaves_every_writer_returning() {
    let fs = disk();
    let parking = ParkingVfs::new(fs.clone());
    let options = quiet(SyncMode::Always);
    let store = Arc::new(Store::open_on(parking.clone(), dir(), options.clone()).unwrap());
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..40 {
        store.put(format!("key{i}"), value(i, 1000)).unwrap();
        expected.insert(format!("key{i}"), value(i, 1000));
    }
    // Compaction: its first sync is the new active segment's header, its second the first
    // output's header; park there, with the output's id allocated and the next one not yet.
    let compaction_gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("compactor").skip(1));
    let compactor = {
        let store = Arc::clone(&store);
        spawn_named("compactor", move || store.compact())
    };
    assert!(compaction_gate.wait_parked(), "compaction reached its first output");
    // A writer fills the new active segment until it rolls over: park it in the roll-over's
    // directory sync, with its new segment's id allocated.
    let roll_gate = parking.arm(Rule::new(ParkOp::SyncDir, "/data/store").by_thread("roller"));
    let roller = {
        let store = Arc::clone(&store);
        spawn_named("roller", move || {
            let mut written = Vec::new();
            for i in 0..30 {
                let (k, v) = (format!("roll{i}"), value(100 + i, 1000));
                store.put(&k, &v)?;
                written.push((k, v));
            }
            Ok::<_, Error>(written)
        })
    };
    assert!(roll_gate.wait_parked(), "the writer reached its roll-over");
    // Let the compaction run to its commit first, as far as it can: its commit syncs the log,
    // so it waits for the parked roll-over to finish (the race cannot happen); a compaction
    // that committed while the roll-over is parked is the race itself, which must still leave
    // a sorted manifest. The assertions below hold either way.
    compaction_gate.release(Release::Proceed);
    let compacted = compactor.recv_timeout(Duration::from_millis(300)).ok();
    roll_gate.release(Release::Proceed);
    let written = outcome(&roller, "the rolling writer").unwrap();
    compacted.unwrap_or_else(|| outcome(&compactor, "compaction")).unwrap();
    expected.extend(written);
    store.put("after", "race").unwrap();
    expected.insert("after".into(), b"race".to_vec());
    drop(Arc::into_inner(store).expect("the test holds the last reference"));
    let store = Store::open_on(fs.clone(), dir(), options).unwrap();
    for (k, v) in &expected {
        assert_eq!(store.get(k).unwrap().map(|v| v.into_vec()).as_ref(), Some(v), "{k}");
    }
}

/// A leader that panics (here: its sync panics) must not leave the others waiting for ever: its
/// group and every later writer get an error, the store is poisoned, and nothing is acknowledged.
#[test]
fn a_leader_that_panics_poisons_the_store_and_fails_queued_writers() {
    let parking = ParkingVfs::new(disk());
    let store = Arc::new(Store::open_on(parking.clone(), dir(), quiet(SyncMode::Always)).unwrap());
    store.put("before", "1").unwrap();
    let gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("leader"));
    let leader = {
        let store = Arc::clone(&store);
        spawn_named("leader", move || store.put("k1", "v1"))
    };
    assert!(gate.wait_parked(), "the leader reached its sync");
    let queued = {
        let store = Arc::clone(&store);
        spawn_named("queued", move || store.put("k2", "v2"))
    };
    gate.release(Release::Panic);
    assert_poisoned(outcome(&leader, "the panicking leader's write"), "the leader's own write");
    assert_poisoned(outcome(&queued, "the queued write"), "a write queued behind the panic");
    assert_poisoned(store.put("k3", "v3"), "a later write");
    assert_eq!(store.get("k1").unwrap(), None, "an unacknowledged write is not visible");
    assert_eq!(store.get("before").unwrap().as_deref(), Some(&b"1"[..]));
}

/// A compaction parked at an output sync, and a writer of "led" parked, as group leader, at its
/// log sync: the two places a poisoning can come from while the other is in flight.
struct Staged {
    compaction_gate: Gate,
    compactor: Receiver<ferrocask::Result<ferrocask::CompactionReport>>,
    leader_gate: Gate,
    leader: Receiver<ferrocask::Result<()>>,
}

/// A store on a parking `Vfs` over a simulated disk, holding `key0`..`key19` (1000-byte values).
fn parked_store_of_20_keys() -> (Arc<SimFs>, Arc<ParkingVfs>, Options, Arc<Store>) {
    let fs = disk();
    let parking = ParkingVfs::new(fs.clone());
    let options = quiet(SyncMode::Always);
    let store = Arc::new(Store::open_on(parking.clone(), dir(), options.clone()).unwrap());
    for i in 0..20 {
        store.put(format!("key{i}"), value(i, 1000)).unwrap();
    }
    (fs, parking, options, store)
}

fn stage_compaction_and_leader(parking: &Arc<ParkingVfs>, store: &Arc<Store>) -> Staged {
    let compaction_gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("compactor").skip(1));
    let compactor = {
        let store = Arc::clone(store);
        spawn_named("compactor", move || store.compact())
    };
    assert!(compaction_gate.wait_parked(), "compaction reached an output sync");
    let leader_gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("leader"));
    let leader = {
        let store = Arc::clone(store);
        spawn_named("leader", move || store.put("led", "1"))
    };
    assert!(leader_gate.wait_parked(), "the leader reached its sync");
    Staged { compaction_gate, compactor, leader_gate, leader }
}

/// A failure in the background (a compaction's output sync) poisons the store while a writer is
/// queued behind the current leader: the queued writer must get `Poisoned` and write nothing.
#[test]
fn a_writer_queued_behind_a_background_poisoning_gets_poisoned_and_writes_nothing() {
    let (fs, parking, options, store) = parked_store_of_20_keys();
    let Staged { compaction_gate, compactor, leader_gate, leader } = stage_compaction_and_leader(&parking, &store);
    let queued = {
        let store = Arc::clone(&store);
        spawn_named("queued", move || store.put("queued", "2"))
    };
    compaction_gate.release(Release::Fail(std::io::ErrorKind::Other));
    assert!(outcome(&compactor, "compaction").is_err(), "the compaction whose sync failed fails");
    leader_gate.release(Release::Proceed);
    let _ = outcome(&leader, "the leader"); // its sync had begun before the failure: either outcome
    assert_poisoned(outcome(&queued, "the queued write"), "a write queued behind the failure");
    assert_eq!(store.get("queued").unwrap(), None);
    fs.crash(CrashMode::Everything, 0);
    drop(store);
    let store = Store::open_on(fs as Arc<dyn Vfs>, dir(), options).unwrap();
    assert_eq!(store.get("queued").unwrap(), None, "nothing of the refused write reached the disk");
    for i in 0..20 {
        assert_eq!(store.get(format!("key{i}")).unwrap().map(|v| v.into_vec()), Some(value(i, 1000)));
    }
}

/// The other way round: a compaction is running (parked at an output sync) when a writer's
/// sync fails and poisons the store. From that moment nothing more may be committed: the
/// compaction must fail with `Poisoned` instead of writing its manifest, and the data stays
/// whole across a crash.
#[test]
fn a_compaction_running_when_a_writer_poisons_the_store_commits_nothing() {
    let (fs, parking, options, store) = parked_store_of_20_keys();
    for i in 0..10 {
        store.put(format!("key{i}"), value(i, 900)).unwrap();
    }
    let Staged { compaction_gate, compactor, leader_gate, leader } = stage_compaction_and_leader(&parking, &store);
    leader_gate.release(Release::Fail(std::io::ErrorKind::Other));
    assert!(outcome(&leader, "the leader").is_err(), "the write whose sync failed fails");
    let manifest_before = fs.read_file(&dir().join("MANIFEST"));
    compaction_gate.release(Release::Proceed);
    assert_poisoned(outcome(&compactor, "compaction").map(|_| ()), "a compaction running at the poisoning");
    assert_eq!(fs.read_file(&dir().join("MANIFEST")), manifest_before, "no manifest was written after the poisoning");
    fs.crash(CrashMode::Everything, 0);
    drop(store);
    let store = Store::open_on(fs as Arc<dyn Vfs>, dir(), options).unwrap();
    for i in 0..20 {
        let len = if i < 10 { 900 } else { 1000 };
        assert_eq!(store.get(format!("key{i}")).unwrap().map(|v| v.into_vec()), Some(value(i, len)));
    }
}

/// Fuzz finding `ops_model/manifest-renamed-but-not-durable`: a roll-over renamed its new
/// manifest into place, then the directory sync failed (poisoning the store). A reopen without a
/// crash read the new manifest and acknowledged writes into the new active segment, but never
/// synced the directory: a power loss then brought the old manifest back, the new segment became
/// an orphan, and the acknowledged writes were gone. Open now always syncs the directory.
#[test]
fn writes_acknowledged_after_a_reopen_survive_even_if_the_manifest_rename_was_not_durable() {
    let fs = disk();
    let parking = ParkingVfs::new(fs.clone());
    let options = quiet(SyncMode::Always);
    let store = Arc::new(Store::open_on(parking.clone(), dir(), options.clone()).unwrap());
    // A roll-over syncs the directory twice: after creating the segment, and after renaming the
    // manifest. Fail the second.
    let gate = parking.arm(Rule::new(ParkOp::SyncDir, "/data/store").by_thread("roller").skip(1));
    let roller = {
        let store = Arc::clone(&store);
        spawn_named("roller", move || {
            for i in 0..40 {
                if let Err(e) = store.put(format!("key{i}"), value(i, 1000)) {
                    return (i, e);
                }
            }
            panic!("no roll-over happened")
        })
    };
    assert!(gate.wait_parked(), "the roll-over reached its manifest's directory sync");
    gate.release(Release::Fail(std::io::ErrorKind::Other));
    let (acked, _) = outcome(&roller, "the writer");
    drop(Arc::into_inner(store).expect("the test holds the last reference"));
    let store = Store::open_on(fs.clone(), dir(), options.clone()).unwrap(); // no crash
    store.put("after-reopen", "acknowledged").unwrap();
    fs.crash(CrashMode::Nothing, 1);
    drop(store);
    let store = Store::open_on(fs.clone(), dir(), options).unwrap();
    assert_eq!(store.get("after-reopen").unwrap().as_deref(), Some(&b"acknowledged"[..]));
    for i in 0..acked {
        assert_eq!(store.get(format!("key{i}")).unwrap().map(|v| v.into_vec()), Some(value(i, 1000)), "key{i}");
    }
}

/// The background thread writes a sealed segment's hint file while a compaction retires that
/// segment. The compaction must not return with the segment's file still on disk (it went only
/// with the hint writer's reference), nor may a hint file appear afterwards for a segment no
/// manifest names: hint writing and compaction take turns.
#[test]
fn a_compaction_racing_the_hint_writer_leaves_no_file_the_manifest_does_not_name() {
    let fs = disk();
    let parking = ParkingVfs::new(fs.clone());
    let options = Options { write_hints: true, ..quiet(SyncMode::Always) };
    let store = Arc::new(Store::open_on(parking.clone(), dir(), options.clone()).unwrap());
    let hint_writer = parking.arm(Rule::new(ParkOp::Create, ".hint").by_thread("ferrocask-maintenance"));
    let mut written = 0;
    while !hint_writer.wait_parked_for(Duration::ZERO) {
        store.put(format!("key{written}"), value(written, 1000)).unwrap();
        written += 1;
        if written > 40 {
            assert!(hint_writer.wait_parked(), "the background thread went for the first hint file");
        }
    }
    let compactor = {
        let store = Arc::clone(&store);
        spawn_named("compactor", move || store.compact())
    };
    // A compaction that returns while the hint writer is parked must already have removed what
    // it retired; give it the chance (the assertions hold however long this wait is).
    // (Released before any assertion: a failing one would otherwise hang in the store's drop,
    // which joins the parked thread.)
    let early = compactor.recv_timeout(Duration::from_millis(300)).ok();
    let left_as_it_returned = early.is_some().then(|| files_the_manifest_does_not_name(&fs));
    hint_writer.release(Release::Proceed);
    early.unwrap_or_else(|| outcome(&compactor, "compaction")).unwrap();
    if let Some(left) = left_as_it_returned {
        assert_eq!(left, Vec::<String>::new(), "as the compaction returned");
    }
    drop(Arc::into_inner(store).expect("the test holds the last reference"));
    assert_eq!(files_the_manifest_does_not_name(&fs), Vec::<String>::new(), "after the store closed");
    let store = Store::open_on(fs.clone(), dir(), options).unwrap();
    for i in 0..written {
        assert_eq!(store.get(format!("key{i}")).unwrap().map(|v| v.into_vec()), Some(value(i, 1000)), "key{i}");
    }
}

/// Segment and hint files in the store's directory that its manifest does not name.
fn files_the_manifest_does_not_name(fs: &SimFs) -> Vec<String> {
    let manifest = ferrocask::format::decode_manifest(&fs.read_file(&dir().join("MANIFEST")).unwrap()).unwrap();
    let mut names: Vec<String> = fs
        .list(dir())
        .unwrap()
        .into_iter()
        .filter(|name| {
            let Some((stem, ext)) = name.rsplit_once('.') else { return false };
            matches!(ext, "seg" | "hint")
                && !u64::from_str_radix(stem, 16).is_ok_and(|id| manifest.segments.contains(&id))
        })
        .collect();
    names.sort();
    names
}
