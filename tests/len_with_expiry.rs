//! `len` counts live keys without walking the index (see the unit test
//! `engine::tests::len_visits_no_index_entry_with_expiring_keys`); these tests check that the
//! count is right: against a model, across puts, overwrites, deletes, expiring writes from every
//! path (TTL puts, batches, transactions keeping or replacing an expiry), a clock moved forward
//! and back, compaction and reopen (hint files included), on both backends.
//!
//! Adversary: the clock and the store's own maintenance. Expired records stay in the index until
//! compaction or reopen drops them, and a clock set back makes them live again until then; every
//! path that adds, replaces, moves or removes an entry must keep the count of expiries in step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::testing::Rng;
use ferrocask::{Batch, Expiry, ManualClock, Options, Store};

mod common;

const T0: u64 = 1_700_000_000_000;
/// Keys are drawn from this many, so that writes overwrite and delete each other's keys.
const KEYS: u64 = 40;
/// Operations per run.
const STEPS: usize = 700;
/// TTLs are 1..=TTL_MS_MAX ms, so keys expire within a few clock moves.
const TTL_MS_MAX: u64 = 60;

/// What the store should hold: key -> expiry (ms since the epoch, 0 = never).
#[derive(Default)]
struct Model {
    keys: BTreeMap<Vec<u8>, u64>,
    /// The clock is never set back before the last compaction or reopen: those drop expired
    /// records from the index (reopen keeps them on disk, so a clock set back before it would
    /// bring back a record the model forgot; that is expiry's business, not `len`'s).
    floor_ms: u64,
}

impl Model {
    fn is_live(expires_ms: u64, now_ms: u64) -> bool {
        expires_ms == 0 || expires_ms > now_ms
    }

    fn live_len(&self, now_ms: u64) -> usize {
        self.keys.values().filter(|&&e| Model::is_live(e, now_ms)).count()
    }

    fn live_expiry(&self, key: &[u8], now_ms: u64) -> Option<u64> {
        self.keys.get(key).copied().filter(|&e| Model::is_live(e, now_ms))
    }

    /// Compaction and reopen drop expired records for good: a clock set back later does not
    /// bring them back.
    fn forget_expired(&mut self, now_ms: u64) {
        self.keys.retain(|_, e| Model::is_live(*e, now_ms));
        self.floor_ms = now_ms;
    }
}

fn options(clock: &Arc<ManualClock>) -> Options {
    Options { clock: clock.clone(), auto_compact: false, ..common::small_segments() }
}

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("key:{}", rng.below(KEYS)).into_bytes()
}

/// One random step on `store` and `model` (reopening is the caller's); returns a label for
/// failure messages.
fn step(store: &Store, model: &mut Model, clock: &ManualClock, rng: &mut Rng) -> String {
    let now = clock.now_ms_for_test();
    let value = vec![b'v'; rng.upto(200)];
    match rng.below(100) {
        0..=24 => {
            let k = key(rng);
            store.put(&k, &value).unwrap();
            model.keys.insert(k, 0);
            "put".into()
        }
        25..=49 => {
            let (k, ttl) = (key(rng), 1 + rng.below(TTL_MS_MAX));
            store.put_with_ttl(&k, &value, Duration::from_millis(ttl)).unwrap();
            model.keys.insert(k, now + ttl);
            format!("put_with_ttl {ttl} ms")
        }
        50..=61 => {
            let k = key(rng);
            store.delete(&k).unwrap();
            model.keys.remove(&k);
            "delete".into()
        }
        62..=69 => {
            // A batch: one key already expired on arrival (an expiry in the past), one never.
            let (past, never) = (key(rng), key(rng));
            let mut batch = Batch::new();
            batch.put_with_expiry(&past, &value, Expiry::At(now - 1)).put(&never, &value);
            store.write(batch).unwrap();
            model.keys.insert(past, now - 1);
            model.keys.insert(never, 0);
            "batch with a past expiry".into()
        }
        70..=77 => {
            // A transaction keeping the key's expiry, checking its own count of live keys.
            let k = key(rng);
            let kept = model.live_expiry(&k, now).unwrap_or(0);
            model.keys.insert(k.clone(), kept);
            let expected = model.live_len(now);
            let seen = store
                .transaction(move |txn| {
                    txn.put_with_expiry(&k, b"kept", Expiry::Keep).unwrap();
                    txn.len()
                })
                .unwrap();
            assert_eq!(seen, expected, "Txn::len after a write keeping the expiry");
            "transaction keeping the expiry".into()
        }
        78..=89 => {
            let ms = rng.below(TTL_MS_MAX / 2);
            clock.advance_ms(ms);
            format!("clock +{ms} ms")
        }
        90..=93 => {
            let back_ms = rng.below(TTL_MS_MAX / 2).min(now - model.floor_ms);
            clock.set_ms(now - back_ms);
            format!("clock -{back_ms} ms")
        }
        _ => {
            store.compact().unwrap();
            model.forget_expired(now);
            "compact".into()
        }
    }
}

/// In how many steps of 100 the store is closed and reopened.
const REOPEN_PERCENT: u64 = 3;

/// `now_ms` without the `Clock` trait in scope at every call.
trait NowForTest {
    fn now_ms_for_test(&self) -> u64;
}

impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> u64 {
        ferrocask::Clock::now_ms(self)
    }
}

both_backends! {
    fn len_matches_a_model_across_writes_expiry_compaction_and_reopen(b) {
        for seed in 1..=3u64 {
            let clock = Arc::new(ManualClock::new(T0));
            let dir = b.path(&format!("store-{seed}"));
            let reopen = || b.open_with(&dir, options(&clock)).unwrap();
            let mut store = reopen();
            let mut model = Model { floor_ms: T0, ..Model::default() };
            let mut rng = Rng::new(seed);
            let mut segments_from_hints = 0;
            for i in 0..STEPS {
                let now = clock.now_ms_for_test();
                let what = if rng.chance(REOPEN_PERCENT) {
                    // Dropping writes the hint files of sealed segments: the reopen loads them
                    // from hints, and open drops the expired records.
                    drop(store);
                    store = reopen();
                    segments_from_hints += store.recovery_report().segments_from_hints;
                    model.forget_expired(now);
                    "reopen".to_string()
                } else {
                    step(&store, &mut model, &clock, &mut rng)
                };
                let now = clock.now_ms_for_test();
                assert_eq!(store.len(), model.live_len(now), "seed {seed}, step {i} ({what})");
                assert_eq!(store.is_empty(), model.live_len(now) == 0, "seed {seed}, step {i} ({what})");
            }
            assert!(segments_from_hints > 0, "seed {seed}: some reopen loaded expiries from hint files");
            // Every key the count includes is one a read finds, and the other way round.
            assert_eq!(store.keys().count(), store.len(), "seed {seed}: len agrees with iteration");
        }
    }
}
