use std::path::Path;

use super::*;
use crate::topology::parse::parse_topology;

fn try_load(y: &str) -> Result<Cluster, crate::diag::Diagnostics> {
    let doc = parse_topology(Path::new("t.yaml"), y).expect("parses");
    validate(Path::new("t.yaml"), &doc)
}

fn load(extra: &str, network: &str) -> Cluster {
    let y = format!(
        "version: 1\ncluster: t\nnetwork: {network}\n{extra}backend:\n  type: vxlan\nnodes:\n  - name: a\n    ip: 192.168.0.2/24\n"
    );
    try_load(&y).expect("valid")
}

#[test]
fn flannel_defaults() {
    let c = load("", "10.244.0.0/16");
    let p = c.pools.v4.expect("ipv4");
    assert_eq!(p.len, 24);
    assert_eq!(p.min.to_string(), "10.244.1.0", "second subnet");
    assert_eq!(p.max.to_string(), "10.244.255.0", "last subnet");
    assert_eq!((c.backend.vni, c.backend.port), (1, 8472));
    assert_eq!(c.nodes[0].mtu, 1500);
    assert_eq!(c.nodes[0].interface, "eth0");
    assert!(!c.ip_masq, "flanneld's --ip-masq defaults to false");
    assert!(c.pools.v6.is_none());
}

#[test]
fn zeros_mean_what_they_mean_to_flanneld() {
    // flanneld: SubnetLen 0 and Port 0 are unset (pkg/subnet/config.go, vishvananda/netlink
    // sends no port, so the kernel's 8472); VNI 0 is VNI 0 (pkg/backend/vxlan/vxlan.go).
    let y = "version: 1\ncluster: t\nnetwork: 10.244.0.0/16\nsubnetLen: 0\nbackend:\n  type: vxlan\n  vni: 0\n  port: 0\nnodes:\n  - name: a\n    ip: 192.168.0.2/24\n";
    let c = try_load(y).expect("valid");
    assert_eq!((c.pools.v4.expect("v4").len, c.backend.vni, c.backend.port), (24, 0, 8472));
}

#[test]
fn small_networks_get_prefix_plus_two_and_need_four_subnets() {
    let c = load("", "10.244.0.0/23");
    assert_eq!(c.pools.v4.expect("v4").len, 25);
    assert_eq!(c.pools.v4.expect("v4").capacity(), 3);
    // flanneld: SubnetLen must be at least prefix + 2.
    let y = "version: 1\ncluster: t\nnetwork: 10.244.0.0/16\nsubnetLen: 17\nbackend: {type: vxlan}\nnodes:\n  - name: a\n    ip: 192.168.0.2/24\n";
    let d = try_load(y).expect_err("prefix+1");
    assert!(d.to_string().contains("subnetLen: 17 is outside 18..=30"), "{d}");
}

#[test]
fn subnet_bounds_accept_address_or_cidr() {
    let c = load("subnetMin: 10.244.10.0/24\nsubnetMax: 10.244.20.0\n", "10.244.0.0/16");
    let p = c.pools.v4.expect("v4");
    assert_eq!(p.min.to_string(), "10.244.10.0");
    assert_eq!(p.capacity(), 11);
}

#[test]
fn ipv6_defaults_follow_flanneld() {
    let y = "version: 1\ncluster: t\nipv6Network: fd00:10:244::/56\nbackend: {type: vxlan}\nnodes:\n  - name: a\n    ip6: fd00:1::2/64\n";
    let c = try_load(y).expect("IPv6-only");
    let p = c.pools.v6.expect("v6");
    assert_eq!(
        (p.len, p.min.to_string(), p.max.to_string()),
        (64, "fd00:10:244:1::".into(), "fd00:10:244:ff::".into())
    );
    assert!(c.pools.v4.is_none());
}

#[test]
fn direct_routing_follows_each_nodes_on_link_prefix() {
    let y = "version: 1\ncluster: t\nnetwork: 10.244.0.0/16\nbackend: {type: host-gw}\nnodes:\n  - name: a\n    ip: 192.168.31.61/24\n  - name: b\n    ip: 192.168.31.62/23\n";
    let c = try_load(y).expect("both on-link from each other, prefixes differ");
    assert!(c.nodes[0].on_link(crate::netaddr::Family::V4, &c.nodes[1]));
    let far = y.replace("192.168.31.62/23", "192.168.30.62/23");
    let d = try_load(&far).expect_err("a cannot reach b directly");
    assert!(d.to_string().contains("a (192.168.31.0/24) cannot reach b without a router"), "{d}");
}

#[test]
fn names_that_could_escape_a_directory_are_not_labels() {
    for bad in ["", "..", ".", "a/b", "A", "-a", "a-", "a b", "a.b", &"x".repeat(64)] {
        assert!(!is_dns_label(bad), "{bad:?}");
    }
    assert!(is_dns_label("node-1"));
}

#[test]
fn overlay_device_names_are_not_underlays() {
    for name in ["flannel.1", "flannel.42", "flannel-v6.7", "flannel0"] {
        assert!(interface_refusal(name).is_some(), "{name}");
    }
    for name in ["eth0", "flannel.x", "flannelx", "ens33"] {
        assert!(interface_refusal(name).is_none(), "{name}");
    }
}
