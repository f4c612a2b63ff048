//! openraft's own storage conformance suite, run on ferrocask: every case on fresh directories.

use ferrocask_raft::{open_storage, LogStore, StateMachine, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

/// Opens a node's storage in a fresh temporary directory; the directory lives as long as the case.
struct FreshDirectories;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for FreshDirectories {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, sm) = open_storage(dir.path())?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(FreshDirectories).expect("every case of openraft's storage suite passes");
}
