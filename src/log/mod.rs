//! The segment log: the store directory and its files, segment files, the manifest that lists
//! them, the hint files that describe sealed ones, the group-commit writer and the frame scanner.
//!
//! Lock order (outer first): `Writer::log` (held by the group-commit leader) -> `SegmentSet`
//! (held while the manifest is replaced) -> an index stripe. The writer's queue mutex is never held
//! while taking any of these.

mod dir;
mod encoded;
mod hints;
mod pool;
mod queue;
mod scan;
mod segment;
mod set;
mod txn;
mod writer;

pub(crate) use dir::{
    create_segment_file, is_orphan, open_segment, reuse_segment_file, temp_name, LogDir, SegmentFile, LOCK_FILE,
    MANIFEST_FILE,
};
pub(crate) use encoded::Encoded;
pub(crate) use hints::{check_hint, entry_for, write_hint};
pub(crate) use pool::SegmentPool;
pub(crate) use queue::{Done, Eval, Op, Outcome, Slot};
pub(crate) use scan::{scan_frames, walk_segment, GroupRule, Replayed, ScanEnd, Walked};
#[cfg(test)]
pub(crate) use segment::tests::segment_on;
pub(crate) use segment::{
    fresh_salt, hint_file_name, map_len, parse_file_name, pool_file_name, segment_file_name, Segment, POOL_SUFFIX,
};
pub(crate) use set::SegmentSet;
pub use txn::{Expiry, KeyMeta, Savepoint, Txn};
pub(crate) use writer::{ActiveLog, Writer};
