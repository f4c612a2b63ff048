//! The fuzz targets' checks, shared with the stable-toolchain replay test (`tests/fuzz_corpus.rs`
//! in the root crate), which includes this module with `#[path]`. Each `check(data)` panics when
//! the store breaks a promise for that input; it is the whole body of its fuzz target.
#![allow(dead_code)]

pub mod common;
pub mod hint_decode;
pub mod ops_model;
pub mod record_decode;
pub mod segment_recover;

/// A target's check.
pub type Check = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: [(&str, Check); 4] = [
    ("record_decode", record_decode::check),
    ("segment_recover", segment_recover::check),
    ("hint_decode", hint_decode::check),
    ("ops_model", ops_model::check),
];
