//! Connection and server commands that read server state: CLIENT, COMMAND, INFO, CONFIG and
//! HELLO's reply.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::cmd::parse::{glob_match, int, is, text};
use crate::cmd::{self, Spec};
use crate::db::Db;
use crate::reply::Reply;
use crate::session::Session;

/// The Redis version this server answers as (the commands and replies it matches).
pub const REDIS_VERSION: &str = "7.0.0";

fn unknown_subcommand(sub: &[u8], command: &str) -> Reply {
    Reply::error(format!("ERR unknown subcommand '{}'. Try {command} HELP.", text(sub)))
}

/// Sets the client's name, with Redis's rule on the bytes it may hold.
pub(crate) fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    session.name = name.to_vec();
    session.db.set_client_name(session.id, name.to_vec());
    Ok(())
}

/// CLIENT ID | SETNAME | GETNAME | INFO | LIST | SETINFO.
pub(crate) fn client(session: &mut Session, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    let arity =
        |n: usize| (args.len() != n).then(|| cmd::wrong_arity(&format!("client|{}", text(sub).to_ascii_lowercase())));
    if is(sub, "id") {
        arity(2).unwrap_or(Reply::Int(session.id as i64))
    } else if is(sub, "setname") {
        arity(3).unwrap_or_else(|| set_name(session, &args[2]).map_or_else(|e| e, |()| Reply::OK))
    } else if is(sub, "getname") {
        arity(2).unwrap_or_else(|| if session.name.is_empty() { Reply::Nil } else { Reply::bulk(session.name.clone()) })
    } else if is(sub, "info") {
        arity(2).unwrap_or_else(|| Reply::Verbatim(client_line(&session.db, session.id, session.resp)))
    } else if is(sub, "list") {
        let clients = session.db.clients.lock().keys().copied().collect::<Vec<_>>();
        let resp = session.resp;
        let lines: String = clients
            .into_iter()
            .map(|id| client_line(&session.db, id, if id == session.id { resp } else { 0 }))
            .collect();
        Reply::Verbatim(lines)
    } else if is(sub, "setinfo") {
        arity(4).unwrap_or(Reply::OK)
    } else {
        unknown_subcommand(sub, "CLIENT")
    }
}

/// One line of CLIENT LIST (`resp` 0: not known here).
fn client_line(db: &Db, id: u64, resp: u8) -> String {
    let clients = db.clients.lock();
    let Some(c) = clients.get(&id) else { return String::new() };
    let resp = if resp == 0 { String::new() } else { format!(" resp={resp}") };
    format!(
        "id={id} addr={} name={} age={} idle=0 flags=N db=0 user=default{resp}\n",
        c.addr,
        String::from_utf8_lossy(&c.name),
        c.connected.elapsed().as_secs(),
    )
}

/// COMMAND [COUNT | INFO name... | DOCS name... | LIST].
pub(crate) fn command(args: &[Bytes]) -> Reply {
    let mut all: Vec<&'static Spec> = cmd::commands().values().collect();
    all.sort_by_key(|spec| spec.name);
    let Some(sub) = args.get(1) else { return Reply::Array(all.into_iter().map(command_info).collect()) };
    let named = || args[2..].iter().map(|name| cmd::lookup(name));
    if is(sub, "count") {
        Reply::Int(all.len() as i64)
    } else if is(sub, "list") {
        Reply::Array(all.iter().map(|spec| Reply::bulk(spec.name)).collect())
    } else if is(sub, "info") {
        if args.len() == 2 {
            return Reply::Array(all.into_iter().map(command_info).collect());
        }
        Reply::Array(named().map(|spec| spec.map_or(Reply::NilArray, command_info)).collect())
    } else if is(sub, "docs") {
        let specs: Vec<&'static Spec> = if args.len() == 2 { all } else { named().flatten().collect() };
        Reply::Map(specs.into_iter().map(|spec| (Reply::bulk(spec.name), command_docs(spec))).collect())
    } else {
        unknown_subcommand(sub, "COMMAND")
    }
}

fn command_info(spec: &'static Spec) -> Reply {
    let flags: Vec<Reply> = if spec.writes() {
        vec![Reply::Status("write")]
    } else if spec.keys.0 > 0 {
        vec![Reply::Status("readonly"), Reply::Status("fast")]
    } else {
        vec![Reply::Status("fast")]
    };
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(spec.arity.into()),
        Reply::Array(flags),
        Reply::Int(first.into()),
        Reply::Int(last.into()),
        Reply::Int(step.into()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn command_docs(spec: &'static Spec) -> Reply {
    let group = match spec.handler {
        cmd::Handler::Session | cmd::Handler::Pure(_) => "connection",
        _ if spec.keys == (0, 0, 0) => "server",
        _ => "string",
    };
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(format!("{} (see the Redis documentation)", spec.name.to_uppercase()))),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(group)),
    ])
}

/// INFO [section...]: server, clients, persistence, stats, keyspace.
pub(crate) fn info(db: &Db, args: &[Bytes]) -> Reply {
    let wanted = |section: &str| {
        args.len() == 1
            || args[1..].iter().any(|a| is(a, section) || is(a, "all") || is(a, "default") || is(a, "everything"))
    };
    let mut out = String::new();
    let mut section = |name: &str, lines: Vec<(&str, String)>| {
        if wanted(&name.to_ascii_lowercase()) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&format!("# {name}\r\n"));
            for (k, v) in lines {
                out.push_str(&format!("{k}:{v}\r\n"));
            }
        }
    };
    let uptime = db.started.elapsed().as_secs();
    section(
        "Server",
        vec![
            ("redis_version", REDIS_VERSION.into()),
            ("ferrocask_version", env!("CARGO_PKG_VERSION").into()),
            ("redis_mode", "standalone".into()),
            ("arch_bits", (usize::BITS).to_string()),
            ("process_id", std::process::id().to_string()),
            ("tcp_port", db.port.to_string()),
            ("uptime_in_seconds", uptime.to_string()),
            ("uptime_in_days", (uptime / 86_400).to_string()),
        ],
    );
    section(
        "Clients",
        vec![("connected_clients", db.client_count().to_string()), ("maxclients", db.maxclients.to_string())],
    );
    let stats = db.store.stats();
    section(
        "Persistence",
        vec![
            ("loading", "0".into()),
            ("write_through", "1".into()),
            ("aof_enabled", "1".into()),
            ("appendfsync", "always".into()),
            ("rdb_changes_since_last_save", "0".into()),
            ("ferrocask_segments", stats.segments.to_string()),
        ],
    );
    let c = &db.counters;
    section(
        "Stats",
        vec![
            ("total_connections_received", c.connections_received.load(Ordering::Relaxed).to_string()),
            ("total_commands_processed", c.commands_processed.load(Ordering::Relaxed).to_string()),
            ("rejected_connections", c.rejected_connections.load(Ordering::Relaxed).to_string()),
        ],
    );
    let keys = db.store.len();
    let keyspace = if keys == 0 { Vec::new() } else { vec![("db0", format!("keys={keys},expires=0,avg_ttl=0"))] };
    section("Keyspace", keyspace);
    Reply::Verbatim(out)
}

/// CONFIG GET pattern... | SET parameter value | RESETSTAT.
pub(crate) fn config(db: &Db, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "get") {
        if args.len() < 3 {
            return cmd::wrong_arity("config|get");
        }
        let params = config_params(db);
        let pairs = params
            .into_iter()
            .filter(|(name, _)| args[2..].iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
            .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value.into_bytes())))
            .collect();
        Reply::Map(pairs)
    } else if is(sub, "set") {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return cmd::wrong_arity("config|set");
        }
        config_set(db, &args[2..])
    } else if is(sub, "resetstat") {
        Reply::OK
    } else {
        unknown_subcommand(sub, "CONFIG")
    }
}

fn config_params(db: &Db) -> Vec<(&'static str, String)> {
    vec![
        ("bind", db.bind.clone()),
        ("port", db.port.to_string()),
        ("maxclients", db.maxclients.to_string()),
        ("timeout", db.idle_timeout_secs.load(Ordering::Relaxed).to_string()),
        ("databases", "1".into()),
        ("appendonly", "yes".into()),
        ("appendfsync", "always".into()),
        ("save", String::new()),
        ("proto-max-bulk-len", db.value_bytes_max.to_string()),
    ]
}

/// CONFIG SET: only `timeout` (idle seconds before a client is closed; 0 = never) may change.
fn config_set(db: &Db, pairs: &[Bytes]) -> Reply {
    let mut timeout = None;
    for pair in pairs.chunks(2) {
        if !is(&pair[0], "timeout") {
            return Reply::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                text(&pair[0])
            ));
        }
        match int(&pair[1]) {
            Ok(n) if n >= 0 => timeout = Some(n as u64),
            _ => {
                return Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - argument couldn't be parsed into an integer",
                    text(&pair[0])
                ))
            }
        }
    }
    if let Some(t) = timeout {
        db.idle_timeout_secs.store(t, Ordering::Relaxed);
    }
    Reply::OK
}

/// HELLO's reply: the server's and the connection's properties.
pub(crate) fn hello_reply(session: &Session) -> Reply {
    let field = |k: &str, v: Reply| (Reply::bulk(k.to_string().into_bytes()), v);
    Reply::Map(vec![
        field("server", Reply::bulk("redis")),
        field("version", Reply::bulk(REDIS_VERSION)),
        field("proto", Reply::Int(session.resp.into())),
        field("id", Reply::Int(session.id as i64)),
        field("mode", Reply::bulk("standalone")),
        field("role", Reply::bulk("master")),
        field("modules", Reply::Array(Vec::new())),
    ])
}
