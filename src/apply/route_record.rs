//! Which route destinations flannel-gen routed on this node last time. A
//! plain route carries flanneld's `proto boot`, the protocol a hand-made
//! route has too, so the protocol cannot say whose it is: a destination
//! the plan routes is ours, and so is one a previous apply routed (this
//! record), so a peer that left the topology loses its route. Kept in
//! /run (gone at reboot, with the routes), read back as untrusted: only
//! destinations inside the cluster scope count.

use std::path::PathBuf;

use ipnet::IpNet;

use super::desired::{Desired, owns};
use super::lock::LOCK_DIR;
use super::reconcile::Phase;

fn path(netns: Option<&str>) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(match netns {
        Some(ns) => format!("routes-netns-{ns}.json"),
        None => "routes.json".to_string(),
    })
}

fn load(netns: Option<&str>) -> Vec<IpNet> {
    std::fs::read_to_string(path(netns)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// `desired` owning the recorded destinations in its scope too.
pub fn widen(desired: &Desired, netns: Option<&str>) -> Desired {
    let mut d = desired.clone();
    for dst in load(netns) {
        if owns(&d.scope, &dst) && !d.claimed.contains(&dst) {
            d.claimed.push(dst);
        }
    }
    d
}

/// After a converge that wrote: what is ours now. A phase that prunes
/// nothing keeps what it found, so a later phase still prunes it.
pub fn keep(netns: Option<&str>, planned: &Desired, widened: &Desired, phase: Phase) {
    let claimed = if phase == Phase::Prepare { &widened.claimed } else { &planned.claimed };
    if let Ok(text) = serde_json::to_string(claimed) {
        let _ = std::fs::create_dir_all(LOCK_DIR);
        let _ = crate::fsutil::write_atomic(&path(netns), text.as_bytes(), 0o600);
    }
}

/// After teardown: nothing is ours.
pub fn forget(netns: Option<&str>) {
    let _ = std::fs::remove_file(path(netns));
}
