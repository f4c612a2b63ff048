//! Stores written in an older format version are refused with a clear error, never misread.
//!
//! `tests/fixtures/format-v1/` is a small store written by the last version-1 build (commit
//! 3c37952) with `generate_format_fixture` below: three puts, an overwrite and a delete in one
//! log segment. Run the generator before every format change to keep a fixture of the format
//! being left: `cargo test --test format_version -- --ignored generate_format_fixture` writes
//! `tests/fixtures/format-v{FORMAT_VERSION}/`.

use std::fs;
use std::path::{Path, PathBuf};

use ferrocask::format::FORMAT_VERSION;
use ferrocask::{Error, Options, Store};

mod common;

fn fixture(version: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("format-v{version}"))
}

/// No hint files: a fixture is its segment and its manifest, nothing more.
fn small_options() -> Options {
    Options { write_hints: false, ..common::unpreallocated() }
}

/// Copies a fixture into a fresh directory, so that opening it cannot change the committed files.
fn copy_of(src: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

#[test]
#[ignore = "writes tests/fixtures/format-v{FORMAT_VERSION}; run by hand before a format change"]
fn generate_format_fixture() {
    let dir = fixture(FORMAT_VERSION);
    let _ = fs::remove_dir_all(&dir);
    {
        let store = Store::open_with(&dir, small_options()).unwrap();
        store.put(b"alpha", b"one").unwrap();
        store.put(b"beta", b"two").unwrap();
        store.put(b"gamma", b"three").unwrap();
        store.put(b"alpha", b"uno").unwrap();
        store.delete(b"beta").unwrap();
    }
    fs::remove_file(dir.join("LOCK")).unwrap();
}

#[test]
fn a_version_1_store_is_refused_with_a_clear_error() {
    let copy = copy_of(&fixture(1));
    match Store::open_with(copy.path(), small_options()) {
        Err(e @ Error::UnsupportedVersion { found: 1, supported: 2, .. }) => {
            let message = e.to_string();
            assert!(message.contains("format version 1"), "{message}");
            assert!(message.contains("reads version 2"), "{message}");
        }
        Err(e) => panic!("expected UnsupportedVersion, got {e}"),
        Ok(_) => panic!("a version-1 store opened"),
    }
    // Nothing was changed: the copy still equals the fixture.
    for entry in fs::read_dir(fixture(1)).unwrap() {
        let entry = entry.unwrap();
        let copied = fs::read(copy.path().join(entry.file_name())).unwrap();
        assert_eq!(copied, fs::read(entry.path()).unwrap(), "{:?} was changed", entry.file_name());
    }
}
