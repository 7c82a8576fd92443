//! The kernel objects a plan stands for, derived from its facts in this one
//! place: render (templates, batch scripts, networkd files), apply
//! (reconcile) and diff all read these, never their own copies.
//!
//! Per vxlan peer, flanneld's objects and order (pkg/backend/vxlan/
//! vxlan_network.go `handleSubnetEvents`): permanent neighbour
//! `<subnet.0> lladdr <VTEP MAC>`, FDB `<VTEP MAC> dst <public IP> self
//! permanent`, then the route `<subnet> via <subnet.0> onlink` last, so the
//! kernel never has to resolve the gateway. Per host-gw peer: the route
//! `<subnet> via <public IP>` on the uplink. udp (pkg/backend/udp/
//! udp_network_amd64.go `configureIface`): the TUN device `flannel0` with the
//! subnet's network address as /32, MTU uplink − 28, and one route
//! `<network> dev flannel0`; peers live in the forwarder's table, not the kernel.
//! wireguard: see [`WireguardDevice`].

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{BackendPlan, NodePlan, Peer, PlanData, vxlan_device_name};
use crate::mac::Mac;
use crate::netaddr::Family;

/// A VXLAN device flannel-gen creates (`flannel.<vni>`, `flannel-v6.<vni>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanDevice {
    pub family: Family,
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The node's underlay address (IFLA_VXLAN_LOCAL / LOCAL6).
    pub local: IpAddr,
    /// Underlay device (IFLA_VXLAN_LINK).
    pub dev: String,
    pub mac: Mac,
    pub mtu: u32,
    pub learning: bool,
    pub gbp: bool,
    /// Transmit checksum offload (`tx-checksum-ip-generic`).
    pub tx_checksum_offload: bool,
    /// The subnet's network address as a /32 (/128): flanneld's convention,
    /// so no broadcast route is made and host-to-pod traffic has a source.
    pub address: IpNet,
}

/// The udp backend's TUN device (IFF_TUN, no packet info, multi-queue,
/// persistent): made by apply, read and written by `flannel-gen udp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunDevice {
    pub name: String,
    pub mtu: u32,
    /// The subnet's network address as a /32, as flanneld configures it.
    pub address: IpNet,
    /// The pod network, routed to the device.
    pub network: IpNet,
}

impl TunDevice {
    /// `<network> dev flannel0`: everything in the pod network that is not
    /// more specific (this node's own subnet on the bridge) goes to the forwarder.
    pub fn route(&self) -> Route {
        Route { dst: self.network, via: None, dev: self.name.clone(), onlink: false, nhid: None, scope: Scope::Global }
    }
}

/// A WireGuard device of the wireguard backend, one per family (flanneld's
/// mode separate, pkg/backend/wireguard/device.go): the subnet's network
/// address as /32 (/128), MTU uplink − 80, `<network> dev <device>`, and a
/// peer per other node whose AllowedIPs is that node's subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireguardDevice {
    pub family: Family,
    pub name: String,
    pub port: u16,
    pub mtu: u32,
    pub address: IpNet,
    pub network: IpNet,
    /// Files on the node: the private key, and the pre-shared key if any.
    pub key_file: String,
    pub psk_file: Option<String>,
    /// Seconds; 0 is off.
    pub persistent_keepalive: u16,
    /// The node's own public key: the key in `key_file` must be its private one.
    pub public_key: crate::wireguard::key::Key,
    pub peers: Vec<WireguardPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireguardPeer {
    pub node: String,
    pub public_key: crate::wireguard::key::Key,
    pub endpoint: SocketAddr,
    pub allowed_ips: Vec<IpNet>,
}

/// The scope of a WireGuard device's network route. flanneld asks for link
/// in both families; IPv6 routes have no scope (the kernel keeps and
/// reports universe), so only IPv4's is link.
pub fn wireguard_route_scope(f: Family) -> Scope {
    if f == Family::V4 { Scope::Link } else { Scope::Global }
}

/// flanneld's WireGuard device of a family (mode separate).
fn wireguard_device_name(f: Family) -> &'static str {
    match f {
        Family::V4 => crate::topology::WG_DEVICE,
        Family::V6 => crate::topology::WG_DEVICE_V6,
    }
}

/// flanneld's masquerade and forward rules for one family
/// (pkg/trafficmngr): what to masquerade, and the network to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyRules {
    pub family: Family,
    pub network: IpNet,
    pub subnet: IpNet,
    pub masquerade: bool,
    pub random_fully: bool,
    pub forward: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Neighbour {
    pub dev: String,
    pub ip: IpAddr,
    pub lladdr: Mac,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fdb {
    pub dev: String,
    pub lladdr: Mac,
    pub dst: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    /// `None`: a device route (udp's `<network> dev flannel0`).
    pub via: Option<IpAddr>,
    pub dev: String,
    pub onlink: bool,
    /// routeStyle nexthop: the kernel nexthop object (id) that holds `via`,
    /// `dev` and `onlink`; the route itself is `<dst> nhid <id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhid: Option<u32>,
    #[serde(default, skip_serializing_if = "Scope::is_global")]
    pub scope: Scope,
}

/// A route's scope as flanneld sets it: global (universe) for every route
/// but wireguard's IPv4 network route, which is link
/// (pkg/backend/wireguard/device.go).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Global,
    Link,
}

impl Scope {
    pub fn is_global(&self) -> bool {
        *self == Scope::Global
    }

    /// As `ip route` and networkd's `Scope=` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Link => "link",
        }
    }
}

/// The metric of the blackhole route for the node's own subnet. flanneld's
/// has the default (0 for IPv4): added before the bridge's address, it sits
/// ahead of the kernel's `<subnet> dev cni0` route of the same metric and
/// swallows every pod's traffic. Behind every route a bridge or a CNI plugin
/// makes, it catches only addresses no pod holds, which is its purpose; the
/// metric also tells flannel-gen's blackhole from anyone else's.
pub const BLACKHOLE_METRIC: u32 = 4096;

const NEXTHOP_INDEX_BITS: u32 = crate::topology::RouteStyle::NEXTHOP_INDEX_BITS;
/// The ids flannel-gen's nexthops take, per family: `0x46` ('F') or `0x47`
/// in the top byte, the subnet's index below. Nexthops with ids in
/// [`NEXTHOP_IDS`] are flannel-gen's to change and prune.
const NEXTHOP_BASE_V4: u32 = 0x4600_0000;
const NEXTHOP_BASE_V6: u32 = 0x4700_0000;
pub const NEXTHOP_IDS: std::ops::Range<u32> = NEXTHOP_BASE_V4..NEXTHOP_BASE_V6 + (1 << NEXTHOP_INDEX_BITS);

/// The nexthop id of the route to `subnet` inside `network` (none when the
/// index does not fit; validation refuses such networks for this style).
pub fn nexthop_id(network: IpNet, subnet: IpNet) -> Option<u32> {
    let host_bits = u32::from(subnet.max_prefix_len() - subnet.prefix_len());
    let offset = crate::netaddr::to_bits(subnet.network()).checked_sub(crate::netaddr::to_bits(network.network()))?;
    let index = u32::try_from(offset.checked_shr(host_bits)?).ok().filter(|i| *i < 1 << NEXTHOP_INDEX_BITS)?;
    let base = if subnet.addr().is_ipv4() { NEXTHOP_BASE_V4 } else { NEXTHOP_BASE_V6 };
    Some(base | index)
}

impl PlanData {
    /// The VXLAN device of family `f`, when the backend is vxlan and the node runs `f`.
    pub fn vxlan_device(&self, f: Family) -> Option<VxlanDevice> {
        let BackendPlan::Vxlan { vni, port, gbp, learning, tx_checksum_offload, .. } = self.backend else {
            return None;
        };
        let fam = self.family(f)?;
        Some(VxlanDevice {
            family: f,
            name: vxlan_device_name(f, vni),
            vni,
            port,
            local: self.uplink.address(f)?.addr(),
            dev: self.uplink.name.clone(),
            mac: fam.vtep_mac?,
            // flanneld asks for uplink - 50 on both devices; over IPv6 the
            // kernel caps it at uplink - 70, so that is what the device has.
            mtu: match f {
                Family::V4 => self.mtu,
                Family::V6 => self.mtu.min(self.uplink.mtu.saturating_sub(crate::topology::VXLAN6_HEADROOM)),
            },
            learning,
            gbp,
            tx_checksum_offload,
            address: IpNet::new(fam.subnet.network(), f.bits()).ok()?,
        })
    }

    /// The TUN device, when the backend is udp.
    pub fn tun_device(&self) -> Option<TunDevice> {
        let BackendPlan::Udp { .. } = self.backend else { return None };
        let fam = self.family(Family::V4)?;
        Some(TunDevice {
            name: crate::topology::UDP_DEVICE.to_string(),
            mtu: self.mtu,
            address: IpNet::new(fam.subnet.network(), 32).ok()?,
            network: fam.network,
        })
    }

    /// The node's WireGuard public key and family `f`'s port, when the
    /// backend is wireguard and the node runs `f`; cheap (no peer is looked
    /// at), for what needs only the node's own side.
    pub fn wireguard_identity(&self, f: Family) -> Option<(crate::wireguard::key::Key, u16)> {
        let BackendPlan::Wireguard { port, port_v6, public_key, .. } = self.backend else { return None };
        self.family(f)?;
        Some((public_key, if f == Family::V4 { port } else { port_v6 }))
    }

    /// The WireGuard device of family `f`, when the backend is wireguard and the node runs `f`.
    pub fn wireguard_device(&self, f: Family) -> Option<WireguardDevice> {
        let (public_key, port) = self.wireguard_identity(f)?;
        let BackendPlan::Wireguard { persistent_keepalive, ref key_file, ref psk_file, .. } = self.backend else {
            return None;
        };
        let fam = self.family(f)?;
        let name = wireguard_device_name(f);
        let peers = self
            .peers
            .iter()
            .filter(|p| p.family() == f)
            .filter_map(|p| {
                Some(WireguardPeer {
                    node: p.node().to_string(),
                    public_key: p.public_key()?,
                    endpoint: SocketAddr::new(p.public_ip(), port),
                    allowed_ips: vec![p.subnet()],
                })
            })
            .collect();
        Some(WireguardDevice {
            family: f,
            name: name.to_string(),
            port,
            mtu: self.mtu,
            address: IpNet::new(fam.subnet.network(), f.bits()).ok()?,
            network: fam.network,
            key_file: key_file.clone(),
            psk_file: psk_file.clone(),
            persistent_keepalive,
            public_key,
            peers,
        })
    }

    /// Every WireGuard device of the plan, IPv4 first.
    pub fn wireguard_devices(&self) -> Vec<WireguardDevice> {
        Family::ALL.into_iter().filter_map(|f| self.wireguard_device(f)).collect()
    }

    /// The routes to whole networks: udp's, and wireguard's per family.
    /// Cheap: no peer is looked at (it runs per peer in `path_route`).
    pub fn network_routes(&self) -> Vec<Route> {
        let tun = self.tun_device().map(|t| t.route());
        let wireguard = matches!(self.backend, BackendPlan::Wireguard { .. }).then(|| {
            self.families().map(|(f, fam)| Route {
                dst: fam.network,
                via: None,
                dev: wireguard_device_name(f).to_string(),
                onlink: false,
                nhid: None,
                scope: wireguard_route_scope(f),
            })
        });
        tun.into_iter().chain(wireguard.into_iter().flatten()).collect()
    }

    /// The rules each family needs (none when the plan keeps no rules, or a
    /// family has neither masquerade nor forward rules).
    pub fn family_rules(&self) -> Vec<FamilyRules> {
        let Some(t) = self.traffic_rules else { return Vec::new() };
        self.families()
            .map(|(family, f)| FamilyRules {
                family,
                network: f.network,
                subnet: f.subnet,
                masquerade: self.ip_masq,
                random_fully: t.random_fully,
                forward: t.forward,
            })
            .filter(|r| r.masquerade || r.forward)
            .collect()
    }

    /// Every VXLAN device of the plan, IPv4 first.
    pub fn vxlan_devices(&self) -> Vec<VxlanDevice> {
        Family::ALL.into_iter().filter_map(|f| self.vxlan_device(f)).collect()
    }

    /// The device a vxlan peer of family `f` is reached through.
    fn vxlan_dev_name(&self, f: Family) -> String {
        vxlan_device_name(f, self.backend.vni().unwrap_or_default())
    }
}

impl NodePlan {
    pub fn neighbours(&self) -> impl Iterator<Item = Neighbour> + '_ {
        self.peers.iter().filter_map(|p| self.neighbour_of(p))
    }

    pub fn fdb(&self) -> impl Iterator<Item = Fdb> + '_ {
        self.peers.iter().filter_map(|p| self.fdb_of(p))
    }

    /// The permanent neighbour for a vxlan peer's gateway.
    pub fn neighbour_of(&self, p: &Peer) -> Option<Neighbour> {
        match p {
            Peer::Vxlan { subnet, vtep_mac, .. } => {
                Some(Neighbour { dev: self.vxlan_dev_name(p.family()), ip: subnet.network(), lladdr: *vtep_mac })
            }
            Peer::HostGw { .. } | Peer::Udp { .. } | Peer::Cloud { .. } | Peer::Wireguard { .. } => None,
        }
    }

    /// Where frames for a vxlan peer's VTEP MAC go.
    pub fn fdb_of(&self, p: &Peer) -> Option<Fdb> {
        match p {
            Peer::Vxlan { public_ip, vtep_mac, .. } => {
                Some(Fdb { dev: self.vxlan_dev_name(p.family()), lladdr: *vtep_mac, dst: *public_ip })
            }
            Peer::HostGw { .. } | Peer::Udp { .. } | Peer::Cloud { .. } | Peer::Wireguard { .. } => None,
        }
    }

    /// Every route the plan makes: one per vxlan or host-gw peer, or the
    /// network routes of udp and wireguard.
    pub fn routes(&self) -> Vec<Route> {
        self.peers.iter().filter_map(|p| self.route_of(p)).chain(self.network_routes()).collect()
    }

    /// The interface a direct route to `ip` leaves by: the connected one
    /// whose network holds it, else the uplink.
    pub fn device_toward(&self, ip: IpAddr) -> &str {
        self.connected.iter().find(|c| c.ip.trunc().contains(&ip)).map_or(&self.uplink.name, |c| &c.interface)
    }

    /// The node's own subnets, when the plan blackholes them
    /// (`ipBlackholeRoute`; flanneld's --ip-blackhole-route).
    pub fn blackholes(&self) -> Vec<IpNet> {
        if !self.blackhole_route {
            return Vec::new();
        }
        self.families().map(|(_, f)| f.subnet).collect()
    }

    /// The kernel route traffic to `p` takes: its own, or the network route
    /// of its family (udp, wireguard).
    pub fn path_route(&self, p: &Peer) -> Option<Route> {
        self.route_of(p).or_else(|| self.network_routes().into_iter().find(|r| r.dst.contains(&p.subnet())))
    }

    /// The kernel route to one peer's subnet (none for a udp peer: the
    /// forwarder's table routes it; none for a wireguard peer: its device's
    /// AllowedIPs do).
    pub fn route_of(&self, p: &Peer) -> Option<Route> {
        match p {
            Peer::Vxlan { subnet, .. } => Some(Route {
                dst: *subnet,
                via: Some(subnet.network()),
                dev: self.vxlan_dev_name(p.family()),
                onlink: true,
                nhid: self.nhid_of(p),
                scope: Scope::Global,
            }),
            Peer::HostGw { subnet, public_ip, .. } => Some(Route {
                dst: *subnet,
                via: Some(*public_ip),
                dev: self.device_toward(*public_ip).to_string(),
                onlink: false,
                nhid: self.nhid_of(p),
                scope: Scope::Global,
            }),
            Peer::Udp { .. } | Peer::Cloud { .. } | Peer::Wireguard { .. } => None,
        }
    }

    /// The nexthop object a peer's route goes through (routeStyle nexthop).
    fn nhid_of(&self, p: &Peer) -> Option<u32> {
        if self.route_style != crate::topology::RouteStyle::Nexthop {
            return None;
        }
        nexthop_id(self.family(p.family())?.network, p.subnet())
    }
}
