//! Writes the caller leads: `Store::transaction_async_deferred` queues without waking the async
//! driver, `Store::lead_queued` leads on the calling thread. Adversaries: a reader looking for the
//! writes before their group is led, a caller that never leads, a transaction that tries to lead
//! its own group, and a crash after the acknowledgements.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::parking::{ParkOp, ParkingVfs, Release, Rule};
use ferrocask::testing::SimFs;
use ferrocask::{Error, Options, Store, SyncMode};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// Starts the store's async driver (the first async write does) and lets it go idle: a driver
/// thread that is just starting looks at the queue once, and would lead a caller's writes
/// before the caller does.
fn start_driver(store: &Store) {
    runtime().block_on(store.put_async("warm", "0")).unwrap();
}

/// Until a group is led nothing of it is visible: the write is queued, not durable, so no
/// reader may see it. Then one `lead_queued` makes every queued write durable in one group.
#[test]
fn queued_writes_are_invisible_until_led_then_share_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    start_driver(&store);
    let syncs_before = store.stats().syncs;
    let futures: Vec<_> =
        (0..10u32).map(|i| store.transaction_async_deferred(move |tx| tx.put(i.to_be_bytes(), "v"))).collect();
    for i in 0..10u32 {
        assert_eq!(store.get(i.to_be_bytes()).unwrap(), None, "key {i} is readable before its group was led");
    }
    assert_eq!(store.lead_queued().unwrap(), 1, "ten queued writes are one group");
    assert_eq!(store.stats().syncs, syncs_before + 1, "one sync for the group");
    let rt = runtime();
    for future in futures {
        rt.block_on(future).unwrap().unwrap();
    }
    for i in 0..10u32 {
        assert_eq!(store.get(i.to_be_bytes()).unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(store.len(), 11, "the ten and the warm-up write");
    assert_eq!(store.lead_queued().unwrap(), 0, "nothing left to lead");
}

/// A caller that never leads does not strand its write: the next writer to lead (here a blocking
/// put on another thread) takes everything queued before it.
#[test]
fn a_write_nobody_leads_is_taken_by_the_next_leader() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let deferred = store.transaction_async_deferred(|tx| tx.put("deferred", "1"));
    let other = Arc::clone(&store);
    std::thread::spawn(move || other.put("blocking", "2")).join().unwrap().unwrap();
    runtime().block_on(deferred).unwrap().unwrap();
    assert_eq!(store.get("deferred").unwrap().as_deref(), Some(&b"1"[..]));
}

/// A transaction cannot lead the group it runs in (it would wait for itself).
#[test]
fn lead_queued_from_inside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let inner = Arc::clone(&store);
    let refused = store.transaction(move |_| inner.lead_queued()).unwrap();
    assert!(matches!(refused, Err(Error::Reentrant)), "{refused:?}");
}

/// Whatever was acknowledged through a caller-led group is there after reopening.
#[test]
fn acknowledged_caller_led_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let rt = runtime();
        for round in 0..20u32 {
            let futures: Vec<_> = (0..5u32)
                .map(|i| store.transaction_async_deferred(move |tx| tx.put(format!("{round}:{i}"), "x")))
                .collect();
            store.lead_queued().unwrap();
            for future in futures {
                rt.block_on(future).unwrap().unwrap();
            }
        }
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(), 100);
}

/// `lead_queued` leads what was queued before it was called, not what other threads queue while
/// it syncs: a caller that kept leading as long as others kept writing would hold its thread (an
/// event loop's worker, with the tasks waiting to run on it) for as long as they do. The later
/// write is not stranded: the driver, woken at the end of the group, leads it.
#[test]
fn lead_queued_leads_only_what_was_queued_before_it() {
    let parking = ParkingVfs::new(SimFs::new());
    let options = Options { sync: SyncMode::Always, auto_compact: false, ..Options::default() };
    let store = Arc::new(Store::open_on(parking.clone(), Path::new("/data/store"), options).unwrap());
    start_driver(&store);
    let first = store.transaction_async_deferred(|tx| tx.put("first", "1"));
    let gate = parking.arm(Rule::new(ParkOp::Sync, ".seg").by_thread("caller"));
    let leader = Arc::clone(&store);
    let caller = std::thread::Builder::new().name("caller".into()).spawn(move || leader.lead_queued()).unwrap();
    assert!(gate.wait_parked(), "the caller's group reached its sync");
    let later = store.transaction_async_deferred(|tx| tx.put("later", "2"));
    gate.release(Release::Proceed);
    assert_eq!(caller.join().unwrap().unwrap(), 1, "one group: the write queued during its sync is not its to lead");
    let rt = runtime();
    rt.block_on(first).unwrap().unwrap();
    rt.block_on(later).unwrap().unwrap();
    assert_eq!(store.get("later").unwrap().as_deref(), Some(&b"2"[..]), "led by the driver");
}
