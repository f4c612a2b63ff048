//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::fs;
use std::path::{Path, PathBuf};

use ferrocask::Options;

/// Options with tiny segments so that tests roll over and compact often.
pub fn tiny_segments() -> Options {
    Options {
        segment_bytes: 16 << 10,
        preallocate_bytes: 4 << 10,
        value_bytes_max: 4 << 10,
        auto_compact: false,
        ..Options::default()
    }
}

/// Segment files of a store directory, ascending by id.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "seg")
}

/// Hint files of a store directory, ascending by id.
pub fn hint_files(dir: &Path) -> Vec<PathBuf> {
    files_with_extension(dir, "hint")
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Copies every file of a store directory (not the lock) into a fresh temporary directory.
pub fn copy_store(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "LOCK") {
            fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

/// Flips one byte of a file.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5A;
    fs::write(path, bytes).unwrap();
}
