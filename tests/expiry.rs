//! Expiry with a `ManualClock`: expired keys are invisible everywhere, expiry survives reopen,
//! and compaction drops expired records for good, even with an older non-expiring value of the
//! same key in an older segment. Each test runs on the real and on the simulated file system
//! (`both_backends!`).

use std::sync::Arc;
use std::time::Duration;

use ferrocask::{ManualClock, Options, Store};

mod common;

const T0: u64 = 1_700_000_000_000;

/// Every test runs on its own clock.
fn options(clock: &Arc<ManualClock>) -> Options {
    Options { clock: clock.clone(), ..common::small_segments() }
}

/// Fills the active segment with unrelated keys until at least one roll-over happened.
fn roll_segments(store: &Store, tag: &str) {
    let before = store.stats().segments;
    let mut i = 0;
    while store.stats().segments == before {
        store.put(format!("filler:{tag}:{i}"), [7u8; 1024]).unwrap();
        i += 1;
    }
}

both_backends! {
    /// INFO keyspace's `expires` and `avg_ttl` (issue 25), through overwrite, PERSIST-like
    /// rewrites, deletes, expiry and reopen.
    fn stats_count_the_keys_with_an_expiry_and_their_mean_ttl(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put_with_ttl(b"a", b"1", Duration::from_secs(60)).unwrap();
        store.put_with_ttl(b"b", b"2", Duration::from_secs(120)).unwrap();
        store.put(b"c", b"3").unwrap();
        let s = store.stats();
        assert_eq!((s.live_keys, s.expiring_keys, s.avg_ttl_ms), (3, 2, 90_000));
        assert!(s.index_bytes >= 3 * 16, "at least a 16-byte slot per entry: {}", s.index_bytes);
        clock.advance_ms(30_000);
        assert_eq!((store.stats().expiring_keys, store.stats().avg_ttl_ms), (2, 60_000));
        store.put(b"b", b"no ttl now").unwrap();
        assert_eq!((store.stats().expiring_keys, store.stats().avg_ttl_ms), (1, 30_000));
        clock.advance_ms(30_000);
        assert_eq!((store.stats().live_keys, store.stats().expiring_keys, store.stats().avg_ttl_ms), (2, 0, 0), "a expired");
        store.put_with_ttl(b"c", b"3", Duration::from_secs(10)).unwrap();
        drop(store);
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        assert_eq!((store.stats().expiring_keys, store.stats().avg_ttl_ms), (1, 10_000), "rebuilt at open");
        store.delete(b"c").unwrap();
        assert_eq!(store.stats().expiring_keys, 0);
    }

    fn an_expired_key_is_invisible_to_every_read(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put_with_ttl(b"session:a", b"1", Duration::from_secs(60)).unwrap();
        store.put_with_ttl(b"session:b", b"2", Duration::from_secs(120)).unwrap();
        store.put(b"session:c", b"3").unwrap();
        assert_eq!(store.len(), 3);

        clock.advance_ms(59_999);
        assert_eq!(store.get(b"session:a").unwrap().as_deref(), Some(&b"1"[..]), "not yet expired");
        clock.advance_ms(1);
        assert_eq!(store.get(b"session:a").unwrap(), None, "expired exactly at its deadline");
        assert!(!store.contains_key(b"session:a").unwrap());
        assert_eq!(store.len(), 2);
        let mut keys: Vec<_> = store.keys().collect();
        keys.sort();
        assert_eq!(keys, vec![b"session:b".to_vec(), b"session:c".to_vec()]);
        assert_eq!(store.iter().filter(|(k, _)| k == b"session:a").count(), 0);
        assert_eq!(store.scan_prefix(b"session:a").count(), 0);
        assert_eq!(store.stats().live_keys, 2);

        clock.advance_ms(60_000);
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
        // A new put of an expired key brings it back; deleting an expired key is harmless.
        store.put(b"session:a", b"again").unwrap();
        assert_eq!(store.get(b"session:a").unwrap().as_deref(), Some(&b"again"[..]));
        store.delete(b"session:b").unwrap();
        assert_eq!(store.len(), 2);
    }

    fn a_ttl_put_over_a_plain_value_hides_the_plain_value_when_it_expires(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put(b"k", b"old").unwrap();
        store.put_with_ttl(b"k", b"new", Duration::from_millis(10)).unwrap();
        clock.advance_ms(10);
        assert_eq!(store.get(b"k").unwrap(), None, "the older value must not show through");
        assert_eq!(store.len(), 0);
    }

    fn expiry_survives_reopen(b) {
        let clock = Arc::new(ManualClock::new(T0));
        {
            let store = b.open_with(b.root(), options(&clock)).unwrap();
            store.put_with_ttl(b"short", b"s", Duration::from_secs(10)).unwrap();
            store.put_with_ttl(b"long", b"l", Duration::from_secs(1000)).unwrap();
            store.put(b"plain", b"p").unwrap();
            roll_segments(&store, "a"); // some of it sealed, with a hint file
            store.put_with_ttl(b"active", b"a", Duration::from_secs(10)).unwrap();
        }
        {
            clock.advance_ms(5_000);
            let store = b.open_with(b.root(), options(&clock)).unwrap();
            assert_eq!(store.get(b"short").unwrap().as_deref(), Some(&b"s"[..]), "not expired yet: still there");
            assert_eq!(store.get(b"active").unwrap().as_deref(), Some(&b"a"[..]));
            // ...and it still carries its expiry after the reopen.
            clock.advance_ms(5_000);
            assert_eq!(store.get(b"short").unwrap(), None);
            assert_eq!(store.get(b"active").unwrap(), None);
            assert!(store.contains_key(b"long").unwrap());
        }
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        assert_eq!(store.get(b"short").unwrap(), None, "expired before open: gone");
        assert_eq!(store.get(b"active").unwrap(), None);
        assert_eq!(store.get(b"long").unwrap().as_deref(), Some(&b"l"[..]));
        assert_eq!(store.get(b"plain").unwrap().as_deref(), Some(&b"p"[..]));
        assert!(store.keys().all(|k| k != b"short" && k != b"active"));
        clock.advance_ms(1_000_000);
        assert_eq!(store.get(b"long").unwrap(), None);
    }

    fn compaction_drops_expired_records_for_good(b) {
        let clock = Arc::new(ManualClock::new(T0));
        {
            let store = b.open_with(b.root(), options(&clock)).unwrap();
            for i in 0..50 {
                store.put_with_ttl(format!("ttl:{i}"), [1u8; 100], Duration::from_secs(30)).unwrap();
            }
            store.put(b"plain", b"p").unwrap();
            clock.advance_ms(30_000);
            assert_eq!(store.len(), 1);
            let report = store.compact().unwrap();
            assert_eq!(report.records_copied, 1, "{report:?}");
            assert_eq!(report.records_dropped, 50, "{report:?}");
            let stats = store.stats();
            assert_eq!(stats.live_keys, 1);
            assert!(stats.live_bytes < 200, "{stats:?}");
            assert_eq!(store.len(), 1);
        }
        clock.set_ms(T0); // even with the clock turned back, the dropped records are gone
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(b"ttl:3").unwrap(), None);
        assert_eq!(store.recovery_report().records_read, 1);
    }

    /// The key's non-expiring value sits in an older segment than its expiring overwrite. Dropping
    /// the expiring record must not let the older value come back, in memory or after reopen.
    fn an_older_plain_value_does_not_come_back_after_compaction_and_reopen(b) {
        for reopen_before_compaction in [false, true] {
            for write_hints in [true, false] {
                let dir = b.path(&format!("reopen-{reopen_before_compaction}-hints-{write_hints}"));
                let clock = Arc::new(ManualClock::new(T0));
                let opts = || Options { write_hints, ..options(&clock) };
                let mut store = b.open_with(&dir, opts()).unwrap();
                store.put(b"k", b"old, never expires").unwrap();
                roll_segments(&store, "1");
                store.put_with_ttl(b"k", b"new, expires", Duration::from_secs(60)).unwrap();
                roll_segments(&store, "2");
                clock.advance_ms(60_000);
                assert_eq!(store.get(b"k").unwrap(), None);
                if reopen_before_compaction {
                    drop(store);
                    store = b.open_with(&dir, opts()).unwrap();
                    assert_eq!(store.get(b"k").unwrap(), None, "reopen with the key expired");
                }
                let report = store.compact().unwrap();
                assert!(report.records_dropped >= 2, "{report:?}");
                let case = format!("reopen first: {reopen_before_compaction}, hints: {write_hints}");
                assert_eq!(store.get(b"k").unwrap(), None, "{case}: after compaction");
                assert!(!store.keys().any(|k| k == b"k"), "{case}");
                drop(store);
                clock.set_ms(T0); // the expiring record, were it still there, would now be live
                let store = b.open_with(&dir, opts()).unwrap();
                assert_eq!(store.get(b"k").unwrap(), None, "{case}: after compaction and reopen");
                assert!(!store.keys().any(|k| k == b"k"), "{case}");
            }
        }
    }

    /// Automatic compaction (which leaves the active segment alone) must not resurrect either.
    fn a_second_compaction_with_writes_in_between_keeps_the_key_gone(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put(b"k", b"old").unwrap();
        roll_segments(&store, "1");
        store.compact().unwrap(); // the old value now lives in a compacted segment
        store.put_with_ttl(b"k", b"new", Duration::from_secs(1)).unwrap();
        roll_segments(&store, "2");
        clock.advance_ms(1_000);
        store.compact().unwrap();
        roll_segments(&store, "3");
        store.compact().unwrap();
        drop(store);
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        assert_eq!(store.get(b"k").unwrap(), None);
    }

    fn get_with_expiry_reports_the_expiry_and_hides_expired_keys(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store.put_with_ttl(b"a", b"1", Duration::from_secs(60)).unwrap();
        store.put(b"b", b"2").unwrap();
        let (value, expires) = store.get_with_expiry(b"a").unwrap().unwrap();
        assert_eq!((&value[..], expires), (&b"1"[..], Some(T0 + 60_000)));
        assert_eq!(store.get_with_expiry(b"b").unwrap().unwrap().1, None);
        clock.advance_ms(60_000);
        assert_eq!(store.get_with_expiry(b"a").unwrap(), None, "expired at exactly its expiry time");
    }

    fn len_does_not_count_a_key_a_transaction_wrote_with_an_expiry_once_it_expired(b) {
        let clock = Arc::new(ManualClock::new(T0));
        let store = b.open_with(b.root(), options(&clock)).unwrap();
        store
            .transaction(|tx| tx.put_with_expiry("a", "1", ferrocask::Expiry::After(Duration::from_secs(1))))
            .unwrap()
            .unwrap();
        store.put("b", "2").unwrap();
        assert_eq!(store.len(), 2);
        clock.advance_ms(1_000);
        assert_eq!(store.len(), 1, "the expired key is not counted");
    }
}
