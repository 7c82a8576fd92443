//! The intermediate representation: one node's plan, the kernel objects and
//! settings flanneld would have made on it. Every back end (render, apply,
//! diff) reads only this, so files and kernel state cannot disagree.

mod build;
mod text;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use build::{PlanError, build, build_all};

use crate::mac::Mac;
use crate::topology::BackendKind;

/// Bumped on any incompatible change to the JSON form.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePlan {
    pub format_version: u32,
    pub cluster: String,
    pub node: String,
    pub backend: BackendKind,
    pub direct_routing: bool,
    /// The whole pod network (flannel's "Network").
    pub network: Ipv4Net,
    /// This node's pod subnet.
    pub subnet: Ipv4Net,
    /// The subnet's `.1`, the bridge (cni0 / docker0) address.
    pub gateway: Ipv4Addr,
    /// MTU of the flannel device and of pods.
    pub mtu: u32,
    pub ip_masq: bool,
    pub uplink: Uplink,
    /// `flannel.<vni>`: the device flannel-gen owns on this node. Named even
    /// for host-gw, so apply can remove a VXLAN device left from a migration.
    pub device: String,
    /// The VXLAN device, when any peer is reached over VXLAN.
    pub vxlan: Option<VxlanLink>,
    /// Other nodes, sorted by subnet, each with its objects in flanneld's order.
    pub peers: Vec<Peer>,
    pub sysctls: Vec<Sysctl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Uplink {
    pub name: String,
    /// The node's underlay address with its prefix.
    pub address: Ipv4Net,
    pub mtu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VxlanLink {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub learning: bool,
    pub mac: Mac,
    pub mtu: u32,
    /// Underlay device (IFLA_VXLAN_LINK).
    pub dev: String,
    /// The subnet's network address as a /32, flanneld's convention.
    pub address: Ipv4Net,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerPath {
    /// Encapsulated through the flannel device.
    Vxlan,
    /// Routed directly to the peer's underlay address.
    HostGw,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peer {
    pub node: String,
    pub ip: Ipv4Addr,
    pub subnet: Ipv4Net,
    pub path: PeerPath,
    /// vxlan path only: permanent ARP entry for the peer's gateway.
    pub neighbour: Option<Neighbour>,
    /// vxlan path only: where to send frames for the peer's VTEP MAC.
    pub fdb: Option<Fdb>,
    pub route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Neighbour {
    pub dev: String,
    pub ip: Ipv4Addr,
    pub lladdr: Mac,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fdb {
    pub dev: String,
    pub lladdr: Mac,
    pub dst: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    pub dst: Ipv4Net,
    pub via: Ipv4Addr,
    pub dev: String,
    pub onlink: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sysctl {
    /// `net.ipv4.ip_forward`, or slash form `net/ipv4/conf/flannel.1/rp_filter`.
    pub key: String,
    pub value: String,
}

impl Sysctl {
    pub fn proc_path(&self) -> String {
        sysctl_proc_path(&self.key)
    }
}

/// The file under /proc/sys for a sysctl key (sysctl.d rules: dots separate
/// unless the key uses slashes, as interface names may contain dots).
pub fn sysctl_proc_path(key: &str) -> String {
    if key.contains('/') { format!("/proc/sys/{key}") } else { format!("/proc/sys/{}", key.replace('.', "/")) }
}

impl NodePlan {
    pub fn neighbours(&self) -> impl Iterator<Item = &Neighbour> {
        self.peers.iter().filter_map(|p| p.neighbour.as_ref())
    }

    pub fn fdb(&self) -> impl Iterator<Item = &Fdb> {
        self.peers.iter().filter_map(|p| p.fdb.as_ref())
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.peers.iter().map(|p| &p.route)
    }

    /// Pretty JSON, the form `apply --plan` reads.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Reads a plan.json (as `render` writes it); problems are located diagnostics.
pub fn read_plan(path: &std::path::Path) -> Result<NodePlan, crate::diag::Diagnostics> {
    let text = crate::topology::parse::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| {
        crate::diag::Diagnostics(vec![crate::diag::Diagnostic {
            file: path.to_path_buf(),
            pos: crate::diag::Pos::new(e.line() as u64, e.column() as u64),
            field: String::new(),
            message: format!("not a flannel-gen plan: {e}"),
        }])
    })
}
