//! The nemesis: a seeded schedule of process faults until a deadline, then healing.
//!
//! - kill: SIGKILL one node (the leader, half the time one is known), leave it down a moment,
//!   restart it on the same directory and ports;
//! - pause: SIGSTOP the leader (a random node when no leader is known) for longer than a client's
//!   timeout, then SIGCONT it;
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

/// The faults the nemesis injected, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub kills: u64,
    /// Kills of a node known to be the leader.
    pub leader_kills: u64,
    pub pauses: u64,
    /// Pauses that stopped a node known to be the leader.
    pub leader_pauses: u64,
    pub kill_alls: u64,
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} kill -9 + restart ({} of a known leader), {} SIGSTOP/SIGCONT ({} of a known leader), {} kill -9 of \
             all + restart",
            self.kills, self.leader_kills, self.pauses, self.leader_pauses, self.kill_alls
        )
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Injects faults until `until`, then heals every node (resumed, restarted, answering PING).
pub fn run_nemesis(nodes: &mut Nodes, seed: u64, until: Instant) -> Faults {
    let mut rng = Rng::new(seed);
    let mut faults = Faults::default();
    while Instant::now() < until {
        std::thread::sleep(QUIET_MIN + millis(rng.below(QUIET_SPREAD_MS)));
        match rng.below(100) {
            0..45 => {
                // Half the kills aim at the leader when one is known: the interesting victim.
                let leader = if rng.coin() { nodes.leader() } else { None };
                let victim = leader.unwrap_or_else(|| rng.upto(nodes.len() - 1));
                nodes.kill(victim);
                std::thread::sleep(millis(rng.below(DOWN_MAX_MS)));
                nodes.start(victim);
                nodes.wait_up(victim);
                faults.kills += 1;
                faults.leader_kills += u64::from(leader.is_some());
            }
            45..80 => {
                let leader = nodes.leader();
                let victim = leader.unwrap_or_else(|| rng.upto(nodes.len() - 1));
                nodes.pause(victim);
                std::thread::sleep(PAUSE_MIN + millis(rng.below(PAUSE_SPREAD_MS)));
                nodes.resume(victim);
                faults.pauses += 1;
                faults.leader_pauses += u64::from(leader.is_some());
            }
            _ => {
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
        }
    }
    nodes.heal();
    faults
}
