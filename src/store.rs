//! The public `Store`: write-through puts, deletes and batches over the group-commit log, reads
//! from the striped index and mapped segments.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::engine::maintenance::Maintenance;
use crate::engine::recovery::RecoveryReport;
use crate::engine::Engine;
use crate::format::RecordKind;
use crate::io::{RealFs, Vfs};
use crate::iter::{Iter, Keys};
use crate::log::{Done, Encoded, Op, Slot, LOCK_FILE};
use crate::options::Options;
use crate::stats::Stats;
use crate::value::{Batch, Value};
use crate::CompactionReport;
use crate::Result;

/// An open store. `Send + Sync`: share it as `&Store` or `Arc<Store>` between threads.
///
/// Every write is durable before it returns (with the default [`SyncMode::Always`](crate::SyncMode));
/// every read is served from memory. Dropping the store releases its directory.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ferrocask::Store;
/// let store = Store::open(dir.path())?;
/// store.put(b"user:1", b"ada")?;
/// assert_eq!(store.get(b"user:1")?.as_deref(), Some(&b"ada"[..]));
/// store.delete(b"user:1")?;
/// assert!(!store.contains_key(b"user:1")?);
/// # Ok::<(), ferrocask::Error>(())
/// ```
pub struct Store {
    pub(crate) engine: Arc<Engine>,
    maintenance: Option<Maintenance>,
    /// The thread that leads groups only futures wait for; started by the first async write.
    driver: OnceLock<JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.engine.dir.dir).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` with default [`Options`], creating the directory if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir, Options::default())
    }

    /// Opens the store in `dir` with `options`, creating the directory if missing.
    ///
    /// Fails with [`Error::Locked`](crate::Error::Locked) if another `Store` has it open, and with
    /// [`Error::Corruption`](crate::Error::Corruption) if durable data is damaged (unless `options.salvage`).
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        Store::open_on(Arc::new(RealFs), dir.as_ref(), options)
    }

    /// Opens a store on any file system (the simulated one in tests).
    #[doc(hidden)]
    pub fn open_on(vfs: Arc<dyn Vfs>, dir: &Path, options: Options) -> Result<Store> {
        let engine = Arc::new(Engine::open(vfs, dir, options)?);
        let maintenance = engine.options.background_thread.then(|| Maintenance::start(&engine));
        Ok(Store { engine, maintenance, driver: OnceLock::new() })
    }

    /// Number of live (not deleted, not expired) keys. Visits no key, with or without expiring
    /// keys: the expired ones are subtracted from a count kept in order of expiry time.
    pub fn len(&self) -> usize {
        self.engine.len()
    }

    /// Counters describing size and activity, with each segment's accounting.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// What the index holds allocated, part by part (its total is
    /// [`Stats::index_bytes`]): for the footprint tests and the benchmark.
    #[doc(hidden)]
    pub fn index_footprint(&self) -> crate::testing::Footprint {
        self.engine.index.footprint()
    }

    /// Has the index entries of a dropped keyspace removed: by the maintenance thread (woken
    /// now), or here if the store runs none.
    pub(crate) fn forget_dropped(&self) {
        match &self.maintenance {
            Some(m) => m.wake(),
            None => self.engine.keyspaces.forget_dropped(&self.engine.index),
        }
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        self.engine.check_key(key)
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        self.engine.check_value(value)
    }

    pub(crate) fn encode_batch(&self, batch: &Batch) -> Result<Encoded> {
        self.engine.encode_batch(batch)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.engine.dir.dir
    }

    /// Sets `key` to `value`, durably, before returning.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.put_expiring(key.as_ref(), value.as_ref(), 0)
    }

    /// Sets `key` to `value` until `ttl` has passed; after that the key reads as absent, and
    /// compaction drops it. The expiry is stored in the record and survives reopen.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::{sync::Arc, time::Duration};
    /// use ferrocask::{ManualClock, Options, Store};
    /// let clock = Arc::new(ManualClock::new(1_000_000));
    /// let store = Store::open_with(dir.path(), Options { clock: clock.clone(), ..Options::default() })?;
    /// store.put_with_ttl(b"session", b"token", Duration::from_secs(60))?;
    /// assert!(store.get(b"session")?.is_some());
    /// clock.advance_ms(60_000);
    /// assert!(store.get(b"session")?.is_none());
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn put_with_ttl(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, ttl: Duration) -> Result<()> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let expires_ms = self.engine.options.clock.now_ms().saturating_add(ttl_ms);
        self.put_expiring(key.as_ref(), value.as_ref(), expires_ms)
    }

    fn put_expiring(&self, key: &[u8], value: &[u8], expires_ms: u64) -> Result<()> {
        self.check_key(key)?;
        self.check_value(value)?;
        self.commit(Encoded::one(RecordKind::Put, expires_ms, key, value))
    }

    /// Reads `key`'s value from memory (one stripe read lock, no syscall).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        Ok(self.get_with_expiry(key)?.map(|(value, _)| value))
    }

    /// Reads `key`'s value with its expiry (ms since the Unix epoch, `None` = never), from
    /// memory, as [`Store::get`] does; for TTL queries outside a transaction.
    pub fn get_with_expiry(&self, key: impl AsRef<[u8]>) -> Result<Option<(Value, Option<u64>)>> {
        self.engine.get_with_expiry(key.as_ref())
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.check_key(key)?;
        Ok(self.engine.index.with(key, |found| found.is_some_and(|f| !self.engine.is_expired(&f.header))))
    }

    /// What is known of `key`'s live value without reading it (its length, expiry and
    /// version), from its record's header: `STRLEN`, `TTL` or `WATCH` of a large value cost what
    /// `EXISTS` costs. `None` if the key is absent or expired.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.put(b"k", vec![0u8; 1000])?;
    /// let meta = store.meta(b"k")?.unwrap();
    /// assert_eq!((meta.value_len, meta.expires_ms), (1000, None));
    /// store.put(b"k", b"same length?")?;
    /// assert_ne!(store.meta(b"k")?.unwrap().version, meta.version, "every write is a new version");
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn meta(&self, key: impl AsRef<[u8]>) -> Result<Option<crate::KeyMeta>> {
        let found = self.engine.live_header(key.as_ref())?;
        Ok(found.map(|h| crate::KeyMeta::new(h.value_len, h.expires_ms, h.seq)))
    }

    /// One page of a scan over the live keys, resumable with its cursor: start at 0, pass each
    /// page's [`ScanPage::cursor`](crate::ScanPage) to the next call, stop when it is 0. Every key
    /// live for the whole scan is returned (at least once: a key deleted and written again may
    /// show twice); keys written meanwhile may or may not be. A call costs the entries of the
    /// index stripes it covers, never the whole store; `count` is a hint (pages hold whole
    /// stripes). See the example on [`ScanPage`](crate::ScanPage).
    pub fn scan(&self, cursor: u64, count: usize) -> crate::ScanPage {
        self.engine.index.scan(cursor, count, |key, expires_ms| {
            !self.engine.index.in_a_keyspace(key)
                && !crate::format::is_expired(expires_ms, || self.engine.options.clock.now_ms())
        })
    }

    /// The most bytes of records one batch or transaction may write: what fits in one frame of
    /// an empty segment. A record takes its key, its value and a 16-byte header (24 with an
    /// expiry).
    pub fn batch_bytes_max(&self) -> usize {
        self.engine.writer.ops_bytes_max()
    }

    /// Deletes `key`, durably, before returning. Deleting a missing key writes nothing and is `Ok`,
    /// unless the store is poisoned.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.check_key(key)?;
        if !self.engine.index.with(key, |found| found.is_some()) {
            // Nothing to write, but a poisoned store acknowledges nothing: a failed put of this
            // key may still be on disk.
            return self.engine.writer.refuse_writes();
        }
        self.commit(Encoded::one(RecordKind::Delete, 0, key, &[]))
    }

    /// Applies a batch atomically and durably: after any crash, all of it or none of it.
    ///
    /// A batch with preconditions ([`Batch::require`]) is applied only if they hold, atomically
    /// with the check; if one does not, nothing is written and this fails with
    /// [`Error::ConditionFailed`](crate::Error::ConditionFailed) (use [`Store::write_if`] to get `false` instead).
    pub fn write(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() && batch.conditions.is_empty() {
            // Nothing to write, but a poisoned store acknowledges nothing (fuzz finding
            // `ops_model/empty-batch-on-a-poisoned-store`).
            return self.engine.writer.refuse_writes();
        }
        if batch.needs_leader() {
            self.check_batch(&batch)?;
            return match self.transaction(crate::rmw::batch_txn(batch))?? {
                Some(key) => Err(crate::rmw::condition_failed(&key)),
                None => Ok(()),
            };
        }
        self.commit(self.encode_batch(&batch)?)
    }

    /// True if the store holds no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live key with its value, in unspecified order; see [`Iter`] for what it guarantees
    /// under concurrent writes.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.put(b"a", b"1")?;
    /// store.put(b"b", b"2")?;
    /// let mut pairs: Vec<_> = store.iter().map(|(k, v)| (k, v.into_vec())).collect();
    /// pairs.sort();
    /// assert_eq!(pairs, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter::new(&self.engine, None)
    }

    /// Every live key, in unspecified order.
    pub fn keys(&self) -> Keys<'_> {
        Keys(Iter::new(&self.engine, None))
    }

    /// Every live key starting with `prefix`, with its value, in unspecified order. This walks
    /// the whole index (it is a hash index, not a sorted one).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// store.put(b"user:1", b"ada")?;
    /// store.put(b"order:7", b"tea")?;
    /// let users: Vec<_> = store.scan_prefix(b"user:").map(|(k, _)| k).collect();
    /// assert_eq!(users, vec![b"user:1".to_vec()]);
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'_> {
        Iter::new(&self.engine, Some(prefix.as_ref().to_vec()))
    }

    /// Makes every write so far durable. With [`SyncMode::Always`](crate::SyncMode) they already
    /// are, and this returns at once.
    pub fn sync(&self) -> Result<()> {
        self.engine.writer.sync_now()
    }

    /// Switches when writes become durable while the store is open (`Options::sync` is the mode
    /// it opens with). After a switch to [`SyncMode::Always`](crate::SyncMode) every write is
    /// durable before it returns, and so is every write acknowledged before the switch: what
    /// write-back left unsynced is synced before this returns. After a switch to
    /// [`SyncMode::Every`](crate::SyncMode) writes return once the operating system has them,
    /// and the background thread syncs at the new interval.
    ///
    /// Fails with `Error::InvalidOptions` for a zero interval, and as [`Store::sync`] does if
    /// the sync fails (the store is then poisoned).
    pub fn set_sync_mode(&self, mode: crate::SyncMode) -> Result<()> {
        if mode == crate::SyncMode::Every(std::time::Duration::ZERO) {
            return Err(crate::Error::InvalidOptions("SyncMode::Every needs a non-zero interval".into()));
        }
        self.engine.writer.set_sync_mode(mode)?;
        if let Some(maintenance) = &self.maintenance {
            maintenance.wake();
        }
        Ok(())
    }

    /// The sync mode in force (see [`Store::set_sync_mode`]).
    pub fn sync_mode(&self) -> crate::SyncMode {
        self.engine.writer.sync_mode()
    }

    /// What open found: segments replayed or loaded from hints, torn bytes cut, damage skipped.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.engine.report
    }

    fn commit(&self, ops: Encoded) -> Result<()> {
        self.commit_op(Op::Write(ops)).map(drop)
    }

    /// Queues `op` for a future (see `future.rs`), starting the async driver on first use.
    pub(crate) fn submit(&self, op: Op) -> Result<Arc<Slot>> {
        self.submit_with(op, true)
    }

    /// [`Store::submit`]; with `wake_driver` false the caller leads it (`Writer::submit`).
    pub(crate) fn submit_with(&self, op: Op, wake_driver: bool) -> Result<Arc<Slot>> {
        // Started even when not woken: a leader that ends with operations queued hands them to
        // the driver, so no operation waits for a caller that never leads.
        self.driver.get_or_init(|| {
            let inner = Arc::clone(&self.engine);
            std::thread::Builder::new()
                .name("ferrocask-async".into())
                .spawn(move || inner.writer.drive(&inner.sets, &inner.index))
                .expect("spawn the async driver thread")
        });
        self.engine.writer.submit(op, wake_driver)
    }

    /// Leads, on the calling thread, the group commits of the operations queued now (those of
    /// [`Store::transaction_async_deferred`] and any others), blocking for their syncs, until
    /// every one of them is done; returns how many groups it led. Operations queued meanwhile
    /// by other threads are not its to lead (its caller's thread is not held for as long as
    /// others keep writing): their own callers lead them, or the driver does. Returns at once
    /// (0) if another thread is leading: that leader takes what is queued, or hands it to the
    /// driver.
    ///
    /// Fails with `Error::Reentrant` from inside one of this store's transactions.
    pub fn lead_queued(&self) -> Result<usize> {
        let inner = &self.engine;
        let led = inner.writer.lead_queued(&inner.sets, &inner.index)?;
        if let Some(m) = &self.maintenance {
            m.nudge_if_sealed(inner);
        }
        Ok(led)
    }

    /// Queues `op` with the group-commit writer and waits for its outcome.
    pub(crate) fn commit_op(&self, op: Op) -> Result<Done> {
        let inner = &self.engine;
        let done = inner.writer.commit(&inner.sets, &inner.index, op)?;
        if let Some(m) = &self.maintenance {
            m.nudge_if_sealed(inner);
        }
        Ok(done)
    }

    /// Seals the active segment and rewrites the live records of every sealed segment that
    /// holds anything to reclaim (overwritten, deleted or expired records) into new, compacted
    /// segments; segments with nothing to reclaim stay as they are, and a segment whose records
    /// are all dead is removed unread. It works in runs of at most
    /// [`Options::compaction_input_bytes_max`] input bytes (and at most an eighth of the live
    /// bytes, or one segment if that is more), each committed and its inputs removed before the
    /// next, so it never needs more extra disk than `min(cap, live / 8)` plus one segment.
    /// Readers and writers keep going meanwhile.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path())?;
    /// for i in 0..100u32 {
    ///     store.put(b"counter", i.to_le_bytes())?;
    /// }
    /// let report = store.compact()?;
    /// assert!(report.bytes_reclaimed > 0);
    /// assert_eq!(store.get(b"counter")?.as_deref(), Some(&99u32.to_le_bytes()[..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        crate::compaction::compact(&self.engine)
    }

    /// Runs one compaction if the policy finds a segment worth it (what the background thread
    /// does when [`Options::auto_compact`] is on): the segments past their own dead-ratio or
    /// dead-bytes thresholds, with small and expired ones, up to the run's input budget (see
    /// [`Options::compaction_input_bytes_max`]). `None` if nothing is due, or if a compaction
    /// is already running. For stores opened with `background_thread: false` that want
    /// automatic compaction on their own schedule.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let options = ferrocask::Options { segment_bytes: 1 << 20, ..Default::default() };
    /// let store = ferrocask::Store::open_with(dir.path(), options)?;
    /// assert!(store.compact_if_due()?.is_none(), "nothing sealed yet");
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn compact_if_due(&self) -> Result<Option<CompactionReport>> {
        crate::compaction::compact_if_due(&self.engine)
    }

    /// Copies the store, as it is at one moment, into `dir` (which must not exist, or be empty;
    /// [`Error::BackupTarget`](crate::Error::BackupTarget) otherwise) while readers and writers keep going.
    ///
    /// The copy holds exactly the writes acknowledged up to a moment during the call: every
    /// sealed segment whole, and the active segment up to its tail at that moment. Every file
    /// and the directory are synced, and the copy's manifest is written last, so a copy cut
    /// short by a crash does not open. Compaction waits until the copy is done. The copy is an
    /// ordinary store: open it with [`Store::open`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let backups = tempfile::tempdir().unwrap();
    /// let store = ferrocask::Store::open(dir.path().join("live"))?;
    /// store.put(b"k", b"v")?;
    /// let report = store.backup_to(backups.path().join("monday"))?;
    /// assert!(report.bytes > 0);
    /// let copy = ferrocask::Store::open(backups.path().join("monday"))?;
    /// assert_eq!(copy.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn backup_to(&self, dir: impl AsRef<Path>) -> Result<crate::BackupReport> {
        crate::engine::backup::backup(&self.engine, dir.as_ref())
    }

    /// The directory lock file's path (for tools that explain `Error::Locked`).
    pub fn lock_path(&self) -> PathBuf {
        self.engine.dir.path(LOCK_FILE)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Writes that futures wait for are finished first: queued is as good as acknowledged
        // to a caller that has not looked yet.
        self.engine.writer.stop_driver();
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
        self.engine.closing.store(true, Ordering::Relaxed);
        if let Some(m) = self.maintenance.take() {
            m.stop();
        }
        // Write-back mode: what was written reaches the disk before the directory is released.
        let _ = self.engine.writer.sync_now();
        // A reused active segment's old contents past the last frame go, so the next open finds
        // a clean end instead of a torn tail to cut.
        let _ = self.engine.writer.trim_tail();
        if self.engine.writer.pool.close() {
            let _ = self.engine.dir.sync_dir();
        }
        crate::engine::hints::write_pending(&self.engine);
    }
}
