//! import/publish against a real etcd (Debian etcd-server 3.4, started per
//! test). Leases are written by `etcdctl` the way flanneld writes them, in
//! the bytes of flannel's source: the value is Go's `json.Marshal` of
//! `lease.LeaseAttrs` (pkg/lease/lease.go) with vxlan's `vxlanLeaseAttrs`
//! (pkg/backend/vxlan/vxlan_network.go) as BackendData; keys come from
//! `MakeSubnetKey` (pkg/subnet/subnet.go); flanneld attaches a 24 h etcd
//! lease (pkg/subnet/etcd/local_manager.go `subnetTTL`), a reservation has
//! none (Documentation/reservations.md).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::etcd::Etcd;
use common::{code, run, stderr, stdout};
use serde_json::Value;

/// The seeds' `FLANNEL_ETCD_PREFIX`.
const PREFIX: &str = "/atomic.io/network";
/// The seeds' `etcdctl mk /atomic.io/network/config`, with the vxlan backend.
const CONFIG: &str = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#;
/// Verbatim from flannel's Documentation/reservations.md (`etcdctl get` of a
/// key flanneld wrote).
const DOC_LEASE: &str = r#"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#;
const DAY: u64 = 86400;

/// A flanneld vxlan lease value for an IPv4-only node (lease.go field order;
/// PublicIPv6 is a pointer without omitempty, so `null`).
fn vxlan_lease(ip: &str, mac: &str) -> String {
    format!(
        r#"{{"PublicIP":"{ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#
    )
}

fn etcd_or_skip(test: &str) -> bool {
    let have = std::process::Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("FLANNEL_GEN_E2E").as_deref() == Ok("require") {
            panic!("{test}: needs etcd (Debian etcd-server) (FLANNEL_GEN_E2E=require)");
        }
        eprintln!("SKIPPED {test}: needs etcd and etcdctl (apt install etcd-server etcd-client)");
    }
    have
}

fn key(subnet: &str) -> String {
    format!("{PREFIX}/subnets/{subnet}")
}

/// The seeds' cluster as flanneld left it: three vxlan nodes (two on 24 h
/// leases, one reservation) and a host-gw lease of a node on another backend.
fn seed(e: &Etcd) {
    e.put(&format!("{PREFIX}/config"), CONFIG);
    e.put_leased(&key("10.5.52.0-24"), DOC_LEASE, DAY);
    e.put_leased(&key("10.5.7.0-24"), &vxlan_lease("192.168.64.4", "0a:58:0a:05:07:01"), DAY);
    e.put(&key("10.5.9.0-24"), &vxlan_lease("192.168.64.5", "0a:58:0a:05:09:01"));
    e.put_leased(&key("10.5.11.0-24"), r#"{"PublicIP":"192.168.64.6","PublicIPv6":null,"BackendType":"host-gw"}"#, DAY);
}

/// The vxlan leases of `seed`: subnet -> (public IP, VTEP MAC).
fn seeded() -> BTreeMap<String, (String, String)> {
    [
        ("10.5.52.0/24", "192.168.64.3", "c6:d2:32:6f:8f:44"),
        ("10.5.7.0/24", "192.168.64.4", "0a:58:0a:05:07:01"),
        ("10.5.9.0/24", "192.168.64.5", "0a:58:0a:05:09:01"),
    ]
    .into_iter()
    .map(|(s, ip, mac)| (s.to_string(), (ip.to_string(), mac.to_string())))
    .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn import(e: &Etcd, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["import", "etcd", "--endpoints", &e.url, "--prefix", PREFIX, "--cluster", "seed", "--out", s(out)];
    args.extend_from_slice(extra);
    run(&args)
}

fn plan_json(topo: &Path, node: &str) -> Value {
    let o = run(&["plan", s(topo), "--node", node, "--format", "json", "--locked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("plan.json")
}

/// What one node's plan says of every node: subnet -> (public IP, VTEP MAC).
fn plan_view(p: &Value) -> BTreeMap<String, (String, String)> {
    let mut view: BTreeMap<String, (String, String)> = p["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|x| {
            let f = |k: &str| x[k].as_str().expect(k).to_string();
            (f("subnet"), (f("publicIP"), f("vtepMAC")))
        })
        .collect();
    let own_ip = p["uplink"]["ipv4"].as_str().expect("ip").split('/').next().expect("addr").to_string();
    let own = (own_ip, p["ipv4"]["vtepMAC"].as_str().expect("mac").to_string());
    view.insert(p["ipv4"]["subnet"].as_str().expect("subnet").to_string(), own);
    view
}

#[test]
fn import_reproduces_the_leases_flanneld_wrote() {
    if !etcd_or_skip("import_reproduces_the_leases_flanneld_wrote") {
        return;
    }
    let e = Etcd::start();
    seed(&e);
    let dir = tempfile::tempdir().expect("tmp");
    let names = dir.path().join("names");
    std::fs::write(&names, "# public IP -> node\n192.168.64.3 node-a\n192.168.64.4/24 node-b\n").expect("names");
    let topo = dir.path().join("cluster.yaml");
    let o = import(&e, &topo, &["--names", s(&names), "--underlay-prefix", "24", "--interface", "ens3"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // The host-gw lease is reported, not imported (flanneld's vxlan backend skips it too).
    assert!(stderr(&o).contains("10.5.11.0-24") && stderr(&o).contains("host-gw"), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 3 nodes"), "{}", stdout(&o));

    let v = run(&["validate", "--locked", s(&topo)]);
    assert_eq!(code(&v), 0, "validate --locked: {}{}", stdout(&v), stderr(&v));
    let text = std::fs::read_to_string(&topo).expect("topology");
    assert!(text.contains("interface: ens3") && text.contains("ipMasq: false"), "{text}");
    let want = seeded();
    for node in ["node-a", "node-b", "ip-192-168-64-5"] {
        let p = plan_json(&topo, node);
        assert_eq!(plan_view(&p), want, "plan of {node} differs from the leases");
        assert_eq!(p["backend"]["vni"], 1);
        assert_eq!(p["uplink"]["name"], "ens3");
    }
    // Re-importing over it needs --force; the same store gives the same bytes.
    let again = import(&e, &topo, &["--names", s(&names), "--underlay-prefix", "24", "--interface", "ens3"]);
    assert_eq!(code(&again), 2, "{}", stderr(&again));
    let forced =
        import(&e, &topo, &["--names", s(&names), "--underlay-prefix", "24", "--interface", "ens3", "--force"]);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert_eq!(std::fs::read_to_string(&topo).expect("topology"), text);
}

#[test]
fn dual_stack_leases_import_both_families() {
    if !etcd_or_skip("dual_stack_leases_import_both_families") {
        return;
    }
    let e = Etcd::start();
    e.put(
        &format!("{PREFIX}/config"),
        r#"{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"vxlan"}}"#,
    );
    // Dual-stack key (MakeSubnetKey with an IPv6 subnet) and both data members.
    for (i, (v4, v6)) in [("10.5.1.0-24", "fd00:5:0:1::-64"), ("10.5.2.0-24", "fd00:5:0:2::-64")].iter().enumerate() {
        let n = i + 1;
        let value = format!(
            r#"{{"PublicIP":"192.168.70.{n}","PublicIPv6":"fd70::{n}","BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"0a:00:00:00:04:0{n}"}},"BackendV6Data":{{"VNI":1,"VtepMAC":"0a:00:00:00:06:0{n}"}}}}"#
        );
        e.put_leased(&key(&format!("{v4}&{v6}")), &value, DAY);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("ds.yaml");
    let o = import(&e, &topo, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let p = plan_json(&topo, "ip-192-168-70-1");
    assert_eq!(p["ipv6"]["subnet"], "fd00:5:0:1::/64");
    assert_eq!(p["ipv6"]["vtepMAC"], "0a:00:00:00:06:01");
    assert_eq!(p["uplink"]["ipv6"], "fd70::1/64");
    let v6peer =
        p["peers"].as_array().expect("peers").iter().find(|x| x["subnet"] == "fd00:5:0:2::/64").expect("v6 peer");
    assert_eq!((v6peer["publicIP"].as_str(), v6peer["vtepMAC"].as_str()), (Some("fd70::2"), Some("0a:00:00:00:06:02")));
}

/// The seeded store imported into DIR/cluster.yaml, plus a new flannel-gen
/// node fg-1 pinned clear of the host-gw lease's subnet, locked.
fn seeded_with_new_node(e: &Etcd, dir: &Path) -> std::path::PathBuf {
    seed(e);
    let topo = dir.join("cluster.yaml");
    assert_eq!(code(&import(e, &topo, &[])), 0);
    let mut text = std::fs::read_to_string(&topo).expect("topology");
    text.push_str("  - name: fg-1\n    ip: 192.168.64.21/24\n    subnet: 10.5.21.0/24\n");
    std::fs::write(&topo, text).expect("write");
    assert_eq!(code(&run(&["lock", s(&topo)])), 0);
    topo
}

#[test]
fn publish_writes_flanneld_bytes_and_never_touches_others() {
    if !etcd_or_skip("publish_writes_flanneld_bytes_and_never_touches_others") {
        return;
    }
    let (e, dir) = (Etcd::start(), tempfile::tempdir().expect("tmp"));
    let topo = seeded_with_new_node(&e, dir.path());
    let mac = plan_json(&topo, "fg-1")["ipv4"]["vtepMAC"].as_str().expect("mac").to_string();

    let before = e.dump(PREFIX);
    let args = ["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX];
    let dry = run(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(code(&dry), 1, "{}{}", stdout(&dry), stderr(&dry));
    assert!(stdout(&dry).contains(&format!("create  {}", key("10.5.21.0-24"))), "{}", stdout(&dry));
    assert_eq!(e.dump(PREFIX), before, "--dry-run wrote");

    let o = run(&args);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(PREFIX);
    // The new key: flanneld's key format and value bytes, with no etcd lease.
    let (value, lease, _) = after.get(&key("10.5.21.0-24")).expect("published key").clone();
    assert_eq!(value, vxlan_lease("192.168.64.21", &mac));
    assert_eq!(lease, 0, "a reservation has no TTL");
    // Every key flanneld wrote: same value, same lease, same revision.
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
    let ours: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(ours, [&format!("{PREFIX}/flannel-gen/owned/10.5.21.0-24"), &key("10.5.21.0-24")]);

    // Publishing again writes nothing.
    let again = run(&args);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(e.dump(PREFIX), after);
    assert!(stdout(&again).contains("keep    "), "{}", stdout(&again));
}

#[test]
fn publish_refuses_what_it_does_not_own_and_writes_nothing() {
    if !etcd_or_skip("publish_refuses_what_it_does_not_own_and_writes_nothing") {
        return;
    }
    let (e, dir) = (Etcd::start(), tempfile::tempdir().expect("tmp"));
    let topo = seeded_with_new_node(&e, dir.path());
    let text = std::fs::read_to_string(&topo).expect("topology");
    let args = ["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX];
    assert_eq!(code(&run(&args)), 0);

    // Someone else edits our key, and a flanneld node changes its MAC.
    let edited = vxlan_lease("192.168.64.21", "0a:0a:0a:0a:0a:0a");
    e.put(&key("10.5.21.0-24"), &edited);
    e.put_leased(&key("10.5.7.0-24"), &vxlan_lease("192.168.64.4", "0a:58:0a:05:07:99"), DAY);
    let before = e.dump(PREFIX);
    let o = run(&args);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("10.5.21.0-24") && err.contains("10.5.7.0-24"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(e.dump(PREFIX), before, "a refused publish wrote");

    // Removing fg-1 from the topology does not delete a key that is no longer ours.
    let kept: String = text.lines().take_while(|l| !l.contains("name: fg-1")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&topo, kept).expect("write");
    assert_eq!(code(&run(&["lock", s(&topo)])), 0);
    e.put_leased(&key("10.5.7.0-24"), &vxlan_lease("192.168.64.4", "0a:58:0a:05:07:01"), DAY);
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(PREFIX);
    assert_eq!(after.get(&key("10.5.21.0-24")).map(|v| v.0.as_str()), Some(edited.as_str()));
    assert!(!after.contains_key(&format!("{PREFIX}/flannel-gen/owned/10.5.21.0-24")), "stale record kept");
}

#[test]
fn adopt_turns_a_stopped_flanneld_nodes_lease_into_a_reservation() {
    if !etcd_or_skip("adopt_turns_a_stopped_flanneld_nodes_lease_into_a_reservation") {
        return;
    }
    let e = Etcd::start();
    seed(&e);
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("cluster.yaml");
    assert_eq!(code(&import(&e, &topo, &[])), 0);
    let args = ["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX];
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("leave   "), "{}", stdout(&o));
    let before = e.dump(PREFIX);
    assert_ne!(before[&key("10.5.7.0-24")].1, 0);
    let o = run(&[&args[..], &["--adopt", "ip-192-168-64-4"]].concat());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(PREFIX);
    let (value, lease, _) = &after[&key("10.5.7.0-24")];
    assert_eq!((value, *lease), (&before[&key("10.5.7.0-24")].0, 0), "same bytes, no TTL");
    assert_eq!(after[&key("10.5.52.0-24")], before[&key("10.5.52.0-24")], "only the adopted key changes");
    let unknown = run(&[&args[..], &["--adopt", "nobody"]].concat());
    assert_eq!(code(&unknown), 2, "{}", stderr(&unknown));
}

#[test]
fn config_is_created_when_absent_and_checked_when_present() {
    if !etcd_or_skip("config_is_created_when_absent_and_checked_when_present") {
        return;
    }
    let e = Etcd::start();
    let topo = common::root().join("examples/vxlan-3node.yaml");
    let args = ["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX];
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let config = e.must(&["get", "--print-value-only", &format!("{PREFIX}/config")]);
    // Explicit values only, so flanneld's defaults decide nothing.
    assert_eq!(
        config.trim_end(),
        r#"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}"#
    );
    // A store whose config runs another VNI is refused.
    e.put(&format!("{PREFIX}/config"), r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":2}}"#);
    let before = e.dump(PREFIX);
    let o = run(&args);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("the VNI is 2, the topology's is 1"), "{}", stderr(&o));
    assert_eq!(e.dump(PREFIX), before);
}

#[test]
fn unreachable_etcd_is_exit_3_and_writes_nothing() {
    if !etcd_or_skip("unreachable_etcd_is_exit_3_and_writes_nothing") {
        return;
    }
    let mut e = Etcd::start();
    seed(&e);
    let url = e.url.clone();
    e.stop();
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("cluster.yaml");
    let o = run(&[
        "import",
        "etcd",
        "--endpoints",
        &url,
        "--prefix",
        PREFIX,
        "--cluster",
        "seed",
        "--out",
        s(&topo),
        "--timeout",
        "2",
    ]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains(&format!("cannot reach etcd at {url}")), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0, "files were written");
    let ex = common::root().join("examples/vxlan-3node.yaml");
    let o = run(&["publish", "etcd", s(&ex), "--endpoints", &url, "--timeout", "2"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn a_registry_import_cannot_read_fully_writes_nothing() {
    if !etcd_or_skip("a_registry_import_cannot_read_fully_writes_nothing") {
        return;
    }
    let e = Etcd::start();
    seed(&e);
    e.put(&key("10.5.13.0-24"), r#"{"PublicIP":"192.168.64.300","BackendType":"vxlan","BackendData":{"VNI":1}}"#);
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("cluster.yaml");
    let o = import(&e, &topo, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("etcd:{}:1:13: error: PublicIP:", key("10.5.13.0-24"))), "{err}");
    assert!(err.contains("BackendData: no `VtepMAC`"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    // A prefix with no config says which prefix and what the seeds use.
    let o = run(&["import", "etcd", "--endpoints", &e.url, "--cluster", "seed", "--out", s(&topo)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/coreos.com/network/config") && stderr(&o).contains("/atomic.io/network"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn import_and_publish_over_tls_with_client_certificates() {
    if !etcd_or_skip("import_and_publish_over_tls_with_client_certificates") {
        return;
    }
    let e = Etcd::start_tls();
    seed(&e);
    let t = e.tls.as_ref().expect("tls");
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("cluster.yaml");
    let tls = ["--cacert", s(&t.ca), "--cert", s(&t.client_cert), "--key", s(&t.client_key)];
    let o = import(&e, &topo, &tls);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o =
        run(&[&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX, "--dry-run"][..], &tls]
            .concat());
    assert_eq!(code(&o), 0, "nothing to write: {}{}", stdout(&o), stderr(&o));
    // Without a client certificate the server refuses the handshake.
    let other = dir.path().join("other.yaml");
    let o = import(&e, &other, &["--cacert", s(&t.ca)]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(!other.exists());
}

/// Usage and input errors are exit 2 before any store is contacted (the
/// endpoint here refuses connections: contacting it would be exit 3).
#[test]
fn bad_flags_and_inputs_fail_before_any_store_is_contacted() {
    let url = "http://127.0.0.1:1";
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("c.yaml");
    let base = ["import", "etcd", "--endpoints", url, "--cluster", "c", "--out", s(&out)];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--prefix", "atomic.io/network"], "must be an absolute key path"),
        (vec!["--cacert", "/nonexistent.pem"], "need https:// endpoints"),
        (vec!["--cert", "/x.pem"], "--key"),
        (vec!["--underlay-prefix", "33"], "underlay-prefix"),
    ];
    for (extra, want) in cases {
        let o = run(&[&base[..], &extra].concat());
        assert_eq!(code(&o), 2, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
    let names = dir.path().join("names");
    std::fs::write(&names, "10.0.0.1 a\n10.0.0.300 b\n").expect("names");
    let o = run(&[&base[..], &["--names", s(&names)]].concat());
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{}:2:1: error:", names.display())), "{}", stderr(&o));
    std::fs::write(&out, "").expect("existing");
    let o = run(&base);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --force"), "{}", stderr(&o));
    // publish needs an up-to-date lock: a topology without one is refused.
    let topo = dir.path().join("t.yaml");
    std::fs::copy(common::root().join("examples/vxlan-3node.yaml"), &topo).expect("copy");
    let o = run(&["publish", "etcd", s(&topo), "--endpoints", url]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("lock file is missing"), "{}", stderr(&o));
    assert!(std::fs::read_dir(dir.path()).expect("dir").count() == 3, "nothing else written");
}

/// The keys under `subnets/` that flannel-gen holds (lease 0, not seeded)
/// without their ownership record: what a lost race would leave.
fn keys_without_records(e: &Etcd, seeded: &BTreeMap<String, (String, i64, i64)>) -> Vec<String> {
    let now = e.dump(PREFIX);
    let subnets = format!("{PREFIX}/subnets/");
    now.keys()
        .filter(|k| k.starts_with(&subnets) && !seeded.contains_key(*k))
        .filter(|k| !now.contains_key(&k.replace("/subnets/", "/flannel-gen/owned/")))
        .cloned()
        .collect()
}

/// #30 item 4: publishes racing one another (one adds nodes, the other
/// removes them) never leave a key without its record, and a later publish
/// converges; so does one after an owned key was deleted by hand or its
/// record replaced by garbage.
#[test]
fn publish_converges_after_races_and_hand_edits() {
    if !etcd_or_skip("publish_converges_after_races_and_hand_edits") {
        return;
    }
    let (e, dir) = (Etcd::start(), tempfile::tempdir().expect("tmp"));
    let small = seeded_with_new_node(&e, dir.path());
    let seeded: BTreeMap<_, _> =
        e.dump(PREFIX).into_iter().filter(|(k, _)| !k.contains("/flannel-gen/") && !k.contains("10.5.21.0")).collect();
    let big = dir.path().join("big.yaml");
    let mut text = std::fs::read_to_string(&small).expect("topology");
    for i in 30..40 {
        text.push_str(&format!("  - name: fg-{i}\n    ip: 192.168.64.{i}/24\n    subnet: 10.5.{i}.0/24\n"));
    }
    std::fs::write(&big, text).expect("write");
    assert_eq!(code(&run(&["lock", s(&big)])), 0);
    let publish = |topo: &Path| {
        common::bin()
            .args(["publish", "etcd", s(topo), "--endpoints", &e.url, "--prefix", PREFIX])
            .current_dir(common::root())
            .output()
            .expect("run")
    };
    for round in 0..8 {
        let (a, b) = std::thread::scope(|sc| {
            let a = sc.spawn(|| publish(&big));
            let b = sc.spawn(|| publish(&small));
            (a.join().expect("a"), b.join().expect("b"))
        });
        for o in [&a, &b] {
            assert!(matches!(code(o), 0 | 3), "round {round}: {}{}", stdout(o), stderr(o));
        }
        assert_eq!(keys_without_records(&e, &seeded), Vec::<String>::new(), "round {round}");
    }
    let o = publish(&big);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // An owned key deleted by hand, another's record turned to garbage.
    e.must(&["del", &key("10.5.30.0-24")]);
    e.put(&format!("{PREFIX}/flannel-gen/owned/10.5.31.0-24"), "garbage");
    e.must(&["del", &key("10.5.31.0-24")]);
    let o = publish(&big);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(&format!("create  {}", key("10.5.30.0-24"))), "{}", stdout(&o));
    assert_eq!(keys_without_records(&e, &seeded), Vec::<String>::new());
    let again = publish(&big);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(!stdout(&again).contains("create") && !stdout(&again).contains("committed"), "{}", stdout(&again));
}

/// Peak resident memory of a finished child, from wait4's rusage, in KiB.
fn run_measured(args: &[&str]) -> (std::process::ExitStatus, i64) {
    let child = common::bin()
        .args(args)
        .current_dir(common::root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills; status likewise.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose Child handle is not waited on again.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    (std::os::unix::process::ExitStatusExt::from_raw(status), usage.ru_maxrss)
}

/// #30 item 4: publishing 5000 nodes stays under 200 MB (plans are built
/// one at a time; each holds every peer).
#[test]
fn publishing_5000_nodes_stays_under_200_mb() {
    if !etcd_or_skip("publishing_5000_nodes_stays_under_200_mb") {
        return;
    }
    let (e, dir) = (Etcd::start(), tempfile::tempdir().expect("tmp"));
    let topo = dir.path().join("big.yaml");
    let generated = run(&["generate", "--nodes", "5000"]);
    assert_eq!(code(&generated), 0);
    std::fs::write(&topo, &generated.stdout).expect("write");
    assert_eq!(code(&run(&["lock", s(&topo)])), 0);
    let (status, kib) = run_measured(&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX]);
    assert!(status.success(), "{status}");
    eprintln!("publish of 5000 nodes: peak RSS {} MiB", kib / 1024);
    assert!(kib < 200 * 1024, "peak RSS {kib} KiB");
    let keys = e.dump(PREFIX).keys().filter(|k| k.contains("/subnets/")).count();
    assert_eq!(keys, 5000);
}

/// flanneld's aws-vpc leases (flannel v0.19 backend/awsvpc/awsvpc.go
/// acquires `LeaseAttrs{PublicIP}`: no BackendType, no data) and config
/// (`RouteTableID` a string): import needs each node's instance from the
/// names file, and publish writes a new node's lease in the same bytes.
#[test]
fn aws_vpc_leases_import_with_instances_and_publish_flanneld_bytes() {
    if !etcd_or_skip("aws_vpc_leases_import_with_instances_and_publish_flanneld_bytes") {
        return;
    }
    let (e, dir) = (Etcd::start(), tempfile::tempdir().expect("tmp"));
    e.put(
        &format!("{PREFIX}/config"),
        r#"{"Network":"10.5.0.0/16","Backend":{"Type":"aws-vpc","RouteTableID":"rtb-0a1b2c3d"}}"#,
    );
    let lease = |ip: &str| format!(r#"{{"PublicIP":"{ip}","PublicIPv6":null}}"#);
    e.put_leased(&key("10.5.52.0-24"), &lease("172.31.16.11"), DAY);
    e.put_leased(&key("10.5.7.0-24"), &lease("172.31.16.12"), DAY);
    let topo = dir.path().join("cluster.yaml");

    // Without the instances the import is refused, and nothing is written.
    let names = dir.path().join("names");
    std::fs::write(&names, "172.31.16.11 node-a i-0000000a\n172.31.16.12 node-b\n").expect("names");
    let o = import(&e, &topo, &["--names", s(&names)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("172.31.16.12: an aws-vpc node needs its instance"), "{}", stderr(&o));
    assert!(!topo.exists());

    std::fs::write(&names, "172.31.16.11 node-a i-0000000a\n172.31.16.12/20 node-b i-0000000b\n").expect("names");
    let o = import(&e, &topo, &["--names", s(&names)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&topo).expect("topology");
    for want in ["type: aws-vpc", "routeTableIDs: [rtb-0a1b2c3d]", "instanceID: i-0000000a", "instanceID: i-0000000b"] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    let plan = plan_json(&topo, "node-b");
    assert_eq!(plan["backend"]["instanceID"], "i-0000000b");
    assert_eq!(plan["ipv4"]["subnet"], "10.5.7.0/24");

    // A flannel-gen node joins: its lease is flanneld's aws-vpc bytes.
    let mut text = text;
    text.push_str("  - name: fg-1\n    ip: 172.31.16.21/20\n    subnet: 10.5.21.0/24\n    instanceID: i-0000000c\n");
    std::fs::write(&topo, text).expect("write");
    assert_eq!(code(&run(&["lock", s(&topo)])), 0);
    let o = run(&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(PREFIX);
    assert_eq!(after[&key("10.5.21.0-24")].0, lease("172.31.16.21"));
}

/// A flanneld wireguard lease for a dual-stack node: `newSubnetAttrs`
/// (pkg/backend/wireguard/wireguard.go) marshals `wireguardLeaseAttrs{PublicKey,
/// Port}` per family, the same key in both, in lease.go's field order.
fn wireguard_lease(ip: &str, ip6: &str, key: &str) -> String {
    format!(
        r#"{{"PublicIP":"{ip}","PublicIPv6":"{ip6}","BackendType":"wireguard","BackendData":{{"PublicKey":"{key}","Port":51820}},"BackendV6Data":{{"PublicKey":"{key}","Port":51821}}}}"#
    )
}

fn public_key() -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let o = run(&["wireguard", "keygen", "--key-file", s(&dir.path().join("k"))]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

/// wireguard leases import with each node's public key (into topology and
/// lock); a new node publishes flanneld's bytes with its own key.
#[test]
fn wireguard_leases_import_with_their_keys_and_publish_flanneld_bytes() {
    if !etcd_or_skip("wireguard_leases_import_with_their_keys_and_publish_flanneld_bytes") {
        return;
    }
    let e = Etcd::start();
    e.put(
        &format!("{PREFIX}/config"),
        r#"{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":25}}"#,
    );
    let keys = [public_key(), public_key()];
    for (i, k) in keys.iter().enumerate() {
        let n = i + 1;
        let value = wireguard_lease(&format!("192.168.70.{n}"), &format!("fd70::{n}"), k);
        e.put_leased(&key(&format!("10.5.{n}.0-24&fd00:5:0:{n}::-64")), &value, DAY);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("wg.yaml");
    let o = import(&e, &topo, &[]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let lock = std::fs::read_to_string(topo.with_extension("lock")).expect("lock");
    assert!(keys.iter().all(|k| lock.contains(&format!("wireguardKey: \"{k}\""))), "{lock}");
    let p = plan_json(&topo, "ip-192-168-70-1");
    assert_eq!(p["backend"]["publicKey"], keys[0].as_str());
    assert_eq!(p["backend"]["persistentKeepalive"], 25);
    let peers = p["peers"].as_array().expect("peers");
    assert!(peers.iter().all(|x| x["publicKey"] == keys[1].as_str()), "{peers:?}");

    // A new node with its own key: publish writes flanneld's bytes for it
    // and keeps the leases flanneld wrote.
    let new_key = public_key();
    let mut text = std::fs::read_to_string(&topo).expect("topology");
    text.push_str("  - name: fg-3\n    ip: 192.168.70.3/24\n    ip6: fd70::3/64\n");
    std::fs::write(&topo, text).expect("write");
    let o = run(&["lock", s(&topo), "--wireguard-key", &format!("fg-3={new_key}")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = e.dump(PREFIX);
    let o = run(&["publish", "etcd", s(&topo), "--endpoints", &e.url, "--prefix", PREFIX]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let after = e.dump(PREFIX);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} changed");
    }
    let p3 = plan_json(&topo, "fg-3");
    let (s4, s6) = (p3["ipv4"]["subnet"].as_str().expect("v4"), p3["ipv6"]["subnet"].as_str().expect("v6"));
    let new = key(&format!("{}&{}", s4.replace('/', "-"), s6.replace('/', "-")));
    let (value, _, _) = after.get(&new).unwrap_or_else(|| panic!("{new} published: {after:?}")).clone();
    assert_eq!(value, wireguard_lease("192.168.70.3", "fd70::3", &new_key));
}
