//! Node parity with flanneld's traffic rules: pods reach a host outside the
//! cluster (masquerade), forwarded pod traffic passes a default-drop FORWARD
//! policy (forward rules), pod-to-pod traffic keeps the pod's source address,
//! and a user's own rules in the same tables survive. For both rule back ends.
//! Needs root; skips loudly otherwise.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::Cluster;
use common::netns::{Netns, must, root_or_skip};
use common::{code, run, stderr, stdout};

/// An underlay host outside the cluster, with no route to the pod network.
const EXTERNAL: &str = "192.168.31.200";

/// The vxlan example with `trafficRules` set, in a scratch dir with its lock.
fn topology(dir: &std::path::Path, rules: &str) -> String {
    let y = std::fs::read_to_string(common::root().join("examples/vxlan-3node.yaml"))
        .expect("example")
        .replace("ipMasq: true\n", &format!("ipMasq: true\ntrafficRules: {rules}\n"));
    let t = dir.join(format!("{rules}.yaml"));
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join("examples/vxlan-3node.lock"), dir.join(format!("{rules}.lock"))).expect("lock");
    t.to_string_lossy().into_owned()
}

fn ping(from: &Netns, to: &str) -> bool {
    (0..3).any(|_| {
        from.exec("ping", &["-c", "1", "-W", "2", to])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The source address of the first ICMP echo request `to` sees, while `from` pings it.
fn source_seen_by(to: &common::cluster::Pod, from: &common::cluster::Pod) -> String {
    let cap = to
        .ns
        .exec("timeout", &["10", "tcpdump", "-i", "eth0", "-n", "-l", "-c", "1", "icmp[icmptype] == icmp-echo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = from.ns.exec("ping", &["-c", "2", "-W", "2", &to.ip]).stdout(Stdio::null()).status();
    let out = cap.wait_with_output().expect("tcpdump");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    // "12:00:00.000000 IP 10.244.2.2 > 10.244.1.2: ICMP echo request, ..."
    line.split_whitespace().nth(2).unwrap_or_default().to_string()
}

fn egress_works(rules: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = topology(dir.path(), rules);
    let mut c = Cluster::new(&topo);
    let ext = c.external_host(&format!("{EXTERNAL}/24"));
    for n in &c.nodes {
        // A user's own rules in the tables flannel-gen shares.
        must(&mut n.ns.exec(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-d",
                "198.51.100.0/24",
                "-m",
                "comment",
                "--comment",
                "user",
                "-j",
                "RETURN",
            ],
        ));
        if rules == "iptables" {
            // Docker's, or a firewall's, default: forwarded traffic is dropped.
            must(&mut n.ns.exec("iptables", &["-P", "FORWARD", "DROP"]));
        }
    }
    c.apply_all(&topo);
    c.attach_pods(1);
    let failed = c.ping_across();
    assert!(failed.is_empty(), "{rules}: pods across nodes:\n{}", failed.join("\n"));
    for p in &c.pods {
        assert!(ping(&p.ns, EXTERNAL), "{rules}: pod {} on {} cannot reach the external host", p.ip, p.node);
    }
    let (a, b) = (&c.pods[0], &c.pods[1]);
    assert_eq!(source_seen_by(b, a), a.ip, "{rules}: pod to pod keeps the pod's address");
    for n in &c.nodes {
        assert_eq!(c.apply(&topo, &n.name, &[]), "0 changes\n", "{rules}: re-apply on {}", n.name);
        let nat = String::from_utf8_lossy(&must(&mut n.ns.exec("iptables-save", &["-t", "nat"])).stdout).into_owned();
        assert!(nat.contains("--comment user -j RETURN"), "{rules}: the user's rule survived:\n{nat}");
    }
    drop(c.hosts.remove(ext));
}

#[test]
fn egress_with_iptables_rules_under_forward_drop() {
    if root_or_skip("egress_with_iptables_rules_under_forward_drop") {
        egress_works("iptables");
    }
}

#[test]
fn egress_with_nftables_rules() {
    if root_or_skip("egress_with_nftables_rules") {
        egress_works("nftables");
    }
}

/// Without flannel's rules the same pod cannot reach the external host: the
/// test above shows the rules at work, not a network that needs none.
#[test]
fn without_rules_a_pod_cannot_reach_outside() {
    if !root_or_skip("without_rules_a_pod_cannot_reach_outside") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = topology(dir.path(), "none");
    let mut c = Cluster::new(&topo);
    c.external_host(&format!("{EXTERNAL}/24"));
    c.apply_all(&topo);
    c.attach_pods(1);
    assert!(c.ping_across().is_empty());
    assert!(!ping(&c.pods[0].ns, EXTERNAL), "no masquerade, so no way back from the external host");
}

/// Switching the rule back end removes the other's chains or table.
#[test]
fn switching_rule_back_ends_leaves_only_the_new_ones() {
    if !root_or_skip("switching_rule_back_ends_leaves_only_the_new_ones") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (ipt, nft) = (topology(dir.path(), "iptables"), topology(dir.path(), "nftables"));
    let ns = Netns::node("rules", Some("192.168.31.61/24"));
    let apply = |t: &str| {
        let o = run(&["apply", t, "--node", "node-1", "--netns", &ns.name]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    apply(&ipt);
    let out = apply(&nft);
    assert!(out.contains("+ rules nftables ip flannel-ipv4 (8 rules)"), "{out}");
    assert!(
        out.contains("- rules iptables nat FLANNEL-POSTRTG") && out.contains("- rules iptables filter FLANNEL-FWD"),
        "{out}"
    );
    let save = String::from_utf8_lossy(&must(&mut ns.exec("iptables-save", &[])).stdout).into_owned();
    assert!(!save.contains("FLANNEL"), "no iptables chain left:\n{save}");
    let listed = String::from_utf8_lossy(&must(&mut ns.exec("nft", &["list", "table", "ip", "flannel-ipv4"])).stdout)
        .into_owned();
    assert!(listed.contains("masquerade fully-random"), "{listed}");
    let o = run(&["apply", &ipt, "--node", "node-1", "--netns", &ns.name]);
    assert!(stdout(&o).contains("- rules nftables ip flannel-ipv4"), "{}", stdout(&o));
    let gone = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft", "list", "table", "ip", "flannel-ipv4"])
        .output()
        .expect("nft");
    assert!(!gone.status.success(), "the nftables table is gone");
}

/// Under a FORWARD DROP policy, pods on different nodes cannot talk without
/// flannel's forward rules: what `egress_with_iptables_rules_under_forward_drop`
/// shows working is the rules' doing.
#[test]
fn forward_drop_blocks_pods_without_forward_rules() {
    if !root_or_skip("forward_drop_blocks_pods_without_forward_rules") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let t = topology(dir.path(), "iptables");
    let y = std::fs::read_to_string(&t)
        .expect("read")
        .replace("trafficRules: iptables\n", "trafficRules: iptables\nforwardRules: false\n");
    std::fs::write(&t, y).expect("write");
    let mut c = Cluster::new(&t);
    for n in &c.nodes {
        must(&mut n.ns.exec("iptables", &["-P", "FORWARD", "DROP"]));
    }
    c.apply_all(&t);
    c.attach_pods(1);
    for (a, b) in [(0, 1), (1, 2)] {
        let (a, b) = (&c.pods[a], &c.pods[b]);
        let ok =
            a.ns.exec("ping", &["-c", "2", "-W", "1", &b.ip]).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        assert!(!ok, "{} -> {} passed a FORWARD DROP policy without forward rules", a.ip, b.ip);
    }
}

/// The dual-stack example with `trafficRules` set, with its lock.
fn dual_stack(dir: &std::path::Path, rules: &str) -> String {
    let y = std::fs::read_to_string(common::root().join("examples/vxlan-dualstack.yaml"))
        .expect("example")
        .replace("ipMasq: true\n", &format!("ipMasq: true\ntrafficRules: {rules}\n"));
    let t = dir.join(format!("ds-{rules}.yaml"));
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join("examples/vxlan-dualstack.lock"), dir.join(format!("ds-{rules}.lock")))
        .expect("lock");
    t.to_string_lossy().into_owned()
}

/// The source address the external host sees on an ICMPv6 echo request from `pod`.
fn v6_source_seen_by(ext: &Netns, pod: &common::cluster::Pod, to: &str) -> String {
    let cap = ext
        .exec("timeout", &["10", "tcpdump", "-i", "eth0", "-n", "-l", "-c", "1", "icmp6 and ip6[40] == 128"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = pod.ns.exec("ping", &["-c", "2", "-W", "2", to]).stdout(Stdio::null()).status();
    let out = cap.wait_with_output().expect("tcpdump");
    // "12:00:00.000000 IP6 fd00:31::61 > fd00:31::200: ICMP6, echo request, ..."
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(2).unwrap_or_default().to_string()
}

/// The IPv6 rules mirror the IPv4 ones (ip6tables / nft `ip6` family): pods
/// reach an IPv6 host outside the cluster as their node's address, and pod
/// to pod over IPv6 passes a default-drop FORWARD policy.
fn egress6_works(rules: &str) {
    const EXTERNAL6: &str = "fd00:31::200";
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dual_stack(dir.path(), rules);
    let mut c = Cluster::new(&topo);
    let ext = c.external_host_with(&[&format!("{EXTERNAL}/24"), &format!("{EXTERNAL6}/64")]);
    if rules == "iptables" {
        for n in &c.nodes {
            must(&mut n.ns.exec("ip6tables", &["-P", "FORWARD", "DROP"]));
        }
    }
    c.apply_all(&topo);
    c.attach_pods(1);
    assert!(c.ping_across().is_empty(), "{rules}: pods across nodes over IPv4 and IPv6");
    for p in &c.pods {
        assert!(ping(&p.ns, EXTERNAL6), "{rules}: pod on {} cannot reach {EXTERNAL6}", p.node);
    }
    let pod = &c.pods[0];
    let node6 = c.node(&pod.node).ip6.clone().expect("node IPv6");
    let seen = v6_source_seen_by(&c.hosts[ext], pod, EXTERNAL6);
    assert_eq!(seen, node6.split('/').next().unwrap_or_default(), "{rules}: masqueraded to the node's IPv6");
    for n in &c.nodes {
        assert_eq!(c.apply(&topo, &n.name, &[]), "0 changes\n", "{rules}: re-apply on {}", n.name);
    }
}

#[test]
fn ipv6_egress_with_ip6tables_rules_under_forward_drop() {
    if root_or_skip("ipv6_egress_with_ip6tables_rules_under_forward_drop") {
        egress6_works("iptables");
    }
}

#[test]
fn ipv6_egress_with_nftables_rules() {
    if root_or_skip("ipv6_egress_with_nftables_rules") {
        egress6_works("nftables");
    }
}

/// Without rules, the IPv6 egress above fails: the rules do it.
#[test]
fn without_rules_a_pod_cannot_reach_outside_over_ipv6() {
    if !root_or_skip("without_rules_a_pod_cannot_reach_outside_over_ipv6") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dual_stack(dir.path(), "none");
    let mut c = Cluster::new(&topo);
    c.external_host_with(&[&format!("{EXTERNAL}/24"), "fd00:31::200/64"]);
    c.apply_all(&topo);
    c.attach_pods(1);
    assert!(!ping(&c.pods[0].ns, "fd00:31::200"), "no masquerade, so no way back from the external host");
}
