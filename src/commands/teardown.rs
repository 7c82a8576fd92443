//! `flannel-gen teardown (TOPO [--node N] | --plan FILE)`

use crate::apply;
use crate::error::Error;

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
    pub node: super::node_change::NodeChangeArgs,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let p = a.node.source.load(false)?;
    let changes = apply::teardown(&p, &a.node.target.target(), a.node.dry_run)?;
    a.node.report(&p.node, &changes)
}
