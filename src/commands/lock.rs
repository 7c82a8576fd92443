//! `flannel-gen lock TOPO [--check]`

use std::path::PathBuf;

use super::{out, plural};
use crate::error::{Error, exit};

/// Write the lock file (<topology>.lock) recording each node's subnet and VTEP MAC.
///
/// Leases in an existing lock are kept, so adding, removing or reordering nodes
/// never moves another node. Commit the lock beside the topology.
///
/// Example:
///   flannel-gen lock examples/vxlan-3node.yaml
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The topology file.
    #[arg(value_name = "TOPO")]
    pub topology: PathBuf,
    /// Write nothing; exit 1 and show the difference when the lock would change.
    #[arg(long)]
    pub check: bool,
}

pub fn run(a: Args) -> Result<u8, Error> {
    if crate::input::is_stdin(&a.topology) {
        return Err(Error::Usage("lock needs a topology file: the lock is written beside it".into()));
    }
    let c = crate::compile::compile(&a.topology, false)?;
    let path = crate::lock::lock_path(&a.topology);
    let text = crate::alloc::render_lock(&c.cluster, &c.leases);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let leases = plural(c.leases.len(), "lease");
    if old == text {
        out(&format!("{}: up to date ({leases})\n", path.display()))?;
        return Ok(exit::OK);
    }
    if a.check {
        let name = path.display().to_string();
        out(&crate::textdiff::unified(&old, &text, &name, &name))?;
        return Ok(exit::CHANGES);
    }
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o644).map_err(Error::io(&path))?;
    out(&format!("{}: wrote {leases}\n", path.display()))?;
    Ok(exit::OK)
}
