//! Reading the state apply looks at: links ([`super::links`]), then the
//! addresses, routes, nexthops, neighbours and FDB entries that concern the
//! plan — one dump per kind (the per-peer kinds through [`super::raw`]).

use std::cell::RefCell;
use std::collections::BTreeSet;

use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};

use super::bulk::Bulk;
use super::prefetch::{self, Prefetched};
use super::{NetlinkError, links, raw};
use crate::apply::desired::Desired;
use crate::apply::live::Live;

/// Dumps what reconcile needs for `desired`: every link; addresses of the
/// uplink and of flannel-gen's devices; main-table routes; flannel-gen's
/// nexthops; neighbours and FDB entries of flannel-gen's devices; the
/// desired sysctls.
pub fn dump(bulk: &RefCell<Bulk>, desired: &Desired, mut pre: Option<Prefetched>) -> Result<Live, NetlinkError> {
    let mut live = Live::default();
    // The links read ahead, under the same lock, or read now: one dump.
    let links = match pre.as_mut() {
        Some(p) => std::mem::take(&mut p.links),
        None => links::dump(&mut bulk.borrow_mut())?,
    };
    for l in links {
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
    addresses(&mut bulk.borrow_mut(), &mut live, &ours, uplink)?;
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

/// RTM_GETADDR, and sizeof(struct ifaddrmsg) all zero: every address.
const RTM_GETADDR: u16 = 22;
const IFADDRMSG_LEN: usize = 8;

/// The addresses of the devices in `ours` and of the uplink.
fn addresses(b: &mut Bulk, live: &mut Live, ours: &BTreeSet<u32>, uplink: Option<u32>) -> Result<(), NetlinkError> {
    b.decoded((RTM_GETADDR, false), &[0; IFADDRMSG_LEN], "an address", |m: AddressMessage| {
        let i = m.header.index;
        if !ours.contains(&i) && Some(i) != uplink {
            return;
        }
        for a in &m.attributes {
            if let AddressAttribute::Address(ip) = a
                && let Ok(n) = IpNet::new(*ip, m.header.prefix_len)
            {
                live.addrs.entry(i).or_default().push(n);
            }
        }
    })
}
