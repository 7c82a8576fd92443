//! `flannel-gen graph TOPO [--diff NEW]`

use std::path::PathBuf;

use super::{out, plans_of, unknown_nodes};
use crate::error::{Error, exit};
use crate::graph;

/// Draw the cluster: L2 segments, nodes with their subnets, and an edge per
/// pair of nodes by the path between them (vxlan, direct, host-gw, udp).
///
/// With --diff NEW, what the change from TOPO to NEW adds (green), removes
/// (red, dashed) or moves to another path (orange). Beyond 40 nodes each
/// segment is one box and edges are counted. SVG is drawn without Graphviz;
/// `--format dot` is Graphviz source for people who post-process.
///
/// Example:
///   flannel-gen graph examples/vxlan-3node.yaml --diff examples/hostgw-3node.yaml > change.svg
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The topology (or plan.json) to draw.
    pub topology: PathBuf,
    /// Draw the change from TOPOLOGY to this one.
    #[arg(long, value_name = "NEW")]
    pub diff: Option<PathBuf>,
    /// SVG to look at, or Graphviz source to post-process.
    #[arg(long, value_enum, default_value_t = GraphFormat::Svg)]
    pub format: GraphFormat,
    /// Only this node and the nodes it talks to.
    #[arg(long = "node", value_name = "N")]
    pub node: Option<String>,
    /// Fail (exit 2) when a lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum GraphFormat {
    Svg,
    Dot,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let first = plans_of(&a.topology, a.locked)?;
    let second = a.diff.as_ref().map(|p| plans_of(p, a.locked)).transpose()?;
    let (old, new) = match &second {
        Some(n) => (Some(first.as_slice()), n.as_slice()),
        None => (None, first.as_slice()),
    };
    if let Some(n) = &a.node {
        let known: Vec<&str> = first.iter().chain(second.iter().flatten()).map(|p| p.node.as_str()).collect();
        if let Some(msg) = unknown_nodes(std::slice::from_ref(n), &known) {
            return Err(Error::Usage(msg));
        }
    }
    let cluster = new.first().or(first.first()).map(|p| p.cluster.clone()).unwrap_or_default();
    let picture = graph::picture(&cluster, old, new, a.node.as_deref());
    match a.format {
        GraphFormat::Dot => out(&graph::dot::to_dot(&picture))?,
        GraphFormat::Svg => out(&graph::svg::to_svg(&picture))?,
    }
    Ok(exit::OK)
}
