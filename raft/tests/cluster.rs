//! Three nodes in separate processes of the crate's own binary, on real loopback sockets, each on
//! its own directory. Nodes are killed with SIGKILL. Nothing sleeps to synchronise: every wait is
//! on a node's openraft metrics (`Raft::wait`, through the `Wait` request) with a bounded timeout.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferrocask_raft::client::{call_node, Client};
use ferrocask_raft::network::{KvReply, KvRequest, Status};
use ferrocask_raft::process::NodeProcess;

const EXE: &str = env!("CARGO_BIN_EXE_ferrocask-raft");
/// Snapshot (and purge the log) every this many entries, so a restarted node may need one.
const SNAPSHOT_EVERY: u64 = 40;
const WAIT: Duration = Duration::from_secs(15);

fn spawn(dir: &Path, id: u64, listen: &str) -> NodeProcess {
    NodeProcess::spawn(Path::new(EXE), id, &dir.join(format!("node-{id}")), listen, Some(SNAPSHOT_EVERY))
        .expect("node starts")
}

fn start(dir: &Path) -> BTreeMap<u64, NodeProcess> {
    (1..=3).map(|id| (id, spawn(dir, id, "127.0.0.1:0"))).collect()
}

fn addrs(nodes: &BTreeMap<u64, NodeProcess>) -> Vec<String> {
    nodes.values().map(|n| n.addr.clone()).collect()
}

async fn wait(addr: &str, leader_not: Option<u64>, applied_at_least: Option<u64>) -> Status {
    let request =
        KvRequest::Wait { leader_not, leader_known: true, applied_at_least, timeout_ms: WAIT.as_millis() as u64 };
    match call_node(addr, request, WAIT + Duration::from_secs(5)).await.expect("node answers") {
        KvReply::Status(status) => status,
        other => panic!("node {addr} did not reach leader_not={leader_not:?} applied>={applied_at_least:?}: {other:?}"),
    }
}

async fn init(nodes: &BTreeMap<u64, NodeProcess>) -> u64 {
    let members = nodes.values().map(|n| (n.id, n.addr.clone())).collect();
    let first = &nodes[&1].addr;
    let reply = call_node(first, KvRequest::Init { members }, WAIT).await.expect("init answers");
    assert!(matches!(reply, KvReply::Done), "init: {reply:?}");
    wait(first, None, None).await.leader.expect("a leader")
}

/// Writes `keys`, returning the ones acknowledged (a failed write is retried by the client and
/// then counted as unacknowledged).
async fn write(client: &mut Client, keys: std::ops::Range<u32>, acked: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in keys {
        let (key, value) = (format!("key-{i:05}").into_bytes(), format!("value-{i}").into_bytes());
        if client.put(&key, &value).await.is_ok() {
            acked.insert(key, value);
        }
    }
}

async fn dump(addr: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    match call_node(addr, KvRequest::Dump, WAIT).await.expect("dump answers") {
        KvReply::Pairs(pairs) => pairs,
        other => panic!("dump: {other:?}"),
    }
}

/// Waits until every node has applied what the leader has, then checks they hold the same pairs
/// and every acknowledged write.
async fn check_converged(nodes: &BTreeMap<u64, NodeProcess>, leader_addr: &str, acked: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let target = wait(leader_addr, None, None).await.last_applied.expect("the leader applied something");
    let mut contents = Vec::new();
    for node in nodes.values() {
        wait(&node.addr, None, Some(target)).await;
        contents.push(dump(&node.addr).await);
    }
    let reference: BTreeMap<_, _> = contents[0].iter().cloned().collect();
    for (key, value) in acked {
        assert_eq!(reference.get(key), Some(value), "acknowledged {:?} is missing", String::from_utf8_lossy(key));
    }
    for (i, other) in contents.iter().enumerate().skip(1) {
        assert_eq!(&contents[0], other, "node {} differs from node 1", i + 1);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn leader_addr(nodes: &BTreeMap<u64, NodeProcess>, leader: u64) -> String {
    nodes[&leader].addr.clone()
}

#[test]
fn three_node_cluster_survives_leader_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start(dir.path());
    runtime().block_on(async {
        let leader = init(&nodes).await;
        let mut client = Client::new(addrs(&nodes));
        let mut acked = BTreeMap::new();
        write(&mut client, 0..100, &mut acked).await;
        assert_eq!(acked.len(), 100, "a healthy cluster acknowledges every write");

        let killed = nodes.remove(&leader).unwrap();
        let (killed_addr, killed_id) = (killed.addr.clone(), killed.id);
        killed.kill().unwrap();
        let survivor = nodes.values().next().unwrap().addr.clone();
        let new_leader = wait(&survivor, Some(leader), None).await.leader.unwrap();
        assert_ne!(new_leader, leader);

        write(&mut client, 100..200, &mut acked).await;
        assert!(acked.len() > 150, "writes continue under the new leader: {} acknowledged", acked.len());
        assert_eq!(client.get(b"key-00150").await.unwrap().as_deref(), acked.get(&b"key-00150"[..]).map(|v| &v[..]));

        nodes.insert(killed_id, spawn(dir.path(), killed_id, &killed_addr));
        write(&mut client, 200..220, &mut acked).await;
        check_converged(&nodes, &leader_addr(&nodes, new_leader), &acked).await;
        // The leader purged its log behind snapshots, so the restarted node caught up by
        // installing one: its state machine is a later generation than the first.
        let current = std::fs::read_to_string(nodes[&killed_id].dir.join("CURRENT")).unwrap();
        assert_ne!(current.trim(), "0", "the restarted node installed a snapshot");
    });
}

#[test]
fn whole_cluster_restart_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start(dir.path());
    let addrs_before = addrs(&nodes);
    let acked = runtime().block_on(async {
        init(&nodes).await;
        let mut client = Client::new(addrs(&nodes));
        let mut acked = BTreeMap::new();
        write(&mut client, 0..120, &mut acked).await;
        assert_eq!(acked.len(), 120);
        acked
    });
    for node in nodes.into_values() {
        node.kill().unwrap();
    }
    let nodes: BTreeMap<u64, NodeProcess> = addrs_before
        .iter()
        .enumerate()
        .map(|(i, addr)| (i as u64 + 1, spawn(dir.path(), i as u64 + 1, addr)))
        .collect();
    runtime().block_on(async {
        let leader = wait(&nodes[&1].addr, None, None).await.leader.unwrap();
        let mut client = Client::new(addrs(&nodes));
        for (key, value) in &acked {
            assert_eq!(client.get(key).await.unwrap().as_ref(), Some(value), "after restart");
        }
        check_converged(&nodes, &leader_addr(&nodes, leader), &acked).await;
    });
}
