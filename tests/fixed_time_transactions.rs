//! `Store::transaction_at` and `transaction_async_at`: a transaction run at a time its caller
//! fixes, not the store's clock. The adversary is a store clock that disagrees with the fixed
//! time (a replica whose clock runs ahead or behind the leader's).

use std::sync::Arc;
use std::time::Duration;

use ferrocask::{Expiry, ManualClock, Options, Store};

/// The store's clock, far from every fixed time the tests use.
const STORE_CLOCK_MS: u64 = 1_700_000_000_000;

fn store_with_clock(dir: &std::path::Path) -> Store {
    let clock = Arc::new(ManualClock::new(STORE_CLOCK_MS));
    Store::open_with(dir, Options { clock, ..Options::default() }).unwrap()
}

#[test]
fn a_key_expiring_between_two_fixed_times_is_live_at_the_earlier_and_absent_at_the_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_clock(dir.path());
    store.transaction_at(1_000, |tx| tx.put_with_expiry("k", "v", Expiry::At(2_000))).unwrap().unwrap();
    let at = |ms| store.transaction_at(ms, |tx| (tx.get("k").is_some(), tx.contains_key("k"), tx.len())).unwrap();
    assert_eq!(at(1_999), (true, true, 1), "live before its expiry, whatever the store's clock says");
    assert_eq!(at(2_000), (false, false, 0), "absent from its expiry on");
    assert!(store.get("k").unwrap().is_none(), "outside a transaction the store's clock rules");
}

#[test]
fn expiry_after_counts_from_the_fixed_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_clock(dir.path());
    let ttl = Expiry::After(Duration::from_millis(500));
    let expires = store
        .transaction_at(10_000, move |tx| {
            tx.put_with_expiry("k", "v", ttl)?;
            Ok::<_, ferrocask::Error>(tx.now_ms())
        })
        .unwrap()
        .unwrap();
    assert_eq!(expires, 10_000, "now_ms answers the fixed time");
    let meta = store.transaction_at(10_000, |tx| tx.meta("k")).unwrap().expect("live at 10 000");
    assert_eq!(meta.expires_ms, Some(10_500));
}

#[test]
fn the_async_twin_runs_at_its_fixed_time_and_each_transaction_of_a_group_at_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_clock(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let put = store.transaction_async_at(1_000, |tx| tx.put_with_expiry("k", "v", Expiry::At(1_500)));
        // Queued together, so likely led as one group: each still runs at its own time.
        let early = store.transaction_async_at(1_499, |tx| (tx.now_ms(), tx.contains_key("k")));
        let late = store.transaction_async_at(1_500, |tx| (tx.now_ms(), tx.contains_key("k")));
        let plain = store.transaction_async(|tx| tx.now_ms());
        put.await.unwrap().unwrap();
        assert_eq!(early.await.unwrap(), (1_499, true));
        assert_eq!(late.await.unwrap(), (1_500, false));
        assert_eq!(plain.await.unwrap(), STORE_CLOCK_MS, "a transaction without a fixed time reads the store's clock");
    });
}
