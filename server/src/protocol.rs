//! Requests out of a connection's input buffer: RESP multibulk frames and inline commands.
//!
//! A multibulk request is first walked by `scan_multibulk`, which reads only its header lines
//! and checks every count and length against [`Limits`] before anything is decoded, allocated or
//! waited for: a `$999999999999` header is refused when its line arrives, not after the server
//! has buffered a gigabyte, and a request may only be an array of bulk strings (no nesting, so no
//! recursion). Once the scan says a whole frame is buffered, the `redis-protocol` crate decodes
//! it (zero-copy: the arguments are slices of the input buffer). Inline commands (`PING\r\n`, what
//! telnet sends) are split as Redis's `sdssplitargs` splits them.
//!
//! Error texts are Redis's; after one the connection is closed, as Redis closes it.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;

use crate::reply::ErrorText;

/// Redis's limit on an inline request or a header line without its line end.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;

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

/// The next request in `buf`, consumed from it: `Ok(None)` if the buffer holds no whole request
/// yet; an empty vector for an empty request (a blank line, `*0`), which Redis ignores.
pub fn next_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'*' {
        next_multibulk(buf, limits)
    } else {
        next_inline(buf)
    }
}

/// What [`scan_multibulk`] found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A whole frame of this many bytes is buffered.
    Complete(usize),
    /// A request with no arguments (`*0`, `*-1`) of this many bytes.
    Empty(usize),
    /// More bytes are needed.
    Incomplete,
}

fn next_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let len = match scan_multibulk(buf, limits)? {
        Scan::Incomplete => return Ok(None),
        Scan::Empty(len) => {
            let _ = buf.split_to(len);
            return Ok(Some(Vec::new()));
        }
        Scan::Complete(len) => len,
    };
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

/// Walks the header lines of the multibulk request at the start of `buf`, checking each bound.
fn scan_multibulk(buf: &[u8], limits: &Limits) -> Result<Scan, ProtocolError> {
    let Some((count, mut pos)) = header_line(buf, 0, "too big mbulk count string")? else {
        return Ok(Scan::Incomplete);
    };
    let count = match parse_len(&buf[1..count]) {
        Some(n) if n <= 0 => return Ok(Scan::Empty(pos)),
        Some(n) if (n as u64) <= limits.args_max as u64 => n as usize,
        _ => return Err(ProtocolError::new("invalid multibulk length")),
    };
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Scan::Incomplete);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError::new(format_args!("expected '$', got '{}'", buf[pos] as char)));
        }
        let Some((line_end, data)) = header_line(buf, pos, "too big bulk count string")? else {
            return Ok(Scan::Incomplete);
        };
        let len = match parse_len(&buf[pos + 1..line_end]) {
            Some(n) if n >= 0 && (n as u64) <= limits.bulk_bytes_max as u64 => n as usize,
            _ => return Err(ProtocolError::new("invalid bulk length")),
        };
        pos = data + len + 2;
        if pos > limits.request_bytes_max {
            return Err(ProtocolError::new("request too large"));
        }
    }
    Ok(if pos <= buf.len() { Scan::Complete(pos) } else { Scan::Incomplete })
}

/// The header line starting at `start`: `(end of its text, start of what follows)`, or `None` if
/// its line end is not buffered yet. A line must end in CRLF.
fn header_line(buf: &[u8], start: usize, too_big: &str) -> Result<Option<(usize, usize)>, ProtocolError> {
    let rest = &buf[start..];
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        if rest.len() > INLINE_BYTES_MAX {
            return Err(ProtocolError::new(too_big));
        }
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((start + cr, start + cr + 2))),
        Some(_) => Err(ProtocolError::new("expected CRLF after a header")),
    }
}

/// A length as Redis's `string2ll` reads it (no sign but `-`, no leading zeros or spaces).
fn parse_len(text: &[u8]) -> Option<i64> {
    crate::cmd::parse::strict_i64(text)
}

fn next_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_BYTES_MAX {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(newline + 1);
    let text = line[..newline].strip_suffix(b"\r").unwrap_or(&line[..newline]);
    split_args(text).map(Some).ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
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
        next_request(&mut BytesMut::from(input), &Limits::default())
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
