//! `flannel-gen doctor (TOPO [--node N] | --plan FILE) [--netns NAME] [--peer NODE]...`

use std::time::Duration;

use super::{Format, out};
use crate::doctor::{self, DoctorError, Report};
use crate::error::{Error, exit};

/// Name why the overlay of this node is broken: check the node against its
/// plan and probe every peer from it, read-only.
///
/// Checks drift from the plan, rp_filter, forwarding, the FORWARD chain,
/// masquerade rules, VTEP MACs, checksum offload and duplicate addresses,
/// then sends a few ICMP echoes to each peer (the plan's addresses only):
/// its public IP over the underlay, its overlay address over the overlay,
/// and a DF echo at the overlay MTU. Codes: drift,
/// peer-unreachable-underlay, overlay-blocked, mtu-mismatch,
/// rp-filter-strict, ip-forward-off, forward-drop, masquerade-missing,
/// vtep-mac-mismatch, tx-checksum-offload, duplicate-address.
///
/// Exit codes: 0 healthy, 1 findings, 2 bad input, 3 could not inspect.
///
/// Example:
///   flannel-gen doctor cluster.yaml --node node-1
///   flannel-gen doctor --plan /etc/flannel-gen/plan.json --format json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub source: super::source::PlanSource,
    /// Inspect inside the named network namespace (/run/netns/NAME).
    #[arg(long, value_name = "NAME", value_parser = super::target::parse_netns)]
    pub netns: Option<String>,
    /// Probe only this peer (a node name; repeatable). Default: every peer.
    #[arg(long, value_name = "NODE")]
    pub peer: Vec<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Seconds to wait for the peers' answers (all peers at once).
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.1..=60.0).contains(&t) => Ok(t),
        _ => Err(format!("`{s}` is not a number of seconds from 0.1 to 60")),
    }
}

/// The command that converges this node, as the user would type it.
fn apply_command(a: &Args) -> String {
    let mut s = match (&a.source.topology, &a.source.plan) {
        (Some(t), _) => format!("flannel-gen apply {}", t.display()),
        (None, Some(p)) => format!("flannel-gen apply --plan {}", p.display()),
        (None, None) => "flannel-gen apply".to_string(),
    };
    if let Some(n) = &a.source.node {
        s.push_str(&format!(" --node {n}"));
    }
    if let Some(ns) = &a.netns {
        s.push_str(&format!(" --netns {ns}"));
    }
    s
}

pub fn run(a: Args) -> Result<u8, Error> {
    let plan = a.source.load(false)?;
    if let Some(unknown) = a.peer.iter().find(|n| !plan.peers.iter().any(|p| p.node() == n.as_str())) {
        return Err(Error::Usage(format!("--peer {unknown}: not a peer of node {} in this plan", plan.node)));
    }
    let opts = doctor::Options {
        netns: a.netns.clone(),
        peers: a.peer.clone(),
        timeout: Duration::from_secs_f64(a.timeout),
        apply_command: apply_command(&a),
    };
    let report = doctor::run(&plan, &opts).map_err(|e| match e {
        DoctorError::Inspect(e) => Error::Apply(e),
        DoctorError::Probe(source) => Error::Io { path: "raw ICMP socket".into(), source },
    })?;
    out(&match a.format {
        Format::Json => {
            format!("{}\n", serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?)
        }
        Format::Text => text(&report),
    })?;
    Ok(if report.findings.is_empty() { exit::OK } else { exit::CHANGES })
}

/// A table of the peers, then each finding with its evidence and fix.
pub fn text(r: &Report) -> String {
    let mut s = format!(
        "node {}: {} probed, {}\n",
        r.node,
        crate::words::plural(r.peers.len(), "peer path"),
        crate::words::plural(r.findings.len(), "finding")
    );
    if !r.peers.is_empty() {
        let w = r.peers.iter().map(|p| p.node.len()).max().unwrap_or(4).max(4);
        s.push_str(&format!("  {:w$}  {:6}  {:11}  {:7}  {:7}  RTT\n", "PEER", "FAMILY", "UNDERLAY", "OVERLAY", "MTU"));
        for p in &r.peers {
            let rtt = p.rtt_ms.map(|m| format!("{m:.2} ms")).unwrap_or_else(|| "-".into());
            s.push_str(&format!(
                "  {:w$}  {:6}  {:11}  {:7}  {:7}  {rtt}\n",
                p.node,
                p.family.to_string(),
                p.underlay,
                p.overlay,
                p.mtu
            ));
        }
    }
    for f in &r.findings {
        let peer = f.peer.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
        let sev = match f.severity {
            doctor::Severity::Error => "error",
            doctor::Severity::Warning => "warning",
        };
        s.push_str(&format!("\n{sev} {}{peer}: {}\n", f.code, f.message));
        for (i, line) in f.evidence.lines().enumerate() {
            s.push_str(&format!("  {} {line}\n", if i == 0 { "evidence:" } else { "         " }));
        }
        s.push_str(&format!("  fix:      {}\n", f.fix));
    }
    if r.findings.is_empty() {
        s.push_str("healthy: the node matches its plan and every probed peer answers\n");
    }
    s
}
