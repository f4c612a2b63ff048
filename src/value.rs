//! Values handed back to callers, and batches handed in.

use std::fmt;
use std::ops::Deref;

use crate::log::Expiry;

/// A value read from the store: an owned copy of the bytes, so it outlives any compaction.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let store = ferrocask::Store::open(dir.path())?;
/// store.put(b"k", b"v")?;
/// let value = store.get(b"k")?.unwrap();
/// assert_eq!(&*value, b"v");
/// assert_eq!(value.into_vec(), b"v".to_vec());
/// # Ok::<(), ferrocask::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(Vec<u8>);

impl Value {
    pub(crate) fn new(bytes: Vec<u8>) -> Value {
        Value(bytes)
    }

    /// The bytes, without copying.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value(bytes)
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Value {
        Value(bytes.to_vec())
    }
}

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) => write!(f, "Value({s:?})"),
            Err(_) => write!(f, "Value({:?})", self.0),
        }
    }
}

/// One operation of a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8>, expiry: Expiry },
    Delete { key: Vec<u8> },
}

/// Puts and deletes applied atomically by [`Store::write`](crate::Store::write): after any crash,
/// either all of them are visible or none, and a reader that sees one of them sees all. Later
/// operations on the same key win. With preconditions ([`Batch::require`]) it is a conditional
/// batch: applied only if they all hold, atomically with the check
/// ([`Store::write_if`](crate::Store::write_if)).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ferrocask::{Batch, Store};
/// let store = Store::open(dir.path())?;
/// let mut batch = Batch::new();
/// batch.put(b"from", b"90").put(b"to", b"110").delete(b"pending");
/// store.write(batch)?;
/// assert_eq!(store.get(b"to")?.as_deref(), Some(&b"110"[..]));
/// # Ok::<(), ferrocask::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) ops: Vec<BatchOp>,
    pub(crate) conditions: Vec<(Vec<u8>, Condition)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a put (the key will have no expiry, as with [`Store::put`](crate::Store::put)).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Batch {
        self.put_with_expiry(key, value, Expiry::Never)
    }

    /// Adds a put whose key expires as `expiry` says ([`Expiry::Keep`] keeps the key's current
    /// expiry, read atomically with the write).
    pub fn put_with_expiry(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, expiry: Expiry) -> &mut Batch {
        let op = BatchOp::Put { key: key.as_ref().to_vec(), value: value.as_ref().to_vec(), expiry };
        self.ops.push(op);
        self
    }

    /// Adds a precondition: the batch is applied only if `key` satisfies `condition` at the
    /// moment it is applied.
    pub fn require(&mut self, key: impl AsRef<[u8]>, condition: Condition) -> &mut Batch {
        self.conditions.push((key.as_ref().to_vec(), condition));
        self
    }

    /// Adds a delete (a missing key is fine).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Batch {
        self.ops.push(BatchOp::Delete { key: key.as_ref().to_vec() });
        self
    }

    /// Whether the group-commit leader must evaluate the batch (as a transaction): it has
    /// preconditions, or a put that keeps the key's current expiry.
    pub(crate) fn needs_leader(&self) -> bool {
        !self.conditions.is_empty() || self.ops.iter().any(|op| matches!(op, BatchOp::Put { expiry: Expiry::Keep, .. }))
    }

    /// Number of operations (preconditions not counted).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A precondition of a conditional batch ([`Batch::require`]), checked atomically with its writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// The key has no value.
    Absent,
    /// The key has a value.
    Present,
    /// The key holds exactly these bytes.
    Equals(Vec<u8>),
}

impl Condition {
    pub(crate) fn holds(&self, current: Option<&[u8]>) -> bool {
        match self {
            Condition::Absent => current.is_none(),
            Condition::Present => current.is_some(),
            Condition::Equals(expected) => current == Some(expected.as_slice()),
        }
    }
}
