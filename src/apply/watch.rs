//! `apply --watch`: after converging, stay in the foreground and converge
//! again whenever the kernel reports a change of links, addresses, routes or
//! neighbours (FDB included) — a deleted route, a device set down or gone, an
//! uplink flap — debounced; and every `resync` as well, since rule changes
//! raise no rtnetlink event. A change that is not ours leads to a read and
//! zero writes. flanneld does the same for its device and leases (#958, #1145).

use std::time::{Duration, Instant};

use futures::StreamExt;
use rtnetlink::sys::{AsyncSocket, SocketAddr};

use super::desired::Desired;
use super::engine::{Session, converge};
use super::ops::Op;
use super::{ApplyError, Options, Target, lock, netlink};
use crate::plan::NodePlan;

#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Quiet time after an event before converging, so a burst is one pass.
    pub debounce: Duration,
    /// Converge this often even without events.
    pub resync: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions { debounce: Duration::from_millis(50), resync: Duration::from_secs(30) }
    }
}

/// What one pass of the watch did.
#[derive(Debug)]
pub enum Event {
    /// A pass found nothing to change.
    Checked,
    /// State drifted and was repaired; `latency` from the first event to done.
    Repaired { changes: Vec<Op>, latency: Duration },
    /// A periodic pass found and repaired drift (e.g. rules).
    Resynced { changes: Vec<Op> },
    /// A pass failed; the next event or resync tries again.
    Failed(ApplyError),
}

/// Rtnetlink multicast groups for every object kind apply owns.
const GROUPS: u32 = (libc::RTMGRP_LINK
    | libc::RTMGRP_NEIGH
    | libc::RTMGRP_IPV4_IFADDR
    | libc::RTMGRP_IPV4_ROUTE
    | libc::RTMGRP_IPV6_IFADDR
    | libc::RTMGRP_IPV6_ROUTE) as u32;

/// One converge pass under the namespace lock, so a manual apply in
/// between is never interleaved with a repair.
async fn pass(
    session: &Session,
    desired: &Desired,
    plan: &NodePlan,
    opts: Options,
    target: &Target,
) -> Result<Vec<Op>, ApplyError> {
    let _lock = lock::acquire(target.netns.as_deref(), target.lock_wait)?;
    let ns = target.netns.as_deref();
    let widened = super::route_record::widen(desired, ns);
    let changes = converge(&session.bulk, &widened, opts, Some(plan), None).await?;
    if !changes.is_empty() {
        super::route_record::keep(ns, desired, &widened, opts.reconcile.phase);
    }
    Ok(changes)
}

/// Runs until SIGTERM or SIGINT; `report` hears of every pass.
pub fn watch(
    session: &Session,
    plan: &NodePlan,
    (opts, target): (Options, &Target),
    w: WatchOptions,
    mut report: impl FnMut(Event),
) -> Result<(), ApplyError> {
    let desired = Desired::from_plan(plan);
    session.block_on(async {
        let (mut conn, _, mut events) = rtnetlink::new_connection().map_err(|e| ApplyError::Netlink {
            what: "netlink events",
            source: netlink::NetlinkError::Protocol(e.to_string()),
        })?;
        conn.socket_mut().socket_mut().bind(&SocketAddr::new(0, GROUPS)).map_err(|e| ApplyError::Netlink {
            what: "netlink events",
            source: netlink::NetlinkError::Protocol(e.to_string()),
        })?;
        let listener = tokio::spawn(conn);
        let mut resync = tokio::time::interval(w.resync);
        resync.tick().await;
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(ApplyError::Runtime)?;
        loop {
            tokio::select! {
                Some(_) = events.next() => {
                    let first = Instant::now();
                    // Drain the burst: wait until the kernel has been quiet for `debounce`.
                    while let Ok(Some(_)) = tokio::time::timeout(w.debounce, events.next()).await {}
                    match pass(session, &desired, plan, opts, target).await {
                        Ok(changes) if changes.is_empty() => report(Event::Checked),
                        Ok(changes) => report(Event::Repaired { changes, latency: first.elapsed() }),
                        Err(e) => report(Event::Failed(e)),
                    }
                }
                _ = resync.tick() => match pass(session, &desired, plan, opts, target).await {
                    Ok(changes) if changes.is_empty() => report(Event::Checked),
                    Ok(changes) => report(Event::Resynced { changes }),
                    Err(e) => report(Event::Failed(e)),
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        listener.abort();
        Ok(())
    })
}
