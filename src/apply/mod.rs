//! Back end 2: push a node plan into the kernel through netlink.
//!
//! Reconcile, don't replay: [`netlink::dump`] reads what is there,
//! [`reconcile::reconcile`] (pure) decides what must change, and the
//! executor makes only those changes, stage by stage ([`ops::Stage`]:
//! devices, addresses, neighbours + FDB, routes, then removals). Nothing is
//! written before every check passed; a converged node gets zero writes.

pub mod ethtool;
pub mod live;
pub mod lock;
pub mod netlink;
pub mod netns;
pub mod ops;
pub mod reconcile;
pub mod rules;

use std::time::Duration;

pub use ops::{Op, Stage};
pub use reconcile::{Phase, Refusal};

use crate::plan::NodePlan;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// A named network namespace (`/run/netns/NAME`) to apply in.
    pub netns: Option<String>,
    pub phase: Phase,
    /// Replace a device in the way that flannel-gen did not make.
    pub adopt: bool,
    /// How long to wait for another apply on the same namespace.
    pub lock_wait: Duration,
}

/// Why the plan cannot be applied on this system; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Precondition {
    #[error("uplink {uplink} does not exist here; is this node {node}? nothing was changed")]
    NoUplink { uplink: String, node: String },
    #[error(
        "uplink {uplink} has {have} but the plan of node {node} needs {want}; refusing to apply a plan meant for another node; nothing was changed"
    )]
    WrongAddress { uplink: String, have: String, node: String, want: String },
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
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// Every write succeeded but the kernel does not hold the plan.
    #[error("the kernel did not take the plan; still differing after {VERIFY_ATTEMPTS} checks:\n{0}")]
    Unverified(String),
    /// A write failed; earlier writes stay (re-running apply converges).
    #[error("{failed} of {total} changes failed:\n{details}")]
    Write { failed: usize, total: usize, details: String },
}

fn hint(e: &netlink::NetlinkError) -> &'static str {
    match e.errno() {
        Some(libc::EPERM | libc::EACCES) => " (flannel-gen apply must run as root: it needs CAP_NET_ADMIN)",
        _ => "",
    }
}

/// What apply did (or, with dry-run, would do).
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub changes: Vec<Op>,
}

/// Enters the namespace (if any), then runs apply on a fresh single-threaded
/// runtime, so the netlink socket is created inside that namespace.
pub fn run(plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    // A dry run only reads: it neither waits for nor blocks a real apply.
    let _lock = if opts.dry_run { None } else { Some(lock::acquire(opts.netns.as_deref(), opts.lock_wait)?) };
    if let Some(ns) = &opts.netns {
        netns::enter(ns)?;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ApplyError::Runtime)?;
    rt.block_on(apply(plan, opts))
}

async fn apply(plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| ApplyError::Netlink {
        what: "netlink socket",
        source: netlink::NetlinkError::Protocol(e.to_string()),
    })?;
    let conn = tokio::spawn(conn);
    let result = apply_with(&handle, plan, opts).await;
    conn.abort();
    result
}

fn dump_failed(source: netlink::NetlinkError) -> ApplyError {
    ApplyError::Netlink { what: "reading kernel state", source }
}

/// Everything reconcile looks at: the netlink dump, the rules, the offloads.
async fn read_live(h: &rtnetlink::Handle, plan: &NodePlan, marker: &str) -> Result<live::Live, ApplyError> {
    let mut live = netlink::dump::dump(h, plan, marker).await.map_err(dump_failed)?;
    let families: Vec<_> = plan.families().map(|(f, _)| f).collect();
    live.rules = rules::dump(&families)
        .map_err(|e| ApplyError::Netlink { what: "reading the traffic rules", source: e.into() })?;
    for d in plan.vxlan_devices().iter().filter(|d| live.links.contains_key(&d.name)) {
        let on = ethtool::tx_checksum(&d.name).map_err(|source| ApplyError::Netlink {
            what: "reading offloads",
            source: netlink::NetlinkError::Ethtool { dev: d.name.clone(), source },
        })?;
        live.tx_checksum.insert(d.name.clone(), on);
    }
    Ok(live)
}

async fn apply_with(h: &rtnetlink::Handle, plan: &NodePlan, opts: &ApplyOptions) -> Result<ApplyReport, ApplyError> {
    let marker = reconcile::marker(&plan.cluster);
    if let Some(missing) = rules::missing_tools(plan).into_iter().next() {
        return Err(Precondition::MissingTool(missing).into());
    }
    let live = read_live(h, plan, &marker).await?;
    check_preconditions(plan, &live)?;
    let ropts = reconcile::Options { phase: opts.phase, adopt: opts.adopt };
    let changes = reconcile::reconcile(plan, &live, ropts)?;
    if opts.dry_run || changes.is_empty() {
        return Ok(ApplyReport { changes });
    }
    let index = live.links.iter().map(|(n, l)| (n.clone(), l.index)).collect();
    let mut ex = netlink::exec::Executor { handle: h.clone(), index };
    execute(&mut ex, &changes).await?;
    verify(h, plan, ropts, &marker, &kept_devices(plan, &live, &changes, &marker)).await?;
    Ok(ApplyReport { changes })
}

/// Owned devices the plan no longer has that this run chose to keep (a
/// migration phase keeps old receive paths); verification expects them.
fn kept_devices(plan: &NodePlan, live: &live::Live, changes: &[Op], marker: &str) -> Vec<String> {
    let planned = plan.device_names();
    live.links
        .values()
        .filter(|l| l.alias.as_deref() == Some(marker) && !planned.contains(&l.name))
        .filter(|l| !changes.iter().any(|o| matches!(o, Op::DeleteLink { name, .. } if *name == l.name)))
        .map(|l| l.name.clone())
        .collect()
}

/// Re-checks after writing: the kernel must now hold the plan. Some state
/// settles asynchronously (a device coming up), so a few short retries.
const VERIFY_ATTEMPTS: u32 = 3;
const VERIFY_PAUSE: Duration = Duration::from_millis(100);

async fn verify(
    h: &rtnetlink::Handle,
    plan: &NodePlan,
    ropts: reconcile::Options,
    marker: &str,
    kept: &[String],
) -> Result<(), ApplyError> {
    let mut left = Vec::new();
    for attempt in 0..VERIFY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(VERIFY_PAUSE).await;
        }
        let live = read_live(h, plan, marker).await?;
        left = reconcile::reconcile(plan, &live, ropts)?;
        left.retain(|o| !matches!(o, Op::DeleteLink { name, replacing: false, .. } if kept.contains(name)));
        if left.is_empty() {
            return Ok(());
        }
    }
    Err(ApplyError::Unverified(left.iter().map(|o| format!("  {o}")).collect::<Vec<_>>().join("\n")))
}

/// What must hold of the system before the first write: the uplink exists
/// and carries the plan's underlay addresses (which also refuses a plan
/// meant for another node).
fn check_preconditions(plan: &NodePlan, live: &live::Live) -> Result<(), Precondition> {
    let up = &plan.uplink;
    let Some(link) = live.links.get(&up.name) else {
        return Err(Precondition::NoUplink { uplink: up.name.clone(), node: plan.node.clone() });
    };
    let addrs = live.addrs_of(link.index);
    for want in [up.ipv4, up.ipv6].into_iter().flatten() {
        if !addrs.contains(&want) {
            let have: Vec<String> =
                addrs.iter().filter(|a| a.addr().is_ipv4() == want.addr().is_ipv4()).map(ToString::to_string).collect();
            let have = if have.is_empty() { "no such address".to_string() } else { have.join(", ") };
            return Err(Precondition::WrongAddress {
                uplink: up.name.clone(),
                have,
                node: plan.node.clone(),
                want: want.to_string(),
            });
        }
    }
    Ok(())
}

async fn execute(ex: &mut netlink::exec::Executor, changes: &[Op]) -> Result<(), ApplyError> {
    for stage in Stage::ALL {
        let ops: Vec<&Op> = changes.iter().filter(|o| o.stage() == stage).collect();
        let mut failures = Vec::new();
        if stage.sequential() {
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
