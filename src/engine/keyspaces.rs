//! The keyspace registry of an open store (DESIGN.md, "Keyspaces"): the names, ids and kinds
//! decoded from the registry record, and the checks the engine makes with them. Creating and
//! dropping a keyspace (which write the registry) are in the public `keyspace.rs`.

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
}

impl Keyspaces {
    /// Reads the registry from the index (a store without one has no keyspace) and forgets the
    /// entries of dropped keyspaces that recovery loaded from the log: their records stay on disk
    /// until compaction, but no id is ever handed out twice, so the id alone marks them dead.
    pub(crate) fn load(index: &Index, dir: &std::path::Path) -> Result<Keyspaces> {
        let value = index.with(&registry_key(), |found| found.and_then(|f| f.value()).map(|v| v.into_owned()));
        let registry = match value {
            None => Registry::default(),
            Some(bytes) => decode_registry(&bytes).map_err(|e| Error::Corruption {
                path: dir.to_path_buf(),
                offset: 0,
                reason: format!("keyspace registry: {e}"),
            })?,
        };
        for id in index.space_ids() {
            if id != REGISTRY_ID && !registry.entries.iter().any(|e| e.id == id) {
                index.forget_prefix(&keyspace_prefix(id));
            }
        }
        index.set_live_spaces(registry.entries.iter().map(|e| e.id).collect());
        Ok(Keyspaces { registry: RwLock::new(registry), change: Mutex::new(()) })
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

    /// The keyspace named `name`, if registered.
    pub(crate) fn find(&self, name: &str) -> Option<RegistryEntry> {
        self.registry.read().entries.iter().find(|e| e.name == name).cloned()
    }
}
