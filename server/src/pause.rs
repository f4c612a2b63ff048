//! CLIENT PAUSE and CLIENT UNPAUSE, as Redis 7.0 has them: for `timeout` milliseconds, every
//! command (`ALL`, the default) or every command that writes (`WRITE`: write commands, PUBLISH,
//! and an EXEC with a write queued) of every client waits before it runs, the caller's included.
//! A second pause keeps the later end and the stricter mode. UNPAUSE ends it at once (in `ALL`
//! mode UNPAUSE waits too, as in Redis: only the timeout ends an `ALL` pause).
//!
//! A paused request waits in its connection, after the replies before it are written, and counts
//! as a blocked client (INFO `blocked_clients`, as Redis counts a postponed one). What a request
//! pays when nothing is paused: one relaxed load.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cmd::parse::{is, strict_i64};
use crate::reply::Reply;

/// What a pause holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mode {
    Write,
    All,
}

/// The server's pause (one per server).
#[derive(Default)]
pub(crate) struct Pause {
    /// Whether a pause may be in force: the fast path's one load.
    active: AtomicBool,
    /// Its end and mode.
    state: Mutex<Option<(Instant, Mode)>>,
    /// Wakes the waiting requests on UNPAUSE (a pause's end wakes them by its deadline).
    ended: Notify,
    /// Requests waiting now (INFO `blocked_clients`).
    waiting: AtomicUsize,
}

impl Pause {
    /// Whether a pause may be in force (one relaxed load): only then is a request looked at.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// The pause in force for a request that writes (`writes`) or not, if it must wait: its end.
    pub(crate) fn holds(&self, writes: bool) -> Option<Instant> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = self.state.lock();
        match *state {
            Some((end, _)) if end <= Instant::now() => {
                *state = None;
                self.active.store(false, Ordering::Relaxed);
                None
            }
            Some((end, Mode::All)) => Some(end),
            Some((end, Mode::Write)) if writes => Some(end),
            _ => None,
        }
    }

    /// Waits until a request that writes (`writes`) or not may run.
    pub(crate) async fn wait(&self, writes: bool) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check: an UNPAUSE between the two is not missed.
            ended.as_mut().enable();
            let Some(end) = self.holds(writes) else { break };
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep_until(end) => {}
            }
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests waiting for the pause to end.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn pause(&self, duration: Duration, mode: Mode) {
        let end = Instant::now() + duration;
        let mut state = self.state.lock();
        *state = Some(match *state {
            Some((old_end, old_mode)) => (old_end.max(end), old_mode.max(mode)),
            None => (end, mode),
        });
        self.active.store(true, Ordering::Relaxed);
    }

    fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Relaxed);
        self.ended.notify_waiters();
    }
}

/// CLIENT PAUSE timeout [WRITE|ALL], with Redis 7.0's errors.
pub(crate) fn client_pause(pause: &Pause, args: &[Bytes]) -> Reply {
    let millis = match strict_i64(&args[2]) {
        None => return Reply::error("ERR timeout is not an integer or out of range"),
        Some(ms) if ms < 0 => return Reply::error("ERR timeout is negative"),
        Some(ms) => ms as u64,
    };
    let mode = match args.get(3) {
        None => Mode::All,
        Some(m) if args.len() == 4 && is(m, "write") => Mode::Write,
        Some(m) if args.len() == 4 && is(m, "all") => Mode::All,
        Some(_) => return Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    pause.pause(Duration::from_millis(millis), mode);
    Reply::OK
}

/// CLIENT UNPAUSE.
pub(crate) fn client_unpause(pause: &Pause) -> Reply {
    pause.unpause();
    Reply::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_pause_holds_writes_only_and_unpause_ends_it() {
        let pause = Pause::default();
        assert_eq!(pause.holds(true), None, "nothing paused");
        pause.pause(Duration::from_secs(60), Mode::Write);
        assert!(pause.holds(true).is_some());
        assert_eq!(pause.holds(false), None, "a read runs during a WRITE pause");
        pause.unpause();
        assert_eq!(pause.holds(true), None);
    }

    #[test]
    fn a_second_pause_keeps_the_later_end_and_the_stricter_mode() {
        let pause = Pause::default();
        pause.pause(Duration::from_secs(60), Mode::All);
        let end = pause.holds(false).unwrap();
        pause.pause(Duration::from_secs(1), Mode::Write);
        assert_eq!(pause.holds(false), Some(end), "still ALL, still the later end");
    }

    #[test]
    fn a_pause_of_zero_holds_nothing() {
        let pause = Pause::default();
        pause.pause(Duration::ZERO, Mode::All);
        assert_eq!(pause.holds(true), None);
    }
}
