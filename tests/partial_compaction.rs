//! Compaction that takes only some segments: a deleted or expired key never comes back whichever
//! of its records are compacted first, the per-segment accounting stays exact, and every run
//! stays within its input cap.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::testing::{CrashMode, SimFs};
use ferrocask::{ManualClock, Options, Store};
use proptest::prelude::*;

const DIR: &str = "/db";
const SEGMENT: u64 = 16 << 10;

/// One-segment runs, no background thread: every compaction is the test's own call.
fn options(clock: &Arc<ManualClock>) -> Options {
    Options {
        segment_bytes: SEGMENT,
        preallocate_bytes: 0,
        value_bytes_max: 4 << 10,
        auto_compact: false,
        background_thread: false,
        compaction_input_bytes_max: SEGMENT,
        compact_dead_bytes_min: 0,
        clock: clock.clone(),
        ..Options::default()
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

fn open(fs: &Arc<SimFs>, options: &Options) -> Store {
    Store::open_on(fs.clone(), Path::new(DIR), options.clone()).expect("open")
}

fn value(tag: &str, len: usize) -> Vec<u8> {
    let mut v = tag.as_bytes().to_vec();
    v.resize(len, b'.');
    v
}

/// Fills the rest of the active segment with keys that stay live (`cold{i}`), so it is sealed
/// holding mostly live data. Returns the keys written.
fn cold_segment(store: &Store, from: usize) -> Vec<String> {
    let keys: Vec<String> = (from..from + 15).map(|i| format!("cold{i}")).collect();
    for k in &keys {
        store.put(k, value(k, 1000)).unwrap();
    }
    keys
}

/// Fills about one segment with overwrites of one key, so that segment is sealed nearly all dead.
fn hot_segment(store: &Store) {
    for i in 0..16 {
        store.put("hot", value(&format!("hot{i}"), 1000)).unwrap();
    }
}

/// Writes enough after the hot segment that it is no longer young (`YOUNG_AGE_FACTOR`: twice
/// its own record count must follow it before its dead ratio counts): three cold segments.
fn age(store: &Store, from: usize) -> Vec<String> {
    (0..3).flat_map(|n| cold_segment(store, from + 100 * n)).collect()
}

/// Reopens after a crash that keeps only what was synced (every acknowledged write, here).
fn crash_and_reopen(fs: &Arc<SimFs>, store: Store, options: &Options) -> Store {
    drop(store);
    fs.crash(CrashMode::Nothing, 0);
    open(fs, options)
}

fn assert_cold(store: &Store, keys: &[String], context: &str) {
    for k in keys {
        assert_eq!(store.get(k).unwrap().map(|v| v.into_vec()), Some(value(k, 1000)), "{context}: {k}");
    }
}

/// The tombstone's segment is compacted first (it is nearly all dead), the segment with the
/// value it deletes later (it is nearly all live, so the policy leaves it): the tombstone must
/// be kept until then, across a reopen.
#[test]
fn a_tombstone_compacted_before_the_value_it_deletes_is_kept() {
    let clock = clock();
    let options = options(&clock);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    store.put("k", value("old", 1000)).unwrap();
    let cold = cold_segment(&store, 0);
    store.delete("k").unwrap();
    hot_segment(&store);
    let more_cold = age(&store, 100);
    let report = store.compact_if_due().unwrap().expect("the hot segment is due");
    assert!(report.tombstones_kept >= 1, "the tombstone shadows a value in a segment left alone: {report:?}");
    assert_eq!(store.get("k").unwrap(), None);
    let store = crash_and_reopen(&fs, store, &options);
    assert_eq!(store.get("k").unwrap(), None, "after the tombstone's run and a reopen");
    // Now everything, in one-segment runs: the value goes, and so may the tombstone.
    let report = store.compact().unwrap();
    assert!(report.runs > 1, "{report:?}");
    let store = crash_and_reopen(&fs, store, &options);
    assert_eq!(store.get("k").unwrap(), None, "after every segment was compacted and a reopen");
    assert_cold(&store, &cold, "after compaction");
    assert_cold(&store, &more_cold, "after compaction");
    // With every value of "k" gone, a further compaction has nothing to keep the tombstone for.
    store.compact().unwrap();
    let store = crash_and_reopen(&fs, store, &options);
    assert_eq!(store.get("k").unwrap(), None);
    assert_eq!(store.stats().segment_details.iter().map(|s| s.tombstones).sum::<u64>(), 0, "the tombstone is gone");
}

/// The value's segment is compacted first (nearly all dead), the tombstone's later.
#[test]
fn a_value_compacted_before_its_tombstone_stays_deleted() {
    let clock = clock();
    let options = options(&clock);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    store.put("k", value("old", 1000)).unwrap();
    hot_segment(&store);
    store.delete("k").unwrap();
    let cold = cold_segment(&store, 0);
    let more_cold = age(&store, 100);
    let report = store.compact_if_due().unwrap().expect("the value's segment is due");
    assert!(report.records_dropped >= 1, "{report:?}");
    let store = crash_and_reopen(&fs, store, &options);
    assert_eq!(store.get("k").unwrap(), None, "after the value's run and a reopen");
    store.compact().unwrap();
    let store = crash_and_reopen(&fs, store, &options);
    assert_eq!(store.get("k").unwrap(), None, "after the tombstone's run and a reopen");
    assert_cold(&store, &cold, "after compaction");
    assert_cold(&store, &more_cold, "after compaction");
}

/// The newest record of "k" is an expired put; the older, unexpired value sits in a segment the
/// policy leaves alone. Compacting the expired put's segment must keep something that shadows
/// the old value (here: the put written as a tombstone), both while the index still points at
/// the expired put and after a reopen swept it from the index.
#[test]
fn an_expired_put_compacted_before_the_older_value_keeps_shadowing_it() {
    for reopen_first in [false, true] {
        let clock = clock();
        let options = options(&clock);
        let fs = SimFs::new();
        let mut store = open(&fs, &options);
        store.put("k", value("forever", 1000)).unwrap();
        let cold = cold_segment(&store, 0);
        store.put_with_ttl("k", value("brief", 1000), Duration::from_secs(1)).unwrap();
        hot_segment(&store);
        age(&store, 100);
        clock.advance_ms(2_000);
        if reopen_first {
            store = crash_and_reopen(&fs, store, &options);
        }
        assert_eq!(store.get("k").unwrap(), None);
        let report = store.compact_if_due().unwrap().expect("the hot segment is due");
        assert!(report.tombstones_kept >= 1, "reopen first: {reopen_first}: {report:?}");
        let store = crash_and_reopen(&fs, store, &options);
        assert_eq!(store.get("k").unwrap(), None, "reopen first: {reopen_first}: the old value came back");
        store.compact().unwrap();
        let store = crash_and_reopen(&fs, store, &options);
        assert_eq!(store.get("k").unwrap(), None, "reopen first: {reopen_first}: after compacting everything");
        assert_cold(&store, &cold, "after compaction");
    }
}

/// A sealed segment whose records are all overwritten is removed without being read, and a
/// segment with nothing to reclaim is left as it is.
#[test]
fn a_fully_dead_segment_is_dropped_unread_and_a_fully_live_one_stays() {
    let clock = clock();
    let options = options(&clock);
    let fs = SimFs::new();
    let store = open(&fs, &options);
    let cold = cold_segment(&store, 0);
    // Compacted once, the cold keys sit in a segment with nothing to reclaim.
    store.compact().unwrap();
    let cold_segment_id = store.stats().segment_details[0].id;
    for i in 0..15 {
        store.put(format!("doomed{i}"), value("first", 1000)).unwrap();
    }
    for i in 0..15 {
        store.put(format!("doomed{i}"), value("second", 1000)).unwrap();
    }
    let report = store.compact().unwrap();
    assert!(report.segments_dropped >= 1, "{report:?}");
    let after = store.stats();
    assert_eq!(after.segment_details[0].id, cold_segment_id, "the fully live segment was rewritten: {report:?}");
    assert_cold(&store, &cold, "after compaction");
    for i in 0..15 {
        assert_eq!(store.get(format!("doomed{i}")).unwrap().map(|v| v.into_vec()), Some(value("second", 1000)));
    }
}

/// `compact()` over many segments works in runs of at most the cap: no run has more output on
/// disk than the cap plus one segment.
#[test]
fn every_run_stays_within_the_input_cap() {
    let clock = clock();
    let options = Options { compaction_input_bytes_max: 3 * SEGMENT, ..options(&clock) };
    let fs = SimFs::new();
    let store = open(&fs, &options);
    for round in 0..2 {
        for i in 0..150 {
            store.put(format!("key{i}"), value(&format!("{round}"), 1000)).unwrap();
        }
    }
    let report = store.compact().unwrap();
    assert!(report.runs > 1, "{report:?}");
    let stats = store.stats();
    assert!(
        stats.compaction_peak_output_bytes <= 3 * SEGMENT + SEGMENT,
        "a run wrote {} bytes before removing its inputs",
        stats.compaction_peak_output_bytes
    );
    for i in 0..150 {
        assert_eq!(store.get(format!("key{i}")).unwrap().map(|v| v.into_vec()), Some(value("1", 1000)));
    }
}

#[derive(Clone, Debug)]
enum Step {
    Put { key: u8, len: u16 },
    PutTtl { key: u8, len: u16, ttl_ms: u16 },
    Delete { key: u8 },
    Advance { ms: u16 },
    CompactIfDue,
    Compact,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..24, 100u16..1500).prop_map(|(key, len)| Step::Put { key, len }),
        1 => (0u8..24, 100u16..1500, 1u16..3000).prop_map(|(key, len, ttl_ms)| Step::PutTtl { key, len, ttl_ms }),
        2 => (0u8..24).prop_map(|key| Step::Delete { key }),
        1 => (1u16..2000).prop_map(|ms| Step::Advance { ms }),
        2 => Just(Step::CompactIfDue),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

/// What the model holds for a key: the value and its expiry (Unix ms, 0 = never).
type Model = BTreeMap<u8, (Vec<u8>, u64)>;

fn check_against_model(store: &Store, model: &Model, now_ms: u64, context: &str) -> Result<(), TestCaseError> {
    for key in 0u8..24 {
        let expected = model.get(&key).filter(|(_, exp)| *exp == 0 || *exp > now_ms).map(|(v, _)| v.clone());
        let got = store.get([key]).unwrap().map(|v| v.into_vec());
        prop_assert_eq!(got.map(|v| v.len()), expected.as_ref().map(|v| v.len()), "{}: key {}", context, key);
    }
    Ok(())
}

/// Per-segment accounting of puts and records as the store keeps it while running, to compare
/// with what recovery counts from the files. (Kept tombstones are not compared: they stay
/// counted until their segment is compacted again; nor expired puts: the running store counts
/// one live until compaction, recovery sweeps it at once.)
fn accounting(store: &Store) -> Vec<(u64, u64, u64, u64, u64)> {
    store
        .stats()
        .segment_details
        .iter()
        .map(|s| {
            (s.id, s.data_bytes, s.live_records - s.kept_tombstones, s.live_records + s.dead_records, s.tombstones)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Puts, deletes, TTL expiry, partial and full compactions, and crashes with a reopen, in
    /// any order: the store always reads as the model, and (without TTLs in play) its
    /// per-segment accounting after a reopen is what it was before.
    #[test]
    fn partial_compactions_match_the_model_and_keep_exact_accounting(steps in prop::collection::vec(step(), 1..120)) {
        let clock = clock();
        let options = Options { write_hints: true, ..options(&clock) };
        let fs = SimFs::new();
        let mut store = open(&fs, &options);
        let mut model = Model::new();
        let mut ttl_used = false;
        for (i, s) in steps.iter().enumerate() {
            let now = clock.now_ms();
            match *s {
                Step::Put { key, len } => {
                    let v = vec![key; len as usize];
                    store.put([key], &v).unwrap();
                    model.insert(key, (v, 0));
                }
                Step::PutTtl { key, len, ttl_ms } => {
                    let v = vec![key ^ 0x55; len as usize];
                    store.put_with_ttl([key], &v, Duration::from_millis(u64::from(ttl_ms))).unwrap();
                    model.insert(key, (v, now + u64::from(ttl_ms)));
                    ttl_used = true;
                }
                Step::Delete { key } => {
                    store.delete([key]).unwrap();
                    model.remove(&key);
                }
                Step::Advance { ms } => clock.advance_ms(u64::from(ms)),
                Step::CompactIfDue => {
                    store.compact_if_due().unwrap();
                }
                Step::Compact => {
                    store.compact().unwrap();
                }
                Step::Reopen => {
                    let before = accounting(&store);
                    store = crash_and_reopen(&fs, store, &options);
                    if !ttl_used {
                        prop_assert_eq!(accounting(&store), before, "step {}: accounting changed across a reopen", i);
                    }
                }
            }
            check_against_model(&store, &model, clock.now_ms(), &format!("after step {i} {s:?}"))?;
        }
        let store = crash_and_reopen(&fs, store, &options);
        check_against_model(&store, &model, clock.now_ms(), "after the final reopen")?;
    }
}

use ferrocask::Clock as _;
