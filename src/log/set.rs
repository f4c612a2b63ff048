//! The set of live segments: the in-memory form of the manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::format::Manifest;
use crate::log::Segment;

/// The live segments: the in-memory form of the manifest.
#[derive(Debug)]
pub(crate) struct SegmentSet {
    /// Sealed segments (read-only from now on), by id.
    pub(crate) sealed: BTreeMap<u64, Arc<Segment>>,
    /// The segment the writer appends to.
    pub(crate) active: Arc<Segment>,
    /// The id the next new segment gets.
    pub(crate) next_segment_id: u64,
    /// The store's hash key, fixed at creation.
    pub(crate) hash_key: [u8; 16],
}

impl SegmentSet {
    pub(crate) fn manifest(&self) -> Manifest {
        let mut segments: Vec<u64> = self.sealed.keys().copied().collect();
        segments.push(self.active.id);
        segments.sort_unstable();
        Manifest { segments, active: self.active.id, next_segment_id: self.next_segment_id, hash_key: self.hash_key }
    }

    /// The manifest after a roll-over to the new active segment `id`: the old active segment
    /// joins the sealed ones. Sorted whatever order ids were allocated and committed in.
    pub(crate) fn manifest_with_new_active(&self, id: u64) -> Manifest {
        let mut manifest = self.manifest();
        manifest.segments.push(id);
        manifest.segments.sort_unstable();
        manifest.active = id;
        manifest
    }

    /// Takes a fresh segment id.
    pub(crate) fn allocate_id(&mut self) -> u64 {
        let id = self.next_segment_id;
        self.next_segment_id += 1;
        id
    }

    /// Every live segment, sealed ones in id order, then the active one.
    pub(crate) fn all(&self) -> Vec<Arc<Segment>> {
        let mut all: Vec<_> = self.sealed.values().cloned().collect();
        all.push(Arc::clone(&self.active));
        all
    }
}
