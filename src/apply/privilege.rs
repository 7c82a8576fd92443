//! Whether this process may read and change network state, asked up front
//! so a non-root run says what it lacks instead of failing on the first
//! write with "Operation not permitted".

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

#[derive(Debug, thiserror::Error)]
#[error(
    "flannel-gen must run as root: reading and changing a node's network state needs CAP_NET_ADMIN{}, \
     which this process does not have (run it with sudo, or from the rendered systemd unit)",
    if *.netns { ", and entering --netns needs CAP_SYS_ADMIN" } else { "" }
)]
pub struct NotPermitted {
    netns: bool,
}

/// Ok when the effective capabilities cover the work (`netns`: entering a
/// named namespace too). When they cannot be read, the kernel will say.
pub fn check(netns: bool) -> Result<(), NotPermitted> {
    let Some(caps) = effective() else { return Ok(()) };
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(CAP_NET_ADMIN) && (!netns || has(CAP_SYS_ADMIN)) { Ok(()) } else { Err(NotPermitted { netns }) }
}

fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(parse_cap_eff(status), Some(1 << CAP_NET_ADMIN));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn names_what_is_missing() {
        let m = NotPermitted { netns: true }.to_string();
        assert!(m.contains("CAP_NET_ADMIN") && m.contains("CAP_SYS_ADMIN") && m.contains("root"), "{m}");
    }
}
