//! #28: an uplink configured by router advertisements (SLAAC) keeps taking
//! them after apply turns IPv6 forwarding on. A router namespace runs the
//! real radvd; the node's address and default route come only from it.
//! Needs root; skips loudly otherwise.

mod common;

use std::time::{Duration, Instant};

use common::netns::{Netns, must, root_or_skip};
use common::{code, run, stderr, stdout};

/// EUI-64 of the node's MAC 02:00:00:00:00:61 in radvd's prefix.
const SLAAC_ADDR: &str = "fd00:5a::ff:fe00:61";

struct RaLan {
    node: Netns,
    radvd: std::process::Child,
    _router: Netns,
}

impl Drop for RaLan {
    fn drop(&mut self) {
        let _ = self.radvd.kill();
        let _ = self.radvd.wait();
    }
}

/// A router advertising fd00:5a::/64 every 3-4 s to a node whose eth0 has
/// no address of its own, forwarding off and accept_ra as given.
fn ra_lan(dir: &std::path::Path, accept_ra: &str) -> RaLan {
    let router = Netns::new("ra");
    let node = Netns::new("slaac");
    node.ip(&[
        "link",
        "add",
        "eth0",
        "address",
        "02:00:00:00:00:61",
        "type",
        "veth",
        "peer",
        "name",
        "r0",
        "netns",
        &router.name,
    ]);
    sysctl(&node, "net/ipv6/conf/all/forwarding", "0");
    sysctl(&node, "net/ipv6/conf/eth0/accept_ra", accept_ra);
    sysctl(&node, "net/ipv6/conf/eth0/addr_gen_mode", "0");
    node.ip(&["link", "set", "eth0", "up"]);
    sysctl(&router, "net/ipv6/conf/all/forwarding", "1");
    router.ip(&["addr", "add", "fd00:5a::1/64", "dev", "r0", "nodad"]);
    router.ip(&["link", "set", "r0", "up"]);
    let conf = dir.join("radvd.conf");
    std::fs::write(
        &conf,
        "interface r0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  AdvDefaultLifetime 600;\n\
         \x20 prefix fd00:5a::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
    )
    .expect("radvd.conf");
    let pid = dir.join("radvd.pid");
    let args = ["-n", "-m", "stderr", "-C", conf.to_str().expect("utf8"), "-p", pid.to_str().expect("utf8")];
    let radvd = router.exec("radvd", &args).spawn().expect("start radvd (Debian package radvd)");
    RaLan { node, radvd, _router: router }
}

fn sysctl(ns: &Netns, key: &str, value: &str) {
    must(&mut ns.exec("sh", &["-c", &format!("echo {value} > /proc/sys/{key}")]));
}

fn read_sysctl(ns: &Netns, key: &str) -> String {
    String::from_utf8_lossy(&must(&mut ns.exec("cat", &[&format!("/proc/sys/{key}")])).stdout).trim().to_string()
}

/// Whether the node holds its SLAAC address and a default route learnt from
/// an advertisement, polled for up to `wait`.
fn configured_by_ra(ns: &Netns, wait: Duration) -> bool {
    let start = Instant::now();
    loop {
        let addr = ns.ip(&["-6", "addr", "show", "dev", "eth0", "scope", "global"]);
        let route = ns.ip(&["-6", "route", "show", "default", "proto", "ra"]);
        if addr.contains(SLAAC_ADDR) && route.contains("via fe80::") {
            return true;
        }
        if start.elapsed() > wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Forgets what the advertisements gave, so only a new one brings it back.
fn forget_ra(ns: &Netns) {
    ns.ip(&["-6", "addr", "del", &format!("{SLAAC_ADDR}/64"), "dev", "eth0"]);
    ns.ip(&["-6", "route", "flush", "proto", "ra"]);
}

fn topology(dir: &std::path::Path) -> String {
    let topo = dir.join("ra.yaml");
    std::fs::write(
        &topo,
        format!(
            "version: 1\ncluster: ra\nipv6Network: fd00:10:244::/56\nbackend:\n  type: vxlan\ndefaults:\n  interface: eth0\n\
             nodes:\n  - name: node-1\n    ip6: {SLAAC_ADDR}/64\n  - name: node-2\n    ip6: fd00:5a::62/64\n"
        ),
    )
    .expect("topology");
    let topo = topo.to_str().expect("utf8").to_string();
    let o = run(&["lock", &topo]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    topo
}

fn apply(topo: &str, ns: &Netns, extra: &[&str]) -> String {
    let mut args = vec!["apply", topo, "--node", "node-1", "--netns", &ns.name];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(code(&o), 0, "apply: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn a_slaac_uplink_keeps_taking_router_advertisements_after_apply() {
    if !root_or_skip("a_slaac_uplink_keeps_taking_router_advertisements_after_apply") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lan = ra_lan(dir.path(), "1");
    assert!(configured_by_ra(&lan.node, Duration::from_secs(15)), "radvd configures the node before apply");
    let topo = topology(dir.path());
    apply(&topo, &lan.node, &[]);
    // Turning forwarding on drops the routers learnt so far (the kernel's
    // addrconf); the next advertisement must bring the default route back.
    assert_eq!(read_sysctl(&lan.node, "net/ipv6/conf/all/forwarding"), "1");
    assert!(configured_by_ra(&lan.node, Duration::from_secs(12)), "the uplink is configured again after apply");
    assert_eq!(read_sysctl(&lan.node, "net/ipv6/conf/eth0/accept_ra"), "2", "the uplink keeps host behaviour");
    // flanneld's v6 device takes no advertisements (pkg/backend/vxlan/device.go).
    assert_eq!(read_sysctl(&lan.node, "net/ipv6/conf/flannel-v6.1/accept_ra"), "0");
    assert_eq!(apply(&topo, &lan.node, &["--dry-run"]), "0 changes\n");

    forget_ra(&lan.node);
    assert!(configured_by_ra(&lan.node, Duration::from_secs(12)), "the next advertisement configures the uplink again");

    // The control, what forwarding alone does: with accept_ra=1 a forwarding
    // host ignores advertisements, and the uplink stays unconfigured.
    sysctl(&lan.node, "net/ipv6/conf/eth0/accept_ra", "1");
    forget_ra(&lan.node);
    assert!(
        !configured_by_ra(&lan.node, Duration::from_secs(10)),
        "accept_ra=1 under forwarding ignores advertisements"
    );
}

#[test]
fn an_administrators_accept_ra_is_left_alone() {
    if !root_or_skip("an_administrators_accept_ra_is_left_alone") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let lan = ra_lan(dir.path(), "0");
    lan.node.ip(&["-6", "addr", "add", &format!("{SLAAC_ADDR}/64"), "dev", "eth0", "nodad"]);
    let topo = topology(dir.path());
    apply(&topo, &lan.node, &[]);
    assert_eq!(read_sysctl(&lan.node, "net/ipv6/conf/eth0/accept_ra"), "0", "an administrator's 0 stays");
    assert_eq!(apply(&topo, &lan.node, &["--dry-run"]), "0 changes\n", "and is not drift");
}
