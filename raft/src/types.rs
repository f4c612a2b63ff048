//! The type configuration: what a log entry carries and what applying it answers.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// A write to the replicated key-value map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Put {
        /// The key (at most [`KEY_BYTES_MAX`](crate::node::KEY_BYTES_MAX) bytes).
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key` (a no-op if absent).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// What applying a [`Request`] answers: nothing beyond "applied at this log id".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {}

openraft::declare_raft_types!(
    /// The openraft type configuration of ferrocask-raft.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);
