//! Writing the hint files that sealed segments still lack, in the background and at close. How a
//! hint is built, written and checked is `log/hints.rs`.

use std::sync::Arc;

use crate::engine::Engine;
use crate::log::{write_hint, Segment};

/// Writes hints for every sealed segment that needs one. Failures are left for a later attempt:
/// a missing hint only makes the next open slower.
///
/// Holds the compaction lock throughout: hint writing and compaction both work on sealed
/// segments, and a hint writer that held a segment while compaction retired it would keep the
/// segment's file on disk after the compaction returned (it goes with the last `Arc`), then write
/// a hint file for a segment no manifest names any more.
pub(crate) fn write_pending(engine: &Engine) {
    let _compaction = engine.compaction.lock();
    let mut pending = std::mem::take(&mut *engine.need_hints.lock());
    pending.extend(engine.writer.take_sealed());
    if !engine.options.write_hints || pending.is_empty() {
        return;
    }
    let mut failed = Vec::new();
    for id in pending {
        let segment: Option<Arc<Segment>> = engine.sets.lock().sealed.get(&id).cloned();
        let Some(segment) = segment else { continue }; // compacted away meanwhile
        if write_hint(&engine.dir, &segment, engine.index.hasher()).is_err() {
            failed.push(id);
        }
    }
    engine.need_hints.lock().extend(failed);
}
