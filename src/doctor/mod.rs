//! `doctor`: why a node's overlay is broken, named. The plan says exactly
//! what the node should have, so the node is checked against it (drift,
//! kernel settings, rules) and every peer is probed with real packets from
//! the node's namespace (underlay, overlay, overlay at full MTU with DF).
//! Read-only: nothing here writes to the kernel.

mod arp;
mod local;
mod peers;
mod probe;

use std::time::Duration;

use serde::Serialize;

use crate::apply::desired::Desired;
use crate::apply::{ApplyError, Session};
use crate::plan::NodePlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub peer: Option<String>,
    pub message: String,
    pub evidence: String,
    pub fix: String,
}

/// How one peer (in one family) answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    pub node: String,
    pub family: crate::netaddr::Family,
    pub underlay: &'static str,
    pub overlay: &'static str,
    pub mtu: &'static str,
    pub rtt_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub node: String,
    pub findings: Vec<Finding>,
    pub peers: Vec<PeerStatus>,
}

/// What to inspect and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub netns: Option<String>,
    /// Only these peers (node names); all when empty.
    pub peers: Vec<String>,
    pub timeout: Duration,
    /// The command that converges this node, for the `drift` fix.
    pub apply_command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Inspect(#[from] ApplyError),
    #[error("probing the peers: {0}")]
    Probe(std::io::Error),
}

/// Checks the node against `plan` and probes its peers.
pub fn run(plan: &NodePlan, opts: &Options) -> Result<Report, DoctorError> {
    let session = Session::open(opts.netns.as_deref())?;
    let desired = Desired::from_plan(plan);
    let live = session.read(&desired, None)?;
    let mut findings = local::drift(&desired, &live, plan, &opts.apply_command);
    findings.extend(local::checks(plan, &live));
    let (statuses, peer_findings) = peers::probe(plan, &live, opts, &findings).map_err(DoctorError::Probe)?;
    findings.extend(peer_findings);
    findings.extend(local::duplicate_address(plan, &live));
    findings.sort_by(|a, b| (a.severity, &a.peer, a.code).cmp(&(b.severity, &b.peer, b.code)));
    Ok(Report { node: plan.node.clone(), findings, peers: statuses })
}
