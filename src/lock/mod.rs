//! The lock file beside a topology (`<name>.lock`): each node's subnet and
//! VTEP MAC per family (and its WireGuard public key) — flannel's lease registry in etcd, but in git.
//! Parsed and typed when read ([`read`]), with every problem located in the
//! lock file; written deterministically by [`render`].

mod read;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::diag::Pos;
use crate::mac::Mac;
use crate::netaddr::{Family, PerFamily};
use crate::wireguard::key::Key;

#[cfg(test)]
pub(crate) use read::parse_lock;
pub use read::read_lock;

/// One node's lease in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FamilyLease {
    pub subnet: IpNet,
    pub vtep_mac: Mac,
}

/// Node name -> its leases, for every node of a topology (an allocation), or
/// as recorded (a lock file).
pub type Leases = BTreeMap<String, PerFamily<FamilyLease>>;

/// Where a lease's values stand in the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeasePos {
    pub subnet: Pos,
    pub vtep_mac: Pos,
}

/// The network a lock file was written for, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedNetwork {
    pub network: IpNet,
    pub subnet_len: u8,
    pub pos: Pos,
}

/// A lock file as read: typed, with positions for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub path: PathBuf,
    pub cluster: String,
    pub networks: PerFamily<LockedNetwork>,
    pub leases: Leases,
    pub positions: BTreeMap<String, PerFamily<LeasePos>>,
    /// wireguard: each node's public key, as recorded.
    pub wireguard_keys: WireguardKeys,
}

/// Node name -> its WireGuard public key.
pub type WireguardKeys = BTreeMap<String, Key>;

impl Lock {
    pub fn pos_of(&self, node: &str, family: Family) -> LeasePos {
        self.positions.get(node).and_then(|p| p.get(family).copied()).unwrap_or_default()
    }
}

pub const LOCK_VERSION: u64 = 1;

/// `examples/vxlan-3node.yaml` -> `examples/vxlan-3node.lock`.
pub fn lock_path(topology: &Path) -> PathBuf {
    topology.with_extension("lock")
}

/// The lock-file key of a node's WireGuard public key.
pub const WIREGUARD_KEY: &str = "wireguardKey";

/// Lock-file key names per family: (network, subnetLen, subnet, vtepMAC).
pub fn keys(family: Family) -> [&'static str; 4] {
    match family {
        Family::V4 => ["network", "subnetLen", "subnet", "vtepMAC"],
        Family::V6 => ["ipv6Network", "ipv6SubnetLen", "subnet6", "vtepMAC6"],
    }
}

/// The lock file text: deterministic, nodes sorted by name.
pub fn render(cluster: &str, networks: &PerFamily<(IpNet, u8)>, leases: &Leases, keys_of: &WireguardKeys) -> String {
    let mut out = String::with_capacity(128 + leases.len() * 80);
    out.push_str("# flannel-gen lock file: node subnet and VTEP MAC leases.\n");
    out.push_str("# Written by `flannel-gen lock`; commit it beside the topology.\n");
    let _ = writeln!(out, "version: {LOCK_VERSION}\ncluster: {cluster}");
    for (f, (net, len)) in networks.iter() {
        let k = keys(f);
        let _ = writeln!(out, "{}: {net}\n{}: {len}", k[0], k[1]);
    }
    if leases.is_empty() {
        out.push_str("nodes: {}\n");
        return out;
    }
    out.push_str("nodes:\n");
    for (name, lease) in leases {
        let _ = writeln!(out, "  {name}:");
        for (f, l) in lease.iter() {
            let k = keys(f);
            let _ = writeln!(out, "    {}: {}\n    {}: \"{}\"", k[2], l.subnet, k[3], l.vtep_mac);
        }
        if let Some(key) = keys_of.get(name) {
            let _ = writeln!(out, "    {WIREGUARD_KEY}: \"{key}\"");
        }
    }
    out
}

#[cfg(test)]
mod tests;
