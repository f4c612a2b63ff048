//! The listener: accepts connections up to `maxclients` (a semaphore), runs one task per
//! connection, and on shutdown tells every connection to stop (a broadcast) and waits until all
//! have (an mpsc channel whose senders the connections hold), at most [`SHUTDOWN_GRACE`].
//!
//! `maxclients` is lowered to what the open-file limit leaves after the store's descriptors and
//! [`RESERVED_FDS`](crate::fd_limit::RESERVED_FDS) (see [`fd_limit`](crate::fd_limit)), so the
//! clients never take the descriptors the store needs. A client over the limit is told so and
//! closed at once, without waiting on its socket, so refused clients hold no descriptors. An
//! accept that fails for want of descriptors or memory is retried after [`ACCEPT_ERROR_BACKOFF`]
//! rather than at once, which would spin a core while nothing can change.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocask::{Clock, Store, SystemClock};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tracing::Instrument;

use crate::connection::Connection;
use crate::db::{Counters, Db, OpsSamples};
use crate::listen::{Accepted, Listeners};
use crate::protocol::Limits;
use crate::session::Session;
use crate::slowlog::SlowLog;

/// How long shutdown waits for connections to stop after telling them to. A connection stops
/// between requests, so this is reached only by one blocked writing replies to a client that
/// stopped reading; its task is dropped with the runtime then. Nothing acknowledged is at stake:
/// its writes are queued in the store, and a dropped write future still writes.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Live measures of what the server holds, shared with whoever started it (tests, a metrics
/// exporter): gauges that rise and fall with the connections.
#[derive(Debug, Default)]
pub struct Meters {
    /// Bytes the connections' input buffers hold allocated, summed over the connections: for each,
    /// the largest its buffer has been (length plus free capacity, seen after each read) since the
    /// connection last allocated it.
    pub input_buffer_bytes: AtomicUsize,
    /// Accepts that failed for want of a resource and were backed off (see
    /// [`ACCEPT_ERROR_BACKOFF`]).
    pub accept_errors_backed_off: AtomicU64,
    /// TLS handshakes that failed or timed out (a plain-text client on the TLS port, a bad or
    /// missing client certificate, a client that said nothing for
    /// [`HANDSHAKE_TIMEOUT`](crate::tls::HANDSHAKE_TIMEOUT)).
    pub tls_handshake_failures: AtomicU64,
}

/// How long the listener waits after an accept failed for a reason other than the one client
/// (out of descriptors or buffers: `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), before it accepts
/// again. Clients arriving meanwhile wait in the listen backlog.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A spell of failed accepts logs its first failure and then one in this many.
const ACCEPT_ERRORS_LOGGED_EVERY: u64 = 1000;

/// The reply to a client over `maxclients` (Redis's).
const MAXCLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The most clients connected at once; more are refused with Redis's error. Lowered to what
    /// the open-file limit allows (see [`fd_limit`](crate::fd_limit)).
    pub maxclients: usize,
    /// The password of the default user (`None`: no authentication).
    pub password: Option<Vec<u8>>,
    /// Bounds on requests. `bulk_bytes_max` is lowered to the store's value limit if above it.
    pub limits: Limits,
    /// The store's clock (for TTLs), as given to the store in its options.
    pub clock: Arc<dyn Clock>,
    /// TCP keepalive interval: half-open connections are found and closed.
    pub keepalive: Duration,
    /// The store's `Options::value_bytes_max`: no longer argument is buffered.
    pub value_bytes_max: usize,
    /// Where the server reports what it holds.
    pub meters: Arc<Meters>,
    /// `slowlog-log-slower-than`: commands that take at least this many microseconds go into
    /// SLOWLOG (and the log, at info); negative: none, 0: every command.
    pub slowlog_log_slower_than_us: i64,
    /// `slowlog-max-len`: the most entries SLOWLOG keeps (the oldest are dropped).
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` in milliseconds: commands that take at least this long are
    /// LATENCY's `command` event; 0 (the default, as in Redis) turns the monitor off.
    pub latency_monitor_threshold_ms: u64,
    /// The directory SAVE and BGSAVE make their backups in (`None`: the store directory's
    /// parent); each backup is a new `<store dir name>-backup-<unix time>` directory there.
    pub backup_dir: Option<PathBuf>,
    /// The parameters' values as the server starts (CONFIG GET shows them, SET changes them);
    /// `timeout` is applied from here. The fields above still govern what they govern.
    pub settings: crate::config::Settings,
    /// The config file the server was started with: CONFIG REWRITE writes it (`None`: CONFIG
    /// REWRITE fails, as in Redis).
    pub config_file: Option<PathBuf>,
    /// On a cluster member, its executor: commands run through the Raft log, and `store` is the
    /// state machine's (`None`: a single node).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            maxclients: 10_000,
            password: None,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            keepalive: Duration::from_secs(300),
            value_bytes_max: ferrocask::Options::default().value_bytes_max,
            meters: Arc::default(),
            slowlog_log_slower_than_us: crate::slowlog::LOG_SLOWER_THAN_US_DEFAULT,
            slowlog_max_len: crate::slowlog::MAX_LEN_DEFAULT,
            latency_monitor_threshold_ms: crate::latency::MONITOR_THRESHOLD_MS_DEFAULT,
            backup_dir: None,
            settings: crate::config::Settings::default(),
            config_file: None,
            cluster: None,
        }
    }
}

/// Serves `store` on `listener` until `shutdown` resolves, then stops accepting, closes every
/// connection (their in-flight writes finish first: a connection only stops between requests)
/// and returns. Dropping the last `Arc<Store>` afterwards closes the store.
pub async fn run(listener: TcpListener, store: Arc<Store>, config: Config, shutdown: impl Future) -> io::Result<()> {
    run_on(Listeners::tcp(listener), store, config, shutdown).await
}

/// As [`run`], on every listener of `listeners` (plain TCP, TLS, a Unix socket) at once; the
/// Unix socket's file is removed when it returns.
pub async fn run_on(listeners: Listeners, store: Arc<Store>, config: Config, shutdown: impl Future) -> io::Result<()> {
    let result = serve_listeners(&listeners, store, config, shutdown).await;
    listeners.remove_socket_file();
    result
}

async fn serve_listeners(
    listeners: &Listeners,
    store: Arc<Store>,
    config: Config,
    shutdown: impl Future,
) -> io::Result<()> {
    let local = listeners.tcp_addr().or_else(|| listeners.tls_addr());
    let value_bytes_max = config.value_bytes_max;
    let mut limits = config.limits;
    limits.bulk_bytes_max = limits.bulk_bytes_max.min(value_bytes_max);
    limits.request_bytes_max = limits.request_bytes_max.min(request_bytes_fitting(store.batch_bytes_max()));
    let maxclients = crate::fd_limit::clients_max(config.maxclients, store.stats().segments);
    // The Config's slowlog fields govern; CONFIG GET shows them through the settings.
    let mut settings = config.settings.clone();
    settings.tls_port = listeners.tls_addr().map_or(0, |a| a.port());
    settings.slowlog_log_slower_than = config.slowlog_log_slower_than_us;
    settings.slowlog_max_len = config.slowlog_max_len as u64;
    let db = Arc::new(Db {
        backups: crate::admin::Backups::new(store.path(), config.backup_dir.as_deref()),
        store,
        cluster: config.cluster.clone(),
        clock: config.clock.clone(),
        value_bytes_max,
        password: config.password.clone(),
        maxclients,
        started: Instant::now(),
        port: listeners.tcp_addr().map_or(0, |a| a.port()),
        bind: local.map_or_else(|| config.settings.bind.clone(), |a| a.ip().to_string()),
        idle_timeout_secs: AtomicU64::new(config.settings.timeout_secs),
        next_client_id: AtomicU64::new(1),
        clients: Mutex::new(BTreeMap::new()),
        counters: Counters::default(),
        run_id: crate::db::new_run_id(),
        executable: std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
        ops: Mutex::new(OpsSamples::new(Instant::now())),
        slowlog: SlowLog::new(config.slowlog_log_slower_than_us, config.slowlog_max_len),
        latency: crate::latency::LatencyMonitor::new(config.latency_monitor_threshold_ms),
        command_stats: crate::db::new_command_stats(),
        settings: parking_lot::Mutex::new(settings),
        config_file: config.config_file.clone(),
        shutdown: crate::admin::Shutdown::default(),
        monitors: crate::monitor::Monitors::default(),
        pubsub: crate::pubsub::PubSub::default(),
        blocking: config.cluster.as_ref().map(|c| c.blocking.clone()).unwrap_or_default(),
        committer: Arc::default(),
        pause: crate::pause::Pause::default(),
    });
    if let Some(cluster) = &config.cluster {
        cluster.set_db(&db);
    }
    // The collections' orphan sweeper (a single node's; see `sweeper.rs`), stopped below.
    let sweeper = (config.cluster.is_none() && crate::sweeper::fits(&db.store))
        .then(|| tokio::spawn(crate::sweeper::run(Arc::downgrade(&db.store), value_bytes_max)));
    // One permit per open client socket: the count the descriptor budget was made for.
    let permits = Arc::new(Semaphore::new(maxclients));
    // Whether the last client was refused for want of a permit (logged once per spell).
    let mut refusing = false;
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listeners.accept() => accepted,
            _ = &mut shutdown => break,
            () = db.shutdown.requested.notified() => break,
        };
        let accepted = match accepted {
            Ok(accepted) => accepted,
            // This one client's trouble (it reset before it was accepted): on to the next.
            Err(e) if is_one_clients_error(&e) => continue,
            Err(e) => {
                let n = config.meters.accept_errors_backed_off.fetch_add(1, Ordering::Relaxed) + 1;
                // The first and then every 1000th: this repeats every 50 ms while it lasts.
                if n % ACCEPT_ERRORS_LOGGED_EVERY == 1 {
                    tracing::warn!(error = %e, backed_off_so_far = n, "accept failed; backing off");
                }
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    _ = &mut shutdown => break,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let refused = db.counters.rejected_connections.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning when refusals start, not one per client: a flood of connections must
            // not become a flood of log lines. Each one is still there at debug.
            if !refusing {
                tracing::warn!(
                    maxclients,
                    refused_so_far = refused,
                    "max number of clients reached: refusing connections"
                );
                refusing = true;
            }
            tracing::debug!(peer = %accepted.ends().peer, "refused: max number of clients reached");
            refuse(accepted);
            continue;
        };
        refusing = false;
        let (db, mut stop, done) = (db.clone(), notify_shutdown.subscribe(), done_tx.clone());
        let meters = config.meters.clone();
        let keepalive = config.keepalive;
        tokio::spawn(async move {
            let ends = accepted.ends();
            match accepted {
                Accepted::Tcp(stream) => {
                    tune(&stream, keepalive);
                    serve(stream, ends, db, meters, limits, &mut stop).await;
                }
                Accepted::Tls(stream, acceptor) => {
                    tune(&stream, keepalive);
                    if let Some(stream) = handshake(stream, &acceptor, &ends.peer, &meters, &mut stop).await {
                        serve(stream, ends, db, meters, limits, &mut stop).await;
                    }
                }
                #[cfg(unix)]
                Accepted::Unix(stream) => serve(stream, ends, db, meters, limits, &mut stop).await,
            }
            drop(permit);
            drop(done);
        });
    }
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    let open = db.client_count();
    tracing::info!(clients = open, "shutting down: closing connections");
    drop(notify_shutdown);
    drop(done_tx);
    match tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await {
        Ok(_) => tracing::info!("connections closed"),
        Err(_) => tracing::warn!(
            still_open = db.client_count(),
            grace = ?SHUTDOWN_GRACE,
            "connections still writing to clients that do not read; dropping them"
        ),
    }
    // A save holds the store: the caller closes it once this returns, so a running save is
    // waited for (off the async workers), and one that was started is finished; then the one
    // SHUTDOWN SAVE asked for, which holds every write since no connection is left.
    match tokio::task::spawn_blocking(move || db.save_at_shutdown()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(io::Error::other(format!("SHUTDOWN SAVE: {why}"))),
        Err(e) => Err(io::Error::other(format!("SHUTDOWN SAVE: {e}"))),
    }
}

/// The largest request whose writes surely fit in one batch of `batch_bytes_max`, so that no
/// single command is refused for its size once parsed: the worst ratio of record bytes to request
/// bytes is a DEL of one-byte keys (a 17-byte tombstone for a 7-byte `$1\r\nk\r\n`), 2.43; an
/// MSET of one-byte pairs writes 17 bytes per 13. A larger request is a protocol error from its
/// header, before it is buffered. (A command writing one value from the store, as APPEND or
/// RENAME do, is bounded by the value limit instead.)
pub fn request_bytes_fitting(batch_bytes_max: usize) -> usize {
    batch_bytes_max / 5 * 2
}

/// Whether a failed accept concerns only the client it was for.
fn is_one_clients_error(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
}

/// Tells a client over the limit why, and closes it at once: the line goes into the fresh
/// socket's empty send buffer without waiting, so a flood of refused clients never holds more
/// than one descriptor. A TLS client is closed without a word: the line would need a handshake.
fn refuse(accepted: Accepted) {
    match accepted {
        Accepted::Tcp(stream) => {
            if let Ok(stream) = stream.into_std() {
                let _ = (&stream).write(MAXCLIENTS_ERROR);
            }
        }
        Accepted::Tls(..) => {}
        #[cfg(unix)]
        Accepted::Unix(stream) => {
            let _ = stream.try_write(MAXCLIENTS_ERROR);
        }
    }
}

/// No delay for small replies; keepalive finds and closes half-open connections.
fn tune(stream: &TcpStream, keepalive: Duration) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(keepalive));
}

/// The TLS handshake, bounded by [`HANDSHAKE_TIMEOUT`](crate::tls::HANDSHAKE_TIMEOUT) and cut
/// short by shutdown; `None` if it failed (counted and logged, see
/// [`HANDSHAKE_FAILURES_LOGGED_EVERY`](crate::tls::HANDSHAKE_FAILURES_LOGGED_EVERY)).
async fn handshake(
    stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    addr: &str,
    meters: &Meters,
    stop: &mut broadcast::Receiver<()>,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let error = tokio::select! {
        done = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => match done {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {:?}", crate::tls::HANDSHAKE_TIMEOUT),
        },
        _ = stop.recv() => return None,
    };
    let failures = meters.tls_handshake_failures.fetch_add(1, Ordering::Relaxed) + 1;
    if failures % crate::tls::HANDSHAKE_FAILURES_LOGGED_EVERY == 1 {
        tracing::info!(peer = %addr, error = %error, failures_so_far = failures, "TLS handshake failed");
    } else {
        tracing::debug!(peer = %addr, error = %error, "TLS handshake failed");
    }
    None
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    ends: crate::listen::Ends,
    db: Arc<Db>,
    meters: Arc<Meters>,
    limits: Limits,
    stop: &mut broadcast::Receiver<()>,
) {
    // At error level so that it is enabled whenever any event is: every line a client causes
    // (a failed AUTH, a protocol error, a slow command) then carries its id and address.
    let span = tracing::error_span!("client", id = tracing::field::Empty, addr = %ends.peer);
    let (id, kill) = db.register(ends.peer, ends.local, ends.unix);
    span.record("id", id);
    async {
        tracing::debug!("client connected");
        let mut session = Session::new(db.clone(), id);
        let mut connection = Connection::new(stream, meters);
        // An I/O error ends this client only.
        match connection.run(&mut session, &limits, stop, &kill).await {
            Ok(()) => tracing::debug!("client disconnected"),
            Err(e) => tracing::debug!(error = %e, "client disconnected"),
        }
    }
    .instrument(span)
    .await;
    db.unregister(id);
}
