//! What sits on the planned devices: their address, permanent neighbours
//! and FDB entries.

use std::collections::HashSet;

use super::{Ctx, by_index};
use crate::apply::ops::Op;
use crate::netaddr::Family;
use crate::plan::objects::{Fdb, Neighbour};

/// Each device's /32 (/128); other addresses of its family go once the
/// migration no longer needs them.
pub fn addresses(ctx: &Ctx, ops: &mut Vec<Op>) {
    for d in &ctx.devices {
        let have = ctx.kept_index(&d.name).map_or(&[][..], |i| ctx.live.addrs_of(i));
        if !have.contains(&d.address) {
            ops.push(Op::AddAddress { dev: d.name.clone(), addr: d.address });
        }
        if ctx.prunes() {
            for a in have.iter().filter(|a| **a != d.address && Family::of_net(a) == d.family) {
                ops.push(Op::DelAddress { dev: d.name.clone(), addr: *a });
            }
        }
    }
}

/// Missing or different neighbours and FDB entries, all before any route.
pub fn neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    let neighs = by_index(&ctx.live.neighs, |n| n.ifindex);
    let fdbs = by_index(&ctx.live.fdb, |f| f.ifindex);
    for n in ctx.plan.neighbours() {
        let have = ctx.kept_index(&n.dev).and_then(|i| neighs.get(&i)).map_or(&[][..], Vec::as_slice);
        if !have.iter().any(|h| h.ip == n.ip && h.permanent && h.lladdr == Some(n.lladdr)) {
            ops.push(Op::AddNeigh(n));
        }
    }
    for f in ctx.plan.fdb() {
        let have = ctx.kept_index(&f.dev).and_then(|i| fdbs.get(&i)).map_or(&[][..], Vec::as_slice);
        if !have.iter().any(|h| h.permanent && h.lladdr == f.lladdr && h.dst == Some(f.dst)) {
            ops.push(Op::AddFdb(f));
        }
    }
}

/// Permanent neighbours and FDB entries on planned devices the plan does not have.
pub fn prune_neighbours_and_fdb(ctx: &Ctx, ops: &mut Vec<Op>) {
    if !ctx.prunes() {
        return;
    }
    let want_n: HashSet<Neighbour> = ctx.plan.neighbours().collect();
    let want_f: HashSet<Fdb> = ctx.plan.fdb().collect();
    for d in &ctx.devices {
        let Some(index) = ctx.kept_index(&d.name) else { continue };
        for f in ctx.live.fdb.iter().filter(|f| f.ifindex == index) {
            let planned = f.dst.is_some_and(|dst| want_f.contains(&Fdb { dev: d.name.clone(), lladdr: f.lladdr, dst }));
            if !planned {
                ops.push(Op::DelFdb { dev: d.name.clone(), lladdr: f.lladdr, dst: f.dst });
            }
        }
        for n in ctx.live.neighs.iter().filter(|n| n.ifindex == index && n.permanent) {
            let planned =
                n.lladdr.is_some_and(|lladdr| want_n.contains(&Neighbour { dev: d.name.clone(), ip: n.ip, lladdr }));
            if !planned {
                ops.push(Op::DelNeigh { dev: d.name.clone(), ip: n.ip, lladdr: n.lladdr });
            }
        }
    }
}
