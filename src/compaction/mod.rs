//! Online compaction of sealed segments: *when* and *which* (policy, pure logic) apart from the
//! rewrite itself.

pub(crate) mod policy;
mod rewrite;

pub use rewrite::CompactionReport;

pub(crate) use rewrite::{compact, compact_if_due};
