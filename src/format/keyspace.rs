//! Keyspaces on disk: how a keyspace's keys and the registry of names are spelled inside ordinary
//! records (DESIGN.md, "Keyspaces"). No new record kind: a keyspace's record is a put or delete
//! whose key starts with [`KEYSPACE_MARKER`] and the keyspace's id, so segments, frames, hint
//! files and compaction carry keyspaces unchanged, and a batch spanning keyspaces is one frame.
//!
//! ```text
//! a keyspace's key, as stored in the record's key field
//! offset width field
//!      0     4 KEYSPACE_MARKER: ff 6b 73 00 ("\xffks\0")
//!      4     4 keyspace id, big-endian (so one keyspace's keys are contiguous in key order);
//!              id 0 is the registry, ids 1.. are keyspaces, never reused
//!      8     . the user's key, 1..=KEY_BYTES_MAX - KEYSPACE_KEY_OVERHEAD_BYTES bytes
//!
//! the registry: one record, key = KEYSPACE_MARKER ++ 00 00 00 00, value =
//! offset width field
//!      0     1 REGISTRY_VERSION (1)
//!      1     4 next id to hand out (little-endian, above every id ever handed out)
//!      5     4 entry count (little-endian, <= KEYSPACES_MAX)
//!      9     . entries, in ascending id order:
//!                1 kind: 1 = hash, 2 = ordered
//!                4 id (little-endian, 1.. below next id)
//!                1 name length (1..=KEYSPACE_NAME_BYTES_MAX)
//!                . name, UTF-8
//! ```
//!
//! A name is dropped by rewriting the registry without it; its id is never handed out again, so
//! the records left under a dropped id are recognised as dead by their id alone.

use std::fmt;

use super::{get_u32, DecodeError, DecodeErrorKind, Structure, KEY_BYTES_MAX};

/// The bytes every keyspace key (and the registry's key) starts with. Not valid UTF-8, so no text
/// key of the default keyspace starts with it; the default keyspace refuses keys that do.
pub const KEYSPACE_MARKER: [u8; 4] = *b"\xffks\x00";
/// Bytes of the keyspace id after the marker.
pub const KEYSPACE_ID_BYTES: usize = 4;
/// What a keyspace adds to each of its keys: the marker and the id.
pub const KEYSPACE_KEY_OVERHEAD_BYTES: usize = KEYSPACE_MARKER.len() + KEYSPACE_ID_BYTES;
/// Longest key a keyspace accepts, in bytes (its stored key has the overhead in front).
pub const KEYSPACE_USER_KEY_BYTES_MAX: usize = KEY_BYTES_MAX - KEYSPACE_KEY_OVERHEAD_BYTES;
/// The id the registry's own key carries.
pub const REGISTRY_ID: u32 = 0;
/// Longest keyspace name, in bytes of UTF-8.
pub const KEYSPACE_NAME_BYTES_MAX: usize = 255;
/// Most keyspaces a store holds at once (the registry is rewritten whole on each change).
pub const KEYSPACES_MAX: usize = 4096;
/// The registry value's layout version.
pub const REGISTRY_VERSION: u8 = 1;
/// The registry value's fixed part: version, next id, entry count.
pub const REGISTRY_HEADER_BYTES: usize = 1 + 4 + 4;
/// An entry's fixed part: kind, id, name length.
const ENTRY_FIXED_BYTES: usize = 1 + 4 + 1;

const _: () = assert!(KEYSPACE_NAME_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(KEYSPACE_USER_KEY_BYTES_MAX > 0);
const _: () = assert!(
    REGISTRY_HEADER_BYTES + KEYSPACES_MAX * (ENTRY_FIXED_BYTES + KEYSPACE_NAME_BYTES_MAX) <= super::VALUE_BYTES_MAX
);

/// How a keyspace keeps its keys in RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyspaceKind {
    /// Point reads and writes, iteration in unspecified order.
    Hash,
    /// Also ranges in key order, first and last.
    Ordered,
}

impl KeyspaceKind {
    fn to_byte(self) -> u8 {
        match self {
            KeyspaceKind::Hash => 1,
            KeyspaceKind::Ordered => 2,
        }
    }

    fn from_byte(b: u8) -> Option<KeyspaceKind> {
        match b {
            1 => Some(KeyspaceKind::Hash),
            2 => Some(KeyspaceKind::Ordered),
            _ => None,
        }
    }
}

impl fmt::Display for KeyspaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyspaceKind::Hash => "hash",
            KeyspaceKind::Ordered => "ordered",
        })
    }
}

/// One registered keyspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// Its name.
    pub name: String,
    /// Its id (1..).
    pub id: u32,
    /// Its kind, fixed at creation.
    pub kind: KeyspaceKind,
}

/// The registry of keyspaces: the value of the registry key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    /// The id the next created keyspace gets; above every id ever handed out.
    pub next_id: u32,
    /// The keyspaces, in ascending id order.
    pub entries: Vec<RegistryEntry>,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry { next_id: REGISTRY_ID + 1, entries: Vec::new() }
    }
}

/// A keyspace's id: what a `Batch` or a `Txn` needs to address its keys (it is
/// `Copy` and `'static`, so a transaction closure can take it). Get it with `Keyspace::id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyspaceId(u32);

impl KeyspaceId {
    pub(crate) fn new(id: u32) -> KeyspaceId {
        KeyspaceId(id)
    }

    /// The id's number (1..), as the registry holds it.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The stored key of `key` in this keyspace.
    pub(crate) fn key(self, key: &[u8]) -> Vec<u8> {
        let mut stored = Vec::with_capacity(KEYSPACE_KEY_OVERHEAD_BYTES + key.len());
        stored.extend_from_slice(&keyspace_prefix(self.0));
        stored.extend_from_slice(key);
        stored
    }

    pub(crate) fn prefix(self) -> [u8; KEYSPACE_KEY_OVERHEAD_BYTES] {
        keyspace_prefix(self.0)
    }
}

/// The stored key prefix of keyspace `id`: the marker, then the id big-endian.
pub fn keyspace_prefix(id: u32) -> [u8; KEYSPACE_KEY_OVERHEAD_BYTES] {
    let mut p = [0u8; KEYSPACE_KEY_OVERHEAD_BYTES];
    p[..KEYSPACE_MARKER.len()].copy_from_slice(&KEYSPACE_MARKER);
    p[KEYSPACE_MARKER.len()..].copy_from_slice(&id.to_be_bytes());
    p
}

/// The registry's own key.
pub fn registry_key() -> [u8; KEYSPACE_KEY_OVERHEAD_BYTES] {
    keyspace_prefix(REGISTRY_ID)
}

/// The keyspace id a stored key carries, if it is a keyspace (or registry) key.
pub fn keyspace_of(key: &[u8]) -> Option<u32> {
    let rest = key.strip_prefix(&KEYSPACE_MARKER[..])?;
    let id: [u8; KEYSPACE_ID_BYTES] = rest.get(..KEYSPACE_ID_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(id))
}

/// Whether a name may name a keyspace: 1..=[`KEYSPACE_NAME_BYTES_MAX`] bytes.
pub fn name_is_valid(name: &str) -> bool {
    (1..=KEYSPACE_NAME_BYTES_MAX).contains(&name.len())
}

/// The registry value for `registry`; the caller keeps it within the limits.
pub fn encode_registry(registry: &Registry) -> Vec<u8> {
    assert!(registry.entries.len() <= KEYSPACES_MAX, "at most {KEYSPACES_MAX} keyspaces");
    let mut out = Vec::with_capacity(REGISTRY_HEADER_BYTES + registry.entries.len() * 32);
    out.push(REGISTRY_VERSION);
    out.extend_from_slice(&registry.next_id.to_le_bytes());
    out.extend_from_slice(&(registry.entries.len() as u32).to_le_bytes());
    for e in &registry.entries {
        assert!(name_is_valid(&e.name), "keyspace names are checked before they are registered");
        out.push(e.kind.to_byte());
        out.extend_from_slice(&e.id.to_le_bytes());
        out.push(e.name.len() as u8);
        out.extend_from_slice(e.name.as_bytes());
    }
    out
}

/// Decodes a registry value; every length is bounded before it is used, every rule of the
/// drawing above checked (ids ascending and below the next id, names valid UTF-8 and distinct).
pub fn decode_registry(buf: &[u8]) -> Result<Registry, DecodeError> {
    let err = |kind| DecodeError::new(Structure::Registry, kind);
    let invalid = |why| DecodeError::invalid(Structure::Registry, why);
    if buf.len() < REGISTRY_HEADER_BYTES {
        return Err(err(DecodeErrorKind::Truncated));
    }
    if buf[0] != REGISTRY_VERSION {
        return Err(invalid("unknown registry version"));
    }
    let next_id = get_u32(buf, 1);
    let count = get_u32(buf, 5) as usize;
    if count > KEYSPACES_MAX {
        return Err(invalid("more keyspaces than KEYSPACES_MAX"));
    }
    let mut entries: Vec<RegistryEntry> = Vec::with_capacity(count);
    let mut at = REGISTRY_HEADER_BYTES;
    for _ in 0..count {
        let fixed = buf.get(at..at + ENTRY_FIXED_BYTES).ok_or(err(DecodeErrorKind::Truncated))?;
        let kind = KeyspaceKind::from_byte(fixed[0]).ok_or(invalid("unknown keyspace kind"))?;
        let id = get_u32(fixed, 1);
        let name_len = usize::from(fixed[5]);
        at += ENTRY_FIXED_BYTES;
        let name = buf.get(at..at + name_len).ok_or(err(DecodeErrorKind::Truncated))?;
        at += name_len;
        let name = std::str::from_utf8(name).map_err(|_| invalid("keyspace name is not UTF-8"))?;
        if name.is_empty() {
            return Err(invalid("empty keyspace name"));
        }
        if id == REGISTRY_ID || id >= next_id {
            return Err(invalid("keyspace id outside 1..next id"));
        }
        if entries.last().is_some_and(|last| last.id >= id) {
            return Err(invalid("keyspace ids not ascending"));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(invalid("keyspace name registered twice"));
        }
        entries.push(RegistryEntry { name: name.to_owned(), id, kind });
    }
    if at != buf.len() {
        return Err(invalid("bytes after the last registry entry"));
    }
    Ok(Registry { next_id, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registry {
        Registry {
            next_id: 5,
            entries: vec![
                RegistryEntry { name: "users".into(), id: 1, kind: KeyspaceKind::Hash },
                RegistryEntry { name: "messages".into(), id: 4, kind: KeyspaceKind::Ordered },
            ],
        }
    }

    #[test]
    fn a_registry_round_trips_and_is_laid_out_as_drawn() {
        let bytes = encode_registry(&sample());
        assert_eq!(bytes[..REGISTRY_HEADER_BYTES], [1, 5, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(bytes[REGISTRY_HEADER_BYTES..REGISTRY_HEADER_BYTES + 6], [1, 1, 0, 0, 0, 5]);
        assert_eq!(decode_registry(&bytes).unwrap(), sample());
        assert_eq!(decode_registry(&encode_registry(&Registry::default())).unwrap(), Registry::default());
    }

    #[test]
    fn every_truncation_of_a_registry_is_an_error() {
        let bytes = encode_registry(&sample());
        for len in 0..bytes.len() {
            assert!(decode_registry(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn hostile_registries_are_typed_errors() {
        let good = encode_registry(&sample());
        let with = |at: usize, b: u8| {
            let mut v = good.clone();
            v[at] = b;
            v
        };
        let kind = |bytes: &[u8]| decode_registry(bytes).unwrap_err().kind;
        assert!(matches!(kind(&with(0, 9)), DecodeErrorKind::Invalid(_)), "unknown version");
        assert!(matches!(kind(&with(8, 0x10)), DecodeErrorKind::Invalid(_)), "huge count");
        assert!(matches!(kind(&with(9, 7)), DecodeErrorKind::Invalid(_)), "unknown kind");
        assert!(matches!(kind(&with(10, 0)), DecodeErrorKind::Invalid(_)), "id 0 is the registry's");
        assert!(matches!(kind(&with(1, 2)), DecodeErrorKind::Invalid(_)), "id at or above next id");
        assert!(matches!(kind(&with(15, 0xff)), DecodeErrorKind::Invalid(_)), "name not UTF-8");
        assert!(matches!(kind(&with(14, 0)), DecodeErrorKind::Invalid(_)), "empty name, then trailing bytes");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(kind(&trailing), DecodeErrorKind::Invalid(_)));
        let twice = Registry {
            next_id: 3,
            entries: vec![
                RegistryEntry { name: "a".into(), id: 1, kind: KeyspaceKind::Hash },
                RegistryEntry { name: "a".into(), id: 2, kind: KeyspaceKind::Hash },
            ],
        };
        assert!(matches!(kind(&encode_registry(&twice)), DecodeErrorKind::Invalid(_)), "a name twice");
        let mut descending = twice.clone();
        descending.entries[1].name = "b".into();
        descending.entries.swap(0, 1);
        assert!(matches!(kind(&encode_registry(&descending)), DecodeErrorKind::Invalid(_)), "ids descending");
    }

    #[test]
    fn keyspace_keys_name_their_id_and_sort_together() {
        let k = keyspace_prefix(258);
        assert_eq!(k, [0xff, b'k', b's', 0, 0, 0, 1, 2]);
        assert_eq!(keyspace_of(&k), Some(258));
        assert_eq!(keyspace_of(b"\xffks\x00\x00\x00"), None, "too short for an id");
        assert_eq!(keyspace_of(b"user:1"), None);
        assert!(keyspace_prefix(1) < keyspace_prefix(2) && keyspace_prefix(255) < keyspace_prefix(256));
        assert!(std::str::from_utf8(&KEYSPACE_MARKER).is_err(), "no text key starts with the marker");
    }
}
