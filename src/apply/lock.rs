//! One apply at a time per network namespace: an flock on a file in /run.
//! Two applies interleaving their dumps and writes could each undo the
//! other's half-done changes.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: {source}{}", super::netns::root_hint(source))]
    Io { path: PathBuf, source: std::io::Error },
    #[error("another flannel-gen {what} holds {path} (waited {secs}s); nothing was changed")]
    Busy { what: &'static str, path: PathBuf, secs: u64 },
    #[error(transparent)]
    NotPermitted(#[from] super::privilege::NotPermitted),
}

pub const LOCK_DIR: &str = "/run/flannel-gen";
const POLL: Duration = Duration::from_millis(50);

/// Held for as long as it lives; the kernel drops it when the process exits,
/// however it exits.
pub struct ApplyLock {
    _file: File,
}

/// `/run/flannel-gen/<what>[-netns-<ns>].lock`.
fn named_path(what: &str, netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(match netns {
        Some(ns) => format!("{what}-netns-{ns}.lock"),
        None => format!("{what}.lock"),
    })
}

/// Takes the lock, waiting up to `wait` for another apply to finish.
pub fn acquire(netns: Option<&str>, wait: Duration) -> Result<ApplyLock, LockError> {
    acquire_named("apply", netns, wait)
}

/// The lock of `what` (apply, udp) in a namespace.
pub fn acquire_named(what: &'static str, netns: Option<&str>, wait: Duration) -> Result<ApplyLock, LockError> {
    super::privilege::check(netns.is_some())?;
    let path = named_path(what, netns);
    std::fs::create_dir_all(LOCK_DIR).map_err(|source| LockError::Io { path: LOCK_DIR.into(), source })?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Io { path: path.clone(), source })?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(ApplyLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(LockError::Io { path, source: err });
        }
        if Instant::now() >= deadline {
            return Err(LockError::Busy { what, path, secs: wait.as_secs() });
        }
        if !told {
            eprintln!("flannel-gen: waiting for another {what} to finish ({})", path.display());
            told = true;
        }
        std::thread::sleep(POLL);
    }
}
