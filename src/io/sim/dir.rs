//! The directory tree: each directory's current entries, its durable entries and the journal of
//! creates, renames and removes in between ([`Dir`], [`DirOp`]), the lock table, what a crash
//! keeps of them ([`State::after_crash`]), and path normalisation.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::content::Inode;
use super::CrashMode;
use crate::io::rng::Rng;

/// The directory tree and lock table.
pub(super) struct State {
    /// Every existing directory by normalised path; a `BTreeMap` so that parents come before
    /// their children and crashes consume the PRNG in a fixed order.
    pub(super) dirs: BTreeMap<PathBuf, Dir>,
    /// Normalised paths currently locked.
    pub(super) locks: HashSet<PathBuf>,
    pub(super) next_inode: u64,
}

impl State {
    pub(super) fn new() -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::from("/"), Dir::default());
        dirs.insert(PathBuf::new(), Dir::default());
        State { dirs, locks: HashSet::new(), next_inode: 0 }
    }

    pub(super) fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    pub(super) fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    pub(super) fn new_inode(&mut self, data: Vec<u8>) -> Arc<Inode> {
        self.next_inode += 1;
        Arc::new(Inode::new(self.next_inode, data))
    }

    /// Creates an empty file named `name` in the existing directory `dir` (pending until synced).
    pub(super) fn create_file(&mut self, dir: &Path, name: String) -> Arc<Inode> {
        let inode = self.new_inode(Vec::new());
        let d = self.dirs.get_mut(dir).expect("caller checked the directory");
        d.apply(DirOp::Insert(name, Entry::File(inode.clone())));
        inode
    }

    /// Creates the normalised directory `path` and its missing parents; `durable` makes the new
    /// entries durable at once instead of pending.
    pub(super) fn create_dirs(&mut self, path: &Path, durable: bool) -> io::Result<()> {
        if self.dirs.contains_key(path) {
            return Ok(());
        }
        let parent = path.parent().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.create_dirs(parent, durable)?;
        let name = path_name(path);
        let d = self.dirs.get_mut(parent).expect("just created");
        match d.entries.get(&name) {
            Some(Entry::File(_)) => return Err(io::ErrorKind::NotADirectory.into()),
            Some(Entry::Dir) => {}
            None if durable => {
                d.entries.insert(name.clone(), Entry::Dir);
                d.durable.insert(name, Entry::Dir);
            }
            None => d.apply(DirOp::Insert(name, Entry::Dir)),
        }
        self.dirs.insert(path.to_path_buf(), Dir::default());
        Ok(())
    }

    /// Creates `path` and its parents durably, and makes an existing `path` durable in its
    /// parent chain too (test setup: the directory existed before the test).
    pub(super) fn create_dirs_durable(&mut self, path: &Path) -> io::Result<()> {
        self.create_dirs(path, true)?;
        let mut child = path;
        while let Some(parent) = child.parent() {
            let d = self.dirs.get_mut(parent).expect("parents of a directory exist");
            d.durable.insert(path_name(child), Entry::Dir);
            child = parent;
        }
        Ok(())
    }

    pub(super) fn rename(&mut self, from_dir: &Path, from: String, to_dir: &Path, to: String) -> io::Result<()> {
        let entry = match self.dir(from_dir)?.entries.get(&from) {
            None => return Err(io::ErrorKind::NotFound.into()),
            Some(Entry::Dir) => return Err(io::Error::new(io::ErrorKind::Unsupported, "SimFs renames only files")),
            Some(entry) => entry.clone(),
        };
        if matches!(self.dir(to_dir)?.entries.get(&to), Some(Entry::Dir)) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        if from_dir == to_dir {
            if from != to {
                self.dir_mut(from_dir)?.apply(DirOp::Rename(from, to));
            }
            return Ok(());
        }
        // Across directories each side becomes durable with its own directory's sync.
        self.dir_mut(from_dir)?.apply(DirOp::Remove(from));
        self.dir_mut(to_dir)?.apply(DirOp::Insert(to, entry));
        Ok(())
    }

    /// The state after a power loss: see [`CrashMode`].
    pub(super) fn after_crash(&self, mode: CrashMode, rng: &mut Rng) -> State {
        let mut surviving: BTreeMap<PathBuf, BTreeMap<String, Entry>> = BTreeMap::new();
        for (path, dir) in &self.dirs {
            let kept = match mode {
                CrashMode::Nothing => 0,
                CrashMode::Everything => dir.pending.len(),
                _ => rng.upto(dir.pending.len()),
            };
            let entries = replay(&dir.durable, &dir.pending[..kept]);
            // Parents sort before children, so a parent's fate is already known.
            let alive = match path.parent() {
                None => true,
                Some(parent) => {
                    surviving.get(parent).is_some_and(|e| matches!(e.get(&path_name(path)), Some(Entry::Dir)))
                }
            };
            if alive {
                surviving.insert(path.clone(), entries);
            }
        }
        let fresh = crash_inodes(&surviving, mode, rng);
        let dirs = surviving
            .into_iter()
            .map(|(path, entries)| {
                let entries: BTreeMap<String, Entry> = entries
                    .into_iter()
                    .map(|(name, e)| match e {
                        Entry::File(old) => (name, Entry::File(fresh[&old.id].clone())),
                        Entry::Dir => (name, Entry::Dir),
                    })
                    .collect();
                (path, Dir { durable: entries.clone(), entries, pending: Vec::new() })
            })
            .collect();
        State { dirs, locks: HashSet::new(), next_inode: self.next_inode }
    }
}

/// New inodes (by old inode id) holding what survives of each file reachable from `surviving`.
fn crash_inodes(
    surviving: &BTreeMap<PathBuf, BTreeMap<String, Entry>>,
    mode: CrashMode,
    rng: &mut Rng,
) -> BTreeMap<u64, Arc<Inode>> {
    let mut reachable = BTreeMap::new();
    for entries in surviving.values() {
        for entry in entries.values() {
            if let Entry::File(inode) = entry {
                reachable.insert(inode.id, inode.clone());
            }
        }
    }
    reachable
        .into_iter()
        .map(|(id, inode)| {
            let data = inode.content.lock().after_crash(mode, rng);
            (id, Arc::new(Inode::new(id, data)))
        })
        .collect()
}

/// `durable` with the directory operations `ops` applied in order.
fn replay(durable: &BTreeMap<String, Entry>, ops: &[DirOp]) -> BTreeMap<String, Entry> {
    let mut entries = durable.clone();
    for op in ops {
        op.apply_to(&mut entries);
    }
    entries
}

/// A directory: its entries now, its entries on disk, and what happened in between.
#[derive(Default)]
pub(super) struct Dir {
    pub(super) entries: BTreeMap<String, Entry>,
    pub(super) durable: BTreeMap<String, Entry>,
    /// Operations since the last `sync_dir`, oldest first.
    pub(super) pending: Vec<DirOp>,
}

impl Dir {
    /// Performs `op` now and remembers it as not yet durable.
    pub(super) fn apply(&mut self, op: DirOp) {
        op.apply_to(&mut self.entries);
        self.pending.push(op);
    }
}

/// A directory entry.
#[derive(Clone)]
pub(super) enum Entry {
    File(Arc<Inode>),
    Dir,
}

/// One directory operation, replayable on any entry map that had the same history.
pub(super) enum DirOp {
    /// Create a file or directory, or link a file renamed in from another directory.
    Insert(String, Entry),
    Remove(String),
    /// A rename within one directory: a single, atomic journal entry.
    Rename(String, String),
}

impl DirOp {
    fn apply_to(&self, entries: &mut BTreeMap<String, Entry>) {
        match self {
            DirOp::Insert(name, entry) => {
                entries.insert(name.clone(), entry.clone());
            }
            DirOp::Remove(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to) => {
                if let Some(entry) = entries.remove(from) {
                    entries.insert(to.clone(), entry);
                }
            }
        }
    }
}

/// `path` with `.` dropped and `..` resolved lexically, so equal paths compare equal.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The last component of a normalised path, as a directory entry name.
pub(super) fn path_name(path: &Path) -> String {
    normalize(path).components().next_back().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default()
}

/// The normalised parent directory and entry name of a file path.
pub(super) fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let path = normalize(path);
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "not a file path");
    let parent = path.parent().ok_or_else(invalid)?.to_path_buf();
    let name = path.file_name().ok_or_else(invalid)?.to_str().ok_or_else(invalid)?.to_owned();
    Ok((parent, name))
}
