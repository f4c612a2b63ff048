//! Key layout of the two stores of a node. DESIGN.md ("Replication on openraft") draws it.
//!
//! Log store: `log/` + the entry's index as 8 big-endian bytes (fixed width, so a range read is a
//! run of point gets over consecutive indexes), and two single keys under `raft/`.
//!
//! Data store (the state machine's): the application's keys as it wrote them, unprefixed, and at
//! most [`RESERVED_KEYS_MAX`] keys of the state machine's own under [`RESERVED_PREFIX`], each
//! written in the same transaction as the data it describes.

use ferrocask::{Store, Txn};

/// Prefix of log entries.
pub(crate) const LOG_PREFIX: &[u8] = b"log/";
/// The last saved vote.
pub(crate) const VOTE: &[u8] = b"raft/vote";
/// The last purged log id (entries up to it are gone).
pub(crate) const PURGED: &[u8] = b"raft/purged";

/// Prefix of the state machine's own keys in the data store. The application must hide keys
/// with this prefix from listings and counts and refuse commands that name them. It starts with
/// bytes no text key starts with (`0xff 0xfe 0x00`), so no client of a text protocol names one
/// by accident.
pub const RESERVED_PREFIX: &[u8] = b"\xff\xfe\x00ferrocask-raft/";
/// The applied position (`state_machine::Position`): the last wholly applied log id, how far
/// into the next entry, and the state machine's clock.
pub(crate) const POSITION: &[u8] = b"\xff\xfe\x00ferrocask-raft/position";
/// The last applied membership.
pub(crate) const MEMBERSHIP: &[u8] = b"\xff\xfe\x00ferrocask-raft/membership";
/// Present only while a snapshot install replaces the store's contents: the snapshot's id.
pub(crate) const INSTALLING: &[u8] = b"\xff\xfe\x00ferrocask-raft/installing";

/// Every reserved key, for counting.
const RESERVED_KEYS: [&[u8]; 3] = [POSITION, MEMBERSHIP, INSTALLING];
/// How many keys under [`RESERVED_PREFIX`] the data store holds at most.
pub const RESERVED_KEYS_MAX: usize = RESERVED_KEYS.len();

const fn starts_with(key: &[u8], prefix: &[u8]) -> bool {
    if key.len() <= prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if key[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}
const _: () = assert!(
    starts_with(POSITION, RESERVED_PREFIX)
        && starts_with(MEMBERSHIP, RESERVED_PREFIX)
        && starts_with(INSTALLING, RESERVED_PREFIX),
    "every key of the state machine is under the reserved prefix"
);

/// How many of the state machine's own keys `store` holds now: subtract it from
/// [`Store::len`] to count the application's keys (they never expire, so the count is exact).
pub fn reserved_key_count(store: &Store) -> usize {
    RESERVED_KEYS.iter().filter(|key| store.contains_key(key).unwrap_or(false)).count()
}

/// [`reserved_key_count`] as a transaction sees it: subtract it from [`Txn::len`].
pub fn reserved_key_count_in(txn: &Txn<'_>) -> usize {
    RESERVED_KEYS.iter().filter(|key| txn.contains_key(key)).count()
}

/// Whether `key` is one of the state machine's own.
pub fn is_reserved(key: &[u8]) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// The key of the log entry at `index`.
pub(crate) fn log_key(index: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(LOG_PREFIX);
    key[4..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The index of a log key, or `None` if `key` is not one.
pub(crate) fn log_index(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(LOG_PREFIX)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_round_trip_and_sort_by_index() {
        for index in [0, 1, 255, 256, u64::MAX] {
            assert_eq!(log_index(&log_key(index)), Some(index));
        }
        assert!(log_key(255) < log_key(256));
        assert_eq!(log_index(b"log/short"), None);
        assert_eq!(log_index(VOTE), None);
    }

    #[test]
    fn reserved_keys_are_counted_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put(b"user", b"1").unwrap();
        store.put(POSITION, b"p").unwrap();
        assert_eq!(reserved_key_count(&store), 1);
        assert!(is_reserved(MEMBERSHIP) && !is_reserved(b"user"));
    }
}
