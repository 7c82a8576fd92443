//! `flannel-gen teardown (TOPO [--node N] | --plan FILE)`

use super::Format;
use super::apply::report_text;
use crate::apply;
use crate::error::{Error, exit};

/// Remove everything flannel-gen made on a node, and nothing else.
///
/// Deletes the devices that carry flannel-gen's marker for the plan's cluster
/// (with their addresses, neighbours and FDB entries), the routes it owns
/// (main table, inside the cluster network, not the node's own subnet) and
/// flannel's iptables chains or nftables tables. Sysctls stay as they are.
/// One line per object; a second run makes 0 changes.
/// Exit 0 done, 1 changes pending (--dry-run), 2 bad input, 3 the system refused.
///
/// Examples:
///   flannel-gen teardown --plan /etc/flannel-gen/plan.json
///   flannel-gen teardown cluster.yaml --node node-1 --dry-run
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub source: super::source::PlanSource,
    /// Print what would be removed; exit 1 when anything would.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let p = a.source.load(false)?;
    let changes = apply::teardown(&p, &a.target.target(), a.dry_run)?;
    super::out(&report_text(&p.node, &changes, a.dry_run, a.format))?;
    Ok(if a.dry_run && !changes.is_empty() { exit::CHANGES } else { exit::OK })
}
