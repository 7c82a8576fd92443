//! Reading the state apply looks at: links, then the addresses, routes,
//! neighbours and FDB entries that concern the plan — one dump per kind.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoData, InfoTun, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType};

use super::{NetlinkError, collect};
use crate::apply::desired::Desired;
use crate::apply::live::{Live, LiveFdb, LiveLink, LiveNeigh, LiveRoute, LiveTun, LiveVxlan};
use crate::mac::Mac;

const RT_TABLE_MAIN: u32 = 254;
const NUD_PERMANENT: u16 = 0x80;

fn mac_of(bytes: &[u8]) -> Option<Mac> {
    <[u8; 6]>::try_from(bytes).ok().map(Mac)
}

fn vxlan_info(v: &[InfoVxlan]) -> LiveVxlan {
    let mut x = LiveVxlan::default();
    for a in v {
        match a {
            InfoVxlan::Id(id) => x.vni = Some(*id),
            InfoVxlan::Port(p) => x.port = Some(*p),
            InfoVxlan::Local(ip) => x.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => x.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Link(i) => x.link = Some(*i),
            InfoVxlan::Learning(b) => x.learning = Some(*b),
            InfoVxlan::Gbp => x.gbp = Some(true),
            _ => {}
        }
    }
    x
}

/// IFLA_TUN_TYPE, _PI, _MULTI_QUEUE, _PERSIST (linux/if_link.h): u8 each.
/// netlink-packet-route keeps them as raw attributes.
fn tun_info(v: &[InfoTun]) -> LiveTun {
    use rtnetlink::packet_core::Nla;
    let mut t = LiveTun::default();
    for a in v {
        let InfoTun::Other(nla) = a else { continue };
        let mut byte = [0u8; 1];
        if nla.value_len() != 1 {
            continue;
        }
        nla.emit_value(&mut byte);
        match nla.kind() {
            3 => t.tun_type = Some(byte[0]),
            4 => t.pi = Some(byte[0] != 0),
            6 => t.persist = Some(byte[0] != 0),
            7 => t.multi_queue = Some(byte[0] != 0),
            _ => {}
        }
    }
    t
}

pub fn live_link(m: &LinkMessage) -> LiveLink {
    let mut l = LiveLink { index: m.header.index, up: m.header.flags.contains(LinkFlags::Up), ..LiveLink::default() };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::IfAlias(s) => l.alias = Some(s.clone()),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::Address(b) => l.mac = mac_of(b),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => l.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => l.vxlan = Some(vxlan_info(v)),
                        LinkInfo::Data(InfoData::Tun(v)) => l.tun = Some(tun_info(v)),
                        _ => {}
                    }
                }
            }
            LinkAttribute::AfSpecUnspec(specs) => {
                for s in specs {
                    if let AfSpecUnspec::Inet6(v) = s {
                        for x in v {
                            if let AfSpecInet6::AddrGenMode(m) = x {
                                l.addrgen = Some(u8::from(m));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

pub fn live_route(m: &RouteMessage) -> Option<LiveRoute> {
    let h = &m.header;
    if h.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(h.table);
    let (mut dst, mut gateway, mut oif) = (None, None, None);
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(a) => dst = route_addr(a),
            RouteAttribute::Gateway(a) => gateway = route_addr(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return None;
    }
    let dst = match (dst, h.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    Some(LiveRoute {
        dst: IpNet::new(dst, h.destination_prefix_length).ok()?,
        gateway,
        oif,
        onlink: h.flags.contains(RouteFlags::Onlink),
        protocol: u8::from(h.protocol),
        scope: u8::from(h.scope),
    })
}

/// Destination, link-layer address and NUD_PERMANENT of a neighbour or FDB message.
fn neigh_fields(m: &NeighbourMessage) -> (Option<IpAddr>, Option<Mac>, bool) {
    let state: u16 = m.header.state.into();
    let (mut ip, mut mac) = (None, None);
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(IpAddr::V4(*v)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => ip = Some(IpAddr::V6(*v)),
            // FDB destinations arrive as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => ip = raw_ip(b),
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            _ => {}
        }
    }
    (ip, mac, state & NUD_PERMANENT != 0)
}

fn raw_ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Dumps what reconcile needs for `desired`: every link; addresses of the
/// uplink and of flannel-gen's devices; main-table routes; neighbours and
/// FDB entries of flannel-gen's devices; the desired sysctls.
pub async fn dump(h: &Handle, desired: &Desired) -> Result<Live, NetlinkError> {
    let mut live = Live::default();
    for m in collect(h.link().get().execute()).await? {
        let l = live_link(&m);
        live.links.insert(l.name.clone(), l);
    }
    let marker = desired.marker.as_str();
    let ours: BTreeSet<u32> = live
        .links
        .values()
        .filter(|l| desired.planned_names().contains(&l.name.as_str()) || l.alias.as_deref() == Some(marker))
        .map(|l| l.index)
        .collect();
    let uplink = live.index_of(&desired.uplink);
    addresses(h, &mut live, &ours, uplink).await?;
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut req = h.route().get(rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build());
        req.message_mut().header.address_family = family;
        live.routes.extend(collect(req.execute()).await?.iter().filter_map(live_route));
    }
    if !ours.is_empty() {
        neighbours(h, &mut live, &ours).await?;
    }
    for s in &desired.sysctls {
        if let Ok(v) = std::fs::read_to_string(s.proc_path()) {
            live.sysctls.insert(s.key.clone(), v.trim().to_string());
        }
    }
    Ok(live)
}

async fn addresses(h: &Handle, live: &mut Live, ours: &BTreeSet<u32>, uplink: Option<u32>) -> Result<(), NetlinkError> {
    for m in collect(h.address().get().execute()).await? {
        let i = m.header.index;
        if !ours.contains(&i) && Some(i) != uplink {
            continue;
        }
        for a in &m.attributes {
            if let AddressAttribute::Address(ip) = a
                && let Ok(n) = IpNet::new(*ip, m.header.prefix_len)
            {
                live.addrs.entry(i).or_default().push(n);
            }
        }
    }
    Ok(())
}

async fn neighbours(h: &Handle, live: &mut Live, ours: &BTreeSet<u32>) -> Result<(), NetlinkError> {
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let neighs = collect(h.neighbours().get().set_address_family(family).execute()).await?;
        for m in neighs.iter().filter(|m| ours.contains(&m.header.ifindex)) {
            if let (Some(ip), lladdr, permanent) = neigh_fields(m) {
                live.neighs.push(LiveNeigh { ifindex: m.header.ifindex, ip, lladdr, permanent });
            }
        }
    }
    let fdb = collect(h.neighbours().get().set_address_family(AddressFamily::Bridge).execute()).await?;
    for m in fdb.iter().filter(|m| ours.contains(&m.header.ifindex) && m.header.flags.contains(NeighbourFlags::Own)) {
        if let (dst, Some(lladdr), permanent) = neigh_fields(m) {
            live.fdb.push(LiveFdb { ifindex: m.header.ifindex, lladdr, dst, permanent });
        }
    }
    Ok(())
}
