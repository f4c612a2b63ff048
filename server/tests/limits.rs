//! Bad input and limits: authentication, maxclients, oversized and malformed frames. Each case
//! checks that another client is still served.

mod common;

use std::time::Duration;

use common::TestServer;
use ferrocask::Options;
use ferrocask_server::Config;

fn still_serving(server: &TestServer) {
    assert_eq!(server.raw().cmd(&["PING"]), b"+PONG\r\n", "another client is still served");
}

#[test]
fn with_a_password_every_command_but_auth_hello_and_quit_needs_auth() {
    let config = Config { password: Some(b"s3cret".to_vec()), ..Config::default() };
    let server = TestServer::start_with(config, Options::default());
    let mut c = server.raw();
    assert_eq!(c.cmd(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert!(c.cmd(&["HELLO", "3"]).starts_with(b"-NOAUTH HELLO must be called"));
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    let mut d = server.raw();
    assert!(d.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]).starts_with(b"%7\r\n"));
    assert_eq!(d.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(d.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(d.cmd(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn clients_over_maxclients_are_refused_with_redis_error() {
    let config = Config { maxclients: 2, ..Config::default() };
    let server = TestServer::start_with(config, Options::default());
    let (mut a, mut b) = (server.raw(), server.raw());
    assert_eq!(a.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(b.cmd(&["PING"]), b"+PONG\r\n");
    let mut c = server.raw();
    assert_eq!(c.reply().unwrap(), b"-ERR max number of clients reached\r\n");
    assert_eq!(c.reply(), None);
    drop(a);
    // The freed slot is taken once the server has seen the close.
    assert!(common::wait_for(Duration::from_secs(10), || {
        let mut d = server.raw();
        d.send(&["PING"]);
        d.reply().as_deref() == Some(b"+PONG\r\n")
    }));
}

#[test]
fn a_bulk_longer_than_the_value_limit_is_refused_from_its_header() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n");
    assert_eq!(c.reply().unwrap(), b"-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(c.reply(), None, "closed after a protocol error");
    let mut c = server.raw();
    c.send_raw(b"*2000000000\r\n");
    assert_eq!(c.reply().unwrap(), b"-ERR Protocol error: invalid multibulk length\r\n");
    still_serving(&server);
}

#[test]
fn garbage_nesting_and_endless_lines_close_only_their_connection() {
    let server = TestServer::start();
    let cases: &[&[u8]] = &[
        b"*1\r\n*1\r\n*1\r\n*1\r\n",
        b"*2\r\n$3\r\nGET\r\n:1\r\n",
        b"*1\r\n$-5\r\n",
        b"*abc\r\n",
        b"GET \"unterminated\r\n",
    ];
    for case in cases {
        let mut c = server.raw();
        c.send_raw(case);
        let reply = c.reply().unwrap();
        assert!(reply.starts_with(b"-ERR Protocol error: "), "{:?}", String::from_utf8_lossy(&reply));
        still_serving(&server);
    }
    let mut c = server.raw();
    c.send_raw(&vec![b'x'; 70 * 1024]);
    assert_eq!(c.reply().unwrap(), b"-ERR Protocol error: too big inline request\r\n");
    still_serving(&server);
}

#[test]
fn a_truncated_frame_waits_and_a_later_whole_one_is_served() {
    let server = TestServer::start();
    let mut c = server.raw();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel");
    still_serving(&server);
    c.send_raw(b"lo\r\n");
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), b"$5\r\nhello\r\n");
}

#[test]
fn idle_clients_are_closed_after_the_configured_timeout() {
    let server = TestServer::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["CONFIG", "SET", "timeout", "1"]), b"+OK\r\n");
    let mut idle = server.raw();
    assert_eq!(idle.cmd(&["PING"]), b"+PONG\r\n");
    assert_eq!(idle.reply(), None, "closed by the server once idle for a second");
}
