//! One compaction run never takes more extra disk than its bound, at any store size: its outputs
//! (which coexist with its inputs until it commits) are at most
//! `min(compaction_input_bytes_max, live / 8)` plus one segment (DESIGN.md, "Bounded disk"), and
//! back-to-back runs still reclaim everything due. Asserted from the store's counters
//! (`CompactionReport::bytes_written`, `Stats::compaction_peak_output_bytes`, `Stats::live_bytes`).

mod common;

use ferrocask::{Batch, Options, Store};

/// Segment size of these stores, in bytes: small, so a few MB of data spans dozens of segments.
const SEGMENT_BYTES: u64 = 64 << 10;
/// The fraction of the store's live bytes one run may take, as DESIGN.md states it.
const RUN_LIVE_DIVISOR: u64 = 8;
/// Bytes of each value.
const VALUE_BYTES: usize = 1000;
/// Keys written per batch (one frame), to keep the number of syncs low.
const KEYS_PER_BATCH: usize = 32;
/// More automatic runs than any of these stores can need: a loop past it is a policy that never
/// settles.
const RUNS_MAX: usize = 1000;

fn options(input_bytes_max: u64) -> Options {
    Options {
        segment_bytes: SEGMENT_BYTES,
        compact_dead_bytes_min: 0,
        compaction_input_bytes_max: input_bytes_max,
        // Without it, `compact_if_due` returning `None` means "nothing due", never "the
        // background thread holds the compaction lock writing hints".
        background_thread: false,
        ..common::small_segments()
    }
}

/// The most extra disk one run may take in a store of `live` bytes.
fn bound(input_bytes_max: u64, live: u64) -> u64 {
    input_bytes_max.min(live / RUN_LIVE_DIVISOR) + SEGMENT_BYTES
}

/// Writes `keys` keys with value `round` (a byte repeated), for the keys `which` picks.
fn write_round(store: &Store, keys: usize, round: u8, which: impl Fn(usize) -> bool) {
    let picked: Vec<usize> = (0..keys).filter(|&i| which(i)).collect();
    for chunk in picked.chunks(KEYS_PER_BATCH) {
        let mut batch = Batch::new();
        for &i in chunk {
            batch.put(format!("key-{i:06}"), vec![round; VALUE_BYTES]);
        }
        store.write(batch).unwrap();
    }
}

fn data_bytes(store: &Store) -> u64 {
    store.stats().segment_details.iter().map(|s| s.data_bytes).sum()
}

/// Writes every key, then overwrites two keys in three, so every segment of the first round is
/// two-thirds dead; then runs automatic compaction until nothing is due and a manual one, checking
/// every run against the bound of the store's live bytes before it.
fn runs_stay_within_the_bound(keys: usize, input_bytes_max: u64) {
    let context = format!("{keys} keys, cap {input_bytes_max}");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options(input_bytes_max)).unwrap();
    write_round(&store, keys, 1, |_| true);
    write_round(&store, keys, 2, |i| i % 3 != 0);
    let before = data_bytes(&store);
    let mut runs = 0;
    loop {
        let live = store.stats().live_bytes;
        let Some(report) = store.compact_if_due().unwrap() else { break };
        runs += 1;
        assert!(runs < RUNS_MAX, "{context}: compaction never settles");
        assert!(
            report.bytes_written <= bound(input_bytes_max, live),
            "{context}: run {runs} wrote {} bytes, over its bound {} (live {live}): {}",
            report.bytes_written,
            bound(input_bytes_max, live),
            report.reason
        );
    }
    let stats = store.stats();
    assert!(runs >= 2, "{context}: the bound split the work into runs (got {runs})");
    assert!(
        stats.compaction_peak_output_bytes <= bound(input_bytes_max, stats.live_bytes),
        "{context}: peak {} over the bound {}",
        stats.compaction_peak_output_bytes,
        bound(input_bytes_max, stats.live_bytes)
    );
    // Kept up: the first round's dead two-thirds are gone (data was 5/3 of live before).
    let after = data_bytes(&store);
    assert!(
        after <= stats.live_bytes + stats.live_bytes / RUN_LIVE_DIVISOR,
        "{context}: {after} bytes of segment data for {} live (before: {before})",
        stats.live_bytes
    );

    // A manual compaction works through the store in runs under the same bound.
    write_round(&store, keys, 3, |i| i % 2 == 0);
    let live = store.stats().live_bytes;
    let report = store.compact().unwrap();
    assert!(report.runs >= 2, "{context}: manual compaction in {} runs", report.runs);
    let peak = store.stats().compaction_peak_output_bytes;
    assert!(
        peak <= bound(input_bytes_max, live),
        "{context}: manual peak {peak} over {}",
        bound(input_bytes_max, live)
    );
    for i in [0, 1, 2, 3, keys - 1] {
        let want = if i % 2 == 0 {
            3
        } else if i % 3 != 0 {
            2
        } else {
            1
        };
        assert_eq!(
            store.get(format!("key-{i:06}")).unwrap().as_deref(),
            Some(&vec![want; VALUE_BYTES][..]),
            "{context}"
        );
    }
}

/// About 1 MB live: an eighth of it is two segments.
#[test]
fn a_run_takes_at_most_an_eighth_of_a_small_store() {
    runs_stay_within_the_bound(1_000, 256 << 20);
}

/// About 4 MB live: an eighth of it is eight segments.
#[test]
fn a_run_takes_at_most_an_eighth_of_a_larger_store() {
    runs_stay_within_the_bound(4_000, 256 << 20);
}

/// The configured cap still holds where it is below an eighth of the store.
#[test]
fn a_run_takes_at_most_the_cap_when_it_is_smaller() {
    runs_stay_within_the_bound(4_000, 256 << 10);
}
