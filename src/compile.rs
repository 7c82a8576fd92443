//! The front half of the pipeline shared by every command:
//! topology file -> validated cluster -> allocation (with the lock file).

use std::path::Path;

use crate::alloc::{self, Allocation, LockFile};
use crate::error::Error;
use crate::topology::{self, Cluster};

/// What the lock file beside the topology says about the allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The lock records exactly this allocation.
    Fresh,
    /// The lock exists but records something else (new, removed or moved nodes).
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
    pub alloc: Allocation,
    pub lock: LockState,
}

/// Parse, validate and allocate. With `locked`, a missing or stale lock is an error.
pub fn compile(path: &Path, locked: bool) -> Result<Compiled, Error> {
    let cluster = topology::load(path)?;
    let lock: Option<LockFile> = alloc::read_lock(path)?;
    let alloc = alloc::allocate(&cluster, lock.as_ref())?;
    let state = match &lock {
        None => LockState::Missing,
        Some(l) if *l == alloc::to_lock(&cluster, &alloc) => LockState::Fresh,
        Some(_) => LockState::Stale,
    };
    if locked && state != LockState::Fresh {
        return Err(Error::Lock {
            path: alloc::lock_path(path),
            topology: path.to_path_buf(),
            state: state.describe(),
        });
    }
    Ok(Compiled { cluster, alloc, lock: state })
}
