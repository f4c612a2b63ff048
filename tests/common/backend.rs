//! One test body, two file systems. [`both_backends!`](crate::both_backends) turns each body into a
//! `real` test (a temporary directory, opened with `Store::open_with` as users do) and a `sim`
//! test (`SimFs`, opened with `Store::open_on`), so an API-level promise is checked on the real
//! file system and on the simulated one that the crash and fault tests rely on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrocask::testing::{OpenMode, RealFs, SimFs, Vfs};
use ferrocask::{Options, Result, Store};

/// Where a test's stores live and how they are opened.
pub struct Backend {
    vfs: Arc<dyn Vfs>,
    root: PathBuf,
    simulated: bool,
    /// Removes the real backend's directory when the test ends.
    _temp: Option<tempfile::TempDir>,
}

impl Backend {
    /// The real file system, in a fresh temporary directory.
    pub fn real() -> Backend {
        let temp = tempfile::tempdir().expect("a temporary directory");
        Backend { vfs: Arc::new(RealFs), root: temp.path().to_path_buf(), simulated: false, _temp: Some(temp) }
    }

    /// A fresh simulated file system whose root directory `/test` already exists, durably.
    pub fn sim() -> Backend {
        let fs = SimFs::new();
        let root = PathBuf::from("/test");
        fs.create_dir_all_durable(&root);
        Backend { vfs: fs, root, simulated: true, _temp: None }
    }

    /// The directory the test owns (empty at first); a store may live in it or below it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `name` inside [`Backend::root`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Opens the store in `dir` with default options, as `Store::open` does.
    pub fn open(&self, dir: &Path) -> Result<Store> {
        self.open_with(dir, Options::default())
    }

    /// Opens the store in `dir` with `options`, as `Store::open_with` does.
    pub fn open_with(&self, dir: &Path, options: Options) -> Result<Store> {
        if self.simulated {
            Store::open_on(self.vfs.clone(), dir, options)
        } else {
            Store::open_with(dir, options)
        }
    }

    /// Opens a typed view of the store in `dir`, as `TypedStore::open_with` does.
    #[cfg(feature = "serde")]
    pub fn typed<K, V>(&self, dir: &Path, options: Options) -> Result<ferrocask::TypedStore<K, V>>
    where
        K: serde::Serialize + serde::de::DeserializeOwned,
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        if self.simulated {
            Ok(ferrocask::TypedStore::from_store(Arc::new(self.open_with(dir, options)?)))
        } else {
            ferrocask::TypedStore::open_with(dir, options)
        }
    }

    /// Creates the directory `dir` (and its parents).
    pub fn create_dir(&self, dir: &Path) {
        self.vfs.create_dir_all(dir).expect("create a directory");
    }

    /// Creates the file `path` holding `bytes`.
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let file = self.vfs.open(path, OpenMode::CreateNew).expect("create a file");
        file.write_at(bytes, 0).expect("write a file");
        file.sync_data().expect("sync a file");
    }

    /// The contents of the file `path`.
    pub fn read_file(&self, path: &Path) -> Vec<u8> {
        let file = self.vfs.open(path, OpenMode::ReadOnly).expect("open a file");
        let mut bytes = vec![0; usize::try_from(file.len().expect("a file's length")).expect("fits memory")];
        file.read_at(&mut bytes, 0).expect("read a file");
        bytes
    }
}

/// Turns each `fn name(backend) { body }` into a module `name` with two tests, `real` and
/// `sim`, that run the body on [`Backend::real`] and [`Backend::sim`]. Doc comments and other
/// attributes go on the module; the body sees the test file's items through `use super::*`.
#[macro_export]
macro_rules! both_backends {
    ($($(#[$attr:meta])* fn $name:ident($backend:ident) $body:block)*) => {
        $(
            $(#[$attr])*
            mod $name {
                #[allow(unused_imports, reason = "the body uses some of the test file's items")]
                use super::*;

                fn body($backend: &$crate::common::backend::Backend) $body

                #[test]
                fn real() {
                    body(&$crate::common::backend::Backend::real());
                }

                #[test]
                fn sim() {
                    body(&$crate::common::backend::Backend::sim());
                }
            }
        )*
    };
}
