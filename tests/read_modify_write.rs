//! Atomic read-modify-write and the async write path: counters from many threads and tasks,
//! compare-and-swap loops, conditional batches racing on overlapping keys, expiry kept or
//! replaced, a panicking transaction, and group commit shared by all of them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::{Batch, Cas, Condition, Error, Expiry, ManualClock, Options, Store, SyncMode, Update};

fn open(dir: &std::path::Path) -> Store {
    Store::open_with(dir, Options { auto_compact: false, ..Options::default() }).unwrap()
}

fn number(v: Option<&[u8]>) -> u64 {
    v.map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap())
}

fn increment(v: Option<&[u8]>) -> Update {
    Update::Set((number(v) + 1).to_string().into_bytes())
}

#[test]
fn threads_incrementing_one_key_lose_no_update_and_share_syncs() {
    const THREADS: u64 = 8;
    const EACH: u64 = 200;
    for sync in [SyncMode::Always, SyncMode::Every(Duration::from_secs(3600))] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), Options { sync, auto_compact: false, ..Options::default() }).unwrap();
        let seen: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        (0..EACH)
                            .map(|_| number(store.update("counter", increment).unwrap().current.as_deref()))
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(number(store.get("counter").unwrap().as_deref()), THREADS * EACH, "{sync:?}");
        let all: BTreeSet<u64> = seen.iter().flatten().copied().collect();
        assert_eq!(all.len() as u64, THREADS * EACH, "{sync:?}: every increment saw a distinct value");
        if sync == SyncMode::Always {
            let stats = store.stats();
            assert!(stats.syncs < THREADS * EACH, "increments share syncs: {} syncs", stats.syncs);
        }
        drop(store);
        assert_eq!(number(open(dir.path()).get("counter").unwrap().as_deref()), THREADS * EACH);
    }
}

#[test]
fn compare_and_swap_loops_from_many_threads_never_lose_an_update() {
    const THREADS: usize = 6;
    const EACH: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..EACH {
                    let mut current = store.get("n").unwrap();
                    loop {
                        let next = (number(current.as_deref()) + 1).to_string();
                        match store.compare_and_swap("n", current.as_deref(), Some(next.as_bytes())).unwrap() {
                            Cas::Applied => break,
                            Cas::Mismatch { current: now } => current = now,
                        }
                    }
                }
            });
        }
    });
    assert_eq!(number(store.get("n").unwrap().as_deref()), (THREADS * EACH) as u64);
}

#[test]
fn compare_and_swap_reports_the_current_value_and_deletes_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.compare_and_swap("k", Some(b"x"), Some(b"y")).unwrap(), Cas::Mismatch { current: None });
    assert!(store.compare_and_swap("k", None, Some(b"v1")).unwrap().is_applied());
    let mismatch = store.compare_and_swap("k", None, Some(b"v2")).unwrap();
    assert_eq!(mismatch, Cas::Mismatch { current: store.get("k").unwrap() });
    assert!(store.compare_and_swap("k", Some(b"v1"), None).unwrap().is_applied());
    assert_eq!(store.get("k").unwrap(), None);
    assert!(matches!(store.compare_and_swap("", None, Some(b"v")), Err(Error::EmptyKey)));
}

/// Threads race conditional batches that each claim two of five slots ("set both if both are
/// absent"). Overlapping claims exclude each other: every slot ends up owned by exactly one
/// winner, and every winner owns both of its slots.
#[test]
fn conditional_batches_racing_on_overlapping_keys_have_exactly_the_expected_winners() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let claims: Vec<(usize, usize)> = (0..5).flat_map(|a| (a + 1..5).map(move |b| (a, b))).collect();
    let won: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = claims
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| {
                let store = &store;
                s.spawn(move || {
                    let mut batch = Batch::new();
                    let (ka, kb) = (format!("slot{a}"), format!("slot{b}"));
                    batch.require(&ka, Condition::Absent).require(&kb, Condition::Absent);
                    batch.put(&ka, format!("claim{i}")).put(&kb, format!("claim{i}"));
                    store.write_if(batch).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = (0..claims.len()).filter(|&i| won[i]).collect();
    let mut owned = BTreeSet::new();
    for &i in &winners {
        let (a, b) = claims[i];
        for slot in [a, b] {
            assert_eq!(store.get(format!("slot{slot}")).unwrap().as_deref(), Some(format!("claim{i}").as_bytes()));
            assert!(owned.insert(slot), "slot {slot} claimed twice");
        }
    }
    for slot in 0..5 {
        if let Some(v) = store.get(format!("slot{slot}")).unwrap() {
            let i: usize = std::str::from_utf8(&v).unwrap()["claim".len()..].parse().unwrap();
            assert!(winners.contains(&i), "slot {slot} holds a loser's claim {i}");
        }
    }
    assert!(!winners.is_empty() && owned.len() >= 4, "a maximal set of disjoint claims won: {winners:?}");
}

#[test]
fn a_failed_precondition_writes_nothing_and_write_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("balance", "10").unwrap();
    let mut batch = Batch::new();
    batch.require("balance", Condition::Equals(b"11".to_vec())).put("balance", "0").put("audit", "x");
    assert!(!store.write_if(batch.clone()).unwrap());
    assert!(matches!(store.write(batch), Err(Error::ConditionFailed { key }) if key == "balance"));
    assert_eq!(store.get("audit").unwrap(), None);
    let mut batch = Batch::new();
    batch.require("balance", Condition::Present).put("balance", "9").delete("missing");
    store.write(batch).unwrap();
    assert_eq!(store.get("balance").unwrap().as_deref(), Some(&b"9"[..]));
}

#[test]
fn expiry_is_kept_by_updates_and_replaced_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let options = Options { clock: clock.clone(), auto_compact: false, ..Options::default() };
    let store = Store::open_with(dir.path(), options).unwrap();
    store.put_with_ttl("c", "1", Duration::from_secs(10)).unwrap();
    store.update("c", increment).unwrap();
    assert_eq!(store.transaction(|tx| tx.get_with_expiry("c")).unwrap().unwrap().1, Some(1_010_000));
    store.update("c", |v| Update::SetWithExpiry(increment(v).value(), Expiry::Never)).unwrap();
    assert_eq!(store.transaction(|tx| tx.get_with_expiry("c")).unwrap().unwrap().1, None);
    store.compare_and_swap_with("c", Some(b"3"), Some(b"4"), Expiry::After(Duration::from_secs(5))).unwrap();
    clock.advance_ms(5_000);
    assert_eq!(store.get("c").unwrap(), None, "the replaced expiry applies");
    let counted = store.update("c", increment).unwrap();
    assert_eq!((counted.previous, counted.current.as_deref()), (None, Some(&b"1"[..])), "an expired key is absent");
    let mut batch = Batch::new();
    batch.put_with_expiry("c", "7", Expiry::Keep);
    store.write(batch).unwrap();
    assert_eq!(
        store.transaction(|tx| tx.get_with_expiry("c")).unwrap().unwrap(),
        (store.get("c").unwrap().unwrap(), None)
    );
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let swapped = rt.block_on(store.compare_and_swap_with_async("c", Some(b"7"), Some(b"8"), Expiry::At(1_009_000)));
    assert!(swapped.unwrap().is_applied());
    assert_eq!(
        store.transaction(|tx| tx.get_with_expiry("c")).unwrap().unwrap().1,
        Some(1_009_000),
        "async CAS sets it too"
    );
}

trait UpdateValue {
    fn value(self) -> Vec<u8>;
}

impl UpdateValue for Update {
    fn value(self) -> Vec<u8> {
        match self {
            Update::Set(v) | Update::SetWithExpiry(v, _) => v,
            other => panic!("not a set: {other:?}"),
        }
    }
}

#[test]
fn a_panicking_transaction_writes_nothing_resumes_in_the_caller_and_leaves_the_store_working() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.transaction(|tx| {
            tx.put("half", "written").unwrap();
            panic!("a bug in the caller's closure");
        })
    }));
    assert!(caught.is_err(), "the panic resumes in the caller");
    assert_eq!(store.get("half").unwrap(), None);
    store.put("after", "ok").unwrap();
    assert_eq!(store.update("after", |_| Update::Keep).unwrap().current.as_deref(), Some(&b"ok"[..]));
}

#[test]
fn a_transaction_sees_writes_queued_before_it_in_the_same_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Futures queue without waiting, so these land in as few groups as the leader makes.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let put = store.put_async("k", "1");
        let del = store.delete_async("gone");
        let add = store.update_async("k", increment);
        let cas = store.compare_and_swap_async("k", Some(b"2"), Some(b"3"));
        put.await.unwrap();
        del.await.unwrap();
        assert_eq!(add.await.unwrap().current.as_deref(), Some(&b"2"[..]));
        assert!(cas.await.unwrap().is_applied());
    });
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"3"[..]));
}

#[test]
fn a_thousand_async_tasks_resolve_and_every_acknowledged_write_survives_reopen() {
    const TASKS: u32 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store.put_async(format!("task{i}"), i.to_le_bytes()).await.unwrap();
                    store.update_async("hot", increment).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let stats = store.stats();
    assert!(
        stats.syncs < u64::from(TASKS),
        "async writers share syncs: {} syncs for {} writes",
        stats.syncs,
        2 * TASKS
    );
    drop(Arc::into_inner(store).unwrap());
    let store = open(dir.path());
    for i in 0..TASKS {
        assert_eq!(store.get(format!("task{i}")).unwrap().as_deref(), Some(&i.to_le_bytes()[..]));
    }
    assert_eq!(number(store.get("hot").unwrap().as_deref()), u64::from(TASKS));
}

#[test]
fn async_tasks_and_threads_incrementing_one_key_count_exactly() {
    const TASKS: u64 = 100;
    const TASK_EACH: u64 = 10;
    const THREADS: u64 = 4;
    const EACH: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..EACH {
                    store.update("n", increment).unwrap();
                }
            });
        }
        rt.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        for _ in 0..TASK_EACH {
                            store.update_async("n", increment).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
    });
    assert_eq!(number(store.get("n").unwrap().as_deref()), TASKS * TASK_EACH + THREADS * EACH);
}

/// A future whose write cannot even be queued (bad input, a poisoned store) resolves at once
/// with the error; one dropped without being polled still writes.
#[test]
fn async_errors_resolve_at_once_and_a_dropped_future_still_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        assert!(matches!(store.put_async("", "v").await, Err(Error::EmptyKey)));
        let big = vec![0u8; 32 << 20];
        assert!(matches!(store.put_async("k", &big).await, Err(Error::ValueTooLarge { .. })));
    });
    drop(store.put_async("dropped", "still written"));
    drop(store);
    assert_eq!(open(dir.path()).get("dropped").unwrap().as_deref(), Some(&b"still written"[..]));
}
