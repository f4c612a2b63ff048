//! Replies, and their encoding as RESP2 or RESP3 frames by the `redis-protocol` crate.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, FrameMap, VerbatimStringFormat};

/// A command's reply, independent of the protocol version.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+text`.
    Status(&'static str),
    /// `-text`; the text starts with the error code (`ERR`, `NOAUTH`, ...).
    Error(String),
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
    /// Text (RESP3: a verbatim string of format `txt`; RESP2: a bulk string).
    Verbatim(String),
}

impl Reply {
    /// `+OK`.
    pub(crate) const OK: Reply = Reply::Status("OK");

    /// An error reply.
    pub(crate) fn error(text: impl Into<String>) -> Reply {
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
            Reply::Error(t) | Reply::Verbatim(t) => t.len(),
            Reply::Array(items) => items.iter().map(Reply::value_bytes).sum(),
            Reply::Map(pairs) => pairs.iter().map(|(k, v)| k.value_bytes() + v.value_bytes()).sum(),
            Reply::Status(_) | Reply::Int(_) | Reply::Nil | Reply::NilArray => 0,
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
        match self {
            Reply::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.encode(version, out);
                }
            }
            leaf => leaf.encode_leaf(version, out),
        }
    }

    /// Encodes a reply that is not an array through the `redis-protocol` crate.
    fn encode_leaf(&self, version: u8, out: &mut BytesMut) {
        // `extend_encode` zero-extends `out` by the frame's `encode_len`, then encodes, and
        // returns where the encoding ends. redis-protocol 6 counts an integer's digits with a
        // floating-point log10, which rounds up near powers of ten past 2^53 (9999999999999999
        // counts 17 digits), so it can reserve more than it writes: the end it returns is the
        // truth, and the zero bytes past it (which would desynchronise the client) are cut.
        let end = if version >= 3 {
            let frame = self.to_resp3();
            redis_protocol::resp3::encode::complete::extend_encode(out, &frame, false)
                .expect("a frame built by Reply::to_resp3 encodes")
        } else if let Reply::NilArray = self {
            // The null array has no frame of its own in the crate's RESP2 types.
            out.extend_from_slice(b"*-1\r\n");
            out.len()
        } else {
            let frame = self.to_resp2();
            redis_protocol::resp2::encode::extend_encode(out, &frame, false)
                .expect("a frame built by Reply::to_resp2 encodes")
        };
        debug_assert!(out[end..].iter().all(|&b| b == 0), "only the crate's over-reservation is cut");
        out.truncate(end);
    }

    fn to_resp2(&self) -> Frame2 {
        match self {
            Reply::Status(s) => Frame2::SimpleString(Bytes::from_static(s.as_bytes())),
            Reply::Error(e) => Frame2::Error(e.as_str().into()),
            Reply::Int(n) => Frame2::Integer(*n),
            Reply::Bulk(b) => Frame2::BulkString(b.clone()),
            Reply::Nil | Reply::NilArray => Frame2::Null,
            Reply::Array(items) => Frame2::Array(items.iter().map(Reply::to_resp2).collect()),
            Reply::Map(pairs) => Frame2::Array(pairs.iter().flat_map(|(k, v)| [k.to_resp2(), v.to_resp2()]).collect()),
            Reply::Verbatim(text) => Frame2::BulkString(Bytes::copy_from_slice(text.as_bytes())),
        }
    }

    fn to_resp3(&self) -> Frame3 {
        match self {
            Reply::Status(s) => Frame3::SimpleString { data: Bytes::from_static(s.as_bytes()), attributes: None },
            Reply::Error(e) => Frame3::SimpleError { data: e.as_str().into(), attributes: None },
            Reply::Int(n) => Frame3::Number { data: *n, attributes: None },
            Reply::Bulk(b) => Frame3::BlobString { data: b.clone(), attributes: None },
            Reply::Nil | Reply::NilArray => Frame3::Null,
            Reply::Array(items) => {
                Frame3::Array { data: items.iter().map(Reply::to_resp3).collect(), attributes: None }
            }
            Reply::Map(pairs) => {
                let mut data = FrameMap::with_capacity(pairs.len());
                for (k, v) in pairs {
                    data.insert(k.to_resp3(), v.to_resp3());
                }
                Frame3::Map { data, attributes: None }
            }
            Reply::Verbatim(text) => Frame3::VerbatimString {
                data: Bytes::copy_from_slice(text.as_bytes()),
                format: VerbatimStringFormat::Text,
                attributes: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(reply: &Reply, version: u8) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.clone().encode(version, &mut out);
        out.to_vec()
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
    fn maps_keep_their_order() {
        let map = Reply::Map(vec![(Reply::bulk("b"), Reply::Int(1)), (Reply::bulk("a"), Reply::Int(2))]);
        assert_eq!(bytes(&map, 3), b"%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n");
        assert_eq!(bytes(&map, 2), b"*4\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n");
    }

    #[test]
    fn verbatim_text_is_a_bulk_string_in_resp2() {
        assert_eq!(bytes(&Reply::Verbatim("hi".into()), 3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(bytes(&Reply::Verbatim("hi".into()), 2), b"$2\r\nhi\r\n");
    }
}
