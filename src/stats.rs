//! `Store::stats`: a snapshot of counters, for tools and dashboards.

/// A snapshot of the store's size and activity. Byte counts are of record bytes as stored
/// (headers included); `disk_bytes` is what the files take.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys (not deleted, not expired).
    pub live_keys: usize,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// Bytes of segment data no key points to any more (reclaimable by compaction).
    pub dead_bytes: u64,
    /// Total size of segment and hint files.
    pub disk_bytes: u64,
    /// Live segment files, the active one included.
    pub segments: usize,
    /// Compactions completed since open.
    pub compactions: u64,
    /// Syncs of the log since open.
    pub syncs: u64,
    /// Frames (group commits) written since open.
    pub frames: u64,
    /// Records written since open.
    pub records_written: u64,
    /// Mean records made durable per sync (the group-commit factor).
    pub records_per_sync: f64,
}
