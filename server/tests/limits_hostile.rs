//! A hostile client against the request parser and the input buffer (issue 21, items 5 and 6):
//! a request trickled a byte at a time, large requests before AUTH, a connection idling with a
//! large buffer and one byte of its next request. Each asserts a count the server exposes (bytes
//! scanned, bytes held) or a reply, never a time.

mod common;

use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use ferrocask_server::protocol::{Limits, Parser, UNAUTHENTICATED_BULK_BYTES_MAX};

/// The RESP encoding of one request.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds `input` to one parser `chunk` bytes at a time, as reads would deliver it; returns the
/// requests taken and the parser.
fn trickle(input: &[u8], chunk: usize) -> (Vec<Vec<Bytes>>, Parser) {
    let mut parser = Parser::default();
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(args) = parser.next_request(&mut buf, &Limits::default(), true).unwrap() {
            requests.push(args);
        }
    }
    assert!(buf.is_empty(), "every byte was taken");
    (requests, parser)
}

#[test]
fn a_trickled_header_of_many_arguments_is_scanned_once_not_per_read() {
    let args: Vec<Vec<u8>> = (0..5000).map(|i| format!("k{i}").into_bytes()).collect();
    let mut all: Vec<&[u8]> = vec![b"MGET"];
    all.extend(args.iter().map(Vec::as_slice));
    let input = request(&all);
    let (requests, parser) = trickle(&input, 1);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].len(), 5001);
    // A rescan from the start on every read would be about len^2 / 2 (here ~1.7e9 bytes).
    let bound = 4 * input.len() as u64;
    assert!(
        parser.bytes_scanned() <= bound,
        "scanned {} bytes of a {}-byte request",
        parser.bytes_scanned(),
        input.len()
    );
}

#[test]
fn a_trickled_inline_request_is_scanned_once_not_per_read() {
    let mut input = b"SET k ".to_vec();
    input.extend(std::iter::repeat_n(b'v', 60 * 1024));
    input.extend_from_slice(b"\r\n");
    let (requests, parser) = trickle(&input, 1);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0][2].len(), 60 * 1024);
    assert!(parser.bytes_scanned() <= 4 * input.len() as u64, "scanned {} bytes", parser.bytes_scanned());
}

#[test]
fn requests_split_anywhere_parse_as_when_whole() {
    let value_with_line_ends = b"a\r\n*2\r\n$1\r\nb\r\n".as_slice();
    let mut input = request(&[b"SET", b"k", value_with_line_ends]);
    input.extend_from_slice(b"*0\r\n");
    input.extend_from_slice(b"PING \"a b\"\r\n");
    input.extend_from_slice(&request(&[b"GET", b""]));
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(&request(&[b"ECHO", &[b'x'; 300]]));
    let (whole, _) = trickle(&input, input.len());
    assert_eq!(whole.len(), 6);
    assert_eq!(whole[0][2], value_with_line_ends);
    for chunk in [1, 2, 3, 5, 7, 16, 64] {
        assert_eq!(trickle(&input, chunk).0, whole, "split into {chunk}-byte reads");
    }
}

fn with_password() -> TestServer {
    let config = ferrocask_server::Config { password: Some(b"s3cret".to_vec()), ..Default::default() };
    TestServer::start_with(config, ferrocask::Options::default())
}

#[test]
fn before_auth_more_than_ten_arguments_close_the_connection_from_the_header() {
    let server = with_password();
    let mut c = server.raw();
    // Only the header: the refusal cannot have waited for the arguments.
    c.send_raw(b"*11\r\n");
    assert_eq!(c.reply().unwrap(), b"-ERR Protocol error: unauthenticated multibulk length\r\n");
    assert_eq!(c.reply(), None, "closed after the protocol error");
    let mut c = server.raw();
    let ten: Vec<&[u8]> = std::iter::once(b"MGET".as_slice()).chain(std::iter::repeat_n(b"k".as_slice(), 9)).collect();
    c.send_raw(&request(&ten));
    assert_eq!(c.reply().unwrap(), b"-NOAUTH Authentication required.\r\n", "ten arguments are still parsed");
}

#[test]
fn before_auth_a_bulk_over_16_kib_closes_the_connection_from_the_header() {
    let server = with_password();
    let mut c = server.raw();
    c.send_raw(format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", UNAUTHENTICATED_BULK_BYTES_MAX + 1).as_bytes());
    assert_eq!(c.reply().unwrap(), b"-ERR Protocol error: unauthenticated bulk length\r\n");
    assert_eq!(c.reply(), None, "closed after the protocol error");
    let mut c = server.raw();
    let longest = vec![b'p'; UNAUTHENTICATED_BULK_BYTES_MAX];
    c.send_raw(&request(&[b"AUTH", &longest]));
    assert!(c.reply().unwrap().starts_with(b"-WRONGPASS"), "a 16 KiB argument is still parsed");
}

#[test]
fn after_auth_in_the_same_pipeline_large_requests_are_accepted() {
    let server = with_password();
    let mut c = server.raw();
    let value = vec![b'v'; 4 * UNAUTHENTICATED_BULK_BYTES_MAX];
    let many: Vec<&[u8]> =
        std::iter::once(b"MGET".as_slice()).chain(std::iter::repeat_n(b"k".as_slice(), 20)).collect();
    let mut pipeline = request(&[b"AUTH", b"s3cret"]);
    pipeline.extend(request(&[b"SET", b"k", &value]));
    pipeline.extend(request(&many));
    c.send_raw(&pipeline);
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    assert!(c.reply().unwrap().starts_with(b"*20\r\n"));
}

#[test]
fn an_idle_connection_with_one_byte_of_its_next_request_keeps_no_large_buffer() {
    let meters = Arc::new(ferrocask_server::Meters::default());
    let config = ferrocask_server::Config { meters: meters.clone(), ..Default::default() };
    let server = TestServer::start_with(config, ferrocask::Options::default());
    let held = || meters.input_buffer_bytes.load(Ordering::Relaxed);
    let value = vec![b'v'; 8 << 20];
    let set = request(&[b"SET", b"k", &value]);
    let mut c = server.raw();
    // All but the last line end: the server must buffer the whole request while it waits.
    c.send_raw(&set[..set.len() - 2]);
    assert!(common::wait_for(Duration::from_secs(20), || held() >= value.len()), "the gauge saw {} bytes", held());
    // The request's end and the first byte of the next one arrive in one read.
    c.send_raw(b"\r\n*");
    assert_eq!(c.reply().unwrap(), b"+OK\r\n");
    let bound = 1 << 20;
    assert!(
        common::wait_for(Duration::from_secs(10), || held() <= bound),
        "{} bytes held for one pending byte (bound {bound})",
        held()
    );
    c.send_raw(b"1\r\n$4\r\nPING\r\n");
    assert_eq!(c.reply().unwrap(), b"+PONG\r\n", "the pending byte survived the trim");
    drop(c);
    assert!(common::wait_for(Duration::from_secs(10), || held() == 0), "{} bytes left after the close", held());
}
