//! Back end 3: what changes between two topologies, node by node. A semantic
//! summary a reviewer can act on (routes that change path, devices that go,
//! MTU and subnet changes and what they affect), then the unified diff of
//! every rendered file that changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plan::{NodePlan, PeerPath};
use crate::render::{RenderError, RenderOptions, Templates, render_node};

/// Route changes listed one by one up to this many; beyond, only counted.
const MAX_LISTED: usize = 6;

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

/// The semantic changes from `old` to `new` for one node, and the warnings.
pub fn summarize(old: &NodePlan, new: &NodePlan) -> (Vec<String>, Vec<String>) {
    let (mut s, mut w) = (Vec::new(), Vec::new());
    let backend = |p: &NodePlan| match (p.backend.as_str(), p.direct_routing) {
        ("vxlan", true) => "vxlan+directRouting".to_string(),
        (b, _) => b.to_string(),
    };
    if backend(old) != backend(new) {
        s.push(format!("backend {} → {}", backend(old), backend(new)));
    }
    if old.subnet != new.subnet {
        s.push(format!("subnet {} → {}", old.subnet, new.subnet));
        w.push(format!(
            "subnet {} → {} renumbers the pods on {}: running pods keep old addresses until they are recreated",
            old.subnet, new.subnet, new.node
        ));
    }
    if old.network != new.network {
        s.push(format!("network {} → {}", old.network, new.network));
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
    match (&old.vxlan, &new.vxlan) {
        (Some(o), None) => s.push(format!(
            "- device {} (VXLAN) and its {} neighbours and {} FDB entries",
            o.name,
            old.neighbours().count(),
            old.fdb().count()
        )),
        (None, Some(n)) => s.push(format!("+ device {} (VXLAN {}, port {})", n.name, n.vni, n.port)),
        (Some(o), Some(n)) if o != n => {
            let mut parts = Vec::new();
            if o.vni != n.vni {
                parts.push(format!("vni {}→{}", o.vni, n.vni));
            }
            if o.port != n.port {
                parts.push(format!("port {}→{}", o.port, n.port));
            }
            if o.mac != n.mac {
                parts.push(format!("mac {}→{}", o.mac, n.mac));
            }
            if o.local != n.local {
                parts.push(format!("local {}→{}", o.local, n.local));
            }
            if o.mtu != n.mtu {
                parts.push(format!("mtu {}→{}", o.mtu, n.mtu));
            }
            s.push(format!("~ device {} ({})", n.name, parts.join(", ")));
            if o.name != n.name {
                w.push(format!(
                    "VNI {} → {} renames the device {} → {}: run `apply --phase 1` on every node, then `--phase 2`; apply leaves {} in place (peers not yet switched still use it), remove it once every node runs VNI {}",
                    o.vni, n.vni, o.name, n.name, o.name, n.vni
                ));
            }
        }
        _ => {}
    }

    let olds: BTreeMap<&str, _> = old.peers.iter().map(|p| (p.node.as_str(), p)).collect();
    let news: BTreeMap<&str, _> = new.peers.iter().map(|p| (p.node.as_str(), p)).collect();
    let added: Vec<String> = news.keys().filter(|k| !olds.contains_key(*k)).map(|k| k.to_string()).collect();
    let removed: Vec<String> = olds.keys().filter(|k| !news.contains_key(*k)).map(|k| k.to_string()).collect();
    if !added.is_empty() {
        s.push(format!("+ {} peers: {}", added.len(), list(&added)));
    }
    if !removed.is_empty() {
        s.push(format!("- {} peers: {}", removed.len(), list(&removed)));
    }
    let mut moves: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut rerouted = Vec::new();
    let (mut neigh, mut fdb) = (0usize, 0usize);
    for (name, n) in &news {
        let Some(o) = olds.get(name) else { continue };
        if o.route != n.route {
            if o.route.dev != n.route.dev {
                moves.entry((o.route.dev.clone(), n.route.dev.clone())).or_default().push(n.route.dst.to_string());
            } else {
                rerouted.push(format!("{} via {} → via {}", n.route.dst, o.route.via, n.route.via));
            }
        }
        neigh += usize::from(o.neighbour != n.neighbour);
        fdb += usize::from(o.fdb != n.fdb);
    }
    for ((from, to), dsts) in &moves {
        s.push(format!("~ {} routes move {from} → {to}: {}", dsts.len(), list(dsts)));
    }
    if !rerouted.is_empty() {
        s.push(format!("~ {} routes change next hop: {}", rerouted.len(), list(&rerouted)));
    }
    if neigh + fdb > 0 && old.vxlan.is_some() && new.vxlan.is_some() {
        s.push(format!("~ {neigh} neighbours and {fdb} FDB entries change"));
    }
    let path_changed = old.peers.iter().any(|o| news.get(o.node.as_str()).is_some_and(|n| n.path != o.path));
    if path_changed {
        let to_vxlan = new.peers.iter().any(|n| {
            n.path == PeerPath::Vxlan && olds.get(n.node.as_str()).is_some_and(|o| o.path == PeerPath::HostGw)
        });
        w.push(format!(
            "peers change path{}: roll out in two phases — `flannel-gen apply --phase 1` on every node, then `--phase 2` on every node (README: Migrating between backends); a one-step rollout drops traffic between switched and unswitched nodes",
            if to_vxlan { " onto VXLAN" } else { "" }
        ));
    }
    (s, w)
}

fn file_diff(path: &str, old: &str, new: &str) -> FileDiff {
    let d = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for c in d.iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let a = if old.is_empty() { "/dev/null".to_string() } else { format!("a/{path}") };
    let b = if new.is_empty() { "/dev/null".to_string() } else { format!("b/{path}") };
    FileDiff {
        path: path.to_string(),
        added,
        removed,
        diff: d.unified_diff().context_radius(3).header(&a, &b).to_string(),
    }
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
                vec![format!("+ node {} (subnet {}, {} peers)", n.node, n.subnet, n.peers.len())],
                vec![],
            ),
            (Some(o), None) => (
                Status::Removed,
                vec![format!("- node {} (subnet {})", o.node, o.subnet)],
                vec![format!("node {} leaves: its subnet {} is released; drain it first", o.node, o.subnet)],
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
        out.push(NodeDiff { node: name.to_string(), status, summary, warnings, files });
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
    out.push_str(&format!("{} nodes differ, {files} files\n", diffs.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(vni: u32) -> NodePlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vxlan-3node.yaml");
        let mut c = crate::topology::load(&path).expect("valid");
        c.backend.vni = vni;
        let lock = crate::alloc::read_lock(&path).expect("lock");
        let a = crate::alloc::allocate(&c, lock.as_ref()).expect("allocates");
        crate::plan::build(&c, &a, "node-1").expect("plan")
    }

    #[test]
    fn a_vni_change_is_flagged_as_a_rollout() {
        let (s, w) = summarize(&plan(1), &plan(2));
        assert!(s.iter().any(|l| l.starts_with("~ device flannel.2 (vni 1→2)")), "{s:?}");
        assert!(w.iter().any(|l| l.contains("renames the device flannel.1 → flannel.2")), "{w:?}");
        let (s, w) = summarize(&plan(1), &plan(1));
        assert!(s.is_empty() && w.is_empty());
    }
}
