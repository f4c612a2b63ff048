//! CLIENT KILL, as Redis 7.0: the old form `CLIENT KILL addr:port` (`+OK`, or `No such client`;
//! it may kill the caller) and the filters `ID`, `TYPE`, `USER`, `ADDR`, `LADDR`, `SKIPME`
//! (all must match; the reply is how many were killed; SKIPME defaults to yes).
//!
//! A killed connection closes once the replies before the kill are written: it checks before
//! each request, and one waiting for its client is woken (`db::Kill`).

use std::collections::HashSet;

use bytes::Bytes;

use crate::cmd::parse::{is, strict_i64, SYNTAX};
use crate::db::ClientInfo;
use crate::reply::{quoted, Reply};
use crate::session::Session;

/// What the filters ask for; `None`: any.
#[derive(Default)]
struct Filter {
    id: Option<u64>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    /// TYPE (the last one given, as in Redis).
    kind: Option<Type>,
    skipme: bool,
}

/// A client's type, as Redis's TYPE filter names it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    /// Not subscribed to anything.
    Normal,
    /// Subscribed to a channel or a pattern (Redis's `CLIENT_PUBSUB`).
    PubSub,
    /// master, slave, replica: no ferrocask client is one.
    Replication,
}

impl Filter {
    fn matches(&self, id: u64, client: &ClientInfo, me: u64, subscribed: &HashSet<u64>) -> bool {
        let kind = if subscribed.contains(&id) { Type::PubSub } else { Type::Normal };
        !(self.kind.is_some_and(|want| want != kind)
            || (self.skipme && id == me)
            || self.id.is_some_and(|want| want != id)
            || self.addr.as_ref().is_some_and(|a| a[..] != *client.addr.as_bytes())
            || self.laddr.as_ref().is_some_and(|a| a[..] != *client.laddr.as_bytes()))
    }
}

/// CLIENT KILL ... (`args` from `CLIENT`).
pub(crate) fn client_kill(session: &Session, args: &[Bytes]) -> Reply {
    let old_form = args.len() == 3;
    let filter = if old_form {
        Filter { addr: Some(args[2].clone()), ..Filter::default() }
    } else {
        match parse(&args[2..]) {
            Ok(filter) => filter,
            Err(e) => return e,
        }
    };
    // Read before the clients table's lock: the two locks are never held together.
    let subscribed = if filter.kind.is_some() { session.db.pubsub.subscribed_clients() } else { HashSet::new() };
    let killed: Vec<(u64, String)> = {
        let clients = session.db.clients.lock();
        clients
            .iter()
            // A client killed before (its connection still closing) is not killed, nor counted,
            // twice.
            .filter(|(&id, client)| !client.kill.is_killed() && filter.matches(id, client, session.id, &subscribed))
            .map(|(&id, client)| {
                client.kill.kill();
                (id, client.addr.clone())
            })
            .collect()
    };
    for (id, addr) in &killed {
        tracing::info!(killed_client = id, killed_addr = %addr, "CLIENT KILL");
    }
    match (old_form, killed.len()) {
        (true, 0) => Reply::error("ERR No such client"),
        (true, _) => Reply::OK,
        (false, n) => Reply::Int(n as i64),
    }
}

/// The filters, as pairs; Redis's errors for a bad one.
fn parse(pairs: &[Bytes]) -> Result<Filter, Reply> {
    let mut filter = Filter { skipme: true, ..Filter::default() };
    for pair in pairs.chunks(2) {
        let [option, value] = pair else { return Err(Reply::error(SYNTAX)) };
        if is(option, "id") {
            match strict_i64(value) {
                Some(id) if id > 0 => filter.id = Some(id as u64),
                _ => return Err(Reply::error("ERR client-id should be greater than 0")),
            }
        } else if is(option, "type") {
            filter.kind = Some(if is(value, "normal") {
                Type::Normal
            } else if is(value, "pubsub") {
                Type::PubSub
            } else if ["master", "slave", "replica"].iter().any(|t| is(value, t)) {
                Type::Replication
            } else {
                return Err(Reply::error([&b"ERR Unknown client type '"[..], quoted(value), b"'"].concat()));
            });
        } else if is(option, "addr") {
            filter.addr = Some(value.clone());
        } else if is(option, "laddr") {
            filter.laddr = Some(value.clone());
        } else if is(option, "user") {
            // The default user is the only one, and every client's.
            if &value[..] != b"default" {
                return Err(Reply::error([&b"ERR No such user '"[..], quoted(value), b"'"].concat()));
            }
        } else if is(option, "skipme") && (is(value, "yes") || is(value, "no")) {
            filter.skipme = is(value, "yes");
        } else {
            return Err(Reply::error(SYNTAX));
        }
    }
    Ok(filter)
}
