use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::lock::parse_lock;
use crate::topology::{Cluster, parse, validate};

fn cluster_from(y: &str) -> Cluster {
    let doc = parse::parse_topology(Path::new("p.yaml"), y).expect("parses");
    validate::validate(Path::new("p.yaml"), &doc).expect("valid")
}

fn cluster_with(names: &[String]) -> Cluster {
    let mut y = String::from(
        "version: 1\ncluster: prop\nnetwork: 10.244.0.0/16\nipv6Network: fd00:10:244::/48\nbackend:\n  type: vxlan\nnodes:\n",
    );
    for (i, n) in names.iter().enumerate() {
        y.push_str(&format!(
            "  - name: {n}\n    ip: 192.168.{}.{}/16\n    ip6: fd00:1::{:x}/64\n",
            i / 200,
            i % 200 + 10,
            i + 10
        ));
    }
    cluster_from(&y)
}

/// The lock file an allocation is written as, read back.
fn as_lock(c: &Cluster, leases: &Leases) -> Lock {
    parse_lock(Path::new("p.lock"), &render_lock(c, leases)).expect("a rendered lock parses")
}

fn assert_unique(a: &Leases) {
    for f in Family::ALL {
        let subnets: HashSet<_> = a.values().filter_map(|l| l.get(f)).map(|l| l.subnet).collect();
        let macs: HashSet<_> = a.values().filter_map(|l| l.get(f)).map(|l| l.vtep_mac).collect();
        assert_eq!(subnets.len(), a.len(), "{f} subnets unique");
        assert_eq!(macs.len(), a.len(), "{f} MACs unique");
    }
    for l in a.values().flat_map(|l| l.iter().map(|(_, l)| l)) {
        assert!(l.vtep_mac.is_unicast() && l.vtep_mac.0[0] & 0x02 != 0, "local unicast {}", l.vtep_mac);
    }
}

/// A change to the node list: keep a subset, add new names, shuffle.
fn edits() -> impl Strategy<Value = (Vec<String>, Vec<bool>, Vec<String>, u64)> {
    let names = prop::collection::btree_set("[a-z][a-z0-9]{0,6}", 1..40)
        .prop_map(|s| s.into_iter().map(|n| format!("n-{n}")).collect::<Vec<_>>());
    names.prop_flat_map(|names| {
        let n = names.len();
        (
            Just(names),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::btree_set("[a-z]{1,6}", 0..20)
                .prop_map(|s| s.into_iter().map(|n| format!("new-{n}")).collect()),
            any::<u64>(),
        )
    })
}

fn shuffle(v: &mut [String], seed: u64) {
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Adding, removing and reordering nodes never moves a node that holds
    /// a lease, in either family, through the lock file as written.
    #[test]
    fn leases_survive_add_remove_reorder((names, keep, added, seed) in edits()) {
        let before = cluster_with(&names);
        let first = allocate(&before, None).expect("allocates");
        assert_unique(&first);
        let lock = as_lock(&before, &first);

        let mut next: Vec<String> = names.iter().zip(&keep).filter(|(_, k)| **k).map(|(n, _)| n.clone()).collect();
        next.extend(added);
        shuffle(&mut next, seed);
        prop_assume!(!next.is_empty());
        let after = cluster_with(&next);
        let second = allocate(&after, Some(&lock)).expect("allocates");
        assert_unique(&second);
        for name in &next {
            if let Some(old) = first.get(name) {
                prop_assert_eq!(Some(old), second.get(name), "node {} moved", name);
            }
        }
        prop_assert_eq!(second.len(), next.len());
    }

    /// Without a lock, subnets are handed out first-free in file order and
    /// each MAC depends on cluster and node name only, not on the others.
    #[test]
    fn fresh_allocation_is_file_order_and_macs_follow_names(names in prop::collection::btree_set("[a-z]{1,8}", 1..30), seed in any::<u64>()) {
        let mut names: Vec<String> = names.into_iter().collect();
        shuffle(&mut names, seed);
        let a = allocate(&cluster_with(&names), None).expect("allocates");
        for (i, n) in names.iter().enumerate() {
            let l = &a[n];
            prop_assert_eq!(l.v4.map(|l| l.subnet.to_string()), Some(format!("10.244.{}.0/24", i + 1)));
            prop_assert_eq!(l.v6.map(|l| l.subnet.to_string()), Some(format!("fd00:10:244:{:x}::/64", i + 1)));
            prop_assert_eq!(l.v4.map(|l| l.vtep_mac), Some(derive_mac(Family::V4, "prop", n, 0)));
            prop_assert_eq!(l.v6.map(|l| l.vtep_mac), Some(derive_mac(Family::V6, "prop", n, 0)));
        }
    }
}

#[test]
fn derived_mac_collision_is_resolved() {
    // Pin node b's MAC to exactly what a would derive: a must get another one.
    let y = format!(
        "version: 1\ncluster: prop\nnetwork: 10.244.0.0/16\nbackend: {{type: vxlan}}\nnodes:\n  - name: a\n    ip: 192.168.0.1/24\n  - name: b\n    ip: 192.168.0.2/24\n    vtepMAC: \"{}\"\n",
        derive_mac(Family::V4, "prop", "a", 0)
    );
    let a = allocate(&cluster_from(&y), None).expect("allocates");
    assert_eq!(a["a"].v4.map(|l| l.vtep_mac), Some(derive_mac(Family::V4, "prop", "a", 1)));
}

#[test]
fn exhaustion_is_located_at_the_node() {
    let names: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
    let mut c = cluster_with(&names);
    if let Some(p) = c.pools.v4.as_mut() {
        p.max = p.min; // room for one
    }
    let d = allocate(&c, None).expect_err("exhausted");
    assert!(d.to_string().contains("no free /24 subnet left between 10.244.1.0 and 10.244.1.0 for node `n1`"), "{d}");
}

const TWO: &str = "version: 1\ncluster: prop\nnetwork: 10.244.0.0/16\nbackend: {type: vxlan}\nnodes:\n  - name: a\n    ip: 192.168.0.1/24\n  - name: b\n    ip: 192.168.0.2/24\n";

#[test]
fn a_pin_that_takes_another_nodes_lease_names_both() {
    let c = cluster_from(TWO);
    let lock = as_lock(&c, &allocate(&c, None).expect("allocates"));
    let stolen = TWO.replace(
        "  - name: a\n    ip: 192.168.0.1/24\n",
        "  - name: a\n    ip: 192.168.0.1/24\n    subnet: 10.244.2.0/24\n",
    );
    let d = allocate(&cluster_from(&stolen), Some(&lock)).expect_err("stolen");
    assert_eq!(
        d.to_string(),
        "p.yaml:8:13: error: nodes[0].subnet: node `a` pins 10.244.2.0/24, which the lock file leases to node `b`; pin another one, or move `b` first"
    );
}

#[test]
fn a_network_change_is_not_a_silent_renumbering() {
    let c = cluster_from(TWO);
    let lock = as_lock(&c, &allocate(&c, None).expect("allocates"));
    let d = allocate(&cluster_from(&TWO.replace("10.244.0.0/16", "10.245.0.0/16")), Some(&lock)).expect_err("renumber");
    assert!(d.to_string().starts_with("p.lock:5:10: error: network: the lock was written for 10.244.0.0/16 with /24 subnets, the topology has 10.245.0.0/16 with /24: every node would be renumbered"), "{d}");
}

#[test]
fn a_lease_outside_the_range_after_a_topology_change_is_located() {
    let c = cluster_from(TWO);
    let lock = as_lock(&c, &allocate(&c, None).expect("allocates"));
    let d = allocate(&cluster_from(&TWO.replace("backend:", "subnetMin: 10.244.2.0\nbackend:")), Some(&lock))
        .expect_err("outside");
    assert!(d.to_string().starts_with("p.lock:9:13: error: nodes.a.subnet: 10.244.1.0/24 is outside the allocatable range 10.244.2.0..10.244.255.0"), "{d}");
}
