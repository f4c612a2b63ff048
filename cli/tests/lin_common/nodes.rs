//! The nodes under test: how each is started (a launcher returns one [`Node`] per process), and
//! the process control the nemesis plays with (SIGKILL and a restart on the same directory and
//! ports, SIGSTOP and SIGCONT).
//!
//! A node is up when it answers PING; every wait for that is bounded and fails the test with the
//! node's log path when the bound is passed.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferrocask::testing::Rng;

use crate::serve_common::command_on;

/// How long a (re)started node may take to answer PING before the test fails.
pub const UP_WAIT_MAX: Duration = Duration::from_secs(30);
/// Connect and reply timeouts of the harness's own probes (PING, INFO raft).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a waiting harness probes again (polling a condition, not a guess at a duration).
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// One process of the system under test, as a launcher describes it.
pub struct Node {
    /// Its name in the report.
    pub name: String,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Builds the command that starts it: the same directory and ports every time, so a restart
    /// is the same node. Its stdout and stderr are set by the harness.
    pub launch: Box<dyn Fn() -> Command + Send + Sync>,
    /// Where its stderr goes, appended across restarts.
    pub log: PathBuf,
}

/// Loopback ports free when asked, all different (held together while they are chosen), and
/// below the kernel's ephemeral range: a node keeps its port across restarts, and while it is
/// down an outgoing connection (a client's, or another node's) could otherwise be given that
/// port as its local one and make the restart's bind fail.
///
/// A port is handed out once per test process: tests running in parallel each start their own
/// nodes, and a port one test picked but has not bound yet (or whose node is down) is free to
/// the kernel, so another test could otherwise pick it too.
pub fn free_ports(count: usize) -> Vec<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ephemeral_low = ephemeral_range_low();
    let mut rng = Rng::new(u64::from(std::process::id()) ^ time_seed());
    let mut held: Vec<std::net::TcpListener> = Vec::new();
    for _ in 0..PORT_TRIES_MAX {
        if held.len() == count {
            break;
        }
        let port = PORT_LOW + u16::try_from(rng.below(u64::from(ephemeral_low - PORT_LOW))).expect("a port");
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    handed_out.extend(held.iter().map(|listener| listener.local_addr().unwrap().port()));
    assert_eq!(held.len(), count, "{count} free ports in {PORT_LOW}..{ephemeral_low} after {PORT_TRIES_MAX} tries");
    held.iter().map(|listener| listener.local_addr().unwrap().port()).collect()
}

/// Some bits that differ between runs, so concurrent test processes try different ports.
fn time_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.as_nanos() as u64
}

/// The lowest port the harness picks (above the well-known and most registered services').
const PORT_LOW: u16 = 20_000;
/// Random ports tried before [`free_ports`] gives up.
const PORT_TRIES_MAX: usize = 1_000;

/// The first port of the kernel's ephemeral range (Linux's default when it cannot be read, and
/// never at or below [`PORT_LOW`]).
fn ephemeral_range_low() -> u16 {
    const LINUX_DEFAULT: u16 = 32_768;
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low = text.split_whitespace().next().and_then(|word| word.parse().ok()).unwrap_or(LINUX_DEFAULT);
    if low > PORT_LOW + 1_000 {
        low
    } else {
        LINUX_DEFAULT
    }
}

/// The launcher of one `ferrocask serve` without cluster flags, serving `root/node-1`.
pub fn single_node(root: &Path) -> Vec<Node> {
    independent_nodes(root, 1)
}

/// The launcher of `count` separate `ferrocask serve` processes without cluster flags, node N
/// serving `root/node-N`: a "cluster" that replicates nothing, so a history of calls spread
/// over its nodes is not linearizable (what the harness must be able to see).
pub fn independent_nodes(root: &Path, count: usize) -> Vec<Node> {
    let ports = free_ports(count);
    (0..count)
        .map(|i| {
            let (id, port) = (i + 1, ports[i]);
            let dir = root.join(format!("node-{id}"));
            Node {
                name: format!("node {id}"),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                launch: Box::new(move || command_on(&dir, port)),
                log: root.join(format!("node-{id}.log")),
            }
        })
        .collect()
}

/// The launcher of a `size`-node Raft cluster in the lead's CLI (issue 22): node N serves
/// `root/node-N` on its own client port and Raft port, and every node is given the whole
/// membership with `--peers`, so empty directories bootstrap it on first start.
///
/// `ferrocask serve --dir DIR --port PORT --node-id N --peers 1=127.0.0.1:R1,2=127.0.0.1:R2,...`
pub fn raft_cluster(root: &Path, size: usize) -> Vec<Node> {
    RaftLayout::new(root, size, 0, &[]).nodes()
}

/// The ports, directories and flags of a Raft cluster: `founders` nodes that bootstrap the
/// membership of nodes 1..=founders, and `joiners` more (nodes founders+1..) started with
/// `--join`, which wait for `RAFT.NODE ADD` (see [`RaftLayout::raft_addr`] for the address to
/// add them with). Every node is started with `extra_args` too (e.g. `--raft-snapshot-every`).
#[derive(Clone)]
pub struct RaftLayout {
    pub root: PathBuf,
    pub founders: usize,
    pub client_ports: Vec<u16>,
    pub raft_ports: Vec<u16>,
    pub extra_args: Vec<String>,
}

impl RaftLayout {
    /// Picks the ports of `founders + joiners` nodes.
    pub fn new(root: &Path, founders: usize, joiners: usize, extra_args: &[&str]) -> RaftLayout {
        let size = founders + joiners;
        let ports = free_ports(2 * size);
        let (client_ports, raft_ports) = ports.split_at(size);
        RaftLayout {
            root: root.to_path_buf(),
            founders,
            client_ports: client_ports.to_vec(),
            raft_ports: raft_ports.to_vec(),
            extra_args: extra_args.iter().map(|arg| arg.to_string()).collect(),
        }
    }

    /// Node `i`'s (from 0) Raft address, as `--peers` and `RAFT.NODE ADD` name it.
    pub fn raft_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.raft_ports[i])
    }

    /// Node `i`'s directory.
    pub fn dir(&self, i: usize) -> PathBuf {
        self.root.join(format!("node-{}", i + 1))
    }

    /// The founders' `--peers`: `1=127.0.0.1:R1,...`.
    pub fn founders_peers(&self) -> String {
        let peers: Vec<String> = (0..self.founders).map(|i| format!("{}={}", i + 1, self.raft_addr(i))).collect();
        peers.join(",")
    }

    /// The command that starts node `i` with `--peers peers` (and `--join` if it is a joiner).
    pub fn command(&self, i: usize, peers: &str) -> Command {
        let mut command = command_on(&self.dir(i), self.client_ports[i]);
        command.args(["--node-id", &(i + 1).to_string(), "--peers", peers]);
        if i >= self.founders {
            command.arg("--join");
        }
        command.args(&self.extra_args);
        command
    }

    /// One launcher per node: a founder with the founders' `--peers`, a joiner with those and
    /// its own entry.
    pub fn nodes(&self) -> Vec<Node> {
        (0..self.client_ports.len())
            .map(|i| {
                let mut peers = self.founders_peers();
                if i >= self.founders {
                    peers = format!("{peers},{}={}", i + 1, self.raft_addr(i));
                }
                let layout = self.clone();
                Node {
                    name: format!("node {}", i + 1),
                    addr: SocketAddr::from(([127, 0, 0, 1], self.client_ports[i])),
                    launch: Box::new(move || layout.command(i, &peers)),
                    log: self.root.join(format!("node-{}.log", i + 1)),
                }
            })
            .collect()
    }
}

/// A node's process, if running, and whether it is stopped (SIGSTOP).
struct Proc {
    child: Option<Child>,
    paused: bool,
}

/// The running nodes. Dropping them kills every process, so a failed test leaves none behind.
pub struct Nodes {
    nodes: Vec<Node>,
    procs: Vec<Proc>,
}

impl Nodes {
    /// Starts every node and waits until each answers PING.
    pub fn start_all(nodes: Vec<Node>) -> Nodes {
        let procs = nodes.iter().map(|_| Proc { child: None, paused: false }).collect();
        let mut running = Nodes { nodes, procs };
        for i in 0..running.len() {
            running.start(i);
        }
        running.wait_all_up();
        running
    }

    /// The nodes, none started yet (start each with [`Nodes::start`], wait with
    /// [`Nodes::wait_up`]).
    pub fn unstarted(nodes: Vec<Node>) -> Nodes {
        let procs = nodes.iter().map(|_| Proc { child: None, paused: false }).collect();
        Nodes { nodes, procs }
    }

    /// Whether node `i`'s process is running (stopped or not).
    pub fn is_running(&self, i: usize) -> bool {
        self.procs[i].child.is_some()
    }

    /// Node `i`'s exit status if its process has exited by itself (it is then reaped, and may
    /// be started again); `None` while it runs.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let status = self.procs[i].child.as_mut()?.try_wait().expect("try_wait")?;
        self.procs[i] = Proc { child: None, paused: false };
        Some(status)
    }

    /// The first line of node `i`'s log that contains `needle`, for a failure message.
    pub fn log_line_with(&self, i: usize, needle: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.nodes[i].log).ok()?;
        text.lines().find(|line| line.contains(needle)).map(str::to_string)
    }

    /// Node `i`'s log, for a failure message.
    pub fn log_of(&self, i: usize) -> String {
        format!("{}'s log ends:\n{}", self.nodes[i].name, log_tail(&self.nodes[i].log))
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Where clients connect, node by node.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.addr).collect()
    }

    /// Each node's name and log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(|n| format!("{}: {}", n.name, n.log.display())).collect::<Vec<_>>().join("; ")
    }

    /// Starts node `i`'s process (it must not be running); does not wait for it.
    pub fn start(&mut self, i: usize) {
        assert!(self.procs[i].child.is_none(), "{} is already running", self.nodes[i].name);
        let node = &self.nodes[i];
        let log = OpenOptions::new().create(true).append(true).open(&node.log).expect("open the node's log");
        let child = (node.launch)().stdout(Stdio::null()).stderr(log).spawn().expect("spawn the node");
        self.procs[i] = Proc { child: Some(child), paused: false };
    }

    /// SIGKILLs node `i` (stopped or not: SIGKILL needs no SIGCONT) and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.procs[i].child.take().unwrap_or_else(|| panic!("{} is not running", self.nodes[i].name));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap the killed node");
        self.procs[i].paused = false;
    }

    /// SIGSTOPs node `i`: its sockets stay open and nothing it holds is released.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, libc::SIGSTOP);
        self.procs[i].paused = true;
    }

    /// SIGCONTs node `i`.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, libc::SIGCONT);
        self.procs[i].paused = false;
    }

    fn signal(&self, i: usize, signal: libc::c_int) {
        let child = self.procs[i].child.as_ref().unwrap_or_else(|| panic!("{} is not running", self.nodes[i].name));
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) on our own child, which has not been reaped, so the pid is still its.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}): {}", std::io::Error::last_os_error());
    }

    /// Resumes every stopped node, starts every dead one, and waits until all answer PING.
    pub fn heal(&mut self) {
        for i in 0..self.len() {
            if self.procs[i].child.is_none() {
                self.start(i);
            } else if self.procs[i].paused {
                self.resume(i);
            }
        }
        self.wait_all_up();
    }

    /// Waits until every node answers PING.
    pub fn wait_all_up(&mut self) {
        for i in 0..self.len() {
            self.wait_up(i);
        }
    }

    /// Waits until node `i` answers PING; fails the test if it exits or takes longer than
    /// [`UP_WAIT_MAX`].
    pub fn wait_up(&mut self, i: usize) {
        let deadline = Instant::now() + UP_WAIT_MAX;
        loop {
            if ping(self.nodes[i].addr) {
                return;
            }
            let node = &self.nodes[i];
            let child = self.procs[i].child.as_mut().unwrap_or_else(|| panic!("{} is not running", node.name));
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("{} exited ({status}) before answering PING; its log ends:\n{}", node.name, log_tail(&node.log));
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer PING within {UP_WAIT_MAX:?}; its log ends:\n{}",
                node.name,
                log_tail(&node.log)
            );
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// The node that says (INFO raft) it is the leader, among those running and not stopped;
    /// `None` if none does (an election, or a server without cluster mode).
    pub fn leader(&self) -> Option<usize> {
        (0..self.len()).find(|&i| {
            let proc = &self.procs[i];
            proc.child.is_some() && !proc.paused && info_raft(self.nodes[i].addr).is_some_and(|info| says_leader(&info))
        })
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for proc in &mut self.procs {
            if let Some(child) = &mut proc.child {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The last lines of a node's log (it lives in the test's temporary directory, which is gone
/// once the test has failed).
fn log_tail(log: &Path) -> String {
    const TAIL_LINES: usize = 20;
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// A connection for the harness's probes, with every timeout bounded.
fn probe_connection(addr: SocketAddr) -> Option<redis::Connection> {
    let client = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let conn = client.get_connection_with_timeout(PROBE_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    Some(conn)
}

/// Whether the node at `addr` answers PING with PONG now.
pub fn ping(addr: SocketAddr) -> bool {
    let Some(mut conn) = probe_connection(addr) else { return false };
    redis::cmd("PING").query::<String>(&mut conn).is_ok_and(|reply| reply == "PONG")
}

/// `INFO raft`'s text, `None` if the node does not answer it.
pub fn info_raft(addr: SocketAddr) -> Option<String> {
    let mut conn = probe_connection(addr)?;
    redis::cmd("INFO").arg("raft").query::<String>(&mut conn).ok()
}

/// `INFO raft`'s `field:value` lines as a map (`member_<id>` lines included), `None` if the node
/// does not answer.
pub fn raft_fields(addr: SocketAddr) -> Option<std::collections::BTreeMap<String, String>> {
    let text = info_raft(addr)?;
    Some(
        text.lines()
            .filter_map(|line| line.trim_end().split_once(':'))
            .map(|(field, value)| (field.to_string(), value.to_string()))
            .collect(),
    )
}

/// One numeric field of `INFO raft` (e.g. `last_applied`), `None` if the node does not answer
/// or has no such number.
pub fn raft_number(addr: SocketAddr, field: &str) -> Option<u64> {
    raft_fields(addr)?.get(field)?.parse().ok()
}

/// Whether an `INFO raft` text has the line `role:leader`.
fn says_leader(info: &str) -> bool {
    info.lines().any(|line| line.trim_end() == "role:leader")
}

#[test]
fn only_a_role_leader_line_of_info_raft_names_the_leader() {
    assert!(says_leader("# Raft\r\nrole:leader\r\nnode_id:1\r\nleader_id:1\r\n"));
    assert!(!says_leader("# Raft\r\nrole:follower\r\nnode_id:2\r\nleader_id:1\r\n"));
    assert!(!says_leader("# Raft\r\nrole:candidate\r\nnode_id:3\r\nleader_id:0\r\n"));
    assert!(!says_leader(""), "a server without cluster mode names no leader");
}
