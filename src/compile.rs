//! The front half of the pipeline shared by every command:
//! topology file -> validated cluster -> allocation (with the lock file).

use std::path::Path;

use crate::diag::Diagnostics;
use crate::lock::{self, Leases};
use crate::topology::{self, Cluster};

/// What the lock file beside the topology says about the allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The lock records exactly this allocation.
    Fresh,
    /// The lock exists but records something else (new or removed nodes).
    Stale,
    Missing,
}

impl LockState {
    pub fn describe(self) -> &'static str {
        match self {
            LockState::Fresh => "up to date",
            LockState::Stale => "stale (the topology changed since it was written)",
            LockState::Missing => "missing",
        }
    }
}

pub struct Compiled {
    pub cluster: Cluster,
    pub leases: Leases,
    pub lock: LockState,
}

/// Parse, validate and allocate. With `locked`, a missing or stale lock is an error.
pub fn compile(path: &Path, locked: bool) -> Result<Compiled, Diagnostics> {
    let mut cluster = topology::load(path)?;
    let lock = lock::read_lock(path)?;
    if let Some(l) = &lock {
        take_wireguard_keys(&mut cluster, l);
    }
    let leases = crate::alloc::allocate(&cluster, lock.as_ref())?;
    let state = match &lock {
        None => LockState::Missing,
        Some(l) if crate::alloc::lock_is_fresh(&cluster, &leases, l) => LockState::Fresh,
        Some(_) => LockState::Stale,
    };
    if locked && state != LockState::Fresh {
        let lock_file = lock::lock_path(path);
        return Err(Diagnostics::whole_file(
            &lock_file,
            format!(
                "lock file is {}; run `flannel-gen lock {}` and commit the result",
                state.describe(),
                path.display()
            ),
        ));
    }
    if locked && let Some(n) = cluster.nodes.iter().find(|n| wireguard_key_missing(&cluster, n)) {
        return Err(Diagnostics::whole_file(
            &lock::lock_path(path),
            format!(
                "node `{}` has no WireGuard public key; run `flannel-gen wireguard keygen` on it, then `flannel-gen lock {} --wireguard-key {}=PUBKEY`",
                n.name,
                path.display(),
                n.name
            ),
        ));
    }
    Ok(Compiled { cluster, leases, lock: state })
}

/// Public keys the lock records, for nodes whose topology entry has none.
fn take_wireguard_keys(cluster: &mut Cluster, lock: &lock::Lock) {
    for n in &mut cluster.nodes {
        if n.wireguard_key.is_none() {
            n.wireguard_key = lock.wireguard_keys.get(&n.name).copied();
        }
    }
}

/// Whether `node` needs a WireGuard public key and has none.
pub fn wireguard_key_missing(cluster: &Cluster, node: &topology::Node) -> bool {
    cluster.backend.kind == topology::BackendKind::Wireguard && node.wireguard_key.is_none()
}
