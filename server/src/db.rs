//! The shared state of the server: the store, the clients table and the counters, and the two
//! views the commands read and write through.
//!
//! Every command is written once, against [`Read`] (commands that only read) or [`Write`]. Outside
//! MULTI a read runs on [`StoreView`] (straight from the store's memory: only what is durable is
//! visible) and a write runs on [`TxnView`] inside `Store::transaction_async`, so it is evaluated
//! by the group-commit leader in log order and its reply waits for the group's sync. Every
//! command runs through [`TxnView::run`], which undoes its writes if it fails: a command applies
//! whole or not at all. EXEC runs every queued command, reads and key listings included, on one
//! `TxnView`: one transaction, one consistent state, one batch.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferrocask::{Clock, Expiry, KeyMeta, RangeBuf, ScanPage, Store, Txn};
use parking_lot::Mutex;

use crate::cmd::CommandStats;
use crate::latency::LatencyMonitor;
use crate::reply::Reply;
use crate::slowlog::{SlowLog, LOG_SLOWER_THAN_US_DEFAULT, MAX_LEN_DEFAULT};

/// The error text of a value over the store's limit (Redis's own text for its limit).
pub(crate) const VALUE_TOO_LARGE: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// A key's value and expiry (ms since the Unix epoch).
pub(crate) type Entry = (Vec<u8>, Option<u64>);

/// What every command may read.
pub(crate) trait Read {
    /// The time the command runs at (ms since the Unix epoch).
    fn now_ms(&self) -> u64;
    /// The key's live value and expiry (a copy of the value: for commands that use it).
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// The key's value length, expiry and version, read without the value (`None`: absent).
    fn meta(&self, key: &[u8]) -> Option<KeyMeta>;
    /// Whether the user key is live, whatever its type (a string or a collection); reads no
    /// value of a string.
    fn exists(&self, key: &[u8]) -> bool {
        self.meta(key).is_some() || crate::collection::collection(self, key).is_some()
    }
    /// Every live store key (unordered), the collection layer's records included (see
    /// `collection::user_keys`). O(keys).
    fn keys(&self) -> Vec<Vec<u8>>;
    /// One page of a scan over the live store keys (see `Store::scan`):
    /// O(max(count, keys per stripe)).
    fn scan(&self, cursor: u64, count: usize) -> ScanPage;
    /// The number of live store keys.
    fn len(&self) -> usize;
    /// The store's value limit.
    fn value_bytes_max(&self) -> usize;
    /// At most `limit` live store keys that start with `prefix` (which starts with one of
    /// `collection::ORDERED_PREFIXES`) and lie within `start..end` (bounds are whole store keys),
    /// ascending (or descending if `reverse`). The views ask the store's ordered index
    /// (`range_keys`: O(log n + returned)); this default is [`fallback_range`].
    fn range(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        fallback_range(self, prefix, start, end, reverse, limit)
    }
    /// [`Read::range`] with each key's value (read under the same locks by the views: one
    /// walk, no lookup per key); this default looks each value up.
    fn range_entries(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let keys = self.range(prefix, start, end, reverse, limit);
        keys.into_iter().filter_map(|k| self.get(&k).map(|(v, _)| (k, v))).collect()
    }
    /// [`Read::range_entries`] into `buf` (cleared first). The store's view fills it from the
    /// store's walk (`Store::range_into`: no lookup and no allocation per entry once the buffer
    /// has grown); this default copies `range_entries`.
    fn range_into(
        &self,
        prefix: &[u8],
        (start, end): (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        limit: usize,
        buf: &mut RangeBuf,
    ) {
        buf.clear();
        for (key, value) in self.range_entries(prefix, start, end, reverse, limit) {
            buf.push(&key, &value);
        }
    }
    /// How many live store keys start with `prefix` (one of `collection::ORDERED_PREFIXES`, whose
    /// keys never expire). The views ask the store (`count_prefix`: O(1)); this default is
    /// [`fallback_count_prefix`].
    fn count_prefix(&self, prefix: &[u8]) -> usize {
        fallback_count_prefix(self, prefix)
    }
}

/// [`Read::range`] for a store opened without the collections' ordered prefixes (a server
/// embedded on a store its caller opened, a test): every key listed, filtered and sorted.
/// Correct, and O(all keys).
pub(crate) fn fallback_range<R: Read + ?Sized>(
    ks: &R,
    prefix: &[u8],
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    limit: usize,
) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = ks
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(prefix) && RangeBounds::<[u8]>::contains(&(start, end), k.as_slice()))
        .collect();
    keys.sort_unstable();
    if reverse {
        keys.reverse();
    }
    keys.truncate(limit);
    keys
}

/// [`Read::count_prefix`] for a store opened without the collections' ordered prefixes: O(all
/// keys).
/// [`fallback_range`]'s keys with their values.
pub(crate) fn fallback_range_entries<R: Read + ?Sized>(
    ks: &R,
    prefix: &[u8],
    start: Bound<&[u8]>,
    end: Bound<&[u8]>,
    reverse: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let keys = fallback_range(ks, prefix, start, end, reverse, limit);
    keys.into_iter().filter_map(|k| ks.get(&k).map(|(v, _)| (k, v))).collect()
}

pub(crate) fn fallback_count_prefix<R: Read + ?Sized>(ks: &R, prefix: &[u8]) -> usize {
    ks.keys().iter().filter(|k| k.starts_with(prefix)).count()
}

/// What a writing command may do besides reading.
pub(crate) trait Write: Read {
    /// Writes one store record as it is (a string's, or one of the collection layer's); an
    /// error reply if the store refuses (a limit).
    fn put_record(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<(), Reply>;
    /// Deletes one store record (a no-op if absent).
    fn delete_record(&mut self, key: &[u8]) -> Result<(), Reply>;

    /// Sets the user key to a string, replacing a collection there as Redis's SET does
    /// (`Expiry::Keep` keeps the collection's TTL). Costs one lookup more than the record: the
    /// check for a collection.
    fn put(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<(), Reply> {
        let expiry = match crate::collection::drop(self, key)? {
            Some(expires) if expiry == Expiry::Keep => expires.map_or(Expiry::Never, Expiry::At),
            _ => expiry,
        };
        self.put_record(key, value, expiry)
    }

    /// Deletes the user key, whatever its type (a no-op if absent).
    fn delete(&mut self, key: &[u8]) -> Result<(), Reply> {
        if self.meta(key).is_some() {
            self.delete_record(key)
        } else {
            crate::collection::drop(self, key).map(|_| ())
        }
    }
}

/// Reads straight from the store: what is durable and published.
pub(crate) struct StoreView<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) value_bytes_max: usize,
    /// Where a read command's lookups are counted as keyspace hits and misses (`None`: lookups
    /// the server makes for itself, as WATCH's or a reply's size estimate, are not counted).
    pub(crate) counters: Option<&'a Counters>,
    /// Whether the store holds a cluster's own keys besides the user's (see [`Reserved`]).
    pub(crate) reserved: Reserved,
    /// Whether keys expire by this view's clock rather than only the store's: on a cluster
    /// member the store's clock is the state machine's (the time of the last applied entry, so
    /// that every replica expires keys alike), which stands still while no write arrives; a
    /// read on the leader must not see a key past its expiry by the leader's clock.
    pub(crate) expire_by_view_clock: bool,
}

/// Whether a view's store holds keys that are not the user's: a cluster member's state machine
/// keeps its applied position and membership in the same store as the data, in the same
/// transactions (`ferrocask_raft::RESERVED_PREFIX`). Commands never see them: listings skip them,
/// counts leave them out, and a command naming one is refused before it runs (`Session`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reserved {
    /// A single-node server: every key is the user's.
    None,
    /// A cluster member: keys under `ferrocask_raft::RESERVED_PREFIX` are hidden.
    Hidden,
}

impl Reserved {
    /// Removes the hidden keys from a listing.
    fn filter(self, keys: &mut Vec<Vec<u8>>) {
        if self == Reserved::Hidden {
            keys.retain(|k| !is_reserved(k));
        }
    }
}

/// Whether `key` is one of a cluster's own keys.
pub(crate) fn is_reserved(key: &[u8]) -> bool {
    ferrocask_raft::is_reserved(key)
}

/// The error for a command naming a key under `ferrocask_raft::RESERVED_PREFIX` on a cluster
/// member (the state machine's own keys live there, beside the data).
const RESERVED_KEY: &str = "ERR keys that start with the bytes \\xff\\xfe\\x00ferrocask-raft/ are the cluster's own";

/// The error for a command naming a key under `collection::INTERNAL` (the collections' records).
const INTERNAL_KEY: &str =
    "ERR keys that start with the bytes \\xff\\xfd are ferrocask's own (its collections' records)";

/// Why a command naming `key` is refused before it runs, if it is: keys under the prefixes the
/// server keeps its own records under (the collection layer's on every server, the state
/// machine's on a cluster member). The one check for both, made by `Session::handle`.
pub(crate) fn reserved_key_refusal(key: &[u8], cluster: bool) -> Option<&'static str> {
    if key.starts_with(crate::collection::INTERNAL) {
        Some(INTERNAL_KEY)
    } else if cluster && is_reserved(key) {
        Some(RESERVED_KEY)
    } else {
        None
    }
}

impl StoreView<'_> {
    /// Counts a lookup of `key` as a keyspace hit or miss. A command looks a user key up once
    /// as a string and, if absent, once as a collection (its meta record), or the other way
    /// round: so a meta record counts only when found (the collection is the hit) and the
    /// collection layer's other records never, and a key counts once, as in Redis (but for a
    /// string command on a collection: a miss and a hit).
    fn count<T>(&self, key: &[u8], found: Option<T>) -> Option<T> {
        let counted = if key.starts_with(crate::collection::META_PREFIX) {
            found.is_some()
        } else {
            !key.starts_with(crate::collection::INTERNAL)
        };
        if let Some(c) = self.counters.filter(|_| counted) {
            let counter = if found.is_some() { &c.keyspace_hits } else { &c.keyspace_misses };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        found
    }
}

impl StoreView<'_> {
    /// Whether a key expiring at `expires_ms` (None: never) is live by this view's clock.
    fn live(&self, expires_ms: Option<u64>) -> bool {
        !self.expire_by_view_clock || expires_ms.is_none_or(|at| at > self.clock.now_ms())
    }

    /// Drops from a listing the keys expired by this view's clock (only where it matters).
    fn drop_expired(&self, keys: &mut Vec<Vec<u8>>) {
        if self.expire_by_view_clock {
            keys.retain(|k| self.store.meta(k).ok().flatten().is_some_and(|m| self.live(m.expires_ms)));
        }
    }
}

impl Read for StoreView<'_> {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn get(&self, key: &[u8]) -> Option<Entry> {
        // An empty or over-long key cannot be stored, so it reads as absent.
        let found = self.store.get_with_expiry(key).ok().flatten().filter(|(_, expires)| self.live(*expires));
        let found = self.count(key, found)?;
        Some((found.0.into_vec(), found.1))
    }

    fn meta(&self, key: &[u8]) -> Option<KeyMeta> {
        self.count(key, self.store.meta(key).ok().flatten().filter(|m| self.live(m.expires_ms)))
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys = self.store.keys().collect();
        self.reserved.filter(&mut keys);
        self.drop_expired(&mut keys);
        keys
    }

    fn scan(&self, cursor: u64, count: usize) -> ScanPage {
        let mut page = self.store.scan(cursor, count);
        self.reserved.filter(&mut page.keys);
        self.drop_expired(&mut page.keys);
        page
    }

    fn len(&self) -> usize {
        match self.reserved {
            Reserved::None => self.store.len(),
            Reserved::Hidden => self.store.len() - ferrocask_raft::reserved_key_count(self.store),
        }
    }

    fn range(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        match self.store.range_keys(prefix, start, end, reverse, limit) {
            Ok(mut keys) => {
                self.drop_expired(&mut keys);
                keys
            }
            // Not declared ordered when the store was opened (`Error::NotOrdered`).
            Err(_) => fallback_range(self, prefix, start, end, reverse, limit),
        }
    }

    fn range_entries(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        // The collections' records under these prefixes carry no expiry: the store's answer
        // needs no second look by this view's clock.
        match self.store.range_entries(prefix, start, end, reverse, limit) {
            Ok(entries) => entries.into_iter().map(|(k, v)| (k, v.into_vec())).collect(),
            Err(_) => fallback_range_entries(self, prefix, start, end, reverse, limit),
        }
    }

    fn range_into(
        &self,
        prefix: &[u8],
        (start, end): (Bound<&[u8]>, Bound<&[u8]>),
        reverse: bool,
        limit: usize,
        buf: &mut RangeBuf,
    ) {
        // No expiry under these prefixes, as for `range_entries`.
        if self.store.range_into(prefix, start, end, reverse, limit, buf).is_err() {
            buf.clear();
            for (key, value) in fallback_range_entries(self, prefix, start, end, reverse, limit) {
                buf.push(&key, &value);
            }
        }
    }

    fn count_prefix(&self, prefix: &[u8]) -> usize {
        self.store.count_prefix(prefix).unwrap_or_else(|_| fallback_count_prefix(self, prefix))
    }

    fn value_bytes_max(&self) -> usize {
        self.value_bytes_max
    }
}

/// A transaction's view: reads see the state the transaction executes against (every write
/// queued before it, its own included), key listings too.
pub(crate) struct TxnView<'t, 'a> {
    pub(crate) txn: &'t mut Txn<'a>,
    pub(crate) value_bytes_max: usize,
    /// Set when a write did not fit in what one batch may hold (`BatchTooLarge`).
    pub(crate) overflowed: bool,
    pub(crate) reserved: Reserved,
    /// The blocked clients to wake when a collection is saved (`blocking.rs`); `None` for the
    /// writes that never make a pop possible (sweeps, flushes).
    pub(crate) wakes: Option<&'t crate::blocking::Blocking>,
}

impl<'t, 'a> TxnView<'t, 'a> {
    /// This view, waking the clients blocked on a list or sorted set it saves.
    pub(crate) fn waking(self, blocking: &'t crate::blocking::Blocking) -> Self {
        TxnView { wakes: Some(blocking), ..self }
    }

    pub(crate) fn new(txn: &'t mut Txn<'a>, value_bytes_max: usize) -> Self {
        TxnView { txn, value_bytes_max, overflowed: false, reserved: Reserved::None, wakes: None }
    }

    /// A view of a cluster state machine's transaction: its own keys hidden.
    pub(crate) fn hiding_reserved(txn: &'t mut Txn<'a>, value_bytes_max: usize) -> Self {
        TxnView { txn, value_bytes_max, overflowed: false, reserved: Reserved::Hidden, wakes: None }
    }

    /// Runs one command atomically inside the transaction: if it replies with an error, every
    /// write it made is undone (a savepoint), so no command is ever applied in part, whatever
    /// its handler did before it failed.
    pub(crate) fn run(&mut self, command: impl FnOnce(&mut Self) -> Reply) -> Reply {
        let before = self.txn.savepoint();
        let reply = command(self);
        if reply.is_error() {
            self.txn.rollback_to(before);
        }
        reply
    }

    fn refused(&mut self, e: ferrocask::Error) -> Reply {
        if matches!(e, ferrocask::Error::BatchTooLarge { .. }) {
            self.overflowed = true;
        }
        store_error(e)
    }
}

impl Read for TxnView<'_, '_> {
    fn now_ms(&self) -> u64 {
        self.txn.now_ms()
    }

    fn get(&self, key: &[u8]) -> Option<Entry> {
        if key.is_empty() {
            return None;
        }
        self.txn.get_with_expiry(key).map(|(v, e)| (v.into_vec(), e))
    }

    fn meta(&self, key: &[u8]) -> Option<KeyMeta> {
        if key.is_empty() {
            return None;
        }
        self.txn.meta(key)
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys = self.txn.keys();
        self.reserved.filter(&mut keys);
        keys
    }

    fn scan(&self, cursor: u64, count: usize) -> ScanPage {
        let mut page = self.txn.scan(cursor, count);
        self.reserved.filter(&mut page.keys);
        page
    }

    fn len(&self) -> usize {
        match self.reserved {
            Reserved::None => self.txn.len(),
            Reserved::Hidden => self.txn.len() - ferrocask_raft::reserved_key_count_in(self.txn),
        }
    }

    fn range(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        match self.txn.range_keys(prefix, start, end, reverse, limit) {
            Ok(keys) => keys,
            // Not declared ordered when the store was opened (`Error::NotOrdered`).
            Err(_) => fallback_range(self, prefix, start, end, reverse, limit),
        }
    }

    fn range_entries(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        match self.txn.range_entries(prefix, start, end, reverse, limit) {
            Ok(entries) => entries.into_iter().map(|(k, v)| (k, v.into_vec())).collect(),
            Err(_) => fallback_range_entries(self, prefix, start, end, reverse, limit),
        }
    }

    fn count_prefix(&self, prefix: &[u8]) -> usize {
        self.txn.count_prefix(prefix).unwrap_or_else(|_| fallback_count_prefix(self, prefix))
    }

    fn value_bytes_max(&self) -> usize {
        self.value_bytes_max
    }
}

impl Write for TxnView<'_, '_> {
    fn put_record(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> Result<(), Reply> {
        self.txn.put_with_expiry(key, value, expiry).map_err(|e| self.refused(e))?;
        // Every write that adds to a list or sorted set saves its meta record: the one place
        // a pop becomes possible. Woken before the commit, a client's pop is queued after this
        // transaction, so it sees (and is durable after) what woke it; a wake-up for a write
        // that is undone costs the client one pop that finds nothing.
        if let (Some(blocking), Some(user_key)) = (self.wakes, key.strip_prefix(crate::collection::META_PREFIX)) {
            blocking.wrote(user_key);
        }
        Ok(())
    }

    fn delete_record(&mut self, key: &[u8]) -> Result<(), Reply> {
        if key.is_empty() {
            return Ok(());
        }
        self.txn.delete(key).map_err(|e| self.refused(e))
    }
}

/// The reply for a store error.
pub(crate) fn store_error(e: ferrocask::Error) -> Reply {
    match e {
        ferrocask::Error::EmptyKey => Reply::error("ERR empty keys are not supported"),
        ferrocask::Error::KeyTooLarge { max, .. } => Reply::error(format!("ERR key is longer than {max} bytes")),
        ferrocask::Error::ValueTooLarge { .. } => Reply::error(VALUE_TOO_LARGE),
        ferrocask::Error::BatchTooLarge { len, max } => Reply::error(format!(
            "ERR the writes of this command or transaction ({len} bytes) exceed what one atomic batch holds ({max} \
             bytes); nothing was written"
        )),
        other => Reply::error(format!("ERR store: {other}")),
    }
}

/// One connected client, as CLIENT LIST and INFO show it.
#[derive(Clone, Debug)]
pub(crate) struct ClientInfo {
    pub(crate) addr: String,
    /// The server's end: `ip:port` of the listener it came in on, or the Unix socket's `path:0`.
    pub(crate) laddr: String,
    /// It came in on the Unix socket (MONITOR shows it as `unix:PATH`).
    pub(crate) unix: bool,
    pub(crate) name: Vec<u8>,
    pub(crate) connected: Instant,
    /// How another connection closes this one (CLIENT KILL, a MONITOR that fell behind).
    pub(crate) kill: Arc<Kill>,
}

/// A request to close a connection, from another one: a flag the connection checks before each
/// request, and a wake-up for one that waits for its client.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    killed: std::sync::atomic::AtomicBool,
    pub(crate) wake: tokio::sync::Notify,
}

impl Kill {
    /// Asks the connection to close once the replies before this are written.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        // A stored permit if the connection is not waiting now: its next wait ends at once.
        self.wake.notify_one();
    }

    pub(crate) fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

/// Counters for INFO stats: relaxed atomics, each bumped at most once or twice per request.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections_received: AtomicU64,
    pub(crate) commands_processed: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
    /// Keys a read command found (Redis counts its read lookups the same way).
    pub(crate) keyspace_hits: AtomicU64,
    /// Keys a read command looked up and did not find.
    pub(crate) keyspace_misses: AtomicU64,
    /// Error replies sent (refused and failed commands, unknown ones included).
    pub(crate) error_replies: AtomicU64,
}

impl Counters {
    /// Sets every counter back to 0 (CONFIG RESETSTAT).
    pub(crate) fn reset(&self) {
        for counter in [
            &self.connections_received,
            &self.commands_processed,
            &self.rejected_connections,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.error_replies,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// How often INFO's `instantaneous_ops_per_sec` moves its window: the rate is measured over the
/// last one to two of these (a cheap stand-in for Redis's 16 samples 100 ms apart, taken only
/// when INFO asks, so the hot path pays nothing for it).
pub(crate) const OPS_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Two samples of `commands_processed`, for `instantaneous_ops_per_sec`.
#[derive(Debug)]
pub(crate) struct OpsSamples {
    previous: (Instant, u64),
    current: (Instant, u64),
}

impl OpsSamples {
    pub(crate) fn new(now: Instant) -> OpsSamples {
        OpsSamples { previous: (now, 0), current: (now, 0) }
    }

    /// Commands per second over the window ending now, at `commands` processed so far.
    pub(crate) fn rate(&mut self, now: Instant, commands: u64) -> u64 {
        if now.duration_since(self.current.0) >= OPS_WINDOW {
            self.previous = self.current;
            self.current = (now, commands);
        }
        let secs = now.duration_since(self.previous.0).as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (commands.saturating_sub(self.previous.1) as f64 / secs).round() as u64
    }
}

/// The state every connection shares.
pub struct Db {
    pub(crate) store: Arc<Store>,
    /// The cluster executor on a cluster member (`None`: a single node, commands run on `store`).
    pub(crate) cluster: Option<Arc<crate::cluster::Cluster>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) value_bytes_max: usize,
    pub(crate) password: Option<Vec<u8>>,
    pub(crate) maxclients: usize,
    pub(crate) started: Instant,
    pub(crate) port: u16,
    pub(crate) bind: String,
    /// CONFIG `timeout`: seconds a client may stay idle (0: forever).
    pub(crate) idle_timeout_secs: AtomicU64,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) clients: Mutex<BTreeMap<u64, ClientInfo>>,
    pub(crate) counters: Counters,
    /// INFO's `run_id`: 40 hex digits, new each time the server starts.
    pub(crate) run_id: String,
    /// INFO's `executable`: the program's path, as the OS reports it at start.
    pub(crate) executable: String,
    pub(crate) ops: Mutex<OpsSamples>,
    pub(crate) slowlog: SlowLog,
    pub(crate) latency: LatencyMonitor,
    /// Each command's counters (INFO commandstats), by [`Spec::index`](crate::cmd::Spec): per
    /// server, not per process, so two servers in one process (the tests) count apart.
    pub(crate) command_stats: Box<[CommandStats]>,
    /// SAVE, BGSAVE and LASTSAVE's state.
    pub(crate) backups: crate::admin::Backups,
    /// The parameters' current values (CONFIG GET, SET and REWRITE).
    pub(crate) settings: Mutex<crate::config::Settings>,
    /// The file the server was started with (`--config`): what CONFIG REWRITE writes.
    pub(crate) config_file: Option<std::path::PathBuf>,
    /// SHUTDOWN's request to the listener.
    pub(crate) shutdown: crate::admin::Shutdown,
    /// The connections in MONITOR mode.
    pub(crate) monitors: crate::monitor::Monitors,
    /// Pub/sub's channels and patterns, and their subscribers.
    pub(crate) pubsub: crate::pubsub::PubSub,
    /// The clients blocked in BLPOP and its kin, by key.
    pub(crate) blocking: Arc<crate::blocking::Blocking>,
    /// Whether a task is scheduled to lead the writes queued on this server (`commit.rs`).
    pub(crate) committer: Arc<crate::commit::Committer>,
    /// CLIENT PAUSE's state.
    pub(crate) pause: crate::pause::Pause,
}

impl Db {
    /// State for a server on `store` with default settings and no listener (fuzzing).
    pub(crate) fn for_tests(store: Arc<Store>) -> Db {
        Db {
            store,
            cluster: None,
            clock: Arc::new(ferrocask::SystemClock),
            value_bytes_max: 1 << 16,
            password: None,
            maxclients: 1,
            started: Instant::now(),
            port: 0,
            bind: String::new(),
            idle_timeout_secs: AtomicU64::new(0),
            next_client_id: AtomicU64::new(1),
            clients: Mutex::new(BTreeMap::new()),
            counters: Counters::default(),
            run_id: new_run_id(),
            executable: String::new(),
            ops: Mutex::new(OpsSamples::new(Instant::now())),
            slowlog: SlowLog::new(LOG_SLOWER_THAN_US_DEFAULT, MAX_LEN_DEFAULT),
            latency: LatencyMonitor::new(crate::latency::MONITOR_THRESHOLD_MS_DEFAULT),
            command_stats: new_command_stats(),
            backups: crate::admin::Backups::disabled(),
            settings: Mutex::new(crate::config::Settings::default()),
            config_file: None,
            shutdown: crate::admin::Shutdown::default(),
            monitors: crate::monitor::Monitors::default(),
            pubsub: crate::pubsub::PubSub::default(),
            blocking: Arc::default(),
            committer: Arc::default(),
            pause: crate::pause::Pause::default(),
        }
    }

    /// Queues a write transaction, led by this thread after the tasks ready on it have queued
    /// theirs (see `commit.rs`); resolves once durable and published.
    pub(crate) fn transaction<R, F>(&self, f: F) -> ferrocask::WriteFuture<R>
    where
        F: FnOnce(&mut ferrocask::Txn<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::commit::transaction(&self.store, &self.committer, f)
    }

    /// A view that reads the store directly.
    pub(crate) fn view(&self) -> StoreView<'_> {
        let cluster = self.cluster.is_some();
        StoreView {
            store: &self.store,
            clock: &*self.clock,
            value_bytes_max: self.value_bytes_max,
            counters: None,
            reserved: if cluster { Reserved::Hidden } else { Reserved::None },
            expire_by_view_clock: cluster,
        }
    }

    /// A view for a read command: its lookups count as keyspace hits and misses.
    pub(crate) fn counted_view(&self) -> StoreView<'_> {
        StoreView { counters: Some(&self.counters), ..self.view() }
    }

    /// The current `slowlog-log-slower-than` and `slowlog-max-len`, and their setters, for CONFIG.
    pub(crate) fn slowlog(&self) -> &SlowLog {
        &self.slowlog
    }

    /// CONFIG RESETSTAT's work for the counters INFO shows: the stats counters, every command's
    /// counters (commandstats); the slow log is SLOWLOG RESET's.
    pub(crate) fn reset_stats(&self) {
        self.counters.reset();
        for stats in &self.command_stats {
            stats.reset();
        }
    }

    /// A client's address and name, as CLIENT LIST shows them (empty if it has gone).
    pub(crate) fn client_addr_and_name(&self, id: u64) -> (String, Vec<u8>) {
        self.clients.lock().get(&id).map(|c| (c.addr.clone(), c.name.clone())).unwrap_or_default()
    }

    /// The number of connected clients.
    pub(crate) fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    /// Registers a client that came in from `addr` on `laddr`; returns its id and the handle
    /// that closes it from elsewhere.
    pub(crate) fn register(&self, addr: String, laddr: String, unix: bool) -> (u64, Arc<Kill>) {
        let id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(Kill::default());
        let info = ClientInfo { addr, laddr, unix, name: Vec::new(), connected: Instant::now(), kill: kill.clone() };
        self.clients.lock().insert(id, info);
        self.counters.connections_received.fetch_add(1, Ordering::Relaxed);
        (id, kill)
    }

    /// Records a client's name (CLIENT SETNAME) for CLIENT LIST.
    pub(crate) fn set_client_name(&self, id: u64, name: Vec<u8>) {
        if let Some(info) = self.clients.lock().get_mut(&id) {
            info.name = name;
        }
    }

    /// Forgets a client (and stops feeding it if it was a MONITOR).
    pub(crate) fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
        self.monitors.remove(id);
    }
}

/// Zeroed counters for every command of the table.
pub(crate) fn new_command_stats() -> Box<[CommandStats]> {
    crate::cmd::commands().values().map(|_| CommandStats::default()).collect()
}

/// A fresh `run_id`: 40 hex digits from std's randomly keyed hasher (no RNG dependency for an
/// identifier that only has to differ between runs).
pub(crate) fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::with_capacity(40);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for part in 0..3u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u8(part);
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id.truncate(40);
    id
}
