//! The brute-force oracle: tries every order of the operations, one operation at a time, with no
//! cache, no entry list and no cleverness, so it shares nothing with the search but the model.

use ferrocask_lincheck::{Model, Operation, Outcome};

/// The largest history the oracle takes: 7! orders of every subset is still cheap.
pub const ORACLE_OPS_MAX: usize = 7;

/// Whether some order of a subset of `history` holding every returned operation respects real
/// time (an operation that returned before another's invoke comes first) and is accepted by
/// `model` from its initial state.
pub fn brute_force<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> bool {
    assert!(history.len() <= ORACLE_OPS_MAX, "the oracle is exponential; keep it to small histories");
    let mut placed = vec![false; history.len()];
    extend(model, history, &mut placed, &model.init())
}

/// Whether the order placed so far, which left `state`, extends to a full one.
fn extend<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    placed: &mut [bool],
    state: &M::State,
) -> bool {
    let done = history.iter().zip(placed.iter()).all(|(op, &placed)| placed || matches!(op.outcome, Outcome::Unknown));
    if done {
        return true;
    }
    for next in 0..history.len() {
        if placed[next] || must_wait(history, placed, next) {
            continue;
        }
        let op = &history[next];
        let Some(after) = model.step(state, &op.input, &op.outcome) else { continue };
        placed[next] = true;
        if extend(model, history, placed, &after) {
            return true;
        }
        placed[next] = false;
    }
    false
}

/// Whether an operation not yet placed returned strictly before `next` was invoked.
fn must_wait<I, O>(history: &[Operation<I, O>], placed: &[bool], next: usize) -> bool {
    history.iter().zip(placed).any(|(op, &placed)| match op.outcome {
        Outcome::Ok { returned, .. } => !placed && returned < history[next].invoke,
        Outcome::Unknown => false,
    })
}
