//! Back end 3: what changes between two topologies, node by node. A semantic
//! summary a reviewer can act on (routes that change path, devices that go,
//! MTU and subnet changes and what they affect), then the unified diff of
//! every rendered file that changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::netaddr::Family;
use crate::plan::objects::{VxlanDevice, WireguardDevice};
use crate::plan::{BackendPlan, NodePlan, Peer};
use crate::render::{RenderError, RenderOptions, Templates, render_node};
use crate::topology::BackendKind;
use crate::words::{agree, plural};

pub mod markdown;
pub mod rollout;

use rollout::{Disruption, Phasing};

/// Route changes listed one by one up to this many; beyond, only counted.
const MAX_LISTED: usize = 6;

/// How a node-by-node rollout of a change must be staged.
const TWO_PHASES: &str = "roll out in two phases — `flannel-gen apply --phase 1` on every node, then `--phase 2` on every node (README: Migrating between backends); a one-step rollout drops traffic between switched and unswitched nodes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Serialize)]
pub struct FileDiff {
    pub path: String,
    pub added: usize,
    pub removed: usize,
    pub diff: String,
}

#[derive(Debug, Serialize)]
pub struct NodeDiff {
    pub node: String,
    pub status: Status,
    pub disruption: Disruption,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phasing: Option<Phasing>,
    pub row: markdown::Row,
    pub summary: Vec<String>,
    pub warnings: Vec<String>,
    pub files: Vec<FileDiff>,
}

fn list(items: &[String]) -> String {
    let shown = items.iter().take(MAX_LISTED).cloned().collect::<Vec<_>>().join(", ");
    match items.len().saturating_sub(MAX_LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn backend_name(p: &NodePlan) -> String {
    match &p.backend {
        BackendPlan::Vxlan { direct_routing: true, .. } => "vxlan+directRouting".into(),
        b => b.kind().as_str().into(),
    }
}

/// The semantic changes from `old` to `new` for one node, and the warnings.
pub fn summarize(old: &NodePlan, new: &NodePlan) -> (Vec<String>, Vec<String>) {
    let (mut s, mut w) = (Vec::new(), Vec::new());
    if backend_name(old) != backend_name(new) {
        s.push(format!("backend {} → {}", backend_name(old), backend_name(new)));
    }
    for f in Family::ALL {
        families(old, new, f, &mut s, &mut w);
    }
    if old.mtu != new.mtu {
        s.push(format!("mtu {} → {}", old.mtu, new.mtu));
        w.push(format!(
            "MTU {} → {} changes subnet.env (FLANNEL_MTU), docker's daemon.json and docker_opts.env (--mtu) and the CNI conflist (mtu): running pods keep MTU {} until restarted",
            old.mtu, new.mtu, old.mtu
        ));
    }
    if old.ip_masq != new.ip_masq {
        s.push(format!("ipMasq {} → {} (docker and CNI ip-masq flip)", old.ip_masq, new.ip_masq));
    }
    node_settings(old, new, &mut s);
    devices(old, new, &mut s, &mut w);
    peers(old, new, &mut s, &mut w);
    (s, w)
}

/// Each peer's path (`vxlan`, `host-gw`, `udp`) by node and family: what the
/// table counts and the rollout phases on, in one lookup per peer.
pub fn peer_paths(p: &NodePlan) -> BTreeMap<(&str, Family), &'static str> {
    p.peers.iter().map(|q| ((q.node(), q.family()), q.path())).collect()
}

/// Traffic rules, the blackhole route, connected networks, route style.
fn node_settings(old: &NodePlan, new: &NodePlan, s: &mut Vec<String>) {
    let rules = |p: &NodePlan| match p.traffic_rules {
        Some(t) => format!("{} (forward {}, random-fully {})", t.backend.as_str(), t.forward, t.random_fully),
        None => "none".into(),
    };
    if old.traffic_rules != new.traffic_rules {
        s.push(format!("traffic rules {} → {}", rules(old), rules(new)));
    }
    if old.blackhole_route != new.blackhole_route {
        let sign = if new.blackhole_route { '+' } else { '-' };
        s.push(format!("{sign} blackhole route for {}", subnets(new)));
    }
    if old.connected != new.connected {
        let list = |p: &NodePlan| p.connected.iter().map(|c| format!("{} {}", c.interface, c.ip)).collect::<Vec<_>>();
        s.push(format!("connected networks [{}] → [{}]", list(old).join(", "), list(new).join(", ")));
    }
    if old.route_style != new.route_style {
        s.push(format!("routeStyle {} → {}", old.route_style.as_str(), new.route_style.as_str()));
    }
}

fn families(old: &NodePlan, new: &NodePlan, f: Family, s: &mut Vec<String>, w: &mut Vec<String>) {
    match (old.family(f), new.family(f)) {
        (Some(o), Some(n)) => {
            if o.subnet != n.subnet {
                s.push(format!("subnet {} → {}", o.subnet, n.subnet));
                w.push(format!(
                    "subnet {} → {} renumbers the pods on {}: running pods keep old addresses until they are recreated",
                    o.subnet, n.subnet, new.node
                ));
            }
            if o.network != n.network {
                s.push(format!("network {} → {}", o.network, n.network));
            }
        }
        (None, Some(n)) => s.push(format!("+ {f} (network {}, subnet {})", n.network, n.subnet)),
        (Some(o), None) => s.push(format!("- {f} (network {}, subnet {})", o.network, o.subnet)),
        (None, None) => {}
    }
}

/// How a rollout onto or off the udp backend must be staged: the
/// forwarders run between phase 1 and phase 2 (onto), or stop after the end.
const UDP_ONTO: &str = "onto udp: roll out in three phases — `flannel-gen apply --phase 1` on every node (builds flannel0), start `flannel-gen udp` (flannel-gen-udp.service) on every node, `--phase 2` on every node (routes fall to flannel0), then a plain `flannel-gen apply` on every node";
const UDP_OFF: &str = "off udp: roll out in three phases — `flannel-gen apply --phase 1` on every node, `--phase 2` on every node (flannel0 and its forwarder stay for peers that have not switched), then a plain `flannel-gen apply` on every node (removes flannel0); then stop flannel-gen-udp.service";

fn devices(old: &NodePlan, new: &NodePlan, s: &mut Vec<String>, w: &mut Vec<String>) {
    match (old.tun_device(), new.tun_device()) {
        (None, Some(t)) => {
            s.push(format!("+ device {} (TUN, mtu {}) and the udp forwarder (flannel-gen-udp.service)", t.name, t.mtu));
            w.push(UDP_ONTO.into());
        }
        (Some(t), None) => {
            s.push(format!("- device {} (TUN) and the udp forwarder", t.name));
            w.push(UDP_OFF.into());
        }
        _ => {}
    }
    for f in Family::ALL {
        match (old.vxlan_device(f), new.vxlan_device(f)) {
            (Some(o), None) => {
                let count = |k: fn(&Peer) -> bool| old.peers.iter().filter(|p| p.family() == f && k(p)).count();
                let n = count(|p| matches!(p, Peer::Vxlan { .. }));
                s.push(format!("- device {} (VXLAN) and its {n} neighbours and {n} FDB entries", o.name));
            }
            (None, Some(n)) => s.push(format!("+ device {} (VXLAN {}, port {})", n.name, n.vni, n.port)),
            (Some(o), Some(n)) if o != n => device_change(&o, &n, s, w),
            _ => {}
        }
    }
    wireguard_devices(old, new, s, w);
}

fn wireguard_devices(old: &NodePlan, new: &NodePlan, s: &mut Vec<String>, w: &mut Vec<String>) {
    for f in Family::ALL {
        match (old.wireguard_device(f), new.wireguard_device(f)) {
            (None, Some(n)) => s.push(format!(
                "+ device {} (WireGuard, port {}, mtu {}) and its {}",
                n.name,
                n.port,
                n.mtu,
                plural(n.peers.len(), "peer")
            )),
            (Some(o), None) => {
                s.push(format!("- device {} (WireGuard) and its {}", o.name, plural(o.peers.len(), "peer")))
            }
            (Some(o), Some(n)) => wireguard_change(&o, &n, s),
            (None, None) => {}
        }
    }
    if rollout::phasing(old, new) != Some(Phasing::ReplaceDevice) {
        return;
    }
    let names = |p: &NodePlan| {
        let mut v: Vec<String> = p.vxlan_devices().into_iter().map(|d| d.name).collect();
        v.extend(p.wireguard_devices().into_iter().map(|d| d.name));
        v.join(" and ")
    };
    let (was, now) = (names(old), names(new));
    if new.backend.kind() == BackendKind::Wireguard {
        w.push(format!(
            "onto wireguard: roll out in three phases — `flannel-gen apply --phase 1` on every node (builds {now} and its peers; {was} still carries traffic), `--phase 2` on every node (routes fall to {now}; {was} stays for peers that have not switched), then a plain `flannel-gen apply` on every node (removes {was})"
        ));
    } else if old.backend.kind() == BackendKind::Wireguard {
        w.push(format!(
            "off wireguard: roll out in three phases — `flannel-gen apply --phase 1` on every node, `--phase 2` on every node (moves the routes; {was} stays for peers that have not switched), then a plain `flannel-gen apply` on every node (removes {was})"
        ));
    }
}

/// `what a→b` into `parts` when the two differ.
fn note<T: PartialEq + std::fmt::Display>(parts: &mut Vec<String>, what: &str, a: &T, b: &T) {
    if a != b {
        parts.push(format!("{what} {a}→{b}"));
    }
}

/// What changed on a WireGuard device itself (its peers are listed with the routes).
fn wireguard_change(o: &WireguardDevice, n: &WireguardDevice, s: &mut Vec<String>) {
    let mut parts = Vec::new();
    note(&mut parts, "port", &o.port, &n.port);
    note(&mut parts, "mtu", &o.mtu, &n.mtu);
    note(&mut parts, "key", &o.public_key, &n.public_key);
    note(&mut parts, "persistentKeepalive", &o.persistent_keepalive, &n.persistent_keepalive);
    if o.psk_file != n.psk_file {
        parts.push("pre-shared key file".into());
    }
    if !parts.is_empty() {
        s.push(format!("~ device {} ({})", n.name, parts.join(", ")));
    }
}

fn device_change(o: &VxlanDevice, n: &VxlanDevice, s: &mut Vec<String>, w: &mut Vec<String>) {
    let mut parts = Vec::new();
    note(&mut parts, "vni", &o.vni, &n.vni);
    note(&mut parts, "port", &o.port, &n.port);
    note(&mut parts, "mac", &o.mac, &n.mac);
    note(&mut parts, "local", &o.local, &n.local);
    note(&mut parts, "mtu", &o.mtu, &n.mtu);
    s.push(format!("~ device {} ({})", n.name, parts.join(", ")));
    if o.name != n.name {
        w.push(format!(
            "VNI {} → {} replaces {} with {}: roll out in three steps — `flannel-gen apply --phase 1` on every node (builds {}), `--phase 2` on every node (moves the routes; {} stays for peers that have not switched yet), then a plain `flannel-gen apply` on every node (removes {})",
            o.vni, n.vni, o.name, n.name, n.name, o.name, o.name
        ));
    }
}

fn peers(old: &NodePlan, new: &NodePlan, s: &mut Vec<String>, w: &mut Vec<String>) {
    let key = |p: &Peer| (p.node().to_string(), p.family());
    let olds: BTreeMap<(String, Family), &Peer> = old.peers.iter().map(|p| (key(p), p)).collect();
    let news: BTreeMap<(String, Family), &Peer> = new.peers.iter().map(|p| (key(p), p)).collect();
    let names = |a: &BTreeMap<(String, Family), &Peer>, b: &BTreeMap<(String, Family), &Peer>| -> Vec<String> {
        let set: BTreeSet<&String> = a.keys().filter(|k| !b.contains_key(*k)).map(|(n, _)| n).collect();
        set.into_iter().cloned().collect()
    };
    let (added, removed) = (names(&news, &olds), names(&olds, &news));
    if !added.is_empty() {
        s.push(format!("+ {}: {}", plural(added.len(), "peer"), list(&added)));
    }
    if !removed.is_empty() {
        s.push(format!("- {}: {}", plural(removed.len(), "peer"), list(&removed)));
    }
    let mut moves: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let (mut rerouted, mut entries, mut path_changed, mut to_vxlan) = (Vec::new(), 0usize, false, false);
    for (k, n) in &news {
        let Some(o) = olds.get(k) else { continue };
        let (Some(ro), Some(rn)) = (old.path_route(o), new.path_route(n)) else { continue };
        let via =
            |r: &crate::plan::objects::Route| r.via.map_or_else(|| format!("dev {}", r.dev), |v| format!("via {v}"));
        if ro.dev != rn.dev {
            moves.entry((ro.dev.clone(), rn.dev.clone())).or_default().push(n.subnet().to_string());
        } else if ro != rn {
            rerouted.push(format!("{} {} → {}", n.subnet(), via(&ro), via(&rn)));
        }
        entries += usize::from(
            old.neighbour_of(o) != new.neighbour_of(n)
                && old.neighbour_of(o).is_some()
                && new.neighbour_of(n).is_some(),
        );
        path_changed |= o.path() != n.path();
        to_vxlan |= o.path() == "host-gw" && n.path() == "vxlan";
    }
    for ((from, to), dsts) in &moves {
        s.push(format!(
            "~ {} {} {from} → {to}: {}",
            plural(dsts.len(), "route"),
            agree(dsts.len(), "moves", "move"),
            list(dsts)
        ));
    }
    if !rerouted.is_empty() {
        let n = rerouted.len();
        s.push(format!("~ {} {} next hop: {}", plural(n, "route"), agree(n, "changes", "change"), list(&rerouted)));
    }
    if entries > 0 {
        let fdb = if entries == 1 { "1 FDB entry".to_string() } else { format!("{entries} FDB entries") };
        s.push(format!("~ {} and {fdb} change", plural(entries, "neighbour")));
    }
    // Rollouts of more phases say so with the device that needs them.
    if path_changed && rollout::phasing(old, new) == Some(rollout::Phasing::TwoPhases) {
        w.push(format!("peers change path{}: {TWO_PHASES}", if to_vxlan { " onto VXLAN" } else { "" }));
    }
}

/// A node's subnets, for one-line summaries.
fn subnets(p: &NodePlan) -> String {
    p.families().map(|(_, f)| f.subnet.to_string()).collect::<Vec<_>>().join(" and ")
}

fn file_diff(path: &str, old: &str, new: &str) -> FileDiff {
    let (added, removed) = crate::textdiff::line_counts(old, new);
    let a = if old.is_empty() { "/dev/null".to_string() } else { format!("a/{path}") };
    let b = if new.is_empty() { "/dev/null".to_string() } else { format!("b/{path}") };
    FileDiff { path: path.to_string(), added, removed, diff: crate::textdiff::unified(old, new, &a, &b) }
}

fn rendered(
    t: &Templates,
    p: Option<&NodePlan>,
    opts: &RenderOptions,
) -> Result<BTreeMap<String, String>, RenderError> {
    let Some(p) = p else { return Ok(BTreeMap::new()) };
    Ok(render_node(t, p, opts)?.into_iter().map(|f| (f.path, String::from_utf8_lossy(&f.bytes).into_owned())).collect())
}

/// Compares two sets of plans (by node name); `only` limits it to some nodes.
pub fn diff(
    old: &[NodePlan],
    new: &[NodePlan],
    only: &[String],
    t: &Templates,
    opts: &RenderOptions,
) -> Result<Vec<NodeDiff>, RenderError> {
    let olds: BTreeMap<&str, &NodePlan> = old.iter().map(|p| (p.node.as_str(), p)).collect();
    let news: BTreeMap<&str, &NodePlan> = new.iter().map(|p| (p.node.as_str(), p)).collect();
    let names: BTreeSet<&str> =
        olds.keys().chain(news.keys()).copied().filter(|n| only.is_empty() || only.iter().any(|o| o == n)).collect();
    let mut out = Vec::new();
    for name in names {
        let (o, n) = (olds.get(name).copied(), news.get(name).copied());
        let (status, summary, warnings) = match (o, n) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(o), Some(n)) => {
                let (s, w) = summarize(o, n);
                (Status::Changed, s, w)
            }
            (None, Some(n)) => (
                Status::Added,
                vec![format!("+ node {} (subnet {}, {})", n.node, subnets(n), plural(n.peers.len(), "peer"))],
                vec![],
            ),
            (Some(o), None) => (
                Status::Removed,
                vec![format!("- node {} (subnet {})", o.node, subnets(o))],
                vec![format!("node {} leaves: its subnet {} is released; drain it first", o.node, subnets(o))],
            ),
            (None, None) => continue,
        };
        let (a, b) = (rendered(t, o, opts)?, rendered(t, n, opts)?);
        let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let mut files = Vec::new();
        for p in paths {
            let (x, y) = (a.get(p).map_or("", String::as_str), b.get(p).map_or("", String::as_str));
            if x != y {
                files.push(file_diff(&format!("{name}/{p}"), x, y));
            }
        }
        let (disruption, phasing) = rollout::classify(o, n);
        let row = markdown::row(o, n);
        out.push(NodeDiff { node: name.to_string(), status, disruption, phasing, row, summary, warnings, files });
    }
    Ok(out)
}

/// Text report; ANSI styles are added and left to the output stream to keep or strip.
pub fn to_text(diffs: &[NodeDiff], stat: bool) -> String {
    use anstyle::{AnsiColor, Style};
    let bold = Style::new().bold();
    let warn = Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold();
    let add = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let del = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let hunk = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let paint = |st: Style, s: &str| format!("{}{s}{}", st.render(), st.render_reset());
    if diffs.is_empty() {
        return "no changes\n".into();
    }
    let mut out = String::new();
    for d in diffs {
        let status = match d.status {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        };
        out.push_str(&paint(bold, &format!("node {}: {status}", d.node)));
        out.push('\n');
        for s in &d.summary {
            out.push_str(&format!("  {s}\n"));
        }
        for w in &d.warnings {
            out.push_str(&format!("  {}\n", paint(warn, &format!("warning: {w}"))));
        }
    }
    out.push('\n');
    for d in diffs {
        for f in &d.files {
            if stat {
                out.push_str(&format!(
                    " {} | {} {}\n",
                    f.path,
                    paint(add, &format!("+{}", f.added)),
                    paint(del, &format!("-{}", f.removed))
                ));
                continue;
            }
            for line in f.diff.lines() {
                let styled = if line.starts_with("+++") || line.starts_with("---") {
                    paint(bold, line)
                } else if line.starts_with('+') {
                    paint(add, line)
                } else if line.starts_with('-') {
                    paint(del, line)
                } else if line.starts_with("@@") {
                    paint(hunk, line)
                } else {
                    line.to_string()
                };
                out.push_str(&styled);
                out.push('\n');
            }
        }
    }
    let files: usize = diffs.iter().map(|d| d.files.len()).sum();
    out.push_str(&format!(
        "{} {}, {}\n",
        plural(diffs.len(), "node"),
        agree(diffs.len(), "differs", "differ"),
        plural(files, "file")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(vni: u32) -> NodePlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vxlan-3node.yaml");
        let mut c = crate::topology::load(&path).expect("valid");
        c.backend.vni = vni;
        let lock = crate::lock::read_lock(&path).expect("lock");
        let a = crate::alloc::allocate(&c, lock.as_ref()).expect("allocates");
        crate::plan::build(&c, &a, "node-1").expect("plan")
    }

    #[test]
    fn a_vni_change_is_flagged_as_a_rollout() {
        let (s, w) = summarize(&plan(1), &plan(2));
        assert!(s.iter().any(|l| l.starts_with("~ device flannel.2 (vni 1→2)")), "{s:?}");
        assert!(w.iter().any(|l| l.contains("replaces flannel.1 with flannel.2: roll out in three steps")), "{w:?}");
        let (s, w) = summarize(&plan(1), &plan(1));
        assert!(s.is_empty() && w.is_empty());
    }
}
