//! Keyspaces: named sets of keys inside one store, each with its own `len`, iteration and
//! `clear`, sharing the store's log, lock and group commit (so a [`Batch`] or a transaction may
//! span them atomically). An ordered keyspace also answers ranges in key order.
//!
//! A keyspace's keys are stored as ordinary records whose key is the keyspace marker, the
//! keyspace's id and the user's key (`format/keyspace.rs`, DESIGN.md "Keyspaces"); in RAM they
//! are in the hash stripes like every key (gets cost what they cost in the default keyspace)
//! and in the index's ordered set under the marker, which gives each keyspace its count and
//! its keys in order without a walk of the store.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::format::{
    encode_registry, name_is_valid, registry_key, RecordKind, RegistryEntry, KEYSPACES_MAX, KEYSPACE_KEY_OVERHEAD_BYTES,
};
pub use crate::format::{KeyspaceId, KeyspaceKind};
use crate::future::WriteFuture;
use crate::log::{Encoded, Op};
use crate::rmw::{Cas, Update, Updated};
use crate::value::{Batch, Value};
use crate::{Error, Result, Store};

/// Keys a keyspace's iteration or `clear` reads per hold of the ordered set's read lock.
const KEYSPACE_CHUNK_KEYS: usize = 512;

impl From<&Keyspace<'_>> for KeyspaceId {
    fn from(ks: &Keyspace<'_>) -> KeyspaceId {
        ks.id
    }
}

/// A handle on one keyspace of a [`Store`], from [`Store::keyspace`] or
/// [`Store::ordered_keyspace`]. Cheap to clone; any number may be open at once.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let store = ferrocask::Store::open(dir.path())?;
/// let users = store.keyspace("users")?;
/// let orders = store.keyspace("orders")?;
/// users.put(b"1", b"ada")?;
/// orders.put(b"1", b"tea")?;
/// assert_eq!(users.get(b"1")?.as_deref(), Some(&b"ada"[..]));
/// assert_eq!((users.len(), orders.len(), store.len()), (1, 1, 0), "each keyspace counts its own keys");
/// # Ok::<(), ferrocask::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyspace<'s> {
    store: &'s Store,
    name: Arc<str>,
    id: KeyspaceId,
    kind: KeyspaceKind,
    /// Set when the keyspace is dropped: reads through the handle then fail (its entries may
    /// still be in the index until the maintenance thread removes them).
    dropped: Arc<AtomicBool>,
}

impl std::fmt::Debug for Keyspace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Store {
    /// The hash keyspace `name` (1..=255 bytes of UTF-8), created durably on first use. Fails with
    /// [`Error::KeyspaceKind`] if `name` is an ordered keyspace.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace<'_>> {
        self.open_keyspace(name, KeyspaceKind::Hash)
    }

    /// The ordered keyspace `name`, created durably on first use: a keyspace that also answers
    /// [`Keyspace::range`], [`Keyspace::scan_prefix`], [`Keyspace::first`] and
    /// [`Keyspace::last`]. Fails with [`Error::KeyspaceKind`] if `name` is a hash keyspace.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let log = store.ordered_keyspace("chat")?;
    /// for t in [3u64, 1, 2, 5] {
    ///     log.put(t.to_be_bytes(), format!("message {t}"))?;
    /// }
    /// let after_2: Vec<u64> =
    ///     log.range(2u64.to_be_bytes()..)?.map(|(k, _)| u64::from_be_bytes(k.try_into().unwrap())).collect();
    /// assert_eq!(after_2, [2, 3, 5]);
    /// let newest = log.last()?.map(|(_, v)| v.into_vec());
    /// assert_eq!(newest.as_deref(), Some(&b"message 5"[..]));
    /// // A whole keyspace backwards (`..` needs its key type named):
    /// assert_eq!(log.range::<&[u8], _>(..)?.rev().count(), 4);
    /// assert!(store.keyspace("chat").is_err(), "a name keeps its kind");
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn ordered_keyspace(&self, name: &str) -> Result<Keyspace<'_>> {
        self.open_keyspace(name, KeyspaceKind::Ordered)
    }

    /// The keyspaces, with their kinds, in order of creation.
    pub fn keyspaces(&self) -> Vec<(String, KeyspaceKind)> {
        self.engine.keyspaces.snapshot().entries.into_iter().map(|e| (e.name, e.kind)).collect()
    }

    /// Drops keyspace `name` durably: once this returns, no handle reads or writes its keys, and
    /// after a crash it stays dropped. Its records are dead from then on (its id is never handed
    /// out again) and compaction reclaims them. The call writes one record (the registry): its
    /// cost does not depend on the keyspace's size. The keyspace's index entries are removed
    /// after it, by the maintenance thread (on this thread if
    /// [`Options::background_thread`](crate::Options) is off), which is when their records
    /// count as dead bytes for compaction. Fails with [`Error::NoSuchKeyspace`] if there is no
    /// such keyspace.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.keyspace("tmp")?.put(b"k", b"v")?;
    /// store.drop_keyspace("tmp")?;
    /// assert!(store.keyspaces().is_empty());
    /// assert!(store.keyspace("tmp")?.is_empty(), "a new keyspace of the same name starts empty");
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        let engine = &self.engine;
        let _change = engine.keyspaces.change.lock();
        let mut registry = engine.keyspaces.snapshot();
        let Some(at) = registry.entries.iter().position(|e| e.name == name) else {
            return Err(Error::NoSuchKeyspace { name: name.to_owned() });
        };
        let dropped = registry.entries.remove(at);
        self.commit_registry(&registry)?;
        engine.keyspaces.install(&engine.index, registry);
        engine.keyspaces.dropped(dropped.id);
        self.forget_dropped();
        Ok(())
    }

    fn open_keyspace(&self, name: &str, kind: KeyspaceKind) -> Result<Keyspace<'_>> {
        if !name_is_valid(name) {
            return Err(Error::InvalidKeyspaceName { len: name.len() });
        }
        let found = match self.engine.keyspaces.find(name) {
            Some(found) => found,
            None => self.create_keyspace(name, kind)?,
        };
        if found.kind != kind {
            return Err(Error::KeyspaceKind { name: name.to_owned(), is: found.kind, wanted: kind });
        }
        let dropped = self.engine.keyspaces.dropped_flag(found.id);
        Ok(Keyspace { store: self, name: name.into(), id: KeyspaceId::new(found.id), kind, dropped })
    }

    /// Registers `name` (unless another thread just did) with the next id, durably.
    fn create_keyspace(&self, name: &str, kind: KeyspaceKind) -> Result<RegistryEntry> {
        let engine = &self.engine;
        let _change = engine.keyspaces.change.lock();
        if let Some(found) = engine.keyspaces.find(name) {
            return Ok(found);
        }
        let mut registry = engine.keyspaces.snapshot();
        if registry.entries.len() >= KEYSPACES_MAX || registry.next_id == u32::MAX {
            return Err(Error::TooManyKeyspaces { max: KEYSPACES_MAX });
        }
        let entry = RegistryEntry { name: name.to_owned(), id: registry.next_id, kind };
        registry.next_id += 1;
        registry.entries.push(entry.clone());
        // Before the registry is written: its key and every keyspace key go into the ordered set.
        engine.index.enable_keyspaces()?;
        self.commit_registry(&registry)?;
        engine.keyspaces.install(&engine.index, registry);
        Ok(entry)
    }

    fn commit_registry(&self, registry: &crate::format::Registry) -> Result<()> {
        let value = encode_registry(registry);
        self.commit_op(Op::Write(Encoded::one(RecordKind::Put, 0, &registry_key(), &value))).map(drop)
    }
}

impl<'s> Keyspace<'s> {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The keyspace's kind.
    pub fn kind(&self) -> KeyspaceKind {
        self.kind
    }

    /// The keyspace's id, for [`Batch::put_in`] and the `_in` methods of [`Txn`](crate::Txn).
    pub fn id(&self) -> KeyspaceId {
        self.id
    }

    /// The store the keyspace is in.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Checks a key of this keyspace and returns its stored form.
    fn stored(&self, key: &[u8]) -> Result<Vec<u8>> {
        let max = self.store.engine.options.key_bytes_max.saturating_sub(KEYSPACE_KEY_OVERHEAD_BYTES);
        match key.len() {
            0 => Err(Error::EmptyKey),
            len if len > max => Err(Error::KeyTooLarge { len, max }),
            _ => Ok(self.id.key(key)),
        }
    }

    /// A write's error, with a dropped keyspace named as such.
    fn named(&self, e: Error) -> Error {
        match e {
            Error::ReservedKey { .. } => Error::NoSuchKeyspace { name: self.name.to_string() },
            other => other,
        }
    }

    /// `key`'s value, from memory (as [`Store::get`]).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        Ok(self.get_with_expiry(key)?.map(|(value, _)| value))
    }

    /// `key`'s value with its expiry (ms since the Unix epoch, `None` = never).
    pub fn get_with_expiry(&self, key: impl AsRef<[u8]>) -> Result<Option<(Value, Option<u64>)>> {
        self.live()?;
        let stored = self.stored(key.as_ref())?;
        Ok(self.store.engine.read_stored(&stored))
    }

    /// Whether `key` has a live value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get_with_expiry(key)?.is_some())
    }

    /// Sets `key` to `value`, durably (as [`Store::put`]).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let stored = self.stored(key.as_ref())?;
        self.store.put(stored, value).map_err(|e| self.named(e))
    }

    /// Sets `key` to `value` until `ttl` has passed (as [`Store::put_with_ttl`]).
    pub fn put_with_ttl(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
        let stored = self.stored(key.as_ref())?;
        self.store.put_with_ttl(stored, value, ttl).map_err(|e| self.named(e))
    }

    /// Deletes `key`, durably (as [`Store::delete`]).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let stored = self.stored(key.as_ref())?;
        self.store.delete(stored).map_err(|e| self.named(e))
    }

    /// Applies `batch` (as [`Store::write`]); a batch may hold keys of any keyspaces
    /// ([`Batch::put_in`]), this is [`Store::write`] under another name.
    pub fn write(&self, batch: Batch) -> Result<()> {
        self.store.write(batch).map_err(|e| self.named(e))
    }

    /// Reads `key` and writes what `f` makes of it, atomically (as [`Store::update`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::Update;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let hits = store.keyspace("hits")?;
    /// let incr = |v: Option<&[u8]>| Update::Set(vec![v.map_or(0, |b| b[0]) + 1]);
    /// hits.update(b"home", incr)?;
    /// assert_eq!(hits.update(b"home", incr)?.current.as_deref(), Some(&[2u8][..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn update<F>(&self, key: impl AsRef<[u8]>, f: F) -> Result<Updated>
    where
        F: FnOnce(Option<&[u8]>) -> Update + Send + 'static,
    {
        let stored = self.stored(key.as_ref())?;
        self.store.update(stored, f).map_err(|e| self.named(e))
    }

    /// Sets `key` to `new` if it holds `expected`, atomically (as [`Store::compare_and_swap`]).
    pub fn compare_and_swap(&self, key: impl AsRef<[u8]>, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<Cas> {
        let stored = self.stored(key.as_ref())?;
        self.store.compare_and_swap(stored, expected, new).map_err(|e| self.named(e))
    }

    /// [`Keyspace::put`] as a future (as [`Store::put_async`]).
    pub fn put_async(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> WriteFuture<()> {
        match self.stored(key.as_ref()) {
            Ok(stored) => self.store.put_async(stored, value),
            Err(e) => WriteFuture::ready(Err(e)),
        }
    }

    /// [`Keyspace::delete`] as a future (as [`Store::delete_async`]).
    pub fn delete_async(&self, key: impl AsRef<[u8]>) -> WriteFuture<()> {
        match self.stored(key.as_ref()) {
            Ok(stored) => self.store.delete_async(stored),
            Err(e) => WriteFuture::ready(Err(e)),
        }
    }

    /// A handle from its parts (for the typed view over a keyspace).
    pub(crate) fn from_parts(store: &'s Store, name: Arc<str>, id: KeyspaceId, kind: KeyspaceKind) -> Keyspace<'s> {
        let dropped = store.engine.keyspaces.dropped_flag(id.get());
        Keyspace { store, name, id, kind, dropped }
    }

    /// `Err(NoSuchKeyspace)` once the keyspace is dropped.
    fn live(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(Error::NoSuchKeyspace { name: self.name.to_string() });
        }
        Ok(())
    }

    /// The keyspace's live keys. O(1), from a count kept per keyspace, unless some key of the
    /// store has an expiry: then O(this keyspace's keys).
    pub fn len(&self) -> usize {
        if self.live().is_err() {
            return 0;
        }
        let index = &self.store.engine.index;
        let now_ms = self.store.engine.options.clock.now_ms();
        index.live_under(&self.id.prefix(), index.space_count(self.id.get()), now_ms)
    }

    /// Whether the keyspace has no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key with its value, in key order (for either kind). O(this keyspace's keys),
    /// read in chunks: each chunk is one consistent view, the whole walk is not (as
    /// [`Store::iter`]: a key live throughout is yielded once).
    pub fn iter(&self) -> KeyspaceIter<'s> {
        KeyspaceIter {
            store: self.store,
            prefix: self.id.prefix(),
            after: None,
            chunk: Vec::new().into_iter(),
            dropped: Arc::clone(&self.dropped),
        }
    }

    /// Every live key, in key order; see [`Keyspace::iter`].
    pub fn keys(&self) -> impl Iterator<Item = Vec<u8>> + 's {
        self.iter().map(|(k, _)| k)
    }

    /// Deletes every key of the keyspace, in batches of at most
    /// [`Store::batch_bytes_max`] bytes: each batch is atomic, the whole clear is not (a
    /// concurrent reader may see part of it; keys written meanwhile may survive). Returns the
    /// number of keys deleted. O(this keyspace's keys). To empty a keyspace atomically, drop
    /// it ([`Store::drop_keyspace`]).
    pub fn clear(&self) -> Result<usize> {
        let prefix = self.id.prefix();
        let index = &self.store.engine.index;
        let budget = self.store.batch_bytes_max();
        let mut deleted = 0;
        loop {
            let keys =
                index.range(&prefix, (Bound::Unbounded, Bound::Unbounded), false, KEYSPACE_CHUNK_KEYS, |k, _| {
                    Some(k.to_vec())
                })?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            let mut batch = Batch::new();
            let mut bytes = 0;
            for key in keys {
                let record = crate::format::RECORD_HEADER_BYTES + key.len();
                if bytes + record > budget && !batch.is_empty() {
                    self.write(std::mem::take(&mut batch))?;
                    bytes = 0;
                }
                bytes += record;
                batch.delete(key);
                deleted += 1;
            }
            self.write(batch)?;
        }
    }

    /// The live keys within `range` (bounds on this keyspace's keys) with their values, in key
    /// order; `.rev()` walks it from the end. Ordered keyspaces only (else
    /// [`Error::KeyspaceKind`]). O(log n + m), n this keyspace's keys, m those in range. The
    /// result is read at once under the ordered set's read lock, so it shows every batch
    /// wholly or not at all, as of one moment; it holds its m pairs in memory.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let ks = store.ordered_keyspace("letters")?;
    /// for k in ["a", "b", "c", "d"] {
    ///     ks.put(k, k.to_uppercase())?;
    /// }
    /// let keys: Vec<_> = ks.range("b"..="c")?.map(|(k, _)| k).collect();
    /// assert_eq!(keys, [b"b".to_vec(), b"c".to_vec()]);
    /// let back: Vec<_> = ks.range("b"..)?.rev().map(|(k, _)| k).collect();
    /// assert_eq!(back, [b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<Range> {
        let start = self.bound(range.start_bound());
        let end = self.bound(range.end_bound());
        self.ordered_walk(&self.id.prefix(), start, end, false, usize::MAX).map(|pairs| Range(pairs.into_iter()))
    }

    /// At most `limit` live pairs within `range`, from its start (from its end if `reverse`),
    /// read as [`Keyspace::range`] reads them: a page, for "the last N items" or pagination
    /// (start the next page after the last key). O(log n + limit): the range's other keys are
    /// not read.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let feed = store.ordered_keyspace("feed")?;
    /// for t in 0u32..100 {
    ///     feed.put(t.to_be_bytes(), b"post")?;
    /// }
    /// let newest = feed.range_page::<&[u8], _>(.., true, 3)?;
    /// let times: Vec<u32> = newest.iter().map(|(k, _)| u32::from_be_bytes(k[..].try_into().unwrap())).collect();
    /// assert_eq!(times, [99, 98, 97]);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn range_page<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let start = self.bound(range.start_bound());
        let end = self.bound(range.end_bound());
        self.ordered_walk(&self.id.prefix(), start, end, reverse, limit)
    }

    /// The live keys that start with `prefix`, in key order, as [`Keyspace::range`] reads them.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Range> {
        let walk = self.id.key(prefix.as_ref());
        let all = Bound::Unbounded;
        self.ordered_walk(&walk, all.clone(), all, false, usize::MAX).map(|pairs| Range(pairs.into_iter()))
    }

    /// The live key that sorts first, with its value (ordered keyspaces only). O(log n).
    pub fn first(&self) -> Result<Option<(Vec<u8>, Value)>> {
        let all = Bound::Unbounded;
        Ok(self.ordered_walk(&self.id.prefix(), all.clone(), all, false, 1)?.pop())
    }

    /// The live key that sorts last, with its value (ordered keyspaces only). O(log n).
    pub fn last(&self) -> Result<Option<(Vec<u8>, Value)>> {
        let all = Bound::Unbounded;
        Ok(self.ordered_walk(&self.id.prefix(), all.clone(), all, true, 1)?.pop())
    }

    fn bound<K: AsRef<[u8]>>(&self, b: Bound<&K>) -> Bound<Vec<u8>> {
        b.map(|k| self.id.key(k.as_ref()))
    }

    fn ordered_walk(
        &self,
        prefix: &[u8],
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        self.live()?;
        if self.kind != KeyspaceKind::Ordered {
            return Err(Error::KeyspaceKind {
                name: self.name.to_string(),
                is: self.kind,
                wanted: KeyspaceKind::Ordered,
            });
        }
        read_pairs(
            self.store,
            prefix,
            (start.as_ref().map(Vec::as_slice), end.as_ref().map(Vec::as_slice)),
            reverse,
            limit,
        )
    }
}

/// The live pairs under `prefix` within `bounds`, the keys without the keyspace's prefix.
fn read_pairs(
    store: &Store,
    prefix: &[u8],
    bounds: (Bound<&[u8]>, Bound<&[u8]>),
    reverse: bool,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Value)>> {
    let now_ms = store.engine.options.clock.now_ms();
    store.engine.index.range(prefix, bounds, reverse, limit, |key, found| {
        if crate::format::is_expired(found.header.expires_ms, || now_ms) {
            return None;
        }
        let value = found.value()?;
        Some((key[KEYSPACE_KEY_OVERHEAD_BYTES..].to_vec(), Value::new(value.into_owned())))
    })
}

/// The pairs of a [`Keyspace::range`], in key order from either end.
#[derive(Debug)]
pub struct Range(std::vec::IntoIter<(Vec<u8>, Value)>);

impl Iterator for Range {
    type Item = (Vec<u8>, Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for Range {}

/// Iterator over a keyspace's pairs in key order, from [`Keyspace::iter`].
pub struct KeyspaceIter<'s> {
    store: &'s Store,
    prefix: [u8; KEYSPACE_KEY_OVERHEAD_BYTES],
    /// The stored key of the last pair read, where the next chunk starts (after it).
    after: Option<Vec<u8>>,
    chunk: std::vec::IntoIter<(Vec<u8>, Value)>,
    /// The keyspace's drop flag: a dropped keyspace yields nothing more.
    dropped: Arc<AtomicBool>,
}

impl Iterator for KeyspaceIter<'_> {
    type Item = (Vec<u8>, Value);

    fn next(&mut self) -> Option<Self::Item> {
        if self.dropped.load(Ordering::Acquire) {
            return None;
        }
        if let Some(pair) = self.chunk.next() {
            return Some(pair);
        }
        let start = self.after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let pairs = read_pairs(self.store, &self.prefix, (start, Bound::Unbounded), false, KEYSPACE_CHUNK_KEYS).ok()?;
        let (last, _) = pairs.last()?;
        let mut after = self.prefix.to_vec();
        after.extend_from_slice(last);
        self.after = Some(after);
        self.chunk = pairs.into_iter();
        self.chunk.next()
    }
}

impl Batch {
    /// Adds a put of `key` in keyspace `space` (a batch may span keyspaces; it stays atomic).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use ferrocask::Batch;
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let (accounts, audit) = (store.keyspace("accounts")?, store.ordered_keyspace("audit")?);
    /// let mut batch = Batch::new();
    /// batch.put_in(&accounts, b"ada", b"90").put_in(&audit, b"0001", b"ada -10");
    /// store.write(batch)?;
    /// assert_eq!((accounts.len(), audit.len()), (1, 1));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn put_in(
        &mut self,
        space: impl Into<KeyspaceId>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Batch {
        self.put(space.into().key(key.as_ref()), value)
    }

    /// Adds a delete of `key` in keyspace `space`.
    pub fn delete_in(&mut self, space: impl Into<KeyspaceId>, key: impl AsRef<[u8]>) -> &mut Batch {
        self.delete(space.into().key(key.as_ref()))
    }
}
