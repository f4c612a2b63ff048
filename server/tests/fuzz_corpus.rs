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

/// The large-values seed reaches what it is for: the EXEC that outgrows one batch is discarded
/// whole, FLUSHDB empties the store, and the oversized request ends the session.
#[test]
fn the_large_values_seed_reaches_its_cases() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let data = std::fs::read(fuzz.join("corpus/server_dispatch/large-values")).unwrap();
    let options =
        ferrocask::Options { segment_bytes: 64 << 10, preallocate_bytes: 0, auto_compact: false, ..Default::default() };
    let fs = ferrocask::testing::SimFs::new();
    let store = ferrocask::Store::open_on(fs, std::path::Path::new("/fuzz"), options).unwrap();
    let out =
        String::from_utf8_lossy(&ferrocask_server::fuzzing::run_bytes(std::sync::Arc::new(store), &data)).into_owned();
    assert!(out.contains("-EXECABORT Transaction discarded because of: the writes"), "{out}");
    assert!(out.contains("-ERR string exceeds maximum allowed size"), "APPEND past the value limit: {out}");
    assert!(
        out.ends_with("+OK\r\n:0\r\n-ERR Protocol error: request too large\r\n"),
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
}
