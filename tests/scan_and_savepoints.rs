//! What the Redis-protocol server builds its atomic commands and its SCAN on: savepoints inside a
//! transaction, versions of keys, value lengths without reading values, and a resumable scan
//! whose cost per page is bounded. Adversaries: a step that fails half way (a savepoint must
//! leave nothing of it), writers running between scan pages (a key live for the whole scan must
//! still be met), and a transaction's own and its group's unpublished writes (its keys and scan
//! must list them, and nothing deleted). Each runs on both backends (`both_backends!`).

use std::collections::HashSet;
use std::sync::Arc;

use ferrocask::{Error, ManualClock, Options, Store, Txn};

mod common;

fn options() -> Options {
    Options { sync: common::write_back(), ..common::small_segments() }
}

/// Runs a whole scan with `count`, returning every key met and the most entries one page visited.
fn full_scan(store: &Store, count: usize, between_pages: &mut dyn FnMut(usize)) -> (Vec<Vec<u8>>, usize, usize) {
    let (mut keys, mut cursor, mut worst, mut pages) = (Vec::new(), 0, 0, 0);
    loop {
        let page = store.scan(cursor, count);
        worst = worst.max(page.visited);
        keys.extend(page.keys);
        pages += 1;
        between_pages(pages);
        cursor = page.cursor;
        if cursor == 0 {
            return (keys, worst, pages);
        }
    }
}

both_backends! {
    fn a_rolled_back_step_leaves_nothing_and_earlier_steps_commit(b) {
        let store = b.open_with(b.root(), options()).unwrap();
        store.put(b"x", b"old").unwrap();
        let seen = store
            .transaction(|txn| {
                txn.put(b"a", b"1")?;
                let step = txn.savepoint();
                txn.put(b"x", b"new")?;
                txn.delete(b"a")?;
                txn.put(b"b", b"2")?;
                txn.rollback_to(step);
                let seen = (txn.get(b"a").map(|v| v.into_vec()), txn.get(b"x").map(|v| v.into_vec()), txn.contains_key(b"b"));
                txn.put(b"c", b"3")?;
                Ok::<_, Error>(seen)
            })
            .unwrap()
            .unwrap();
        assert_eq!(seen, (Some(b"1".to_vec()), Some(b"old".to_vec()), false), "reads after the rollback");
        drop(store);
        let store = b.open_with(b.root(), options()).unwrap();
        let get = |k: &[u8]| store.get(k).unwrap().map(|v| v.into_vec());
        assert_eq!(get(b"a"), Some(b"1".to_vec()));
        assert_eq!(get(b"x"), Some(b"old".to_vec()), "the rolled back overwrite did not reach the log");
        assert_eq!(get(b"b"), None);
        assert_eq!(get(b"c"), Some(b"3".to_vec()));
    }

    fn a_step_too_large_for_one_frame_is_undone_by_its_savepoint(b) {
        let store = b.open_with(b.root(), options()).unwrap();
        let max = store.batch_bytes_max();
        let value = vec![7u8; 4 << 10];
        let (first_ok, failed) = store
            .transaction(move |txn| {
                txn.put(b"first", b"kept")?;
                let step = txn.savepoint();
                let mut i = 0;
                let failed = loop {
                    if let Err(e) = txn.put(format!("big{i}"), &value) {
                        break e;
                    }
                    i += 1;
                };
                txn.rollback_to(step);
                Ok::<_, Error>((txn.contains_key(b"first"), failed))
            })
            .unwrap()
            .unwrap();
        assert!(first_ok);
        assert!(matches!(failed, Error::BatchTooLarge { max: m, .. } if m == max), "{failed:?}");
        assert_eq!(store.len(), 1, "none of the step's puts were written");
        assert!(store.get(b"big0").unwrap().is_none());
    }

    fn versions_change_with_every_write_and_only_then(b) {
        let store = b.open_with(b.root(), options()).unwrap();
        assert_eq!(store.meta(b"k").unwrap().map(|m| m.version), None);
        store.put(b"k", b"v").unwrap();
        let first = store.meta(b"k").unwrap().unwrap().version;
        store.put(b"other", b"v").unwrap();
        assert_eq!(store.meta(b"k").unwrap().map(|m| m.version), Some(first), "another key's write leaves it");
        store.put(b"k", b"v").unwrap();
        let second = store.meta(b"k").unwrap().unwrap().version;
        assert_ne!(second, first, "writing the same value is a write");
        store.compact().unwrap();
        assert_eq!(store.meta(b"k").unwrap().map(|m| m.version), Some(second), "compaction keeps the version");
        let in_txn = store
            .transaction(|txn| {
                let before = txn.meta(b"k").map(|m| m.version);
                txn.put(b"k", b"w").unwrap();
                (before, txn.meta(b"k").map(|m| m.version))
            })
            .unwrap();
        assert_eq!(in_txn, (Some(second), Some(Txn::UNSTAMPED)));
        store.delete(b"k").unwrap();
        assert_eq!(store.meta(b"k").unwrap().map(|m| m.version), None);
    }

    fn meta_comes_from_headers_and_respects_expiry(b) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = b.open_with(b.root(), Options { clock: clock.clone(), ..options() }).unwrap();
        store.put(b"k", vec![1u8; 5000]).unwrap();
        store.put_with_ttl(b"t", b"abc", std::time::Duration::from_secs(1)).unwrap();
        let len = |m: Option<ferrocask::KeyMeta>| m.map(|m| m.value_len);
        assert_eq!(len(store.meta(b"k").unwrap()), Some(5000));
        let t = store.meta(b"t").unwrap().unwrap();
        assert_eq!((t.value_len, t.expires_ms), (3, Some(1_001_000)));
        assert_eq!(store.meta(b"missing").unwrap(), None);
        let in_txn = store.transaction(move |txn| {
            txn.put(b"n", b"12").unwrap();
            (len(txn.meta(b"k")), len(txn.meta(b"n")), len(txn.meta(b"t")))
        });
        assert_eq!(in_txn.unwrap(), (Some(5000), Some(2), Some(3)));
        clock.advance_ms(1000);
        assert_eq!(store.meta(b"t").unwrap(), None, "expired");
        assert!(!store.transaction(|txn| txn.contains_key(b"t")).unwrap());
    }

    fn a_scan_meets_every_key_live_throughout_at_a_bounded_cost_per_page(b) {
        let store = Arc::new(b.open_with(b.root(), options()).unwrap());
        let n = 5000;
        for i in 0..n {
            store.put(format!("stay{i}"), b"v").unwrap();
        }
        for i in 0..500 {
            store.put(format!("gone{i}"), b"v").unwrap();
        }
        let mut churn = |page: usize| {
            // Between pages: delete the doomed keys, add new ones, overwrite survivors.
            for i in (page * 50..page * 50 + 50).filter(|i| *i < 500) {
                store.delete(format!("gone{i}")).unwrap();
            }
            store.put(format!("new{page}"), b"v").unwrap();
            store.put(format!("stay{}", page * 7 % n), b"w").unwrap();
        };
        let (keys, worst, pages) = full_scan(&store, 10, &mut churn);
        let met: HashSet<Vec<u8>> = keys.iter().cloned().collect();
        for i in 0..n {
            assert!(met.contains(format!("stay{i}").as_bytes()), "stay{i} was live throughout and not met");
        }
        // 256 stripes hold ~22 keys each: a page visits a few stripes, never the whole store.
        let entries = n + 500 + pages;
        assert!(worst * 20 < entries, "one page visited {worst} of {entries} entries");
        assert!(pages > 1 && pages <= 256, "{pages} pages");
        let (again, _, _) = full_scan(&store, 1_000_000, &mut |_| {});
        assert_eq!(again.len(), store.len(), "one huge page lists each live key once");
    }

    fn a_scan_skips_expired_keys(b) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = b.open_with(b.root(), Options { clock: clock.clone(), ..options() }).unwrap();
        store.put(b"forever", b"v").unwrap();
        store.put_with_ttl(b"brief", b"v", std::time::Duration::from_millis(5)).unwrap();
        assert_eq!(full_scan(&store, 100, &mut |_| {}).0.len(), 2);
        clock.advance_ms(5);
        assert_eq!(full_scan(&store, 100, &mut |_| {}).0, vec![b"forever".to_vec()]);
        assert_eq!(store.keys().collect::<Vec<_>>(), vec![b"forever".to_vec()]);
    }

    fn a_transaction_lists_the_keys_it_sees_its_own_writes_included(b) {
        let store = b.open_with(b.root(), options()).unwrap();
        for k in ["a", "b", "c"] {
            store.put(k, b"v").unwrap();
        }
        let (listed, len, paged) = store
            .transaction(|txn| {
                txn.delete(b"b").unwrap();
                txn.put(b"d", b"v").unwrap();
                txn.put(b"a", b"w").unwrap();
                let mut paged = Vec::new();
                let mut cursor = 0;
                loop {
                    let page = txn.scan(cursor, 1);
                    paged.extend(page.keys);
                    cursor = page.cursor;
                    if cursor == 0 {
                        break;
                    }
                }
                (txn.keys(), txn.len(), paged)
            })
            .unwrap();
        let sorted = |mut v: Vec<Vec<u8>>| {
            v.sort();
            v
        };
        let want = vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()];
        assert_eq!(sorted(listed), want);
        assert_eq!(sorted(paged), want, "paging lists each key once, the written ones included");
        assert_eq!(len, 3);
    }
}
