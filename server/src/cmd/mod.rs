//! The command table: each command's name, arity and handler, one file per family. A handler
//! parses its arguments, then applies them to a view of the keyspace (`db.rs`); the connection
//! decides which view (the store for reads, a transaction for writes and for EXEC).

pub(crate) mod expiry;
pub(crate) mod float;
pub(crate) mod keyspace;
pub(crate) mod parse;
pub(crate) mod pure;
pub(crate) mod strings;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::db::{Read, Write};
use crate::reply::{self, Reply, QUOTED_ARG_BYTES_MAX};

/// How a command runs.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// Reads the keyspace only.
    Read(fn(&dyn Read, &[Bytes]) -> Reply),
    /// May write: runs in a store transaction.
    Write(fn(&mut dyn Write, &[Bytes]) -> Reply),
    /// Needs neither the keyspace nor the connection (PING, ECHO, TIME, SELECT).
    Pure(fn(&[Bytes]) -> Reply),
    /// Works on the connection's own state (AUTH, MULTI, CLIENT, ...): see `session.rs`.
    Session,
}

/// One command of the table.
pub(crate) struct Spec {
    /// Lowercase name, as error texts show it.
    pub(crate) name: &'static str,
    /// Redis's arity: `n` exactly `n` arguments (the name counted), `-n` at least `n`.
    pub(crate) arity: i32,
    pub(crate) handler: Handler,
    /// First key, last key (-1: the last argument) and step, for COMMAND.
    pub(crate) keys: (i32, i32, i32),
    /// Whether it lists the keyspace ([`Read::keys`]): a transaction running it needs the list of
    /// keys taken just before it is queued.
    pub(crate) lists_keys: bool,
}

impl Spec {
    /// Whether `argc` arguments (the name counted) suit the arity.
    pub(crate) fn arity_ok(&self, argc: usize) -> bool {
        arity_ok(self.arity, argc)
    }

    /// Whether the command writes (as COMMAND's flags say).
    pub(crate) fn writes(&self) -> bool {
        matches!(self.handler, Handler::Write(_))
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);
const TWO: (i32, i32, i32) = (1, 2, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);

fn read(name: &'static str, arity: i32, f: fn(&dyn Read, &[Bytes]) -> Reply, keys: (i32, i32, i32)) -> Spec {
    Spec { name, arity, handler: Handler::Read(f), keys, lists_keys: false }
}

fn write(name: &'static str, arity: i32, f: fn(&mut dyn Write, &[Bytes]) -> Reply, keys: (i32, i32, i32)) -> Spec {
    Spec { name, arity, handler: Handler::Write(f), keys, lists_keys: false }
}

fn session(name: &'static str, arity: i32) -> Spec {
    Spec { name, arity, handler: Handler::Session, keys: NONE, lists_keys: false }
}

fn pure(name: &'static str, arity: i32, f: fn(&[Bytes]) -> Reply) -> Spec {
    Spec { name, arity, handler: Handler::Pure(f), keys: NONE, lists_keys: false }
}

fn table() -> Vec<Spec> {
    use expiry as e;
    use keyspace as k;
    use strings as s;
    let listing = |spec: Spec| Spec { lists_keys: true, ..spec };
    vec![
        read("get", 2, s::get, ONE),
        write("set", -3, s::set, ONE),
        write("setnx", 3, s::setnx, ONE),
        write("setex", 4, s::setex, ONE),
        write("psetex", 4, s::psetex, ONE),
        write("getset", 3, s::getset, ONE),
        write("getdel", 2, s::getdel, ONE),
        write("getex", -2, s::getex, ONE),
        read("mget", -2, s::mget, ALL),
        write("mset", -3, s::mset, (1, -1, 2)),
        write("msetnx", -3, s::msetnx, (1, -1, 2)),
        write("append", 3, s::append, ONE),
        read("strlen", 2, s::strlen, ONE),
        read("getrange", 4, s::getrange, ONE),
        read("substr", 4, s::getrange, ONE),
        write("setrange", 4, s::setrange, ONE),
        write("incr", 2, s::incr, ONE),
        write("incrby", 3, s::incrby, ONE),
        write("incrbyfloat", 3, s::incrbyfloat, ONE),
        write("decr", 2, s::decr, ONE),
        write("decrby", 3, s::decrby, ONE),
        write("setbit", 4, s::setbit, ONE),
        read("getbit", 3, s::getbit, ONE),
        read("bitcount", -2, s::bitcount, ONE),
        write("del", -2, k::del, ALL),
        write("unlink", -2, k::del, ALL),
        read("exists", -2, k::exists, ALL),
        read("touch", -2, k::exists, ALL),
        read("type", 2, k::type_of, ONE),
        listing(read("keys", 2, k::keys, NONE)),
        listing(read("scan", -2, k::scan, NONE)),
        listing(read("randomkey", 1, k::randomkey, NONE)),
        listing(read("dbsize", 1, k::dbsize, NONE)),
        write("rename", 3, k::rename, TWO),
        write("renamenx", 3, k::renamenx, TWO),
        write("copy", -3, k::copy, TWO),
        listing(write("flushdb", -1, k::flushdb, NONE)),
        listing(write("flushall", -1, k::flushdb, NONE)),
        write("expire", -3, e::expire, ONE),
        write("pexpire", -3, e::pexpire, ONE),
        write("expireat", -3, e::expireat, ONE),
        write("pexpireat", -3, e::pexpireat, ONE),
        read("ttl", 2, e::ttl, ONE),
        read("pttl", 2, e::pttl, ONE),
        read("expiretime", 2, e::expiretime, ONE),
        read("pexpiretime", 2, e::pexpiretime, ONE),
        write("persist", 2, e::persist, ONE),
        pure("ping", -1, pure::ping),
        pure("echo", 2, pure::echo),
        pure("time", 1, pure::time),
        pure("select", 2, pure::select),
        session("hello", -1),
        session("auth", -2),
        session("quit", -1),
        session("reset", 1),
        session("client", -2),
        session("command", -1),
        session("info", -1),
        session("config", -2),
        session("multi", 1),
        session("exec", 1),
        session("discard", 1),
        session("watch", -2),
        session("unwatch", 1),
    ]
}

/// Every command, by lowercase name.
pub(crate) fn commands() -> &'static HashMap<&'static str, Spec> {
    static TABLE: OnceLock<HashMap<&'static str, Spec>> = OnceLock::new();
    TABLE.get_or_init(|| table().into_iter().map(|spec| (spec.name, spec)).collect())
}

/// The command named by `name`, any case.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 16 {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    commands().get(std::str::from_utf8(&lower).ok()?)
}

/// Redis 7.0's unknown-command error: the name and then the arguments quoted as `'%.*s' ` while
/// fewer than [`QUOTED_ARG_BYTES_MAX`] bytes of them are quoted, each cut to what is left.
pub(crate) fn unknown_command(args: &[Bytes]) -> Reply {
    let mut quoted = Vec::new();
    for arg in &args[1..] {
        if quoted.len() >= QUOTED_ARG_BYTES_MAX {
            break;
        }
        let arg = reply::quoted(arg);
        let left = QUOTED_ARG_BYTES_MAX - quoted.len();
        quoted.extend_from_slice(b"'");
        quoted.extend_from_slice(&arg[..arg.len().min(left)]);
        quoted.extend_from_slice(b"' ");
    }
    let name = reply::quoted_cut(&args[0]);
    Reply::error([b"ERR unknown command '", name, b"', with args beginning with: ", &quoted].concat())
}

/// Whether `argc` arguments suit Redis's `arity` (`n`: exactly `n`, `-n`: at least `n`).
pub(crate) fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i32::try_from(argc).unwrap_or(i32::MAX);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// Redis's wrong-arity error.
pub(crate) fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// The error for a key the store cannot hold, if it is one.
pub(crate) fn key_error(key: &[u8]) -> Option<Reply> {
    if key.is_empty() {
        return Some(Reply::error("ERR empty keys are not supported"));
    }
    (key.len() > ferrocask::format::KEY_BYTES_MAX)
        .then(|| Reply::error(format!("ERR key is longer than {} bytes", ferrocask::format::KEY_BYTES_MAX)))
}
