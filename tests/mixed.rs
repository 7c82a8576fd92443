//! A mixed cluster moving off flanneld, in namespaces, with a real etcd.
//!
//! Node F stays "flanneld": the test programs it from the etcd leases the
//! way flanneld's vxlan backend does (pkg/backend/vxlan/device.go: a VXLAN
//! device `flannel.<VNI>` with the lease's VtepMAC, no learning, the
//! subnet's network address as a /32, MTU uplink − 50; vxlan_network.go
//! `handleSubnetEvents`: per peer lease a permanent ARP entry for the peer's
//! `.0`, an FDB entry MAC → public IP, and a route `subnet via .0 dev
//! flannel.1 onlink`). Node G was a flanneld node and is now configured by
//! flannel-gen from the import; N is a new flannel-gen node that F learns
//! of only through `publish etcd`. Pods on all three ping each other; then
//! F moves to flannel-gen too (apply finds nothing to change on the wire,
//! `publish --adopt` makes its lease a reservation).

mod common;

use std::path::Path;

use common::cluster::Cluster;
use common::etcd::Etcd;
use common::netns::{Netns, must, root_or_skip};
use common::{code, run, stderr, stdout};
use serde_json::Value;

const PREFIX: &str = "/atomic.io/network";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// The vxlan lease flanneld writes (pkg/lease/lease.go, vxlanLeaseAttrs).
fn lease(ip: &str, mac: &str) -> String {
    format!(
        r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
    )
}

/// Leases as flanneld's registry lists them: (subnet, public IP, VTEP MAC).
fn leases(e: &Etcd) -> Vec<(String, String, String)> {
    e.dump(&format!("{PREFIX}/subnets/"))
        .iter()
        .map(|(k, (v, _, _))| {
            let subnet = k.rsplit('/').next().expect("key").replace('-', "/");
            let a: Value = serde_json::from_str(v).expect("lease JSON");
            let f = |x: &Value| x.as_str().expect("string").to_string();
            (subnet, f(&a["PublicIP"]), f(&a["BackendData"]["VtepMAC"]))
        })
        .collect()
}

/// What flanneld's vxlan backend does on node `ns` with public IP `ip`.
fn program_like_flanneld(ns: &Netns, ip: &str, all: &[(String, String, String)]) {
    let (own, peers): (Vec<_>, Vec<_>) = all.iter().partition(|l| l.1 == ip);
    let (subnet, _, mac) = own.first().expect("F's own lease");
    let net: ipnet::Ipv4Net = subnet.parse().expect("subnet");
    let dev = "flannel.1";
    ns.ip(&[
        "link",
        "add",
        dev,
        "address",
        mac,
        "type",
        "vxlan",
        "id",
        "1",
        "local",
        ip,
        "dev",
        "eth0",
        "dstport",
        "8472",
        "nolearning",
    ]);
    ns.ip(&["addr", "add", &format!("{}/32", net.network()), "dev", dev]);
    ns.ip(&["link", "set", dev, "mtu", "1450", "up"]);
    must(&mut ns.exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"]));
    for (subnet, public, mac) in peers {
        let gw = subnet.split('/').next().expect("addr");
        ns.ip(&["neigh", "replace", gw, "lladdr", mac, "dev", dev, "nud", "permanent"]);
        must(&mut ns.exec("bridge", &["fdb", "replace", mac, "dev", dev, "dst", public, "self", "permanent"]));
        ns.ip(&["route", "replace", subnet, "via", gw, "dev", dev, "onlink"]);
    }
}

#[test]
fn flanneld_and_flannel_gen_nodes_route_to_each_other() {
    if !root_or_skip("flanneld_and_flannel_gen_nodes_route_to_each_other") {
        return;
    }
    let e = Etcd::start();
    e.put(&format!("{PREFIX}/config"), r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#);
    e.put_leased(&format!("{PREFIX}/subnets/10.5.11.0-24"), &lease("192.168.80.11", "0a:58:0a:05:0b:01"), 86400);
    e.put_leased(&format!("{PREFIX}/subnets/10.5.12.0-24"), &lease("192.168.80.12", "0a:58:0a:05:0c:01"), 86400);
    let dir = tempfile::tempdir().expect("tmp");
    let names = dir.path().join("names");
    std::fs::write(&names, "192.168.80.11 f\n192.168.80.12 g\n").expect("names");
    let topo = dir.path().join("mixed.yaml");
    let o = run(&[
        "import",
        "etcd",
        "--endpoints",
        &e.url,
        "--prefix",
        PREFIX,
        "--cluster",
        "mixed",
        "--out",
        s(&topo),
        "--names",
        s(&names),
        "--interface",
        "eth0",
        "--ip-masq",
        "false",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let mut text = std::fs::read_to_string(&topo).expect("topology");
    text.push_str("  - name: n\n    ip: 192.168.80.13/24\n    subnet: 10.5.13.0/24\n");
    std::fs::write(&topo, text).expect("write");
    assert_eq!(code(&run(&["lock", s(&topo)])), 0);
    let o = run(&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));

    let mut c = Cluster::new(s(&topo));
    // F learns of N only from the key publish wrote.
    let registry = leases(&e);
    assert!(registry.iter().any(|l| l.1 == "192.168.80.13"), "{registry:?}");
    program_like_flanneld(&c.node("f").ns, "192.168.80.11", &registry);
    c.apply(s(&topo), "g", &[]);
    c.apply(s(&topo), "n", &[]);
    c.attach_pods(1);
    assert_eq!(c.ping_across(), Vec::<String>::new());

    // flannel-gen's plan for F is what flanneld programmed: the dry run may
    // adopt the device (marker alias), add rules and sysctls, and re-tag
    // routes flanneld made (proto boot) as its own, through a nexthop
    // object with the same gateway, device and onlink; nothing on the wire.
    let f = &c.node("f").ns.name;
    let dry = run(&["apply", s(&topo), "--node", "f", "--netns", f, "--dry-run"]);
    let changes = stdout(&dry);
    assert_eq!(code(&dry), 1, "{changes}{}", stderr(&dry));
    let retag = |l: &str| {
        let Some(rest) = l.strip_prefix("~ route ") else { return false };
        let Some((new, was)) = rest.split_once(" (was ") else { return false };
        let same_path = new.split_once(" nhid ").map_or(new, |(path, _)| path);
        was == format!("{same_path} proto boot)")
    };
    let wire: Vec<&str> = changes
        .lines()
        .filter(|l| !l.ends_with("(dry run; nothing was changed)"))
        .filter(|l| !(l.starts_with("~ sysctl ") || l.starts_with("+ rules ") || retag(l)))
        .filter(|l| !(l.starts_with("~ link flannel.1 (") && l.contains("adopted")))
        .collect();
    assert!(wire.is_empty(), "apply would change the wire on F: {wire:?}\n{changes}");
    assert_eq!(changes.lines().filter(|l| retag(l)).count(), 2, "{changes}");
    // F moves to flannel-gen; pods keep reaching each other.
    c.apply(s(&topo), "f", &[]);
    assert_eq!(c.ping_across(), Vec::<String>::new());
    let o =
        run(&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX, "--adopt", "f", "--adopt", "g"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(&format!("{PREFIX}/subnets/"));
    assert!(after.values().all(|(_, lease, _)| *lease == 0), "every lease is a reservation now: {after:?}");
}
