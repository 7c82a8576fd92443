//! Routes to the other nodes' subnets: installed or switched in place
//! (route replace, so traffic moves atomically per peer), pruned when stale.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::{Ctx, Phase, ROUTE_PROTOCOL_STATIC};
use crate::apply::live::{Live, LiveRoute};
use crate::apply::ops::Op;
use crate::netaddr::overlaps;
use crate::plan::NodePlan;
use crate::plan::objects::Route;

/// The routes flannel-gen owns: main table, inside one of the cluster
/// networks but more specific than it, and not this node's own subnet.
pub fn owns_route(plan: &NodePlan, dst: &IpNet) -> bool {
    plan.families()
        .any(|(_, f)| f.network.contains(dst) && dst.prefix_len() > f.network.prefix_len() && !overlaps(*dst, f.subnet))
}

fn describe(r: &LiveRoute, live: &Live) -> String {
    let mut s = r.dst.to_string();
    if let Some(g) = r.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(dev) = r.oif.and_then(|i| live.name_of(i)) {
        s.push_str(&format!(" dev {dev}"));
    }
    if r.onlink {
        s.push_str(" onlink");
    }
    if r.protocol != ROUTE_PROTOCOL_STATIC {
        s.push_str(&format!(" proto {}", super::super::netlink::protocol_name(r.protocol)));
    }
    s
}

fn matches(ctx: &Ctx, want: &Route, have: &LiveRoute) -> bool {
    have.oif.is_some()
        && have.oif == ctx.kept_index(&want.dev)
        && have.gateway == Some(want.via)
        && have.onlink == want.onlink
        && have.protocol == ROUTE_PROTOCOL_STATIC
}

/// Whether a live route vanishes in this run with the device it uses.
fn vanishes(ctx: &Ctx, have: &LiveRoute) -> bool {
    ctx.fresh.iter().any(|name| have.oif.is_some() && have.oif == ctx.live.index_of(name))
}

pub fn routes(ctx: &Ctx, ops: &mut Vec<Op>) {
    let owned: Vec<&LiveRoute> = ctx.live.routes.iter().filter(|r| owns_route(ctx.plan, &r.dst)).collect();
    let by_dst: HashMap<IpNet, &LiveRoute> = owned.iter().map(|r| (r.dst, *r)).collect();
    let uplink = &ctx.plan.uplink.name;
    let mut planned = HashSet::new();
    for r in ctx.plan.routes() {
        planned.insert(r.dst);
        match by_dst.get(&r.dst) {
            Some(have) if matches(ctx, &r, have) => {}
            Some(have) if vanishes(ctx, have) => ops.push(Op::ReplaceRoute { route: r, was: None }),
            // Phase 1 moves routes only onto the uplink; a working route
            // stays until every peer can receive on the new device.
            Some(_) if ctx.opts.phase == Phase::Prepare && r.dev != *uplink => {}
            Some(have) => ops.push(Op::ReplaceRoute { was: Some(describe(have, ctx.live)), route: r }),
            None => ops.push(Op::ReplaceRoute { route: r, was: None }),
        }
    }
    if !ctx.prunes() {
        return;
    }
    for r in owned.iter().filter(|r| !planned.contains(&r.dst) && !vanishes(ctx, r)) {
        ops.push(Op::DelRoute { dst: r.dst, desc: describe(r, ctx.live) });
    }
}
