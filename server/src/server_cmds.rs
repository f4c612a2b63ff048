//! Connection and server commands that read server state: CLIENT, COMMAND, INFO, CONFIG,
//! SLOWLOG, LATENCY and HELLO's reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::cmd::parse::{glob_match, is};
use crate::cmd::{self, Spec};
use crate::db::Db;
use crate::reply::{quoted, quoted_cut, Reply};
use crate::session::Session;

/// The Redis version this server answers as (the commands and replies it matches).
pub const REDIS_VERSION: &str = "7.0.0";

/// Redis's error for a subcommand it does not know, the subcommand cut as Redis cuts it.
fn unknown_subcommand(sub: &[u8], command: &str) -> Reply {
    let text = [&b"ERR unknown subcommand '"[..], quoted_cut(sub), b"'. Try ", command.as_bytes(), b" HELP."];
    Reply::error(text.concat())
}

/// Redis's rule on the bytes a client name may hold.
pub(crate) fn check_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// Sets the client's name, once [`check_name`] has accepted it.
pub(crate) fn apply_name(session: &mut Session, name: &[u8]) {
    session.name = name.to_vec();
    session.db.set_client_name(session.id, name.to_vec());
}

/// CLIENT SETNAME's and HELLO's naming: checked, then set.
fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Reply> {
    check_name(name)?;
    apply_name(session, name);
    Ok(())
}

/// A subcommand: its lowercase name and Redis's arity (the command and subcommand counted;
/// negative: at least).
pub(crate) type Subcommand = (&'static str, i32);

/// For a command with subcommands: the subcommand `args` names, as Redis names it in errors
/// (`client|id`), or the error Redis gives before anything else when it is unknown or its arity
/// is wrong. `None` for a command without subcommands (or none given).
pub(crate) fn full_name(args: &[Bytes]) -> Option<Result<String, Reply>> {
    let name = args[0].to_ascii_lowercase();
    let (table, upper) = match &name[..] {
        b"acl" => (crate::acl::ACL_SUBCOMMANDS, "ACL"),
        b"client" => (CLIENT_SUBCOMMANDS, "CLIENT"),
        b"command" => (COMMAND_SUBCOMMANDS, "COMMAND"),
        b"config" => (CONFIG_SUBCOMMANDS, "CONFIG"),
        b"slowlog" => (SLOWLOG_SUBCOMMANDS, "SLOWLOG"),
        b"latency" => (LATENCY_SUBCOMMANDS, "LATENCY"),
        b"pubsub" => (crate::pubsub::PUBSUB_SUBCOMMANDS, "PUBSUB"),
        _ => return None,
    };
    args.get(1)?;
    Some(subcommand(table, args, upper).map(|sub| format!("{}|{sub}", upper.to_ascii_lowercase())))
}

/// The subcommand of `args[1]` in `table`, or the error Redis gives when it is unknown or its
/// arity is wrong (`command`: the command's name in capitals).
pub(crate) fn subcommand(table: &[Subcommand], args: &[Bytes], command: &str) -> Result<&'static str, Reply> {
    let Some(&(name, arity)) = table.iter().find(|(name, _)| is(&args[1], name)) else {
        return Err(unknown_subcommand(&args[1], command));
    };
    if !cmd::arity_ok(arity, args.len()) {
        return Err(cmd::wrong_arity(&format!("{}|{name}", command.to_ascii_lowercase())));
    }
    Ok(name)
}

const CLIENT_SUBCOMMANDS: &[Subcommand] = &[
    ("id", 2),
    ("setname", 3),
    ("getname", 2),
    ("info", 2),
    ("list", -2),
    ("setinfo", 4),
    ("help", 2),
    ("no-evict", 3),
    ("reply", 3),
    ("tracking", -3),
    ("kill", -3),
    ("unblock", -3),
    ("pause", -3),
    ("unpause", 2),
];

/// CLIENT HELP's text, as Redis 7.0 prints it (it lists the subcommands ferrocask refuses too,
/// so a client reading it sees Redis's interface).
const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

/// CLIENT ID | SETNAME | GETNAME | INFO | LIST | SETINFO | HELP | NO-EVICT | REPLY | TRACKING |
/// KILL | UNBLOCK.
pub(crate) fn client(session: &mut Session, args: &[Bytes]) -> Reply {
    let name = match subcommand(CLIENT_SUBCOMMANDS, args, "CLIENT") {
        Ok(name) => name,
        Err(e) => return e,
    };
    let on_off = |arg: &[u8]| is(arg, "on") || is(arg, "off");
    match name {
        "id" => Reply::Int(session.id as i64),
        "setname" => set_name(session, &args[2]).map_or_else(|e| e, |()| Reply::OK),
        "getname" if session.name.is_empty() => Reply::Nil,
        "getname" => Reply::bulk(session.name.clone()),
        "info" => Reply::Verbatim(client_line(&session.db, session.id, session.resp)),
        "list" => {
            let clients = session.db.clients.lock().keys().copied().collect::<Vec<_>>();
            let resp = session.resp;
            let lines: String = clients
                .into_iter()
                .map(|id| client_line(&session.db, id, if id == session.id { resp } else { 0 }))
                .collect();
            Reply::Verbatim(lines)
        }
        "setinfo" => Reply::OK,
        "help" => Reply::Array(CLIENT_HELP.iter().map(|line| Reply::Status(line)).collect()),
        // Nothing is ever evicted: the store keeps every key on disk.
        "no-evict" if on_off(&args[2]) => Reply::OK,
        // Replies always go to the client: ON is what it asks for.
        "reply" if is(&args[2], "on") => Reply::OK,
        "reply" if is(&args[2], "off") || is(&args[2], "skip") => {
            Reply::error("ERR CLIENT REPLY OFF and SKIP are not supported by ferrocask")
        }
        // Tracking is never on, so turning it off (without options) is already done.
        "tracking" if is(&args[2], "off") && args.len() == 3 => Reply::OK,
        "tracking" if on_off(&args[2]) => {
            Reply::error("ERR CLIENT TRACKING (client side caching) is not supported by ferrocask")
        }
        "kill" => crate::client_kill::client_kill(session, args),
        "unblock" if args.len() <= 4 => client_unblock(&session.db, args),
        "pause" => crate::pause::client_pause(&session.db.pause, args),
        "unpause" => crate::pause::client_unpause(&session.db.pause),
        _ => Reply::error(crate::cmd::parse::SYNTAX),
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends a blocking pop's wait, as its timeout would (a nil
/// array) or with an `UNBLOCKED` error; 1 if the client was blocked.
fn client_unblock(db: &Db, args: &[Bytes]) -> Reply {
    let Some(id) = crate::cmd::parse::strict_i64(&args[2]) else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    let how = match args.get(3) {
        None => crate::blocking::UNBLOCKED_TIMEOUT,
        Some(arg) if is(arg, "timeout") => crate::blocking::UNBLOCKED_TIMEOUT,
        Some(arg) if is(arg, "error") => crate::blocking::UNBLOCKED_ERROR,
        Some(_) => return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let unblocked = u64::try_from(id).is_ok_and(|id| db.blocking.unblock(id, how));
    Reply::Int(i64::from(unblocked))
}

/// One line of CLIENT LIST (`resp` 0: not known here).
fn client_line(db: &Db, id: u64, resp: u8) -> String {
    let clients = db.clients.lock();
    let Some(c) = clients.get(&id) else { return String::new() };
    let resp = if resp == 0 { String::new() } else { format!(" resp={resp}") };
    format!(
        "id={id} addr={} laddr={} name={} age={} idle=0 flags=N db=0 user=default{resp}\n",
        c.addr,
        c.laddr,
        String::from_utf8_lossy(&c.name),
        c.connected.elapsed().as_secs(),
    )
}

const COMMAND_SUBCOMMANDS: &[Subcommand] = &[("count", 2), ("list", -2), ("info", -2), ("docs", -2), ("help", 2)];

/// COMMAND HELP's text, as Redis 7.0 prints it (it lists GETKEYS and GETKEYSANDFLAGS, which
/// ferrocask does not have, so a client reading it sees Redis's interface).
const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

/// COMMAND [COUNT | INFO name... | DOCS name... | LIST].
pub(crate) fn command(args: &[Bytes]) -> Reply {
    let mut all: Vec<&'static Spec> = cmd::commands().values().collect();
    all.sort_by_key(|spec| spec.name);
    if args.len() == 1 {
        return Reply::Array(all.into_iter().map(command_info).collect());
    }
    let name = match subcommand(COMMAND_SUBCOMMANDS, args, "COMMAND") {
        Ok(name) => name,
        Err(e) => return e,
    };
    let named = || args[2..].iter().map(|name| cmd::lookup(name));
    match name {
        "count" => Reply::Int(all.len() as i64),
        "list" => Reply::Array(all.iter().map(|spec| Reply::bulk(spec.name)).collect()),
        "info" if args.len() == 2 => Reply::Array(all.into_iter().map(command_info).collect()),
        "info" => Reply::Array(named().map(|spec| spec.map_or(Reply::NilArray, command_info)).collect()),
        "help" => Reply::Array(COMMAND_HELP.iter().map(|line| Reply::Status(line)).collect()),
        _ => {
            let specs: Vec<&'static Spec> = if args.len() == 2 { all } else { named().flatten().collect() };
            Reply::Map(specs.into_iter().map(|spec| (Reply::bulk(spec.name), command_docs(spec))).collect())
        }
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

/// The sections INFO shows with no argument, `default` or `all`, in Redis's order (commandstats
/// only when asked for by name, `all` or `everything`, as in Redis).
const INFO_SECTIONS: &[&str] =
    &["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "Raft", "CPU", "Commandstats", "Keyspace"];

/// INFO [section...]: the sections and fields Redis clients, `redis-cli --stat` and exporters
/// read, with ferrocask's own figures beside them (`ferrocask_*`).
pub(crate) fn info(db: &Db, args: &[Bytes]) -> Reply {
    let asked = |word: &str| args[1..].iter().any(|a| is(a, word));
    let wanted = |section: &str| {
        let by_default = section != "commandstats";
        (args.len() == 1 && by_default)
            || asked(section)
            || asked("everything")
            || asked("all")
            || (asked("default") && by_default)
    };
    let mut out = String::new();
    for name in INFO_SECTIONS {
        let lower = name.to_ascii_lowercase();
        // A single node has no Raft section.
        if !wanted(&lower) || (lower == "raft" && db.cluster.is_none()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {name}\r\n"));
        for (k, v) in info_section(db, &lower) {
            out.push_str(&format!("{k}:{v}\r\n"));
        }
    }
    Reply::Verbatim(out)
}

/// One INFO section's fields.
fn info_section(db: &Db, section: &str) -> Vec<(String, String)> {
    let fields = |pairs: Vec<(&str, String)>| pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    match section {
        "server" => {
            let uptime = db.started.elapsed().as_secs();
            let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
            fields(vec![
                ("redis_version", REDIS_VERSION.into()),
                ("ferrocask_version", env!("CARGO_PKG_VERSION").into()),
                ("redis_mode", "standalone".into()),
                ("os", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)),
                ("arch_bits", (usize::BITS).to_string()),
                ("process_id", std::process::id().to_string()),
                ("run_id", db.run_id.clone()),
                ("tcp_port", db.port.to_string()),
                ("server_time_usec", now_us.to_string()),
                ("uptime_in_seconds", uptime.to_string()),
                ("uptime_in_days", (uptime / 86_400).to_string()),
                ("executable", db.executable.clone()),
            ])
        }
        "raft" => db.cluster.as_ref().map(|c| c.info()).unwrap_or_default(),
        "clients" => fields(vec![
            ("connected_clients", db.client_count().to_string()),
            ("maxclients", db.maxclients.to_string()),
            ("blocked_clients", (db.blocking.blocked_clients() + db.pause.waiting()).to_string()),
            // No tracking: an honest zero `redis-cli --stat` reads.
            ("tracking_clients", "0".into()),
        ]),
        "memory" => {
            // No allocator statistics: used_memory is the resident set, as the OS counts it
            // (0 where it is not read: not Linux).
            let rss = process::rss_bytes().unwrap_or(0);
            let peak = process::peak_rss_bytes().unwrap_or(rss).max(rss);
            let index = db.store.stats().index_bytes as u64;
            fields(vec![
                ("used_memory", rss.to_string()),
                ("used_memory_human", bytes_to_human(rss)),
                ("used_memory_rss", rss.to_string()),
                ("used_memory_rss_human", bytes_to_human(rss)),
                ("used_memory_peak", peak.to_string()),
                ("used_memory_peak_human", bytes_to_human(peak)),
                ("maxmemory", "0".into()),
                ("maxmemory_human", "0B".into()),
                ("maxmemory_policy", "noeviction".into()),
                ("mem_allocator", "libc".into()),
                // The index's hash tables: what the keys cost in RAM, whatever the RSS holds of
                // the mapped segments.
                ("ferrocask_index_bytes", index.to_string()),
                ("ferrocask_index_bytes_human", bytes_to_human(index)),
            ])
        }
        "persistence" => {
            let stats = db.store.stats();
            let fsync = db.settings.lock().appendfsync;
            fields(vec![
                ("loading", "0".into()),
                ("async_loading", "0".into()),
                ("write_through", u8::from(fsync == crate::config::AppendFsync::Always).to_string()),
                ("aof_enabled", "1".into()),
                ("aof_rewrite_in_progress", "0".into()),
                ("aof_last_write_status", "ok".into()),
                ("appendfsync", fsync.name().into()),
                ("rdb_changes_since_last_save", "0".into()),
                ("rdb_bgsave_in_progress", "0".into()),
                ("ferrocask_segments", stats.segments.to_string()),
                ("ferrocask_live_bytes", stats.live_bytes.to_string()),
                ("ferrocask_dead_bytes", stats.dead_bytes.to_string()),
                ("ferrocask_disk_bytes", stats.disk_bytes.to_string()),
                ("ferrocask_log_bytes_written", stats.log_bytes_written.to_string()),
                ("ferrocask_records_written", stats.records_written.to_string()),
                ("ferrocask_syncs", stats.syncs.to_string()),
                ("ferrocask_records_per_sync", format!("{:.2}", stats.records_per_sync)),
                ("ferrocask_compactions", stats.compactions.to_string()),
                ("ferrocask_compacting", u8::from(stats.compacting).to_string()),
            ])
        }
        "stats" => {
            let c = &db.counters;
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed).to_string();
            let commands = c.commands_processed.load(Ordering::Relaxed);
            let ops = db.ops.lock().rate(Instant::now(), commands);
            let (pubsub_channels, pubsub_patterns) = db.pubsub.counts();
            fields(vec![
                ("total_connections_received", load(&c.connections_received)),
                ("total_commands_processed", commands.to_string()),
                ("instantaneous_ops_per_sec", ops.to_string()),
                ("rejected_connections", load(&c.rejected_connections)),
                ("evicted_keys", "0".into()),
                ("keyspace_hits", load(&c.keyspace_hits)),
                ("keyspace_misses", load(&c.keyspace_misses)),
                ("pubsub_channels", pubsub_channels.to_string()),
                ("pubsub_patterns", pubsub_patterns.to_string()),
                ("total_error_replies", load(&c.error_replies)),
            ])
        }
        "replication" => fields(vec![
            ("role", "master".into()),
            ("connected_slaves", "0".into()),
            ("master_failover_state", "no-failover".into()),
            ("master_replid", db.run_id.clone()),
            ("master_repl_offset", "0".into()),
        ]),
        "cpu" => {
            let cpu = process::cpu_times();
            fields(vec![
                ("used_cpu_sys", format!("{:.6}", cpu.sys)),
                ("used_cpu_user", format!("{:.6}", cpu.user)),
                ("used_cpu_sys_children", format!("{:.6}", cpu.sys_children)),
                ("used_cpu_user_children", format!("{:.6}", cpu.user_children)),
            ])
        }
        "commandstats" => {
            let mut all: Vec<&Spec> = cmd::commands().values().collect();
            all.sort_by_key(|spec| spec.name);
            all.into_iter().filter_map(|spec| command_stats_line(spec.name, &db.command_stats[spec.index])).collect()
        }
        "keyspace" => {
            let stats = db.store.stats();
            // The user's keys, as DBSIZE counts them: each collection once, by its meta record.
            let keys = crate::collection::user_key_count(&db.view());
            if keys == 0 {
                return Vec::new();
            }
            let line = format!("keys={keys},expires={},avg_ttl={}", stats.expiring_keys, stats.avg_ttl_ms);
            vec![("db0".to_string(), line)]
        }
        _ => Vec::new(),
    }
}

/// A command's INFO commandstats line, if it was ever called or refused (Redis's format).
fn command_stats_line(name: &str, s: &cmd::CommandStats) -> Option<(String, String)> {
    let (calls, usec) = (s.calls.load(Ordering::Relaxed), s.usec.load(Ordering::Relaxed));
    let (rejected, failed) = (s.rejected_calls.load(Ordering::Relaxed), s.failed_calls.load(Ordering::Relaxed));
    if calls == 0 && rejected == 0 && failed == 0 {
        return None;
    }
    let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
    let line = format!(
        "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"
    );
    Some((format!("cmdstat_{name}"), line))
}

/// Redis's `bytesToHuman`: bytes below 1 KiB as `123B`, then `1.50K`, `M`, `G`, `T`, `P`.
fn bytes_to_human(bytes: u64) -> String {
    const UNITS: [char; 5] = ['K', 'M', 'G', 'T', 'P'];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    for unit in UNITS {
        if value < 1024.0 || unit == 'P' {
            return format!("{value:.2}{unit}");
        }
        value /= 1024.0;
    }
    unreachable!("the last unit returns")
}

/// What the OS says about this process: resident memory and CPU time.
mod process {
    /// CPU seconds, as `getrusage` reports them (zeros where it is not called: not unix).
    #[derive(Default)]
    pub(super) struct CpuTimes {
        pub(super) sys: f64,
        pub(super) user: f64,
        pub(super) sys_children: f64,
        pub(super) user_children: f64,
    }

    /// The resident set size: `/proc/self/statm`'s second field, in pages.
    #[cfg(target_os = "linux")]
    pub(super) fn rss_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf reads a constant of the system; no memory is passed.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()?)
    }

    /// The peak resident set size: `/proc/self/status`'s `VmHWM`, in KiB.
    #[cfg(target_os = "linux")]
    pub(super) fn peak_rss_bytes() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn rss_bytes() -> Option<u64> {
        None
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn peak_rss_bytes() -> Option<u64> {
        None
    }

    #[cfg(unix)]
    pub(super) fn cpu_times() -> CpuTimes {
        fn usage(who: libc::c_int) -> (f64, f64) {
            // SAFETY: getrusage fills the zeroed struct it is given and nothing else.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            if unsafe { libc::getrusage(who, &mut ru) } != 0 {
                return (0.0, 0.0);
            }
            let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
            (secs(ru.ru_stime), secs(ru.ru_utime))
        }
        let (sys, user) = usage(libc::RUSAGE_SELF);
        let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
        CpuTimes { sys, user, sys_children, user_children }
    }

    #[cfg(not(unix))]
    pub(super) fn cpu_times() -> CpuTimes {
        CpuTimes::default()
    }
}

const SLOWLOG_SUBCOMMANDS: &[Subcommand] = &[("get", -2), ("len", 2), ("reset", 2), ("help", 2)];

/// SLOWLOG GET [count] | LEN | RESET | HELP.
pub(crate) fn slowlog(db: &Db, args: &[Bytes]) -> Reply {
    let name = match subcommand(SLOWLOG_SUBCOMMANDS, args, "SLOWLOG") {
        Ok(name) => name,
        Err(e) => return e,
    };
    let log = db.slowlog();
    match name {
        "get" if args.len() > 3 => {
            Reply::error("ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.")
        }
        "get" => log.get(args.get(2).map(|a| &a[..])),
        "len" => Reply::Int(log.len() as i64),
        "reset" => {
            log.reset();
            Reply::OK
        }
        _ => Reply::Array(crate::slowlog::HELP.iter().map(|line| Reply::Status(line)).collect()),
    }
}

const CONFIG_SUBCOMMANDS: &[Subcommand] = &[("get", -3), ("set", -4), ("resetstat", 2), ("rewrite", 2), ("help", 2)];

/// CONFIG HELP's text, as Redis 7.0 prints it.
const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// CONFIG GET pattern... | SET parameter value... | RESETSTAT | REWRITE | HELP.
pub(crate) fn config(db: &Db, args: &[Bytes]) -> Reply {
    let name = match subcommand(CONFIG_SUBCOMMANDS, args, "CONFIG") {
        Ok(name) => name,
        Err(e) => return e,
    };
    match name {
        "get" => {
            let params = config_params(db);
            let pairs = params
                .into_iter()
                .filter(|(name, _)| args[2..].iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
                .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value)))
                .collect();
            Reply::Map(pairs)
        }
        // A parameter without its value: Redis calls it a syntax error, not an arity error.
        "set" if args.len() % 2 == 1 => Reply::error(crate::cmd::parse::SYNTAX),
        "set" => config_set(db, &args[2..]),
        "rewrite" => config_rewrite(db),
        "help" => Reply::Array(CONFIG_HELP.iter().map(|line| Reply::Status(line)).collect()),
        _ => {
            db.reset_stats();
            Reply::OK
        }
    }
}

/// Every parameter CONFIG GET shows. `bind`, `port`, `dir`, `maxclients` and `requirepass` are
/// what the server runs with (the port bound, the store's absolute directory, maxclients fitted
/// to the open-file limit, the password sessions check); the rest are
/// [`Settings`](crate::config::Settings)' values.
fn config_params(db: &Db) -> Vec<(&'static str, Vec<u8>)> {
    let settings = db.settings.lock().clone();
    let dir = std::fs::canonicalize(db.store.path()).unwrap_or_else(|_| db.store.path().to_path_buf());
    let mut params: Vec<(&'static str, Vec<u8>)> = vec![
        ("bind", db.bind.clone().into_bytes()),
        ("port", db.port.to_string().into_bytes()),
        ("dir", dir.to_string_lossy().into_owned().into_bytes()),
        ("maxclients", db.maxclients.to_string().into_bytes()),
        ("requirepass", db.password.clone().unwrap_or_default()),
        ("databases", b"1".to_vec()),
        ("appendonly", b"yes".to_vec()),
        ("save", Vec::new()),
        ("proto-max-bulk-len", db.value_bytes_max.to_string().into_bytes()),
    ];
    for name in crate::config::PARAMETERS {
        if !params.iter().any(|(known, _)| *known == name) {
            params.push((name, settings.get(name).unwrap_or_default()));
        }
    }
    params
}

/// CONFIG SET: as in Redis, every name is checked first (known, settable now, not repeated),
/// then every value, and nothing is applied unless everything is valid. What a file may set but
/// the running server cannot change is refused with the reason
/// ([`fixed_at_start`](crate::config::fixed_at_start)).
fn config_set(db: &Db, pairs: &[Bytes]) -> Reply {
    let mut names: Vec<String> = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        if !crate::config::PARAMETERS.contains(&name.as_str()) {
            let text = [&b"ERR Unknown option or number of arguments for CONFIG SET - '"[..], quoted(&pair[0]), b"'"];
            return Reply::error(text.concat());
        }
        if let Some(why) = crate::config::fixed_at_start(&name) {
            return config_set_failed(&pair[0], why);
        }
        if names.contains(&name) {
            return config_set_failed(&pair[0], "duplicate parameter");
        }
        names.push(name);
    }
    let mut settings = db.settings.lock();
    let mut changed = settings.clone();
    for (name, pair) in names.iter().zip(pairs.chunks(2)) {
        if let Err(why) = changed.set(name, &pair[1]) {
            return config_set_failed(name.as_bytes(), &why.unwrap_or_default());
        }
    }
    if changed.appendfsync != settings.appendfsync {
        if let Err(why) = switch_appendfsync(db, changed.appendfsync) {
            return config_set_failed(b"appendfsync", &why);
        }
    }
    db.idle_timeout_secs.store(changed.timeout_secs, Ordering::Relaxed);
    db.slowlog().set_slower_than_us(changed.slowlog_log_slower_than);
    db.slowlog().set_max_len(usize::try_from(changed.slowlog_max_len).unwrap_or(usize::MAX));
    *settings = changed;
    Reply::OK
}

/// Switches the store's sync mode for CONFIG SET appendfsync (applied before any other parameter
/// of the same CONFIG SET, so a failure changes nothing). To `always`, this syncs what
/// write-back left pending, on this worker thread: a rare command's one fsync. A cluster
/// member's log always syncs before it acknowledges, so it refuses `everysec` (as `serve` does).
fn switch_appendfsync(db: &Db, to: crate::config::AppendFsync) -> Result<(), String> {
    if db.cluster.is_some() {
        return match to {
            crate::config::AppendFsync::Always => Ok(()),
            crate::config::AppendFsync::Everysec => Err("appendfsync everysec applies to a single node: a cluster \
                                                         member's log always syncs before it acknowledges"
                .into()),
        };
    }
    db.store.set_sync_mode(to.sync_mode()).map_err(|e| e.to_string())?;
    tracing::info!(appendfsync = to.name(), "appendfsync switched by CONFIG SET");
    Ok(())
}

/// CONFIG REWRITE: the config file the server was started with, rewritten with the current
/// values (see [`Settings::rewrite`](crate::config::Settings::rewrite)), atomically.
fn config_rewrite(db: &Db) -> Reply {
    let Some(path) = &db.config_file else {
        return Reply::error("ERR The server is running without a config file");
    };
    let original = match std::fs::read_to_string(path) {
        Ok(text) => text,
        // Redis rewrites a file that was deleted meanwhile from scratch.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Reply::error(format!("ERR Rewriting config file: {e}")),
    };
    let text = db.settings.lock().rewrite(&original);
    match crate::config::write_atomically(path, &text) {
        Ok(()) => Reply::OK,
        Err(e) => Reply::error(format!("ERR Rewriting config file: {e}")),
    }
}

/// Redis's CONFIG SET error naming the argument (as the client wrote it for a duplicate, by the
/// parameter's own name for a bad value).
fn config_set_failed(argument: &[u8], why: &str) -> Reply {
    let text =
        [&b"ERR CONFIG SET failed (possibly related to argument '"[..], quoted(argument), b"') - ", why.as_bytes()];
    Reply::error(text.concat())
}

const LATENCY_SUBCOMMANDS: &[Subcommand] =
    &[("latest", 2), ("history", 3), ("reset", -2), ("help", 2), ("doctor", 2), ("graph", 3), ("histogram", -2)];

/// LATENCY LATEST | HISTORY event | RESET [event...] | HELP (DOCTOR, GRAPH and HISTOGRAM are
/// refused).
pub(crate) fn latency(db: &Db, args: &[Bytes]) -> Reply {
    let name = match subcommand(LATENCY_SUBCOMMANDS, args, "LATENCY") {
        Ok(name) => name,
        Err(e) => return e,
    };
    match name {
        "latest" => db.latency.latest(),
        "history" => db.latency.history(&args[2]),
        "reset" => db.latency.reset(&args[2..]),
        "help" => Reply::Array(crate::latency::HELP.iter().map(|line| Reply::Status(line)).collect()),
        other => Reply::error(format!("ERR LATENCY {} is not supported by ferrocask", other.to_uppercase())),
    }
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
