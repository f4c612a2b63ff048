//! Small stores stay small: a store holding a few small keys takes a few blocks on disk, not a
//! whole preallocation step (DESIGN.md, "Preallocation").

/// The most a store of a few small keys may take on disk, in bytes (issue 26).
const SMALL_STORE_DISK_BYTES_MAX: u64 = 64 << 10;

/// Bytes allocated to the directory and the files in it (`du -s`): `st_blocks` counts 512-byte
/// units whatever the file system's block size.
#[cfg(unix)]
fn allocated_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    const ST_BLOCK_BYTES: u64 = 512;
    let mut blocks = std::fs::metadata(dir).unwrap().blocks();
    for entry in std::fs::read_dir(dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert!(meta.is_file(), "a store directory holds files only");
        blocks += meta.blocks();
    }
    blocks * ST_BLOCK_BYTES
}

/// The files' lengths: std exposes no allocation size on Windows, and a file there takes its
/// length (the active segment used to be extended to `segment_bytes` before it was mapped).
#[cfg(windows)]
fn allocated_bytes(dir: &std::path::Path) -> u64 {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert!(meta.is_file(), "a store directory holds files only");
        bytes += meta.len();
    }
    bytes
}

#[test]
fn three_small_keys_take_at_most_64_kib_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = ferrocask::Store::open(dir.path()).unwrap();
        for (key, value) in [("a", "one"), ("b", "two"), ("c", "three")] {
            store.put(key, value).unwrap();
        }
    }
    let allocated = allocated_bytes(dir.path());
    assert!(
        allocated <= SMALL_STORE_DISK_BYTES_MAX,
        "a store of three small keys takes {allocated} bytes on disk, more than {SMALL_STORE_DISK_BYTES_MAX}"
    );
    let store = ferrocask::Store::open(dir.path()).unwrap();
    assert_eq!(store.get("c").unwrap().as_deref(), Some(&b"three"[..]), "and it still holds its keys");
}
