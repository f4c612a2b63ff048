//! The keys under declared prefixes (`Options::ordered_prefix`), in order, beside the hash
//! stripes: for range reads in O(log n + m) and a count per prefix in O(1).
//!
//! Beside each key the set keeps a copy of its hash entry's location (segment slot and offset,
//! `segments::Location`), so that a range read gets each record from the walk itself, without
//! hashing the key and probing its stripe again (that second lookup was ~40% of LRANGE's time).
//! Keys enter and leave the set exactly where they enter and leave the hash index, and only
//! there (`Index::entered`, `Index::left`); a location changes wherever the entry's does (a put
//! over a live key, compaction's relocation: `Index::moved`). It is not kept during recovery's
//! bulk load (which reads no key); it is built once recovery has swept, from the live entries.
//!
//! Lock order: this set's lock comes before every stripe lock. A change that may add, remove or
//! move a key under a declared prefix (a published group holding one, a removal or relocation of
//! one) takes the write lock before its stripe locks and keeps it until every stripe is updated.
//! So a reader that holds the read lock sees each group whole, and every location it reads equals
//! its key's hash entry for as long as it holds the lock: the entry, which counts its segment's
//! slot, cannot be replaced or forgotten meanwhile, so the segment stays mapped and the record
//! read through the location is the key's latest.

use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, RangeBounds};

use parking_lot::{RwLock, RwLockWriteGuard};

use super::segments::Location;
use crate::format::keyspace_of;
use crate::{Error, Result};

/// Bytes the set takes per key besides the key's own bytes (its share of the tree's nodes: a
/// 16-byte `Box<[u8]>` and an 8-byte location per slot, 11 slots per node), for
/// `Stats::index_bytes`. Measured by `tests/ordered_footprint.rs`, which checks that this stays
/// within 20% of what is allocated: 26 bytes when the set is built at open (full nodes), 39
/// after inserts in random order, 49 after inserts in key order (half-full nodes); 18, 27 and
/// 34 before the locations were kept. See DESIGN.md, "Ordered prefixes".
pub(crate) const SET_BYTES_PER_KEY: usize = 36;

/// The declared prefixes and the ordered set of the index's keys under them.
pub(crate) struct Ordered {
    /// The declared prefixes, none a prefix of another.
    prefixes: Box<[Box<[u8]>]>,
    keys: RwLock<OrderedKeys>,
}

/// A key of the set with its entry's location.
pub(crate) type Located = (Box<[u8]>, Location);

/// The set itself (each key with its entry's location), with what is counted as it changes.
#[derive(Default)]
pub(crate) struct OrderedKeys {
    set: BTreeMap<Box<[u8]>, Location>,
    /// Keys in `set` under each declared prefix (same order as `Ordered::prefixes`).
    counts: Box<[usize]>,
    /// The sum of the lengths of the keys in `set`.
    key_bytes: usize,
    /// Keys in `set` per keyspace id, for the keyspaces' keys (under `KEYSPACE_MARKER`, which is
    /// a declared prefix once a store has keyspaces): a keyspace's `len` in O(1).
    spaces: HashMap<u32, usize>,
}

impl Ordered {
    /// A set for `prefixes` (checked by `Options::validated`), holding `keys` (each under one)
    /// with their entries' locations.
    pub(crate) fn new(prefixes: &[Vec<u8>], keys: Vec<(Box<[u8]>, Location)>) -> Ordered {
        let prefixes: Box<[Box<[u8]>]> = prefixes.iter().map(|p| p.clone().into_boxed_slice()).collect();
        let mut counts = vec![0; prefixes.len()].into_boxed_slice();
        let mut key_bytes = 0;
        let mut spaces = HashMap::new();
        for (key, _) in &keys {
            let i = prefix_index(&prefixes, key).expect("every key given is under a declared prefix");
            counts[i] += 1;
            key_bytes += key.len();
            if let Some(id) = keyspace_of(key) {
                *spaces.entry(id).or_insert(0) += 1;
            }
        }
        // Collected and bulk-built (std sorts, which is one pass over keys given in order, then
        // fills nodes whole): smaller than inserting.
        let set: BTreeMap<Box<[u8]>, Location> = keys.into_iter().collect();
        debug_assert_eq!(set.len(), counts.iter().sum::<usize>(), "the index holds each key once");
        Ordered { prefixes, keys: RwLock::new(OrderedKeys { set, counts, key_bytes, spaces }) }
    }

    /// Whether `key` is under a declared prefix.
    pub(crate) fn covers(&self, key: &[u8]) -> bool {
        prefix_index(&self.prefixes, key).is_some()
    }

    /// The write lock, for a change to the index that may add or remove covered keys.
    pub(crate) fn write(&self) -> OrderedWrite<'_> {
        OrderedWrite { prefixes: &self.prefixes, keys: self.keys.write() }
    }

    /// The number of keys under `prefix`, which must be exactly a declared prefix. O(1).
    pub(crate) fn count(&self, prefix: &[u8]) -> Result<usize> {
        let i = self.prefixes.iter().position(|p| **p == *prefix).ok_or_else(|| not_ordered(prefix))?;
        Ok(self.keys.read().counts[i])
    }

    /// The number of keys of keyspace `id` (their stored keys start with its prefix). O(1).
    pub(crate) fn space_count(&self, id: u32) -> usize {
        self.keys.read().spaces.get(&id).copied().unwrap_or(0)
    }

    /// The ids of the keyspaces with keys in the set (dropped ones included until swept).
    pub(crate) fn space_ids(&self) -> Vec<u32> {
        self.keys.read().spaces.iter().filter(|(_, &n)| n > 0).map(|(&id, _)| id).collect()
    }

    /// Calls `f` on each key that starts with `prefix` (which must start with a declared prefix)
    /// and lies within `start..end`, with its entry's location, in ascending order (descending if
    /// `reverse`), until `f` returns false. Holds the read lock throughout, so each location
    /// equals its key's entry while `f` runs on it (see the module doc): `f` may take stripe
    /// locks, not this one. O(log n) plus the keys `f` is called on.
    pub(crate) fn walk(
        &self,
        prefix: &[u8],
        (start, end): (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        mut f: impl FnMut(&[u8], Location) -> bool,
    ) -> Result<()> {
        if !self.covers(prefix) {
            return Err(not_ordered(prefix));
        }
        if !reverse {
            // Forward, the walk stops at the first key past `prefix` (the keys under it are
            // contiguous and come after `low`, itself at or past `prefix`): so the upper bound
            // need not be clamped to the prefix's successor, which saves allocating it and the
            // set a second descent to find it, on every short scan.
            let low = match start {
                Bound::Included(s) | Bound::Excluded(s) if s >= prefix => start,
                _ => Bound::Included(prefix),
            };
            if is_empty(low, end) {
                return Ok(());
            }
            let keys = self.keys.read();
            let range = keys.set.range::<[u8], _>((low, end));
            // If the set's last key is under `prefix`, so is every key from `low` on: the
            // per-key check is skipped (the last key is a descent along the right edge, which
            // every scan takes, so it is cached).
            if keys.set.last_key_value().is_some_and(|(last, _)| last.starts_with(prefix)) {
                range.take_while(|(k, l)| f(k, **l)).for_each(drop);
            } else {
                range.take_while(|(k, l)| k.starts_with(prefix) && f(k, **l)).for_each(drop);
            }
            return Ok(());
        }
        let Some((low, high)) = clamp(prefix, start, end) else { return Ok(()) };
        let keys = self.keys.read();
        let range = keys.set.range::<[u8], _>((low.as_ref().map(Vec::as_slice), high.as_ref().map(Vec::as_slice)));
        range.rev().take_while(|(k, l)| f(k, **l)).for_each(drop);
        Ok(())
    }

    /// Bytes the set holds allocated: the keys' bytes and [`SET_BYTES_PER_KEY`] per key.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let keys = self.keys.read();
        keys.key_bytes + keys.set.len() * SET_BYTES_PER_KEY
    }

    /// Every key in the set with its location, in order (for the check against a walk of the
    /// stripes).
    pub(crate) fn snapshot(&self) -> (Vec<Located>, Box<[usize]>) {
        let keys = self.keys.read();
        (keys.set.iter().map(|(k, l)| (k.clone(), *l)).collect(), keys.counts.clone())
    }

    /// The index of the declared prefix `key` starts with.
    pub(crate) fn prefix_index(&self, key: &[u8]) -> Option<usize> {
        prefix_index(&self.prefixes, key)
    }
}

/// Keys collected for the set at open, one part of the index's stripes each: copied into one
/// buffer and sorted there, so that the sort compares keys mostly by a word cached beside each
/// (the 8 bytes after the part's longest common prefix) rather than by chasing a pointer per
/// key per comparison (sorting a million boxed keys that way took seconds: a cache miss each).
#[derive(Default)]
pub(crate) struct KeyRun {
    bytes: Vec<u8>,
    /// (the cached word, where the key starts in `bytes`, its length, its entry's location),
    /// sorted once [`KeyRun::sort`] has run.
    keys: Vec<(u64, usize, u16, Location)>,
}

impl KeyRun {
    /// Adds a key (of at most `KEY_BYTES_MAX` bytes, which fits a `u16`) with its entry's location.
    pub(crate) fn push(&mut self, key: &[u8], location: Location) {
        let len = u16::try_from(key.len()).expect("keys are at most KEY_BYTES_MAX long");
        self.keys.push((0, self.bytes.len(), len, location));
        self.bytes.extend_from_slice(key);
    }

    fn key(&self, (_, start, len, _): (u64, usize, u16, Location)) -> &[u8] {
        &self.bytes[start..start + usize::from(len)]
    }

    /// Sorts the keys: by the big-endian word of the 8 bytes after their longest common prefix
    /// (zero-padded), which orders them as the keys do wherever it differs, then by the keys.
    pub(crate) fn sort(&mut self) {
        let Some(&first) = self.keys.first() else { return };
        let first = self.key(first);
        let common = self.keys.iter().fold(first.len(), |common, &k| {
            let key = self.key(k);
            common.min(first.iter().zip(key).take_while(|(a, b)| a == b).count())
        });
        let bytes = &self.bytes;
        for (word, start, len, _) in &mut self.keys {
            let key = &bytes[*start..*start + usize::from(*len)];
            let mut window = [0u8; 8];
            let tail = &key[common.min(key.len())..];
            let n = tail.len().min(8);
            window[..n].copy_from_slice(&tail[..n]);
            *word = u64::from_be_bytes(window);
        }
        // By the word alone first (a cheap comparison), then each run of equal words by the keys.
        let mut keys = std::mem::take(&mut self.keys);
        keys.sort_unstable_by_key(|k| k.0);
        for tied in keys.chunk_by_mut(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
            tied.sort_unstable_by(|&a, &b| self.key(a).cmp(self.key(b)));
        }
        self.keys = keys;
    }

    /// The keys of sorted runs merged in order, each boxed (allocated in key order, so the
    /// set's own check that its input is sorted walks memory in order), with their locations.
    pub(crate) fn merge(runs: &[KeyRun]) -> Vec<Located> {
        let mut at = vec![0usize; runs.len()];
        let mut merged = Vec::with_capacity(runs.iter().map(|r| r.keys.len()).sum());
        loop {
            let next = (0..runs.len())
                .filter(|&r| at[r] < runs[r].keys.len())
                .min_by(|&a, &b| runs[a].key(runs[a].keys[at[a]]).cmp(runs[b].key(runs[b].keys[at[b]])));
            let Some(r) = next else { return merged };
            let item = runs[r].keys[at[r]];
            merged.push((runs[r].key(item).into(), item.3));
            at[r] += 1;
        }
    }
}

/// The set, write-locked, for a change of the index: inserts, moves and removes keys under a
/// declared prefix, ignores the others.
pub(crate) struct OrderedWrite<'a> {
    prefixes: &'a [Box<[u8]>],
    keys: RwLockWriteGuard<'a, OrderedKeys>,
}

impl OrderedWrite<'_> {
    /// A key entered the index, its entry at `location`.
    pub(crate) fn insert(&mut self, key: &[u8], location: Location) {
        let Some(i) = prefix_index(self.prefixes, key) else { return };
        let keys = &mut *self.keys;
        let inserted = keys.set.insert(key.into(), location).is_none();
        debug_assert!(inserted, "a key entering the index was not in the ordered set");
        if inserted {
            keys.counts[i] += 1;
            keys.key_bytes += key.len();
            if let Some(id) = keyspace_of(key) {
                *keys.spaces.entry(id).or_insert(0) += 1;
            }
        }
    }

    /// A key's entry now points at `location` (a put over it, or compaction moved its record).
    pub(crate) fn moved(&mut self, key: &[u8], location: Location) {
        if prefix_index(self.prefixes, key).is_none() {
            return;
        }
        let slot = self.keys.set.get_mut(key);
        debug_assert!(slot.is_some(), "a key whose entry moves is in the ordered set");
        if let Some(slot) = slot {
            *slot = location;
        }
    }

    /// A key left the index.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        let Some(i) = prefix_index(self.prefixes, key) else { return };
        let keys = &mut *self.keys;
        let removed = keys.set.remove(key).is_some();
        debug_assert!(removed, "a key leaving the index was in the ordered set");
        if removed {
            keys.counts[i] -= 1;
            keys.key_bytes -= key.len();
            if let Some(n) = keyspace_of(key).and_then(|id| keys.spaces.get_mut(&id)) {
                *n -= 1;
            }
        }
    }
}

/// Whether `key` starts with `prefix` and lies within `start..end`: what [`Ordered::walk`] yields.
pub(crate) fn in_range(key: &[u8], prefix: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    key.starts_with(prefix) && (start, end).contains(key)
}

pub(crate) fn not_ordered(prefix: &[u8]) -> Error {
    Error::NotOrdered { prefix: prefix.to_vec() }
}

fn prefix_index(prefixes: &[Box<[u8]>], key: &[u8]) -> Option<usize> {
    prefixes.iter().position(|p| key.starts_with(p))
}

/// A range of keys as `BTreeSet::range` takes it, owned.
type OwnedBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The bounds of the keys that start with `prefix` and lie within `start..end`, as
/// `BTreeSet::range` takes them; `None` when no key can (where `range` would panic).
fn clamp(prefix: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> Option<OwnedBounds> {
    let low = match start {
        Bound::Included(s) | Bound::Excluded(s) if s >= prefix => start.map(<[u8]>::to_vec),
        _ => Bound::Included(prefix.to_vec()),
    };
    let high = match (successor(prefix), end) {
        (None, end) => end.map(<[u8]>::to_vec),
        (Some(after), Bound::Included(e) | Bound::Excluded(e)) if e < after.as_slice() => end.map(<[u8]>::to_vec),
        (Some(after), _) => Bound::Excluded(after),
    };
    let empty = is_empty(low.as_ref().map(Vec::as_slice), high.as_ref().map(Vec::as_slice));
    (!empty).then_some((low, high))
}

/// Whether no key lies within `low..high` (which `BTreeMap::range` requires, else it panics).
fn is_empty(low: Bound<&[u8]>, high: Bound<&[u8]>) -> bool {
    match (low, high) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) => l >= h,
        _ => false,
    }
}

/// The least byte string above every string that starts with `prefix`; `None` if there is none
/// (`prefix` is all `0xff`).
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut after = prefix[..=last].to_vec();
    after[last] += 1;
    Some(after)
}

#[cfg(test)]
mod tests {
    use std::ops::Bound::{self, Excluded, Included, Unbounded};

    use super::{clamp, in_range, successor, Location, Ordered};

    #[test]
    fn the_successor_of_a_prefix_is_above_all_its_keys() {
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(successor(b"\xff\xff"), None);
    }

    #[test]
    fn bounds_are_clamped_to_the_prefix_and_empty_ranges_are_none() {
        let v = |b: &[u8]| b.to_vec();
        assert_eq!(clamp(b"p", Unbounded, Unbounded), Some((Included(v(b"p")), Excluded(v(b"q")))));
        assert_eq!(clamp(b"p", Included(b"a"), Included(b"z")), Some((Included(v(b"p")), Excluded(v(b"q")))));
        assert_eq!(clamp(b"p", Excluded(b"p"), Excluded(b"q")), Some((Excluded(v(b"p")), Excluded(v(b"q")))));
        assert_eq!(clamp(b"p", Included(b"p1"), Included(b"p5")), Some((Included(v(b"p1")), Included(v(b"p5")))));
        assert_eq!(
            clamp(b"\xff", Unbounded, Included(b"\xff\x01")),
            Some((Included(v(b"\xff")), Included(v(b"\xff\x01"))))
        );
        assert_eq!(clamp(b"p", Included(b"p3"), Included(b"p3")), Some((Included(v(b"p3")), Included(v(b"p3")))));
        assert_eq!(clamp(b"p", Excluded(b"p3"), Included(b"p3")), None, "BTreeSet::range would panic");
        assert_eq!(clamp(b"p", Included(b"p3"), Excluded(b"p3")), None);
        assert_eq!(clamp(b"p", Included(b"p5"), Included(b"p3")), None);
        assert_eq!(clamp(b"p", Included(b"r"), Unbounded), None, "start past the prefix");
        assert_eq!(clamp(b"p", Unbounded, Excluded(b"p")), None, "end before the prefix's first key");
    }

    #[test]
    fn walks_yield_exactly_the_keys_in_range() {
        let keys: Vec<Box<[u8]>> = [&b"a"[..], b"a\x00", b"ab", b"abc", b"ac", b"b", b"\xff", b"\xff\xff"]
            .iter()
            .map(|k| (*k).into())
            .collect();
        let located = keys.iter().enumerate().map(|(i, k)| (k.clone(), Location::unused(i as u32))).collect();
        let ordered = Ordered::new(&[b"a".to_vec(), b"b".to_vec(), b"\xff".to_vec()], located);
        let bounds: [Bound<&[u8]>; 5] = [Unbounded, Included(b"ab"), Excluded(b"ab"), Included(b"a"), Excluded(b"b")];
        for prefix in [&b"a"[..], b"ab", b"\xff", b"b"] {
            for start in bounds {
                for end in bounds {
                    let mut walked = Vec::new();
                    ordered
                        .walk(prefix, (start, end), false, |k, l| {
                            let i = keys.iter().position(|key| **key == *k).unwrap();
                            assert_eq!(l, Location::unused(i as u32), "each key walked with its own location");
                            walked.push(k.to_vec());
                            true
                        })
                        .unwrap();
                    let expected: Vec<Vec<u8>> =
                        keys.iter().filter(|k| in_range(k, prefix, start, end)).map(|k| k.to_vec()).collect();
                    assert_eq!(walked, expected, "prefix {prefix:?}, {start:?}..{end:?}");
                }
            }
        }
        assert_eq!(ordered.count(b"a").unwrap(), 5);
        assert!(ordered.count(b"ab").is_err(), "counts are for declared prefixes only");
        assert!(ordered.walk(b"c", (Unbounded, Unbounded), false, |_, _| true).is_err());
    }
}
