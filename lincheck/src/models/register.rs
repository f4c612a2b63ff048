//! A single read/write register: the textbook object, for tests of the checker itself.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Outcome;
use crate::model::Model;

/// A register holding one value of type `V`, starting at `initial`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Register<V> {
    /// The value before any write.
    pub initial: V,
}

/// A call on a [`Register`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp<V> {
    /// Replace the value.
    Write(V),
    /// Read the value.
    Read,
}

/// What a call on a [`Register`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterReply<V> {
    /// A write was done.
    Written,
    /// A read saw this value.
    Value(V),
}

impl<V: Clone + Eq + Hash + Debug> Model for Register<V> {
    type State = V;
    type Input = RegisterOp<V>;
    type Output = RegisterReply<V>;

    fn init(&self) -> V {
        self.initial.clone()
    }

    fn step(&self, state: &V, input: &RegisterOp<V>, outcome: &Outcome<RegisterReply<V>>) -> Option<V> {
        match (input, outcome.output()) {
            (RegisterOp::Write(value), None | Some(RegisterReply::Written)) => Some(value.clone()),
            (RegisterOp::Read, None) => Some(state.clone()),
            (RegisterOp::Read, Some(RegisterReply::Value(seen))) => (seen == state).then(|| state.clone()),
            // A reply of the wrong kind for its call can never happen in a sequential run.
            (RegisterOp::Write(_), Some(RegisterReply::Value(_)))
            | (RegisterOp::Read, Some(RegisterReply::Written)) => None,
        }
    }
}
