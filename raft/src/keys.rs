//! Key layout of the two stores of a node. DESIGN.md ("Replication on openraft") draws it.
//!
//! Log store: `log/` + the entry's index as 8 big-endian bytes (fixed width, so a range read is a
//! run of point gets over consecutive indexes), and three single keys under `raft/`.
//! State-machine store: `kv/` + the user's key, and two single keys under `sm/` that are written
//! in the same batch as the data they describe.

/// Prefix of log entries.
pub(crate) const LOG_PREFIX: &[u8] = b"log/";
/// The last saved vote.
pub(crate) const VOTE: &[u8] = b"raft/vote";
/// The last saved committed log id.
pub(crate) const COMMITTED: &[u8] = b"raft/committed";
/// The last purged log id (entries up to it are gone).
pub(crate) const PURGED: &[u8] = b"raft/purged";

/// Prefix of the replicated key-value data.
pub(crate) const DATA_PREFIX: &[u8] = b"kv/";
/// The last applied log id.
pub(crate) const APPLIED: &[u8] = b"sm/applied";
/// The last applied membership.
pub(crate) const MEMBERSHIP: &[u8] = b"sm/membership";

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

/// The state-machine key of the user's `key`.
pub(crate) fn data_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    out.extend_from_slice(DATA_PREFIX);
    out.extend_from_slice(key);
    out
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
}
