//! The wire: length-prefixed frames over TCP, the messages they carry, and the client side of the
//! Raft RPCs. Nothing here knows how a node stores anything.
//!
//! A frame is a 4-byte big-endian length, then that many bytes of a bincode-encoded [`Message`]
//! (request) or [`Reply`] (response), at most [`FRAME_BYTES_MAX`]. A connection carries one
//! request at a time: send a message, read its reply.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
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

/// The most bytes an AppendEntries carries when it holds more than one entry (one larger entry
/// goes alone, up to [`FRAME_BYTES_MAX`]). The follower hears from the leader only between
/// AppendEntries (openraft 0.9 sends heartbeats on the same stream), so a message that takes
/// longer to send, write and sync than an election timeout makes the follower start an election
/// against a healthy leader: a follower catching up on large values did exactly that.
pub const APPEND_BYTES_MAX: usize = 4 << 20;

/// A request to a node's Raft listener.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant, reason = "one message per frame; boxing buys nothing")]
pub enum Message {
    /// Raft: append entries (and heartbeats).
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft: request a vote.
    Vote(VoteRequest<NodeId>),
    /// Raft: one chunk of a snapshot.
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// Client commands a follower forwards to the leader, in its clients' order.
    Forward(Vec<Forwarded>),
    /// A membership change sent to the leader.
    Admin(AdminRequest),
    /// Pub/sub messages published on the sending node, for this node's subscribers (best
    /// effort: not through the log, see [`crate::node::Service::published`]).
    Publish(Vec<Published>),
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
    /// To [`Message::Forward`]: one encoded reply per command, in order.
    Forward(#[serde(with = "crate::codec::byte_strings")] Vec<Vec<u8>>),
    /// To [`Message::Admin`]: what was done, or why not.
    Admin(Result<String, String>),
    /// To [`Message::Publish`]: delivered to this node's subscribers.
    Published,
}

/// One pub/sub message, as a node sends it on to the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The channel.
    #[serde(with = "crate::codec::byte_strings::one")]
    pub channel: Vec<u8>,
    /// The message.
    #[serde(with = "crate::codec::byte_strings::one")]
    pub message: Vec<u8>,
}

/// One forwarded client command, as the application encoded it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forwarded {
    /// Whether it may write (proposed through the log) or only reads (served after a read index).
    pub write: bool,
    /// Whether it must be alone in its log entry (see [`crate::Applied::Continue`]).
    pub alone: bool,
    /// The command.
    #[serde(with = "crate::codec::byte_strings::one")]
    pub command: Vec<u8>,
}

/// A membership change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Add the node as a learner, wait until it has caught up, then make it a voter.
    AddNode {
        /// Its id.
        id: NodeId,
        /// Its Raft address.
        addr: String,
    },
    /// Remove the node from the voters (and the cluster).
    RemoveNode {
        /// Its id.
        id: NodeId,
    },
}

/// Writes `value` as one frame (length and payload in one write, so Nagle never splits them).
pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let payload = encode(value).map_err(io::Error::other)?;
    write_payload(stream, &payload).await
}

/// Writes an encoded payload as one frame.
async fn write_payload(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame larger than FRAME_BYTES_MAX"));
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
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

    /// Sends `message` and waits for its reply, all within `timeout`, stretched for a large
    /// message to what sending it at [`TRANSFER_BYTES_PER_SEC_FLOOR`] takes.
    pub async fn call(&mut self, message: &Message, timeout: Duration) -> Result<Reply, CallError> {
        let payload = encode(message).map_err(|e| CallError::Io(io::Error::other(e)))?;
        self.call_encoded(&payload, timeout).await
    }

    async fn call_encoded(&mut self, payload: &[u8], timeout: Duration) -> Result<Reply, CallError> {
        let timeout = timeout.max(transfer_time(payload.len()));
        let result = tokio::time::timeout(timeout, self.call_inner(payload)).await;
        let result = result.unwrap_or(Err(CallError::Timeout));
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn call_inner(&mut self, payload: &[u8]) -> Result<Reply, CallError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await.map_err(CallError::Connect)?;
            stream.set_nodelay(true).map_err(CallError::Connect)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_payload(stream, payload).await.map_err(CallError::Io)?;
        read_frame(stream).await.map_err(CallError::Io)
    }
}

/// The slowest transfer rate a call's timeout allows for: a call carrying `n` bytes may take
/// `n / this` seconds, however short the caller's timeout (forwarded commands, snapshot chunks;
/// openraft bounds each AppendEntries itself, by the heartbeat interval: see
/// [`APPEND_BYTES_MAX`]).
pub const TRANSFER_BYTES_PER_SEC_FLOOR: u64 = 20 << 20;

fn transfer_time(bytes: usize) -> Duration {
    Duration::from_millis((bytes as u64).saturating_mul(1000) / TRANSFER_BYTES_PER_SEC_FLOOR)
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
        payload: &[u8],
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<Reply, RPCError<NodeId, BasicNode, E>> {
        let timeout = option.hard_ttl();
        self.connection.call_encoded(payload, timeout).await.map_err(|e| match e {
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

fn encoded<E: std::error::Error>(message: &Message) -> Result<Vec<u8>, RPCError<NodeId, BasicNode, E>> {
    encode(message).map_err(|e| RPCError::Network(NetworkError::new(&io::Error::other(e))))
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let entries = rpc.entries.len() as u64;
        let payload = encoded(&Message::Append(rpc))?;
        if entries > 1 && payload.len() > APPEND_BYTES_MAX {
            // openraft answers this by sending fewer entries (for its next ten messages): as
            // many as fit, by their average size, at least one (the door keeps every entry
            // under a frame).
            let fit = (entries * APPEND_BYTES_MAX as u64 / payload.len() as u64).clamp(1, entries - 1);
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(fit)));
        }
        match self.call(&payload, RPCTypes::AppendEntries, &option).await? {
            Reply::Append(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self.call(&encoded(&Message::Snapshot(rpc))?, RPCTypes::InstallSnapshot, &option).await? {
            Reply::Snapshot(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(&encoded(&Message::Vote(rpc))?, RPCTypes::Vote, &option).await? {
            Reply::Vote(result) => result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(self.unexpected(other)),
        }
    }
}
