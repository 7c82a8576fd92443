//! `flannel-gen apply (TOPO [--node N] | --plan FILE)`

use std::time::Duration;

use super::node_change::{NodeChangeArgs, report_text};
use super::{Format, out};
use crate::apply::snapshot::{self, Outcome};
use crate::apply::watch::{Event, WatchOptions};
use crate::apply::{self, ApplyError, Desired, Op, Phase, Session, Target};
use crate::error::{Error, exit};
use crate::health::{Health, WatchMetrics};
use crate::plan::NodePlan;

/// Make the kernel match a node's plan through netlink (reconcile, not replay).
///
/// Reads the links, addresses, routes, neighbours, FDB entries and traffic
/// rules there are, and changes only what differs from the plan: one line per
/// change, `0 changes` on a converged node. Touches only devices flannel-gen
/// made (marked with its alias) and what is on them, main-table routes inside
/// the cluster network (not the node's own subnet), and flannel's own
/// iptables chains or nftables tables.
/// Exit 0 done, 1 changes pending (--dry-run) or reverted (--confirm-timeout),
/// 2 bad input, 3 the system refused.
///
/// Examples:
///   flannel-gen apply --plan /etc/flannel-gen/plan.json
///   flannel-gen apply examples/vxlan-3node.yaml --node node-1 --dry-run
///   flannel-gen apply cluster.yaml --confirm-timeout 120   # then: flannel-gen confirm
///   flannel-gen apply --plan /etc/flannel-gen/plan.json --watch
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeChangeArgs,
    /// Fail (exit 2) when the lock file is missing or stale.
    #[arg(long, conflicts_with = "plan")]
    pub locked: bool,
    /// Migration phase, each run on every node before the next: 1 builds the
    /// new path and removes nothing, 2 moves every route, 3 (a plain apply)
    /// prunes what the plan no longer has.
    #[arg(long, value_enum, default_value_t = PhaseArg::Three)]
    pub phase: PhaseArg,
    /// Replace a device with a planned name that flannel-gen did not make and
    /// that differs from the plan (apply refuses otherwise).
    #[arg(long, conflicts_with = "confirm_timeout")]
    pub adopt: bool,
    /// Keep the changes only if `flannel-gen confirm` (or Enter) comes within
    /// SECS; otherwise revert the node to exactly what it had (exit 1).
    #[arg(long, value_name = "SECS", conflicts_with_all = ["dry_run", "watch"])]
    pub confirm_timeout: Option<u64>,
    /// Stay in the foreground after converging and repair drift as the
    /// kernel reports it (and every --resync seconds).
    #[arg(long, conflicts_with = "dry_run")]
    pub watch: bool,
    /// With --watch: converge at least this often, in seconds (rules raise no events).
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "watch")]
    pub resync: u64,
    /// With --watch: health and metrics endpoints.
    #[command(flatten)]
    pub health: super::healthz::HealthArgs,
    /// wireguard: this node's private key file, instead of the plan's
    /// `keyFile`; it must hold the private key of the plan's public key.
    #[arg(long, value_name = "FILE")]
    pub wireguard_key_file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PhaseArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
    #[value(name = "3")]
    Three,
}

impl From<PhaseArg> for Phase {
    fn from(p: PhaseArg) -> Self {
        match p {
            PhaseArg::One => Phase::Prepare,
            PhaseArg::Two => Phase::Switch,
            PhaseArg::Three => Phase::Complete,
        }
    }
}

pub fn run(a: Args) -> Result<u8, Error> {
    let target = a.node.target.target();
    // A single apply reads the kernel while the plan compiles.
    let single = a.confirm_timeout.is_none() && !a.watch;
    let ahead = single.then(|| apply::ahead::start(&target, a.node.dry_run));
    let p = a.node.source.load(a.locked)?;
    let p = super::wireguard::with_key_file(p, a.wireguard_key_file.as_deref())?;
    let opts = apply::Options {
        dry_run: a.node.dry_run,
        reconcile: apply::reconcile::Options { phase: a.phase.into(), adopt: a.adopt },
    };
    if let Some(secs) = a.confirm_timeout {
        return try_with_revert(&p, &target, opts, Duration::from_secs(secs), a.node.format);
    }
    if a.health.healthz_port != 0 && !a.watch {
        return Err(Error::Usage("--healthz-port needs --watch (a one-shot apply has nothing to serve)".into()));
    }
    if a.watch {
        let w = WatchOptions { resync: Duration::from_secs(a.resync.max(1)), ..WatchOptions::default() };
        return watch(&p, &target, (opts, w, &a.health), a.node.format);
    }
    let changes = apply::run(&p, &target, opts, ahead)?;
    a.node.report(&p.node, &changes)
}

/// `--confirm-timeout`: snapshot the owned state, apply, wait for `confirm`,
/// and restore the snapshot exactly when none comes. The namespace lock is
/// held throughout, so nothing else applies in between.
fn try_with_revert(
    p: &NodePlan,
    target: &Target,
    opts: apply::Options,
    wait: Duration,
    format: Format,
) -> Result<u8, Error> {
    let ns = target.netns.as_deref();
    let _lock = apply::lock::acquire(ns, target.lock_wait).map_err(ApplyError::from)?;
    let session = Session::open(ns)?;
    let desired = Desired::from_plan(p);
    let live = session.read(&desired, None)?;
    let texts = apply::rules::nft_texts(live.rules.nft.keys().copied())
        .map_err(|e| ApplyError::Netlink { what: "reading the traffic rules", source: e.into() })?;
    let before = Desired::snapshot(&live, &desired, &texts);
    snapshot::save(ns, p, &before).map_err(ApplyError::from)?;
    let changes = session.converge(&desired, opts, Some(p), None).inspect_err(|_| {
        super::warn(&format!("the node is left as apply stopped; `{}` restores it", rollback_command(ns)));
    })?;
    out(&report_text(&p.node, &changes, false, format))?;
    if changes.is_empty() {
        snapshot::remove(ns).map_err(ApplyError::from)?;
        return Ok(exit::OK);
    }
    super::warn(&format!(
        "keep these changes with `flannel-gen confirm{}` (or Enter here) within {}s, or they are reverted",
        ns.map(|n| format!(" --netns {n}")).unwrap_or_default(),
        wait.as_secs()
    ));
    if snapshot::wait_for_confirmation(ns, wait).map_err(ApplyError::from)? == Outcome::Confirmed {
        out("confirmed: the changes stay\n")?;
        return Ok(exit::OK);
    }
    let reverted = restore(&session, &before)?;
    snapshot::remove(ns).map_err(ApplyError::from)?;
    out(&format!(
        "not confirmed within {}s; reverted:\n{}",
        wait.as_secs(),
        report_text(&p.node, &reverted, false, format)
    ))?;
    Ok(exit::CHANGES)
}

/// Converges back to a snapshot: every owned object as it was, nothing else.
pub fn restore(session: &Session, state: &Desired) -> Result<Vec<Op>, Error> {
    let opts =
        apply::Options { dry_run: false, reconcile: apply::reconcile::Options { phase: Phase::Complete, adopt: true } };
    Ok(session.converge(state, opts, None, None)?)
}

pub fn rollback_command(ns: Option<&str>) -> String {
    format!("flannel-gen rollback{}", ns.map(|n| format!(" --netns {n}")).unwrap_or_default())
}

/// `--watch`: converge, then repair drift until stopped; with
/// `--healthz-port`, ready once the first pass succeeded.
fn watch(
    p: &NodePlan,
    target: &Target,
    (opts, w, health): (apply::Options, WatchOptions, &super::healthz::HealthArgs),
    format: Format,
) -> Result<u8, Error> {
    let session = Session::open(target.netns.as_deref())?;
    let metrics = std::sync::Arc::new(WatchMetrics::default());
    let endpoint = match health.listener()? {
        Some(listener) => {
            let m = std::sync::Arc::clone(&metrics);
            let h = Health::new(Box::new(move || m.render()));
            crate::health::serve(listener, std::sync::Arc::clone(&h), "flannel-gen apply --watch")
                .map_err(Error::io("healthz thread"))?;
            Some(h)
        }
        None => None,
    };
    let first = {
        let _lock = apply::lock::acquire(target.netns.as_deref(), target.lock_wait).map_err(ApplyError::from)?;
        session.apply(p, opts)?
    };
    metrics.pass(Some(first.len()));
    if let Some(h) = &endpoint {
        h.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    out(&report_text(&p.node, &first, false, format))?;
    let mut failure = None;
    apply::watch::watch(&session, p, (opts, target), w, |event| {
        let text = match event {
            Event::Checked => return metrics.pass(Some(0)),
            Event::Repaired { changes, latency } => {
                metrics.pass(Some(changes.len()));
                format!("repaired in {} ms:\n{}", latency.as_millis(), report_text(&p.node, &changes, false, format))
            }
            Event::Resynced { changes } => {
                metrics.pass(Some(changes.len()));
                format!("resync:\n{}", report_text(&p.node, &changes, false, format))
            }
            Event::Failed(e) => {
                metrics.pass(None);
                super::warn(&format!("watch: {e}; trying again on the next event"));
                return;
            }
        };
        if let Err(e) = out(&text) {
            failure = Some(e);
        }
    })?;
    failure.map_or(Ok(exit::OK), Err)
}
