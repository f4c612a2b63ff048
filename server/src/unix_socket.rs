//! The Unix socket listener (`unixsocket`, `unixsocketperm`), Unix only.
//!
//! A socket file left by a server that did not stop cleanly would make the bind fail, so one
//! found at the path is removed first, as Redis does; anything else there (a regular file, a
//! directory) is left alone and the start is refused, so a typo cannot delete a file.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Binds the socket at `path`, after removing a stale socket file there; sets its permission
/// bits to `perm` unless it is 0.
pub(crate) fn bind(path: &Path, perm: u32) -> Result<(UnixListener, PathBuf), String> {
    let named = |why: String| format!("unixsocket {}: {why}", path.display());
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| named(format!("removing the stale socket file: {e}")))?
        }
        Ok(_) => return Err(named("exists and is not a socket; remove it or choose another path".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(named(e.to_string())),
    }
    let listener = UnixListener::bind(path).map_err(|e| named(format!("binding: {e}")))?;
    if perm != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
            .map_err(|e| named(format!("setting unixsocketperm {perm:o}: {e}")))?;
    }
    Ok((listener, path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (first, _) = bind(&path, 0o700).unwrap();
        drop(first);
        assert!(path.exists(), "a dropped listener leaves its file, as a crash does");
        let (_second, _) = bind(&path, 0o700).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        let file = dir.path().join("file");
        std::fs::write(&file, "keep me").unwrap();
        let err = bind(&file, 0).err().unwrap();
        assert!(err.contains("exists and is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }
}
