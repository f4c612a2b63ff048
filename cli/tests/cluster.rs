//! The Raft cluster of `ferrocask serve --node-id --peers`, one adversary per test: a membership
//! change under load, a paused leader, an oversized value, a paused follower behind large
//! entries, a thousand idle clients during an election, a lost quorum, a lone first node, a
//! restart on other ports, Redis's own tools, and a follower's wiped directory. The regressions
//! are the findings of issue 22's review: (1) a write re-sent after a lost reply, (2) an
//! oversized value, (3) large entries to a paused follower, (4) idle client connections during
//! an election; and those of this file: a restart on other ports that was not always refused
//! (the membership was checked before openraft had loaded the log), and a wiped follower that
//! left the leader's Raft panicked behind a live process.
//!
//! Every wait is on a condition with a bound that guards a hang; the figures each test measures
//! (catch-up, election, CLUSTERDOWN times) are printed, never asserted: run with `--nocapture` to
//! see them. `FERROCASK_LIN_KEEP=1` keeps the node directories and logs. Unix only: the tests
//! send SIGKILL, SIGSTOP and SIGCONT.
#![cfg(unix)]

mod lin_common;
mod serve_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lin_common::nodes::{raft_fields, raft_number, Nodes, RaftLayout};
use lin_common::work_dir;

/// How often a waiting test probes again (polling a condition, never a guess at a duration).
const POLL: Duration = Duration::from_millis(20);
/// The bound on an election or a node catching up: generous, it guards a hang on a loaded
/// 2-core machine running debug builds, never a performance figure.
const ELECTION_MAX: Duration = Duration::from_secs(30);
/// A client's reply timeout: above the server's own (forward 5 s, leader wait 1.5 s), so a reply
/// the server gives always arrives before the client gives up.
const REPLY_MAX: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers: clients, waits, INFO raft.

/// What one call got back.
#[derive(Debug)]
enum Answer {
    /// A reply that is not an error.
    Value(redis::Value),
    /// An error reply: its code and detail (`CLUSTERDOWN ...`, `TRYAGAIN ...`, `ERR ...`).
    Error(String),
    /// No reply: an I/O error or the client's timeout; the connection is no longer usable.
    Lost(String),
}

impl Answer {
    fn is_ok(&self) -> bool {
        matches!(self, Answer::Value(redis::Value::Okay))
            || matches!(self, Answer::Value(redis::Value::SimpleString(s)) if s == "OK")
    }

    /// The error reply's text, if it is one.
    fn error(&self) -> Option<&str> {
        match self {
            Answer::Error(text) => Some(text),
            _ => None,
        }
    }
}

/// A client connection to `addr` whose calls time out after `timeout`; `None` if it cannot
/// connect within that.
fn try_connect(addr: SocketAddr, timeout: Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let conn = client.get_connection_with_timeout(timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    conn.set_write_timeout(Some(timeout)).ok()?;
    Some(conn)
}

fn connect(addr: SocketAddr, timeout: Duration) -> redis::Connection {
    try_connect(addr, timeout).unwrap_or_else(|| panic!("connect to {addr} within {timeout:?}"))
}

/// Runs `cmd` on `conn`.
fn call(conn: &mut redis::Connection, cmd: &redis::Cmd) -> Answer {
    match cmd.query::<redis::Value>(conn) {
        Ok(redis::Value::ServerError(e)) => Answer::Error(format!("{} {}", e.code(), e.details().unwrap_or(""))),
        Ok(value) => Answer::Value(value),
        Err(e) => match e.code() {
            Some(code) => Answer::Error(format!("{code} {}", e.detail().unwrap_or(""))),
            None => Answer::Lost(e.to_string()),
        },
    }
}

fn set(key: &str, value: impl redis::ToSingleRedisArg) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    cmd
}

fn get(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    cmd
}

/// GET's value as bytes (`None`: no such key); fails the test on anything else.
fn get_bytes(conn: &mut redis::Connection, key: &str) -> Option<Vec<u8>> {
    match call(conn, &get(key)) {
        Answer::Value(redis::Value::Nil) => None,
        Answer::Value(redis::Value::BulkString(bytes)) => Some(bytes),
        other => panic!("GET {key}: {other:?}"),
    }
}

/// Polls `probe` until it gives a value; fails the test, saying `what`, after `max` (a bound
/// that guards a hang, not a performance assertion).
fn wait_for<T>(what: &str, max: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + max;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {max:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// The node (index) every node of `among` names as leader (`leader_id`), if they agree and it
/// is among them and says `role:leader` itself.
fn agreed_leader(addrs: &[SocketAddr], among: &[usize]) -> Option<usize> {
    let mut ids = BTreeSet::new();
    for &i in among {
        ids.insert(raft_fields(addrs[i])?.get("leader_id")?.clone());
    }
    let [id] = <[String; 1]>::try_from(ids.into_iter().collect::<Vec<_>>()).ok()?;
    let leader = id.parse::<usize>().ok()?.checked_sub(1)?;
    let says = raft_fields(addrs[leader])?.get("role").is_some_and(|role| role == "leader");
    (among.contains(&leader) && says).then_some(leader)
}

fn wait_agreed_leader(addrs: &[SocketAddr], among: &[usize]) -> usize {
    wait_for(&format!("nodes {among:?} to agree on a leader among them"), ELECTION_MAX, || agreed_leader(addrs, among))
}

/// How many of `among` say `role:leader` now.
fn leaders_count(addrs: &[SocketAddr], among: &[usize]) -> usize {
    among
        .iter()
        .filter(|&&i| raft_fields(addrs[i]).is_some_and(|f| f.get("role").is_some_and(|r| r == "leader")))
        .count()
}

/// Each node's role, term and last applied index, for a failure message.
fn roles(addrs: &[SocketAddr]) -> String {
    let each = addrs.iter().enumerate().map(|(i, &addr)| match raft_fields(addr) {
        Some(f) => {
            let field = |name: &str| f.get(name).map_or("?", String::as_str).to_string();
            format!("node {} {} term {} last_applied {}", i + 1, field("role"), field("term"), field("last_applied"))
        }
        None => format!("node {} silent", i + 1),
    });
    each.collect::<Vec<_>>().join("; ")
}

fn number(addr: SocketAddr, field: &str) -> u64 {
    raft_number(addr, field).unwrap_or_else(|| panic!("INFO raft {field} of {addr}"))
}

/// Starts the nodes of `layout` numbered in `which` and waits until each answers PING.
fn start(layout: &RaftLayout, which: &[usize]) -> Nodes {
    let mut nodes = Nodes::unstarted(layout.nodes());
    for &i in which {
        nodes.start(i);
    }
    for &i in which {
        nodes.wait_up(i);
    }
    nodes
}

/// A 3-node cluster, started, with a leader every node agrees on (its index returned).
fn three_nodes(root: &std::path::Path, extra_args: &[&str]) -> (Nodes, usize) {
    let layout = RaftLayout::new(root, 3, 0, extra_args);
    let nodes = start(&layout, &[0, 1, 2]);
    let leader = wait_agreed_leader(&nodes.addrs(), &[0, 1, 2]);
    (nodes, leader)
}

/// Retries `cmd` on `addr` while the answer says it was not applied (TRYAGAIN, CLUSTERDOWN) or
/// the connection is lost, until it is OK; fails after `max`. Returns the attempts.
fn set_until_ok(addr: SocketAddr, key: &str, value: &str, max: Duration) -> usize {
    let mut attempts = 0;
    wait_for(&format!("SET {key} through {addr} to be acknowledged"), max, || {
        attempts += 1;
        let mut conn = try_connect(addr, REPLY_MAX)?;
        match call(&mut conn, &set(key, value)) {
            answer if answer.is_ok() => Some(()),
            Answer::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") => None,
            Answer::Lost(_) => None,
            other => panic!("SET {key} through {addr}: {other:?}"),
        }
    });
    attempts
}

/// Every key of `expected` read through `addr` (MGET in chunks) has its value.
fn assert_all_read(addr: SocketAddr, expected: &[(String, String)], why: &str) {
    let mut conn = connect(addr, REPLY_MAX);
    for chunk in expected.chunks(200) {
        let mut mget = redis::cmd("MGET");
        for (key, _) in chunk {
            mget.arg(key);
        }
        let values: Vec<Option<String>> =
            mget.query(&mut conn).unwrap_or_else(|e| panic!("MGET through {addr} ({why}): {e}"));
        for ((key, value), got) in chunk.iter().zip(values) {
            assert_eq!(got.as_deref(), Some(value.as_str()), "{key} through {addr}: {why}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Membership under load.

/// A client writing distinct keys through one node until stopped, recording what was
/// acknowledged (an error or a lost reply is left out: its key is never checked).
struct Writer {
    stop: StopOnDrop,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    thread: JoinHandle<BTreeMap<String, u64>>,
}

impl Writer {
    fn spawn(addr: SocketAddr, prefix: &'static str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (stop2, acked2) = (Arc::clone(&stop), Arc::clone(&acked));
        let thread = std::thread::spawn(move || {
            let mut failures = BTreeMap::new();
            let mut conn = None;
            let mut n = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let Some(c) = conn.as_mut() else {
                    conn = try_connect(addr, REPLY_MAX);
                    continue;
                };
                n += 1;
                let (key, value) = (format!("{prefix}-{n:06}"), format!("value-{n}"));
                match call(c, &set(&key, value.as_str())) {
                    answer if answer.is_ok() => acked2.lock().unwrap().push((key, value)),
                    answer => {
                        let kind = match &answer {
                            Answer::Error(e) => e.split_whitespace().next().unwrap_or("").to_string(),
                            _ => "lost".into(),
                        };
                        *failures.entry(kind).or_insert(0) += 1;
                        if matches!(answer, Answer::Lost(_)) {
                            conn = None;
                        }
                    }
                }
            }
            failures
        });
        Writer { stop: StopOnDrop(stop), acked, thread }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` writes beyond `from` have been acknowledged.
    fn wait_acked(&self, from: usize, more: usize, why: &str) {
        wait_for(&format!("{more} more acknowledged writes {why}"), ELECTION_MAX, || {
            (self.acked_count() >= from + more).then_some(())
        });
    }

    /// Stops the writer; what it had acknowledged, and its failures by error code.
    fn finish(self) -> (Vec<(String, String)>, BTreeMap<String, u64>) {
        drop(self.stop);
        let failures = self.thread.join().expect("the writer panicked");
        let acked = self.acked.lock().unwrap().clone();
        (acked, failures)
    }
}

/// Adversary: membership changes under load. A writer keeps writing distinct keys through the
/// leader while a 4th node (started with `--join`) is added by `RAFT.NODE ADD` sent to a
/// follower; the log is snapshotted and purged every 50 entries, so the new node must catch up
/// by snapshot. Then a follower that is neither the leader nor the writer's node is removed
/// with `RAFT.NODE REMOVE` sent to the new node. Checker: node 4 has installed a snapshot and
/// applied as far as the leader had, the writes keep being acknowledged through both changes,
/// INFO raft no longer lists the removed node, and every acknowledged write reads back through
/// node 4 and through another remaining node.
#[test]
fn a_node_added_under_load_catches_up_by_snapshot_and_a_removed_one_leaves_no_write_lost() {
    let dir = work_dir();
    let layout = RaftLayout::new(dir.path(), 3, 1, &["--raft-snapshot-every", "50"]);
    let nodes = start(&layout, &[0, 1, 2, 3]);
    let addrs = nodes.addrs();
    let leader = wait_agreed_leader(&addrs, &[0, 1, 2]);
    let writer = Writer::spawn(addrs[leader], "member");

    // The log must have been purged before node 4 asks for it from the start.
    let purged = wait_for("the leader to purge its log behind a snapshot", Duration::from_secs(60), || {
        raft_number(addrs[leader], "purged_index").filter(|&purged| purged > 0)
    });
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let before_add = writer.acked_count();
    let started = Instant::now();
    let mut conn = connect(addrs[follower], Duration::from_secs(120));
    let add = call(&mut conn, redis::cmd("RAFT.NODE").arg("ADD").arg(4).arg(layout.raft_addr(3)));
    assert!(add.is_ok(), "RAFT.NODE ADD 4 through node {}: {add:?}\n{}", follower + 1, nodes.log_of(3));
    let add_time = started.elapsed();
    let target = number(addrs[leader], "last_applied");
    wait_for("node 4 to apply as far as the leader had when it was added", ELECTION_MAX, || {
        (raft_number(addrs[3], "last_applied")? >= target).then_some(())
    });
    let catch_up = started.elapsed();
    let node4 = raft_fields(addrs[3]).expect("INFO raft of node 4");
    assert!(number(addrs[3], "snapshot_index") > 0, "node 4 caught up from a purged log without a snapshot: {node4:?}");
    let leader_now = wait_agreed_leader(&addrs, &[0, 1, 2, 3]);
    let member = raft_fields(addrs[leader_now]).unwrap().get("member_4").cloned().unwrap_or_default();
    assert!(member.contains("kind=voter"), "node 4 is a voter after RAFT.NODE ADD, the leader says {member:?}");
    writer.wait_acked(before_add, 20, "after node 4 was added");

    // Remove a follower that is neither the leader nor the node the writer writes through.
    let removed = (0..3).find(|&i| i != leader && i != leader_now).unwrap();
    let term_before = number(addrs[leader_now], "term");
    let before_remove = writer.acked_count();
    let mut conn = connect(addrs[3], Duration::from_secs(120));
    let remove = call(&mut conn, redis::cmd("RAFT.NODE").arg("REMOVE").arg(removed + 1));
    assert!(remove.is_ok(), "RAFT.NODE REMOVE {} through node 4: {remove:?}", removed + 1);
    writer.wait_acked(before_remove, 20, "after a node was removed");
    assert!(call(&mut conn, &set("after-remove", "yes")).is_ok(), "a SET through node 4 after the removal");

    let remaining: Vec<usize> = (0..4).filter(|&i| i != removed).collect();
    let gone = format!("member_{}", removed + 1);
    wait_for(&format!("every remaining node's INFO raft to drop {gone}"), ELECTION_MAX, || {
        remaining.iter().all(|&i| raft_fields(addrs[i]).is_some_and(|f| !f.contains_key(&gone))).then_some(())
    });
    // The removed node is left running, as an operator might. Hearing no more heartbeats, it
    // stops following; it must not unseat the leader when it campaigns.
    let removed_says = wait_for("the removed node to stop following", ELECTION_MAX, || {
        let fields = raft_fields(addrs[removed]).unwrap_or_default();
        (fields.get("role").map(String::as_str) != Some("follower")).then_some(fields)
    });
    writer.wait_acked(writer.acked_count(), 20, "after the removed node stopped following");
    let (acked, failures) = writer.finish();
    let term_after = number(addrs[leader_now], "term");
    assert_eq!(
        (agreed_leader(&addrs, &remaining), term_after),
        (Some(leader_now), term_before),
        "the leader and term after the removed node stopped following ({})",
        roles(&addrs)
    );
    assert_all_read(addrs[3], &acked, "acknowledged before, during and after the membership changes");
    let other = *remaining.iter().find(|&&i| i != 3).unwrap();
    assert_all_read(addrs[other], &acked, "acknowledged before, during and after the membership changes");
    let field = |fields: &BTreeMap<String, String>, name: &str| fields.get(name).cloned().unwrap_or_default();
    println!(
        "membership: {} writes acknowledged ({failures:?} not); the leader had purged its log to {purged}; RAFT.NODE \
         ADD answered in {add_time:?}, node 4 applied the leader's index {target} after {catch_up:?} (snapshot_index \
         {}); node {} removed (the leader's term {term_before} -> {term_after}; the removed node says role {} term {})",
        acked.len(),
        field(&node4, "snapshot_index"),
        removed + 1,
        field(&removed_says, "role"),
        field(&removed_says, "term"),
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A write is never re-sent after a lost reply (finding 1).

/// What the INCR clients saw.
#[derive(Default)]
struct Counts {
    calls: u64,
    /// The integers INCR returned.
    returned: Vec<i64>,
    /// Errors that promise the call was not applied (TRYAGAIN, CLUSTERDOWN), by code.
    not_applied: BTreeMap<String, u64>,
    /// Calls whose outcome is unknown (an `outcome unknown` error, another error, no reply).
    unknown: BTreeMap<String, u64>,
}

impl Counts {
    fn record(&mut self, answer: Answer) {
        self.calls += 1;
        match answer {
            Answer::Value(redis::Value::Int(n)) => self.returned.push(n),
            Answer::Error(e) if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") => {
                *self.not_applied.entry(e.split_whitespace().next().unwrap().to_string()).or_insert(0) += 1;
            }
            Answer::Error(e) if e.contains("outcome unknown") => {
                *self.unknown.entry("outcome unknown".into()).or_insert(0) += 1
            }
            Answer::Error(e) => *self.unknown.entry(e).or_insert(0) += 1,
            Answer::Lost(_) => *self.unknown.entry("no reply".into()).or_insert(0) += 1,
            Answer::Value(other) => panic!("INCR answered {other:?}"),
        }
    }

    fn failures(&self) -> u64 {
        self.not_applied.values().sum::<u64>() + self.unknown.values().sum::<u64>()
    }
}

/// Adversary: SIGSTOP of the leader while four clients INCR one counter through the two
/// followers, held until a follower's forward to it has failed (its 5 s timeout) and the
/// followers have elected a new leader that acknowledged more INCRs; then SIGCONT. Checker
/// (a counter): the INCR replies are all different (no call applied twice before another's
/// reply), and the final value, read through every node, is at least the acknowledged INCRs and
/// at most those plus the calls whose outcome was unknown: never more than the calls made, and
/// TRYAGAIN / CLUSTERDOWN were not applied.
#[test]
fn an_incr_through_a_follower_is_applied_at_most_once_while_the_leader_is_paused() {
    let dir = work_dir();
    let (mut nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    assert!(call(&mut connect(addrs[leader], REPLY_MAX), &set("counter", 0)).is_ok(), "SET counter 0");

    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let clients: Vec<_> = [followers[0], followers[0], followers[1], followers[1]]
        .into_iter()
        .map(|i| {
            let (addr, stop, counts) = (addrs[i], Arc::clone(&stop.0), Arc::clone(&counts));
            std::thread::spawn(move || {
                let mut conn = None;
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = conn.as_mut() else {
                        conn = try_connect(addr, REPLY_MAX);
                        continue;
                    };
                    let answer = call(c, &redis::cmd("INCR").arg("counter").clone());
                    if matches!(answer, Answer::Lost(_)) {
                        conn = None;
                    }
                    counts.lock().unwrap().record(answer);
                }
            })
        })
        .collect();
    let acked = || counts.lock().unwrap().returned.len();
    let failures = || counts.lock().unwrap().failures();
    wait_for("10 INCRs acknowledged before the pause", ELECTION_MAX, || (acked() >= 10).then_some(()));

    let (paused_at, failures_before) = (Instant::now(), failures());
    nodes.pause(leader);
    let new_leader = wait_agreed_leader(&addrs, &followers);
    let elected = paused_at.elapsed();
    let acked_after_election = acked();
    wait_for("an INCR to fail (the forward to the paused leader)", ELECTION_MAX, || {
        (failures() > failures_before).then_some(())
    });
    wait_for("10 INCRs acknowledged by the new leader", ELECTION_MAX, || {
        (acked() >= acked_after_election + 10).then_some(())
    });
    let paused_for = paused_at.elapsed();
    nodes.resume(leader);

    let healed = wait_for("the resumed node to apply as far as the leader", ELECTION_MAX, || {
        let now = agreed_leader(&addrs, &[0, 1, 2])?;
        (raft_number(addrs[leader], "last_applied")? >= raft_number(addrs[now], "last_applied")?).then_some(now)
    });
    let acked_healed = acked();
    wait_for("10 INCRs acknowledged after healing", ELECTION_MAX, || (acked() >= acked_healed + 10).then_some(()));
    drop(stop);
    for client in clients {
        client.join().expect("an INCR client panicked");
    }

    let counts = counts.lock().unwrap();
    let finals: Vec<i64> = addrs
        .iter()
        .map(|&addr| {
            let text = get_bytes(&mut connect(addr, REPLY_MAX), "counter").expect("the counter exists");
            String::from_utf8(text).unwrap().parse().expect("an integer")
        })
        .collect();
    let value = finals[0];
    assert!(finals.iter().all(|&v| v == value), "the counter read through each node: {finals:?}");
    let unknown: u64 = counts.unknown.values().sum();
    println!(
        "counter: {} INCR calls, {} acknowledged, not applied {:?}, unknown {:?}; final value {value}; leader node {} \
         paused for {paused_for:?}, node {} elected after {elected:?}, node {} leads after healing",
        counts.calls,
        counts.returned.len(),
        counts.not_applied,
        counts.unknown,
        leader + 1,
        new_leader + 1,
        healed + 1
    );
    let distinct: BTreeSet<i64> = counts.returned.iter().copied().collect();
    assert_eq!(distinct.len(), counts.returned.len(), "two INCRs returned the same value");
    let acked = counts.returned.len() as i64;
    assert!(value >= acked, "final {value} < {acked} acknowledged INCRs: an acknowledged INCR was lost");
    assert!(distinct.last().is_none_or(|&max| max <= value), "an INCR returned more than the final value {value}");
    assert!(value <= counts.calls as i64, "final {value} > {} INCR calls: some INCR was applied twice", counts.calls);
    assert!(
        value <= acked + unknown as i64,
        "final {value} > {acked} acknowledged + {unknown} unknown: an INCR answered TRYAGAIN or CLUSTERDOWN (said not \
         applied) was applied, or one was applied twice"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. An oversized value (finding 2).

/// Adversary: a hostile request, `SET` of a 20 MiB value (over the 16 MiB bulk limit), sent to
/// the leader and to a follower. Checker: each gets an error (a reply, or the connection closed
/// for a request over the limit), nothing is stored, the leader is unchanged on every node, and
/// small SETs and GETs work through every node.
#[test]
fn an_oversized_value_is_refused_and_the_cluster_keeps_its_leader_and_serves() {
    let dir = work_dir();
    let (nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let big = vec![b'x'; 20 << 20];
    for (name, i) in [("leader", leader), ("follower", follower)] {
        let mut conn = connect(addrs[i], Duration::from_secs(60));
        let answer = call(&mut conn, &set(&format!("big-{name}"), big.as_slice()));
        assert!(!matches!(answer, Answer::Value(_)), "SET of 20 MiB through the {name} was accepted: {answer:?}");
        println!("oversized: SET of 20 MiB through the {name} (node {}): {answer:?}", i + 1);
    }
    assert_eq!(agreed_leader(&addrs, &[0, 1, 2]), Some(leader), "the leader after the oversized requests");
    for (i, &addr) in addrs.iter().enumerate() {
        let mut conn = connect(addr, REPLY_MAX);
        let key = format!("small-{i}");
        assert!(call(&mut conn, &set(&key, "v")).is_ok(), "SET {key} through node {}", i + 1);
        assert_eq!(get_bytes(&mut conn, &key).as_deref(), Some(&b"v"[..]), "GET {key} through node {}", i + 1);
        for name in ["leader", "follower"] {
            assert_eq!(get_bytes(&mut conn, &format!("big-{name}")), None, "a refused SET stored nothing");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Large entries to a paused follower (finding 3).

/// Values written while the follower is stopped.
const LARGE_VALUES: usize = 12;
const LARGE_VALUE_BYTES: usize = 8 << 20;
/// How long the resumed follower may take to catch up on ~100 MiB of entries (a bound that
/// guards a hang, not a performance figure: a debug build on two busy cores).
const CATCH_UP_MAX: Duration = Duration::from_secs(60);

fn large_value(i: usize) -> Vec<u8> {
    let mut value = vec![b'a' + (i % 26) as u8; LARGE_VALUE_BYTES];
    value[..8].copy_from_slice(&(i as u64).to_be_bytes());
    value
}

/// Adversary: SIGSTOP of a follower while 12 values of 8 MiB are written through the leader
/// (~100 MiB of entries it must then receive), then SIGCONT. Checker: at no poll do two nodes
/// say they lead, the follower applies as far as the leader within a bound, and every value
/// reads back equal through it.
#[test]
fn a_follower_paused_behind_large_entries_catches_up_without_a_second_leader() {
    let dir = work_dir();
    let (mut nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let paused = (0..3).find(|&i| i != leader).unwrap();
    let term_before = number(addrs[leader], "term");
    nodes.pause(paused);
    let mut conn = connect(addrs[leader], Duration::from_secs(60));
    let started = Instant::now();
    for i in 0..LARGE_VALUES {
        let answer = call(&mut conn, &set(&format!("large-{i}"), large_value(i)));
        assert!(answer.is_ok(), "SET large-{i} (8 MiB) through the leader, a follower paused: {answer:?}");
    }
    let written = started.elapsed();
    nodes.resume(paused);
    let resumed = Instant::now();
    let mut most_leaders = 0;
    let mut polls = 0;
    loop {
        polls += 1;
        let leaders = leaders_count(&addrs, &[0, 1, 2]);
        most_leaders = most_leaders.max(leaders);
        let state = || format!("{:.1?} after SIGCONT: {}", resumed.elapsed(), roles(&addrs));
        assert!(leaders <= 1, "{leaders} nodes say they lead at once, {}", state());
        let caught_up = agreed_leader(&addrs, &[0, 1, 2]).and_then(|now| {
            Some(raft_number(addrs[paused], "last_applied")? >= raft_number(addrs[now], "last_applied")?)
        });
        if caught_up == Some(true) {
            break;
        }
        assert!(
            resumed.elapsed() < CATCH_UP_MAX,
            "node {} did not apply as far as the leader within {CATCH_UP_MAX:?}, {}",
            paused + 1,
            state()
        );
        std::thread::sleep(POLL);
    }
    let caught_up = resumed.elapsed();
    let term_after = number(addrs[leader], "term");
    let mut conn = connect(addrs[paused], Duration::from_secs(60));
    for i in 0..LARGE_VALUES {
        let value = get_bytes(&mut conn, &format!("large-{i}"));
        assert!(value == Some(large_value(i)), "large-{i} read through the resumed follower differs");
    }
    println!(
        "large entries: {LARGE_VALUES} x 8 MiB written in {written:?} with node {} paused; it caught up {caught_up:?} \
         after SIGCONT ({polls} polls, at most {most_leaders} leader at once; term {term_before} -> {term_after})",
        paused + 1
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Idle client connections during an election (finding 4).

/// Idle client connections per node: well under the default maxclients (10000).
const IDLE_PER_NODE: usize = 1000;

/// The idle connections per node this process can hold with room to spare for the other
/// tests of the file, which run beside it.
fn idle_per_node() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    let room = (limit.rlim_cur as usize).saturating_sub(1_000) / 3;
    if room < IDLE_PER_NODE {
        println!("idle clients: RLIMIT_NOFILE {} lets this test hold only {room} per node", limit.rlim_cur);
    }
    room.min(IDLE_PER_NODE)
}

/// Adversary: a thousand idle client connections on each node, then SIGKILL of the leader.
/// Checker: the survivors agree on a new leader within a bound, and a SET through each of them
/// is acknowledged.
#[test]
fn a_thousand_idle_clients_per_node_do_not_stop_a_new_leader_being_elected() {
    let dir = work_dir();
    let (mut nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let per_node = idle_per_node();
    let idle: Vec<TcpStream> = addrs
        .iter()
        .flat_map(|&addr| (0..per_node).map(move |_| TcpStream::connect(addr).expect("an idle client connection")))
        .collect();
    for &addr in &addrs {
        wait_for(&format!("{addr} to count {per_node} clients"), ELECTION_MAX, || {
            let mut conn = try_connect(addr, REPLY_MAX)?;
            let info: String = redis::cmd("INFO").arg("clients").query(&mut conn).ok()?;
            let line = info.lines().find_map(|l| l.trim_end().strip_prefix("connected_clients:"))?;
            (line.parse::<usize>().ok()? > per_node).then_some(())
        });
    }
    let killed = Instant::now();
    nodes.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = wait_agreed_leader(&addrs, &survivors);
    let elected = killed.elapsed();
    let mut attempts = Vec::new();
    for &i in &survivors {
        attempts.push(set_until_ok(addrs[i], &format!("after-{i}"), "v", ELECTION_MAX));
    }
    println!(
        "idle clients: {} idle connections ({per_node} per node); node {} elected {elected:?} after the leader's \
         SIGKILL; SET attempts through the survivors {attempts:?}",
        idle.len(),
        new_leader + 1
    );
    drop(idle);
}

// ---------------------------------------------------------------------------------------------
// 6. CLUSTERDOWN.

/// The bound on CLUSTERDOWN after the quorum is lost: the server's own wait is 1.5 s; the old
/// hang was 20 s. Generous, for a loaded machine; the measured time is printed.
const CLUSTERDOWN_MAX: Duration = Duration::from_secs(10);

/// Stops a helper thread's loop when dropped, so a test that fails stops it before its nodes
/// are killed (and the helper's own failure does not hide the test's).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The characters of each kind of error answer the CLUSTERDOWN test prints.
const ANSWER_SHOWN_CHARS: usize = 90;

/// Kills two of three nodes, leaving the leader (`survivor_leads`) or a follower, and checks
/// that SETs on the survivor end in CLUSTERDOWN within the bound while PING, INFO and ROLE
/// keep answering on it.
fn clusterdown_on_a_lone_survivor(survivor_leads: bool) {
    let dir = work_dir();
    let (mut nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let survivor = if survivor_leads { leader } else { (0..3).find(|&i| i != leader).unwrap() };
    let addr = addrs[survivor];
    // The survivor is up to date, so nothing but the lost quorum stands in the way.
    assert!(call(&mut connect(addr, REPLY_MAX), &set("before", "v")).is_ok(), "SET before the kills");

    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let prober = {
        let stop = Arc::clone(&stop.0);
        std::thread::spawn(move || {
            // One connection, made before the kills: what is tested is that the survivor keeps
            // answering these, not how fast it accepts (the file's other tests load the machine).
            let mut conn = connect(addr, CLUSTERDOWN_MAX);
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) {
                let pong: String = redis::cmd("PING").query(&mut conn).expect("PING on the survivor");
                assert_eq!(pong, "PONG");
                let info: String = redis::cmd("INFO").arg("raft").query(&mut conn).expect("INFO raft on the survivor");
                assert!(info.contains("role:"), "INFO raft: {info}");
                let _: redis::Value = redis::cmd("ROLE").query(&mut conn).expect("ROLE on the survivor");
                rounds += 1;
            }
            rounds
        })
    };
    let killed = Instant::now();
    for i in (0..3).filter(|&i| i != survivor) {
        nodes.kill(i);
    }
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let mut conn = connect(addr, CLUSTERDOWN_MAX);
    let mut n = 0;
    let (last_call, answer) = loop {
        n += 1;
        let sent = Instant::now();
        let answer = call(&mut conn, &set(&format!("after-{n}"), "v"));
        let code = match &answer {
            Answer::Error(e) => e.split_whitespace().next().unwrap_or("").to_string(),
            Answer::Lost(e) => panic!(
                "SET on the lone survivor (leader before the kills: {survivor_leads}): no answer within {CLUSTERDOWN_MAX:?} \
                 ({e}); answers before: {answers:?}"
            ),
            other => panic!("SET on a node without a quorum answered {other:?}"),
        };
        assert!(
            code == "CLUSTERDOWN"
                || code == "TRYAGAIN"
                || answer.error().is_some_and(|e| e.contains("outcome unknown")),
            "SET on the lone survivor: {answer:?}"
        );
        *answers.entry(answer.error().unwrap_or_default().chars().take(ANSWER_SHOWN_CHARS).collect()).or_insert(0) += 1;
        if code == "CLUSTERDOWN" {
            break (sent.elapsed(), answer);
        }
        assert!(killed.elapsed() < CLUSTERDOWN_MAX, "no CLUSTERDOWN within {CLUSTERDOWN_MAX:?}: {answers:?}");
    };
    let took = killed.elapsed();
    drop(stop);
    let rounds = prober.join().expect("PING, INFO or ROLE failed on the survivor meanwhile");
    assert!(took < CLUSTERDOWN_MAX, "CLUSTERDOWN only {took:?} after the quorum was lost: {answers:?}");
    println!(
        "clusterdown (survivor {}): {answer:?} {took:?} after the kills (its call {last_call:?}); answers {answers:?}; \
         {rounds} rounds of PING, INFO and ROLE answered meanwhile",
        if survivor_leads { "the leader" } else { "a follower" }
    );
}

/// Adversary: SIGKILL of both followers. Checker: the lone leader answers a SET with
/// CLUSTERDOWN within 10 s (before it, TRYAGAIN or outcome unknown while it still thinks it
/// leads: a write it proposed is not committed), and PING, INFO and ROLE meanwhile.
#[test]
fn a_leader_left_alone_answers_clusterdown_and_still_pings() {
    clusterdown_on_a_lone_survivor(true);
}

/// Adversary: SIGKILL of the leader and the other follower. Checker: as above, on the
/// follower left alone.
#[test]
fn a_follower_left_alone_answers_clusterdown_and_still_pings() {
    clusterdown_on_a_lone_survivor(false);
}

// ---------------------------------------------------------------------------------------------
// 7. Startup.

/// Adversary: the other members not started yet. Checker: node 1 alone answers PING, INFO
/// raft and ROLE at once and a SET with CLUSTERDOWN; once the others start, a SET through it
/// is acknowledged.
#[test]
fn a_first_node_started_alone_answers_at_once_and_writes_once_the_others_start() {
    let dir = work_dir();
    let layout = RaftLayout::new(dir.path(), 3, 0, &[]);
    let mut nodes = start(&layout, &[0]);
    let addr = nodes.addrs()[0];
    let mut conn = connect(addr, Duration::from_secs(5));
    let info: String = redis::cmd("INFO").arg("raft").query(&mut conn).expect("INFO raft on a lone first node");
    assert!(info.contains("node_id:1"), "INFO raft: {info}");
    let role: redis::Value = redis::cmd("ROLE").query(&mut conn).expect("ROLE on a lone first node");
    let mut conn = connect(addr, CLUSTERDOWN_MAX);
    let started = Instant::now();
    let answer = call(&mut conn, &set("alone", "v"));
    let took = started.elapsed();
    assert!(answer.error().is_some_and(|e| e.starts_with("CLUSTERDOWN")), "SET on a node without a quorum: {answer:?}");
    nodes.start(1);
    nodes.start(2);
    let attempts = set_until_ok(addr, "together", "v", ELECTION_MAX);
    println!(
        "startup: alone, ROLE {role:?}; SET answered {answer:?} in {took:?}; acknowledged after {attempts} attempts \
         once the others started"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. A restart on other ports.

/// How long a start refused for its --peers may take to exit (it exits at once; the bound
/// guards one that is not refused and runs on).
const REFUSAL_MAX: Duration = Duration::from_secs(10);

/// Adversary: an operator's mistake, a restart whose --peers gives node 2 another Raft port
/// than the log's membership. Checker: node 1 exits non-zero with a message naming the
/// membership in the log and both addresses; then the right flags start the cluster again.
#[test]
fn a_restart_whose_peers_disagree_with_the_log_is_refused() {
    let dir = work_dir();
    let layout = RaftLayout::new(dir.path(), 3, 0, &[]);
    let mut nodes = start(&layout, &[0, 1, 2]);
    let addrs = nodes.addrs();
    wait_agreed_leader(&addrs, &[0, 1, 2]);
    set_until_ok(addrs[0], "before", "v", ELECTION_MAX);
    for i in 0..3 {
        nodes.kill(i);
    }
    let moved = format!("127.0.0.1:{}", lin_common::nodes::free_ports(1)[0]);
    let peers = format!("1={},2={moved},3={}", layout.raft_addr(0), layout.raft_addr(2));
    let mut child = layout.command(0, &peers).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stderr = child.stderr.take().unwrap();
    // Killed when dropped: a start that is not refused must not outlive a failing test.
    let mut child = serve_common::Served::new(child);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // A refused start exits at once; the bound guards the start that is not refused and runs.
    let deadline = Instant::now() + REFUSAL_MAX;
    let status = loop {
        if let Some(status) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "node 1 restarted with --peers giving node 2 {moved} (the log holds {}) was not refused: still running \
                 after {REFUSAL_MAX:?}; its stderr:\n{}",
                layout.raft_addr(1),
                reader.join().unwrap()
            );
        }
        std::thread::sleep(POLL);
    };
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "a start on other ports than the log's exited {status}; stderr:\n{stderr}");
    let old = layout.raft_addr(1);
    assert!(
        stderr.contains("membership") && stderr.contains(&moved) && stderr.contains(&old),
        "the refusal names the log's membership, {moved} and {old}:\n{stderr}"
    );
    for i in 0..3 {
        nodes.start(i);
    }
    nodes.wait_all_up();
    set_until_ok(addrs[0], "after", "v", ELECTION_MAX);
    let line = stderr.lines().find(|l| l.contains("membership")).unwrap_or_default();
    println!("restart refused ({status}): {line}");
}

// ---------------------------------------------------------------------------------------------
// 9. redis-cli and redis-benchmark.

/// Runs one of Redis's tools (Debian's redis-tools) to completion within `max`; fails, saying
/// how to install them, if they are missing.
fn redis_tool(program: &str, args: &[&str], max: Duration) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}: this test needs Redis's tools: apt-get install redis-tools"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = [
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        }),
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        }),
    ];
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > max {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish within {max:?}");
        }
        std::thread::sleep(POLL);
    };
    let text: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    (status, text.join(""))
}

/// Adversary: clients not written for this server, Redis's own, with 20 connections at once.
/// Checker: `redis-benchmark -t set,get,incr -n 2000 -c 20 -q` exits 0 without an error,
/// through a follower and through the leader, and its counter then holds exactly 2000 INCRs per
/// run; `redis-cli SET` and `GET` work through a follower.
#[test]
fn redis_cli_and_redis_benchmark_work_through_a_follower_and_the_leader() {
    let dir = work_dir();
    let (nodes, leader) = three_nodes(dir.path(), &[]);
    let addrs = nodes.addrs();
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let port = |i: usize| addrs[i].port().to_string();
    let (status, out) = redis_tool("redis-cli", &["-p", &port(follower), "SET", "x", "y"], ELECTION_MAX);
    assert!(status.success() && out.trim() == "OK", "redis-cli SET x y through a follower: {status} {out:?}");
    let (status, out) = redis_tool("redis-cli", &["-p", &port(follower), "GET", "x"], ELECTION_MAX);
    assert!(status.success() && out.trim() == "y", "redis-cli GET x through a follower: {status} {out:?}");

    for (run, (name, i)) in [("follower", follower), ("leader", leader)].into_iter().enumerate() {
        let args = ["-p", &port(i), "-t", "set,get,incr", "-n", "2000", "-c", "20", "-q"];
        // A bound that guards a hang, not a performance figure (6000 requests, debug build).
        let (status, out) = redis_tool("redis-benchmark", &args, Duration::from_secs(120));
        let errors = ["ERR", "Error", "error", "CLUSTERDOWN", "TRYAGAIN"];
        assert!(
            status.success() && !errors.iter().any(|e| out.contains(e)),
            "redis-benchmark through the {name}: {status}\n{out}"
        );
        // -q still draws its progress with carriage returns; the last of each line is the result.
        let results: Vec<&str> = out.lines().filter_map(|line| line.rsplit('\r').next()).collect();
        println!("redis-benchmark through the {name} (node {}): {}", i + 1, results.join("; "));
        let counter = get_bytes(&mut connect(addrs[i], REPLY_MAX), "counter:__rand_int__");
        let expected = (2000 * (run + 1)).to_string();
        assert_eq!(counter.as_deref(), Some(expected.as_bytes()), "every INCR of the benchmarks applied once");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. A follower's disk replaced.

/// Adversary: a replaced disk, SIGKILL of a follower, its directory deleted, and a restart with
/// the same flags (an empty directory, so it starts from nothing). The leader then finds the
/// follower's log behind what it had already matched. Checker: no node is left up answering
/// every command with an error: within a bound each node either acknowledges a SET or exits
/// (fail-stop; it is then restarted, as a supervisor would, and must acknowledge one), and
/// every write acknowledged before reads back through every node.
#[test]
fn a_follower_restarted_on_a_wiped_directory_leaves_no_node_failing_every_command() {
    let dir = work_dir();
    let layout = RaftLayout::new(dir.path(), 3, 0, &[]);
    let mut nodes = start(&layout, &[0, 1, 2]);
    let addrs = nodes.addrs();
    let leader = wait_agreed_leader(&addrs, &[0, 1, 2]);
    let wiped = (0..3).find(|&i| i != leader).unwrap();
    let mut conn = connect(addrs[leader], REPLY_MAX);
    let written: Vec<(String, String)> = (0..20).map(|n| (format!("before-{n}"), format!("v{n}"))).collect();
    for (key, value) in &written {
        assert!(call(&mut conn, &set(key, value.as_str())).is_ok(), "SET {key} before the wipe");
    }
    nodes.kill(wiped);
    std::fs::remove_dir_all(layout.dir(wiped)).expect("delete the follower's directory");
    nodes.start(wiped);
    nodes.wait_up(wiped);

    let mut outcomes = Vec::new();
    for i in 0..3 {
        let mut last = String::new();
        let outcome = wait_for_or(ELECTION_MAX, || {
            if let Some(status) = nodes.exited(i) {
                return Some(format!("exited ({status})"));
            }
            let mut conn = try_connect(addrs[i], REPLY_MAX)?;
            let answer = call(&mut conn, &set(&format!("after-{i}"), "v"));
            last = format!("{answer:?}");
            answer.is_ok().then(|| "acknowledged".to_string())
        });
        let outcome = outcome.unwrap_or_else(|| {
            panic!(
                "node {} (the leader: {}) neither acknowledged a SET nor exited within {ELECTION_MAX:?}; its last \
                 answer: {last}; {}; its first internal error: {:?}\n{}",
                i + 1,
                i == leader,
                roles(&addrs),
                nodes.log_line_with(i, "internal error"),
                nodes.log_of(i)
            )
        });
        if outcome.starts_with("exited") {
            nodes.start(i);
            nodes.wait_up(i);
            set_until_ok(addrs[i], &format!("after-{i}"), "v", ELECTION_MAX);
        }
        outcomes.push(format!("node {}: {outcome}", i + 1));
    }
    for &addr in &addrs {
        assert_all_read(addr, &written, "acknowledged before the follower's directory was wiped");
    }
    println!("wiped follower (node {}, leader node {}): {}", wiped + 1, leader + 1, outcomes.join("; "));
}

/// Polls `probe` until it gives a value, or `None` after `max` (the caller says what failed).
fn wait_for_or<T>(max: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + max;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
