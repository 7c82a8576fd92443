//! The state reconcile makes: the kernel objects flannel-gen owns, as they
//! should be. Three sources, one engine: a plan ([`Desired::from_plan`]), a
//! snapshot of the node taken before an apply (to revert it exactly,
//! [`Desired::snapshot`]), and nothing at all (teardown, [`Desired::nothing`]).
//! The ownership scope — the marker, the cluster networks — travels with it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::kernel::{ROUTE_PROTOCOL_BOOT, ROUTE_PROTOCOL_STATIC, default_metric, planned_scope};
use super::live::Live;
use crate::mac::Mac;
use crate::netaddr::Family;
use crate::plan::objects::{BLACKHOLE_METRIC, Fdb, Neighbour, Route, TunDevice, VxlanDevice, WireguardDevice};
use crate::plan::{NodePlan, Sysctl};
use crate::traffic::iptables::{self, SavedChain};
use crate::traffic::nft;

/// Routes flannel-gen owns: inside `network`, more specific than it, off `subnet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteScope {
    pub network: IpNet,
    pub subnet: IpNet,
}

/// A device as it should be, with its alias (flannel-gen's marker, or none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub vxlan: VxlanDevice,
    pub up: bool,
    pub alias: Option<String>,
}

/// The udp backend's TUN device as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunState {
    pub tun: TunDevice,
    pub up: bool,
    pub alias: Option<String>,
}

/// A WireGuard device as it should be: the device, its peers, its alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireguardState {
    pub device: WireguardDevice,
    pub up: bool,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteState {
    pub route: Route,
    /// rtm_protocol: static for flannel-gen's, whatever a snapshot found.
    pub protocol: u8,
    /// The nexthop object's own protocol, when a snapshot found it differing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nexthop_protocol: Option<u8>,
}

impl RouteState {
    /// The protocol of the route's nexthop object.
    pub fn nexthop_protocol(&self) -> u8 {
        self.nexthop_protocol.unwrap_or(self.protocol)
    }
}

/// A family's nftables table as it should be: what `nft -j list table` must
/// show, and the text that loads it (flanneld's, with its comments, or what
/// `nft list table` printed for a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftState {
    pub table: nft::NftTable,
    pub text: String,
}

/// Traffic rules as they should be, per family: each owned chain's content
/// and jumps, and each owned table's listing. Absent: none of it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RulesState {
    pub iptables: BTreeMap<Family, BTreeMap<String, SavedChain>>,
    pub nft: BTreeMap<Family, NftState>,
    /// A snapshot's iptables tables: one an apply made (iptables-restore
    /// creates its table) goes again on revert when left bare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iptables_tables: Option<BTreeMap<Family, Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// The alias of devices flannel-gen owns.
    pub marker: String,
    pub uplink: String,
    pub scope: Vec<RouteScope>,
    /// Destinations the plan routes: owned whatever their protocol (a
    /// flanneld route to a peer is replaced in place, and torn down).
    /// Sorted, for [`Desired::claims`].
    #[serde(default)]
    pub claimed: Vec<IpNet>,
    /// The families whose rules are in scope.
    pub rule_families: Vec<Family>,
    pub devices: Vec<DeviceState>,
    #[serde(default)]
    pub tun: Option<TunState>,
    #[serde(default)]
    pub wireguard: Vec<WireguardState>,
    pub addresses: Vec<(String, IpNet)>,
    pub neighbours: Vec<Neighbour>,
    pub fdb: Vec<Fdb>,
    pub routes: Vec<RouteState>,
    /// Blackhole routes (the node's own subnets), metric [`BLACKHOLE_METRIC`].
    #[serde(default)]
    pub blackholes: Vec<IpNet>,
    pub rules: RulesState,
    pub sysctls: Vec<Sysctl>,
    /// Why an owned device outside this state goes, for the change line.
    pub retire_reason: String,
}

impl Desired {
    /// What a plan calls for.
    pub fn from_plan(plan: &NodePlan) -> Desired {
        let devices = plan.vxlan_devices();
        let tun = plan.tun_device();
        let wireguard = plan.wireguard_devices();
        let marker = crate::plan::marker(&plan.cluster);
        let networks = plan.network_routes();
        let mut rules = RulesState::default();
        if let Some(t) = plan.traffic_rules {
            for r in plan.family_rules() {
                match t.backend {
                    crate::topology::RulesBackend::Iptables => {
                        let chains = iptables::chains(&r).into_iter().map(|c| (c.owned.chain.to_string(), c.saved()));
                        rules.iptables.insert(r.family, chains.collect());
                    }
                    crate::topology::RulesBackend::Nftables => {
                        if let (Some(table), Some(text)) = (nft::table(&r), nft::table_text(&r)) {
                            rules.nft.insert(r.family, NftState { table, text });
                        }
                    }
                }
            }
        }
        Desired {
            marker: crate::plan::marker(&plan.cluster),
            uplink: plan.uplink.name.clone(),
            scope: plan.families().map(|(_, f)| RouteScope { network: f.network, subnet: f.subnet }).collect(),
            rule_families: plan.families().map(|(f, _)| f).collect(),
            claimed: {
                let mut c: Vec<IpNet> = plan.routes().into_iter().map(|r| r.dst).collect();
                c.sort_unstable();
                c
            },
            addresses: devices
                .iter()
                .map(|d| (d.name.clone(), d.address))
                .chain(tun.iter().map(|t| (t.name.clone(), t.address)))
                .chain(wireguard.iter().map(|w| (w.name.clone(), w.address)))
                .collect(),
            devices: devices
                .into_iter()
                .map(|vxlan| DeviceState { vxlan, up: true, alias: Some(crate::plan::marker(&plan.cluster)) })
                .collect(),
            tun: tun.map(|tun| TunState { tun, up: true, alias: Some(marker.clone()) }),
            wireguard: wireguard
                .into_iter()
                .map(|device| WireguardState { device, up: true, alias: Some(marker.clone()) })
                .collect(),
            neighbours: plan.neighbours().collect(),
            fdb: plan.fdb().collect(),
            routes: plan
                .routes()
                .into_iter()
                .map(|route| {
                    // Plain peer routes are flanneld's own (proto boot); network routes stay static.
                    let plain = plan.route_style == crate::topology::RouteStyle::Plain
                        && !networks.iter().any(|n| n.dst == route.dst);
                    let protocol = if plain { ROUTE_PROTOCOL_BOOT } else { ROUTE_PROTOCOL_STATIC };
                    RouteState { route, protocol, nexthop_protocol: None }
                })
                .collect(),
            blackholes: plan.blackholes(),
            rules,
            sysctls: plan.sysctls.clone(),
            retire_reason: "not in the plan".into(),
        }
    }

    /// Nothing flannel-gen owns, in `plan`'s scope: what teardown makes.
    /// Sysctls are left as they are; so are the rules of a family the plan
    /// does not run (an IPv6 FLANNEL-FWD beside an IPv4-only plan is not its).
    pub fn nothing(plan: &NodePlan) -> Desired {
        Desired {
            rules: RulesState::default(),
            sysctls: Vec::new(),
            ..Desired::from_plan(plan).without_objects("teardown")
        }
    }

    /// The same scope (marker, uplink, cluster network, rule families) with
    /// no devices and nothing on them: the one list of the object kinds.
    fn without_objects(self, retire_reason: &str) -> Desired {
        Desired {
            devices: Vec::new(),
            tun: None,
            wireguard: Vec::new(),
            addresses: Vec::new(),
            neighbours: Vec::new(),
            fdb: Vec::new(),
            routes: Vec::new(),
            blackholes: Vec::new(),
            retire_reason: retire_reason.into(),
            ..self
        }
    }

    /// The owned state of a node as it is now, in the scope of `around`
    /// (the plan about to be applied): what a revert restores. Devices with
    /// the plan's names are included even when unmarked, so an adopted
    /// device gets its alias back. `nft_texts`: what `nft list table`
    /// printed of each family's table in `live`, loaded back on revert
    /// (comments and all).
    pub fn snapshot(live: &Live, around: &Desired, nft_texts: &BTreeMap<Family, String>) -> Desired {
        let mut s = around.clone().without_objects("not in the snapshot");
        let planned = around.planned_names();
        for l in live.links.values() {
            let ours = l.alias.as_deref() == Some(around.marker.as_str()) || planned.contains(&l.name.as_str());
            if !ours {
                continue;
            }
            if let Some(d) = snapshot_device(live, l) {
                collect_entries(live, l.index, &d.vxlan.name, &mut s);
                s.devices.push(d);
            } else if let Some(w) = snapshot_wireguard(live, l, around) {
                s.addresses.push((w.device.name.clone(), w.device.address));
                s.wireguard.push(w);
            } else if let Some(t) = snapshot_tun(live, l, around) {
                s.addresses.push((t.tun.name.clone(), t.tun.address));
                s.tun = Some(t);
            }
        }
        s.routes = live
            .routes
            .iter()
            .filter(|r| around.owns_route(live, r))
            .filter_map(|r| {
                let (via, oif, onlink) = live.path_of(r);
                let dev = oif.and_then(|i| live.name_of(i))?.to_string();
                // A scope no plan has is restored as global, and so rewritten.
                let scope = planned_scope(r.scope).unwrap_or_default();
                let route = Route { dst: r.dst, via, dev, onlink, nhid: r.nhid, scope };
                let nexthop = r.nhid.and_then(|id| live.nexthops.get(&id)).map(|n| n.protocol);
                let nexthop_protocol = nexthop.filter(|p| *p != r.protocol);
                Some(RouteState { route, protocol: r.protocol, nexthop_protocol })
            })
            .collect();
        s.blackholes = live.blackholes.iter().filter(|r| around.owns_blackhole(r)).map(|r| r.dst).collect();
        s.rules = RulesState {
            iptables: live
                .rules
                .iptables
                .iter()
                .map(|(f, m)| (*f, m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()))
                .collect(),
            nft: live
                .rules
                .nft
                .iter()
                .filter_map(|(f, table)| Some((*f, NftState { table: table.clone(), text: nft_texts.get(f)?.clone() })))
                .collect(),
            iptables_tables: Some(live.rules.tables.iter().map(|(f, t)| (*f, t.keys().cloned().collect())).collect()),
        };
        // The plan's keys, and those of the devices recorded here (a device
        // made again starts from the kernel's defaults).
        let device_keys: Vec<String> =
            s.devices.iter().map(|d| format!("net/ipv4/conf/{}/rp_filter", d.vxlan.name)).collect();
        let wanted = |k: &str| around.sysctls.iter().any(|s| s.key == k) || device_keys.iter().any(|d| d == k);
        s.sysctls =
            live.sysctls.iter().filter(|(k, _)| wanted(k)).map(|(k, v)| Sysctl::set(k.clone(), v.clone())).collect();
        s
    }
}

impl Desired {
    /// The same with plain masquerade where fully-random is (the host's
    /// tools cannot take it: see `rules::random_fully`).
    pub fn without_random_fully(mut self) -> Desired {
        for chains in self.rules.iptables.values_mut() {
            for c in chains.values_mut() {
                for r in &mut c.rules {
                    *r = r.replace(" --random-fully", "");
                }
            }
        }
        for s in self.rules.nft.values_mut() {
            s.table = std::mem::take(&mut s.table).without_fully_random();
            s.text = s.text.replace("masquerade fully-random", "masquerade");
        }
        self
    }

    /// Whether any rule masquerades fully-random.
    pub fn wants_random_fully(&self) -> bool {
        let ipt = self.rules.iptables.values().flat_map(|c| c.values()).flat_map(|c| &c.rules);
        ipt.into_iter().any(|r| r.contains("--random-fully"))
            || self.rules.nft.values().any(|s| s.table.masquerades_fully_random())
    }

    /// Whether the plan (or the route record) routes `dst`: a binary search,
    /// as it runs once per live route.
    pub fn claims(&self, dst: &IpNet) -> bool {
        self.claimed.binary_search(dst).is_ok()
    }

    /// Devices this state has, by name.
    pub fn planned_names(&self) -> Vec<&str> {
        let tun = self.tun.iter().map(|t| t.tun.name.as_str());
        let wireguard = self.wireguard.iter().map(|w| w.device.name.as_str());
        self.devices.iter().map(|d| d.vxlan.name.as_str()).chain(tun).chain(wireguard).collect()
    }

    /// Whether a live route is flannel-gen's. With the default metric, and
    /// either inside a cluster network, more specific than it ([`owns`]), and
    /// flannel-gen's (`proto static`), on an owned device or to a
    /// destination the plan routes; or the network route itself on an owned
    /// device (udp's `<network> dev flannel0`). Anything else is kept.
    pub fn owns_route(&self, live: &Live, r: &super::live::LiveRoute) -> bool {
        if r.metric != default_metric(&r.dst) {
            return false;
        }
        let on_ours = r.oif.and_then(|i| live.links.values().find(|l| l.index == i)).is_some_and(|l| {
            l.alias.as_deref() == Some(self.marker.as_str()) || self.planned_names().contains(&l.name.as_str())
        });
        if owns(&self.scope, &r.dst) {
            return on_ours || r.protocol == ROUTE_PROTOCOL_STATIC || self.claims(&r.dst);
        }
        on_ours && self.scope.iter().any(|s| s.network == r.dst)
    }
}

impl Desired {
    /// A blackhole route is flannel-gen's when it has flannel-gen's metric
    /// and lies in a cluster network (an old subnet's too, after a renumbering).
    pub fn owns_blackhole(&self, r: &super::live::LiveRoute) -> bool {
        r.metric == BLACKHOLE_METRIC && self.scope.iter().any(|s| s.network.contains(&r.dst))
    }
}

/// A live userspace WireGuard device as a desired one: its peers as the
/// device has them; its key files as the plan about to be applied names
/// them (the device's private key is not recorded anywhere).
fn snapshot_wireguard(live: &Live, l: &super::live::LiveLink, around: &Desired) -> Option<WireguardState> {
    let have = live.wireguard.get(&l.name)?;
    let address = live.addrs_of(l.index).iter().copied().find(|a| a.prefix_len() == a.max_prefix_len())?;
    let family = Family::of(address.addr());
    let network = around.scope.iter().map(|s| s.network).find(|n| n.contains(&address.addr()))?;
    let planned = around.wireguard.iter().find(|w| w.device.name == l.name).map(|w| &w.device);
    let peers = have
        .peers
        .iter()
        .filter_map(|p| {
            Some(crate::plan::objects::WireguardPeer {
                node: String::new(),
                public_key: p.public_key?,
                endpoint: p.endpoint?,
                allowed_ips: p.allowed_ips.clone(),
            })
        })
        .collect();
    let device = WireguardDevice {
        family,
        name: l.name.clone(),
        port: have.listen_port,
        mtu: l.mtu?,
        address,
        network,
        key_file: planned.map_or_else(|| crate::wireguard::DEFAULT_KEY_FILE.to_string(), |d| d.key_file.clone()),
        psk_file: planned.and_then(|d| d.psk_file.clone()),
        persistent_keepalive: have.peers.first().map_or(0, |p| p.persistent_keepalive),
        public_key: have.public_key?,
        peers,
    };
    Some(WireguardState { device, up: l.up, alias: l.alias.clone() })
}

/// A live TUN device as a desired one (a revert makes it again).
fn snapshot_tun(live: &Live, l: &super::live::LiveLink, around: &Desired) -> Option<TunState> {
    l.tun.as_ref().filter(|_| l.kind.as_deref() == Some("tun"))?;
    let network = around.scope.iter().map(|s| s.network).find(|n| n.addr().is_ipv4())?;
    let address = live.addrs_of(l.index).iter().copied().find(|a| a.addr().is_ipv4() && a.prefix_len() == 32)?;
    let tun = TunDevice { name: l.name.clone(), mtu: l.mtu?, address, network };
    Some(TunState { tun, up: l.up, alias: l.alias.clone() })
}

/// Whether a route to `dst` is flannel-gen's in `scope`.
pub fn owns(scope: &[RouteScope], dst: &IpNet) -> bool {
    scope.iter().any(|s| {
        s.network.contains(dst)
            && dst.prefix_len() > s.network.prefix_len()
            && !crate::netaddr::overlaps(*dst, s.subnet)
    })
}

/// A live VXLAN device as a desired one (other kinds cannot be restored).
fn snapshot_device(live: &Live, l: &super::live::LiveLink) -> Option<DeviceState> {
    let vx = l.vxlan.as_ref().filter(|_| l.kind.as_deref() == Some("vxlan"))?;
    let local: IpAddr = vx.local?;
    let vxlan = VxlanDevice {
        family: Family::of(local),
        name: l.name.clone(),
        vni: vx.vni?,
        port: vx.port?,
        local,
        dev: vx.link.and_then(|i| live.name_of(i))?.to_string(),
        mac: l.mac.unwrap_or(Mac([0; 6])),
        mtu: l.mtu?,
        learning: vx.learning.unwrap_or(false),
        gbp: vx.gbp.unwrap_or(false),
        tx_checksum_offload: live.tx_checksum.get(&l.name).copied().unwrap_or(true),
        address: live.addrs_of(l.index).first().copied().unwrap_or_else(|| IpNet::from(local)),
    };
    Some(DeviceState { vxlan, up: l.up, alias: l.alias.clone() })
}

fn collect_entries(live: &Live, index: u32, name: &str, s: &mut Desired) {
    for a in live.addrs_of(index) {
        s.addresses.push((name.to_string(), *a));
    }
    for n in live.neighs.iter().filter(|n| n.ifindex == index && n.permanent) {
        if let Some(lladdr) = n.lladdr {
            s.neighbours.push(Neighbour { dev: name.to_string(), ip: n.ip, lladdr });
        }
    }
    for f in live.fdb.iter().filter(|f| f.ifindex == index && f.permanent) {
        if let Some(dst) = f.dst {
            s.fdb.push(Fdb { dev: name.to_string(), lladdr: f.lladdr, dst });
        }
    }
}
