//! flanneld's traffic rules (pkg/trafficmngr): masquerade what leaves the
//! cluster network, accept what is forwarded from and to it. The rules come
//! from the plan ([`crate::plan::objects::FamilyRules`]); this module writes
//! them for each tool, in exactly the form the tool lists them back
//! (`iptables-save` lines; `nft -j list table`, nft's JSON schema), so apply
//! can compare what the kernel has with what the plan wants.
//!
//! flannel-gen owns what flanneld owns: the chains `FLANNEL-POSTRTG` (nat)
//! and `FLANNEL-FWD` (filter) with one jump each from `POSTROUTING` and
//! `FORWARD`, or the nftables tables `ip flannel-ipv4` / `ip6 flannel-ipv6`.
//! Nothing else in those tables is touched.

pub mod iptables;
pub mod nft;

/// kube-proxy marks what it wants masqueraded itself (KUBE-MARK-MASQ); flanneld
/// leaves it alone to avoid double NAT.
pub const KUBE_PROXY_MARK: u32 = 0x4000;

/// The comments flanneld puts on its rules, kept so a node looks the same.
pub const MASQ_COMMENT: &str = "flanneld masq";
pub const FORWARD_COMMENT: &str = "flanneld forward";
