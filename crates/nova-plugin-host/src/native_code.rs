//! Where the host may keep native code: compiled components and compiled
//! functions. Whoever can write such a file can make the host run code of
//! their choice, so only files and directories of the host's own user,
//! writable by no one else, are used.

use std::path::Path;

/// Whether `path` (the cache directory or an entry) can be trusted to hold
/// native code: owned by this process's user, and writable by no one else.
/// Whoever can write an entry can make the host run code of their choice,
/// so an entry or a directory that another user could have written is
/// refused.
pub fn trusted(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    let problem = if meta.uid() != me {
        Some(format!(
            "is owned by uid {}, not by this host's uid {me}",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by its group or by others (mode {:o})",
            meta.mode() & 0o777
        ))
    } else if meta.file_type().is_symlink() {
        Some("is a symbolic link".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} {problem}: compiled plugins are native code, so the compile cache must be \
                 writable only by the user the host runs as",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::trusted;

    #[test]
    fn only_a_cache_no_one_else_can_write_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        trusted(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = trusted(path).unwrap_err();
        assert!(e.to_string().contains("writable by its group"), "{e}");
        let entry = path.join("x.cwasm");
        std::fs::write(&entry, b"x").unwrap();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert!(trusted(&entry).is_err());
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o644)).unwrap();
        trusted(&entry).unwrap();
        let link = path.join("link.cwasm");
        std::os::unix::fs::symlink(&entry, &link).unwrap();
        assert!(trusted(&link).is_err());
    }
}
