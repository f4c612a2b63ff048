//! MONITOR: every command the server runs, as one status line per command in Redis's form
//! (`+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`), sent to each connection in MONITOR
//! mode.
//!
//! What it costs when nobody monitors: one relaxed load per request (`Monitors::is_empty`).
//! With monitors, the line is formatted once per command and queued to each monitor's outbox
//! (`outbox`, shared with pub/sub), which holds at most [`OUTPUT_BYTES_MAX`] of lines not yet
//! written to its socket: a monitor that reads slower than commands arrive is closed (as Redis
//! closes a client past its output buffer limit), so it never makes the server hold unbounded
//! memory.
//!
//! As in Redis: administrative commands (CONFIG, SHUTDOWN, SAVE, BGSAVE, SLOWLOG, LATENCY,
//! MONITOR, CLIENT KILL/PAUSE/UNPAUSE, ACL but WHOAMI and HELP, RAFT.NODE) are not shown, AUTH's arguments and HELLO's credentials are
//! shown as `(redacted)`, and commands queued in MULTI are shown when EXEC runs them, before the
//! EXEC itself.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::cmd::parse::is;
use crate::outbox::Outbox;

/// The most bytes of lines a monitor may have queued and not yet written to its socket; past
/// it the monitor is closed (the bound of its connection's outbox).
pub const OUTPUT_BYTES_MAX: usize = crate::outbox::OUTBOX_BYTES_MAX;

/// What stands for a redacted argument (Redis's `shared.redacted`).
const REDACTED: &[u8] = b"(redacted)";

/// The connections in MONITOR mode.
#[derive(Default)]
pub(crate) struct Monitors {
    /// How many there are: what a request reads to know there is nothing to do.
    count: AtomicUsize,
    /// Each monitor's outbox (see `outbox`): bounded, and closed past its bound.
    feeds: Mutex<Vec<Outbox>>,
}

impl Monitors {
    /// Whether no connection monitors: one relaxed load.
    pub(crate) fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Makes the connection of `outbox` a monitor (again: a second MONITOR keeps one feed).
    pub(crate) fn add(&self, outbox: Outbox) {
        let mut feeds = self.feeds.lock();
        feeds.retain(|f| f.client() != outbox.client());
        feeds.push(outbox);
        self.count.store(feeds.len(), Ordering::Relaxed);
    }

    /// Stops feeding `client` (it has gone).
    pub(crate) fn remove(&self, client: u64) {
        if self.is_empty() {
            return;
        }
        let mut feeds = self.feeds.lock();
        feeds.retain(|f| f.client() != client);
        self.count.store(feeds.len(), Ordering::Relaxed);
    }

    /// Shows a command run by the client at `addr` (`unix`: on the Unix socket) to every
    /// monitor, unless it is one Redis does not show. A monitor whose outbox closed (past its
    /// bound) is dropped.
    pub(crate) fn feed(&self, addr: &str, unix: bool, args: &[Bytes]) {
        if hidden(args) {
            return;
        }
        let line = Bytes::from(line(SystemTime::now(), addr, unix, args));
        let mut feeds = self.feeds.lock();
        feeds.retain(|feed| feed.send(line.clone(), "MONITOR"));
        self.count.store(feeds.len(), Ordering::Relaxed);
    }
}

/// Whether Redis keeps the command out of MONITOR (its `CMD_ADMIN` commands).
fn hidden(args: &[Bytes]) -> bool {
    let name = &args[0];
    ["config", "shutdown", "save", "bgsave", "slowlog", "latency", "monitor", "raft.node"]
        .iter()
        .any(|admin| is(name, admin))
        || (is(name, "client")
            && args.get(1).is_some_and(|sub| ["kill", "pause", "unpause"].iter().any(|a| is(sub, a))))
        || (is(name, "acl") && args.get(1).is_none_or(|sub| !is(sub, "whoami") && !is(sub, "help")))
}

/// The status line for one command: time with microseconds, database 0, the client, and each
/// argument quoted as Redis's `sdscatrepr` quotes it.
fn line(now: SystemTime, addr: &str, unix: bool, args: &[Bytes]) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = format!("+{}.{:06} [0 ", since.as_secs(), since.subsec_micros());
    match addr.strip_suffix(":0").filter(|_| unix) {
        Some(path) => {
            let _ = write!(out, "unix:{path}]");
        }
        None => {
            let _ = write!(out, "{addr}]");
        }
    }
    let redacted = redacted(args);
    for (i, arg) in args.iter().enumerate() {
        out.push(' ');
        let shown = if redacted.contains(&i) { REDACTED } else { &arg[..] };
        crate::config::cat_repr(&mut out, shown);
    }
    out.push_str("\r\n");
    out
}

/// The positions of the arguments shown as `(redacted)`: all of AUTH's, HELLO's AUTH user and
/// password.
fn redacted(args: &[Bytes]) -> Vec<usize> {
    if is(&args[0], "auth") {
        return (1..args.len()).collect();
    }
    if is(&args[0], "hello") {
        if let Some(at) = args.iter().position(|a| is(a, "auth")) {
            return vec![at + 1, at + 2];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn args(words: &[&[u8]]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w)).collect()
    }

    #[test]
    fn a_line_is_redis_s_format_with_arguments_quoted() {
        let at = UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412);
        let line = line(at, "127.0.0.1:60866", false, &args(&[b"keys", b"*"]));
        assert_eq!(line, "+1339518083.107412 [0 127.0.0.1:60866] \"keys\" \"*\"\r\n");
        let line = line_of(at, &args(&[b"SET", b"a\r\n\"b\"", b"\x00\xff"]));
        assert_eq!(line, "+1339518083.107412 [0 unix:/tmp/s.sock] \"SET\" \"a\\r\\n\\\"b\\\"\" \"\\x00\\xff\"\r\n");
    }

    fn line_of(at: SystemTime, args: &[Bytes]) -> String {
        line(at, "/tmp/s.sock:0", true, args)
    }

    #[test]
    fn passwords_are_redacted_and_admin_commands_hidden() {
        let at = UNIX_EPOCH;
        assert!(
            line_of(at, &args(&[b"AUTH", b"user", b"secret"])).ends_with("\"AUTH\" \"(redacted)\" \"(redacted)\"\r\n")
        );
        assert!(line_of(at, &args(&[b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]))
            .ends_with("\"HELLO\" \"3\" \"AUTH\" \"(redacted)\" \"(redacted)\" \"SETNAME\" \"n\"\r\n"));
        assert!(hidden(&args(&[b"CONFIG", b"GET", b"*"])));
        assert!(hidden(&args(&[b"client", b"KILL", b"ID", b"1"])));
        assert!(!hidden(&args(&[b"CLIENT", b"LIST"])));
        assert!(hidden(&args(&[b"CLIENT", b"PAUSE", b"10"])));
        assert!(hidden(&args(&[b"acl", b"LIST"])));
        assert!(hidden(&args(&[b"ACL", b"GETUSER", b"default"])));
        assert!(!hidden(&args(&[b"ACL", b"WHOAMI"])));
    }

    #[test]
    fn a_monitor_past_its_output_bound_is_killed_and_dropped() {
        let monitors = Monitors::default();
        let kill = std::sync::Arc::new(crate::db::Kill::default());
        let (outbox, _lines) = crate::outbox::outbox(7, kill.clone());
        monitors.add(outbox);
        let big = Bytes::from(vec![b'x'; 1 << 20]);
        for _ in 0..OUTPUT_BYTES_MAX >> 20 {
            monitors.feed("127.0.0.1:1", false, &[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), big.clone()]);
        }
        assert!(kill.is_killed(), "the monitor that never read is closed");
        assert!(monitors.is_empty());
    }
}
