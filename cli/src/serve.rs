//! `ferrocask serve`: the store as a Redis-protocol server (see the ferrocask-server crate).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ferrocask::{Options, Store, SyncMode};
use ferrocask_raft::node::{Node, NodeConfig};
use ferrocask_server::cluster::Cluster;
use ferrocask_server::config::{AppendFsync, Settings};
use ferrocask_server::{Config, Listeners};

use crate::Failure;

/// `ferrocask serve`'s flags. Each overrides the same parameter of the `--config` file; the
/// defaults are those of [`Settings::default`].
#[derive(clap::Args, Debug)]
pub(crate) struct ServeFlags {
    /// A redis.conf-style file: bind, port, dir, requirepass, maxclients, timeout, appendfsync
    /// (always|everysec), protected-mode, loglevel, slowlog-log-slower-than, slowlog-max-len,
    /// tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file, tls-auth-clients, unixsocket,
    /// unixsocketperm.
    /// CONFIG REWRITE writes the current values back to it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1] (loopback unless you mean otherwise).
    #[arg(long)]
    bind: Option<String>,
    /// The plain TCP port [default: 6379]. 0 with --tls-port or --unixsocket: no plain listener
    /// (as in Redis); 0 alone: any free port, shown in the ready line.
    #[arg(long)]
    port: Option<u16>,
    /// Also serve TLS on this port (same --bind address); needs --tls-cert-file and
    /// --tls-key-file. Shown as `ready on tls ADDR`.
    #[arg(long, help_heading = "TLS")]
    tls_port: Option<u16>,
    /// The server's certificate chain (PEM), for --tls-port.
    #[arg(long, help_heading = "TLS")]
    tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, help_heading = "TLS")]
    tls_key_file: Option<PathBuf>,
    /// The CA certificates (PEM) that client certificates must be signed by.
    #[arg(long, help_heading = "TLS")]
    tls_ca_cert_file: Option<PathBuf>,
    /// Whether TLS clients must show a certificate signed by --tls-ca-cert-file [default: yes,
    /// as in Redis]: `no` for server-only TLS, `optional` to check only those shown.
    #[arg(long, value_parser = ["yes", "no", "optional"], help_heading = "TLS")]
    tls_auth_clients: Option<String>,
    /// Also listen on a Unix socket at this path (Unix only); a stale socket file there is
    /// replaced. Shown as `ready on unix PATH`.
    #[arg(long)]
    unixsocket: Option<PathBuf>,
    /// The Unix socket's permission bits, octal (e.g. 700) [default: as the umask leaves them].
    #[arg(long)]
    unixsocketperm: Option<String>,
    /// A file holding the password clients must AUTH with (one trailing newline is ignored).
    #[arg(long)]
    requirepass_file: Option<PathBuf>,
    /// The most clients connected at once [default: 10000].
    #[arg(long)]
    maxclients: Option<usize>,
    /// As Redis's [default: yes]: `yes` refuses to start on a non-loopback address without a
    /// password.
    #[arg(long, value_parser = ["yes", "no"])]
    protected_mode: Option<String>,
    /// When writes become durable [default: always]: `always`, before each reply; `everysec`,
    /// about once a second (a power loss may lose the last second of acknowledged writes).
    #[arg(long, value_parser = ["always", "everysec"])]
    appendfsync: Option<String>,
    /// Where SAVE and BGSAVE make their backups, each a new `<dir name>-backup-<unix time>`
    /// directory (default: beside the store directory).
    #[arg(long)]
    backup_dir: Option<PathBuf>,
    /// The least severe events logged to stderr [default: info, or the config file's
    /// `loglevel`: debug -> debug, verbose and notice -> info, warning -> warn].
    #[arg(long, value_enum)]
    log_level: Option<LogLevel>,
    /// Makes this server a member of a Raft cluster, with this id (a positive number, unique in
    /// the cluster); needs --peers. Every command then runs through the replicated log: a write
    /// is answered once a majority has it on disk; any member accepts any command.
    #[arg(long, requires = "peers", help_heading = "Cluster")]
    node_id: Option<u64>,
    /// Every member's Raft address, this node's included (its Raft listener), as
    /// `1=HOST:PORT,2=HOST:PORT,3=HOST:PORT`. On first start (an empty --dir) the members
    /// bootstrap this membership; afterwards the log's membership rules, and a start whose
    /// addresses disagree with it is refused. Change it online with RAFT.NODE ADD/REMOVE.
    #[arg(long, requires = "node_id", help_heading = "Cluster")]
    peers: Option<String>,
    /// Join a running cluster instead of starting a new one: with an empty --dir, wait to be
    /// added (`RAFT.NODE ADD <id> <host:port>` sent to any member) rather than bootstrap --peers.
    #[arg(long, requires = "node_id", help_heading = "Cluster")]
    join: bool,
    /// Build a Raft snapshot, and purge the log behind it, every this many entries.
    #[arg(long, requires = "node_id", default_value_t = ferrocask_raft::node::SNAPSHOT_EVERY_DEFAULT, help_heading = "Cluster")]
    raft_snapshot_every: u64,
}

/// Parses `--peers`: `ID=HOST:PORT` entries separated by commas.
fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, Failure> {
    let mut peers = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || Failure(format!("--peers: `{entry}` is not ID=HOST:PORT (e.g. 1=127.0.0.1:7001)"));
        let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        let addr = addr.trim();
        if id == 0 || !addr.contains(':') {
            return Err(bad());
        }
        if peers.insert(id, addr.to_string()).is_some() {
            return Err(Failure(format!("--peers names node {id} twice")));
        }
    }
    if peers.is_empty() {
        return Err(Failure("--peers names no node".into()));
    }
    Ok(peers)
}

/// The settings to serve with: the defaults, then the `--config` file, then the flags (and
/// `--dir` if given on the command line). Also returns the config file's absolute path.
fn settings(flags: &ServeFlags, dir: Option<&Path>) -> Result<(Settings, Option<PathBuf>), Failure> {
    let mut settings = Settings::default();
    let mut file = None;
    if let Some(path) = &flags.config {
        let text = std::fs::read_to_string(path).map_err(|e| Failure(format!("reading {}: {e}", path.display())))?;
        settings.read_file(path, &text).map_err(Failure)?;
        // Absolute: CONFIG REWRITE writes it back whatever the working directory is then.
        file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()));
    }
    let flag = |name: &str, value: Option<String>, settings: &mut Settings| match value {
        Some(value) => settings
            .set(name, value.as_bytes())
            .map_err(|why| Failure(format!("--{}: {}", name, why.unwrap_or_default()))),
        None => Ok(()),
    };
    flag("bind", flags.bind.clone(), &mut settings)?;
    flag("port", flags.port.map(|p| p.to_string()), &mut settings)?;
    flag("maxclients", flags.maxclients.map(|n| n.to_string()), &mut settings)?;
    flag("protected-mode", flags.protected_mode.clone(), &mut settings)?;
    flag("appendfsync", flags.appendfsync.clone(), &mut settings)?;
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    flag("tls-port", flags.tls_port.map(|p| p.to_string()), &mut settings)?;
    flag("tls-cert-file", path(&flags.tls_cert_file), &mut settings)?;
    flag("tls-key-file", path(&flags.tls_key_file), &mut settings)?;
    flag("tls-ca-cert-file", path(&flags.tls_ca_cert_file), &mut settings)?;
    flag("tls-auth-clients", flags.tls_auth_clients.clone(), &mut settings)?;
    flag("unixsocket", path(&flags.unixsocket), &mut settings)?;
    flag("unixsocketperm", flags.unixsocketperm.clone(), &mut settings)?;
    if let Some(dir) = dir {
        settings.dir = dir.to_path_buf();
    }
    if let Some(path) = &flags.requirepass_file {
        settings.requirepass = Some(read_password(path)?);
    }
    Ok((settings, file))
}

/// `--log-level`: the least severe events logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn filter(self) -> tracing::level_filters::LevelFilter {
        use tracing::level_filters::LevelFilter;
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

/// openraft's events at info narrate every vote and replication step: shown only at debug.
fn openraft_level(level: tracing::level_filters::LevelFilter) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    if level >= LevelFilter::DEBUG {
        LevelFilter::INFO
    } else {
        level.min(LevelFilter::WARN)
    }
}

/// Sends the log events to stderr, one line each with its UTC time (RFC 3339), level, the
/// client's span (id and address) where there is one, message and fields. No colours: stderr
/// is usually a file or a journal. stdout keeps only the `ready on` line scripts wait for.
fn init_logging(level: LogLevel) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level.filter())
        .with_ansi(false)
        .with_target(false)
        // A log that cannot be written (stderr closed by whoever started the server) must not
        // stop the server: by default the subscriber reports it with eprintln!, which panics on
        // a closed stderr, and a panic in the accept loop would end it.
        .log_internal_errors(false)
        .finish()
        // openraft narrates every vote and replication step at info; a cluster member's log
        // keeps its own events (role changes, elections, joins) at info and openraft's from
        // warn up, unless debug is asked for.
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_default(level.filter())
                .with_target("openraft", openraft_level(level.filter())),
        );
    // Only `serve` installs one, once; a second call could only come from a test harness.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Logs what opening the store found: at info for a clean open, at warn when it cut a torn
/// tail, skipped damage, or could not use hint files.
fn log_recovery(store: &Store) {
    let r = store.recovery_report();
    let damaged = r.torn_tail_bytes > 0 || !r.dropped.is_empty() || r.hints_rejected > 0;
    macro_rules! report {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                segments_from_hints = r.segments_from_hints,
                segments_replayed = r.segments_replayed,
                records_read = r.records_read,
                torn_tail_bytes_cut = r.torn_tail_bytes,
                orphans_removed = r.orphans_removed,
                hints_rejected = r.hints_rejected,
                damaged_ranges_skipped = r.dropped.len(),
                $message
            )
        };
    }
    if damaged {
        report!(warn, "store recovered: an interrupted write or damage was cut or skipped");
    } else {
        report!(info, "store opened");
    }
    for range in &r.dropped {
        tracing::warn!(file = %range.path.display(), start = range.start, end = range.end, reason = %range.reason, "damaged range skipped");
    }
}

/// The level a config file's Redis `loglevel` stands for.
fn log_level_of(loglevel: &str) -> LogLevel {
    match loglevel {
        "debug" => LogLevel::Debug,
        "warning" => LogLevel::Warn,
        _ => LogLevel::Info,
    }
}

/// Reads the password: the file's content without one trailing line end.
fn read_password(path: &Path) -> Result<Vec<u8>, Failure> {
    let mut bytes = std::fs::read(path).map_err(|e| Failure(format!("reading {}: {e}", path.display())))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(Failure(format!("{} holds an empty password", path.display())));
    }
    Ok(bytes)
}

/// Serves until SIGINT or SIGTERM, then closes every connection and the store. `dir`: the
/// store directory if given on the command line (else the config file's, else the default).
///
/// Everything that can refuse the start (the config file, protected mode, the password file,
/// the bind) is done before the store is opened, so a refused start leaves the store directory
/// as it was: opening creates it.
pub(crate) fn serve(flags: &ServeFlags, dir: Option<&Path>) -> Result<ExitCode, Failure> {
    let (settings, config_file) = settings(flags, dir)?;
    init_logging(flags.log_level.unwrap_or_else(|| log_level_of(settings.loglevel)));
    let addrs = resolve(&settings.bind, settings.port)?;
    if settings.protected_mode && settings.requirepass.is_none() {
        refuse_unprotected(&addrs)?;
    }
    if flags.node_id.is_some() && settings.appendfsync != AppendFsync::Always {
        return Err(Failure(
            "appendfsync everysec applies to a single node: a cluster member's log always syncs before it \
             acknowledges (that is what a majority's copy means); remove it from the flags or the config file"
                .into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listeners = runtime.block_on(Listeners::bind(&settings)).map_err(Failure)?;
    let sync = settings.appendfsync.sync_mode();
    // The server enumerates its collections' members and scores in order (a cluster member's
    // data store gets the same prefixes through `Apply::ordered_prefixes`).
    let options = ferrocask_server::ORDERED_PREFIXES
        .iter()
        .fold(Options { sync, ..Options::default() }, |options, prefix| options.ordered_prefix(*prefix));
    let (clock, value_bytes_max) = (options.clock.clone(), options.value_bytes_max);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        dir = %settings.dir.display(),
        bind = %settings.bind,
        port = settings.port,
        sync = match sync {
            SyncMode::Always => "always (write-through: every reply after its fsync)",
            _ => "everysec (write-back: synced about once a second)",
        },
        auth = settings.requirepass.is_some(),
        pid = std::process::id(),
        "ferrocask serve starting"
    );
    let cluster = match (flags.node_id, &flags.peers) {
        (Some(id), Some(peers)) => {
            let peers = parse_peers(peers)?;
            if !peers.contains_key(&id) {
                return Err(Failure(format!("--peers has no entry for --node-id {id}: it names its Raft listener")));
            }
            let config = NodeConfig {
                id,
                dir: settings.dir.clone(),
                peers,
                snapshot_every: flags.raft_snapshot_every,
                bootstrap: !flags.join,
            };
            let node = runtime
                .block_on(Node::start(config, ferrocask_server::cluster::applier(value_bytes_max)))
                .map_err(|e| Failure(format!("starting cluster node {id}: {e}")))?;
            tracing::info!(node_id = id, raft_addr = %node.addr, "cluster member: commands run through the Raft log");
            Some(node)
        }
        _ => None,
    };
    let store = match &cluster {
        Some(node) => node.state_machine.store().clone(),
        None => Arc::new(Store::open_with(&settings.dir, options)?),
    };
    log_recovery(&store);
    let maxclients = fit_maxclients(settings.maxclients.max(1), &store)?;
    let executor = cluster.as_ref().map(|node| runtime.block_on(async { Cluster::start(node) }));
    let config = Config {
        maxclients,
        password: settings.requirepass.clone(),
        clock,
        value_bytes_max,
        backup_dir: flags.backup_dir.clone(),
        slowlog_log_slower_than_us: settings.slowlog_log_slower_than,
        slowlog_max_len: usize::try_from(settings.slowlog_max_len).unwrap_or(usize::MAX),
        settings,
        config_file,
        cluster: executor,
        ..Config::default()
    };
    runtime.block_on(async {
        // The handlers are installed before the ready line: a SIGTERM sent as soon as the server
        // says it is ready must stop it cleanly, not kill it.
        let stop = shutdown_signal()?;
        tracing::info!(
            listeners = %listeners.ready_lines().join(", ").replace("ready on ", ""),
            maxclients,
            "ready to accept connections"
        );
        for line in listeners.ready_lines() {
            crate::print_line(line.as_bytes())?;
        }
        ferrocask_server::run_on(listeners, store.clone(), config, stop).await?;
        Ok::<(), Failure>(())
    })?;
    if let Some(node) = cluster {
        // Raft stops first: nothing applies to the store after this.
        runtime.block_on(node.shutdown());
        drop(runtime);
        drop(store);
        tracing::info!("raft stopped, stores closed; exiting");
        return Ok(ExitCode::SUCCESS);
    }
    drop(runtime);
    // Every connection has ended, so this is the last reference: dropping it closes the store,
    // finishing any write still queued.
    match Arc::try_unwrap(store) {
        Ok(store) => drop(store),
        Err(_) => {
            tracing::error!("the store is still in use after shutdown");
            return Err(Failure("the store is still in use after shutdown".into()));
        }
    }
    tracing::info!("store closed; exiting");
    Ok(ExitCode::SUCCESS)
}

/// The addresses `bind`:`port` names (a host name may name several).
fn resolve(bind: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> =
        (bind, port).to_socket_addrs().map_err(|e| Failure(format!("resolving --bind {bind}: {e}")))?.collect();
    if addrs.is_empty() {
        return Err(Failure(format!("--bind {bind} names no address")));
    }
    Ok(addrs)
}

/// Protected mode, as Redis's: with no password, only the loopback interface may be served.
/// Redis starts and then answers every outside client with a `-DENIED` error that explains
/// itself; ferrocask refuses to start instead, with the same reasoning and remedies, because a
/// server that cannot serve the address it was told to listen on is a configuration mistake
/// better found at once than by the first remote client.
fn refuse_unprotected(addrs: &[SocketAddr]) -> Result<(), Failure> {
    let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback()) else { return Ok(()) };
    Err(Failure(format!(
        "refusing to listen on {open}: protected mode is enabled and no password is set for the default user. \
         In this mode (as in Redis) connections are only accepted from the loopback interface, so that a server \
         without a password is not open to everyone who can reach it. Do one of these: 1) set a password \
         (--requirepass-file FILE, or `requirepass` in the --config file); 2) bind a loopback address \
         (--bind 127.0.0.1); 3) if every host that can reach this address may read and write every key, disable \
         protected mode with '--protected-mode no' (or `protected-mode no` in the config file), but MAKE SURE \
         the server is not reachable from the internet if you do so."
    )))
}

/// Raises the open-file limit towards what `requested` clients need beside the store's open
/// segments, or lowers maxclients to what it allows; says which on stderr in Redis's words, and
/// fails as Redis does when the limit leaves no room for a single client.
fn fit_maxclients(requested: usize, store: &Store) -> Result<usize, Failure> {
    let fit = ferrocask_server::fd_limit::fit_maxclients(requested, store.stats().segments);
    let mut messages = fit.messages();
    if fit.maxclients == 0 {
        return Err(Failure(messages.pop().unwrap_or_default()));
    }
    for line in messages {
        eprintln!("{line}");
    }
    Ok(fit.maxclients)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed now, not when the future is first
/// polled: the listener's loop may not poll it before the first clients are served.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    use tokio::signal::unix::{signal, SignalKind};
    let installing = |e| Failure(format!("installing a signal handler: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(installing)?;
    let mut int = signal(SignalKind::interrupt()).map_err(installing)?;
    Ok(async move {
        let signal = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(signal, "signal received; shutting down");
    })
}

/// Resolves on Ctrl-C (Windows has no SIGTERM). The handler is installed at once, as on Unix.
#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Failure> {
    let mut ctrl_c =
        tokio::signal::windows::ctrl_c().map_err(|e| Failure(format!("installing a Ctrl-C handler: {e}")))?;
    Ok(async move {
        let _ = ctrl_c.recv().await;
        tracing::info!(signal = "Ctrl-C", "signal received; shutting down");
    })
}
