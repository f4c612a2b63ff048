//! File contents: what the process sees, what is durable, and the changes in between
//! ([`Content`], [`Change`]), with what a crash or a failed sync keeps of them; and the
//! [`Inode`] that holds them.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::CrashMode;
use crate::io::rng::Rng;

/// A file's identity and content; lives as long as any entry, handle or mapping refers to it.
pub(super) struct Inode {
    pub(super) id: u64,
    pub(super) content: Mutex<Content>,
    /// Live mappings of it (for the Windows rules).
    pub(super) mappings: AtomicU64,
}

impl Inode {
    /// An inode whose content is all durable.
    pub(super) fn new(id: u64, data: Vec<u8>) -> Self {
        let content = Mutex::new(Content { durable: data.clone(), data, pending: Vec::new(), lost: false });
        Inode { id, content, mappings: AtomicU64::new(0) }
    }

    pub(super) fn is_mapped(&self) -> bool {
        self.mappings.load(Ordering::SeqCst) > 0
    }
}

/// What Windows answers when a mapped file is removed or renamed over (`ERROR_ACCESS_DENIED`).
pub(super) fn mapped_refusal() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "the file is mapped (Windows rules)")
}

impl fmt::Debug for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inode").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A file's bytes as seen by the process and as on disk.
pub(super) struct Content {
    /// What reads see.
    pub(super) data: Vec<u8>,
    /// What survives a crash for sure.
    pub(super) durable: Vec<u8>,
    /// Changes since the last sync (or the last failed sync, which dropped the older ones),
    /// oldest first; `durable` plus all of them is what the disk would hold if they all reached
    /// it. That is `data` unless `lost` is set.
    pub(super) pending: Vec<Change>,
    /// A failed sync dropped unsynced changes: `data` shows bytes the disk will never hold.
    pub(super) lost: bool,
}

/// One not-yet-durable change to a file.
pub(super) enum Change {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

impl Change {
    fn apply_to(&self, data: &mut Vec<u8>) {
        match self {
            Change::Write { offset, bytes } => write_into(data, *offset, bytes),
            Change::SetLen(len) => data.resize(*len, 0),
        }
    }
}

impl Content {
    pub(super) fn write(&mut self, offset: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        write_into(&mut self.data, offset, bytes);
        self.pending.push(Change::Write { offset, bytes: bytes.to_vec() });
    }

    pub(super) fn set_len(&mut self, len: usize) {
        self.data.resize(len, 0);
        self.pending.push(Change::SetLen(len));
    }

    /// Makes every pending change durable; replays them rather than copying the whole file, so
    /// frequent syncs of a big file cost only what was written. Changes dropped by a failed sync
    /// are not pending any more, so they stay lost.
    pub(super) fn sync(&mut self) {
        for change in self.pending.drain(..) {
            change.apply_to(&mut self.durable);
        }
        // A successful sync persists the file's length as it is now, whatever an earlier
        // failed sync dropped: a truncation whose sync failed is redone by the next sync that
        // succeeds, and bytes lost past the old end read as zeros (fuzz finding
        // `ops_model/truncation-lost-by-a-failed-sync`: without this, a lost truncation left
        // bytes past a sealed segment's last frame for ever).
        self.durable.resize(self.data.len(), 0);
        if self.lost {
            // Later writes may have covered everything that was lost.
            self.lost = self.durable != self.data;
        }
        debug_assert!(self.lost || self.durable == self.data);
    }

    /// A sync failed: the unsynced changes never reach the disk (the page cache was marked
    /// clean), though reads still show them.
    pub(super) fn lose_unsynced(&mut self) {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.lost = self.durable != self.data;
        }
    }

    /// What the disk would hold if every pending change reached it.
    pub(super) fn written(&self) -> Cow<'_, [u8]> {
        if !self.lost {
            return Cow::Borrowed(&self.data[..]);
        }
        let mut out = self.durable.clone();
        for change in &self.pending {
            change.apply_to(&mut out);
        }
        Cow::Owned(out)
    }

    /// What the disk holds after a crash in `mode`.
    pub(super) fn after_crash(&self, mode: CrashMode, rng: &mut Rng) -> Vec<u8> {
        match mode {
            CrashMode::Nothing => self.durable.clone(),
            CrashMode::Everything => self.written().into_owned(),
            CrashMode::Prefix => self.prefix_crash(rng),
            CrashMode::Sectors512 | CrashMode::Sectors4096 => {
                self.sector_crash(mode.sector_size().expect("a sector mode"), rng)
            }
        }
    }

    /// The durable bytes plus a random prefix of the pending changes, the last write maybe torn.
    fn prefix_crash(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = self.durable.clone();
        let kept = rng.upto(self.pending.len());
        for (i, change) in self.pending[..kept].iter().enumerate() {
            match change {
                Change::Write { offset, bytes } if i + 1 == kept => {
                    let cut = rng.upto(bytes.len());
                    write_into(&mut out, *offset, &bytes[..cut]);
                }
                _ => change.apply_to(&mut out),
            }
        }
        out
    }

    /// The durable bytes with each sector touched by a pending write independently replaced
    /// by its current content or not. Unsynced length changes are lost, except that a new
    /// sector past the durable end extends the file.
    fn sector_crash(&self, sector: usize, rng: &mut Rng) -> Vec<u8> {
        let mut sectors = Vec::new();
        for change in &self.pending {
            if let Change::Write { offset, bytes } = change {
                let last = (offset + bytes.len() - 1) / sector;
                sectors.extend(offset / sector..=last);
            }
        }
        sectors.sort_unstable();
        sectors.dedup();
        let written = self.written();
        let mut out = self.durable.clone();
        for s in sectors {
            let start = s * sector;
            let end = (start + sector).min(written.len());
            if rng.coin() && start < end {
                write_into(&mut out, start, &written[start..end]);
            }
        }
        out
    }
}

/// Writes `bytes` at `offset`, zero-filling any hole. An empty write never extends.
fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}
