//! What the real file system does differently on each platform, all in one place. Everything
//! above [`RealFs`](super::RealFs) is one code path; each difference is here with its reason
//! (DESIGN.md, "Platforms").
//!
//! | rule | Unix (Linux, macOS) | Windows |
//! |---|---|---|
//! | positional read / write | `pread` / `pwrite` (`read_exact_at`, `write_all_at`) | `seek_read` / `seek_write`, looped: either may transfer less than asked |
//! | sync a directory | `fsync` of the directory | no-op: there is no directory handle to flush; NTFS journals creates, renames and deletes, and the next `FlushFileBuffers` commits the journal |
//! | map past the end of the file | allowed (bytes past the end must not be read) | impossible for a read-only mapping: the file is first extended with zeros |
//! | truncate a mapped file | allowed | refused (`ERROR_USER_MAPPED_FILE`): the cut bytes are overwritten with zeros instead, the length kept |
//!
//! `sync_data` is `std`'s on every platform: `fdatasync` on Linux, `fcntl(F_FULLFSYNC)` on Apple
//! platforms (plain `fsync` there does not reach the platter), `FlushFileBuffers` on Windows.
//! The directory lock is `std`'s portable `File::try_lock` (`flock` / `LockFileEx`). `std`
//! opens Windows files with `FILE_SHARE_DELETE`, so a file another handle has open can be
//! renamed over or removed; a *mapped* one cannot be removed, which the store avoids by removing
//! a retired segment only once its last mapping is gone (`log/segment.rs`, `Retired`).

use std::fs::File;
use std::io;
use std::path::Path;

/// Reads exactly `buf.len()` bytes at `offset`; `UnexpectedEof` if the file is shorter.
#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads exactly `buf.len()` bytes at `offset`; `UnexpectedEof` if the file is shorter.
/// `seek_read` may return fewer bytes than asked (and moves the handle's cursor, which nothing
/// here uses), so it is looped.
#[cfg(windows)]
pub(super) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` at `offset`, extending the file if needed.
#[cfg(unix)]
pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Writes all of `buf` at `offset`, extending the file if needed. `seek_write` may write fewer
/// bytes than asked, so it is looped.
#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes the creates, renames and removes inside `dir` durable: `fsync` of the directory.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A no-op on Windows. A directory cannot be opened as a file there (std refuses it), and NTFS
/// needs no directory flush: it records creates, renames and deletes in its metadata journal,
/// one log in operation order, which `FlushFileBuffers` of a file on the volume commits. Every
/// acknowledgement the store gives rests on such a flush issued after the directory change it
/// depends on (the new segment's header sync before its manifest; the next frame's sync after a
/// roll-over's manifest rename), so the directory change is committed with or before it.
#[cfg(windows)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    let _ = dir;
    Ok(())
}

/// Makes a read-only mapping of the first `len` bytes possible. Unix maps past the end of a file
/// (the store never reads there before the file has grown over it), so nothing is done.
#[cfg(unix)]
pub(super) fn prepare_map(file: &File, len: u64) -> io::Result<()> {
    let _ = (file, len);
    Ok(())
}

/// Windows cannot map a file read-only past its end (`CreateFileMapping` refuses), so a file
/// shorter than `len` is extended with zeros to `len` first. Only the active segment is mapped
/// past its end (at the next power of two of what it holds, `log::map_len`, and again, longer,
/// as it grows: `Segment::map_through`), so it is extended in those steps; zeros past the last
/// frame are a clean end to recovery, and the writer takes the file's length after mapping, so
/// its zero-filled growth steps (`ensure_space`) start from there.
#[cfg(windows)]
pub(super) fn prepare_map(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

/// Truncates or extends (with zeros) the file to `len` bytes.
#[cfg(unix)]
pub(super) fn set_len(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// Truncates or extends the file to `len` bytes; if it is mapped (Windows refuses to cut a file
/// with a mapped view), the bytes from `len` to the end are overwritten with zeros instead and
/// the length is kept. Both callers that cut (a roll-over's unclean tail, recovery's torn tail)
/// need only that nothing but zeros follows `len`, which recovery reads as a clean end.
#[cfg(windows)]
pub(super) fn set_len(file: &File, len: u64) -> io::Result<()> {
    /// `ERROR_USER_MAPPED_FILE`: "The requested operation cannot be performed on a file with a
    /// user-mapped section open."
    const ERROR_USER_MAPPED_FILE: i32 = 1224;
    match file.set_len(len) {
        Err(e) if e.raw_os_error() == Some(ERROR_USER_MAPPED_FILE) => zero_from(file, len),
        other => other,
    }
}

/// Overwrites the bytes from `from` to the end of the file with zeros, in 1 MiB writes.
#[cfg(windows)]
fn zero_from(file: &File, from: u64) -> io::Result<()> {
    const CHUNK_BYTES: u64 = 1 << 20;
    let end = file.metadata()?.len();
    let zeros = vec![0u8; CHUNK_BYTES.min(end.saturating_sub(from)) as usize];
    let mut at = from;
    while at < end {
        let n = CHUNK_BYTES.min(end - at) as usize;
        write_all_at(file, &zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
