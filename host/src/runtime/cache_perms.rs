//! The compiled-component cache holds native code that is loaded with
//! `unsafe` (`Component::deserialize_file`): whoever can write the cache can
//! run code in the host. So the cache is trusted only as far as its
//! permissions make it the user's own: its directories are created 0700,
//! a directory or file must be owned by the user and writable by no one
//! else, and must not be a symlink. An existing directory of the user's
//! that is too open is tightened to 0700; anything else is not used (the
//! component is compiled afresh and a warning says why).

use std::path::Path;

/// Create `dir` (and missing parents) as 0700, or check an existing one
/// with [`check`]. `Err` says why the cache must not be used.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    check(dir, true)
}

/// `path` is the user's own: not a symlink, owned by this user, writable by
/// no one else. A directory of the user's that is group- or
/// world-accessible is tightened to 0700 (`tighten`).
pub fn check(path: &Path, tighten: bool) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{} is a symlink; the component cache must be a plain directory", path.display()));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!("{} is owned by uid {}, not by you (uid {me})", path.display(), meta.uid()));
        }
        let mode = meta.mode() & 0o777;
        if meta.is_dir() && mode & 0o077 != 0 {
            if !tighten {
                return Err(format!("{} is accessible to others (mode {mode:o}; expected 0700)", path.display()));
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot make {} private (mode {mode:o}): {e}", path.display()))?;
            tracing::info!(dir = %path.display(), "made the component cache private (0700)");
        } else if mode & 0o022 != 0 {
            return Err(format!("{} is writable by others (mode {mode:o})", path.display()));
        }
    }
    let _ = tighten;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_cache_is_private_or_not_used() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c41").join("components");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        // An existing directory of ours that is too open is tightened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        // A world-writable entry, or a symlinked directory, is refused.
        let entry = dir.join("x.cwasm");
        std::fs::write(&entry, b"native code").unwrap();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check(&entry, false).unwrap_err().contains("writable by others"));
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(check(&link, true).unwrap_err().contains("symlink"));
    }
}
