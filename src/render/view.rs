//! What templates see: the plan's facts and its derived kernel objects
//! ([`crate::plan::objects`]), grouped the way the artefacts are laid out
//! (per device, per family). Templates format; they never derive.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::mac::Mac;
use crate::plan::objects::{Fdb, Neighbour, Route, TunDevice, VxlanDevice, WireguardDevice, wireguard_route_scope};
use crate::plan::{NodePlan, Sysctl, Uplink};

#[derive(Serialize)]
pub struct View<'a> {
    pub node: &'a str,
    pub cluster: &'a str,
    /// The alias that marks flannel-gen's devices (see [`crate::plan::marker`]).
    pub marker: String,
    pub backend: &'static str,
    #[serde(rename = "ipMasq")]
    pub ip_masq: bool,
    pub mtu: u32,
    pub uplink: &'a Uplink,
    pub ipv4: Option<FamilyView>,
    pub ipv6: Option<FamilyView>,
    pub devices: Vec<DeviceView>,
    /// wireguard: its devices, each with its peers.
    pub wireguard: Vec<WireguardView>,
    /// udp: the TUN device, and the port the forwarder listens on.
    pub tun: Option<TunDevice>,
    pub udp_port: Option<u16>,
    /// Routes to peers reached directly over the uplink (host-gw, directRouting).
    pub direct_routes: Vec<RouteView>,
    /// The connected interfaces, each with the direct routes leaving by it.
    pub connected: Vec<ConnectedView>,
    /// Every route of the plan, in peer order (udp: its network route).
    pub routes: Vec<RouteView>,
    /// The node's own subnets when the plan blackholes them, and the metric.
    pub blackholes: Vec<String>,
    pub blackhole_metric: u32,
    pub sysctls: &'a [Sysctl],
    /// Where flannel-gen is installed on the node (for the boot unit).
    pub binary: &'a str,
    /// The traffic rules as their tools load them (see [`crate::traffic`]).
    pub rules: RulesView,
}

/// flanneld's masquerade and forward rules, per tool.
#[derive(Serialize, Default)]
pub struct RulesView {
    /// `iptables` or `nftables`; absent when the plan keeps no rules.
    pub backend: Option<&'static str>,
    /// iptables-restore input per family.
    pub iptables: Option<String>,
    pub ip6tables: Option<String>,
    /// One `nft -f` script for both families.
    pub nft: Option<String>,
}

impl RulesView {
    fn new(plan: &NodePlan) -> RulesView {
        use crate::netaddr::Family;
        use crate::topology::RulesBackend;
        use crate::traffic::{iptables, nft};
        let rules = plan.family_rules();
        let Some(t) = plan.traffic_rules.filter(|_| !rules.is_empty()) else { return RulesView::default() };
        let mut v = RulesView { backend: Some(t.backend.as_str()), ..RulesView::default() };
        match t.backend {
            RulesBackend::Iptables => {
                for r in &rules {
                    let text = Some(iptables::boot_file(r));
                    match r.family {
                        Family::V4 => v.iptables = text,
                        Family::V6 => v.ip6tables = text,
                    }
                }
            }
            RulesBackend::Nftables => {
                let script: String =
                    rules.iter().map(|r| nft::replace_script(r.family, nft::table_text(r).as_deref())).collect();
                v.nft = Some(script);
            }
        }
        v
    }
}

#[derive(Serialize)]
pub struct FamilyView {
    pub network: IpNet,
    pub subnet: IpNet,
    pub subnet_len: u8,
    pub gateway: IpAddr,
}

#[derive(Serialize)]
pub struct DeviceView {
    pub name: String,
    pub family: &'static str,
    pub vni: u32,
    pub port: u16,
    pub local: IpAddr,
    pub dev: String,
    pub mac: Mac,
    pub mtu: u32,
    pub learning: bool,
    pub gbp: bool,
    pub tx_checksum_offload: bool,
    pub address: IpNet,
    pub peers: Vec<VxlanPeerView>,
}

#[derive(Serialize)]
pub struct VxlanPeerView {
    pub node: String,
    pub public_ip: IpAddr,
    pub neighbour: NeighbourView,
    pub fdb: FdbView,
    pub route: RouteView,
}

#[derive(Serialize)]
pub struct NeighbourView {
    pub dev: String,
    pub ip: IpAddr,
    pub lladdr: Mac,
}

#[derive(Serialize)]
pub struct FdbView {
    pub dev: String,
    pub lladdr: Mac,
    pub dst: IpAddr,
}

#[derive(Serialize)]
pub struct ConnectedView {
    pub name: String,
    pub routes: Vec<RouteView>,
}

#[derive(Serialize)]
pub struct RouteView {
    pub node: String,
    pub dst: IpNet,
    pub via: Option<IpAddr>,
    pub dev: String,
    pub onlink: bool,
    /// routeStyle nexthop: the nexthop object's id (it holds via, dev, onlink).
    pub nhid: Option<u32>,
    /// The route's protocol: `boot` for plain peer routes (flanneld's),
    /// `static` otherwise.
    pub proto: &'static str,
    /// `global`, or `link` (wireguard's network route).
    pub scope: &'static str,
}

/// A WireGuard device and the scope of its network route.
#[derive(Debug, Serialize)]
pub struct WireguardView {
    #[serde(flatten)]
    pub device: WireguardDevice,
    pub route_scope: &'static str,
}

impl From<Neighbour> for NeighbourView {
    fn from(n: Neighbour) -> Self {
        NeighbourView { dev: n.dev, ip: n.ip, lladdr: n.lladdr }
    }
}

impl From<Fdb> for FdbView {
    fn from(f: Fdb) -> Self {
        FdbView { dev: f.dev, lladdr: f.lladdr, dst: f.dst }
    }
}

fn route_view(node: &str, r: Route, proto: &'static str) -> RouteView {
    let scope = r.scope.as_str();
    RouteView {
        node: node.to_string(),
        dst: r.dst,
        via: r.via,
        dev: r.dev,
        onlink: r.onlink,
        nhid: r.nhid,
        proto,
        scope,
    }
}

/// A peer route's protocol name (see [`RouteView::proto`]).
fn peer_proto(plan: &NodePlan) -> &'static str {
    if plan.route_style == crate::topology::RouteStyle::Plain { "boot" } else { "static" }
}

fn device_view(plan: &NodePlan, d: VxlanDevice) -> DeviceView {
    let peers = plan
        .peers
        .iter()
        .filter(|p| p.family() == d.family)
        .filter_map(|p| {
            let (n, f) = (plan.neighbour_of(p)?, plan.fdb_of(p)?);
            Some(VxlanPeerView {
                node: p.node().to_string(),
                public_ip: p.public_ip(),
                neighbour: n.into(),
                fdb: f.into(),
                route: route_view(p.node(), plan.route_of(p)?, peer_proto(plan)),
            })
        })
        .collect();
    DeviceView {
        name: d.name,
        family: d.family.name(),
        vni: d.vni,
        port: d.port,
        local: d.local,
        dev: d.dev,
        mac: d.mac,
        mtu: d.mtu,
        learning: d.learning,
        gbp: d.gbp,
        tx_checksum_offload: d.tx_checksum_offload,
        address: d.address,
        peers,
    }
}

impl<'a> View<'a> {
    /// The view without its per-peer parts (devices' peers, routes), for
    /// templates that do not read them.
    pub fn forget_peers(&mut self) {
        for d in &mut self.devices {
            d.peers = Vec::new();
        }
        self.routes = Vec::new();
        self.direct_routes = Vec::new();
    }

    pub fn new(plan: &'a NodePlan, binary: &'a str) -> View<'a> {
        let family = |f| {
            let p = plan.family(f)?;
            Some(FamilyView {
                network: p.network,
                subnet: p.subnet,
                subnet_len: p.subnet.prefix_len(),
                gateway: plan.gateway(f)?,
            })
        };
        let proto = peer_proto(plan);
        let peer_routes = plan.peers.iter().filter_map(|p| Some(route_view(p.node(), plan.route_of(p)?, proto)));
        let tun = plan.tun_device();
        let network_route = plan.network_routes().into_iter().map(|r| route_view("", r, "static"));
        let routes: Vec<RouteView> = peer_routes.chain(network_route).collect();
        let direct = |dev: &str| -> Vec<RouteView> {
            plan.peers
                .iter()
                .filter(|p| p.path() == "host-gw")
                .filter_map(|p| Some(route_view(p.node(), plan.route_of(p)?, proto)))
                .filter(|r| r.dev == dev)
                .collect()
        };
        let direct_routes = direct(&plan.uplink.name);
        let connected = plan
            .connected
            .iter()
            .map(|c| ConnectedView { name: c.interface.clone(), routes: direct(&c.interface) })
            .collect();
        let udp_port = match plan.backend {
            crate::plan::BackendPlan::Udp { port } => Some(port),
            _ => None,
        };
        View {
            node: &plan.node,
            cluster: &plan.cluster,
            marker: crate::plan::marker(&plan.cluster),
            backend: plan.backend.kind().as_str(),
            ip_masq: plan.ip_masq,
            mtu: plan.mtu,
            uplink: &plan.uplink,
            ipv4: family(crate::netaddr::Family::V4),
            ipv6: family(crate::netaddr::Family::V6),
            devices: plan.vxlan_devices().into_iter().map(|d| device_view(plan, d)).collect(),
            wireguard: plan
                .wireguard_devices()
                .into_iter()
                .map(|device| WireguardView { route_scope: wireguard_route_scope(device.family).as_str(), device })
                .collect(),
            tun,
            udp_port,
            direct_routes,
            connected,
            routes,
            blackholes: plan.blackholes().iter().map(ToString::to_string).collect(),
            blackhole_metric: crate::plan::objects::BLACKHOLE_METRIC,
            sysctls: &plan.sysctls,
            binary,
            rules: RulesView::new(plan),
        }
    }
}
