//! Routes to the other nodes' subnets: installed or switched in place
//! (route replace, so traffic moves atomically per peer), pruned when stale.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use super::{Ctx, Phase};
use crate::apply::desired::RouteState;
use crate::apply::live::{Live, LiveRoute};
use crate::apply::ops::Op;

/// RT_SCOPE_UNIVERSE: the scope of every route flannel-gen (and flanneld) makes.
const ROUTE_SCOPE_UNIVERSE: u8 = 0;

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
    if r.scope != ROUTE_SCOPE_UNIVERSE {
        s.push_str(&format!(" scope {}", r.scope));
    }
    s
}

fn matches(ctx: &Ctx, want: &RouteState, have: &LiveRoute) -> bool {
    have.oif.is_some()
        && have.oif == ctx.kept_index(&want.route.dev)
        && have.gateway == want.route.via
        && have.onlink == want.route.onlink
        && have.protocol == want.protocol
        && have.scope == ROUTE_SCOPE_UNIVERSE
}

/// Whether a live route vanishes in this run with the device it uses.
fn vanishes(ctx: &Ctx, have: &LiveRoute) -> bool {
    ctx.fresh.iter().any(|name| have.oif.is_some() && have.oif == ctx.live.index_of(name))
}

/// Whether a less specific owned route carries traffic to `dst` now (udp's
/// network route) and survives this run.
fn covered(ctx: &Ctx, owned: &[&LiveRoute], dst: IpNet) -> bool {
    owned.iter().any(|r| r.dst.contains(&dst) && r.dst != dst && !vanishes(ctx, r))
}

pub fn routes(ctx: &Ctx, ops: &mut Vec<Op>) {
    let owned: Vec<&LiveRoute> = ctx.live.routes.iter().filter(|r| ctx.desired.owns_route(ctx.live, r)).collect();
    let by_dst: HashMap<IpNet, &LiveRoute> = owned.iter().map(|r| (r.dst, *r)).collect();
    let mut planned = HashSet::new();
    for r in &ctx.desired.routes {
        planned.insert(r.route.dst);
        let op = |was| Op::ReplaceRoute { route: r.route.clone(), protocol: r.protocol, was };
        // Phase 1 moves routes only onto the uplink; a working route — to
        // the subnet, or udp's to the whole network — stays until every peer
        // can receive on the new device.
        let prepare = ctx.opts.phase == Phase::Prepare && r.route.dev != ctx.desired.uplink;
        match by_dst.get(&r.route.dst) {
            Some(have) if matches(ctx, r, have) => {}
            Some(have) if vanishes(ctx, have) => ops.push(op(None)),
            Some(_) if prepare => {}
            Some(have) => ops.push(op(Some(describe(have, ctx.live)))),
            None if prepare && covered(ctx, &owned, r.route.dst) => {}
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
