//! The in-RAM index: key -> location of its latest record, in lock-striped hash tables.
//!
//! An entry holds no key and no value: only an `Arc` of the segment, the record's offset and 32
//! bits of the key's hash (16 bytes). Keys are compared against the record in the mapped segment,
//! which the read path touches anyway to copy the value. A stripe is chosen by bits of the
//! store's keyed SipHash-1-3 (`hash.rs`, its key in the manifest) so an attacker cannot aim keys
//! at one stripe or bucket.
//!
//! Invariants: an entry points to a `Put` record at or below its segment's `data_end` (during
//! recovery, also to tombstones, swept before the store opens); a segment's `live_bytes` is the
//! sum of the lengths of the records entries point to.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::{hash_table, HashTable};
use parking_lot::RwLock;

use crate::format::{RecordHeader, RecordKind};
use crate::hash::KeyHasher;
use crate::log::Segment;

/// Where a key's latest record lives.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) segment: Arc<Segment>,
    pub(crate) offset: u32,
    hash: u32,
}

impl Entry {
    /// Whether this entry points at exactly `(segment id, offset)`.
    pub(crate) fn is_at(&self, segment_id: u64, offset: u32) -> bool {
        self.segment.id == segment_id && self.offset == offset
    }

    /// The header of the record this entry points to. `None` only if the entry came from a
    /// damaged (but checksum-valid) hint file; callers then treat the entry as absent.
    fn header(&self) -> Option<RecordHeader> {
        self.segment.record_header(self.offset)
    }

    fn record_len(&self) -> u64 {
        self.header().map_or(0, |h| h.record_len() as u64)
    }
}

/// A key's hash, split into the stripe it lives in and the 32 bits stored in the entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyHash {
    stripe: usize,
    short: u32,
}

impl KeyHash {
    /// The hash given to the stripe's table: the stored 32 bits spread over 64, so that the table
    /// can recompute it from the entry when it grows.
    fn table_hash(short: u32) -> u64 {
        u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(short)
    }
}

/// What a lookup found.
pub(crate) struct Found<'a> {
    pub(crate) entry: &'a Entry,
    pub(crate) header: RecordHeader,
}

pub(crate) struct Index {
    stripes: Box<[RwLock<HashTable<Entry>>]>,
    stripe_mask: usize,
    hasher: KeyHasher,
    len: AtomicUsize,
}

impl Index {
    pub(crate) fn new(stripes: usize, hasher: KeyHasher) -> Index {
        assert!(stripes.is_power_of_two(), "stripe count {stripes} is a power of two");
        Index {
            stripes: (0..stripes).map(|_| RwLock::new(HashTable::new())).collect(),
            stripe_mask: stripes - 1,
            hasher,
            len: AtomicUsize::new(0),
        }
    }

    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        let full = self.hasher.hash(key);
        KeyHash { stripe: (full >> 32) as usize & self.stripe_mask, short: full as u32 }
    }

    /// Entries in the index (including expired ones not yet compacted away).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
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
            for entry in table.iter() {
                page.visited += 1;
                let Some(header) = entry.header().filter(|h| h.kind == RecordKind::Put) else { continue };
                let Some(key) = entry.segment.key(entry.offset, &header) else { continue };
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
        let found = find(&table, h, key);
        f(found)
    }

    /// Publishes a group's records (in log order) so that readers see all of them or none: every
    /// stripe the group touches is write-locked, in ascending order, before the first record is
    /// applied, and released only after the last. A reader holds one stripe lock at a time and
    /// only the group-commit leader ever holds several, always in that order, so this cannot
    /// deadlock; a group of one record costs one stripe lock, as a single `apply` would.
    pub(crate) fn publish(&self, segment: &Arc<Segment>, records: &[Published<'_>]) {
        let Some(first) = records.first() else { return };
        let expiry_min = records.iter().filter(|r| r.expires_ms != 0).map(|r| r.expires_ms).min().unwrap_or(0);
        // Records come in log order: the first has the lowest sequence number.
        let tombstones = records.iter().filter(|r| r.kind == RecordKind::Delete).count() as u64;
        let last = records.last().expect("not empty");
        segment.note_records(records.len() as u64, tombstones, (first.seq, last.seq), expiry_min);
        if let [record] = records {
            // The common group of one put: one stripe, and nothing to allocate.
            let h = self.hash(record.key);
            self.apply_locked(&mut self.stripes[h.stripe].write(), record, h, segment);
            return;
        }
        let hashes: Vec<KeyHash> = records.iter().map(|r| self.hash(r.key)).collect();
        let mut touched: Vec<usize> = hashes.iter().map(|h| h.stripe).collect();
        touched.sort_unstable();
        touched.dedup();
        let mut tables: Vec<_> = touched.iter().map(|&s| self.stripes[s].write()).collect();
        for (record, h) in records.iter().zip(&hashes) {
            let at = touched.binary_search(&h.stripe).expect("every touched stripe is locked");
            self.apply_locked(&mut tables[at], record, *h, segment);
        }
    }

    /// Points a key at a new record (or removes it, for a tombstone) in its locked stripe.
    /// Accounts live bytes on both segments.
    fn apply_locked(&self, table: &mut HashTable<Entry>, r: &Published<'_>, h: KeyHash, segment: &Arc<Segment>) {
        let slot = table.entry(
            KeyHash::table_hash(h.short),
            |e| e.hash == h.short && entry_key_is(e, r.key),
            |e| KeyHash::table_hash(e.hash),
        );
        match (slot, r.kind) {
            (hash_table::Entry::Occupied(mut occupied), RecordKind::Put) => {
                let old = std::mem::replace(occupied.get_mut(), new_entry(segment, r.offset, h));
                retire(&old);
                segment.add_live(r.len);
            }
            (hash_table::Entry::Occupied(occupied), RecordKind::Delete) => {
                let (old, _) = occupied.remove();
                retire(&old);
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
            (hash_table::Entry::Vacant(vacant), RecordKind::Put) => {
                vacant.insert(new_entry(segment, r.offset, h));
                segment.add_live(r.len);
                self.len.fetch_add(1, Ordering::Relaxed);
            }
            (hash_table::Entry::Vacant(_), RecordKind::Delete) => {}
        }
    }

    /// The full 64-bit hash of `key`, for [`LoadItem::hash`].
    /// Sizes every stripe for `total` keys in all, so that loading does not grow tables step by
    /// step (open only; estimates from hint file headers).
    pub(crate) fn reserve(&mut self, total: usize) {
        let per_stripe = total / self.stripes.len() + total / self.stripes.len() / 16 + 1;
        for stripe in self.stripes.iter_mut() {
            stripe.get_mut().reserve(per_stripe, |e| KeyHash::table_hash(e.hash));
        }
    }

    /// The store's key hasher.
    pub(crate) fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// Recovery's bulk insert of one segment's records: for each key, whichever record has the
    /// higher sequence number wins, so segments may be loaded in any order. Tombstones are inserted
    /// too (they must shadow older puts in segments loaded later) and swept by
    /// [`Index::remove_if_at`] once every segment is loaded.
    ///
    /// Items are grouped by stripe first, so that each stripe's table stays in cache while it is
    /// filled, and the two halves of the stripes are filled by two threads.
    pub(crate) fn load_batch(&mut self, segment: &Arc<Segment>, mut items: Vec<LoadItem>) {
        let mask = self.stripe_mask;
        let stripe_of = |item: &LoadItem| (item.hash >> 32) as usize & mask;
        let mut starts = vec![0usize; self.stripes.len() + 1];
        for item in &items {
            starts[stripe_of(item) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        // In-place counting sort: every swap puts one item into its stripe's range for good.
        let mut next = starts.clone();
        for s in 0..self.stripes.len() {
            while next[s] < starts[s + 1] {
                let home = stripe_of(&items[next[s]]);
                if home == s {
                    next[s] += 1;
                } else {
                    items.swap(next[s], next[home]);
                    next[home] += 1;
                }
            }
        }
        let sorted = items;
        let half = self.stripes.len() / 2;
        let (low, high) = self.stripes.split_at_mut(half);
        let (items_low, items_high) = sorted.split_at(starts[half]);
        let added = if sorted.len() >= PARALLEL_LOAD_MIN && half > 0 {
            std::thread::scope(|s| {
                let other = s.spawn(|| load_stripes(high, &starts[half..], items_high, segment));
                load_stripes(low, &starts[..=half], items_low, segment) + other.join().expect("index loader thread")
            })
        } else {
            load_stripes(low, &starts[..=half], items_low, segment)
                + load_stripes(high, &starts[half..], items_high, segment)
        };
        *self.len.get_mut() += added;
    }

    /// Removes `key` if its entry still points at `(segment_id, offset)`; returns whether it did.
    /// Used by recovery's tombstone sweep, and by compaction to drop an expired record.
    pub(crate) fn remove_if_at(&self, key: &[u8], segment_id: u64, offset: u32) -> bool {
        let h = self.hash(key);
        let mut table = self.stripes[h.stripe].write();
        let existing = table.find_entry(KeyHash::table_hash(h.short), |e| e.hash == h.short && entry_key_is(e, key));
        match existing {
            Ok(occupied) if occupied.get().is_at(segment_id, offset) => {
                let (old, _) = occupied.remove();
                retire(&old);
                self.len.fetch_sub(1, Ordering::Relaxed);
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
        let mut table = self.stripes[h.stripe].write();
        let Some(entry) = table.find_mut(KeyHash::table_hash(h.short), |e| e.hash == h.short && entry_key_is(e, key))
        else {
            return false;
        };
        if !entry.is_at(from_id, from_offset) {
            return false;
        }
        let old = std::mem::replace(entry, new_entry(to, to_offset, h));
        let len = old.record_len();
        old.segment.sub_live(len);
        to.add_live(len);
        true
    }

    /// Calls `f` with a snapshot of one stripe's entries at a time, holding that stripe's read
    /// lock only while copying it.
    pub(crate) fn for_each_stripe(&self, mut f: impl FnMut(Vec<Entry>)) {
        for stripe in self.stripes.iter() {
            let snapshot: Vec<Entry> = stripe.read().iter().cloned().collect();
            f(snapshot);
        }
    }

    /// A snapshot of stripe `i`'s entries.
    pub(crate) fn stripe_snapshot(&self, i: usize) -> Vec<Entry> {
        self.stripes[i].read().iter().cloned().collect()
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

/// Below this many records a segment is loaded on one thread.
const PARALLEL_LOAD_MIN: usize = 50_000;

/// One record for [`Index::load_batch`]. The key is not carried: on a hash match it is read from
/// the segment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoadItem {
    pub(crate) hash: u64,
    pub(crate) offset: u32,
    pub(crate) seq: u64,
    pub(crate) record_len: u32,
}

/// Loads `items` (sorted by stripe; stripe `i`'s items are `items[starts[i] - base..starts[i + 1] - base]`
/// where `base = starts[0]`) into `stripes`. Returns how many keys were added.
fn load_stripes(
    stripes: &mut [RwLock<HashTable<Entry>>],
    starts: &[usize],
    items: &[LoadItem],
    segment: &Arc<Segment>,
) -> usize {
    let base = starts[0];
    let mut added = 0;
    for (i, stripe) in stripes.iter_mut().enumerate() {
        let table = stripe.get_mut();
        let mine = &items[starts[i] - base..starts[i + 1] - base];
        table.reserve(mine.len(), |e| KeyHash::table_hash(e.hash));
        for item in mine {
            added += usize::from(load_one(table, segment, item));
        }
    }
    added
}

/// Inserts one recovered record unless the key already has a record with a higher sequence
/// number. Returns whether a new key was added.
fn load_one(table: &mut HashTable<Entry>, segment: &Arc<Segment>, item: &LoadItem) -> bool {
    let short = item.hash as u32;
    // The new record's key is read from its segment only if some entry's hash bits match: with
    // hint files, open then never touches the segment's pages.
    let mut key: Option<Option<Cow<'_, [u8]>>> = None;
    let eq = |e: &Entry| {
        if e.hash != short {
            return false;
        }
        let key = key.get_or_insert_with(|| {
            let header = segment.record_header(item.offset)?;
            segment.key(item.offset, &header)
        });
        key.as_deref().is_some_and(|k| entry_key_is(e, k))
    };
    let slot = table.entry(KeyHash::table_hash(short), eq, |e| KeyHash::table_hash(e.hash));
    let fresh = Entry { segment: Arc::clone(segment), offset: item.offset, hash: short };
    let added = match slot {
        hash_table::Entry::Occupied(mut occupied) => {
            // The record that comes last in the log wins: the higher sequence number, and on a
            // tie (only in damaged or forged input) the later position. Never the load order,
            // which the stripe sort does not keep.
            let existing = occupied.get();
            let newer = existing
                .header()
                .is_none_or(|h| (h.seq, existing.segment.id, existing.offset) < (item.seq, segment.id, item.offset));
            if !newer {
                return false;
            }
            retire(&std::mem::replace(occupied.get_mut(), fresh));
            false
        }
        hash_table::Entry::Vacant(vacant) => {
            vacant.insert(fresh);
            true
        }
    };
    segment.add_live(u64::from(item.record_len));
    added
}

fn new_entry(segment: &Arc<Segment>, offset: u32, h: KeyHash) -> Entry {
    Entry { segment: Arc::clone(segment), offset, hash: h.short }
}

/// Moves a replaced entry's record from live to dead in its segment's accounting.
fn retire(old: &Entry) {
    old.segment.sub_live(old.record_len());
}

fn find<'a>(table: &'a HashTable<Entry>, h: KeyHash, key: &[u8]) -> Option<Found<'a>> {
    let entry = table.find(KeyHash::table_hash(h.short), |e| e.hash == h.short && entry_key_is(e, key))?;
    let header = entry.header()?;
    // Entries point at puts; one that points at a tombstone can only come from a forged hint
    // (fuzz finding `hint_decode/entry-on-a-tombstone`) and reads as absent.
    (header.kind == RecordKind::Put).then_some(Found { entry, header })
}

/// Compares `key` with the key stored in the record an entry points to.
fn entry_key_is(entry: &Entry, key: &[u8]) -> bool {
    let Some(header) = entry.segment.record_header(entry.offset) else { return false };
    header.key_len == key.len() && entry.segment.key(entry.offset, &header).is_some_and(|k| *k == *key)
}

/// The key an entry points to.
pub(crate) fn entry_key(entry: &Entry) -> Option<Cow<'_, [u8]>> {
    let header = entry.segment.record_header(entry.offset)?;
    entry.segment.key(entry.offset, &header).map(|k| Cow::Owned(k.into_owned()))
}
