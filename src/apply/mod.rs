//! Back end 2: push a node plan into the kernel through netlink.
//!
//! Reconcile, don't replay: [`netlink::dump`] reads what is there,
//! [`reconcile::reconcile`] (pure) decides what must change, and the
//! executor makes only those changes, in phases that keep flanneld's order
//! (device, address, neighbours + FDB, then routes, then removals). Nothing
//! is written before every check passed; a converged node gets zero writes.

pub mod live;
pub mod lock;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod reconcile;

pub use ops::Op;
pub use reconcile::Phase;

use crate::plan::{FORMAT_VERSION, NodePlan};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// A named network namespace (`/run/netns/NAME`) to apply in.
    pub netns: Option<String>,
    pub phase: Phase,
    /// How long to wait for another apply on the same namespace.
    pub lock_wait: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan cannot be applied on this system; nothing was written.
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Busy(String),
    /// Every write succeeded but the kernel does not hold the plan.
    #[error("the kernel did not take the plan; still differing after {VERIFY_ATTEMPTS} checks:\n{0}")]
    Unverified(String),
    /// A write failed; earlier writes stay (re-running apply converges).
    #[error("{failed} of {total} changes failed:\n{details}")]
    Write { failed: usize, total: usize, details: String },
}

/// What apply did (or, with dry-run, would do).
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub changes: Vec<Op>,
}

/// Enters the namespace (if any), then runs apply on a fresh single-threaded
/// runtime, so the netlink socket is created inside that namespace.
pub fn run(plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    if plan.format_version != FORMAT_VERSION {
        return Err(ApplyError::Precondition(format!(
            "plan has formatVersion {}, this flannel-gen reads {FORMAT_VERSION}",
            plan.format_version
        )));
    }
    // A dry run only reads: it neither waits for nor blocks a real apply.
    let _lock = if opts.dry_run { None } else { Some(lock::acquire(opts.netns.as_deref(), opts.lock_wait)?) };
    if let Some(ns) = &opts.netns {
        netns::enter(ns).map_err(ApplyError::Setup)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApplyError::Setup(format!("tokio runtime: {e}")))?;
    rt.block_on(apply(plan, opts))
}

async fn apply(plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| ApplyError::Setup(format!("netlink socket: {e}")))?;
    let conn = tokio::spawn(conn);
    let result = apply_with(&handle, plan, opts).await;
    conn.abort();
    result
}

async fn apply_with(h: &rtnetlink::Handle, plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    let live = netlink::dump(h, plan).await.map_err(|e| ApplyError::Setup(format!("reading kernel state: {e}")))?;
    check_preconditions(plan, &live)?;
    let changes = reconcile::reconcile(plan, &live, opts.phase);
    if opts.dry_run || changes.is_empty() {
        return Ok(ApplyReport { changes });
    }
    let mut ex =
        netlink::Executor { handle: h.clone(), index: live.links.iter().map(|(n, l)| (n.clone(), l.index)).collect() };
    execute(&mut ex, &changes).await?;
    verify(h, plan, opts.phase).await?;
    Ok(ApplyReport { changes })
}

/// Re-checks after writing: the kernel must now hold the plan. Some state
/// settles asynchronously (a device coming up), so a few short retries.
const VERIFY_ATTEMPTS: u32 = 3;
const VERIFY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

async fn verify(h: &rtnetlink::Handle, plan: &NodePlan, phase: Phase) -> Result<(), ApplyError> {
    let mut left = Vec::new();
    for attempt in 0..VERIFY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(VERIFY_PAUSE).await;
        }
        let live =
            netlink::dump(h, plan).await.map_err(|e| ApplyError::Setup(format!("re-reading kernel state: {e}")))?;
        left = reconcile::reconcile(plan, &live, phase);
        if left.is_empty() {
            return Ok(());
        }
    }
    Err(ApplyError::Unverified(left.iter().map(|o| format!("  {o}")).collect::<Vec<_>>().join("\n")))
}

/// Everything that must hold before the first write.
fn check_preconditions(plan: &NodePlan, live: &live::Live) -> Result<(), ApplyError> {
    let up = &plan.uplink;
    let Some(link) = live.links.get(&up.name) else {
        return Err(ApplyError::Precondition(format!(
            "uplink {} does not exist here; is this node {}? nothing was changed",
            up.name, plan.node
        )));
    };
    let addrs = live.addrs.get(&link.index).cloned().unwrap_or_default();
    if !addrs.contains(&up.address) {
        let have: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        return Err(ApplyError::Precondition(format!(
            "uplink {} has {} but the plan of node {} needs {}; refusing to apply a plan meant for another node; nothing was changed",
            up.name,
            if have.is_empty() { "no IPv4 address".to_string() } else { have.join(", ") },
            plan.node,
            up.address
        )));
    }
    if let Some(vx) = &plan.vxlan
        && (vx.dev != up.name || vx.local != up.address.addr() || vx.name != plan.device)
    {
        return Err(ApplyError::Precondition(format!(
            "plan is inconsistent: {} must sit on {} with local {}",
            vx.name,
            up.name,
            up.address.addr()
        )));
    }
    for p in &plan.peers {
        if !plan.network.contains(&p.route.dst) || p.route.dst.contains(&plan.subnet) {
            return Err(ApplyError::Precondition(format!(
                "plan is inconsistent: route {} is not a peer subnet of {}",
                p.route.dst, plan.network
            )));
        }
    }
    Ok(())
}

/// Phases, in order; ops inside a phase are independent and pipelined.
fn phase(op: &Op) -> u8 {
    match op {
        // After link creation: per-device settings need the device.
        Op::Sysctl { .. } => 3,
        Op::DeleteLink { replacing: true, .. } => 1,
        Op::CreateLink(_) => 2,
        Op::FixLink { .. } => 3,
        Op::AddAddress { .. } => 4,
        Op::AddNeigh(_) | Op::AddFdb(_) => 5,
        Op::ReplaceRoute { .. } => 6,
        Op::DelRoute { .. } | Op::DelAddress { .. } => 7,
        Op::DelFdb { .. } | Op::DelNeigh { .. } => 8,
        Op::DeleteLink { replacing: false, .. } => 9,
    }
}

async fn execute(ex: &mut netlink::Executor, changes: &[Op]) -> Result<(), ApplyError> {
    for p in 0..=9u8 {
        let ops: Vec<&Op> = changes.iter().filter(|o| phase(o) == p).collect();
        let mut failures = Vec::new();
        if matches!(p, 1 | 2 | 9) {
            for op in &ops {
                if let Err(e) = ex.run(op).await {
                    failures.push((*op, e));
                    break;
                }
            }
        } else {
            failures = ex.run_pipelined(&ops).await;
        }
        if !failures.is_empty() {
            let details = failures.iter().map(|(op, e)| format!("  {op}: {e}")).collect::<Vec<_>>().join("\n");
            return Err(ApplyError::Write { failed: failures.len(), total: changes.len(), details });
        }
    }
    Ok(())
}
