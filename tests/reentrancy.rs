//! A store call from inside one of the store's own transaction or update closures. The closure
//! runs on the thread that leads its group, so a write from there would wait for that very group:
//! before the fix, each of these tests hung for ever. Now every call that writes or waits for the
//! writer fails with `Error::Reentrant`, reads keep working, another store may be written, and
//! the store keeps working afterwards.
//!
//! Adversary: a careless caller; each test plays one call it might make.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ferrocask::{Batch, Error, Options, Result, Store, Update};

fn open(dir: &std::path::Path) -> Arc<Store> {
    Arc::new(Store::open_with(dir, Options { auto_compact: false, ..Options::default() }).unwrap())
}

/// Runs `call` on `store` from inside a transaction of `store`, and returns what it returned;
/// the transaction also writes `txn-key` through its `Txn`.
fn from_inside<R: Send + 'static>(store: &Arc<Store>, call: impl FnOnce(&Store) -> R + Send + 'static) -> R {
    let inner = Arc::clone(store);
    store
        .transaction(move |txn| {
            txn.put("txn-key", "written by the Txn").unwrap();
            call(&inner)
        })
        .unwrap()
}

fn assert_reentrant<T: std::fmt::Debug>(result: Result<T>) {
    assert!(matches!(result, Err(Error::Reentrant)), "expected Error::Reentrant, got {result:?}");
}

/// What every test checks after the refused call: the transaction's own write landed, the
/// refused one did not, and the store takes writes again.
fn assert_still_working(store: &Store, refused_key: &str) {
    assert_eq!(store.get("txn-key").unwrap().as_deref(), Some(&b"written by the Txn"[..]));
    assert_eq!(store.get(refused_key).unwrap(), None, "the refused call wrote nothing");
    store.put("after", "ok").unwrap();
    assert_eq!(store.get("after").unwrap().as_deref(), Some(&b"ok"[..]));
}

#[test]
fn put_inside_a_transaction_fails_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_reentrant(from_inside(&store, |s| s.put("refused", "v")));
    assert_still_working(&store, "refused");
}

#[test]
fn transaction_inside_a_transaction_fails_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let nested = from_inside(&store, |s| s.transaction(|txn| txn.put("refused", "v")).map(drop));
    assert_reentrant(nested);
    assert_still_working(&store, "refused");
}

#[test]
fn delete_inside_a_transaction_fails_with_reentrant_for_present_and_absent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("present", "v").unwrap();
    let (present, absent) = from_inside(&store, |s| (s.delete("present"), s.delete("absent")));
    assert_reentrant(present);
    // Deleting a missing key writes nothing, but it is the same mistake and says so.
    assert_reentrant(absent);
    assert_eq!(store.get("present").unwrap().as_deref(), Some(&b"v"[..]), "the refused delete deleted nothing");
    assert_still_working(&store, "refused");
}

#[test]
fn batch_write_inside_a_transaction_fails_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let written = from_inside(&store, |s| {
        let mut batch = Batch::new();
        batch.put("refused", "v").put("refused-too", "v");
        s.write(batch)
    });
    assert_reentrant(written);
    assert_eq!(store.get("refused-too").unwrap(), None);
    assert_still_working(&store, "refused");
}

#[test]
fn update_inside_an_update_closure_fails_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inner = Arc::clone(&store);
    let (tx, rx) = std::sync::mpsc::channel();
    store
        .update("counter", move |_| {
            tx.send(inner.update("refused", |_| Update::Set(b"v".to_vec()))).unwrap();
            Update::Set(b"1".to_vec())
        })
        .unwrap();
    assert_reentrant(rx.recv().unwrap());
    assert_eq!(store.get("counter").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get("refused").unwrap(), None);
}

#[test]
fn sync_compact_and_backup_inside_a_transaction_fail_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let target = dir.path().join("backup");
    let (sync, compact, backup) =
        from_inside(&store, move |s| (s.sync(), s.compact().map(drop), s.backup_to(&target).map(drop)));
    assert_reentrant(sync);
    assert_reentrant(compact);
    assert_reentrant(backup);
    assert!(!dir.path().join("backup").exists(), "the refused backup created nothing");
    assert_still_working(&store, "refused");
}

#[test]
fn async_writes_inside_a_transaction_resolve_to_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Queued, they would land in a later group, outside the transaction; awaited, they would
    // hang. Either way a mistake, refused at the call.
    let future = from_inside(&store, |s| s.put_async("refused", "v"));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_reentrant(rt.block_on(future));
    assert_still_working(&store, "refused");
}

#[test]
fn put_inside_an_async_transaction_fails_with_reentrant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let inner = Arc::clone(&store);
    // Groups only futures wait for are led by the async driver thread: the closure runs there.
    let future = store.transaction_async(move |txn| {
        txn.put("txn-key", "written by the Txn").unwrap();
        inner.put("refused", "v")
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_reentrant(rt.block_on(future).unwrap());
    assert_still_working(&store, "refused");
}

#[test]
fn reads_inside_a_transaction_see_the_state_before_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put("a", "1").unwrap();
    let (got, len, keys) = from_inside(&store, |s| (s.get("a").unwrap(), s.len(), s.keys().count()));
    assert_eq!(got.as_deref(), Some(&b"1"[..]));
    // The transaction's own write (`txn-key`) is not published while it runs.
    assert_eq!((len, keys), (1, 1));
    assert_eq!(store.len(), 2);
}

#[test]
fn a_transaction_may_write_to_another_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("one"));
    let other = open(&dir.path().join("two"));
    let target = Arc::clone(&other);
    let written = from_inside(&store, move |_| {
        target.put("from-one", "v")?;
        target.transaction(|txn| txn.put("nested", "v"))?
    });
    written.unwrap();
    assert_eq!(other.get("from-one").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(other.get("nested").unwrap().as_deref(), Some(&b"v"[..]));
    assert_still_working(&store, "from-one");
}

#[test]
fn a_write_back_to_the_outer_store_from_a_nested_transaction_fails_with_reentrant() {
    // This thread leads a group of `one`, then, inside it, a group of `two`: a write to `one`
    // from the inner closure would still wait for the outer group.
    let dir = tempfile::tempdir().unwrap();
    let one = open(&dir.path().join("one"));
    let two = open(&dir.path().join("two"));
    let (one_inside, two_inside) = (Arc::clone(&one), Arc::clone(&two));
    let nested = from_inside(&one, move |_| {
        two_inside.transaction(move |txn| {
            txn.put("inner", "v").unwrap();
            one_inside.put("refused", "v")
        })
    });
    assert_reentrant(nested.unwrap());
    assert_eq!(two.get("inner").unwrap().as_deref(), Some(&b"v"[..]));
    assert_still_working(&one, "refused");
}

#[test]
fn a_panicking_transaction_leaves_its_thread_free_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A lone caller leads its own group: this thread runs the closure and carries the mark.
    let panicked = catch_unwind(AssertUnwindSafe(|| store.transaction(|_| -> () { panic!("inside") })));
    assert!(panicked.is_err(), "the closure's panic resumes in the caller");
    store.put("after", "ok").unwrap();
    assert_eq!(store.get("after").unwrap().as_deref(), Some(&b"ok"[..]));
}
