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
use crate::plan::{NodePlan, PlanData};

mod check;

/// Bumped on any incompatible change to the snapshot file.
const SNAPSHOT_VERSION: u32 = 2;
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a flannel-gen snapshot ({why}); nothing was restored; remove it by hand if it is stale")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path}: the snapshot names state flannel-gen does not own; nothing was restored:\n  {}", problems.join("\n  "))]
    Invalid { path: PathBuf, problems: Vec<String> },
}

/// The file: the body as written, and its SHA-256, so any edit shows.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    format_version: u32,
    sha256: String,
    body: String,
}

/// What the body holds: the namespace, the plan the snapshot was taken
/// around (its scope is checked again on load), and the state.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Body {
    netns: Option<String>,
    plan: PlanData,
    state: Desired,
}

/// `/run/flannel-gen/snapshot.json`, or `snapshot-netns-NAME.json`.
pub fn path(netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(match netns {
        Some(ns) => format!("snapshot-netns-{ns}.json"),
        None => "snapshot.json".to_string(),
    })
}

/// Saves the state to return to, taken around `plan` (root only, mode 0600:
/// it is the node's network state).
pub fn save(netns: Option<&str>, plan: &NodePlan, state: &Desired) -> Result<(), SnapshotError> {
    let p = path(netns);
    let io = |source| SnapshotError::Io { path: p.clone(), source };
    std::fs::create_dir_all(LOCK_DIR).map_err(io)?;
    let corrupt = |e: serde_json::Error| SnapshotError::Corrupt { path: p.clone(), why: e.to_string() };
    let body = Body { netns: netns.map(str::to_string), plan: plan.data().clone(), state: state.clone() };
    let body = serde_json::to_string(&body).map_err(corrupt)?;
    let file = File { format_version: SNAPSHOT_VERSION, sha256: sha256_hex(&body), body };
    let text = serde_json::to_string_pretty(&file).map_err(corrupt)?;
    crate::fsutil::write_atomic(&p, text.as_bytes(), 0o600).map_err(io)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The saved state, if there is one; refused unless it is root's 0600 file,
/// unedited, for this namespace, and names only what its plan owns.
pub fn load(netns: Option<&str>) -> Result<Option<Desired>, SnapshotError> {
    let p = path(netns);
    let Some(text) = read_private(&p)? else { return Ok(None) };
    let corrupt = |why: String| SnapshotError::Corrupt { path: p.clone(), why };
    let file: File = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.format_version != SNAPSHOT_VERSION {
        return Err(corrupt(format!(
            "format version {}, this flannel-gen reads {SNAPSHOT_VERSION}",
            file.format_version
        )));
    }
    if sha256_hex(&file.body) != file.sha256 {
        return Err(corrupt("its checksum does not match: it was edited or damaged".into()));
    }
    let body: Body = serde_json::from_str(&file.body).map_err(|e| corrupt(format!("body: {e}")))?;
    if body.netns.as_deref() != netns {
        let named = body.netns.as_deref().unwrap_or("the host");
        return Err(corrupt(format!("it was taken in {named}, not {}", netns.unwrap_or("the host"))));
    }
    let plan = NodePlan::new(body.plan).map_err(|problems| SnapshotError::Invalid {
        path: p.clone(),
        problems: problems.iter().map(|x| format!("plan.{x}")).collect(),
    })?;
    let problems = check::problems(&plan, &body.state);
    if !problems.is_empty() {
        return Err(SnapshotError::Invalid { path: p, problems });
    }
    Ok(Some(body.state))
}

/// The file's text when it is a regular file, not a link, that only its
/// owner, root, can write.
fn read_private(p: &std::path::Path) -> Result<Option<String>, SnapshotError> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let io = |source| SnapshotError::Io { path: p.to_path_buf(), source };
    let mut f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(SnapshotError::Corrupt { path: p.to_path_buf(), why: "it is a symbolic link".into() });
        }
        Err(source) => return Err(io(source)),
    };
    let m = f.metadata().map_err(io)?;
    if !m.is_file() || m.uid() != 0 || m.mode() & 0o077 != 0 {
        let why =
            format!("want a regular file of root with mode 0600, found uid {} mode {:o}", m.uid(), m.mode() & 0o7777);
        return Err(SnapshotError::Corrupt { path: p.to_path_buf(), why });
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io)?;
    Ok(Some(text))
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
