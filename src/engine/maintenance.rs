//! The background thread: periodic syncs in write-back mode, the index entries of dropped
//! keyspaces, hint files for sealed segments, and automatic compaction. It stops (and is joined) when the store is dropped.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::engine::Engine;
use crate::options::SyncMode;

/// How long the thread sleeps when nothing wakes it, in always-sync mode.
const IDLE_WAKE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Signal {
    stop: bool,
    work: bool,
}

pub(crate) struct Maintenance {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    handle: JoinHandle<()>,
}

impl Maintenance {
    pub(crate) fn start(engine: &Arc<Engine>) -> Maintenance {
        let signal = Arc::new((Mutex::new(Signal::default()), Condvar::new()));
        let thread_signal = Arc::clone(&signal);
        let engine = Arc::clone(engine);
        let handle = std::thread::Builder::new()
            .name("ferrocask-maintenance".into())
            .spawn(move || run(&engine, &thread_signal))
            .expect("spawn the maintenance thread");
        Maintenance { signal, handle }
    }

    /// Wakes the thread to look at its work now (after a sync mode switch: a new interval).
    pub(crate) fn wake(&self) {
        let (lock, cv) = &*self.signal;
        lock.lock().work = true;
        cv.notify_one();
    }

    /// Wakes the thread if a segment was sealed since it last looked.
    pub(crate) fn nudge_if_sealed(&self, engine: &Engine) {
        if engine.writer.has_sealed() {
            let (lock, cv) = &*self.signal;
            lock.lock().work = true;
            cv.notify_one();
        }
    }

    pub(crate) fn stop(self) {
        {
            let (lock, cv) = &*self.signal;
            lock.lock().stop = true;
            cv.notify_one();
        }
        let _ = self.handle.join();
    }
}

fn run(engine: &Engine, signal: &(Mutex<Signal>, Condvar)) {
    // Write-back syncs when its interval has passed since the last one, not whenever the thread
    // wakes for other work (a mode switch, a sealed segment): a wake must not sync what the mode
    // promised only to sync later (and it would sync more often than asked).
    let mut last_sync = Instant::now();
    loop {
        // Read each round: the mode may be switched while the store is open.
        let wait = match engine.writer.sync_mode() {
            SyncMode::Every(d) => d.saturating_sub(last_sync.elapsed()),
            SyncMode::Always => IDLE_WAKE,
        };
        {
            let (lock, cv) = signal;
            let mut s = lock.lock();
            if !s.stop && !s.work {
                cv.wait_for(&mut s, wait);
            }
            if s.stop {
                return;
            }
            s.work = false;
        }
        if let SyncMode::Every(interval) = engine.writer.sync_mode() {
            if last_sync.elapsed() >= interval {
                let _ = engine.writer.sync_now(); // a failure poisons the writer, which reports it
                last_sync = Instant::now();
            }
        }
        // Before compaction looks at dead bytes: a dropped keyspace's records become dead here.
        engine.keyspaces.forget_dropped(&engine.index);
        crate::engine::hints::write_pending(engine);
        if engine.options.auto_compact {
            if let Ok(Some(_)) = crate::compaction::compact_if_due(engine) {
                // A run is bounded by a fraction of the store (`run_input_bytes_max`), so one may
                // leave more due: look again at once (a stop still ends the loop first) instead of
                // waiting for the next roll-over or idle wake, so that compaction keeps up.
                signal.0.lock().work = true;
            }
        }
    }
}
