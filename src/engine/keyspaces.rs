//! The keyspace registry of an open store (DESIGN.md, "Keyspaces"): the names, ids and kinds
//! decoded from the registry record, and the checks the engine makes with them. Creating and
//! dropping a keyspace (which write the registry) are in the public `keyspace.rs`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::format::{decode_registry, keyspace_prefix, registry_key, Registry, RegistryEntry, REGISTRY_ID};
use crate::index::Index;
use crate::{Error, Result};

/// The registry as last committed, and the lock that serialises its changes.
pub(crate) struct Keyspaces {
    registry: RwLock<Registry>,
    /// Held by a create or drop from reading the registry to publishing its new value, so two
    /// changes never both start from the same registry.
    pub(crate) change: Mutex<()>,
    /// Per registered keyspace, the flag its handles read before each call: set when it is
    /// dropped, so a handle learns of a drop with one load of a line nothing else writes.
    dropped_flags: Mutex<HashMap<u32, Arc<AtomicBool>>>,
    /// Dropped keyspaces whose index entries are still to be removed (by the maintenance thread,
    /// or by the dropping call when the store runs none).
    pub(crate) to_forget: Mutex<Vec<u32>>,
}

impl Keyspaces {
    /// Reads the registry from the index (a store without one has no keyspace) and forgets the
    /// entries of dropped keyspaces that recovery loaded from the log: their records stay on disk
    /// until compaction, but no id is ever handed out twice, so the id alone marks them dead.
    pub(crate) fn load(index: &Index, dir: &std::path::Path) -> Result<Keyspaces> {
        let value = index.with(&registry_key(), |found| found.and_then(|f| f.value()).map(|v| v.into_owned()));
        let Some(bytes) = value else {
            // No registry: keys under the marker, if any, are the default keyspace's own
            // (written before keyspaces existed), not a dropped keyspace's.
            return Ok(Keyspaces::new(Registry::default()));
        };
        let registry = decode_registry(&bytes).map_err(|e| Error::Corruption {
            path: dir.to_path_buf(),
            offset: 0,
            reason: format!("keyspace registry: {e}"),
        })?;
        for id in index.space_ids() {
            let handed_out = id != REGISTRY_ID && id < registry.next_id;
            if handed_out && !registry.entries.iter().any(|e| e.id == id) {
                index.forget_prefix(&keyspace_prefix(id));
            }
        }
        index.set_live_spaces(registry.entries.iter().map(|e| e.id).collect());
        Ok(Keyspaces::new(registry))
    }

    fn new(registry: Registry) -> Keyspaces {
        Keyspaces {
            registry: RwLock::new(registry),
            change: Mutex::new(()),
            dropped_flags: Mutex::new(HashMap::new()),
            to_forget: Mutex::new(Vec::new()),
        }
    }

    /// The registry as last committed.
    pub(crate) fn snapshot(&self) -> Registry {
        self.registry.read().clone()
    }

    /// Installs a registry just committed (under `change`), and its ids in the index's check.
    pub(crate) fn install(&self, index: &Index, registry: Registry) {
        index.set_live_spaces(registry.entries.iter().map(|e| e.id).collect());
        *self.registry.write() = registry;
    }

    /// The flag that says keyspace `id` was dropped (shared by all its handles).
    pub(crate) fn dropped_flag(&self, id: u32) -> Arc<AtomicBool> {
        Arc::clone(self.dropped_flags.lock().entry(id).or_default())
    }

    /// Marks keyspace `id` dropped for its handles, and queues its entries to be forgotten.
    pub(crate) fn dropped(&self, id: u32) {
        if let Some(flag) = self.dropped_flags.lock().remove(&id) {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
        self.to_forget.lock().push(id);
    }

    /// Removes the index entries of the dropped keyspaces queued so far: O(their keys). Their
    /// records become dead bytes of their segments, which compaction then reclaims.
    pub(crate) fn forget_dropped(&self, index: &Index) {
        let ids = std::mem::take(&mut *self.to_forget.lock());
        for id in ids {
            index.forget_prefix(&keyspace_prefix(id));
        }
    }

    /// The keyspace named `name`, if registered.
    pub(crate) fn find(&self, name: &str) -> Option<RegistryEntry> {
        self.registry.read().entries.iter().find(|e| e.name == name).cloned()
    }
}
