//! Kernel nexthop objects (linux/nexthop.h), which netlink-packet-route does
//! not model: `struct nhmsg` and the NHA_* attributes, written and read here.

use std::net::IpAddr;

use super::bulk::{Reply, Requests, attrs, put_attr};
use crate::apply::live::LiveNexthop;
use crate::plan::objects::Route;

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

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

/// The dump request: every nexthop of every family.
pub fn dump_request() -> Vec<u8> {
    nhmsg(libc::AF_UNSPEC as u8, 0, 0)
}

/// One RTM_NEWNEXTHOP reply.
pub fn parse(r: &Reply) -> Option<LiveNexthop> {
    let h = r.payload.get(..NHMSG_LEN)?;
    let flags = u32::from_ne_bytes(h[4..8].try_into().ok()?);
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
            NHA_ID => n.id = u32::from_ne_bytes(v.try_into().ok()?),
            NHA_OIF => n.oif = Some(u32::from_ne_bytes(v.try_into().ok()?)),
            NHA_GATEWAY => n.gateway = ip_of(v),
            NHA_GROUP | NHA_BLACKHOLE | NHA_ENCAP | NHA_FDB => n.other = true,
            _ => {}
        }
    }
    (n.id != 0).then_some(n)
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}
