//! Keyspaces (`Store::keyspace`, `Store::ordered_keyspace`): isolation from each other and from
//! the default keyspace, durability of the registry and of drops, ranges against a model,
//! batches across keyspaces whole to a concurrent reader and across every crash point, TTL per
//! keyspace, compaction reclaiming a dropped keyspace, and the refusals (names, kinds, reserved
//! keys). Each test runs on the real and the simulated file system (`both_backends!`).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocask::format::{KEYSPACE_MARKER, KEYSPACE_NAME_BYTES_MAX};
use ferrocask::testing::{CrashMode, Fault, FaultKind, SimFs};
use ferrocask::{Batch, Error, KeyspaceKind, ManualClock, Options, Store, TypedStore, Update};
use proptest::prelude::*;

mod common;

const T0: u64 = 1_700_000_000_000;

fn pairs(it: impl Iterator<Item = (Vec<u8>, ferrocask::Value)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|(k, v)| (k, v.into_vec())).collect()
}

both_backends! {
    /// Keyspaces hold their own keys: the same key in two keyspaces and in the default one are
    /// three keys; each `len`, `iter` and `get` sees its own; the default keyspace's `len`,
    /// `iter` and `scan` see none of the keyspaces' keys.
    fn keyspaces_are_isolated(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        let (a, b) = (store.keyspace("a").unwrap(), store.ordered_keyspace("b").unwrap());
        store.put(b"k", b"default").unwrap();
        a.put(b"k", b"in a").unwrap();
        b.put(b"k", b"in b").unwrap();
        b.put(b"l", b"also in b").unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
        assert_eq!(a.get(b"k").unwrap().as_deref(), Some(&b"in a"[..]));
        assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"in b"[..]));
        assert_eq!((store.len(), a.len(), b.len()), (1, 1, 2));
        assert_eq!(store.keys().collect::<Vec<_>>(), [b"k".to_vec()]);
        assert_eq!(store.scan(0, usize::MAX).keys, [b"k".to_vec()]);
        assert_eq!(pairs(b.iter()), [(b"k".to_vec(), b"in b".to_vec()), (b"l".to_vec(), b"also in b".to_vec())]);
        a.delete(b"k").unwrap();
        assert!(a.is_empty() && a.get(b"k").unwrap().is_none());
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"default"[..]), "another keyspace's delete");
        assert_eq!(store.stats().live_keys, 1);
        store.check_ordered_index();
    }

    /// Names, kinds, keys and drops survive reopening; a name keeps its kind; a dropped name
    /// comes back empty under a new id, and the old handles are refused.
    fn keyspaces_survive_reopen_and_drops_are_durable(backend) {
        let dir = backend.path("db");
        {
            let store = backend.open_with(&dir, common::options()).unwrap();
            store.keyspace("h").unwrap().put(b"1", b"one").unwrap();
            store.ordered_keyspace("o").unwrap().put(b"2", b"two").unwrap();
            let gone = store.keyspace("gone").unwrap();
            gone.put(b"3", b"three").unwrap();
            store.drop_keyspace("gone").unwrap();
            assert!(matches!(gone.put(b"4", b"x"), Err(Error::NoSuchKeyspace { .. })));
            assert!(matches!(gone.get(b"3"), Err(Error::NoSuchKeyspace { .. })), "a dropped keyspace reads as gone at once");
        }
        let store = backend.open_with(&dir, common::options()).unwrap();
        let mut names = store.keyspaces();
        names.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(names, [("h".to_owned(), KeyspaceKind::Hash), ("o".to_owned(), KeyspaceKind::Ordered)]);
        assert_eq!(store.keyspace("h").unwrap().get(b"1").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.ordered_keyspace("o").unwrap().first().unwrap().map(|(k, _)| k), Some(b"2".to_vec()));
        assert!(matches!(store.ordered_keyspace("h"), Err(Error::KeyspaceKind { .. })));
        assert!(matches!(store.keyspace("o"), Err(Error::KeyspaceKind { .. })));
        assert!(store.keyspace("gone").unwrap().is_empty(), "a dropped keyspace's records stay dead");
        assert!(matches!(store.drop_keyspace("never"), Err(Error::NoSuchKeyspace { .. })));
        assert_eq!(store.len(), 0);
        store.check_ordered_index();
    }

    /// Hostile names and keys are typed errors, never a panic: an empty name, one over the
    /// limit, the default keyspace's keys that start with the keyspace marker (which would
    /// otherwise reach a keyspace's or the registry's records), empty and oversized keys.
    fn names_and_reserved_keys_are_refused(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        assert!(matches!(store.keyspace(""), Err(Error::InvalidKeyspaceName { len: 0 })));
        let huge = "n".repeat(KEYSPACE_NAME_BYTES_MAX + 1);
        assert!(matches!(store.keyspace(&huge), Err(Error::InvalidKeyspaceName { .. })));
        let longest = "n".repeat(KEYSPACE_NAME_BYTES_MAX);
        store.keyspace(&longest).unwrap().put(b"k", b"v").unwrap();
        let ks = store.keyspace("ks").unwrap();
        let mut registry = KEYSPACE_MARKER.to_vec();
        registry.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(store.put(&registry, b"forged"), Err(Error::ReservedKey { .. })));
        assert!(matches!(store.get(&registry), Err(Error::ReservedKey { .. })));
        let mut unknown = KEYSPACE_MARKER.to_vec();
        unknown.extend_from_slice(&[0, 0, 9, 9, b'k']);
        assert!(matches!(store.put(&unknown, b"x"), Err(Error::ReservedKey { .. })));
        let mut batch = Batch::new();
        batch.put(&unknown, b"x");
        assert!(matches!(store.write(batch), Err(Error::ReservedKey { .. })));
        assert!(store.transaction(move |tx| tx.put(&registry, b"x")).unwrap().is_err());
        assert!(matches!(ks.put(b"", b"x"), Err(Error::EmptyKey)));
        assert!(matches!(ks.put(vec![1u8; 4096], b"x"), Err(Error::KeyTooLarge { .. })));
        let mut empty = Batch::new();
        empty.put_in(&ks, b"", b"x");
        assert!(matches!(store.write(empty), Err(Error::EmptyKey)));
        assert!(matches!(store.keyspace("ks").unwrap().range::<&[u8], _>(..), Err(Error::KeyspaceKind { .. })));
        assert!(matches!(
            backend.open_with(&backend.path("other"), Options::default().ordered_prefix(b"\xff".to_vec())),
            Err(Error::InvalidOrderedPrefix { .. })
        ));
        assert_eq!(store.len(), 0);
    }

    /// A key's TTL is per keyspace: an expiring key leaves its keyspace's `get`, `len` and range
    /// when the clock passes it, and the other keyspaces and the default one keep theirs.
    fn ttl_is_per_keyspace(backend) {
        let clock = Arc::new(ManualClock::new(T0));
        let options = Options { clock: clock.clone(), ..common::options() };
        let store = backend.open_with(&backend.path("db"), options).unwrap();
        let (a, b) = (store.ordered_keyspace("a").unwrap(), store.keyspace("b").unwrap());
        a.put_with_ttl(b"x", b"1", Duration::from_secs(10)).unwrap();
        a.put(b"y", b"2").unwrap();
        b.put(b"x", b"3").unwrap();
        store.put(b"x", b"4").unwrap();
        assert_eq!((a.len(), b.len(), store.len()), (2, 1, 1));
        clock.advance_ms(10_000);
        assert!(a.get(b"x").unwrap().is_none());
        assert_eq!(pairs(a.range::<&[u8], _>(..).unwrap()), [(b"y".to_vec(), b"2".to_vec())]);
        assert_eq!((a.len(), b.len(), store.len()), (1, 1, 1));
        assert_eq!(b.get(b"x").unwrap().as_deref(), Some(&b"3"[..]));
    }

    /// Dropping a keyspace makes its records dead bytes (here at once: without a maintenance
    /// thread the dropping call lets go of the index entries), a reopen before any compaction
    /// keeps them dead, and compaction reclaims them.
    fn a_dropped_keyspace_is_reclaimed_by_compaction(backend) {
        let dir = backend.path("db");
        let value = vec![7u8; 200];
        {
            let options = Options { background_thread: false, ..common::options() };
            let store = backend.open_with(&dir, options).unwrap();
            let big = store.ordered_keyspace("big").unwrap();
            for i in 0..300u32 {
                big.put(i.to_be_bytes(), &value).unwrap();
            }
            store.put(b"keep", b"me").unwrap();
            let live_before = store.stats().live_bytes;
            store.drop_keyspace("big").unwrap();
            let live_after = store.stats().live_bytes;
            assert!(live_before - live_after >= 300 * 200, "live {live_before} -> {live_after}");
        }
        // Without recycling, so the disk figure is the segments' alone (a retired file kept in
        // the pool would count in `disk_bytes`).
        let options = Options { recycle_segments: false, ..common::options() };
        let store = backend.open_with(&dir, options).unwrap();
        assert!(store.keyspaces().is_empty());
        let disk_before = store.stats().disk_bytes;
        assert!(store.stats().live_bytes < 10_000, "the dropped records stay dead after reopen");
        store.compact().unwrap();
        let disk_after = store.stats().disk_bytes;
        assert!(disk_after + 300 * 200 <= disk_before, "disk {disk_before} -> {disk_after}");
        assert_eq!(store.get(b"keep").unwrap().as_deref(), Some(&b"me"[..]));
        assert!(store.ordered_keyspace("big").unwrap().is_empty());
        store.check_ordered_index();
    }

    /// With a maintenance thread, a drop returns before the keyspace's entries leave the index:
    /// its handles see nothing from the moment it returns, and the thread makes the records
    /// dead bytes soon after (waited for with a bounded timeout, not a sleep).
    fn a_drop_is_finished_by_the_maintenance_thread(backend) {
        let options = Options { background_thread: true, ..common::options() };
        let store = backend.open_with(&backend.path("db"), options).unwrap();
        let big = store.keyspace("big").unwrap();
        for i in 0..200u32 {
            big.put(i.to_be_bytes(), [1u8; 200]).unwrap();
        }
        let live_before = store.stats().live_bytes;
        store.drop_keyspace("big").unwrap();
        assert!(matches!(big.get(0u32.to_be_bytes()), Err(Error::NoSuchKeyspace { .. })));
        assert_eq!((big.len(), big.iter().count()), (0, 0));
        // Each record: a 16-byte header, the 12-byte stored key, the 200-byte value.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while store.stats().live_bytes + 200 * (16 + 12 + 200) > live_before {
            assert!(std::time::Instant::now() < deadline, "the maintenance thread did not forget the keyspace");
            std::thread::yield_now();
        }
        store.check_ordered_index();
    }

    /// Clearing a keyspace removes its keys and no other keyspace's.
    fn clear_empties_one_keyspace(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        let (a, b) = (store.keyspace("a").unwrap(), store.keyspace("b").unwrap());
        for i in 0..500u32 {
            a.put(i.to_be_bytes(), b"v").unwrap();
        }
        b.put(b"k", b"v").unwrap();
        assert_eq!(a.clear().unwrap(), 500);
        assert!(a.is_empty() && a.iter().next().is_none());
        assert_eq!(b.len(), 1);
        store.check_ordered_index();
    }

    /// Typed views of two keyspaces hold different types in one store without meeting each
    /// other's values; the same types over the default keyspace do meet them (the reason for
    /// keyspaces, shown to fail without them).
    fn typed_views_per_keyspace(backend) {
        let store = Arc::new(backend.open_with(&backend.path("db"), common::options()).unwrap());
        let ages: TypedStore<String, u32> = TypedStore::in_keyspace(store.clone(), "ages").unwrap();
        let tags: TypedStore<u64, Vec<String>> = TypedStore::in_keyspace(store.clone(), "tags").unwrap();
        ages.put(&"ada".to_string(), &36).unwrap();
        tags.put(&7, &vec!["math".to_string(), "engines".to_string()]).unwrap();
        assert_eq!(ages.iter().collect::<Result<Vec<_>, _>>().unwrap(), [("ada".to_string(), 36)]);
        assert_eq!(tags.get(&7).unwrap().map(|t| t.len()), Some(2));
        assert_eq!((ages.len(), tags.len(), store.len()), (1, 1, 0));
        tags.delete(&7).unwrap();
        assert!(tags.is_empty() && !tags.contains_key(&7).unwrap());
        let shared: TypedStore<String, u32> = TypedStore::from_store(store.clone());
        let other: TypedStore<u64, Vec<String>> = TypedStore::from_store(store.clone());
        shared.put(&"ada".to_string(), &36).unwrap();
        other.put(&7, &vec!["math".to_string()]).unwrap();
        assert!(shared.iter().any(|r| r.is_err()), "two types in one keyspace meet each other's values");
    }

    /// Read-modify-write and async writes through a handle act on the keyspace's keys only.
    fn rmw_and_async_writes_on_a_handle(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        let ks = store.keyspace("counters").unwrap();
        store.put(b"n", [9u8]).unwrap();
        let incr = |v: Option<&[u8]>| Update::Set(vec![v.map_or(0, |b| b[0]) + 1]);
        ks.update(b"n", incr).unwrap();
        ks.update(b"n", incr).unwrap();
        assert_eq!(ks.get(b"n").unwrap().as_deref(), Some(&[2u8][..]));
        assert!(ks.compare_and_swap(b"n", Some(&[2u8][..]), Some(&[5u8][..])).unwrap().is_applied());
        assert!(!ks.compare_and_swap(b"n", Some(&[2u8][..]), None).unwrap().is_applied());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            ks.put_async(b"a", b"1").await.unwrap();
            ks.delete_async(b"n").await.unwrap();
        });
        assert_eq!(pairs(ks.iter()), [(b"a".to_vec(), b"1".to_vec())]);
        assert_eq!(store.get(b"n").unwrap().as_deref(), Some(&[9u8][..]), "the default keyspace's n untouched");
    }

    /// A transaction reads and writes several keyspaces and commits them together.
    fn transactions_span_keyspaces(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        let (from, to) = (store.keyspace("from").unwrap(), store.ordered_keyspace("to").unwrap());
        from.put(b"coin", b"1").unwrap();
        let (f, t) = (from.id(), to.id());
        store
            .transaction(move |tx| {
                let coin = tx.get_in(f, b"coin").expect("the coin is there");
                tx.delete_in(f, b"coin")?;
                tx.put_in(t, b"coin", coin)
            })
            .unwrap()
            .unwrap();
        assert!(from.is_empty());
        assert_eq!(to.get(b"coin").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.transaction(|tx| tx.len()).unwrap(), 0, "the default keyspace counts none of them");
    }

    /// A reader sweeping an ordered keyspace never sees half a batch: each batch moves the one
    /// token of keyspace `t` to the next key (a delete and a put) and records the move in the
    /// hash keyspace `moves`, so every range read shows exactly one key.
    fn a_range_reader_never_sees_half_a_batch(backend) {
        let store = backend.open_with(&backend.path("db"), common::options()).unwrap();
        let (tokens, moves) = (store.ordered_keyspace("t").unwrap(), store.keyspace("moves").unwrap());
        tokens.put(0u32.to_be_bytes(), b"token").unwrap();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..200u32 {
                    let mut batch = Batch::new();
                    batch.delete_in(&tokens, i.to_be_bytes()).put_in(&tokens, (i + 1).to_be_bytes(), b"token");
                    batch.put_in(&moves, i.to_be_bytes(), b"moved");
                    store.write(batch).unwrap();
                }
                done.store(true, Ordering::SeqCst);
            });
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) || reads == 0 {
                let seen = tokens.range::<&[u8], _>(..).unwrap().count();
                assert_eq!(seen, 1, "a range read saw {seen} tokens: half a batch");
                reads += 1;
            }
        });
        assert_eq!(tokens.first().unwrap().map(|(k, _)| k), Some(200u32.to_be_bytes().to_vec()));
        assert_eq!(moves.len(), 200);
    }
}

/// The checker of the crash test below, shown to fail on a state no crash may leave.
#[test]
fn the_crash_checker_rejects_half_a_batch() {
    let fs = SimFs::new();
    let store = Store::open_on(fs.clone(), Path::new("/db"), common::tiny_segments()).unwrap();
    let (a, b) = (store.keyspace("a").unwrap(), store.ordered_keyspace("b").unwrap());
    a.put(1u32.to_be_bytes(), b"1").unwrap();
    assert!(check_batches(&store, 0).is_err(), "keyspace a has step 1, b does not");
    b.put(1u32.to_be_bytes(), b"1").unwrap();
    store.put(b"step", 1u32.to_be_bytes()).unwrap();
    assert!(check_batches(&store, 1).is_ok());
    assert!(check_batches(&store, 2).is_err(), "fewer steps than acknowledged");
}

const CRASH_STEPS: u32 = 12;
const DIR: &str = "/db";

/// Creates keyspaces `a` (hash) and `b` (ordered), then writes step i to both and to the default
/// keyspace in one batch, for i in 1..; drops a keyspace `tmp` half way. Returns the steps
/// acknowledged.
fn crash_run(fs: &Arc<SimFs>) -> u32 {
    let Ok(store) = Store::open_on(fs.clone(), Path::new(DIR), common::tiny_segments()) else { return 0 };
    let mut acked = 0;
    let mut run = || -> ferrocask::Result<()> {
        let (a, b) = (store.keyspace("a")?, store.ordered_keyspace("b")?);
        store.keyspace("tmp")?.put(b"x", vec![1u8; 300])?;
        for i in 1..=CRASH_STEPS {
            let mut batch = Batch::new();
            let value = vec![i as u8; 200];
            batch.put_in(&a, i.to_be_bytes(), &value).put_in(&b, i.to_be_bytes(), &value);
            batch.put(b"step", i.to_be_bytes());
            store.write(batch)?;
            acked = i;
            if i == CRASH_STEPS / 2 {
                store.drop_keyspace("tmp")?;
            }
        }
        Ok(())
    };
    let _ = run();
    acked
}

/// After any crash: steps 1..=m in both keyspaces and the default keyspace's step m, with
/// m >= the acknowledged steps (a batch whose acknowledgement was lost may be there), and
/// `tmp` either absent or, before its drop, holding its one key.
fn check_batches(store: &Store, acked: u32) -> Result<(), String> {
    let step = store.get(b"step").unwrap().map_or(0, |v| u32::from_be_bytes(v.as_ref().try_into().unwrap()));
    if step < acked || step > CRASH_STEPS {
        return Err(format!("step {step} with {acked} acknowledged"));
    }
    let names = store.keyspaces();
    if step > 0 && names.len() < 2 {
        return Err(format!("step {step} without both keyspaces: {names:?}"));
    }
    if names.is_empty() {
        return Ok(());
    }
    let (a, b) =
        (store.keyspace("a").map_err(|e| e.to_string())?, store.ordered_keyspace("b").map_err(|e| e.to_string())?);
    let expected: Vec<Vec<u8>> = (1..=step).map(|i| i.to_be_bytes().to_vec()).collect();
    let mut in_a: Vec<Vec<u8>> = a.keys().collect();
    in_a.sort();
    let in_b: Vec<Vec<u8>> = b.range::<&[u8], _>(..).map_err(|e| e.to_string())?.map(|(k, _)| k).collect();
    if in_a != expected || in_b != expected || a.len() != step as usize || b.len() != step as usize {
        return Err(format!("step {step}: a holds {} keys, b {} (half a batch)", in_a.len(), in_b.len()));
    }
    if step > CRASH_STEPS / 2 && names.iter().any(|(n, _)| n == "tmp") {
        return Err("tmp survived its drop".into());
    }
    store.check_ordered_index();
    Ok(())
}

/// Every crash point of a workload of batches across keyspaces, creations and a drop, in every
/// crash mode: the batches are whole, the acknowledged ones there, the drop durable.
#[test]
fn batches_across_keyspaces_are_whole_at_every_crash_point() {
    let ops = {
        let fs = SimFs::new();
        crash_run(&fs);
        fs.op_count()
    };
    let mut states = 0;
    for mode in CrashMode::ALL {
        for seed in [1u64, 2] {
            for at in 0..=ops {
                let context = format!("crash at op {at} in {mode:?} seed {seed}");
                let fs = SimFs::new();
                fs.reseed_faults(seed);
                fs.inject(Fault::nth(at, FaultKind::Eio).halt());
                let acked = crash_run(&fs);
                fs.clear_faults();
                fs.crash(mode, seed);
                let store = Store::open_on(fs.clone(), Path::new(DIR), common::tiny_segments())
                    .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
                if let Err(why) = check_batches(&store, acked) {
                    panic!("{context}: {why}");
                }
                states += 1;
            }
        }
    }
    assert!(states >= 100, "only {states} crash states");
}

/// One operation of the model test.
#[derive(Clone, Debug)]
enum KsOp {
    Put(usize, u8, u8),
    Delete(usize, u8),
    /// A batch over both keyspaces: a put in each.
    Both(u8, u8),
    Drop(usize),
    Reopen,
    Range(usize, Option<u8>, Option<u8>, bool),
}

const SPACES: [&str; 2] = ["one", "two"];

fn ks_op() -> impl Strategy<Value = KsOp> {
    prop_oneof![
        4 => (0..2usize, 0..16u8, any::<u8>()).prop_map(|(s, k, v)| KsOp::Put(s, k, v)),
        2 => (0..2usize, 0..16u8).prop_map(|(s, k)| KsOp::Delete(s, k)),
        1 => (0..16u8, any::<u8>()).prop_map(|(k, v)| KsOp::Both(k, v)),
        1 => (0..2usize).prop_map(KsOp::Drop),
        1 => Just(KsOp::Reopen),
        2 => (0..2usize, proptest::option::of(0..16u8), proptest::option::of(0..16u8), any::<bool>())
            .prop_map(|(s, a, b, r)| KsOp::Range(s, a, b, r)),
    ]
}

/// Runs `ops` against the store and a `BTreeMap` per keyspace; the first disagreement.
fn run_model(ops: &[KsOp], sabotage: bool) -> Result<(), String> {
    let fs = SimFs::new();
    // No maintenance thread: a drop's entries leave the index in the dropping call, so
    // `check_ordered_index` (which wants no change in flight) never races a removal.
    let options = Options { background_thread: false, ..common::tiny_segments() };
    let open = || Store::open_on(fs.clone(), Path::new(DIR), options.clone()).unwrap();
    let mut store = open();
    let mut model: [BTreeMap<Vec<u8>, Vec<u8>>; 2] = Default::default();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            KsOp::Put(s, k, v) => {
                store.ordered_keyspace(SPACES[s]).unwrap().put([k], [v]).unwrap();
                model[s].insert(vec![k], vec![v]);
            }
            KsOp::Delete(s, k) => {
                store.ordered_keyspace(SPACES[s]).unwrap().delete([k]).unwrap();
                model[s].remove(&vec![k]);
            }
            KsOp::Both(k, v) => {
                let (one, two) = (store.ordered_keyspace("one").unwrap(), store.ordered_keyspace("two").unwrap());
                let mut batch = Batch::new();
                batch.put_in(&one, [k], [v]).put_in(&two, [k], [v.wrapping_add(1)]);
                store.write(batch).unwrap();
                model[0].insert(vec![k], vec![v]);
                // The sabotaged model forgets the second half of the batch.
                if !sabotage {
                    model[1].insert(vec![k], vec![v.wrapping_add(1)]);
                }
            }
            KsOp::Drop(s) => {
                let _ = store.drop_keyspace(SPACES[s]);
                model[s].clear();
            }
            KsOp::Reopen => {
                drop(store);
                store = open();
            }
            KsOp::Range(s, a, b, reverse) => {
                let ks = store.ordered_keyspace(SPACES[s]).unwrap();
                let bound = |x: Option<u8>, incl: bool| match x {
                    None => Bound::Unbounded,
                    Some(x) if incl => Bound::Included(vec![x]),
                    Some(x) => Bound::Excluded(vec![x]),
                };
                let (lo, hi) = (bound(a, true), bound(b, false));
                if let (Bound::Included(l), Bound::Excluded(h)) = (&lo, &hi) {
                    if l > h {
                        continue;
                    }
                }
                let got: Vec<(Vec<u8>, Vec<u8>)> = if reverse {
                    pairs(ks.range((lo.clone(), hi.clone())).unwrap().rev())
                } else {
                    pairs(ks.range((lo.clone(), hi.clone())).unwrap())
                };
                let mut want: Vec<(Vec<u8>, Vec<u8>)> =
                    model[s].range((lo, hi)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if reverse {
                    want.reverse();
                }
                if got != want {
                    return Err(format!("op {n} {op:?}: store {got:?}, model {want:?}"));
                }
            }
        }
        for (s, name) in SPACES.iter().enumerate() {
            let ks = store.ordered_keyspace(name).unwrap();
            let all: Vec<(Vec<u8>, Vec<u8>)> = pairs(ks.iter());
            let want: Vec<(Vec<u8>, Vec<u8>)> = model[s].iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            if all != want || ks.len() != want.len() {
                return Err(format!("after op {n} {op:?}: keyspace {name} holds {all:?}, model {want:?}"));
            }
        }
    }
    store.check_ordered_index();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Keyspaces against a `BTreeMap` each: puts, deletes, batches over both, drops, reopens
    /// and ranges in both directions.
    #[test]
    fn keyspaces_match_a_model(ops in proptest::collection::vec(ks_op(), 1..60)) {
        run_model(&ops, false).map_err(TestCaseError::fail)?;
    }
}

/// The model decides: a model that forgets half a batch disagrees with the store.
#[test]
fn the_model_rejects_a_wrong_answer() {
    let ops = [KsOp::Both(3, 4), KsOp::Range(1, None, None, false)];
    assert!(run_model(&ops, true).is_err());
    assert!(run_model(&ops, false).is_ok());
}

// The fuzz checks' segment layout helpers (the module allows its own dead code).
#[path = "../fuzz/checks/mod.rs"]
mod checks;

use checks::common as layout;

/// A store written before keyspaces may hold keys that start with the keyspace marker. Without a
/// registry they stay the default keyspace's (listed and counted; `get` and writes refuse the
/// marker), and creating the first keyspace fails with a typed error naming one, instead of
/// silently moving them out of the default keyspace; with an ordered prefix declared (the set
/// exists) and without (a walk of the index).
#[test]
fn a_store_with_marker_keys_from_before_keyspaces_refuses_to_create_one() {
    let mut foreign = KEYSPACE_MARKER.to_vec();
    foreign.extend_from_slice(&[0, 0, 0, 1, b'x']);
    for ordered in [false, true] {
        let fs = SimFs::new();
        let frames = [(1, vec![layout::Rec::put(1, b"plain", b"1"), layout::Rec::put(2, &foreign, b"legacy")])];
        fs.write_file_durable(&layout::path("MANIFEST"), &layout::manifest(&[1], 1));
        fs.write_file_durable(&layout::path(&layout::segment_name(1)), &layout::log_segment(1, 1, &frames));
        let options = if ordered { layout::options().ordered_prefix("p:") } else { layout::options() };
        let store = Store::open_on(fs.clone(), &layout::dir(), options).unwrap();
        let mut keys: Vec<Vec<u8>> = store.keys().collect();
        keys.sort();
        assert_eq!(keys, [b"plain".to_vec(), foreign.clone()], "ordered prefix: {ordered}");
        assert_eq!(store.len(), 2);
        match store.keyspace("a") {
            Err(Error::ReservedKey { key }) => assert_eq!(key, foreign),
            other => panic!("creating a keyspace over a foreign marker key: {other:?}"),
        }
        assert!(store.keyspaces().is_empty());
        assert_eq!(store.len(), 2, "nothing left the default keyspace");
        store.check_ordered_index();
    }
}
