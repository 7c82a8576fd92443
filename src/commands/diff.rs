//! `flannel-gen diff OLD NEW`

use std::io::Write;
use std::path::PathBuf;

use super::{dedup, out, plans_of, unknown_nodes};
use crate::error::{Error, exit};
use crate::render;

/// Compare two topologies (or two plan.json files) node by node.
///
/// Prints what changes for each node — routes that switch path, devices that
/// appear or go, MTU and subnet changes and what they affect, migration
/// hazards — then the unified diff of every rendered file that changes.
/// Exit 0 identical, 1 differs, 2 bad input.
///
/// Example:
///   flannel-gen diff examples/vxlan-3node.yaml examples/hostgw-3node.yaml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The old topology or plan.json.
    pub old: PathBuf,
    /// The new topology or plan.json.
    pub new: PathBuf,
    /// Only these nodes (repeatable).
    #[arg(long = "node", value_name = "N")]
    pub nodes: Vec<String>,
    /// Per-file line counts instead of full diffs.
    #[arg(long)]
    pub stat: bool,
    /// When to colour the output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Text for people, JSON for programs, Markdown for a pull-request
    /// comment or job summary (headline, a row per node, rollout steps,
    /// folded file diffs).
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    #[command(flatten)]
    pub templates: super::templates::TemplateArgs,
    /// Fail (exit 2) when either topology's lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let (old, new) = (plans_of(&a.old, a.locked)?, plans_of(&a.new, a.locked)?);
    let nodes = dedup(a.nodes);
    let known: Vec<&str> = old.iter().chain(new.iter()).map(|p| p.node.as_str()).collect();
    if let Some(msg) = unknown_nodes(&nodes, &known) {
        return Err(Error::Usage(msg));
    }
    let t = a.templates.load()?;
    let diffs = crate::diff::diff(&old, &new, &nodes, &t, &render::RenderOptions::default())?;
    match a.format {
        DiffFormat::Markdown => {
            let total = nodes_in(&old, &new, &nodes);
            out(&crate::diff::markdown::to_markdown(&diffs, &a.new.display().to_string(), total))?
        }
        DiffFormat::Json => out(&format!("{}\n", serde_json::json!({"changed": !diffs.is_empty(), "nodes": diffs})))?,
        DiffFormat::Text => {
            let choice = match a.color {
                ColorArg::Auto => anstream::ColorChoice::Auto,
                ColorArg::Always => anstream::ColorChoice::Always,
                ColorArg::Never => anstream::ColorChoice::Never,
            };
            let mut stream = anstream::AutoStream::new(std::io::stdout(), choice);
            match stream.write_all(crate::diff::to_text(&diffs, a.stat).as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(Error::io("<stdout>")(e)),
                _ => {}
            }
        }
    }
    Ok(if diffs.is_empty() { exit::OK } else { exit::CHANGES })
}

/// How many nodes the comparison covers (either side, or those asked for).
fn nodes_in(old: &[crate::plan::NodePlan], new: &[crate::plan::NodePlan], only: &[String]) -> usize {
    let names: std::collections::BTreeSet<&str> = old.iter().chain(new).map(|p| p.node.as_str()).collect();
    names.into_iter().filter(|n| only.is_empty() || only.iter().any(|o| o == n)).count()
}
