//! `ferrocask serve`: the store as a Redis-protocol server (see the ferrocask-server crate).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ferrocask::{Options, Store};
use ferrocask_server::Config;

use crate::Failure;

/// What `ferrocask serve` was given.
pub(crate) struct ServeArgs<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) bind: &'a str,
    pub(crate) port: u16,
    pub(crate) requirepass_file: Option<&'a PathBuf>,
    pub(crate) maxclients: usize,
    pub(crate) log_level: LogLevel,
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

/// Sends the log events to stderr, one line each with its UTC time (RFC 3339), level, the
/// client's span (id and address) where there is one, message and fields. No colours: stderr
/// is usually a file or a journal. stdout keeps only the `ready on` line scripts wait for.
fn init_logging(level: LogLevel) {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level.filter())
        .with_ansi(false)
        .with_target(false)
        // A log that cannot be written (stderr closed by whoever started the server) must not
        // stop the server: by default the subscriber reports it with eprintln!, which panics on
        // a closed stderr, and a panic in the accept loop would end it.
        .log_internal_errors(false)
        .finish();
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

/// Serves until SIGINT or SIGTERM, then closes every connection and the store.
pub(crate) fn serve(args: ServeArgs<'_>) -> Result<ExitCode, Failure> {
    init_logging(args.log_level);
    let password = args.requirepass_file.map(|p| read_password(p)).transpose()?;
    let options = Options::default();
    let (clock, value_bytes_max) = (options.clock.clone(), options.value_bytes_max);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        dir = %args.dir.display(),
        bind = args.bind,
        port = args.port,
        sync = "always (write-through: every reply after its fsync)",
        auth = args.requirepass_file.is_some(),
        pid = std::process::id(),
        "ferrocask serve starting"
    );
    let store = Arc::new(Store::open_with(args.dir, options)?);
    log_recovery(&store);
    let maxclients = fit_maxclients(args.maxclients.max(1), &store)?;
    let config = Config { maxclients, password, clock, value_bytes_max, ..Config::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .map_err(|e| Failure(format!("binding {}:{}: {e}", args.bind, args.port)))?;
        let local = listener.local_addr()?;
        // Before the ready line: a SIGTERM sent as soon as it is read must find its handler.
        let shutdown = shutdown_signal()?;
        tracing::info!(addr = %local, maxclients, "ready to accept connections");
        crate::print_line(format!("ready on {local}").as_bytes())?;
        ferrocask_server::run(listener, store.clone(), config, shutdown).await?;
        Ok::<(), Failure>(())
    })?;
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

/// Installs the SIGINT and SIGTERM handlers now, and returns what resolves on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut int, mut term) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    Ok(async move {
        let signal = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        tracing::info!(signal, "signal received; shutting down");
    })
}

/// Ctrl-C (the handler is installed when the future is first polled, as the server starts).
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "Ctrl-C", "signal received; shutting down");
    })
}
