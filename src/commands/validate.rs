//! `flannel-gen validate TOPO...`

use std::path::PathBuf;

use super::report::{self, DiagFormat, report_about};
use super::{compile_warned, out, plural};
use crate::error::{Error, exit};

/// Check topology files; every problem is reported as FILE:LINE:COL.
///
/// Examples:
///   flannel-gen validate examples/*.yaml
///   flannel-gen validate --format json topology.yaml > diagnostics.json
///   flannel-gen validate --format github topology.yaml   # annotations in a GitHub Actions step
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Topology files (`-` reads standard input).
    #[arg(required = true, value_name = "TOPO")]
    pub topology: Vec<PathBuf>,
    /// Also fail (exit 2) when the lock file is missing or stale.
    #[arg(long)]
    pub locked: bool,
    /// Print the diagnostics on stdout in this form instead of ok lines:
    /// json (an array, `[]` when every file is valid) or github annotations.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub format: DiagFormat,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let mut failed = None;
    for path in &a.topology {
        match compile_warned(path, a.locked) {
            Ok(_) if !report::is_text() => {}
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
                report_about(&e, Some(&crate::input::display_name(path)));
                failed = Some(failed.map_or(e.exit_code(), |c: u8| c.max(e.exit_code())));
            }
        }
    }
    Ok(failed.unwrap_or(exit::OK))
}
