//! Which route destinations flannel-gen routed on this node last time. A
//! plain route carries flanneld's `proto boot`, the protocol a hand-made
//! route has too, so the protocol cannot say whose it is: a destination
//! the plan routes is ours, and so is one a previous apply routed (this
//! record), so a peer that left the topology loses its route. Kept in
//! /run (gone at reboot, with the routes), read back as untrusted: only
//! destinations inside the cluster scope count.

use std::borrow::Cow;
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

/// `desired` owning the recorded destinations in its scope too; borrowed
/// as it is when the record adds none (the usual case: no copy of a
/// 5000-peer state per apply).
pub fn widen<'a>(desired: &'a Desired, netns: Option<&str>) -> Cow<'a, Desired> {
    let extra: Vec<IpNet> =
        load(netns).into_iter().filter(|dst| owns(&desired.scope, dst) && !desired.claims(dst)).collect();
    if extra.is_empty() {
        return Cow::Borrowed(desired);
    }
    let mut d = desired.clone();
    d.claimed.extend(extra);
    d.claimed.sort_unstable();
    d.claimed.dedup();
    Cow::Owned(d)
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
