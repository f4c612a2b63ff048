//! How the cluster carries commands and replies as bytes: in a Raft entry (commands), back from
//! the state machine (replies), and between a follower and the leader (both).
//!
//! Hand-laid and small: a command is a tag byte and length-prefixed arguments; a reply is a tag
//! byte and its parts. Decoding takes bytes that came over the network: every length is checked
//! against what is left, so hostile bytes give a [`WireError`], never a panic or an allocation
//! larger than the input.

use bytes::Bytes;

use crate::reply::{ErrorText, Reply};

/// A command as the cluster carries it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Command {
    /// A command of the table (read or write), run as the single-node server runs it.
    Run(Vec<Bytes>),
    /// MULTI ... EXEC: the queued commands, run in one transaction unless a WATCHed key's
    /// fingerprint changed (then nothing is written and the reply is a null array).
    Exec { watched: Vec<(Bytes, Option<u64>)>, queued: Vec<Vec<Bytes>> },
    /// WATCH's read: the fingerprint of each key (see `apply::fingerprint`), as an array.
    Fingerprints(Vec<Bytes>),
}

/// Bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError(pub(crate) &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed cluster message: {}", self.0)
    }
}

const RUN: u8 = 1;
const EXEC: u8 = 2;
const FINGERPRINTS: u8 = 3;

/// Status texts a reply can carry over the wire; a status is sent as its place here (a
/// [`Reply::Status`] holds a `&'static str`). A status not listed fails to encode, which the
/// round-trip test of every status the commands produce rules out.
const STATUSES: &[&str] = &["OK", "QUEUED", "PONG", "RESET", "string", "none", "hash", "set", "list", "zset"];

/// Every status a reply may carry, by its place: [`STATUSES`], then OBJECT HELP's lines (a
/// read a follower forwards to the leader).
fn statuses() -> impl Iterator<Item = &'static str> {
    STATUSES.iter().chain(crate::cmd::keyspace::OBJECT_HELP).copied()
}

impl Command {
    /// The encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        match self {
            Command::Run(args) => {
                out.push(RUN);
                put_args(&mut out, args);
            }
            Command::Exec { watched, queued } => {
                out.push(EXEC);
                put_len(&mut out, watched.len());
                for (key, fingerprint) in watched {
                    put_bytes(&mut out, key);
                    match fingerprint {
                        Some(f) => {
                            out.push(1);
                            out.extend_from_slice(&f.to_le_bytes());
                        }
                        None => out.push(0),
                    }
                }
                put_len(&mut out, queued.len());
                for args in queued {
                    put_args(&mut out, args);
                }
            }
            Command::Fingerprints(keys) => {
                out.push(FINGERPRINTS);
                put_args(&mut out, keys);
            }
        }
        out
    }

    /// About the encoding's length (what the batching at the door counts).
    pub(crate) fn size_hint(&self) -> usize {
        let args = |a: &[Bytes]| 4 + a.iter().map(|b| 4 + b.len()).sum::<usize>();
        1 + match self {
            Command::Run(a) | Command::Fingerprints(a) => args(a),
            Command::Exec { watched, queued } => {
                8 + watched.iter().map(|(k, _)| 13 + k.len()).sum::<usize>()
                    + queued.iter().map(|a| args(a)).sum::<usize>()
            }
        }
    }

    /// Decodes a whole command.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Command, WireError> {
        let mut r = Reader(bytes);
        let command = match r.u8()? {
            RUN => Command::Run(r.args()?),
            EXEC => {
                let n = r.count(5)?;
                let mut watched = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = r.bytes()?;
                    let fingerprint = match r.u8()? {
                        0 => None,
                        1 => Some(u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"))),
                        _ => return Err(WireError("fingerprint flag")),
                    };
                    watched.push((key, fingerprint));
                }
                let n = r.count(4)?;
                let mut queued = Vec::with_capacity(n);
                for _ in 0..n {
                    queued.push(r.args()?);
                }
                Command::Exec { watched, queued }
            }
            FINGERPRINTS => Command::Fingerprints(r.args()?),
            _ => return Err(WireError("command tag")),
        };
        r.end()?;
        Ok(command)
    }
}

const STATUS: u8 = 0;
const ERROR: u8 = 1;
const INT: u8 = 2;
const BULK: u8 = 3;
const NIL: u8 = 4;
const NIL_ARRAY: u8 = 5;
const ARRAY: u8 = 6;
const MAP: u8 = 7;
const VERBATIM: u8 = 8;
const SET: u8 = 9;
const PAIRS: u8 = 10;
const DOUBLE: u8 = 11;

/// Deepest nesting of arrays a reply may have on the wire (the commands' replies nest two deep).
const DEPTH_MAX: usize = 8;

/// Encodes `reply`.
pub(crate) fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    put_reply(&mut out, reply);
    out
}

fn put_reply(out: &mut Vec<u8>, reply: &Reply) {
    match reply {
        Reply::Status(text) => match statuses().position(|s| s == *text) {
            Some(i) => out.extend_from_slice(&[STATUS, i as u8]),
            None => {
                debug_assert!(false, "status {text:?} is not in wire::STATUSES");
                out.push(ERROR);
                put_bytes(out, format!("ERR internal: status {text} cannot cross the cluster").as_bytes());
            }
        },
        Reply::Error(text) => {
            out.push(ERROR);
            put_bytes(out, text.as_bytes());
        }
        Reply::Int(n) => {
            out.push(INT);
            out.extend_from_slice(&n.to_le_bytes());
        }
        Reply::Bulk(b) => {
            out.push(BULK);
            put_bytes(out, b);
        }
        Reply::Nil => out.push(NIL),
        Reply::NilArray => out.push(NIL_ARRAY),
        // A push never crosses the wire (pub/sub commands run on the connection's own node); were
        // one to, it would arrive as the array RESP2 makes of it.
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            out.push(if matches!(reply, Reply::Set(_)) { SET } else { ARRAY });
            put_len(out, items.len());
            for item in items {
                put_reply(out, item);
            }
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            out.push(if matches!(reply, Reply::Map(_)) { MAP } else { PAIRS });
            put_len(out, pairs.len());
            for (k, v) in pairs {
                put_reply(out, k);
                put_reply(out, v);
            }
        }
        Reply::Double(x) => {
            out.push(DOUBLE);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Reply::Verbatim(text) => {
            out.push(VERBATIM);
            put_bytes(out, text.as_bytes());
        }
        // Crosses as the array (or pairs) it stands for, and arrives as one.
        Reply::Range(range) => put_reply(out, &range.expand()),
    }
}

/// Decodes a whole reply.
pub(crate) fn decode_reply(bytes: &[u8]) -> Result<Reply, WireError> {
    let mut r = Reader(bytes);
    let reply = r.reply(0)?;
    r.end()?;
    Ok(reply)
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).expect("lengths fit in u32: requests are bounded").to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_args(out: &mut Vec<u8>, args: &[Bytes]) {
    put_len(out, args.len());
    for arg in args {
        put_bytes(out, arg);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(WireError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<usize, WireError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }

    /// A count of items each at least `min_item` bytes long: refused if the rest cannot hold
    /// them, so a hostile count never sizes an allocation.
    fn count(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.len()?;
        if n.saturating_mul(min_item) > self.0.len() {
            return Err(WireError("count larger than the message"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Bytes, WireError> {
        let n = self.len()?;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }

    fn args(&mut self) -> Result<Vec<Bytes>, WireError> {
        let n = self.count(4)?;
        (0..n).map(|_| self.bytes()).collect()
    }

    fn reply(&mut self, depth: usize) -> Result<Reply, WireError> {
        if depth > DEPTH_MAX {
            return Err(WireError("reply nested too deep"));
        }
        Ok(match self.u8()? {
            STATUS => Reply::Status(statuses().nth(usize::from(self.u8()?)).ok_or(WireError("status"))?),
            ERROR => Reply::Error(ErrorText::new(self.bytes()?.to_vec())),
            INT => Reply::Int(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            DOUBLE => Reply::Double(f64::from_bits(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))),
            BULK => Reply::Bulk(self.bytes()?),
            NIL => Reply::Nil,
            NIL_ARRAY => Reply::NilArray,
            ARRAY => {
                let n = self.count(1)?;
                Reply::Array((0..n).map(|_| self.reply(depth + 1)).collect::<Result<_, _>>()?)
            }
            SET => {
                let n = self.count(1)?;
                Reply::Set((0..n).map(|_| self.reply(depth + 1)).collect::<Result<_, _>>()?)
            }
            tag @ (MAP | PAIRS) => {
                let n = self.count(2)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    pairs.push((self.reply(depth + 1)?, self.reply(depth + 1)?));
                }
                if tag == MAP {
                    Reply::Map(pairs)
                } else {
                    Reply::Pairs(pairs)
                }
            }
            VERBATIM => {
                Reply::Verbatim(String::from_utf8(self.bytes()?.to_vec()).map_err(|_| WireError("verbatim text"))?)
            }
            _ => return Err(WireError("reply tag")),
        })
    }

    fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn commands_round_trip() {
        let commands = [
            Command::Run(vec![b("SET"), b("k"), Bytes::from_static(b"\r\n\0\xff")]),
            Command::Run(vec![]),
            Command::Exec {
                watched: vec![(b("a"), Some(7)), (b("b"), None)],
                queued: vec![vec![b("INCR"), b("a")], vec![b("GET"), b("b")]],
            },
            Command::Fingerprints(vec![b("a"), b("")]),
        ];
        for command in commands {
            let bytes = command.encode();
            assert!(command.size_hint() >= bytes.len(), "{command:?}");
            assert_eq!(Command::decode(&bytes), Ok(command));
        }
    }

    #[test]
    fn replies_round_trip_every_status_the_commands_use() {
        let mut replies: Vec<Reply> = statuses().map(Reply::Status).collect();
        replies.extend([
            Reply::error("ERR x\r\ny"),
            Reply::Int(-5),
            Reply::Int(i64::MAX),
            Reply::bulk(&b"v\0"[..]),
            Reply::Nil,
            Reply::NilArray,
            Reply::Array(vec![Reply::Nil, Reply::Array(vec![Reply::Int(1)])]),
            Reply::Map(vec![(Reply::bulk(&b"k"[..]), Reply::Int(2))]),
            Reply::Set(vec![Reply::bulk(&b"m"[..])]),
            Reply::Double(-2.5),
            Reply::Pairs(vec![(Reply::bulk(&b"f"[..]), Reply::bulk(&b"v"[..]))]),
            Reply::Verbatim("text".into()),
        ]);
        for reply in replies {
            assert_eq!(decode_reply(&encode_reply(&reply)), Ok(reply));
        }
    }

    /// Adversary: hostile bytes from a peer. Every prefix and every single-byte change of real
    /// messages decodes to a value or a WireError, never a panic; huge counts allocate nothing.
    #[test]
    fn hostile_bytes_give_errors_not_panics() {
        let command = Command::Exec { watched: vec![(b("k"), Some(1))], queued: vec![vec![b("SET"), b("k"), b("v")]] };
        let reply = Reply::Array(vec![Reply::bulk(&b"v"[..]), Reply::Map(vec![(Reply::Nil, Reply::Int(3))])]);
        for bytes in [command.encode(), encode_reply(&reply)] {
            for cut in 0..bytes.len() {
                let _ = Command::decode(&bytes[..cut]);
                let _ = decode_reply(&bytes[..cut]);
            }
            for i in 0..bytes.len() {
                for v in [0u8, 1, 0x7f, 0xff] {
                    let mut m = bytes.clone();
                    m[i] = v;
                    let _ = Command::decode(&m);
                    let _ = decode_reply(&m);
                }
            }
        }
        assert_eq!(Command::decode(&[RUN, 0xff, 0xff, 0xff, 0xff]), Err(WireError("count larger than the message")));
        let mut deep = [ARRAY, 1, 0, 0, 0].repeat(DEPTH_MAX + 2);
        deep.push(NIL);
        assert_eq!(decode_reply(&deep), Err(WireError("reply nested too deep")));
    }
}
