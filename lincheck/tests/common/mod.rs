//! What the checker's tests share: terse constructors for key-value operations, a seeded PRNG, a
//! generator of concurrent histories from a real sequential execution, and a whole-store model.
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod generate;
pub mod oracle;

use std::collections::BTreeMap;

use ferrocask_lincheck::models::kv::{KvInput, KvModel, KvOutput};
use ferrocask_lincheck::{Model, Operation, Outcome, Time};

/// A key-value operation as the tests record them.
pub type KvOp = Operation<KvInput, KvOutput>;

pub fn set(client: u64, key: &str, value: &str, invoke: Time, returned: Time) -> KvOp {
    Operation::ok(client, KvInput::Set { key: key.into(), value: value.into() }, invoke, KvOutput::Ok, returned)
}

pub fn set_unknown(client: u64, key: &str, value: &str, invoke: Time) -> KvOp {
    Operation::unknown(client, KvInput::Set { key: key.into(), value: value.into() }, invoke)
}

pub fn get(client: u64, key: &str, seen: Option<&str>, invoke: Time, returned: Time) -> KvOp {
    let output = KvOutput::Value(seen.map(str::to_string));
    Operation::ok(client, KvInput::Get { key: key.into() }, invoke, output, returned)
}

pub fn del(client: u64, key: &str, count: u64, invoke: Time, returned: Time) -> KvOp {
    Operation::ok(client, KvInput::Del { key: key.into() }, invoke, KvOutput::Deleted(count), returned)
}

pub fn incr(client: u64, key: &str, output: KvOutput, invoke: Time, returned: Time) -> KvOp {
    Operation::ok(client, KvInput::Incr { key: key.into() }, invoke, output, returned)
}

pub fn incr_unknown(client: u64, key: &str, invoke: Time) -> KvOp {
    Operation::unknown(client, KvInput::Incr { key: key.into() }, invoke)
}

/// The whole store as one object, with no partition: the same semantics as [`KvModel`], searched
/// without P-compositionality, so comparing the two checks the partitioning.
pub struct WholeStore;

impl Model for WholeStore {
    type State = BTreeMap<String, String>;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(&self, state: &Self::State, input: &KvInput, outcome: &Outcome<KvOutput>) -> Option<Self::State> {
        let key = input.key();
        let value = KvModel.step(&state.get(key).cloned(), input, outcome)?;
        let mut next = state.clone();
        match value {
            Some(value) => next.insert(key.to_string(), value),
            None => next.remove(key),
        };
        Some(next)
    }
}

/// splitmix64: a small, seeded, reproducible source of test randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
