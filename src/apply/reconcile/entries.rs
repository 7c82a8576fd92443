//! What sits on the desired devices: addresses, permanent neighbours and
//! FDB entries.

use std::net::IpAddr;

use foldhash::HashSet;

use super::Ctx;
use crate::apply::ops::Op;
use crate::mac::Mac;

/// IPv6 link-local addresses are the kernel's business, not ours.
fn link_local(a: &ipnet::IpNet) -> bool {
    matches!(a, ipnet::IpNet::V6(n) if n.addr().is_unicast_link_local())
}

/// The desired addresses of each device; others go once the migration no
/// longer needs them.
pub fn addresses(ctx: &Ctx, ops: &mut Vec<Op>) {
    for name in ctx.desired.planned_names() {
        let name = &name.to_string();
        let want: Vec<ipnet::IpNet> =
            ctx.desired.addresses.iter().filter(|(dev, _)| dev == name).map(|(_, a)| *a).collect();
        let have = ctx.kept_index(name).map_or(&[][..], |i| ctx.live.addrs_of(i));
        for a in want.iter().filter(|a| !have.contains(a)) {
            ops.push(Op::AddAddress { dev: name.clone(), addr: *a });
        }
        if ctx.prunes() {
            for a in have.iter().filter(|a| !want.contains(a) && !link_local(a)) {
                ops.push(Op::DelAddress { dev: name.clone(), addr: *a });
            }
        }
    }
}

/// Missing or different neighbours and FDB entries, all before any route.
/// Live entries are looked up by key (a node has one per peer: thousands).
pub fn neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    let neighs: HashSet<(u32, IpAddr, Mac)> =
        ctx.live.neighs.iter().filter(|h| h.permanent).filter_map(|h| Some((h.ifindex, h.ip, h.lladdr?))).collect();
    let fdbs: HashSet<(u32, Mac, IpAddr)> =
        ctx.live.fdb.iter().filter(|h| h.permanent).filter_map(|h| Some((h.ifindex, h.lladdr, h.dst?))).collect();
    for n in &ctx.desired.neighbours {
        if !ctx.kept_index(&n.dev).is_some_and(|i| neighs.contains(&(i, n.ip, n.lladdr))) {
            ops.push(Op::AddNeigh(n.clone()));
        }
    }
    for f in &ctx.desired.fdb {
        if !ctx.kept_index(&f.dev).is_some_and(|i| fdbs.contains(&(i, f.lladdr, f.dst))) {
            ops.push(Op::AddFdb(f.clone()));
        }
    }
}

/// Permanent neighbours and FDB entries on desired devices that are not desired.
pub fn prune_neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    if !ctx.prunes() {
        return;
    }
    // By address alone: a neighbour with a wrong MAC is replaced in place
    // (NLM_F_REPLACE); deleting it by address afterwards would remove the fix.
    let want_n: HashSet<(&str, IpAddr)> = ctx.desired.neighbours.iter().map(|n| (n.dev.as_str(), n.ip)).collect();
    let want_f: HashSet<(&str, Mac, IpAddr)> =
        ctx.desired.fdb.iter().map(|f| (f.dev.as_str(), f.lladdr, f.dst)).collect();
    for d in &ctx.desired.devices {
        let name = d.vxlan.name.as_str();
        let Some(index) = ctx.kept_index(name) else { continue };
        for f in ctx.live.fdb.iter().filter(|f| f.ifindex == index) {
            if !f.dst.is_some_and(|dst| want_f.contains(&(name, f.lladdr, dst))) {
                ops.push(Op::DelFdb { dev: name.to_string(), lladdr: f.lladdr, dst: f.dst });
            }
        }
        for n in ctx.live.neighs.iter().filter(|n| n.ifindex == index && n.permanent) {
            if !want_n.contains(&(name, n.ip)) {
                ops.push(Op::DelNeigh { dev: name.to_string(), ip: n.ip, lladdr: n.lladdr });
            }
        }
    }
}
