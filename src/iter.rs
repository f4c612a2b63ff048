//! Iteration over live keys, one index stripe at a time.

use crate::engine::Engine;
use crate::value::Value;

/// Iterator over `(key, value)` pairs, from [`Store::iter`](crate::Store::iter) or
/// [`Store::scan_prefix`](crate::Store::scan_prefix).
///
/// Order is unspecified (the index is a hash table). The iterator yields every key that was live
/// when it started and was not deleted since, exactly once; keys written after it started may or
/// may not appear. It holds no lock between calls to `next`: it copies one stripe's keys at a
/// time under that stripe's read lock, so writers are never held up for longer than that copy.
pub struct Iter<'a> {
    engine: &'a Engine,
    prefix: Option<Vec<u8>>,
    stripe: usize,
    batch: std::vec::IntoIter<Vec<u8>>,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(engine: &'a Engine, prefix: Option<Vec<u8>>) -> Iter<'a> {
        Iter { engine, prefix, stripe: 0, batch: Vec::new().into_iter() }
    }
}

impl Iter<'_> {
    /// The next key of the snapshot that is still live, with what `read` makes of it (`None`:
    /// no longer live).
    fn next_live<T>(&mut self, read: impl Fn(&Engine, &[u8]) -> Option<T>) -> Option<(Vec<u8>, T)> {
        let index = &self.engine.index;
        loop {
            for key in self.batch.by_ref() {
                if self.prefix.as_deref().is_some_and(|p| !key.starts_with(p)) {
                    continue;
                }
                // The keyspaces' keys are not the default keyspace's (see `keyspace.rs`).
                if index.in_a_keyspace(&key) {
                    continue;
                }
                // Read the key's current state: a key deleted since the snapshot is skipped, a key
                // overwritten since is shown with its newer value.
                if let Some(found) = read(self.engine, &key) {
                    return Some((key, found));
                }
            }
            if self.stripe >= index.stripe_count() {
                return None;
            }
            self.batch = index.stripe_snapshot(self.stripe).into_iter();
            self.stripe += 1;
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = (Vec<u8>, Value);

    fn next(&mut self) -> Option<Self::Item> {
        // The key came from the index: read it without the key check, which refuses keys under
        // the keyspace marker (a store from before keyspaces may hold such keys of its own).
        self.next_live(|engine, key| engine.read_stored(key).map(|(value, _)| value))
    }
}

/// Iterator over keys, from [`Store::keys`](crate::Store::keys). Same guarantees as [`Iter`].
pub struct Keys<'a>(pub(crate) Iter<'a>);

impl Iterator for Keys<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        // A key's liveness is in its record's header: the value is not read.
        self.0.next_live(|engine, key| engine.live_header_stored(key)).map(|(key, _)| key)
    }
}
