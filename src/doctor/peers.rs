//! Probing the plan's peers and reading the answers as findings.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use super::probe::{self, Kind, Outcome, Probe};
use super::{Finding, Options, PeerStatus, Severity};
use crate::apply::live::Live;
use crate::netaddr::Family;
use crate::plan::{BackendPlan, NodePlan, Peer};

/// The overlay addresses a probe goes between: this node's overlay device
/// address (none under host-gw: the kernel picks) and the peer's overlay
/// device address, or its cni gateway under host-gw.
fn overlay_pair(plan: &NodePlan, p: &Peer) -> (Option<IpAddr>, IpAddr) {
    if super::local::has_overlay_device(plan) {
        let own = plan.vxlan_devices().into_iter().find(|d| d.family == p.family()).map(|d| d.address.addr());
        let own = own.or_else(|| plan.tun_device().map(|t| t.address.addr()).filter(|_| p.family() == Family::V4));
        (own, p.subnet().network())
    } else {
        (None, crate::netaddr::first_host(p.subnet()))
    }
}

/// Encapsulation bytes on the underlay per overlay packet.
fn overhead(plan: &NodePlan, f: Family) -> usize {
    let ip = if f == Family::V4 { 20 } else { 40 };
    match plan.backend {
        BackendPlan::Vxlan { .. } => ip + 8 + 8 + 14,
        BackendPlan::Udp { .. } => ip + 8,
        _ => 0,
    }
}

fn probes_for(plan: &NodePlan, selected: &[usize]) -> Vec<Probe> {
    let mut v = Vec::new();
    for &i in selected {
        let p = &plan.peers[i];
        let small = if p.family() == Family::V4 { 84 } else { 104 };
        let (src, dst) = overlay_pair(plan, p);
        v.push(Probe { peer: i, kind: Kind::Underlay, dst: p.public_ip(), src: None, size: small, df: false });
        v.push(Probe { peer: i, kind: Kind::Overlay, dst, src, size: small, df: false });
        v.push(Probe { peer: i, kind: Kind::OverlayMtu, dst, src, size: plan.mtu as usize, df: true });
    }
    v
}

fn describe(o: Option<&Outcome>, timeout: Duration) -> String {
    match o {
        Some(Outcome::Reply { rtt }) => format!("answered in {:.2} ms", rtt.as_secs_f64() * 1000.0),
        Some(Outcome::Error(e)) => e.clone(),
        Some(Outcome::SendFailed(e)) => format!("could not send: {e}"),
        Some(Outcome::NoAnswer) | None => format!("no answer within {:.1} s", timeout.as_secs_f64()),
    }
}

fn ok(o: Option<&Outcome>) -> bool {
    matches!(o, Some(Outcome::Reply { .. }))
}

/// Probes every selected peer and turns the answers into statuses and
/// findings; peers already found drifting get no path findings (the drift
/// is the cause).
pub fn probe(
    plan: &NodePlan,
    live: &Live,
    opts: &Options,
    earlier: &[Finding],
) -> io::Result<(Vec<PeerStatus>, Vec<Finding>)> {
    let selected: Vec<usize> = (0..plan.peers.len())
        .filter(|&i| opts.peers.is_empty() || opts.peers.iter().any(|n| n == plan.peers[i].node()))
        .collect();
    let results = probe::run(&probes_for(plan, &selected), opts.timeout)?;
    let mut statuses = Vec::new();
    let mut findings = Vec::new();
    for &i in &selected {
        let p = &plan.peers[i];
        let get = |k: Kind| results.get(&(i, k));
        let (u, o, m) = (get(Kind::Underlay), get(Kind::Overlay), get(Kind::OverlayMtu));
        statuses.push(PeerStatus {
            node: p.node().to_string(),
            family: p.family(),
            underlay: if ok(u) { "ok" } else { "unreachable" },
            overlay: if ok(o) { "ok" } else { "blocked" },
            mtu: if ok(m) { "ok" } else { "too big" },
            rtt_ms: match u {
                Some(Outcome::Reply { rtt }) => Some((rtt.as_secs_f64() * 100_000.0).round() / 100.0),
                _ => None,
            },
        });
        let drifting = earlier.iter().any(|f| f.code == "drift" && f.peer.as_deref() == Some(p.node()));
        if let Some(f) = path_finding(plan, p, (u, o, m), opts.timeout, drifting) {
            findings.push(f);
        }
    }
    if findings.iter().any(|f| f.code == "overlay-blocked") {
        findings.extend(offload_suspect(plan, live));
    }
    Ok((statuses, findings))
}

/// The first failing layer of one peer's path, as a finding.
fn path_finding(
    plan: &NodePlan,
    p: &Peer,
    (u, o, m): (Option<&Outcome>, Option<&Outcome>, Option<&Outcome>),
    timeout: Duration,
    drifting: bool,
) -> Option<Finding> {
    let node = p.node();
    let ip = p.public_ip();
    let (src, dst) = overlay_pair(plan, p);
    let from = src.map(|s| format!(" from {s}")).unwrap_or_default();
    let f = |code, message: String, evidence: String, fix: String| Finding {
        code,
        severity: Severity::Error,
        peer: Some(node.to_string()),
        message,
        evidence,
        fix,
    };
    if !ok(u) {
        return Some(f(
            "peer-unreachable-underlay",
            format!("{node}'s public IP {ip} does not answer on the underlay: the node is down or cut off"),
            format!("ICMP echo to {ip}: {}", describe(u, timeout)),
            format!("check that {node} is up and its uplink has {ip}; `ip route get {ip}` here shows the way out"),
        ));
    }
    if drifting {
        return None;
    }
    if !ok(o) {
        let port = match plan.backend {
            BackendPlan::Vxlan { port, .. } => Some(("VXLAN", port)),
            BackendPlan::Udp { port } => Some(("flannel udp", port)),
            _ => None,
        };
        let fix = match port {
            Some((what, port)) => format!(
                "allow {what} (UDP {port}) between this node and {ip} in both nodes' firewalls and on the network between them"
            ),
            None => {
                format!("check that {node} forwards (ip_forward), has its cni gateway {dst}, and accepts it in FORWARD")
            }
        };
        return Some(f(
            "overlay-blocked",
            format!("{ip} answers on the underlay but {node}'s overlay address {dst} does not"),
            format!("ICMP echo to {ip}: {}; ICMP echo to {dst}{from}: {}", describe(u, timeout), describe(o, timeout)),
            fix,
        ));
    }
    if !ok(m) {
        let (mtu, over) = (plan.mtu, overhead(plan, p.family()));
        return Some(f(
            "mtu-mismatch",
            format!("full-size overlay packets to {node} do not pass: the path's MTU is below {}", mtu as usize + over),
            format!("a {mtu}-byte DF echo to {dst}{from}: {}; small ones answer", describe(m, timeout)),
            format!(
                "make the underlay MTU at least {} on the whole path to {ip}, or lower the overlay MTU (`mtu:` in the topology)",
                mtu as usize + over
            ),
        ));
    }
    None
}

/// Checksum offload on beside a blocked overlay: flannel's troubleshooting
/// guide (#1279) names it for underlays that NAT the VXLAN packets.
fn offload_suspect(plan: &NodePlan, live: &Live) -> Vec<Finding> {
    plan.vxlan_devices()
        .into_iter()
        .filter(|d| live.tx_checksum.get(&d.name) == Some(&true))
        .map(|d| Finding {
            code: "tx-checksum-offload",
            severity: Severity::Warning,
            peer: None,
            message: format!(
                "{} has tx checksum offload on; if the underlay NATs VXLAN packets their UDP checksums arrive corrupt (flannel #1279)",
                d.name
            ),
            evidence: format!("ethtool -k {}: tx-checksum-ip-generic: on, beside a blocked overlay", d.name),
            fix: format!("ethtool -K {} tx-checksum-ip-generic off   (txChecksumOffload: false in the topology)", d.name),
        })
        .collect()
}
