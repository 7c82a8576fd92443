//! `flannel-gen lock TOPO [--check]`

use std::path::PathBuf;

use super::{out, plural};
use crate::error::{Error, exit};
use crate::wireguard::key::Key;

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
    /// Record NODE's WireGuard public key (what `flannel-gen wireguard
    /// keygen` printed on NODE); repeatable. Only public keys go here.
    #[arg(long = "wireguard-key", value_name = "NODE=PUBKEY")]
    pub wireguard_keys: Vec<String>,
}

pub fn run(a: Args) -> Result<u8, Error> {
    if crate::input::is_stdin(&a.topology) {
        return Err(Error::Usage("lock needs a topology file: the lock is written beside it".into()));
    }
    let mut c = crate::compile::compile(&a.topology, false)?;
    for arg in &a.wireguard_keys {
        let (node, key) = wireguard_key(&c.cluster, arg)?;
        if let Some(n) = c.cluster.nodes.iter_mut().find(|n| n.name == node) {
            n.wireguard_key = Some(key);
        }
    }
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

/// One `--wireguard-key NODE=PUBKEY`, checked against the topology.
fn wireguard_key(cluster: &crate::topology::Cluster, arg: &str) -> Result<(String, Key), Error> {
    let bad = |m: String| Error::Usage(format!("--wireguard-key {arg}: {m}"));
    if cluster.backend.kind != crate::topology::BackendKind::Wireguard {
        return Err(bad(format!("the backend is {}, not wireguard", cluster.backend.kind.as_str())));
    }
    let (node, key) = arg.split_once('=').ok_or_else(|| bad("expected NODE=PUBKEY".into()))?;
    if cluster.node(node).is_none() {
        let hint = cluster.suggest_node(node).map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default();
        return Err(bad(format!("no node `{node}` in the topology{hint}")));
    }
    let key = key.parse::<Key>().map_err(|e| bad(format!("not a WireGuard public key: {e}")))?;
    Ok((node.to_string(), key))
}
