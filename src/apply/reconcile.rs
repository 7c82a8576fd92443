//! Plan + live state -> the changes to make, in the order to make them.
//! Pure: no kernel access, so every rule is unit-tested.

use std::collections::{HashMap, HashSet};

use super::live::{Live, LiveRoute};
use super::ops::{LinkFix, Op};
use crate::plan::{NodePlan, Route};

/// rtm_protocol of every route flannel-gen installs (networkd's and `ip`'s `static`).
pub const ROUTE_PROTOCOL_STATIC: u8 = 4;
/// IN6_ADDR_GEN_MODE_NONE: no IPv6 link-local address on the flannel device.
pub const ADDRGEN_NONE: u8 = 1;

/// A backend migration rolled out node by node runs in two phases, each on
/// every node before the next (README "Migrating between backends").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Phase 1: make the new path usable without breaking the old one. Adds
    /// what the plan needs (device, neighbours, FDB) and moves routes to
    /// host-gw, whose receive side is plain forwarding; routes move onto VXLAN
    /// only in phase 2, once every peer has its device. Removes nothing, so
    /// peers that still encapsulate can still reach this node.
    Prepare,
    /// Phase 2, and a plain apply: everything as planned, stale state pruned.
    #[default]
    Complete,
}

/// Why an existing device cannot be kept, if it cannot.
fn replace_reason(plan: &NodePlan, live: &Live) -> Option<String> {
    let want = plan.vxlan.as_ref()?;
    let have = live.links.get(&want.name)?;
    let Some(vx) = have.vxlan.as_ref().filter(|_| have.kind.as_deref() == Some("vxlan")) else {
        return Some(format!("kind {}, want vxlan", have.kind.as_deref().unwrap_or("none")));
    };
    let uplink = live.links.get(&want.dev).map(|l| l.index);
    let mut why = Vec::new();
    if vx.vni != Some(want.vni) {
        why.push(format!("vni {}→{}", show(vx.vni), want.vni));
    }
    if vx.port != Some(want.port) {
        why.push(format!("dstport {}→{}", show(vx.port), want.port));
    }
    if vx.local != Some(want.local) {
        why.push(format!("local {}→{}", show(vx.local), want.local));
    }
    if vx.link != uplink {
        let name = vx.link.and_then(|i| live.name_of(i)).unwrap_or("none");
        why.push(format!("dev {name}→{}", want.dev));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

fn show<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// The routes flannel-gen owns: main table, inside the cluster network but
/// more specific than it, and not this node's own subnet.
pub fn owns_route(plan: &NodePlan, dst: &ipnet::Ipv4Net) -> bool {
    plan.network.contains(dst)
        && dst.prefix_len() > plan.network.prefix_len()
        && !dst.contains(&plan.subnet)
        && !plan.subnet.contains(dst)
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
        s.push_str(&format!(" proto {}", r.protocol));
    }
    s
}

/// Everything that must change for the kernel to match `plan`, in order.
pub fn reconcile(plan: &NodePlan, live: &Live, phase: Phase) -> Vec<Op> {
    let mut ops = Vec::new();
    for s in &plan.sysctls {
        let have = live.sysctls.get(&s.key).map(|v| v.trim().to_string()).unwrap_or_default();
        if have != s.value {
            ops.push(Op::Sysctl { key: s.key.clone(), from: have, to: s.value.clone() });
        }
    }

    // The device. A replaced device takes its neighbours, FDB and routes with it.
    let replaced = replace_reason(plan, live);
    // The planned device's index as it is now (before any replacement).
    let live_dev = live.links.get(&plan.device).map(|l| l.index);
    let fresh = match (&plan.vxlan, live.links.get(&plan.device)) {
        (Some(want), None) => {
            ops.push(Op::CreateLink(want.clone()));
            true
        }
        (Some(want), Some(_)) if replaced.is_some() => {
            ops.push(Op::DeleteLink { name: want.name.clone(), why: replaced.unwrap_or_default(), replacing: true });
            ops.push(Op::CreateLink(want.clone()));
            true
        }
        (Some(want), Some(have)) => {
            let vx = have.vxlan.clone().unwrap_or_default();
            let fix = LinkFix {
                mtu: (have.mtu != Some(want.mtu)).then(|| (have.mtu.unwrap_or(0), want.mtu)),
                mac: have.mac.filter(|m| *m != want.mac).map(|m| (m, want.mac)),
                learning: (vx.learning != Some(want.learning)).then(|| (vx.learning.unwrap_or(true), want.learning)),
                addrgen_none: have.addrgen != Some(ADDRGEN_NONE),
                up: !have.up,
            };
            if !fix.is_empty() {
                ops.push(Op::FixLink { name: want.name.clone(), fix });
            }
            false
        }
        (None, _) => false,
    };
    let dev_index = live_dev.filter(|_| !fresh);

    if let Some(want) = &plan.vxlan {
        let have: Vec<ipnet::Ipv4Net> = dev_index.and_then(|i| live.addrs.get(&i)).cloned().unwrap_or_default();
        if !have.contains(&want.address) {
            ops.push(Op::AddAddress { dev: want.name.clone(), addr: want.address });
        }
        for a in have.iter().filter(|a| **a != want.address && phase == Phase::Complete) {
            ops.push(Op::DelAddress { dev: want.name.clone(), addr: *a });
        }
    }

    // Per peer in flanneld's order: all neighbours and FDB entries go in before
    // any route that needs them.
    let (neighs, fdb) = if fresh { (&[][..], &[][..]) } else { (&live.neighs[..], &live.fdb[..]) };
    let have_neigh: HashMap<_, _> = neighs.iter().map(|n| (n.ip, n)).collect();
    let have_fdb: HashSet<_> = fdb.iter().filter(|f| f.permanent).map(|f| (f.lladdr, f.dst)).collect();
    for n in plan.neighbours() {
        if !have_neigh.get(&n.ip).is_some_and(|h| h.permanent && h.lladdr == Some(n.lladdr)) {
            ops.push(Op::AddNeigh(n.clone()));
        }
    }
    for f in plan.fdb() {
        if !have_fdb.contains(&(f.lladdr, Some(f.dst))) {
            ops.push(Op::AddFdb(f.clone()));
        }
    }

    let index_of = |name: &str| live.links.get(name).map(|l| l.index);
    let owned: Vec<&LiveRoute> = live.routes.iter().filter(|r| owns_route(plan, &r.dst)).collect();
    let by_dst: HashMap<_, _> = owned.iter().map(|r| (r.dst, *r)).collect();
    let matches = |want: &Route, have: &LiveRoute| {
        let dev_ok = if want.dev == plan.device && fresh {
            false
        } else {
            have.oif.is_some() && have.oif == index_of(&want.dev)
        };
        dev_ok && have.gateway == Some(want.via) && have.onlink == want.onlink && have.protocol == ROUTE_PROTOCOL_STATIC
    };
    let mut planned = HashSet::new();
    for r in plan.routes() {
        planned.insert(r.dst);
        match by_dst.get(&r.dst) {
            Some(have) if matches(r, have) => {}
            // Phase 1 keeps a working non-VXLAN route until every peer has its device.
            Some(have)
                if phase == Phase::Prepare && r.dev == plan.device && (have.oif.is_none() || have.oif != live_dev) => {}
            // A route through a device that was just deleted is gone with it.
            Some(have) if fresh && have.oif.is_some() && have.oif == live_dev => {
                ops.push(Op::ReplaceRoute { route: r.clone(), was: None });
            }
            Some(have) => ops.push(Op::ReplaceRoute { route: r.clone(), was: Some(describe(have, live)) }),
            None => ops.push(Op::ReplaceRoute { route: r.clone(), was: None }),
        }
    }
    if phase == Phase::Prepare {
        return ops;
    }
    for r in owned.iter().filter(|r| !planned.contains(&r.dst)) {
        // Routes through a replaced device disappear with it.
        if fresh && r.oif.is_some() && r.oif == live_dev {
            continue;
        }
        ops.push(Op::DelRoute { dst: r.dst, desc: describe(r, live) });
    }

    let want_neigh: HashSet<_> = plan.neighbours().map(|n| n.ip).collect();
    let want_fdb: HashSet<_> = plan.fdb().map(|f| (f.lladdr, Some(f.dst))).collect();
    match (&plan.vxlan, live.links.get(&plan.device)) {
        (Some(_), Some(_)) if !fresh => {
            for f in fdb.iter().filter(|f| !want_fdb.contains(&(f.lladdr, f.dst))) {
                ops.push(Op::DelFdb { dev: plan.device.clone(), lladdr: f.lladdr, dst: f.dst });
            }
            for n in neighs.iter().filter(|n| n.permanent && !want_neigh.contains(&n.ip)) {
                ops.push(Op::DelNeigh { dev: plan.device.clone(), ip: n.ip, lladdr: n.lladdr });
            }
        }
        (None, Some(_)) => {
            ops.push(Op::DeleteLink { name: plan.device.clone(), why: "not in the plan".into(), replacing: false })
        }
        _ => {}
    }
    ops
}

#[cfg(test)]
mod tests;
