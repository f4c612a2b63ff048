//! The nemesis: a seeded schedule of process faults until a deadline, then healing. Faults come
//! in shuffled rounds of two kills, two pauses and one kill of all.
//!
//! - kill: SIGKILL one node (the leader, half the time one is known), leave it down a moment,
//!   restart it on the same directory and ports;
//! - pause: SIGSTOP the leader (a random node when no leader is known) for longer than a client's
//!   timeout, then SIGCONT it (one time in four SIGKILL it instead, and restart it);
//! - kill all: SIGKILL every node at once, then restart them all.
//!
//! The sleeps here are the schedule of faults (how long a node stays down or stopped, how long
//! the system runs healthy between faults), never a wait for something to happen: each restart
//! is followed by a bounded wait until the node answers PING.

use std::fmt;
use std::time::{Duration, Instant};

use ferrocask::testing::Rng;

use super::nodes::Nodes;

/// Healthy time between two faults: `QUIET_MIN` plus up to `QUIET_SPREAD`.
const QUIET_MIN: Duration = Duration::from_millis(300);
const QUIET_SPREAD_MS: u64 = 1_200;
/// How long a killed node stays down: up to this.
const DOWN_MAX_MS: u64 = 600;
/// How long a node stays stopped: `PAUSE_MIN` (beyond a client's timeout) plus up to this.
const PAUSE_MIN: Duration = Duration::from_millis(1_200);
const PAUSE_SPREAD_MS: u64 = 1_800;
/// One pause in this many ends in SIGKILL instead of SIGCONT.
const PAUSE_KILLED_ONE_IN: u64 = 4;

/// The faults the nemesis injected, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub kills: u64,
    /// Kills of a node known to be the leader.
    pub leader_kills: u64,
    pub pauses: u64,
    /// Pauses that stopped a node known to be the leader.
    pub leader_pauses: u64,
    /// Pauses ended by SIGKILL (and a restart) instead of SIGCONT.
    pub pauses_killed: u64,
    pub kill_alls: u64,
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} kill -9 + restart ({} of a known leader), {} SIGSTOP ({} of a known leader; {} ended by kill -9, the \
             rest by SIGCONT), {} kill -9 of all + restart",
            self.kills, self.leader_kills, self.pauses, self.leader_pauses, self.pauses_killed, self.kill_alls
        )
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A kind of fault.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill,
    Pause,
    KillAll,
}

/// One round of the schedule, shuffled each time: every kind occurs in every round, so even a
/// short run plays each (a 30 s run plays about three rounds).
const ROUND: [Fault; 5] = [Fault::Kill, Fault::Kill, Fault::Pause, Fault::Pause, Fault::KillAll];

/// Injects faults until `until`, then heals every node (resumed, restarted, answering PING).
pub fn run_nemesis(nodes: &mut Nodes, seed: u64, until: Instant) -> Faults {
    let mut rng = Rng::new(seed);
    let mut faults = Faults::default();
    let mut round = Vec::new();
    while Instant::now() < until {
        if round.is_empty() {
            round = ROUND.to_vec();
            shuffle(&mut round, &mut rng);
        }
        std::thread::sleep(QUIET_MIN + millis(rng.below(QUIET_SPREAD_MS)));
        match round.pop().expect("refilled above") {
            Fault::Kill => kill_one(nodes, &mut rng, &mut faults),
            Fault::Pause => pause_one(nodes, &mut rng, &mut faults),
            Fault::KillAll => kill_all(nodes, &mut rng, &mut faults),
        }
    }
    nodes.heal();
    faults
}

/// Fisher-Yates.
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.upto(i));
    }
}

/// SIGKILL of one node (the leader half the time one is known: the interesting victim), down a
/// moment, restarted and answering PING.
fn kill_one(nodes: &mut Nodes, rng: &mut Rng, faults: &mut Faults) {
    let leader = if rng.coin() { nodes.leader() } else { None };
    let victim = leader.unwrap_or_else(|| rng.upto(nodes.len() - 1));
    nodes.kill(victim);
    std::thread::sleep(millis(rng.below(DOWN_MAX_MS)));
    nodes.start(victim);
    nodes.wait_up(victim);
    faults.kills += 1;
    faults.leader_kills += u64::from(leader.is_some());
}

/// SIGSTOP of the leader (a random node when none is known) past a client's timeout, then
/// SIGCONT; one time in [`PAUSE_KILLED_ONE_IN`], SIGKILL instead (a hung process killed by its
/// supervisor: requests it had not read yet are lost) and a restart.
fn pause_one(nodes: &mut Nodes, rng: &mut Rng, faults: &mut Faults) {
    let leader = nodes.leader();
    let victim = leader.unwrap_or_else(|| rng.upto(nodes.len() - 1));
    nodes.pause(victim);
    std::thread::sleep(PAUSE_MIN + millis(rng.below(PAUSE_SPREAD_MS)));
    if rng.below(PAUSE_KILLED_ONE_IN) == 0 {
        nodes.kill(victim);
        nodes.start(victim);
        nodes.wait_up(victim);
        faults.pauses_killed += 1;
    } else {
        nodes.resume(victim);
    }
    faults.pauses += 1;
    faults.leader_pauses += u64::from(leader.is_some());
}

/// SIGKILL of every node, down a moment, all restarted and answering PING.
fn kill_all(nodes: &mut Nodes, rng: &mut Rng, faults: &mut Faults) {
    for victim in 0..nodes.len() {
        nodes.kill(victim);
    }
    std::thread::sleep(millis(rng.below(DOWN_MAX_MS)));
    for victim in 0..nodes.len() {
        nodes.start(victim);
    }
    nodes.wait_all_up();
    faults.kill_alls += 1;
}
