//! Calls that errored or timed out: each may have taken effect once, at any time after its invoke
//! (even after its client moved on), or never; the checker must allow both and nothing else.

mod common;

use common::{get, incr, incr_unknown, set, set_unknown, KvOp};
use ferrocask_lincheck::models::kv::{KvModel, KvOutput};
use ferrocask_lincheck::{check, Model, Operation, Outcome, Verdict};

const STEP_BUDGET: u64 = 10_000;

fn linearizable(history: &[KvOp]) -> bool {
    let verdict = check(&KvModel, history, STEP_BUDGET).expect("a well-formed history").verdict;
    assert!(!matches!(verdict, Verdict::Undecided { .. }), "decided within the budget");
    verdict.is_linearizable()
}

#[test]
fn timed_out_set_whose_value_a_later_get_sees_is_linearizable() {
    let history = [set(1, "x", "a", 0, 1), set_unknown(1, "x", "b", 10), get(2, "x", Some("b"), 100, 110)];
    assert!(linearizable(&history));
}

#[test]
fn timed_out_set_never_seen_is_linearizable() {
    let history = [
        set(1, "x", "a", 0, 1),
        set_unknown(1, "x", "b", 10),
        get(2, "x", Some("a"), 100, 110),
        get(2, "x", Some("a"), 200, 210),
    ];
    assert!(linearizable(&history));
}

#[test]
fn timed_out_set_seen_then_the_old_value_again_is_not_linearizable() {
    let history = [
        set(1, "x", "a", 0, 1),
        set_unknown(1, "x", "b", 10),
        get(2, "x", Some("b"), 20, 30),
        get(2, "x", Some("a"), 40, 50),
    ];
    assert!(!linearizable(&history));
}

/// A request the server applies late lands after its client's next, acknowledged, write.
#[test]
fn timed_out_set_may_take_effect_after_its_client_moved_on() {
    let history = [set_unknown(1, "x", "b", 10), set(1, "x", "c", 20, 30), get(2, "x", Some("b"), 40, 50)];
    assert!(linearizable(&history));
}

#[test]
fn timed_out_set_cannot_be_seen_before_it_was_invoked() {
    let history = [get(2, "x", Some("b"), 0, 5), set_unknown(1, "x", "b", 10)];
    assert!(!linearizable(&history));
}

#[test]
fn timed_out_incr_counted_once_is_linearizable() {
    let history = [incr(1, "n", KvOutput::Integer(1), 0, 10), incr_unknown(1, "n", 20), get(2, "n", Some("2"), 30, 40)];
    assert!(linearizable(&history));
}

#[test]
fn timed_out_incr_not_counted_is_linearizable() {
    let history = [incr(1, "n", KvOutput::Integer(1), 0, 10), incr_unknown(1, "n", 20), get(2, "n", Some("1"), 30, 40)];
    assert!(linearizable(&history));
}

#[test]
fn timed_out_incr_counted_twice_is_not_linearizable() {
    let history = [incr(1, "n", KvOutput::Integer(1), 0, 10), incr_unknown(1, "n", 20), get(2, "n", Some("3"), 30, 40)];
    assert!(!linearizable(&history));
}

/// Counted or not, it is one or the other for every later reader: 2, then 1, is not possible.
#[test]
fn timed_out_incr_counted_then_uncounted_is_not_linearizable() {
    let history = [
        incr(1, "n", KvOutput::Integer(1), 0, 10),
        incr_unknown(1, "n", 20),
        get(2, "n", Some("2"), 30, 40),
        get(2, "n", Some("1"), 50, 60),
    ];
    assert!(!linearizable(&history));
}

#[test]
fn history_of_unknown_outcomes_only_is_linearizable_without_searching() {
    let history = [set_unknown(1, "x", "a", 0), incr_unknown(2, "x", 1)];
    let report = check(&KvModel, &history, STEP_BUDGET).unwrap();
    assert_eq!((report.verdict, report.steps), (Verdict::Linearizable, 0));
}

/// A token that can be claimed once: a second claim is impossible from any state after the first,
/// even with its output unknown. (Under the key-value model an unknown command can always take
/// effect last, so "never" and "at the end" agree there; here they do not.)
struct OneShot;

impl Model for OneShot {
    type State = bool;
    type Input = ();
    type Output = ();

    fn init(&self) -> bool {
        false
    }

    fn step(&self, claimed: &bool, _: &(), _: &Outcome<()>) -> Option<bool> {
        (!claimed).then_some(true)
    }
}

#[test]
fn unknown_operation_that_could_never_take_effect_is_left_out() {
    let history = [Operation::ok(1, (), 0, (), 10), Operation::unknown(2, (), 20)];
    assert_eq!(check(&OneShot, &history, STEP_BUDGET).unwrap().verdict, Verdict::Linearizable);
}
