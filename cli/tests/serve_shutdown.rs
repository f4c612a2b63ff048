//! SHUTDOWN stops a real `ferrocask serve` as SIGTERM does (the client's connection closes
//! without a reply, as Redis's, the process exits cleanly, the data is kept); SHUTDOWN SAVE
//! first makes a backup that holds every write; ROLE answers as a Redis master with no replicas.

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod serve_common;

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use common::{wait_for, RawClient};
use serve_common::Served;

/// How long the server may take to exit after SHUTDOWN before the test fails.
const EXIT_WAIT: Duration = Duration::from_secs(60);

/// Waits (bounded) for the server to exit; its status. On timeout the guard kills it.
fn exited(mut served: Served) -> ExitStatus {
    let mut status = None;
    let ended = wait_for(EXIT_WAIT, || {
        status = served.try_wait();
        status.is_some()
    });
    assert!(ended, "ferrocask serve still runs after SHUTDOWN");
    status.unwrap()
}

fn serve(dir: &Path, backups: &Path) -> (Served, std::net::SocketAddr) {
    let mut command = serve_common::command(dir);
    command.arg("--backup-dir").arg(backups);
    let (child, addr) = serve_common::spawn_ready(command);
    (Served::new(child), addr)
}

#[test]
fn shutdown_closes_without_a_reply_exits_cleanly_and_keeps_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, backups) = (tmp.path().join("store"), tmp.path().join("backups"));
    let (child, addr) = serve(&dir, &backups);
    let mut c = RawClient::connect(addr);
    let mut other = RawClient::connect(addr);
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["ROLE"]), b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    assert_eq!(c.cmd(&["SHUTDOWN", "FOO"]), b"-ERR syntax error\r\n");
    assert_eq!(c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]), b"-ERR syntax error\r\n");
    assert_eq!(c.cmd(&["SHUTDOWN", "ABORT"]), b"-ERR No shutdown in progress.\r\n");
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert_eq!(c.reply(), None, "no reply: the connection closes");
    assert!(exited(child).success(), "a clean exit");
    assert_eq!(other.reply(), None, "every other connection is closed too");
    assert!(!backups.exists(), "NOSAVE makes no backup");

    let (child, addr) = serve(&dir, &backups);
    let mut c = RawClient::connect(addr);
    assert_eq!(c.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    c.send(&["SHUTDOWN"]);
    assert_eq!(c.reply(), None);
    assert!(exited(child).success());
}

#[test]
fn shutdown_save_backs_up_every_write_before_exiting() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, backups) = (tmp.path().join("store"), tmp.path().join("backups"));
    let (child, addr) = serve(&dir, &backups);
    let mut c = RawClient::connect(addr);
    for n in 0..100 {
        assert_eq!(c.cmd(&["SET", &format!("k{n}"), &n.to_string()]), b"+OK\r\n");
    }
    c.send(&["SHUTDOWN", "SAVE"]);
    assert_eq!(c.reply(), None);
    assert!(exited(child).success());
    let found: Vec<_> = std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let copy = ferrocask::Store::open(&found[0]).unwrap();
    assert_eq!(copy.len(), 100);
    assert_eq!(copy.get("k99").unwrap().as_deref(), Some(&b"99"[..]));
}
