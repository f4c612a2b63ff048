//! A counterexample in words: the longest order that worked, the state it left, and why each
//! operation that could have come next could not.

use std::fmt::Write;

use crate::check::Counterexample;
use crate::history::{Operation, Outcome};
use crate::model::Model;

impl Counterexample {
    /// Describes the failure for a human: the partition's operations, the longest linearizable
    /// prefix with the model's state after each operation, and, for each operation that real time
    /// allows next, whether the model rejects it or only its continuations fail.
    ///
    /// `model` and `history` must be the ones given to [`crate::check`]; indices that do not fit
    /// `history` are reported, not followed.
    pub fn explain<M: Model>(&self, model: &M, history: &[Operation<M::Input, M::Output>]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "not linearizable: partition {} ({} operations)", self.partition, self.operations.len());
        let mut sorted: Vec<usize> = self.operations.iter().copied().filter(|&i| i < history.len()).collect();
        sorted.sort_by_key(|&i| (history[i].invoke, i));
        for &i in &sorted {
            let _ = writeln!(out, "  {}", describe(i, &history[i]));
        }
        let Some(state) = self.replay_longest(model, history, &mut out) else {
            return out;
        };
        self.write_candidates(model, history, &state, &mut out);
        out
    }

    /// Writes the longest prefix with the state after each step; `None` if it does not replay.
    fn replay_longest<M: Model>(
        &self,
        model: &M,
        history: &[Operation<M::Input, M::Output>],
        out: &mut String,
    ) -> Option<M::State> {
        let _ = writeln!(out, "longest linearizable prefix ({} operations), state after each:", self.longest.len());
        let mut state = model.init();
        let _ = writeln!(out, "  initial state {state:?}");
        for &i in &self.longest {
            let Some(op) = history.get(i) else {
                let _ = writeln!(out, "  #{i} is not in this history: was it the one checked?");
                return None;
            };
            let Some(next) = model.step(&state, &op.input, &op.outcome) else {
                let _ = writeln!(out, "  {} does not replay: was this the model checked?", describe(i, op));
                return None;
            };
            state = next;
            let _ = writeln!(out, "  {}  => {state:?}", describe(i, op));
        }
        Some(state)
    }

    /// Writes, for each operation real time allows after the prefix, why it cannot come next.
    fn write_candidates<M: Model>(
        &self,
        model: &M,
        history: &[Operation<M::Input, M::Output>],
        state: &M::State,
        out: &mut String,
    ) {
        let left: Vec<usize> =
            self.operations.iter().copied().filter(|i| *i < history.len() && !self.longest.contains(i)).collect();
        let _ = writeln!(out, "then no operation can come next:");
        let mut waiting = 0;
        for &i in &left {
            let op = &history[i];
            if left.iter().any(|&j| history[j].precedes(op)) {
                waiting += 1;
                continue;
            }
            let why = match (model.step(state, &op.input, &op.outcome), &op.outcome) {
                (None, _) => "the model does not allow it from this state",
                (Some(_), Outcome::Unknown) => {
                    "allowed, but no order of the rest follows (and leaving it out fails too)"
                }
                (Some(_), _) => "allowed, but no order of the rest follows",
            };
            let _ = writeln!(out, "  {}: {why}", describe(i, op));
        }
        if waiting > 0 {
            let _ = writeln!(
                out,
                "  ({waiting} more cannot come yet: an operation listed above returned before they were invoked)"
            );
        }
    }
}

/// One operation on one line: `#index client c [invoke, return] input -> output`.
fn describe<I: std::fmt::Debug, O: std::fmt::Debug>(index: usize, op: &Operation<I, O>) -> String {
    match &op.outcome {
        Outcome::Ok { output, returned } => {
            format!("#{index} client {} [{}, {returned}] {:?} -> {output:?}", op.client, op.invoke, op.input)
        }
        Outcome::Unknown => format!("#{index} client {} [{}, ?] {:?} -> unknown", op.client, op.invoke, op.input),
    }
}
