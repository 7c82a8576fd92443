//! `flannel-gen validate TOPO...`

use std::path::PathBuf;

use super::{compile_warned, out, plural, report};
use crate::error::{Error, exit};

/// Check topology files; every problem is reported as FILE:LINE:COL.
///
/// Example:
///   flannel-gen validate examples/*.yaml
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Topology files (`-` reads standard input).
    #[arg(required = true, value_name = "TOPO")]
    pub topology: Vec<PathBuf>,
    /// Also fail (exit 2) when the lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let mut failed = None;
    for path in &a.topology {
        match compile_warned(path, a.locked) {
            Ok(c) => {
                let b = &c.cluster.backend;
                out(&format!(
                    "{}: ok ({}, backend {}{})\n",
                    crate::input::display_name(path).display(),
                    plural(c.cluster.nodes.len(), "node"),
                    b.kind.as_str(),
                    if b.direct_routing { " with directRouting" } else { "" }
                ))?;
            }
            Err(e) => {
                report(&e);
                failed = Some(failed.map_or(e.exit_code(), |c: u8| c.max(e.exit_code())));
            }
        }
    }
    Ok(failed.unwrap_or(exit::OK))
}
