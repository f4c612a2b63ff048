//! `ferrocask serve`: a Redis-protocol (RESP2 and RESP3) server over a [`ferrocask::Store`].
//!
//! Write-through, stronger than Redis's `appendfsync always`: a write's reply is sent only once
//! the write is durable, and reads see only durable data, because every write runs as a store
//! transaction (`Store::transaction_async`) whose future resolves after its group commit, and
//! reads come from the store's published index. All connections' writes share group commits.
//! See DESIGN.md, "The Redis-protocol server".
//!
//! Layout, after tokio's mini-redis: [`server`] (accept loop, client limit, shutdown), [`listen`]
//! (the plain TCP, TLS and Unix socket listeners), [`tls`] (certificates), [`fd_limit`]
//! (maxclients fitted to the open-file limit), `connection` (framing and pipelining),
//! [`protocol`] (request parsing and its bounds), [`reply`] (encoding), `session` (one client's
//! state: AUTH, MULTI, WATCH), `cmd/` (one file per command family, each handler parsing then
//! applying), `collection` (how hashes and sets are kept: one record per member), `db` (shared state and the two views the commands run on), [`config`] (the
//! parameters, the config file, CONFIG REWRITE), `admin` (SAVE, BGSAVE, LASTSAVE, SHUTDOWN, ROLE),
//! `pubsub` (channels, patterns and their subscribers) and [`outbox`] (the bounded queue of
//! frames other connections make for one: MONITOR lines, pub/sub messages).
#![deny(missing_docs)]

mod acl;
mod admin;
mod blocking;
mod client_kill;
pub mod cluster;
mod cmd;
mod collection;
mod commit;
pub mod config;
mod connection;
mod db;
pub mod fd_limit;
pub mod fuzzing;
pub mod latency;
pub mod listen;
pub mod monitor;
pub mod outbox;
mod pause;
pub mod protocol;
mod pubsub;
pub mod reply;
pub mod server;
mod server_cmds;
mod session;
pub mod slowlog;
mod sweeper;
pub mod tls;
#[cfg(unix)]
mod unix_socket;

pub use collection::{INTERNAL, ORDERED_PREFIXES};
pub use listen::Listeners;
pub use protocol::Limits;
pub use reply::Reply;
pub use server::{run, run_on, Config, Meters};
pub use server_cmds::REDIS_VERSION;
