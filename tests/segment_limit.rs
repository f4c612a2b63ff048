//! Issue 26: an index entry names its segment by a 20-bit slot, so a store may hold at most
//! `format::LIVE_SEGMENTS_MAX` live segments. A write that would need one more fails with
//! `Error::TooManySegments` (it used to panic in the segment table), nothing of it written,
//! the store still serving reads and accepting writes that fit the active segment; compaction
//! makes room, and writes go on; a reopen finds exactly what was acknowledged. The limit is
//! lowered (`Options::live_segments_max`, hidden) so the tests reach it with a few segments.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use ferrocask::testing::SimFs;
use ferrocask::{Error, Options, Store};

const LIMIT: usize = 4;

fn options() -> Options {
    Options { live_segments_max: LIMIT, ..common::tiny_segments() }
}

/// Puts 3 KiB values under keys cycling through `keys` until a put fails, recording what was
/// acknowledged; returns the error.
fn fill_until_refused(store: &Store, live: &mut BTreeMap<Vec<u8>, Vec<u8>>, keys: u32) -> Error {
    for i in 0..10_000u32 {
        let key = format!("key-{:03}", i % keys).into_bytes();
        let value = vec![i as u8; 3 << 10];
        match store.put(&key, &value) {
            Ok(()) => {
                live.insert(key, value);
            }
            Err(e) => return e,
        }
    }
    panic!("the limit of {LIMIT} segments was never reached");
}

fn assert_holds(store: &Store, live: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(store.len(), live.len());
    for (k, v) in live {
        assert_eq!(store.get(k).unwrap().as_deref(), Some(&v[..]), "{}", String::from_utf8_lossy(k));
    }
}

#[test]
fn a_write_needing_a_segment_past_the_limit_fails_typed_and_the_store_keeps_serving() {
    let fs = SimFs::new();
    let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
    let mut live = BTreeMap::new();
    let error = fill_until_refused(&store, &mut live, 8);
    match &error {
        Error::TooManySegments { segments, max } => assert_eq!((*segments, *max), (LIMIT, LIMIT)),
        other => panic!("expected TooManySegments, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("compact") && message.contains("segment_bytes"), "{message}");
    assert_eq!(store.stats().segments, LIMIT);
    assert_holds(&store, &live);
    // Not poisoned: a write that fits the active segment still goes through.
    store.put(b"small", b"fits").unwrap();
    live.insert(b"small".to_vec(), b"fits".to_vec());
    assert!(matches!(store.put(b"big", vec![1; 3 << 10]), Err(Error::TooManySegments { .. })));
    assert_eq!(store.get(b"big").unwrap(), None, "a refused write leaves nothing");

    // Eight keys overwritten over four segments: compaction merges them into fewer.
    store.compact().unwrap();
    assert!(store.stats().segments < LIMIT, "{} segments after compaction", store.stats().segments);
    assert_holds(&store, &live);
    store.put(b"big", vec![1; 3 << 10]).unwrap();
    live.insert(b"big".to_vec(), vec![1; 3 << 10]);
    assert_holds(&store, &live);

    drop(store);
    let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
    assert_holds(&store, &live);
}

/// The refusal is consistent across a reopen at the limit (the writer counts the segments
/// recovery found), and a batch is refused whole.
#[test]
fn the_limit_holds_across_reopen_and_refuses_a_batch_whole() {
    let fs = SimFs::new();
    let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
    let mut live = BTreeMap::new();
    assert!(matches!(fill_until_refused(&store, &mut live, 8), Error::TooManySegments { .. }));
    drop(store);
    let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
    assert_holds(&store, &live);
    let mut batch = ferrocask::Batch::new();
    batch.put(b"a", vec![2; 3 << 10]).put(b"b", vec![3; 3 << 10]);
    let refused = store.write(batch);
    assert!(matches!(refused, Err(Error::TooManySegments { .. })), "{refused:?}");
    assert_eq!((store.get(b"a").unwrap(), store.get(b"b").unwrap()), (None, None));
    drop(store);
    let store = Store::open_on(fs.clone(), Path::new("/db"), options()).unwrap();
    assert_holds(&store, &live);
}

#[test]
fn a_limit_outside_its_range_is_refused_at_open() {
    for bad in [0, 1, ferrocask::format::LIVE_SEGMENTS_MAX + 1] {
        let fs = SimFs::new();
        let options = Options { live_segments_max: bad, ..options() };
        let opened = Store::open_on(fs, Path::new("/db"), options);
        assert!(matches!(opened, Err(Error::InvalidOptions(_))), "{bad}");
    }
}
