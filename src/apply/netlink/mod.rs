//! The kernel side of apply: dump the state it looks at ([`dump`]), build
//! messages ([`messages`]), execute changes ([`exec`]). One small function
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

use futures::stream::TryStreamExt;

/// Requests in flight on one socket. Beyond ~256 the default receive buffer
/// drops acks and replies never come.
pub const IN_FLIGHT: usize = 128;
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

fn kernel(e: rtnetlink::Error) -> NetlinkError {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.code {
            Some(code) => NetlinkError::Kernel { errno: -code.get() },
            None => NetlinkError::Protocol("error message without a code".into()),
        },
        other => NetlinkError::Protocol(other.to_string()),
    }
}

async fn timed<T>(f: impl std::future::Future<Output = Result<T, rtnetlink::Error>>) -> Result<T, NetlinkError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, f).await {
        Ok(r) => r.map_err(kernel),
        Err(_) => Err(NetlinkError::Timeout(REQUEST_TIMEOUT)),
    }
}

async fn collect<T>(s: impl futures::Stream<Item = Result<T, rtnetlink::Error>>) -> Result<Vec<T>, NetlinkError> {
    timed(s.try_collect::<Vec<T>>()).await
}
