//! Model-based property test: random put/delete/batch/compact/reopen sequences against a HashMap.

mod common;

use std::collections::HashMap;

use common::tiny_segments;
use ferrocask::{Batch, Store};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Compact,
    Reopen,
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
        1 => Just(Op::Compact),
        2 => Just(Op::Reopen),
    ]
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
                    for (k, v) in ops {
                        match v {
                            Some(v) => {
                                batch.put(key(k), &v);
                                model.insert(k, v);
                            }
                            None => {
                                batch.delete(key(k));
                                model.remove(&k);
                            }
                        }
                    }
                    store.write(batch).unwrap();
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
