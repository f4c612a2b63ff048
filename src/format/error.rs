//! The one error every decoder returns: which structure did not decode, and what is wrong with it.
//!
//! One shape for all of them, so that callers handle them alike (recovery and `verify` turn them
//! into a damaged place with a reason; the scanner tells zeroed space from damage by the kind)
//! and a new structure needs no new error type. No byte offset is carried: every caller reports
//! the structure's own position (a frame's offset, a file's start), which is where a reader looks.

use std::fmt;

use super::FORMAT_VERSION;

/// A structure of the on-disk format (DESIGN.md draws each one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// The header at the start of a segment file.
    SegmentHeader,
    /// A frame in a segment.
    Frame,
    /// A record inside a frame.
    Record,
    /// The manifest file.
    Manifest,
    /// A hint file.
    Hint,
    /// The keyspace registry (a value inside a record).
    Registry,
}

impl Structure {
    /// The structure, as messages name it.
    fn what(self) -> &'static str {
        match self {
            Structure::SegmentHeader => "segment header",
            Structure::Frame => "frame",
            Structure::Record => "record",
            Structure::Manifest => "manifest",
            Structure::Hint => "hint file",
            Structure::Registry => "keyspace registry",
        }
    }

    /// The file the structure identifies, as messages name it.
    fn file(self) -> &'static str {
        match self {
            Structure::SegmentHeader => "segment",
            other => other.what(),
        }
    }
}

/// What is wrong with bytes that do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// Every byte of a would-be frame header is zero: nothing was ever written here (frames only).
    Zero,
    /// The input ends before the structure does (or before a length it announces).
    Truncated,
    /// The bytes do not start with the structure's magic: not a file of this kind, or not a frame.
    BadMagic,
    /// A well-formed structure of another format version: the one it declares.
    Version(u16),
    /// The checksum does not match.
    BadChecksum,
    /// Reserved bits or bytes are not zero (checked even under a matching checksum: such bytes
    /// come from a foreign or damaged file, not from this version's encoder).
    Reserved,
    /// A field holds a value the format does not allow, or fields disagree: the text says which.
    Invalid(&'static str),
}

/// Why bytes do not decode as the structure expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What was being decoded.
    pub structure: Structure,
    /// What is wrong with it.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// A `kind` error in a `structure`.
    pub const fn new(structure: Structure, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { structure, kind }
    }

    /// A field of `structure` holds an impossible value; `why` says which and why.
    pub const fn invalid(structure: Structure, why: &'static str) -> DecodeError {
        DecodeError::new(structure, DecodeErrorKind::Invalid(why))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, file) = (self.structure.what(), self.structure.file());
        match self.kind {
            DecodeErrorKind::Zero => f.write_str("zeroed space"),
            DecodeErrorKind::Truncated => write!(f, "{what} cut short"),
            DecodeErrorKind::BadMagic if self.structure == Structure::Frame => f.write_str("bad frame magic"),
            DecodeErrorKind::BadMagic => write!(f, "not a ferrocask {file} (bad magic)"),
            DecodeErrorKind::Version(v) => {
                write!(f, "{file} in format version {v}; this build reads version {FORMAT_VERSION}")
            }
            DecodeErrorKind::BadChecksum => write!(f, "{what} checksum mismatch"),
            DecodeErrorKind::Reserved => write!(f, "{what}'s reserved bits are not zero"),
            DecodeErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_structure_and_what_is_wrong() {
        let cases = [
            (Structure::Frame, DecodeErrorKind::BadChecksum, "frame checksum mismatch"),
            (Structure::Frame, DecodeErrorKind::Truncated, "frame cut short"),
            (Structure::SegmentHeader, DecodeErrorKind::BadMagic, "not a ferrocask segment (bad magic)"),
            (
                Structure::SegmentHeader,
                DecodeErrorKind::Version(1),
                "segment in format version 1; this build reads version 2",
            ),
            (Structure::Manifest, DecodeErrorKind::Reserved, "manifest's reserved bits are not zero"),
            (Structure::Hint, DecodeErrorKind::BadChecksum, "hint file checksum mismatch"),
        ];
        for (structure, kind, message) in cases {
            assert_eq!(DecodeError::new(structure, kind).to_string(), message);
        }
    }
}
