//! `--netns NAME` and `--lock-wait SECS`: where a command that changes the
//! kernel works, for apply, teardown and rollback alike.

use std::time::Duration;

use crate::apply::{Target, netns};

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Work inside the named network namespace (/run/netns/NAME).
    #[arg(long, value_name = "NAME", value_parser = parse_netns)]
    pub netns: Option<String>,
    /// Seconds to wait for another flannel-gen on the same namespace to finish.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_wait: u64,
}

impl TargetArgs {
    pub fn target(&self) -> Target {
        Target { netns: self.netns.clone(), lock_wait: Duration::from_secs(self.lock_wait) }
    }
}

/// A namespace name as `ip netns` accepts it; anything else is a usage error.
pub fn parse_netns(s: &str) -> Result<String, String> {
    if netns::is_name(s) { Ok(s.to_string()) } else { Err(format!("`{s}` is not a namespace name")) }
}
