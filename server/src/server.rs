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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, Semaphore};

use crate::connection::Connection;
use crate::db::{Counters, Db};
use crate::protocol::Limits;
use crate::session::Session;

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
}

/// How long the listener waits after an accept failed for a reason other than the one client
/// (out of descriptors or buffers: `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), before it accepts
/// again. Clients arriving meanwhile wait in the listen backlog.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

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
    /// The directory SAVE and BGSAVE make their backups in (`None`: the store directory's
    /// parent); each backup is a new `<store dir name>-backup-<unix time>` directory there.
    pub backup_dir: Option<PathBuf>,
    /// The parameters' values as the server starts (CONFIG GET shows them, SET changes them);
    /// `timeout` is applied from here. The fields above still govern what they govern.
    pub settings: crate::config::Settings,
    /// The config file the server was started with: CONFIG REWRITE writes it (`None`: CONFIG
    /// REWRITE fails, as in Redis).
    pub config_file: Option<PathBuf>,
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
            backup_dir: None,
            settings: crate::config::Settings::default(),
            config_file: None,
        }
    }
}

/// Serves `store` on `listener` until `shutdown` resolves, then stops accepting, closes every
/// connection (their in-flight writes finish first: a connection only stops between requests)
/// and returns. Dropping the last `Arc<Store>` afterwards closes the store.
pub async fn run(listener: TcpListener, store: Arc<Store>, config: Config, shutdown: impl Future) -> io::Result<()> {
    let local = listener.local_addr()?;
    let value_bytes_max = config.value_bytes_max;
    let mut limits = config.limits;
    limits.bulk_bytes_max = limits.bulk_bytes_max.min(value_bytes_max);
    limits.request_bytes_max = limits.request_bytes_max.min(request_bytes_fitting(store.batch_bytes_max()));
    let maxclients = crate::fd_limit::clients_max(config.maxclients, store.stats().segments);
    let db = Arc::new(Db {
        backups: crate::admin::Backups::new(store.path(), config.backup_dir.as_deref()),
        store,
        clock: config.clock.clone(),
        value_bytes_max,
        password: config.password.clone(),
        maxclients,
        started: Instant::now(),
        port: local.port(),
        bind: local.ip().to_string(),
        idle_timeout_secs: AtomicU64::new(config.settings.timeout_secs),
        next_client_id: AtomicU64::new(1),
        clients: Mutex::new(BTreeMap::new()),
        counters: Counters::default(),
        settings: parking_lot::Mutex::new(config.settings.clone()),
        config_file: config.config_file.clone(),
        shutdown: crate::admin::Shutdown::default(),
    });
    // One permit per open client socket: the count the descriptor budget was made for.
    let permits = Arc::new(Semaphore::new(maxclients));
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
            () = db.shutdown.requested.notified() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // This one client's trouble (it reset before it was accepted): on to the next.
            Err(e) if is_one_clients_error(&e) => continue,
            Err(_) => {
                config.meters.accept_errors_backed_off.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    _ = &mut shutdown => break,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            db.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
            refuse(stream);
            continue;
        };
        let (db, mut stop, done) = (db.clone(), notify_shutdown.subscribe(), done_tx.clone());
        let meters = config.meters.clone();
        tokio::spawn(async move {
            serve(stream, db, meters, limits, config.keepalive, &mut stop).await;
            drop(permit);
            drop(done);
        });
    }
    drop(notify_shutdown);
    drop(done_tx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv()).await;
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
/// than one descriptor.
fn refuse(stream: TcpStream) {
    if let Ok(stream) = stream.into_std() {
        let _ = (&stream).write(MAXCLIENTS_ERROR);
    }
}

async fn serve(
    stream: TcpStream,
    db: Arc<Db>,
    meters: Arc<Meters>,
    limits: Limits,
    keepalive: Duration,
    stop: &mut broadcast::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(keepalive));
    let addr = stream.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let id = db.register(addr);
    let mut session = Session::new(db.clone(), id);
    let mut connection = Connection::new(stream, meters);
    // An I/O error ends this client only.
    let _ = connection.run(&mut session, &limits, stop).await;
    db.unregister(id);
}
