//! `flannel-gen graph`: a picture of the cluster. Nodes grouped by their L2
//! segment (the uplink's on-link network), an edge per pair of nodes by the
//! path their traffic takes, and with a second set of plans what a change
//! adds, removes or moves. Large clusters collapse into segments with counted
//! edges. [`dot`] writes Graphviz source, [`svg`] draws it with layout-rs.

pub mod dot;
pub mod svg;

use std::collections::BTreeMap;

use crate::plan::{BackendPlan, NodePlan, Peer};

/// Beyond this many nodes, segments are drawn as one box each.
pub const COLLAPSE_AT: usize = 40;

/// What a change does to a node or an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Same,
    Added,
    Removed,
    /// The edge takes another path.
    Moved,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Same => "unchanged",
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Moved => "moved",
        }
    }
}

/// A box: one node, or a collapsed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    pub id: String,
    pub label: String,
    /// Index into [`Picture::segments`].
    pub segment: usize,
    pub change: Change,
}

/// A line between two boxes: the path (`vxlan`, `direct`, `host-gw`, `udp`,
/// or `old → new` when it moved), how many node pairs it stands for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub a: String,
    pub b: String,
    pub path: String,
    pub change: Change,
    pub count: usize,
}

impl Edge {
    pub fn label(&self) -> String {
        if self.count > 1 { format!("{} ×{}", self.path, self.count) } else { self.path.clone() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Picture {
    pub title: String,
    pub segments: Vec<String>,
    pub vertices: Vec<Vertex>,
    pub edges: Vec<Edge>,
    /// Whether a change is drawn (edges coloured by [`Change`]).
    pub diff: bool,
}

/// The path `plan`'s node takes to `peer`.
fn path(plan: &NodePlan, peer: &Peer) -> &'static str {
    match (peer, &plan.backend) {
        (Peer::Vxlan { .. }, _) => "vxlan",
        (Peer::Udp { .. }, _) => "udp",
        (Peer::Wireguard { .. }, _) => "wireguard",
        (Peer::Cloud { .. }, BackendPlan::Gce { .. }) => "gce",
        (Peer::Cloud { .. }, _) => "aws-vpc",
        (Peer::HostGw { .. }, BackendPlan::Vxlan { .. }) => "direct",
        (Peer::HostGw { .. }, _) => "host-gw",
    }
}

/// The node's segment: its uplink's on-link network (IPv4 first).
fn segment_of(p: &NodePlan) -> String {
    p.uplink.ipv4.or(p.uplink.ipv6).map(|a| a.trunc().to_string()).unwrap_or_else(|| "?".into())
}

/// Two node names (a sorted pair, or from -> to).
type Pair = (String, String);

/// Paths between node pairs, keyed by the sorted pair: both directions'
/// paths, each family's, joined (`vxlan`, or `node-1→node-3 direct,
/// node-3→node-1 vxlan` when they differ).
fn pair_paths(plans: &[NodePlan]) -> BTreeMap<(String, String), String> {
    let mut dirs: BTreeMap<Pair, BTreeMap<Pair, Vec<&str>>> = BTreeMap::new();
    for p in plans {
        for q in &p.peers {
            let (from, to) = (p.node.clone(), q.node().to_string());
            let key = if from < to { (from.clone(), to.clone()) } else { (to.clone(), from.clone()) };
            let paths = dirs.entry(key).or_default().entry((from, to)).or_default();
            let path = path(p, q);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    dirs.into_iter()
        .map(|(key, by_dir)| {
            let mut labels: Vec<(String, String)> =
                by_dir.into_iter().map(|((f, t), p)| (format!("{f}→{t}"), p.join("+"))).collect();
            labels.dedup_by(|a, b| a.1 == b.1);
            let label = if labels.len() == 1 {
                labels.remove(0).1
            } else {
                labels.iter().map(|(d, p)| format!("{d} {p}")).collect::<Vec<_>>().join(", ")
            };
            (key, label)
        })
        .collect()
}

/// The picture of `new`, or of the change from `old` to `new`; `only`
/// keeps a node and the nodes it talks to.
pub fn picture(cluster: &str, old: Option<&[NodePlan]>, new: &[NodePlan], only: Option<&str>) -> Picture {
    let olds = old.map(pair_paths).unwrap_or_default();
    let news = pair_paths(new);
    let mut edges: Vec<Edge> = Vec::new();
    let keys: std::collections::BTreeSet<&(String, String)> = olds.keys().chain(news.keys()).collect();
    for k in keys {
        let (path, change) = match (olds.get(k), news.get(k)) {
            (Some(o), Some(n)) if o == n => (n.clone(), Change::Same),
            (Some(o), Some(n)) => (format!("{o} → {n}"), Change::Moved),
            (None, Some(n)) => (n.clone(), if old.is_some() { Change::Added } else { Change::Same }),
            (Some(o), None) => (o.clone(), Change::Removed),
            (None, None) => continue,
        };
        edges.push(Edge { a: k.0.clone(), b: k.1.clone(), path, change, count: 1 });
    }
    if let Some(n) = only {
        edges.retain(|e| e.a == n || e.b == n);
    }
    let mut nodes: BTreeMap<String, (String, String, Change)> = BTreeMap::new();
    let subnets = |p: &NodePlan| p.families().map(|(_, f)| f.subnet.to_string()).collect::<Vec<_>>().join("\n");
    for p in old.unwrap_or_default() {
        nodes.insert(p.node.clone(), (segment_of(p), subnets(p), Change::Removed));
    }
    for p in new {
        let change = match nodes.get(&p.node) {
            Some((_, s, _)) if *s == subnets(p) => Change::Same,
            Some(_) => Change::Moved,
            None if old.is_some() => Change::Added,
            None => Change::Same,
        };
        nodes.insert(p.node.clone(), (segment_of(p), subnets(p), change));
    }
    if let Some(n) = only {
        nodes.retain(|name, _| name == n || edges.iter().any(|e| e.a == *name || e.b == *name));
    }
    let mut segments: Vec<String> = nodes.values().map(|(s, _, _)| s.clone()).collect();
    segments.sort();
    segments.dedup();
    let seg = |s: &str| segments.iter().position(|x| x == s).unwrap_or(0);
    let vertices = nodes
        .iter()
        .map(|(name, (s, subnets, change))| Vertex {
            id: name.clone(),
            label: format!("{name}\n{subnets}"),
            segment: seg(s),
            change: *change,
        })
        .collect();
    let title = format!("cluster {cluster}: {} nodes", nodes.len());
    let pic = Picture { title, segments, vertices, edges, diff: old.is_some() };
    if pic.vertices.len() > COLLAPSE_AT { collapse(pic) } else { pic }
}

/// One box per segment, edges between segments counted by path and change;
/// a segment's inner edges are counted in its label.
fn collapse(p: Picture) -> Picture {
    let seg_of: BTreeMap<&str, usize> = p.vertices.iter().map(|v| (v.id.as_str(), v.segment)).collect();
    let mut counts: BTreeMap<(usize, usize, String, Change), usize> = BTreeMap::new();
    for e in &p.edges {
        let (Some(&a), Some(&b)) = (seg_of.get(e.a.as_str()), seg_of.get(e.b.as_str())) else { continue };
        *counts.entry((a.min(b), a.max(b), e.path.clone(), e.change)).or_default() += 1;
    }
    let id = |i: usize| format!("segment {}", p.segments[i]);
    let vertices = p
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = p.vertices.iter().filter(|v| v.segment == i).count();
            let inside: Vec<String> = counts
                .iter()
                .filter(|((a, b, _, _), _)| *a == i && *b == i)
                .map(|((_, _, path, _), c)| format!("{path} ×{c}"))
                .collect();
            let inside = if inside.is_empty() { String::new() } else { format!("\ninside: {}", inside.join(", ")) };
            Vertex { id: id(i), label: format!("{s}\n{n} nodes{inside}"), segment: i, change: Change::Same }
        })
        .collect();
    let edges = counts
        .into_iter()
        .filter(|((a, b, _, _), _)| a != b)
        .map(|((a, b, path, change), count)| Edge { a: id(a), b: id(b), path, change, count })
        .collect();
    Picture { vertices, edges, ..p }
}

/// The colour of a path (plain pictures) or of a change (`--diff`).
pub fn edge_colour(p: &Picture, e: &Edge) -> &'static str {
    if p.diff {
        return change_colour(e.change);
    }
    let first = e.path.split([' ', '+']).next_back().unwrap_or_default();
    match first {
        "vxlan" => "#1f77b4",
        "direct" | "host-gw" => "#2ca02c",
        "udp" => "#9467bd",
        _ => "#555555",
    }
}

pub fn change_colour(c: Change) -> &'static str {
    match c {
        Change::Same => "#9e9e9e",
        Change::Added => "#2e7d32",
        Change::Removed => "#c62828",
        Change::Moved => "#ef6c00",
    }
}

/// A light fill per segment, so nodes of one segment read as a group.
pub fn segment_fill(i: usize) -> &'static str {
    const FILLS: [&str; 6] = ["#e3f2fd", "#e8f5e9", "#fff3e0", "#f3e5f5", "#e0f7fa", "#fce4ec"];
    FILLS[i % FILLS.len()]
}

/// The legend's entries: (label, colour) of what the picture uses.
pub fn legend(p: &Picture) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for e in &p.edges {
        let entry = if p.diff {
            (e.change.name().to_string(), change_colour(e.change))
        } else {
            (e.path.split([' ', '+']).next_back().unwrap_or_default().to_string(), edge_colour(p, e))
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out.sort();
    out
}
