//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::{Operation, Outcome};

/// A sequential specification: what one operation at a time may return, and what it leaves.
///
/// The checker asks whether the operations of a history can be put in one order, consistent with
/// real time, in which each one's outcome is what [`Model::step`] allows.
pub trait Model {
    /// The object's state between operations. The search remembers the (set of operations
    /// linearized, state) pairs it has explored, so equal states must mean equal futures.
    type State: Clone + Eq + Hash + Debug;
    /// What a call asks for.
    type Input: Debug;
    /// What a call returns.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after applying `input` to `state`, if that application can end in `outcome`;
    /// `None` if it cannot (a read returning a value the state does not hold, say).
    ///
    /// For [`Outcome::Unknown`] the output is not known, so any output is allowed: return the state
    /// the call leaves when it takes effect. (The checker handles the case where it never does.)
    fn step(&self, state: &Self::State, input: &Self::Input, outcome: &Outcome<Self::Output>) -> Option<Self::State>;

    /// Splits a history into independent sub-histories, each a list of indices into `history`,
    /// that are checked separately (P-compositionality: a history of a key-value store is
    /// linearizable iff each key's sub-history is). Every index must be in exactly one partition.
    ///
    /// The default keeps the whole history in one partition.
    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Vec<usize>> {
        vec![(0..history.len()).collect()]
    }
}
