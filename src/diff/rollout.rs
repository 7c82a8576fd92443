//! How disruptive a change is, and the phases a node-by-node rollout of it
//! takes (README "Migrating between backends").

use serde::Serialize;

use crate::plan::NodePlan;

/// The disruption class of a change, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disruption {
    /// Nothing changes (a node's plan and files stay; only the headline uses it).
    None,
    /// Each node converges on its own, peer by peer, in place.
    InPlace,
    /// Nodes must move together, in phases.
    Phased,
    /// Pods are renumbered or a node leaves: drain first.
    Disruptive,
}

impl Disruption {
    pub fn describe(self) -> &'static str {
        match self {
            Disruption::None => "none",
            Disruption::InPlace => "per-peer in place",
            Disruption::Phased => "phased rollout required",
            Disruption::Disruptive => "disruptive",
        }
    }
}

/// The phases a rollout needs, when it needs any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phasing {
    /// Peers change path: phase 1, then phase 2, on every node.
    TwoPhases,
    /// The device peers' traffic goes through is replaced by another whose
    /// routes cannot take over in phase 1 (a VNI change, vxlan ↔ wireguard):
    /// phase 1, phase 2 (the old device stays for peers not yet switched),
    /// then a plain apply.
    ReplaceDevice,
    /// Onto udp: phase 1, start the forwarders, phase 2, a plain apply.
    OntoUdp,
    /// Off udp: phase 1, phase 2, a plain apply, then stop the forwarders.
    OffUdp,
}

/// One step of a rollout: what it does, and the command run on every node
/// (`{node}` stands for each node's name).
pub struct Step {
    pub what: &'static str,
    pub command: &'static str,
}

impl Phasing {
    pub fn steps(self) -> Vec<Step> {
        let p1 = Step {
            what: "build what the new plan adds; removes nothing",
            command: "flannel-gen apply {topology} --node {node} --phase 1",
        };
        let p2 = Step {
            what: "move every route to its new path",
            command: "flannel-gen apply {topology} --node {node} --phase 2",
        };
        let done =
            Step { what: "remove what no peer uses any more", command: "flannel-gen apply {topology} --node {node}" };
        let start = Step { what: "start the udp forwarder", command: "systemctl enable --now flannel-gen-udp.service" };
        let stop = Step { what: "stop the udp forwarder", command: "systemctl disable --now flannel-gen-udp.service" };
        match self {
            Phasing::TwoPhases => vec![p1, p2],
            Phasing::ReplaceDevice => vec![p1, p2, done],
            Phasing::OntoUdp => vec![p1, start, p2, done],
            Phasing::OffUdp => vec![p1, p2, done, stop],
        }
    }
}

/// The class of the change from `old` to `new` on one node (either may be
/// absent: a node joins or leaves), and its phasing.
pub fn classify(old: Option<&NodePlan>, new: Option<&NodePlan>) -> (Disruption, Option<Phasing>) {
    let (o, n) = match (old, new) {
        (Some(o), Some(n)) => (o, n),
        (None, Some(_)) => return (Disruption::InPlace, None),
        _ => return (Disruption::Disruptive, None),
    };
    let renumbered =
        o.families().map(|(_, f)| (f.network, f.subnet)).ne(n.families().map(|(_, f)| (f.network, f.subnet)));
    let phasing = phasing(o, n);
    let class = if renumbered {
        Disruption::Disruptive
    } else if phasing.is_some() {
        Disruption::Phased
    } else if o == n {
        Disruption::None
    } else {
        Disruption::InPlace
    };
    (class, phasing)
}

pub fn phasing(o: &NodePlan, n: &NodePlan) -> Option<Phasing> {
    match (o.tun_device().is_some(), n.tun_device().is_some()) {
        (false, true) => return Some(Phasing::OntoUdp),
        (true, false) => return Some(Phasing::OffUdp),
        _ => {}
    }
    let names = |p: &NodePlan| p.vxlan_devices().into_iter().map(|d| d.name).collect::<Vec<_>>();
    let (on, nn) = (names(o), names(n));
    if !on.is_empty() && !nn.is_empty() && on != nn {
        return Some(Phasing::ReplaceDevice);
    }
    // WireGuard's network route cannot move in phase 1 (only uplink routes
    // do), and leaving it keeps its device busy until phase 2 began.
    let wg = |p: &NodePlan| p.backend.kind() == crate::topology::BackendKind::Wireguard;
    match (wg(o), wg(n)) {
        (true, false) => return Some(Phasing::ReplaceDevice),
        (false, true) if !on.is_empty() => return Some(Phasing::ReplaceDevice),
        _ => {}
    }
    let (po, pn) = (super::peer_paths(o), super::peer_paths(n));
    let moved = pn.iter().any(|(k, path)| po.get(k).is_some_and(|was| was != path));
    moved.then_some(Phasing::TwoPhases)
}
