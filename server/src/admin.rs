//! Administration commands: SAVE, BGSAVE and LASTSAVE (online backup), SHUTDOWN and ROLE.
//!
//! A save is the store's online backup ([`Store::backup_to`](ferrocask::Store::backup_to)): a
//! consistent cut of the log, copied while writers go on, into a new directory
//! `<backup dir>/<store dir name>-backup-<unix time>` (the backup dir defaults to the store
//! directory's parent). Every save, SAVE's too, runs on a thread of its own, never on an async
//! worker: a copy of gigabytes would stall every connection that worker serves. One save runs at
//! a time, as in Redis. Shutdown waits for a running save ([`Backups::wait`]), so the store is
//! never closed under it and a save that was started is finished.
//!
//! Why the copy holds every write acknowledged before the command: a connection sends a reply
//! only once the write is durable, and a durable write is below the log's durable tail, which is
//! where the cut is taken; and the connection waits for its own earlier writes before running a
//! non-write command such as BGSAVE (`Session::schedule`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cmd::parse::{is, SYNTAX};
use crate::db::Db;
use crate::reply::Reply;
use crate::session::Outcome;

/// How many names a save tries when `<name>-backup-<unix time>` exists already (two saves in one
/// second): `-2`, `-3`, ... are appended, up to this many in all.
const BACKUP_NAME_ATTEMPTS_MAX: u32 = 100;

/// Why a server without backups refuses to save.
const SAVE_DISABLED: &str = "saving is disabled on this server";

/// Redis's error for a save while one runs.
const SAVE_IN_PROGRESS: &str = "ERR Background save already in progress";

/// The state of online backups, shared by every connection.
pub(crate) struct Backups {
    /// The directory new backups are made in (`None`: saving is disabled, see
    /// [`Backups::disabled`]).
    parent: Option<PathBuf>,
    /// The store directory's name: each backup is `<name>-backup-<unix time>`.
    name: String,
    /// Whether a save runs, and whether another is scheduled: one lock, so a save that ends
    /// and a `BGSAVE SCHEDULE` that arrives meanwhile cannot miss each other.
    state: Mutex<SaveState>,
    /// LASTSAVE: the unix time of the last successful save (the server's start before any).
    last_save_unix: AtomicU64,
    /// The thread of the running (or last) save, joined at shutdown.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Backups {
    /// Backups of the store at `store_dir`, made in `backup_dir` or else beside the store.
    pub(crate) fn new(store_dir: &Path, backup_dir: Option<&Path>) -> Backups {
        // Absolute, so that the parent of `.` or of a bare name is a real directory.
        let store_dir = std::fs::canonicalize(store_dir).unwrap_or_else(|_| store_dir.to_path_buf());
        let name = store_dir.file_name().map_or_else(|| "ferrocask".into(), |n| n.to_string_lossy().into_owned());
        let parent = match backup_dir {
            Some(dir) => dir.to_path_buf(),
            None => store_dir.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        };
        Backups {
            parent: Some(parent),
            name,
            state: Mutex::new(SaveState::default()),
            last_save_unix: AtomicU64::new(unix_now()),
            thread: Mutex::new(None),
        }
    }

    /// No saves (the fuzz target's server): a save would copy the store on a thread of its own,
    /// which a deterministic replay cannot have.
    pub(crate) fn disabled() -> Backups {
        Backups {
            parent: None,
            name: String::new(),
            state: Mutex::new(SaveState::default()),
            last_save_unix: AtomicU64::new(0),
            thread: Mutex::new(None),
        }
    }

    /// Waits for a running save to end (at shutdown: the store must outlive it).
    pub(crate) fn wait(&self) {
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// A directory for a backup made now: new, named for the store and the time.
    fn target(&self) -> Result<PathBuf, String> {
        let Some(parent) = &self.parent else { return Err(SAVE_DISABLED.into()) };
        let base = format!("{}-backup-{}", self.name, unix_now());
        (1..=BACKUP_NAME_ATTEMPTS_MAX)
            .map(|n| parent.join(if n == 1 { base.clone() } else { format!("{base}-{n}") }))
            .find(|path| !path.exists())
            .ok_or_else(|| format!("every name from {base} to {base}-{BACKUP_NAME_ATTEMPTS_MAX} is taken"))
    }
}

/// Whether a save runs (only one at a time), and whether a `BGSAVE SCHEDULE` asked for another
/// once it ends.
#[derive(Default)]
struct SaveState {
    running: bool,
    scheduled: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Runs the administration command `name` (SAVE, BGSAVE, LASTSAVE, SHUTDOWN).
pub(crate) fn run(db: &Arc<Db>, name: &str, args: &[Bytes]) -> Outcome {
    match name {
        "save" => save(db),
        "bgsave" => Outcome::Now(bgsave(db, args)),
        "lastsave" => Outcome::Now(Reply::Int(db.backups.last_save_unix.load(Ordering::Relaxed) as i64)),
        "shutdown" => shutdown(db, args),
        other => unreachable!("{other} is not an administration command"),
    }
}

/// SAVE: a backup, replied to (`+OK`) once it is complete and durable.
fn save(db: &Arc<Db>) -> Outcome {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Err(e) = start(db, move |result| {
        let _ = tx.send(result);
    }) {
        return Outcome::Now(e);
    }
    Outcome::Later(Box::pin(async move {
        match rx.await {
            Ok(Ok(())) => Reply::OK,
            Ok(Err(e)) => Reply::error(format!("ERR {e}")),
            Err(_) => Reply::error("ERR the save ended without a result"),
        }
    }))
}

/// BGSAVE [SCHEDULE]: starts a backup and replies at once; LASTSAVE changes when it succeeds.
/// With SCHEDULE, a save asked for while one runs is made once that one ends.
fn bgsave(db: &Arc<Db>, args: &[Bytes]) -> Reply {
    let schedule = match args.get(1) {
        None => false,
        Some(arg) if args.len() == 2 && is(arg, "schedule") => true,
        Some(_) => return Reply::error(SYNTAX),
    };
    if schedule && db.backups.parent.is_some() {
        let mut state = db.backups.state.lock();
        if state.running {
            state.scheduled = true;
            return Reply::Status("Background saving scheduled");
        }
    }
    match start(db, |_| {}) {
        Ok(()) => Reply::Status("Background saving started"),
        Err(e) => e,
    }
}

/// Starts a save on its own thread unless one runs; `done` gets its outcome once the save no
/// longer counts as running (so the client told may save again at once), unless a scheduled
/// one follows it.
fn start(db: &Arc<Db>, done: impl FnOnce(Result<(), String>) + Send + 'static) -> Result<(), Reply> {
    if db.backups.parent.is_none() {
        return Err(Reply::error(format!("ERR {SAVE_DISABLED}")));
    }
    let mut slot = db.backups.thread.lock();
    {
        let mut state = db.backups.state.lock();
        if state.running {
            return Err(Reply::error(SAVE_IN_PROGRESS));
        }
        state.running = true;
    }
    // The previous save's thread has done its work (`running` was clear): reap it.
    if let Some(previous) = slot.take() {
        let _ = previous.join();
    }
    let saver = Arc::clone(db);
    let thread = std::thread::Builder::new().name("ferrocask-save".into()).spawn(move || {
        let (mut result, mut done) = (Some(backup_once(&saver)), Some(done));
        loop {
            let again = {
                let mut state = saver.backups.state.lock();
                let again = std::mem::take(&mut state.scheduled);
                state.running = again;
                again
            };
            if let (Some(done), Some(result)) = (done.take(), result.take()) {
                done(result);
            }
            if !again {
                break;
            }
            let _ = backup_once(&saver);
        }
    });
    match thread {
        Ok(thread) => {
            *slot = Some(thread);
            Ok(())
        }
        Err(e) => {
            db.backups.state.lock().running = false;
            Err(Reply::error(format!("ERR cannot start the save: {e}")))
        }
    }
}

/// One backup into a new directory; LASTSAVE moves on success.
fn backup_once(db: &Db) -> Result<(), String> {
    let target = db.backups.target()?;
    db.store.backup_to(&target).map_err(|e| format!("backup to {} failed: {e}", target.display()))?;
    db.backups.last_save_unix.store(unix_now(), Ordering::Relaxed);
    Ok(())
}

/// The shutdown SHUTDOWN asked for: the listener stops as on SIGTERM ([`Shutdown::requested`]),
/// and, with SAVE, a backup is made once every connection has ended, so it holds every write.
#[derive(Default)]
pub(crate) struct Shutdown {
    /// Wakes the listener (a permit is kept if it is not waiting at that moment).
    pub(crate) requested: tokio::sync::Notify,
    /// SHUTDOWN SAVE: back up before the store is closed.
    save: AtomicBool,
}

impl Db {
    /// After every connection has ended: the backup SHUTDOWN SAVE asked for, if it did (a
    /// running save is waited for first, so two never run at once).
    pub(crate) fn save_at_shutdown(&self) -> Result<(), String> {
        self.backups.wait();
        if self.shutdown.save.load(Ordering::Acquire) {
            backup_once(self)?;
        }
        Ok(())
    }
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the server as SIGTERM does, without a
/// reply (as Redis: the connection closes). SAVE also makes a backup, after the last connection
/// has ended; NOSAVE is the default (every write is in the store already); NOW and FORCE change
/// nothing here (no replicas to wait for; a failed save still stops the server, and the CLI
/// exits non-zero saying why). ABORT: no shutdown is ever pending.
fn shutdown(db: &Db, args: &[Bytes]) -> Outcome {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    for arg in &args[1..] {
        match arg {
            a if is(a, "save") => save = true,
            a if is(a, "nosave") => nosave = true,
            a if is(a, "abort") => abort = true,
            a if is(a, "now") || is(a, "force") => other = true,
            _ => return Outcome::Now(Reply::error(SYNTAX)),
        }
    }
    if (save && nosave) || (abort && (save || nosave || other)) {
        return Outcome::Now(Reply::error(SYNTAX));
    }
    if abort {
        return Outcome::Now(Reply::error("ERR No shutdown in progress."));
    }
    db.shutdown.save.store(save, Ordering::Release);
    db.shutdown.requested.notify_one();
    Outcome::Hangup
}

/// ROLE: a master with no replicas, as Redis answers then.
pub(crate) fn role(_args: &[Bytes]) -> Reply {
    Reply::Array(vec![Reply::bulk("master"), Reply::Int(0), Reply::Array(Vec::new())])
}
