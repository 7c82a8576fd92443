//! Zero-loss migrations, rolled out node by node in phases, while every pod
//! pings a pod on every other node at 100 packets per second: backend
//! switches (vxlan, host-gw, wireguard), and VNI changes (which rename the
//! device). After each rollout every node has exactly the planned devices
//! and the state a fresh apply gives. Needs root; skips loudly otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use common::cluster::Cluster;
use common::netns::{Netns, flannel_state, ip_json, root_or_skip};
use common::ping::{ping_totals, start_pingers};
use common::views::{KEY, on_wireguard};
use common::{code, run, stderr, stdout};

const VXLAN: &str = "examples/vxlan-3node.yaml";
const HOST_GW: &str = "examples/hostgw-3node.yaml";
/// Pings per pair: at 10 ms that is 12 s, longer than the rollouts take.
const COUNT: usize = 1200;
/// Pause between nodes, so switched and unswitched nodes coexist for a while.
const STEP: Duration = Duration::from_millis(150);

/// One rollout: the topology, the phases it needs, the devices it leaves.
struct Step<'a> {
    topology: &'a str,
    phases: &'a [&'a str],
    devices: &'a [&'a str],
}

fn roll_out(c: &Cluster, step: &Step) {
    for phase in step.phases {
        for n in &c.nodes {
            c.apply(step.topology, &n.name, &["--phase", phase]);
            sleep(STEP);
        }
    }
}

/// Every overlay device in a namespace: VXLAN, and the TUN devices of
/// wireguard-go (and udp).
fn overlay_devices(ns: &Netns) -> Vec<String> {
    let links = ip_json(ns, "ip", &["-d", "link", "show"]);
    let mut v: Vec<String> = links
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["linkinfo"]["info_kind"] == "vxlan" || l["linkinfo"]["info_kind"] == "tun")
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The node's flannel state without what the pods' bridge added (cni0 routes).
fn node_state(ns: &Netns, devices: &[&str]) -> String {
    flannel_state(ns, devices).lines().filter(|l| !l.contains("\"cni0\"")).collect::<Vec<_>>().join("\n")
}

/// The state a fresh apply of `topology` gives `node` in a new namespace
/// (with its own `/run/wireguard` holding the node's key, when the cluster
/// has node views; the namespace's wireguard-go dies with it).
fn fresh_state(c: &Cluster, step: &Step, node: &str) -> String {
    let ns = Netns::node("fresh", Some(&c.node(node).ip));
    let args = ["apply", step.topology, "--node", node, "--netns", &ns.name];
    // Lives until the state is read: wireguard-go exits when its socket goes.
    let view = c.views.as_ref().map(|views| {
        let view = tempfile::tempdir_in(views).expect("view");
        std::fs::copy(views.join(node).join(KEY), view.path().join(KEY)).expect("key");
        view
    });
    let o = match &view {
        Some(v) => common::views::on_node(v.path(), &args),
        None => run(&args),
    };
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // The cluster nodes also have a default route to the segment router.
    let underlay: ipnet::Ipv4Net = c.node(node).ip.parse().expect("cidr");
    let gw = underlay.trunc().hosts().next().expect("host").to_string();
    ns.ip(&["route", "add", "default", "via", &gw]);
    node_state(&ns, step.devices)
}

/// Starts a cluster on `start`, then rolls out each step while pods ping;
/// after each, every node has exactly the step's devices and a fresh
/// apply's state. No ping may be lost. `views`: each node's own
/// `/run/wireguard` (a directory per node, holding its key).
fn migrate_without_loss(start: &Step, steps: &[Step], views: Option<PathBuf>) {
    let mut c = Cluster::new(start.topology);
    c.views = views;
    c.apply_all(start.topology);
    c.attach_pods(1);
    assert!(c.ping_across().is_empty(), "cluster works before the migration");
    let pingers = start_pingers(&c, COUNT);
    sleep(Duration::from_millis(500));
    for step in steps {
        roll_out(&c, step);
        for n in &c.nodes {
            assert_eq!(overlay_devices(&n.ns), step.devices, "{}: devices after rolling out {}", n.name, step.topology);
            assert_eq!(
                node_state(&n.ns, step.devices),
                fresh_state(&c, step, &n.name),
                "{}: state after {}",
                n.name,
                step.topology
            );
        }
    }
    let mut pingers = pingers;
    for (pair, child) in &mut pingers {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "{pair}: ping ended before the migration did; raise COUNT"
        );
    }
    let (sent, lost, report) = ping_totals(pingers);
    eprintln!("migration pings: {sent} sent, {lost} lost\n{}", report.join("\n"));
    assert_eq!(sent, COUNT * c.pods.len() * (c.nodes.len() - 1));
    assert_eq!(lost, 0, "packets lost during the migration:\n{}", report.join("\n"));
}

/// The vxlan example with another VNI, in `dir`, with its lock.
fn with_vni(dir: &Path, vni: u32) -> String {
    let y = std::fs::read_to_string(common::root().join(VXLAN))
        .expect("example")
        .replace("  vni: 1\n", &format!("  vni: {vni}\n"));
    let t = dir.join(format!("vni{vni}.yaml"));
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join("examples/vxlan-3node.lock"), dir.join(format!("vni{vni}.lock"))).expect("lock");
    t.to_string_lossy().into_owned()
}

#[test]
fn vxlan_to_host_gw_and_back_loses_no_packets() {
    if !root_or_skip("vxlan_to_host_gw_and_back_loses_no_packets") {
        return;
    }
    let vxlan = Step { topology: VXLAN, phases: &["1", "2"], devices: &["flannel.1"] };
    let host_gw = Step { topology: HOST_GW, phases: &["1", "2"], devices: &[] };
    migrate_without_loss(
        &vxlan,
        &[host_gw, Step { topology: VXLAN, phases: &["1", "2"], devices: &["flannel.1"] }],
        None,
    );
}

/// vxlan → wireguard → vxlan in three phases each (the network route to
/// flannel-wg cannot take over in phase 1, so the old device stays through
/// phase 2), with wireguard-go (this kernel has no wireguard module).
#[test]
fn vxlan_to_wireguard_and_back_loses_no_packets() {
    if !root_or_skip("vxlan_to_wireguard_and_back_loses_no_packets") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (wg, views) = on_wireguard(dir.path(), VXLAN);
    let three = &["1", "2", "3"];
    let vxlan = Step { topology: VXLAN, phases: three, devices: &["flannel.1"] };
    let wireguard = Step { topology: &wg, phases: three, devices: &["flannel-wg"] };
    migrate_without_loss(
        &vxlan,
        &[wireguard, Step { topology: VXLAN, phases: three, devices: &["flannel.1"] }],
        Some(views),
    );
}

/// VNI 42 → 43 renames the device: three phases (the old receive path stays
/// until every node moved its routes); then 43 → host-gw in two. No stale
/// device is left at any point after a rollout.
#[test]
fn vni_change_and_switch_to_host_gw_lose_no_packets_and_leave_no_device() {
    if !root_or_skip("vni_change_and_switch_to_host_gw_lose_no_packets_and_leave_no_device") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (v42, v43) = (with_vni(dir.path(), 42), with_vni(dir.path(), 43));
    let start = Step { topology: &v42, phases: &["3"], devices: &["flannel.42"] };
    migrate_without_loss(
        &start,
        &[
            Step { topology: &v43, phases: &["1", "2", "3"], devices: &["flannel.43"] },
            Step { topology: HOST_GW, phases: &["1", "2"], devices: &[] },
        ],
        None,
    );
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
        // routeStyle nexthop (the default): the nexthop moves; the route keeps its id.
        "+nexthop replace id 1174405122 via 192.168.31.62 dev eth0 proto static",
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

#[test]
fn diff_onto_and_off_wireguard_names_the_three_phases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wg, _) = on_wireguard(dir.path(), VXLAN);
    let onto = stdout(&run(&["diff", VXLAN, &wg, "--color", "never", "--node", "node-1"]));
    for want in [
        "backend vxlan → wireguard",
        "+ device flannel-wg (WireGuard, port 51820, mtu 1420) and its 2 peers",
        "- device flannel.1 (VXLAN)",
        "onto wireguard: roll out in three phases",
        "flannel.1 stays for peers that have not switched",
        "+route replace 10.244.0.0/16 dev flannel-wg",
    ] {
        assert!(onto.contains(want), "missing `{want}` in:\n{onto}");
    }
    assert!(!onto.contains("two phases"), "{onto}");
    let off = stdout(&run(&["diff", &wg, HOST_GW, "--color", "never", "--stat"]));
    assert!(off.contains("off wireguard: roll out in three phases") && off.contains("removes flannel-wg"), "{off}");
    let md = stdout(&run(&["diff", VXLAN, &wg, "--format", "markdown"]));
    assert_eq!(md.lines().filter(|l| l.ends_with(" --phase 1")).count(), 3, "one phase-1 command per node:\n{md}");
    assert!(md.contains("3. remove what no peer uses any more"), "{md}");
}
