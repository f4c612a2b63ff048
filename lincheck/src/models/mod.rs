//! The sequential specifications shipped with the checker.

pub mod register;
