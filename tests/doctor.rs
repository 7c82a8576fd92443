//! `doctor` on namespace clusters: healthy gives no finding; each fault,
//! injected in turn and undone, gives its code (and exit 1). Probes are real
//! ICMP from the node's namespace to addresses inside the test's namespaces.
//! Needs root; skips loudly otherwise.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::netns::{Netns, must, root_or_skip};
use common::{code, run, stderr, stdout};
use serde_json::Value;

const VXLAN: &str = "examples/vxlan-3node.yaml";
const HOST_GW: &str = "examples/hostgw-3node.yaml";

/// `doctor TOPO --node N --netns NS --format json`: (exit code, report).
fn doctor(c: &Cluster, topo: &str, node: &str) -> (i32, Value) {
    let ns = c.node(node).ns.name.clone();
    let o = run(&["doctor", topo, "--node", node, "--netns", &ns, "--format", "json", "--timeout", "1"]);
    let report: Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    (code(&o), report)
}

/// The (code, peer) pairs of a report.
fn codes(r: &Value) -> Vec<(String, Option<String>)> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["code"].as_str().expect("code").to_string(), f["peer"].as_str().map(str::to_string)))
        .collect()
}

fn has(r: &Value, code: &str, peer: Option<&str>) -> bool {
    codes(r).iter().any(|(c, p)| c == code && p.as_deref() == peer)
}

fn sh(ns: &Netns, script: &str) {
    must(&mut ns.exec("sh", &["-c", script]));
}

/// Injects a fault on `node`, expects `code` (for `peer`) from node-1's
/// doctor with exit 1, undoes it (a script, or `APPLY`: apply again) and
/// expects a healthy node-1 again.
fn fault(c: &Cluster, node: &str, inject: &str, code_: &str, peer: Option<&str>, undo: &str) -> Value {
    sh(&c.node(node).ns, inject);
    let (exit, r) = doctor(c, VXLAN, "node-1");
    if undo == "APPLY" {
        c.apply(VXLAN, node, &[]);
    } else {
        sh(&c.node(node).ns, undo);
    }
    assert_eq!(exit, 1, "{inject}: {r:#}");
    assert!(has(&r, code_, peer), "{inject}: want {code_} ({peer:?}), got {:?}", codes(&r));
    let f = r["findings"].as_array().expect("findings").iter().find(|f| f["code"] == code_).expect("finding");
    for field in ["message", "evidence", "fix", "severity"] {
        assert!(f[field].as_str().is_some_and(|s| !s.is_empty()), "{code_}: {field} is empty: {f:#}");
    }
    let (exit, after) = doctor(c, VXLAN, "node-1");
    assert_eq!((exit, codes(&after)), (0, vec![]), "after undoing `{inject}`: {after:#}");
    r
}

#[test]
fn vxlan_cluster_healthy_then_each_fault_names_its_cause() {
    if !root_or_skip("vxlan_cluster_healthy_then_each_fault_names_its_cause") {
        return;
    }
    let mut c = Cluster::new(VXLAN);
    c.apply_all(VXLAN);
    let (exit, r) = doctor(&c, VXLAN, "node-1");
    assert_eq!((exit, codes(&r)), (0, vec![]), "{r:#}");
    let peers = r["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 2);
    for p in peers {
        assert_eq!(
            (&p["underlay"], &p["overlay"], &p["mtu"]),
            (&Value::from("ok"), &Value::from("ok"), &Value::from("ok")),
            "{p}"
        );
        assert!(p["rttMs"].as_f64().is_some_and(|ms| ms > 0.0), "{p}");
    }
    let at = "net/ipv4/conf";
    let blocked = fault(
        &c,
        "node-3",
        "iptables -A INPUT -p udp --dport 8472 -j DROP",
        "overlay-blocked",
        Some("node-3"),
        "iptables -D INPUT -p udp --dport 8472 -j DROP",
    );
    // Beside a blocked overlay, checksum offload on flannel.1 is named as a
    // possible cause (flannel #1279), as a warning.
    let offload = blocked["findings"].as_array().expect("findings").iter().find(|f| f["code"] == "tx-checksum-offload");
    assert_eq!(offload.map(|f| f["severity"].clone()), Some(Value::from("warning")), "{blocked:#}");
    fault(
        &c,
        "node-1",
        &format!("echo 1 > /proc/sys/{at}/eth0/rp_filter"),
        "rp-filter-strict",
        None,
        &format!("echo 2 > /proc/sys/{at}/eth0/rp_filter"),
    );
    fault(
        &c,
        "node-1",
        "echo 0 > /proc/sys/net/ipv4/ip_forward",
        "ip-forward-off",
        None,
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
    );
    fault(&c, "node-1", "ip route del 10.244.2.0/24", "drift", Some("node-2"), "APPLY");
    fault(&c, "node-1", "ip link set eth0 mtu 1400", "mtu-mismatch", None, "ip link set eth0 mtu 1500");
    // A peer whose underlay takes less than the overlay's full-size packets.
    fault(&c, "node-2", "ip link set eth0 mtu 1400", "mtu-mismatch", Some("node-2"), "ip link set eth0 mtu 1500");
    fault(&c, "node-1", "iptables -I FORWARD 1 -j DROP", "forward-drop", None, "iptables -D FORWARD 1");
    fault(&c, "node-1", "iptables -t nat -F FLANNEL-POSTRTG", "masquerade-missing", None, "APPLY");
    fault(
        &c,
        "node-1",
        "ip neigh replace 10.244.3.0 lladdr 02:00:00:00:00:99 dev flannel.1 nud permanent",
        "vtep-mac-mismatch",
        Some("node-3"),
        "APPLY",
    );
    // Another host on the segment holding node-1's address.
    c.external_host("192.168.31.61/24");
    let (exit, r) = doctor(&c, VXLAN, "node-1");
    assert!(exit == 1 && has(&r, "duplicate-address", None), "{:?}", codes(&r));
    c.hosts.pop();
    // A peer whose uplink is down (last: it loses its routes).
    sh(&c.node("node-3").ns, "ip link set eth0 down");
    let (exit, r) = doctor(&c, VXLAN, "node-1");
    assert!(exit == 1 && has(&r, "peer-unreachable-underlay", Some("node-3")), "{:?}", codes(&r));
    assert!(!has(&r, "overlay-blocked", Some("node-3")), "the underlay is the cause: {:?}", codes(&r));
    // The text form: a table, then each finding with evidence and fix.
    let ns = c.node("node-1").ns.name.clone();
    let o = run(&["doctor", VXLAN, "--node", "node-1", "--netns", &ns, "--timeout", "0.5", "--peer", "node-3"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("PEER") && text.contains("error peer-unreachable-underlay (node-3)"), "{text}");
    assert!(text.contains("  evidence: ICMP echo to 192.168.31.63: no answer") && text.contains("  fix: "), "{text}");
    assert!(!text.contains("node-2  "), "--peer limits the probes: {text}");
}

#[test]
fn host_gw_cluster_is_healthy_and_a_lost_route_is_drift() {
    if !root_or_skip("host_gw_cluster_is_healthy_and_a_lost_route_is_drift") {
        return;
    }
    let mut c = Cluster::new(HOST_GW);
    c.apply_all(HOST_GW);
    c.attach_pods(1);
    let (exit, r) = doctor(&c, HOST_GW, "node-2");
    assert_eq!((exit, codes(&r)), (0, vec![]), "{r:#}");
    sh(&c.node("node-2").ns, "ip route del 10.244.3.0/24");
    let (exit, r) = doctor(&c, HOST_GW, "node-2");
    assert!(exit == 1 && has(&r, "drift", Some("node-3")), "{:?}", codes(&r));
}

#[test]
fn a_200_peer_node_finishes_well_under_5_seconds() {
    if !root_or_skip("a_200_peer_node_finishes_well_under_5_seconds") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("big.yaml");
    let generated = run(&["generate", "--nodes", "201"]);
    assert_eq!(code(&generated), 0);
    std::fs::write(&topo, &generated.stdout).expect("write");
    let plan: Value = serde_json::from_str(&stdout(&run(&[
        "plan",
        topo.to_str().expect("utf8"),
        "--node",
        "node-1",
        "--format",
        "json",
    ])))
    .expect("plan");
    let ip = plan["uplink"]["ipv4"].as_str().expect("uplink ip");
    let ns = Netns::node("doc", Some(ip));
    let started = Instant::now();
    let o = run(&["doctor", topo.to_str().expect("utf8"), "--node", "node-1", "--netns", &ns.name, "--format", "json"]);
    let took = started.elapsed();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(r["peers"].as_array().expect("peers").len(), 200);
    assert!(took < Duration::from_secs(4), "200 peers took {took:?}");
    eprintln!("doctor with 200 unreachable peers: {took:?}");
}

#[test]
fn bad_flags_are_exit_2() {
    for args in [
        &["doctor", VXLAN, "--node", "node-1", "--peer", "node-9"][..],
        &["doctor", VXLAN, "--node", "node-1", "--timeout", "0"][..],
        &["doctor", "--plan", "no/such/plan.json"][..],
    ] {
        let o = run(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
}

/// Every code doctor reports. Operators read them in README's table and
/// in `doctor --help`; both must name exactly these.
const CODES: [&str; 11] = [
    "drift",
    "peer-unreachable-underlay",
    "overlay-blocked",
    "mtu-mismatch",
    "rp-filter-strict",
    "ip-forward-off",
    "forward-drop",
    "masquerade-missing",
    "vtep-mac-mismatch",
    "tx-checksum-offload",
    "duplicate-address",
];

#[test]
fn every_code_is_reported_and_documented() {
    let sources = [include_str!("../src/doctor/local.rs"), include_str!("../src/doctor/peers.rs")].concat();
    let readme = include_str!("../README.md");
    let table: Vec<&str> = readme
        .split("| code | meaning |")
        .nth(1)
        .expect("README has doctor's code table")
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert_eq!(table, CODES, "README's table");
    let mut cli = <flannel_gen::cli::Cli as clap::CommandFactory>::command();
    let help = cli.find_subcommand_mut("doctor").expect("doctor").render_long_help().to_string();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for code in CODES {
        assert!(sources.contains(&format!("\"{code}\"")), "{code} is reported by src/doctor");
        assert!(help.contains(code), "doctor --help names {code}");
    }
}
