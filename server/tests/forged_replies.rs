//! Issue 21, item 4: client bytes quoted into an error reply can never forge a reply. The
//! adversary is a client whose arguments hold `\r\n` followed by a reply of its own (`:1`): after
//! its hostile command, the next command's reply must be that command's own. Texts are Redis
//! 7.0's (line breaks trimmed at the end, spaces inside; names cut where Redis cuts them; raw
//! bytes kept).

mod common;

use common::{RawClient, TestServer};

/// What the hostile arguments carry: a line break, then a forged integer reply.
const FORGED: &[u8] = b"a\r\n:1";

/// Sends `hostile` and an ECHO in one write; returns the hostile command's reply after checking
/// that the ECHO got its own.
fn reply_then_own_echo(client: &mut RawClient, hostile: &[&[u8]]) -> Vec<u8> {
    let mut both = common::encode(hostile);
    both.extend_from_slice(&common::encode(&["ECHO", "own-reply"]));
    client.send_raw(&both);
    let first = client.reply().expect("a reply to the hostile command");
    let second = client.reply().expect("a reply to ECHO");
    assert_eq!(second, b"$9\r\nown-reply\r\n", "ECHO's reply is its own after {:?}", String::from_utf8_lossy(&first));
    first
}

fn check(hostile: &[&[u8]], expected: &[u8]) {
    let server = TestServer::start();
    let mut client = server.raw();
    let reply = reply_then_own_echo(&mut client, hostile);
    assert_eq!(String::from_utf8_lossy(&reply), String::from_utf8_lossy(expected));
    assert_eq!(reply, expected);
}

#[test]
fn expire_option_with_crlf_does_not_forge_a_reply() {
    check(&[b"EXPIRE", b"k", b"10", FORGED], b"-ERR Unsupported option a  :1\r\n");
}

#[test]
fn expire_option_ending_in_crlf_is_trimmed() {
    check(&[b"PEXPIRE", b"k", b"10", b"a\r\n:1\r\n"], b"-ERR Unsupported option a  :1\r\n");
}

#[test]
fn hello_option_with_crlf_does_not_forge_a_reply() {
    check(&[b"HELLO", b"2", FORGED], b"-ERR Syntax error in HELLO option 'a  :1'\r\n");
}

#[test]
fn client_subcommand_with_crlf_does_not_forge_a_reply() {
    check(&[b"CLIENT", FORGED], b"-ERR unknown subcommand 'a  :1'. Try CLIENT HELP.\r\n");
}

#[test]
fn config_subcommand_with_crlf_does_not_forge_a_reply() {
    check(&[b"CONFIG", FORGED], b"-ERR unknown subcommand 'a  :1'. Try CONFIG HELP.\r\n");
}

#[test]
fn command_subcommand_with_crlf_does_not_forge_a_reply() {
    check(&[b"COMMAND", FORGED], b"-ERR unknown subcommand 'a  :1'. Try COMMAND HELP.\r\n");
}

#[test]
fn config_set_name_with_crlf_does_not_forge_a_reply() {
    check(
        &[b"CONFIG", b"SET", FORGED, b"1"],
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'a  :1'\r\n",
    );
}

#[test]
fn unknown_command_with_crlf_does_not_forge_a_reply() {
    check(&[b"NOPE\r\n:1", FORGED], b"-ERR unknown command 'NOPE  :1', with args beginning with: 'a  :1' \r\n");
}

#[test]
fn unknown_subcommands_are_cut_to_128_bytes_and_other_names_are_not() {
    let long = vec![b'y'; 300];
    let cut = String::from_utf8(vec![b'y'; 128]).unwrap();
    let whole = String::from_utf8(long.clone()).unwrap();
    check(&[b"CLIENT", &long], format!("-ERR unknown subcommand '{cut}'. Try CLIENT HELP.\r\n").as_bytes());
    check(&[b"HELLO", b"2", &long], format!("-ERR Syntax error in HELLO option '{whole}'\r\n").as_bytes());
}

#[test]
fn non_utf8_bytes_in_errors_are_sent_raw() {
    check(&[b"EXPIRE", b"k", b"10", b"\xff\xfe"], b"-ERR Unsupported option \xff\xfe\r\n");
    check(&[b"NOPE\xff", b"\xc3"], b"-ERR unknown command 'NOPE\xff', with args beginning with: '\xc3' \r\n");
}

#[test]
fn quoted_arguments_end_at_a_nul_byte_as_c_strings_do() {
    check(&[b"EXPIRE", b"k", b"10", b"a\0\r\n:1"], b"-ERR Unsupported option a\r\n");
}

/// An error nested in EXEC's array is sanitised the same way, in both protocols.
#[test]
fn an_error_inside_exec_does_not_forge_a_reply() {
    for version in ["2", "3"] {
        let server = TestServer::start();
        let mut client = server.raw();
        client.cmd(&["HELLO", version]);
        assert_eq!(client.cmd(&["MULTI"]), b"+OK\r\n");
        assert_eq!(client.cmd(&[&b"SET"[..], b"k", b"v"]), b"+QUEUED\r\n");
        assert_eq!(client.cmd(&[&b"EXPIRE"[..], b"k", b"10", b"\xff\r\n:1"]), b"+QUEUED\r\n");
        let exec = reply_then_own_echo(&mut client, &[b"EXEC"]);
        assert_eq!(exec, b"*2\r\n+OK\r\n-ERR Unsupported option \xff  :1\r\n", "RESP{version}");
    }
}
