//! Scripted workloads and the checker that decides whether a recovered store is consistent with
//! what was acknowledged. Shared by the simulated crash tests and the kill -9 tests.
//!
//! A workload is one script of operations per thread. Each thread runs its script in order and
//! stops at its first error, so what it got acknowledged is a prefix of its script and at most
//! one operation (the next one) was in flight. Keys written by one thread only are *private*:
//! their recovered state must be exactly the thread's acknowledged prefix, with or without the
//! in-flight operation (which is how batch atomicity is checked). Keys written by several threads
//! are *shared*: the recovered value must be one a thread wrote at or after its own last
//! acknowledged write of that key. Values are unique, so a value never written cannot pass.
#![allow(dead_code, reason = "each test binary uses a different part of the model")]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrocask::{Batch, Options, Store, SyncMode};

pub mod backend;
pub mod parking;

/// Keys and values as the store returns them.
pub type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a thread's script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Puts (`Some`) and deletes (`None`), applied atomically.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Compact,
    /// `Store::sync`: in write-back mode, everything before it is durable once it returns.
    Sync,
}

impl Op {
    /// Performs the operation on `store`.
    pub fn run(&self, store: &Store) -> ferrocask::Result<()> {
        match self {
            Op::Put(k, v) => store.put(k, v),
            Op::Delete(k) => store.delete(k),
            Op::Batch(ops) => {
                let mut batch = Batch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    };
                }
                store.write(batch)
            }
            Op::Compact => store.compact().map(drop),
            Op::Sync => store.sync(),
        }
    }

    /// Whether everything before this operation is durable once it returns, in every sync mode
    /// (a compaction seals, and so syncs, the active segment first).
    fn is_sync_point(&self) -> bool {
        matches!(self, Op::Compact | Op::Sync)
    }

    /// The key/value effects in order (`None` = deleted).
    fn effects(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        match self {
            Op::Put(k, v) => vec![(k.as_slice(), Some(v.as_slice()))],
            Op::Delete(k) => vec![(k.as_slice(), None)],
            Op::Batch(ops) => ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect(),
            Op::Compact | Op::Sync => Vec::new(),
        }
    }
}

/// The project's seeded PRNG (splitmix64), so scripts are the same in every process.
pub use ferrocask::testing::Rng;

/// How to generate one thread's script.
#[derive(Clone, Debug)]
pub struct ScriptSpec {
    pub thread: usize,
    pub ops: usize,
    /// Keys only this thread writes.
    pub private_keys: usize,
    /// Keys every thread with `shared_keys > 0` writes.
    pub shared_keys: usize,
    /// Value lengths are uniform in this range.
    pub value_len: (usize, usize),
    /// Percentages of deletes and batches; the rest are puts.
    pub delete_pct: u64,
    pub batch_pct: u64,
    /// Insert a `Compact` after every this many operations (0 = never).
    pub compact_every: usize,
    /// Insert a `Sync` after every this many operations (0 = never).
    pub sync_every: usize,
    pub seed: u64,
}

impl ScriptSpec {
    /// A single-writer script of puts only.
    pub fn puts(ops: usize, keys: usize, value_len: (usize, usize), seed: u64) -> ScriptSpec {
        ScriptSpec {
            thread: 0,
            ops,
            private_keys: keys,
            shared_keys: 0,
            value_len,
            delete_pct: 0,
            batch_pct: 0,
            compact_every: 0,
            sync_every: 0,
            seed,
        }
    }

    pub fn generate(&self) -> Vec<Op> {
        let mut rng = Rng::new(self.seed ^ (self.thread as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut serial = 0u64;
        let mut script = Vec::with_capacity(self.ops);
        for i in 0..self.ops {
            if self.compact_every > 0 && i > 0 && i % self.compact_every == 0 {
                script.push(Op::Compact);
            }
            if self.sync_every > 0 && i > 0 && i % self.sync_every == 0 {
                script.push(Op::Sync);
            }
            let roll = rng.below(100);
            let op = if roll < self.delete_pct {
                Op::Delete(self.key(&mut rng))
            } else if roll < self.delete_pct + self.batch_pct {
                let len = 2 + rng.below(4);
                let ops = (0..len)
                    .map(|_| {
                        let key = self.key(&mut rng);
                        if rng.below(4) == 0 {
                            (key, None)
                        } else {
                            serial += 1;
                            let value = self.value(&key, serial, &mut rng);
                            (key, Some(value))
                        }
                    })
                    .collect();
                Op::Batch(ops)
            } else {
                let key = self.key(&mut rng);
                serial += 1;
                let value = self.value(&key, serial, &mut rng);
                Op::Put(key, value)
            };
            script.push(op);
        }
        script
    }

    fn key(&self, rng: &mut Rng) -> Vec<u8> {
        let total = (self.private_keys + self.shared_keys) as u64;
        let n = rng.below(total.max(1)) as usize;
        if n < self.private_keys {
            format!("t{}/k{n}", self.thread).into_bytes()
        } else {
            format!("shared/k{}", n - self.private_keys).into_bytes()
        }
    }

    /// A value unique to (thread, serial), padded to a random length in `value_len`.
    fn value(&self, key: &[u8], serial: u64, rng: &mut Rng) -> Vec<u8> {
        let (lo, hi) = self.value_len;
        let len = lo + rng.below((hi - lo + 1) as u64) as usize;
        let mut value = format!("{}#t{}#{serial}#", String::from_utf8_lossy(key), self.thread).into_bytes();
        let fill = b'a' + (serial % 26) as u8;
        value.resize(len.max(value.len()), fill);
        value
    }
}

/// What the threads of a workload got acknowledged: per thread, how many operations of its
/// script (a prefix) returned `Ok`. The operation right after the prefix may have been in flight.
pub struct History<'a> {
    pub scripts: &'a [Vec<Op>],
    pub acked: Vec<usize>,
}

impl History<'_> {
    /// Checks a recovered store's full contents against what was acknowledged.
    pub fn check(&self, recovered: &Map) -> Result<(), String> {
        let writers = self.writers_by_key();
        for key in recovered.keys() {
            if !writers.contains_key(key) {
                return Err(format!("key {} was never written", show(key)));
            }
        }
        for (thread, script) in self.scripts.iter().enumerate() {
            let private: BTreeSet<&[u8]> = writers
                .iter()
                .filter(|(_, w)| w.len() == 1 && w.contains(&thread))
                .map(|(k, _)| k.as_slice())
                .collect();
            self.check_private(thread, script, &private, recovered)?;
        }
        for (key, threads) in writers.iter().filter(|(_, w)| w.len() > 1) {
            self.check_shared(key, threads, recovered.get(key).map(Vec::as_slice))?;
        }
        Ok(())
    }

    /// The write-back rule, for workloads whose keys are all private: each thread's keys hold
    /// the state after some prefix of its script that contains every operation up to its last
    /// acknowledged sync point (and at most the in-flight operation beyond the acknowledged
    /// ones). That rules out losing synced data, losing an earlier write but keeping a later
    /// one, and half a batch.
    pub fn check_write_back(&self, recovered: &Map) -> Result<(), String> {
        let writers = self.writers_by_key();
        if let Some((key, _)) = writers.iter().find(|(_, w)| w.len() > 1) {
            return Err(format!("write-back check needs private keys; {} is shared", show(key)));
        }
        for key in recovered.keys() {
            if !writers.contains_key(key) {
                return Err(format!("key {} was never written", show(key)));
            }
        }
        for (thread, script) in self.scripts.iter().enumerate() {
            let acked = self.acked[thread];
            let synced = script[..acked].iter().rposition(Op::is_sync_point).map_or(0, |i| i + 1);
            let mine = |k: &Vec<u8>| writers.get(k).is_some_and(|w| w.contains(&thread));
            let actual: Map = recovered.iter().filter(|(k, _)| mine(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut state = Map::new();
            for op in &script[..synced] {
                apply(&mut state, op);
            }
            let mut found = state == actual;
            for op in &script[synced..(acked + 1).min(script.len())] {
                if found {
                    break;
                }
                apply(&mut state, op);
                found = state == actual;
            }
            if !found {
                return Err(format!(
                    "thread {thread}: {} is not the state after any prefix of its script between its last \
                     acknowledged sync point (op {synced}) and its in-flight op (op {acked})",
                    show_map(&actual)
                ));
            }
        }
        Ok(())
    }

    fn writers_by_key(&self) -> BTreeMap<Vec<u8>, BTreeSet<usize>> {
        let mut writers: BTreeMap<Vec<u8>, BTreeSet<usize>> = BTreeMap::new();
        for (thread, script) in self.scripts.iter().enumerate() {
            for op in script {
                for (key, _) in op.effects() {
                    writers.entry(key.to_vec()).or_default().insert(thread);
                }
            }
        }
        writers
    }

    /// The thread's private keys must hold exactly the acked prefix's state, or that state with
    /// the in-flight operation applied as a whole.
    fn check_private(&self, thread: usize, script: &[Op], private: &BTreeSet<&[u8]>, got: &Map) -> Result<(), String> {
        let acked = self.acked[thread];
        let restricted =
            |state: Map| -> Map { state.into_iter().filter(|(k, _)| private.contains(k.as_slice())).collect() };
        let mut state = Map::new();
        for op in &script[..acked] {
            apply(&mut state, op);
        }
        let without = restricted(state.clone());
        let actual: Map =
            got.iter().filter(|(k, _)| private.contains(k.as_slice())).map(|(k, v)| (k.clone(), v.clone())).collect();
        if actual == without {
            return Ok(());
        }
        if let Some(in_flight) = script.get(acked) {
            apply(&mut state, in_flight);
            if actual == restricted(state) {
                return Ok(());
            }
        }
        Err(format!(
            "thread {thread}: private keys {} match neither the {acked} acknowledged operations nor those plus the \
             in-flight {:?}; expected {}",
            show_map(&actual),
            script.get(acked).map(short),
            show_map(&without)
        ))
    }

    /// A shared key holds a value some thread wrote at or after its last acknowledged write of
    /// that key (or nothing, if that write was a delete or no write of it was acknowledged).
    fn check_shared(&self, key: &[u8], threads: &BTreeSet<usize>, got: Option<&[u8]>) -> Result<(), String> {
        let mut candidates: Vec<Option<&[u8]>> = Vec::new();
        let mut any_acked = false;
        for &t in threads {
            let script = &self.scripts[t];
            let reachable = &script[..(self.acked[t] + 1).min(script.len())];
            let writes: Vec<(usize, Option<&[u8]>)> = reachable
                .iter()
                .enumerate()
                .flat_map(|(i, op)| op.effects().into_iter().filter(|(k, _)| *k == key).map(move |(_, v)| (i, v)))
                .collect();
            let last_acked = writes.iter().rposition(|(i, _)| *i < self.acked[t]);
            any_acked |= last_acked.is_some();
            candidates.extend(writes[last_acked.unwrap_or(0)..].iter().map(|(_, v)| *v));
        }
        if !any_acked {
            candidates.push(None);
        }
        if candidates.contains(&got) {
            Ok(())
        } else {
            Err(format!(
                "shared key {} holds {:?}, not one of {} allowed values",
                show(key),
                got.map(show),
                candidates.len()
            ))
        }
    }
}

/// Applies an operation's effects to a model state.
pub fn apply(state: &mut Map, op: &Op) {
    for (key, value) in op.effects() {
        match value {
            Some(v) => state.insert(key.to_vec(), v.to_vec()),
            None => state.remove(key),
        };
    }
}

/// Every key and value of the store.
pub fn contents(store: &Store) -> Map {
    store.iter().map(|(k, v)| (k, v.into_vec())).collect()
}

fn show(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() > 24 {
        format!("{}..", &s[..24])
    } else {
        s.into_owned()
    }
}

fn show_map(map: &Map) -> String {
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{}={}", show(k), show(v))).collect();
    format!("{{{}}}", items.join(", "))
}

fn short(op: &Op) -> String {
    match op {
        Op::Put(k, v) => format!("put {}={}", show(k), show(v)),
        Op::Delete(k) => format!("delete {}", show(k)),
        Op::Batch(ops) => format!("batch of {}", ops.len()),
        Op::Compact => "compact".into(),
        Op::Sync => "sync".into(),
    }
}

// ---- options: one base and a few named variations ----

/// The tests' base options: 16 KiB segments (so a few hundred writes roll over), 4 KiB of
/// preallocation, and no automatic compaction (a test compacts when it means to, so nothing runs
/// behind its back). A file that needs more says so with `Options { .., ..options() }`.
pub fn options() -> Options {
    Options { segment_bytes: 16 << 10, preallocate_bytes: 4 << 10, auto_compact: false, ..Options::default() }
}

/// [`options`] with values of at most 4 KiB, a quarter of a segment, so tests roll over and
/// compact often.
pub fn tiny_segments() -> Options {
    Options { value_bytes_max: 4 << 10, ..options() }
}

/// 64 KiB segments (16 KiB preallocated) and values of at most 8 KiB: data spans several
/// segments without hundreds of files.
pub fn small_segments() -> Options {
    Options { segment_bytes: 64 << 10, preallocate_bytes: 16 << 10, value_bytes_max: 8 << 10, ..options() }
}

/// Default-sized segments, no preallocation and no automatic compaction: a segment file ends
/// where its last frame ends, for tests that read or damage files at known offsets.
pub fn unpreallocated() -> Options {
    Options { preallocate_bytes: 0, auto_compact: false, ..Options::default() }
}

/// Write-back syncing whose interval never elapses during a test: what is written becomes
/// durable only at an explicit `Store::sync` (or a roll-over).
pub fn write_back() -> SyncMode {
    SyncMode::Every(Duration::from_secs(3600))
}

// ---- store files, for tests that damage them on purpose ----

/// Segment files of a store directory, ascending by id.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "seg")
}

/// Hint files of a store directory, ascending by id.
pub fn hint_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "hint")
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Copies every file of a store directory (not the lock) into a fresh temporary directory.
pub fn copy_store(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "LOCK") {
            fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

/// Flips one byte of a file.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5A;
    fs::write(path, bytes).unwrap();
}

/// Where the frames of a segment file end: just past its last non-zero byte (every frame ends
/// in a non-zero byte in these tests). Not the file's length: on Windows mapping extends the
/// active segment to a power of two, so zeros follow its frames.
pub fn frames_end(path: &Path) -> u64 {
    fs::read(path).unwrap().iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
}
