//! Tuning knobs, with defaults that suit a desktop or edge application.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::format::{
    FRAME_HEADER_BYTES, KEY_BYTES_MAX, LIVE_SEGMENTS_MAX, RECORD_HEADER_BYTES_MAX, SEGMENT_BYTES_MAX,
    SEGMENT_BYTES_MIN, SEGMENT_HEADER_BYTES, VALUE_BYTES_MAX,
};
use crate::{Error, Result};

/// When a write is made durable.
///
/// "Synced" means `std`'s `File::sync_data`, which is on each platform the call that reaches
/// stable storage:
///
/// * **Linux**: `fdatasync`.
/// * **macOS** (and other Apple platforms): `fcntl(F_FULLFSYNC)`. A plain `fsync` there only
///   hands the data to the drive, whose cache may still lose it on power loss; `F_FULLFSYNC`
///   also flushes the drive's cache. It is much slower (often milliseconds per call), which
///   group commit amortises over concurrent writers; ferrocask keeps it.
/// * **Windows**: `FlushFileBuffers`, which flushes the file's data and metadata and the drive's
///   write cache. Directory syncs are a no-op there (NTFS journals creates and renames; see
///   DESIGN.md, "Platforms").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Durable before the call returns (default). Concurrent writers share syncs (group commit).
    Always,
    /// Write-back: a write returns once the operating system has it (written to the file, not
    /// yet synced). The log is synced
    ///
    /// * by the store's background thread, which waits about `Duration` between syncs (a sync
    ///   is late while that thread writes hint files or runs an automatic compaction),
    /// * whenever the active segment is sealed (segment roll-over, [`Store::compact`]),
    /// * by [`Store::sync`], and when the store is dropped.
    ///
    /// A crash of the process alone loses nothing: the operating system still has every
    /// acknowledged write. A power loss or kernel crash loses at most the writes acknowledged
    /// after the last *completed* sync (it may lose fewer: the disk may have some of them).
    /// What is lost is always a suffix of the log: a batch is still all or nothing, and no later
    /// write survives an earlier one that was lost. Call [`Store::sync`] where a write must be
    /// durable before you go on.
    ///
    /// [`Store::sync`]: crate::Store::sync
    /// [`Store::compact`]: crate::Store::compact
    Every(Duration),
}

/// Options for [`Store::open_with`](crate::Store::open_with). Build with struct-update syntax:
///
/// ```
/// use ferrocask::Options;
/// let options = Options { segment_bytes: 8 << 20, auto_compact: false, ..Options::default() };
/// assert_eq!(options.stripes, 256);
/// ```
#[derive(Clone)]
pub struct Options {
    /// Size at which the active segment is sealed and a new one started. Default 64 MiB;
    /// between [`SEGMENT_BYTES_MIN`] and [`SEGMENT_BYTES_MAX`].
    pub segment_bytes: u64,
    /// Number of index stripes (locks); a power of two. Default 256.
    pub stripes: usize,
    /// When writes become durable. Default [`SyncMode::Always`].
    pub sync: SyncMode,
    /// Longest key accepted; at most [`KEY_BYTES_MAX`] (the default).
    pub key_bytes_max: usize,
    /// Longest value accepted. Default 16 MiB; lowered if it would not fit in one segment.
    pub value_bytes_max: usize,
    /// The active segment is grown in zero-filled steps of at most this size, so that a sync
    /// need not also persist a growing file length (measured: about 1.4x more single-writer
    /// syncs per second on ext4). The steps start at 16 KiB and double up to this, so a small
    /// store stays small. Default 4 MiB; 0 grows the file with each write.
    pub preallocate_bytes: u64,
    /// Keep a few segment files that compaction retired (at most two, taking at most a quarter
    /// of the live bytes) and reuse them as new active segments, so that the log is written
    /// once instead of zero-filled first (`preallocate_bytes`) and written again. The old contents
    /// of a reused file are never read as the new segment's (DESIGN.md, "Recycled segment
    /// files"). Default true.
    pub recycle_segments: bool,
    /// Open a damaged store by skipping damaged records instead of failing with
    /// [`Error::Corruption`]; what was dropped is reported by
    /// [`Store::recovery_report`](crate::Store::recovery_report). Default false.
    pub salvage: bool,
    /// Write a hint file for each sealed segment so that open need not read values. Default true.
    pub write_hints: bool,
    /// Compact automatically in a background thread. Default true.
    pub auto_compact: bool,
    /// Automatic compaction starts when one sealed segment's dead bytes reach this fraction of
    /// its bytes (its own *dead ratio*; Bitcask's "fragmentation" trigger). The run then also
    /// takes every segment at 80% of this ratio, every segment smaller than a quarter of
    /// `segment_bytes`, and every segment holding expired records, in id order, up to the run's
    /// input budget (see [`compaction_input_bytes_max`](Options::compaction_input_bytes_max)).
    /// Default 0.5.
    pub compact_dead_ratio: f64,
    /// ... or when one sealed segment holds at least this many dead bytes, whatever its ratio
    /// (matters for segments much larger than the default; selection at 80% of it). Default
    /// 512 MiB.
    pub compact_segment_dead_bytes: u64,
    /// An automatic run starts only if the segments it would take hold at least this many dead
    /// bytes in all. Default 16 MiB.
    pub compact_dead_bytes_min: u64,
    /// The most bytes of sealed segments one compaction run reads (a segment whose records are
    /// all dead costs nothing: it is removed unread). Below this cap, a run reads at most an
    /// eighth of the store's live bytes, or one segment if that is more, so the extra disk
    /// compaction needs scales with the store. A run commits its outputs and removes its inputs
    /// before the next one starts, so the extra disk compaction needs at any moment is at most
    /// `min(this, live bytes / 8)` plus one segment. [`Store::compact`](crate::Store::compact)
    /// works through the whole store in such runs, and automatic compaction runs them back to
    /// back while any is due. A run takes at least one segment, however large. Default 256 MiB.
    pub compaction_input_bytes_max: u64,
    /// Compaction works through sealed segments at most this fast, in bytes of records examined
    /// per second, live or dead (0 = as fast as it can), so that it leaves CPU and disk bandwidth
    /// to writers. Default 64 MiB/s.
    pub compaction_bytes_per_sec: u64,
    /// The clock used for expiry (`put_with_ttl`). Default: the system clock.
    pub clock: Arc<dyn Clock>,
    /// Run the store's background thread (write-back syncs, hint files, automatic compaction).
    /// Default true. Without it, hint files are written when the store is dropped, write-back
    /// mode syncs only at roll-overs, [`Store::sync`](crate::Store::sync), compaction and drop,
    /// and `auto_compact` has no effect. Meant for tests and fuzzing, which need every file
    /// operation to happen on the caller's thread, in order.
    pub background_thread: bool,
    /// Key prefixes whose keys are also kept in order in RAM, for
    /// [`Store::range_keys`](crate::Store::range_keys) and
    /// [`Store::count_prefix`](crate::Store::count_prefix). Add them with
    /// [`Options::ordered_prefix`]. None may be empty or a prefix of another (open fails with
    /// [`Error::InvalidOrderedPrefix`]). RAM only: a store may be opened with or without them,
    /// or with others, at any time. Default none, which costs nothing.
    pub ordered_prefixes: Vec<Vec<u8>>,
    /// Most live segments the writer lets the store hold ([`LIVE_SEGMENTS_MAX`](crate::format::LIVE_SEGMENTS_MAX),
    /// at most that). Lower only in tests, which reach the limit without writing half a million
    /// segments.
    #[doc(hidden)]
    pub live_segments_max: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 64 << 20,
            stripes: 256,
            sync: SyncMode::Always,
            key_bytes_max: KEY_BYTES_MAX,
            value_bytes_max: 16 << 20,
            preallocate_bytes: 4 << 20,
            recycle_segments: true,
            salvage: false,
            write_hints: true,
            auto_compact: true,
            compact_dead_ratio: 0.5,
            compact_segment_dead_bytes: 512 << 20,
            compact_dead_bytes_min: 16 << 20,
            compaction_input_bytes_max: 256 << 20,
            compaction_bytes_per_sec: 64 << 20,
            clock: Arc::new(SystemClock),
            background_thread: true,
            ordered_prefixes: Vec::new(),
            live_segments_max: LIVE_SEGMENTS_MAX,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("segment_bytes", &self.segment_bytes)
            .field("stripes", &self.stripes)
            .field("sync", &self.sync)
            .field("key_bytes_max", &self.key_bytes_max)
            .field("value_bytes_max", &self.value_bytes_max)
            .field("preallocate_bytes", &self.preallocate_bytes)
            .field("recycle_segments", &self.recycle_segments)
            .field("salvage", &self.salvage)
            .field("write_hints", &self.write_hints)
            .field("auto_compact", &self.auto_compact)
            .field("compact_dead_ratio", &self.compact_dead_ratio)
            .field("compact_segment_dead_bytes", &self.compact_segment_dead_bytes)
            .field("compact_dead_bytes_min", &self.compact_dead_bytes_min)
            .field("compaction_input_bytes_max", &self.compaction_input_bytes_max)
            .field("compaction_bytes_per_sec", &self.compaction_bytes_per_sec)
            .field("background_thread", &self.background_thread)
            .field("ordered_prefixes", &self.ordered_prefixes)
            .field("live_segments_max", &self.live_segments_max)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Declares `prefix` an ordered prefix (see [`Options::ordered_prefixes`]); may be called
    /// for several prefixes.
    ///
    /// ```
    /// use ferrocask::Options;
    /// let options = Options::default().ordered_prefix(b"\xff\xfdh".to_vec()).ordered_prefix("zset:");
    /// assert_eq!(options.ordered_prefixes.len(), 2);
    /// ```
    #[must_use]
    pub fn ordered_prefix(mut self, prefix: impl Into<Vec<u8>>) -> Options {
        self.ordered_prefixes.push(prefix.into());
        self
    }

    /// Checks the options and returns them with derived limits applied.
    pub(crate) fn validated(&self) -> Result<Options> {
        let mut o = self.clone();
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&o.segment_bytes) {
            return Err(Error::InvalidOptions(format!(
                "segment_bytes {} outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                o.segment_bytes
            )));
        }
        if !(2..=LIVE_SEGMENTS_MAX).contains(&o.live_segments_max) {
            return Err(Error::InvalidOptions(format!(
                "live_segments_max {} outside 2..={LIVE_SEGMENTS_MAX}",
                o.live_segments_max
            )));
        }
        if o.stripes == 0 || !o.stripes.is_power_of_two() || o.stripes > 1 << 16 {
            return Err(Error::InvalidOptions(format!("stripes {} is not a power of two up to 65536", o.stripes)));
        }
        if o.key_bytes_max == 0 || o.key_bytes_max > KEY_BYTES_MAX {
            return Err(Error::InvalidOptions(format!("key_bytes_max must be within 1..={KEY_BYTES_MAX}")));
        }
        if !(0.0..=1.0).contains(&o.compact_dead_ratio) {
            return Err(Error::InvalidOptions("compact_dead_ratio must be within 0..=1".into()));
        }
        if let SyncMode::Every(d) = o.sync {
            if d.is_zero() {
                return Err(Error::InvalidOptions("SyncMode::Every needs a non-zero interval".into()));
            }
        }
        check_ordered_prefixes(&o.ordered_prefixes)?;
        o.value_bytes_max =
            o.value_bytes_max.min(VALUE_BYTES_MAX).min(o.frame_bytes_max() - single_record_overhead(o.key_bytes_max));
        Ok(o)
    }

    /// The largest frame (group or batch) that fits in an empty segment.
    pub(crate) fn frame_bytes_max(&self) -> usize {
        self.segment_bytes as usize - SEGMENT_HEADER_BYTES
    }
}

/// Bytes a frame holding one record needs beyond the record's value.
fn single_record_overhead(key_bytes_max: usize) -> usize {
    FRAME_HEADER_BYTES + RECORD_HEADER_BYTES_MAX + key_bytes_max
}

/// Refuses an empty ordered prefix, and two that overlap (one is a prefix of the other, or they
/// are equal): a key must belong to one declared prefix at most, so that each has its own count.
/// The keyspace marker counts as declared (keyspaces' keys are kept in order under it).
fn check_ordered_prefixes(prefixes: &[Vec<u8>]) -> Result<()> {
    let marker = &crate::format::KEYSPACE_MARKER[..];
    for (i, prefix) in prefixes.iter().enumerate() {
        if prefix.is_empty() {
            return Err(Error::InvalidOrderedPrefix { prefix: prefix.clone(), overlaps: None });
        }
        if marker.starts_with(prefix) || prefix.starts_with(marker) {
            return Err(Error::InvalidOrderedPrefix { prefix: prefix.clone(), overlaps: Some(marker.to_vec()) });
        }
        let other = prefixes[..i].iter().find(|o| o.starts_with(prefix) || prefix.starts_with(o));
        if let Some(other) = other {
            return Err(Error::InvalidOrderedPrefix { prefix: prefix.clone(), overlaps: Some(other.clone()) });
        }
    }
    Ok(())
}
