//! End to end: namespace nodes on a bridge underlay, `flannel-gen apply
//! --netns` on each, pods attached with the real CNI plugins, and every pod
//! pings a pod on every other node. Needs root; skips loudly otherwise.

mod common;

use common::cluster::Cluster;
use common::netns::{must, root_or_skip};
use common::{code, run, stdout};

/// Brings a cluster up from `example`, checks pods ping across nodes, that a
/// re-apply changes nothing, and that foreign state survives apply.
fn pods_ping_across(example: &str) {
    let topo = format!("examples/{example}.yaml");
    let mut c = Cluster::new(&topo);
    // Foreign state placed before apply: a route outside the cluster network
    // and a neighbour on the uplink.
    let first = c.nodes[0].name.clone();
    let n0 = c.node(&first);
    let v6 = n0.ip.contains(':');
    let (foreign_route, foreign_neigh) = if v6 { ("fd99::/64", "fe80::99") } else { ("10.99.0.0/24", "169.254.1.1") };
    let underlay: ipnet::IpNet = n0.ip.parse().expect("cidr");
    let router = underlay.trunc().hosts().next().expect("host").to_string();
    n0.ns.ip(&["route", "add", foreign_route, "via", &router, "dev", "eth0"]);
    n0.ns.ip(&["neigh", "add", foreign_neigh, "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud", "permanent"]);

    c.apply_all(&topo);
    c.attach_pods(2);
    let failed = c.ping_across();
    assert!(failed.is_empty(), "{example}: pings failed:\n{}", failed.join("\n"));
    assert_eq!(c.pods.len(), 2 * c.nodes.len());

    for n in &c.nodes {
        assert_eq!(c.apply(&topo, &n.name, &[]), "0 changes\n", "{example}: re-apply on {}", n.name);
    }
    let n0 = c.node(&first);
    let fam = if v6 { "-6" } else { "-4" };
    assert!(n0.ns.ip(&[fam, "route", "show", foreign_route]).contains(foreign_route), "foreign route kept");
    assert!(n0.ns.ip(&["neigh", "show", "dev", "eth0"]).contains(foreign_neigh), "foreign neighbour kept");
}

#[test]
fn vxlan_pods_ping_across_nodes() {
    if root_or_skip("vxlan_pods_ping_across_nodes") {
        pods_ping_across("vxlan-3node");
    }
}

#[test]
fn host_gw_pods_ping_across_nodes() {
    if root_or_skip("host_gw_pods_ping_across_nodes") {
        pods_ping_across("hostgw-3node");
    }
}

#[test]
fn direct_routing_pods_ping_across_two_segments() {
    if root_or_skip("direct_routing_pods_ping_across_two_segments") {
        pods_ping_across("vxlan-directrouting");
    }
}

#[test]
fn dry_run_detects_a_deleted_fdb_entry_and_apply_restores_exactly_it() {
    if !root_or_skip("dry_run_detects_a_deleted_fdb_entry_and_apply_restores_exactly_it") {
        return;
    }
    let topo = "examples/vxlan-3node.yaml";
    let c = Cluster::new(topo);
    c.apply_all(topo);
    let n = c.node("node-1");
    let dry = |expect: i32| {
        let o = run(&["apply", topo, "--node", "node-1", "--netns", &n.ns.name, "--dry-run"]);
        assert_eq!(code(&o), expect, "{}", stdout(&o));
        stdout(&o)
    };
    dry(0);
    let before = n.ns.ip(&["-d", "link", "show", "flannel.1"]);
    let fdb = must(std::process::Command::new("bridge").args(["-n", &n.ns.name, "fdb", "show", "dev", "flannel.1"]));
    let entry = String::from_utf8_lossy(&fdb.stdout).lines().next().expect("an fdb entry").to_string();
    let mac = entry.split_whitespace().next().expect("mac").to_string();
    let dst = entry.split_whitespace().nth(2).expect("dst").to_string();
    must(std::process::Command::new("bridge").args([
        "-n",
        &n.ns.name,
        "fdb",
        "del",
        &mac,
        "dev",
        "flannel.1",
        "dst",
        &dst,
        "self",
    ]));
    let pending = dry(1);
    assert_eq!(
        pending,
        format!(
            "+ fdb {mac} dst {dst} dev flannel.1 self permanent\n1 change pending (dry run; nothing was changed)\n"
        )
    );
    assert_eq!(c.apply(topo, "node-1", &[]), format!("+ fdb {mac} dst {dst} dev flannel.1 self permanent\n1 change\n"));
    dry(0);
    assert_eq!(n.ns.ip(&["-d", "link", "show", "flannel.1"]), before, "the device was not touched");
}

#[test]
fn dual_stack_vxlan_pods_ping_across_over_ipv4_and_ipv6() {
    if root_or_skip("dual_stack_vxlan_pods_ping_across_over_ipv4_and_ipv6") {
        pods_ping_across("vxlan-dualstack");
    }
}

#[test]
fn dual_stack_host_gw_pods_ping_across_over_ipv4_and_ipv6() {
    if root_or_skip("dual_stack_host_gw_pods_ping_across_over_ipv4_and_ipv6") {
        pods_ping_across("hostgw-dualstack");
    }
}

#[test]
fn ipv6_only_vxlan_pods_ping_across() {
    if root_or_skip("ipv6_only_vxlan_pods_ping_across") {
        pods_ping_across("vxlan-ipv6only");
    }
}
