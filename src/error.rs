//! The store's error type: one variant per failure a caller can act on.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used throughout ferrocask.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, with enough context to say what and where.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another `Store` (in this or another process) has the directory open.
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// An operating-system I/O error.
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The disk (or quota) is full. Nothing acknowledged is lost and the store stays readable;
    /// writes succeed again once space is freed.
    DiskFull {
        /// The file that could not grow.
        path: PathBuf,
    },
    /// Data that was made durable is damaged: a bad record before the end of the log, a bad
    /// segment header, or an unreadable manifest. Open with `Options::salvage` to skip it.
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The store (or one of its files) was written in a format version this build does not
    /// read. Nothing was changed; open it with a build that reads that version.
    UnsupportedVersion {
        /// The file that declares the version.
        path: PathBuf,
        /// The version the file declares.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// A sync or write failed earlier, so the store can no longer promise durability. Reads still
    /// work; writes fail until the store is dropped and reopened (which runs recovery).
    Poisoned {
        /// The failure that poisoned the store.
        cause: String,
    },
    /// A key is empty or longer than the limit.
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// A value is longer than the limit.
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// A batch does not fit in one segment (a batch commits as one frame).
    BatchTooLarge {
        /// The batch's encoded length.
        len: usize,
        /// The largest encoded batch accepted.
        max: usize,
    },
    /// An empty key was given.
    EmptyKey,
    /// `Options` hold values that cannot work together.
    InvalidOptions(String),
    /// [`Store::backup_to`](crate::Store::backup_to) was given a directory it cannot use: it
    /// must not exist, or be empty.
    BackupTarget {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A precondition of a batch given to [`Store::write`](crate::Store::write) did not hold;
    /// nothing of the batch was written.
    ConditionFailed {
        /// The key whose precondition failed, lossily printed.
        key: String,
    },
    /// A call that writes, or waits for the store's writer (a put, delete, batch, transaction,
    /// update, compare-and-swap, any of their `_async` twins, `sync`, `compact` or `backup_to`),
    /// was made from inside a transaction or update closure of the same store. The closure runs
    /// on the thread that leads the group it belongs to, so such a call would wait for that very
    /// group for ever; nothing was done. Write through the closure's [`Txn`](crate::Txn) instead.
    /// Reads of the store (`get`, `len`, iteration) are allowed there; they see the state before
    /// the group, without the writes the `Txn` sees.
    Reentrant,
    /// A prefix declared with [`Options::ordered_prefix`](crate::Options::ordered_prefix) is
    /// empty, or overlaps another declared one; the store was not opened.
    InvalidOrderedPrefix {
        /// The prefix refused.
        prefix: Vec<u8>,
        /// The declared prefix it overlaps (one is a prefix of the other); `None` if it is empty.
        overlaps: Option<Vec<u8>>,
    },
    /// An ordered read ([`Store::range_keys`](crate::Store::range_keys),
    /// [`Store::count_prefix`](crate::Store::count_prefix) and their `Txn` twins) was given a
    /// prefix the store does not keep in order: `range_keys` needs one that starts with a declared
    /// ordered prefix, `count_prefix` exactly a declared one.
    NotOrdered {
        /// The prefix given.
        prefix: Vec<u8>,
    },
    /// A write needed a new segment, but the store already holds the most segments it may hold
    /// at once ([`LIVE_SEGMENTS_MAX`](crate::format::LIVE_SEGMENTS_MAX), which an index entry's segment slot bounds).
    /// Nothing of the write was done, and the store stays readable and consistent; writes that
    /// fit the active segment still succeed. Compact the store
    /// ([`Store::compact`](crate::Store::compact)) to merge segments, or reopen it with a
    /// larger `Options::segment_bytes`.
    TooManySegments {
        /// Live segments (sealed and active).
        segments: usize,
        /// The most the store may hold.
        max: usize,
    },
    /// A key of the default keyspace starts with the bytes that spell keyspace keys
    /// ([`KEYSPACE_MARKER`](crate::format::KEYSPACE_MARKER)) and names no live keyspace: use a
    /// [`Keyspace`](crate::Keyspace) handle for keyspaces' keys.
    ReservedKey {
        /// The key given.
        key: Vec<u8>,
    },
    /// A keyspace name is empty or longer than
    /// [`KEYSPACE_NAME_BYTES_MAX`](crate::format::KEYSPACE_NAME_BYTES_MAX) bytes.
    InvalidKeyspaceName {
        /// The name's length in bytes.
        len: usize,
    },
    /// A keyspace was asked for as one kind but was created as the other; a name keeps its kind
    /// until it is dropped.
    KeyspaceKind {
        /// The keyspace.
        name: String,
        /// The kind it was created with.
        is: crate::format::KeyspaceKind,
        /// The kind asked for.
        wanted: crate::format::KeyspaceKind,
    },
    /// The keyspace a handle names was dropped (or never existed, for `drop_keyspace`).
    NoSuchKeyspace {
        /// The keyspace.
        name: String,
    },
    /// Creating a keyspace would exceed [`KEYSPACES_MAX`](crate::format::KEYSPACES_MAX), or the
    /// store has handed out every keyspace id.
    TooManyKeyspaces {
        /// The limit.
        max: usize,
    },
    /// A typed value or key could not be encoded or decoded.
    Codec {
        /// The key involved, lossily printed.
        key: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error: a refusal of the poison latch becomes [`Error::Poisoned`], "no space"
    /// becomes [`Error::DiskFull`]. Whether a failure poisons is the latch's decision
    /// (`io/checked.rs`), made by the operation that failed; this only reports it.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        if let Some(cause) = crate::io::refused_cause(&source) {
            return Error::Poisoned { cause: cause.to_string() };
        }
        let path = path.into();
        if is_disk_full(&source) {
            Error::DiskFull { path }
        } else {
            Error::Io { op, path, source }
        }
    }

    /// A copy for reporting one failure to several waiters (I/O errors are not `Clone`). Every
    /// variant is copied as itself, by an exhaustive match: a waiter of a group that failed
    /// learns the same error as the leader (a catch-all once turned, say, `TooManySegments`
    /// into `Poisoned` for every writer but one), and a new variant cannot be forgotten here.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => {
                Error::Io { op, path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            Error::Locked { dir } => Error::Locked { dir: dir.clone() },
            Error::DiskFull { path } => Error::DiskFull { path: path.clone() },
            Error::Corruption { path, offset, reason } => {
                Error::Corruption { path: path.clone(), offset: *offset, reason: reason.clone() }
            }
            Error::UnsupportedVersion { path, found, supported } => {
                Error::UnsupportedVersion { path: path.clone(), found: *found, supported: *supported }
            }
            Error::Poisoned { cause } => Error::Poisoned { cause: cause.clone() },
            Error::KeyTooLarge { len, max } => Error::KeyTooLarge { len: *len, max: *max },
            Error::ValueTooLarge { len, max } => Error::ValueTooLarge { len: *len, max: *max },
            Error::BatchTooLarge { len, max } => Error::BatchTooLarge { len: *len, max: *max },
            Error::EmptyKey => Error::EmptyKey,
            Error::InvalidOptions(reason) => Error::InvalidOptions(reason.clone()),
            Error::BackupTarget { path, reason } => Error::BackupTarget { path: path.clone(), reason: reason.clone() },
            Error::ConditionFailed { key } => Error::ConditionFailed { key: key.clone() },
            Error::Reentrant => Error::Reentrant,
            Error::InvalidOrderedPrefix { prefix, overlaps } => {
                Error::InvalidOrderedPrefix { prefix: prefix.clone(), overlaps: overlaps.clone() }
            }
            Error::NotOrdered { prefix } => Error::NotOrdered { prefix: prefix.clone() },
            Error::TooManySegments { segments, max } => Error::TooManySegments { segments: *segments, max: *max },
            Error::ReservedKey { key } => Error::ReservedKey { key: key.clone() },
            Error::InvalidKeyspaceName { len } => Error::InvalidKeyspaceName { len: *len },
            Error::KeyspaceKind { name, is, wanted } => {
                Error::KeyspaceKind { name: name.clone(), is: *is, wanted: *wanted }
            }
            Error::NoSuchKeyspace { name } => Error::NoSuchKeyspace { name: name.clone() },
            Error::TooManyKeyspaces { max } => Error::TooManyKeyspaces { max: *max },
            Error::Codec { key, reason } => Error::Codec { key: key.clone(), reason: reason.clone() },
        }
    }
}

/// ENOSPC or EDQUOT.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Locked { dir } => {
                write!(f, "store {} is already open (by this or another process)", dir.display())
            }
            Error::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::DiskFull { path } => write!(f, "disk full while writing {}", path.display()),
            Error::Corruption { path, offset, reason } => {
                write!(f, "corruption in {} at offset {offset}: {reason}", path.display())
            }
            Error::UnsupportedVersion { path, found, supported } => write!(
                f,
                "{} is in ferrocask format version {found}; this build reads version {supported} only",
                path.display()
            ),
            Error::Poisoned { cause } => {
                write!(f, "store refuses writes after an earlier failure ({cause}); reopen it to recover")
            }
            Error::KeyTooLarge { len, max } => write!(f, "key of {len} bytes exceeds the limit of {max}"),
            Error::ValueTooLarge { len, max } => write!(f, "value of {len} bytes exceeds the limit of {max}"),
            Error::BatchTooLarge { len, max } => write!(f, "batch of {len} bytes exceeds the limit of {max}"),
            Error::EmptyKey => f.write_str("keys must not be empty"),
            Error::InvalidOptions(why) => write!(f, "invalid options: {why}"),
            Error::BackupTarget { path, reason } => {
                write!(f, "cannot back up into {}: it {reason}", path.display())
            }
            Error::Reentrant => f.write_str(
                "a store call from inside a transaction closure would wait for the group it runs in: \
                 write through the closure's Txn, not the store",
            ),
            Error::InvalidOrderedPrefix { prefix, overlaps: None } => {
                write!(f, "ordered prefix {} is empty", prefix.escape_ascii())
            }
            Error::InvalidOrderedPrefix { prefix, overlaps: Some(other) } => write!(
                f,
                "ordered prefix {} overlaps ordered prefix {} (one starts with the other)",
                prefix.escape_ascii(),
                other.escape_ascii()
            ),
            Error::NotOrdered { prefix } => {
                write!(f, "prefix {} is not under a declared ordered prefix", prefix.escape_ascii())
            }
            Error::Codec { key, reason } => write!(f, "cannot encode or decode key {key}: {reason}"),
            Error::TooManySegments { segments, max } => write!(
                f,
                "the store holds {segments} segments, the most it may hold at once ({max}): compact it to \
                 merge segments, or reopen it with a larger segment_bytes"
            ),
            Error::ReservedKey { key } => write!(
                f,
                "key {} starts with the keyspace marker and names no live keyspace; use a keyspace handle",
                key.escape_ascii()
            ),
            Error::InvalidKeyspaceName { len } => {
                write!(
                    f,
                    "keyspace name of {len} bytes: names take 1..={} bytes",
                    crate::format::KEYSPACE_NAME_BYTES_MAX
                )
            }
            Error::KeyspaceKind { name, is, wanted } => {
                write!(f, "keyspace {name:?} is a {is} keyspace, asked for as {wanted}")
            }
            Error::NoSuchKeyspace { name } => write!(f, "no keyspace {name:?} (dropped, or never created)"),
            Error::TooManyKeyspaces { max } => write!(f, "a store holds at most {max} keyspaces"),
            Error::ConditionFailed { key } => write!(f, "the batch's precondition on key {key} does not hold"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::KeyspaceKind;

    /// What a group's other waiters are told equals what its leader is told: the same variant
    /// and the same message, for errors a whole group can fail with and for the others.
    #[test]
    fn a_duplicate_is_the_same_error() {
        let errors = [
            Error::Io { op: "sync", path: "seg".into(), source: io::Error::other("boom") },
            Error::DiskFull { path: "seg".into() },
            Error::Poisoned { cause: "sync failed".into() },
            Error::Reentrant,
            Error::TooManySegments { segments: 7, max: 6 },
            Error::KeyTooLarge { len: 9, max: 8 },
            Error::ReservedKey { key: b"\xffks\0".to_vec() },
            Error::KeyspaceKind { name: "a".into(), is: KeyspaceKind::Hash, wanted: KeyspaceKind::Ordered },
            Error::Codec { key: "k".into(), reason: "r".into() },
        ];
        for error in &errors {
            let copy = error.duplicate();
            assert_eq!(std::mem::discriminant(&copy), std::mem::discriminant(error), "{error:?}");
            assert_eq!(copy.to_string(), error.to_string());
        }
    }
}
