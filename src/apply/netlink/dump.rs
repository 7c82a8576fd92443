//! Reading the state apply looks at: links, then the addresses, routes,
//! nexthops, neighbours and FDB entries that concern the plan — one dump per
//! kind (the per-peer kinds through [`super::raw`]).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoData, InfoTun, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use super::attr::mac_of;
use super::bulk::Bulk;
use super::prefetch::{self, Prefetched};
use super::{NetlinkError, collect, raw};
use crate::apply::desired::Desired;
use crate::apply::live::{Live, LiveLink, LiveTun, LiveVxlan};

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

/// Dumps what reconcile needs for `desired`: every link; addresses of the
/// uplink and of flannel-gen's devices; main-table routes; flannel-gen's
/// nexthops; neighbours and FDB entries of flannel-gen's devices; the
/// desired sysctls.
pub async fn dump(
    h: &Handle,
    bulk: &RefCell<Bulk>,
    desired: &Desired,
    pre: Option<Prefetched>,
) -> Result<Live, NetlinkError> {
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
    per_peer(&mut bulk.borrow_mut(), &mut live, &ours, pre)?;
    for s in &desired.sysctls {
        if let Ok(v) = std::fs::read_to_string(s.proc_path()) {
            live.sysctls.insert(s.key.clone(), v.trim().to_string());
        }
    }
    Ok(live)
}

/// Routes, nexthops, and the neighbours and FDB entries of the devices in
/// `ours`: from `pre` where it has them, else read now.
fn per_peer(b: &mut Bulk, live: &mut Live, ours: &BTreeSet<u32>, pre: Option<Prefetched>) -> Result<(), NetlinkError> {
    let pre = match pre {
        Some(p) => p,
        None => prefetch::routes(b)?,
    };
    live.routes = pre.routes;
    live.blackholes = pre.blackholes;
    live.nexthops = pre.nexthops;
    live.neighs = pre.neighs.into_iter().filter(|n| ours.contains(&n.ifindex)).collect();
    live.fdb = pre.fdb.into_iter().filter(|f| ours.contains(&f.ifindex)).collect();
    for &i in ours.difference(&pre.devices) {
        raw::neighbours(b, i, &mut live.neighs)?;
        raw::fdb(b, i, &mut live.fdb)?;
    }
    Ok(())
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
