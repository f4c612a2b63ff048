//! `Store::set_sync_mode` on the simulated file system, crashing in every `CrashMode`: the writes
//! made before and after each switch survive what each mode promises.
//!
//! * Switching to `SyncMode::Always` makes durable what write-back left unsynced, and every
//!   write after it is durable before it returns.
//! * Switching to `SyncMode::Every` (an interval that never elapses here) keeps what was durable
//!   and may lose only a suffix of the writes after the switch.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::testing::{CrashMode, SimFs};
use ferrocask::{Options, Store, SyncMode};

mod common;

use common::{apply, Map, Op};

fn dir() -> &'static Path {
    Path::new("/data/store")
}

fn disk() -> Arc<SimFs> {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/data"));
    fs
}

/// Opens in `Always`. Large segments and no preallocation: no roll-over or growth sync makes
/// more durable than the modes promise, so the write-back phase is really unsynced.
fn options() -> Options {
    Options { segment_bytes: 4 << 20, preallocate_bytes: 0, ..common::options() }
}

/// `n` puts numbered from `from`, each a unique value.
fn puts(from: usize, n: usize) -> Vec<Op> {
    (from..from + n).map(|i| Op::Put(format!("key:{}", i % 37).into_bytes(), format!("op{i}").into_bytes())).collect()
}

fn state_after(ops: &[Op]) -> Map {
    let mut state = Map::new();
    for op in ops {
        apply(&mut state, op);
    }
    state
}

fn contents(store: &Store) -> Map {
    store.iter().map(|(k, v)| (k, v.into_vec())).collect()
}

#[test]
fn a_switch_to_always_makes_the_write_back_backlog_and_every_later_write_durable() {
    for mode in CrashMode::ALL {
        let fs = disk();
        let store = Store::open_on(fs.clone(), dir(), options()).unwrap();
        let mut ops = puts(0, 40);
        for op in &ops {
            op.run(&store).unwrap();
        }
        store.set_sync_mode(common::write_back()).unwrap();
        assert_eq!(store.sync_mode(), common::write_back());
        let syncs = store.stats().syncs;
        for op in puts(40, 40) {
            op.run(&store).unwrap();
            ops.push(op);
        }
        assert_eq!(store.stats().syncs, syncs, "write-back writes do not sync");
        store.set_sync_mode(SyncMode::Always).unwrap();
        assert_eq!(store.stats().syncs, syncs + 1, "the switch syncs the backlog once");
        for op in puts(80, 40) {
            op.run(&store).unwrap();
            ops.push(op);
        }
        fs.crash(mode, 1);
        drop(store);
        let store = Store::open_on(fs.clone(), dir(), options()).unwrap();
        assert_eq!(contents(&store), state_after(&ops), "{mode:?}: every acknowledged write survives");
    }
}

#[test]
fn a_switch_to_write_back_keeps_what_was_durable_and_may_lose_only_a_suffix_after_it() {
    for mode in CrashMode::ALL {
        let fs = disk();
        let store = Store::open_on(fs.clone(), dir(), options()).unwrap();
        let mut ops = puts(0, 40);
        for op in &ops {
            op.run(&store).unwrap();
        }
        store.set_sync_mode(common::write_back()).unwrap();
        for op in puts(40, 60) {
            op.run(&store).unwrap();
            ops.push(op);
        }
        assert_eq!(contents(&store), state_after(&ops), "reads see every acknowledged write");
        fs.crash(mode, 2);
        drop(store);
        let store = Store::open_on(fs.clone(), dir(), options()).unwrap();
        let got = contents(&store);
        let kept = (40..=ops.len()).find(|&n| state_after(&ops[..n]) == got);
        let kept = kept.unwrap_or_else(|| panic!("{mode:?}: not a prefix of the history that holds the first 40"));
        match mode {
            CrashMode::Nothing => assert_eq!(kept, 40, "nothing unsynced reaches the disk"),
            CrashMode::Everything => assert_eq!(kept, ops.len()),
            _ => {}
        }
    }
}

#[test]
fn a_zero_interval_is_refused_and_the_mode_kept() {
    let fs = disk();
    let store = Store::open_on(fs, dir(), options()).unwrap();
    assert!(store.set_sync_mode(SyncMode::Every(Duration::ZERO)).is_err());
    assert_eq!(store.sync_mode(), SyncMode::Always);
}
