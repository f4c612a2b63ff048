//! Requests out of a connection's input buffer: RESP multibulk frames and inline commands.
//!
//! A multibulk request is first walked by [`Parser`], which reads only its header lines and
//! checks every count and length against [`Limits`] before anything is decoded, allocated or
//! waited for: a `$999999999999` header is refused when its line arrives, not after the server
//! has buffered a gigabyte, and a request may only be an array of bulk strings (no nesting, so no
//! recursion). The walk is incremental: the parser keeps how far it got (the next header line,
//! how far the search for its line end has looked, the arguments still to come), so a client
//! that trickles a request a byte at a time costs each byte one look, not a rescan from the
//! start per read. Once the walk says a whole frame is buffered, the `redis-protocol` crate
//! decodes it (zero-copy: the arguments are slices of the input buffer). Inline commands
//! (`PING\r\n`, what telnet sends) are split as Redis's `sdssplitargs` splits them.
//!
//! A client that has not authenticated is held to Redis's tighter bounds
//! ([`UNAUTHENTICATED_ARGS_MAX`], [`UNAUTHENTICATED_BULK_BYTES_MAX`]), checked from the header
//! too, so a client without the password cannot make the server buffer a large request.
//!
//! Error texts are Redis's; after one the connection is closed, as Redis closes it.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;

use crate::reply::ErrorText;

/// Redis's limit on an inline request or a header line without its line end.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;

/// The most arguments a request may have before its client authenticated (Redis's bound).
pub const UNAUTHENTICATED_ARGS_MAX: usize = 10;

/// The longest argument, in bytes, before its client authenticated (Redis's bound).
pub const UNAUTHENTICATED_BULK_BYTES_MAX: usize = 16 * 1024;

/// The bounds on a request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most arguments one request may have.
    pub args_max: usize,
    /// The longest argument (the store's value limit: nothing longer can be stored).
    pub bulk_bytes_max: usize,
    /// The most bytes one request may take in the buffer, headers included.
    pub request_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { args_max: 1024 * 1024, bulk_bytes_max: 16 << 20, request_bytes_max: 64 << 20 }
    }
}

/// A protocol error: the text of the error reply; the connection is closed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub ErrorText);

impl ProtocolError {
    fn new(what: impl std::fmt::Display) -> ProtocolError {
        ProtocolError(format!("ERR Protocol error: {what}").into())
    }
}

/// Takes requests from the front of one connection's input buffer, remembering between calls how
/// far it has scanned the request not yet whole.
///
/// One parser serves one buffer: between calls the buffer may only grow at its end (a read) or
/// be moved whole to a new allocation (a trim); the parser alone takes bytes from its front.
#[derive(Debug, Default)]
pub struct Parser {
    progress: Progress,
    bytes_scanned: u64,
}

/// How far the scan of the request at the front of the buffer got. All offsets are from the
/// buffer's start, which is the request's start.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// Where the line being looked for starts: the next header line of a multibulk request (or,
    /// once every header is seen, the end of the request), or 0 for an inline request.
    line_start: usize,
    /// The search for that line's end has looked at every byte before this offset.
    searched: usize,
    /// Arguments whose header lines are still to come; `None` until the count line is read.
    args_left: Option<usize>,
}

/// What [`Parser::scan_multibulk`] found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A whole frame of this many bytes is buffered.
    Complete(usize),
    /// A request with no arguments (`*0`, `*-1`) of this many bytes.
    Empty(usize),
    /// More bytes are needed.
    Incomplete,
}

impl Parser {
    /// The next request in `buf`, consumed from it: `Ok(None)` if the buffer holds no whole
    /// request yet; an empty vector for an empty request (a blank line, `*0`), which Redis
    /// ignores. `authenticated` is whether the client may send requests past the unauthenticated
    /// bounds (true when the server has no password).
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let request =
            if buf[0] == b'*' { self.next_multibulk(buf, limits, authenticated) } else { self.next_inline(buf) };
        if !matches!(request, Ok(None)) {
            // A request was taken (or the connection is done): the next one starts afresh.
            self.progress = Progress::default();
        }
        request
    }

    /// Bytes looked at so far: every byte the search for line ends went over, and each whole
    /// request once more as it is decoded or split. A request costs a small multiple of its
    /// length however it was split across reads.
    pub fn bytes_scanned(&self) -> u64 {
        self.bytes_scanned
    }

    fn next_multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        authenticated: bool,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let len = match self.scan_multibulk(buf, limits, authenticated)? {
            Scan::Incomplete => return Ok(None),
            Scan::Empty(len) => {
                let _ = buf.split_to(len);
                return Ok(Some(Vec::new()));
            }
            Scan::Complete(len) => len,
        };
        self.bytes_scanned += len as u64;
        let mut frame = buf.split_to(len);
        match decode_bytes_mut(&mut frame) {
            Ok(Some((BytesFrame::Array(items), used, _))) if used == len => items
                .into_iter()
                .map(|item| match item {
                    BytesFrame::BulkString(arg) => Ok(arg),
                    _ => Err(ProtocolError::new("expected a bulk string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            // The scan and the decoder disagree only on bytes Redis would misread too.
            _ => Err(ProtocolError::new("invalid multibulk frame")),
        }
    }

    /// Walks on through the header lines of the multibulk request at the start of `buf` from
    /// where the last call stopped, checking each bound as its header arrives.
    fn scan_multibulk(&mut self, buf: &[u8], limits: &Limits, authenticated: bool) -> Result<Scan, ProtocolError> {
        if self.progress.args_left.is_none() {
            let Some((text_end, next)) = self.line_end(buf, b'\r', "too big mbulk count string")? else {
                return Ok(Scan::Incomplete);
            };
            let count = match parse_len(&buf[1..text_end]) {
                Some(n) if n <= 0 => return Ok(Scan::Empty(next)),
                Some(n) if (n as u64) <= limits.args_max as u64 => n as usize,
                _ => return Err(ProtocolError::new("invalid multibulk length")),
            };
            if !authenticated && count > UNAUTHENTICATED_ARGS_MAX {
                return Err(ProtocolError::new("unauthenticated multibulk length"));
            }
            self.progress = Progress { line_start: next, searched: next, args_left: Some(count) };
        }
        while let Some(left @ 1..) = self.progress.args_left {
            let pos = self.progress.line_start;
            if pos >= buf.len() {
                return Ok(Scan::Incomplete);
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError::new(format_args!("expected '$', got '{}'", buf[pos] as char)));
            }
            let Some((text_end, data)) = self.line_end(buf, b'\r', "too big bulk count string")? else {
                return Ok(Scan::Incomplete);
            };
            let len = match parse_len(&buf[pos + 1..text_end]) {
                Some(n) if n >= 0 && (n as u64) <= limits.bulk_bytes_max as u64 => n as usize,
                _ => return Err(ProtocolError::new("invalid bulk length")),
            };
            if !authenticated && len > UNAUTHENTICATED_BULK_BYTES_MAX {
                return Err(ProtocolError::new("unauthenticated bulk length"));
            }
            let next = data + len + 2;
            if next > limits.request_bytes_max {
                return Err(ProtocolError::new("request too large"));
            }
            self.progress = Progress { line_start: next, searched: next, args_left: Some(left - 1) };
        }
        let end = self.progress.line_start;
        Ok(if end <= buf.len() { Scan::Complete(end) } else { Scan::Incomplete })
    }

    /// The end of the line starting at `progress.line_start`, searching on from where the last
    /// call stopped: `(end of its text, start of what follows)`, or `None` if the byte `end`
    /// (`\r` for a header, `\n` for an inline request) and the one after it are not buffered yet.
    fn line_end(&mut self, buf: &[u8], end: u8, too_big: &str) -> Result<Option<(usize, usize)>, ProtocolError> {
        let start = self.progress.line_start;
        let from = self.progress.searched.max(start);
        let Some(found) = buf[from..].iter().position(|&b| b == end) else {
            self.bytes_scanned += (buf.len() - from) as u64;
            self.progress.searched = buf.len();
            if buf.len() - start > INLINE_BYTES_MAX {
                return Err(ProtocolError::new(too_big));
            }
            return Ok(None);
        };
        let at = from + found;
        self.bytes_scanned += found as u64 + 1;
        // The search resumes at the line end itself: for a header, the `\n` after it may not be
        // here yet.
        self.progress.searched = at;
        if end == b'\n' {
            return Ok(Some((at, at + 1)));
        }
        match buf.get(at + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((at, at + 2))),
            Some(_) => Err(ProtocolError::new("expected CRLF after a header")),
        }
    }

    fn next_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some((newline, next)) = self.line_end(buf, b'\n', "too big inline request")? else {
            return Ok(None);
        };
        self.bytes_scanned += next as u64;
        let line = buf.split_to(next);
        let text = line[..newline].strip_suffix(b"\r").unwrap_or(&line[..newline]);
        split_args(text).map(Some).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
    }
}

/// A length as Redis's `string2ll` reads it (no sign but `-`, no leading zeros or spaces).
fn parse_len(text: &[u8]) -> Option<i64> {
    crate::cmd::parse::strict_i64(text)
}

/// C's `isspace`, which `sdssplitargs` skips between arguments and wants after a closing quote:
/// unlike Rust's `is_ascii_whitespace` it includes the vertical tab.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits an inline command line as Redis's `sdssplitargs` does: blanks separate arguments;
/// `"..."` takes `\n \r \t \b \a \xHH \\ \"` escapes, `'...'` takes `\'`; a closing quote must be
/// followed by a blank or the end. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\' && at(p + 1) == b'x' && at(p + 2).is_ascii_hexdigit() && at(p + 3).is_ascii_hexdigit() {
                    current.push(hex(at(p + 2)) * 16 + hex(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => current.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(current));
    }
}

fn hex(c: u8) -> u8 {
    (c as char).to_digit(16).map_or(0, |d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        Parser::default().next_request(&mut BytesMut::from(input), &Limits::default(), true)
    }

    #[test]
    fn a_multibulk_request_is_decoded_when_whole() {
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(), Some(vec![Bytes::from("GET"), Bytes::from("k")]));
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\n").unwrap(), None);
        assert_eq!(parse(b"*2\r").unwrap(), None);
    }

    #[test]
    fn a_huge_bulk_length_is_refused_from_its_header() {
        let err = parse(b"*1\r\n$99999999999\r\n").unwrap_err();
        assert_eq!(err.0, "ERR Protocol error: invalid bulk length");
        assert_eq!(parse(b"*99999999999\r\n").unwrap_err().0, "ERR Protocol error: invalid multibulk length");
    }

    #[test]
    fn before_auth_the_tighter_bounds_apply_after_the_general_ones_as_in_redis() {
        let parse_unauthenticated = |input: &[u8]| {
            Parser::default().next_request(&mut BytesMut::from(input), &Limits::default(), false).unwrap_err().0
        };
        assert_eq!(parse_unauthenticated(b"*99999999999\r\n"), "ERR Protocol error: invalid multibulk length");
        assert_eq!(parse_unauthenticated(b"*11\r\n"), "ERR Protocol error: unauthenticated multibulk length");
        assert_eq!(parse_unauthenticated(b"*1\r\n$-1\r\n"), "ERR Protocol error: invalid bulk length");
        assert_eq!(parse_unauthenticated(b"*1\r\n$16385\r\n"), "ERR Protocol error: unauthenticated bulk length");
    }

    #[test]
    fn nesting_is_refused() {
        assert_eq!(parse(b"*1\r\n*1\r\n").unwrap_err().0, "ERR Protocol error: expected '$', got '*'");
    }

    #[test]
    fn inline_commands_split_like_redis() {
        assert_eq!(
            parse(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n").unwrap().unwrap(),
            vec![Bytes::from("set"), Bytes::from("a b"), Bytes::from("c'd"), Bytes::from("A\n")]
        );
        assert_eq!(parse(b"\r\n").unwrap(), Some(vec![]));
        assert_eq!(parse(b"get \"a\r\n").unwrap_err().0, "ERR Protocol error: unbalanced quotes in request");
        assert_eq!(parse(b"get \"a\"b\r\n").unwrap_err().0, "ERR Protocol error: unbalanced quotes in request");
    }

    /// Issue 21, item 8: a vertical tab is a blank before an argument and after a closing quote
    /// (C's `isspace`), but inside an unquoted argument only space, tab, CR and LF end it
    /// (checked against redis-server 7.0.15).
    #[test]
    fn inline_commands_treat_vertical_tab_as_c_does() {
        assert_eq!(parse(b"\x0bPING\r\n").unwrap().unwrap(), vec![Bytes::from("PING")]);
        assert_eq!(
            parse(b"ECHO \"a\"\x0bb\r\n").unwrap().unwrap(),
            vec![Bytes::from("ECHO"), Bytes::from("a"), Bytes::from("b")]
        );
        assert_eq!(
            parse(b"ECHO a\x0b b\r\n").unwrap().unwrap(),
            vec![Bytes::from("ECHO"), Bytes::from("a\x0b"), Bytes::from("b")]
        );
        assert_eq!(parse(b"ECHO \x0cx\r\n").unwrap().unwrap(), vec![Bytes::from("ECHO"), Bytes::from("x")]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        assert_eq!(
            parse(&vec![b'a'; INLINE_BYTES_MAX + 1]).unwrap_err().0,
            "ERR Protocol error: too big inline request"
        );
    }
}
