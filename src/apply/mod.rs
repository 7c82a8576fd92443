//! Back end 2: push a node plan into the kernel through netlink.
//!
//! Reconcile, don't replay: [`netlink::dump`] and [`rules::start_dump`] read what
//! is there, [`reconcile::reconcile`] (pure) decides what must change to
//! reach a [`desired::Desired`] state, and the executor makes only those
//! changes, stage by stage ([`ops::Stage`]). The desired state is a plan's
//! (apply, watch), a snapshot's (revert, rollback, [`snapshot`]) or nothing
//! in the plan's scope (teardown). Nothing is written before every check
//! passed; a converged node gets zero writes.

pub mod ahead;
pub mod desired;
pub mod ethtool;
pub mod kernel;
pub mod live;
pub mod lock;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod privilege;
pub mod reconcile;
pub mod route_record;
pub mod rules;
pub mod snapshot;
pub mod watch;
pub mod wireguard;

mod engine;

use std::time::Duration;

pub use desired::Desired;
pub use engine::Session;
pub use ops::Op;
pub use reconcile::{Phase, Refusal};

use crate::plan::NodePlan;

/// Why the plan cannot be applied on this system; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Precondition {
    #[error("uplink {uplink} does not exist here; is this node {node}? nothing was changed")]
    NoUplink { uplink: String, node: String },
    #[error(
        "connected interface {interface} of node {node} does not exist here (the plan routes peers through it); nothing was changed"
    )]
    NoConnected { interface: String, node: String },
    #[error(
        "uplink {uplink} has {have} but the plan of node {node} needs {want}; refusing to apply a plan meant for another node; nothing was changed"
    )]
    WrongAddress { uplink: String, have: String, node: String, want: String },
    #[error(
        "uplink {uplink} has MTU {have} but the plan of node {node} was made for {want} (uplink.mtu; the overlay's MTU follows from it): render the plan for this uplink or set its MTU; nothing was changed"
    )]
    UplinkMtu { uplink: String, have: u32, node: String, want: u32 },
    #[error("{0}; nothing was changed")]
    MissingTool(rules::RulesError),
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Precondition(#[from] Precondition),
    #[error("{what}: {source}{}", hint(source))]
    Netlink { what: &'static str, source: netlink::NetlinkError },
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    NotPermitted(#[from] privilege::NotPermitted),
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// Every write succeeded but the kernel does not hold the desired state.
    #[error("the kernel did not take the plan; still differing after {attempts} checks:\n{left}")]
    Unverified { attempts: u32, left: String },
    /// A write failed; earlier writes stay (re-running apply converges).
    #[error("{failed} of {total} changes failed:\n{details}")]
    Write { failed: usize, total: usize, details: String },
}

fn hint(e: &netlink::NetlinkError) -> &'static str {
    match e.errno() {
        Some(libc::EPERM | libc::EACCES) => " (flannel-gen must run as root: it needs CAP_NET_ADMIN)",
        _ => "",
    }
}

/// How to reach the desired state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub dry_run: bool,
    /// The phase, and whether to replace a device in the way.
    pub reconcile: reconcile::Options,
}

/// Where to work: a named network namespace, and how long to wait for
/// another flannel-gen on it.
#[derive(Debug, Clone)]
pub struct Target {
    pub netns: Option<String>,
    pub lock_wait: Duration,
}

/// Applies `plan` once, under the namespace lock (a dry run takes none),
/// with the lock and kernel state an [`ahead::Ahead`] took while `plan` was
/// compiled, if one did (and did not fail).
pub fn run(
    plan: &NodePlan,
    target: &Target,
    opts: Options,
    ahead: Option<ahead::Ahead>,
) -> Result<Vec<Op>, ApplyError> {
    let ns = target.netns.as_deref();
    // Built while the read ahead may still be running.
    let desired = Desired::from_plan(plan);
    let (_lock, pre) = match ahead.and_then(ahead::Ahead::finish) {
        Some(ready) => ready.map(|(held, read)| (held, Some(read)))?,
        None => (if opts.dry_run { None } else { Some(lock::acquire(ns, target.lock_wait)?) }, None),
    };
    Session::open(ns)?.converge(&desired, opts, Some(plan), pre)
}

/// Removes everything flannel-gen owns in `plan`'s scope (sysctls stay).
pub fn teardown(plan: &NodePlan, target: &Target, dry_run: bool) -> Result<Vec<Op>, ApplyError> {
    let _lock = if dry_run { None } else { Some(lock::acquire(target.netns.as_deref(), target.lock_wait)?) };
    let opts = Options { dry_run, reconcile: reconcile::Options::default() };
    let ns = target.netns.as_deref();
    let nothing = Desired::nothing(plan);
    let desired = route_record::widen(&nothing, ns);
    let changes = Session::open(ns)?.converge(&desired, opts, None, None)?;
    if !dry_run {
        route_record::forget(ns);
    }
    Ok(changes)
}
