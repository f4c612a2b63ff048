//! The engine below the public API: the state of an open store and what every layer above it
//! uses (checks, encoding, reads, counts). It calls nothing above it: the public `Store` and the
//! subsystems (compaction, backup, hints, maintenance) call into it.

pub(crate) mod backup;
pub(crate) mod hints;
pub(crate) mod keyspaces;
pub(crate) mod maintenance;
pub(crate) mod recovery;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::keyspaces::Keyspaces;
use crate::engine::recovery::{recover, RecoveryReport};
use crate::format::{record_header_len, RecordHeader, RecordKind, KEYSPACE_MARKER};
use crate::index::Index;
use crate::io::{create_dir_durably, CheckedVfs, LockGuard, Vfs};
use crate::log::{Encoded, Expiry, LogDir, SegmentSet, Writer};
use crate::options::Options;
use crate::stats::{CompactionTotals, SegmentStats, Stats};
use crate::value::{Batch, BatchOp, Value};
use crate::{Error, Result};

/// The engine of an open store: its directory, index, segment set and group-commit writer, and
/// the state compaction, hints and backup share. The public [`Store`](crate::Store) is a thin
/// front over it; the subsystems (compaction, backup, hints, maintenance, iteration) take an
/// `Engine`, never the `Store`.
pub(crate) struct Engine {
    pub(crate) dir: LogDir,
    /// The file system without this store's poison latch, for writing outside the store's
    /// directory (a backup target), where a failure must not poison the live store.
    pub(crate) unlatched_vfs: Arc<dyn Vfs>,
    pub(crate) options: Options,
    pub(crate) index: Index,
    pub(crate) writer: Writer,
    pub(crate) sets: Mutex<SegmentSet>,
    pub(crate) report: RecoveryReport,
    /// Sealed segments still waiting for a hint file.
    pub(crate) need_hints: Mutex<Vec<u64>>,
    /// Serialises compactions (manual and automatic) and backups.
    pub(crate) compaction: Mutex<()>,
    /// What compaction did since open.
    pub(crate) compaction_totals: Mutex<CompactionTotals>,
    /// The store is being dropped: a running compaction gives up (its outputs become orphans,
    /// removed at the next open) instead of holding up the drop.
    pub(crate) closing: AtomicBool,
    /// The keyspaces' names, ids and kinds.
    pub(crate) keyspaces: Keyspaces,
    _lock: LockGuard,
}

impl Engine {
    /// Opens the store in `dir` on `vfs`: locks the directory, recovers the index and the
    /// segment set, and starts the writer (no thread: the maintenance thread is the `Store`'s).
    pub(crate) fn open(vfs: Arc<dyn Vfs>, dir: &Path, options: Options) -> Result<Engine> {
        let options = options.validated()?;
        // Every file operation of this store goes through one poison latch.
        let checked = CheckedVfs::new(Arc::clone(&vfs));
        let latch = checked.latch();
        let dir = LogDir { vfs: Arc::new(checked), dir: dir.to_path_buf() };
        create_dir_durably(dir.vfs.as_ref(), &dir.dir)?;
        let lock = dir.lock()?;
        let opened = recover(&dir, &options)?;
        let keyspaces = Keyspaces::load(&opened.index, &dir.dir)?;
        Ok(Engine {
            keyspaces,
            writer: Writer::new(dir.clone(), &options, opened.active, latch),
            dir,
            unlatched_vfs: vfs,
            index: opened.index,
            sets: Mutex::new(opened.set),
            report: opened.report,
            need_hints: Mutex::new(opened.need_hints),
            compaction: Mutex::new(()),
            compaction_totals: Mutex::new(CompactionTotals::default()),
            closing: AtomicBool::new(false),
            options,
            _lock: lock,
        })
    }

    /// `key`'s live value and expiry (ms since the Unix epoch, `None` = never), from memory.
    pub(crate) fn get_with_expiry(&self, key: &[u8]) -> Result<Option<(Value, Option<u64>)>> {
        self.check_key(key)?;
        Ok(self.read_stored(key))
    }

    /// [`Engine::get_with_expiry`] of a stored key already checked (a keyspace handle's: its
    /// reads take no registry lock).
    pub(crate) fn read_stored(&self, key: &[u8]) -> Option<(Value, Option<u64>)> {
        self.index.with(key, |found| {
            let found = found?;
            if self.is_expired(&found.header) {
                return None;
            }
            let value = found.value()?;
            let expires_ms = found.header.expires_ms;
            Some((Value::new(value.into_owned()), (expires_ms != 0).then_some(expires_ms)))
        })
    }

    /// The header of `key`'s live record, if any; reads no value.
    pub(crate) fn live_header(&self, key: &[u8]) -> Result<Option<RecordHeader>> {
        self.check_key(key)?;
        Ok(self.live_header_stored(key))
    }

    /// [`Engine::live_header`] of a key taken from the index (no key check).
    pub(crate) fn live_header_stored(&self, key: &[u8]) -> Option<RecordHeader> {
        self.index.with(key, |found| found.map(|f| f.header).filter(|h| !self.is_expired(h)))
    }

    /// The default keyspace's live (not deleted, not expired) keys: the store's count
    /// ([`Index::live_len`], which visits no entry) less the keyspaces' entries, counted in O(1)
    /// (a walk of the keyspaces' keys only if some entry has an expiry and keyspaces exist).
    pub(crate) fn len(&self) -> usize {
        let now_ms = self.options.clock.now_ms();
        let reserved = self.index.live_under(&KEYSPACE_MARKER, self.index.reserved_count(), now_ms);
        self.index.live_len(now_ms).saturating_sub(reserved)
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        let max = self.options.key_bytes_max;
        match key.len() {
            0 => Err(Error::EmptyKey),
            len if len > max => Err(Error::KeyTooLarge { len, max }),
            _ if key.starts_with(&KEYSPACE_MARKER) => self.index.check_marked_key(key),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        let max = self.options.value_bytes_max;
        if value.len() > max {
            return Err(Error::ValueTooLarge { len: value.len(), max });
        }
        Ok(())
    }

    /// Encodes a batch without preconditions or kept expiries, checking it first: from the
    /// record layout, so a batch far over the limit is refused without first being copied whole
    /// into a buffer.
    pub(crate) fn encode_batch(&self, batch: &Batch) -> Result<Encoded> {
        let now_ms = self.options.clock.now_ms();
        let expires = |expiry: Expiry| expiry.resolve(now_ms, || unreachable!("no kept expiry here"));
        let mut len = 0usize;
        for op in &batch.ops {
            len = len.saturating_add(match op {
                BatchOp::Put { key, value, expiry } => {
                    self.check_key(key)?;
                    self.check_value(value)?;
                    record_header_len(expires(*expiry)) + key.len() + value.len()
                }
                BatchOp::Delete { key } => {
                    self.check_key(key)?;
                    record_header_len(0) + key.len()
                }
            });
        }
        let max = self.writer.ops_bytes_max();
        if len > max {
            return Err(Error::BatchTooLarge { len, max });
        }
        let mut ops = Encoded::with_capacity(len);
        for op in &batch.ops {
            match op {
                BatchOp::Put { key, value, expiry } => {
                    ops.push(RecordKind::Put, expires(*expiry), key, value);
                }
                BatchOp::Delete { key } => ops.push(RecordKind::Delete, 0, key, &[]),
            }
        }
        debug_assert_eq!(ops.byte_len(), len, "the size check agrees with the encoding");
        Ok(ops)
    }

    /// Counters describing size and activity, with each segment's accounting.
    pub(crate) fn stats(&self) -> Stats {
        let inner = self;
        let (active, segments) = {
            let set = inner.sets.lock();
            (set.active.id, set.all())
        };
        let (expiring_keys, avg_ttl_ms) = self.index.expiring(self.options.clock.now_ms());
        let mut stats =
            Stats { live_keys: self.len(), expiring_keys, avg_ttl_ms, segments: segments.len(), ..Stats::default() };
        stats.index_bytes = self.index.footprint().total();
        for s in &segments {
            let disk = s.file.len().unwrap_or(0) + inner.dir.file_len(&crate::log::hint_file_name(s.id)).unwrap_or(0);
            stats.live_bytes += s.live_bytes();
            stats.dead_bytes += s.dead_bytes();
            stats.disk_bytes += disk;
            stats.segment_details.push(SegmentStats {
                id: s.id,
                active: s.id == active,
                compacted: s.kind == crate::format::SegmentKind::Compacted,
                data_bytes: s.data_end(),
                disk_bytes: disk,
                live_bytes: s.live_bytes(),
                dead_bytes: s.dead_bytes(),
                live_records: s.live_records(),
                dead_records: s.records().saturating_sub(s.live_records()),
                tombstones: s.tombstones(),
                kept_tombstones: s.kept_tombstones(),
            });
        }
        stats.disk_bytes += inner.writer.pool.bytes();
        stats.pooled_segments = inner.writer.pool.files();
        (stats.recycled_segments, stats.recycled_compaction_outputs) = inner.writer.pool.reused();
        let w = &inner.writer.stats;
        let totals = *inner.compaction_totals.lock();
        stats.compactions = totals.runs;
        stats.compaction_bytes_read = totals.bytes_read;
        stats.compaction_bytes_written = totals.bytes_written;
        stats.compaction_peak_output_bytes = totals.peak_output_bytes;
        stats.compacting = totals.running;
        stats.syncs = w.syncs.load(Ordering::Relaxed);
        stats.frames = w.frames.load(Ordering::Relaxed);
        stats.log_bytes_written = w.bytes.load(Ordering::Relaxed);
        stats.records_written = w.synced_records.load(Ordering::Relaxed);
        stats.records_per_sync = if stats.syncs == 0 { 0.0 } else { stats.records_written as f64 / stats.syncs as f64 };
        stats
    }

    pub(crate) fn is_expired(&self, header: &RecordHeader) -> bool {
        crate::format::is_expired(header.expires_ms, || self.options.clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Batch, Options, Store};

    /// Keys loaded beside the expiring one: a walk of the index would visit them all.
    const KEYS: usize = 100_000;
    /// Keys per batch while loading.
    const BATCH_KEYS: usize = 1000;

    fn options() -> Options {
        Options { auto_compact: false, ..Options::default() }
    }

    /// A store holding `KEYS` keys without an expiry and one with an expiry an hour away.
    fn store_with_one_expiring_key(dir: &std::path::Path) -> Store {
        let store = Store::open_with(dir, options()).unwrap();
        for chunk in (0..KEYS).collect::<Vec<_>>().chunks(BATCH_KEYS) {
            let mut batch = Batch::new();
            for i in chunk {
                batch.put(format!("key:{i}"), b"v");
            }
            store.write(batch).unwrap();
        }
        store.put_with_ttl(b"expiring", b"v", Duration::from_secs(3600)).unwrap();
        store
    }

    /// Before the fix, one expiring write made every later `len` walk the whole index (and
    /// `DBSIZE`/`INFO`, which call it).
    #[test]
    fn len_visits_no_index_entry_after_an_expiring_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_one_expiring_key(dir.path());
        let index = &store.engine.index;
        let before = index.entries_visited();
        assert_eq!(store.len(), KEYS + 1);
        assert_eq!(index.entries_visited() - before, 0, "index entries visited by len");
        // The counter sees walks: iteration visits every entry.
        assert_eq!(store.keys().count(), KEYS + 1);
        assert_eq!(index.entries_visited() - before, KEYS as u64 + 1);
    }

    /// A transaction's count of live keys costs the keys its group wrote, not the store's: it
    /// walked the whole index before.
    #[test]
    fn txn_len_visits_no_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_one_expiring_key(dir.path());
        let engine = std::sync::Arc::clone(&store.engine);
        let (len, visited) = store
            .transaction(move |txn| {
                txn.put(b"new", b"v").unwrap();
                txn.delete(b"key:0").unwrap();
                txn.put_with_expiry(b"key:1", b"v", crate::Expiry::At(1)).unwrap(); // expired
                let before = engine.index.entries_visited();
                (txn.len(), engine.index.entries_visited() - before)
            })
            .unwrap();
        assert_eq!(len, KEYS + 1 + 1 - 2);
        assert_eq!(visited, 0, "index entries visited by Txn::len");
    }

    /// Before the fix, a store that held any expiring record walked its index in every `len`
    /// from open on.
    #[test]
    fn len_visits_no_index_entry_after_reopening_a_store_with_an_expiring_key() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with_one_expiring_key(dir.path()));
        let store = Store::open_with(dir.path(), options()).unwrap();
        let before = store.engine.index.entries_visited();
        assert_eq!(store.len(), KEYS + 1);
        assert_eq!(store.engine.index.entries_visited() - before, 0, "index entries visited by len");
    }
}
