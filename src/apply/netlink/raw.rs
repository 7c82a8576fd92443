//! Dumps of the per-peer objects — routes, neighbours, FDB entries — read
//! straight from the receive buffer into the plain live types, one small
//! value per object and nothing else allocated. The kernel filters first:
//! routes by table and type, neighbours and FDB entries by device
//! (strict dump checking, linux/rtnetlink.h `NETLINK_GET_STRICT_CHK`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::NetlinkError;
use super::attr::{attrs, ip_of, mac_of, put_attr, u32_of};
use super::bulk::{Bulk, Reply};
use crate::apply::live::{LiveFdb, LiveNeigh, LiveRoute};
use crate::mac::Mac;

const RTM_GETROUTE: u16 = 26;
const RTM_GETNEIGH: u16 = 30;
const RT_TABLE_MAIN: u8 = 254;
const RTN_UNICAST: u8 = 1;
pub const RTN_BLACKHOLE: u8 = 6;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;
const RTM_F_ONLINK: u32 = 4;
/// sizeof(struct rtmsg) and sizeof(struct ndmsg).
const RTMSG_LEN: usize = 12;
const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_IFINDEX: u16 = 8;
const NUD_PERMANENT: u16 = 0x80;
/// NTF_SELF: an entry of the device itself, not of a bridge above it.
const NTF_SELF: u8 = 0x02;

/// Unicast routes of the main table of one family (`AF_INET`, `AF_INET6`).
pub fn routes(bulk: &mut Bulk, family: u8, out: &mut Vec<LiveRoute>) -> Result<(), NetlinkError> {
    routes_of(bulk, family, RTN_UNICAST, out)
}

/// Main-table routes of one family and type (`RTN_*`).
pub fn routes_of(bulk: &mut Bulk, family: u8, want: u8, out: &mut Vec<LiveRoute>) -> Result<(), NetlinkError> {
    let req = [family, 0, 0, 0, RT_TABLE_MAIN, 0, 0, want, 0, 0, 0, 0];
    bulk.dump(RTM_GETROUTE, &req, |r| out.extend(route(r, want)))
}

fn route(r: &Reply, want: u8) -> Option<LiveRoute> {
    let h = r.payload.get(..RTMSG_LEN)?;
    let (family, dst_len, table, protocol, scope, kind) = (h[0], h[1], h[4], h[5], h[6], h[7]);
    let flags = u32_of(&h[8..12])?;
    let mut table = u32::from(table);
    let (mut dst, mut gateway, mut oif, mut nhid, mut metric) = (None, None, None, None, 0);
    for (k, v) in attrs(r.payload, RTMSG_LEN) {
        match k {
            RTA_DST => dst = ip_of(v),
            RTA_GATEWAY => gateway = ip_of(v),
            RTA_OIF => oif = u32_of(v),
            RTA_TABLE => table = u32_of(v)?,
            RTA_NH_ID => nhid = u32_of(v),
            RTA_PRIORITY => metric = u32_of(v).unwrap_or(0),
            _ => {}
        }
    }
    if kind != want || table != u32::from(RT_TABLE_MAIN) {
        return None;
    }
    let dst = match (dst, i32::from(family)) {
        (Some(d), _) => d,
        (None, libc::AF_INET) => IpAddr::from([0u8; 4]),
        (None, libc::AF_INET6) => IpAddr::from([0u8; 16]),
        _ => return None,
    };
    Some(LiveRoute {
        dst: IpNet::new(dst, dst_len).ok()?,
        gateway,
        oif,
        onlink: flags & RTM_F_ONLINK != 0,
        protocol,
        scope,
        nhid,
        metric,
    })
}

/// The dump request for neighbours (or FDB entries) of one device.
fn neigh_request(family: u8, ifindex: u32) -> Vec<u8> {
    let mut req = vec![family, 0, 0, 0];
    // The FDB dump takes the device from the header, the neighbour dump from NDA_IFINDEX.
    let header_index = if i32::from(family) == libc::AF_BRIDGE { ifindex } else { 0 };
    req.extend_from_slice(&header_index.to_ne_bytes());
    req.extend_from_slice(&[0; 4]);
    put_attr(&mut req, NDA_IFINDEX, &ifindex.to_ne_bytes());
    req
}

/// The fields of a neighbour (or FDB) message apply looks at.
struct NeighFields {
    ifindex: u32,
    state: u16,
    flags: u8,
    ip: Option<IpAddr>,
    mac: Option<Mac>,
}

fn neigh_fields(r: &Reply) -> Option<NeighFields> {
    let h = r.payload.get(..NDMSG_LEN)?;
    let mut n = NeighFields {
        ifindex: u32_of(&h[4..8])?,
        state: u16::from_ne_bytes([h[8], h[9]]),
        flags: h[10],
        ip: None,
        mac: None,
    };
    for (k, v) in attrs(r.payload, NDMSG_LEN) {
        match k {
            NDA_DST => n.ip = ip_of(v),
            NDA_LLADDR => n.mac = mac_of(v),
            _ => {}
        }
    }
    Some(n)
}

/// IPv4 and IPv6 neighbours of device `ifindex`.
pub fn neighbours(bulk: &mut Bulk, ifindex: u32, out: &mut Vec<LiveNeigh>) -> Result<(), NetlinkError> {
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        bulk.dump(RTM_GETNEIGH, &neigh_request(family, ifindex), |r| {
            if let Some(n) = neigh_fields(r).filter(|n| n.ifindex == ifindex)
                && let Some(ip) = n.ip
            {
                out.push(LiveNeigh { ifindex, ip, lladdr: n.mac, permanent: n.state & NUD_PERMANENT != 0 });
            }
        })?;
    }
    Ok(())
}

/// The FDB entries of device `ifindex` itself (NTF_SELF).
pub fn fdb(bulk: &mut Bulk, ifindex: u32, out: &mut Vec<LiveFdb>) -> Result<(), NetlinkError> {
    bulk.dump(RTM_GETNEIGH, &neigh_request(libc::AF_BRIDGE as u8, ifindex), |r| {
        if let Some(n) = neigh_fields(r).filter(|n| n.ifindex == ifindex && n.flags & NTF_SELF != 0)
            && let Some(lladdr) = n.mac
        {
            out.push(LiveFdb { ifindex, lladdr, dst: n.ip, permanent: n.state & NUD_PERMANENT != 0 });
        }
    })
}
