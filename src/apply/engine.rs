//! One conversation with a node's kernel: a netlink socket in the right
//! namespace (every read and write goes through it), and the converge loop
//! every action shares — read, check, reconcile, execute stage by stage,
//! verify.

use std::cell::RefCell;
use std::time::Duration;

use super::ahead::ReadAhead;
use super::desired::Desired;
use super::live::Live;
use super::netlink::bulk::Bulk;
use super::ops::{Op, Stage};
use super::reconcile::{self, Refusal};
use super::{ApplyError, Options, Precondition, ethtool, netlink, netns, route_record, rules};
use crate::plan::NodePlan;

/// Re-checks after writing: the kernel must now hold the desired state. Some
/// state settles asynchronously (a device coming up), so a few short retries.
pub const VERIFY_ATTEMPTS: u32 = 3;
const VERIFY_PAUSE: Duration = Duration::from_millis(100);

/// A netlink socket inside a namespace, and a single-threaded runtime for
/// the waits (verification's pauses, watch's events).
pub struct Session {
    rt: tokio::runtime::Runtime,
    /// The one socket apply reads and writes the kernel through.
    pub bulk: RefCell<Bulk>,
    /// The namespace it entered (None: the host's).
    pub netns: Option<String>,
}

fn netlink_err(what: &'static str) -> impl Fn(netlink::NetlinkError) -> ApplyError {
    move |source| ApplyError::Netlink { what, source }
}

impl Session {
    /// Enters the namespace (on this, the main, thread: a netlink socket
    /// belongs to the namespace it is created in), then connects.
    pub fn open(netns_name: Option<&str>) -> Result<Session, ApplyError> {
        super::privilege::check(netns_name.is_some())?;
        if let Some(ns) = netns_name {
            netns::enter(ns)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(ApplyError::Runtime)?;
        let bulk = RefCell::new(Bulk::open().map_err(netlink_err("netlink socket"))?);
        Ok(Session { rt, bulk, netns: netns_name.map(str::to_string) })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Makes the kernel hold `plan`.
    pub fn apply(&self, plan: &NodePlan, opts: Options) -> Result<Vec<Op>, ApplyError> {
        self.converge(&Desired::from_plan(plan), opts, Some(plan), None)
    }

    /// Everything reconcile looks at for `desired`, from `pre` where it was
    /// read ahead in this session's namespace (see [`super::ahead`]).
    pub fn read(&self, desired: &Desired, pre: Option<ReadAhead>) -> Result<Live, ApplyError> {
        read_live(&self.bulk, desired, pre)
    }

    /// [`converge`] on this session.
    pub fn converge(
        &self,
        desired: &Desired,
        opts: Options,
        plan: Option<&NodePlan>,
        pre: Option<ReadAhead>,
    ) -> Result<Vec<Op>, ApplyError> {
        let ns = self.netns.as_deref();
        let Some(plan) = plan else {
            return self.block_on(converge(&self.bulk, desired, opts, None, pre));
        };
        let widened = route_record::widen(desired, ns);
        let changes = self.block_on(converge(&self.bulk, &widened, opts, Some(plan), pre))?;
        if !opts.dry_run && !changes.is_empty() {
            route_record::keep(ns, desired, &widened, opts.reconcile.phase);
        }
        Ok(changes)
    }
}

/// Reads, checks (`plan`'s preconditions, if given), reconciles and —
/// unless a dry run — executes and verifies. Returns the changes.
pub async fn converge(
    bulk: &RefCell<Bulk>,
    desired: &Desired,
    opts: Options,
    plan: Option<&NodePlan>,
    pre: Option<ReadAhead>,
) -> Result<Vec<Op>, ApplyError> {
    if let Some(missing) = plan.map(rules::missing_tools).and_then(|m| m.into_iter().next()) {
        return Err(Precondition::MissingTool(missing).into());
    }
    let live = read_live(bulk, desired, pre)?;
    if let Some(plan) = plan {
        check_preconditions(plan, &live)?;
    }
    let ropts = opts.reconcile;
    let mut changes = reconcile::reconcile(desired, &live, ropts)?;
    let fitted;
    let desired = match plan.and_then(|p| random_fully_refused(p, desired, &changes)) {
        Some(why) => {
            fitted = desired.clone().without_random_fully();
            changes = reconcile::reconcile(&fitted, &live, ropts)?;
            note_rules(&mut changes, why);
            &fitted
        }
        None => desired,
    };
    if opts.dry_run || changes.is_empty() {
        return Ok(changes);
    }
    let index = live.links.iter().map(|(n, l)| (n.clone(), l.index)).collect();
    let mut ex = netlink::exec::Executor { bulk, index };
    execute(&mut ex, &changes)?;
    let kept = kept_devices(desired, &live, &changes);
    verify(bulk, desired, ropts, &kept).await?;
    Ok(changes)
}

/// Why this host cannot take the fully-random masquerade the rules about to
/// be written carry (asked only then: a converged node spawns no tool).
fn random_fully_refused(plan: &NodePlan, desired: &Desired, changes: &[Op]) -> Option<&'static str> {
    let t = plan.traffic_rules?;
    let writes_rules = changes.iter().any(|c| matches!(c, Op::SetRules(_)));
    if !writes_rules || !desired.wants_random_fully() {
        return None;
    }
    plan.families().find_map(|(f, _)| rules::random_fully::unsupported(t.backend, f))
}

/// Says on each masquerading rules change why it is not fully-random.
fn note_rules(changes: &mut [Op], why: &str) {
    for c in changes {
        if let Op::SetRules(r) = c
            && r.payload.to_ascii_lowercase().contains("masquerade")
        {
            r.target.push_str(&format!(" (plain masquerade: {why})"));
        }
    }
}

/// Everything reconcile looks at: the netlink dump, the rules, the offloads.
pub fn read_live(bulk: &RefCell<Bulk>, desired: &Desired, pre: Option<ReadAhead>) -> Result<Live, ApplyError> {
    let rules_err = |e: rules::RulesError| netlink_err("reading the traffic rules")(e.into());
    let ReadAhead { kernel, rules: pending } = pre.unwrap_or_default();
    let pending = pending.unwrap_or_default().complete(&desired.rule_families).map_err(rules_err)?;
    let mut live = netlink::dump::dump(bulk, desired, kernel).map_err(netlink_err("reading kernel state"))?;
    live.rules = pending.finish(&desired.rule_families).map_err(rules_err)?;
    super::wireguard::read(&mut live, desired).map_err(netlink_err("reading WireGuard devices"))?;
    let marker = desired.marker.as_str();
    let ours: Vec<String> = live
        .links
        .values()
        .filter(|l| l.alias.as_deref() == Some(marker) || desired.devices.iter().any(|d| d.vxlan.name == l.name))
        .filter(|l| l.kind.as_deref() == Some("vxlan"))
        .map(|l| l.name.clone())
        .collect();
    for name in ours {
        // The device's own sysctls, so a snapshot can restore them too
        // (the dump read the planned ones already).
        let key = format!("net/ipv4/conf/{name}/rp_filter");
        if !live.sysctls.contains_key(&key)
            && let Ok(v) = std::fs::read_to_string(format!("/proc/sys/{key}"))
        {
            live.sysctls.insert(key, v.trim().to_string());
        }
        let on = ethtool::tx_checksum(&name).map_err(|source| {
            netlink_err("reading offloads")(netlink::NetlinkError::Ethtool { dev: name.clone(), source })
        })?;
        live.tx_checksum.insert(name, on);
    }
    Ok(live)
}

/// Owned devices the desired state does not have that this run chose to
/// keep (a migration phase keeps old receive paths); verification expects them.
fn kept_devices(desired: &Desired, live: &Live, changes: &[Op]) -> Vec<String> {
    live.links
        .values()
        .filter(|l| l.alias.as_deref() == Some(desired.marker.as_str()))
        .filter(|l| !desired.devices.iter().any(|d| d.vxlan.name == l.name))
        .filter(|l| !changes.iter().any(|o| matches!(o, Op::DeleteLink { name, .. } if *name == l.name)))
        .map(|l| l.name.clone())
        .collect()
}

async fn verify(
    bulk: &RefCell<Bulk>,
    desired: &Desired,
    ropts: reconcile::Options,
    kept: &[String],
) -> Result<(), ApplyError> {
    let mut left: Vec<Op> = Vec::new();
    for attempt in 0..VERIFY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(VERIFY_PAUSE).await;
        }
        let live = read_live(bulk, desired, None)?;
        left = reconcile::reconcile(desired, &live, ropts).map_err(|e: Refusal| ApplyError::Refused(e))?;
        left.retain(|o| !matches!(o, Op::DeleteLink { name, replacing: false, .. } if kept.contains(name)));
        if left.is_empty() {
            return Ok(());
        }
    }
    let left = left.iter().map(|o| format!("  {o}")).collect::<Vec<_>>().join("\n");
    Err(ApplyError::Unverified { attempts: VERIFY_ATTEMPTS, left })
}

/// What must hold of the system before the first write: the uplink exists,
/// has the MTU the plan's overlay MTU was derived from, and carries the
/// plan's underlay addresses (which also refuses a plan meant for another node).
fn check_preconditions(plan: &NodePlan, live: &Live) -> Result<(), Precondition> {
    let up = &plan.uplink;
    let Some(link) = live.links.get(&up.name) else {
        return Err(Precondition::NoUplink { uplink: up.name.clone(), node: plan.node.clone() });
    };
    if let Some(c) = plan.connected.iter().find(|c| !live.links.contains_key(&c.interface)) {
        return Err(Precondition::NoConnected { interface: c.interface.clone(), node: plan.node.clone() });
    }
    if let Some(have) = link.mtu.filter(|m| *m != up.mtu) {
        return Err(Precondition::UplinkMtu { uplink: up.name.clone(), have, node: plan.node.clone(), want: up.mtu });
    }
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

fn execute(ex: &mut netlink::exec::Executor<'_>, changes: &[Op]) -> Result<(), ApplyError> {
    for stage in Stage::ALL {
        let ops: Vec<&Op> = changes.iter().filter(|o| o.stage() == stage).collect();
        let mut failures = Vec::new();
        if stage.sequential() {
            for op in &ops {
                if let Err(e) = ex.run(op) {
                    failures.push((*op, e));
                    break;
                }
            }
        } else {
            failures = ex.run_independent(&ops);
        }
        if !failures.is_empty() {
            let details = failures.iter().map(|(op, e)| format!("  {op}: {e}")).collect::<Vec<_>>().join("\n");
            return Err(ApplyError::Write { failed: failures.len(), total: changes.len(), details });
        }
    }
    Ok(())
}
