//! The source language: a cluster topology file, parsed with locations
//! ([`schema`], [`parse`]) and validated into a typed [`Cluster`] ([`validate`]).

pub mod netconf;
pub mod parse;
pub mod schema;
pub mod validate;

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::diag::{Diagnostics, Pos};
use crate::mac::Mac;
use crate::netaddr::{Family, PerFamily, SubnetPool};

/// flanneld's defaults, and the kernel's VXLAN port that flannel relies on.
pub const DEFAULT_VNI: u32 = 1;
pub const DEFAULT_VXLAN_PORT: u16 = 8472;
/// flanneld's udp backend port (pkg/backend/udp/udp_amd64.go `defaultPort`).
pub const DEFAULT_UDP_PORT: u16 = 8285;
/// flanneld's udp `encapOverhead`: outer IPv4 (20) + UDP (8) headers.
pub const UDP_OVERHEAD: u32 = 28;
/// The TUN device of the udp backend (flanneld opens `flannel%d`, which is
/// `flannel0` on a node running one flanneld).
pub const UDP_DEVICE: &str = "flannel0";
pub const DEFAULT_INTERFACE: &str = "eth0";
pub const DEFAULT_MTU: u32 = 1500;
/// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers.
/// flanneld takes 50 for IPv6 underlays too (pkg/backend/vxlan/vxlan_network.go).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The kernel's headroom for VXLAN over IPv6 (VXLAN6_HEADROOM: 40 + 8 + 8 + 14):
/// it clamps an IPv6 VXLAN device's MTU to the underlay's less this.
pub const VXLAN6_HEADROOM: u32 = 70;
/// flanneld's wireguard defaults and devices (pkg/backend/wireguard/
/// wireguard.go `RegisterNetwork`, mode separate: one device per family).
pub const DEFAULT_WG_PORT: u16 = 51820;
pub const DEFAULT_WG_PORT_V6: u16 = 51821;
pub const WG_DEVICE: &str = "flannel-wg";
pub const WG_DEVICE_V6: &str = "flannel-wg-v6";
/// flanneld's wireguard `overhead` (wireguard_network.go): outer IPv6 (40,
/// the larger header) + UDP (8) + type, key index, nonce (16) + tag (16).
pub const WG_OVERHEAD: u32 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Vxlan,
    HostGw,
    /// flannel's original backend: a TUN device and a userspace forwarder.
    Udp,
    /// Routes in AWS VPC route tables (flannel's `aws-vpc`): no overlay device.
    AwsVpc,
    /// Routes in a GCE network (flannel's `gce`): no overlay device.
    Gce,
    /// An encrypted overlay: WireGuard devices `flannel-wg`/`flannel-wg-v6`.
    Wireguard,
}

impl BackendKind {
    pub const NAMES: &[&str] = &["vxlan", "host-gw", "udp", "aws-vpc", "gce", "wireguard"];

    /// "vxlan, host-gw, udp, aws-vpc, gce or wireguard", for messages.
    pub fn names_text() -> String {
        let (last, rest) = Self::NAMES.split_last().unwrap_or((&"", &[]));
        format!("{} or {last}", rest.join(", "))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Vxlan => "vxlan",
            BackendKind::HostGw => "host-gw",
            BackendKind::Udp => "udp",
            BackendKind::AwsVpc => "aws-vpc",
            BackendKind::Gce => "gce",
            BackendKind::Wireguard => "wireguard",
        }
    }

    pub fn parse(s: &str) -> Option<BackendKind> {
        match s {
            "vxlan" => Some(BackendKind::Vxlan),
            "host-gw" => Some(BackendKind::HostGw),
            "udp" => Some(BackendKind::Udp),
            "aws-vpc" => Some(BackendKind::AwsVpc),
            "gce" => Some(BackendKind::Gce),
            "wireguard" => Some(BackendKind::Wireguard),
            _ => None,
        }
    }

    /// Bytes the encapsulation takes from the underlay MTU.
    pub fn overhead(self) -> u32 {
        match self {
            BackendKind::Vxlan => VXLAN_OVERHEAD,
            BackendKind::HostGw | BackendKind::AwsVpc | BackendKind::Gce => 0,
            BackendKind::Udp => UDP_OVERHEAD,
            BackendKind::Wireguard => WG_OVERHEAD,
        }
    }

    /// Whether the cloud's route table carries pod traffic (no overlay
    /// device and no peer routes on the node).
    pub fn is_cloud(self) -> bool {
        matches!(self, BackendKind::AwsVpc | BackendKind::Gce)
    }
}

/// Where a cloud route backend writes its routes (cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudBackend {
    /// flannel's `RouteTableID`; empty: each node's subnet's route table,
    /// found as flanneld finds it (the subnet's own, else the VPC's main one).
    Aws { route_tables: Vec<String> },
    /// The project and network the `compute.routes` entries belong to.
    Gce { project: String, network: String },
}

/// A node's identity in its cloud, the next hop of its subnet's route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum NodeCloud {
    #[serde(rename_all = "camelCase")]
    Aws {
        #[serde(rename = "instanceID")]
        instance_id: String,
    },
    #[serde(rename_all = "camelCase")]
    Gce { instance: String, zone: String },
}

/// The wireguard backend's settings besides `port` (flanneld's
/// `ListenPort`): the IPv6 device's port, the keepalive, and where each
/// node keeps its keys (paths on the node; the keys never leave it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireguardBackend {
    /// flanneld's `ListenPortV6`.
    pub port_v6: u16,
    /// flanneld's `PersistentKeepaliveInterval`, seconds; 0 is off.
    pub persistent_keepalive: u16,
    /// The node's private key (`flannel-gen wireguard keygen` makes it).
    pub key_file: String,
    /// A pre-shared key for every peer (flanneld's `PSK`, but from a file).
    pub psk_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub kind: BackendKind,
    pub vni: u32,
    pub port: u16,
    pub direct_routing: bool,
    /// VXLAN Group Based Policy extension (flanneld's `GBP`).
    pub gbp: bool,
    /// MAC learning on the VXLAN device (flanneld's `Learning`, default off).
    pub learning: bool,
    /// Transmit checksum offload on the VXLAN device. Off works around
    /// kernels that send VXLAN with bad inner checksums (flannel #1279).
    pub tx_checksum_offload: bool,
    pub route_style: RouteStyle,
    /// aws-vpc and gce only.
    pub cloud: Option<CloudBackend>,
    /// wireguard only.
    pub wireguard: Option<WireguardBackend>,
}

/// How a route to a peer's subnet is made. flanneld makes `<subnet> via <gw>
/// [onlink]` routes (plain); the kernel inserts those in time that grows with
/// the number of gateways already present (every such route shares one
/// fib_info hash bucket), so at thousands of peers each route goes through
/// its own kernel nexthop object instead (`nexthop id N via <gw>` + `<subnet>
/// nhid N`): the same forwarding, the same wire, a third of the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteStyle {
    /// flanneld's routes, byte for byte.
    Plain,
    /// A nexthop object per peer, the route pointing at it (Linux ≥ 5.3, systemd ≥ 248).
    #[default]
    Nexthop,
}

impl RouteStyle {
    /// Bits of a nexthop id that hold the subnet's index in its network.
    pub const NEXTHOP_INDEX_BITS: u32 = 24;
    pub const NAMES: [&str; 2] = ["plain", "nexthop"];

    pub fn parse(s: &str) -> Option<RouteStyle> {
        match s {
            "plain" => Some(RouteStyle::Plain),
            "nexthop" => Some(RouteStyle::Nexthop),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteStyle::Plain => "plain",
            RouteStyle::Nexthop => "nexthop",
        }
    }
}

/// Which tool keeps flannel's masquerade and forward rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RulesBackend {
    /// iptables (what Docker and kube-proxy use; iptables-nft on Debian).
    Iptables,
    /// nftables, flanneld's `EnableNFTables`.
    Nftables,
}

impl RulesBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesBackend::Iptables => "iptables",
            RulesBackend::Nftables => "nftables",
        }
    }
}

/// flanneld's traffic manager settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// `None`: flannel-gen installs no rules (`trafficRules: none`).
    pub rules: Option<RulesBackend>,
    /// flanneld's --iptables-forward-rules (default on).
    pub forward: bool,
    /// MASQUERADE with --random-fully (flanneld's default; off with
    /// --ip-masq-random-fully-disable).
    pub random_fully: bool,
}

/// A value and where the topology (or lock file) wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// What the topology pins for one node in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pins {
    pub subnet: Option<Located<IpNet>>,
    pub vtep_mac: Option<Located<Mac>>,
}

/// A validated cluster: every value typed and every rule checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub source: PathBuf,
    pub name: String,
    /// Where node subnets come from, per enabled family.
    pub pools: PerFamily<SubnetPool>,
    pub ip_masq: bool,
    /// A blackhole route for each node's own subnet (flanneld's --ip-blackhole-route).
    pub blackhole_route: bool,
    pub traffic: Traffic,
    pub backend: Backend,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Position in the file's `nodes` list, for error messages.
    pub index: usize,
    pub name: String,
    pub pos: Pos,
    /// Underlay address with its prefix per family, e.g. `192.168.31.61/24`;
    /// the prefix is the node's on-link network.
    pub ips: PerFamily<IpNet>,
    /// Where peers reach it, when that is not `ips` (behind NAT).
    pub public: PerFamily<std::net::IpAddr>,
    pub interface: String,
    /// Other networks the node is on, each through its own interface.
    pub connected: Vec<Connected>,
    /// Underlay MTU of `interface`.
    pub mtu: u32,
    pub pins: PerFamily<Pins>,
    /// The node's instance, with a cloud route backend.
    pub cloud: Option<NodeCloud>,
    /// The node's WireGuard public key: written in the topology, or recorded
    /// in the lock file (`flannel-gen lock --wireguard-key`).
    pub wireguard_key: Option<crate::wireguard::key::Key>,
}

/// A network a node has an interface on besides its uplink's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connected {
    pub interface: String,
    /// The node's address there, with the prefix.
    pub ip: IpNet,
}

impl Node {
    /// The address `from` sends this node's traffic to: its local address
    /// when `from` shares its on-link network (behind the same NAT, or no
    /// NAT), else its public one.
    pub fn reached_from(&self, from: &Node, family: Family) -> Option<std::net::IpAddr> {
        let local = self.ips.get(family)?.addr();
        match self.public.get(family) {
            Some(public) if !from.on_link(family, self) => Some(*public),
            _ => Some(local),
        }
    }

    /// Whether `other` is reached without a router: its underlay address lies
    /// in this node's on-link prefix, or in a `connected` network. flanneld decides directRouting the same
    /// way (a route lookup for the peer's public IP that has no gateway,
    /// pkg/ip/iface.go `DirectRouting`); it may be asymmetric.
    pub fn on_link(&self, family: Family, other: &Node) -> bool {
        match (self.ips.get(family), other.ips.get(family)) {
            (Some(mine), Some(theirs)) => {
                mine.trunc().contains(&theirs.addr())
                    || self.connected.iter().any(|c| c.ip.trunc().contains(&theirs.addr()))
            }
            _ => false,
        }
    }
}

impl Cluster {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A "did you mean" for an unknown node name.
    pub fn suggest_node(&self, name: &str) -> Option<String> {
        crate::diag::suggest(name, self.nodes.iter().map(|n| n.name.as_str())).map(str::to_string)
    }
}

/// Parse and validate a topology file (`-` for standard input); every problem is a located diagnostic.
pub fn load(path: &Path) -> Result<Cluster, Diagnostics> {
    let text = crate::input::read_text(path)?;
    let name = crate::input::display_name(path);
    let doc = parse::parse_topology(&name, &text)?;
    validate::validate(&name, &doc)
}
