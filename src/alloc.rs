//! Stable allocation of node subnets and VTEP MACs, recorded in a lock file
//! beside the topology (flannel's etcd lease registry, but in git).
//!
//! Order of precedence per node: a pin in the topology, then the node's
//! lease in the lock file, then the first free subnet (in file order) and a
//! MAC derived from cluster + node name. So adding, removing or reordering
//! nodes never moves a node that already holds a lease.

use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Diagnostics, Pos};
use crate::mac::Mac;
use crate::topology::{Cluster, subnet_step};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub subnet: Ipv4Net,
    pub vtep_mac: Mac,
}

/// Node name -> lease, for every node of the topology.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allocation {
    pub leases: BTreeMap<String, Lease>,
}

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("no free /{len} subnet left between {min} and {max} for node `{node}`")]
    Exhausted { node: String, len: u8, min: Ipv4Addr, max: Ipv4Addr },
}

/// The lock file as stored: sorted, one entry per node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockFile {
    pub version: u32,
    pub cluster: String,
    pub network: String,
    pub subnet_len: u8,
    #[serde(default)]
    pub nodes: BTreeMap<String, LockEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub subnet: String,
    #[serde(rename = "vtepMAC")]
    pub vtep_mac: Mac,
}

/// `examples/vxlan-3node.yaml` -> `examples/vxlan-3node.lock`.
pub fn lock_path(topology: &Path) -> PathBuf {
    topology.with_extension("lock")
}

/// Reads the lock file beside `topology`; `Ok(None)` when there is none.
pub fn read_lock(topology: &Path) -> Result<Option<LockFile>, Diagnostics> {
    let path = lock_path(topology);
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::topology::parse::read_text(&path)?;
    if let Some(lock) = parse_lock_fast(&text) {
        return Ok(Some(lock));
    }
    serde_saphyr::from_str::<LockFile>(&text).map(Some).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: path.clone(),
            pos: e.location().map(Pos::from).unwrap_or(Pos::FILE),
            field: String::new(),
            message: format!("corrupt lock file ({}); delete it and run `flannel-gen lock`", e.without_snippet()),
        }])
    })
}

/// Reads a lock file in exactly the layout [`render_lock`] writes, in a
/// fraction of a general YAML parse (5000 nodes: ~1 ms against ~20 ms).
/// Anything else (a hand edit, other quoting) returns `None` and goes
/// through the YAML parser, which also gives located errors.
fn parse_lock_fast(text: &str) -> Option<LockFile> {
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let mut field = |key: &str| lines.next()?.strip_prefix(key)?.strip_prefix(": ").map(str::to_string);
    let version = field("version")?.parse().ok()?;
    let cluster = field("cluster")?;
    let network = field("network")?;
    let subnet_len = field("subnetLen")?.parse().ok()?;
    let mut nodes = BTreeMap::new();
    match lines.next()? {
        "nodes: {}" => {}
        "nodes:" => {
            while let Some(head) = lines.next() {
                let name = head.strip_prefix("  ")?.strip_suffix(':')?;
                let subnet = lines.next()?.strip_prefix("    subnet: ")?;
                let mac = lines.next()?.strip_prefix("    vtepMAC: \"")?.strip_suffix('"')?;
                let plain =
                    |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-./:".contains(&c));
                if !plain(name) || !plain(subnet) {
                    return None;
                }
                nodes.insert(name.to_string(), LockEntry { subnet: subnet.to_string(), vtep_mac: mac.parse().ok()? });
            }
        }
        _ => return None,
    }
    lines.next().is_none().then_some(LockFile { version, cluster, network, subnet_len, nodes })
}

/// A MAC derived from cluster and node name; `attempt` > 0 only after a collision.
pub fn derive_mac(cluster: &str, node: &str, attempt: u32) -> Mac {
    let mut h = Sha256::new();
    h.update(b"flannel-gen vtep\0");
    h.update(cluster.as_bytes());
    h.update(b"\0");
    h.update(node.as_bytes());
    if attempt > 0 {
        h.update(attempt.to_be_bytes());
    }
    let d = h.finalize();
    Mac::local_unicast([d[0], d[1], d[2], d[3], d[4], d[5]])
}

pub fn allocate(cluster: &Cluster, lock: Option<&LockFile>) -> Result<Allocation, AllocError> {
    let len = cluster.subnet_len;
    let fits = |s: Ipv4Net| {
        s.prefix_len() == len
            && cluster.network.contains(&s)
            && s.network() >= cluster.subnet_min
            && s.network() <= cluster.subnet_max
    };
    let locked = |name: &str| lock.and_then(|l| l.nodes.get(name));

    let mut subnets: Vec<Option<Ipv4Net>> = cluster.nodes.iter().map(|n| n.subnet).collect();
    let mut macs: Vec<Option<Mac>> = cluster.nodes.iter().map(|n| n.vtep_mac).collect();
    let mut taken_subnets: HashSet<Ipv4Addr> = subnets.iter().flatten().map(|s| s.network()).collect();
    let mut taken_macs: HashSet<Mac> = macs.iter().flatten().copied().collect();

    // Leases from the lock file, unless a pin took the slot first.
    for (i, node) in cluster.nodes.iter().enumerate() {
        let Some(entry) = locked(&node.name) else {
            continue;
        };
        if subnets[i].is_none()
            && let Ok(s) = entry.subnet.parse::<Ipv4Net>()
            && fits(s)
            && taken_subnets.insert(s.network())
        {
            subnets[i] = Some(s);
        }
        if macs[i].is_none() && taken_macs.insert(entry.vtep_mac) {
            macs[i] = Some(entry.vtep_mac);
        }
    }

    // New nodes: first free subnet, derived MAC.
    let step = subnet_step(len);
    let mut cursor = u64::from(u32::from(cluster.subnet_min));
    let max = u64::from(u32::from(cluster.subnet_max));
    let mut leases = BTreeMap::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let subnet = match subnets[i] {
            Some(s) => s,
            None => loop {
                if cursor > max {
                    return Err(AllocError::Exhausted {
                        node: node.name.clone(),
                        len,
                        min: cluster.subnet_min,
                        max: cluster.subnet_max,
                    });
                }
                let addr = Ipv4Addr::from(cursor as u32);
                cursor += step;
                if taken_subnets.insert(addr) {
                    // `len` is at most 30, validated.
                    break Ipv4Net::new_assert(addr, len);
                }
            },
        };
        let vtep_mac = match macs[i] {
            Some(m) => m,
            None => (0..)
                .map(|attempt| derive_mac(&cluster.name, &node.name, attempt))
                .find(|m| taken_macs.insert(*m))
                .unwrap_or_else(|| derive_mac(&cluster.name, &node.name, 0)),
        };
        leases.insert(node.name.clone(), Lease { subnet, vtep_mac });
    }
    Ok(Allocation { leases })
}

/// The lock file text for an allocation: deterministic, sorted by node name.
pub fn render_lock(cluster: &Cluster, alloc: &Allocation) -> String {
    let mut out = String::with_capacity(64 + alloc.leases.len() * 80);
    out.push_str("# flannel-gen lock file: node subnet and VTEP MAC leases.\n");
    out.push_str("# Written by `flannel-gen lock`; commit it beside the topology.\n");
    out.push_str("version: 1\n");
    out.push_str(&format!("cluster: {}\n", cluster.name));
    out.push_str(&format!("network: {}\n", cluster.network));
    out.push_str(&format!("subnetLen: {}\n", cluster.subnet_len));
    if alloc.leases.is_empty() {
        out.push_str("nodes: {}\n");
        return out;
    }
    out.push_str("nodes:\n");
    for (name, lease) in &alloc.leases {
        out.push_str(&format!("  {name}:\n    subnet: {}\n    vtepMAC: \"{}\"\n", lease.subnet, lease.vtep_mac));
    }
    out
}

/// The lock file an allocation would be stored as, in parsed form.
pub fn to_lock(cluster: &Cluster, alloc: &Allocation) -> LockFile {
    LockFile {
        version: 1,
        cluster: cluster.name.clone(),
        network: cluster.network.to_string(),
        subnet_len: cluster.subnet_len,
        nodes: alloc
            .leases
            .iter()
            .map(|(n, l)| (n.clone(), LockEntry { subnet: l.subnet.to_string(), vtep_mac: l.vtep_mac }))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
