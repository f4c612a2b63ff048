//! Read-modify-write evaluated by the group-commit leader.
//!
//! A transaction is a closure that the leader runs while it assembles a group, after every
//! operation queued before it and before every operation queued after it. It reads through a
//! [`Txn`]: its own writes first, then the writes of earlier operations of the same group (the
//! group's *overlay*), then the index, which holds exactly the state after every earlier group,
//! because groups are published strictly one after another. Its writes become records of the
//! group's frame, so they are synced with the group and published with it, and any number of
//! transactions on one hot key share one sync.
//!
//! The closure runs on the leader's thread while other writers wait for the group: it must be
//! cheap. A call from it that writes to the same store or waits for its writer would wait for
//! the very group it is in; the writer refuses it with `Error::Reentrant` (`log/writer.rs`).

use std::collections::HashMap;
use std::ops::Bound;
use std::time::Duration;

use crate::format::{is_expired, record_header_len, KeyspaceId, RecordKind, KEYSPACE_MARKER};
use crate::index::{in_range, Index, ScanPage};
use crate::log::encoded::Encoded;
use crate::value::Value;
use crate::{Error, Result};

/// When a key written by a transaction expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the key's current expiry (none if the key is absent or has none).
    Keep,
    /// Never.
    Never,
    /// At this time, in milliseconds since the Unix epoch (by the store's clock). A time in the
    /// past writes a key that reads as absent at once.
    At(u64),
    /// This long after the transaction runs (by the store's clock).
    After(Duration),
}

impl Expiry {
    /// The expiry to write (ms since the Unix epoch, 0 = never) at time `now_ms`, for a key whose
    /// current expiry `current` gives. A time at or before the epoch is written as 1 ms, which is
    /// as expired as any other past time (0 on disk means "never").
    pub(crate) fn resolve(self, now_ms: u64, current: impl FnOnce() -> u64) -> u64 {
        match self {
            Expiry::Keep => current(),
            Expiry::Never => 0,
            Expiry::At(ms) => ms.max(1),
            Expiry::After(d) => now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).max(1),
        }
    }
}

/// A key's state as a transaction sees it: `Some((value, expires_ms))`, 0 = never; `None` = absent.
type State = Option<(Vec<u8>, u64)>;

/// The state written by the operations of one group so far, by key.
#[derive(Default)]
pub(crate) struct Overlay {
    keys: HashMap<Vec<u8>, State>,
}

impl Overlay {
    /// Records the effect of encoded records (a plain write) on their keys.
    pub(crate) fn add_records(&mut self, ops: &Encoded) {
        for record in ops.records() {
            let state = match record.kind {
                RecordKind::Put => Some((ops.value(record).to_vec(), record.expires_ms())),
                RecordKind::Delete => None,
            };
            self.keys.insert(ops.key(record).to_vec(), state);
        }
    }
}

/// What a transaction may write, checked as it writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) key_bytes_max: usize,
    pub(crate) value_bytes_max: usize,
    /// The most a transaction's records may take: they must fit in one frame.
    pub(crate) bytes_max: usize,
}

/// The view a transaction reads and writes through; see the module doc.
///
/// Reads see the transaction's own writes. Expired keys read as absent. Writes are buffered and
/// become durable, all or none, with the group the transaction is in; [`Txn::discard`] drops them,
/// and [`Txn::rollback_to`] drops those made since a [`Txn::savepoint`] (so that one step of a
/// larger transaction that fails half way leaves nothing behind).
pub struct Txn<'a> {
    index: &'a Index,
    overlay: &'a Overlay,
    now_ms: u64,
    limits: Limits,
    own: HashMap<Vec<u8>, State>,
    writes: Vec<(Vec<u8>, State)>,
    bytes: usize,
    /// Bytes of `limits.bytes_max` kept back from writes (see [`Txn::reserve_bytes`]).
    reserved: usize,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(index: &'a Index, overlay: &'a Overlay, now_ms: u64, limits: Limits) -> Txn<'a> {
        Txn { index, overlay, now_ms, limits, own: HashMap::new(), writes: Vec::new(), bytes: 0, reserved: 0 }
    }

    /// The time this transaction runs at (ms since the Unix epoch): the store's clock, or the
    /// time given to [`Store::transaction_at`](crate::Store::transaction_at).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Runs the rest of this transaction at `now_ms`; set before the caller's closure runs, so
    /// every read, count and expiry it makes uses that time.
    pub(crate) fn set_now_ms(&mut self, now_ms: u64) {
        debug_assert!(self.writes.is_empty(), "the time is fixed before the transaction writes");
        self.now_ms = now_ms;
    }

    /// `key`'s value, or `None` if it is absent or expired.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Value> {
        self.get_with_expiry(key).map(|(value, _)| value)
    }

    /// `key`'s value with its expiry (ms since the Unix epoch, `None` = never).
    pub fn get_with_expiry(&self, key: impl AsRef<[u8]>) -> Option<(Value, Option<u64>)> {
        let (value, expires_ms) = self.state(key.as_ref())?;
        Some((Value::new(value), (expires_ms != 0).then_some(expires_ms)))
    }

    /// Whether `key` has a value. Reads no value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> bool {
        self.meta(key).is_some()
    }

    /// What is known of `key`'s live value without reading (or copying) it: its length, expiry
    /// and version (see [`KeyMeta`]); `None` if the key is absent. A value written earlier in
    /// this transaction or in its group has the version [`Txn::UNSTAMPED`] (not yet numbered,
    /// and newer than anything a reader outside could have seen).
    pub fn meta(&self, key: impl AsRef<[u8]>) -> Option<KeyMeta> {
        let key = key.as_ref();
        let found = match self.own.get(key).or_else(|| self.overlay.keys.get(key)) {
            Some(state) => state.as_ref().map(|(value, expires_ms)| (value.len(), *expires_ms, Txn::UNSTAMPED)),
            None => {
                self.index.with(key, |found| found.map(|f| (f.header.value_len, f.header.expires_ms, f.header.seq)))
            }
        };
        let (value_len, expires_ms, version) = found?;
        (!is_expired(expires_ms, || self.now_ms)).then(|| KeyMeta::new(value_len, expires_ms, version))
    }

    /// The version of a value not yet numbered: above every sequence number the log can hold.
    pub const UNSTAMPED: u64 = u64::MAX;

    /// The number of live keys as this transaction sees them: the store's count (which visits
    /// no index entry), corrected for each key this transaction and its group wrote. Costs
    /// O(keys written in the group), not O(keys).
    pub fn len(&self) -> usize {
        let published_live = |key: &[u8]| {
            self.index.with(key, |found| found.is_some_and(|f| !is_expired(f.header.expires_ms, || self.now_ms)))
        };
        let overlay = self.overlay.keys.keys().filter(|k| !self.own.contains_key(*k));
        let (mut gained, mut lost) = (0, 0);
        for key in self.own.keys().chain(overlay).filter(|k| !self.index.in_a_keyspace(k)) {
            match (self.contains_key(key), published_live(key)) {
                (true, false) => gained += 1,
                (false, true) => lost += 1,
                _ => {}
            }
        }
        // The index holds exactly the state before this group while it runs (only the leader
        // publishes; compaction's moves and removals of expired entries change no live count).
        // Less the keyspaces' keys (the default keyspace's count, as `Store::len`).
        let reserved = self.index.live_under(&KEYSPACE_MARKER, self.index.reserved_count(), self.now_ms);
        (self.index.live_len(self.now_ms).saturating_sub(reserved) + gained).saturating_sub(lost)
    }

    /// Whether no key is live, as [`Txn::len`] counts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key as this transaction sees it (its own writes and its group's included), in
    /// unspecified order. Walks the whole index: O(keys), on the leader's thread.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        let mut cursor = 0;
        loop {
            let page = self.scan(cursor, usize::MAX);
            keys.extend(page.keys);
            if page.cursor == 0 {
                return keys;
            }
            cursor = page.cursor;
        }
    }

    /// One page of a scan over the live keys as this transaction sees them: the index's page
    /// (see [`Store::scan`](crate::Store::scan)) with this transaction's and its group's writes
    /// applied to the keys of the stripes it covers.
    pub fn scan(&self, cursor: u64, count: usize) -> ScanPage {
        let written = |key: &[u8]| {
            self.index.in_a_keyspace(key) || self.own.contains_key(key) || self.overlay.keys.contains_key(key)
        };
        let mut page =
            self.index.scan(cursor, count, |key, expires_ms| !written(key) && !is_expired(expires_ms, || self.now_ms));
        // Keys written in this group are listed from the group's state, once, by the page that
        // covers their stripe.
        let covers = |key: &[u8]| page.covers(self.index.stripe_of(key));
        let overlay = self.overlay.keys.keys().filter(|k| !self.own.contains_key(*k));
        let mut extra: Vec<Vec<u8>> = self
            .own
            .keys()
            .chain(overlay)
            .filter(|k| !self.index.in_a_keyspace(k) && covers(k) && self.contains_key(k))
            .cloned()
            .collect();
        page.visited += extra.len();
        page.keys.append(&mut extra);
        page
    }

    /// The live keys under `prefix` within `start..end` as this transaction sees them (its own
    /// writes and its group's included, deletions hiding keys), in ascending order (descending if
    /// `reverse`), at most `limit`: see [`Store::range_keys`](crate::Store::range_keys) for the
    /// arguments and errors. Costs O(log n + m) in the index plus O(keys written in the group).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::ops::Bound::Unbounded;
    /// use ferrocask::{Options, Store};
    /// let store = Store::open_with(dir.path(), Options::default().ordered_prefix("q:"))?;
    /// store.put("q:1", "a")?;
    /// store.put("q:2", "b")?;
    /// let seen = store.transaction(|txn| {
    ///     txn.delete("q:1")?;
    ///     txn.put("q:3", "c")?;
    ///     txn.range_keys(b"q:", Unbounded, Unbounded, false, 10)
    /// })??;
    /// assert_eq!(seen, [b"q:2".to_vec(), b"q:3".to_vec()]);
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
        let pending = self.pending_in_range(prefix, start, end);
        let published = self.index.range(prefix, (start, end), reverse, limit, |key, found| {
            let live = !self.is_written(key) && !is_expired(found.header.expires_ms, || self.now_ms);
            live.then(|| key.to_vec())
        })?;
        let pending = pending.into_iter().map(|(key, _)| key);
        Ok(merge(published.into_iter(), pending, |k| k, reverse, limit))
    }

    /// [`Txn::range_keys`] with each key's value.
    pub fn range_entries(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Value)>> {
        let pending = self.pending_in_range(prefix, start, end);
        let published = self.index.range(prefix, (start, end), reverse, limit, |key, found| {
            let live = !self.is_written(key) && !is_expired(found.header.expires_ms, || self.now_ms);
            if !live {
                return None;
            }
            let value = found.value()?;
            Some((key.to_vec(), Value::new(value.into_owned())))
        })?;
        let pending = pending.into_iter().map(|(key, value)| (key, Value::new(value)));
        Ok(merge(published.into_iter(), pending, |(k, _)| k, reverse, limit))
    }

    /// The index entries under `prefix` (exactly a declared prefix) as this transaction sees
    /// them: the store's count (see [`Store::count_prefix`](crate::Store::count_prefix), which
    /// counts expired entries not yet dropped) corrected for each key this transaction and its
    /// group wrote under it. O(keys written in the group).
    pub fn count_prefix(&self, prefix: &[u8]) -> Result<usize> {
        let published = self.index.count_prefix(prefix)?;
        let (mut gained, mut lost) = (0, 0);
        for (key, state) in self.written().filter(|(key, _)| key.starts_with(prefix)) {
            match (state.is_some(), self.index.with(key, |found| found.is_some())) {
                (true, false) => gained += 1,
                (false, true) => lost += 1,
                _ => {}
            }
        }
        Ok((published + gained).saturating_sub(lost))
    }

    /// Every key this transaction or its group wrote, with its latest state (expired or not).
    fn written(&self) -> impl Iterator<Item = (&Vec<u8>, &State)> {
        let overlay = self.overlay.keys.iter().filter(|(key, _)| !self.own.contains_key(*key));
        self.own.iter().chain(overlay)
    }

    /// Whether this transaction or its group wrote `key`: its state is theirs, not the index's.
    fn is_written(&self, key: &[u8]) -> bool {
        self.own.contains_key(key) || self.overlay.keys.contains_key(key)
    }

    /// The live keys this transaction or its group wrote under `prefix` within `start..end`, with
    /// their values, in ascending key order.
    fn pending_in_range(&self, prefix: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut pending: Vec<(Vec<u8>, Vec<u8>)> = self
            .written()
            .filter(|(key, _)| in_range(key, prefix, start, end))
            .filter_map(|(key, state)| {
                let (value, expires_ms) = state.as_ref()?;
                (!is_expired(*expires_ms, || self.now_ms)).then(|| (key.clone(), value.clone()))
            })
            .collect();
        pending.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        pending
    }

    /// Sets `key` to `value` with no expiry, as [`Store::put`](crate::Store::put) does.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.put_with_expiry(key, value, Expiry::Never)
    }

    /// Sets `key` to `value`, expiring as `expiry` says.
    pub fn put_with_expiry(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, expiry: Expiry) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.check_key(key)?;
        self.put_checked(key, value, expiry)
    }

    fn put_checked(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<()> {
        if value.len() > self.limits.value_bytes_max {
            return Err(Error::ValueTooLarge { len: value.len(), max: self.limits.value_bytes_max });
        }
        let expires_ms = expiry.resolve(self.now_ms, || self.state(key).map_or(0, |(_, e)| e));
        self.record(key, Some((value.to_vec(), expires_ms)), record_header_len(expires_ms) + value.len())
    }

    /// Deletes `key`; nothing is written if it is already absent.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.check_key(key)?;
        self.delete_checked(key)
    }

    fn delete_checked(&mut self, key: &[u8]) -> Result<()> {
        if self.state(key).is_none() {
            return Ok(());
        }
        self.record(key, None, record_header_len(0))
    }

    /// Drops every write made so far by this transaction.
    pub fn discard(&mut self) {
        self.own.clear();
        self.writes.clear();
        self.bytes = 0;
    }

    /// The point this transaction's writes have reached, to return to with [`Txn::rollback_to`].
    pub fn savepoint(&self) -> Savepoint {
        Savepoint { writes: self.writes.len(), bytes: self.bytes }
    }

    /// Drops every write made since `savepoint`: reads then see what they saw when it was
    /// taken. Costs O(writes kept) (the view of the writes is rebuilt), so it is for failures.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let kept = store.transaction(|txn| {
    ///     txn.put(b"a", b"1")?;
    ///     let before_b = txn.savepoint();
    ///     txn.put(b"b", b"2")?;
    ///     txn.rollback_to(before_b);
    ///     Ok::<_, ferrocask::Error>(txn.contains_key(b"b"))
    /// })??;
    /// assert!(!kept);
    /// assert!(store.get(b"a")?.is_some() && store.get(b"b")?.is_none());
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        assert!(
            savepoint.writes <= self.writes.len() && savepoint.bytes <= self.bytes,
            "a savepoint of this transaction, taken before its last rollback: {savepoint:?} against {} writes",
            self.writes.len()
        );
        self.writes.truncate(savepoint.writes);
        self.bytes = savepoint.bytes;
        self.own = self.writes.iter().cloned().collect();
    }

    /// A key's check; a key under the keyspace marker must name a registered keyspace, as
    /// outside transactions (`Index::check_marked_key`).
    fn check_key(&self, key: &[u8]) -> Result<()> {
        self.check_len(key)?;
        if key.starts_with(&KEYSPACE_MARKER) {
            return self.index.check_marked_key(key);
        }
        Ok(())
    }

    fn check_len(&self, key: &[u8]) -> Result<()> {
        match key.len() {
            0 => Err(Error::EmptyKey),
            len if len > self.limits.key_bytes_max => Err(Error::KeyTooLarge { len, max: self.limits.key_bytes_max }),
            _ => Ok(()),
        }
    }

    /// `key`'s value in keyspace `space`, as [`Txn::get`] reads it.
    pub fn get_in(&self, space: impl Into<KeyspaceId>, key: impl AsRef<[u8]>) -> Option<Value> {
        self.get(space.into().key(key.as_ref()))
    }

    /// Sets `key` in keyspace `space` to `value`, as [`Txn::put`] does. A transaction may write
    /// several keyspaces; its writes commit together. A dropped keyspace's id is refused
    /// ([`Error::ReservedKey`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// let (stock, orders) = (store.keyspace("stock")?, store.ordered_keyspace("orders")?);
    /// stock.put(b"tea", b"3")?;
    /// let (s, o) = (stock.id(), orders.id());
    /// store.transaction(move |tx| {
    ///     let left: u32 = std::str::from_utf8(&tx.get_in(s, b"tea").unwrap()).unwrap().parse().unwrap();
    ///     tx.put_in(s, b"tea", (left - 1).to_string())?;
    ///     tx.put_in(o, b"0001", b"tea")
    /// })??;
    /// assert_eq!(stock.get(b"tea")?.as_deref(), Some(&b"2"[..]));
    /// assert_eq!(orders.len(), 1);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn put_in(
        &mut self,
        space: impl Into<KeyspaceId>,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<()> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let stored = space.into().key(key);
        self.check_key(&stored)?;
        self.put_checked(&stored, value.as_ref(), Expiry::Never)
    }

    /// Deletes `key` in keyspace `space`, as [`Txn::delete`] does.
    pub fn delete_in(&mut self, space: impl Into<KeyspaceId>, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let stored = space.into().key(key);
        self.check_key(&stored)?;
        self.delete_checked(&stored)
    }

    /// Keeps `bytes` of what this transaction may hold back from the writes that follow: they
    /// fail with [`Error::BatchTooLarge`] once they would leave less than that room, so that
    /// the caller can still write its own records after code it does not control (0: nothing
    /// kept; the default). A replicated state machine keeps room for the applied position it
    /// writes after each command.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path()).unwrap();
    /// let max = store.batch_bytes_max();
    /// let (refused, room_left) = store
    ///     .transaction(move |txn| {
    ///         txn.reserve_bytes(max / 2);
    ///         let refused = txn.put("big", vec![0u8; max * 2 / 3]).is_err();
    ///         txn.reserve_bytes(0);
    ///         (refused, txn.put("mine", "fits").is_ok())
    ///     })
    ///     .unwrap();
    /// assert!(refused && room_left);
    /// ```
    pub fn reserve_bytes(&mut self, bytes: usize) {
        self.reserved = bytes;
    }

    fn record(&mut self, key: &[u8], state: State, len_without_key: usize) -> Result<()> {
        let len = len_without_key + key.len();
        let max = self.limits.bytes_max.saturating_sub(self.reserved);
        if self.bytes + len > max {
            return Err(Error::BatchTooLarge { len: self.bytes + len, max });
        }
        self.bytes += len;
        self.own.insert(key.to_vec(), state.clone());
        self.writes.push((key.to_vec(), state));
        Ok(())
    }

    /// The key's live state: this transaction's writes, then the group's, then the index.
    fn state(&self, key: &[u8]) -> State {
        let found = match self.own.get(key).or_else(|| self.overlay.keys.get(key)) {
            Some(state) => state.clone(),
            None => self.index.with(key, |found| {
                let found = found?;
                let value = found.value()?;
                Some((value.into_owned(), found.header.expires_ms))
            }),
        };
        found.filter(|(_, expires_ms)| !is_expired(*expires_ms, || self.now_ms))
    }

    /// The writes, in order, for [`Overlay::encode`].
    pub(crate) fn finish(self) -> Writes {
        Writes { writes: self.writes, bytes: self.bytes }
    }
}

/// Merges two runs of items with distinct keys, `published` in walk order (descending if
/// `reverse`) and `pending` ascending, into walk order, keeping the first `limit`.
fn merge<T>(
    published: impl Iterator<Item = T>,
    pending: impl DoubleEndedIterator<Item = T>,
    key: impl Fn(&T) -> &Vec<u8>,
    reverse: bool,
    limit: usize,
) -> Vec<T> {
    let pending: Box<dyn Iterator<Item = T>> = if reverse { Box::new(pending.rev()) } else { Box::new(pending) };
    let (mut published, mut pending) = (published.peekable(), pending.peekable());
    let mut merged = Vec::new();
    while merged.len() < limit {
        let take_published = match (published.peek(), pending.peek()) {
            (Some(a), Some(b)) => (key(a) < key(b)) != reverse,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        merged.extend(if take_published { published.next() } else { pending.next() });
    }
    merged
}

/// A point in a transaction's writes, from [`Txn::savepoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Savepoint {
    writes: usize,
    bytes: usize,
}

/// What is known of a live key without reading its value: from
/// [`Store::meta`](crate::Store::meta) and [`Txn::meta`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyMeta {
    /// The value's length in bytes.
    pub value_len: usize,
    /// When the key expires (ms since the Unix epoch), `None` = never.
    pub expires_ms: Option<u64>,
    /// Which write the value comes from: its record's sequence number, which only a later write
    /// of the key changes (compaction keeps it). Reading the same version twice means no write
    /// to the key came in between, so a `WATCH` is one number.
    pub version: u64,
}

impl KeyMeta {
    pub(crate) fn new(value_len: usize, expires_ms: u64, version: u64) -> KeyMeta {
        KeyMeta { value_len, expires_ms: (expires_ms != 0).then_some(expires_ms), version }
    }
}

/// A finished transaction's writes.
pub(crate) struct Writes {
    writes: Vec<(Vec<u8>, State)>,
    bytes: usize,
}

impl Overlay {
    /// Encodes a transaction's writes as records (sequence numbers zero, stamped by the leader)
    /// and records them here, for the operations after it.
    pub(crate) fn encode(&mut self, writes: Writes) -> Encoded {
        let mut ops = Encoded::with_capacity(writes.bytes);
        for (key, state) in writes.writes {
            match &state {
                Some((value, expires_ms)) => ops.push(RecordKind::Put, *expires_ms, &key, value),
                None => ops.push(RecordKind::Delete, 0, &key, &[]),
            }
            self.keys.insert(key, state);
        }
        debug_assert_eq!(ops.byte_len(), writes.bytes, "the size a transaction was charged is its encoding");
        ops
    }
}
