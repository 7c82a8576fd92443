//! Try with automatic revert (netplan's `try`, nmstate's checkpoints): before
//! `apply --confirm-timeout` writes anything, the owned state of the node is
//! saved as a [`Desired`] state under /run/flannel-gen. `flannel-gen confirm`
//! removes it (keep the change); an expired wait, or `flannel-gen rollback`
//! after a killed apply, converges the node back to it.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::desired::Desired;
use super::lock::LOCK_DIR;

/// Bumped on any incompatible change to the snapshot file.
const SNAPSHOT_VERSION: u32 = 1;
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a flannel-gen snapshot ({why}); remove it by hand if it is stale")]
    Corrupt { path: PathBuf, why: String },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    format_version: u32,
    state: Desired,
}

/// `/run/flannel-gen/snapshot.json`, or `snapshot-netns-NAME.json`.
pub fn path(netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(match netns {
        Some(ns) => format!("snapshot-netns-{ns}.json"),
        None => "snapshot.json".to_string(),
    })
}

/// Saves the state to return to (root only: it is the node's network state).
pub fn save(netns: Option<&str>, state: &Desired) -> Result<(), SnapshotError> {
    let p = path(netns);
    let io = |source| SnapshotError::Io { path: p.clone(), source };
    std::fs::create_dir_all(LOCK_DIR).map_err(io)?;
    let file = File { format_version: SNAPSHOT_VERSION, state: state.clone() };
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| SnapshotError::Corrupt { path: p.clone(), why: e.to_string() })?;
    crate::fsutil::write_atomic(&p, text.as_bytes(), 0o600).map_err(io)
}

/// The saved state, if there is one.
pub fn load(netns: Option<&str>) -> Result<Option<Desired>, SnapshotError> {
    let p = path(netns);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SnapshotError::Io { path: p, source }),
    };
    let file: File =
        serde_json::from_str(&text).map_err(|e| SnapshotError::Corrupt { path: p.clone(), why: e.to_string() })?;
    if file.format_version != SNAPSHOT_VERSION {
        let why = format!("format version {}, this flannel-gen reads {SNAPSHOT_VERSION}", file.format_version);
        return Err(SnapshotError::Corrupt { path: p, why });
    }
    Ok(Some(file.state))
}

/// Removes the saved state; whether there was one.
pub fn remove(netns: Option<&str>) -> Result<bool, SnapshotError> {
    let p = path(netns);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SnapshotError::Io { path: p, source }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    TimedOut,
}

/// Waits until `flannel-gen confirm` removes the snapshot, Enter is pressed
/// on a terminal, or `timeout` passes. Enter confirms by removing it too.
pub fn wait_for_confirmation(netns: Option<&str>, timeout: Duration) -> Result<Outcome, SnapshotError> {
    let p = path(netns);
    let enter = Arc::new(AtomicBool::new(false));
    if std::io::stdin().is_terminal() {
        let flag = Arc::clone(&enter);
        std::thread::spawn(move || {
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line).is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if enter.load(Ordering::SeqCst) {
            remove(netns)?;
            return Ok(Outcome::Confirmed);
        }
        if !p.exists() {
            return Ok(Outcome::Confirmed);
        }
        std::thread::sleep(POLL);
    }
    Ok(Outcome::TimedOut)
}
