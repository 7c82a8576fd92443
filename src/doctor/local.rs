//! What doctor sees on the node itself: drift from the plan, the kernel
//! settings and rules an overlay needs, MACs, offloads, and whether
//! another host claims the node's underlay address.

use std::net::IpAddr;

use super::{Finding, Severity};
use crate::apply::desired::Desired;
use crate::apply::live::Live;
use crate::apply::reconcile;
use crate::netaddr::Family;
use crate::plan::{BackendPlan, NodePlan, Peer};

fn finding(code: &'static str, peer: Option<&str>, message: String, evidence: String, fix: String) -> Finding {
    Finding { code, severity: Severity::Error, peer: peer.map(str::to_string), message, evidence, fix }
}

/// The peer a change line is about: its subnet, addresses or MAC appear in it.
fn peer_of<'a>(plan: &'a NodePlan, line: &str) -> Option<&'a str> {
    plan.peers.iter().find_map(|p| {
        let marks = [p.subnet().to_string(), format!("{} ", p.public_ip()), format!("{} ", p.subnet().network())];
        let mac = p.vtep_mac().map(|m| m.to_string());
        let hit = marks.iter().any(|m| line.contains(m.as_str())) || mac.is_some_and(|m| line.contains(&m));
        hit.then(|| p.node())
    })
}

/// `drift`: what `apply --dry-run` would change, one finding per peer (and
/// one for the node's own objects).
pub fn drift(desired: &Desired, live: &Live, plan: &NodePlan, apply: &str) -> Vec<Finding> {
    let opts = reconcile::Options::default();
    let ops = match reconcile::reconcile(desired, live, opts) {
        Ok(ops) => ops,
        Err(refusal) => {
            let why = refusal.to_string();
            return vec![finding(
                "drift",
                None,
                "apply would refuse this node".into(),
                why,
                format!("{apply} --adopt"),
            )];
        }
    };
    let mut groups: Vec<(Option<&str>, Vec<String>)> = Vec::new();
    for op in &ops {
        let line = format!("{op} ");
        let peer = peer_of(plan, &line);
        match groups.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, lines)) => lines.push(op.to_string()),
            None => groups.push((peer, vec![op.to_string()])),
        }
    }
    groups
        .into_iter()
        .map(|(peer, lines)| {
            let what = peer.map_or_else(|| "this node's own objects".to_string(), |p| format!("the path to {p}"));
            let n = crate::words::plural(lines.len(), "change");
            finding(
                "drift",
                peer,
                format!("the kernel differs from the plan for {what} ({n})"),
                lines.join("\n"),
                apply.to_string(),
            )
        })
        .collect()
}

fn sysctl(key: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/sys/{key}")).ok()?.trim().parse().ok()
}

/// The node-local causes, each with its code.
pub fn checks(plan: &NodePlan, live: &Live) -> Vec<Finding> {
    let mut f = Vec::new();
    uplink_mtu(plan, live, &mut f);
    rp_filter(plan, live, &mut f);
    forwarding(plan, &mut f);
    forward_drop(plan, &mut f);
    masquerade(plan, live, &mut f);
    vtep_macs(plan, live, &mut f);
    offload(plan, live, &mut f);
    f
}

fn uplink_mtu(plan: &NodePlan, live: &Live, f: &mut Vec<Finding>) {
    let u = &plan.uplink;
    match live.links.get(&u.name).and_then(|l| l.mtu) {
        Some(have) if have != u.mtu => f.push(finding(
            "mtu-mismatch",
            None,
            format!(
                "uplink {} has MTU {have}; the plan (and the overlay MTU {}) was made for {}",
                u.name, plan.mtu, u.mtu
            ),
            format!("ip link show {}: mtu {have}", u.name),
            format!("ip link set {} mtu {}   (or render the plan for MTU {have})", u.name, u.mtu),
        )),
        Some(_) => {}
        None => f.push(finding(
            "drift",
            None,
            format!("the uplink {} does not exist", u.name),
            format!("no link named {}", u.name),
            "bring up the uplink the topology names, or fix `interface:` there".into(),
        )),
    }
}

/// The devices traffic between nodes crosses: the uplink and the overlay devices.
fn devices(plan: &NodePlan, live: &Live) -> Vec<String> {
    let overlay = plan.vxlan_devices().into_iter().map(|d| d.name).chain(plan.tun_device().map(|t| t.name));
    std::iter::once(plan.uplink.name.clone()).chain(overlay).filter(|d| live.links.contains_key(d)).collect()
}

fn rp_filter(plan: &NodePlan, live: &Live, f: &mut Vec<Finding>) {
    if plan.family(Family::V4).is_none() {
        return;
    }
    let all = sysctl("net/ipv4/conf/all/rp_filter").unwrap_or(0);
    for dev in devices(plan, live) {
        let own = sysctl(&format!("net/ipv4/conf/{dev}/rp_filter")).unwrap_or(0);
        if all.max(own) == 1 {
            f.push(finding(
                "rp-filter-strict",
                None,
                format!("strict reverse-path filtering on {dev} drops pod traffic that arrives on another device than its route"),
                format!("net.ipv4.conf.all.rp_filter = {all}, net.ipv4.conf.{dev}.rp_filter = {own} (effective: the larger, 1)"),
                format!("sysctl -w net/ipv4/conf/{dev}/rp_filter=2"),
            ));
        }
    }
}

fn forwarding(plan: &NodePlan, f: &mut Vec<Finding>) {
    for (family, _) in plan.families() {
        let key = if family == Family::V4 { "net/ipv4/ip_forward" } else { "net/ipv6/conf/all/forwarding" };
        if sysctl(key) == Some(0) {
            f.push(finding(
                "ip-forward-off",
                None,
                format!("{family} forwarding is off: this node does not route pod traffic to or from other nodes"),
                format!("{} = 0", key.replace('/', ".")),
                format!("sysctl -w {}=1", key.replace('/', ".")),
            ));
        }
    }
}

/// FORWARD with policy DROP (or an unconditional DROP/REJECT) before any
/// rule accepting the cluster network or jumping to flannel's chain.
fn forward_drop(plan: &NodePlan, f: &mut Vec<Finding>) {
    for (family, fp) in plan.families() {
        let save = crate::traffic::iptables::save_program(family);
        let Some(path) = crate::apply::rules::find(save) else { continue };
        let Ok(out) = std::process::Command::new(path).args(["-t", "filter"]).output() else { continue };
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(evidence) = forward_verdict(&text, &fp.network.to_string()) {
            f.push(finding(
                "forward-drop",
                None,
                format!("{family} FORWARD drops pod traffic between nodes before anything accepts {}", fp.network),
                evidence,
                format!(
                    "{} -I FORWARD -s {net} -j ACCEPT && {} -I FORWARD -d {net} -j ACCEPT   (or let apply keep flannel's FLANNEL-FWD chain: trafficRules.forward)",
                    save.replace("-save", ""),
                    save.replace("-save", ""),
                    net = fp.network
                ),
            ));
        }
    }
}

/// Why `iptables-save -t filter` output drops the network's forwarded
/// traffic, or `None` when something accepts it first.
pub fn forward_verdict(save: &str, network: &str) -> Option<String> {
    let policy_drop = save.lines().any(|l| l.starts_with(":FORWARD DROP"));
    let flannel_accepts = save.lines().any(|l| l.starts_with("-A FLANNEL-FWD ") && l.ends_with("-j ACCEPT"));
    for l in save.lines().filter(|l| l.starts_with("-A FORWARD ")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        let target = words.windows(2).find(|w| w[0] == "-j").map(|w| w[1]);
        let accepts_net =
            target == Some("ACCEPT") && (l.contains(&format!("-s {network}")) || l.contains(&format!("-d {network}")));
        if accepts_net || (target == Some("FLANNEL-FWD") && flannel_accepts) {
            return None;
        }
        let conditional = words
            .iter()
            .any(|w| w.starts_with('-') && !matches!(*w, "-A" | "-j" | "-m" | "--comment" | "--reject-with"));
        if matches!(target, Some("DROP" | "REJECT")) && !conditional {
            return Some(format!("iptables-save -t filter: `{l}` comes before any accept of {network}"));
        }
    }
    policy_drop.then(|| format!("iptables-save -t filter: `:FORWARD DROP` and no rule accepts {network}"))
}

fn masquerade(plan: &NodePlan, live: &Live, f: &mut Vec<Finding>) {
    let Some(rules) = plan.traffic_rules else { return };
    for r in plan.family_rules().into_iter().filter(|r| r.masquerade) {
        let present = match rules.backend {
            crate::topology::RulesBackend::Iptables => live
                .rules
                .iptables
                .get(&r.family)
                .and_then(|c| c.get(crate::traffic::iptables::MASQ.chain))
                .is_some_and(|c| c.exists && !c.rules.is_empty() && !c.jumps.is_empty()),
            crate::topology::RulesBackend::Nftables => {
                live.rules.nft.get(&r.family).is_some_and(|t| t.has_chain("postrtg"))
            }
        };
        if !present {
            f.push(finding(
                "masquerade-missing",
                None,
                format!("pods' {} traffic leaving the cluster network is not masqueraded", r.family),
                format!("no {} masquerade chain with a jump into it ({})", r.family, rules.backend.as_str()),
                "flannel-gen apply (it keeps the FLANNEL-POSTRTG chain)".into(),
            ));
        }
    }
}

fn vtep_macs(plan: &NodePlan, live: &Live, f: &mut Vec<Finding>) {
    for d in plan.vxlan_devices() {
        let Some(l) = live.links.get(&d.name) else { continue };
        if let Some(have) = l.mac.filter(|m| *m != d.mac) {
            f.push(finding(
                "vtep-mac-mismatch",
                None,
                format!("{} has MAC {have}; every peer's FDB sends this node's traffic to {}", d.name, d.mac),
                format!("ip link show {}: link/ether {have}", d.name),
                format!("ip link set {} address {}", d.name, d.mac),
            ));
        }
        for p in plan.peers.iter().filter(|p| p.family() == d.family) {
            let Peer::Vxlan { node, subnet, vtep_mac, .. } = p else { continue };
            let ip = subnet.network();
            let wrong = live
                .neighs
                .iter()
                .find(|n| n.ifindex == l.index && n.ip == ip && n.lladdr.is_some_and(|m| m != *vtep_mac));
            if let Some(n) = wrong {
                let have = n.lladdr.map(|m| m.to_string()).unwrap_or_default();
                f.push(finding(
                    "vtep-mac-mismatch",
                    Some(node),
                    format!("the neighbour entry for {node} ({ip}) has MAC {have}, not its VTEP MAC {vtep_mac}"),
                    format!("ip neigh show dev {}: {ip} lladdr {have}", d.name),
                    format!("ip neigh replace {ip} lladdr {vtep_mac} dev {} nud permanent", d.name),
                ));
            }
        }
    }
}

fn offload(plan: &NodePlan, live: &Live, f: &mut Vec<Finding>) {
    for d in plan.vxlan_devices().into_iter().filter(|d| !d.tx_checksum_offload) {
        if live.tx_checksum.get(&d.name) == Some(&true) {
            f.push(finding(
                "tx-checksum-offload",
                None,
                format!("tx checksum offload is on on {} but the plan turns it off (txChecksumOffload: false)", d.name),
                format!("ethtool -k {}: tx-checksum-ip-generic: on", d.name),
                format!("ethtool -K {} tx-checksum-ip-generic off", d.name),
            ));
        }
    }
}

/// `duplicate-address`: an ARP probe (RFC 5227: sender 0.0.0.0) for the
/// uplink's IPv4 address; any answer is another host holding it.
pub fn duplicate_address(plan: &NodePlan, live: &Live) -> Vec<Finding> {
    let (Some(addr), Some(link)) = (plan.uplink.ipv4, live.links.get(&plan.uplink.name)) else { return Vec::new() };
    let (IpAddr::V4(ip), Some(mac)) = (addr.addr(), link.mac) else { return Vec::new() };
    match super::arp::probe(link.index, mac, ip) {
        Ok(Some(other)) => vec![finding(
            "duplicate-address",
            None,
            format!("another host on the underlay answers for this node's address {ip}"),
            format!("ARP reply for {ip} from {other}, this node's {} is {mac}", plan.uplink.name),
            format!("find the host with MAC {other} and give it another address (or this node, and render again)"),
        )],
        Ok(None) | Err(_) => Vec::new(),
    }
}

/// Whether the plan's backend has an overlay device (vxlan, udp).
pub fn has_overlay_device(plan: &NodePlan) -> bool {
    matches!(plan.backend, BackendPlan::Vxlan { .. } | BackendPlan::Udp { .. })
}
