//! Zero-loss backend migration, rolled out node by node in two phases, while
//! every pod pings a pod on every other node at 100 packets per second.
//! Needs root; skips loudly otherwise.

mod common;

use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::Duration;

use common::cluster::Cluster;
use common::netns::{Netns, flannel_state, root_or_skip};
use common::{code, run, stdout};

const VXLAN: &str = "examples/vxlan-3node.yaml";
const HOST_GW: &str = "examples/hostgw-3node.yaml";
/// Pings per pair: at 10 ms that is 12 s, longer than both migrations take.
const COUNT: usize = 1200;
/// Pause between nodes, so switched and unswitched nodes coexist for a while.
const STEP: Duration = Duration::from_millis(150);

fn roll_out(c: &Cluster, topology: &str) {
    for phase in ["1", "2"] {
        for n in &c.nodes {
            c.apply(topology, &n.name, &["--phase", phase]);
            sleep(STEP);
        }
    }
}

/// The node's flannel state without what the pods' bridge added (cni0 routes).
fn node_state(ns: &Netns) -> String {
    flannel_state(ns, &["flannel.1"]).lines().filter(|l| !l.contains("\"cni0\"")).collect::<Vec<_>>().join("\n")
}

/// The state a fresh apply of `topology` gives `node` in a new namespace.
fn fresh_state(c: &Cluster, topology: &str, node: &str) -> String {
    let ns = Netns::node("fresh", Some(&c.node(node).ip));
    let o = run(&["apply", topology, "--node", node, "--netns", &ns.name]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // The cluster nodes also have a default route to the segment router.
    let underlay: ipnet::Ipv4Net = c.node(node).ip.parse().expect("cidr");
    let gw = underlay.trunc().hosts().next().expect("host").to_string();
    ns.ip(&["route", "add", "default", "via", &gw]);
    node_state(&ns)
}

#[test]
fn vxlan_to_host_gw_and_back_loses_no_packets() {
    if !root_or_skip("vxlan_to_host_gw_and_back_loses_no_packets") {
        return;
    }
    let mut c = Cluster::new(VXLAN);
    c.apply_all(VXLAN);
    c.attach_pods(1);
    assert!(c.ping_across().is_empty(), "cluster works before the migration");

    let mut pingers: Vec<(String, Child)> = Vec::new();
    for a in &c.pods {
        for b in c.pods.iter().filter(|b| b.node != a.node) {
            let child =
                a.ns.exec("ping", &["-n", "-q", "-i", "0.01", "-c", &COUNT.to_string(), "-W", "1", &b.ip])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("ping");
            pingers.push((format!("{} ({}) -> {} ({})", a.ip, a.node, b.ip, b.node), child));
        }
    }
    sleep(Duration::from_millis(500));

    roll_out(&c, HOST_GW);
    for n in &c.nodes {
        let state = flannel_state(&n.ns, &["flannel.1"]);
        assert!(
            !state.contains("\"link\":\"flannel.1\"") && !state.contains("\"fdb\"") && !state.contains("\"neigh\""),
            "{}: leftovers after vxlan → host-gw:\n{state}",
            n.name
        );
        assert_eq!(
            node_state(&n.ns),
            fresh_state(&c, HOST_GW, &n.name),
            "{}: host-gw state differs from a fresh apply",
            n.name
        );
    }
    roll_out(&c, VXLAN);
    for (pair, child) in &mut pingers {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{pair}: ping ended before the migration did; raise COUNT"
        );
    }

    let (mut sent, mut lost) = (0usize, 0usize);
    let mut report = Vec::new();
    for (pair, child) in pingers {
        let out = child.wait_with_output().expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("{pair}: no ping summary: {text}"))
            .to_string();
        let nums: Vec<usize> = line.split(|ch: char| !ch.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
        let (tx, rx) = (nums[0], nums[1]);
        sent += tx;
        lost += tx - rx;
        report.push(format!("{pair}: {line}"));
    }
    eprintln!("migration pings: {sent} sent, {lost} lost\n{}", report.join("\n"));
    assert_eq!(sent, COUNT * 6);
    assert_eq!(lost, 0, "packets lost during the migration:\n{}", report.join("\n"));

    for n in &c.nodes {
        assert_eq!(
            node_state(&n.ns),
            fresh_state(&c, VXLAN, &n.name),
            "{}: vxlan state after the round trip differs from a fresh apply",
            n.name
        );
    }
}

#[test]
fn diff_of_the_migration_names_routes_devices_and_phases() {
    let o = run(&["diff", VXLAN, HOST_GW, "--color", "never"]);
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    for want in [
        "node node-1: changed",
        "backend vxlan → host-gw",
        "~ 2 routes move flannel.1 → eth0: 10.244.2.0/24, 10.244.3.0/24",
        "- device flannel.1 (VXLAN) and its 2 neighbours and 2 FDB entries",
        "warning: MTU 1450 → 1500",
        "--phase 1",
        "--- a/node-1/etc/flannel-gen/route.batch",
        "+++ b/node-1/etc/flannel-gen/route.batch",
        "+route replace 10.244.2.0/24 via 192.168.31.62 dev eth0 proto static",
        "--- a/node-3/etc/systemd/network/50-flannel.1.netdev\n+++ /dev/null",
    ] {
        assert!(text.contains(want), "diff lacks {want:?}:\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "--color never has no escapes");

    let same = run(&["diff", VXLAN, VXLAN]);
    assert_eq!(code(&same), 0);
    assert_eq!(stdout(&same), "no changes\n");

    let colored = run(&["diff", VXLAN, HOST_GW, "--color", "always", "--node", "node-2", "--stat"]);
    assert!(stdout(&colored).contains('\u{1b}'), "--color always colours");
    assert!(!stdout(&colored).contains("node-1"), "--node limits the output");

    let json = run(&["diff", VXLAN, HOST_GW, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["changed"], true);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(3));
}
