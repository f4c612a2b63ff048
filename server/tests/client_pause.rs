//! CLIENT PAUSE and UNPAUSE (issue 25). Adversaries: a writer during a WRITE pause (held, and
//! counted as blocked, while reads go on), and a client during an ALL pause that nobody ends
//! (its command runs once the timeout passes).

mod common;

use std::time::Duration;

use common::TestServer;

fn blocked_clients(c: &mut common::RawClient) -> u64 {
    let info = String::from_utf8(c.cmd(&["INFO", "clients"])).unwrap();
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).unwrap().trim().parse().unwrap()
}

#[test]
fn a_write_pause_holds_writes_until_unpause_and_lets_reads_run() {
    let server = TestServer::start();
    let (mut admin, mut writer, mut reader) = (server.raw(), server.raw(), server.raw());
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "600000", "WRITE"]), b"+OK\r\n");
    writer.send(&["SET", "k", "v"]);
    assert!(
        common::wait_for(Duration::from_secs(20), || blocked_clients(&mut reader) == 1),
        "the SET waits as a blocked client"
    );
    assert_eq!(reader.cmd(&["GET", "k"]), b"$-1\r\n", "a paused write ran");
    assert_eq!(reader.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    assert_eq!(writer.reply().unwrap(), b"+OK\r\n");
    assert_eq!(reader.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(blocked_clients(&mut reader), 0);
}

#[test]
fn an_all_pause_ends_by_its_timeout() {
    let server = TestServer::start();
    let (mut admin, mut other) = (server.raw(), server.raw());
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "50", "ALL"]), b"+OK\r\n");
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(admin.cmd(&["SET", "k", "v"]), b"+OK\r\n");
}
