//! Textbook histories with known verdicts: the checker must accept the linearizable ones and, as
//! a checker that decides a test must, reject the ones that are not.

mod common;

use common::{del, get, incr, set, KvOp};
use ferrocask_lincheck::models::kv::{KvModel, KvOutput};
use ferrocask_lincheck::models::register::{Register, RegisterOp, RegisterReply};
use ferrocask_lincheck::{check, Counterexample, Operation, Verdict};

const STEP_BUDGET: u64 = 10_000;

fn verdict(history: &[KvOp]) -> Verdict {
    check(&KvModel, history, STEP_BUDGET).expect("a well-formed history").verdict
}

fn counterexample(history: &[KvOp]) -> Counterexample {
    match verdict(history) {
        Verdict::NotLinearizable(counterexample) => counterexample,
        other => panic!("expected NotLinearizable, got {other:?}"),
    }
}

#[test]
fn sequential_history_of_every_command_is_linearizable() {
    let history = [
        get(1, "x", None, 0, 1),
        incr(1, "x", KvOutput::Integer(1), 2, 3),
        set(2, "x", "a", 4, 5),
        incr(1, "x", KvOutput::NotAnInteger, 6, 7),
        get(2, "x", Some("a"), 8, 9),
        del(1, "x", 1, 10, 11),
        del(2, "x", 0, 12, 13),
    ];
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

/// The issue's finding (1): a reader saw a, b, a, with b acknowledged and a written only before it.
#[test]
fn reader_seeing_a_then_b_then_a_again_is_not_linearizable() {
    let history = [
        set(1, "x", "a", 0, 10),
        get(2, "x", Some("a"), 11, 12),
        set(1, "x", "b", 20, 30),
        get(2, "x", Some("b"), 31, 32),
        get(2, "x", Some("a"), 40, 50),
    ];
    // Real time forces the first four in order; the last read is where it breaks.
    assert_eq!(counterexample(&history).longest, [0, 1, 2, 3]);
}

#[test]
fn read_of_the_old_value_after_an_acknowledged_write_is_not_linearizable() {
    let history = [set(1, "x", "a", 0, 10), set(1, "x", "b", 20, 30), get(2, "x", Some("a"), 40, 50)];
    assert_eq!(counterexample(&history).longest, [0, 1]);
}

#[test]
fn two_concurrent_incrs_that_both_return_1_lost_one() {
    let history = [incr(1, "n", KvOutput::Integer(1), 0, 10), incr(2, "n", KvOutput::Integer(1), 5, 15)];
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

#[test]
fn two_concurrent_incrs_may_return_1_and_2_in_either_order() {
    let history = [incr(1, "n", KvOutput::Integer(2), 0, 10), incr(2, "n", KvOutput::Integer(1), 5, 15)];
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

#[test]
fn read_after_two_acknowledged_incrs_that_sees_one_is_not_linearizable() {
    let history = [
        incr(1, "n", KvOutput::Integer(1), 0, 10),
        incr(2, "n", KvOutput::Integer(2), 20, 30),
        get(1, "n", Some("1"), 40, 50),
    ];
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

#[test]
fn read_of_a_value_never_written_is_not_linearizable() {
    let model = Register { initial: 0 };
    let history = [
        Operation::ok(1, RegisterOp::Write(1), 0, RegisterReply::Written, 10),
        Operation::ok(2, RegisterOp::Read, 5, RegisterReply::Value(3), 15),
    ];
    let report = check(&model, &history, STEP_BUDGET).unwrap();
    assert!(matches!(report.verdict, Verdict::NotLinearizable(_)));
}

#[test]
fn read_concurrent_with_a_write_may_see_it_before_the_write_returns() {
    let history = [set(1, "x", "b", 10, 30), get(2, "x", Some("b"), 15, 20)];
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

#[test]
fn read_concurrent_with_a_write_may_also_see_the_old_value() {
    let history = [set(1, "x", "b", 10, 30), get(2, "x", None, 15, 20)];
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

#[test]
fn read_that_returned_before_the_write_was_invoked_cannot_see_it() {
    let history = [get(2, "x", Some("b"), 0, 5), set(1, "x", "b", 10, 30)];
    assert!(matches!(verdict(&history), Verdict::NotLinearizable(_)));
}

/// A clock cannot order two events at the same tick, so they count as concurrent.
#[test]
fn a_return_and_an_invoke_at_the_same_time_are_concurrent() {
    let history = [get(2, "x", Some("b"), 0, 10), set(1, "x", "b", 10, 30)];
    assert_eq!(verdict(&history), Verdict::Linearizable);
}

/// P-compositionality: one key's failure is found among healthy keys, and named by its partition.
#[test]
fn a_stale_read_on_one_key_fails_that_key_only() {
    let history = [
        set(1, "a", "1", 0, 10),
        set(1, "b", "1", 0, 10),
        set(2, "b", "2", 20, 30),
        get(2, "a", Some("1"), 40, 50),
        get(3, "b", Some("1"), 40, 50),
    ];
    let counterexample = counterexample(&history);
    assert_eq!((counterexample.partition, counterexample.operations), (1, vec![1, 2, 4]));
}

#[test]
fn counterexample_explains_the_state_and_why_the_next_read_cannot_fit() {
    let history = [set(1, "x", "a", 0, 10), set(1, "x", "b", 20, 30), get(2, "x", Some("a"), 40, 50)];
    let text = counterexample(&history).explain(&KvModel, &history);
    assert!(text.contains(r#"#1 client 1 [20, 30] Set { key: "x", value: "b" } -> Ok  => Some("b")"#), "{text}");
    assert!(text.contains("#2 client 2 [40, 50] Get") && text.contains("the model does not allow it"), "{text}");
}
