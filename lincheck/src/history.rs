//! What a test records: one [`Operation`] per client call, and the checks a history must pass
//! before it can be searched.

use std::fmt;

/// A point in time, in any unit of one monotonic clock shared by every client of the history
/// (nanoseconds since the test started, say). Only the order of times matters.
pub type Time = u64;

/// How a call ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome<O> {
    /// The call returned `output` at time `returned`: it took effect exactly once, somewhere
    /// between its invoke and `returned`.
    Ok {
        /// What the call returned.
        output: O,
        /// When the client received the reply.
        returned: Time,
    },
    /// The call errored or timed out (Jepsen's "info"): it may have taken effect at any time after
    /// its invoke, even after the client moved on, or never. Its return time is +infinity.
    Unknown,
}

impl<O> Outcome<O> {
    /// The output of a call that returned, `None` for an unknown outcome.
    pub fn output(&self) -> Option<&O> {
        match self {
            Outcome::Ok { output, .. } => Some(output),
            Outcome::Unknown => None,
        }
    }

    /// When the call returned, `None` (+infinity) for an unknown outcome.
    pub fn returned(&self) -> Option<Time> {
        match self {
            Outcome::Ok { returned, .. } => Some(*returned),
            Outcome::Unknown => None,
        }
    }
}

/// One client call: who made it, what it asked, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation<I, O> {
    /// The client that made the call (only shown in reports: the check does not use it, since a
    /// call with an unknown outcome may take effect after its client's later calls).
    pub client: u64,
    /// What the call asked for.
    pub input: I,
    /// When the client sent the call.
    pub invoke: Time,
    /// How the call ended.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// A call that returned `output` at `returned`.
    pub fn ok(client: u64, input: I, invoke: Time, output: O, returned: Time) -> Self {
        Operation { client, input, invoke, outcome: Outcome::Ok { output, returned } }
    }

    /// A call that errored or timed out: it may or may not have taken effect.
    pub fn unknown(client: u64, input: I, invoke: Time) -> Self {
        Operation { client, input, invoke, outcome: Outcome::Unknown }
    }

    /// Whether this call finished before `later` was invoked, so every linearization must order
    /// it first. Equal times count as concurrent: a clock's resolution cannot order them.
    pub fn precedes<J, P>(&self, later: &Operation<J, P>) -> bool {
        self.outcome.returned().is_some_and(|returned| returned < later.invoke)
    }
}

/// Why a history (or a model's partition of it) cannot be checked at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryError {
    /// Operation `index` returned before it was invoked: the recorder's clock or bookkeeping is
    /// wrong, and no verdict about the store could be trusted.
    ReturnBeforeInvoke {
        /// The operation's index in the history.
        index: usize,
    },
    /// The model's partition named `index`, which is not an operation of the history.
    PartitionOutOfRange {
        /// The index the partition named.
        index: usize,
    },
    /// The model's partition put operation `index` in no partition, or in more than one: it would
    /// go unchecked, or be checked twice against different states.
    PartitionNotExact {
        /// The operation's index in the history.
        index: usize,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnBeforeInvoke { index } => {
                write!(f, "operation {index} returned before it was invoked")
            }
            HistoryError::PartitionOutOfRange { index } => {
                write!(f, "the model's partition names operation {index}, which the history does not have")
            }
            HistoryError::PartitionNotExact { index } => {
                write!(f, "the model's partition puts operation {index} in no partition or in several")
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// Checks that every operation returned no earlier than it was invoked.
pub(crate) fn validate_times<I, O>(history: &[Operation<I, O>]) -> Result<(), HistoryError> {
    match history.iter().position(|op| op.outcome.returned().is_some_and(|returned| returned < op.invoke)) {
        Some(index) => Err(HistoryError::ReturnBeforeInvoke { index }),
        None => Ok(()),
    }
}

/// Checks that `partitions` holds every index of a history of `len` operations exactly once.
pub(crate) fn validate_partitions(partitions: &[Vec<usize>], len: usize) -> Result<(), HistoryError> {
    let mut seen = vec![false; len];
    for &index in partitions.iter().flatten() {
        match seen.get_mut(index) {
            None => return Err(HistoryError::PartitionOutOfRange { index }),
            Some(true) => return Err(HistoryError::PartitionNotExact { index }),
            Some(slot) => *slot = true,
        }
    }
    match seen.iter().position(|&placed| !placed) {
        Some(index) => Err(HistoryError::PartitionNotExact { index }),
        None => Ok(()),
    }
}
