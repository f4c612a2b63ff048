//! How a cluster member runs commands: writes in the state machine, inside the store
//! transaction `ferrocask-raft` gives each command of an entry (at the entry's time), and reads
//! on the leader once its read index is applied. The handlers are the single node's.

use std::hash::{Hash, Hasher};

use bytes::Bytes;
use ferrocask::Txn;
use ferrocask_raft::{Applied, Apply};

use super::wire::{encode_reply, Command};
use crate::cmd::{self, Handler};
use crate::db::{Db, Read, TxnView};
use crate::reply::Reply;

/// The server's [`Apply`]: decodes each command of an entry and runs it with its handler.
pub(crate) struct ServerApply {
    /// The store's value limit (as the single node's views carry it).
    pub(crate) value_bytes_max: usize,
    /// The clients blocked on this member: a write applied here wakes them.
    pub(crate) blocking: std::sync::Arc<crate::blocking::Blocking>,
}

impl Apply for ServerApply {
    fn apply(&self, txn: &mut Txn<'_>, command: &[u8]) -> Applied {
        let mut view = TxnView::hiding_reserved(txn, self.value_bytes_max).waking(&self.blocking);
        let reply = match Command::decode(command) {
            Err(e) => Reply::error(format!("ERR {e}")),
            // A blocked client's pop, run again once woken (see `Session::block`).
            Ok(Command::Run(args)) if args.first().is_some_and(|name| name[..] == *RETRY) => {
                view.run(|view| cmd::blocking::retry(view, &args[1..]))
            }
            Ok(Command::Run(args)) => match args.first().and_then(|name| cmd::lookup(name)) {
                None => cmd::unknown_command(&args),
                // FLUSHDB, FLUSHALL: the deletes that fit are kept, and the state machine calls
                // again in a new transaction (the command is alone in its entry).
                Some(spec) if spec.lists_keys && spec.writes() => {
                    let Handler::Write(f) = spec.handler else { unreachable!("writes() says Write") };
                    let reply = f(&mut view, &args);
                    if view.overflowed {
                        return Applied::Continue;
                    }
                    reply
                }
                Some(spec) => view.run(|view| match spec.handler {
                    Handler::Write(f) => f(view, &args),
                    Handler::Read(f) => f(view, &args),
                    Handler::Pure(f) => f(&args),
                    Handler::Session => Reply::error("ERR internal: a session command reached the log"),
                }),
            },
            Ok(Command::Exec { watched, queued }) => {
                if watched.iter().any(|(key, fingerprint)| self::fingerprint(&view, key) != *fingerprint) {
                    Reply::NilArray
                } else {
                    let mut specs = Vec::with_capacity(queued.len());
                    for args in queued {
                        match args.first().and_then(|name| cmd::lookup(name)) {
                            Some(spec) => specs.push((spec, args)),
                            None => return Applied::Reply(encode_reply(&cmd::unknown_command(&args))),
                        }
                    }
                    crate::session::exec_queued(&mut view, &specs, None)
                }
            }
            Ok(Command::Fingerprints(keys)) => fingerprints(&view, &keys),
        };
        Applied::Reply(encode_reply(&reply))
    }

    fn ordered_prefixes(&self) -> &'static [&'static [u8]] {
        &crate::collection::ORDERED_PREFIXES
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The first argument of a woken client's pop in the log, before the command's own: no
/// command's name (it starts with the reserved prefix), and only a session sends it.
pub(crate) const RETRY: &[u8] = b"\xff\xfdretry";

/// What WATCH keeps of a key in a cluster: a hash of its value and expiry (`None`: absent).
/// The single node keeps the value's record number, which differs between replicas; this is the
/// same on every replica. Unlike Redis, a write that puts back the same value and expiry does
/// not fail the EXEC (it changed nothing a command could read).
/// A collection's fingerprint hashes its meta record, whose stamp every write to it bumps.
pub(crate) fn fingerprint(view: &dyn Read, key: &[u8]) -> Option<u64> {
    let (tag, (value, expires)) = match view.get(key) {
        Some(found) => (0u8, found),
        None => (1u8, view.get(&crate::collection::meta_key(key))?),
    };
    // SipHash with fixed keys: the same on every node running this build.
    #[allow(deprecated, reason = "SipHasher's fixed keys are the point: every replica must agree")]
    let mut h = std::hash::SipHasher::new();
    if tag != 0 {
        tag.hash(&mut h);
    }
    value.hash(&mut h);
    expires.hash(&mut h);
    Some(h.finish())
}

fn fingerprints(view: &dyn Read, keys: &[Bytes]) -> Reply {
    Reply::Array(
        keys.iter()
            .map(|key| fingerprint(view, key).map_or(Reply::Nil, |f| Reply::Int(i64::from_ne_bytes(f.to_ne_bytes()))))
            .collect(),
    )
}

/// Runs a read on the leader's applied state (after its read index): a command of the table, or
/// WATCH's fingerprints.
pub(crate) fn read(db: &Db, command: &Command) -> Reply {
    let view = db.counted_view();
    match command {
        Command::Run(args) => match args.first().and_then(|name| cmd::lookup(name)) {
            Some(spec) => match spec.handler {
                Handler::Read(f) => f(&view, args),
                Handler::Pure(f) => f(args),
                _ => Reply::error("ERR internal: a write was routed as a read"),
            },
            None => cmd::unknown_command(args),
        },
        Command::Fingerprints(keys) => fingerprints(&db.view(), keys),
        Command::Exec { .. } => Reply::error("ERR internal: EXEC was routed as a read"),
    }
}
