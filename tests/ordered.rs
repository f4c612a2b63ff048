//! Ordered prefixes (`Options::ordered_prefix`): range reads and counts over the keys under
//! declared prefixes, on the store and in a transaction, against a model; the ordered set kept in
//! step with the hash index through every path that adds or removes an entry (writes, batches,
//! transactions, recovery with and without hints, compaction, expiry), checked after each by
//! `Store::check_ordered_index` (a walk of the whole index); a reader that must never see half of
//! a group; the refusals.

use std::collections::BTreeSet;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use ferrocask::testing::SimFs;
use ferrocask::{Batch, Error, ManualClock, Options, RangeBuf, Store};
use proptest::prelude::*;

mod common;

use common::parking::{ParkOp, ParkingVfs, Release, Rule, PARK_TIMEOUT};

const T0: u64 = 1_700_000_000_000;

/// Two declared prefixes, as the server's collections would use, and small segments so that
/// tests roll over, write hint files and compact.
fn options(clock: &Arc<ManualClock>) -> Options {
    Options { clock: clock.clone(), ..common::options() }.ordered_prefix(b"\xff\xfdh".to_vec()).ordered_prefix("z:")
}

/// What `range_keys` must return, computed from a model of the live keys.
fn expected(
    live: &BTreeSet<Vec<u8>>,
    prefix: &[u8],
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    limit: usize,
) -> Vec<Vec<u8>> {
    // The range's element type named: in a workspace build tokio links `bytes`, whose
    // `PartialOrd<[u8]>` impls make it ambiguous otherwise.
    let range = (start, end);
    let mut keys: Vec<Vec<u8>> = live
        .iter()
        .filter(|k| k.starts_with(prefix) && RangeBounds::<[u8]>::contains(&range, k.as_slice()))
        .cloned()
        .collect();
    if reverse {
        keys.reverse();
    }
    keys.truncate(limit);
    keys
}

/// Every combination of the bound kinds over `points`, both directions and a few limits:
/// `range_keys` against the model, and `range_entries` against `range_keys`.
fn assert_ranges_agree(store: &Store, live: &BTreeSet<Vec<u8>>, prefixes: &[&[u8]], points: &[&[u8]]) {
    let mut bounds: Vec<Bound<&[u8]>> = vec![Unbounded];
    for p in points {
        bounds.extend([Included(*p), Excluded(*p)]);
    }
    for prefix in prefixes {
        for start in &bounds {
            for end in &bounds {
                for reverse in [false, true] {
                    for limit in [0, 1, 3, usize::MAX] {
                        let got = store.range_keys(prefix, *start, *end, reverse, limit).unwrap();
                        let want = expected(live, prefix, *start, *end, reverse, limit);
                        assert_eq!(got, want, "prefix {prefix:?} {start:?}..{end:?} reverse {reverse} limit {limit}");
                    }
                }
                let entries = store.range_entries(prefix, *start, *end, false, usize::MAX).unwrap();
                let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| k.clone()).collect();
                assert_eq!(keys, expected(live, prefix, *start, *end, false, usize::MAX));
                for reverse in [false, true] {
                    for limit in [0, 1, 3, usize::MAX] {
                        let entries = store.range_entries(prefix, *start, *end, reverse, limit).unwrap();
                        // A buffer holding an earlier range's entries: it is cleared first.
                        let mut buf = RangeBuf::new();
                        store.range_into(b"z:", Unbounded, Unbounded, false, usize::MAX, &mut buf).unwrap();
                        store.range_into(prefix, *start, *end, reverse, limit, &mut buf).unwrap();
                        let copied: Vec<(Vec<u8>, Vec<u8>)> =
                            buf.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                        let listed: Vec<(Vec<u8>, Vec<u8>)> =
                            entries.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect();
                        assert_eq!(copied, listed, "range_into gives range_entries' entries");
                        assert_eq!(buf.len(), listed.len());
                        assert_eq!(buf.last().map(|(k, _)| k.to_vec()), listed.last().map(|(k, _)| k.clone()));
                    }
                }
                for (key, value) in entries {
                    assert_eq!(Some(value), store.get(&key).unwrap(), "range_entries reads each key's value");
                }
            }
        }
    }
}

/// A member key under the hash prefix: `\xff\xfdh` + len(key) + key + member.
fn member(key: &[u8], member: &[u8]) -> Vec<u8> {
    let mut k = b"\xff\xfdh".to_vec();
    k.push(key.len() as u8);
    k.extend_from_slice(key);
    k.extend_from_slice(member);
    k
}

both_backends! {
    /// Every bound kind, both directions, limits, a prefix longer than the declared one (one
    /// collection's members), keys that are prefixes of others, and keys outside every prefix
    /// on both sides of it.
    fn ranges_follow_every_bound_kind_both_ways_with_limits(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        let mut live = BTreeSet::new();
        let keys: Vec<Vec<u8>> = vec![
            member(b"k", b"a"), member(b"k", b"a\x00"), member(b"k", b"ab"), member(b"k", b"b"),
            member(b"k", b""), member(b"kk", b"a"), member(b"j", b"\xff"),
            b"z:".to_vec(), b"z:a".to_vec(), b"z:ab".to_vec(), b"z:\xff".to_vec(),
            b"z".to_vec(), b"y:a".to_vec(), b"\xff\xfd".to_vec(), b"\xff\xfe".to_vec(), b"{".to_vec(),
        ];
        let mut batch = Batch::new();
        for k in &keys {
            batch.put(k, k);
            live.insert(k.clone());
        }
        store.write(batch).unwrap();
        store.check_ordered_index();
        let kk = member(b"k", b"");
        let points: Vec<&[u8]> = vec![
            kk.as_slice(), keys[0].as_slice(), keys[1].as_slice(), keys[3].as_slice(),
            &b"z:"[..], &b"z:a"[..], &b"z:b"[..], &b"\xff\xfdh"[..], &b"a"[..],
        ];
        let prefixes: Vec<&[u8]> = vec![&b"\xff\xfdh"[..], kk.as_slice(), keys[0].as_slice(), &b"z:"[..], &b"z:a"[..]];
        assert_ranges_agree(&store, &live, &prefixes, &points);
        assert_eq!(store.count_prefix(b"\xff\xfdh").unwrap(), 7);
        assert_eq!(store.count_prefix(b"z:").unwrap(), 4);
        // Deletions leave the set, overwrites change nothing.
        store.delete(&keys[1]).unwrap();
        store.delete(b"z:").unwrap();
        store.put(&keys[0], b"new value").unwrap();
        live.remove(&keys[1]);
        live.remove(&b"z:"[..]);
        store.check_ordered_index();
        assert_ranges_agree(&store, &live, &prefixes, &points);
        assert_eq!((store.count_prefix(b"\xff\xfdh").unwrap(), store.count_prefix(b"z:").unwrap()), (6, 3));
    }

    /// Prefixes that are not declared (or, for counts, not exactly declared) are refused with
    /// `NotOrdered`; so is everything on a store without declared prefixes, which also holds no
    /// ordered set (its index bytes are the hash tables' alone).
    fn ordered_reads_refuse_prefixes_that_are_not_declared(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put(b"z:1", b"v").unwrap();
        let not_ordered = |r: ferrocask::Result<_>| matches!(r, Err(Error::NotOrdered { .. }));
        assert!(not_ordered(store.range_keys(b"z", Unbounded, Unbounded, false, 10).map(drop)), "shorter than declared");
        assert!(not_ordered(store.range_keys(b"y:", Unbounded, Unbounded, false, 10).map(drop)));
        assert!(not_ordered(store.count_prefix(b"z:1").map(drop)), "a count needs exactly a declared prefix");
        assert_eq!(store.range_keys(b"z:1", Unbounded, Unbounded, false, 10).unwrap(), [b"z:1".to_vec()]);
        drop(store);
        let plain = b.open_with(b.root(), Options { clock: clock.clone(), ..common::options() }).unwrap();
        assert!(not_ordered(plain.range_keys(b"z:", Unbounded, Unbounded, false, 10).map(drop)));
        assert!(not_ordered(plain.count_prefix(b"z:").map(drop)));
        let plain_bytes = plain.stats().index_bytes;
        drop(plain);
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        assert!(
            store.stats().index_bytes > plain_bytes,
            "the ordered set's bytes are counted, and a store without prefixes has none"
        );
    }

    /// Empty prefixes and overlapping ones (equal, or one a prefix of the other, in either
    /// order) are refused at open, with the prefixes named.
    fn bad_prefixes_are_refused_at_open(b) {
        // Declared, then the prefix refused and the one it overlaps.
        type Case<'a> = (&'a [&'a [u8]], &'a [u8], Option<&'a [u8]>);
        let cases: [Case<'_>; 4] = [
            (&[b"a:", b""], b"", None),
            (&[b"a:", b"a:"], b"a:", Some(b"a:")),
            (&[b"a:", b"a:b"], b"a:b", Some(b"a:")),
            (&[b"x", b"a:b", b"a:"], b"a:", Some(b"a:b")),
        ];
        for (declared, refused, overlapping) in cases {
            let options = declared.iter().fold(common::options(), |o, p| o.ordered_prefix(p.to_vec()));
            match b.open_with(b.root(), options) {
                Err(Error::InvalidOrderedPrefix { prefix, overlaps }) => {
                    assert_eq!((prefix.as_slice(), overlaps.as_deref()), (refused, overlapping), "{declared:?}");
                }
                other => panic!("{declared:?}: expected InvalidOrderedPrefix, got {other:?}"),
            }
        }
        let options = common::options().ordered_prefix("a:").ordered_prefix("b:").ordered_prefix("a");
        assert!(matches!(b.open_with(b.root(), options), Err(Error::InvalidOrderedPrefix { .. })));
        b.open_with(b.root(), common::options().ordered_prefix("a:").ordered_prefix("b:")).unwrap();
    }

    /// A transaction sees its own puts and deletes in ranges and counts (deletions hide published
    /// keys, in both directions and under limits), and a rollback to a savepoint undoes them.
    fn a_transaction_sees_its_own_writes_and_rolls_them_back(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        for k in ["z:b", "z:d", "z:f"] {
            store.put(k, k).unwrap();
        }
        let seen = store
            .transaction(|txn| {
                let all = |txn: &ferrocask::Txn<'_>, reverse, limit| {
                    txn.range_keys(b"z:", Unbounded, Unbounded, reverse, limit).unwrap()
                };
                let before = all(txn, false, usize::MAX);
                txn.put("z:a", "1").unwrap();
                txn.delete("z:d").unwrap();
                txn.put("z:e", "2").unwrap();
                txn.put("z:f", "overwritten").unwrap();
                txn.put("other", "3").unwrap();
                let written = (all(txn, false, usize::MAX), all(txn, true, 2), txn.count_prefix(b"z:").unwrap());
                let bounded = txn.range_keys(b"z:", Excluded(b"z:a"), Included(b"z:e"), false, 10).unwrap();
                let entries = txn.range_entries(b"z:", Included(b"z:f"), Unbounded, false, 10).unwrap();
                let savepoint = txn.savepoint();
                txn.delete("z:a").unwrap();
                txn.delete("z:b").unwrap();
                txn.put("z:c", "4").unwrap();
                let before_rollback = (all(txn, false, usize::MAX), txn.count_prefix(b"z:").unwrap());
                txn.rollback_to(savepoint);
                let after_rollback = (all(txn, true, usize::MAX), txn.count_prefix(b"z:").unwrap());
                (before, written, bounded, entries, before_rollback, after_rollback)
            })
            .unwrap();
        let keys = |ks: &[&str]| ks.iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>();
        let (before, written, bounded, entries, before_rollback, after_rollback) = seen;
        assert_eq!(before, keys(&["z:b", "z:d", "z:f"]));
        assert_eq!(written.0, keys(&["z:a", "z:b", "z:e", "z:f"]));
        assert_eq!(written.1, keys(&["z:f", "z:e"]), "descending, limited, own writes merged in");
        assert_eq!(written.2, 4);
        assert_eq!(bounded, keys(&["z:b", "z:e"]));
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].0.as_slice(), &entries[0].1[..]), (&b"z:f"[..], &b"overwritten"[..]));
        assert_eq!(before_rollback, (keys(&["z:c", "z:e", "z:f"]), 3));
        assert_eq!(after_rollback, (keys(&["z:f", "z:e", "z:b", "z:a"]), 4));
        assert_eq!(store.range_keys(b"z:", Unbounded, Unbounded, false, 10).unwrap(), keys(&["z:a", "z:b", "z:e", "z:f"]));
        assert_eq!(store.count_prefix(b"z:").unwrap(), 4);
        store.check_ordered_index();
    }

    /// Reopening rebuilds the set from the live entries: from replayed segments and from hint
    /// files, after deletions in later segments and with expired keys swept; a store first used
    /// without declared prefixes gets them at its next open (no format change).
    fn reopening_rebuilds_the_set_with_and_without_hints(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let mut live = BTreeSet::new();
        {
            let plain = Options { clock: clock.clone(), write_hints: false, ..common::options() };
            let store = b.open_with(b.root(), plain).unwrap();
            for i in 0..300u32 {
                let key = format!("z:{:04}", i * 7 % 300).into_bytes();
                store.put(&key, [1u8; 100]).unwrap();
                live.insert(key);
            }
            for i in (0..300).step_by(3) {
                let key = format!("z:{i:04}").into_bytes();
                store.delete(&key).unwrap();
                live.remove(&key);
            }
            store.put_with_ttl(b"z:expiring", b"v", Duration::from_secs(1)).unwrap();
            store.put(member(b"k", b"m"), b"v").unwrap();
            live.insert(member(b"k", b"m"));
            assert!(store.stats().segments > 2, "the data spans several segments");
        }
        clock.advance_ms(1000);
        // Replayed; replayed again, writing hint files at close; then loaded from them.
        for (write_hints, from_hints) in [(false, false), (true, false), (true, true)] {
            let store = b.open_with(b.root(), Options { write_hints, ..options(&clock) }).unwrap();
            assert_eq!(store.recovery_report().segments_from_hints > 0, from_hints, "{:?}", store.recovery_report());
            store.check_ordered_index();
            assert_eq!(store.count_prefix(b"z:").unwrap(), 200, "the expired key was swept at open");
            let got = store.range_keys(b"\xff\xfdh", Unbounded, Unbounded, false, usize::MAX).unwrap();
            assert_eq!(got, [member(b"k", b"m")]);
            assert_ranges_agree(&store, &live, &[&b"z:"[..], &b"z:01"[..]], &[&b"z:0100"[..], &b"z:0150"[..]]);
        }
    }

    /// Compaction drops expired records and relocates live ones: the set loses exactly the
    /// expired keys (the count with them until then, as documented), and reads never return an
    /// expired key even before compaction.
    fn compaction_and_expiry_keep_the_set_in_step(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        for i in 0..200u32 {
            let key = format!("z:{i:04}");
            if i % 4 == 0 {
                store.put_with_ttl(&key, [2u8; 100], Duration::from_secs(10)).unwrap();
            } else {
                store.put(&key, [2u8; 100]).unwrap();
            }
        }
        for i in (1..200).step_by(4) {
            store.put(format!("z:{i:04}"), b"rewritten").unwrap();
        }
        clock.advance_ms(10_000);
        let live: BTreeSet<Vec<u8>> = (0..200).filter(|i| i % 4 != 0).map(|i| format!("z:{i:04}").into_bytes()).collect();
        assert_eq!(store.count_prefix(b"z:").unwrap(), 200, "expired entries are counted until dropped");
        assert_ranges_agree(&store, &live, &[b"z:"], &[b"z:0000", b"z:0100"]);
        let report = store.compact().unwrap();
        assert!(report.records_dropped >= 50, "{report:?}");
        store.check_ordered_index();
        assert_eq!(store.count_prefix(b"z:").unwrap(), 150);
        assert_ranges_agree(&store, &live, &[b"z:"], &[b"z:0000", b"z:0100"]);
    }
}

/// A transaction queued in the same group as a put sees it (through the group's overlay, not
/// the index): the leader is parked at its sync while the put and the transaction queue behind
/// it, so both go into the next group.
#[test]
fn a_transaction_sees_its_groups_earlier_writes() {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/data"));
    let parking = ParkingVfs::new(fs);
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options { write_hints: false, preallocate_bytes: 0, ..options(&clock) };
    let store = Arc::new(Store::open_on(parking.clone(), Path::new("/data/store"), options).unwrap());
    store.put("z:a", "1").unwrap();
    store.put("z:c", "1").unwrap();
    let frames = store.stats().frames;
    let gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("leader"));
    let leader = spawn_named("leader", {
        let store = Arc::clone(&store);
        move || store.put("z:0", "first group")
    });
    assert!(gate.wait_parked(), "the leader reached its sync");
    let put = store.put_async("z:b", "2");
    let deleted = store.delete_async("z:c");
    let txn = store.transaction_async(|txn| {
        let keys = txn.range_keys(b"z:", Excluded(b"z:0"), Unbounded, false, 10).unwrap();
        (keys, txn.count_prefix(b"z:").unwrap())
    });
    gate.release(Release::Proceed);
    outcome(&leader, "the leader").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(put).unwrap();
    runtime.block_on(deleted).unwrap();
    let (keys, count) = runtime.block_on(txn).unwrap();
    assert_eq!(store.stats().frames, frames + 2, "the first group, then one group for the queued three");
    assert_eq!(keys, [b"z:a".to_vec(), b"z:b".to_vec()], "the group's put seen, its delete hiding z:c");
    assert_eq!(count, 3, "z:0, z:a, z:b");
    store.check_ordered_index();
}

/// One thread writes batches of `N` keys under a prefix (and, after a while, deletes earlier
/// batches whole); another reads ranges and counts meanwhile and must always see a multiple of
/// `N`: a group reaches the ordered set whole. A third compacts meanwhile, relocating the keys'
/// records: every value a range reads through the ordered set's locations is its key's own.
#[test]
fn a_concurrent_reader_never_sees_part_of_a_batch() {
    const N: usize = 7;
    const BATCHES: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(Store::open_with(dir.path(), options(&clock)).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            for round in 0..BATCHES {
                let mut batch = Batch::new();
                for i in 0..N {
                    batch.put(format!("z:{:05}", round * N + i), format!("v{}", round * N + i));
                    if round >= 3 {
                        batch.delete(format!("z:{:05}", (round - 3) * N + i));
                    }
                }
                store.write(batch).unwrap();
            }
            done.store(true, Ordering::Release);
        })
    };
    let compactor = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut rewritten = 0;
            while !done.load(Ordering::Acquire) {
                rewritten += store.compact().unwrap().segments_written;
            }
            rewritten
        })
    };
    let mut reads = 0;
    let mut buf = RangeBuf::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let keys = store.range_keys(b"z:", Unbounded, Unbounded, reads % 2 == 1, usize::MAX).unwrap();
        assert_eq!(keys.len() % N, 0, "a read saw part of a batch: {} keys", keys.len());
        store.range_into(b"z:", Unbounded, Unbounded, reads % 2 == 1, usize::MAX, &mut buf).unwrap();
        assert_eq!(buf.len() % N, 0, "range_into saw part of a batch: {} keys", buf.len());
        for (key, value) in buf.iter() {
            assert_eq!(&value[1..], without_leading_zeros(&key[2..]), "each key's own value");
        }
        assert!(keys.windows(2).all(|w| (w[0] < w[1]) != (reads % 2 == 1)), "in order");
        let count = store.count_prefix(b"z:").unwrap();
        assert_eq!(count % N, 0, "a count saw part of a batch: {count}");
        reads += 1;
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    let rewritten = compactor.join().unwrap();
    println!("compaction rewrote {rewritten} segments during the reads");
    assert_eq!(store.count_prefix(b"z:").unwrap(), 3 * N);
    store.check_ordered_index();
}

/// The leader is parked in the middle of publishing a batch that adds a key, deletes one and
/// adds another (at the mapped read of the deleted key's record, which publishing makes to
/// compare keys): a reader's range must show the whole batch or none of it.
#[test]
fn a_reader_never_sees_half_a_batch_while_the_leader_is_parked_mid_publish() {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/data"));
    let parking = ParkingVfs::new(fs);
    let clock = Arc::new(ManualClock::new(T0));
    let options = Options { write_hints: false, preallocate_bytes: 0, ..options(&clock) };
    let store = Arc::new(Store::open_on(parking.clone(), Path::new("/data/store"), options).unwrap());
    // Segment header (40) + frame header (24): the first record is at 64.
    store.put("z:old", "1").unwrap();
    let gate = parking.arm(Rule::new(ParkOp::MapRead(64), ".seg").by_thread("writer"));
    let writer = spawn_named("writer", {
        let store = Arc::clone(&store);
        move || {
            let mut batch = Batch::new();
            batch.put("z:new1", "2").delete("z:old").put("z:new2", "3");
            store.write(batch)
        }
    });
    assert!(gate.wait_parked(), "the leader reached the deleted key's record");
    let reader = spawn_named("reader", {
        let store = Arc::clone(&store);
        move || store.range_keys(b"z:", Unbounded, Unbounded, false, 10).unwrap()
    });
    // A reader that returns while the leader is parked would prove it did not wait; give it the
    // chance (the assertion below holds however long this wait is).
    let early = reader.recv_timeout(Duration::from_millis(100)).ok();
    gate.release(Release::Proceed);
    let keys = early.unwrap_or_else(|| outcome(&reader, "the reader"));
    outcome(&writer, "the writer").unwrap();
    let before = vec![b"z:old".to_vec()];
    let after = vec![b"z:new1".to_vec(), b"z:new2".to_vec()];
    assert!(keys == before || keys == after, "a reader saw half a batch: {keys:?}");
    assert_eq!(store.range_keys(b"z:", Unbounded, Unbounded, false, 10).unwrap(), after);
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

/// A step of the model test. Keys are drawn from a small set so that operations collide.
#[derive(Clone, Debug)]
enum Op {
    Put(u8),
    Delete(u8),
    /// Puts (`true`) and deletes, applied atomically.
    Batch(Vec<(u8, bool)>),
    /// A transaction's writes, a savepoint after the first `keep` of them, a rollback to it, and
    /// a range read at the end (compared with the model of what it should see).
    Txn(Vec<(u8, bool)>, usize),
    /// Puts a key that expires, then lets its time pass.
    PutExpired(u8),
    Compact,
    Reopen,
}

/// The key for `i`: under `\xff\xfdh`, under `z:` (some a prefix of others), or under neither.
fn key(i: u8) -> Vec<u8> {
    match i % 4 {
        0 => member(&[i % 3], &[i / 4 % 5]),
        1 => format!("z:{}", "a".repeat(usize::from(i / 4 % 4))).into_bytes(),
        2 => format!("z:{}", i / 4 % 7).into_bytes(),
        _ => vec![b'y', i],
    }
}

fn op() -> impl Strategy<Value = Op> {
    let writes = || proptest::collection::vec((any::<u8>(), any::<bool>()), 0..8);
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Put),
        3 => any::<u8>().prop_map(Op::Delete),
        2 => writes().prop_map(Op::Batch),
        2 => (writes(), 0..8usize).prop_map(|(w, keep)| Op::Txn(w, keep)),
        1 => any::<u8>().prop_map(Op::PutExpired),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// A range request drawn against the model's keys.
/// A drawn range request: which prefix, bound kinds, the keys the bounds are at, direction, limit.
type Query = (u8, u8, u8, u8, bool, usize);

fn query() -> impl Strategy<Value = Query> {
    (0..4u8, 0..5u8, any::<u8>(), any::<u8>(), any::<bool>(), 0..6usize)
}

/// A range request's arguments.
struct Request {
    prefix: Vec<u8>,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    reverse: bool,
    limit: usize,
}

impl Request {
    fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (self.start.as_ref().map(Vec::as_slice), self.end.as_ref().map(Vec::as_slice))
    }

    fn on_store(&self, store: &Store) -> Vec<Vec<u8>> {
        let (start, end) = self.bounds();
        store.range_keys(&self.prefix, start, end, self.reverse, self.limit).unwrap()
    }

    fn on_txn(&self, txn: &ferrocask::Txn<'_>) -> Vec<Vec<u8>> {
        let (start, end) = self.bounds();
        txn.range_keys(&self.prefix, start, end, self.reverse, self.limit).unwrap()
    }

    fn on_model(&self, live: &BTreeSet<Vec<u8>>) -> Vec<Vec<u8>> {
        let (start, end) = self.bounds();
        expected(live, &self.prefix, start, end, self.reverse, self.limit)
    }
}

/// The request a drawn query stands for.
fn resolve(q: &Query) -> Request {
    let prefix = match q.0 {
        0 => b"\xff\xfdh".to_vec(),
        1 => member(&[q.2 % 3], &[]),
        2 => b"z:".to_vec(),
        _ => b"z:a".to_vec(),
    };
    let bound = |kind: u8, k: u8| match kind % 3 {
        0 => Unbounded,
        1 => Included(key(k)),
        _ => Excluded(key(k)),
    };
    let (start, end) = (bound(q.1, q.2), bound((q.1 / 3).wrapping_add(q.2), q.3));
    Request { prefix, start, end, reverse: q.4, limit: if q.5 == 5 { usize::MAX } else { q.5 } }
}

/// The live keys, and the store, agree on every query; the ordered set agrees with the index.
fn check(store: &Store, live: &BTreeSet<Vec<u8>>, queries: &[Query]) {
    store.check_ordered_index();
    for q in queries {
        let request = resolve(q);
        assert_eq!(request.on_store(store), request.on_model(live), "{q:?}");
        let mut buf = RangeBuf::new();
        let (start, end) = request.bounds();
        store.range_into(&request.prefix, start, end, request.reverse, request.limit, &mut buf).unwrap();
        let keys: Vec<Vec<u8>> = buf.iter().map(|(k, _)| k.to_vec()).collect();
        assert_eq!(keys, request.on_model(live), "range_into: {q:?}");
        for (key, value) in buf.iter() {
            assert_eq!(store.get(key).unwrap().as_deref(), Some(value), "range_into reads each key's latest value");
        }
    }
    // Expired keys are never counted here: every expired put is followed by compaction below.
    let count = |p: &[u8]| live.iter().filter(|k| k.starts_with(p)).count();
    assert_eq!(store.count_prefix(b"z:").unwrap(), count(b"z:"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random writes, batches, transactions with rollbacks, expiries, compactions and reopens
    /// against a `BTreeSet` of the live keys.
    #[test]
    fn ordered_reads_agree_with_a_model(
        ops in proptest::collection::vec(op(), 1..40),
        queries in proptest::collection::vec(query(), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let open = || Store::open_with(dir.path(), options(&clock)).unwrap();
        let mut store = open();
        let mut live: BTreeSet<Vec<u8>> = BTreeSet::new();
        let apply = |live: &mut BTreeSet<Vec<u8>>, writes: &[(u8, bool)]| {
            for (k, put) in writes {
                if *put { live.insert(key(*k)) } else { live.remove(&key(*k)) };
            }
        };
        for op in ops {
            match op {
                Op::Put(k) => {
                    store.put(key(k), [k]).unwrap();
                    live.insert(key(k));
                }
                Op::Delete(k) => {
                    store.delete(key(k)).unwrap();
                    live.remove(&key(k));
                }
                Op::Batch(writes) => {
                    let mut batch = Batch::new();
                    for (k, put) in &writes {
                        if *put { batch.put(key(*k), b"b") } else { batch.delete(key(*k)) };
                    }
                    store.write(batch).unwrap();
                    apply(&mut live, &writes);
                }
                Op::Txn(writes, keep) => {
                    let keep = keep.min(writes.len());
                    let mut seen_model = live.clone();
                    apply(&mut seen_model, &writes[..keep]);
                    let txn_queries = queries.clone();
                    let txn_writes = writes.clone();
                    let seen = store.transaction(move |txn| {
                        let mut savepoint = txn.savepoint();
                        for (i, (k, put)) in txn_writes.iter().enumerate() {
                            if i == keep {
                                savepoint = txn.savepoint();
                            }
                            if *put { txn.put(key(*k), b"t").unwrap() } else { txn.delete(key(*k)).unwrap() }
                        }
                        if keep < txn_writes.len() {
                            txn.rollback_to(savepoint);
                        }
                        let ranges: Vec<Vec<Vec<u8>>> = txn_queries.iter().map(|q| resolve(q).on_txn(txn)).collect();
                        (ranges, txn.count_prefix(b"z:").unwrap())
                    }).unwrap();
                    for (q, got) in queries.iter().zip(&seen.0) {
                        prop_assert_eq!(got, &resolve(q).on_model(&seen_model), "{:?}", q);
                    }
                    prop_assert_eq!(seen.1, seen_model.iter().filter(|k| k.starts_with(b"z:")).count());
                    live = seen_model;
                }
                Op::PutExpired(k) => {
                    store.put_with_ttl(key(k), b"e", Duration::from_millis(5)).unwrap();
                    live.remove(&key(k));
                    clock.advance_ms(5);
                    store.compact().unwrap();
                }
                Op::Compact => {
                    store.compact().unwrap();
                }
                Op::Reopen => {
                    drop(store);
                    store = open();
                }
            }
            check(&store, &live, &queries);
        }
    }
}

/// Decimal digits without their leading zeros (`00042` -> `42`; `00000` -> `0`).
fn without_leading_zeros(digits: &[u8]) -> &[u8] {
    digits.iter().position(|&b| b != b'0').map_or(&digits[digits.len() - 1..], |i| &digits[i..])
}
