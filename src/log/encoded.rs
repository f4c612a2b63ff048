//! A write's records as the encoder laid them out, with each record's header and place: what
//! the queue carries to the leader and what transactions build, below both.

use crate::format::{encode_record, record_header_len, RecordHeader, RecordKind};

/// Records encoded by a caller, waiting for a frame, each with the header and position its
/// encoder gave it: the leader stamps sequence numbers into them and publishes them from these,
/// without decoding bytes this process has just encoded (a debug build checks them against a
/// full decode of the frame).
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    bytes: Vec<u8>,
    /// The first record. Most operations are one put or delete: kept inline, it costs no
    /// allocation of its own.
    first: Option<Placed>,
    /// Every record after the first.
    rest: Vec<Placed>,
}

/// Where one encoded record starts in its [`Encoded`]'s bytes, and its header, packed: operations
/// are moved through the queue by value, and a larger `Pending` costs a `memcpy` per move.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed {
    at: u32,
    value_len: u32,
    expires_ms: u64,
    key_len: u16,
    header_len: u8,
    pub(crate) kind: RecordKind,
}

impl Placed {
    /// The encoder has checked the limits, so every field fits: a key is at most `KEY_BYTES_MAX`
    /// long, a value at most `VALUE_BYTES_MAX`, and an operation's bytes fit in one frame.
    #[inline]
    fn new(at: usize, header: &RecordHeader) -> Placed {
        debug_assert!(at <= u32::MAX as usize && header.key_len <= u16::MAX as usize && header.header_len <= 255);
        Placed {
            at: at as u32,
            value_len: header.value_len as u32,
            expires_ms: header.expires_ms,
            key_len: header.key_len as u16,
            header_len: header.header_len as u8,
            kind: header.kind,
        }
    }

    /// The record's header, as encoded (sequence number 0).
    #[inline]
    pub(crate) fn header(&self) -> RecordHeader {
        RecordHeader {
            kind: self.kind,
            key_len: usize::from(self.key_len),
            value_len: self.value_len as usize,
            seq: 0,
            expires_ms: self.expires_ms,
            header_len: usize::from(self.header_len),
        }
    }

    /// Where the record starts in its operation's bytes.
    #[inline]
    pub(crate) fn at(&self) -> usize {
        self.at as usize
    }

    /// The record's expiry (0 = never).
    #[inline]
    pub(crate) fn expires_ms(&self) -> u64 {
        self.expires_ms
    }
}

impl Encoded {
    /// No records yet, in a buffer of `bytes` bytes (what the records will take, if known).
    pub(crate) fn with_capacity(bytes: usize) -> Encoded {
        Encoded { bytes: Vec::with_capacity(bytes), ..Encoded::default() }
    }

    /// One record, in a buffer of exactly its size: grown from empty record field by record field,
    /// the buffer would be reallocated three times for a small put, which costs more than all the
    /// rest of encoding it.
    pub(crate) fn one(kind: RecordKind, expires_ms: u64, key: &[u8], value: &[u8]) -> Encoded {
        let mut ops = Encoded::with_capacity(record_header_len(expires_ms) + key.len() + value.len());
        ops.push(kind, expires_ms, key, value);
        ops
    }

    /// Appends a record with sequence number 0 (the leader stamps the real one). The caller has
    /// checked the limits.
    #[inline]
    pub(crate) fn push(&mut self, kind: RecordKind, expires_ms: u64, key: &[u8], value: &[u8]) {
        let at = self.bytes.len();
        let header = encode_record(&mut self.bytes, kind, 0, expires_ms, key, value);
        let placed = Placed::new(at, &header);
        match self.first {
            None => self.first = Some(placed),
            Some(_) => self.rest.push(placed),
        }
    }

    /// The encoded records, back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes the records take.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// How many records there are.
    #[inline]
    pub(crate) fn record_count(&self) -> u32 {
        u32::from(self.first.is_some()) + u32::try_from(self.rest.len()).expect("a frame's records fit u32")
    }

    /// Every record, in order.
    #[inline]
    pub(crate) fn records(&self) -> impl Iterator<Item = &Placed> {
        self.first.iter().chain(&self.rest)
    }

    /// The key of one of these records.
    #[inline]
    pub(crate) fn key(&self, record: &Placed) -> &[u8] {
        &self.bytes[record.header().key_range(record.at())]
    }

    /// The value of one of these records.
    #[inline]
    pub(crate) fn value(&self, record: &Placed) -> &[u8] {
        &self.bytes[record.header().value_range(record.at())]
    }
}
