//! The history as the search walks it: call and return entries ordered by time in a doubly linked
//! list, from which a linearized operation is lifted and into which it is put back when the
//! search backtracks (Knuth's dancing links: a removed node keeps its neighbours, so undoing
//! removals in reverse order restores the list exactly).
//!
//! An operation with an unknown outcome has a call entry only: its return is at +infinity, after
//! every other entry, so it never bounds what may be linearized before it.

use crate::history::{Operation, Time};

/// The sentinel before the first entry.
const HEAD: usize = 0;
/// The sentinel after the last entry.
const TAIL: usize = 1;

/// What a node of the list stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// The call of operation `op` (an index into the partition).
    Call(usize),
    /// The return of operation `op`.
    Return(usize),
    /// The end of the list.
    End,
}

#[derive(Clone, Debug)]
struct Node {
    entry: Entry,
    prev: usize,
    next: usize,
    /// For a call, the node of its return, if it has one.
    matching: Option<usize>,
}

/// The doubly linked list of entries, nodes kept in one vector and linked by index.
#[derive(Debug)]
pub(crate) struct EntryList {
    nodes: Vec<Node>,
    /// The node of each operation's call.
    calls: Vec<usize>,
}

impl EntryList {
    /// The entries of `ops` in time order. At equal times calls come before returns, so operations
    /// that touch in time are concurrent; remaining ties go by operation index, so the search is
    /// deterministic.
    pub(crate) fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        let mut order: Vec<(Time, bool, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke, false, index));
            if let Some(returned) = op.outcome.returned() {
                order.push((returned, true, index));
            }
        }
        order.sort_unstable();
        Self::link(ops.len(), &order)
    }

    /// Builds the list from entries already in order.
    fn link(op_count: usize, order: &[(Time, bool, usize)]) -> Self {
        let end = Node { entry: Entry::End, prev: HEAD, next: TAIL, matching: None };
        let mut nodes = vec![end.clone(), end];
        let mut calls = vec![0; op_count];
        for &(_, is_return, op) in order {
            let at = nodes.len();
            let entry = if is_return { Entry::Return(op) } else { Entry::Call(op) };
            // The first entry's predecessor is the head; the others follow the node pushed before.
            let prev = if at == TAIL + 1 { HEAD } else { at - 1 };
            nodes.push(Node { entry, prev, next: at + 1, matching: None });
            if is_return {
                nodes[calls[op]].matching = Some(at);
            } else {
                calls[op] = at;
            }
        }
        let last = nodes.len() - 1;
        nodes[HEAD].next = if last == TAIL { TAIL } else { 2 };
        nodes[TAIL].prev = if last == TAIL { HEAD } else { last };
        nodes[last].next = TAIL;
        Self { nodes, calls }
    }

    /// The first node after the head.
    pub(crate) fn first(&self) -> usize {
        self.nodes[HEAD].next
    }

    /// The node after `node`.
    pub(crate) fn next(&self, node: usize) -> usize {
        self.nodes[node].next
    }

    /// What `node` stands for.
    pub(crate) fn entry(&self, node: usize) -> Entry {
        self.nodes[node].entry
    }

    /// The node of operation `op`'s call.
    pub(crate) fn call_node(&self, op: usize) -> usize {
        self.calls[op]
    }

    /// Removes the call at `node` and its return, if any.
    pub(crate) fn lift(&mut self, node: usize) {
        self.unlink(node);
        if let Some(ret) = self.nodes[node].matching {
            self.unlink(ret);
        }
    }

    /// Puts back what the last [`EntryList::lift`] of `node` removed; lifts must be undone in
    /// reverse order.
    pub(crate) fn unlift(&mut self, node: usize) {
        if let Some(ret) = self.nodes[node].matching {
            self.relink(ret);
        }
        self.relink(node);
    }

    fn unlink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        self.nodes[prev].next = next;
        self.nodes[next].prev = prev;
    }

    fn relink(&mut self, node: usize) {
        let Node { prev, next, .. } = self.nodes[node];
        self.nodes[prev].next = node;
        self.nodes[next].prev = node;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(list: &EntryList) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut node = list.first();
        while list.entry(node) != Entry::End {
            out.push(list.entry(node));
            node = list.next(node);
        }
        out
    }

    #[test]
    fn entries_are_in_time_order_with_calls_first_at_equal_times() {
        let a = Operation::ok(0, (), 0, (), 5);
        let b = Operation::ok(1, (), 5, (), 9);
        let c = Operation::<(), ()>::unknown(2, (), 1);
        let list = EntryList::new(&[&a, &b, &c]);
        use Entry::{Call, Return};
        assert_eq!(walk(&list), [Call(0), Call(2), Call(1), Return(0), Return(1)]);
    }

    #[test]
    fn unlift_in_reverse_order_restores_the_list() {
        let a = Operation::ok(0, (), 0, (), 5);
        let b = Operation::ok(1, (), 1, (), 9);
        let c = Operation::<(), ()>::unknown(2, (), 2);
        let mut list = EntryList::new(&[&a, &b, &c]);
        let before = walk(&list);
        list.lift(list.call_node(1));
        list.lift(list.call_node(2));
        list.lift(list.call_node(0));
        assert_eq!(walk(&list), []);
        list.unlift(list.call_node(0));
        list.unlift(list.call_node(2));
        list.unlift(list.call_node(1));
        assert_eq!(walk(&list), before);
    }

    #[test]
    fn an_empty_list_is_just_the_end() {
        let list = EntryList::new::<(), ()>(&[]);
        assert_eq!(list.entry(list.first()), Entry::End);
    }
}
