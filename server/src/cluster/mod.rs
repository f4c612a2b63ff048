//! The second executor of the command layer: a cluster member runs the same commands through an
//! openraft log (the `ferrocask-raft` crate) instead of straight on its store.
//!
//! A session parses and checks a command as on a single node, then hands it here (see
//! `Session::handle`). Here it is routed, in the order the session hands commands in:
//!
//! * this node leads: a write goes to the **proposer**, which puts every write waiting at that
//!   moment into one Raft entry (batching at the door: one log append, one fsync and one
//!   replication round for all of them), with the time the leader fixes for the entry; a read
//!   goes to the **reader**, which confirms leadership once for every read waiting at that moment
//!   (openraft's read index, `ensure_linearizable`) and then runs them on the applied state;
//! * another node leads: the command goes to the **forwarder**, which sends every command waiting
//!   for that leader in one request on the leader's Raft port; the leader runs them as its own;
//! * no leader is known: the command waits up to [`LEADER_WAIT`] for one, then fails with
//!   `CLUSTERDOWN`.
//!
//! The state machine runs each command of an entry with `apply::ServerApply`: the same handlers
//! as a single node, in a store transaction at the entry's time. Nothing is ever re-sent: a
//! command whose outcome this node cannot know (a lost leader, a lost reply) is answered with an
//! error that says so. DESIGN.md, "The cluster", has the whole protocol and its crash cases.

pub(crate) mod apply;
pub(crate) mod wire;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrocask_raft::network::{AdminRequest, CallError, Connection, Forwarded, Message, Published, Reply as RaftReply};
use ferrocask_raft::node::{Node, Service};
use ferrocask_raft::{NodeId, Raft, Request};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::ServerState;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::db::Db;
use crate::reply::Reply;
use wire::{decode_reply, encode_reply, Command};

/// How long a command waits for a leader to be elected before it fails with `CLUSTERDOWN`:
/// the election timeout's upper end (2 s) and half a second more for the election itself.
pub const LEADER_WAIT: Duration = Duration::from_millis(ferrocask_raft::node::ELECTION_TIMEOUT_MS.1 + 500);
/// The most bytes of commands one Raft entry carries (a single larger command, up to the
/// request limit, goes alone). Bounds an AppendEntries message together with openraft's entry
/// count per message, and what one apply holds in memory.
pub const ENTRY_BYTES_MAX: usize = 4 << 20;
/// Entries the proposer has handed to Raft and not yet seen applied. While this many are in
/// flight, writes gather at the door for the next entry.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 2;
/// How long a follower waits for the leader's answer to forwarded commands.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// A leader that has not heard from a quorum for this long takes no new commands (they wait for
/// a leader, then fail with `CLUSTERDOWN`): longer than an election timeout, so a leader that is
/// only slow keeps its place.
pub const QUORUM_ACK_MAX_MS: u64 = ferrocask_raft::node::ELECTION_TIMEOUT_MS.1;
/// How long a proposed write waits to be committed and applied before its outcome is reported
/// unknown (a leader that lost its quorum after proposing it may never commit it).
pub const COMMIT_WAIT: Duration = Duration::from_secs(3);

/// The most bytes of published messages (channel and message) waiting to be sent to one other
/// member; past it a message is not sent to that member (and a log line says so), so a slow or
/// unreachable member costs bounded memory and never slows PUBLISH.
pub const PUBLISH_QUEUE_BYTES_MAX: usize = 32 << 20;
/// How long a member has to acknowledge a batch of published messages before the batch is
/// given up (best effort: they are not sent again).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// The error for a command whose outcome this node cannot know.
fn unknown(why: impl std::fmt::Display) -> Reply {
    Reply::error(format!("ERR outcome unknown ({why}): the command may or may not have been applied"))
}

/// The error for a command that surely did not run.
fn tryagain(why: impl std::fmt::Display) -> Reply {
    Reply::error(format!("TRYAGAIN {why}; the command was not applied"))
}

fn clusterdown() -> Reply {
    Reply::error(format!(
        "CLUSTERDOWN The cluster is down: no leader within {} ms (is a majority of nodes running?)",
        LEADER_WAIT.as_millis()
    ))
}

/// Whether a command reads or writes, as routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Read,
    Write,
    /// A write that must be alone in its entry (FLUSHDB, FLUSHALL: see `Applied::Continue`).
    WriteAlone,
}

struct Routed {
    kind: Kind,
    command: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    /// Times a read went back to the router because the node it reached no longer led.
    rerouted: u8,
}

/// How many times a read is routed again after reaching a node that no longer leads (safe: a
/// read changes nothing) before it is answered `TRYAGAIN`.
const READ_REROUTES_MAX: u8 = 3;

/// A cluster member's executor.
pub struct Cluster {
    id: NodeId,
    raft: Raft,
    router: mpsc::UnboundedSender<Routed>,
    /// Commands in the router's queue (waiting for a leader). While there are none, `submit`
    /// routes a command itself, saving a task hand-off; held while routing, so a command never
    /// overtakes one queued before it.
    routing: parking_lot::Mutex<usize>,
    forwards: mpsc::UnboundedSender<(NodeId, Routed)>,
    /// Where the leader's reader runs reads, and answers forwarded ones (set once the server's
    /// state exists, which needs this executor first).
    db: OnceLock<Weak<Db>>,
    local: Local,
    log: ferrocask_raft::LogStore,
    /// Where PUBLISH sends its messages on to each other member (see [`Cluster::broadcast`]).
    peers: parking_lot::Mutex<BTreeMap<NodeId, Peer>>,
    /// The clients blocked on this member, which its state machine wakes as it applies the
    /// writes of the log (the server's [`Db`] shares it).
    pub(crate) blocking: Arc<crate::blocking::Blocking>,
}

/// The leader's own queues (a follower's are idle).
#[derive(Clone)]
struct Local {
    proposals: mpsc::UnboundedSender<Routed>,
    reads: mpsc::UnboundedSender<Routed>,
}

impl Cluster {
    /// The executor of `node`, serving what followers forward to it; starts its tasks on the
    /// current tokio runtime.
    pub fn start(node: &Node) -> Arc<Cluster> {
        let (router, routed) = mpsc::unbounded_channel();
        let (proposals, proposals_rx) = mpsc::unbounded_channel();
        let (reads, reads_rx) = mpsc::unbounded_channel();
        let (forwards, forwards_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            id: node.id,
            raft: node.raft.clone(),
            router,
            routing: parking_lot::Mutex::new(0),
            forwards,
            db: OnceLock::new(),
            local: Local { proposals, reads },
            log: node.log.clone(),
            peers: parking_lot::Mutex::new(BTreeMap::new()),
            blocking: node
                .state_machine
                .application()
                .as_any()
                .and_then(|any| any.downcast_ref::<apply::ServerApply>())
                .map(|server| server.blocking.clone())
                .unwrap_or_default(),
        });
        tokio::spawn(route(Arc::downgrade(&cluster), routed));
        tokio::spawn(propose(node.raft.clone(), proposals_rx));
        tokio::spawn(read(Arc::downgrade(&cluster), reads_rx));
        tokio::spawn(forward(node.raft.clone(), forwards_rx));
        tokio::spawn(watch(node.raft.clone()));
        node.serve_forwarded(Arc::new(Forwards(Arc::downgrade(&cluster))));
        cluster
    }

    pub(crate) fn set_db(&self, db: &Arc<Db>) {
        let _ = self.db.set(Arc::downgrade(db));
    }

    /// Runs `command` through the cluster; the reply once it has run (for a write: committed by
    /// a majority and applied). Queued now, in call order.
    pub(crate) fn submit(&self, kind: Kind, command: &Command) -> impl Future<Output = Reply> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let routed = Routed { kind, command: command.encode(), reply, rerouted: 0 };
        self.route_or_queue(routed);
        async move { rx.await.unwrap_or_else(|_| unknown("this node's executor stopped")) }
    }

    /// Routes `item` now if nothing waits in the router's queue and a leader is known; else
    /// queues it behind the others for the router.
    fn route_or_queue(&self, item: Routed) {
        let mut queued = self.routing.lock();
        if *queued == 0 {
            if let Some(leader) = current_leader(&self.raft) {
                self.dispatch(leader, item);
                return;
            }
        }
        match self.router.send(item) {
            Ok(()) => *queued += 1,
            Err(mpsc::error::SendError(item)) => {
                let _ = item.reply.send(Reply::error("ERR the cluster executor has stopped"));
            }
        }
    }

    /// Sends `item` where `leader` says: this node's queues, or the forwarder.
    fn dispatch(&self, leader: NodeId, item: Routed) {
        if leader == self.id {
            self.local.take(item);
        } else if let Err(mpsc::error::SendError((_, item))) = self.forwards.send((leader, item)) {
            let _ = item.reply.send(tryagain("this node's forwarder stopped"));
        }
    }

    /// Sends a published message on to every other member, whose subscribers get it (a member
    /// delivers it as its own PUBLISH does, and answers nothing back). Best effort, as Redis
    /// Cluster's bus: not through the Raft log (no log write, no wait for a quorum, and a
    /// message is never delivered twice by a log replay), in publish order per member; a member
    /// that is down or more than [`PUBLISH_QUEUE_BYTES_MAX`] behind misses messages. Never waits.
    pub(crate) fn broadcast(&self, channel: &[u8], message: &[u8]) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let members = m.membership_config.membership();
        let mut peers = self.peers.lock();
        // A member removed, or at a new address: its sender goes (and its task ends).
        peers.retain(|id, peer| members.get_node(id).is_some_and(|n| n.addr == peer.addr));
        for (id, node) in members.nodes() {
            if *id == self.id {
                continue;
            }
            let peer = peers.entry(*id).or_insert_with(|| Peer::start(*id, node.addr.clone()));
            peer.send(Published { channel: channel.to_vec(), message: message.to_vec() });
        }
    }

    /// RAFT.NODE ADD / REMOVE, run by the leader (forwarded to it from any node).
    pub(crate) fn admin(&self, request: AdminRequest) -> Pin<Box<dyn Future<Output = Reply> + Send>> {
        let raft = self.raft.clone();
        let id = self.id;
        Box::pin(async move {
            let Some(leader) = leader_within(&raft, LEADER_WAIT).await else { return clusterdown() };
            let result = if leader == id {
                ferrocask_raft::node::admin(&raft, request).await
            } else {
                let Some(addr) = address_of(&raft, leader) else { return tryagain("the leader's address is unknown") };
                match Connection::new(addr).call(&Message::Admin(request), Duration::from_secs(60)).await {
                    Ok(RaftReply::Admin(result)) => result,
                    Ok(_) => Err("unexpected answer from the leader".into()),
                    Err(e) => return unknown(format!("the leader did not answer: {e}")),
                }
            };
            match result {
                Ok(_) => Reply::OK,
                Err(why) => Reply::error(format!("ERR {why}")),
            }
        })
    }

    /// INFO's `raft` section's fields.
    pub(crate) fn info(&self) -> Vec<(String, String)> {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let nodes = members(&m);
        let index = |id: Option<openraft::LogId<NodeId>>| id.map_or(0, |l| l.index).to_string();
        let mut fields = vec![
            ("role".to_string(), role.to_string()),
            ("node_id".into(), m.id.to_string()),
            ("leader_id".into(), m.current_leader.map(|l| l.to_string()).unwrap_or_default()),
            ("leader_addr".into(), m.current_leader.and_then(|l| nodes.get(&l).cloned()).unwrap_or_default()),
            ("term".into(), m.current_term.to_string()),
            ("last_log_index".into(), m.last_log_index.unwrap_or(0).to_string()),
            // openraft 0.9 does not publish the commit index; what is applied has been committed.
            ("commit_index".into(), index(m.last_applied)),
            ("last_applied".into(), index(m.last_applied)),
            ("snapshot_index".into(), index(m.snapshot)),
            ("purged_index".into(), index(m.purged)),
        ];
        // The log's syncs are this node's share of the cluster's fsyncs (the state machine's
        // store syncs in the background, off the write path: INFO persistence).
        let log = self.log.store().stats();
        fields.push(("log_syncs".into(), log.syncs.to_string()));
        fields.push(("log_bytes_written".into(), log.log_bytes_written.to_string()));
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        for (id, addr) in &nodes {
            let kind = if voters.contains(id) { "voter" } else { "learner" };
            let mut line = format!("addr={addr},kind={kind}");
            if let Some(matched) = match_index(&m, *id) {
                let _ = write!(line, ",match_index={matched}");
            }
            fields.push((format!("member_{id}"), line));
        }
        fields
    }

    /// ROLE, as Redis answers it: a leader is a `master` with its followers and their match
    /// indexes; a follower a `slave` of the leader's Raft address.
    pub(crate) fn role(&self) -> Reply {
        let m = self.raft.metrics().borrow().clone();
        let nodes = members(&m);
        let split = |addr: &str| -> (String, i64) {
            match addr.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
                None => (addr.to_string(), 0),
            }
        };
        let applied = m.last_applied.map_or(0, |l| l.index) as i64;
        if m.state == ServerState::Leader {
            let followers = nodes
                .iter()
                .filter(|(id, _)| **id != m.id)
                .map(|(id, addr)| {
                    let (host, port) = split(addr);
                    let matched = match_index(&m, *id).unwrap_or(0);
                    Reply::Array(vec![
                        Reply::bulk(host),
                        Reply::bulk(port.to_string()),
                        Reply::bulk(matched.to_string()),
                    ])
                })
                .collect();
            Reply::Array(vec![Reply::bulk("master"), Reply::Int(applied), Reply::Array(followers)])
        } else {
            let leader = m.current_leader.and_then(|l| nodes.get(&l).cloned());
            let (host, port) = leader.as_deref().map(split).unwrap_or_default();
            let state = if leader.is_some() { "connected" } else { "connect" };
            Reply::Array(vec![
                Reply::bulk("slave"),
                Reply::bulk(host),
                Reply::Int(port),
                Reply::bulk(state),
                Reply::Int(applied),
            ])
        }
    }
}

/// What openraft publishes of a node's state.
type Metrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;

/// Every member's Raft address, by id.
fn members(m: &Metrics) -> BTreeMap<NodeId, String> {
    m.membership_config.membership().nodes().map(|(id, n)| (*id, n.addr.clone())).collect()
}

/// How far the leader knows member `id`'s log matches its own (`None` on a follower).
fn match_index(m: &Metrics, id: NodeId) -> Option<u64> {
    m.replication.as_ref()?.get(&id)?.as_ref().map(|l| l.index)
}

/// The leader a command can go to now: the one this node knows of, except this node itself
/// while it has not heard from a quorum for longer than [`QUORUM_ACK_MAX_MS`]: a leader cut off
/// from the others (they died, or it is partitioned) would take writes it can never commit.
fn usable_leader(m: &Metrics) -> Option<NodeId> {
    match m.current_leader {
        Some(leader) if leader == m.id => {
            let alone = m.membership_config.membership().voter_ids().count() <= 1;
            let heard = m.millis_since_quorum_ack.is_some_and(|ms| ms <= QUORUM_ACK_MAX_MS);
            (m.state == ServerState::Leader && (alone || heard)).then_some(leader)
        }
        other => other,
    }
}

/// The leader as this node knows it now (see [`usable_leader`]).
fn current_leader(raft: &Raft) -> Option<NodeId> {
    usable_leader(&raft.metrics().borrow())
}

/// The leader, waiting up to `wait` for one to be known.
async fn leader_within(raft: &Raft, wait: Duration) -> Option<NodeId> {
    if let Some(leader) = current_leader(raft) {
        return Some(leader);
    }
    let m = raft.wait(Some(wait)).metrics(|m| usable_leader(m).is_some(), "a leader").await.ok()?;
    usable_leader(&m)
}

fn address_of(raft: &Raft, id: NodeId) -> Option<String> {
    raft.metrics().borrow().membership_config.membership().get_node(&id).map(|n| n.addr.clone())
}

/// Routes the commands queued while no leader was known, in order: to the leader's own queues,
/// to the forwarder, or (no leader within [`LEADER_WAIT`]) back with `CLUSTERDOWN`, together with
/// every command queued behind it by then, so a dead cluster answers each command within one
/// wait, never one wait per command.
async fn route(cluster: Weak<Cluster>, mut routed: mpsc::UnboundedReceiver<Routed>) {
    while let Some(item) = routed.recv().await {
        let Some(cluster) = cluster.upgrade() else { return };
        let leader = leader_within(&cluster.raft, LEADER_WAIT).await;
        let mut queued = cluster.routing.lock();
        *queued -= 1;
        match leader {
            Some(leader) => cluster.dispatch(leader, item),
            None => {
                let _ = item.reply.send(clusterdown());
                while let Ok(item) = routed.try_recv() {
                    *queued -= 1;
                    let _ = item.reply.send(clusterdown());
                }
            }
        }
    }
}

impl Local {
    fn take(&self, item: Routed) {
        let queue = if item.kind == Kind::Read { &self.reads } else { &self.proposals };
        if let Err(mpsc::error::SendError(item)) = queue.send(item) {
            let _ = item.reply.send(tryagain("this node's executor stopped"));
        }
    }
}

/// Takes `first` and every item queued behind it in `rx` now, up to `bytes_max` bytes of
/// commands (`first` is taken whatever its size), stopping at an item that `apart` says may not
/// share a batch with `first`; that item, or the one past the bound, is kept in `held` for the
/// next batch. Batching at the door: the proposer's entries and the forwarder's messages.
fn gather<T>(
    first: T,
    rx: &mut mpsc::UnboundedReceiver<T>,
    held: &mut Option<T>,
    bytes_max: usize,
    size: impl Fn(&T) -> usize,
    apart: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    let mut bytes = size(&first);
    let mut batch = vec![first];
    while let Ok(next) = rx.try_recv() {
        if apart(&batch[0], &next) || bytes + size(&next) > bytes_max {
            *held = Some(next);
            break;
        }
        bytes += size(&next);
        batch.push(next);
    }
    batch
}

/// The proposer: every write waiting when an entry slot is free goes into one entry.
async fn propose(raft: Raft, mut rx: mpsc::UnboundedReceiver<Routed>) {
    let slots = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT_MAX));
    let mut held = None;
    let mut last_ms = 0;
    loop {
        let first = match held.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        // Writes gather while the slots are taken: what arrives meanwhile joins this entry.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
        // A FLUSH goes alone in its entry (`Applied::Continue`).
        let alone = |r: &Routed| r.kind == Kind::WriteAlone;
        let batch =
            gather(first, &mut rx, &mut held, ENTRY_BYTES_MAX, |r| r.command.len(), |a, b| alone(a) || alone(b));
        // The leader's clock, never going back (a new leader's may be behind; the state machine
        // also runs each entry at no earlier a time than the one before).
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        last_ms = wall.max(last_ms);
        let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|r| (r.command, r.reply)).unzip();
        let request = Request { now_ms: last_ms, commands };
        let pending = match raft.client_write_ff(request).await {
            Ok(pending) => pending,
            Err(fatal) => {
                for reply in replies {
                    let _ = reply.send(tryagain(format!("raft stopped: {fatal}")));
                }
                continue;
            }
        };
        tokio::spawn(async move {
            let Ok(answer) = tokio::time::timeout(COMMIT_WAIT, pending).await else {
                let why =
                    format!("not committed within {} ms: is a majority of nodes running?", COMMIT_WAIT.as_millis());
                for reply in replies {
                    let _ = reply.send(unknown(&why));
                }
                return;
            };
            let answers: Vec<Reply> = match answer {
                Ok(Ok(response)) if response.data.replies.len() == replies.len() => response
                    .data
                    .replies
                    .iter()
                    .map(|r| decode_reply(r).unwrap_or_else(|e| Reply::error(format!("ERR {e}"))))
                    .collect(),
                Ok(Ok(_)) => {
                    vec![Reply::error("ERR internal: an entry's replies do not match its commands"); replies.len()]
                }
                // openraft answers this before appending, or when it truncates the entry from the
                // log of a leader that lost its place: either way the entry is never applied.
                Ok(Err(ClientWriteError::ForwardToLeader(_))) => {
                    vec![tryagain("leadership moved before the write was committed"); replies.len()]
                }
                Ok(Err(e)) => vec![unknown(e); replies.len()],
                Err(_) => vec![unknown("leadership lost before the write was applied"); replies.len()],
            };
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
            drop(slot);
        });
    }
}

/// The reader: one read index (a heartbeat round to a quorum) serves every read waiting at that
/// moment; then each runs on the state machine's store, which has applied at least that far.
async fn read(cluster: Weak<Cluster>, mut rx: mpsc::UnboundedReceiver<Routed>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let Some(cluster) = cluster.upgrade() else { return };
        let failure = match cluster.raft.ensure_linearizable().await {
            Ok(_) => None,
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                // Leadership moved (often just after an election): the reads go to whoever
                // leads now, once this node has heard of one.
                let id = cluster.id;
                let _ = cluster
                    .raft
                    .wait(Some(LEADER_WAIT))
                    .metrics(|m| m.current_leader != Some(id), "a new leader")
                    .await;
                batch = batch
                    .into_iter()
                    .filter_map(|mut item| {
                        if item.rerouted >= READ_REROUTES_MAX {
                            return Some(item);
                        }
                        item.rerouted += 1;
                        cluster.route_or_queue(item);
                        None
                    })
                    .collect();
                Some(tryagain("leadership keeps moving"))
            }
            Err(e) => Some(tryagain(format!("leadership not confirmed: {e}"))),
        };
        let db = cluster.db.get().and_then(Weak::upgrade);
        for item in batch {
            let answer = match (&failure, &db) {
                (Some(failure), _) => failure.clone(),
                (None, Some(db)) => match Command::decode(&item.command) {
                    Ok(command) => apply::read(db, &command),
                    Err(e) => Reply::error(format!("ERR {e}")),
                },
                (None, None) => tryagain("the server is starting"),
            };
            let _ = item.reply.send(answer);
        }
    }
}

/// The forwarder: every command waiting for the same leader goes in one request; one request
/// in flight at a time, so commands reach the leader in the order they were routed.
async fn forward(raft: Raft, mut rx: mpsc::UnboundedReceiver<(NodeId, Routed)>) {
    let mut connection: Option<(NodeId, Connection)> = None;
    let mut held: Option<(NodeId, Routed)> = None;
    loop {
        let (leader, first) = match held.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let batch =
            gather((leader, first), &mut rx, &mut held, ENTRY_BYTES_MAX, |r| r.1.command.len(), |a, b| a.0 != b.0);
        let batch: Vec<Routed> = batch.into_iter().map(|(_, r)| r).collect();
        let Some(addr) = address_of(&raft, leader) else {
            for item in batch {
                let _ = item.reply.send(tryagain(format!("the address of the leader (node {leader}) is unknown")));
            }
            continue;
        };
        if connection.as_ref().is_none_or(|(id, c)| *id != leader || c.addr() != addr) {
            connection = Some((leader, Connection::new(addr)));
        }
        let conn = &mut connection.as_mut().expect("set above").1;
        let message = Message::Forward(
            batch
                .iter()
                .map(|r| Forwarded {
                    write: r.kind != Kind::Read,
                    alone: r.kind == Kind::WriteAlone,
                    command: r.command.clone(),
                })
                .collect(),
        );
        let answers: Vec<Reply> = match conn.call(&message, FORWARD_TIMEOUT).await {
            Ok(RaftReply::Forward(replies)) if replies.len() == batch.len() => {
                replies.iter().map(|r| decode_reply(r).unwrap_or_else(|e| Reply::error(format!("ERR {e}")))).collect()
            }
            Ok(_) => vec![tryagain(format!("node {leader} did not take the commands (not ready)")); batch.len()],
            // Never sent: nothing was applied.
            Err(e @ CallError::Connect(_)) => {
                vec![tryagain(format!("the leader (node {leader}) could not be reached: {e}")); batch.len()]
            }
            Err(e) => batch
                .iter()
                .map(|r| match r.kind {
                    Kind::Read => tryagain(format!("the leader (node {leader}) did not answer: {e}")),
                    _ => unknown(format!("the leader (node {leader}) did not answer: {e}")),
                })
                .collect(),
        };
        for (item, answer) in batch.into_iter().zip(answers) {
            let _ = item.reply.send(answer);
        }
    }
}

/// One other member, as PUBLISH sends to it: a queue bounded in bytes, emptied by a task of its
/// own (so one slow member delays no other).
struct Peer {
    addr: String,
    queue: mpsc::UnboundedSender<Published>,
    /// Bytes queued and not yet taken by the task.
    queued: Arc<AtomicUsize>,
    /// Whether the last message was dropped (one log line per spell of drops).
    dropping: AtomicBool,
}

/// The bytes a published message counts for against [`PUBLISH_QUEUE_BYTES_MAX`].
fn published_bytes(p: &Published) -> usize {
    p.channel.len() + p.message.len()
}

impl Peer {
    fn start(id: NodeId, addr: String) -> Peer {
        let (queue, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(send_published(id, addr.clone(), rx, queued.clone()));
        Peer { addr, queue, queued, dropping: AtomicBool::new(false) }
    }

    fn send(&self, message: Published) {
        let bytes = published_bytes(&message);
        if self.queued.load(Ordering::Relaxed) + bytes > PUBLISH_QUEUE_BYTES_MAX {
            if !self.dropping.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    peer = %self.addr,
                    queued_bytes_max = PUBLISH_QUEUE_BYTES_MAX,
                    "a member is too far behind on published messages: dropping them for it"
                );
            }
            return;
        }
        self.dropping.store(false, Ordering::Relaxed);
        self.queued.fetch_add(bytes, Ordering::Relaxed);
        let _ = self.queue.send(message);
    }
}

/// Sends the messages published for member `id` at `addr`, every message waiting in one
/// request, one request at a time (so they arrive in publish order). A failed request's
/// messages are lost (best effort); a spell of failures logs once.
async fn send_published(
    id: NodeId,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Published>,
    queued: Arc<AtomicUsize>,
) {
    let mut connection = Connection::new(addr.clone());
    let (mut held, mut failing) = (None, false);
    let mut last_sent = std::time::Instant::now();
    loop {
        let first = match held.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let batch = gather(first, &mut rx, &mut held, ENTRY_BYTES_MAX, published_bytes, |_, _| false);
        // A message held back for the next batch stays counted until that batch takes it.
        queued.fetch_sub(batch.iter().map(published_bytes).sum(), Ordering::Relaxed);
        let count = batch.len();
        // The member closes a connection silent for `RAFT_IDLE_TIMEOUT`; a request sent on one it
        // may be closing would be lost, so an idle one is remade first.
        if last_sent.elapsed() > ferrocask_raft::node::RAFT_IDLE_TIMEOUT / 2 {
            connection = Connection::new(addr.clone());
        }
        last_sent = std::time::Instant::now();
        match connection.call(&Message::Publish(batch), PUBLISH_TIMEOUT).await {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::info!(peer = id, error = %e, lost = count, "published messages not delivered to a member");
                }
                failing = true;
            }
        }
    }
}

/// What the leader does with forwarded commands: runs them as its own, in order, never
/// forwarding them again (a node that no longer leads answers `TRYAGAIN`).
struct Forwards(Weak<Cluster>);

impl Service for Forwards {
    fn forwarded(&self, batch: Vec<Forwarded>) -> Pin<Box<dyn Future<Output = Vec<Vec<u8>>> + Send>> {
        let cluster = self.0.upgrade();
        let mut waiting = Vec::with_capacity(batch.len());
        for f in batch {
            let (reply, rx) = oneshot::channel();
            let kind = match (f.write, f.alone) {
                (false, _) => Kind::Read,
                (true, false) => Kind::Write,
                (true, true) => Kind::WriteAlone,
            };
            let item = Routed { kind, command: f.command, reply, rerouted: 0 };
            match &cluster {
                Some(c) if current_leader(&c.raft) == Some(c.id) => c.local.take(item),
                _ => {
                    let _ = item.reply.send(tryagain("the node forwarded to is not the leader"));
                }
            }
            waiting.push(rx);
        }
        Box::pin(async move {
            let mut replies = Vec::with_capacity(waiting.len());
            for rx in waiting {
                let reply = rx.await.unwrap_or_else(|_| unknown("the leader's executor stopped"));
                replies.push(encode_reply(&reply));
            }
            replies
        })
    }

    fn published(&self, messages: Vec<Published>) {
        let Some(db) = self.0.upgrade().and_then(|c| c.db.get().and_then(Weak::upgrade)) else { return };
        for m in messages {
            db.pubsub.publish(&m.channel, &m.message);
        }
    }
}

/// Logs role, leader and term changes, and stops the process if Raft stopped on an error (a
/// storage failure) or its core ended without saying why (a panic inside openraft drops its
/// metrics channel): a node that cannot go on must not keep answering as a zombie.
async fn watch(raft: Raft) {
    let mut metrics = raft.metrics();
    let mut last = (ServerState::Shutdown, None, 0u64);
    loop {
        let m = metrics.borrow_and_update().clone();
        match &m.running_state {
            // Shut down on purpose (the server is stopping).
            Err(openraft::error::Fatal::Stopped) => return,
            Err(fatal) => stop_the_process(&fatal.to_string()),
            Ok(()) => {}
        }
        let now = (m.state, m.current_leader, m.current_term);
        if now != last {
            tracing::info!(state = ?m.state, leader = ?m.current_leader, term = m.current_term, "raft role");
            last = now;
        }
        if metrics.changed().await.is_err() {
            stop_the_process("raft's core ended without a reason (a panic inside openraft)");
        }
    }
}

fn stop_the_process(why: &str) -> ! {
    tracing::error!(error = why, "raft stopped; exiting so that clients go to a live node");
    std::process::exit(1);
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The state machine's [`Apply`](ferrocask_raft::Apply) for a server whose values may be up to
/// `value_bytes_max` bytes: what [`ferrocask_raft::open_storage`] and
/// [`Node::start`](ferrocask_raft::node::Node::start) take.
pub fn applier(value_bytes_max: usize) -> Arc<dyn ferrocask_raft::Apply> {
    Arc::new(apply::ServerApply { value_bytes_max, blocking: Arc::default() })
}
