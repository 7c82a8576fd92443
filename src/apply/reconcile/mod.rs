//! Plan + live state -> the changes to make, in the order to make them.
//! Pure: no kernel access, so every rule is unit-tested.
//!
//! The desired state comes from a plan, a snapshot or nothing ([`Desired`]).
//! Ownership: a device is flannel-gen's when it carries the cluster's marker
//! in its alias ([`marker`]), whatever its name — so apply finds an old
//! `flannel.42` after a VNI change or a switch to host-gw. A device with a
//! planned name but no marker is adopted (marked) only when it already
//! matches the plan; otherwise apply refuses, unless told to replace it.
//! Routes are ours when they lie inside a cluster network, more specific than
//! it, and off the node's own subnet, with the default metric, and are either
//! flannel-gen's (`proto static`), on an owned device, or to a destination the
//! plan routes (replaced in place); others there are kept. Nexthop objects when their id is in
//! flannel-gen's range (`plan::objects::NEXTHOP_IDS`).

mod entries;
mod links;
mod routes;
mod rules;
pub mod wireguard;

use foldhash::{HashSet, HashSetExt};

use super::desired::Desired;
use super::live::{Live, LiveLink};
use super::ops::Op;
use crate::plan::NodePlan;

/// A change rolled out node by node runs in phases, each on every node
/// before the next (README "Migrating between backends"). A new path's
/// receive side must exist everywhere before anyone sends on it, and an old
/// path's receive side must stay until nobody sends on it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Phase {
    /// Phase 1: build what the plan adds (devices, neighbours, FDB) and move
    /// routes only onto the uplink (host-gw), whose receive side is plain
    /// forwarding. Removes nothing.
    Prepare,
    /// Phase 2: move every route to its planned path and prune; keep retired
    /// devices that still carried routes when this phase began, as peers
    /// that have not switched yet may still send to them.
    Switch,
    /// A plain apply (phase 3): everything as planned, all stale state pruned.
    #[default]
    Complete,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub phase: Phase,
    /// Replace a device with a planned name that flannel-gen did not make
    /// and that differs from the plan (refused otherwise).
    pub adopt: bool,
}

/// Why apply will not touch the node; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{name} exists but flannel-gen did not make it, and it differs from the plan ({differences}); nothing was changed. Remove it, or run apply with --adopt to replace it"
    )]
    Unowned { name: String, differences: String },
}

/// What reconcile works from: the desired state and where it stands now.
struct Ctx<'a> {
    desired: &'a Desired,
    live: &'a Live,
    opts: Options,
    /// Devices made anew in this run: nothing on their old self survives.
    fresh: HashSet<String>,
    /// Owned devices the desired state does not have.
    retired: Vec<&'a LiveLink>,
}

impl Ctx<'_> {
    /// The index of a device that survives this run.
    fn kept_index(&self, name: &str) -> Option<u32> {
        if self.fresh.contains(name) { None } else { self.live.index_of(name) }
    }

    fn prunes(&self) -> bool {
        self.opts.phase != Phase::Prepare
    }
}

/// Everything that must change for the kernel to hold `desired`, in the
/// order it runs.
pub fn reconcile(desired: &Desired, live: &Live, opts: Options) -> Result<Vec<Op>, Refusal> {
    let mut ctx = Ctx { desired, live, opts, fresh: HashSet::new(), retired: Vec::new() };
    let mut ops = Vec::new();
    links::devices(&mut ctx, &mut ops)?;
    wireguard::devices(&mut ctx, &mut ops)?;
    sysctls(&ctx, &mut ops);
    rules::rules(&ctx, &mut ops);
    entries::addresses(&ctx, &mut ops);
    entries::neighbours_and_fdb(&ctx, &mut ops);
    routes::routes(&ctx, &mut ops);
    routes::blackholes(&ctx, &mut ops);
    routes::prune_nexthops(&ctx, &mut ops);
    entries::prune_neighbours_and_fdb(&ctx, &mut ops);
    links::retire(&ctx, &mut ops);
    // Listed in the order they run (stable: within a stage, as found).
    ops.sort_by_key(Op::stage);
    Ok(ops)
}

/// What `plan` needs (the usual apply); for the tests and the plan_json fuzz target.
#[cfg_attr(flannel_gen_audit, allow(dead_code))]
pub fn reconcile_plan(plan: &NodePlan, live: &Live, opts: Options) -> Result<Vec<Op>, Refusal> {
    reconcile(&Desired::from_plan(plan), live, opts)
}

fn sysctls(ctx: &Ctx, ops: &mut Vec<Op>) {
    for s in &ctx.desired.sysctls {
        // A device made anew in this run starts from the kernel's defaults,
        // whatever its predecessor had.
        let fresh = ctx.fresh.iter().any(|d| s.key.contains(&format!("/conf/{d}/")));
        let have = if fresh { None } else { ctx.live.sysctls.get(&s.key) };
        let have = have.map(|v| v.trim().to_string()).unwrap_or_default();
        let leave = s.only_from.as_ref().is_some_and(|from| *from != have);
        if have != s.value && !leave {
            ops.push(Op::Sysctl { key: s.key.clone(), from: have, to: s.value.clone() });
        }
    }
}

#[cfg(test)]
mod tests;
