//! Reading the kernel while the plan is still being compiled: a second
//! thread takes the namespace lock, enters the namespace and reads the
//! per-peer state ([`super::netlink::prefetch`]) while the main thread
//! parses and allocates. The lock's outcome is handed back as it is; a
//! failure after it only means nothing was read ahead: the usual read then
//! reports it. Either way the topology's own errors come first.

use std::thread::JoinHandle;

use super::live::LiveLink;
use super::lock::{self, ApplyLock, LockError};
use super::netlink::bulk::Bulk;
use super::netlink::prefetch::{self, Prefetched};
use super::rules::{self, PendingRules};
use super::{Target, netns};
use crate::netaddr::Family;

/// What was read ahead: the per-peer kernel state and IPv4's traffic rules
/// (the plan says later whether it needs them, or IPv6's too), each if it
/// could be read.
#[derive(Default)]
pub struct ReadAhead {
    pub kernel: Option<Prefetched>,
    pub rules: Option<PendingRules>,
}

/// What the thread hands back: the lock (none for a dry run) and the reads.
pub type Ready = (Option<ApplyLock>, ReadAhead);

pub struct Ahead(JoinHandle<Result<Ready, LockError>>);

/// Starts reading `target` on a thread of its own.
pub fn start(target: &Target, dry_run: bool) -> Ahead {
    let target = target.clone();
    Ahead(std::thread::spawn(move || {
        let ns = target.netns.as_deref();
        let held = if dry_run { None } else { Some(lock::acquire(ns, target.lock_wait)?) };
        // This thread's namespace only; the socket stays in it.
        if ns.map_or(Ok(()), netns::enter).is_err() {
            return Ok((held, ReadAhead::default()));
        }
        // The tools run beside this thread's netlink read (and in its
        // namespace). IPv4 is nearly every cluster; a plan with IPv6 starts
        // its tools when it is known.
        let rules = rules::start_dump(&[Family::V4]).ok();
        let kernel = Bulk::open().and_then(|mut b| prefetch::read(&mut b, may_own)).ok();
        Ok((held, ReadAhead { kernel, rules }))
    }))
}

/// A device flannel-gen may own before the plan says which: an overlay
/// device name (`flannel.<vni>`, `flannel-v6.<vni>`, `flannel0`,
/// `flannel-wg`, `flannel-wg-v6`) or flannel-gen's alias.
fn may_own(l: &LiveLink) -> bool {
    crate::topology::validate::is_overlay_device_name(&l.name)
        || l.alias.as_deref().is_some_and(|a| a.starts_with(crate::plan::MARKER_PREFIX))
}

impl Ahead {
    /// The thread's outcome; `None` if it panicked (then it holds no lock).
    pub fn finish(self) -> Option<Result<Ready, LockError>> {
        self.0.join().ok()
    }
}
