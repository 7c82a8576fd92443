use std::path::Path;
use std::time::Duration;

use super::*;
use crate::registry::etcd::Tls;

const TOPO: &str = "version: 1
cluster: c1
network: 10.5.0.0/16
backend:
  type: vxlan
nodes:
  - name: a
    ip: 192.168.1.11/24
    subnet: 10.5.1.0/24
    vtepMAC: \"0a:00:00:00:00:01\"
  - name: b
    ip: 192.168.1.12/24
    subnet: 10.5.2.0/24
    vtepMAC: \"0a:00:00:00:00:02\"
";

fn target() -> Target {
    Target {
        endpoints: vec!["http://127.0.0.1:2379".into()],
        prefix: "/p".into(),
        tls: Tls::default(),
        timeout: Duration::from_secs(1),
    }
}

fn cluster(yaml: &str) -> (Cluster, Vec<Published>) {
    let f = Path::new("t.yaml");
    let doc = crate::topology::parse::parse_topology(f, yaml).expect("parses");
    let c = crate::topology::validate::validate(f, &doc).expect("valid");
    let leases = crate::alloc::allocate(&c, None).expect("allocates");
    let plans = crate::plan::build_all(&c, &leases).expect("plans");
    let published = plans.iter().map(Published::of_plan).collect();
    (c, published)
}

fn kv(key: &str, value: &str, lease: i64, rev: i64) -> Kv {
    Kv { key: key.into(), value: value.into(), lease, mod_revision: rev }
}

fn value(ip: &str, mac: &str) -> String {
    format!(
        r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
    )
}

fn record(cluster: &str, node: &str, v: &str) -> String {
    serde_json::to_string(&Record { cluster: cluster.into(), node: node.into(), value: v.into() }).expect("json")
}

fn snap(subnets: Vec<Kv>, extra: Vec<Kv>) -> Snapshot {
    let config = kv("/p/config", r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#, 0, 1);
    Snapshot { revision: 9, config: Some(config), subnets, ttls: BTreeMap::new(), extra }
}

fn kinds(p: &PublishPlan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::CreateConfig { .. } => "config".into(),
            Action::Create(e) => format!("create {}", e.node),
            Action::Keep(e) => format!("keep {}", e.node),
            Action::Update { entry, .. } => format!("update {}", entry.node),
            Action::Adopt { entry, .. } => format!("adopt {}", entry.node),
            Action::LeftAlone { entry, .. } => format!("leave {}", entry.node),
            Action::Delete { node, .. } => format!("delete {node}"),
            Action::Forget { node, .. } => format!("forget {node}"),
        })
        .collect()
}

#[test]
fn an_empty_store_gets_the_config_and_every_node_as_a_guarded_create() {
    let (c, pb) = cluster(TOPO);
    let mut s = snap(vec![], vec![]);
    s.config = None;
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    assert_eq!(kinds(&p), ["config", "create a", "create b"]);
    let txns = p.transactions();
    assert_eq!(txns.len(), 1);
    let (guards, writes) = &txns[0];
    assert!(guards.contains(&Guard::Absent("/p/subnets/10.5.1.0-24".into())));
    assert!(guards.contains(&Guard::Absent("/p/flannel-gen/owned/10.5.1.0-24".into())));
    assert!(writes.contains(&Write::Put {
        key: "/p/subnets/10.5.1.0-24".into(),
        value: value("192.168.1.11", "0a:00:00:00:00:01")
    }));
    assert_eq!(writes.len(), 5);
}

#[test]
fn ownership_needs_our_record_no_lease_and_the_recorded_bytes() {
    let (c, pb) = cluster(TOPO);
    let va = value("192.168.1.11", "0a:00:00:00:00:01");
    let vb = value("192.168.1.12", "0a:00:00:00:00:02");
    let t = target();
    let rec = |n: &str, v: &str, cl: &str| kv(&format!("/p/flannel-gen/owned/{n}"), &record(cl, "x", v), 0, 3);
    // a: ours and unchanged. b: a flanneld lease with the same facts.
    let s = snap(
        vec![kv("/p/subnets/10.5.1.0-24", &va, 0, 2), kv("/p/subnets/10.5.2.0-24", &vb, 77, 4)],
        vec![rec("10.5.1.0-24", &va, "c1")],
    );
    assert_eq!(kinds(&plan(&t, &c, &pb, &s, &[])), ["keep a", "leave b"]);
    assert_eq!(kinds(&plan(&t, &c, &pb, &s, &["b".into()])), ["keep a", "adopt b"]);
    // The same record, but the key has since been given an etcd lease: not ours.
    let s = snap(vec![kv("/p/subnets/10.5.1.0-24", &va, 5, 2)], vec![rec("10.5.1.0-24", &va, "c1")]);
    assert_eq!(kinds(&plan(&t, &c, &pb, &s, &[])), ["leave a", "create b"]);
    // Another cluster's record is never ours.
    let s = snap(vec![kv("/p/subnets/10.5.1.0-24", &va, 0, 2)], vec![rec("10.5.1.0-24", &va, "c2")]);
    assert_eq!(kinds(&plan(&t, &c, &pb, &s, &[])), ["leave a", "create b"]);
    // Our record, edited value with other facts: a conflict, nothing planned to write.
    let edited = value("192.168.1.11", "0a:00:00:00:00:99");
    let s = snap(vec![kv("/p/subnets/10.5.1.0-24", &edited, 0, 2)], vec![rec("10.5.1.0-24", &va, "c1")]);
    let p = plan(&t, &c, &pb, &s, &[]);
    assert_eq!(p.conflicts.len(), 1, "{:?}", p.conflicts);
    assert_eq!(p.writes(), 0);
}

#[test]
fn our_keys_for_removed_nodes_are_deleted_with_their_records() {
    let (c, pb) = cluster(TOPO);
    let old = value("192.168.1.13", "0a:00:00:00:00:03");
    let s = snap(
        vec![kv("/p/subnets/10.5.3.0-24", &old, 0, 2)],
        vec![kv("/p/flannel-gen/owned/10.5.3.0-24", &record("c1", "gone", &old), 0, 3)],
    );
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert_eq!(kinds(&p), ["delete gone", "create a", "create b"]);
    let (guards, writes) = &p.transactions()[0];
    assert_eq!(guards[0], Guard::ModRevision("/p/subnets/10.5.3.0-24".into(), 2));
    assert_eq!(writes[0], Write::Delete { key: "/p/subnets/10.5.3.0-24".into() });
    assert_eq!(writes[1], Write::Delete { key: "/p/flannel-gen/owned/10.5.3.0-24".into() });
}

#[test]
fn overlapping_subnets_and_claimed_public_ips_are_conflicts() {
    let (c, pb) = cluster(TOPO);
    let t = target();
    // A flanneld /25 inside a's /24.
    let s = snap(vec![kv("/p/subnets/10.5.1.128-25", &value("192.168.1.99", "0a:00:00:00:00:09"), 7, 2)], vec![]);
    let p = plan(&t, &c, &pb, &s, &[]);
    assert!(p.conflicts.iter().any(|m| m.contains("overlaps node a")), "{:?}", p.conflicts);
    // A flanneld lease holding b's public IP under another subnet.
    let s = snap(vec![kv("/p/subnets/10.5.9.0-24", &value("192.168.1.12", "0a:00:00:00:00:09"), 7, 2)], vec![]);
    let p = plan(&t, &c, &pb, &s, &[]);
    assert!(p.conflicts.iter().any(|m| m.contains("claims node b's public IP")), "{:?}", p.conflicts);
    assert_eq!(p.writes(), 0);
}

#[test]
fn a_config_for_another_network_or_vni_is_a_conflict() {
    let (c, pb) = cluster(TOPO);
    let mut s = snap(vec![], vec![]);
    s.config = Some(kv("/p/config", r#"{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}"#, 0, 1));
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts[0].contains("IPv4 network is 10.6.0.0/16"), "{:?}", p.conflicts);
    s.config = Some(kv("/p/config", r#"{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}"#, 0, 1));
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts[0].contains("the backend is host-gw"), "{:?}", p.conflicts);
    // DirectRouting differs per node in flanneld too: a warning only.
    s.config =
        Some(kv("/p/config", r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}"#, 0, 1));
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    assert!(p.warnings[0].contains("DirectRouting"), "{:?}", p.warnings);
}

#[test]
fn ipv6_only_clusters_cannot_be_published_to_etcd() {
    let (c, pb) = cluster(
        "version: 1\ncluster: c6\nipv6Network: fd00:5::/56\nbackend:\n  type: vxlan\nnodes:\n  - name: a\n    ip6: fd01::1/64\n",
    );
    let mut s = snap(vec![], vec![]);
    s.config = None;
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts[0].contains("IPv6-only"), "{:?}", p.conflicts);
}

#[test]
fn transactions_stay_within_etcds_operation_limit_without_splitting_a_unit() {
    let spec = crate::synth::SynthSpec {
        nodes: 150,
        backend: crate::topology::BackendKind::Vxlan,
        direct_routing: false,
        segments: 1,
        cluster: "c1".into(),
    };
    let (c, pb) = cluster(&crate::synth::topology_yaml(&spec));
    let mut s = snap(vec![], vec![]);
    s.config = Some(kv("/p/config", &super::super::config::netconf_json(&c), 0, 1));
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let txns = p.transactions();
    assert_eq!(p.writes(), 300);
    assert_eq!(txns.len(), 3);
    for (g, w) in &txns {
        assert!(w.len() <= MAX_TXN_OPS && g.len() <= MAX_TXN_OPS);
        assert_eq!(w.len() % 2, 0, "a key and its record travel together");
    }
}

#[test]
fn a_udp_node_publishes_flanneld_udp_lease_bytes() {
    let (c, pb) = cluster(
        &TOPO
            .replace("type: vxlan", "type: udp")
            .replace("    vtepMAC: \"0a:00:00:00:00:01\"\n", "")
            .replace("    vtepMAC: \"0a:00:00:00:00:02\"\n", ""),
    );
    let mut s = snap(vec![], vec![]);
    s.config = None;
    let p = plan(&target(), &c, &pb, &s, &[]);
    assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
    let Action::CreateConfig { value, .. } = &p.actions[0] else { panic!("{:?}", p.actions) };
    assert!(value.ends_with(r#""Backend":{"Type":"udp","Port":8285}}"#), "{value}");
    let Action::Create(e) = &p.actions[1] else { panic!("{:?}", p.actions) };
    assert_eq!(e.value, r#"{"PublicIP":"192.168.1.11","PublicIPv6":null}"#);
}

/// #30 item 4: a record whose key was deleted by hand (or is garbage) for a
/// wanted node is rewritten with the key, not forgotten in the same
/// transaction (etcd refuses a key twice in one txn).
#[test]
fn a_wanted_key_gone_by_hand_is_recreated_without_touching_its_record_twice() {
    let (c, pb) = cluster(TOPO);
    let t = target();
    let v = value("192.168.1.11", "0a:00:00:00:00:01");
    let records = vec![
        kv("/p/flannel-gen/owned/10.5.1.0-24", &record("c1", "a", &v), 0, 5),
        kv("/p/flannel-gen/owned/10.5.2.0-24", "garbage", 0, 6),
    ];
    let p = plan(&t, &c, &pb, &snap(vec![], records), &[]);
    assert_eq!(kinds(&p), ["create a", "create b"]);
    for (_, writes) in p.transactions() {
        let keys: Vec<&str> = writes
            .iter()
            .map(|w| match w {
                Write::Put { key, .. } | Write::Delete { key } => key.as_str(),
            })
            .collect();
        let unique: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len(), "a key twice in one transaction: {keys:?}");
    }
}

/// A wireguard cluster's config (pkg/backend/wireguard RegisterNetwork's
/// keys) compares clean with itself; another port, or a PSK on one side
/// only, breaks a mixed cluster. A created config never holds the PSK.
#[test]
fn wireguard_configs_carry_the_ports_and_a_psk_is_never_written() {
    let wg = |extra: &str| {
        TOPO.replace("type: vxlan", &format!("type: wireguard{extra}"))
            .replace(
                "    vtepMAC: \"0a:00:00:00:00:01\"\n",
                "    wireguardKey: \"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"\n",
            )
            .replace(
                "    vtepMAC: \"0a:00:00:00:00:02\"\n",
                "    wireguardKey: \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"\n",
            )
    };
    let (c, pb) = cluster(&wg("\n  persistentKeepalive: 25"));
    let mut s = snap(vec![], vec![]);
    s.config = None;
    let p = plan(&target(), &c, &pb, &s, &[]);
    let Action::CreateConfig { value, .. } = &p.actions[0] else { panic!("{:?}", p.actions) };
    assert!(
        value.ends_with(
            r#""Backend":{"Type":"wireguard","ListenPort":51820,"ListenPortV6":51821,"PersistentKeepaliveInterval":25}}"#
        ),
        "{value}"
    );
    assert!(super::super::config::compare("/p/config", value, &c).0.is_empty());
    let (other_port, _) = cluster(&wg("\n  port: 51900"));
    let (errors, _) = super::super::config::compare("/p/config", value, &other_port);
    assert_eq!(errors, ["/p/config: the wireguard port is 51820, the topology's is 51900"]);
    let (with_psk, pb) = cluster(&wg("\n  pskFile: /etc/flannel-gen/psk"));
    let (errors, _) = super::super::config::compare("/p/config", value, &with_psk);
    assert_eq!(errors, ["/p/config: the pre-shared key (PSK) is unset, the topology's is set"]);
    let p = plan(&target(), &with_psk, &pb, &s, &[]);
    assert!(p.warnings.iter().any(|w| w.contains("written without `PSK`")), "{:?}", p.warnings);
    let Action::CreateConfig { value, .. } = &p.actions[0] else { panic!("{:?}", p.actions) };
    assert!(!value.contains("PSK") && !value.contains("psk"), "{value}");
}
