//! Replies, and their encoding as RESP2 or RESP3 frames.
//!
//! The encoder is written here rather than taken from the `redis-protocol` crate because an
//! error reply carries bytes, not UTF-8: Redis quotes a client's argument into its error texts
//! byte for byte, and the crate's error frames only hold `str`. Every error text is an
//! [`ErrorText`], the one place where client bytes become reply bytes, so none can end a line.

use bytes::{BufMut, Bytes, BytesMut};
use ferrocask::RangeBuf;

/// The most bytes of a client's argument that Redis quotes where it cuts one (`%.128s`: the
/// unknown-command and unknown-subcommand errors).
pub(crate) const QUOTED_ARG_BYTES_MAX: usize = 128;

/// The text of an error reply (what follows the `-`), which never holds a line break.
///
/// Redis formats an error from client input, then trims CR and LF from its ends and turns the
/// ones inside into spaces; [`ErrorText::new`] does the same to every error text, so a client's
/// `"a\r\n:1"` quoted into an error cannot end the error line early and forge a reply of its
/// own. Any other byte is kept as it is (Redis sends non-UTF-8 arguments back raw).
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorText(Bytes);

impl ErrorText {
    /// The text, its line breaks trimmed at the ends and turned into spaces inside.
    pub fn new(text: impl Into<Vec<u8>>) -> ErrorText {
        let mut text = text.into();
        let is_break = |b: &u8| matches!(b, b'\r' | b'\n');
        let end = text.iter().rposition(|b| !is_break(b)).map_or(0, |last| last + 1);
        text.truncate(end);
        let start = text.iter().position(|b| !is_break(b)).unwrap_or(text.len());
        text.drain(..start);
        for b in &mut text {
            if is_break(b) {
                *b = b' ';
            }
        }
        ErrorText(Bytes::from(text))
    }

    /// The bytes sent after the `-`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for ErrorText {
    fn from(text: String) -> ErrorText {
        ErrorText::new(text)
    }
}

impl From<&str> for ErrorText {
    fn from(text: &str) -> ErrorText {
        ErrorText::new(text)
    }
}

impl From<Vec<u8>> for ErrorText {
    fn from(text: Vec<u8>) -> ErrorText {
        ErrorText::new(text)
    }
}

impl PartialEq<&str> for ErrorText {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Debug for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl std::fmt::Display for ErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// A client's argument as Redis's `%s` quotes it into an error: its bytes up to the first NUL
/// (a C string ends there).
pub(crate) fn quoted(arg: &[u8]) -> &[u8] {
    &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())]
}

/// A client's argument as Redis's `%.128s` quotes it: [`quoted`], then at most
/// [`QUOTED_ARG_BYTES_MAX`] bytes.
pub(crate) fn quoted_cut(arg: &[u8]) -> &[u8] {
    let arg = quoted(arg);
    &arg[..arg.len().min(QUOTED_ARG_BYTES_MAX)]
}

/// A command's reply, independent of the protocol version.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+text`.
    Status(&'static str),
    /// `-text`; the text starts with the error code (`ERR`, `NOAUTH`, ...).
    Error(ErrorText),
    /// `:n`.
    Int(i64),
    /// `$len` and the bytes.
    Bulk(Bytes),
    /// The null bulk string (RESP3: null).
    Nil,
    /// The null array (RESP3: null).
    NilArray,
    /// `*n` and the elements.
    Array(Vec<Reply>),
    /// A map (RESP2: a flat array of keys and values).
    Map(Vec<(Reply, Reply)>),
    /// A set (RESP3: `~n`; RESP2: an array): SMEMBERS, SINTER, SPOP with a count, ...
    Set(Vec<Reply>),
    /// Pairs that are not a map (RESP3: an array of 2-element arrays; RESP2: a flat array):
    /// HRANDFIELD ... WITHVALUES, whose fields may repeat.
    Pairs(Vec<(Reply, Reply)>),
    /// Text (RESP3: a verbatim string of format `txt`; RESP2: a bulk string).
    Verbatim(String),
    /// A double (RESP3: `,`; RESP2: a bulk string), printed as Redis's `%.17g`.
    Double(f64),
    /// Out-of-band data (pub/sub's messages and (un)subscribe confirmations): RESP3's push type
    /// (`>n`), an array (`*n`) in RESP2.
    Push(Vec<Reply>),
    /// An array read by one range walk (LRANGE and the ZRANGE family), encoded straight from
    /// the walk's buffer: no `Bytes` and no `Reply` per element.
    Range(RangeReply),
}

/// What a [`Reply::Range`] sends of each entry of its [`RangeBuf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangePart {
    /// The entry's value as a bulk string (a list element).
    Values,
    /// The entry's key from byte `at` + 8 on as a bulk string (a sorted set's member in its
    /// score-index record, whose score slot is the 8 bytes at `at`).
    Members {
        /// Where the score slot starts in the record key.
        at: usize,
    },
    /// [`RangePart::Members`] each followed by its score (decoded from the slot at `at`): a
    /// double in RESP3, each pair a 2-element array there; a flat array in RESP2 (as
    /// [`Reply::Pairs`] of a bulk and a [`Reply::Double`]).
    Scored {
        /// Where the score slot starts in the record key.
        at: usize,
    },
}

/// The entries of a range walk, from `skip` on, and which part of each one the reply sends.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeReply {
    buf: RangeBuf,
    skip: usize,
    part: RangePart,
}

impl RangeReply {
    /// The entries of `buf` from the `skip`th on (fewer entries than that: none), each sent as
    /// `part` says.
    pub fn new(buf: RangeBuf, skip: usize, part: RangePart) -> RangeReply {
        let skip = skip.min(buf.len());
        RangeReply { buf, skip, part }
    }

    /// Entries sent.
    pub fn len(&self) -> usize {
        self.buf.len() - self.skip
    }

    /// Whether it sends no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.buf.iter().skip(self.skip)
    }

    /// An entry's member (or element) and, for [`RangePart::Scored`], its score.
    fn split<'e>(part: RangePart, key: &'e [u8], value: &'e [u8]) -> (&'e [u8], Option<f64>) {
        match part {
            RangePart::Values => (value, None),
            RangePart::Members { at } => (&key[at + 8..], None),
            RangePart::Scored { at } => (&key[at + 8..], Some(score_of_slot(&key[at..at + 8]))),
        }
    }

    /// The elements as they are, each sent as its bulk string (and score): what the cluster's
    /// wire carries and tests compare.
    pub fn items(&self) -> Vec<(Bytes, Option<f64>)> {
        self.entries()
            .map(|(k, v)| {
                let (member, score) = RangeReply::split(self.part, k, v);
                (Bytes::copy_from_slice(member), score)
            })
            .collect()
    }

    /// The same reply as [`Reply::Array`] or [`Reply::Pairs`] (one `Bytes` per element).
    pub fn expand(&self) -> Reply {
        let items = self.items();
        if matches!(self.part, RangePart::Scored { .. }) {
            Reply::Pairs(items.into_iter().map(|(m, s)| (Reply::Bulk(m), Reply::Double(s.unwrap_or(0.0)))).collect())
        } else {
            Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
        }
    }

    fn value_bytes(&self) -> usize {
        self.entries().map(|(k, v)| RangeReply::split(self.part, k, v).0.len()).sum()
    }

    fn encode(&self, version: u8, out: &mut BytesMut) {
        let resp3 = version >= 3;
        let scored = matches!(self.part, RangePart::Scored { .. });
        let count = if scored && !resp3 { self.len() * 2 } else { self.len() };
        line(out, b'*', Decimal::of(count).digits());
        for (key, value) in self.entries() {
            let (member, score) = RangeReply::split(self.part, key, value);
            if let Some(score) = score {
                if resp3 {
                    out.put_slice(b"*2\r\n");
                }
                blob(out, b'$', &[member]);
                if resp3 {
                    line(out, b',', format_double(score).as_bytes());
                } else {
                    blob(out, b'$', &[format_double(score).as_bytes()]);
                }
            } else {
                blob(out, b'$', &[member]);
            }
        }
    }
}

/// The score of a score-index slot (the order-preserving form of its bits:
/// `collection::score_slot`).
fn score_of_slot(slot: &[u8]) -> f64 {
    let slot = u64::from_be_bytes(slot.try_into().expect("a score slot is 8 bytes"));
    let bits = if slot >> 63 == 1 { slot & !(1 << 63) } else { !slot };
    f64::from_bits(bits)
}

impl Reply {
    /// `+OK`.
    pub(crate) const OK: Reply = Reply::Status("OK");

    /// An error reply.
    pub(crate) fn error(text: impl Into<ErrorText>) -> Reply {
        Reply::Error(text.into())
    }

    /// A bulk string.
    pub(crate) fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// A bulk string or nil.
    pub(crate) fn bulk_or_nil(bytes: Option<Vec<u8>>) -> Reply {
        bytes.map_or(Reply::Nil, Reply::bulk)
    }

    /// The bytes of values and texts this reply carries (its encoding is a little longer).
    pub(crate) fn value_bytes(&self) -> usize {
        match self {
            Reply::Bulk(b) => b.len(),
            Reply::Error(t) => t.as_bytes().len(),
            Reply::Verbatim(t) => t.len(),
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => items.iter().map(Reply::value_bytes).sum(),
            Reply::Map(pairs) | Reply::Pairs(pairs) => {
                pairs.iter().map(|(k, v)| k.value_bytes() + v.value_bytes()).sum()
            }
            Reply::Range(range) => range.value_bytes(),
            Reply::Status(_) | Reply::Int(_) | Reply::Nil | Reply::NilArray | Reply::Double(_) => 0,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply's encoding in protocol `version` (2 or 3) to `out`, consuming it: an
    /// array's elements are encoded one at a time and each is dropped once encoded, so a reply
    /// of many values (MGET, EXEC) never sits in memory twice, as values and as their encoding.
    pub fn encode(self, version: u8, out: &mut BytesMut) {
        let resp3 = version >= 3;
        match self {
            Reply::Status(text) => line(out, b'+', text.as_bytes()),
            Reply::Error(text) => line(out, b'-', text.as_bytes()),
            Reply::Int(n) => line(out, b':', Decimal::new(n.unsigned_abs(), n < 0).digits()),
            Reply::Bulk(bytes) => blob(out, b'$', &[&bytes[..]]),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            // Arrays; in RESP3 a set (`~`) and a push (`>`) have their own types.
            Reply::Array(items) => aggregate(out, b'*', items, version),
            Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, version),
            Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, version),
            Reply::Pairs(pairs) => {
                line(out, b'*', Decimal::of(if resp3 { pairs.len() } else { pairs.len() * 2 }).digits());
                for (key, value) in pairs {
                    if resp3 {
                        out.put_slice(b"*2\r\n");
                    }
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Reply::Map(pairs) => {
                let (kind, count) = if resp3 { (b'%', pairs.len()) } else { (b'*', pairs.len() * 2) };
                line(out, kind, Decimal::of(count).digits());
                for (key, value) in pairs {
                    key.encode(version, out);
                    value.encode(version, out);
                }
            }
            Reply::Double(x) if resp3 => line(out, b',', format_double(x).as_bytes()),
            Reply::Double(x) => blob(out, b'$', &[format_double(x).as_bytes()]),
            Reply::Verbatim(text) if resp3 => blob(out, b'=', &[b"txt:", text.as_bytes()]),
            Reply::Verbatim(text) => blob(out, b'$', &[text.as_bytes()]),
            Reply::Range(range) => range.encode(version, out),
        }
    }
}

/// `x` as C's `printf("%.17g")` prints it (Redis's `addReplyDouble`): 17 significant digits,
/// trailing zeros dropped, an exponent (at least two digits) below 1e-4 or from 1e17 on; `inf`
/// and `-inf`.
pub(crate) fn format_double(x: f64) -> String {
    // Whole scores (leaderboards, timestamps, counters) are the common case: below 1e17 an
    // integer has at most 17 digits, so `%.17g` prints it exactly, as an integer, and it fits
    // an i64. Only -0 keeps its sign, as in printf.
    if x.fract() == 0.0 && x.abs() < WHOLE_DOUBLE_LIMIT {
        return if x == 0.0 && x.is_sign_negative() { "-0".into() } else { (x as i64).to_string() };
    }
    format_double_general(x)
}

/// Below this, a whole double prints under `%.17g` as its integer digits (see [`format_double`]).
const WHOLE_DOUBLE_LIMIT: f64 = 1e17;

/// [`format_double`] for any double, through its 17-digit scientific form.
fn format_double_general(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.is_nan() {
        return "nan".into();
    }
    // `{:.16e}` rounds correctly to 17 significant digits, as glibc's printf does.
    let sci = format!("{x:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (-4..17).contains(&exp) {
        let body = if exp >= 0 {
            let (int, frac) = digits.split_at(exp as usize + 1);
            format!("{int}.{frac}")
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{}", trim(body))
    } else {
        let body = trim(format!("{}.{}", &digits[..1], &digits[1..]));
        format!("{sign}{body}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// A one-line frame: the type byte, the text, CRLF. The text holds no line break: status texts
/// are the server's own, error texts are [`ErrorText`]s, the rest are numbers.
/// An aggregate of `kind` (`*`, `~`, `>`): its length, then each item, consumed as it is encoded.
fn aggregate(out: &mut BytesMut, kind: u8, items: Vec<Reply>, version: u8) {
    line(out, kind, Decimal::of(items.len()).digits());
    for item in items {
        item.encode(version, out);
    }
}

/// An integer's decimal digits (with a `-` if negative), written on the stack: every length and
/// count of a reply is one, and a `String` per element (`to_string`) was a malloc and a free per
/// element of an LRANGE reply.
struct Decimal {
    /// The digits, right-aligned: a `-` and up to 20 digits (`u64::MAX`).
    buf: [u8; 21],
    start: usize,
}

impl Decimal {
    fn new(mut n: u64, negative: bool) -> Decimal {
        let mut d = Decimal { buf: [0; 21], start: 21 };
        loop {
            d.start -= 1;
            d.buf[d.start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            d.start -= 1;
            d.buf[d.start] = b'-';
        }
        d
    }

    fn of(n: usize) -> Decimal {
        Decimal::new(n as u64, false)
    }

    fn digits(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    debug_assert!(!text.iter().any(|b| matches!(b, b'\r' | b'\n')), "a line frame holds no line break");
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// A length-prefixed frame whose body is `parts` joined.
fn blob(out: &mut BytesMut, kind: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    line(out, kind, Decimal::of(len).digits());
    out.reserve(len + 2);
    for part in parts {
        out.put_slice(part);
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_to_string_writes_them() {
        for n in [0i64, 7, -7, 10, 99, -100, 123_456_789, i64::MAX, i64::MIN] {
            assert_eq!(Decimal::new(n.unsigned_abs(), n < 0).digits(), n.to_string().as_bytes());
        }
        assert_eq!(Decimal::of(usize::MAX).digits(), usize::MAX.to_string().as_bytes());
    }

    fn bytes(reply: &Reply, version: u8) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.clone().encode(version, &mut out);
        out.to_vec()
    }

    /// A range reply encodes as the array (or pairs) of one `Bytes` per element it replaces,
    /// in both protocols, from its skip on, and counts the same value bytes.
    #[test]
    fn a_range_reply_encodes_as_its_expanded_array() {
        let at = 5;
        let mut buf = RangeBuf::new();
        for (i, score) in [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 0.1, 1e20, f64::INFINITY].into_iter().enumerate() {
            let mut key = b"head.".to_vec();
            key.extend_from_slice(&crate::collection::score_slot(score).to_be_bytes());
            key.extend_from_slice(&b"member"[..i]);
            buf.push(&key, &b"value\r\n"[..i]);
        }
        for part in [RangePart::Values, RangePart::Members { at }, RangePart::Scored { at }] {
            for skip in [0, 3, 7, 9] {
                let range = RangeReply::new(buf.clone(), skip, part);
                let expanded = range.expand();
                assert_eq!(Reply::Range(range.clone()).value_bytes(), expanded.value_bytes(), "{part:?}");
                for version in [2, 3] {
                    assert_eq!(
                        bytes(&Reply::Range(range.clone()), version),
                        bytes(&expanded, version),
                        "{part:?} {skip}"
                    );
                }
            }
        }
        let scored = RangeReply::new(buf, 6, RangePart::Scored { at });
        assert_eq!(bytes(&Reply::Range(scored.clone()), 2), b"*2\r\n$6\r\nmember\r\n$3\r\ninf\r\n");
        assert_eq!(bytes(&Reply::Range(scored), 3), b"*1\r\n*2\r\n$6\r\nmember\r\n,inf\r\n");
    }

    #[test]
    fn nulls_are_encoded_per_protocol() {
        assert_eq!(bytes(&Reply::Nil, 2), b"$-1\r\n");
        assert_eq!(bytes(&Reply::NilArray, 2), b"*-1\r\n");
        assert_eq!(bytes(&Reply::Nil, 3), b"_\r\n");
        assert_eq!(bytes(&Reply::NilArray, 3), b"_\r\n");
    }

    /// Fuzz finding (server_dispatch; its deterministic form is the regression
    /// `server_dispatch/integer-near-a-power-of-ten`): PTTL of a key with a TTL of 10^13 s
    /// answered `:9999999999999999\r\n` plus a zero byte once a millisecond had passed (INCRBY
    /// to that value did too), because the RESP crate reserves an integer's length by a
    /// floating-point log10.
    #[test]
    fn regression_integers_near_powers_of_ten_encode_without_a_stray_byte() {
        let ints = [9_999_999_999_999_999, -9_999_999_999_999_999, 99_999_999_999_999_999, 999_999_999_999_999_999];
        for n in ints.into_iter().chain([i64::MAX, i64::MIN, 0, 1 << 53, (1 << 53) + 1]) {
            let int = format!(":{n}\r\n").into_bytes();
            for version in [2, 3] {
                assert_eq!(bytes(&Reply::Int(n), version), int, "{n} in RESP{version}");
                let array = Reply::Array(vec![Reply::Int(n), Reply::bulk("x")]);
                assert_eq!(
                    bytes(&array, version),
                    [b"*2\r\n", &int[..], b"$1\r\nx\r\n"].concat(),
                    "{n} in RESP{version}"
                );
            }
        }
    }

    #[test]
    fn error_texts_never_hold_a_line_break() {
        assert_eq!(ErrorText::new("ERR x a\r\n:1\r\n"), "ERR x a  :1");
        assert_eq!(ErrorText::new("\nERR\r"), "ERR");
        assert_eq!(ErrorText::new("\r\n"), "");
        assert_eq!(ErrorText::new(b"ERR \xff\n\x00".to_vec()).as_bytes(), b"ERR \xff \x00");
        assert_eq!(bytes(&Reply::error("ERR a\r\n:1"), 2), b"-ERR a  :1\r\n");
    }

    #[test]
    fn nested_errors_are_encoded_raw_in_both_protocols() {
        let exec = Reply::Array(vec![Reply::OK, Reply::error(b"ERR \xff".to_vec())]);
        for version in [2, 3] {
            assert_eq!(bytes(&exec, version), b"*2\r\n+OK\r\n-ERR \xff\r\n", "RESP{version}");
        }
    }

    #[test]
    fn quoting_stops_at_nul_and_cuts_at_128_bytes() {
        assert_eq!(quoted(b"a\0b"), b"a");
        assert_eq!(quoted_cut(&[b'x'; 300]).len(), QUOTED_ARG_BYTES_MAX);
        assert_eq!(quoted(&[b'x'; 300]).len(), 300);
    }

    #[test]
    fn maps_keep_their_order() {
        let map = Reply::Map(vec![(Reply::bulk("b"), Reply::Int(1)), (Reply::bulk("a"), Reply::Int(2))]);
        assert_eq!(bytes(&map, 3), b"%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n");
        assert_eq!(bytes(&map, 2), b"*4\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n");
    }

    #[test]
    fn doubles_print_as_percent_17g() {
        for (x, text) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e20, "1e+20"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (1e16, "10000000000000000"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_double(x), text, "{x}");
        }
        assert_eq!(bytes(&Reply::Double(1.5), 3), b",1.5\r\n");
        // The whole-number shortcut prints what the general path prints, at and around its
        // edges, and the doubles just past them take the general path.
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut whole = vec![0.0, -0.0, 1.0, -1.0, 9.007_199_254_740_993e15, -9.007_199_254_740_992e15];
        whole.extend([WHOLE_DOUBLE_LIMIT, -WHOLE_DOUBLE_LIMIT].iter().flat_map(|&l| {
            let below = f64::from_bits(l.to_bits() - 1);
            [l, below, below.trunc(), f64::from_bits(l.to_bits() + 1)]
        }));
        for _ in 0..10_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let magnitude = 10f64.powi((rng % 18) as i32);
            whole.push(
                ((rng >> 11) as f64 / (1u64 << 53) as f64 * magnitude).trunc() * if rng & 1 == 1 { -1.0 } else { 1.0 },
            );
        }
        for x in whole {
            assert_eq!(format_double(x), format_double_general(x), "{x:e}");
        }
        assert_eq!(bytes(&Reply::Double(1.5), 2), b"$3\r\n1.5\r\n");
    }

    #[test]
    fn sets_are_arrays_in_resp2() {
        let set = Reply::Set(vec![Reply::bulk("a")]);
        assert_eq!(bytes(&set, 3), b"~1\r\n$1\r\na\r\n");
        assert_eq!(bytes(&set, 2), b"*1\r\n$1\r\na\r\n");
        let pairs = Reply::Pairs(vec![(Reply::bulk("a"), Reply::bulk("1"))]);
        assert_eq!(bytes(&pairs, 3), b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
        assert_eq!(bytes(&pairs, 2), b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    }

    #[test]
    fn a_push_is_an_array_in_resp2() {
        let push = Reply::Push(vec![Reply::bulk("message"), Reply::bulk("c"), Reply::Nil]);
        assert_eq!(bytes(&push, 3), b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n_\r\n");
        assert_eq!(bytes(&push, 2), b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$-1\r\n");
    }

    #[test]
    fn verbatim_text_is_a_bulk_string_in_resp2() {
        assert_eq!(bytes(&Reply::Verbatim("hi".into()), 3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(bytes(&Reply::Verbatim("hi".into()), 2), b"$2\r\nhi\r\n");
    }
}
