//! Issue 21, item 8: the small replies that need more than the differential test can set up
//! (a password). The rest are compared with redis-server in `differential.rs`.

mod common;

use common::TestServer;
use ferrocask::Options;
use ferrocask_server::Config;

/// `HELLO 3 SETNAME "a b" AUTH default <right password>` answered the name's error but had
/// authenticated the client already. Redis checks every option before applying any, so the
/// client stays unauthenticated (and in RESP2, unnamed).
#[test]
fn hello_with_a_bad_name_does_not_authenticate() {
    let config = Config { password: Some(b"s3cret".to_vec()), ..Config::default() };
    let server = TestServer::start_with(config, Options::default());
    let mut c = server.raw();
    let name_error = b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n";
    for order in [
        &["HELLO", "3", "SETNAME", "a b", "AUTH", "default", "s3cret"][..],
        &["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "a b"],
        &["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "ok", "SETNAME", "a b"],
    ] {
        assert_eq!(c.cmd(order), name_error, "{order:?}");
        assert_eq!(c.cmd(&["GET", "k"]), b"-NOAUTH Authentication required.\r\n", "{order:?}");
    }
    assert!(c.cmd(&["HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "ok"]).starts_with(b"*14\r\n"));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), b"$2\r\nok\r\n");
}
