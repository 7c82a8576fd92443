//! Kernel nexthop objects (linux/nexthop.h), which netlink-packet-route does
//! not model: `struct nhmsg` and the NHA_* attributes, written and read here.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::NetlinkError;
use super::attr::{attrs, ip_of, put_attr, u32_of};
use super::bulk::{Bulk, Reply, Requests};
use crate::apply::live::LiveNexthop;
use crate::plan::objects::{NEXTHOP_IDS, Route};

const RTM_NEWNEXTHOP: u16 = 104;
const RTM_DELNEXTHOP: u16 = 105;
const RTM_GETNEXTHOP: u16 = 106;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_ENCAP: u16 = 8;
const NHA_FDB: u16 = 11;
/// RTNH_F_ONLINK (linux/rtnetlink.h).
const RTNH_F_ONLINK: u32 = 4;
/// sizeof(struct nhmsg): family, scope, protocol, reserved (u8 each), flags (u32).
const NHMSG_LEN: usize = 8;

fn nhmsg(family: u8, protocol: u8, flags: u32) -> Vec<u8> {
    let mut b = vec![family, 0, protocol, 0];
    b.extend_from_slice(&flags.to_ne_bytes());
    b
}

fn family_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { libc::AF_INET as u8 } else { libc::AF_INET6 as u8 }
}

/// `nexthop replace id ID via VIA dev OIF [onlink] proto PROTOCOL`: the
/// route's gateway, device and onlink flag as nexthop `id`.
pub fn replace(reqs: &mut Requests, owner: usize, id: u32, r: &Route, oif: u32, protocol: u8) {
    let Some(via) = r.via else { return };
    let mut b = nhmsg(family_of(via), protocol, if r.onlink { RTNH_F_ONLINK } else { 0 });
    put_attr(&mut b, NHA_ID, &id.to_ne_bytes());
    put_attr(&mut b, NHA_OIF, &oif.to_ne_bytes());
    match via {
        IpAddr::V4(a) => put_attr(&mut b, NHA_GATEWAY, &a.octets()),
        IpAddr::V6(a) => put_attr(&mut b, NHA_GATEWAY, &a.octets()),
    }
    let flags = rtnetlink::packet_core::NLM_F_CREATE | rtnetlink::packet_core::NLM_F_REPLACE;
    reqs.raw(owner, RTM_NEWNEXTHOP, flags, &b);
}

/// `nexthop del id ID` (the kernel removes the routes that use it too).
pub fn delete(reqs: &mut Requests, owner: usize, id: u32) {
    let mut b = nhmsg(libc::AF_UNSPEC as u8, 0, 0);
    put_attr(&mut b, NHA_ID, &id.to_ne_bytes());
    reqs.raw(owner, RTM_DELNEXTHOP, 0, &b);
}

/// flannel-gen's nexthop objects (ids in [`NEXTHOP_IDS`]), by id.
pub fn dump(bulk: &mut Bulk) -> Result<BTreeMap<u32, LiveNexthop>, NetlinkError> {
    let mut found = BTreeMap::new();
    bulk.dump(RTM_GETNEXTHOP, &nhmsg(libc::AF_UNSPEC as u8, 0, 0), |r| {
        if let Some(n) = parse(r).filter(|n| NEXTHOP_IDS.contains(&n.id)) {
            found.insert(n.id, n);
        }
    })?;
    Ok(found)
}

/// One RTM_NEWNEXTHOP reply.
fn parse(r: &Reply) -> Option<LiveNexthop> {
    let h = r.payload.get(..NHMSG_LEN)?;
    let flags = u32_of(&h[4..8])?;
    let mut n = LiveNexthop {
        id: 0,
        gateway: None,
        oif: None,
        onlink: flags & RTNH_F_ONLINK != 0,
        protocol: h[2],
        other: false,
    };
    for (kind, v) in attrs(r.payload, NHMSG_LEN) {
        match kind {
            NHA_ID => n.id = u32_of(v)?,
            NHA_OIF => n.oif = Some(u32_of(v)?),
            NHA_GATEWAY => n.gateway = ip_of(v),
            NHA_GROUP | NHA_BLACKHOLE | NHA_ENCAP | NHA_FDB => n.other = true,
            _ => {}
        }
    }
    (n.id != 0).then_some(n)
}
