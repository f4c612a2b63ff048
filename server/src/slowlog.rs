//! SLOWLOG: the commands that took at least `slowlog-log-slower-than` microseconds, newest first,
//! at most `slowlog-max-len` of them, each kept as Redis 7.0 keeps it (id, Unix time, duration,
//! its arguments cut to [`ENTRY_ARGS_MAX`] of at most [`ENTRY_ARG_BYTES_MAX`] bytes, the client's
//! address and name).
//!
//! The hot path reads one atomic (the threshold) per command; the log's mutex is taken only to
//! add a slow command or to answer SLOWLOG, so a threshold that logs nothing costs nothing else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cmd::parse::is;
use crate::reply::Reply;

/// The default `slowlog-log-slower-than` (Redis's): 10 ms.
pub const LOG_SLOWER_THAN_US_DEFAULT: i64 = 10_000;
/// The default `slowlog-max-len` (Redis's).
pub const MAX_LEN_DEFAULT: usize = 128;
/// The most arguments an entry keeps; past it the last kept one says how many more there were
/// (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const ENTRY_ARGS_MAX: usize = 32;
/// The most bytes of one argument an entry keeps; past it the rest is counted (Redis's
/// `SLOWLOG_ENTRY_MAX_STRING`).
pub const ENTRY_ARG_BYTES_MAX: usize = 128;
/// SLOWLOG GET's count when none is given (Redis's).
const GET_COUNT_DEFAULT: usize = 10;

/// One slow command.
#[derive(Clone, Debug)]
struct Entry {
    id: u64,
    unix_secs: u64,
    duration_us: u64,
    args: Vec<Bytes>,
    addr: String,
    name: Vec<u8>,
}

/// The log and its two settings, shared by every connection.
#[derive(Debug)]
pub(crate) struct SlowLog {
    /// `slowlog-log-slower-than` in microseconds: negative logs nothing, 0 logs every command.
    slower_than_us: AtomicI64,
    /// `slowlog-max-len`.
    max_len: AtomicUsize,
    next_id: AtomicU64,
    /// The Unix second of the last "slow command" log line, and the slow commands since that
    /// were not logged: at most one line a second, so that a slow disk (every write then waits
    /// longer than the threshold for its sync) does not turn every write into a log line.
    logged_at_secs: AtomicU64,
    not_logged: AtomicU64,
    /// Newest first.
    entries: Mutex<VecDeque<Entry>>,
}

impl SlowLog {
    pub(crate) fn new(slower_than_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            slower_than_us: AtomicI64::new(slower_than_us),
            max_len: AtomicUsize::new(max_len),
            next_id: AtomicU64::new(0),
            logged_at_secs: AtomicU64::new(0),
            not_logged: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether a command that took `duration_us` belongs in the log (Redis: at least the
    /// threshold, which must not be negative).
    pub(crate) fn is_slow(&self, duration_us: u64) -> bool {
        let threshold = self.slower_than_us.load(Ordering::Relaxed);
        threshold >= 0 && duration_us >= threshold as u64
    }

    /// Whether this slow command gets a log line: `Some(n)`, with the `n` slow commands not
    /// logged since the last line, at most once per second.
    pub(crate) fn take_log_line(&self) -> Option<u64> {
        let now = unix_secs();
        let last = self.logged_at_secs.load(Ordering::Relaxed);
        if last != now && self.logged_at_secs.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.not_logged.swap(0, Ordering::Relaxed));
        }
        self.not_logged.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// The current `slowlog-log-slower-than` (for CONFIG GET).
    #[allow(dead_code, reason = "CONFIG GET/SET of slowlog-* comes with the configuration work of issue 25")]
    pub(crate) fn slower_than_us(&self) -> i64 {
        self.slower_than_us.load(Ordering::Relaxed)
    }

    /// Sets `slowlog-log-slower-than` (for CONFIG SET): negative turns the log off.
    #[allow(dead_code, reason = "CONFIG GET/SET of slowlog-* comes with the configuration work of issue 25")]
    pub(crate) fn set_slower_than_us(&self, us: i64) {
        self.slower_than_us.store(us, Ordering::Relaxed);
    }

    /// The current `slowlog-max-len` (for CONFIG GET).
    pub(crate) fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// Sets `slowlog-max-len` (for CONFIG SET); the oldest entries over it are dropped now.
    #[allow(dead_code, reason = "CONFIG GET/SET of slowlog-* comes with the configuration work of issue 25")]
    pub(crate) fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
        self.entries.lock().truncate(len);
    }

    /// Adds a command that took `duration_us` (checked slow by the caller), its arguments cut as
    /// Redis cuts them and the password of AUTH or HELLO AUTH redacted.
    pub(crate) fn push(&self, args: &[Bytes], duration_us: u64, addr: String, name: Vec<u8>) {
        let unix_secs = unix_secs();
        let mut kept = Vec::with_capacity(args.len().min(ENTRY_ARGS_MAX));
        let redacted = redacted_args(args);
        for (j, arg) in args.iter().enumerate().take(ENTRY_ARGS_MAX) {
            if args.len() > ENTRY_ARGS_MAX && j == ENTRY_ARGS_MAX - 1 {
                let more = args.len() - ENTRY_ARGS_MAX + 1;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
            } else if redacted.contains(&j) {
                kept.push(Bytes::from_static(b"(redacted)"));
            } else if arg.len() > ENTRY_ARG_BYTES_MAX {
                let more = arg.len() - ENTRY_ARG_BYTES_MAX;
                let cut = [&arg[..ENTRY_ARG_BYTES_MAX], format!("... ({more} more bytes)").as_bytes()].concat();
                kept.push(Bytes::from(cut));
            } else {
                // A copy: a slice would keep the connection's whole read buffer alive.
                kept.push(Bytes::copy_from_slice(arg));
            }
        }
        let max_len = self.max_len();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry { id, unix_secs, duration_us, args: kept, addr, name };
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// SLOWLOG LEN.
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// SLOWLOG RESET: the log is emptied; ids go on from where they were, as in Redis.
    pub(crate) fn reset(&self) {
        self.entries.lock().clear();
    }

    /// SLOWLOG GET's reply for its optional count argument.
    pub(crate) fn get(&self, count: Option<&[u8]>) -> Reply {
        let count = match count {
            None => GET_COUNT_DEFAULT,
            // Redis gives the same error for a count that is not an integer.
            Some(arg) => match crate::cmd::parse::strict_i64(arg) {
                Some(-1) => usize::MAX,
                Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Reply::error("ERR count should be greater than or equal to -1"),
            },
        };
        let entries = self.entries.lock();
        Reply::Array(entries.iter().take(count).map(entry_reply).collect())
    }
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The positions of `args` that carry a secret: AUTH's arguments, HELLO's AUTH user and password
/// (Redis redacts the same ones).
fn redacted_args(args: &[Bytes]) -> Vec<usize> {
    if is(&args[0], "auth") {
        return (1..args.len()).collect();
    }
    if is(&args[0], "hello") {
        if let Some(at) = args.iter().skip(2).position(|a| is(a, "auth")) {
            let at = at + 2;
            return vec![at + 1, at + 2];
        }
    }
    Vec::new()
}

fn entry_reply(e: &Entry) -> Reply {
    Reply::Array(vec![
        Reply::Int(e.id as i64),
        Reply::Int(e.unix_secs as i64),
        Reply::Int(e.duration_us.min(i64::MAX as u64) as i64),
        Reply::Array(e.args.iter().map(|a| Reply::bulk(a.to_vec())).collect()),
        Reply::bulk(e.addr.clone().into_bytes()),
        Reply::bulk(e.name.clone()),
    ])
}

/// SLOWLOG HELP's text, as Redis 7.0 prints it.
pub(crate) const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&[u8]]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w)).collect()
    }

    fn kept(log: &SlowLog) -> Vec<Vec<u8>> {
        log.entries.lock()[0].args.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn entries_cut_arguments_as_redis_does() {
        let log = SlowLog::new(0, MAX_LEN_DEFAULT);
        let long = vec![b'x'; ENTRY_ARG_BYTES_MAX + 5];
        log.push(&args(&[b"set", b"k", &long]), 1, "a:1".into(), Vec::new());
        let mut want = vec![b'x'; ENTRY_ARG_BYTES_MAX];
        want.extend_from_slice(b"... (5 more bytes)");
        assert_eq!(kept(&log), vec![b"set".to_vec(), b"k".to_vec(), want]);

        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        log.push(&many, 1, "a:1".into(), Vec::new());
        let kept = kept(&log);
        assert_eq!(kept.len(), ENTRY_ARGS_MAX);
        assert_eq!(kept[30], b"30");
        assert_eq!(kept[31], b"... (9 more arguments)", "40 arguments: 31 kept, 9 counted");
    }

    #[test]
    fn passwords_are_redacted() {
        let log = SlowLog::new(0, MAX_LEN_DEFAULT);
        log.push(&args(&[b"AUTH", b"user", b"secret"]), 1, "a:1".into(), Vec::new());
        assert_eq!(kept(&log), vec![b"AUTH".to_vec(), b"(redacted)".to_vec(), b"(redacted)".to_vec()]);
        log.push(&args(&[b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]), 1, "a:1".into(), Vec::new());
        assert_eq!(kept(&log)[3..5], [b"(redacted)".to_vec(), b"(redacted)".to_vec()]);
        assert_eq!(kept(&log)[6], b"n");
    }

    #[test]
    fn the_log_keeps_the_newest_max_len_and_a_negative_threshold_logs_nothing() {
        let log = SlowLog::new(0, 3);
        for i in 0..5u64 {
            log.push(&args(&[b"ping"]), i, "a:1".into(), Vec::new());
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.entries.lock().iter().map(|e| e.id).collect::<Vec<_>>(), [4, 3, 2], "newest first");
        log.set_max_len(1);
        assert_eq!(log.len(), 1);
        assert!(log.is_slow(0));
        log.set_slower_than_us(-1);
        assert!(!log.is_slow(u64::MAX));
        log.set_slower_than_us(100);
        assert!(!log.is_slow(99) && log.is_slow(100), "at least the threshold, as Redis");
    }
}
