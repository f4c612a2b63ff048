//! Online backup of a running `ferrocask serve`: BGSAVE under write load holds every write
//! acknowledged before it was sent (adversary: a concurrent writer whose writes land while the
//! copy is cut and made; checker: the copy, opened as a store, against the acknowledgements);
//! SAVE waits for its copy; `ferrocask backup` on the served store says how to back it up.
//!
//! Unix only: it stops the server with SIGTERM, which Windows does not have; the server's logic
//! is the same on every platform.
#![cfg(unix)]

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod serve_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{parse, wait_for, RawClient, R};
use serve_common::Served;

/// How long a test waits for a condition before it fails.
const WAIT: Duration = Duration::from_secs(60);
/// Writes acknowledged before the backup is asked for, so the copy has something to hold.
const WRITES_BEFORE_BACKUP: u64 = 200;

fn int(reply: &[u8]) -> i64 {
    match parse(reply) {
        R::Int(n) => n,
        other => panic!("an integer reply, not {other:?}"),
    }
}

fn time_secs(c: &mut RawClient) -> i64 {
    match parse(&c.cmd(&["TIME"])) {
        R::Array(items) => match &items[0] {
            R::Bulk(secs) => String::from_utf8_lossy(secs).parse().unwrap(),
            other => panic!("TIME's seconds: {other:?}"),
        },
        other => panic!("TIME: {other:?}"),
    }
}

/// Serves `dir` with backups made in `backups`.
fn serve(dir: &Path, backups: &Path) -> (Served, std::net::SocketAddr) {
    let mut command = serve_common::command(dir);
    command.arg("--backup-dir").arg(backups);
    let (child, addr) = serve_common::spawn_ready(command);
    (Served::new(child), addr)
}

/// The backups in `dir`, sorted by name.
fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// Waits until LASTSAVE is later than `before`. LASTSAVE counts whole seconds, so the caller
/// first waits until the clock has passed `before` (see the test).
fn wait_for_lastsave_after(c: &mut RawClient, before: i64) {
    assert!(wait_for(WAIT, || int(&c.cmd(&["LASTSAVE"])) > before), "LASTSAVE never moved past {before}");
}

#[test]
fn bgsave_under_write_load_holds_every_write_acknowledged_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, backups) = (tmp.path().join("store"), tmp.path().join("backups"));
    let (child, addr) = serve(&dir, &backups);
    // The writer: fresh keys w:1, w:2, ... one at a time; `acked` is the last acknowledged n.
    let (acked, stop_writing) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let writer = {
        let (acked, stop_writing) = (acked.clone(), stop_writing.clone());
        std::thread::spawn(move || {
            let mut c = RawClient::connect(addr);
            for n in 1.. {
                if stop_writing.load(Ordering::Relaxed) {
                    break;
                }
                assert_eq!(c.cmd(&["SET", &format!("w:{n}"), &n.to_string()]), b"+OK\r\n");
                acked.store(n, Ordering::Release);
            }
        })
    };
    let mut c = RawClient::connect(addr);
    assert!(wait_for(WAIT, || acked.load(Ordering::Acquire) >= WRITES_BEFORE_BACKUP), "the writer writes");
    let before = int(&c.cmd(&["LASTSAVE"]));
    // LASTSAVE counts seconds: once the clock is past `before`, a save completing changes it.
    assert!(wait_for(WAIT, || time_secs(&mut c) > before), "the clock passes LASTSAVE");
    let acked_before = acked.load(Ordering::Acquire);
    assert_eq!(c.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    wait_for_lastsave_after(&mut c, before);
    stop_writing.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let written = acked.load(Ordering::Acquire);
    child.stop();

    let found = backups_in(&backups);
    assert_eq!(found.len(), 1, "one backup: {found:?}");
    let name = found[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("store-backup-"), "{name}");
    let copy = ferrocask::Store::open(&found[0]).unwrap();
    for n in 1..=acked_before {
        let value = copy.get(format!("w:{n}")).unwrap();
        assert_eq!(value.as_deref(), Some(n.to_string().as_bytes()), "w:{n}, acknowledged before BGSAVE");
    }
    // A cut of the log: the writer's keys in the copy are a prefix of what it wrote.
    let held = (1..=written).take_while(|n| copy.contains_key(format!("w:{n}")).unwrap()).count() as u64;
    assert_eq!(copy.len() as u64, held, "the copy holds w:1..=w:{held} and nothing after a gap");
}

#[test]
fn save_replies_once_its_copy_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, backups) = (tmp.path().join("store"), tmp.path().join("backups"));
    let (child, addr) = serve(&dir, &backups);
    let mut c = RawClient::connect(addr);
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]), b"+OK\r\n", "a second save in the same second gets a name of its own");
    assert_eq!(c.cmd(&["BGSAVE", "NOW"]), b"-ERR syntax error\r\n");
    let found = backups_in(&backups);
    assert_eq!(found.len(), 2, "{found:?}");
    for copy in &found {
        let copy = ferrocask::Store::open(copy).unwrap();
        assert_eq!(copy.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }

    // The CLI cannot open the served store; it says how to back it up instead.
    let out = Command::new(env!("CARGO_BIN_EXE_ferrocask"))
        .arg("--dir")
        .arg(&dir)
        .args(["backup", tmp.path().join("elsewhere").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("is already open") && text.contains("redis-cli -p PORT BGSAVE"), "{text}");
    child.stop();
}
