//! Unix socket binding: a private directory, owner-only modes, optional
//! group access, and removal of everything we created.

use crate::{ListenConfig, TransportError};
use std::ffi::CString;
use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use tempfile::{TempDir, TempPath};

/// Longest socket path (without the NUL terminator) `bind` accepts here.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MAX_PATH: usize = 107;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MAX_PATH: usize = 103;

/// Random characters in a socket file name, after the `plugin` prefix.
const RAND_LEN: usize = 10;
const PREFIX: &str = "plugin";

/// Removes the socket file, then the directory if this crate created it.
#[derive(Debug)]
pub(crate) struct Cleanup {
    // Field order is drop order: the socket first, then its directory.
    _socket: TempPath,
    _dir: Option<TempDir>,
}

/// Creates a directory `rpcplugin-XXXXXXXX` under the OS temp dir that only
/// the current user may enter (mode 0700), or, with `group`, that members
/// of the group may traverse (0710, owned by the group). It is removed with
/// the returned guard.
///
/// ```
/// let dir = rpcplugin_transport::private_dir(None).unwrap();
/// # use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
/// ```
pub fn private_dir(group: Option<&str>) -> Result<TempDir, TransportError> {
    private_dir_in(&std::env::temp_dir(), group)
}

/// Like [`private_dir`], inside `base` instead of the OS temp directory
/// (go-plugin's `UnixSocketConfig.TempDir`).
///
/// ```
/// let base = tempfile::tempdir().unwrap();
/// let dir = rpcplugin_transport::private_dir_in(base.path(), None).unwrap();
/// assert!(dir.path().starts_with(base.path()));
/// ```
pub fn private_dir_in(base: &Path, group: Option<&str>) -> Result<TempDir, TransportError> {
    private_dir_with_gid(base, group.map(lookup_gid).transpose()?)
}

fn private_dir_with_gid(base: &Path, gid: Option<u32>) -> Result<TempDir, TransportError> {
    let base = base.to_path_buf();
    // Created with its final mode: no window where others may enter.
    let mode = if gid.is_some() { 0o710 } else { 0o700 };
    let tmp = tempfile::Builder::new()
        .prefix("rpcplugin-")
        .permissions(Permissions::from_mode(mode))
        .tempdir_in(&base)
        .map_err(|source| TransportError::SocketDir { dir: base, source })?;
    if let Some(gid) = gid {
        set_group(tmp.path(), gid, mode)?;
    }
    Ok(tmp)
}

pub(crate) fn bind(
    config: &ListenConfig,
) -> Result<(UnixListener, PathBuf, Cleanup), TransportError> {
    let gid = config.socket_group.as_deref().map(lookup_gid).transpose()?;
    let (dir, owned_dir) = match &config.socket_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let tmp = private_dir_with_gid(&std::env::temp_dir(), gid)?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let longest = dir.as_os_str().len() + 1 + PREFIX.len() + RAND_LEN;
    if longest > MAX_PATH {
        return Err(TransportError::SocketPathTooLong {
            path: dir.join(format!("{PREFIX}{}", "X".repeat(RAND_LEN))),
            len: longest,
            max: MAX_PATH,
        });
    }
    let named = tempfile::Builder::new()
        .prefix(PREFIX)
        .rand_bytes(RAND_LEN)
        .make_in(&dir, |path| {
            let listener = UnixListener::bind(path)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .map_err(|source| TransportError::BindUnix {
            dir: dir.clone(),
            source,
        })?;
    let (listener, socket) = named.into_parts();
    let path = socket.to_path_buf();
    match gid {
        Some(gid) => set_group(&path, gid, 0o660)?,
        None => set_mode(&path, 0o600)?,
    }
    Ok((
        listener,
        path,
        Cleanup {
            _socket: socket,
            _dir: owned_dir,
        },
    ))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TransportError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|source| {
        TransportError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn set_group(path: &Path, gid: u32, mode: u32) -> Result<(), TransportError> {
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| {
        TransportError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })?;
    set_mode(path, mode)
}

/// Resolves a group name or numeric gid.
fn lookup_gid(group: &str) -> Result<u32, TransportError> {
    if let Ok(gid) = group.trim().parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || TransportError::UnknownGroup(group.to_owned());
    let name = CString::new(group).map_err(|_| unknown())?;
    let mut size = 4096usize;
    while size <= 1 << 20 {
        match getgrnam(&name, size) {
            Ok(gid) => return gid.ok_or_else(unknown),
            Err(libc::ERANGE) => size *= 4,
            Err(_) => return Err(unknown()),
        }
    }
    Err(unknown())
}

/// One `getgrnam_r` call with a buffer of `size` bytes: `Ok(None)` when the
/// group does not exist, `Err(errno)` on failure.
#[allow(unsafe_code)]
fn getgrnam(name: &CString, size: usize) -> Result<Option<u32>, i32> {
    let mut buf: Vec<libc::c_char> = vec![0; size];
    // SAFETY: `libc::group` is plain old data; an all-zero value is valid and
    // is only read after getgrnam_r filled it.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned by
    // this frame, and `buf.len()` is the true length of `buf`.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    match rc {
        0 if result.is_null() => Ok(None),
        0 => Ok(Some(group.gr_gid)),
        errno => Err(errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_named_groups() {
        assert_eq!(lookup_gid("0").unwrap(), 0);
        assert_eq!(lookup_gid("root").unwrap(), 0);
        let err = lookup_gid("no-such-group-rpcplugin").unwrap_err();
        assert!(err.to_string().contains("unknown group"), "{err}");
        assert!(lookup_gid("a\0b").is_err());
    }
}
