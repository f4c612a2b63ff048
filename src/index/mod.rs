//! The in-RAM index: key -> location of its latest record, in lock-striped hash tables.
//!
//! An entry holds no key and no value: only its segment's slot in the segment table
//! (`segments.rs`), the record's offset and 28 bits of the key's hash (10 bytes). Keys are
//! compared against the record in the mapped segment, which the read path touches anyway to copy
//! the value. A stripe is chosen by bits of the store's keyed SipHash-1-3 (`format/hash.rs`, its key in
//! the manifest) so an attacker cannot aim keys at one stripe or bucket.
//!
//! Invariants: a segment an entry points to stays mapped for as long as the entry exists (the
//! segment table counts entries per segment, see `segments.rs`); an entry points to a `Put`
//! record at or below its segment's `data_end` (during recovery, also to tombstones, swept
//! before the store opens); a segment's `live_bytes` is the sum of the lengths of the records
//! entries point to; `Index::expiries` holds the expiry of every entry whose record has one, so
//! the live keys are counted without visiting entries ([`Index::live_len`]).
//!
//! Keys under the prefixes declared with `Options::ordered_prefix` are also kept in an ordered
//! set (`ordered.rs`), each with a copy of its entry's location. Its keys change only where the
//! entry count does ([`Index::entered`], [`Index::left`]), its locations where an entry is
//! replaced or relocated ([`Index::moved`]): its keys and locations are exactly the entries'
//! under those prefixes once the store is open (checked by [`Index::check_ordered`]).

mod ordered;
mod segments;

use std::borrow::Cow;
use std::collections::{btree_map, BTreeMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use hashbrown::{hash_table, HashTable};
use parking_lot::{Mutex, RwLock};

use crate::format::hash::KeyHasher;
use crate::format::{decode_record_header, is_expired, RecordHeader, RecordKind, KEYSPACE_MARKER};
use crate::log::Segment;
use crate::Result;
pub(crate) use ordered::in_range;
use ordered::{not_ordered, KeyRun, Ordered, OrderedWrite};
pub(crate) use segments::new_index_slot;
use segments::{BulkEntries, Entry, Location, SegmentTable, ENTRY_HASH_BITS};

/// Keys a dropped keyspace's removal reads per hold of the ordered set's read lock.
const FORGET_CHUNK_KEYS: usize = 1024;

/// A key's hash, split into the stripe it lives in and the bits stored in the entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHash {
    stripe: usize,
    short: u32,
}

/// The bits of a key's full hash that its entry keeps: the low [`ENTRY_HASH_BITS`] (the stripe
/// is chosen by bits 32 and up).
fn short_hash(full: u64) -> u32 {
    full as u32 & ((1 << ENTRY_HASH_BITS) - 1)
}

impl KeyHash {
    /// The hash given to the stripe's table: the stored bits spread over 64, so that the table
    /// can recompute it from the entry when it grows.
    fn table_hash(short: u32) -> u64 {
        u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(short)
    }
}

/// What a lookup found: the key's latest record, readable for as long as the stripe's lock is
/// held.
pub(crate) struct Found<'a> {
    pub(crate) segment: &'a Segment,
    pub(crate) offset: u32,
    pub(crate) header: RecordHeader,
    /// The segment's mapped bytes when the reader took them as one slice, else empty.
    pub(crate) mapped: &'a [u8],
}

impl<'a> Found<'a> {
    /// The record's value.
    pub(crate) fn value(&self) -> Option<Cow<'a, [u8]>> {
        let start = self.offset as usize + self.header.header_len + self.header.key_len;
        match self.mapped.get(start..start + self.header.value_len) {
            Some(value) => Some(Cow::Borrowed(value)),
            None => self.segment.value(self.offset, &self.header),
        }
    }

    /// The record's key and value, back to back as the record holds them (`key_len` bytes of
    /// key, then the value): one copy for a reader that keeps both.
    pub(crate) fn key_value(&self) -> Option<Cow<'a, [u8]>> {
        let start = self.offset as usize + self.header.header_len;
        match self.mapped.get(start..start + self.header.key_len + self.header.value_len) {
            Some(both) => Some(Cow::Borrowed(both)),
            None => self.segment.read(
                u64::from(self.offset) + self.header.header_len as u64,
                self.header.key_len + self.header.value_len,
            ),
        }
    }

    /// Whether the record is exactly `(segment id, offset)`.
    pub(crate) fn is_at(&self, segment_id: u64, offset: u32) -> bool {
        self.segment.id == segment_id && self.offset == offset
    }
}

pub(crate) struct Index {
    stripes: Box<[RwLock<HashTable<Entry>>]>,
    /// The segments the entries point to, by slot.
    segments: SegmentTable,
    stripe_mask: usize,
    hasher: KeyHasher,
    len: AtomicUsize,
    /// The expiry of every entry that has one. A leaf lock: taken under stripe locks, never
    /// the other way round, and only when an entry with an expiry comes or goes (a store that
    /// writes no expiry never takes it on the write path).
    expiries: Mutex<Expiries>,
    /// The ordered keys under the declared prefixes; `None` (one pointer, no lock ever taken)
    /// when none are declared, and during recovery's load, until [`Index::order_prefixes`].
    /// Set at most once: at open, or by the first keyspace created in a store that had neither
    /// (so a store without either never pays for it).
    ordered: OnceLock<Box<Ordered>>,
    /// The ids of the registered keyspaces (DESIGN.md, "Keyspaces"), for the one check of
    /// stored keys under the keyspace marker that writes and transactions share
    /// ([`Index::check_marked_key`]); set by the engine from the registry.
    live_spaces: RwLock<Vec<u32>>,
    /// The store has a keyspace registry: keys under the marker are keyspaces' keys, left out
    /// of the default keyspace's count, iteration and scans. Without one (every store written
    /// before keyspaces), such keys are ordinary keys of the default keyspace.
    has_keyspaces: std::sync::atomic::AtomicBool,
    /// Entries read by walks over whole stripes (scans, iteration), for tests that assert what a
    /// call costs by the entries it visits rather than by a timing.
    #[cfg(test)]
    visited: std::sync::atomic::AtomicU64,
}

impl Index {
    pub(crate) fn new(stripes: usize, hasher: KeyHasher) -> Index {
        assert!(stripes.is_power_of_two(), "stripe count {stripes} is a power of two");
        Index {
            stripes: (0..stripes).map(|_| RwLock::new(HashTable::new())).collect(),
            segments: SegmentTable::new(),
            stripe_mask: stripes - 1,
            hasher,
            len: AtomicUsize::new(0),
            expiries: Mutex::new(Expiries::default()),
            ordered: OnceLock::new(),
            live_spaces: RwLock::new(Vec::new()),
            has_keyspaces: std::sync::atomic::AtomicBool::new(false),
            #[cfg(test)]
            visited: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        let full = self.hasher.hash(key);
        KeyHash { stripe: (full >> 32) as usize & self.stripe_mask, short: short_hash(full) }
    }

    /// Entries in the index (including expired ones not yet compacted away).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Entries not expired at `now_ms`: the entries less those whose expiry has passed, counted
    /// from the ordered expiries in O(log n) plus the expiry times the clock crossed since the
    /// last call (each crossed once while the clock moves forward). Visits no entry. Exact when
    /// no group is being published; meanwhile it may be off by that group's records, as
    /// [`Index::len`] is.
    pub(crate) fn live_len(&self, now_ms: u64) -> usize {
        // The total first: an entry published in between is then at worst not subtracted.
        let entries = self.len();
        entries.saturating_sub(self.expiries.lock().expired_at(now_ms))
    }

    /// Bytes the index holds allocated, part by part ([`Footprint`]): every stripe's slots (an
    /// entry each, used or not) and hashbrown's control bytes, the expiry multiset's nodes
    /// (estimated), and the ordered set's keys and nodes (see `ordered::SET_BYTES_PER_KEY`).
    /// Takes each stripe's read lock in turn: O(stripes), for INFO and stats.
    pub(crate) fn footprint(&self) -> Footprint {
        let mut f =
            Footprint { entries: self.len(), entry_bytes: std::mem::size_of::<Entry>(), ..Footprint::default() };
        for stripe in self.stripes.iter() {
            let buckets = table_buckets(stripe.read().capacity());
            f.buckets += buckets;
            if buckets > 0 {
                f.control_bytes += buckets + TABLE_GROUP_BYTES;
                f.slot_bytes += (buckets * f.entry_bytes).next_multiple_of(TABLE_GROUP_BYTES);
            }
        }
        let expiries = self.expiries.lock();
        f.expiry_bytes = (expiries.later.len() + expiries.passed.len()) * EXPIRY_BYTES_PER_TIME;
        drop(expiries);
        f.ordered_bytes = self.ordered().map_or(0, Ordered::allocated_bytes);
        f.segment_table_bytes = self.segments.allocated_bytes();
        f
    }

    /// Entries with an expiry not passed at `now_ms`, and the mean time they have left (ms; 0
    /// when there are none): O(log n) per expiry time crossed, as [`Index::live_len`].
    pub(crate) fn expiring(&self, now_ms: u64) -> (usize, u64) {
        let mut expiries = self.expiries.lock();
        expiries.expired_at(now_ms);
        let (count, sum) = (expiries.later_count, expiries.later_sum_ms);
        if count == 0 {
            return (0, 0);
        }
        let mean_expiry = sum / count as u128;
        (count, u64::try_from(mean_expiry.saturating_sub(u128::from(now_ms))).unwrap_or(u64::MAX))
    }

    /// Entries read so far by walks over whole stripes ([`Index::scan`],
    /// [`Index::stripe_snapshot`]).
    #[cfg(test)]
    pub(crate) fn entries_visited(&self) -> u64 {
        self.visited.load(Ordering::Relaxed)
    }

    /// Counts `entries` read by a walk (tests only: see [`Index::entries_visited`]).
    fn note_visited(&self, entries: usize) {
        #[cfg(test)]
        self.visited.fetch_add(entries as u64, Ordering::Relaxed);
        #[cfg(not(test))]
        let _ = entries;
    }

    pub(crate) fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// The stripe `key` lives in (for [`ScanPage::covers`]).
    pub(crate) fn stripe_of(&self, key: &[u8]) -> usize {
        self.hash(key).stripe
    }

    /// One page of a scan: the keys that `keep` (given a key and its expiry) accepts, from whole
    /// stripes starting at stripe `cursor`, until at least `count` keys are taken or the index
    /// ends. A key lives in one stripe for the life of the store (its stripe is chosen by its
    /// hash), so a scan that goes on until the cursor is 0 again meets every key that was there
    /// for the whole scan, whatever was written meanwhile. One stripe's read lock is held while
    /// its keys are read.
    pub(crate) fn scan(&self, cursor: u64, count: usize, mut keep: impl FnMut(&[u8], u64) -> bool) -> ScanPage {
        let first = usize::try_from(cursor).unwrap_or(usize::MAX).min(self.stripes.len());
        let mut page = ScanPage::default();
        let mut stripe = first;
        while stripe < self.stripes.len() && (stripe == first || page.keys.len() < count) {
            let table = self.stripes[stripe].read();
            self.note_visited(table.len());
            for entry in table.iter() {
                page.visited += 1;
                let segment = self.segments.resolve(entry);
                let Some(header) = segment.record_header(entry.offset()).filter(|h| h.kind == RecordKind::Put) else {
                    continue;
                };
                let Some(key) = segment.key(entry.offset(), &header) else { continue };
                if keep(&key, header.expires_ms) {
                    page.keys.push(key.into_owned());
                }
            }
            stripe += 1;
        }
        page.stripes = first..stripe;
        page.cursor = if stripe < self.stripes.len() { stripe as u64 } else { 0 };
        page
    }

    /// Runs `f` on the entry for `key` under the stripe's read lock.
    pub(crate) fn with<R>(&self, key: &[u8], f: impl FnOnce(Option<Found<'_>>) -> R) -> R {
        let h = self.hash(key);
        let table = self.stripes[h.stripe].read();
        let found = find(&self.segments, &table, h, key);
        f(found)
    }

    /// Publishes a group's records (in log order) so that readers see all of them or none: every
    /// stripe the group touches is write-locked, in ascending order, before the first record is
    /// applied, and released only after the last. A reader holds one stripe lock at a time and
    /// only the group-commit leader ever holds several, always in that order, so this cannot
    /// deadlock; a group of one record costs one stripe lock, as a single `apply` would. A group
    /// with a key under a declared ordered prefix first takes the ordered set's write lock (which
    /// a range read holds while it takes stripe locks: it comes first), so range reads see it
    /// whole too.
    pub(crate) fn publish(&self, segment: &Arc<Segment>, records: &[Published<'_>]) {
        let Some(first) = records.first() else { return };
        let expiry_min = records.iter().filter(|r| r.expires_ms != 0).map(|r| r.expires_ms).min().unwrap_or(0);
        // Records come in log order: the first has the lowest sequence number.
        let tombstones = records.iter().filter(|r| r.kind == RecordKind::Delete).count() as u64;
        let last = records.last().expect("not empty");
        segment.note_records(records.len() as u64, tombstones, (first.seq, last.seq), expiry_min);
        // Before any stripe lock (see `ordered.rs`), and held until the last record is applied.
        let mut ordered = self.lock_ordered(records.iter().map(|r| r.key));
        if let [record] = records {
            // The common group of one put: one stripe, and nothing to allocate.
            let h = self.hash(record.key);
            self.apply_locked(&mut self.stripes[h.stripe].write(), record, h, segment, &mut ordered);
            return;
        }
        let hashes: Vec<KeyHash> = records.iter().map(|r| self.hash(r.key)).collect();
        let mut touched: Vec<usize> = hashes.iter().map(|h| h.stripe).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut tables: Vec<_> = touched.iter().map(|&s| self.stripes[s].write()).collect();
        for (record, h) in records.iter().zip(&hashes) {
            let at = touched.binary_search(&h.stripe).expect("every touched stripe is locked");
            self.apply_locked(&mut tables[at], record, *h, segment, &mut ordered);
        }
    }

    /// The ordered set's write lock if one of `keys` is under a declared prefix: taken before any
    /// stripe lock by a change that may add or remove such a key. `None` without declared
    /// prefixes, at the cost of one branch.
    fn lock_ordered<'k>(&self, mut keys: impl Iterator<Item = &'k [u8]>) -> Option<OrderedWrite<'_>> {
        let ordered = self.ordered()?;
        keys.any(|key| ordered.covers(key)).then(|| ordered.write())
    }

    /// `key` entered the index, its entry at `location`: the one place (with [`Index::left`] and
    /// the bulk load, which precedes the ordered set) where the entry count and the ordered set's
    /// keys change.
    fn entered(&self, key: &[u8], location: Location, ordered: &mut Option<OrderedWrite<'_>>) {
        self.len.fetch_add(1, Ordering::Relaxed);
        match ordered {
            Some(ordered) => ordered.insert(key, location),
            None => self.debug_assert_not_ordered(key),
        }
    }

    /// `key`'s entry, which stays, now points at `location` (a put over a live key, compaction's
    /// relocation): the ordered set's copy follows, under the same locks.
    fn moved(&self, key: &[u8], location: Location, ordered: &mut Option<OrderedWrite<'_>>) {
        match ordered {
            Some(ordered) => ordered.moved(key, location),
            None => self.debug_assert_not_ordered(key),
        }
    }

    /// `key` left the index; see [`Index::entered`].
    fn left(&self, key: &[u8], ordered: &mut Option<OrderedWrite<'_>>) {
        self.len.fetch_sub(1, Ordering::Relaxed);
        match ordered {
            Some(ordered) => ordered.remove(key),
            None => self.debug_assert_not_ordered(key),
        }
    }

    fn debug_assert_not_ordered(&self, key: &[u8]) {
        debug_assert!(
            self.ordered().is_none_or(|o| !o.covers(key)),
            "a change of a key under an ordered prefix holds the ordered set's lock"
        );
    }

    /// Points a key at a new record (or removes it, for a tombstone) in its locked stripe.
    /// Accounts live bytes on both segments.
    fn apply_locked(
        &self,
        table: &mut HashTable<Entry>,
        r: &Published<'_>,
        h: KeyHash,
        segment: &Arc<Segment>,
        ordered: &mut Option<OrderedWrite<'_>>,
    ) {
        let segs = &self.segments;
        let slot = table.entry(
            KeyHash::table_hash(h.short),
            |e| e.hash() == h.short && entry_key_is(segs, e, r.key),
            |e| KeyHash::table_hash(e.hash()),
        );
        match (slot, r.kind) {
            (hash_table::Entry::Occupied(mut occupied), RecordKind::Put) => {
                let old = std::mem::replace(occupied.get_mut(), segs.entry(segment, r.offset, h.short));
                self.moved(r.key, occupied.get().location(), ordered);
                self.replace_expiry(retire(segs, old), r.expires_ms);
                segment.add_live(r.len);
            }
            (hash_table::Entry::Occupied(occupied), RecordKind::Delete) => {
                let (old, _) = occupied.remove();
                self.replace_expiry(retire(segs, old), 0);
                self.left(r.key, ordered);
            }
            (hash_table::Entry::Vacant(vacant), RecordKind::Put) => {
                let location = vacant.insert(segs.entry(segment, r.offset, h.short)).get().location();
                segment.add_live(r.len);
                self.entered(r.key, location, ordered);
                self.replace_expiry(0, r.expires_ms);
            }
            (hash_table::Entry::Vacant(_), RecordKind::Delete) => {}
        }
    }

    /// Takes an entry's old expiry out of the count and puts its new one in (0 = none). Inline,
    /// so that the write path without expiries pays one comparison, and takes no lock.
    #[inline]
    fn replace_expiry(&self, old_ms: u64, new_ms: u64) {
        if old_ms != new_ms {
            self.change_expiry(old_ms, new_ms);
        }
    }

    /// [`Index::replace_expiry`] when the expiry changes.
    #[inline(never)]
    fn change_expiry(&self, old_ms: u64, new_ms: u64) {
        let mut expiries = self.expiries.lock();
        if old_ms != 0 {
            expiries.remove(old_ms);
        }
        if new_ms != 0 {
            expiries.add(new_ms);
        }
    }

    /// Sizes every stripe for `total` keys in all, so that loading does not grow tables step by
    /// step (open only; estimates from hint file headers). A table's size is a power of two, so
    /// sizing every stripe for the mean (or more) would double every table whenever the mean
    /// sits just above a doubling point, where the stripes below the mean would have stayed
    /// small (28.5 instead of 26.1 bytes per key at 120,000 keys, `tests/index_footprint.rs`).
    /// So each is sized a sixteenth below the mean (1.3 standard deviations of a stripe's count
    /// at 500 keys per stripe, 4 at 4,000), and a stripe that holds more grows once, where puts
    /// would have grown it too.
    pub(crate) fn reserve(&mut self, total: usize) {
        let mean = total / self.stripes.len();
        let per_stripe = mean - mean / 16;
        for stripe in self.stripes.iter_mut() {
            stripe.get_mut().reserve(per_stripe, |e| KeyHash::table_hash(e.hash()));
        }
    }

    /// The store's key hasher.
    pub(crate) fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The stripe of a key whose full hash is `hash`.
    #[inline]
    pub(crate) fn stripe_of_hash(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.stripe_mask
    }

    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// Recovery's bulk insert of one segment's records: for each key, whichever record has the
    /// higher sequence number wins, so segments may be loaded in any order. Tombstones are inserted
    /// too (they must shadow older puts in segments loaded later) and swept by
    /// [`Index::remove_if_at`] once every segment is loaded.
    ///
    /// Items come grouped by stripe ([`ByStripe`]), so that each stripe's table stays in cache
    /// while it is filled, and the two halves of the stripes are filled by two threads.
    pub(crate) fn load_batch(&mut self, segment: &Arc<Segment>, batch: ByStripe) {
        assert!(self.ordered.get().is_none(), "the ordered set is built after the bulk load, which reads no key");
        assert_eq!(batch.starts.len(), self.stripes.len() + 1, "grouped for this index's stripes");
        let ByStripe { items: sorted, starts } = batch;
        let half = self.stripes.len() / 2;
        let segs = &self.segments;
        let (low, high) = self.stripes.split_at_mut(half);
        let (items_low, items_high) = sorted.split_at(starts[half]);
        let (mut first, second) = if sorted.len() >= PARALLEL_LOAD_MIN && half > 0 {
            std::thread::scope(|s| {
                let other = s.spawn(|| load_stripes(segs, high, &starts[half..], items_high, segment));
                (
                    load_stripes(segs, low, &starts[..=half], items_low, segment),
                    other.join().expect("index loader thread"),
                )
            })
        } else {
            (
                load_stripes(segs, low, &starts[..=half], items_low, segment),
                load_stripes(segs, high, &starts[half..], items_high, segment),
            )
        };
        first.absorb(second);
        *self.len.get_mut() += first.added;
        segment.add_live_records(first.live_bytes, first.live_records);
        // Every expiry counted in before any is taken out: a record replaced in this batch may
        // have come in through the other thread's half.
        let expiries = self.expiries.get_mut();
        for ms in first.expiries_added {
            expiries.add(ms);
        }
        for ms in first.expiries_retired {
            expiries.remove(ms);
        }
    }

    /// Removes `key` if its entry still points at `(segment_id, offset)`; returns whether it did.
    /// Used by recovery's tombstone sweep, and by compaction to drop an expired record.
    pub(crate) fn remove_if_at(&self, key: &[u8], segment_id: u64, offset: u32) -> bool {
        let h = self.hash(key);
        let mut ordered = self.lock_ordered(std::iter::once(key));
        let mut table = self.stripes[h.stripe].write();
        let segs = &self.segments;
        let existing =
            table.find_entry(KeyHash::table_hash(h.short), |e| e.hash() == h.short && entry_key_is(segs, e, key));
        match existing {
            Ok(occupied) if is_at(segs, occupied.get(), segment_id, offset) => {
                let (old, _) = occupied.remove();
                self.replace_expiry(retire(segs, old), 0);
                self.left(key, &mut ordered);
                true
            }
            _ => false,
        }
    }

    /// Compaction's switch: moves `key` to its copy at `(to, to_offset)` if, and only if, the entry
    /// still points at the original `(from_id, from_offset)`; a write that landed meanwhile wins.
    pub(crate) fn relocate(
        &self,
        key: &[u8],
        from_id: u64,
        from_offset: u32,
        to: &Arc<Segment>,
        to_offset: u32,
    ) -> bool {
        let h = self.hash(key);
        // Before the stripe lock, as every change that may move a covered key's entry.
        let mut ordered = self.lock_ordered(std::iter::once(key));
        let mut table = self.stripes[h.stripe].write();
        let segs = &self.segments;
        let Some(entry) =
            table.find_mut(KeyHash::table_hash(h.short), |e| e.hash() == h.short && entry_key_is(segs, e, key))
        else {
            return false;
        };
        if !is_at(segs, entry, from_id, from_offset) {
            return false;
        }
        let old = std::mem::replace(entry, segs.entry(to, to_offset, h.short));
        self.moved(key, entry.location(), &mut ordered);
        let from = segs.resolve(&old);
        let header = from.record_header(old.offset());
        // The copy is the same record, expiry included, so the expiry count does not change.
        debug_assert_eq!(
            to.record_header(to_offset).map(|c| c.expires_ms),
            header.map(|h| h.expires_ms),
            "a compacted copy keeps its record's expiry"
        );
        let len = header.map_or(0, |h| h.record_len() as u64);
        from.sub_live(len);
        to.add_live(len);
        segs.forget(old);
        true
    }

    /// Compaction's retire step for a segment it removed, after every relocation of its run:
    /// the segment table lets go of it once no entry points to it (at once, unless a forged hint
    /// left an entry compaction did not move). See `segments.rs`.
    pub(crate) fn retire_segment(&self, segment: &Segment) {
        self.segments.retire(segment);
    }

    /// Starts keeping the keys under `prefixes` (checked by `Options::validated`) in order,
    /// from the entries: at open, once recovery has loaded and swept. Reads the key of every
    /// entry from its mapped record (hint files hold hashes, not keys), on two threads, each
    /// over half the stripes, sorting its keys; the two runs are merged. Nothing at all
    /// without prefixes.
    ///
    /// With `keyspaces` (the store has a keyspace registry) or any declared prefix, the keyspace
    /// marker is declared too (`Options::validated` keeps the user's prefixes clear of it), so a
    /// keyspace created later finds the set ready.
    pub(crate) fn order_prefixes(&mut self, prefixes: &[Vec<u8>], keyspaces: bool) {
        if prefixes.is_empty() && !keyspaces {
            return;
        }
        let mut prefixes = prefixes.to_vec();
        prefixes.push(KEYSPACE_MARKER.to_vec());
        let prefixes = &prefixes[..];
        let covered = |key: &[u8]| prefixes.iter().any(|p| key.starts_with(p));
        let segs = &self.segments;
        let collect = |stripes: &mut [RwLock<HashTable<Entry>>]| {
            let mut run = KeyRun::default();
            for stripe in stripes {
                for entry in stripe.get_mut().iter() {
                    let segment = segs.resolve(entry);
                    let header = segment.record_header(entry.offset());
                    let key = header.and_then(|h| segment.key(entry.offset(), &h));
                    if let Some(key) = key.filter(|k| covered(k)) {
                        run.push(&key, entry.location());
                    }
                }
            }
            run.sort();
            run
        };
        let parallel = self.len() >= PARALLEL_LOAD_MIN;
        let (low, high) = self.stripes.split_at_mut(self.stripe_mask.div_ceil(2));
        let runs = if parallel {
            std::thread::scope(|s| {
                let other = s.spawn(|| collect(high));
                [collect(low), other.join().expect("ordered set thread")]
            })
        } else {
            [collect(low), collect(high)]
        };
        let set = self.ordered.set(Box::new(Ordered::new(prefixes, KeyRun::merge(&runs))));
        assert!(set.is_ok(), "the ordered set is built once, at open");
        *self.has_keyspaces.get_mut() = keyspaces;
    }

    /// The ordered set, if the store keeps one.
    fn ordered(&self) -> Option<&Ordered> {
        self.ordered.get().map(|o| &**o)
    }

    /// Makes sure the ordered set exists and covers keyspace keys: called before the first
    /// keyspace of a store is created (no keyspace key can be in the index before that, since
    /// the default keyspace refuses keys under the marker).
    ///
    /// Fails with `Error::ReservedKey` (naming one) if the store holds keys under the marker
    /// that are no keyspace's (written before keyspaces existed): they would silently leave the
    /// default keyspace. Looking costs O(1) with an ordered set, else one walk of the index,
    /// once per store (the registry exists afterwards).
    pub(crate) fn enable_keyspaces(&self) -> Result<()> {
        if self.has_keyspaces() {
            return Ok(());
        }
        let foreign = match self.ordered() {
            Some(o) => {
                let mut first = None;
                o.walk(&KEYSPACE_MARKER, (Bound::Unbounded, Bound::Unbounded), false, |k, _| {
                    first = Some(k.to_vec());
                    false
                })?;
                first
            }
            None => self.scan(0, usize::MAX, |k, _| k.starts_with(&KEYSPACE_MARKER)).keys.into_iter().next(),
        };
        if let Some(key) = foreign {
            return Err(crate::Error::ReservedKey { key });
        }
        let ordered = self.ordered.get_or_init(|| Box::new(Ordered::new(&[KEYSPACE_MARKER.to_vec()], Vec::new())));
        assert!(ordered.covers(&KEYSPACE_MARKER), "the ordered set covers keyspace keys once keyspaces exist");
        self.has_keyspaces.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the store has a keyspace registry (see `has_keyspaces`).
    pub(crate) fn has_keyspaces(&self) -> bool {
        self.has_keyspaces.load(Ordering::Acquire)
    }

    /// Whether `key` is a keyspace's (or the registry's), not the default keyspace's.
    pub(crate) fn in_a_keyspace(&self, key: &[u8]) -> bool {
        key.starts_with(&KEYSPACE_MARKER) && self.has_keyspaces()
    }

    /// Sets the ids of the registered keyspaces.
    pub(crate) fn set_live_spaces(&self, ids: Vec<u32>) {
        *self.live_spaces.write() = ids;
    }

    /// Checks a stored key that starts with the keyspace marker: it must name a registered
    /// keyspace and carry a non-empty key of its own (`Error::ReservedKey`, `Error::EmptyKey`).
    /// The registry's own key and dropped or future ids are refused, so no write reaches them.
    pub(crate) fn check_marked_key(&self, key: &[u8]) -> Result<()> {
        debug_assert!(key.starts_with(&KEYSPACE_MARKER));
        let live = crate::format::keyspace_of(key).is_some_and(|id| self.live_spaces.read().contains(&id));
        if !live {
            return Err(crate::Error::ReservedKey { key: key.to_vec() });
        }
        if key.len() == crate::format::KEYSPACE_KEY_OVERHEAD_BYTES {
            return Err(crate::Error::EmptyKey);
        }
        Ok(())
    }

    /// Entries of keyspace `id` (expired ones included until swept). O(1).
    pub(crate) fn space_count(&self, id: u32) -> usize {
        self.ordered().map_or(0, |o| o.space_count(id))
    }

    /// Entries under the keyspace marker: every keyspace's keys and the registry. O(1).
    pub(crate) fn reserved_count(&self) -> usize {
        if !self.has_keyspaces() {
            return 0;
        }
        self.ordered().and_then(|o| o.count(&KEYSPACE_MARKER).ok()).unwrap_or(0)
    }

    /// Ids of the keyspaces with entries.
    pub(crate) fn space_ids(&self) -> Vec<u32> {
        self.ordered().map_or_else(Vec::new, Ordered::space_ids)
    }

    /// Live keys at `now_ms` under `prefix` (a keyspace's, or the marker), of which the index
    /// holds `entries`: `entries` itself if no entry has an expiry (O(1)), else a walk of them.
    pub(crate) fn live_under(&self, prefix: &[u8], entries: usize, now_ms: u64) -> usize {
        if entries == 0 || !self.has_expiries() {
            return entries;
        }
        let all = (Bound::Unbounded, Bound::Unbounded);
        self.range(prefix, all, false, usize::MAX, |_, found| {
            (!is_expired(found.header.expires_ms, || now_ms)).then_some(())
        })
        .map_or(0, |live| live.len())
    }

    /// Whether some entry has an expiry (so counts of entries may include expired keys).
    pub(crate) fn has_expiries(&self) -> bool {
        let e = self.expiries.lock();
        !(e.later.is_empty() && e.passed.is_empty())
    }

    /// Removes every entry under `prefix` (a keyspace's prefix), in chunks of
    /// `FORGET_CHUNK_KEYS` keys read under the ordered set's read lock, each removed under its
    /// own locks: for a dropped keyspace, whose records no log tombstone covers (the registry
    /// says they are dead). The removals subtract the records from their segments' live bytes,
    /// which is how compaction learns of them. O(keys under `prefix`).
    pub(crate) fn forget_prefix(&self, prefix: &[u8]) -> usize {
        let mut removed = 0;
        loop {
            let chunk = self
                .range(prefix, (Bound::Unbounded, Bound::Unbounded), false, FORGET_CHUNK_KEYS, |key, f| {
                    Some((key.to_vec(), f.segment.id, f.offset))
                })
                .unwrap_or_default();
            if chunk.is_empty() {
                return removed;
            }
            for (key, segment_id, offset) in &chunk {
                removed += usize::from(self.remove_if_at(key, *segment_id, *offset));
            }
        }
    }

    /// The keys under `prefix` (which must start with a declared prefix) within
    /// `start..end`, in order (descending if `reverse`), as `take` makes them from the key and its
    /// record (`None` from `take`: skipped, not counted), at most `limit`. See [`Index::walk`].
    pub(crate) fn range<T>(
        &self,
        prefix: &[u8],
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        limit: usize,
        mut take: impl FnMut(&[u8], Found<'_>) -> Option<T>,
    ) -> Result<Vec<T>> {
        let mut taken = Vec::new();
        if limit == 0 {
            return Ok(taken);
        }
        self.walk(prefix, bounds, reverse, |key, found| {
            if let Some(item) = take(key, found) {
                taken.push(item);
            }
            taken.len() < limit
        })?;
        Ok(taken)
    }

    /// Calls `f` on each key under `prefix` (which must start with a declared prefix) within
    /// `start..end` and its latest record, in order (descending if `reverse`), until `f` returns
    /// false. The record comes from the location the ordered set keeps beside the key: no hash
    /// lookup, no allocation. The ordered set's read lock is held throughout, so every published
    /// group is seen whole and every record is its key's latest while `f` runs (`ordered.rs`).
    /// O(log n + keys walked).
    pub(crate) fn walk(
        &self,
        prefix: &[u8],
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        mut f: impl FnMut(&[u8], Found<'_>) -> bool,
    ) -> Result<()> {
        let ordered = self.ordered().ok_or_else(|| not_ordered(prefix))?;
        // Neighbouring keys' records mostly share a segment: the segment and its mapped bytes
        // are looked up once per run of them, and each record is read by indexing those bytes
        // (no call through the `Mapping` trait object per record).
        let mut run: Option<(u32, &Segment, &[u8])> = None;
        ordered.walk(prefix, bounds, reverse, |key, location| {
            let (segment, mapped) = match run {
                Some((slot, segment, mapped)) if slot == location.slot() => (segment, mapped),
                _ => {
                    // SAFETY: `Ordered::walk` holds the set's read lock while this runs, and a
                    // covered key's entry is made, replaced, relocated or forgotten only under its
                    // write lock, each time with the set's copy updated (`entered`, `moved`,
                    // `left`): so an entry at `location` exists, and stays, until this call
                    // returns; so does its segment, which every later location of the run with
                    // the same slot names too. The `Found` lent to `f` cannot outlive the call
                    // (`f` takes it for any lifetime, so cannot keep it).
                    let segment = unsafe { self.segments.resolve_location(location) };
                    // Taken after the lock: every record the set names was published, so mapped
                    // through, before (a mapping without one slice is read through `read`).
                    let mapped = segment.mapped().unwrap_or(&[]);
                    run = Some((location.slot(), segment, mapped));
                    (segment, mapped)
                }
            };
            let offset = location.offset();
            let header = match mapped.get(offset as usize..) {
                Some(bytes) if !bytes.is_empty() => decode_record_header(bytes).ok(),
                _ => segment.record_header(offset),
            };
            // Entries point at puts; as in `find`, a tombstone (a forged hint) reads as absent.
            match header.filter(|h| h.kind == RecordKind::Put) {
                Some(header) => f(key, Found { segment, offset, header, mapped }),
                None => true,
            }
        })
    }

    /// The entries under `prefix`, which must be exactly a declared prefix. O(1).
    pub(crate) fn count_prefix(&self, prefix: &[u8]) -> Result<usize> {
        self.ordered().ok_or_else(|| not_ordered(prefix))?.count(prefix)
    }

    /// Checks that the ordered set holds exactly the keys of the entries under the declared
    /// prefixes, with the right counts: a walk of every stripe, for tests. Call it with no write
    /// in flight.
    pub(crate) fn check_ordered(&self) {
        let Some(ordered) = self.ordered() else { return };
        let mut expected: Vec<(Box<[u8]>, Location)> = Vec::new();
        for stripe in self.stripes.iter() {
            let table = stripe.read();
            let segs = &self.segments;
            expected.extend(
                table
                    .iter()
                    .filter_map(|e| entry_key(segs, e).filter(|k| ordered.covers(k)).map(|k| (k.into(), e.location()))),
            );
        }
        expected.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (keys, counts) = ordered.snapshot();
        let (set_keys, set_locations): (Vec<&Box<[u8]>>, Vec<Location>) = keys.iter().map(|(k, l)| (k, *l)).unzip();
        let (entry_keys, entry_locations): (Vec<&Box<[u8]>>, Vec<Location>) =
            expected.iter().map(|(k, l)| (k, *l)).unzip();
        assert_eq!(set_keys, entry_keys, "the ordered set holds the keys of the entries under the declared prefixes");
        assert_eq!(set_locations, entry_locations, "the ordered set holds each key's entry's location");
        let mut expected_counts = vec![0; counts.len()];
        for (key, _) in &keys {
            expected_counts[ordered.prefix_index(key).expect("a covered key")] += 1;
        }
        assert_eq!(*counts, *expected_counts, "the ordered set counts its keys per prefix");
    }

    /// A snapshot of stripe `i`'s keys, copied under its read lock (an entry cannot leave the
    /// lock: it would keep its segment from being released, see `segments.rs`).
    pub(crate) fn stripe_snapshot(&self, i: usize) -> Vec<Vec<u8>> {
        let table = self.stripes[i].read();
        self.note_visited(table.len());
        table.iter().filter_map(|e| entry_key(&self.segments, e)).collect()
    }
}

/// One page of a key scan, from [`Store::scan`](crate::Store::scan) or
/// [`Txn::scan`](crate::Txn::scan).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let store = ferrocask::Store::open(dir.path())?;
/// for i in 0..100 {
///     store.put(format!("key{i}"), b"v")?;
/// }
/// let (mut keys, mut cursor) = (Vec::new(), 0);
/// loop {
///     let page = store.scan(cursor, 10);
///     keys.extend(page.keys);
///     cursor = page.cursor;
///     if cursor == 0 {
///         break;
///     }
/// }
/// assert_eq!(keys.len(), 100);
/// # Ok::<(), ferrocask::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Live keys, in unspecified order: at least the `count` asked for unless the scan ended,
    /// and more when a stripe holds more (a stripe is never split between pages).
    pub keys: Vec<Vec<u8>>,
    /// Where the next page starts; 0 once the scan is complete.
    pub cursor: u64,
    /// Index entries this page looked at: its cost, O(max(count, keys per stripe)).
    pub visited: usize,
    stripes: std::ops::Range<usize>,
}

impl ScanPage {
    /// Whether this page lists the keys of `stripe`.
    pub(crate) fn covers(&self, stripe: usize) -> bool {
        self.stripes.contains(&stripe)
    }
}

/// What the index holds allocated, part by part (`Index::footprint`), for
/// `Stats::index_bytes` and the footprint tests. DESIGN.md, "The index", gives the figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Entries in the hash tables.
    pub entries: usize,
    /// Bytes of one entry.
    pub entry_bytes: usize,
    /// Slots of all the stripes' tables, used or free.
    pub buckets: usize,
    /// Bytes of the slots (`buckets * entry_bytes`, each table's rounded up to its alignment):
    /// the entries and the tables' free slots.
    pub slot_bytes: usize,
    /// hashbrown's control bytes: one per slot and one group per table.
    pub control_bytes: usize,
    /// The expiry multiset, estimated from its distinct expiry times.
    pub expiry_bytes: usize,
    /// The ordered set of the keys under declared prefixes.
    pub ordered_bytes: usize,
    /// The segment table entries name their segments through: a few bytes per segment.
    pub segment_table_bytes: usize,
}

impl Footprint {
    /// Every part together.
    pub fn total(&self) -> usize {
        self.slot_bytes + self.control_bytes + self.expiry_bytes + self.ordered_bytes + self.segment_table_bytes
    }

    /// Bytes of free slots: what growth by doubling and the load factor leave unused.
    pub fn slack_bytes(&self) -> usize {
        self.slot_bytes.saturating_sub(self.entries * self.entry_bytes)
    }
}

/// hashbrown's control group (16 bytes with SSE2, 8 with NEON or its generic code): the control
/// bytes are aligned to it, and one group's worth beyond the slots is allocated to let probes
/// read past the end.
const TABLE_GROUP_BYTES: usize =
    if cfg!(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2")) { 16 } else { 8 };

/// Bytes of the expiry multiset per distinct expiry time: a `u64` key and a `usize` count in a
/// B-tree node of 11, about two-thirds full.
const EXPIRY_BYTES_PER_TIME: usize = 24;

/// The slots of a hashbrown table of `capacity` (its load factor is 7/8 from 16 slots, one free
/// slot below; 0 for a table never allocated).
fn table_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..8 => capacity + 1,
        _ => capacity / 7 * 8,
    }
}

/// One record of a frame being published by [`Index::publish`].
pub(crate) struct Published<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) kind: RecordKind,
    /// The record's offset in its segment.
    pub(crate) offset: u32,
    /// The record's encoded length.
    pub(crate) len: u64,
    /// The record's sequence number.
    pub(crate) seq: u64,
    /// The record's expiry (Unix ms, 0 = never).
    pub(crate) expires_ms: u64,
}

/// The expiry times of the index's entries that have one, as an ordered multiset split at a cut
/// time: entries expiring at or before the cut are `passed`, the others `later`. Counting the
/// entries expired at `now` moves the cut to `now`, so it costs the expiry times crossed since
/// the last count, not the index. Both sides are kept (not only a count of the passed ones) so
/// that the cut can move back with a clock that is set back.
#[derive(Debug, Default)]
struct Expiries {
    /// Entries per expiry time (Unix ms) after `cut`.
    later: BTreeMap<u64, usize>,
    /// Entries per expiry time at or before `cut`.
    passed: BTreeMap<u64, usize>,
    /// The sum of `passed`'s counts.
    passed_count: usize,
    /// The sum of `later`'s counts, and of its expiry times weighted by them: the number and the
    /// mean expiry of the entries still to expire, for INFO's `expires` and `avg_ttl`, kept as
    /// the sides change so that reading them visits nothing.
    later_count: usize,
    later_sum_ms: u128,
    /// The time the sides are split at (Unix ms).
    cut: u64,
}

impl Expiries {
    /// Counts one more entry expiring at `ms` (not 0).
    fn add(&mut self, ms: u64) {
        if is_expired(ms, || self.cut) {
            *self.passed.entry(ms).or_default() += 1;
            self.passed_count += 1;
        } else {
            *self.later.entry(ms).or_default() += 1;
            self.later_count += 1;
            self.later_sum_ms += u128::from(ms);
        }
    }

    /// Counts one entry expiring at `ms` fewer. One that was never counted is ignored: only a
    /// hint file altered behind a matching checksum (whose entries are trusted, see DESIGN.md)
    /// can give an entry an expiry other than its record's, and that may make `len` wrong, but
    /// must not make it panic.
    fn remove(&mut self, ms: u64) {
        let passed = is_expired(ms, || self.cut);
        let side = if passed { &mut self.passed } else { &mut self.later };
        if let btree_map::Entry::Occupied(mut count) = side.entry(ms) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
            if passed {
                self.passed_count -= 1;
            } else {
                self.later_count -= 1;
                self.later_sum_ms -= u128::from(ms);
            }
        }
    }

    /// How many counted entries are expired at `now_ms` (expiry <= now, as `is_expired` says),
    /// after moving the cut there: O(log n) for each expiry time crossed.
    fn expired_at(&mut self, now_ms: u64) -> usize {
        while let Some(entry) = self.later.first_entry().filter(|e| is_expired(*e.key(), || now_ms)) {
            let (ms, n) = entry.remove_entry();
            *self.passed.entry(ms).or_default() += n;
            self.passed_count += n;
            self.later_count -= n;
            self.later_sum_ms -= u128::from(ms) * n as u128;
        }
        while let Some(entry) = self.passed.last_entry().filter(|e| !is_expired(*e.key(), || now_ms)) {
            let (ms, n) = entry.remove_entry();
            *self.later.entry(ms).or_default() += n;
            self.passed_count -= n;
            self.later_count += n;
            self.later_sum_ms += u128::from(ms) * n as u128;
        }
        self.cut = now_ms;
        self.passed_count
    }
}

/// What loading stripes did, for [`Index::load_batch`] to apply once every stripe is loaded.
#[derive(Default)]
struct Loaded {
    /// Keys added.
    added: usize,
    /// Expiries of the records that entries now point to.
    expiries_added: Vec<u64>,
    /// Expiries of the records that entries no longer point to.
    expiries_retired: Vec<u64>,
    /// Bytes and records of the batch's segment that entries now point to, added to its
    /// accounting once per batch rather than per record (both loader threads would share the
    /// segment's counters' cache line).
    live_bytes: u64,
    live_records: u64,
}

impl Loaded {
    fn absorb(&mut self, other: Loaded) {
        self.added += other.added;
        self.expiries_added.extend(other.expiries_added);
        self.expiries_retired.extend(other.expiries_retired);
        self.live_bytes += other.live_bytes;
        self.live_records += other.live_records;
    }
}

/// Below this many records a segment is loaded on one thread.
const PARALLEL_LOAD_MIN: usize = 50_000;

/// A batch of load items grouped by stripe: stripe `i`'s are `items[starts[i]..starts[i + 1]]`.
pub(crate) struct ByStripe {
    pub(crate) items: Vec<LoadItem>,
    pub(crate) starts: Vec<usize>,
}

impl ByStripe {
    /// Groups `items` in place (a counting sort whose every swap puts one item in its stripe's
    /// range for good). Its swaps land at random in the batch, a cache miss each (about a
    /// quarter of an open's cycles), so recovery runs it on each segment's decoding thread,
    /// several segments at once. Decoding a hint file twice to write each item in its place
    /// instead was measured no faster.
    pub(crate) fn sort(index: &Index, mut items: Vec<LoadItem>) -> ByStripe {
        let mut starts = vec![0usize; index.stripes.len() + 1];
        for item in &items {
            starts[index.stripe_of_hash(item.hash) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        for s in 0..index.stripes.len() {
            while next[s] < starts[s + 1] {
                let home = index.stripe_of_hash(items[next[s]].hash);
                if home == s {
                    next[s] += 1;
                } else {
                    items.swap(next[s], next[home]);
                    next[home] += 1;
                }
            }
        }
        ByStripe { items, starts }
    }
}

/// One record for [`Index::load_batch`]. The key is not carried: on a hash match it is read from
/// the segment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoadItem {
    pub(crate) hash: u64,
    pub(crate) offset: u32,
    pub(crate) seq: u64,
    pub(crate) record_len: u32,
    /// The record's expiry (Unix ms, 0 = never), from the record or its hint entry.
    pub(crate) expires_ms: u64,
}

/// Loads `items` (sorted by stripe; stripe `i`'s items are `items[starts[i] - base..starts[i + 1] - base]`
/// where `base = starts[0]`) into `stripes`.
fn load_stripes(
    segs: &SegmentTable,
    stripes: &mut [RwLock<HashTable<Entry>>],
    starts: &[usize],
    items: &[LoadItem],
    segment: &Arc<Segment>,
) -> Loaded {
    let base = starts[0];
    let mut loaded = Loaded::default();
    let mut bulk = segs.bulk(segment, items.len());
    for (i, stripe) in stripes.iter_mut().enumerate() {
        let table = stripe.get_mut();
        let mine = &items[starts[i] - base..starts[i + 1] - base];
        table.reserve(mine.len(), |e| KeyHash::table_hash(e.hash()));
        for item in mine {
            load_one(segs, &mut bulk, table, segment, item, &mut loaded);
        }
    }
    bulk.finish();
    loaded
}

/// Inserts one recovered record unless the key already has a record with a higher sequence
/// number, noting in `loaded` a new key, the expiries that come and go and the batch
/// segment's live bytes.
fn load_one(
    segs: &SegmentTable,
    bulk: &mut BulkEntries<'_>,
    table: &mut HashTable<Entry>,
    segment: &Arc<Segment>,
    item: &LoadItem,
    loaded: &mut Loaded,
) {
    let short = short_hash(item.hash);
    // The new record's key is read from its segment only if some entry's hash bits match: with
    // hint files, open then never touches the segment's pages.
    let mut key: Option<Option<Cow<'_, [u8]>>> = None;
    let eq = |e: &Entry| {
        if e.hash() != short {
            return false;
        }
        let key = key.get_or_insert_with(|| {
            let header = segment.record_header(item.offset)?;
            segment.key(item.offset, &header)
        });
        key.as_deref().is_some_and(|k| entry_key_is(segs, e, k))
    };
    let slot = table.entry(KeyHash::table_hash(short), eq, |e| KeyHash::table_hash(e.hash()));
    match slot {
        hash_table::Entry::Occupied(mut occupied) => {
            // The record that comes last in the log wins: the higher sequence number, and on a
            // tie (only in damaged or forged input) the later position. Never the load order,
            // which the stripe sort does not keep.
            let existing = occupied.get();
            let existing_segment = segs.resolve(existing);
            let newer = existing_segment
                .record_header(existing.offset())
                .is_none_or(|h| (h.seq, existing_segment.id, existing.offset()) < (item.seq, segment.id, item.offset));
            if !newer {
                return;
            }
            let fresh = bulk.entry(item.offset, short);
            let retired_ms = retire_loaded(segs, bulk, std::mem::replace(occupied.get_mut(), fresh), loaded);
            if retired_ms != 0 {
                loaded.expiries_retired.push(retired_ms);
            }
        }
        hash_table::Entry::Vacant(vacant) => {
            vacant.insert(bulk.entry(item.offset, short));
            loaded.added += 1;
        }
    };
    if item.expires_ms != 0 {
        loaded.expiries_added.push(item.expires_ms);
    }
    loaded.live_bytes += u64::from(item.record_len);
    loaded.live_records += 1;
}

/// [`retire`] for an entry replaced during the bulk load: one that points into the batch's own
/// segment is counted out of the batch's running totals (which it was counted into), any other
/// as `retire` does.
fn retire_loaded(segs: &SegmentTable, bulk: &mut BulkEntries<'_>, old: Entry, loaded: &mut Loaded) -> u64 {
    if !bulk.owns(&old) {
        return retire(segs, old);
    }
    let segment = segs.resolve(&old);
    let header = segment.record_header(old.offset());
    // Saturating, as `Segment::sub_live`: a forged hint's lengths may disagree with the records'.
    loaded.live_bytes = loaded.live_bytes.saturating_sub(header.map_or(0, |h| h.record_len() as u64));
    loaded.live_records = loaded.live_records.saturating_sub(1);
    bulk.forget(old);
    header.map_or(0, |h| h.expires_ms)
}

/// Moves a replaced or removed entry's record from live to dead in its segment's accounting,
/// and counts the entry out of the segment table. Returns the record's expiry (0 = none), for
/// the caller to take out of the expiry count.
fn retire(segs: &SegmentTable, old: Entry) -> u64 {
    let segment = segs.resolve(&old);
    let header = segment.record_header(old.offset());
    segment.sub_live(header.map_or(0, |h| h.record_len() as u64));
    segs.forget(old);
    header.map_or(0, |h| h.expires_ms)
}

/// Whether `entry` points at exactly `(segment id, offset)`.
fn is_at(segs: &SegmentTable, entry: &Entry, segment_id: u64, offset: u32) -> bool {
    entry.offset() == offset && segs.resolve(entry).id == segment_id
}

fn find<'a>(segs: &'a SegmentTable, table: &'a HashTable<Entry>, h: KeyHash, key: &[u8]) -> Option<Found<'a>> {
    // The header the key was compared through is kept: the value is read through it, without
    // decoding it a second time.
    let mut matched = None;
    let entry = table.find(KeyHash::table_hash(h.short), |e| {
        e.hash() == h.short && {
            matched = header_if_key_is(segs, e, key);
            matched.is_some()
        }
    })?;
    let header = matched.expect("the entry found matched through its header");
    // Entries point at puts; one that points at a tombstone can only come from a forged hint
    // (fuzz finding `hint_decode/entry-on-a-tombstone`) and reads as absent.
    (header.kind == RecordKind::Put).then(|| Found {
        segment: segs.resolve(entry),
        offset: entry.offset(),
        header,
        mapped: &[],
    })
}

/// Compares `key` with the key stored in the record an entry points to.
fn entry_key_is(segs: &SegmentTable, entry: &Entry, key: &[u8]) -> bool {
    header_if_key_is(segs, entry, key).is_some()
}

/// The header of the record an entry points to, if that record's key is `key`.
fn header_if_key_is(segs: &SegmentTable, entry: &Entry, key: &[u8]) -> Option<RecordHeader> {
    let segment = segs.resolve(entry);
    let header = segment.record_header(entry.offset())?;
    (header.key_len == key.len() && segment.key(entry.offset(), &header).is_some_and(|k| *k == *key)).then_some(header)
}

/// The key an entry points to, copied.
fn entry_key(segs: &SegmentTable, entry: &Entry) -> Option<Vec<u8>> {
    let segment = segs.resolve(entry);
    let header = segment.record_header(entry.offset())?;
    segment.key(entry.offset(), &header).map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use std::ops::Bound::Unbounded;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use super::{Expiries, Location};
    use crate::{Options, Store};

    /// The location of `key` in the ordered set.
    fn ordered_location(store: &Store, key: &[u8]) -> Location {
        let (keys, _) = store.engine.index.ordered().unwrap().snapshot();
        keys.into_iter().find(|(k, _)| **k == *key).unwrap().1
    }

    /// The ordered set's copy of each location follows puts over live keys and compaction's
    /// relocations (checked against the hash entries), and the check catches one missed move:
    /// the set left pointing at a key's previous record, which a range read would then return.
    #[test]
    fn the_ordered_set_s_locations_follow_the_entries_and_a_missed_move_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        // Small segments, so that the keys span several and compaction relocates them.
        let options = Options {
            segment_bytes: 16 << 10,
            preallocate_bytes: 4 << 10,
            background_thread: false,
            auto_compact: false,
            ..Options::default()
        };
        let store = Store::open_with(dir.path(), options.ordered_prefix("o:")).unwrap();
        for i in 0..200 {
            store.put(format!("o:{i:03}"), format!("first {i} {}", "x".repeat(100))).unwrap();
            store.put(format!("h:{i:02}"), "not ordered".repeat(10)).unwrap();
        }
        for i in 0..200 {
            store.delete(format!("h:{i:02}")).unwrap();
        }
        store.put("o:007", "second").unwrap();
        store.engine.index.check_ordered();
        let (before_compaction, _) = store.engine.index.ordered().unwrap().snapshot();
        let report = store.compact().unwrap();
        assert!(report.segments_written > 0, "compaction rewrote live records: {report:?}");
        let (after_compaction, _) = store.engine.index.ordered().unwrap().snapshot();
        assert!(before_compaction.iter().zip(&after_compaction).any(|(b, a)| b.1 != a.1), "some key was relocated");
        store.engine.index.check_ordered();
        let read = |key: &[u8]| store.range_entries(key, Unbounded, Unbounded, false, 1).unwrap()[0].1.to_vec();
        assert_eq!(read(b"o:007"), b"second");

        // Maintenance skipped once: a put over `o:007` whose move the set did not follow.
        let before = ordered_location(&store, b"o:007");
        store.put("o:007", "third").unwrap();
        assert_ne!(ordered_location(&store, b"o:007"), before, "a put over a key moves its location");
        store.engine.index.ordered().unwrap().write().moved(b"o:007", before);
        assert_eq!(read(b"o:007"), b"second", "a stale location reads the key's previous record");
        let caught = catch_unwind(AssertUnwindSafe(|| store.engine.index.check_ordered()));
        assert!(caught.is_err(), "the check finds the stale location");
    }

    #[test]
    fn expiries_count_what_has_expired_as_the_clock_moves_forward_and_back() {
        let mut e = Expiries::default();
        for ms in [10, 20, 20, 30] {
            e.add(ms);
        }
        assert_eq!(e.expired_at(9), 0);
        assert_eq!(e.expired_at(10), 1, "an expiry equal to now has passed");
        assert_eq!(e.expired_at(25), 3);
        e.add(15); // behind the cut: counted as passed at once
        e.add(40);
        assert_eq!(e.expired_at(25), 4);
        assert_eq!(e.expired_at(12), 1, "a clock set back brings entries back");
        e.remove(20); // a later one, now that the cut is at 12
        assert_eq!(e.expired_at(100), 5, "10, 15, 20, 30 and 40");
        e.remove(10); // a passed one
        assert_eq!(e.expired_at(100), 4);
    }

    /// The not-yet-expired side's count and sum follow every move (INFO's `expires`, `avg_ttl`).
    #[test]
    fn expiries_count_and_sum_what_is_still_to_expire() {
        let mut e = Expiries::default();
        for ms in [10, 20, 20, 30] {
            e.add(ms);
        }
        e.expired_at(0);
        assert_eq!((e.later_count, e.later_sum_ms), (4, 80));
        e.expired_at(20);
        assert_eq!((e.later_count, e.later_sum_ms), (1, 30), "10 and both 20s have passed");
        e.expired_at(15);
        assert_eq!((e.later_count, e.later_sum_ms), (3, 70), "a clock set back brings the 20s back");
        e.remove(30);
        e.remove(10); // a passed one: the later side is untouched
        e.add(50);
        assert_eq!((e.later_count, e.later_sum_ms), (3, 90));
        e.expired_at(100);
        assert_eq!((e.later_count, e.later_sum_ms), (0, 0));
    }

    #[test]
    fn expiries_ignore_removing_an_expiry_never_counted() {
        let mut e = Expiries::default();
        e.add(10);
        e.remove(11);
        e.remove(5);
        assert_eq!(e.expired_at(10), 1);
        e.remove(7);
        assert_eq!(e.expired_at(10), 1, "a passed expiry never counted leaves the count alone");
    }
}
