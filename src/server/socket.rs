//! The CRI UNIX socket: refuse to take over a live server, replace a stale
//! socket file, and restrict access to owner and group (0660).

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Gid, Group, chown};
use tokio::net::UnixListener;

use crate::error::{Error, Result};

pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::FailedPrecondition(format!("{what} {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| fail("creating the directory of", &e))?;
    }
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::FailedPrecondition(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::FailedPrecondition(format!(
                "another server is already listening on {}",
                path.display()
            )));
        }
        tracing::info!(socket = %path.display(), "removing stale socket");
        fs::remove_file(path).map_err(|e| fail("removing stale socket", &e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| fail("binding", &e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
        .map_err(|e| fail("setting the mode of", &e))?;
    if let Some(group) = group {
        let gid = resolve_group(group)?;
        chown(path, None, Some(gid)).map_err(|e| fail("changing the group of", &e))?;
    }
    Ok(listener)
}

fn resolve_group(group: &str) -> Result<Gid> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(Error::FailedPrecondition(format!(
            "socket-group: no group named {group:?}"
        ))),
        Err(e) => Err(Error::FailedPrecondition(format!(
            "socket-group: looking up {group:?}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mode_stale_and_live_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cri.sock");
        let live = bind(&path, Some("0")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let err = bind(&path, None).unwrap_err();
        assert!(err.to_string().contains("already listening"), "{err}");
        drop(live);
        // The file is left behind by the dropped listener: stale, replaced.
        assert!(path.exists());
        let _again = bind(&path, None).unwrap();
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        fs::write(&path, "keep me").unwrap();
        assert!(bind(&path, None).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn unknown_group_is_an_error() {
        let err = resolve_group("no-such-group-docker-cri").unwrap_err();
        assert!(err.to_string().contains("socket-group"));
    }
}
