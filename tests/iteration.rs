//! `keys`, `iter` and `scan_prefix`: every live key exactly once, deleted and expired keys never,
//! and the guarantee under concurrent puts, deletes, overwrites and compaction. Each test runs on
//! the real and on the simulated file system (`both_backends!`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ferrocask::{ManualClock, Options, Store};

mod common;

/// Small segments so the data spans several; write-back syncing because durability is not what
/// these tests are about, and fsync per put would make them slow.
fn small_segments() -> Options {
    Options { sync: common::write_back(), ..common::small_segments() }
}

/// Collects keys, failing on a duplicate.
fn distinct(keys: impl Iterator<Item = Vec<u8>>) -> HashSet<Vec<u8>> {
    let mut seen = HashSet::new();
    for k in keys {
        assert!(seen.insert(k.clone()), "key {:?} yielded twice", String::from_utf8_lossy(&k));
    }
    seen
}

fn key_set(keys: &[&str]) -> HashSet<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

both_backends! {
    fn keys_iter_and_scan_prefix_see_every_live_key_once(b) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = b.open_with(b.root(), Options { clock: clock.clone(), ..small_segments() }).unwrap();
        let mut live = HashSet::new();
        for i in 0..2000u32 {
            let key = format!("{}:{i:05}", if i % 2 == 0 { "user" } else { "order" });
            store.put(&key, i.to_le_bytes()).unwrap();
            live.insert(key.into_bytes());
        }
        // Overwrites (older records stay in older segments), deletes and expiring keys.
        for i in (0..2000u32).step_by(7) {
            let key = format!("{}:{i:05}", if i % 2 == 0 { "user" } else { "order" });
            store.put(&key, (i + 1).to_le_bytes()).unwrap();
        }
        for i in (0..2000u32).step_by(5) {
            let key = format!("{}:{i:05}", if i % 2 == 0 { "user" } else { "order" });
            store.delete(&key).unwrap();
            live.remove(key.as_bytes());
        }
        store.put_with_ttl(b"user:ttl-short", b"x", Duration::from_secs(1)).unwrap();
        store.put_with_ttl(b"user:ttl-long", b"y", Duration::from_secs(3600)).unwrap();
        live.insert(b"user:ttl-long".to_vec());
        clock.advance_ms(1_000);
        assert!(store.stats().segments > 2, "the data spans several segments");

        let check = |store: &Store| {
            assert_eq!(distinct(store.keys()), live);
            let pairs: Vec<_> = store.iter().collect();
            assert_eq!(distinct(pairs.iter().map(|(k, _)| k.clone())), live);
            for (k, v) in &pairs {
                assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]), "iter and get agree");
            }
            let users: HashSet<_> = live.iter().filter(|k| k.starts_with(b"user:")).cloned().collect();
            assert_eq!(distinct(store.scan_prefix(b"user:").map(|(k, _)| k)), users);
            assert_eq!(distinct(store.scan_prefix(b"nope").map(|(k, _)| k)), HashSet::new());
            assert_eq!(store.len(), live.len());
        };
        check(&store);
        store.compact().unwrap();
        check(&store);
        drop(store);
        let store = b.open_with(b.root(), Options { clock, ..small_segments() }).unwrap();
        check(&store);
    }

    fn an_empty_store_yields_nothing(b) {
        let store = b.open(b.root()).unwrap();
        assert_eq!(store.keys().count(), 0);
        store.put(b"k", b"v").unwrap();
        store.delete(b"k").unwrap();
        assert_eq!(store.iter().count(), 0);
        assert_eq!(distinct(store.keys()), key_set(&[]));
    }

    /// Writers put new keys, overwrite stable ones and delete doomed ones, and a compaction thread
    /// relocates entries, all while the main thread iterates. The main thread waits for the writers
    /// to make progress between items (no sleeps), so iteration and writes really interleave.
    fn concurrent_writes_never_hide_or_duplicate_untouched_keys(b) {
        const STABLE: u32 = 2000;
        const DOOMED: u32 = 2000;
        for round in 0..3 {
            let dir = b.path(&format!("round-{round}"));
            let store = Arc::new(b.open_with(&dir, small_segments()).unwrap());
            for i in 0..STABLE {
                store.put(format!("stable:{i}"), format!("stable:{i}:0")).unwrap();
            }
            for i in 0..DOOMED {
                store.put(format!("doomed:{i}"), b"d").unwrap();
            }
            for i in 0..200 {
                store.put(format!("gone:{i}"), b"g").unwrap();
                store.delete(format!("gone:{i}")).unwrap();
            }
            let stop = Arc::new(AtomicBool::new(false));
            let progress = Arc::new(AtomicU64::new(0));
            let start = Arc::new(Barrier::new(4));
            let mut threads = Vec::new();
            // Deleter: removes doomed keys from the end backwards.
            threads.push(std::thread::spawn({
                let (store, stop, progress, start) = (store.clone(), stop.clone(), progress.clone(), start.clone());
                move || {
                    start.wait();
                    let mut i = DOOMED;
                    while !stop.load(Ordering::SeqCst) && i > 0 {
                        i -= 1;
                        store.delete(format!("doomed:{i}")).unwrap();
                        progress.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
            // Writer: new keys, and overwrites of stable keys (which must still be seen once).
            threads.push(std::thread::spawn({
                let (store, stop, progress, start) = (store.clone(), stop.clone(), progress.clone(), start.clone());
                move || {
                    start.wait();
                    let mut n = 0u32;
                    while !stop.load(Ordering::SeqCst) {
                        store.put(format!("new:{n}"), b"n").unwrap();
                        let s = n % STABLE;
                        store.put(format!("stable:{s}"), format!("stable:{s}:{}", n + 1)).unwrap();
                        progress.fetch_add(1, Ordering::SeqCst);
                        n += 1;
                    }
                }
            }));
            // Compactor: moves entries between segments under the iterator's feet.
            threads.push(std::thread::spawn({
                let (store, stop, start) = (store.clone(), stop.clone(), start.clone());
                move || {
                    start.wait();
                    while !stop.load(Ordering::SeqCst) {
                        store.compact().unwrap();
                    }
                }
            }));
            start.wait();
            let mut seen: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for (yielded, (k, v)) in store.iter().enumerate() {
                let text = String::from_utf8(k.clone()).unwrap();
                assert!(!text.starts_with("gone:"), "round {round}: {text} was deleted before iteration began");
                assert!(
                    text.starts_with("stable:") || text.starts_with("doomed:") || text.starts_with("new:"),
                    "round {round}: unknown key {text}"
                );
                if let Some(i) = text.strip_prefix("stable:") {
                    let v = String::from_utf8(v.to_vec()).unwrap();
                    assert!(v.starts_with(&format!("stable:{i}:")), "round {round}: value {v} for {text}");
                }
                assert!(seen.insert(k, v.into_vec()).is_none(), "round {round}: {text} yielded twice");
                // Let the writers move on before taking the next item.
                if yielded % 4 == 0 {
                    let before = progress.load(Ordering::SeqCst);
                    while progress.load(Ordering::SeqCst) == before && !threads[0].is_finished() {
                        std::thread::yield_now();
                    }
                }
            }
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                t.join().unwrap();
            }
            for i in 0..STABLE {
                assert!(seen.contains_key(format!("stable:{i}").as_bytes()), "round {round}: stable:{i} missing");
            }
            // Doomed keys are seen at most once (checked above); those never deleted must all be seen.
            for i in 0..DOOMED {
                let key = format!("doomed:{i}");
                if store.contains_key(&key).unwrap() {
                    assert!(seen.contains_key(key.as_bytes()), "round {round}: {key} never deleted but not seen");
                }
            }
        }
    }
}
