//! `flannel-gen plan TOPO --node N`

use std::path::PathBuf;

use super::{Format, compile_warned, out};
use crate::error::{Error, exit};

/// Print one node's plan: the kernel objects and settings it gets.
///
/// Example:
///   flannel-gen plan examples/vxlan-3node.yaml --node node-1 --format json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The topology file (`-` reads standard input).
    #[arg(value_name = "TOPO")]
    pub topology: PathBuf,
    /// The node whose plan to print.
    #[arg(long, value_name = "N")]
    pub node: String,
    /// Text reads like `ip` output; JSON is plan.json, what `apply --plan` reads.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Fail (exit 2) when the lock file is missing or stale instead of allocating.
    #[arg(long)]
    pub locked: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let c = compile_warned(&a.topology, a.locked)?;
    let p = crate::plan::build(&c.cluster, &c.leases, &a.node)?;
    match a.format {
        Format::Text => out(&p.to_string())?,
        Format::Json => out(&p.to_json())?,
    }
    Ok(exit::OK)
}
