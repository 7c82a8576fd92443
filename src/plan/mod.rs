//! The intermediate representation: one node's plan, the one trusted
//! contract between the compiler and every back end (render, apply, diff).
//!
//! [`PlanData`] is the plan as data — its JSON form (`plan.json`,
//! `formatVersion` [`FORMAT_VERSION`]) is defined here and nowhere else. A
//! [`NodePlan`] is a `PlanData` that passed [`check`]; there are exactly two
//! ways to get one: [`build`] from a validated cluster, or [`read`] from
//! JSON (`apply --plan`, `diff` of plan files, the fuzz target). Back ends
//! take only `NodePlan`, and derive kernel objects from its facts in one
//! place ([`objects`]), so they cannot disagree.

mod build;
mod check;
pub mod objects;
mod read;
mod text;

use std::net::IpAddr;
use std::ops::Deref;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use build::{PlanError, build, build_all};
pub use check::{Problem, check};
// parse_plan: for the fuzz targets (the CLI reads files).
#[cfg_attr(flannel_gen_audit, allow(unused_imports))]
pub use read::parse_plan;
pub use read::read_plan;

use crate::mac::Mac;
use crate::netaddr::Family;
use crate::topology::{BackendKind, RouteStyle, RulesBackend};
use crate::wireguard::key::Key;

/// Bumped on any incompatible change to the JSON form.
pub const FORMAT_VERSION: u32 = 2;

/// The alias that marks a device as flannel-gen's, for one cluster: apply
/// finds its devices by it whatever their names, and never touches others.
pub fn marker(cluster: &str) -> String {
    format!("{MARKER_PREFIX}{cluster}")
}

/// What every cluster's [`marker`] starts with.
pub const MARKER_PREFIX: &str = "flannel-gen:";

/// The name of the VXLAN device of a family, as flanneld names it.
pub fn vxlan_device_name(family: Family, vni: u32) -> String {
    match family {
        Family::V4 => format!("flannel.{vni}"),
        Family::V6 => format!("flannel-v6.{vni}"),
    }
}

/// One node's plan as data: facts, not kernel objects (those are derived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanData {
    pub format_version: u32,
    pub cluster: String,
    pub node: String,
    pub backend: BackendPlan,
    /// How routes to peers are made; a plan from before the field existed is plain.
    #[serde(default = "plain_routes")]
    pub route_style: RouteStyle,
    /// flanneld's --ip-masq: flannel masquerades, so docker and CNI must not.
    pub ip_masq: bool,
    /// MTU of the overlay device and of pods.
    pub mtu: u32,
    pub uplink: Uplink,
    /// Other networks the node is on (directRouting peers there are routed
    /// through that interface).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<crate::topology::Connected>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<FamilyPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<FamilyPlan>,
    /// Other nodes, one entry per node and family, sorted by subnet.
    pub peers: Vec<Peer>,
    /// flanneld's masquerade and forward rules; absent: none are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_rules: Option<TrafficRules>,
    /// flanneld's --ip-blackhole-route: a blackhole route for the node's own
    /// subnet(s), so traffic to an unassigned pod address dies here instead
    /// of following the default route out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blackhole_route: bool,
    pub sysctls: Vec<Sysctl>,
}

fn plain_routes() -> RouteStyle {
    RouteStyle::Plain
}

/// How the masquerade (when `ipMasq`) and forward rules are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficRules {
    pub backend: RulesBackend,
    /// Accept forwarded traffic from and to the cluster network.
    pub forward: bool,
    /// MASQUERADE --random-fully (nft: fully-random).
    pub random_fully: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BackendPlan {
    #[serde(rename_all = "camelCase")]
    Vxlan {
        vni: u32,
        port: u16,
        direct_routing: bool,
        /// VXLAN Group Based Policy extension.
        gbp: bool,
        /// MAC learning on the device.
        learning: bool,
        /// Transmit checksum offload (`tx-checksum-ip-generic`) on the device.
        tx_checksum_offload: bool,
    },
    HostGw,
    /// flanneld's udp backend: TUN `flannel0` and `flannel-gen udp` on `port`.
    Udp {
        port: u16,
    },
    /// flannel's aws-vpc: the VPC route table carries pod traffic to the
    /// node's instance; no device and no peer routes on the node.
    #[serde(rename_all = "camelCase")]
    AwsVpc {
        #[serde(rename = "instanceID")]
        instance_id: String,
    },
    /// flannel's gce: a `compute.routes` entry per node carries it.
    Gce {
        instance: String,
        zone: String,
    },
    /// flannel's wireguard (mode separate): `flannel-wg` on `port`,
    /// `flannel-wg-v6` on `portV6`. Paths name the node's own key files;
    /// the plan holds public keys only.
    #[serde(rename_all = "camelCase")]
    Wireguard {
        port: u16,
        #[serde(rename = "portV6")]
        port_v6: u16,
        /// Seconds; 0 is off.
        #[serde(default, skip_serializing_if = "is_zero")]
        persistent_keepalive: u16,
        key_file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        psk_file: Option<String>,
        /// This node's public key: the private key in `keyFile` must match it.
        public_key: Key,
    },
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

impl BackendPlan {
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendPlan::Vxlan { .. } => BackendKind::Vxlan,
            BackendPlan::HostGw => BackendKind::HostGw,
            BackendPlan::Udp { .. } => BackendKind::Udp,
            BackendPlan::AwsVpc { .. } => BackendKind::AwsVpc,
            BackendPlan::Gce { .. } => BackendKind::Gce,
            BackendPlan::Wireguard { .. } => BackendKind::Wireguard,
        }
    }

    pub fn vni(&self) -> Option<u32> {
        match self {
            BackendPlan::Vxlan { vni, .. } => Some(*vni),
            _ => None,
        }
    }
}

/// The underlay interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Uplink {
    pub name: String,
    pub mtu: u32,
    /// The node's underlay address with its on-link prefix, per family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<IpNet>,
    /// Where peers reach the node when it is behind NAT (its lease's PublicIP).
    #[serde(rename = "publicIPv4", default, skip_serializing_if = "Option::is_none")]
    pub public_ipv4: Option<IpAddr>,
    #[serde(rename = "publicIPv6", default, skip_serializing_if = "Option::is_none")]
    pub public_ipv6: Option<IpAddr>,
}

impl Uplink {
    pub fn address(&self, f: Family) -> Option<IpNet> {
        match f {
            Family::V4 => self.ipv4,
            Family::V6 => self.ipv6,
        }
    }

    /// The address the node publishes (flanneld's lease PublicIP): the
    /// public one behind NAT, else the uplink's own.
    pub fn published(&self, f: Family) -> Option<IpAddr> {
        let public = match f {
            Family::V4 => self.public_ipv4,
            Family::V6 => self.public_ipv6,
        };
        public.or_else(|| self.address(f).map(|a| a.addr()))
    }
}

/// This node's lease in one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FamilyPlan {
    /// The whole pod network (flannel's "Network" / "IPv6Network").
    pub network: IpNet,
    /// This node's pod subnet.
    pub subnet: IpNet,
    /// The VXLAN device's MAC (vxlan only).
    #[serde(rename = "vtepMAC", default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<Mac>,
}

/// Another node, in one family, by how it is reached. In JSON a flat
/// object with a `path` (see [`PeerDoc`]), so type errors name the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PeerDoc", into = "PeerDoc")]
pub enum Peer {
    /// Encapsulated through this family's VXLAN device.
    Vxlan { node: String, subnet: IpNet, public_ip: IpAddr, vtep_mac: Mac },
    /// Routed to the peer's underlay address, which is on-link.
    HostGw { node: String, subnet: IpNet, public_ip: IpAddr },
    /// Carried by `flannel-gen udp` to the peer's public IP and the cluster's port.
    Udp { node: String, subnet: IpNet, public_ip: IpAddr },
    /// Carried by the cloud's route table (aws-vpc, gce): nothing on the node.
    Cloud { node: String, subnet: IpNet, public_ip: IpAddr },
    /// A peer of this family's WireGuard device, at its public IP and the
    /// cluster's port for the family.
    Wireguard { node: String, subnet: IpNet, public_ip: IpAddr, public_key: Key },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerPath {
    Vxlan,
    HostGw,
    Udp,
    Cloud,
    Wireguard,
}

/// A peer as plan.json writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerDoc {
    pub path: PeerPath,
    pub node: String,
    pub subnet: IpNet,
    #[serde(rename = "publicIP")]
    pub public_ip: IpAddr,
    #[serde(rename = "vtepMAC", default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<Key>,
}

impl TryFrom<PeerDoc> for Peer {
    type Error = String;

    fn try_from(d: PeerDoc) -> Result<Peer, String> {
        match (d.path, d.public_key) {
            (PeerPath::Wireguard, _) if d.vtep_mac.is_some() => return Err("a wireguard peer has no `vtepMAC`".into()),
            (PeerPath::Wireguard, Some(public_key)) => {
                return Ok(Peer::Wireguard { node: d.node, subnet: d.subnet, public_ip: d.public_ip, public_key });
            }
            (PeerPath::Wireguard, None) => return Err("a wireguard peer needs `publicKey`".into()),
            (_, Some(_)) => return Err("only a wireguard peer has a `publicKey`".into()),
            (_, None) => {}
        }
        match (d.path, d.vtep_mac) {
            (PeerPath::Vxlan, Some(vtep_mac)) => {
                Ok(Peer::Vxlan { node: d.node, subnet: d.subnet, public_ip: d.public_ip, vtep_mac })
            }
            (PeerPath::Vxlan, None) => Err("a vxlan peer needs `vtepMAC`".into()),
            (PeerPath::HostGw, None) => Ok(Peer::HostGw { node: d.node, subnet: d.subnet, public_ip: d.public_ip }),
            (PeerPath::HostGw, Some(_)) => Err("a host-gw peer has no `vtepMAC`".into()),
            (PeerPath::Udp, None) => Ok(Peer::Udp { node: d.node, subnet: d.subnet, public_ip: d.public_ip }),
            (PeerPath::Udp, Some(_)) => Err("a udp peer has no `vtepMAC`".into()),
            (PeerPath::Cloud, None) => Ok(Peer::Cloud { node: d.node, subnet: d.subnet, public_ip: d.public_ip }),
            (PeerPath::Cloud, Some(_)) => Err("a cloud peer has no `vtepMAC`".into()),
            (PeerPath::Wireguard, _) => Err("a wireguard peer needs `publicKey`".into()),
        }
    }
}

impl From<Peer> for PeerDoc {
    fn from(p: Peer) -> PeerDoc {
        match p {
            Peer::Vxlan { node, subnet, public_ip, vtep_mac } => {
                PeerDoc { path: PeerPath::Vxlan, node, subnet, public_ip, vtep_mac: Some(vtep_mac), public_key: None }
            }
            Peer::HostGw { node, subnet, public_ip } => {
                PeerDoc { path: PeerPath::HostGw, node, subnet, public_ip, vtep_mac: None, public_key: None }
            }
            Peer::Udp { node, subnet, public_ip } => {
                PeerDoc { path: PeerPath::Udp, node, subnet, public_ip, vtep_mac: None, public_key: None }
            }
            Peer::Cloud { node, subnet, public_ip } => {
                PeerDoc { path: PeerPath::Cloud, node, subnet, public_ip, vtep_mac: None, public_key: None }
            }
            Peer::Wireguard { node, subnet, public_ip, public_key } => PeerDoc {
                path: PeerPath::Wireguard,
                node,
                subnet,
                public_ip,
                vtep_mac: None,
                public_key: Some(public_key),
            },
        }
    }
}

impl Peer {
    pub fn node(&self) -> &str {
        match self {
            Peer::Vxlan { node, .. }
            | Peer::HostGw { node, .. }
            | Peer::Udp { node, .. }
            | Peer::Cloud { node, .. }
            | Peer::Wireguard { node, .. } => node,
        }
    }

    pub fn subnet(&self) -> IpNet {
        match self {
            Peer::Vxlan { subnet, .. }
            | Peer::HostGw { subnet, .. }
            | Peer::Udp { subnet, .. }
            | Peer::Cloud { subnet, .. }
            | Peer::Wireguard { subnet, .. } => *subnet,
        }
    }

    pub fn public_ip(&self) -> IpAddr {
        match self {
            Peer::Vxlan { public_ip, .. }
            | Peer::HostGw { public_ip, .. }
            | Peer::Udp { public_ip, .. }
            | Peer::Cloud { public_ip, .. }
            | Peer::Wireguard { public_ip, .. } => *public_ip,
        }
    }

    /// The VTEP MAC the plan programs for this peer (vxlan path only).
    pub fn vtep_mac(&self) -> Option<Mac> {
        match self {
            Peer::Vxlan { vtep_mac, .. } => Some(*vtep_mac),
            Peer::HostGw { .. } | Peer::Udp { .. } | Peer::Cloud { .. } | Peer::Wireguard { .. } => None,
        }
    }

    /// The WireGuard public key of this peer (wireguard path only).
    pub fn public_key(&self) -> Option<Key> {
        match self {
            Peer::Wireguard { public_key, .. } => Some(*public_key),
            _ => None,
        }
    }

    pub fn family(&self) -> Family {
        Family::of_net(&self.subnet())
    }

    pub fn path(&self) -> &'static str {
        match self {
            Peer::Vxlan { .. } => "vxlan",
            Peer::HostGw { .. } => "host-gw",
            Peer::Udp { .. } => "udp",
            Peer::Cloud { .. } => "cloud",
            Peer::Wireguard { .. } => "wireguard",
        }
    }
}

/// A kernel setting, as a sysctl.d key: dotted, or slash form where an
/// interface name (which may contain dots) is part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
    /// Set only while the kernel has this value: a change of the host's
    /// default that must not override an administrator's own choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_from: Option<String>,
}

impl Sysctl {
    /// `key` = `value`, whatever the kernel has.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Self {
        Sysctl { key: key.into(), value: value.into(), only_from: None }
    }

    /// The file under /proc/sys (sysctl.d rules: dots separate unless the key uses slashes).
    pub fn proc_path(&self) -> String {
        if self.key.contains('/') {
            format!("/proc/sys/{}", self.key)
        } else {
            format!("/proc/sys/{}", self.key.replace('.', "/"))
        }
    }
}

impl PlanData {
    pub fn family(&self, f: Family) -> Option<&FamilyPlan> {
        match f {
            Family::V4 => self.ipv4.as_ref(),
            Family::V6 => self.ipv6.as_ref(),
        }
    }

    /// The families this node runs, IPv4 first.
    pub fn families(&self) -> impl Iterator<Item = (Family, &FamilyPlan)> {
        Family::ALL.into_iter().filter_map(|f| self.family(f).map(|p| (f, p)))
    }

    /// The bridge (cni0 / docker0) address of a family: the subnet's first host.
    pub fn gateway(&self, f: Family) -> Option<IpAddr> {
        self.family(f).map(|p| crate::netaddr::first_host(p.subnet))
    }

    /// Pretty JSON, the form `apply --plan` reads.
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A plan that passed [`check`]. Only [`build`] and [`read_plan`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan(PlanData);

impl NodePlan {
    /// Checks `data`; the problems name JSON paths (`peers[3].subnet`).
    pub fn new(data: PlanData) -> Result<NodePlan, Vec<Problem>> {
        let problems = check(&data);
        if problems.is_empty() { Ok(NodePlan(data)) } else { Err(problems) }
    }

    pub fn data(&self) -> &PlanData {
        &self.0
    }
}

impl Deref for NodePlan {
    type Target = PlanData;

    fn deref(&self) -> &PlanData {
        &self.0
    }
}
