//! Model-based property test: random put/delete/batch/compare-and-swap/update/conditional
//! batch/compact/reopen sequences against a HashMap.

mod common;

use std::collections::HashMap;

use common::tiny_segments;
use ferrocask::{Batch, Cas, Condition, Store, Update};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Cas(u8, Expect, Option<Vec<u8>>),
    /// Appends the bytes to the key's value (creating it), or deletes the key if they are empty.
    Append(u8, Vec<u8>),
    /// Preconditions, then writes.
    CondBatch(Vec<(u8, Expect)>, Vec<(u8, Option<Vec<u8>>)>),
    Compact,
    Reopen,
}

/// What a compare-and-swap expects or a precondition requires, resolved against the model so
/// that both outcomes happen often.
#[derive(Clone, Debug)]
enum Expect {
    /// The key's current value (absent if it is absent): holds.
    Current,
    Absent,
    Present,
    Bytes(Vec<u8>),
}

impl Expect {
    fn as_option(&self, current: Option<&Vec<u8>>) -> Option<Vec<u8>> {
        match self {
            Expect::Current | Expect::Present => current.cloned(),
            Expect::Absent => None,
            Expect::Bytes(b) => Some(b.clone()),
        }
    }

    fn condition(&self, current: Option<&Vec<u8>>) -> Condition {
        match (self, current) {
            (Expect::Current, Some(v)) => Condition::Equals(v.clone()),
            (Expect::Current, None) | (Expect::Absent, _) => Condition::Absent,
            (Expect::Present, _) => Condition::Present,
            (Expect::Bytes(b), _) => Condition::Equals(b.clone()),
        }
    }
}

fn expect() -> impl Strategy<Value = Expect> {
    prop_oneof![
        3 => Just(Expect::Current),
        1 => Just(Expect::Absent),
        1 => Just(Expect::Present),
        1 => proptest::collection::vec(any::<u8>(), 0..4).prop_map(Expect::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 500..2000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0u8..24, value()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (0u8..24).prop_map(Op::Delete),
        3 => proptest::collection::vec((0u8..24, proptest::option::of(value())), 1..6).prop_map(Op::Batch),
        3 => (0u8..24, expect(), proptest::option::of(value())).prop_map(|(k, e, v)| Op::Cas(k, e, v)),
        3 => (0u8..24, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::Append(k, v)),
        2 => (
            proptest::collection::vec((0u8..24, expect()), 1..3),
            proptest::collection::vec((0u8..24, proptest::option::of(value())), 1..4)
        )
            .prop_map(|(c, w)| Op::CondBatch(c, w)),
        1 => Just(Op::Compact),
        2 => Just(Op::Reopen),
    ]
}

fn apply_writes(batch: &mut Batch, writes: &[(u8, Option<Vec<u8>>)], model: &mut HashMap<u8, Vec<u8>>) {
    for (k, v) in writes {
        match v {
            Some(v) => {
                batch.put(key(*k), v);
                model.insert(*k, v.clone());
            }
            None => {
                batch.delete(key(*k));
                model.remove(k);
            }
        }
    }
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn check(store: &Store, model: &HashMap<u8, Vec<u8>>) -> Result<(), TestCaseError> {
    for k in 0u8..24 {
        let got = store.get(key(k)).unwrap().map(|v| v.into_vec());
        prop_assert_eq!(got.as_ref(), model.get(&k), "key {}", k);
    }
    prop_assert_eq!(store.len(), model.len());
    let mut keys: Vec<Vec<u8>> = store.keys().collect();
    keys.sort();
    let mut expected: Vec<Vec<u8>> = model.keys().map(|&k| key(k)).collect();
    expected.sort();
    prop_assert_eq!(keys, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_a_hashmap(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_with(dir.path(), tiny_segments()).unwrap();
        let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    store.put(key(k), &v).unwrap();
                    model.insert(k, v);
                }
                Op::Delete(k) => {
                    store.delete(key(k)).unwrap();
                    model.remove(&k);
                }
                Op::Batch(ops) => {
                    let mut batch = Batch::new();
                    apply_writes(&mut batch, &ops, &mut model);
                    store.write(batch).unwrap();
                }
                Op::Cas(k, expect, new) => {
                    let expected = expect.as_option(model.get(&k));
                    let got = store.compare_and_swap(key(k), expected.as_deref(), new.as_deref()).unwrap();
                    if model.get(&k) == expected.as_ref() {
                        prop_assert_eq!(got, Cas::Applied);
                        match new {
                            Some(v) => model.insert(k, v),
                            None => model.remove(&k),
                        };
                    } else {
                        let current = model.get(&k).cloned().map(|v| v.into());
                        prop_assert_eq!(got, Cas::Mismatch { current });
                    }
                }
                Op::Append(k, suffix) => {
                    let delete = suffix.is_empty();
                    let f = move |v: Option<&[u8]>| {
                        if delete {
                            return Update::Delete;
                        }
                        let mut v = v.map(<[u8]>::to_vec).unwrap_or_default();
                        v.extend_from_slice(&suffix);
                        Update::Set(v)
                    };
                    let previous = model.get(&k).cloned();
                    let updated = store.update(key(k), f.clone()).unwrap();
                    prop_assert_eq!(updated.previous.map(|v| v.into_vec()), previous.clone());
                    match f(previous.as_deref()) {
                        Update::Set(v) => model.insert(k, v),
                        _ => model.remove(&k),
                    };
                    prop_assert_eq!(updated.current.map(|v| v.into_vec()), model.get(&k).cloned());
                }
                Op::CondBatch(conditions, writes) => {
                    let mut batch = Batch::new();
                    let mut holds = true;
                    for (k, e) in &conditions {
                        let condition = e.condition(model.get(k));
                        holds &= match &condition {
                            Condition::Absent => !model.contains_key(k),
                            Condition::Present => model.contains_key(k),
                            Condition::Equals(v) => model.get(k) == Some(v),
                        };
                        batch.require(key(*k), condition);
                    }
                    let mut after = model.clone();
                    apply_writes(&mut batch, &writes, &mut after);
                    prop_assert_eq!(store.write_if(batch).unwrap(), holds);
                    if holds {
                        model = after;
                    }
                }
                Op::Compact => {
                    store.compact().unwrap();
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open_with(dir.path(), tiny_segments()).unwrap();
                }
            }
            check(&store, &model)?;
        }
        drop(store);
        let store = Store::open_with(dir.path(), tiny_segments()).unwrap();
        check(&store, &model)?;
    }
}
