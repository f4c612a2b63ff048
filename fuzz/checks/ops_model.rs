//! `ops_model`: structure-aware sequences of puts, deletes, batches, expiring puts, clock ticks,
//! reopens, simulated crashes and compactions against a `HashMap` model, on `SimFs` with tiny
//! segments (many roll-overs, sealed segments, hint files and compactions).
//!
//! After every step the store holds exactly the model's acknowledged state. With
//! `SyncMode::Always` every acknowledged operation is durable, so after a crash (any
//! `CrashMode`, any seed) the reopened store is still exactly the model.

use std::collections::HashMap;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use ferrocask::testing::{CrashMode, SimFs};
use ferrocask::{Batch, Error, ManualClock, Options, Store};

use super::common::{self, Model};

/// Most operations one input runs.
const OPS_MAX: usize = 48;

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Key(u8);

impl Key {
    /// 64 keys: 16 letters in 4 lengths (1, 301, 601 and 901 bytes).
    pub fn bytes(self) -> Vec<u8> {
        vec![b'a' + self.0 % 16; 1 + usize::from(self.0 / 16 % 4) * 300]
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Val {
    len: u16,
    fill: u8,
}

impl Val {
    /// Up to 5000 bytes: three fit in a 16 KiB segment.
    pub fn bytes(self) -> Vec<u8> {
        (0..usize::from(self.len) % 5001).map(|i| self.fill.wrapping_add(i as u8)).collect()
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

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Put(Key, Val),
    Delete(Key),
    Batch(Vec<BatchOp>),
    /// A put that expires `ttl_ms` from now.
    PutTtl(Key, Val, u16),
    /// Moves the clock forward.
    Tick(u16),
    Reopen,
    Crash(Mode, u64),
    Compact,
}

/// Live value and expiry (0 = never) per key.
struct State {
    map: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    clock: Arc<ManualClock>,
}

impl State {
    fn now(&self) -> u64 {
        use ferrocask::Clock;
        self.clock.now_ms()
    }

    fn live(&self) -> Model {
        let now = self.now();
        self.map
            .iter()
            .filter(|(_, (_, exp))| *exp == 0 || *exp > now)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

fn open(fs: &Arc<SimFs>, clock: &Arc<ManualClock>) -> Store {
    let options = Options { clock: clock.clone(), ..common::options() };
    Store::open_on(fs.clone(), &common::dir(), options).expect("the store opens")
}

pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < OPS_MAX && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    ops
}

pub fn check(data: &[u8]) {
    let ops = decode(data);
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(common::NOW_MS));
    let mut state = State { map: HashMap::new(), clock: clock.clone() };
    let mut store = Some(open(&fs, &clock));
    let all_keys: Vec<Vec<u8>> = (0..64).map(|i| Key(i).bytes()).collect();
    for op in ops {
        let s = store.as_ref().expect("open");
        match op {
            Op::Put(k, v) => {
                s.put(k.bytes(), v.bytes()).expect("put");
                state.map.insert(k.bytes(), (v.bytes(), 0));
            }
            Op::PutTtl(k, v, ttl) => {
                s.put_with_ttl(k.bytes(), v.bytes(), std::time::Duration::from_millis(u64::from(ttl)))
                    .expect("put with ttl");
                let expires = state.now() + u64::from(ttl).max(1);
                state.map.insert(k.bytes(), (v.bytes(), expires));
            }
            Op::Delete(k) => {
                s.delete(k.bytes()).expect("delete");
                state.map.remove(&k.bytes());
            }
            Op::Batch(ops) => {
                let mut batch = Batch::new();
                for op in &ops {
                    match *op {
                        BatchOp::Put(k, v) => batch.put(k.bytes(), v.bytes()),
                        BatchOp::Delete(k) => batch.delete(k.bytes()),
                    };
                }
                match s.write(batch) {
                    Ok(()) => {
                        for op in &ops {
                            match *op {
                                BatchOp::Put(k, v) => state.map.insert(k.bytes(), (v.bytes(), 0)),
                                BatchOp::Delete(k) => state.map.remove(&k.bytes()),
                            };
                        }
                    }
                    Err(Error::BatchTooLarge { .. }) => {}
                    Err(e) => panic!("batch failed: {e}"),
                }
            }
            Op::Tick(ms) => clock.advance_ms(u64::from(ms)),
            Op::Reopen => {
                drop(store.take());
                store = Some(open(&fs, &clock));
            }
            Op::Crash(mode, seed) => {
                // Halt first, so the dropped store's last actions (syncs, hint files) are lost
                // with everything else the crash loses.
                fs.halt();
                drop(store.take());
                fs.crash(mode.crash_mode(), seed);
                store = Some(open(&fs, &clock));
            }
            Op::Compact => {
                s.compact().expect("compaction");
            }
        }
        // Expired keys are gone from the model only when read; drop the ones that never come back.
        let now = state.now();
        state.map.retain(|_, (_, exp)| *exp == 0 || *exp > now);
        common::assert_holds(store.as_ref().expect("open"), &state.live(), &all_keys);
    }
}
