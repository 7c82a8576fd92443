//! Routes to the other nodes' subnets: installed or switched in place
//! (route replace, so traffic moves atomically per peer), pruned when stale;
//! and the blackhole routes of the node's own subnets.

use foldhash::{HashMap, HashSet, HashSetExt};
use ipnet::IpNet;

use super::{Ctx, Phase};
use crate::apply::desired::RouteState;
use crate::apply::kernel::{ROUTE_PROTOCOL_STATIC, ROUTE_SCOPE_UNIVERSE, planned_scope, route_scope};
use crate::apply::live::{Live, LiveNexthop, LiveRoute};
use crate::apply::ops::Op;
use crate::plan::objects::{BLACKHOLE_METRIC, NEXTHOP_IDS};

fn describe(r: &LiveRoute, live: &Live) -> String {
    let mut s = r.dst.to_string();
    let (gateway, oif, onlink) = live.path_of(r);
    if let Some(g) = gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(dev) = oif.and_then(|i| live.name_of(i)) {
        s.push_str(&format!(" dev {dev}"));
    }
    if onlink {
        s.push_str(" onlink");
    }
    if let Some(id) = r.nhid {
        s.push_str(&format!(" nhid {id}"));
    }
    if r.protocol != ROUTE_PROTOCOL_STATIC {
        s.push_str(&format!(" proto {}", crate::apply::kernel::protocol_name(r.protocol)));
    }
    if r.scope != ROUTE_SCOPE_UNIVERSE {
        let name = planned_scope(r.scope).map_or_else(|| r.scope.to_string(), |s| s.as_str().to_string());
        s.push_str(&format!(" scope {name}"));
    }
    s
}

/// Whether a live route is the planned one: the same path (through the
/// planned nexthop object, when the plan has one, with nothing else in it).
fn matches(ctx: &Ctx, want: &RouteState, have: &LiveRoute) -> bool {
    let (gateway, oif, onlink) = ctx.live.path_of(have);
    let nexthop_ok = have
        .nhid
        .is_none_or(|id| ctx.live.nexthops.get(&id).is_some_and(|n| !n.other && n.protocol == want.nexthop_protocol()));
    have.nhid == want.route.nhid
        && nexthop_ok
        && oif.is_some()
        && oif == ctx.kept_index(&want.route.dev)
        && gateway == want.route.via
        && onlink == want.route.onlink
        && have.protocol == want.protocol
        && have.scope == route_scope(want.route.scope)
}

/// Whether a live route vanishes in this run with the device it uses.
fn vanishes(ctx: &Ctx, have: &LiveRoute) -> bool {
    let oif = ctx.live.path_of(have).1;
    ctx.fresh.iter().any(|name| oif.is_some() && oif == ctx.live.index_of(name))
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
        let op = |was| Op::ReplaceRoute {
            route: r.route.clone(),
            protocol: r.protocol,
            nexthop_protocol: r.nexthop_protocol(),
            was,
        };
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

/// flannel-gen's nexthop objects (ids in [`NEXTHOP_IDS`]) that no planned
/// route goes through, once the routes have moved off them.
pub fn prune_nexthops(ctx: &Ctx, ops: &mut Vec<Op>) {
    if !ctx.prunes() {
        return;
    }
    let planned: HashSet<u32> = ctx.desired.routes.iter().filter_map(|r| r.route.nhid).collect();
    let on_fresh = |oif: Option<u32>| ctx.fresh.iter().any(|name| oif.is_some() && oif == ctx.live.index_of(name));
    for n in ctx.live.nexthops.values() {
        if NEXTHOP_IDS.contains(&n.id) && !planned.contains(&n.id) && !on_fresh(n.oif) {
            ops.push(Op::DelNexthop { id: n.id, desc: describe_nexthop(n, ctx.live) });
        }
    }
}

fn describe_nexthop(n: &LiveNexthop, live: &Live) -> String {
    let mut s = format!("id {}", n.id);
    if let Some(g) = n.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(dev) = n.oif.and_then(|i| live.name_of(i)) {
        s.push_str(&format!(" dev {dev}"));
    }
    if n.onlink {
        s.push_str(" onlink");
    }
    s
}

/// The blackhole routes of the node's own subnets; owned ones the desired
/// state lacks go (not in phase 1).
pub fn blackholes(ctx: &Ctx, ops: &mut Vec<Op>) {
    let live = &ctx.live.blackholes;
    for dst in &ctx.desired.blackholes {
        if !live.iter().any(|r| r.dst == *dst && r.metric == BLACKHOLE_METRIC) {
            ops.push(Op::AddBlackhole { dst: *dst });
        }
    }
    if ctx.prunes() {
        for r in live.iter().filter(|r| ctx.desired.owns_blackhole(r) && !ctx.desired.blackholes.contains(&r.dst)) {
            ops.push(Op::DelBlackhole { dst: r.dst });
        }
    }
}
