//! The wire: length-prefixed frames over TCP, the messages they carry, and the client side of the
//! Raft RPCs. Nothing here knows how a node stores anything.
//!
//! A frame is a 4-byte big-endian length, then that many bytes of a bincode-encoded [`Message`]
//! (request) or [`Reply`] (response), at most [`FRAME_BYTES_MAX`]. A connection carries one
//! request at a time: send a message, read its reply.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{decode, encode};
use crate::{NodeId, TypeConfig};

/// Largest frame accepted or sent: a 16 MiB value in a log entry batch, or a snapshot chunk,
/// with room to spare.
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// A request to a node.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant, reason = "one message per frame; boxing buys nothing")]
pub enum Message {
    /// Raft: append entries (and heartbeats).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: one chunk of a snapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// The key-value API and cluster administration.
    Kv(KvRequest),
}

/// The reply to a [`Message`], variant for variant.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant, reason = "one reply per frame; boxing buys nothing")]
pub enum Reply {
    /// To [`Message::Append`].
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Message::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Message::Snapshot`].
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To [`Message::Kv`].
    Kv(KvReply),
}

/// The key-value API: writes and linearizable reads go to the leader; the rest to any node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvRequest {
    /// Replicated write: durable on a quorum and applied on the leader when answered.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Replicated delete.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Linearizable read (the leader confirms its leadership with a quorum first).
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Initialise a new cluster with these members (node id → address); a no-op on a node that
    /// already has a log.
    Init {
        /// The members.
        members: BTreeMap<NodeId, String>,
    },
    /// Wait on this node's Raft metrics until every given condition holds, or time out.
    Wait {
        /// A leader is known and it is not this node id.
        leader_not: Option<NodeId>,
        /// A leader is known.
        leader_known: bool,
        /// The applied log index is at least this.
        applied_at_least: Option<u64>,
        /// How long to wait, in milliseconds.
        timeout_ms: u64,
    },
    /// This node's local state-machine contents (for comparing replicas; not linearizable).
    Dump,
}

/// The answer to a [`KvRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvReply {
    /// The write or administration request is done.
    Done,
    /// The value read.
    Value(Option<Vec<u8>>),
    /// This node is not the leader; the leader, if known, is `(id, address)`.
    NotLeader(Option<(NodeId, String)>),
    /// A node's state, from [`KvRequest::Wait`].
    Status(Status),
    /// A node's contents, sorted by key, from [`KvRequest::Dump`].
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// The request failed (a timeout, a lost leadership, a storage error); the text says why.
    Failed(String),
}

/// A node's Raft state as its metrics report it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// The node.
    pub id: NodeId,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its term.
    pub term: u64,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of its last applied entry.
    pub last_applied: Option<u64>,
}

/// Writes `value` as one frame (length and payload in one write, so Nagle never splits them).
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let payload = encode(value).map_err(io::Error::other)?;
    if payload.len() > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame larger than FRAME_BYTES_MAX"));
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    stream.write_all(&frame).await
}

/// Reads one frame and decodes it; a length over [`FRAME_BYTES_MAX`] is refused before any
/// allocation.
pub async fn read_frame<T: DeserializeOwned>(stream: &mut TcpStream) -> io::Result<T> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes(header) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame larger than FRAME_BYTES_MAX"));
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    decode(&payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No connection could be made.
    Connect(io::Error),
    /// The connection failed mid-call (or the reply was malformed).
    Io(io::Error),
    /// No reply within the timeout.
    Timeout,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "connect: {e}"),
            CallError::Io(e) => write!(f, "i/o: {e}"),
            CallError::Timeout => write!(f, "timed out"),
        }
    }
}

impl std::error::Error for CallError {}

/// A reusable connection to one address; dropped (and remade on the next call) after any error,
/// so a reply can never be matched to the wrong request.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Option<TcpStream>,
}

impl Connection {
    /// A connection to `addr`, made on first use.
    pub fn new(addr: impl Into<String>) -> Connection {
        Connection { addr: addr.into(), stream: None }
    }

    /// The address this connection goes to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `message` and waits for its reply, all within `timeout`.
    pub async fn call(&mut self, message: &Message, timeout: Duration) -> Result<Reply, CallError> {
        let result = tokio::time::timeout(timeout, self.call_inner(message)).await;
        let result = result.unwrap_or(Err(CallError::Timeout));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn call_inner(&mut self, message: &Message) -> Result<Reply, CallError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await.map_err(CallError::Connect)?;
            stream.set_nodelay(true).map_err(CallError::Connect)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_frame(stream, message).await.map_err(CallError::Io)?;
        read_frame(stream).await.map_err(CallError::Io)
    }
}

/// Makes a [`Peer`] per replication target, from the address in its membership entry.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// This node's id (for timeout reports).
    pub id: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer { id: self.id, target, connection: Connection::new(node.addr.clone()) }
    }
}

/// The client side of the Raft RPCs to one node.
#[derive(Debug)]
pub struct Peer {
    id: NodeId,
    target: NodeId,
    connection: Connection,
}

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        message: Message,
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<NodeId, BasicNode, E>> {
        let timeout = option.hard_ttl();
        self.connection.call(&message, timeout).await.map_err(|e| match e {
            CallError::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Io(e) => RPCError::Network(NetworkError::new(&e)),
            CallError::Timeout => RPCError::Timeout(Timeout { action, id: self.id, target: self.target, timeout }),
        })
    }

    fn unexpected<E: std::error::Error>(&self, reply: Reply) -> RPCError<NodeId, BasicNode, E> {
        let e = io::Error::new(io::ErrorKind::InvalidData, format!("unexpected reply {reply:?}"));
        RPCError::Network(NetworkError::new(&e))
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Message::Append(rpc), RPCTypes::AppendEntries, &option).await? {
            Reply::Append(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self.call(Message::Snapshot(rpc), RPCTypes::InstallSnapshot, &option).await? {
            Reply::Snapshot(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Message::Vote(rpc), RPCTypes::Vote, &option).await? {
            Reply::Vote(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }
}
