//! `ferrocask serve`'s log on stderr: a store with a torn tail is reported as recovered at open,
//! a failed AUTH is logged with the client's address and without the password, SIGTERM's
//! shutdown is logged step by step, and every line starts with its time. `--log-level` filters.
//!
//! Unix only: it sends SIGTERM, which Windows does not have.
#![cfg(unix)]

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod serve_common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{parse, wait_for, RawClient, R};

const WAIT: Duration = Duration::from_secs(30);

/// Writes two keys, then appends bytes no frame starts with after the log's end, as a write
/// cut short by a crash leaves them.
fn store_with_torn_tail(dir: &std::path::Path) {
    {
        let store = ferrocask::Store::open(dir).unwrap();
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"2").unwrap();
    }
    let segment = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes.splice(end..end + 37, (0..37u8).map(|i| i.wrapping_mul(73) | 1));
    std::fs::write(&segment, bytes).unwrap();
}

/// A server whose stderr is collected line by line.
struct Logged {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Ends when stderr closes: every line is in `lines` then.
    reader: std::thread::JoinHandle<()>,
}

/// Starts `ferrocask serve` with `args` and its stderr collected line by line.
fn start_logged(dir: &std::path::Path, args: &[&str]) -> (Logged, std::net::SocketAddr) {
    let mut command = serve_common::command(dir);
    command.args(args).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn ferrocask serve");
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let (child, addr) = serve_common::wait_ready(child);
    (Logged { child, lines, reader }, addr)
}

/// The first line holding every one of `words`, waited for.
fn line_with(lines: &Mutex<Vec<String>>, words: &[&str]) -> String {
    let find = || lines.lock().unwrap().iter().find(|l| words.iter().all(|w| l.contains(w))).cloned();
    assert!(wait_for(WAIT, || find().is_some()), "no log line with {words:?} in {:#?}", lines.lock().unwrap());
    find().unwrap()
}

/// SIGTERM, then every line the server wrote until it exited.
fn terminate(mut server: Logged) -> Vec<String> {
    // SAFETY: kill sends a signal to the child this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    server.reader.join().unwrap();
    let lines = server.lines.lock().unwrap().clone();
    lines
}

#[test]
fn serve_logs_recovery_failed_auth_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    store_with_torn_tail(&store_dir);
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "right-password\n").unwrap();
    let (server, addr) = start_logged(&store_dir, &["--requirepass-file", password_file.to_str().unwrap()]);
    let lines = server.lines.clone();

    let startup = line_with(&lines, &["INFO", "starting", "version=", "port=0", "sync="]);
    assert!(startup.contains(&format!("dir={}", store_dir.display())), "{startup}");
    let recovery = line_with(&lines, &["WARN", "store recovered", "torn_tail_bytes_cut="]);
    let cut: u64 = recovery.split("torn_tail_bytes_cut=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(cut > 0, "{recovery}");

    let stream = TcpStream::connect(addr).unwrap();
    let me = stream.local_addr().unwrap().to_string();
    let mut c = RawClient::from_stream(stream);
    let refused = parse(&c.cmd(&["AUTH", "wrong-password"]));
    assert!(matches!(&refused, R::Error(e) if e.starts_with(b"WRONGPASS")), "{refused:?}");
    let failed = line_with(&lines, &["WARN", "failed AUTH"]);
    assert!(failed.contains(&me), "the client's address {me}: {failed}");
    assert!(failed.contains("default"), "the user: {failed}");
    assert_eq!(parse(&c.cmd(&["AUTH", "right-password"])), R::Simple(b"OK".to_vec()));
    drop(c);

    let all = terminate(server);
    for step in ["signal received", "connections closed", "store closed"] {
        assert!(all.iter().any(|l| l.contains(step)), "no {step:?} line in {all:#?}");
    }
    for line in &all {
        assert!(!line.contains("wrong-password") && !line.contains("right-password"), "a password logged: {line}");
        // RFC 3339 UTC: 2026-12-07T19:14:35.956503Z
        let stamp = line.split(' ').next().unwrap();
        assert!(stamp.len() > 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'), "no timestamp: {line}");
    }
    assert!(!all.iter().any(|l| l.contains("DEBUG")), "info is the default level");
}

#[test]
fn log_level_debug_shows_clients_and_error_hides_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start_logged(dir.path(), &["--log-level", "debug"]);
    let lines = server.lines.clone();
    let stream = TcpStream::connect(addr).unwrap();
    let me = stream.local_addr().unwrap().to_string();
    let mut c = RawClient::from_stream(stream);
    assert_eq!(parse(&c.cmd(&["PING"])), R::Simple(b"PONG".to_vec()));
    line_with(&lines, &["DEBUG", "client connected", &me]);
    // A protocol error closes the connection and is logged with the client's address.
    c.send_raw(b"*1\r\n$-5\r\n");
    assert!(c.reply().is_some_and(|r| matches!(parse(&r), R::Error(_))));
    line_with(&lines, &["protocol error", &me]);
    line_with(&lines, &["DEBUG", "client disconnected", &me]);
    terminate(server);

    let quiet = tempfile::tempdir().unwrap();
    let (server, _) = start_logged(quiet.path(), &["--log-level", "error"]);
    assert_eq!(terminate(server), Vec::<String>::new(), "nothing at error level in a clean run");
}
