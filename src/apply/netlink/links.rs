//! Links as apply sees them ([`LiveLink`]): one dump on the bulk socket,
//! each message decoded by netlink-packet-route, then reduced to what
//! reconcile compares (VXLAN and TUN details, alias, MTU, addrgen mode).

use std::net::IpAddr;

use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoData, InfoTun, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use super::NetlinkError;
use super::attr::{mac_of, put_attr};
use super::bulk::Bulk;
use crate::apply::live::{LiveLink, LiveTun, LiveVxlan};

const RTM_GETLINK: u16 = 18;
/// sizeof(struct ifinfomsg), all zero: every link of every family.
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;

/// Every link in `bulk`'s namespace.
pub fn dump(bulk: &mut Bulk) -> Result<Vec<LiveLink>, NetlinkError> {
    let mut out = Vec::new();
    bulk.decoded((RTM_GETLINK, false), &[0; IFINFOMSG_LEN], "a link", |m: LinkMessage| out.push(live_link(&m)))?;
    Ok(out)
}

/// The link named `name`, if there is one (one request, not a dump).
pub fn by_name(bulk: &mut Bulk, name: &str) -> Result<Option<LiveLink>, NetlinkError> {
    let mut body = vec![0; IFINFOMSG_LEN];
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    put_attr(&mut body, IFLA_IFNAME, &value);
    let mut found = None;
    match bulk.decoded((RTM_GETLINK, true), &body, "a link", |m: LinkMessage| found = Some(live_link(&m))) {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
        r => r.map(|()| found),
    }
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

fn live_link(m: &LinkMessage) -> LiveLink {
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
