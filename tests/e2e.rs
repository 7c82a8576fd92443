//! End to end: namespace nodes on a bridge underlay, `flannel-gen apply
//! --netns` on each, pods attached with the real CNI plugins, and every pod
//! pings a pod on every other node. Needs root; skips loudly otherwise.

mod common;

use common::cluster::Cluster;
use common::netns::{must, root_or_skip};
use common::{code, run, stderr, stdout};

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

/// #28, flanneld's --ip-blackhole-route (`ipBlackholeRoute`): before any
/// pod exists, an address of the node's subnet ends at the blackhole instead
/// of following the default route out; once the bridge exists its route wins
/// (flannel-gen's blackhole sits at metric 4096, behind it), pods ping
/// across, and teardown takes the blackholes away.
#[test]
fn a_blackhole_catches_only_what_no_pod_holds() {
    if !root_or_skip("a_blackhole_catches_only_what_no_pod_holds") {
        return;
    }
    let topo = "examples/hostgw-dualstack.yaml";
    let mut c = Cluster::new(topo);
    c.apply_all(topo);
    let n1 = &c.node("node-1").ns;
    for (fam, addr) in [("-4", "10.244.1.5"), ("-6", "fd00:10:244:1::5")] {
        let shown = n1.ip(&[fam, "route", "show", "type", "blackhole"]);
        assert!(shown.contains("metric 4096"), "node-1 {fam}: {shown}");
        let got = n1.exec("ip", &[fam, "route", "get", addr]).output().expect("ip");
        assert!(!got.status.success(), "{addr} before any pod: a blackhole, not {}", stdout(&got));
    }
    assert_eq!(c.apply(topo, "node-1", &["--dry-run"]), "0 changes\n");
    c.attach_pods(1);
    let failed = c.ping_across();
    assert!(failed.is_empty(), "pings failed beside the blackholes:\n{}", failed.join("\n"));
    let pod = c.pods.iter().find(|p| p.node == "node-1").expect("pod on node-1");
    let n1 = &c.node("node-1").ns;
    assert!(n1.ip(&["route", "get", &pod.ip]).contains("dev cni0"), "the bridge's route wins");
    let o = run(&["teardown", topo, "--node", "node-1", "--netns", &n1.name]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("- route blackhole 10.244.1.0/24 metric 4096"), "{}", stdout(&o));
    for fam in ["-4", "-6"] {
        assert_eq!(n1.ip(&[fam, "route", "show", "type", "blackhole"]), "", "teardown removes the {fam} blackhole");
    }
}

#[test]
fn ipv6_only_vxlan_pods_ping_across() {
    if root_or_skip("ipv6_only_vxlan_pods_ping_across") {
        pods_ping_across("vxlan-ipv6only");
    }
}

/// #28: flanneld decides directRouting per peer by a route lookup with no
/// gateway on any interface (pkg/ip/iface.go `DirectRouting`), so a peer on
/// a second connected network is direct too. node-1 has eth1 on node-3's
/// segment (`connected`): its route to node-3's pods leaves by eth1 without
/// VXLAN, node-3 answers over VXLAN through the router; pods ping across.
#[test]
fn direct_routing_reaches_a_peer_over_a_second_interface() {
    if !root_or_skip("direct_routing_reaches_a_peer_over_a_second_interface") {
        return;
    }
    let topo = "tests/fixtures/connected.yaml".to_string();
    let mut c = Cluster::new(&topo);
    let n1 = c.node("node-1").ns.name.clone();
    // Without eth1 apply refuses before it writes anything.
    let o = run(&["apply", &topo, "--node", "node-1", "--netns", &n1]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("connected interface eth1 of node node-1 does not exist here"), "{}", stderr(&o));
    assert!(!c.node("node-1").ns.ip(&["link", "show"]).contains("flannel.1"), "nothing was made");

    let seg = c.segments.get("192.168.32.0/24").expect("node-3's segment").clone();
    c.switch.ip(&["link", "add", "c1", "type", "veth", "peer", "name", "eth1", "netns", &n1]);
    c.switch.ip(&["link", "set", "c1", "master", &seg, "up"]);
    c.node("node-1").ns.ip(&["addr", "add", "192.168.32.61/24", "dev", "eth1"]);
    c.node("node-1").ns.ip(&["link", "set", "eth1", "up"]);
    c.apply_all(&topo);
    c.attach_pods(1);
    let failed = c.ping_across();
    assert!(failed.is_empty(), "pings failed:\n{}", failed.join("\n"));
    let pod3 = c.pods.iter().find(|p| p.node == "node-3").expect("pod").ip.clone();
    let route = c.node("node-1").ns.ip(&["route", "get", &pod3]);
    assert!(route.contains("via 192.168.32.63 dev eth1"), "node-1 reaches node-3 directly over eth1: {route}");
    let route = c.node("node-2").ns.ip(&["route", "get", &pod3]);
    assert!(route.contains("dev flannel.1"), "node-2 has no interface there: VXLAN: {route}");
    assert_eq!(c.apply(&topo, "node-1", &["--dry-run"]), "0 changes\n");
}

/// A vxlan cluster with node-3 on a private segment behind a NAT router:
/// the switch SNATs 10.10.0.0/24 to 192.168.31.100, DNATs the VXLAN port
/// back, and forwards nothing else into that segment.
fn nat_cluster(dir: &std::path::Path, direct_routing: bool, public: bool) -> Cluster {
    let topo = dir.join(format!("nat-{direct_routing}-{public}.yaml"));
    let public_ip = if public { "    publicIP: 192.168.31.100\n" } else { "" };
    std::fs::write(
        &topo,
        format!(
            "version: 1\ncluster: nat\nnetwork: 10.244.0.0/16\nbackend:\n  type: vxlan\n  directRouting: {direct_routing}\n\
             defaults:\n  interface: eth0\nnodes:\n  - name: node-1\n    ip: 192.168.31.61/24\n  - name: node-2\n    ip: 192.168.31.62/24\n\
             \x20 - name: node-3\n    ip: 10.10.0.2/24\n{public_ip}"
        ),
    )
    .expect("write");
    let topo = topo.to_str().expect("utf8").to_string();
    assert_eq!(code(&run(&["lock", &topo])), 0);
    let mut c = Cluster::new(&topo);
    let public = c.segments.get("192.168.31.0/24").expect("public segment").clone();
    c.switch.ip(&["addr", "add", "192.168.31.100/32", "dev", &public]);
    for rule in [
        "-t nat -A PREROUTING -d 192.168.31.100 -p udp --dport 8472 -j DNAT --to-destination 10.10.0.2",
        "-t nat -A POSTROUTING -s 10.10.0.0/24 -d 192.168.31.0/24 -j SNAT --to-source 192.168.31.100",
        "-A FORWARD -d 10.10.0.0/24 -m conntrack --ctstate DNAT,ESTABLISHED,RELATED -j ACCEPT",
        "-A FORWARD -d 10.10.0.0/24 -j DROP",
    ] {
        must(&mut c.switch.exec("iptables", &rule.split(' ').collect::<Vec<_>>()));
    }
    c.apply_all(&topo);
    c.attach_pods(1);
    c
}

/// #28: nodes behind NAT (flannel #712, #1813). Peers send to the public
/// address (FDB), the node's device keeps its local one; pods ping across,
/// with and without DirectRouting between the other two.
#[test]
fn a_node_behind_nat_is_reached_at_its_public_address() {
    if !root_or_skip("a_node_behind_nat_is_reached_at_its_public_address") {
        return;
    }
    for direct_routing in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = nat_cluster(dir.path(), direct_routing, true);
        let fdb = c.node("node-1").ns.exec("bridge", &["fdb", "show", "dev", "flannel.1"]).output().expect("bridge");
        let fdb = String::from_utf8_lossy(&fdb.stdout).into_owned();
        assert!(fdb.contains("dst 192.168.31.100"), "node-1 sends node-3's traffic to its public address:\n{fdb}");
        let link = c.node("node-3").ns.ip(&["-d", "link", "show", "flannel.1"]);
        assert!(link.contains("local 10.10.0.2"), "node-3's device keeps its local address:\n{link}");
        let failed = c.ping_across();
        assert!(failed.is_empty(), "directRouting {direct_routing}:\n{}", failed.join("\n"));
    }
    // The control: without `publicIP` the peers send to 10.10.0.2, which the NAT does not let in.
    let dir = tempfile::tempdir().expect("tempdir");
    let c = nat_cluster(dir.path(), false, false);
    let from = c.pods.iter().find(|p| p.node == "node-1").expect("pod");
    let to = c.pods.iter().find(|p| p.node == "node-3").expect("pod");
    let reached = from.ns.exec("ping", &["-c", "2", "-W", "1", &to.ip]).output().expect("ping").status.success();
    assert!(!reached, "node-3 is behind the NAT: only its public address leads there");
}
