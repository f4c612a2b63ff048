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

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply's encoding in protocol `version` (2 or 3) to `out`.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        if version >= 3 {
            let frame = self.to_resp3();
            redis_protocol::resp3::encode::complete::extend_encode(out, &frame, false)
                .expect("a frame built by Reply::to_resp3 encodes");
        } else if let Reply::NilArray = self {
            // The null array has no frame of its own in the crate's RESP2 types.
            out.extend_from_slice(b"*-1\r\n");
        } else {
            let frame = self.to_resp2();
            redis_protocol::resp2::encode::extend_encode(out, &frame, false)
                .expect("a frame built by Reply::to_resp2 encodes");
        }
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
        reply.encode(version, &mut out);
        out.to_vec()
    }

    #[test]
    fn nulls_are_encoded_per_protocol() {
        assert_eq!(bytes(&Reply::Nil, 2), b"$-1\r\n");
        assert_eq!(bytes(&Reply::NilArray, 2), b"*-1\r\n");
        assert_eq!(bytes(&Reply::Nil, 3), b"_\r\n");
        assert_eq!(bytes(&Reply::NilArray, 3), b"_\r\n");
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
