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

/// `ip -d route` of a namespace without the kernel's own (connected) routes.
fn routes(ns: &Netns) -> String {
    ns.ip(&["-d", "route", "show"]).lines().filter(|l| !l.contains("proto kernel")).collect::<Vec<_>>().join("\n")
}

/// `example` with `routeStyle: plain`, in `dir` with its lock; `drop` leaves a node out.
fn plain(dir: &Path, example: &str, drop: Option<&str>) -> String {
    let mut y = std::fs::read_to_string(common::root().join(format!("examples/{example}.yaml")))
        .expect("example")
        .replacen("backend:\n", "backend:\n  routeStyle: plain\n", 1);
    if let Some(n) = drop {
        let at = y.find(&format!("  - name: {n}\n")).expect("node");
        let end = y[at + 4..].find("  - name:").map_or(y.len(), |e| at + 4 + e);
        y.replace_range(at..end, "");
    }
    let t = dir.join(format!("{example}-{}.yaml", drop.unwrap_or("all")));
    std::fs::write(&t, y).expect("write");
    std::fs::copy(common::root().join(format!("examples/{example}.lock")), t.with_extension("lock")).expect("lock");
    t.to_string_lossy().into_owned()
}

/// #28: with `routeStyle: plain` a flannel-gen node's routes are flanneld's,
/// protocol included (`proto boot`, vishvananda/netlink's NewRtMsg default;
/// the routes of pkg/backend/vxlan/vxlan_network.go and
/// pkg/backend/hostgw): vxlan routes as program_like_flanneld makes them,
/// host-gw routes `subnet via <peer> dev eth0`. A peer that leaves the
/// topology loses its route; a hand-made route in the pod network stays.
#[test]
fn plain_routes_are_flanneld_routes_protocol_included() {
    if !root_or_skip("plain_routes_are_flanneld_routes_protocol_included") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let topo = plain(dir.path(), "vxlan-3node", None);
    let plan: Value =
        serde_json::from_str(&stdout(&run(&["plan", &topo, "--node", "node-1", "--format", "json"]))).expect("plan");
    let mut all = vec![(
        plan["ipv4"]["subnet"].as_str().expect("subnet").to_string(),
        "192.168.31.61".to_string(),
        plan["ipv4"]["vtepMAC"].as_str().expect("mac").to_string(),
    )];
    for p in plan["peers"].as_array().expect("peers") {
        let f = |k: &str| p[k].as_str().expect("field").to_string();
        all.push((f("subnet"), f("publicIP"), f("vtepMAC")));
    }
    let flanneld = Netns::node("fld", Some("192.168.31.61/24"));
    program_like_flanneld(&flanneld, "192.168.31.61", &all);
    let ours = Netns::node("fgp", Some("192.168.31.61/24"));
    let o = run(&["apply", &topo, "--node", "node-1", "--netns", &ours.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(routes(&ours), routes(&flanneld), "vxlan, plain");
    assert!(routes(&ours).contains("proto boot"), "{}", routes(&ours));

    let hostgw = plain(dir.path(), "hostgw-3node", None);
    let flanneld = Netns::node("fldh", Some("192.168.31.61/24"));
    for (subnet, via) in [("10.244.2.0/24", "192.168.31.62"), ("10.244.3.0/24", "192.168.31.63")] {
        flanneld.ip(&["route", "replace", subnet, "via", via, "dev", "eth0"]);
    }
    let ours = Netns::node("fgph", Some("192.168.31.61/24"));
    let o = run(&["apply", &hostgw, "--node", "node-1", "--netns", &ours.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(routes(&ours), routes(&flanneld), "host-gw, plain");
    // node-3 leaves; a route someone added by hand (also proto boot) stays.
    ours.ip(&["route", "add", "10.244.99.0/24", "via", "192.168.31.1", "dev", "eth0"]);
    let without = plain(dir.path(), "hostgw-3node", Some("node-3"));
    let o = run(&["apply", &without, "--node", "node-1", "--netns", &ours.name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("- route 10.244.3.0/24 via 192.168.31.63 dev eth0 proto boot"), "{}", stdout(&o));
    let left = routes(&ours);
    assert!(
        !left.contains("10.244.3.0/24") && left.contains("10.244.99.0/24") && left.contains("10.244.2.0/24"),
        "{left}"
    );
}
