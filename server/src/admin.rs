//! Administration commands: SAVE, BGSAVE and LASTSAVE (online backup).
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

/// Redis's error for a save while one runs.
const SAVE_IN_PROGRESS: &str = "ERR Background save already in progress";

/// The state of online backups, shared by every connection.
pub(crate) struct Backups {
    /// The directory new backups are made in.
    parent: PathBuf,
    /// The store directory's name: each backup is `<name>-backup-<unix time>`.
    name: String,
    /// Whether a save runs now (only one at a time).
    running: AtomicBool,
    /// Whether a `BGSAVE SCHEDULE` asked for another save once the running one ends.
    scheduled: AtomicBool,
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
            parent,
            name,
            running: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            last_save_unix: AtomicU64::new(unix_now()),
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
        let base = format!("{}-backup-{}", self.name, unix_now());
        (1..=BACKUP_NAME_ATTEMPTS_MAX)
            .map(|n| self.parent.join(if n == 1 { base.clone() } else { format!("{base}-{n}") }))
            .find(|path| !path.exists())
            .ok_or_else(|| format!("every name from {base} to {base}-{BACKUP_NAME_ATTEMPTS_MAX} is taken"))
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Runs the administration command `name` (SAVE, BGSAVE, LASTSAVE).
pub(crate) fn run(db: &Arc<Db>, name: &str, args: &[Bytes]) -> Outcome {
    match name {
        "save" => save(db),
        "bgsave" => Outcome::Now(bgsave(db, args)),
        "lastsave" => Outcome::Now(Reply::Int(db.backups.last_save_unix.load(Ordering::Relaxed) as i64)),
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
fn bgsave(db: &Arc<Db>, args: &[Bytes]) -> Reply {
    let schedule = match args.get(1) {
        None => false,
        Some(arg) if args.len() == 2 && is(arg, "schedule") => true,
        Some(_) => return Reply::error(SYNTAX),
    };
    match start(db, |_| {}) {
        Ok(()) => Reply::Status("Background saving started"),
        Err(_) if schedule => {
            db.backups.scheduled.store(true, Ordering::Relaxed);
            Reply::Status("Background saving scheduled")
        }
        Err(e) => e,
    }
}

/// Starts a save on its own thread unless one runs; `done` gets its outcome.
fn start(db: &Arc<Db>, done: impl FnOnce(Result<(), String>) + Send + 'static) -> Result<(), Reply> {
    if db.backups.running.swap(true, Ordering::AcqRel) {
        return Err(Reply::error(SAVE_IN_PROGRESS));
    }
    let mut slot = db.backups.thread.lock();
    // The previous save's thread has ended (`running` was clear): reap it.
    if let Some(previous) = slot.take() {
        let _ = previous.join();
    }
    let saver = Arc::clone(db);
    let thread = std::thread::Builder::new().name("ferrocask-save".into()).spawn(move || {
        let result = backup_once(&saver);
        done(result);
        // A save asked for while this one ran.
        while saver.backups.scheduled.swap(false, Ordering::AcqRel) {
            let _ = backup_once(&saver);
        }
        saver.backups.running.store(false, Ordering::Release);
    });
    match thread {
        Ok(thread) => {
            *slot = Some(thread);
            Ok(())
        }
        Err(e) => {
            db.backups.running.store(false, Ordering::Release);
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
