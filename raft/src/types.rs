//! The type configuration: what a log entry carries and what applying it answers, and the
//! [`Apply`] seam through which the state machine runs the application's commands.
//!
//! The crate does not know what a command means: the server encodes each client command (its
//! arguments) into bytes, many commands share one entry (batching at the door), and the state
//! machine hands each back to the server's [`Apply`] inside one store transaction, at the time the
//! leader fixed for the entry. Replies travel back as bytes the server encoded.

use serde::{Deserialize, Serialize};

/// One log entry's payload: client commands that share one append and one fsync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The time the leader fixed for the entry (ms since the Unix epoch). The state machine runs
    /// the entry at `max(this, every earlier entry's time)`, so time never goes back on any
    /// replica and every replica computes the same state.
    pub now_ms: u64,
    /// The commands, each as the application encoded it, applied in this order.
    #[serde(with = "crate::codec::byte_strings")]
    pub commands: Vec<Vec<u8>>,
}

/// What applying a [`Request`] answers: one encoded reply per command, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The replies.
    #[serde(with = "crate::codec::byte_strings")]
    pub replies: Vec<Vec<u8>>,
}

/// What one call of [`Apply::apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The command is done; its encoded reply.
    Reply(Vec<u8>),
    /// The command's writes filled what one store transaction may hold: the state machine commits
    /// what it wrote (with the applied log id unchanged) and calls `apply` again with the same
    /// command in a new transaction, until it answers [`Applied::Reply`]. For commands that may
    /// touch more keys than one batch holds (FLUSHALL), which must go on where they stopped.
    Continue,
}

/// Runs the application's commands inside the state machine's transactions.
///
/// Must be deterministic: its effect and reply may depend only on `command`, the state `txn`
/// reads and `txn.now_ms()`, never on the local clock, randomness or anything else of the node.
pub trait Apply: Send + Sync + 'static {
    /// Runs `command` (as encoded by the application) in `txn`; on a reply that is an error the
    /// command must leave no write behind (the application rolls back to a savepoint).
    fn apply(&self, txn: &mut ferrocask::Txn<'_>, command: &[u8]) -> Applied;

    /// The key prefixes the application enumerates in order (the server's collections): the
    /// data store is opened with each declared as an ordered prefix.
    fn ordered_prefixes(&self) -> &'static [&'static [u8]] {
        &[]
    }

    /// The application's own type, for an application that finds its state in the node it
    /// started (the server's registry of blocked clients, which its state machine wakes).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration of ferrocask-raft.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
