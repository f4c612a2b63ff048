//! A node: storage, network and [`openraft::Raft`] wired together, serving the Raft RPCs, the
//! commands followers forward and membership changes on the node's Raft listener (only there:
//! client connections go to the application's own listener).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, SnapshotPolicy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::network::{read_frame, write_frame, AdminRequest, Forwarded, Message, Network, Published, Reply};
use crate::{open_storage, Apply, LogStore, NodeId, Raft, StateMachine};

/// Most connections the Raft listener serves at once (peers' replication streams and forwarding
/// followers); more wait to be accepted. Client connections never count against it.
pub const RAFT_CONNECTIONS_MAX: usize = 64;
/// A Raft connection that sends nothing for this long is closed (a peer's stream carries a
/// heartbeat every [`HEARTBEAT_MS`]; a silent one is gone).
pub const RAFT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The leader's heartbeat interval. openraft 0.9 also uses it as the hard timeout of every
/// AppendEntries (`replication/mod.rs`), entries included: a message must be sent, written and
/// synced by the follower within it, or it is cancelled and sent again, for ever. 100 ms left a
/// follower behind 8 MiB values unable to catch up (and campaigning, its stream cut mid-frame);
/// 250 ms, with messages of at most `network::APPEND_BYTES_MAX`, lets it.
pub const HEARTBEAT_MS: u64 = 250;
/// A follower starts an election after a random silence between these two (several heartbeats).
pub const ELECTION_TIMEOUT_MS: (u64, u64) = (1000, 2000);
/// How long a restarted node waits for openraft to publish the membership it loaded from its log.
const MEMBERSHIP_LOAD_WAIT: Duration = Duration::from_secs(5);
/// Entries a snapshot is built after (then the log is purged up to it, keeping
/// [`LOGS_KEPT_BEHIND_SNAPSHOT`]).
pub const SNAPSHOT_EVERY_DEFAULT: u64 = 20_000;
/// Entries kept in the log behind the last snapshot, so a follower a little behind catches up
/// from the log rather than by a snapshot.
pub const LOGS_KEPT_BEHIND_SNAPSHOT: u64 = 1_000;

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's id.
    pub id: NodeId,
    /// Its directory (created if missing).
    pub dir: PathBuf,
    /// Every member's Raft address, this node's included (its listener): the membership a new
    /// cluster starts with. A node whose log already holds a membership checks it against this.
    pub peers: BTreeMap<NodeId, String>,
    /// Build a snapshot after this many applied entries and purge the log up to it.
    pub snapshot_every: u64,
    /// Whether a node with an empty log initialises the cluster with `peers` (a new cluster's
    /// members) or waits to be added by the leader (a node joining a running cluster, which
    /// must not start a cluster of its own).
    pub bootstrap: bool,
}

/// What the application does with the commands followers forward to this node (when it leads).
pub trait Service: Send + Sync + 'static {
    /// Runs `batch` in order and answers one encoded reply per command.
    fn forwarded(&self, batch: Vec<Forwarded>) -> Pin<Box<dyn Future<Output = Vec<Vec<u8>>> + Send>>;

    /// Delivers pub/sub messages another node published to this node's subscribers, in order.
    /// Never waits (a slow subscriber is the application's to bound); by default, drops them.
    fn published(&self, messages: Vec<Published>) {
        let _ = messages;
    }
}

/// A running node.
pub struct Node {
    /// The node's id.
    pub id: NodeId,
    /// The Raft instance.
    pub raft: Raft,
    /// Its state machine (the application reads its store).
    pub state_machine: StateMachine,
    /// Its log store (for statistics: the log's syncs are the cluster's fsyncs).
    pub log: LogStore,
    /// The address its Raft listener listens on.
    pub addr: SocketAddr,
    service: Arc<OnceLock<Arc<dyn Service>>>,
    server: tokio::task::JoinHandle<()>,
}

/// Raft timing for a loopback or LAN cluster on a busy machine.
pub fn raft_config(snapshot_every: u64) -> Config {
    Config {
        cluster_name: "ferrocask".into(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_TIMEOUT_MS.0,
        election_timeout_max: ELECTION_TIMEOUT_MS.1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: LOGS_KEPT_BEHIND_SNAPSHOT.min(snapshot_every),
        ..Default::default()
    }
}

/// A start refused because the log's membership disagrees with the flags.
fn membership_mismatch(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, text)
}

impl Node {
    /// Opens the node's storage, starts Raft, listens on its Raft address and, on a new
    /// cluster (empty log), initialises the membership `config.peers`. On a node whose log holds
    /// a membership already, that membership rules; the start is refused if `config.peers` gives
    /// a member a different address than the log does (a cluster restarted on other ports would
    /// otherwise fail to reach a quorum, silently).
    pub async fn start(config: NodeConfig, apply: Arc<dyn Apply>) -> io::Result<Node> {
        let Some(own) = config.peers.get(&config.id).cloned() else {
            return Err(membership_mismatch(format!("--peers has no entry for this node's id {}", config.id)));
        };
        let (log, state_machine) = open_storage(&config.dir, apply).map_err(io::Error::other)?;
        let raft_config = raft_config(config.snapshot_every).validate().map_err(io::Error::other)?;
        let listener = TcpListener::bind(&own).await.map_err(|e| io::Error::new(e.kind(), format!("{own}: {e}")))?;
        let addr = listener.local_addr()?;
        let network = Network { id: config.id };
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log.clone(), state_machine.clone())
            .await
            .map_err(io::Error::other)?;
        let service = Arc::new(OnceLock::new());
        let context = Arc::new(Context { raft: raft.clone(), service: Arc::clone(&service) });
        let server = tokio::spawn(serve(listener, context));
        let node = Node { id: config.id, raft, state_machine, log, addr, service, server };
        node.bootstrap_or_check(&config.peers, config.bootstrap).await?;
        Ok(node)
    }

    async fn bootstrap_or_check(&self, peers: &BTreeMap<NodeId, String>, bootstrap: bool) -> io::Result<()> {
        // Asked of the core, not read from the metrics: right after `Raft::new` they may not
        // show the membership loaded from the log yet, and a restarted node took itself for a
        // new one (its --peers then went unchecked).
        let initialized = self.raft.is_initialized().await.map_err(io::Error::other)?;
        let known: BTreeMap<NodeId, String> = if initialized {
            let loaded = |m: &openraft::RaftMetrics<NodeId, BasicNode>| {
                m.membership_config.membership().nodes().next().is_some()
            };
            let m = self.raft.wait(Some(MEMBERSHIP_LOAD_WAIT)).metrics(loaded, "the log's membership").await;
            let m = m.unwrap_or_else(|_| self.raft.metrics().borrow().clone());
            m.membership_config.membership().nodes().map(|(id, node)| (*id, node.addr.clone())).collect()
        } else {
            BTreeMap::new()
        };
        if !initialized {
            if !bootstrap {
                tracing::info!("joining: waiting for the leader to add this node (RAFT.NODE ADD)");
                return Ok(());
            }
            let members =
                peers.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect::<BTreeMap<_, _>>();
            return match self.raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
                Err(e) => Err(io::Error::other(e)),
            };
        }
        let moved: Vec<String> = peers
            .iter()
            .filter_map(|(id, addr)| {
                known.get(id).filter(|k| *k != addr).map(|k| format!("node {id}: {addr} (log: {k})"))
            })
            .collect();
        if !moved.is_empty() {
            return Err(membership_mismatch(format!(
                "--peers disagrees with the membership in this node's log: {}. Start it with the addresses the \
                 log holds ({}), or change them online with RAFT.NODE REMOVE and RAFT.NODE ADD",
                moved.join(", "),
                render(&known)
            )));
        }
        let unknown: Vec<_> = peers.keys().filter(|id| !known.contains_key(id)).collect();
        if !unknown.is_empty() {
            tracing::warn!(
                ?unknown,
                membership = %render(&known),
                "--peers names nodes the log's membership does not hold; the log's membership rules (RAFT.NODE ADD adds a node)"
            );
        }
        Ok(())
    }

    /// Serves the commands followers forward to this node with `service`. Until it is set,
    /// forwarded commands are answered with nothing (the follower reports an error).
    pub fn serve_forwarded(&self, service: Arc<dyn Service>) {
        let _ = self.service.set(service);
    }

    /// Stops serving and shuts Raft down.
    pub async fn shutdown(self) {
        self.server.abort();
        let _ = self.raft.shutdown().await;
    }
}

fn render(members: &BTreeMap<NodeId, String>) -> String {
    members.iter().map(|(id, addr)| format!("{id}={addr}")).collect::<Vec<_>>().join(",")
}

struct Context {
    raft: Raft,
    service: Arc<OnceLock<Arc<dyn Service>>>,
}

async fn serve(listener: TcpListener, context: Arc<Context>) {
    let limit = Arc::new(Semaphore::new(RAFT_CONNECTIONS_MAX));
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else { return };
        let Ok((stream, _)) = listener.accept().await else { continue };
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            handle(stream, &context).await;
            drop(permit);
        });
    }
}

/// Serves one connection: a request, its reply, until the peer hangs up, sends garbage or says
/// nothing for [`RAFT_IDLE_TIMEOUT`].
async fn handle(mut stream: TcpStream, context: &Context) {
    let _ = stream.set_nodelay(true);
    while let Ok(Ok(message)) = tokio::time::timeout(RAFT_IDLE_TIMEOUT, read_frame::<Message>(&mut stream)).await {
        let reply = dispatch(context, message).await;
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn dispatch(context: &Context, message: Message) -> Reply {
    let raft = &context.raft;
    match message {
        Message::Append(rpc) => Reply::Append(raft.append_entries(rpc).await),
        Message::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
        Message::Snapshot(rpc) => Reply::Snapshot(raft.install_snapshot(rpc).await),
        Message::Forward(batch) => match context.service.get() {
            Some(service) => Reply::Forward(service.forwarded(batch).await),
            None => Reply::Forward(Vec::new()),
        },
        Message::Admin(request) => Reply::Admin(admin(raft, request).await),
        Message::Publish(messages) => {
            if let Some(service) = context.service.get() {
                service.published(messages);
            }
            Reply::Published
        }
    }
}

/// Runs a membership change on this node, which must be the leader.
pub async fn admin(raft: &Raft, request: AdminRequest) -> Result<String, String> {
    let voters =
        || -> BTreeSet<NodeId> { raft.metrics().borrow().membership_config.membership().voter_ids().collect() };
    match request {
        AdminRequest::AddNode { id, addr } => {
            tracing::info!(node = id, %addr, "adding a node: as a learner until it has caught up");
            raft.add_learner(id, BasicNode { addr: addr.clone() }, true).await.map_err(|e| e.to_string())?;
            let mut members = voters();
            members.insert(id);
            raft.change_membership(ChangeMembers::ReplaceAllVoters(members), false).await.map_err(|e| e.to_string())?;
            tracing::info!(node = id, %addr, "node added as a voter");
            Ok(format!("node {id} at {addr} added"))
        }
        AdminRequest::RemoveNode { id } => {
            let mut members = voters();
            if !members.remove(&id) {
                return Err(format!("node {id} is not a voter"));
            }
            if members.is_empty() {
                return Err("cannot remove the last voter".into());
            }
            raft.change_membership(ChangeMembers::ReplaceAllVoters(members), false).await.map_err(|e| e.to_string())?;
            tracing::info!(node = id, "node removed");
            Ok(format!("node {id} removed"))
        }
    }
}
