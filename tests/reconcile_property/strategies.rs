//! Proptest strategies for what one requirer member sends, shared by the reconcile property
//! test and the model test (`tests/model.rs`). Kept apart from `scenario.rs`, which the fuzz
//! target also builds and which therefore cannot depend on proptest.

use crate::scenario::{Item, POOL_SIZE, Value};
use proptest::prelude::*;

/// A few entries: what most units send, now and then with a little garbage.
pub fn small_item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (0..POOL_SIZE).prop_map(Item::Cert),
        1 => (0..POOL_SIZE, 1..=64usize).prop_map(|(cert, pad)| Item::Padded { cert, pad }),
        1 => (1..=20usize).prop_map(Item::Numbers),
        1 => (1..=20usize).prop_map(Item::Strings),
        1 => (1..=3usize).prop_map(Item::FakePem),
        1 => (1..=3usize).prop_map(Item::Keys),
    ]
}

pub fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => Just(Value::Absent),
        3 => prop::collection::vec(small_item(), 0..4).prop_map(Value::List),
        1 => (1..=64usize).prop_map(Value::NotJson),
    ]
}
