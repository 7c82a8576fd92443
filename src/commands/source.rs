//! Where a node's plan comes from, for the commands that act on one node
//! (apply, teardown, udp): a topology and a node name, or a plan.json.

use std::path::PathBuf;

use super::compile_warned;
use crate::error::Error;
use crate::plan::NodePlan;

#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["topology", "plan"])))]
pub struct PlanSource {
    /// The topology file (`-` reads standard input).
    #[arg(value_name = "TOPO")]
    pub topology: Option<PathBuf>,
    /// The node (with a topology); default: this host's name.
    #[arg(long, value_name = "N", conflicts_with = "plan")]
    pub node: Option<String>,
    /// A rendered plan.json instead of a topology.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

impl PlanSource {
    /// The plan of `--plan FILE`, or of the node of the topology.
    pub fn load(&self, locked: bool) -> Result<NodePlan, Error> {
        match (&self.topology, &self.plan) {
            (Some(topo), _) => {
                let c = compile_warned(topo, locked)?;
                let node = match &self.node {
                    Some(n) => n.clone(),
                    None => hostname()?,
                };
                Ok(crate::plan::build(&c.cluster, &c.leases, &node)?)
            }
            (None, Some(file)) => Ok(crate::plan::read_plan(file)?),
            (None, None) => Err(Error::Usage("give a topology and --node, or --plan FILE".into())),
        }
    }
}

fn hostname() -> Result<String, Error> {
    let path = "/proc/sys/kernel/hostname";
    Ok(std::fs::read_to_string(path).map_err(Error::io(path))?.trim().to_string())
}
