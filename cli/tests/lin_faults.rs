//! Linearizability under process faults (issue 22), Jepsen's way.
//!
//! - Adversary (nemesis): SIGKILL of one node (the leader, half the time one is known) and its
//!   restart on the same directory and ports; SIGSTOP of the leader (any node when none is
//!   known) for longer than a client's timeout, then SIGCONT (or, one time in four, SIGKILL and a
//!   restart); SIGKILL of every node at once, then a restart of all. A seeded schedule in shuffled
//!   rounds of two kills, two pauses and one kill of all, 0.3 to 1.5 s of health between faults.
//! - Workload: 5 clients, each with its own connections, on 3 contended key slots (rotated to
//!   fresh keys as histories grow), SET of unique values (integers and text), GET, DEL and INCR,
//!   each call to a random node; a call that errors or times out (1 s) has an unknown outcome.
//! - Checker: ferrocask-lincheck's `KvModel`, per key, with unknown outcomes possibly applied at
//!   any time after their invoke; after healing every key is read once more.
//!
//! `FERROCASK_SOAK_SECS=N` runs N seconds of faults instead of the default; `FERROCASK_LIN_SEED`
//! replays a schedule; `FERROCASK_LIN_KEEP=1` keeps the node directories and logs. Run with
//! `--nocapture` to see the figures. Unix only: the nemesis sends signals.
#![cfg(unix)]

mod lin_common;
mod serve_common;

use ferrocask_lincheck::models::kv::{KvInput, KvModel, KvOutput};
use ferrocask_lincheck::{Outcome, Verdict};
use lin_common::nodes::{independent_nodes, raft_cluster, single_node};
use lin_common::workload::KvOp;
use lin_common::{assert_linearizable, check_kv, fault_duration, run, seed, work_dir};

/// Seconds of faults per run by default: at least 30 per CI run, the whole single-node test
/// within about 40.
const FAULT_SECS: u64 = 30;

/// The single-node server (write-through, `appendfsync always`) under kill -9, pause and
/// restart must already be linearizable: what it acknowledged survives, and no read goes back.
#[test]
fn single_node_serve_is_linearizable_under_kill_9_and_pause() {
    let dir = work_dir();
    let recorded = run(single_node(dir.path()), fault_duration(FAULT_SECS), seed());
    assert_linearizable(&recorded);
}

/// The same adversary, workload and checker against a 3-node Raft cluster started by the
/// cluster flags of `serve` (`--node-id`, `--peers`), pausing the leader.
#[test]
fn three_node_cluster_is_linearizable_under_kill_9_pause_and_kill_all() {
    let dir = work_dir();
    let recorded = run(raft_cluster(dir.path(), 3), fault_duration(FAULT_SECS), seed());
    assert_linearizable(&recorded);
}

/// The checker is not blind to what this harness records: a real history from a short faulty
/// run is linearizable, and each of two one-operation corruptions of it is not.
#[test]
fn the_checker_rejects_a_real_history_with_a_stale_read_or_a_forged_write() {
    let dir = work_dir();
    let recorded = run(single_node(dir.path()), std::time::Duration::from_secs(5), seed());
    println!("{}", recorded.figures());
    assert_eq!(check_kv(&recorded.history).verdict, Verdict::Linearizable, "the real history");

    let stale = with_stale_read(&recorded.history).expect("a GET after two acknowledged SETs of its key");
    let Verdict::NotLinearizable(counterexample) = check_kv(&stale).verdict else {
        panic!("a GET corrupted to return an overwritten value must not be linearizable")
    };
    println!("{}", counterexample.explain(&KvModel, &stale));

    let forged = with_forged_write(&recorded.history).expect("a GET of a value an acknowledged SET wrote");
    assert!(
        matches!(check_kv(&forged).verdict, Verdict::NotLinearizable(_)),
        "an acknowledged SET corrupted to another value, whose old value a GET read, must not be linearizable"
    );
}

/// The harness sees a real system that is not linearizable: three unreplicated servers posing
/// as a cluster, each call to a random one, so reads miss writes made on the others.
#[test]
fn three_unreplicated_servers_posing_as_a_cluster_are_not_linearizable() {
    let dir = work_dir();
    let recorded = run(independent_nodes(dir.path(), 3), std::time::Duration::from_secs(3), seed());
    println!("{}", recorded.figures());
    assert!(
        matches!(check_kv(&recorded.history).verdict, Verdict::NotLinearizable(_)),
        "calls spread over three stores that share nothing must not look like one store"
    );
}

/// The completed value of `op` if it is a `SET` that was acknowledged.
fn acked_set(op: &KvOp) -> Option<(&str, &str, u64)> {
    match (&op.input, &op.outcome) {
        (KvInput::Set { key, value }, Outcome::Ok { returned, .. }) => Some((key, value, *returned)),
        _ => None,
    }
}

/// `history` with one completed GET made to return a value overwritten before it began: SET
/// `w` acknowledged, then SET `x` invoked and acknowledged, then the GET invoked. Values are
/// unique and INCR cannot reach one from another, so only the first SET ever held `w`.
fn with_stale_read(history: &[KvOp]) -> Option<Vec<KvOp>> {
    for first in history {
        let Some((key, w, first_returned)) = acked_set(first) else { continue };
        let overwrites = history.iter().filter(|op| op.invoke > first_returned).filter_map(acked_set);
        let Some((_, _, second_returned)) = overwrites.filter(|&(k, x, _)| k == key && x != w).min_by_key(|s| s.2)
        else {
            continue;
        };
        let get = history.iter().position(|op| {
            matches!(&op.input, KvInput::Get { key: k } if k == key)
                && op.invoke > second_returned
                && matches!(&op.outcome, Outcome::Ok { output: KvOutput::Value(v), .. } if v.as_deref() != Some(w))
        });
        if let Some(get) = get {
            let mut corrupted = history.to_vec();
            let Outcome::Ok { output, .. } = &mut corrupted[get].outcome else { unreachable!() };
            *output = KvOutput::Value(Some(w.to_string()));
            return Some(corrupted);
        }
    }
    None
}

/// `history` with one acknowledged SET, whose value a completed GET read, made to write another
/// value instead: the GET then saw a value nobody wrote.
fn with_forged_write(history: &[KvOp]) -> Option<Vec<KvOp>> {
    let read = |op: &KvOp| match (&op.input, &op.outcome) {
        (KvInput::Get { key }, Outcome::Ok { output: KvOutput::Value(Some(v)), .. }) => Some((key.clone(), v.clone())),
        _ => None,
    };
    let reads: Vec<(String, String)> = history.iter().filter_map(read).collect();
    let set = history
        .iter()
        .position(|op| acked_set(op).is_some_and(|(k, v, _)| reads.iter().any(|(rk, rv)| rk == k && rv == v)))?;
    let mut corrupted = history.to_vec();
    let KvInput::Set { value, .. } = &mut corrupted[set].input else { unreachable!() };
    *value = "forged".to_string();
    Some(corrupted)
}
