//! `flannel-gen import-netconf net-conf.json --cluster NAME`

use std::path::PathBuf;

use super::out;
use crate::error::{Error, exit};

/// Print a topology skeleton from flannel's net-conf.json (kube-flannel ConfigMap).
///
/// Keys are matched case-insensitively, as flanneld does. List the nodes in
/// the output, then `flannel-gen lock` it.
///
/// Example:
///   flannel-gen import-netconf net-conf.json --cluster prod > cluster.yaml
#[derive(clap::Args, Debug)]
pub struct Args {
    /// flannel's net-conf.json (`-` reads standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Name of the cluster ([a-z0-9-]); seeds the derived VTEP MACs.
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let text = crate::input::read_text(&a.file)?;
    let y = crate::topology::netconf::topology_from_netconf(&text, &a.cluster)
        .map_err(|e| Error::Usage(format!("{}: {e}", crate::input::display_name(&a.file).display())))?;
    out(&y)?;
    Ok(exit::OK)
}
