use std::path::Path;

use super::read::{fast_path_accepts, parse_lock, parse_lock_slow, subset_reads_as_serde_saphyr};
use super::*;

const LOCK: &str = "# flannel-gen lock file: node subnet and VTEP MAC leases.
# Written by `flannel-gen lock`; commit it beside the topology.
version: 1
cluster: prod
network: 10.244.0.0/16
subnetLen: 24
ipv6Network: fd00:10:244::/56
ipv6SubnetLen: 64
nodes:
  a:
    subnet: 10.244.1.0/24
    vtepMAC: \"36:28:f3:f4:bd:cb\"
    subnet6: fd00:10:244:1::/64
    vtepMAC6: \"2e:2b:01:cb:b7:bd\"
  b:
    subnet: 10.244.2.0/24
    vtepMAC: \"1a:cc:10:df:41:7d\"
";

fn parse(text: &str) -> Result<Lock, crate::diag::Diagnostics> {
    parse_lock(Path::new("t.lock"), text)
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn fast_and_yaml_paths_read_the_same_lock() {
    assert!(fast_path_accepts(LOCK));
    let fast = parse(LOCK).expect("valid");
    let slow = parse_lock_slow(Path::new("t.lock"), LOCK).expect("valid");
    assert_eq!(fast.leases, slow.leases);
    assert_eq!(fast.networks, slow.networks);
    assert_eq!(fast.positions, slow.positions, "both parsers locate values alike");
    assert_eq!(fast.leases["a"].v6.map(|l| l.subnet.to_string()), Some("fd00:10:244:1::/64".into()));
    assert_eq!(fast.pos_of("b", crate::netaddr::Family::V4).vtep_mac, crate::diag::Pos::new(17, 14));
    // A hand edit (other quoting) falls back to the YAML parser with the same result.
    let edited = LOCK.replace("\"1a:cc:10:df:41:7d\"", "'1a:cc:10:df:41:7d'");
    assert!(!fast_path_accepts(&edited));
    assert_eq!(parse(&edited).expect("valid").leases, fast.leases);
}

/// Hand-edited locks miss the line-exact fast path and go through the YAML
/// subset reader, which must read them as serde-saphyr does, positions included.
#[test]
fn hand_edited_locks_read_alike_through_the_yaml_subset() {
    let edits = [
        LOCK.to_string(),
        LOCK.replace('"', "'"),
        LOCK.replace('"', ""),
        LOCK.replace("\n    ", "\n      ").replace("\n  ", "\n    "),
        LOCK.replace("nodes:\n", "nodes: # by hand\n\n"),
        LOCK.replace("subnet: 10.244.2.0/24", "subnet:   10.244.2.0/24   # moved"),
    ];
    for text in &edits {
        assert!(subset_reads_as_serde_saphyr(text), "{text}");
    }
}

#[test]
fn render_round_trips() {
    let lock = parse(LOCK).expect("valid");
    let mut nets = crate::netaddr::PerFamily::default();
    for (f, n) in lock.networks.iter() {
        nets.set(f, Some((n.network, n.subnet_len)));
    }
    assert_eq!(render("prod", &nets, &lock.leases, &lock.wireguard_keys), LOCK);
}

#[test]
fn a_misaligned_lease_is_located() {
    let e = errors(&LOCK.replace("subnet: 10.244.2.0/24", "subnet: 10.244.2.0/25"));
    assert_eq!(e, ["t.lock:16:13: error: nodes.b.subnet: 10.244.2.0/25 is a /25 but the lock's subnetLen is 24"]);
}

#[test]
fn host_bits_outside_network_and_multicast_macs_are_located() {
    let e = errors(&LOCK.replace("subnet: 10.244.2.0/24", "subnet: 10.244.2.7/24"));
    assert!(e[0].starts_with("t.lock:16:13: error: nodes.b.subnet: `10.244.2.7/24` has host bits set"), "{e:?}");
    let e = errors(&LOCK.replace("subnet: 10.244.2.0/24", "subnet: 10.245.2.0/24"));
    assert_eq!(e, ["t.lock:16:13: error: nodes.b.subnet: 10.245.2.0/24 is outside the network 10.244.0.0/16"]);
    let e = errors(&LOCK.replace("1a:cc:10:df:41:7d", "01:00:5e:00:00:01"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("t.lock:17:14: error: nodes.b.vtepMAC: 01:00:5e:00:00:01 is not a unicast address"),
        "{e:?}"
    );
}

#[test]
fn a_lease_held_twice_is_located_at_the_second() {
    let e = errors(&LOCK.replace("subnet: 10.244.2.0/24", "subnet: 10.244.1.0/24"));
    assert_eq!(e, ["t.lock:16:13: error: nodes.b.subnet: also leased to node `a`: a lease belongs to one node"]);
}

#[test]
fn garbage_is_a_located_yaml_error() {
    let e = errors("version: 1\ncluster: [x\n");
    assert!(e[0].starts_with("t.lock:"), "{e:?}");
    assert!(e[0].contains("not a flannel-gen lock file"), "{e:?}");
}

/// A node block written twice: last-wins would move node `a` to the second
/// block's subnet unnoticed. Refused, located at the second block, in the
/// fast layout, through the YAML subset reader and through serde-saphyr.
#[test]
fn a_node_listed_twice_is_refused_in_every_layout() {
    let twice = format!("{LOCK}  a:\n    subnet: 10.244.9.0/24\n    vtepMAC: \"0e:00:00:00:00:09\"\n");
    assert!(fast_path_accepts(&twice), "the fast layout reads it");
    let want = "t.lock:18:3: error: nodes: node `a` is listed twice (first at line 10)";
    assert_eq!(errors(&twice).first().map(String::as_str), Some(want), "{:?}", errors(&twice));
    let subset = twice.replace('"', "'");
    assert!(!fast_path_accepts(&subset));
    let e = errors(&subset);
    assert!(e.iter().any(|l| l.contains("18:3") && (l.contains("listed twice") || l.contains("duplicate"))), "{e:?}");
    let e = parse_lock_slow(Path::new("t.lock"), &twice).expect_err("YAML path refuses it too");
    assert!(!e.0.is_empty());
}
