//! What sits on the desired devices: addresses, permanent neighbours and
//! FDB entries.

use std::collections::HashSet;

use super::{Ctx, by_index};
use crate::apply::ops::Op;
use crate::plan::objects::{Fdb, Neighbour};

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
pub fn neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    let neighs = by_index(&ctx.live.neighs, |n| n.ifindex);
    let fdbs = by_index(&ctx.live.fdb, |f| f.ifindex);
    for n in &ctx.desired.neighbours {
        let have = ctx.kept_index(&n.dev).and_then(|i| neighs.get(&i)).map_or(&[][..], Vec::as_slice);
        if !have.iter().any(|h| h.ip == n.ip && h.permanent && h.lladdr == Some(n.lladdr)) {
            ops.push(Op::AddNeigh(n.clone()));
        }
    }
    for f in &ctx.desired.fdb {
        let have = ctx.kept_index(&f.dev).and_then(|i| fdbs.get(&i)).map_or(&[][..], Vec::as_slice);
        if !have.iter().any(|h| h.permanent && h.lladdr == f.lladdr && h.dst == Some(f.dst)) {
            ops.push(Op::AddFdb(f.clone()));
        }
    }
}

/// Permanent neighbours and FDB entries on desired devices that are not desired.
pub fn prune_neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    if !ctx.prunes() {
        return;
    }
    let want_n: HashSet<&Neighbour> = ctx.desired.neighbours.iter().collect();
    let want_f: HashSet<&Fdb> = ctx.desired.fdb.iter().collect();
    for d in &ctx.desired.devices {
        let name = &d.vxlan.name;
        let Some(index) = ctx.kept_index(name) else { continue };
        for f in ctx.live.fdb.iter().filter(|f| f.ifindex == index) {
            let planned = f.dst.is_some_and(|dst| want_f.contains(&Fdb { dev: name.clone(), lladdr: f.lladdr, dst }));
            if !planned {
                ops.push(Op::DelFdb { dev: name.clone(), lladdr: f.lladdr, dst: f.dst });
            }
        }
        for n in ctx.live.neighs.iter().filter(|n| n.ifindex == index && n.permanent) {
            let planned =
                n.lladdr.is_some_and(|lladdr| want_n.contains(&Neighbour { dev: name.clone(), ip: n.ip, lladdr }));
            if !planned {
                ops.push(Op::DelNeigh { dev: name.clone(), ip: n.ip, lladdr: n.lladdr });
            }
        }
    }
}
