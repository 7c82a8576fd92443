use std::path::Path;

use super::*;
use crate::topology::parse::parse_topology;

fn load(extra: &str, network: &str) -> Cluster {
    let y = format!(
        "version: 1\ncluster: t\nnetwork: {network}\n{extra}backend:\n  type: vxlan\nnodes:\n  - name: a\n    ip: 192.168.0.2/24\n"
    );
    let doc = parse_topology(Path::new("t.yaml"), &y).expect("parses");
    validate(Path::new("t.yaml"), &doc).expect("valid")
}

#[test]
fn flannel_defaults() {
    let c = load("", "10.244.0.0/16");
    assert_eq!(c.subnet_len, 24);
    assert_eq!(c.subnet_min.to_string(), "10.244.1.0", "second subnet");
    assert_eq!(c.subnet_max.to_string(), "10.244.255.0", "last subnet");
    assert_eq!((c.backend.vni, c.backend.port), (1, 8472));
    assert_eq!((c.mtu, c.pod_mtu()), (1500, 1450));
    assert_eq!(c.nodes[0].interface, "eth0");
    assert!(!c.ip_masq, "flanneld's --ip-masq defaults to false");
}

#[test]
fn small_networks_get_prefix_plus_two() {
    let c = load("", "10.244.0.0/23");
    assert_eq!(c.subnet_len, 25);
    assert_eq!(c.subnet_capacity(), 3);
}

#[test]
fn subnet_bounds_accept_address_or_cidr() {
    let c = load("subnetMin: 10.244.10.0/24\nsubnetMax: 10.244.20.0\n", "10.244.0.0/16");
    assert_eq!(c.subnet_min.to_string(), "10.244.10.0");
    assert_eq!(c.subnet_capacity(), 11);
}

#[test]
fn names_that_could_escape_a_directory_are_not_labels() {
    for bad in ["", "..", ".", "a/b", "A", "-a", "a-", "a b", "a.b", &"x".repeat(64)] {
        assert!(!is_dns_label(bad), "{bad:?}");
    }
    assert!(is_dns_label("node-1"));
}
