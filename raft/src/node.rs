//! A node: storage, network and [`openraft::Raft`] wired together, serving the Raft RPCs and the
//! key-value API on one TCP listener (a [`Semaphore`] caps its connections).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError};
use openraft::{BasicNode, Config, RaftMetrics, SnapshotPolicy};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::network::{read_frame, write_frame, KvReply, KvRequest, Message, Network, Reply, Status};
use crate::types::{Applied, Apply};
use crate::{open_storage, NodeId, Raft, Request, StateMachine};

/// Placeholder until the server's command layer is the applier: a command is the encoded
/// `(key, Some(value))` of a put or `(key, None)` of a delete.
struct PlaceholderApply;

impl Apply for PlaceholderApply {
    fn apply(&self, txn: &mut ferrocask::Txn<'_>, command: &[u8]) -> Applied {
        let result = match crate::codec::decode::<(Vec<u8>, Option<Vec<u8>>)>(command) {
            Ok((key, Some(value))) => txn.put(key, value).map_err(|e| e.to_string()),
            Ok((key, None)) => txn.delete(key).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        Applied::Reply(result.err().unwrap_or_default().into_bytes())
    }
}

/// Longest user key: ferrocask's key limit less the state machine's `kv/` prefix.
pub const KEY_BYTES_MAX: usize = 4096 - 3;
/// Most connections a node serves at once; more wait to be accepted.
pub const CONNECTIONS_MAX: usize = 1024;

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The node's id.
    pub id: NodeId,
    /// Its directory (created if missing).
    pub dir: PathBuf,
    /// The address to listen on, e.g. `127.0.0.1:21001` (port 0 picks one).
    pub listen: String,
    /// Build a snapshot after this many applied entries and then purge the log up to it
    /// (`None`: openraft's default policy, 5000 entries, keeping 1000 behind the snapshot).
    pub snapshot_every: Option<u64>,
}

/// A running node.
pub struct Node {
    /// The Raft instance.
    pub raft: Raft,
    /// Its state machine (for local reads).
    pub state_machine: StateMachine,
    /// The address it listens on.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

/// Raft timing for a loopback cluster on a busy machine: heartbeats every 100 ms, elections after
/// 500–1000 ms of silence.
pub fn raft_config(snapshot_every: Option<u64>) -> Config {
    let mut config = Config {
        cluster_name: "ferrocask".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        ..Default::default()
    };
    if let Some(every) = snapshot_every {
        config.snapshot_policy = SnapshotPolicy::LogsSinceLast(every);
        config.max_in_snapshot_log_to_keep = 0;
        config.purge_batch_size = 1;
    }
    config
}

impl Node {
    /// Opens the node's storage, starts Raft and begins serving on `config.listen`.
    pub async fn start(config: NodeConfig) -> io::Result<Node> {
        let (log, state_machine) = open_storage(&config.dir, Arc::new(PlaceholderApply)).map_err(io::Error::other)?;
        let raft_config = raft_config(config.snapshot_every).validate().map_err(io::Error::other)?;
        let network = Network { id: config.id };
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log, state_machine.clone())
            .await
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind(&config.listen).await?;
        let addr = listener.local_addr()?;
        let context = Arc::new(Context { raft: raft.clone(), state_machine: state_machine.clone() });
        let server = tokio::spawn(serve(listener, context));
        Ok(Node { raft, state_machine, addr, server })
    }

    /// Stops serving and shuts Raft down.
    pub async fn shutdown(self) {
        self.server.abort();
        let _ = self.raft.shutdown().await;
    }
}

struct Context {
    raft: Raft,
    state_machine: StateMachine,
}

async fn serve(listener: TcpListener, context: Arc<Context>) {
    let limit = Arc::new(Semaphore::new(CONNECTIONS_MAX));
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

/// Serves one connection: a request, its reply, until the peer hangs up or sends garbage.
async fn handle(mut stream: TcpStream, context: &Context) {
    let _ = stream.set_nodelay(true);
    while let Ok(message) = read_frame::<Message>(&mut stream).await {
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
        Message::Kv(request) => Reply::Kv(kv(context, request).await),
    }
}

fn not_leader(forward: ForwardToLeader<NodeId, BasicNode>) -> KvReply {
    KvReply::NotLeader(forward.leader_id.zip(forward.leader_node.map(|n| n.addr)))
}

async fn kv(context: &Context, request: KvRequest) -> KvReply {
    let raft = &context.raft;
    match request {
        KvRequest::Put { key, value } => write(raft, key, Some(value)).await,
        KvRequest::Delete { key } => write(raft, key, None).await,
        KvRequest::Get { key } => match raft.ensure_linearizable().await {
            Ok(_) => match context.state_machine.store().get(&key) {
                Ok(value) => KvReply::Value(value.map(|v| v.into_vec())),
                Err(e) => KvReply::Failed(e.to_string()),
            },
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => not_leader(forward),
            Err(e) => KvReply::Failed(e.to_string()),
        },
        KvRequest::Init { members } => {
            let members: BTreeMap<NodeId, BasicNode> =
                members.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => KvReply::Done,
                Err(e) => KvReply::Failed(e.to_string()),
            }
        }
        KvRequest::Wait { leader_not, leader_known, applied_at_least, timeout_ms } => {
            let holds = move |m: &RaftMetrics<NodeId, BasicNode>| {
                (!leader_known || m.current_leader.is_some())
                    && leader_not.is_none_or(|old| m.current_leader.is_some_and(|l| l != old))
                    && applied_at_least.is_none_or(|at| m.last_applied.is_some_and(|a| a.index >= at))
            };
            match raft.wait(Some(Duration::from_millis(timeout_ms))).metrics(holds, "kv wait").await {
                Ok(m) => KvReply::Status(Status {
                    id: m.id,
                    leader: m.current_leader,
                    term: m.current_term,
                    last_log_index: m.last_log_index,
                    last_applied: m.last_applied.map(|a| a.index),
                }),
                Err(e) => KvReply::Failed(e.to_string()),
            }
        }
        KvRequest::Dump => {
            let store = context.state_machine.store();
            let mut pairs: Vec<_> =
                store.iter().filter(|(k, _)| !crate::keys::is_reserved(k)).map(|(k, v)| (k, v.into_vec())).collect();
            pairs.sort();
            KvReply::Pairs(pairs)
        }
    }
}

async fn write(raft: &Raft, key: Vec<u8>, value: Option<Vec<u8>>) -> KvReply {
    let key_len = key.len();
    if key_len > KEY_BYTES_MAX {
        return KvReply::Failed(format!("key of {key_len} bytes is longer than {KEY_BYTES_MAX}"));
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let command = crate::codec::encode(&(key, value)).expect("a pair encodes");
    match raft.client_write(Request { now_ms, commands: vec![command] }).await {
        Ok(_) => KvReply::Done,
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => not_leader(forward),
        Err(e) => KvReply::Failed(e.to_string()),
    }
}
