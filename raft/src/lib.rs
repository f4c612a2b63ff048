//! ferrocask as the log and state machine of an [openraft] cluster: what `ferrocask serve`
//! runs on when it is a cluster member.
//!
//! The crate is layered the way openraft's own stores and examples are:
//!
//! * storage — [`LogStore`] (the Raft log, vote and log pointers) and [`StateMachine`] (the
//!   replicated data, its applied position and membership, and snapshots), each on its own
//!   ferrocask [`Store`](ferrocask::Store); they know nothing of the network, nor what a command
//!   means: the application's [`Apply`] runs each command inside a store transaction;
//! * network — [`network`]: length-prefixed frames over TCP, the client side of the Raft RPCs
//!   ([`network::Network`]) with a timeout on every call; it knows nothing of the storage;
//! * node — [`node`] wires storage, network and [`openraft::Raft`] into a node and serves the
//!   Raft RPCs, forwarded commands and membership changes on the node's Raft listener.
//!
//! Every vote and log append is acknowledged to openraft only after the ferrocask group commit
//! that holds it is durable. DESIGN.md ("The cluster") has the key layout, the durability mapping,
//! the snapshot format and every crash case.

#![deny(missing_docs)]
#![allow(
    clippy::result_large_err,
    reason = "openraft's storage traits return StorageError by value; the helpers return what the traits return"
)]

mod codec;
mod keys;
mod log_store;
pub mod network;
pub mod node;
mod state_machine;
mod types;

pub use keys::{is_reserved, reserved_key_count, reserved_key_count_in, RESERVED_KEYS_MAX, RESERVED_PREFIX};
pub use log_store::LogStore;
pub use state_machine::{StateMachine, TXN_RESERVED_BYTES};
pub use types::{Applied, Apply, Request, Response, TypeConfig};

/// A node's identifier.
pub type NodeId = u64;
/// The openraft instance of this crate's type configuration.
pub type Raft = openraft::Raft<TypeConfig>;
/// A storage error in this crate's type configuration.
pub type StorageError = openraft::StorageError<NodeId>;

/// Opens the log store and state machine of a node in `dir` (created if missing): the log in
/// `dir/log`, the state machine in `dir/sm` (see [`StateMachine::open`]).
pub fn open_storage(
    dir: &std::path::Path,
    apply: std::sync::Arc<dyn Apply>,
) -> Result<(LogStore, StateMachine), StorageError> {
    let log = LogStore::open(&dir.join("log"))?;
    let sm = StateMachine::open(&dir.join("sm"), apply)?;
    Ok((log, sm))
}
