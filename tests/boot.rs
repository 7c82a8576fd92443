//! Nodes as they really run: a Debian 12 root filesystem (debootstrap), the
//! package `dist/build-deb` builds installed with dpkg, the rendered overlay
//! copied in, and systemd booting as PID 1 in each node's network namespace.
//! No etcd anywhere. Checked: flannel-gen.service brings the overlay up and
//! pods on different nodes ping each other, after the first boot and after a
//! reboot into a fresh namespace; Docker starts only after flannel-gen.service
//! and takes its options from the overlay; flannel-gen-watch.service repairs
//! a deleted route within a second; the networkd route (the rendered
//! .netdev/.network files under systemd-networkd, flannel-gen.service off)
//! gives the kernel state apply gives; purging the package leaves none of its
//! files. Needs root, debootstrap and cargo-deb; skips loudly without root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::boot::{BootNode, base_rootfs, package};
use common::cluster::Cluster;
use common::netns::{Netns, flannel_state, plan_devices, root_or_skip};
use common::{code, run, stderr, stdout};

const TOPO: &str = "examples/vxlan-3node.yaml";
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const REPAIR_WITHIN: Duration = Duration::from_secs(1);

fn plan_of(overlay: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(overlay.join("etc/flannel-gen/plan.json")).expect("plan.json"))
        .expect("json")
}

/// A node root with the package and the node's overlay, not booted yet.
fn prepared(c: &Cluster, name: &str, base: &Path, deb: &Path) -> BootNode {
    let node = BootNode::new(name, base);
    node.install(deb);
    node.copy_overlay(&c.overlay(name));
    node
}

/// flannel-gen.service ran to success in `node`.
fn assert_applied(node: &BootNode) {
    let (state, result) =
        (node.unit_property("flannel-gen.service", "ActiveState"), node.unit_property("flannel-gen.service", "Result"));
    assert_eq!(
        (state.as_str(), result.as_str()),
        ("active", "success"),
        "{}: flannel-gen.service\n{}",
        node.name,
        node.journal("flannel-gen.service")
    );
}

/// One pod per node (`tag` names them; on the `docker` node a container,
/// since docker0 and cni0 cannot both hold the node's subnet), then every
/// pod pings every other node's pod; returns the failures.
fn pods_ping_across(nodes: &[BootNode], tag: &str, docker: Option<&str>) -> Vec<String> {
    let container = format!("container:{tag}");
    let pods: Vec<(String, &str)> = nodes
        .iter()
        .map(|n| match docker == Some(n.name.as_str()) {
            true => (n.add_container(tag), container.as_str()),
            false => (n.add_pod(tag), tag),
        })
        .collect();
    let mut failed = Vec::new();
    for (i, a) in nodes.iter().enumerate() {
        for (j, (to, _)) in pods.iter().enumerate().filter(|(j, _)| *j != i) {
            if !a.pod_pings(pods[i].1, to) {
                failed.push(format!("{} ({}) -> {to} ({})", pods[i].0, a.name, nodes[j].name));
            }
        }
    }
    failed
}

/// `apply --dry-run` from the host against a booted node's namespace.
fn dry_run(c: &Cluster, name: &str) -> (i32, String) {
    let plan = c.overlay(name).join("etc/flannel-gen/plan.json");
    let ns = &c.node(name).ns.name;
    let o = run(&["apply", "--plan", plan.to_str().expect("utf8"), "--netns", ns, "--dry-run"]);
    (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
}

fn monotonic_us(node: &BootNode, unit: &str, property: &str) -> u64 {
    let v = node.unit_property(unit, property);
    v.parse().unwrap_or_else(|_| panic!("{}: {unit} {property} = {v:?}", node.name))
}

#[test]
fn nodes_boot_from_the_package_apply_their_plan_and_keep_it_across_a_reboot() {
    if !root_or_skip("nodes_boot_from_the_package_apply_their_plan_and_keep_it_across_a_reboot") {
        return;
    }
    let (base, deb) = (base_rootfs(), package());
    let mut c = Cluster::new(TOPO);
    let mut nodes: Vec<BootNode> = NODES.iter().map(|n| prepared(&c, n, &base, &deb)).collect();
    for n in &nodes {
        n.chroot(&["systemctl", "enable", "flannel-gen.service"]);
    }
    nodes[0].chroot(&["systemctl", "enable", "docker.service", "containerd.service"]);
    nodes[1].chroot(&["systemctl", "enable", "flannel-gen-watch.service"]);
    for n in nodes.iter_mut() {
        let ns = c.node(&n.name).ns.name.clone();
        n.boot(&ns);
    }
    for n in &nodes {
        assert_applied(n);
        assert_eq!(dry_run(&c, &n.name), (0, "0 changes\n".to_string()), "{}: booted state is not the plan", n.name);
        // tmpfiles.d wrote the runtime files flanneld would have, into the booted tmpfs /run.
        let subnet_env = std::fs::read_to_string(c.overlay(&n.name).join("run/flannel/subnet.env")).expect("read");
        assert_eq!(n.must_sh("cat /run/flannel/subnet.env"), subnet_env, "{}", n.name);
    }
    // Docker starts after flannel-gen.service has finished, with --bip from the overlay's daemon.json.
    let docker = &nodes[0];
    assert_eq!(docker.unit_property("docker.service", "ActiveState"), "active", "{}", docker.journal("docker.service"));
    let applied = monotonic_us(docker, "flannel-gen.service", "ExecMainExitTimestampMonotonic");
    let started = monotonic_us(docker, "docker.service", "ExecMainStartTimestampMonotonic");
    assert!(
        applied > 0 && applied <= started,
        "flannel-gen.service exited at {applied} µs, dockerd started at {started} µs"
    );
    let daemon: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.overlay("node-1").join("etc/docker/daemon.json")).expect("daemon.json"),
    )
    .expect("json");
    let bip = daemon["bip"].as_str().expect("bip");
    let docker0 = docker.must_sh("ip -4 -o addr show dev docker0");
    assert!(docker0.contains(&format!(" {bip} ")), "docker0 is not on --bip {bip}: {docker0}");
    let plan = plan_of(&c.overlay("node-1"));

    let failed = pods_ping_across(&nodes, "pod-a", Some("node-1"));
    assert!(failed.is_empty(), "pods do not reach each other after the first boot: {failed:?}");

    // flannel-gen-watch.service puts a deleted route back.
    let watcher = &nodes[1];
    assert_eq!(watcher.unit_property("flannel-gen-watch.service", "ActiveState"), "active");
    let peer_subnet = plan["ipv4"]["subnet"].as_str().expect("subnet");
    assert!(!watcher.must_sh(&format!("ip route show {peer_subnet}")).is_empty());
    watcher.must_sh(&format!("ip route del {peer_subnet}"));
    let deleted = Instant::now();
    while watcher.must_sh(&format!("ip route show {peer_subnet}")).is_empty() {
        assert!(
            deleted.elapsed() < REPAIR_WITHIN,
            "the route to {peer_subnet} is still gone after {REPAIR_WITHIN:?}\n{}",
            watcher.journal("flannel-gen-watch.service")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("boot: flannel-gen-watch.service repaired the route in {:?}", deleted.elapsed());

    // A reboot: the kernel state is gone with the old namespace; systemd
    // brings it back from the root filesystem alone.
    for n in nodes.iter_mut() {
        n.halt();
        c.replug(&n.name);
        let ns = c.node(&n.name).ns.name.clone();
        n.boot(&ns);
    }
    for n in &nodes {
        assert_applied(n);
        assert_eq!(dry_run(&c, &n.name), (0, "0 changes\n".to_string()), "{}: after the reboot", n.name);
    }
    let failed = pods_ping_across(&nodes, "pod-b", Some("node-1"));
    assert!(failed.is_empty(), "pods do not reach each other after a reboot: {failed:?}");

    purge_as_the_readme_says(&c, &nodes[1], &nodes[2]);
}

/// README "Uninstalling": units off, teardown, then purge leaves no device,
/// route, unit or file of the package; purge alone (the units left enabled)
/// stops nothing in the kernel and leaves no link to a unit that is gone.
fn purge_as_the_readme_says(c: &Cluster, torn: &BootNode, kept: &BootNode) {
    let files = torn.must_sh("dpkg-query -L flannel-gen");
    let files: Vec<&str> = files.lines().filter(|l| l.starts_with('/')).collect();
    assert!(files.contains(&"/usr/bin/flannel-gen"), "{files:?}");
    torn.must_sh("systemctl disable --now flannel-gen-watch.service flannel-gen.service");
    torn.must_sh("flannel-gen teardown --plan /etc/flannel-gen/plan.json");
    for n in [torn, kept] {
        n.must_sh("dpkg --purge flannel-gen");
        for f in &files {
            let left = n.sh(&format!("test -f {f} || test -L {f}")).status.success();
            assert!(!left, "{}: {f} is left after purge", n.name);
        }
        let units = n.must_sh("systemctl list-unit-files --no-legend --plain 'flannel-gen*' | awk '{print $1}'");
        // The overlay's own unit files are the operator's, not the package's.
        let overlay_units: Vec<String> = std::fs::read_dir(c.overlay(&n.name).join("etc/systemd/system"))
            .expect("overlay units")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        for u in units.lines() {
            assert!(overlay_units.iter().any(|o| o == u), "{}: unit {u} is left after purge", n.name);
        }
        let dangling = n.must_sh("find /etc/systemd/system -xtype l -name 'flannel-gen*'");
        assert!(dangling.is_empty(), "{}: links to removed units: {dangling}", n.name);
    }
    let devices = |n: &BootNode| n.must_sh("ip -o link show type vxlan");
    assert!(devices(torn).is_empty(), "teardown left {}", devices(torn));
    let subnet = plan_of(&c.overlay(&kept.name))["peers"][0]["subnet"].as_str().expect("peer").to_string();
    assert!(devices(kept).contains("flannel.1"), "purge alone removed the device");
    assert!(!kept.must_sh(&format!("ip route show {subnet}")).is_empty(), "purge alone removed routes");
    assert!(torn.must_sh(&format!("ip route show {subnet}")).is_empty(), "teardown left the route to {subnet}");
}

#[test]
fn networkd_files_under_a_booted_systemd_give_the_state_apply_gives() {
    if !root_or_skip("networkd_files_under_a_booted_systemd_give_the_state_apply_gives") {
        return;
    }
    let (base, deb) = (base_rootfs(), package());
    let c = Cluster::new(TOPO);
    let mut nodes = Vec::new();
    for name in NODES {
        let node = prepared(&c, name, &base, &deb);
        let n = c.node(name);
        // The node's own uplink configuration, which the overlay's drop-in extends.
        std::fs::write(
            node.root.join("etc/systemd/network/eth0.network"),
            format!("[Match]\nName=eth0\n\n[Network]\nAddress={}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n", n.ip),
        )
        .expect("eth0.network");
        // networkd configures eth0 from it, as at a real boot; one segment:
        // no default route, so both sides have the same routes.
        n.ns.ip(&["addr", "flush", "dev", "eth0"]);
        node.chroot(&["systemctl", "enable", "systemd-networkd.service", "flannel-gen-rules.service"]);
        // is-enabled exits 1 for "disabled": read its answer, not its status.
        let enabled = std::process::Command::new("chroot")
            .arg(&node.root)
            .args(["systemctl", "is-enabled", "flannel-gen.service"])
            .output()
            .expect("chroot");
        assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "disabled");
        nodes.push(node);
    }
    for (node, name) in nodes.iter_mut().zip(NODES) {
        node.boot(&c.node(name).ns.name);
    }
    for (node, name) in nodes.iter().zip(NODES) {
        let overlay = c.overlay(name);
        let plan = plan_of(&overlay);
        let devs = plan_devices(&plan);
        let devs: Vec<&str> = devs.iter().map(String::as_str).collect();
        let reference = Netns::node("ref", Some(&c.node(name).ip));
        let p = overlay.join("etc/flannel-gen/plan.json");
        let o = run(&["apply", "--plan", p.to_str().expect("utf8"), "--netns", &reference.name]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let want = flannel_state(&reference, &devs);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = flannel_state(&c.node(name).ns, &devs);
        while got != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            got = flannel_state(&c.node(name).ns, &devs);
        }
        assert_eq!(got, want, "{name}: networkd (left) and apply (right)\n{}", node.journal("systemd-networkd"));
        // flannel.1 appears after systemd-sysctl has run; on a real node
        // udev's 99-systemd.rules then runs this for the new device. Booted
        // nodes have no udev (/sys is read-only in a namespace): do its part.
        node.must_sh(
            "/lib/systemd/systemd-sysctl --prefix=/net/ipv4/conf/flannel.1 --prefix=/net/ipv4/neigh/flannel.1 \
             --prefix=/net/ipv6/conf/flannel.1 --prefix=/net/ipv6/neigh/flannel.1",
        );
        // Rules and sysctls came from flannel-gen-rules.service and
        // systemd-sysctl; apply would only adopt networkd's device.
        assert_eq!(node.unit_property("flannel-gen-rules.service", "Result"), "success");
        let cluster = plan["cluster"].as_str().unwrap_or_default();
        let adopt = format!(
            "~ link flannel.1 (adopted, alias \"flannel-gen:{cluster}\")\n1 change pending (dry run; nothing was changed)\n"
        );
        assert_eq!(dry_run(&c, name), (1, adopt), "{name}\n{}", node.journal("flannel-gen-rules.service"));
    }
    let failed = pods_ping_across(&nodes, "pod", None);
    assert!(failed.is_empty(), "pods over networkd's overlay: {failed:?}");
}
