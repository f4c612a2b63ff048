//! CLIENT KILL (each filter, the old form, Redis 7.0's replies and errors) and MONITOR (Redis's
//! line format, what it hides, and the output bound that closes a monitor that does not read).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;

fn connect(server: &TestServer) -> redis::Connection {
    redis::Client::open(server.url()).unwrap().get_connection().unwrap()
}

/// This connection's `addr=` and `laddr=`-less identity from CLIENT INFO.
fn addr_of(conn: &mut redis::Connection) -> String {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(conn).unwrap();
    info.split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string()
}

fn id_of(conn: &mut redis::Connection) -> i64 {
    redis::cmd("CLIENT").arg("ID").query(conn).unwrap()
}

/// Whether the server has closed `conn` (a command on it fails).
fn closed(conn: &mut redis::Connection) -> bool {
    redis::cmd("PING").query::<String>(conn).is_err()
}

fn kill(conn: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    redis::cmd("CLIENT").arg("KILL").arg(args).query(conn)
}

#[test]
fn client_kill_by_id_addr_and_the_old_form_closes_that_client_only() {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (connect(&server), connect(&server), connect(&server));
    let id = id_of(&mut b);
    assert_eq!(kill(&mut a, &["ID", &id.to_string()]).unwrap(), redis::Value::Int(1));
    assert!(closed(&mut b), "the killed client is closed");
    assert!(!closed(&mut a) && !closed(&mut c), "the others go on");
    let addr = addr_of(&mut c);
    assert_eq!(kill(&mut a, &[&addr]).unwrap(), redis::Value::Okay, "the old form");
    assert!(closed(&mut c));
    let err = kill(&mut a, &[&addr]).unwrap_err();
    assert!(err.to_string().ends_with("No such client"), "{err}");
    assert_eq!(kill(&mut a, &["ADDR", &addr]).unwrap(), redis::Value::Int(0));
}

#[test]
fn client_kill_by_laddr_and_user_skips_the_caller_unless_skipme_no() {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (connect(&server), connect(&server), connect(&server));
    let laddr = server.addr.to_string();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut b).unwrap();
    assert!(info.contains(&format!(" laddr={laddr} ")), "CLIENT LIST and INFO show it, as Redis 7: {info}");
    assert_eq!(kill(&mut a, &["LADDR", &laddr, "TYPE", "normal"]).unwrap(), redis::Value::Int(2));
    assert!(closed(&mut b) && closed(&mut c));
    assert!(!closed(&mut a), "SKIPME yes by default");
    assert_eq!(kill(&mut a, &["TYPE", "pubsub"]).unwrap(), redis::Value::Int(0), "no pubsub clients");
    // The caller kills itself: the reply comes first, then the connection closes.
    assert_eq!(kill(&mut a, &["USER", "default", "SKIPME", "no"]).unwrap(), redis::Value::Int(1));
    assert!(closed(&mut a));
}

#[test]
fn client_kill_errors_are_redis_s() {
    let server = TestServer::start();
    let mut a = connect(&server);
    let text = |args: &[&str]| kill(&mut connect(&server), args).unwrap_err().to_string();
    assert!(text(&["ID", "0"]).ends_with(": client-id should be greater than 0"));
    assert!(text(&["TYPE", "bogus"]).contains("Unknown client type 'bogus'"));
    assert!(text(&["USER", "nobody"]).contains("No such user 'nobody'"));
    assert!(text(&["SKIPME", "maybe"]).contains("syntax error"));
    assert!(text(&["ID", "1", "ADDR"]).contains("syntax error"));
    assert!(text(&["MAXAGE", "1"]).contains("syntax error"));
    assert!(!closed(&mut a));
}

/// A raw connection in MONITOR mode, read line by line.
struct Monitor(BufReader<TcpStream>);

impl Monitor {
    fn start(server: &TestServer) -> Monitor {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut monitor = Monitor(BufReader::new(stream));
        assert_eq!(monitor.line(), "+OK");
        monitor
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    /// The line after `+<secs>.<micros> ` (checked), e.g. `[0 127.0.0.1:5000] "SET" "k" "v"`.
    fn command(&mut self) -> String {
        let line = self.line();
        let (time, rest) = line.strip_prefix('+').and_then(|l| l.split_once(' ')).unwrap_or_else(|| panic!("{line}"));
        let (secs, micros) = time.split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6 && micros.parse::<u32>().is_ok(), "{line}");
        rest.to_string()
    }
}

#[test]
fn monitor_shows_each_command_as_redis_formats_it() {
    let server = TestServer::start();
    let mut conn = connect(&server);
    let addr = addr_of(&mut conn);
    let mut monitor = Monitor::start(&server);
    redis::cmd("SET").arg("k").arg("a b\r\n\"c\"").exec(&mut conn).unwrap();
    assert_eq!(monitor.command(), format!("[0 {addr}] \"SET\" \"k\" \"a b\\r\\n\\\"c\\\"\""));
    // Admin commands are not shown; queued commands are shown when EXEC runs them.
    redis::cmd("CONFIG").arg("GET").arg("port").exec(&mut conn).unwrap();
    redis::pipe().atomic().cmd("INCR").arg("n").cmd("GET").arg("k").exec(&mut conn).unwrap();
    assert_eq!(monitor.command(), format!("[0 {addr}] \"MULTI\""));
    assert_eq!(monitor.command(), format!("[0 {addr}] \"INCR\" \"n\""));
    assert_eq!(monitor.command(), format!("[0 {addr}] \"GET\" \"k\""));
    assert_eq!(monitor.command(), format!("[0 {addr}] \"EXEC\""));
    // No password is set, so the default user takes any (as in Redis): it succeeds.
    redis::cmd("AUTH").arg("default").arg("secret").exec(&mut conn).unwrap();
    assert_eq!(monitor.command(), format!("[0 {addr}] \"AUTH\" \"(redacted)\" \"(redacted)\""));
}

/// Adversary: a monitor that never reads while the server runs large writes. Its queue is
/// bounded (`monitor::OUTPUT_BYTES_MAX`): it is closed, and the writers are not slowed.
#[test]
fn a_monitor_that_does_not_read_is_closed_at_its_output_bound() {
    let server = TestServer::start();
    let mut monitor = Monitor::start(&server);
    let mut conn = connect(&server);
    let value = vec![b'x'; 1 << 20];
    let lines = ferrocask_server::monitor::OUTPUT_BYTES_MAX / value.len() + 16;
    for i in 0..lines {
        redis::cmd("SET").arg(i % 4).arg(&value).exec(&mut conn).unwrap();
    }
    // What it still gets is what was queued before the bound and in the socket: then the end.
    let mut rest = Vec::new();
    let read = monitor.0.read_to_end(&mut rest);
    assert!(read.is_ok(), "the monitor's stream ends: {read:?}");
    assert!(rest.len() < lines * value.len(), "{} bytes: not every line was kept for it", rest.len());
    assert!(!closed(&mut conn), "the writer goes on");
}
