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
