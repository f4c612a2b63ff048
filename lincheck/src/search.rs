//! The search of one partition: Wing & Gong's backtracking with Lowe's memoisation, the way
//! Porcupine runs it.
//!
//! The search walks the entry list from the front. At a call it tries to linearize that operation
//! next: if the model allows it and the pair (operations linearized, state after) was never reached
//! before, the operation is lifted out of the list, pushed on the stack, and the walk restarts at
//! the front. At a return, the operation returning there had to be linearized before this point
//! and was not, so the last choice was wrong: pop it, put it back, and try the entry after it. An
//! empty stack there means every order consistent with real time has failed.
//!
//! The cache is what makes this fast: two orders of the same set of operations that reach the same
//! state have the same future, so the second is abandoned at once.
//!
//! An operation with an unknown outcome is optional: the search succeeds as soon as every
//! operation that returned is linearized, whatever unknown ones remain (they never took effect).

use std::collections::HashSet;
use std::mem;

use crate::bitset::Bitset;
use crate::entries::{Entry, EntryList};
use crate::history::{Operation, Outcome};
use crate::model::Model;

/// How the search of one partition ended.
#[derive(Debug)]
pub(crate) enum SearchResult {
    /// An order was found.
    Linearizable,
    /// No order exists; `longest` is the longest prefix of one that the search reached, as indices
    /// into the partition in linearization order.
    NotLinearizable { longest: Vec<usize> },
    /// The step budget ran out first.
    OutOfSteps,
}

/// Searches `ops` for a linearization, counting each entry visited as one step in `steps` and
/// stopping once `steps` reaches `budget`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    steps: &mut u64,
    budget: u64,
) -> SearchResult {
    Search::new(model, ops).run(steps, budget)
}

/// The search's working state.
struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Operation<M::Input, M::Output>],
    list: EntryList,
    state: M::State,
    linearized: Bitset,
    /// Each linearized operation with the state before it, in linearization order.
    stack: Vec<(usize, M::State)>,
    /// Every (linearized set, state) pair reached so far.
    seen: HashSet<(Bitset, M::State)>,
    /// Operations that returned and are not linearized yet.
    returned_left: usize,
    longest: Vec<usize>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, ops: &'a [&'a Operation<M::Input, M::Output>]) -> Self {
        Search {
            model,
            ops,
            list: EntryList::new(ops),
            state: model.init(),
            linearized: Bitset::new(ops.len()),
            stack: Vec::new(),
            seen: HashSet::new(),
            returned_left: ops.iter().filter(|op| op.outcome.returned().is_some()).count(),
            longest: Vec::new(),
        }
    }

    fn run(mut self, steps: &mut u64, budget: u64) -> SearchResult {
        let mut node = self.list.first();
        while self.returned_left > 0 {
            if *steps >= budget {
                return SearchResult::OutOfSteps;
            }
            *steps += 1;
            node = match self.list.entry(node) {
                Entry::Call(op) if self.try_linearize(op) => self.list.first(),
                Entry::Call(_) => self.list.next(node),
                // The end is only reached with operations that returned still left if their
                // returns were passed, which cannot happen; backtracking is the safe reading.
                Entry::Return(_) | Entry::End => match self.backtrack() {
                    Some(next) => next,
                    None => return SearchResult::NotLinearizable { longest: self.longest },
                },
            };
        }
        SearchResult::Linearizable
    }

    /// Linearizes `op` next if the model allows it and the resulting pair is new.
    fn try_linearize(&mut self, op: usize) -> bool {
        let call = self.ops[op];
        let Some(next) = self.model.step(&self.state, &call.input, &call.outcome) else {
            return false;
        };
        self.linearized.insert(op);
        if !self.seen.insert((self.linearized.clone(), next.clone())) {
            self.linearized.remove(op);
            return false;
        }
        let before = mem::replace(&mut self.state, next);
        self.stack.push((op, before));
        self.list.lift(self.list.call_node(op));
        self.count_returned(op, false);
        if self.stack.len() > self.longest.len() {
            self.longest = self.stack.iter().map(|&(op, _)| op).collect();
        }
        true
    }

    /// Undoes the last linearization; the node to try next is the one after its call.
    fn backtrack(&mut self) -> Option<usize> {
        let (op, before) = self.stack.pop()?;
        self.state = before;
        self.linearized.remove(op);
        let node = self.list.call_node(op);
        self.list.unlift(node);
        self.count_returned(op, true);
        Some(self.list.next(node))
    }

    /// Keeps `returned_left` in step as `op` is linearized or put back.
    fn count_returned(&mut self, op: usize, put_back: bool) {
        if let Outcome::Ok { .. } = self.ops[op].outcome {
            if put_back {
                self.returned_left += 1;
            } else {
                self.returned_left -= 1;
            }
        }
    }
}
