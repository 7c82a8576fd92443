//! Entering a named network namespace (`ip netns add NAME`) for `--netns`.
//!
//! A netlink socket belongs to the namespace it is created in, so this must
//! run on the main thread before the runtime (and its socket) exists.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Where iproute2 keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

pub fn enter(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("--netns {name:?}: not a namespace name"));
    }
    let path = format!("{NETNS_DIR}/{name}");
    let f = File::open(&path).map_err(|e| format!("--netns {name}: {path}: {e}"))?;
    // SAFETY: setns only reads the descriptor, which `f` keeps open for the call.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("--netns {name}: setns: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
