//! The kernel side of apply, all on one netlink socket ([`bulk`]): dump the
//! state it looks at ([`dump`], [`links`]), build messages ([`messages`]),
//! execute changes ([`exec`]). One small function
//! per kernel operation; every wait has a timeout; kernel errors keep their
//! errno, so callers decide by code, not by text.

pub mod attr;
pub mod bulk;
pub mod dump;
pub mod exec;
pub mod links;
pub mod messages;
pub mod nexthop;
pub mod nftables;
pub mod prefetch;
pub mod raw;

use std::time::Duration;

/// No single request or dump may take longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused, with this errno (positive, e.g. `libc::EEXIST`).
    #[error("{}", errno_text(*errno))]
    Kernel { errno: i32 },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The netlink conversation itself failed (socket closed, bad reply).
    #[error("netlink: {0}")]
    Protocol(String),
    #[error("no device {0}")]
    NoDevice(String),
    #[error("{path}: {source}")]
    Sysctl { path: String, source: std::io::Error },
    #[error(transparent)]
    Rules(#[from] crate::apply::rules::error::RulesError),
    #[error("ethtool {dev}: {source}")]
    Ethtool { dev: String, source: std::io::Error },
    #[error("TUN device {dev}: /dev/net/tun: {source}")]
    Tun { dev: String, source: std::io::Error },
    #[error("WireGuard {dev}: {why}")]
    Wireguard { dev: String, why: String },
}

impl NetlinkError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno } => Some(*errno),
            _ => None,
        }
    }

    /// "Already gone": deleting what is not there counts as done.
    pub fn is_gone(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT | libc::ESRCH | libc::ENODEV))
    }
}

/// strerror, without Rust's "(os error N)" suffix.
fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}
