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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::io::sim::SimFs;
    use crate::io::Vfs;
    use crate::log::segment::tests::segment_on;

    /// A roll-over allocates its id before a compaction commits outputs of higher ids; whichever
    /// order they reach the set in, the roll-over's manifest lists ids ascending (the manifest
    /// encoder asserts it) with the new segment active.
    #[test]
    fn a_roll_over_manifest_is_sorted_when_a_compaction_committed_higher_ids_first() {
        let vfs = SimFs::new();
        vfs.create_dir_all(Path::new("/set")).unwrap();
        // Sealed 1; the active 2 rolls over to 4 (allocated first); compaction's output 5 is
        // already sealed; so is 3, an output committed by an earlier run.
        let sealed = [1, 3, 5].into_iter().map(|id| (id, segment_on(&vfs, id))).collect();
        let set = SegmentSet { sealed, active: segment_on(&vfs, 2), next_segment_id: 6, hash_key: [7; 16] };
        let manifest = set.manifest_with_new_active(4);
        assert_eq!(manifest.segments, vec![1, 2, 3, 4, 5]);
        assert_eq!(manifest.active, 4);
        assert_eq!(manifest.next_segment_id, 6);
        crate::format::encode_manifest(&manifest);
    }
}
