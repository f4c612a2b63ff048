//! openraft's own storage conformance suite, run on ferrocask: every case on fresh directories.
//! The suite applies only blank and membership entries, so the application it runs is one that
//! answers every command with nothing.

use std::sync::Arc;

use ferrocask_raft::{open_storage, Applied, Apply, LogStore, StateMachine, StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

/// An application that writes nothing.
struct Nothing;

impl Apply for Nothing {
    fn apply(&self, _txn: &mut ferrocask::Txn<'_>, _command: &[u8]) -> Applied {
        Applied::Reply(Vec::new())
    }
}

/// Opens a node's storage in a fresh temporary directory; the directory lives as long as the case.
struct FreshDirectories;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for FreshDirectories {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, sm) = open_storage(dir.path(), Arc::new(Nothing))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(FreshDirectories).expect("every case of openraft's storage suite passes");
}
