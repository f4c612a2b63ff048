//! Durability modes on the simulated file system, crashing in every `CrashMode`:
//!
//! * `SyncMode::Always`: nothing acknowledged is ever lost, also when the crash cuts a write
//!   in half (a halting fault), and an unacknowledged operation is all there or not at all.
//! * `SyncMode::Every(d)` (with an interval so long that the background thread never fires, and
//!   syncs driven by `Store::sync`): a crash loses at most the operations after the last
//!   completed sync, what is lost is a suffix of the operations, and batches are all or nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ferrocask::testing::{CrashMode, Fault, FaultKind, SimFs};
use ferrocask::{Options, Store};

mod common;

use common::{apply, Op, Rng};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A deterministic workload: every value is unique (it names the operation that wrote it), so
/// every prefix of the history gives a distinguishable state.
fn workload(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut next = move || rng.next();
    let key = |r: u64| format!("key:{}", r % 40).into_bytes();
    (0..n)
        .map(|i| {
            let value = |j: usize| format!("op{i}.{j}:{}", "v".repeat(i % 300)).into_bytes();
            match next() % 10 {
                0..=5 => Op::Put(key(next()), value(0)),
                6 | 7 => Op::Delete(key(next())),
                _ => Op::Batch(
                    (0..1 + (next() % 4) as usize)
                        .map(|j| (key(next()), (next() % 4 != 0).then(|| value(j))))
                        .collect(),
                ),
            }
        })
        .collect()
}

fn state_after(ops: &[Op]) -> State {
    let mut state = State::new();
    for op in ops {
        apply(&mut state, op);
    }
    state
}

fn contents(store: &Store) -> State {
    store.iter().map(|(k, v)| (k, v.into_vec())).collect()
}

fn dir() -> &'static Path {
    Path::new("/data/store")
}

/// A simulated disk on which the store's parent directory already exists, durably.
fn disk() -> Arc<SimFs> {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/data"));
    fs
}

/// Small segments, so that the workload also crosses segment roll-overs.
fn always() -> Options {
    common::options()
}

/// Write-back with an interval that never elapses during a test, and no preallocation (whose
/// growth syncs would make more durable than the explicit syncs).
fn write_back() -> Options {
    Options { sync: common::write_back(), segment_bytes: 4 << 20, preallocate_bytes: 0, ..common::options() }
}

#[test]
fn always_loses_nothing_acknowledged_in_any_crash_mode() {
    for mode in CrashMode::ALL {
        for seed in 0..4 {
            let fs = disk();
            let ops = workload(seed, 300);
            let store = Store::open_on(fs.clone(), dir(), always()).unwrap();
            for op in &ops {
                op.run(&store).unwrap();
            }
            assert!(store.stats().segments > 1, "the workload rolls segments");
            fs.crash(mode, seed);
            drop(store);
            let store = Store::open_on(fs.clone(), dir(), always()).unwrap();
            assert_eq!(contents(&store), state_after(&ops), "{mode:?} seed {seed}");
        }
    }
}

/// Power fails in the middle of the workload (the file system halts at an arbitrary operation,
/// so a write or sync may be cut short). Every acknowledged operation survives; the one that
/// failed is all there or not at all.
#[test]
fn always_keeps_acknowledged_writes_when_power_fails_mid_write() {
    for mode in CrashMode::ALL {
        for (seed, halt_at) in [(1u64, 37u64), (2, 120), (3, 251), (4, 404), (5, 555)] {
            let fs = disk();
            let ops = workload(seed, 300);
            let store = Store::open_on(fs.clone(), dir(), always()).unwrap();
            fs.inject(Fault::nth(halt_at, FaultKind::Eio).halt());
            let acked = ops.iter().take_while(|op| op.run(&store).is_ok()).count();
            assert!(acked < ops.len(), "the fault fired (halt at {halt_at})");
            fs.crash(mode, seed);
            drop(store);
            let store = Store::open_on(fs.clone(), dir(), always()).unwrap();
            let got = contents(&store);
            let case = format!("{mode:?} seed {seed} halt at {halt_at}, {acked} acknowledged");
            assert!(
                got == state_after(&ops[..acked]) || got == state_after(&ops[..=acked]),
                "{case}: state is neither the acknowledged history nor it plus the failed operation"
            );
        }
    }
}

#[test]
fn write_back_loses_at_most_a_suffix_after_the_last_sync() {
    for mode in CrashMode::ALL {
        for seed in 0..6 {
            let fs = disk();
            let ops = workload(100 + seed, 200);
            let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
            let mut synced = 0;
            for (i, op) in ops.iter().enumerate() {
                op.run(&store).unwrap();
                // Sync at irregular points; the last one well before the end.
                if (i + 1) % (17 + seed as usize) == 0 && i < 150 {
                    store.sync().unwrap();
                    synced = i + 1;
                }
            }
            assert_eq!(contents(&store), state_after(&ops), "reads see every acknowledged write");
            fs.crash(mode, seed);
            drop(store);
            let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
            let got = contents(&store);
            let case = format!("{mode:?} seed {seed}, synced through op {synced}");
            // The recovered state must be the state after some prefix of the operations that
            // includes everything synced: that rules out losing synced data, losing an earlier
            // write while keeping a later one, and half a batch.
            let kept = (synced..=ops.len()).find(|&n| state_after(&ops[..n]) == got);
            let kept = kept.unwrap_or_else(|| panic!("{case}: recovered state is not a prefix of the history"));
            match mode {
                // Nothing unsynced reaches the disk: exactly the synced prefix survives.
                CrashMode::Nothing => assert_eq!(kept, synced, "{case}"),
                // Everything written reached the OS, which is what a process crash leaves.
                CrashMode::Everything => assert_eq!(kept, ops.len(), "{case}"),
                _ => {}
            }
        }
    }
}

/// `Store::sync` with nothing written since the last sync does nothing and succeeds; after a
/// sync, a crash that keeps nothing unsynced still has every write.
#[test]
fn sync_makes_every_earlier_write_durable() {
    let fs = disk();
    let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
    store.sync().unwrap();
    let ops = workload(7, 120);
    for op in &ops {
        op.run(&store).unwrap();
    }
    let syncs_before = store.stats().syncs;
    store.sync().unwrap();
    assert_eq!(store.stats().syncs, syncs_before + 1);
    store.sync().unwrap();
    assert_eq!(store.stats().syncs, syncs_before + 1, "a sync with nothing new is skipped");
    fs.crash(CrashMode::Nothing, 0);
    drop(store);
    let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
    assert_eq!(contents(&store), state_after(&ops));
}

/// Dropping a write-back store syncs it: a crash afterwards loses nothing.
#[test]
fn dropping_a_write_back_store_syncs_it() {
    let fs = disk();
    let ops = workload(9, 80);
    {
        let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
        for op in &ops {
            op.run(&store).unwrap();
        }
    }
    fs.crash(CrashMode::Nothing, 0);
    let store = Store::open_on(Arc::clone(&fs) as _, dir(), write_back()).unwrap();
    assert_eq!(contents(&store), state_after(&ops));
}

/// Write-back mode counts a record as written once a sync has covered it (issue: the counters
/// used to count records that a power loss could still take away).
#[test]
fn write_back_stats_count_records_once_synced() {
    let fs = disk();
    let store = Store::open_on(fs.clone(), dir(), write_back()).unwrap();
    for i in 0..3u32 {
        store.put(i.to_be_bytes(), b"v").unwrap();
    }
    assert_eq!(store.stats().records_written, 0, "nothing is synced yet");
    store.sync().unwrap();
    let stats = store.stats();
    assert_eq!((stats.records_written, stats.syncs), (3, 1));
    assert_eq!(stats.records_per_sync, 3.0);
}
