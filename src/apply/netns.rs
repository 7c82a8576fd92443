//! Entering a named network namespace (`ip netns add NAME`) for `--netns`.
//!
//! A netlink socket belongs to the namespace it is created in, so this must
//! run on the main thread before the runtime (and its socket) exists.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("--netns {name}: {path}: {source}")]
    Open { name: String, path: PathBuf, source: std::io::Error },
    #[error("--netns {name}: setns: {source}{}", root_hint(source))]
    Setns { name: String, source: std::io::Error },
}

/// Why a permission error happened, in words a user can act on.
pub fn root_hint(e: &std::io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) {
        " (flannel-gen apply must run as root: it needs CAP_NET_ADMIN, and CAP_SYS_ADMIN for --netns)"
    } else {
        ""
    }
}

/// A namespace name as iproute2 accepts it: one path component.
pub fn is_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.contains('/') && name != "." && name != ".." && !name.contains('\0')
}

pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = PathBuf::from(NETNS_DIR).join(name);
    let f = File::open(&path).map_err(|source| NetnsError::Open { name: name.into(), path: path.clone(), source })?;
    // SAFETY: setns only reads the descriptor, which `f` keeps open for the call.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetnsError::Setns { name: name.into(), source: std::io::Error::last_os_error() });
    }
    Ok(())
}
