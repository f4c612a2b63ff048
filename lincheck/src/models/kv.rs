//! The key-value model of the cluster's fault-injection test: SET, GET, DEL and INCR with
//! Redis's replies, checked key by key.

use std::collections::HashMap;

use crate::history::{Operation, Outcome};
use crate::model::Model;

/// Strings under keys, with Redis's semantics for SET, GET, DEL and INCR. Every key starts
/// missing. The history is partitioned by key, and the state of a partition is its key's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvModel;

/// A command of the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// `SET key value`.
    Set {
        /// The key.
        key: String,
        /// The value stored.
        value: String,
    },
    /// `GET key`.
    Get {
        /// The key.
        key: String,
    },
    /// `DEL key`.
    Del {
        /// The key.
        key: String,
    },
    /// `INCR key`.
    Incr {
        /// The key.
        key: String,
    },
}

impl KvInput {
    /// The key the command works on.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Set { key, .. } | KvInput::Get { key } | KvInput::Del { key } | KvInput::Incr { key } => key,
        }
    }
}

/// A reply of the workload's commands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// `+OK`, SET's reply.
    Ok,
    /// GET's reply: the value, or nil for a missing key.
    Value(Option<String>),
    /// DEL's reply: how many keys were removed (0 or 1).
    Deleted(u64),
    /// INCR's reply: the value after the increment.
    Integer(i64),
    /// INCR's `-ERR value is not an integer or out of range`: the value is not an integer in
    /// Redis's strict sense; nothing changed.
    NotAnInteger,
    /// INCR's `-ERR increment or decrement would overflow`: the value is `i64::MAX`; nothing
    /// changed.
    Overflow,
}

impl Model for KvModel {
    type State = Option<String>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Option<String> {
        None
    }

    fn step(&self, state: &Option<String>, input: &KvInput, outcome: &Outcome<KvOutput>) -> Option<Option<String>> {
        let (next, reply) = apply(state, input);
        match outcome.output() {
            // An unknown outcome accepts any reply: what counts is the state the command leaves.
            None => Some(next),
            Some(output) => (*output == reply).then_some(next),
        }
    }

    /// One partition per key, in the order keys first appear.
    fn partition(&self, history: &[Operation<KvInput, KvOutput>]) -> Vec<Vec<usize>> {
        let mut by_key: HashMap<&str, usize> = HashMap::new();
        let mut partitions: Vec<Vec<usize>> = Vec::new();
        for (index, op) in history.iter().enumerate() {
            let slot = *by_key.entry(op.input.key()).or_insert_with(|| {
                partitions.push(Vec::new());
                partitions.len() - 1
            });
            partitions[slot].push(index);
        }
        partitions
    }
}

/// Runs `input` on a key holding `value`: the value after it and the reply.
fn apply(value: &Option<String>, input: &KvInput) -> (Option<String>, KvOutput) {
    match input {
        KvInput::Set { value: new, .. } => (Some(new.clone()), KvOutput::Ok),
        KvInput::Get { .. } => (value.clone(), KvOutput::Value(value.clone())),
        KvInput::Del { .. } => (None, KvOutput::Deleted(u64::from(value.is_some()))),
        KvInput::Incr { .. } => incr(value),
    }
}

/// INCR: a missing key counts as 0; a value that is not an integer, or would overflow, is an
/// error that leaves it as it was.
fn incr(value: &Option<String>) -> (Option<String>, KvOutput) {
    let current = match value {
        None => 0,
        Some(text) => match strict_i64(text) {
            Some(n) => n,
            None => return (value.clone(), KvOutput::NotAnInteger),
        },
    };
    match current.checked_add(1) {
        Some(n) => (Some(n.to_string()), KvOutput::Integer(n)),
        None => (value.clone(), KvOutput::Overflow),
    }
}

/// An integer as Redis reads one (`string2ll`): exactly the canonical decimal form of an `i64`,
/// so no `+`, no leading zeros, no `-0`, no spaces.
fn strict_i64(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|n| n.to_string() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers_are_exactly_the_canonical_forms() {
        for good in ["0", "-1", "42", "9223372036854775807", "-9223372036854775808"] {
            assert!(strict_i64(good).is_some(), "{good} is an integer to Redis");
        }
        for bad in ["", "+1", "01", "-0", " 1", "1 ", "1.0", "9223372036854775808", "a"] {
            assert_eq!(strict_i64(bad), None, "{bad:?} is not an integer to Redis");
        }
    }

    #[test]
    fn incr_follows_redis_on_missing_integer_text_and_maximum_values() {
        assert_eq!(incr(&None), (Some("1".into()), KvOutput::Integer(1)));
        assert_eq!(incr(&Some("-1".into())), (Some("0".into()), KvOutput::Integer(0)));
        assert_eq!(incr(&Some("a".into())), (Some("a".into()), KvOutput::NotAnInteger));
        let max = Some(i64::MAX.to_string());
        assert_eq!(incr(&max), (max.clone(), KvOutput::Overflow));
    }

    #[test]
    fn del_counts_whether_the_key_existed() {
        let del = KvInput::Del { key: "k".into() };
        assert_eq!(apply(&Some("v".into()), &del), (None, KvOutput::Deleted(1)));
        assert_eq!(apply(&None, &del), (None, KvOutput::Deleted(0)));
    }

    #[test]
    fn partition_groups_operations_by_key_in_order_of_first_use() {
        let get = |key: &str| Operation::unknown(0, KvInput::Get { key: key.into() }, 0);
        let history = [get("b"), get("a"), get("b"), get("c"), get("a")];
        assert_eq!(KvModel.partition(&history), vec![vec![0, 2], vec![1, 4], vec![3]]);
    }
}
