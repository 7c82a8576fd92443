//! `flannel-gen apply (TOPO [--node N] | --plan FILE)`

use std::path::PathBuf;
use std::time::Duration;

use super::{Format, compile_warned, out};
use crate::apply::{self, ApplyReport, Phase};
use crate::error::{Error, exit};
use crate::plan::NodePlan;

/// Make the kernel match a node's plan through netlink (reconcile, not replay).
///
/// Reads the links, addresses, routes, neighbours and FDB entries there are,
/// and changes only what differs from the plan: one line per change, `0 changes`
/// on a converged node. Touches only devices flannel-gen made (marked with its
/// alias) and what is on them, and main-table routes inside the cluster network
/// (not the node's own subnet).
/// Exit 0 done, 1 changes pending (--dry-run), 2 bad input, 3 the system refused.
///
/// Examples:
///   flannel-gen apply --plan /etc/flannel-gen/plan.json
///   flannel-gen apply examples/vxlan-3node.yaml --node node-1 --dry-run
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["topology", "plan"])))]
pub struct Args {
    /// The topology file (`-` reads standard input).
    #[arg(value_name = "TOPO")]
    pub topology: Option<PathBuf>,
    /// The node to apply (with a topology); default: this host's name.
    #[arg(long, value_name = "N", conflicts_with = "plan")]
    pub node: Option<String>,
    /// A rendered plan.json instead of a topology.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Print the changes without making them; exit 1 when any are pending.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply inside the named network namespace (/run/netns/NAME).
    #[arg(long, value_name = "NAME", value_parser = parse_netns)]
    pub netns: Option<String>,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fail (exit 2) when the lock file is missing or stale.
    #[arg(long, conflicts_with = "plan")]
    pub locked: bool,
    /// Migration phase, each run on every node before the next: 1 builds the
    /// new path and removes nothing, 2 moves every route, 3 (a plain apply)
    /// prunes what the plan no longer has.
    #[arg(long, value_enum, default_value_t = PhaseArg::Three)]
    pub phase: PhaseArg,
    /// Replace a device with a planned name that flannel-gen did not make and
    /// that differs from the plan (apply refuses otherwise).
    #[arg(long)]
    pub adopt: bool,
    /// Seconds to wait for another apply on the same namespace to finish.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub lock_wait: u64,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PhaseArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
    #[value(name = "3")]
    Three,
}

impl From<PhaseArg> for Phase {
    fn from(p: PhaseArg) -> Self {
        match p {
            PhaseArg::One => Phase::Prepare,
            PhaseArg::Two => Phase::Switch,
            PhaseArg::Three => Phase::Complete,
        }
    }
}

pub fn parse_netns(s: &str) -> Result<String, String> {
    if apply::netns::is_name(s) { Ok(s.to_string()) } else { Err(format!("`{s}` is not a namespace name")) }
}

/// The plan of `--plan FILE`, or of a node of a topology.
pub fn load_plan(
    topology: Option<&PathBuf>,
    node: Option<String>,
    plan: Option<&PathBuf>,
    locked: bool,
) -> Result<NodePlan, Error> {
    match (topology, plan) {
        (Some(topo), _) => {
            let c = compile_warned(topo, locked)?;
            let node = match node {
                Some(n) => n,
                None => hostname()?,
            };
            Ok(crate::plan::build(&c.cluster, &c.leases, &node)?)
        }
        (None, Some(file)) => Ok(crate::plan::read_plan(file)?),
        (None, None) => Err(Error::Usage("give a topology and --node, or --plan FILE".into())),
    }
}

fn hostname() -> Result<String, Error> {
    let path = "/proc/sys/kernel/hostname";
    Ok(std::fs::read_to_string(path).map_err(Error::io(path))?.trim().to_string())
}

pub fn run(a: Args) -> Result<u8, Error> {
    let p = load_plan(a.topology.as_ref(), a.node, a.plan.as_ref(), a.locked)?;
    let opts = apply::ApplyOptions {
        dry_run: a.dry_run,
        netns: a.netns,
        phase: a.phase.into(),
        adopt: a.adopt,
        lock_wait: Duration::from_secs(a.lock_wait),
    };
    let report = apply::run(&p, &opts)?;
    out(&report_text(&p, &report, a.dry_run, a.format))?;
    Ok(if a.dry_run && !report.changes.is_empty() { exit::CHANGES } else { exit::OK })
}

/// One line per change and a count, or the same as JSON.
pub fn report_text(p: &NodePlan, r: &ApplyReport, dry_run: bool, format: Format) -> String {
    let n = r.changes.len();
    match format {
        Format::Json => {
            let changes: Vec<serde_json::Value> = r
                .changes
                .iter()
                .map(|c| serde_json::json!({"op": c.sign().to_string(), "kind": c.kind(), "object": c.object()}))
                .collect();
            format!("{}\n", serde_json::json!({"node": p.node, "dryRun": dry_run, "count": n, "changes": changes}))
        }
        Format::Text => {
            let mut s: String = r.changes.iter().map(|c| format!("{c}\n")).collect();
            let noun = if n == 1 { "change" } else { "changes" };
            if dry_run && n > 0 {
                s.push_str(&format!("{n} {noun} pending (dry run; nothing was changed)\n"));
            } else {
                s.push_str(&format!("{n} {noun}\n"));
            }
            s
        }
    }
}
