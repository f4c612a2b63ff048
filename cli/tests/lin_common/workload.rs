//! The workload: clients running SET, GET, DEL and INCR on a few contended keys against random
//! nodes, each call recorded with its invoke and completion times on one monotonic clock.
//!
//! A call that errors (other than INCR's two definite errors) or times out has an unknown
//! outcome: it may have taken effect or not, and the client goes on with a new call on a new
//! connection. A call whose connection could not even be opened was never sent, so it is not
//! recorded at all.
//!
//! Keys rotate: a key slot moves to a fresh key once its key has had [`OPS_PER_KEY`] calls or
//! [`UNKNOWN_PER_KEY`] unknown outcomes, so each key's history stays small enough for the
//! checker (unknown calls stay pending forever and are what makes the search expensive).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocask::testing::Rng;
use ferrocask_lincheck::models::kv::{KvInput, KvOutput};
use ferrocask_lincheck::{Operation, Time};

/// A recorded call.
pub type KvOp = Operation<KvInput, KvOutput>;

/// Contended key slots (each a series of keys, see [`Keys`]).
pub const KEY_SLOTS: usize = 3;
/// Calls on one key before its slot moves on.
pub const OPS_PER_KEY: u64 = 200;
/// Unknown outcomes on one key before its slot moves on.
pub const UNKNOWN_PER_KEY: u64 = 6;
/// Connect timeout and per-reply timeout of a client: a stopped node yields unknown outcomes
/// after this long instead of a hang.
pub const CLIENT_TIMEOUT: Duration = Duration::from_millis(3000);
/// How long a client waits before trying again when no connection could be opened (a node
/// down): pacing, so a refused connect does not spin.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);
/// Each SET writes a unique value: `client * VALUE_CLIENT_STRIDE + n * VALUE_WRITE_STRIDE` in
/// decimal, so INCR applies to it, and fewer than `VALUE_WRITE_STRIDE` INCRs on one key can
/// never turn one client's value into another's.
const VALUE_CLIENT_STRIDE: u64 = 1_000_000_000;
const VALUE_WRITE_STRIDE: u64 = 1_000;
const _: () = assert!(OPS_PER_KEY < VALUE_WRITE_STRIDE, "INCRs on one key cannot reach the next written value");

/// The one clock of a history: nanoseconds since the run began.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> Time {
        u64::try_from(self.0.elapsed().as_nanos()).expect("a run shorter than 584 years")
    }
}

/// One key slot's current key: its generation, and what it has had.
#[derive(Default)]
struct Slot {
    generation: u64,
    ops: u64,
    unknown: u64,
}

/// The key slots, shared by the clients.
#[derive(Default)]
pub struct Keys {
    slots: [Mutex<Slot>; KEY_SLOTS],
    /// Every key ever used, in order (the final reads read each).
    used: Mutex<Vec<String>>,
}

impl Keys {
    /// The key slot `slot` is on now, counting one more call on it.
    fn take(&self, slot: usize) -> (String, u64) {
        let mut s = self.slots[slot].lock().unwrap();
        if s.ops >= OPS_PER_KEY || s.unknown >= UNKNOWN_PER_KEY {
            *s = Slot { generation: s.generation + 1, ops: 0, unknown: 0 };
        }
        s.ops += 1;
        let key = format!("k{slot}:{}", s.generation);
        if s.ops == 1 {
            self.used.lock().unwrap().push(key.clone());
        }
        (key, s.generation)
    }

    /// Counts an unknown outcome on slot `slot`'s key of generation `generation`.
    fn note_unknown(&self, slot: usize, generation: u64) {
        let mut s = self.slots[slot].lock().unwrap();
        if s.generation == generation {
            s.unknown += 1;
        }
    }

    /// Every key used so far.
    pub fn used(&self) -> Vec<String> {
        self.used.lock().unwrap().clone()
    }
}

/// A client's connections, one per node, each opened when first needed and dropped after an
/// error (a killed or stopped node leaves it unusable).
pub struct Client {
    pub id: u64,
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<redis::Connection>>,
}

/// How one call went.
pub enum Call {
    /// Never sent: no connection could be opened.
    NotSent,
    /// The reply, mapped to the model's.
    Replied(KvOutput),
    /// An error or a timeout: the call may or may not have taken effect. The reason's kind.
    Unknown(String),
    /// An error that promises the call was not applied (`TRYAGAIN`, `CLUSTERDOWN`): left out
    /// of the history, as if never sent. If the promise were false, the write's unique value
    /// read later would have no SET to explain it, and the checker would say so.
    Refused(String),
}

impl Client {
    pub fn new(id: u64, addrs: Vec<SocketAddr>) -> Client {
        let conns = addrs.iter().map(|_| None).collect();
        Client { id, addrs, conns }
    }

    /// Runs `input` on node `node`.
    pub fn call(&mut self, node: usize, input: &KvInput) -> Call {
        if self.conns[node].is_none() {
            match connect(self.addrs[node]) {
                Some(conn) => self.conns[node] = Some(conn),
                None => return Call::NotSent,
            }
        }
        let conn = self.conns[node].as_mut().expect("connected");
        let call = match command(input).query::<redis::Value>(conn) {
            Ok(value) => to_output(input, value),
            Err(error) if matches!(error.code(), Some("TRYAGAIN" | "CLUSTERDOWN")) => {
                Call::Refused(error.code().unwrap_or_default().to_string())
            }
            Err(error) => definite_error(input, &error).map_or_else(|| Call::Unknown(reason(&error)), Call::Replied),
        };
        if matches!(call, Call::Unknown(_)) {
            self.conns[node] = None;
        }
        call
    }
}

/// A connection to `addr` whose connect and every reply are bounded by [`CLIENT_TIMEOUT`].
fn connect(addr: SocketAddr) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let conn = client.get_connection_with_timeout(CLIENT_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(CLIENT_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT)).ok()?;
    Some(conn)
}

fn command(input: &KvInput) -> redis::Cmd {
    match input {
        KvInput::Set { key, value } => redis::cmd("SET").arg(key).arg(value).clone(),
        KvInput::Get { key } => redis::cmd("GET").arg(key).clone(),
        KvInput::Del { key } => redis::cmd("DEL").arg(key).clone(),
        KvInput::Incr { key } => redis::cmd("INCR").arg(key).clone(),
    }
}

/// Maps a successful reply to the model's exactly. A reply of a shape the command never has
/// panics: the server broke the protocol, which no checker verdict should hide.
fn to_output(input: &KvInput, value: redis::Value) -> Call {
    use redis::Value;
    let output = match (input, value) {
        (KvInput::Set { .. }, Value::Okay) => KvOutput::Ok,
        (KvInput::Get { .. }, Value::Nil) => KvOutput::Value(None),
        (KvInput::Get { .. }, Value::BulkString(bytes)) => {
            KvOutput::Value(Some(String::from_utf8(bytes).expect("only text values are written")))
        }
        (KvInput::Del { .. }, Value::Int(n)) => KvOutput::Deleted(u64::try_from(n).expect("DEL counts from 0")),
        (KvInput::Incr { .. }, Value::Int(n)) => KvOutput::Integer(n),
        (input, value) => panic!("{input:?} replied {value:?}, which that command never replies"),
    };
    Call::Replied(output)
}

/// INCR's two errors are definite replies (nothing changed); every other error is not.
fn definite_error(input: &KvInput, error: &redis::RedisError) -> Option<KvOutput> {
    if !matches!(input, KvInput::Incr { .. }) || error.code() != Some("ERR") {
        return None;
    }
    match error.detail() {
        Some("value is not an integer or out of range") => Some(KvOutput::NotAnInteger),
        Some("increment or decrement would overflow") => Some(KvOutput::Overflow),
        _ => None,
    }
}

/// The kind of an error that leaves a call's outcome unknown, for the figures: a timeout, a lost
/// connection, or a server error by its code (`CLUSTERDOWN`, say).
fn reason(error: &redis::RedisError) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connection_dropped() || error.is_io_error() {
        "connection lost".into()
    } else if let Some(code) = error.code() {
        format!("-{code}")
    } else {
        format!("{:?}", error.kind())
    }
}

/// What the clients share.
pub struct Shared {
    pub clock: Clock,
    pub keys: Keys,
    pub stop: AtomicBool,
    /// Calls that returned, over all clients (the harness waits on it after healing).
    pub completed: AtomicU64,
    /// Unknown outcomes by the kind of their error (see [`reason`]).
    pub unknown_reasons: Mutex<BTreeMap<String, u64>>,
    /// Calls refused with an error that promises they were not applied, by its code.
    pub refused: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            clock: Clock::new(),
            keys: Keys::default(),
            stop: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            unknown_reasons: Mutex::default(),
            refused: Mutex::default(),
        })
    }
}

/// A client's random next command on slot `slot`'s current key; `writes` numbers its SETs.
fn next_input(rng: &mut Rng, client: u64, key: String, writes: &mut u64) -> KvInput {
    match rng.below(100) {
        0..40 => KvInput::Get { key },
        40..70 => {
            *writes += 1;
            // One SET in four writes text, so INCR also meets values that are not integers.
            let value = if rng.below(4) == 0 {
                format!("c{client}-w{writes}")
            } else {
                ((client + 1) * VALUE_CLIENT_STRIDE + *writes * VALUE_WRITE_STRIDE).to_string()
            };
            KvInput::Set { key, value }
        }
        70..90 => KvInput::Incr { key },
        _ => KvInput::Del { key },
    }
}

/// Runs client `id` until `shared.stop`, each call on a random node and key slot; returns its
/// history.
pub fn run_client(id: u64, seed: u64, addrs: Vec<SocketAddr>, shared: &Shared) -> Vec<KvOp> {
    let mut rng = Rng::new(seed);
    let mut client = Client::new(id, addrs);
    let (mut history, mut writes) = (Vec::new(), 0);
    while !shared.stop.load(Ordering::Relaxed) {
        let node = rng.upto(client.addrs.len() - 1);
        let slot = rng.upto(KEY_SLOTS - 1);
        let (key, generation) = shared.keys.take(slot);
        let input = next_input(&mut rng, id, key, &mut writes);
        let invoke = shared.clock.now();
        match client.call(node, &input) {
            Call::NotSent => std::thread::sleep(RECONNECT_PAUSE),
            Call::Refused(code) => *shared.refused.lock().unwrap().entry(code).or_default() += 1,
            Call::Replied(output) => {
                history.push(Operation::ok(id, input, invoke, output, shared.clock.now()));
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            Call::Unknown(reason) => {
                *shared.unknown_reasons.lock().unwrap().entry(reason).or_default() += 1;
                shared.keys.note_unknown(slot, generation);
                history.push(Operation::unknown(id, input, invoke));
            }
        }
    }
    history
}

/// After healing: one GET of every key used, from a random node, retried (each try recorded)
/// until it returns, for at most `limit` per key. Returns the calls and how many keys were read.
pub fn final_reads(id: u64, seed: u64, addrs: Vec<SocketAddr>, shared: &Shared, limit: Duration) -> (Vec<KvOp>, usize) {
    let mut rng = Rng::new(seed);
    let mut client = Client::new(id, addrs);
    let (mut history, mut read) = (Vec::new(), 0);
    for key in shared.keys.used() {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let input = KvInput::Get { key: key.clone() };
            let invoke = shared.clock.now();
            match client.call(rng.upto(client.addrs.len() - 1), &input) {
                Call::NotSent => std::thread::sleep(RECONNECT_PAUSE),
                Call::Refused(code) => *shared.refused.lock().unwrap().entry(code).or_default() += 1,
                Call::Unknown(reason) => {
                    *shared.unknown_reasons.lock().unwrap().entry(reason).or_default() += 1;
                    history.push(Operation::unknown(id, input, invoke));
                }
                Call::Replied(output) => {
                    history.push(Operation::ok(id, input, invoke, output, shared.clock.now()));
                    read += 1;
                    break;
                }
            }
        }
    }
    (history, read)
}
