//! The segments index entries point to, by slot: an entry holds a 20-bit slot number instead of
//! an `Arc<Segment>`, which makes it 10 bytes instead of 16 (DESIGN.md, "The index").
//!
//! What the `Arc` in each entry guaranteed, the table guarantees with a count: a segment is not
//! dropped (unmapped, its file removed) while an entry points to it. Each slot holds one strong
//! reference to its segment and counts the entries that point to it. An [`Entry`] is made only
//! by [`SegmentTable::entry`], which counts it in, and unmade only by [`SegmentTable::forget`],
//! which takes it by value and counts it out; an entry is not `Clone`. So while an entry exists
//! its slot's count is above zero. A slot lets go of its segment only when its count is zero
//! *and* compaction has retired the segment ([`SegmentTable::retire`]; whichever comes second
//! releases it), and only then can the slot be reused. [`SegmentTable::resolve`] lends the
//! segment for as long as the entry it was given is borrowed, which is how a reader that found
//! an entry under its stripe's read lock reads the record: compaction's relocation of that
//! entry takes the stripe's write lock, so it waits for the reader, and the retire step comes
//! after every relocation.
//!
//! An entry dropped without `forget` (the index dropped, a panic) leaves its count above zero:
//! its segment then lives until the table is dropped, which is a leak, never a dangling read.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::log::Segment;

/// A segment's slot, as `Segment::index_slot` holds it, when it has none yet.
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// `Segment::index_slot` of a segment retired from the table: it never gets a slot (again).
const RETIRED_SLOT: u32 = u32::MAX - 1;

/// Slots in the first chunk; chunk `k` holds `FIRST_CHUNK_SLOTS << k`, so the table grows by
/// doubling without ever moving a slot a reader may be looking at.
const FIRST_CHUNK_SLOTS: usize = 64;
/// Chunks: room for `FIRST_CHUNK_SLOTS * (2^CHUNKS - 1)` segments alive at once, just under the
/// 2^20 an entry's slot can name (64 TiB of 64 MiB segments).
const CHUNKS: usize = 14;
/// Segments an index can point to at once.
const SLOTS_MAX: u32 = (FIRST_CHUNK_SLOTS * ((1 << CHUNKS) - 1)) as u32;
const _: () = assert!(SLOTS_MAX <= 1 << ENTRY_SLOT_BITS && SLOTS_MAX < RETIRED_SLOT);
// The writer keeps at most LIVE_SEGMENTS_MAX live (`Error::TooManySegments`); a compaction run
// writes at most one output more than it has inputs and commits them before it retires those,
// so the slots in use stay below twice that, plus the segments an altered hint pins.
const _: () = assert!(2 * crate::format::LIVE_SEGMENTS_MAX < SLOTS_MAX as usize);

/// Bits of the key's hash an entry keeps. A put or get reads a record to compare keys for each
/// entry of its probe whose bits match, and a stripe's table, whose hash is spread from them,
/// tells 2^28 hashes apart. Two keys of a stripe share them with odds of about n^2 / 2^29 for n
/// keys in the stripe: 7 such pairs in a million keys with 256 stripes, 0.07% of the keys at a
/// hundred million. With 24 bits it was 116 pairs in a million keys, and each false match read
/// a record from the mapped segment (a page fault mapping a whole folio: +90 MB of file pages
/// in the process's RSS while a million keys were written, and a disk read where the segment is
/// not cached).
pub(crate) const ENTRY_HASH_BITS: u32 = 28;
/// Bits of an entry's segment slot: 2^20 segments, as many as a Linux process may have files
/// open by default (`fs.nr_open`), and every segment holds its file open.
const ENTRY_SLOT_BITS: u32 = 20;
const _: () = assert!(ENTRY_HASH_BITS + ENTRY_SLOT_BITS <= 48, "hash and slot share 48 bits");
const _: () = assert!(std::mem::size_of::<Entry>() == 10 && std::mem::align_of::<Entry>() == 2);

/// Where a key's latest record lives: the record's offset in its segment, its segment's slot in
/// the [`SegmentTable`] (20 bits) and 28 bits of the key's hash, packed in 10 bytes (aligned to
/// 2, so a table's slots are 10 bytes each). Not `Clone`: see the module doc.
#[derive(Debug)]
#[repr(C, packed(2))]
pub(crate) struct Entry {
    offset: u32,
    /// The hash's bits, then the slot's above them: the low 32 of those 48 bits.
    low: u32,
    /// Their high 16 bits.
    high: u16,
}

impl Entry {
    fn new(slot: u32, offset: u32, hash: u32) -> Entry {
        debug_assert!(slot < 1 << ENTRY_SLOT_BITS && hash < 1 << ENTRY_HASH_BITS, "slot {slot}, hash {hash:#x}");
        let packed = u64::from(hash) | u64::from(slot) << ENTRY_HASH_BITS;
        Entry { offset, low: packed as u32, high: (packed >> 32) as u16 }
    }

    fn packed(&self) -> u64 {
        u64::from(self.low) | u64::from(self.high) << 32
    }

    /// The record's offset in its segment.
    #[inline]
    pub(crate) fn offset(&self) -> u32 {
        self.offset
    }

    /// The stored bits of the key's hash.
    #[inline]
    pub(crate) fn hash(&self) -> u32 {
        self.low & ((1 << ENTRY_HASH_BITS) - 1)
    }

    #[inline]
    fn slot(&self) -> u32 {
        (self.packed() >> ENTRY_HASH_BITS) as u32
    }

    /// Where the entry points, as a copy that counts nothing: for the ordered set, which keeps
    /// the location of each of its keys beside the key so that a range read needs no hash lookup.
    #[inline]
    pub(crate) fn location(&self) -> Location {
        Location { offset: self.offset, slot: self.slot() }
    }
}

/// An entry's segment slot and record offset (8 bytes), copied out of it: what the ordered set
/// keeps per key (`ordered.rs`). Unlike an [`Entry`] it is not counted in the slot, so it keeps
/// no segment alive: it is read only while an entry equal to it is known to exist (see
/// [`SegmentTable::resolve_location`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    offset: u32,
    slot: u32,
}

impl Location {
    /// The record's offset in its segment.
    #[inline]
    pub(crate) fn offset(self) -> u32 {
        self.offset
    }

    /// Its segment's slot: two locations with the same slot, read while entries equal to both
    /// exist, are in the same segment.
    #[inline]
    pub(crate) fn slot(self) -> u32 {
        self.slot
    }

    /// A location that no entry has, for the ordered set's own tests.
    #[cfg(test)]
    pub(crate) fn unused(offset: u32) -> Location {
        Location { offset, slot: SLOTS_MAX }
    }
}

/// One segment's place in the table.
struct Slot {
    /// The segment (from `Arc::into_raw`: the slot's strong reference), null when free.
    segment: AtomicPtr<Segment>,
    /// Entries that point here.
    entries: AtomicUsize,
    /// Compaction retired the segment: the slot lets go of it once `entries` is zero.
    retired: AtomicBool,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            segment: AtomicPtr::new(std::ptr::null_mut()),
            entries: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }
}

/// The segments entries point to, by slot.
pub(crate) struct SegmentTable {
    chunks: [OnceLock<Box<[Slot]>>; CHUNKS],
    /// Taken to give out or take back a slot (once per segment, not per entry).
    free: Mutex<FreeSlots>,
}

#[derive(Default)]
struct FreeSlots {
    /// Slots released, to reuse first.
    released: Vec<u32>,
    /// Slots below this have been given out at least once.
    next: u32,
}

/// The chunk slot `slot` lives in, and its place there.
fn chunk_of(slot: u32) -> (usize, usize) {
    let scaled = slot as usize / FIRST_CHUNK_SLOTS + 1;
    let chunk = scaled.ilog2() as usize;
    (chunk, slot as usize - FIRST_CHUNK_SLOTS * ((1 << chunk) - 1))
}

impl SegmentTable {
    pub(crate) fn new() -> SegmentTable {
        SegmentTable { chunks: std::array::from_fn(|_| OnceLock::new()), free: Mutex::new(FreeSlots::default()) }
    }

    fn slot(&self, slot: u32) -> &Slot {
        let (chunk, at) = chunk_of(slot);
        &self.chunks[chunk].get().expect("a slot given out lives in an allocated chunk")[at]
    }

    /// A new entry for the record at `offset` in `segment`, counted in `segment`'s slot (given
    /// one first if it has none). `segment` must not be retired.
    pub(crate) fn entry(&self, segment: &Arc<Segment>, offset: u32, hash: u32) -> Entry {
        let mut slot = segment.index_slot.load(Ordering::Acquire);
        if slot >= RETIRED_SLOT {
            slot = self.register(segment);
        }
        // Relaxed: the count is read for a decision only by `forget` and `retire`, with SeqCst
        // (below); an increment cannot race with the release, which needs a zero count and a
        // retired segment, and a retired segment gets no new entries.
        let place = self.slot(slot);
        debug_assert!(!place.retired.load(Ordering::Relaxed), "segment {} is retired: no new entries", segment.id);
        place.entries.fetch_add(1, Ordering::Relaxed);
        Entry::new(slot, offset, hash)
    }

    /// A maker of up to `count` entries into `segment`, for recovery's bulk load: the slot is
    /// looked up once and `count` entries are counted in at once, before any is made, so the
    /// count never falls below the entries that exist (rule 1 of the module doc, with room to
    /// spare); [`BulkEntries::finish`] counts the unused ones out. One atomic add per batch
    /// instead of one per entry, on a count that both loader threads would otherwise share.
    pub(crate) fn bulk(&self, segment: &Arc<Segment>, count: usize) -> BulkEntries<'_> {
        let mut slot = segment.index_slot.load(Ordering::Acquire);
        if slot >= RETIRED_SLOT {
            slot = self.register(segment);
        }
        let place = self.slot(slot);
        debug_assert!(!place.retired.load(Ordering::Relaxed), "segment {} is retired: no new entries", segment.id);
        place.entries.fetch_add(count, Ordering::Relaxed);
        BulkEntries { table: self, slot, reserved: count, made: 0 }
    }

    /// Gives `segment` a slot holding a strong reference to it.
    #[cold]
    fn register(&self, segment: &Arc<Segment>) -> u32 {
        let mut free = self.free.lock();
        let slot = segment.index_slot.load(Ordering::Acquire);
        assert_ne!(slot, RETIRED_SLOT, "segment {} was retired: no entry may point to it again", segment.id);
        if slot != NO_SLOT {
            return slot; // registered meanwhile
        }
        let slot = free.released.pop().unwrap_or_else(|| {
            let slot = free.next;
            assert!(slot < SLOTS_MAX, "more than {SLOTS_MAX} segments alive at once");
            free.next += 1;
            slot
        });
        let (chunk, _) = chunk_of(slot);
        let slots = self.chunks[chunk].get_or_init(|| (0..FIRST_CHUNK_SLOTS << chunk).map(|_| Slot::new()).collect());
        let place = &slots[chunk_of(slot).1];
        debug_assert!(place.segment.load(Ordering::Relaxed).is_null(), "a slot given out is free");
        debug_assert_eq!(place.entries.load(Ordering::Relaxed), 0, "a free slot counts no entries");
        place.retired.store(false, Ordering::Relaxed);
        place.segment.store(Arc::into_raw(Arc::clone(segment)).cast_mut(), Ordering::Release);
        segment.index_slot.store(slot, Ordering::Release);
        slot
    }

    /// The segment `entry` points to, for as long as `entry` is borrowed.
    #[inline]
    pub(crate) fn resolve<'e>(&'e self, entry: &'e Entry) -> &'e Segment {
        let ptr = self.slot(entry.slot()).segment.load(Ordering::Acquire);
        debug_assert!(!ptr.is_null(), "an entry's slot holds its segment");
        // SAFETY: `entry` exists, so its slot counts it (only `entry` counts an entry in, only
        // `forget`, which consumes it, counts it out) and the slot has not released its strong
        // reference (`release_if_unused` needs a zero count): `ptr` came from `Arc::into_raw`
        // and the allocation it points to lives at least as long as that reference, which
        // outlives the borrow of `entry` (it cannot be consumed while borrowed). The slot was
        // filled before the entry was made, and the entry reached this thread through its
        // stripe's lock, so the load sees the pointer stored for it.
        unsafe { &*ptr }
    }

    /// The segment `location` names, for as long as `self` is borrowed.
    ///
    /// # Safety
    /// An entry whose [`Entry::location`] is `location` must exist, and must not be forgotten,
    /// for as long as the returned reference is used: the slot's count then stays above zero,
    /// so it keeps its segment (the ordered set guarantees this by changing a covered key's
    /// location only under its write lock, which a range reader holds for reading).
    #[inline]
    pub(crate) unsafe fn resolve_location(&self, location: Location) -> &Segment {
        let ptr = self.slot(location.slot).segment.load(Ordering::Acquire);
        debug_assert!(!ptr.is_null(), "a location's slot holds its segment");
        // SAFETY: by the caller's promise an entry with this slot exists and outlives the use of
        // the reference, so (as in `resolve`) the slot holds its strong reference from
        // `Arc::into_raw` meanwhile. The location reached this thread through the ordered set's
        // lock, taken after the entry was made and its slot filled, so the load sees the pointer.
        unsafe { &*ptr }
    }

    /// Counts `entry` out of its slot: the entry is gone. Releases the slot if that was its last
    /// entry and its segment is retired.
    pub(crate) fn forget(&self, entry: Entry) {
        let slot = self.slot(entry.slot());
        // SeqCst, with `retire`'s: of a last `forget` and a `retire` racing, at least one sees
        // the other's write and releases the slot (`release_if_unused` checks again, under its
        // lock, so that only one does).
        if slot.entries.fetch_sub(1, Ordering::SeqCst) == 1 && slot.retired.load(Ordering::SeqCst) {
            self.release_if_unused(entry.slot());
        }
    }

    /// Compaction's retire step, after its relocations: `segment` is in no manifest any more and
    /// gets no new entries. Its slot lets go of it at once if no entry points to it, else when the
    /// last one is forgotten (only entries from a hint altered behind a matching checksum can
    /// outlive a compaction's relocations).
    pub(crate) fn retire(&self, segment: &Segment) {
        let slot = {
            let _free = self.free.lock();
            match segment.index_slot.load(Ordering::Acquire) {
                NO_SLOT => {
                    // Never pointed to: make sure it never will be.
                    segment.index_slot.store(RETIRED_SLOT, Ordering::Release);
                    return;
                }
                RETIRED_SLOT => return,
                slot => {
                    // Under the lock, so that the slot cannot change hands meanwhile (it is
                    // released only once retired, and given out only under the lock).
                    self.slot(slot).retired.store(true, Ordering::SeqCst);
                    slot
                }
            }
        };
        if self.slot(slot).entries.load(Ordering::SeqCst) == 0 {
            self.release_if_unused(slot);
        }
    }

    /// Drops the slot's reference to its segment and frees the slot if the segment is retired
    /// and no entry points to it. A last `forget` and a `retire` may both get here, and the
    /// first may have released the slot and `register` given it to another segment before the
    /// second takes the lock: so both conditions are checked again under the lock that gives
    /// slots out, for whichever segment holds the slot then. They are enough: a retired
    /// segment gets no new entry, so once its count is zero it stays zero.
    fn release_if_unused(&self, slot: u32) {
        let place = self.slot(slot);
        let mut free = self.free.lock();
        if !place.retired.load(Ordering::SeqCst) || place.entries.load(Ordering::SeqCst) != 0 {
            return;
        }
        let ptr = place.segment.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if ptr.is_null() {
            return; // released already, and not given out again
        }
        // SAFETY: `ptr` came from `Arc::into_raw` in `register` and is taken out of the slot by
        // this swap, under the lock, once: this is the slot's strong reference, given back
        // exactly once. No entry points to the slot (a zero count, and none can be made: the
        // segment is retired), so no `resolve` borrow of it is alive.
        let segment = unsafe { Arc::from_raw(ptr) };
        segment.index_slot.store(RETIRED_SLOT, Ordering::Release);
        free.released.push(slot);
        drop(free);
        // Last, outside the lock: this may be the last reference, and dropping it removes the
        // retired file.
        drop(segment);
    }

    /// Segments with a slot, and the bytes the table holds allocated (for the footprint).
    pub(crate) fn allocated_bytes(&self) -> usize {
        let slots: usize = self.chunks.iter().filter_map(|c| c.get()).map(|c| c.len()).sum();
        slots * std::mem::size_of::<Slot>() + self.free.lock().released.capacity() * 4
    }
}

/// Entries into one segment made under one count ([`SegmentTable::bulk`]).
pub(crate) struct BulkEntries<'t> {
    table: &'t SegmentTable,
    slot: u32,
    /// Entries counted in ahead.
    reserved: usize,
    /// Entries made and not forgotten since.
    made: usize,
}

impl BulkEntries<'_> {
    /// A new entry for the record at `offset`, counted in already.
    #[inline]
    pub(crate) fn entry(&mut self, offset: u32, hash: u32) -> Entry {
        assert!(self.made < self.reserved, "at most the {} entries counted in ahead", self.reserved);
        self.made += 1;
        Entry::new(self.slot, offset, hash)
    }

    /// Whether `entry` points into this maker's segment.
    #[inline]
    pub(crate) fn owns(&self, entry: &Entry) -> bool {
        entry.slot() == self.slot
    }

    /// Counts `entry` out: locally if it is one of this maker's segment (its count holds it
    /// until [`BulkEntries::finish`]), else through [`SegmentTable::forget`].
    #[inline]
    pub(crate) fn forget(&mut self, entry: Entry) {
        if self.owns(&entry) && self.made > 0 {
            self.made -= 1;
        } else {
            self.table.forget(entry);
        }
    }

    /// Counts the entries reserved but not made (or made and forgotten) out of the slot.
    pub(crate) fn finish(self) {
        let unused = self.reserved - self.made;
        if unused > 0 {
            // Not the slot's last entries unless none was made: its segment is not retired
            // while recovery loads (compaction has not started), so nothing is to be released.
            self.table.slot(self.slot).entries.fetch_sub(unused, Ordering::SeqCst);
        }
    }
}

impl Drop for SegmentTable {
    fn drop(&mut self) {
        for chunk in self.chunks.iter_mut().filter_map(|c| c.get_mut()) {
            for place in chunk.iter_mut() {
                let ptr = std::mem::replace(place.segment.get_mut(), std::ptr::null_mut());
                if !ptr.is_null() {
                    // SAFETY: the slot's strong reference from `Arc::into_raw`, given back once;
                    // `&mut self` means no entry of this table is borrowed for `resolve`.
                    drop(unsafe { Arc::from_raw(ptr) });
                }
            }
        }
    }
}

/// `Segment::index_slot`'s starting value.
pub(crate) fn new_index_slot() -> AtomicU32 {
    AtomicU32::new(NO_SLOT)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::io::sim::SimFs;
    use crate::io::Vfs;
    use crate::log::segment_on;

    fn vfs() -> Arc<SimFs> {
        let vfs = SimFs::new();
        vfs.create_dir_all(Path::new("/set")).unwrap();
        vfs
    }

    #[test]
    fn slots_map_to_chunks_that_double() {
        assert_eq!(chunk_of(0), (0, 0));
        assert_eq!(chunk_of(63), (0, 63));
        assert_eq!(chunk_of(64), (1, 0));
        assert_eq!(chunk_of(191), (1, 127));
        assert_eq!(chunk_of(192), (2, 0));
        assert_eq!(chunk_of(SLOTS_MAX - 1), (CHUNKS - 1, (FIRST_CHUNK_SLOTS << (CHUNKS - 1)) - 1));
    }

    #[test]
    fn an_entry_packs_its_offset_slot_and_hash() {
        let max = (1 << ENTRY_SLOT_BITS) - 1;
        for (slot, offset, hash) in [(0, 0, 0), (max, u32::MAX, (1 << ENTRY_HASH_BITS) - 1), (0x1_2345, 77, 0xabc_def1)]
        {
            let e = Entry::new(slot, offset, hash);
            assert_eq!((e.slot(), e.offset(), e.hash()), (slot, offset, hash));
        }
    }

    #[test]
    fn an_entry_resolves_to_its_segment() {
        let vfs = vfs();
        let table = SegmentTable::new();
        let (a, b) = (segment_on(&vfs, 1), segment_on(&vfs, 2));
        let (ea, eb) = (table.entry(&a, 10, 7), table.entry(&b, 20, 8));
        assert_eq!((table.resolve(&ea).id, table.resolve(&eb).id), (1, 2));
        assert_eq!(Arc::strong_count(&a), 2, "one reference for the slot, not one per entry");
        let again = table.entry(&a, 30, 9);
        assert_eq!(Arc::strong_count(&a), 2);
        assert_eq!(again.slot(), ea.slot());
    }

    /// The property the `Arc` in each entry used to give: a retired segment lives until the last
    /// entry pointing to it is forgotten, and only then is its slot free for another segment.
    #[test]
    fn a_retired_segment_lives_until_its_last_entry_is_forgotten() {
        let vfs = vfs();
        let table = SegmentTable::new();
        let a = segment_on(&vfs, 1);
        let weak = Arc::downgrade(&a);
        let (e1, e2) = (table.entry(&a, 10, 0), table.entry(&a, 20, 0));
        let slot = e1.slot();
        table.retire(&a);
        drop(a);
        assert!(weak.upgrade().is_some(), "two entries point to it");
        table.forget(e1);
        assert_eq!(table.resolve(&e2).id, 1, "still readable through the remaining entry");
        table.forget(e2);
        assert!(weak.upgrade().is_none(), "released with its last entry");
        let b = segment_on(&vfs, 2);
        assert_eq!(table.entry(&b, 0, 0).slot(), slot, "the slot is reused");
    }

    #[test]
    fn a_segment_retired_without_entries_is_released_at_once() {
        let vfs = vfs();
        let table = SegmentTable::new();
        let a = segment_on(&vfs, 1);
        let e = table.entry(&a, 10, 0);
        table.forget(e);
        assert_eq!(Arc::strong_count(&a), 2, "a live segment keeps its slot without entries");
        table.retire(&a);
        assert_eq!(Arc::strong_count(&a), 1);
        let never = segment_on(&vfs, 2);
        table.retire(&never);
        assert_eq!(never.index_slot.load(Ordering::Relaxed), RETIRED_SLOT);
    }

    #[test]
    #[should_panic(expected = "was retired")]
    fn a_retired_segment_gets_no_new_entry() {
        let vfs = vfs();
        let table = SegmentTable::new();
        let a = segment_on(&vfs, 1);
        table.retire(&a);
        table.entry(&a, 0, 0);
    }

    /// The slower of a racing last `forget` and `retire` may reach the release after the faster
    /// one released the slot and another segment took it: it must leave that segment alone
    /// unless it too is retired and unused.
    #[test]
    fn a_late_second_release_leaves_the_slot_s_next_segment_alone() {
        let vfs = vfs();
        let table = SegmentTable::new();
        let a = segment_on(&vfs, 1);
        let ea = table.entry(&a, 0, 0);
        let slot = ea.slot();
        table.retire(&a);
        table.forget(ea);
        let b = segment_on(&vfs, 2);
        let eb = table.entry(&b, 0, 0);
        assert_eq!(eb.slot(), slot, "the slot went to the next segment");
        table.release_if_unused(slot);
        assert_eq!((table.resolve(&eb).id, Arc::strong_count(&b)), (2, 2), "not retired: kept");
        table.retire(&b);
        table.release_if_unused(slot);
        assert_eq!((table.resolve(&eb).id, Arc::strong_count(&b)), (2, 2), "retired, but an entry points to it");
        table.forget(eb);
        assert_eq!(Arc::strong_count(&b), 1, "released with its last entry");
    }

    /// A last `forget` racing a `retire` from another thread: the segment is released exactly
    /// once, whichever comes second (a double release would drop the `Arc` twice).
    #[test]
    fn a_last_forget_racing_a_retire_releases_once() {
        let vfs = vfs();
        for _ in 0..200 {
            let table = SegmentTable::new();
            let a = segment_on(&vfs, 1);
            let weak = Arc::downgrade(&a);
            let e = table.entry(&a, 0, 0);
            std::thread::scope(|s| {
                s.spawn(|| table.forget(e));
                s.spawn(|| table.retire(&a));
            });
            drop(a);
            assert!(weak.upgrade().is_none(), "released");
            drop(table);
            vfs.remove_file(Path::new("/set/0000000000000001.seg")).unwrap();
        }
    }
}
