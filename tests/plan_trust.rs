//! plan.json is input, not trusted: one validating reader refuses a hostile
//! or inconsistent plan (exit 2, located at the JSON path of the offending
//! value) before anything touches the kernel. Needs root for the namespace
//! checks; the refusals themselves are checked without it too.

mod common;

use std::path::Path;

use common::netns::{Netns, flannel_state, root_or_skip};
use common::{code, run, stderr, stdout};

const TOPO: &str = "examples/vxlan-3node.yaml";

/// The real plan of node-1, as JSON to edit.
fn plan() -> serde_json::Value {
    let o = run(&["plan", TOPO, "--node", "node-1", "--format", "json", "--locked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// Each hostile edit, and what the reader must say about it.
fn hostile() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    let mut cases = Vec::new();
    let mut p = plan();
    p["sysctls"][0]["key"] = "../../../tmp/flannel-gen-escape".into();
    cases.push((
        "escaping sysctl key",
        p,
        "sysctls[0].key: `../../../tmp/flannel-gen-escape` is not a setting this plan's devices call for",
    ));
    let mut p = plan();
    p["uplink"]["name"] = "flannel.1".into();
    cases.push((
        "device named as the uplink",
        p,
        "uplink.name: `flannel.1` is the device flannel-gen creates for the overlay",
    ));
    let mut p = plan();
    p["peers"][0]["subnet"] = "0.0.0.0/0".into();
    cases.push((
        "default-route destination",
        p,
        "peers[0].subnet: 0.0.0.0/0 is not a /24 subnet of the network 10.244.0.0/16",
    ));
    let mut p = plan();
    p["peers"][1]["vtepMAC"] = "01:00:5e:00:00:01".into();
    cases.push(("multicast MAC", p, "peers[1].vtepMAC: 01:00:5e:00:00:01 is not a unicast address"));
    let mut p = plan();
    p["peers"][1]["subnet"] = "10.99.3.0/24".into();
    cases.push((
        "peer outside the network",
        p,
        "peers[1].subnet: 10.99.3.0/24 is not a /24 subnet of the network 10.244.0.0/16",
    ));
    let mut p = plan();
    p["peers"][0]["subnet"] = "10.244.1.0/24".into();
    cases.push(("route over the node's own subnet", p, "peers[0].subnet: 10.244.1.0/24 is this node's own subnet"));
    let mut p = plan();
    p["peers"][0]["publicIP"] = "192.168.31.61".into();
    cases.push((
        "peer at the node's own address",
        p,
        "peers[0].publicIP: 192.168.31.61 is this node's own underlay address (192.168.31.61/24)",
    ));
    let mut p = plan();
    p["peers"][0]["publicIP"] = "192.168.31.255".into();
    cases.push((
        "peer at the segment's broadcast address",
        p,
        "peers[0].publicIP: 192.168.31.255 is the broadcast address of this node's underlay 192.168.31.0/24",
    ));
    let mut p = plan();
    p["peers"][1]["publicIP"] = p["peers"][0]["publicIP"].clone();
    cases.push(("two peers at one address", p, "peers[1].publicIP: 192.168.31.62 is node `node-2`'s address too"));
    let mut p = plan();
    p["peers"][0]["publicIP"] = "224.0.0.1".into();
    cases.push(("multicast gateway", p, "peers[0].publicIP: 224.0.0.1 is a multicast address"));
    let mut p = plan();
    p["backend"] = serde_json::json!({"type": "host-gw"});
    p["mtu"] = 1500.into();
    cases.push((
        "vxlan peer without a device",
        p,
        "peers[0].path: a host-gw plan has no VXLAN device to reach a vxlan peer",
    ));
    cases
}

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let f = dir.join(format!("{}.json", name.replace(' ', "-")));
    std::fs::write(&f, serde_json::to_string_pretty(v).expect("json")).expect("write");
    f.to_string_lossy().into_owned()
}

#[test]
fn hostile_plans_are_refused_with_the_json_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (what, p, want) in hostile() {
        let f = write(dir.path(), what, &p);
        let o = run(&["apply", "--plan", &f, "--dry-run"]);
        assert_eq!(code(&o), 2, "{what}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(want), "{what}: wants {want:?}, got:\n{}", stderr(&o));
        // Located: FILE:LINE:COL of the offending value.
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        let loc: Vec<&str> = first.splitn(4, ':').collect();
        assert!(loc[1].parse::<u32>().is_ok() && loc[2].parse::<u32>().is_ok(), "{what}: not located: {first}");
        // diff reads plans through the same reader.
        let o = run(&["diff", &f, &f]);
        assert_eq!(code(&o), 2, "{what}: diff must refuse it too");
    }
}

#[test]
fn hostile_plans_leave_the_namespace_byte_for_byte_unchanged() {
    if !root_or_skip("hostile_plans_leave_the_namespace_byte_for_byte_unchanged") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = Netns::node("trust", Some("192.168.31.61/24"));
    let snapshot = |ns: &Netns| {
        let sysctls: Vec<String> = ["net/ipv4/ip_forward", "net/ipv4/conf/eth0/rp_filter"]
            .iter()
            .map(|k| {
                let out = common::netns::must(&mut ns.exec("cat", &[&format!("/proc/sys/{k}")]));
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect();
        format!("{}\n{}\n{}\n{sysctls:?}", flannel_state(ns, &["flannel.1"]), ns.ip(&["-d", "link"]), ns.ip(&["neigh"]))
    };
    let before = snapshot(&ns);
    for (what, p, _) in hostile() {
        let f = write(dir.path(), what, &p);
        let o = run(&["apply", "--plan", &f, "--netns", &ns.name]);
        assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
        assert_eq!(snapshot(&ns), before, "{what}: the namespace changed");
    }
    assert!(!Path::new("/tmp/flannel-gen-escape").exists(), "the escaping sysctl wrote outside /proc/sys");
    // And the untouched plan does apply there: the refusals were about the plan.
    let f = write(dir.path(), "good", &plan());
    assert_eq!(code(&run(&["apply", "--plan", &f, "--netns", &ns.name])), 0);
}

#[test]
fn an_old_or_garbled_plan_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = plan();
    p["formatVersion"] = 1.into();
    p["vxlan"] = serde_json::json!({"name": "flannel.1"});
    let f = write(dir.path(), "old", &p);
    let o = run(&["apply", "--plan", &f, "--dry-run"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("formatVersion: formatVersion 1 is not 2; render the plan again"), "{}", stderr(&o));

    let mut p = plan();
    p["peers"][0]["subnet"] = 7.into();
    let f = write(dir.path(), "typed", &p);
    let o = run(&["apply", "--plan", &f, "--dry-run"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o)
            .contains("typed.json:26:17: error: peers[0].subnet: not a flannel-gen plan: invalid type: integer `7`"),
        "located at the value: {}",
        stderr(&o)
    );
}
