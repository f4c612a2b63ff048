//! Replays the `server_dispatch` fuzz target's seeds (`fuzz/corpus/server_dispatch/`) and saved
//! findings (`fuzz/regressions/server_dispatch/`) through its check, on the stable toolchain.

#[path = "../../fuzz/checks/server_dispatch.rs"]
mod server_dispatch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn replay_server_dispatch() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let corpus = files(&fuzz.join("corpus/server_dispatch"));
    assert!(!corpus.is_empty(), "no seed corpus for server_dispatch");
    let all: Vec<PathBuf> = corpus.into_iter().chain(files(&fuzz.join("regressions/server_dispatch"))).collect();
    let failed: Vec<String> = all
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| server_dispatch::check(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} inputs failed: {failed:#?}", failed.len(), all.len());
}

/// Bytes no seed holds, in case the corpus shrinks: every prefix of a mixed session.
#[test]
fn every_prefix_of_a_session_is_handled() {
    let session = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n10\r\nMULTI\r\nINCR k\r\nEXEC\r\nHELLO 3\r\nGET k\r\n";
    for end in 0..=session.len() {
        server_dispatch::check(&session[..end]);
    }
}
