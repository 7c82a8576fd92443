use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::topology::{Cluster, parse, validate};

fn cluster_with(names: &[String]) -> Cluster {
    let mut y = String::from("version: 1\ncluster: prop\nnetwork: 10.244.0.0/16\nbackend:\n  type: vxlan\nnodes:\n");
    for (i, n) in names.iter().enumerate() {
        y.push_str(&format!("  - name: {n}\n    ip: 192.168.{}.{}/16\n", i / 200, i % 200 + 10));
    }
    let doc = parse::parse_topology(Path::new("p.yaml"), &y).expect("parses");
    validate::validate(Path::new("p.yaml"), &doc).expect("valid")
}

fn assert_unique(a: &Allocation) {
    let subnets: HashSet<_> = a.leases.values().map(|l| l.subnet).collect();
    let macs: HashSet<_> = a.leases.values().map(|l| l.vtep_mac).collect();
    assert_eq!(subnets.len(), a.leases.len(), "subnets unique");
    assert_eq!(macs.len(), a.leases.len(), "MACs unique");
    for l in a.leases.values() {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn leases_survive_add_remove_reorder((names, keep, added, seed) in edits()) {
        let before = cluster_with(&names);
        let first = allocate(&before, None).expect("allocates");
        assert_unique(&first);
        let lock = to_lock(&before, &first);

        let mut next: Vec<String> = names.iter().zip(&keep).filter(|(_, k)| **k).map(|(n, _)| n.clone()).collect();
        next.extend(added);
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..next.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            next.swap(i, (s % (i as u64 + 1)) as usize);
        }
        // A cluster needs at least one node.
        prop_assume!(!next.is_empty());
        let after = cluster_with(&next);
        let second = allocate(&after, Some(&lock)).expect("allocates");
        assert_unique(&second);
        for name in &next {
            if let Some(old) = first.leases.get(name) {
                prop_assert_eq!(Some(old), second.leases.get(name), "node {} moved", name);
            }
        }
        prop_assert_eq!(second.leases.len(), next.len());
    }

    #[test]
    fn allocation_is_deterministic(names in prop::collection::btree_set("[a-z]{1,8}", 1..30)) {
        let names: Vec<String> = names.into_iter().collect();
        let c = cluster_with(&names);
        prop_assert_eq!(allocate(&c, None).expect("a"), allocate(&c, None).expect("b"));
    }
}

#[test]
fn lock_round_trips_through_its_text() {
    let c = cluster_with(&["a".into(), "b".into(), "c".into()]);
    let a = allocate(&c, None).expect("allocates");
    let text = render_lock(&c, &a);
    let parsed: LockFile = serde_saphyr::from_str(&text).expect("lock parses");
    assert_eq!(parsed, to_lock(&c, &a));
    assert_eq!(parse_lock_fast(&text), Some(parsed.clone()), "the fast path reads what the YAML parser reads");
    let empty = render_lock(&c, &Allocation::default());
    assert_eq!(parse_lock_fast(&empty), serde_saphyr::from_str(&empty).ok());
    // Hand edits fall back to the YAML parser.
    assert_eq!(parse_lock_fast(&text.replace("vtepMAC: \"", "vtepMAC: '").replace("\"\n", "'\n")), None);
    assert_eq!(parse_lock_fast(&format!("{text}  extra: 1\n")), None);
    assert_eq!(allocate(&c, Some(&parsed)).expect("again"), a);
}

#[test]
fn first_free_subnets_in_file_order() {
    let c = cluster_with(&["z".into(), "a".into()]);
    let a = allocate(&c, None).expect("allocates");
    assert_eq!(a.leases["z"].subnet.to_string(), "10.244.1.0/24");
    assert_eq!(a.leases["a"].subnet.to_string(), "10.244.2.0/24");
}

#[test]
fn derived_mac_collision_is_resolved() {
    // Pin node b's MAC to exactly what a would derive: a must get another one.
    let y = format!(
        "version: 1\ncluster: prop\nnetwork: 10.244.0.0/16\nbackend: {{type: vxlan}}\nnodes:\n  - name: a\n    ip: 192.168.0.1/24\n  - name: b\n    ip: 192.168.0.2/24\n    vtepMAC: \"{}\"\n",
        derive_mac("prop", "a", 0)
    );
    let doc = parse::parse_topology(Path::new("p.yaml"), &y).expect("parses");
    let c = validate::validate(Path::new("p.yaml"), &doc).expect("valid");
    let a = allocate(&c, None).expect("allocates");
    assert_unique(&a);
    assert_eq!(a.leases["a"].vtep_mac, derive_mac("prop", "a", 1));
}

#[test]
fn exhaustion_is_an_error() {
    let names: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
    let mut c = cluster_with(&names);
    c.subnet_max = c.subnet_min; // room for one
    assert!(matches!(allocate(&c, None), Err(AllocError::Exhausted { .. })));
}
