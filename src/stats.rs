//! `Store::stats`: a snapshot of counters, for tools and dashboards.

/// A snapshot of the store's size and activity. Byte counts are of record bytes as stored
/// (headers included); `disk_bytes` is what the files take.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys (not deleted, not expired).
    pub live_keys: usize,
    /// Live keys with an expiry (INFO's `expires`): counted from the index's expiry multiset,
    /// without visiting keys.
    pub expiring_keys: usize,
    /// The mean time the [`expiring_keys`](Stats::expiring_keys) have left, in ms (0 when there
    /// are none): exact, unlike Redis's sampled `avg_ttl`.
    pub avg_ttl_ms: u64,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// Bytes the in-memory index holds allocated: its hash tables (every slot, used or free, at
    /// 10 bytes, and hashbrown's control bytes), its segment table, its expiry multiset (about
    /// 24 bytes per distinct expiry time, estimated) and its ordered set of the keys under
    /// declared ordered prefixes (their bytes and about 26 bytes of tree per key): the store's
    /// main use of RAM besides the mapped segments. Within 1% of what the index allocates
    /// (`tests/index_footprint.rs`); about 13-25 bytes per key without expiries or prefixes.
    pub index_bytes: usize,
    /// Bytes of segment data no key points to any more (reclaimable by compaction).
    pub dead_bytes: u64,
    /// Total size of segment and hint files, and of retired segment files kept for reuse.
    pub disk_bytes: u64,
    /// Retired segment files kept for reuse as active segments now (see
    /// [`Options::recycle_segments`](crate::Options::recycle_segments)); their bytes count in
    /// `disk_bytes`.
    pub pooled_segments: usize,
    /// Active segments since open that reused a retired segment file instead of a new one.
    pub recycled_segments: u64,
    /// Compaction output segments since open that reused a retired segment file.
    pub recycled_compaction_outputs: u64,
    /// Live segment files, the active one included.
    pub segments: usize,
    /// Compaction runs completed since open ([`Store::compact`](crate::Store::compact) may take
    /// several, each of at most [`Options::compaction_input_bytes_max`](crate::Options) input
    /// bytes, and at most an eighth of the live bytes or one segment, whichever is more).
    pub compactions: u64,
    /// Bytes of sealed segments compaction read since open.
    pub compaction_bytes_read: u64,
    /// Bytes compaction wrote to its output segments since open. With
    /// [`log_bytes_written`](Stats::log_bytes_written), the write amplification is
    /// `(log_bytes_written + compaction_bytes_written) / log_bytes_written`.
    pub compaction_bytes_written: u64,
    /// The most output bytes one compaction run had on disk before it removed its inputs: the
    /// extra disk compaction needed at its peak.
    pub compaction_peak_output_bytes: u64,
    /// A compaction run is in progress now.
    pub compacting: bool,
    /// Bytes of frames appended to the log since open (records and their framing).
    pub log_bytes_written: u64,
    /// Syncs of the log since open that covered written frames: one per group commit with
    /// [`SyncMode::Always`](crate::SyncMode), and with [`SyncMode::Every`](crate::SyncMode) one
    /// per background sync, [`Store::sync`](crate::Store::sync) or roll-over that had unsynced
    /// frames. Syncs of the file's growth (preallocation) and of recovery are not counted.
    pub syncs: u64,
    /// Frames (group commits) written since open.
    pub frames: u64,
    /// Records made durable since open (puts and tombstones), counted once a sync has covered
    /// them, in both sync modes: with [`SyncMode::Every`](crate::SyncMode) records written since
    /// the last sync are not counted yet.
    pub records_written: u64,
    /// `records_written / syncs` (0 before the first sync): the mean number of records each sync
    /// made durable, the group-commit factor.
    pub records_per_sync: f64,
    /// Every live segment's accounting, sealed ones in id order, then the active one.
    pub segment_details: Vec<SegmentStats>,
}

/// One segment's accounting, kept exact as writes, deletes, expiries and compactions move
/// records. "Live" is what compaction would copy: records the index points to, and tombstones
/// a compaction had to keep (an older value of their key may still be in another segment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentStats {
    /// The segment's id (its file is `{id:016x}.seg`).
    pub id: u64,
    /// It is the active segment (the one the log appends to).
    pub active: bool,
    /// It was written by compaction (otherwise by the log).
    pub compacted: bool,
    /// Bytes up to the end of its data, headers included.
    pub data_bytes: u64,
    /// Bytes its segment and hint files take on disk.
    pub disk_bytes: u64,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// `data_bytes - live_bytes`: overwritten, deleted and droppable records, and headers.
    pub dead_bytes: u64,
    /// Live records (expired ones count until compaction or reopen removes them).
    pub live_records: u64,
    /// Records that are not live.
    pub dead_records: u64,
    /// Tombstones in it, live or dead.
    pub tombstones: u64,
    /// Tombstones among the live records: ones a compaction kept. They stay counted live until
    /// this segment is compacted again, even if their key has been written since (so for a
    /// compacted segment `live_bytes` may overstate what a rewrite would copy, by their size).
    pub kept_tombstones: u64,
}

/// Totals over every compaction run since open, for `Store::stats`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CompactionTotals {
    pub(crate) runs: u64,
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    /// The most bytes of outputs any one run had on disk before its inputs went.
    pub(crate) peak_output_bytes: u64,
    /// A run is in progress.
    pub(crate) running: bool,
}

impl CompactionTotals {
    /// Counts a completed run that read and wrote these many bytes.
    pub(crate) fn add_run(&mut self, bytes_read: u64, bytes_written: u64) {
        self.runs += 1;
        self.bytes_read += bytes_read;
        self.bytes_written += bytes_written;
        self.peak_output_bytes = self.peak_output_bytes.max(bytes_written);
    }
}
