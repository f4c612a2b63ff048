//! `ops_model`: structure-aware sequences of puts, deletes, batches, expiring puts, increments,
//! compare-and-swaps, conditional batches, clock ticks, syncs, reopens, simulated crashes,
//! compactions, injected I/O faults and keyspaces (puts, deletes and drops in a hash and an
//! ordered keyspace, batches across them and the default keyspace) against a `HashMap` model, on `SimFs` with tiny segments
//! (many roll-overs, sealed segments, hint files and compactions), in either sync mode.
//!
//! After every step the store's reads are exactly the model's acknowledged state. A failed
//! operation is allowed only after a fault was armed: a full disk (`DiskFull`) leaves the store
//! writable and the operation without effect; any other failure poisons the store, and every
//! later write must fail until it is reopened. After a reopen or a crash (any `CrashMode`, any
//! seed, possibly in the middle of an operation: `ArmHalt` stops the file system at its nth
//! operation, so a crash can hit a compaction, a roll-over or a hint file half done), the store
//! must hold one of the states the promises allow:
//!
//! * `SyncMode::Always`: the acknowledged state, or it plus the one operation that failed;
//! * `SyncMode::Every`: the state after some prefix of the acknowledged history that contains
//!   everything up to the last completed `sync` or compaction (a suffix may be lost, never a
//!   middle part, never half a batch), or that plus the failed operation;
//! * a clean reopen (no crash) with no fault armed, in either mode: exactly the acknowledged
//!   state, since closing the store syncs it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use ferrocask::format::SEGMENT_BYTES_MIN;
use ferrocask::testing::{CrashMode, Fault, FaultKind, SimFs};
use ferrocask::{Batch, Cas, Clock, Condition, Error, ManualClock, Options, Store, SyncMode, Update};

use super::common::{self, Model};

/// Most operations one input runs.
const OPS_MAX: usize = 48;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Key(u8);

impl Key {
    /// 64 keys: 16 letters in 4 lengths (1, 17, 129 and 513 bytes), short enough that hashing
    /// them stays cheap, long enough (with values) to fill 16 KiB segments in a few writes.
    pub fn bytes(self) -> Vec<u8> {
        let len = [1, 17, 129, 513][usize::from(self.0 / 16 % 4)];
        vec![b'a' + self.0 % 16; len]
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Val {
    len: u16,
    fill: u8,
}

impl Val {
    /// Up to 2000 bytes: seven or eight fit in a 16 KiB segment, so inputs still roll over often.
    pub fn bytes(self) -> Vec<u8> {
        (0..usize::from(self.len) % 2001).map(|i| self.fill.wrapping_add(i as u8)).collect()
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum BatchOp {
    Put(Key, Val),
    Delete(Key),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Mode {
    Nothing,
    Everything,
    Prefix,
    Sectors512,
    Sectors4096,
}

impl Mode {
    fn crash_mode(self) -> CrashMode {
        match self {
            Mode::Nothing => CrashMode::Nothing,
            Mode::Everything => CrashMode::Everything,
            Mode::Prefix => CrashMode::Prefix,
            Mode::Sectors512 => CrashMode::Sectors512,
            Mode::Sectors4096 => CrashMode::Sectors4096,
        }
    }
}

/// What a compare-and-swap expects, or a precondition requires.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Expect {
    /// The key's current state (so the operation applies).
    Current,
    Absent,
    Present,
    /// A value the key most likely does not hold.
    Other(Val),
}

/// A fault for the nth file-system operation from now.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FaultOp {
    NoSpace,
    ShortWrite,
    SyncFails,
    Eio,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Put(Key, Val),
    Delete(Key),
    Batch(Vec<BatchOp>),
    /// A put that expires `ttl_ms` from now.
    PutTtl(Key, Val, u16),
    /// Appends one byte to the key's value through `update` (keeping its expiry).
    Append(Key, u8),
    Cas(Key, Expect, Option<Val>),
    /// Preconditions, then writes, applied together or not at all.
    CondBatch(Vec<(Key, Expect)>, Vec<BatchOp>),
    /// Moves the clock forward.
    Tick(u16),
    Sync,
    Reopen,
    Crash(Mode, u64),
    Compact,
    /// The nth file-system operation from now fails this way.
    ArmFault(FaultOp, u8),
    /// The file system halts at its nth operation from now (power is cut there); every later
    /// operation fails until the next `Crash`.
    ArmHalt(u8),
    /// A put in a keyspace (created on first use).
    KsPut(Space, Key, Val),
    KsDelete(Space, Key),
    /// One batch over the keyspaces and the default keyspace.
    KsBatch(Vec<(Option<Space>, BatchOp)>),
    /// Drops a keyspace (creating it first if needed).
    KsDrop(Space),
}

/// The model's two keyspaces.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The hash keyspace `one`.
    One,
    /// The ordered keyspace `two`.
    Two,
}

/// First byte of a keyspace key in the model's state (never the first byte of a default key,
/// [`Key::bytes`]); then the keyspace's number, then the key. The model's spelling only: the
/// store is reached through handles.
const MODEL_SPACE_BYTE: u8 = 0xff;

impl Space {
    const ALL: [Space; 2] = [Space::One, Space::Two];

    fn name(self) -> &'static str {
        match self {
            Space::One => "one",
            Space::Two => "two",
        }
    }

    fn model_key(self, key: &[u8]) -> Vec<u8> {
        let mut k = vec![MODEL_SPACE_BYTE, self as u8];
        k.extend_from_slice(key);
        k
    }

    fn handle(self, store: &Store) -> ferrocask::Result<ferrocask::Keyspace<'_>> {
        match self {
            Space::One => store.keyspace(self.name()),
            Space::Two => store.ordered_keyspace(self.name()),
        }
    }

    /// The handle if the keyspace exists (reads must not create it: that is a write).
    fn existing(self, store: &Store) -> Option<ferrocask::Keyspace<'_>> {
        store.keyspaces().iter().any(|(n, _)| n == self.name()).then(|| self.handle(store).expect("it exists"))
    }
}

/// Value and expiry (0 = never) per key.
type State = HashMap<Vec<u8>, (Vec<u8>, u64), ByKeyShape>;

/// What reads must return: live keys and their values, borrowed from a [`State`]. Hashed, not
/// ordered: an ordered map compares unequal keys, and libFuzzer's memcmp hook records every
/// unequal comparison (it was 13% of this target's instructions under callgrind).
type Live<'a> = HashMap<&'a [u8], &'a [u8], ByKeyShape>;

/// Hashes the model's keys by their length and first byte, which tell the 64 keys apart
/// ([`Key::bytes`]); equality still compares them whole, so this only makes lookups cheap. The
/// default SipHash over up to 513 bytes per lookup was a fifth of the target's instructions.
#[derive(Clone, Copy, Default)]
struct ByKeyShape;

impl BuildHasher for ByKeyShape {
    type Hasher = KeyShapeHasher;
    fn build_hasher(&self) -> KeyShapeHasher {
        KeyShapeHasher(0)
    }
}

struct KeyShapeHasher(u64);

impl KeyShapeHasher {
    fn mix(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for KeyShapeHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.mix(bytes.len() as u64 ^ u64::from(bytes.first().copied().unwrap_or(0)) << 32);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

struct Run {
    fs: Arc<SimFs>,
    clock: Arc<ManualClock>,
    sync: SyncMode,
    store: Option<Store>,
    /// The acknowledged state.
    acked: State,
    /// States a crash may leave of the acknowledged history: the states since the last durable
    /// point, oldest first, ending with `acked` (write-back); just `acked` (always).
    durable_candidates: Vec<State>,
    /// States with an operation that failed since the last success applied: a failure may
    /// leave its write durable (a failed sync), or not (it failed before writing).
    failed: Vec<State>,
    /// The store answered `Poisoned`: every later write must fail until a reopen.
    poisoned: bool,
    /// A fault is armed or fired since the last reopen: an operation may fail.
    faults_possible: bool,
    /// The file system is halted (or will be): only a crash revives it.
    halted: bool,
}

fn open(fs: &Arc<SimFs>, clock: &Arc<ManualClock>, sync: SyncMode) -> Store {
    // No background thread: every file operation happens on this thread, in input order, so an
    // armed fault always hits the same operation and a finding replays exactly.
    // One-segment compaction runs: `compact()` works through the store run by run, so crashes
    // and faults land between runs and tombstones must be kept for values in later runs.
    // Recycling on (the default, said here because the model relies on it): compactions retire
    // segment files into the pool and roll-overs reuse them, so crashes and faults also land on
    // a reused file's rename, its new header and frames written over an old segment's.
    let options = Options {
        clock: clock.clone(),
        sync,
        background_thread: false,
        recycle_segments: true,
        compaction_input_bytes_max: SEGMENT_BYTES_MIN,
        ..common::options()
    };
    let options = ORDERED_PREFIXES.iter().fold(options, |o, p| o.ordered_prefix(*p));
    Store::open_on(fs.clone(), &common::dir(), options).expect("the store opens")
}

pub fn decode(data: &[u8]) -> (SyncMode, Vec<Op>) {
    let mut u = Unstructured::new(data);
    let sync = match u.arbitrary::<bool>() {
        Ok(true) => SyncMode::Every(Duration::from_secs(3600)),
        _ => SyncMode::Always,
    };
    let mut ops = Vec::new();
    while ops.len() < OPS_MAX && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    (sync, ops)
}

impl Run {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The entries of `state` that reads must return now, borrowed (checked after every step,
    /// so copying the state here would be most of a step's cost).
    fn live<'a>(&self, state: &'a State) -> Live<'a> {
        let now = self.now();
        state.iter().filter(|(_, (_, e))| *e == 0 || *e > now).map(|(k, (v, _))| (k.as_slice(), v.as_slice())).collect()
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }

    fn current(&self, key: &[u8]) -> Option<&(Vec<u8>, u64)> {
        let now = self.now();
        self.acked.get(key).filter(|(_, e)| *e == 0 || *e > now)
    }

    /// Handles a write's outcome: `next` is the state it makes if it applied.
    fn wrote(&mut self, result: ferrocask::Result<()>, next: State) {
        match result {
            Ok(()) => {
                assert!(!self.poisoned, "a poisoned store acknowledged a write");
                // Earlier failures had no effect: a store that still writes was not poisoned,
                // and only a failed sync or write (which poisons) can leave a failed write behind.
                self.failed.clear();
                self.acked = next;
                match self.sync {
                    SyncMode::Always => self.durable_candidates = vec![self.acked.clone()],
                    SyncMode::Every(_) => self.durable_candidates.push(self.acked.clone()),
                }
            }
            Err(e) => {
                self.failed_with(&e);
                if !matches!(e, Error::DiskFull { .. } | Error::Poisoned { .. }) {
                    self.failed.push(next);
                }
            }
        }
    }

    /// Checks that a failure was possible and notes a poisoning.
    fn failed_with(&mut self, e: &Error) {
        if common::tracing() {
            eprintln!("  failed: {e}");
        }
        assert!(self.faults_possible || self.poisoned, "an operation failed with no fault armed: {e}");
        if matches!(e, Error::Poisoned { .. }) {
            self.poisoned = true;
        }
    }

    /// A sync point succeeded: everything acknowledged is durable.
    fn synced(&mut self) {
        assert!(!self.poisoned, "a poisoned store completed a sync or a compaction");
        self.failed.clear();
        self.durable_candidates = vec![self.acked.clone()];
    }

    fn put_state(&self, k: Key, v: Val, expires: u64) -> State {
        let mut next = self.acked.clone();
        next.insert(k.bytes(), (v.bytes(), expires));
        next
    }

    fn apply_batch(&self, state: &mut State, ops: &[BatchOp]) {
        for op in ops {
            match *op {
                BatchOp::Put(k, v) => state.insert(k.bytes(), (v.bytes(), 0)),
                BatchOp::Delete(k) => state.remove(&k.bytes()),
            };
        }
    }

    fn condition(&self, k: Key, e: Expect) -> (Condition, bool) {
        let current = self.current(&k.bytes()).map(|(v, _)| v.clone());
        let condition = match (e, &current) {
            (Expect::Current, Some(v)) => Condition::Equals(v.clone()),
            (Expect::Current, None) | (Expect::Absent, _) => Condition::Absent,
            (Expect::Present, _) => Condition::Present,
            (Expect::Other(v), _) => Condition::Equals(v.bytes()),
        };
        let holds = match &condition {
            Condition::Absent => current.is_none(),
            Condition::Present => current.is_some(),
            Condition::Equals(v) => current.as_ref() == Some(v),
        };
        (condition, holds)
    }

    fn step(&mut self, op: Op) -> Vec<Vec<u8>> {
        let mut touched = Vec::new();
        match op {
            Op::Put(k, v) => {
                let next = self.put_state(k, v, 0);
                let result = self.store().put(k.bytes(), v.bytes());
                self.wrote(result, next);
                touched.push(k.bytes());
            }
            Op::PutTtl(k, v, ttl) => {
                let next = self.put_state(k, v, self.now() + u64::from(ttl).max(1));
                let result = self.store().put_with_ttl(k.bytes(), v.bytes(), Duration::from_millis(u64::from(ttl)));
                self.wrote(result, next);
                touched.push(k.bytes());
            }
            Op::Delete(k) => {
                let mut next = self.acked.clone();
                next.remove(&k.bytes());
                let result = self.store().delete(k.bytes());
                self.wrote(result, next);
                touched.push(k.bytes());
            }
            Op::Batch(ops) => {
                let mut batch = Batch::new();
                for op in &ops {
                    match *op {
                        BatchOp::Put(k, v) => batch.put(k.bytes(), v.bytes()),
                        BatchOp::Delete(k) => batch.delete(k.bytes()),
                    };
                }
                let mut next = self.acked.clone();
                self.apply_batch(&mut next, &ops);
                match self.store().write(batch) {
                    Err(Error::BatchTooLarge { .. }) => {}
                    result => self.wrote(result, next),
                }
            }
            Op::Append(k, byte) => {
                let mut next = self.acked.clone();
                let (mut value, expires) = self.current(&k.bytes()).cloned().unwrap_or_default();
                value.push(byte);
                let expected = value.clone();
                next.insert(k.bytes(), (value, expires));
                let f = move |v: Option<&[u8]>| {
                    let mut v = v.map(<[u8]>::to_vec).unwrap_or_default();
                    v.push(byte);
                    Update::Set(v)
                };
                let result = self.store().update(k.bytes(), f);
                if let Ok(updated) = &result {
                    assert_eq!(updated.current.as_deref(), Some(&expected[..]), "update's result");
                }
                self.wrote(result.map(drop), next);
                touched.push(k.bytes());
            }
            Op::Cas(k, e, new) => {
                let current = self.current(&k.bytes()).cloned();
                let expected = match e {
                    Expect::Current | Expect::Present => current.as_ref().map(|(v, _)| v.clone()),
                    Expect::Absent => None,
                    Expect::Other(v) => Some(v.bytes()),
                };
                let holds = expected == current.as_ref().map(|(v, _)| v.clone());
                let mut next = self.acked.clone();
                if holds {
                    let expires = current.as_ref().map_or(0, |(_, e)| *e);
                    match new {
                        Some(v) => next.insert(k.bytes(), (v.bytes(), expires)),
                        None => next.remove(&k.bytes()),
                    };
                }
                let new_bytes = new.map(Val::bytes);
                let result = self.store().compare_and_swap(k.bytes(), expected.as_deref(), new_bytes.as_deref());
                if let Ok(outcome) = &result {
                    assert_eq!(outcome.is_applied(), holds, "compare-and-swap applied {outcome:?}");
                    if let Cas::Mismatch { current: got } = outcome {
                        let model = current.map(|(v, _)| v);
                        assert_eq!(got.clone().map(|v| v.into_vec()), model, "the mismatch's current value");
                    }
                }
                self.wrote(result.map(drop), next);
                touched.push(k.bytes());
            }
            Op::CondBatch(conditions, ops) => {
                let mut batch = Batch::new();
                let mut holds = true;
                for &(k, e) in &conditions {
                    let (condition, h) = self.condition(k, e);
                    holds &= h;
                    batch.require(k.bytes(), condition);
                }
                for op in &ops {
                    match *op {
                        BatchOp::Put(k, v) => batch.put(k.bytes(), v.bytes()),
                        BatchOp::Delete(k) => batch.delete(k.bytes()),
                    };
                }
                let mut next = self.acked.clone();
                if holds {
                    self.apply_batch(&mut next, &ops);
                }
                match self.store().write_if(batch) {
                    Err(Error::BatchTooLarge { .. }) => {}
                    Ok(applied) => {
                        assert_eq!(applied, holds, "the conditional batch's preconditions");
                        self.wrote(Ok(()), next);
                    }
                    Err(e) => self.wrote(Err(e), next),
                }
            }
            Op::Tick(ms) => self.clock.advance_ms(u64::from(ms)),
            Op::Sync => match self.store().sync() {
                Ok(()) => self.synced(),
                Err(e) => self.failed_with(&e),
            },
            Op::Compact => {
                match self.store().compact() {
                    Ok(_) => self.synced(),
                    Err(e) => self.failed_with(&e),
                }
                return self.all_keys();
            }
            Op::ArmFault(kind, n) => {
                let what = match kind {
                    FaultOp::NoSpace => FaultKind::NoSpace,
                    FaultOp::ShortWrite => FaultKind::ShortWrite,
                    FaultOp::SyncFails => FaultKind::SyncFails,
                    FaultOp::Eio => FaultKind::Eio,
                };
                self.fs.inject(Fault::nth(u64::from(n % 32), what));
                self.faults_possible = true;
            }
            Op::ArmHalt(n) => {
                self.fs.inject(Fault::nth(u64::from(n % 64), FaultKind::Eio).halt());
                self.faults_possible = true;
                self.halted = true;
            }
            Op::Reopen if self.halted => return self.crash(Mode::Everything, 0),
            Op::Reopen => {
                // A clean close loses nothing, in either sync mode (the close syncs): without an
                // armed fault, which the close's own sync or hint files could still meet, the
                // reopened store must hold exactly what was acknowledged.
                let clean = !self.faults_possible;
                drop(self.store.take());
                if common::tracing() {
                    let files: Vec<String> = self
                        .fs
                        .list_all()
                        .iter()
                        .map(|p| format!("{}:{}", p.display(), self.fs.file_len(p).unwrap_or(0)))
                        .collect();
                    eprintln!("  files at the reopen: {files:?}");
                }
                self.fs.clear_faults();
                if clean {
                    self.synced();
                }
                self.reopened();
                return self.all_keys();
            }
            Op::Crash(mode, seed) => return self.crash(mode, seed),
            Op::KsPut(space, k, v) => {
                let mut next = self.acked.clone();
                next.insert(space.model_key(&k.bytes()), (v.bytes(), 0));
                let result = space.handle(self.store()).and_then(|ks| ks.put(k.bytes(), v.bytes()));
                self.wrote(result, next);
            }
            Op::KsDelete(space, k) => {
                let mut next = self.acked.clone();
                next.remove(&space.model_key(&k.bytes()));
                let result = space.handle(self.store()).and_then(|ks| ks.delete(k.bytes()));
                self.wrote(result, next);
            }
            Op::KsBatch(ops) => {
                let mut next = self.acked.clone();
                let built = (|| -> ferrocask::Result<Batch> {
                    let mut batch = Batch::new();
                    for &(space, op) in &ops {
                        let ks = space.map(|s| s.handle(self.store())).transpose()?;
                        let model_key = |k: Key| space.map_or_else(|| k.bytes(), |s| s.model_key(&k.bytes()));
                        match (op, &ks) {
                            (BatchOp::Put(k, v), None) => batch.put(k.bytes(), v.bytes()),
                            (BatchOp::Put(k, v), Some(ks)) => batch.put_in(ks, k.bytes(), v.bytes()),
                            (BatchOp::Delete(k), None) => batch.delete(k.bytes()),
                            (BatchOp::Delete(k), Some(ks)) => batch.delete_in(ks, k.bytes()),
                        };
                        match op {
                            BatchOp::Put(k, v) => next.insert(model_key(k), (v.bytes(), 0)),
                            BatchOp::Delete(k) => next.remove(&model_key(k)),
                        };
                    }
                    Ok(batch)
                })();
                match built.map(|batch| self.store().write(batch)) {
                    Err(e) => self.failed_with(&e),
                    Ok(Err(Error::BatchTooLarge { .. })) => {}
                    Ok(result) => self.wrote(result, next),
                }
                touched.extend(ops.iter().filter(|(s, _)| s.is_none()).map(|(_, op)| match *op {
                    BatchOp::Put(k, _) | BatchOp::Delete(k) => k.bytes(),
                }));
            }
            Op::KsDrop(space) => {
                let mut next = self.acked.clone();
                next.retain(|k, _| !k.starts_with(&[MODEL_SPACE_BYTE, space as u8]));
                let result = space.handle(self.store()).and_then(|ks| ks.store().drop_keyspace(ks.name()));
                self.wrote(result, next);
            }
        }
        touched
    }

    fn crash(&mut self, mode: Mode, seed: u64) -> Vec<Vec<u8>> {
        // Halt first, so the dropped store's last actions (syncs, hint files) are lost with
        // everything else the crash loses.
        self.fs.halt();
        self.count_recycled();
        drop(self.store.take());
        self.fs.clear_faults();
        let files = |fs: &SimFs| -> Vec<String> {
            fs.list_all().iter().map(|p| format!("{}:{}", p.display(), fs.file_len(p).unwrap_or(0))).collect()
        };
        if common::tracing() {
            eprintln!("  files before the crash: {:?}", files(&self.fs));
        }
        self.fs.crash(mode.crash_mode(), seed);
        if common::tracing() {
            eprintln!("  files after the crash: {:?}", files(&self.fs));
        }
        self.reopened();
        self.all_keys()
    }

    /// After a reopen: the store holds one of the allowed states, which becomes the model.
    /// States are compared with their expiries: two states may read alike now and differ later.
    fn reopened(&mut self) {
        let store = open(&self.fs, &self.clock, self.sync);
        let mut got = with_expiries(&store, common::snapshot(&store));
        for space in Space::ALL {
            for (k, v) in space.existing(&store).into_iter().flat_map(|ks| ks.iter().collect::<Vec<_>>()) {
                got.insert(space.model_key(&k), (v.into_vec(), 0));
            }
        }
        let mut candidates = std::mem::take(&mut self.durable_candidates);
        candidates.append(&mut self.failed);
        let now = self.now();
        let allowed: Vec<State> = candidates
            .into_iter()
            .map(|mut s| {
                s.retain(|_, (_, e)| *e == 0 || *e > now);
                s
            })
            .collect();
        if common::tracing() {
            let keys = |m: &State| {
                let mut k: Vec<String> =
                    m.iter().map(|(k, (v, e))| format!("{}x{}={}@{e}", k[0] as char, k.len(), v.len())).collect();
                k.sort();
                k
            };
            eprintln!("  reopened with {:?}", keys(&got));
            for (i, m) in allowed.iter().enumerate() {
                eprintln!("  allowed #{i}: {:?}", keys(m));
            }
        }
        let Some(state) = allowed.into_iter().find(|m| *m == got) else {
            panic!("the reopened store holds {} keys, which is none of the allowed states", got.len())
        };
        self.acked = state;
        self.durable_candidates = vec![self.acked.clone()];
        self.store = Some(store);
        self.poisoned = false;
        self.faults_possible = false;
        self.halted = false;
    }

    /// Adds the store's reused segment files to [`SEGMENTS_RECYCLED`] (before it is dropped).
    fn count_recycled(&self) {
        if let Some(store) = &self.store {
            SEGMENTS_RECYCLED.fetch_add(store.stats().recycled_segments, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn all_keys(&self) -> Vec<Vec<u8>> {
        (0..64).map(|i| Key(i).bytes()).collect()
    }
}

pub fn check(data: &[u8]) {
    let (sync, ops) = decode(data);
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(common::NOW_MS));
    let store = Some(open(&fs, &clock, sync));
    let mut run = Run {
        fs,
        clock,
        sync,
        store,
        acked: State::default(),
        durable_candidates: vec![State::default()],
        failed: Vec::new(),
        poisoned: false,
        faults_possible: false,
        halted: false,
    };
    for op in ops {
        if common::tracing() {
            eprintln!(
                "{op:?} (acked {} keys, {} candidates, poisoned {})",
                run.acked.len(),
                run.durable_candidates.len(),
                run.poisoned
            );
        }
        let probe = run.step(op);
        // Expired keys are gone from every state once read; drop the ones that never come back.
        let now = run.now();
        run.acked.retain(|_, (_, exp)| *exp == 0 || *exp > now);
        let live = run.live(&run.acked);
        assert_reads(run.store(), &live, &probe);
    }
    run.count_recycled();
}

/// Segment files reused as active segments by every `check` in this process so far: the corpus
/// replay (`tests/fuzz_corpus.rs`) asserts that its inputs exercise recycling at all.
pub static SEGMENTS_RECYCLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The store's live keys with their values and expiries (read in one transaction, which writes
/// nothing, so it syncs nothing).
fn with_expiries(store: &Store, live: Model) -> State {
    let keys: Vec<Vec<u8>> = live.keys().cloned().collect();
    let expiries = store
        .transaction(move |tx| {
            keys.iter().map(|k| tx.get_with_expiry(k).map_or(0, |(_, e)| e.unwrap_or(0))).collect::<Vec<_>>()
        })
        .expect("a read-only transaction");
    live.into_iter().zip(expiries).map(|((k, v), e)| (k, (v, e))).collect()
}

/// Prefixes the store keeps in order: every key of one letter, and the longer keys of another
/// (so its 1-byte key, a prefix of them, is outside), to check the ordered set through crashes,
/// faults and compactions.
const ORDERED_PREFIXES: [&[u8]; 2] = [b"a", b"bb"];

/// The store's reads are exactly `model`: iteration (which reads every key it yields back
/// through the index) and `len` agree with it, and `get` of each probed key (the keys the step
/// wrote, or all 64 after a reopen, crash or compaction) is the model's value.
fn assert_reads(store: &Store, all: &Live<'_>, probes: &[Vec<u8>]) {
    let in_default = |k: &&[u8]| k.first() != Some(&MODEL_SPACE_BYTE);
    let model: &Live<'_> = &all.iter().filter(|(k, _)| in_default(k)).map(|(k, v)| (*k, *v)).collect();
    for space in Space::ALL {
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = all
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&[MODEL_SPACE_BYTE, space as u8][..])?.to_vec(), v.to_vec())))
            .collect();
        expected.sort_unstable();
        let Some(ks) = space.existing(store) else {
            assert!(expected.is_empty(), "keyspace {} is missing", space.name());
            continue;
        };
        let mut got: Vec<(Vec<u8>, Vec<u8>)> = ks.iter().map(|(k, v)| (k, v.into_vec())).collect();
        assert_eq!(got.len(), ks.len(), "keyspace {}'s len", space.name());
        if space == Space::Two {
            let ranged: Vec<(Vec<u8>, Vec<u8>)> =
                ks.range::<&[u8], _>(..).expect("ordered").rev().map(|(k, v)| (k, v.into_vec())).collect();
            assert!(ranged.iter().rev().eq(got.iter()), "keyspace two's range(..).rev()");
        } else {
            got.sort_unstable();
        }
        assert_eq!(got, expected, "keyspace {}", space.name());
    }
    let mut seen = HashSet::with_hasher(ByKeyShape);
    for (key, value) in store.iter() {
        assert_eq!(model.get(key.as_slice()).copied(), Some(&*value), "iter yields {key:?}");
        assert!(seen.insert(key), "iter yields a key twice");
    }
    assert_eq!(seen.len(), model.len(), "iter yields every live key");
    assert_eq!(store.len(), model.len(), "len");
    for key in probes {
        assert_eq!(store.get(key).expect("get").as_deref(), model.get(key.as_slice()).copied(), "get({key:?})");
    }
    store.check_ordered_index();
    for prefix in ORDERED_PREFIXES {
        let mut expected: Vec<&[u8]> = model.keys().copied().filter(|k| k.starts_with(prefix)).collect();
        expected.sort_unstable();
        let got = store.range_keys(prefix, Bound::Unbounded, Bound::Unbounded, false, usize::MAX).expect("range_keys");
        assert_eq!(got, expected, "range_keys({prefix:?})");
    }
}
