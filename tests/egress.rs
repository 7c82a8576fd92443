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
    if rules == "nftables" {
        // The boot unit's file, loaded as the unit loads it, is what apply
        // wants: its text lists back (`nft -j`) as apply's own table.
        for n in &c.nodes {
            must(&mut n.ns.exec("nft", &["delete", "table", "ip", "flannel-ipv4"]));
            let file = c.overlay(&n.name).join("etc/flannel-gen/flannel-gen.nft");
            must(&mut n.ns.exec("nft", &["-f", &file.to_string_lossy()]));
            assert_eq!(c.apply(&topo, &n.name, &[]), "0 changes\n", "the boot file's table on {}", n.name);
        }
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

/// A stand-in for an iptables older than 1.6.2 (none runs on Debian 12):
/// the real xtables-nft-multi behind a wrapper that reports v1.6.1 and, as
/// that version's iptables-restore does, refuses `--wait` and
/// `--random-fully` (flannel #1702). Bound over the real binary in a private
/// mount namespace, so every iptables name, at every path, is the old one.
fn old_iptables(dir: &std::path::Path) -> std::path::PathBuf {
    let real = dir.join("xtables-nft-multi");
    std::fs::copy("/usr/sbin/xtables-nft-multi", &real).expect("copy xtables");
    let wrapper = dir.join("old-xtables");
    let script = format!(
        r#"#!/bin/bash
name=$(basename "$0")
case "$name" in
*-restore)
  for a in "$@"; do case "$a" in --wait*|-w*) echo "$name v1.6.1: unrecognized option '$a'" >&2; exit 2;; esac; done
  if [ -n "$*" ] && [ -f "${{@: -1}}" ]; then input=$(cat "${{@: -1}}"); set -- "${{@:1:$#-1}}"; else input=$(cat); fi
  if grep -q -- --random-fully <<<"$input"; then echo "$name v1.6.1: unknown option \"--random-fully\"" >&2; exit 2; fi
  exec -a "$name" {real} "$@" <<<"$input";;
*)
  for a in "$@"; do [ "$a" = --version ] && {{ echo "$name v1.6.1"; exit 0; }}; done
  exec -a "$name" {real} "$@";;
esac
"#,
        real = real.display()
    );
    std::fs::write(&wrapper, script).expect("wrapper");
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    wrapper
}

/// `script` in a private mount namespace where `wrapper` is iptables.
fn with_old_iptables(wrapper: &std::path::Path, script: &str) -> std::process::Output {
    let mount = format!("mount --bind {} /usr/sbin/xtables-nft-multi && {script}", wrapper.display());
    Command::new("unshare").args(["-m", "--propagation", "private", "bash", "-c", &mount]).output().expect("unshare")
}

/// #28: with an iptables that lacks `--random-fully`, apply masquerades
/// without it (and says why), converges, and pods reach outside; the boot
/// unit's rules file loads too, by its fallback.
#[test]
fn an_iptables_without_random_fully_still_masquerades() {
    if !root_or_skip("an_iptables_without_random_fully_still_masquerades") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = topology(dir.path(), "iptables");
    let wrapper = old_iptables(dir.path());
    let mut c = Cluster::new(&topo);
    let ext = c.external_host(&format!("{EXTERNAL}/24"));
    let bin = common::bin().get_program().to_string_lossy().into_owned();
    let ns = c.node("node-1").ns.name.clone();
    let apply = format!("cd {} && {bin} apply {topo} --node node-1 --netns {ns}", common::root().display());
    let o = with_old_iptables(&wrapper, &apply);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("(plain masquerade: iptables v1.6.1 lacks --random-fully (added in 1.6.2; flannel #1702))"),
        "{}",
        stdout(&o)
    );
    let again = with_old_iptables(&wrapper, &apply);
    assert_eq!(stdout(&again), "0 changes\n", "{}", stderr(&again));
    let nat =
        |n: &Netns| String::from_utf8_lossy(&must(&mut n.exec("iptables-save", &["-t", "nat"])).stdout).into_owned();
    let first = nat(&c.node("node-1").ns);
    assert!(first.contains("-j MASQUERADE\n") && !first.contains("random-fully"), "{first}");
    c.attach_pods(1);
    let node = &c.node("node-1").ns;
    let pod = c.pods.iter().find(|p| p.node == "node-1").expect("pod");
    assert!(ping(&pod.ns, EXTERNAL), "egress through plain masquerade");

    // Boot: the unit's own lines, under the old iptables, from scratch.
    let o = run(&["teardown", &topo, "--node", "node-1", "--netns", &ns]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let overlay = c.overlay("node-1");
    let unit = std::fs::read_to_string(overlay.join("etc/systemd/system/flannel-gen-rules.service")).expect("unit");
    let etc = overlay.join("etc/flannel-gen").display().to_string();
    let file = format!("{etc}/iptables.rules");
    let plain = with_old_iptables(&wrapper, &format!("ip netns exec {ns} /usr/sbin/iptables-restore --noflush {file}"));
    assert!(!plain.status.success(), "the stand-in refuses the file as iptables 1.6.1 does");
    for line in unit.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
        let line = line.replace("/etc/flannel-gen", &etc);
        let o =
            with_old_iptables(&wrapper, &format!("ip netns exec {ns} sh -c {}", shell_quote(&format!("exec {line}"))));
        assert!(o.status.success(), "{line}: {}", stderr(&o));
    }
    assert!(nat(node).contains("-j MASQUERADE\n") && nat(node).contains("FLANNEL-POSTRTG"), "{}", nat(node));
    assert!(ping(&pod.ns, EXTERNAL), "egress after the boot unit");
    drop(c.hosts.remove(ext));
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// #28: the rendered nftables file passes `nft -c` (the kernel's own check,
/// nothing committed) for a single- and a dual-stack node, and holds a
/// table only for the families the node runs (flanneld's Init makes both
/// tables always; an empty `flannel-ipv6` on an IPv4-only node filters
/// nothing and would be nobody's to remove).
#[test]
fn rendered_nft_rules_pass_nft_check_for_the_nodes_families_only() {
    if !root_or_skip("rendered_nft_rules_pass_nft_check_for_the_nodes_families_only") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let v4 = topology(dir.path(), "nftables");
    let dual = dual_stack(dir.path(), "nftables");
    for (topo, families) in [(v4, vec!["ip flannel-ipv4"]), (dual, vec!["ip flannel-ipv4", "ip6 flannel-ipv6"])] {
        let out = dir.path().join("out");
        let o = run(&["render", &topo, "--out", out.to_str().expect("utf8"), "--node", "node-1"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let file = out.join("node-1/etc/flannel-gen/flannel-gen.nft");
        let ns = Netns::new("nftc");
        let check = ns.exec("nft", &["-c", "-f", file.to_str().expect("utf8")]).output().expect("nft");
        assert!(check.status.success(), "{topo}: {}", String::from_utf8_lossy(&check.stderr));
        let text = std::fs::read_to_string(&file).expect("nft file");
        let tables: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("table ")).filter_map(|l| l.strip_suffix(" {")).collect();
        assert_eq!(tables, families, "{topo}:\n{text}");
        assert!(text.contains("meta mark & 0x00004000 == 0x00004000 return"), "kube-proxy's bit: {text}");
        std::fs::remove_dir_all(&out).expect("clean");
    }
}
