//! What the hash index costs in RAM per key, measured by counting the bytes the process has
//! allocated (a counting global allocator, as `tests/ordered_footprint.rs`: the bytes asked for,
//! before the system allocator's rounding), for a store built three ways: by random puts, by
//! open from hint files, and by open replaying the segments. Checked against what
//! `Stats::index_bytes` reports, and against the bound of issue 26 (DESIGN.md, "The index").
//! One test in its own binary, so that no other test allocates meanwhile; the store runs no
//! background thread.
//!
//! `FERROCASK_FOOTPRINT_KEYS=1000000 cargo test --release --test index_footprint -- --nocapture`
//! prints the figures for a million keys (BENCHMARKS.md). The default, 120,000 keys, is the worst
//! case: with 256 stripes, most tables have just doubled (load factor about 0.46).

use std::path::Path;

use ferrocask::testing::{Footprint, Rng};
use ferrocask::{Batch, Options, Store};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{live_bytes, peak_since, reset_peak};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// The bound of issue 26: bytes of RAM per 16-byte key in the hash index, at any load factor
/// the tables' growth by doubling leaves.
const INDEX_BYTES_PER_KEY_MAX: f64 = 32.0;

/// 16-byte keys, as the benchmark writes them.
fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    k[4..].copy_from_slice(format!("{i:012}").as_bytes());
    k
}

fn keys() -> u64 {
    std::env::var("FERROCASK_FOOTPRINT_KEYS").ok().and_then(|n| n.parse().ok()).unwrap_or(120_000)
}

/// Default stripes and tables; nothing in the background, no compaction.
fn options() -> Options {
    Options { background_thread: false, auto_compact: false, ..Options::default() }
}

/// One way of building the index, with what it allocated and what the store reports.
struct Measured {
    how: &'static str,
    allocated: usize,
    /// The most allocated at any moment meanwhile (open's transient buffers, a table's copy
    /// while it doubles).
    peak: usize,
    footprint: Footprint,
    keys: u64,
}

impl Measured {
    fn per_key(&self) -> f64 {
        self.allocated as f64 / self.keys as f64
    }

    fn print(&self) {
        let f = &self.footprint;
        let n = self.keys as f64;
        println!(
            "{:<16} {:>5.1} B/key allocated (peak {:>5.1}), {:>5.1} reported: entries {:.1} ({} B each), \
             free slots {:.1}, control {:.1}, expiries {:.1}; load factor {:.2}",
            self.how,
            self.per_key(),
            self.peak as f64 / n,
            f.total() as f64 / n,
            (f.entries * f.entry_bytes) as f64 / n,
            f.entry_bytes,
            f.slack_bytes() as f64 / n,
            f.control_bytes as f64 / n,
            f.expiry_bytes as f64 / n,
            f.entries as f64 / f.buckets.max(1) as f64,
        );
    }
}

/// Writes `order`'s keys into a new store at `dir` in batches of 1,000; measures what the index
/// grew by meanwhile (the writer's buffers are reused from batch to batch).
fn random_puts(dir: &Path, order: &[u64]) -> Measured {
    let store = Store::open_with(dir, options()).unwrap();
    let before = reset_peak();
    for chunk in order.chunks(1000) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(key(i), b"v");
        }
        store.write(batch).unwrap();
    }
    // The last batch's buffers are still held by the writer: measured against the store's own
    // count below, they are a few KiB in all.
    let allocated = live_bytes() - before;
    Measured {
        how: "random puts",
        allocated,
        peak: peak_since(before),
        footprint: store.index_footprint(),
        keys: order.len() as u64,
    }
}

/// Opens the store at `dir`; measures what stays allocated, less what opening an empty store
/// keeps (the segment set, the writer's buffers).
fn reopened(how: &'static str, dir: &Path, keys: u64) -> Measured {
    let empty = tempfile::tempdir().unwrap();
    let before = live_bytes();
    let store = Store::open_with(empty.path(), options()).unwrap();
    let baseline = live_bytes() - before;
    drop(store);
    let before = reset_peak();
    let store = Store::open_with(dir, options()).unwrap();
    let allocated = (live_bytes() - before).saturating_sub(baseline);
    let peak = peak_since(before);
    assert_eq!(store.len() as u64, keys);
    Measured { how, allocated, peak, footprint: store.index_footprint(), keys }
}

fn remove_hints(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hint") {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn the_index_takes_at_most_32_bytes_per_key_and_stats_report_it() {
    let n = keys();
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(26);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut figures = vec![random_puts(dir.path(), &order)];
    {
        // Seal everything into compacted segments with hint files.
        let store = Store::open_with(dir.path(), options()).unwrap();
        store.compact().unwrap();
    }
    figures.push(reopened("open from hints", dir.path(), n));
    remove_hints(dir.path());
    figures.push(reopened("open by replay", dir.path(), n));
    println!("{n} keys of 16 B:");
    for m in &figures {
        m.print();
    }
    for m in &figures {
        let reported = m.footprint.total() as f64;
        let error = (reported - m.allocated as f64).abs() / m.allocated as f64;
        assert!(error < 0.05, "{}: reported {reported} bytes, allocated {}", m.how, m.allocated);
        assert!(
            m.per_key() <= INDEX_BYTES_PER_KEY_MAX,
            "{}: {:.1} bytes per key, more than {INDEX_BYTES_PER_KEY_MAX}",
            m.how,
            m.per_key()
        );
    }
}
