//! The wireguard backend on namespace nodes, with the real userspace
//! implementation (Debian's wireguard-go: this kernel has no wireguard
//! module, so the kernel's genetlink path is untested here). Each node's
//! `/var/run/wireguard` is its own directory (tests/common/views.rs).
//! Expected objects per flannel's pkg/backend/wireguard/device.go: device
//! `flannel-wg`, port 51820, MTU uplink − 80, AllowedIPs = the peer's subnet.
//! Needs root; skips loudly otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::cluster::Cluster;
use common::netns::root_or_skip;
use common::views::on_node;
use common::{code, stderr, stdout};

const TOPOLOGY: &str = "tests/fixtures/wireguard-3node.yaml";
const DUAL_STACK: &str = "tests/fixtures/wireguard-dualstack.yaml";

/// Kills every process left in the node namespaces (the userspace
/// implementation apply started), also when the test fails.
struct Reaper(Vec<String>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for ns in &self.0 {
            let pids = Command::new("ip").args(["netns", "pids", ns]).output().map(|o| o.stdout).unwrap_or_default();
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
}

struct Setup {
    topology: PathBuf,
    keys: Vec<(String, PathBuf)>,
    dir: tempfile::TempDir,
}

/// The topology in a scratch directory, a key made for each node, and the
/// public keys recorded in its lock.
fn keyed_topology(fixture: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let topology = dir.path().join("wg.yaml");
    std::fs::copy(common::root().join(fixture), &topology).expect("copy topology");
    let mut lock_args = vec!["lock".to_string(), topology.display().to_string()];
    let mut keys = Vec::new();
    for n in ["node-1", "node-2", "node-3"] {
        let key_file = dir.path().join(format!("{n}.key"));
        let o = common::run(&["wireguard", "keygen", "--key-file", &key_file.to_string_lossy()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        lock_args.push("--wireguard-key".into());
        lock_args.push(format!("{n}={}", stdout(&o).trim()));
        keys.push((n.to_string(), key_file));
    }
    let args: Vec<&str> = lock_args.iter().map(String::as_str).collect();
    let o = common::run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    Setup { topology, keys, dir }
}

fn apply(s: &Setup, c: &Cluster, node: &str, extra: &[&str]) -> Output {
    let key = s.keys.iter().find(|(n, _)| n == node).map(|(_, k)| k.to_string_lossy().into_owned()).expect("key");
    let ns = c.node(node).ns.name.clone();
    let topo = s.topology.to_string_lossy().into_owned();
    let mut args = vec!["apply", &topo, "--node", node, "--netns", &ns, "--locked", "--wireguard-key-file", &key];
    args.extend_from_slice(extra);
    on_node(&s.dir.path().join(format!("run-{node}")), &args)
}

/// ICMP and WireGuard packets a capture file holds.
fn count(pcap: &Path, filter: &str) -> usize {
    let o = Command::new("tcpdump").args(["-n", "-r"]).arg(pcap).arg(filter).stderr(Stdio::null()).output();
    String::from_utf8_lossy(&o.expect("tcpdump").stdout).lines().count()
}

/// Every node of `fixture` keyed and applied, a pod on each.
fn up(fixture: &str) -> (Setup, Cluster, Reaper) {
    let s = keyed_topology(fixture);
    let mut c = Cluster::new(&s.topology.to_string_lossy());
    let reaper = Reaper(c.nodes.iter().map(|n| n.ns.name.clone()).collect());
    for n in ["node-1", "node-2", "node-3"] {
        let o = apply(&s, &c, n, &[]);
        assert_eq!(code(&o), 0, "apply {n}: {}{}", stdout(&o), stderr(&o));
    }
    c.attach_pods(1);
    (s, c, reaper)
}

#[test]
fn three_wireguard_nodes_carry_pods_encrypted() {
    if !root_or_skip("three_wireguard_nodes_carry_pods_encrypted") {
        return;
    }
    let (s, c, _reaper) = up(TOPOLOGY);
    let topo = s.topology.to_string_lossy().into_owned();
    for n in &c.nodes {
        let link = n.ns.ip(&["-o", "link", "show", "flannel-wg"]);
        assert!(link.contains("mtu 1420"), "{}: MTU uplink - 80: {link}", n.name);
        // flanneld's network route is scope link (pkg/backend/wireguard/device.go).
        let route = n.ns.ip(&["-o", "route", "show", "dev", "flannel-wg"]);
        assert!(route.contains("proto static scope link"), "{}: the network route as flanneld's: {route}", n.name);
    }

    // Every pod pings every other node's pod while the underlay is captured.
    let pcap = s.dir.path().join("underlay.pcap");
    let failed = captured(&c, &pcap, || c.ping_across());
    assert_eq!(failed, Vec::<String>::new(), "pods ping 6/6 over wireguard");
    assert_eq!(count(&pcap, "icmp"), 0, "no clear-text ICMP on the underlay");
    assert!(count(&pcap, "udp port 51820") >= 12, "the pings crossed as WireGuard datagrams");

    for n in ["node-1", "node-2", "node-3"] {
        let o = apply(&s, &c, n, &["--dry-run"]);
        assert_eq!(code(&o), 0, "{n} converged: {}{}", stdout(&o), stderr(&o));
    }

    // No private key in the topology, the lock or anything rendered.
    let out = s.dir.path().join("out");
    let o = common::run(&["render", &topo, "--locked", "--out", &out.to_string_lossy()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let privates: Vec<String> =
        s.keys.iter().map(|(_, k)| std::fs::read_to_string(k).expect("key").trim().to_string()).collect();
    let mut files = vec![s.topology.clone(), s.topology.with_extension("lock")];
    walk(&out, &mut files);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for p in &privates {
            assert!(!text.contains(p.as_str()), "{} holds a private key", f.display());
        }
    }
    assert!(files.len() > 10, "the render wrote the overlays: {files:?}");
    let rendered: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect();
    assert!(rendered.contains("dev flannel-wg scope link proto static"), "route.batch has the link-scope route");
    assert!(rendered.contains("Scope=link"), "the networkd file has the link-scope route");

    // Teardown removes the device, and the implementation exits with it.
    for n in ["node-1", "node-2", "node-3"] {
        let ns = c.node(n).ns.name.clone();
        let o = on_node(&s.dir.path().join(format!("run-{n}")), &["teardown", &topo, "--node", n, "--netns", &ns]);
        assert_eq!(code(&o), 0, "teardown {n}: {}{}", stdout(&o), stderr(&o));
        assert!(c.node(n).ns.ip(&["-o", "link"]).lines().all(|l| !l.contains("flannel-wg")), "{n}: device gone");
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    for n in &c.nodes {
        let pids = Command::new("ip").args(["netns", "pids", &n.ns.name]).output().expect("pids");
        assert!(pids.stdout.is_empty(), "{}: wireguard-go exited with its device", n.name);
    }
}

#[test]
fn a_key_file_that_is_not_the_locked_key_is_refused_before_any_change() {
    let s = keyed_topology(TOPOLOGY);
    let topo = s.topology.to_string_lossy().into_owned();
    let other = s.keys[1].1.to_string_lossy().into_owned();
    // node-2's key for node-1: exit 2 at the key file, before the kernel is read.
    let o = common::run(&["apply", &topo, "--node", "node-1", "--dry-run", "--wireguard-key-file", &other]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&format!("{other}:1:1: error: holds the key of public key")), "{}", stderr(&o));
    let bad = s.dir.path().join("bad.key");
    for (text, why) in [("not base64!\n", "not base64"), ("AAAA\n", "3 bytes; a WireGuard key is 32")] {
        std::fs::write(&bad, text).expect("write");
        let o = common::run(&["apply", &topo, "--node", "node-1", "--wireguard-key-file", &bad.to_string_lossy()]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
        assert!(stderr(&o).starts_with(&format!("{}:1:1:", bad.display())), "{}", stderr(&o));
    }
    // A lock without node-3's key fails --locked, naming the node.
    let lock = s.topology.with_extension("lock");
    let text = std::fs::read_to_string(&lock).expect("lock");
    let without: String = text
        .lines()
        .scan(false, |in3, l| {
            if l.starts_with("  ") && !l.starts_with("    ") {
                *in3 = l == "  node-3:";
            }
            Some(if *in3 && l.contains("wireguardKey") { String::new() } else { format!("{l}\n") })
        })
        .collect();
    std::fs::write(&lock, without).expect("write lock");
    let o = common::run(&["render", &topo, "--locked", "--out", &s.dir.path().join("o").to_string_lossy()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("node `node-3` has no WireGuard public key"), "{}", stderr(&o));
}

/// `f`'s result, with the underlay bridge captured into `pcap` while it ran.
fn captured<T>(c: &Cluster, pcap: &Path, f: impl FnOnce() -> T) -> T {
    let mut capture = c
        .switch
        .exec("tcpdump", &["-n", "-U", "-i", "br0", "-w", &pcap.to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let result = f();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = Command::new("kill").arg(capture.id().to_string()).status();
    let _ = capture.wait();
    result
}

/// Dual stack, flanneld's mode separate: a device per family, the IPv6 one
/// (`flannel-wg-v6`, UDP 51821) reaching its peers over the IPv6 underlay.
#[test]
fn dual_stack_nodes_carry_both_families_each_over_its_own_underlay() {
    if !root_or_skip("dual_stack_nodes_carry_both_families_each_over_its_own_underlay") {
        return;
    }
    let (s, c, _reaper) = up(DUAL_STACK);
    for n in &c.nodes {
        // IPv6 routes have no scope; IPv4's is link, as flanneld's.
        let route = n.ns.ip(&["-6", "-o", "route", "show", "dev", "flannel-wg-v6"]);
        assert!(route.contains("fd00:10:244::/56 proto static"), "{}: {route}", n.name);
        let route = n.ns.ip(&["-o", "route", "show", "dev", "flannel-wg"]);
        assert!(route.contains("10.244.0.0/16 proto static scope link"), "{}: {route}", n.name);
    }
    assert!(c.pods.iter().all(|p| p.ip6.is_some()), "every pod has an IPv6 address");
    let pcap = s.dir.path().join("underlay.pcap");
    let failed = captured(&c, &pcap, || c.ping_across());
    assert_eq!(failed, Vec::<String>::new(), "pods ping 12/12 (IPv4 and IPv6) over wireguard");
    // Echo requests and replies only: neighbour discovery is ICMPv6 too.
    assert_eq!(count(&pcap, "icmp or (icmp6 and (ip6[40] == 128 or ip6[40] == 129))"), 0, "no clear-text echo");
    assert!(count(&pcap, "ip6 and udp port 51821") >= 12, "IPv6 pod traffic crossed flannel-wg-v6 over IPv6");
    assert!(count(&pcap, "ip and udp port 51820") >= 12, "IPv4 pod traffic crossed flannel-wg over IPv4");
    for n in ["node-1", "node-2", "node-3"] {
        let o = apply(&s, &c, n, &["--dry-run"]);
        assert_eq!(code(&o), 0, "{n} converged: {}{}", stdout(&o), stderr(&o));
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { walk(&p, out) } else { out.push(p) }
    }
}
