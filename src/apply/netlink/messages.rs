//! Netlink messages for each kernel object, built from the plan's objects.
//! Flags and fields are chosen per operation: routes in the main table with
//! `proto static` (as networkd and the batch scripts install them),
//! neighbours and FDB entries permanent, FDB entries on the device itself
//! (NTF_SELF).

use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::{AddressMessageBuilder, LinkMessageBuilder, LinkUnspec, LinkVxlan};

use crate::apply::ops::LinkFix;
use crate::mac::Mac;
use crate::plan::objects::{Fdb, Neighbour, Route, VxlanDevice};

const RT_TABLE_MAIN: u8 = 254;

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

/// An address on device `index` (to add or to delete).
pub fn address(index: u32, net: IpNet) -> AddressMessage {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match net {
        IpNet::V4(n) => AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(n.addr(), n.prefix_len()).build(),
        IpNet::V6(n) => AddressMessageBuilder::<Ipv6Addr>::new().index(index).address(n.addr(), n.prefix_len()).build(),
    }
}

/// The request deleting link `index`.
pub fn link_del(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

/// A VXLAN device as the plan has it.
pub fn new_vxlan(d: &VxlanDevice, uplink: u32) -> LinkMessage {
    let mut b = LinkVxlan::new(&d.name, d.vni).dev(uplink).port(d.port).learning(d.learning);
    if d.gbp {
        b = b.gbp();
    }
    let b = match d.local {
        IpAddr::V4(a) => b.local(a),
        IpAddr::V6(a) => b.local6(a),
    };
    b.mtu(d.mtu).address(d.mac.0.to_vec()).build()
}

/// The alias (flannel-gen's marker) and up or down. The kernel ignores
/// IFLA_IFALIAS when it creates a link, so this comes right after; an empty
/// alias clears it.
pub fn alias_and_state(index: u32, alias: Option<&str>, up: bool) -> LinkMessage {
    let b = LinkUnspec::new_with_index(index).alias(alias.unwrap_or_default().to_string());
    if up { b.up().build() } else { b.down().build() }
}

/// No IPv6 link-local address on the overlay device (set before up, as networkd does).
pub fn addrgen_none(index: u32) -> LinkMessage {
    LinkUnspec::new_with_index(index)
        .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
            In6AddrGenMode::None,
        )])]))
        .build()
}

pub fn learning(name: &str, index: u32, on: bool) -> LinkMessage {
    LinkMessageBuilder::<LinkVxlan>::new(name).index(index).learning(on).build()
}

/// MTU, MAC, alias and up/down, in one message.
pub fn fix_link(index: u32, fix: &LinkFix) -> LinkMessage {
    let mut b = LinkUnspec::new_with_index(index);
    if let Some((_, mtu)) = fix.mtu {
        b = b.mtu(mtu);
    }
    if let Some((_, mac)) = fix.mac {
        b = b.address(mac.0.to_vec());
    }
    if let Some((_, alias)) = &fix.alias {
        b = b.alias(alias.clone().unwrap_or_default());
    }
    match fix.up {
        Some(true) => b.up().build(),
        Some(false) => b.down().build(),
        None => b.build(),
    }
}

fn route_header(dst: IpNet) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(dst.addr());
    m.header.destination_prefix_length = dst.prefix_len();
    m.header.table = RT_TABLE_MAIN;
    m.attributes.push(RouteAttribute::Destination(dst.network().into()));
    m
}

/// `route replace DST [via VIA] dev OIF [onlink] proto PROTOCOL`, or with
/// routeStyle nexthop `route replace DST nhid ID proto PROTOCOL`.
pub fn route(r: &Route, oif: u32, protocol: u8) -> RouteMessage {
    let mut m = route_header(r.dst);
    m.header.protocol = RouteProtocol::from(protocol);
    m.header.scope = RouteScope::from(crate::apply::kernel::route_scope(r.scope));
    m.header.kind = RouteType::Unicast;
    if let Some(id) = r.nhid {
        // The nexthop object holds gateway, device and onlink.
        m.attributes.push(RouteAttribute::NhId(id));
        return m;
    }
    if r.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    if let Some(via) = r.via {
        m.attributes.push(RouteAttribute::Gateway(via.into()));
    }
    m.attributes.push(RouteAttribute::Oif(oif));
    m
}

/// `route replace blackhole DST metric BLACKHOLE_METRIC proto static`; as a
/// delete, it matches only that route.
pub fn blackhole(dst: IpNet) -> RouteMessage {
    let mut m = route_header(dst);
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::BlackHole;
    m.attributes.push(RouteAttribute::Priority(crate::plan::objects::BLACKHOLE_METRIC));
    m
}

/// Matches any main-table route to `dst`, whoever installed it (as `ip route del` does).
pub fn route_del(dst: IpNet) -> RouteMessage {
    let mut m = route_header(dst);
    m.header.protocol = RouteProtocol::Unspec;
    m.header.scope = RouteScope::NoWhere;
    m
}

/// `neigh replace IP lladdr MAC dev DEV nud permanent`.
pub fn neigh_add(index: u32, n: &Neighbour) -> NeighbourMessage {
    let mut m = neigh_del(index, n.ip);
    m.header.state = NeighbourState::Permanent;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(n.lladdr.0.to_vec()));
    m
}

/// `bridge fdb replace MAC dev DEV dst IP self permanent`.
pub fn fdb_add(index: u32, f: &Fdb) -> NeighbourMessage {
    let mut m = fdb_del(index, f.lladdr, Some(f.dst));
    m.header.state = NeighbourState::Permanent;
    m
}

pub fn neigh_del(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family(ip);
    m.header.ifindex = index;
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
    m
}

pub fn fdb_del(index: u32, lladdr: Mac, dst: Option<IpAddr>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = index;
    m.header.flags = NeighbourFlags::Own;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(lladdr.0.to_vec()));
    if let Some(d) = dst {
        m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::from(d)));
    }
    m
}
