//! What the checker does with histories it cannot decide or cannot use: it answers, never
//! panics, and never lets a clock into the verdict.

mod common;

use common::generate::{linearizable_history, mutate, Shape};
use common::{get, set, KvOp, Rng, WholeStore};
use ferrocask_lincheck::models::kv::{KvInput, KvModel, KvOutput};
use ferrocask_lincheck::{check, HistoryError, Model, Operation, Outcome, Verdict};

#[test]
fn empty_history_is_linearizable_in_zero_steps() {
    let report = check(&KvModel, &[], 0).unwrap();
    assert_eq!((report.verdict, report.steps), (Verdict::Linearizable, 0));
}

#[test]
fn return_before_invoke_is_an_error_not_a_verdict() {
    let history = [set(1, "x", "a", 0, 5), get(2, "x", Some("a"), 10, 9)];
    assert_eq!(check(&KvModel, &history, 1_000), Err(HistoryError::ReturnBeforeInvoke { index: 1 }));
}

/// A model whose partition is wrong in a chosen way.
struct BadPartition(Vec<Vec<usize>>);

impl Model for BadPartition {
    type State = <KvModel as Model>::State;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Self::State {
        KvModel.init()
    }

    fn step(&self, state: &Self::State, input: &KvInput, outcome: &Outcome<KvOutput>) -> Option<Self::State> {
        KvModel.step(state, input, outcome)
    }

    fn partition(&self, _: &[Operation<KvInput, KvOutput>]) -> Vec<Vec<usize>> {
        self.0.clone()
    }
}

#[test]
fn partition_that_drops_repeats_or_invents_an_operation_is_an_error() {
    let history = [set(1, "x", "a", 0, 5), get(2, "x", Some("a"), 10, 20)];
    let dropped = BadPartition(vec![vec![0]]);
    assert_eq!(check(&dropped, &history, 1_000), Err(HistoryError::PartitionNotExact { index: 1 }));
    let repeated = BadPartition(vec![vec![0, 1], vec![1]]);
    assert_eq!(check(&repeated, &history, 1_000), Err(HistoryError::PartitionNotExact { index: 1 }));
    let invented = BadPartition(vec![vec![0, 1, 2]]);
    assert_eq!(check(&invented, &history, 1_000), Err(HistoryError::PartitionOutOfRange { index: 2 }));
}

/// Many concurrent writes and one read of a value nobody wrote: the search must try every order
/// of the writes (the cache collapses them to subsets) before it can say no.
fn hard_history() -> Vec<KvOp> {
    let mut history: Vec<KvOp> = (0..12).map(|i| set(i, "x", &i.to_string(), 0, 100)).collect();
    history.push(get(99, "x", Some("never"), 0, 100));
    history
}

#[test]
fn spent_budget_is_undecided_and_a_larger_one_decides() {
    let history = hard_history();
    let full = check(&KvModel, &history, u64::MAX).unwrap();
    assert!(matches!(full.verdict, Verdict::NotLinearizable(_)));
    let short = check(&KvModel, &history, full.steps - 1).unwrap();
    assert_eq!((short.verdict, short.steps), (Verdict::Undecided { partition: 0 }, full.steps - 1));
    let exact = check(&KvModel, &history, full.steps).unwrap();
    assert_eq!(exact, full, "the same budget gives the same answer: steps, not time");
}

/// Random, often nonsensical histories (any times, any replies, unknown outcomes) on either model
/// and any budget: every call answers.
#[test]
fn random_histories_and_budgets_never_panic() {
    let mut rng = Rng::new(7);
    for _ in 0..2_000 {
        let shape = Shape {
            ops: rng.below(12) as usize,
            clients: 1 + rng.below(4),
            keys: &["x", "y", "z"],
            unknown_one_in: 3,
            max_gap: 4,
            max_duration: 8,
        };
        let mut history = linearizable_history(&mut rng, &shape);
        for _ in 0..rng.below(4) {
            mutate(&mut rng, &mut history);
        }
        distort_times(&mut rng, &mut history);
        let budget = rng.below(200);
        let _ = check(&KvModel, &history, budget);
        if let Ok(report) = check(&WholeStore, &history, budget) {
            if let Verdict::NotLinearizable(counterexample) = report.verdict {
                let _ = counterexample.explain(&WholeStore, &history);
                let _ = counterexample.explain(&WholeStore, &history[..history.len() / 2]);
            }
        }
    }
}

/// Sometimes moves one operation to the end of time, or makes it return before its invoke.
fn distort_times(rng: &mut Rng, history: &mut [KvOp]) {
    if history.is_empty() {
        return;
    }
    let op = &mut history[rng.below(history.len() as u64) as usize];
    match (rng.below(8), &mut op.outcome) {
        (0, Outcome::Ok { returned, .. }) => (op.invoke, *returned) = (u64::MAX, u64::MAX),
        (1, Outcome::Ok { returned, .. }) => (op.invoke, *returned) = (returned.saturating_add(1), *returned),
        (2, _) => op.invoke = u64::MAX,
        _ => {}
    }
}
