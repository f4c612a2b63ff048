//! The fault-injection linearizability harness (issue 22): clients run SET, GET, DEL and INCR
//! on a few keys against the nodes a launcher started, a nemesis kills, stops and restarts them,
//! and after healing the recorded history is checked key by key with ferrocask-lincheck's
//! `KvModel`.
//!
//! - [`nodes`]: launchers (one `ferrocask serve`, a Raft cluster) and process control;
//! - [`workload`]: the clients and what they record;
//! - [`nemesis`]: the faults and their schedule;
//! - this module: one run from start to verdict, and its figures.
#![allow(dead_code, reason = "each test uses a different part")]

pub mod nemesis;
pub mod nodes;
pub mod workload;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferrocask_lincheck::models::kv::{KvInput, KvModel, KvOutput};
use ferrocask_lincheck::{check, Report, Verdict};

use nemesis::{run_nemesis, Faults};
use nodes::{Node, Nodes};
use workload::{final_reads, run_client, KvOp, Shared};

/// Clients running at once.
pub const CLIENTS: u64 = 5;
/// The checker's step budget for a whole history (the search counts steps, never time). Key
/// rotation keeps each key's history small: a 30 s run takes well under a million steps (about a
/// second unoptimised); `Undecided` fails the test.
pub const STEP_BUDGET: u64 = 20_000_000;
/// Completed calls the clients must make after healing before they stop, so the history shows
/// the healed system serving (and what it serves is checked).
const HEALED_CALLS: u64 = 200;
/// The longest the harness waits for those calls, or for one final read of a key.
const HEALED_WAIT_MAX: Duration = Duration::from_secs(60);
const FINAL_READ_MAX: Duration = Duration::from_secs(20);

/// The duration of faults: `FERROCASK_SOAK_SECS` if set (a long soak), else `default_secs`.
pub fn fault_duration(default_secs: u64) -> Duration {
    let secs = match std::env::var("FERROCASK_SOAK_SECS") {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("FERROCASK_SOAK_SECS={text:?} is not a whole number")),
        Err(_) => default_secs,
    };
    Duration::from_secs(secs)
}

/// The run's seed: `FERROCASK_LIN_SEED` if set (to replay a schedule), else from the clock, so
/// each CI run plays a different schedule. Printed with the figures.
pub fn seed() -> u64 {
    match std::env::var("FERROCASK_LIN_SEED") {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("FERROCASK_LIN_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// The run's directory (node directories and logs), removed after the test unless
/// `FERROCASK_LIN_KEEP` is set: then it is kept, and its path printed, so a failure's node logs
/// can be read.
pub fn work_dir() -> tempfile::TempDir {
    let keep = std::env::var_os("FERROCASK_LIN_KEEP").is_some();
    let dir = tempfile::Builder::new().prefix("ferrocask-lin-").disable_cleanup(keep).tempdir().unwrap();
    if keep {
        println!("node directories and logs kept in {}", dir.path().display());
    }
    dir
}

/// What a run recorded and did.
pub struct Recorded {
    /// Every call, the final reads last.
    pub history: Vec<KvOp>,
    pub faults: Faults,
    pub keys: usize,
    pub final_reads: usize,
    /// Unknown outcomes by the kind of their error.
    pub unknown_reasons: std::collections::BTreeMap<String, u64>,
    /// Calls refused with an error that promises they were not applied (left out of the history).
    pub refused: std::collections::BTreeMap<String, u64>,
    pub seed: u64,
    pub fault_time: Duration,
}

impl Recorded {
    /// How many SETs with an unknown outcome had their (unique) value returned by a GET: the
    /// faults did leave calls that took effect although their client gave up on them.
    fn unknown_sets_seen(&self) -> usize {
        let read: HashSet<(&str, &str)> = self
            .history
            .iter()
            .filter_map(|op| match (&op.input, op.outcome.output()) {
                (KvInput::Get { key }, Some(KvOutput::Value(Some(value)))) => Some((key.as_str(), value.as_str())),
                _ => None,
            })
            .collect();
        let unknown_sets =
            self.history.iter().filter(|op| op.outcome.returned().is_none()).filter_map(|op| match &op.input {
                KvInput::Set { key, value } => Some((key.as_str(), value.as_str())),
                _ => None,
            });
        unknown_sets.filter(|set| read.contains(set)).count()
    }

    /// The figures of the run, one line.
    pub fn figures(&self) -> String {
        let unknown = self.history.iter().filter(|op| op.outcome.returned().is_none()).count();
        format!(
            "seed {}: {:?} of faults ({}); {} operations on {} keys, {} completed, {} unknown outcomes {:?} ({} of \
             {} unknown SETs seen applied by a read), {} final reads, refused as not applied (left out): {:?}",
            self.seed,
            self.fault_time,
            self.faults,
            self.history.len(),
            self.keys,
            self.history.len() - unknown,
            unknown,
            self.unknown_reasons,
            self.unknown_sets_seen(),
            self.history
                .iter()
                .filter(|op| matches!(op.input, KvInput::Set { .. }) && op.outcome.returned().is_none())
                .count(),
            self.final_reads,
            self.refused,
        )
    }
}

/// Starts `nodes`, runs the clients while the nemesis injects faults for `fault_time`, heals,
/// lets the clients make [`HEALED_CALLS`] more calls, stops them and reads every key once.
pub fn run(nodes: Vec<Node>, fault_time: Duration, seed: u64) -> Recorded {
    let mut nodes = Nodes::start_all(nodes);
    let shared = Shared::new();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (shared, addrs) = (shared.clone(), nodes.addrs());
            std::thread::spawn(move || run_client(id, seed ^ (id + 1).wrapping_mul(0x9E37_79B9), addrs, &shared))
        })
        .collect();
    let faults = run_nemesis(&mut nodes, seed, Instant::now() + fault_time);
    wait_for_healed_calls(&shared, &nodes);
    shared.stop.store(true, Ordering::Relaxed);
    let mut history: Vec<KvOp> = clients.into_iter().flat_map(|c| c.join().expect("a client panicked")).collect();
    let keys = shared.keys.used().len();
    let (reads, final_read) = final_reads(CLIENTS, seed ^ 0xF1A1, nodes.addrs(), &shared, FINAL_READ_MAX);
    assert_eq!(final_read, keys, "every key read once after healing within {FINAL_READ_MAX:?} ({})", nodes.logs());
    history.extend(reads);
    let unknown_reasons = shared.unknown_reasons.lock().unwrap().clone();
    let refused = shared.refused.lock().unwrap().clone();
    Recorded { history, faults, keys, final_reads: final_read, unknown_reasons, refused, seed, fault_time }
}

/// Waits (bounded) until the clients have completed [`HEALED_CALLS`] calls after healing.
fn wait_for_healed_calls(shared: &Arc<Shared>, nodes: &Nodes) {
    let start = shared.completed.load(Ordering::Relaxed);
    let deadline = Instant::now() + HEALED_WAIT_MAX;
    while shared.completed.load(Ordering::Relaxed) < start + HEALED_CALLS {
        assert!(
            Instant::now() < deadline,
            "the healed system completed fewer than {HEALED_CALLS} calls within {HEALED_WAIT_MAX:?} ({})",
            nodes.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks `history` with `KvModel`, printing the verdict, steps and check time.
pub fn check_kv(history: &[KvOp]) -> Report {
    let start = Instant::now();
    let report = check(&KvModel, history, STEP_BUDGET).expect("the recorder's history is well formed");
    let verdict = match &report.verdict {
        Verdict::Linearizable => "linearizable".to_string(),
        Verdict::NotLinearizable(c) => format!("NOT linearizable (partition {})", c.partition),
        Verdict::Undecided { partition } => format!("undecided (partition {partition})"),
    };
    println!("checker: {verdict} in {} steps, {:?}", report.steps, start.elapsed());
    report
}

/// Fails the test unless `recorded` is linearizable, with the counterexample or the partition
/// the budget ran out on.
pub fn assert_linearizable(recorded: &Recorded) {
    println!("{}", recorded.figures());
    // An empty history is linearizable too: a harness that recorded nothing must not pass.
    assert!(recorded.history.iter().any(|op| op.outcome.returned().is_some()), "no call completed");
    let report = check_kv(&recorded.history);
    match &report.verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(counterexample) => panic!(
            "{}\n{}\n(replay the schedule with FERROCASK_LIN_SEED={})",
            recorded.figures(),
            counterexample.explain(&KvModel, &recorded.history),
            recorded.seed
        ),
        Verdict::Undecided { partition } => panic!(
            "the checker ran out of its {STEP_BUDGET} steps on partition {partition} (key {}): no verdict. Lower \
             workload::OPS_PER_KEY or UNKNOWN_PER_KEY, or raise STEP_BUDGET. {}",
            key_of_partition(&recorded.history, *partition),
            recorded.figures()
        ),
    }
}

/// The key of `KvModel`'s partition `partition` (keys in order of first appearance).
fn key_of_partition(history: &[KvOp], partition: usize) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for op in history {
        if !seen.contains(&op.input.key()) {
            seen.push(op.input.key());
        }
    }
    seen.get(partition).map_or_else(|| "?".into(), |k| k.to_string())
}
