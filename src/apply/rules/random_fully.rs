//! Whether this host's rules tools take flanneld's fully-random masquerade.
//! flanneld asks the same before writing it: iptables through go-iptables'
//! `HasRandomFully` (iptables 1.6.2 or newer), nftables by checking a test
//! chain with `masquerade fully-random` (pkg/trafficmngr/nftables/utils.go
//! `checkRandomfully`). An older iptables-restore rejects the whole input
//! on it (flannel #1702), so apply leaves it out there and says so.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::find;
use crate::netaddr::Family;
use crate::topology::RulesBackend;

/// The oldest iptables with `--random-fully`.
const FIRST: (u32, u32, u32) = (1, 6, 2);

/// `Some(reason)` when the tool of `backend` for `family` cannot take it.
pub fn unsupported(backend: RulesBackend, family: Family) -> Option<&'static str> {
    static V4: OnceLock<Option<String>> = OnceLock::new();
    static V6: OnceLock<Option<String>> = OnceLock::new();
    static NFT: OnceLock<Option<String>> = OnceLock::new();
    let slot = match (backend, family) {
        (RulesBackend::Nftables, _) => &NFT,
        (RulesBackend::Iptables, Family::V4) => &V4,
        (RulesBackend::Iptables, Family::V6) => &V6,
    };
    slot.get_or_init(|| match backend {
        RulesBackend::Iptables => iptables(if family == Family::V4 { "iptables" } else { "ip6tables" }),
        RulesBackend::Nftables => nft(),
    })
    .as_deref()
}

fn iptables(program: &str) -> Option<String> {
    let out = Command::new(find(program)?).arg("--version").stdin(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (version(&text)? < FIRST).then(|| format!("{text} lacks --random-fully (added in 1.6.2; flannel #1702)"))
}

/// `iptables v1.8.9 (nf_tables)` -> (1, 8, 9).
pub fn version(text: &str) -> Option<(u32, u32, u32)> {
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut n = v.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok());
    Some((n.next()??, n.next()??, n.next().flatten().unwrap_or(0)))
}

fn nft() -> Option<String> {
    let probe = "table ip flannel-gen-probe {\n\tchain probe {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr != 127.0.0.1 masquerade fully-random\n\t}\n}\n";
    let mut child = Command::new(find("nft")?)
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(probe.as_bytes()));
    let ok = child.wait().ok()?.success() && !matches!(written, Some(Err(_)));
    (!ok).then(|| "nft does not take `masquerade fully-random` here (checked with nft -c)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_go_iptables_compares_them() {
        assert_eq!(version("iptables v1.8.9 (nf_tables)"), Some((1, 8, 9)));
        assert_eq!(version("iptables v1.6.1"), Some((1, 6, 1)));
        assert_eq!(version("ip6tables v1.4.21"), Some((1, 4, 21)));
        assert!(version("iptables v1.6.1").is_some_and(|v| v < FIRST));
        assert!(version("iptables v1.6.2").is_some_and(|v| v >= FIRST));
        assert_eq!(version("no version here"), None);
    }
}
