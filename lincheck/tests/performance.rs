//! The search stays cheap on histories the size of a cluster test's, counted in steps (never in
//! time, which depends on the machine). Each budget is about twice the most any of five seeds
//! took when it was set, so a change that makes the search much slower fails here.

mod common;

use common::generate::{linearizable_history, Shape};
use common::{get, KvOp, Rng};
use ferrocask_lincheck::models::kv::KvModel;
use ferrocask_lincheck::{check, Verdict};

const TEN_KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
/// 10 keys: 2,450 to 2,539 steps measured, about 1.25 a operation.
const TEN_KEYS_BUDGET: u64 = 5_000;
/// One hot key (every operation concurrent with up to four others on it): 12,459 to 18,947.
const HOT_KEY_BUDGET: u64 = 40_000;
/// A read of a value never written, at the end: the search must exhaust its key's orders first;
/// 92,602 to 272,693 measured.
const STALE_READ_BUDGET: u64 = 600_000;

/// 2,000 operations by 5 clients (one in 20 with an unknown outcome) from a real execution.
fn workload(seed: u64, keys: &'static [&'static str]) -> Vec<KvOp> {
    let shape = Shape { ops: 2_000, clients: 5, keys, unknown_one_in: 20, max_gap: 3, max_duration: 10 };
    linearizable_history(&mut Rng::new(seed), &shape)
}

/// The verdict's kind, and the steps it took, printed for `--nocapture`.
fn decide(history: &[KvOp], budget: u64) -> &'static str {
    let report = check(&KvModel, history, budget).expect("a well-formed history");
    let kind = match report.verdict {
        Verdict::Linearizable => "Linearizable",
        Verdict::NotLinearizable(_) => "NotLinearizable",
        Verdict::Undecided { .. } => "Undecided",
    };
    eprintln!("{} operations: {kind} in {} steps (budget {budget})", history.len(), report.steps);
    kind
}

#[test]
fn five_clients_2000_operations_on_10_keys_are_linearizable_within_5000_steps() {
    for seed in 1..=5 {
        assert_eq!(decide(&workload(seed, TEN_KEYS), TEN_KEYS_BUDGET), "Linearizable", "seed {seed}");
    }
}

#[test]
fn five_clients_2000_operations_on_one_hot_key_are_linearizable_within_40000_steps() {
    for seed in 1..=5 {
        assert_eq!(decide(&workload(seed, &["hot"]), HOT_KEY_BUDGET), "Linearizable", "seed {seed}");
    }
}

#[test]
fn one_impossible_read_after_2000_operations_is_found_within_600000_steps() {
    for seed in 1..=5 {
        let mut history = workload(seed, TEN_KEYS);
        let last = history.iter().map(|op| op.outcome.returned().unwrap_or(op.invoke)).max().unwrap_or(0);
        history.push(get(9, "k3", Some("never written"), last + 1, last + 2));
        assert_eq!(decide(&history, STALE_READ_BUDGET), "NotLinearizable", "seed {seed}");
    }
}
