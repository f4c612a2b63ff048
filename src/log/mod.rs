//! The segment log: segment files, the manifest that lists them, the group-commit writer and the
//! frame scanner.
//!
//! Lock order (outer first): `Writer::log` (held by the group-commit leader) -> `SegmentSet`
//! (held while the manifest is replaced) -> an index stripe. The writer's queue mutex is never held
//! while taking any of these.

mod queue;
mod scan;
mod segment;
mod set;
mod txn;
mod writer;

pub(crate) use queue::{Done, Encoded, Eval, Op, Outcome, Slot};
pub(crate) use scan::{scan_frames, walk_segment, GroupRule, Replayed, ScanEnd, Walked};
pub(crate) use segment::{fresh_salt, hint_file_name, parse_file_name, segment_file_name, Segment};
pub(crate) use set::{create_segment_file, LogDir, SegmentSet, MANIFEST_FILE, MANIFEST_TMP_FILE};
pub use txn::{Expiry, Txn};
pub(crate) use writer::{ActiveLog, Writer};
