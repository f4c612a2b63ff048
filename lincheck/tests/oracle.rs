//! The checker against a brute-force oracle on thousands of random small histories: whatever the
//! search's list, stack and cache do, its verdicts must be those of trying every order.

mod common;

use common::generate::{linearizable_history, mutate, Shape};
use common::oracle::{brute_force, ORACLE_OPS_MAX};
use common::{KvOp, Rng, WholeStore};
use ferrocask_lincheck::models::kv::KvModel;
use ferrocask_lincheck::{check, Counterexample, Model, Verdict};

/// How many random histories are compared.
const HISTORIES: usize = 10_000;
/// Far more than a history of seven operations can take, so no verdict is `Undecided`.
const STEP_BUDGET: u64 = 100_000;

#[derive(Default, Debug)]
struct Figures {
    from_execution: usize,
    linearizable: usize,
    not_linearizable: usize,
    mutated_still_linearizable: usize,
    with_unknown_outcomes: usize,
}

#[test]
fn search_agrees_with_brute_force_on_random_small_histories() {
    let mut rng = Rng::new(0x11c4_ec4e);
    let mut figures = Figures::default();
    for case in 0..HISTORIES {
        let (history, mutated) = random_history(&mut rng);
        let expected = brute_force(&WholeStore, &history);
        let per_key = check(&KvModel, &history, STEP_BUDGET).expect("a well-formed history").verdict;
        let whole = check(&WholeStore, &history, STEP_BUDGET).expect("a well-formed history").verdict;
        let context = format!("case {case} (mutated: {mutated}): {history:#?}");
        assert_eq!(per_key.is_linearizable(), expected, "per-key search vs brute force, {context}");
        assert_eq!(whole.is_linearizable(), expected, "whole-store search vs brute force, {context}");
        assert!(mutated || expected, "a history from a real execution must be linearizable, {context}");
        for verdict in [&per_key, &whole] {
            assert!(!matches!(verdict, Verdict::Undecided { .. }), "{context}");
        }
        if let Verdict::NotLinearizable(counterexample) = &whole {
            assert_prefix_replays(counterexample, &history, &context);
        }
        tally(&mut figures, &history, expected, mutated);
    }
    eprintln!("{HISTORIES} histories: {figures:?}");
    // Both verdicts must be common, or agreement would show little.
    assert!(figures.linearizable >= HISTORIES / 4, "{figures:?}");
    assert!(figures.not_linearizable >= HISTORIES / 5, "{figures:?}");
    assert!(figures.with_unknown_outcomes >= HISTORIES / 5, "{figures:?}");
}

/// The oracle itself can say no: a read of `a` after an acknowledged write of `b`.
#[test]
fn brute_force_rejects_a_stale_read_and_accepts_its_concurrent_twin() {
    use common::{get, set};
    let stale = [set(1, "x", "a", 0, 1), set(1, "x", "b", 2, 3), get(2, "x", Some("a"), 4, 5)];
    assert!(!brute_force(&WholeStore, &stale));
    let concurrent = [set(1, "x", "a", 0, 1), set(1, "x", "b", 2, 5), get(2, "x", Some("a"), 4, 6)];
    assert!(brute_force(&WholeStore, &concurrent));
}

/// One to seven operations by up to three clients on one or two keys, perhaps mutated.
fn random_history(rng: &mut Rng) -> (Vec<KvOp>, bool) {
    let keys: &'static [&'static str] = if rng.one_in(2) { &["x"] } else { &["x", "y"] };
    let shape = Shape {
        ops: 1 + rng.below(ORACLE_OPS_MAX as u64) as usize,
        clients: 1 + rng.below(3),
        keys,
        unknown_one_in: 5,
        max_gap: 3,
        max_duration: 6,
    };
    let mut history = linearizable_history(rng, &shape);
    // Most mutations of a short history keep it linearizable, so mutate three in four, some twice.
    let mutated = !rng.one_in(4);
    for _ in 0..u64::from(mutated) * (1 + rng.below(2)) {
        mutate(rng, &mut history);
    }
    (history, mutated)
}

/// The counterexample's prefix is a real partial linearization: the model accepts it in order,
/// and no operation in it comes after one that returned before its invoke.
fn assert_prefix_replays(counterexample: &Counterexample, history: &[KvOp], context: &str) {
    let mut state = WholeStore.init();
    for (position, &index) in counterexample.longest.iter().enumerate() {
        let op = &history[index];
        state = WholeStore.step(&state, &op.input, &op.outcome).unwrap_or_else(|| panic!("prefix replays, {context}"));
        let later = &counterexample.longest[position + 1..];
        assert!(later.iter().all(|&l| !history[l].precedes(op)), "prefix respects real time, {context}");
    }
}

fn tally(figures: &mut Figures, history: &[KvOp], linearizable: bool, mutated: bool) {
    match linearizable {
        true => figures.linearizable += 1,
        false => figures.not_linearizable += 1,
    }
    figures.from_execution += usize::from(!mutated);
    figures.mutated_still_linearizable += usize::from(mutated && linearizable);
    figures.with_unknown_outcomes += usize::from(history.iter().any(|op| op.outcome.returned().is_none()));
}
