//! Typed access: keys and values of any `serde` type, encoded with bincode 2 (standard config).
//!
//! Only available with the `serde` feature (on by default).

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyspace::{Keyspace, KeyspaceId, KeyspaceKind};
use crate::options::Options;
use crate::store::Store;
use crate::value::Value;
use crate::{Error, Result};

/// A [`Store`] seen through typed keys and values.
///
/// Keys and values are encoded with bincode 2's serde support and its standard configuration,
/// so a key's bytes in the underlying store are `bincode::serde::encode_to_vec(key,
/// bincode::config::standard())`. Bytes that do not decode as the expected type (written by
/// another program, by the raw [`Store`], or by an older version of a struct) are reported as
/// [`Error::Codec`] naming the key, never a panic.
///
/// The typed view adds no state: any number of `TypedStore`s of different types may share one
/// `Store` (use key prefixes in your key type to keep them apart), and [`TypedStore::store`]
/// gives the raw store back.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use ferrocask::TypedStore;
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct User { name: String, admin: bool }
///
/// let users: TypedStore<u64, User> = TypedStore::open(dir.path())?;
/// users.put(&7, &User { name: "ada".into(), admin: true })?;
/// assert_eq!(users.get(&7)?, Some(User { name: "ada".into(), admin: true }));
/// assert_eq!(users.len(), 1);
/// # Ok::<(), ferrocask::Error>(())
/// ```
pub struct TypedStore<K, V> {
    store: Arc<Store>,
    /// The keyspace the view reads and writes (`None`: the default keyspace).
    space: Option<(Arc<str>, KeyspaceId, KeyspaceKind)>,
    // `fn() -> ...` keeps the view `Send + Sync` whatever `K` and `V` are: it holds none of them.
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for TypedStore<K, V> {
    fn clone(&self) -> Self {
        TypedStore { store: Arc::clone(&self.store), space: self.space.clone(), _types: PhantomData }
    }
}

impl<K, V> fmt::Debug for TypedStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedStore")
            .field("store", &self.store)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K, V> TypedStore<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the store in `dir` with default [`Options`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_store(Arc::new(Store::open(dir)?)))
    }

    /// Opens (or creates) the store in `dir` with `options`.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        Ok(Self::from_store(Arc::new(Store::open_with(dir, options)?)))
    }

    /// A typed view of an already open store.
    pub fn from_store(store: Arc<Store>) -> Self {
        TypedStore { store, space: None, _types: PhantomData }
    }

    /// A typed view of keyspace `name` of `store` (a hash keyspace, created durably on first
    /// use; an ordered one of that name is viewed as it is): each keyspace may hold its own key
    /// and value types, so views of different types share one store without meeting each
    /// other's values.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::sync::Arc;
    /// use ferrocask::{Store, TypedStore};
    /// let store = Arc::new(Store::open(dir.path())?);
    /// let ages: TypedStore<String, u32> = TypedStore::in_keyspace(store.clone(), "ages")?;
    /// let tags: TypedStore<u64, Vec<String>> = TypedStore::in_keyspace(store.clone(), "tags")?;
    /// ages.put(&"ada".to_string(), &36)?;
    /// tags.put(&7, &vec!["math".to_string()])?;
    /// assert_eq!(ages.iter().collect::<Result<Vec<_>, _>>()?, [("ada".to_string(), 36)]);
    /// assert_eq!((ages.len(), tags.len(), store.len()), (1, 1, 0));
    /// # Ok::<(), ferrocask::Error>(())
    /// ```
    pub fn in_keyspace(store: Arc<Store>, name: &str) -> Result<Self> {
        let ks = match store.keyspace(name) {
            Err(Error::KeyspaceKind { .. }) => store.ordered_keyspace(name)?,
            other => other?,
        };
        let space = Some((Arc::from(ks.name()), ks.id(), ks.kind()));
        drop(ks);
        Ok(TypedStore { store, space, _types: PhantomData })
    }

    /// The keyspace handle the view works through, if it views one.
    fn keyspace(&self) -> Option<Keyspace<'_>> {
        let (name, id, kind) = self.space.as_ref()?;
        Some(Keyspace::from_parts(&self.store, Arc::clone(name), *id, *kind))
    }

    /// The underlying raw store (for `sync`, `compact`, `stats`, `backup_to`, ...).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Sets `key` to `value`, durably (per the store's [`SyncMode`](crate::SyncMode)).
    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        let k = encode_key(key)?;
        let v = encode_value(&k, value)?;
        match self.keyspace() {
            Some(ks) => ks.put(&k, &v),
            None => self.store.put(&k, &v),
        }
    }

    /// Sets `key` to `value` until `ttl` has passed; see [`Store::put_with_ttl`].
    pub fn put_with_ttl(&self, key: &K, value: &V, ttl: Duration) -> Result<()> {
        let k = encode_key(key)?;
        let v = encode_value(&k, value)?;
        match self.keyspace() {
            Some(ks) => ks.put_with_ttl(&k, &v, ttl),
            None => self.store.put_with_ttl(&k, &v, ttl),
        }
    }

    /// Reads `key`'s value. A stored value that does not decode as `V` is [`Error::Codec`].
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = encode_key(key)?;
        let found = match self.keyspace() {
            Some(ks) => ks.get(&k)?,
            None => self.store.get(&k)?,
        };
        match found {
            Some(bytes) => decode("value", &k, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes `key`; deleting a missing key is `Ok`.
    pub fn delete(&self, key: &K) -> Result<()> {
        match self.keyspace() {
            Some(ks) => ks.delete(encode_key(key)?),
            None => self.store.delete(encode_key(key)?),
        }
    }

    /// Whether `key` has a (live) value. Does not decode the value.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        match self.keyspace() {
            Some(ks) => ks.contains_key(encode_key(key)?),
            None => self.store.contains_key(encode_key(key)?),
        }
    }

    /// Every live entry, in unspecified order, with the guarantees of [`Iter`](crate::Iter) (or, in a keyspace, of [`KeyspaceIter`](crate::KeyspaceIter): key order). Each item is
    /// decoded on the way out; an entry whose key or value does not decode is yielded as
    /// [`Error::Codec`] and iteration carries on with the next one.
    ///
    /// The typed view iterates over the *whole* store: keep a store (or a key prefix, with
    /// [`Store::scan_prefix`]) per type if several types share it.
    pub fn iter(&self) -> TypedIter<'_, K, V> {
        let inner: Box<dyn Iterator<Item = (Vec<u8>, Value)> + '_> = match self.keyspace() {
            Some(ks) => Box::new(ks.iter()),
            None => Box::new(self.store.iter()),
        };
        TypedIter { inner, _types: PhantomData }
    }

    /// Number of live keys in the underlying store.
    pub fn len(&self) -> usize {
        self.keyspace().map_or_else(|| self.store.len(), |ks| ks.len())
    }

    /// True if the underlying store holds no live key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Iterator over decoded `(key, value)` pairs, from [`TypedStore::iter`].
pub struct TypedIter<'a, K, V> {
    inner: Box<dyn Iterator<Item = (Vec<u8>, Value)> + 'a>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: DeserializeOwned, V: DeserializeOwned> Iterator for TypedIter<'_, K, V> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = self.inner.next()?;
        Some(decode::<K>("key", &key, &key).and_then(|k| Ok((k, decode::<V>("value", &key, &value)?))))
    }
}

impl<K, V> fmt::Debug for TypedIter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedIter").finish_non_exhaustive()
    }
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The standard configuration with a bound on what decoding may claim, so that a garbage length
/// prefix is an error rather than a huge allocation. The encoding is unchanged.
fn decode_config() -> impl bincode::config::Config {
    config().with_limit::<{ crate::format::VALUE_BYTES_MAX + crate::format::KEY_BYTES_MAX }>()
}

fn encode_key<K: Serialize>(key: &K) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(key, config())
        .map_err(|e| Error::Codec { key: "<key that cannot be encoded>".into(), reason: e.to_string() })
}

fn encode_value<V: Serialize>(key: &[u8], value: &V) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::Codec { key: printable(key), reason: format!("encoding the value: {e}") })
}

/// Decodes all of `bytes` as a `T`; trailing bytes are an error too (they mean the bytes were
/// written as some other type).
fn decode<T: DeserializeOwned>(what: &str, key: &[u8], bytes: &[u8]) -> Result<T> {
    match bincode::serde::decode_from_slice::<T, _>(bytes, decode_config()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(Error::Codec {
            key: printable(key),
            reason: format!("{what} has {} bytes left over after decoding {used}", bytes.len() - used),
        }),
        Err(e) => Err(Error::Codec { key: printable(key), reason: format!("decoding the {what}: {e}") }),
    }
}

/// The raw key bytes, printable: ASCII as is, other bytes escaped (`\x05`).
fn printable(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}
