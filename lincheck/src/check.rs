//! The entry point: validate a history, split it with the model's partition, search each part
//! within one shared step budget, and say what was found.

use crate::history::{validate_partitions, validate_times, HistoryError, Operation};
use crate::model::Model;
use crate::search::{search, SearchResult};

/// What [`check`] decided, and how much searching it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The answer.
    pub verdict: Verdict,
    /// Search steps taken, over every partition searched (one step is one entry of the history
    /// visited: an operation tried as the next one, or a backtrack). Deterministic for a given
    /// history and model, so tests can bound it.
    pub steps: u64,
}

/// Whether a history is linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition has an order of its operations, consistent with real time, that the model
    /// accepts; operations with unknown outcomes are in it or left out, whichever fits.
    Linearizable,
    /// A partition has no such order: the store broke linearizability.
    NotLinearizable(Counterexample),
    /// The step budget ran out while searching `partition`; nothing is known about it or the
    /// partitions after it (no partition before it failed).
    Undecided {
        /// The index, in the model's partition, of the partition being searched.
        partition: usize,
    },
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// The evidence for a [`Verdict::NotLinearizable`]; [`Counterexample::explain`] prints it for a
/// human.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The index, in the model's partition, of the partition that failed.
    pub partition: usize,
    /// The failing partition's operations, as indices into the history.
    pub operations: Vec<usize>,
    /// The longest linearizable prefix the search found, as indices into the history in
    /// linearization order: the history went wrong right after it.
    pub longest: Vec<usize>,
}

/// Checks whether `history` is linearizable with respect to `model`, searching at most
/// `step_budget` steps over all partitions (see [`Report::steps`]).
///
/// Partitions are searched in the model's order; the first that fails decides the verdict. The
/// history itself must make sense (no return before its invoke, a partition that places each
/// operation once); otherwise nothing is searched and the error says what is wrong.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    step_budget: u64,
) -> Result<Report, HistoryError> {
    validate_times(history)?;
    let partitions = model.partition(history);
    validate_partitions(&partitions, history.len())?;
    let mut steps = 0;
    for (index, partition) in partitions.iter().enumerate() {
        let ops: Vec<_> = partition.iter().map(|&op| &history[op]).collect();
        let verdict = match search(model, &ops, &mut steps, step_budget) {
            SearchResult::Linearizable => continue,
            SearchResult::OutOfSteps => Verdict::Undecided { partition: index },
            SearchResult::NotLinearizable { longest } => Verdict::NotLinearizable(Counterexample {
                partition: index,
                operations: partition.clone(),
                longest: longest.iter().map(|&op| partition[op]).collect(),
            }),
        };
        return Ok(Report { verdict, steps });
    }
    Ok(Report { verdict: Verdict::Linearizable, steps })
}
