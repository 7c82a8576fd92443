//! Routes to the other nodes' subnets: installed or switched in place
//! (route replace, so traffic moves atomically per peer), pruned when stale.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::{Ctx, Phase};
use crate::apply::desired::{RouteState, owns};
use crate::apply::live::{Live, LiveRoute};
use crate::apply::ops::Op;

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
    if r.protocol != super::ROUTE_PROTOCOL_STATIC {
        s.push_str(&format!(" proto {}", crate::apply::netlink::protocol_name(r.protocol)));
    }
    s
}

fn matches(ctx: &Ctx, want: &RouteState, have: &LiveRoute) -> bool {
    have.oif.is_some()
        && have.oif == ctx.kept_index(&want.route.dev)
        && have.gateway == Some(want.route.via)
        && have.onlink == want.route.onlink
        && have.protocol == want.protocol
}

/// Whether a live route vanishes in this run with the device it uses.
fn vanishes(ctx: &Ctx, have: &LiveRoute) -> bool {
    ctx.fresh.iter().any(|name| have.oif.is_some() && have.oif == ctx.live.index_of(name))
}

pub fn routes(ctx: &Ctx, ops: &mut Vec<Op>) {
    let scope = &ctx.desired.scope;
    let owned: Vec<&LiveRoute> = ctx.live.routes.iter().filter(|r| owns(scope, &r.dst)).collect();
    let by_dst: HashMap<IpNet, &LiveRoute> = owned.iter().map(|r| (r.dst, *r)).collect();
    let mut planned = HashSet::new();
    for r in &ctx.desired.routes {
        planned.insert(r.route.dst);
        let op = |was| Op::ReplaceRoute { route: r.route.clone(), protocol: r.protocol, was };
        match by_dst.get(&r.route.dst) {
            Some(have) if matches(ctx, r, have) => {}
            Some(have) if vanishes(ctx, have) => ops.push(op(None)),
            // Phase 1 moves routes only onto the uplink; a working route
            // stays until every peer can receive on the new device.
            Some(_) if ctx.opts.phase == Phase::Prepare && r.route.dev != ctx.desired.uplink => {}
            Some(have) => ops.push(op(Some(describe(have, ctx.live)))),
            None => ops.push(op(None)),
        }
    }
    if !ctx.prunes() {
        return;
    }
    for r in owned.iter().filter(|r| !planned.contains(&r.dst) && !vanishes(ctx, r)) {
        ops.push(Op::DelRoute { dst: r.dst, desc: describe(r, ctx.live) });
    }
}
