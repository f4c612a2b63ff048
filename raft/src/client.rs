//! The key-value client: writes and linearizable reads go to the leader, found by following a
//! follower's `NotLeader` answer or, when no leader is known, by trying the next node.

use std::time::{Duration, Instant};

use crate::network::{CallError, Connection, KvReply, KvRequest, Message, Reply};

/// How long one call may take before the client gives up on that node.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an operation keeps looking for a leader before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// Pause before retrying when no node knows a leader (an election is running).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Why an operation failed. A failed write may or may not have been applied.
#[derive(Debug)]
pub enum ClientError {
    /// The cluster answered with a failure.
    Failed(String),
    /// No leader answered within [`PATIENCE`]; the last error seen.
    NoLeader(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Failed(why) => write!(f, "the cluster failed the request: {why}"),
            ClientError::NoLeader(why) => write!(f, "no leader answered in time (last: {why})"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A client of a cluster, holding one connection to the node it believes leads.
#[derive(Debug)]
pub struct Client {
    addrs: Vec<String>,
    next: usize,
    connection: Connection,
}

impl Client {
    /// A client of the cluster whose nodes listen on `addrs` (any one is enough to start).
    pub fn new(addrs: Vec<String>) -> Client {
        assert!(!addrs.is_empty(), "a client needs at least one node address");
        let connection = Connection::new(addrs[0].clone());
        Client { addrs, next: 1, connection }
    }

    /// Sets `key` to `value`; returns once the write is durable on a quorum and applied.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), ClientError> {
        self.leader(KvRequest::Put { key: key.to_vec(), value: value.to_vec() }).await.map(|_| ())
    }

    /// Deletes `key`.
    pub async fn delete(&mut self, key: &[u8]) -> Result<(), ClientError> {
        self.leader(KvRequest::Delete { key: key.to_vec() }).await.map(|_| ())
    }

    /// Reads `key` linearizably.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match self.leader(KvRequest::Get { key: key.to_vec() }).await? {
            KvReply::Value(value) => Ok(value),
            other => Err(ClientError::Failed(format!("unexpected reply {other:?}"))),
        }
    }

    fn retarget(&mut self, addr: String) {
        if addr != self.connection.addr() {
            self.connection = Connection::new(addr);
        }
    }

    fn try_next_node(&mut self) {
        let addr = self.addrs[self.next % self.addrs.len()].clone();
        self.next += 1;
        self.retarget(addr);
    }

    /// Sends `request` to the leader, following redirects and retrying other nodes for at most
    /// [`PATIENCE`]. Writes are retried as they stand: puts and deletes are idempotent.
    async fn leader(&mut self, request: KvRequest) -> Result<KvReply, ClientError> {
        let deadline = Instant::now() + PATIENCE;
        let message = Message::Kv(request);
        loop {
            let last = match self.connection.call(&message, CALL_TIMEOUT).await {
                Ok(Reply::Kv(KvReply::NotLeader(Some((_, addr))))) => {
                    self.retarget(addr);
                    "redirected".to_string()
                }
                Ok(Reply::Kv(KvReply::NotLeader(None))) => {
                    self.try_next_node();
                    tokio::time::sleep(RETRY_PAUSE).await;
                    "no leader known".to_string()
                }
                Ok(Reply::Kv(KvReply::Failed(why))) => return Err(ClientError::Failed(why)),
                Ok(Reply::Kv(reply)) => return Ok(reply),
                Ok(other) => return Err(ClientError::Failed(format!("unexpected reply {other:?}"))),
                Err(e) => {
                    self.try_next_node();
                    if !matches!(e, CallError::Timeout) {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    e.to_string()
                }
            };
            if Instant::now() >= deadline {
                return Err(ClientError::NoLeader(last));
            }
        }
    }
}

/// Sends one request to the node at `addr` itself (no redirects): administration, waits, dumps.
pub async fn call_node(addr: &str, request: KvRequest, timeout: Duration) -> Result<KvReply, ClientError> {
    let mut connection = Connection::new(addr);
    match connection.call(&Message::Kv(request), timeout).await {
        Ok(Reply::Kv(reply)) => Ok(reply),
        Ok(other) => Err(ClientError::Failed(format!("unexpected reply {other:?}"))),
        Err(e) => Err(ClientError::NoLeader(e.to_string())),
    }
}
