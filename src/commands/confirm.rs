//! `flannel-gen confirm [--netns NS]`

use super::out;
use super::target::parse_netns;
use crate::apply::{ApplyError, snapshot};
use crate::error::{Error, exit};

/// Keep what `apply --confirm-timeout` changed (it stops waiting and exits 0).
///
/// Without an apply waiting, this also discards the snapshot a killed one
/// left behind, keeping the node as it is.
///
/// Example:
///   flannel-gen confirm
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The network namespace the apply runs in (/run/netns/NAME).
    #[arg(long, value_name = "NAME", value_parser = parse_netns)]
    pub netns: Option<String>,
}

pub fn run(a: Args) -> Result<u8, Error> {
    if snapshot::remove(a.netns.as_deref()).map_err(ApplyError::from)? {
        out("confirmed: the changes stay\n")?;
    } else {
        out("nothing to confirm\n")?;
    }
    Ok(exit::OK)
}
