//! `flannel-gen rollback [--netns NS]`

use super::apply::restore;
use super::node_change::report_text;
use super::{Format, out};
use crate::apply::{ApplyError, Session, snapshot};
use crate::error::{Error, exit};

/// Restore the node to the snapshot `apply --confirm-timeout` took, when that
/// apply was killed before a confirm or its timeout.
///
/// Only what flannel-gen owns is restored; the snapshot is then removed.
///
/// Example:
///   flannel-gen rollback
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The namespace the apply ran in, and how long to wait for its lock.
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(a: Args) -> Result<u8, Error> {
    let target = a.target.target();
    let ns = target.netns.as_deref();
    let _lock = crate::apply::lock::acquire(ns, target.lock_wait).map_err(ApplyError::from)?;
    let Some(state) = snapshot::load(ns).map_err(ApplyError::from)? else {
        out("nothing to roll back\n")?;
        return Ok(exit::OK);
    };
    let session = Session::open(ns)?;
    let changes = restore(&session, &state)?;
    snapshot::remove(ns).map_err(ApplyError::from)?;
    out(&report_text("", &changes, false, a.format))?;
    Ok(exit::OK)
}
