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
    /// Syncs of the log since open that covered written frames: one per group commit with
    /// [`SyncMode::Always`](crate::SyncMode), and with [`SyncMode::Every`](crate::SyncMode) one
    /// per background sync, [`Store::sync`](crate::Store::sync) or roll-over that had unsynced
    /// frames. Syncs of the file's growth (preallocation) and of recovery are not counted.
    pub syncs: u64,
    /// Frames (group commits) written since open.
    pub frames: u64,
    /// Records appended to the log since open (puts and tombstones; each acknowledged write
    /// counts once). With [`SyncMode::Always`](crate::SyncMode) every one of them was synced
    /// before it was counted; with [`SyncMode::Every`](crate::SyncMode) they are counted when
    /// written, so this includes records not yet synced (which a power loss may still take).
    pub records_written: u64,
    /// `records_written / syncs` (0 before the first sync). With
    /// [`SyncMode::Always`](crate::SyncMode) this is the mean number of records each sync made
    /// durable, the group-commit factor. With [`SyncMode::Every`](crate::SyncMode) the numerator
    /// also counts records written since the last sync, so it overstates records per sync until
    /// the next one.
    pub records_per_sync: f64,
}
