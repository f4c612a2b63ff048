//! The sequential specifications shipped with the checker.

pub mod kv;
pub mod register;
