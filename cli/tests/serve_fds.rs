//! `ferrocask serve` under a low open-file limit (issue 21, item 7). The adversary: clients that
//! take every descriptor they can. maxclients must be lowered to what the limit leaves after the
//! store's descriptors and the reserve (with Redis's warning), clients beyond it get Redis's
//! error, and with the client table full the store must still open its next segment: writes
//! that roll the log over succeed and survive a restart.
//!
//! Unix only: the limit is set with setrlimit in the child before it runs.
#![cfg(unix)]

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod serve_common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

use common::{parse, RawClient, R};
use ferrocask_server::fd_limit::RESERVED_FDS;

/// The child's open-file limit, soft and hard: room for the reserve, one segment and a few
/// dozen clients.
const NOFILE: usize = 64;
/// Each value the table-full writes store: five of them fill more than one default segment
/// (64 MiB), so the store must open a new one while every client slot is taken.
const VALUE_BYTES: usize = 15 << 20;
const VALUES: usize = 5;

/// The server, killed however the test ends (a failed assertion must not leave it running).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn value(i: usize) -> Vec<u8> {
    vec![b'a' + i as u8; VALUE_BYTES]
}

fn segments(dir: &std::path::Path) -> usize {
    let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
    names.filter(|name| name.ends_with(".seg")).count()
}

#[test]
fn under_a_low_nofile_limit_maxclients_is_clamped_and_a_full_table_never_stops_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve_common::command(dir.path());
    command.stderr(Stdio::piped());
    // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: NOFILE as libc::rlim_t, rlim_max: NOFILE as libc::rlim_t };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let (mut child, addr) = serve_common::spawn_ready(command);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let server = Server(child);

    // A fresh store holds one segment open.
    let expected = NOFILE - RESERVED_FDS - 1;
    let mut first = RawClient::connect(addr);
    let reported = parse(&first.cmd(&["CONFIG", "GET", "maxclients"]));
    assert_eq!(reported, R::Array(vec![R::Bulk(b"maxclients".to_vec()), R::Bulk(expected.to_string().into_bytes())]));
    // The warning went out before the ready line, so it is in the pipe already, before the
    // log's own "ready to accept connections" line.
    let warning = format!("maxclients has been reduced to {expected} to compensate for low ulimit");
    let lines: Vec<String> =
        stderr.lines().map_while(Result::ok).take_while(|l| !l.contains("ready to accept connections")).collect();
    assert!(lines.iter().any(|line| line.contains(&warning)), "stderr: {lines:?}");

    let mut clients = vec![first];
    while clients.len() < expected {
        let mut c = RawClient::connect(addr);
        assert_eq!(c.cmd(&["PING"]), b"+PONG\r\n", "client {} of {expected} is served", clients.len() + 1);
        clients.push(c);
    }
    let mut over = RawClient::connect(addr);
    assert_eq!(over.reply().unwrap(), b"-ERR max number of clients reached\r\n");
    assert_eq!(over.reply(), None, "closed after the error");

    first = clients.swap_remove(0);
    for i in 0..VALUES {
        let (key, value) = (format!("big:{i}"), value(i));
        assert_eq!(
            first.cmd(&[b"SET".as_slice(), key.as_bytes(), &value]),
            b"+OK\r\n",
            "SET {key} with every slot taken"
        );
    }
    assert!(segments(dir.path()) >= 2, "the writes rolled the log over to a new segment");
    assert_eq!(first.cmd(&["SET", "after", "roll"]), b"+OK\r\n", "the store is not poisoned");
    let mut still_over = RawClient::connect(addr);
    assert_eq!(still_over.reply().unwrap(), b"-ERR max number of clients reached\r\n", "the table is still full");

    drop((first, clients, still_over));
    // A kill: only what was durable when acknowledged is there after it.
    drop(server);
    let (child, addr) = serve_common::start(dir.path());
    let _server = Server(child);
    let mut c = RawClient::connect(addr);
    assert_eq!(c.cmd(&["GET", "after"]), b"$4\r\nroll\r\n");
    for i in 0..VALUES {
        let mut expected = format!("${VALUE_BYTES}\r\n").into_bytes();
        expected.extend(value(i));
        expected.extend_from_slice(b"\r\n");
        assert!(c.cmd(&["GET", &format!("big:{i}")]) == expected, "big:{i} survived the restart");
    }
}
