//! `diff --format markdown`: a pull-request comment or job summary. A
//! headline with the disruption class, a row per changed node, the rollout
//! as numbered steps with each node's command, then the file diffs folded.

use std::fmt::Write;

use serde::Serialize;

use super::rollout::{Disruption, Phasing};
use super::{NodeDiff, Status};
use super::{backend_name, peer_paths, subnets};
use crate::plan::NodePlan;
use crate::words::{agree, plural};

/// What the table says of one node: each column `old → new`, or the value
/// when it stays.
#[derive(Debug, Default, Serialize)]
pub struct Row {
    pub backend: String,
    pub subnet: String,
    pub mtu: String,
    pub peers: String,
    pub rules: String,
}

fn change(old: Option<String>, new: Option<String>) -> String {
    match (old, new) {
        (Some(o), Some(n)) if o == n => o,
        (Some(o), Some(n)) => format!("{o} → {n}"),
        (None, Some(n)) => n,
        (Some(o), None) => format!("~~{o}~~"),
        (None, None) => "—".into(),
    }
}

fn rules(p: &NodePlan) -> String {
    let masq = if p.ip_masq { "ipMasq" } else { "no ipMasq" };
    match p.traffic_rules {
        Some(t) => format!("{masq}, {}", t.backend.as_str()),
        None => format!("{masq}, no rules"),
    }
}

/// Peers joined, left, and changed path, as one cell.
fn peers(old: Option<&NodePlan>, new: Option<&NodePlan>) -> String {
    let (o, n) = (old.map(peer_paths).unwrap_or_default(), new.map(peer_paths).unwrap_or_default());
    let added = n.keys().filter(|k| !o.contains_key(*k)).count();
    let removed = o.keys().filter(|k| !n.contains_key(*k)).count();
    let moved = n.iter().filter(|(k, path)| o.get(*k).is_some_and(|was| was != *path)).count();
    let mut parts = Vec::new();
    if added > 0 {
        parts.push(format!("+{added}"));
    }
    if removed > 0 {
        parts.push(format!("−{removed}"));
    }
    if moved > 0 {
        parts.push(format!("{moved} change path"));
    }
    if parts.is_empty() { format!("{} (same)", n.len()) } else { parts.join(", ") }
}

/// The table row of a node changing from `old` to `new`.
pub fn row(old: Option<&NodePlan>, new: Option<&NodePlan>) -> Row {
    Row {
        backend: change(old.map(backend_name), new.map(backend_name)),
        subnet: change(old.map(subnets), new.map(subnets)),
        mtu: change(old.map(|p| p.mtu.to_string()), new.map(|p| p.mtu.to_string())),
        peers: peers(old, new),
        rules: change(old.map(rules), new.map(rules)),
    }
}

/// Markdown table cells may not hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The whole comment; `topology` is the path the rollout commands apply.
pub fn to_markdown(diffs: &[NodeDiff], topology: &str, total_nodes: usize) -> String {
    let mut o = String::from("## flannel-gen plan\n\n");
    if diffs.is_empty() {
        o.push_str("**No changes**: every node's plan and rendered files stay as they are.\n");
        return o;
    }
    let worst = diffs.iter().map(|d| d.disruption).max().unwrap_or(Disruption::None);
    let files: usize = diffs.iter().map(|d| d.files.len()).sum();
    let _ = writeln!(
        o,
        "**{} of {total_nodes} {} · disruption: {}** · {}\n",
        diffs.len(),
        agree(diffs.len(), "node changes", "nodes change"),
        worst.describe(),
        plural(files, "rendered file")
    );
    table(&mut o, diffs);
    warnings(&mut o, diffs);
    rollout(&mut o, diffs, topology);
    details(&mut o, diffs);
    o
}

fn table(o: &mut String, diffs: &[NodeDiff]) {
    o.push_str("| Node | Change | Disruption | Backend | Subnet | MTU | Peers | Rules |\n");
    o.push_str("|---|---|---|---|---|---|---|---|\n");
    for d in diffs {
        let status = match d.status {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        };
        let r = &d.row;
        let _ = writeln!(
            o,
            "| `{}` | {status} | {} | {} | {} | {} | {} | {} |",
            d.node,
            d.disruption.describe(),
            cell(&r.backend),
            cell(&r.subnet),
            cell(&r.mtu),
            cell(&r.peers),
            cell(&r.rules)
        );
    }
    o.push('\n');
}

fn warnings(o: &mut String, diffs: &[NodeDiff]) {
    let mut seen: Vec<&str> = Vec::new();
    for d in diffs {
        for w in &d.warnings {
            if !seen.contains(&w.as_str()) {
                seen.push(w);
            }
        }
    }
    if seen.is_empty() {
        return;
    }
    o.push_str("> [!WARNING]\n");
    for w in seen {
        let _ = writeln!(o, "> - {}", w.replace('\n', " "));
    }
    o.push('\n');
}

/// The rollout as numbered steps, each run on every node before the next.
fn rollout(o: &mut String, diffs: &[NodeDiff], topology: &str) {
    let Some(phasing) = diffs.iter().filter_map(|d| d.phasing).max() else { return };
    let nodes: Vec<&str> = diffs.iter().filter(|d| d.status != Status::Removed).map(|d| d.node.as_str()).collect();
    o.push_str("### Rollout\n\nEach step on every node before the next:\n\n");
    for (i, step) in phasing.steps().iter().enumerate() {
        let _ = writeln!(o, "{}. {}:\n\n   ```sh", i + 1, step.what);
        if step.command.contains("{node}") {
            for n in &nodes {
                let _ = writeln!(o, "   {}", step.command.replace("{topology}", topology).replace("{node}", n));
            }
        } else {
            let _ = writeln!(o, "   {}   # on {}", step.command, nodes.join(", "));
        }
        o.push_str("   ```\n");
    }
    if phasing == Phasing::TwoPhases {
        o.push_str("\nA one-step rollout drops traffic between switched and unswitched nodes.\n");
    }
    o.push('\n');
}

fn details(o: &mut String, diffs: &[NodeDiff]) {
    for d in diffs.iter().filter(|d| !d.files.is_empty()) {
        let (added, removed): (usize, usize) = d.files.iter().fold((0, 0), |(a, r), f| (a + f.added, r + f.removed));
        let _ = writeln!(
            o,
            "<details><summary><code>{}</code>: {} (+{added} −{removed})</summary>\n\n```diff",
            d.node,
            plural(d.files.len(), "file")
        );
        for f in &d.files {
            o.push_str(&f.diff);
            if !f.diff.ends_with('\n') {
                o.push('\n');
            }
        }
        o.push_str("```\n\n</details>\n\n");
    }
}
