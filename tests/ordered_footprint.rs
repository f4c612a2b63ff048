//! What the ordered set of an ordered prefix costs in RAM, measured by counting the bytes the
//! process has allocated (a counting global allocator: the bytes asked for, before the system
//! allocator's own rounding), and checked against what `Stats::index_bytes` reports for it
//! (DESIGN.md, "Ordered prefixes"). One test in its own binary, so that no other test allocates
//! meanwhile; the store runs no background thread.

use ferrocask::testing::Rng;
use ferrocask::{Batch, Options, Store};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live_bytes;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// Keys in each measured store.
const KEYS: usize = 100_000;

/// The declared prefix: the server's hash members.
const PREFIX: &[u8] = b"\xff\xfdh";

/// A member key as the server writes it: prefix, key length, key, 8-byte generation, member.
/// 30 bytes.
fn member_key(i: usize) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.push(9);
    k.extend_from_slice(format!("user:{:04}", i / 1000).as_bytes());
    k.extend_from_slice(&1u64.to_be_bytes());
    k.extend_from_slice(format!("m{:08}", i).as_bytes());
    k
}

/// One stripe, so that the hash table's size depends only on the number of entries: the same
/// with and without the prefix, and the difference is the ordered set alone.
fn options(ordered: bool) -> Options {
    let options = Options { stripes: 1, background_thread: false, auto_compact: false, ..Options::default() };
    if ordered {
        options.ordered_prefix(PREFIX)
    } else {
        options
    }
}

/// Bytes allocated by writing the keys in `order` to a new store, and the store's reported
/// index bytes then.
fn written(ordered: bool, order: &[usize]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options(ordered)).unwrap();
    let before = live_bytes();
    for chunk in order.chunks(1000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(member_key(i), b"v");
        }
        store.write(batch).unwrap();
    }
    (live_bytes() - before, store.stats().index_bytes)
}

/// Bytes allocated by opening a store holding the keys (the set built from the index at open),
/// and the store's reported index bytes then.
fn reopened(ordered: bool, dir: &std::path::Path) -> (usize, usize) {
    let before = live_bytes();
    let store = Store::open_with(dir, options(ordered)).unwrap();
    let allocated = live_bytes() - before;
    let index_bytes = store.stats().index_bytes;
    drop(store);
    (allocated, index_bytes)
}

/// Per key, what the set costs and what is reported for it; prints both.
fn per_key(what: &str, ordered: (usize, usize), plain: (usize, usize)) -> (f64, f64) {
    let measured = (ordered.0 - plain.0) as f64 / KEYS as f64;
    let reported = (ordered.1 - plain.1) as f64 / KEYS as f64;
    println!("{what}: {measured:.1} bytes per key allocated, {reported:.1} reported");
    (measured, reported)
}

#[test]
fn the_ordered_set_costs_what_stats_report_per_key() {
    let ascending: Vec<usize> = (0..KEYS).collect();
    let mut shuffled = ascending.clone();
    let mut rng = Rng::new(24);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let key_bytes = member_key(0).len() as f64;
    let mut figures = vec![
        per_key("written in key order", written(true, &ascending), written(false, &ascending)),
        per_key("written in random order", written(true, &shuffled), written(false, &shuffled)),
    ];
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with(dir.path(), options(false)).unwrap();
        let mut batch = Batch::new();
        for i in 0..KEYS {
            batch.put(member_key(i), b"v");
        }
        store.write(batch).unwrap();
    }
    figures.push(per_key("rebuilt at open", reopened(true, dir.path()), reopened(false, dir.path())));
    for (measured, reported) in figures {
        assert!(measured > key_bytes, "the set holds each key's {key_bytes} bytes: {measured}");
        let error = (reported - measured).abs() / measured;
        assert!(error < 0.2, "reported {reported:.1} bytes per key, allocated {measured:.1}");
    }
}
