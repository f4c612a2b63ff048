//! The public ordered reads of the keys under declared prefixes (`Options::ordered_prefix`):
//! [`Store::range_keys`], [`Store::range_entries`] and [`Store::count_prefix`], served by the
//! index's ordered set (`index/ordered.rs`). Their `Txn` twins are in `log/txn.rs`.

use std::ops::Bound;

use crate::format::is_expired;
use crate::value::Value;
use crate::{Result, Store};

impl Store {
    /// The live keys that start with `prefix` and lie within `start..end`, in ascending order
    /// (descending if `reverse`), at most `limit` of them.
    ///
    /// `prefix` must start with a prefix declared with
    /// [`Options::ordered_prefix`](crate::Options::ordered_prefix) (it may be longer: one
    /// collection's members), else this fails with [`Error::NotOrdered`](crate::Error::NotOrdered).
    /// The bounds are whole keys; [`Bound::Unbounded`] stands for the prefix's own first or
    /// last key. Expired keys are skipped.
    ///
    /// Cost: O(log n + m), n the keys under the declared prefixes, m the keys returned plus the
    /// expired ones skipped. Consistency: the call holds the ordered set's read lock for its whole
    /// walk and every group of writes (a batch, a transaction, the group they commit in) is
    /// published to it under one write lock, so the result shows each group wholly or not at all,
    /// as of one moment; writers of keys under declared prefixes wait for it meanwhile.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::ops::Bound::{Excluded, Included, Unbounded};
    /// use ferrocask::{Options, Store};
    /// let store = Store::open_with(dir.path(), Options::default().ordered_prefix("set:"))?;
    /// for member in ["a", "b", "c", "d"] {
    ///     store.put(format!("set:fruit:{member}"), b"")?;
    /// }
    /// store.put("set:veg:a", b"")?;
    /// let fruit = store.range_keys(b"set:fruit:", Unbounded, Unbounded, false, 10)?;
    /// assert_eq!(fruit, [&b"set:fruit:a"[..], b"set:fruit:b", b"set:fruit:c", b"set:fruit:d"]);
    /// let last_two = store.range_keys(b"set:fruit:", Excluded(b"set:fruit:a"), Unbounded, true, 2)?;
    /// assert_eq!(last_two, [&b"set:fruit:d"[..], b"set:fruit:c"]);
    /// let from_b = store.range_keys(b"set:", Included(b"set:fruit:b"), Included(b"set:fruit:c"), false, 10)?;
    /// assert_eq!(from_b.len(), 2);
    /// assert_eq!(store.count_prefix(b"set:")?, 5);
    /// assert!(store.range_keys(b"other:", Unbounded, Unbounded, false, 10).is_err());
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn range_keys(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let now_ms = self.engine.options.clock.now_ms();
        self.engine.index.range(prefix, (start, end), reverse, limit, |key, found| {
            (!is_expired(found.header.expires_ms, || now_ms)).then(|| key.to_vec())
        })
    }

    /// [`Store::range_keys`] with each key's value, read under the same locks (so with the same
    /// guarantees), at the cost of copying the values.
    pub fn range_entries(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let now_ms = self.engine.options.clock.now_ms();
        self.engine.index.range(prefix, (start, end), reverse, limit, |key, found| {
            if is_expired(found.header.expires_ms, || now_ms) {
                return None;
            }
            let value = found.value()?;
            Some((key.to_vec(), Value::new(value.into_owned())))
        })
    }

    /// [`Store::range_entries`] into a reusable [`RangeBuf`] (cleared first): the keys and values
    /// copied into its two buffers, which keep their capacity from call to call, so a loop of
    /// scans allocates nothing once they have grown. Same arguments, errors, cost and
    /// consistency; no user code runs under the store's locks.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::ops::Bound::{Excluded, Unbounded};
    /// use ferrocask::{Options, RangeBuf, Store};
    /// let store = Store::open_with(dir.path(), Options::default().ordered_prefix("log:"))?;
    /// for i in 0..250u32 {
    ///     store.put(format!("log:{i:04}"), i.to_be_bytes())?;
    /// }
    /// // Every entry, 100 at a time, through one buffer.
    /// let (mut buf, mut seen, mut after) = (RangeBuf::new(), 0, None::<Vec<u8>>);
    /// loop {
    ///     let start = after.as_deref().map_or(Unbounded, Excluded);
    ///     store.range_into(b"log:", start, Unbounded, false, 100, &mut buf)?;
    ///     for (key, value) in buf.iter() {
    ///         assert_eq!(value, (seen as u32).to_be_bytes());
    ///         assert_eq!(key, format!("log:{seen:04}").as_bytes());
    ///         seen += 1;
    ///     }
    ///     match buf.last() {
    ///         Some((key, _)) if buf.len() == 100 => after = Some(key.to_vec()),
    ///         _ => break,
    ///     }
    /// }
    /// assert_eq!(seen, 250);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn range_into(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
        buf: &mut RangeBuf,
    ) -> Result<()> {
        buf.clear();
        if limit == 0 {
            return Ok(());
        }
        let now_ms = self.engine.options.clock.now_ms();
        self.engine.index.walk(prefix, (start, end), reverse, |key, found| {
            if !is_expired(found.header.expires_ms, || now_ms) {
                // The record holds the key (equal to the set's) then the value: one copy.
                if let Some(both) = found.key_value() {
                    debug_assert_eq!(&both[..key.len()], key, "a location's record is its key's");
                    buf.push_joined(&both, key.len());
                }
            }
            buf.len() < limit
        })
    }

    /// The number of index entries under `prefix`, which must be exactly a prefix declared with
    /// [`Options::ordered_prefix`](crate::Options::ordered_prefix) (else
    /// [`Error::NotOrdered`](crate::Error::NotOrdered)). O(1): a counter kept per declared prefix.
    ///
    /// Expired keys not yet dropped (by compaction or the next open) are still entries, so they
    /// are counted: the count is exact for keys written without an expiry, which is what it is
    /// for. Consistency as for [`Store::range_keys`]: each published group wholly or not at all.
    pub fn count_prefix(&self, prefix: &[u8]) -> Result<usize> {
        self.engine.index.count_prefix(prefix)
    }

    /// Checks that the index's ordered set holds exactly the keys of its entries under the
    /// declared prefixes, with the right counts, by a walk of the whole index; panics if not.
    /// For tests, with no write in flight.
    #[doc(hidden)]
    pub fn check_ordered_index(&self) {
        self.engine.index.check_ordered();
    }
}

/// Entries of an ordered range, copied into two reusable buffers (all the keys and values in
/// one, their ends in the other): what [`Store::range_into`] fills. Reading an entry borrows
/// from the buffer; clearing keeps the capacity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeBuf {
    /// Each entry's key then value, back to back.
    bytes: Vec<u8>,
    /// Per entry, where its key ends and where its value ends in `bytes`.
    ends: Vec<(usize, usize)>,
}

impl RangeBuf {
    /// An empty buffer.
    pub fn new() -> RangeBuf {
        RangeBuf::default()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entry `i` (in the order the range gave them): its key and value.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let start = match i.checked_sub(1) {
            Some(before) => self.ends.get(before)?.1,
            None => 0,
        };
        let &(key_end, value_end) = self.ends.get(i)?;
        Some((&self.bytes[start..key_end], &self.bytes[key_end..value_end]))
    }

    /// The last entry, where a next page would start after.
    pub fn last(&self) -> Option<(&[u8], &[u8])> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The entries in order, each as its key and value.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.ends.iter().enumerate().map(|(i, &(key_end, value_end))| {
            let start = if i == 0 { 0 } else { self.ends[i - 1].1 };
            (&self.bytes[start..key_end], &self.bytes[key_end..value_end])
        })
    }

    /// Empties it, keeping what it has allocated.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Appends an entry given as its key then its value in one slice, `key_len` bytes of key.
    fn push_joined(&mut self, both: &[u8], key_len: usize) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(both);
        self.ends.push((start + key_len, self.bytes.len()));
    }

    /// Appends an entry (for a caller that fills a buffer from another source, such as a
    /// transaction's view).
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((key_end, self.bytes.len()));
    }
}
