//! The command-line contract: exit codes, located errors, plan output, lock workflow.

mod common;

use std::fs;

use common::{code, root, run, stderr, stdout};

#[test]
fn examples_validate() {
    let out = run(&[
        "validate",
        "examples/vxlan-3node.yaml",
        "examples/hostgw-3node.yaml",
        "examples/vxlan-directrouting.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
    assert!(stderr(&out).is_empty(), "examples have fresh locks: {}", stderr(&out));
}

#[test]
fn plan_json_lists_neigh_fdb_route_per_peer() {
    let out = run(&["plan", "examples/vxlan-3node.yaml", "--node", "node-1", "--format", "json", "--locked"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["formatVersion"], 1);
    assert_eq!(v["subnet"], "10.244.1.0/24");
    assert_eq!(v["gateway"], "10.244.1.1");
    assert_eq!(v["mtu"], 1450);
    assert_eq!(v["vxlan"]["name"], "flannel.1");
    assert_eq!(v["vxlan"]["address"], "10.244.1.0/32");
    assert_eq!(v["vxlan"]["local"], "192.168.31.61");
    assert_eq!(v["vxlan"]["learning"], false);
    let peers = v["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 2);
    let lock = fs::read_to_string(root().join("examples/vxlan-3node.lock")).expect("lock");
    for (p, (name, ip, subnet, gw)) in peers.iter().zip([
        ("node-2", "192.168.31.62", "10.244.2.0/24", "10.244.2.0"),
        ("node-3", "192.168.31.63", "10.244.3.0/24", "10.244.3.0"),
    ]) {
        assert_eq!(p["node"], name);
        let mac = p["neighbour"]["lladdr"].as_str().expect("mac");
        assert!(lock.contains(&format!("vtepMAC: \"{mac}\"")), "peer MAC {mac} is the locked one");
        assert_eq!(p["neighbour"]["ip"], gw);
        assert_eq!(p["neighbour"]["dev"], "flannel.1");
        assert_eq!(p["fdb"]["lladdr"], mac);
        assert_eq!(p["fdb"]["dst"], ip);
        assert_eq!(p["route"]["dst"], subnet);
        assert_eq!(p["route"]["via"], gw);
        assert_eq!(p["route"]["dev"], "flannel.1");
        assert_eq!(p["route"]["onlink"], true);
    }
}

#[test]
fn plan_text_reads_like_ip() {
    let out = run(&["plan", "examples/hostgw-3node.yaml", "--node", "node-2"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(text.contains("route 10.244.1.0/24 via 192.168.31.61 dev eth0\n"), "{text}");
    assert!(!text.contains("flannel.1"), "host-gw has no VXLAN device: {text}");
}

#[test]
fn directrouting_splits_by_segment() {
    let out = run(&["plan", "examples/vxlan-directrouting.yaml", "--node", "rack1-a", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let paths: Vec<(&str, &str)> = v["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| (p["node"].as_str().unwrap_or(""), p["path"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(paths, [("rack1-b", "host-gw"), ("rack2-a", "vxlan"), ("rack2-b", "vxlan")]);
}

#[test]
fn unknown_node_is_bad_input_with_a_suggestion() {
    let out = run(&["plan", "examples/vxlan-3node.yaml", "--node", "node-4x"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no node `node-4x`"), "{}", stderr(&out));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&run(&["plan", "examples/vxlan-3node.yaml"])), 2);
    assert_eq!(code(&run(&["frobnicate"])), 2);
    assert_eq!(code(&run(&["--help"])), 0);
}

/// A scratch copy of an example (topology and lock) to edit.
fn scratch(example: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("t.yaml");
    fs::copy(root().join(format!("examples/{example}.yaml")), &topo).expect("copy");
    fs::copy(root().join(format!("examples/{example}.lock")), dir.path().join("t.lock")).expect("copy lock");
    (dir, topo)
}

#[test]
fn locked_fails_on_missing_and_stale_lock() {
    let (dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    assert_eq!(code(&run(&["validate", "--locked", t])), 0);

    let mut y = fs::read_to_string(&topo).expect("read");
    y.push_str("  - name: node-0\n    ip: 192.168.31.60/24\n");
    fs::write(&topo, &y).expect("write");
    let out = run(&["plan", t, "--node", "node-0", "--locked"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("stale") && stderr(&out).contains("flannel-gen lock"), "{}", stderr(&out));

    // Without --locked it still plans, and warns.
    let out = run(&["plan", t, "--node", "node-0"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("warning:"), "{}", stderr(&out));

    fs::remove_file(dir.path().join("t.lock")).expect("rm");
    let out = run(&["validate", "--locked", t]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn lock_check_and_stability_when_a_node_is_added_first() {
    let (dir, topo) = scratch("vxlan-3node");
    let t = topo.to_str().expect("utf8");
    assert_eq!(code(&run(&["lock", "--check", t])), 0);
    let before = fs::read_to_string(dir.path().join("t.lock")).expect("lock");

    // A new node at the head of the list must not move the others.
    let y = fs::read_to_string(&topo)
        .expect("read")
        .replace("nodes:\n", "nodes:\n  - name: node-0\n    ip: 192.168.31.60/24\n");
    fs::write(&topo, y).expect("write");
    let out = run(&["lock", "--check", t]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("+  node-0:"), "{}", stdout(&out));
    assert_eq!(fs::read_to_string(dir.path().join("t.lock")).expect("lock"), before, "--check writes nothing");

    assert_eq!(code(&run(&["lock", t])), 0);
    let after = fs::read_to_string(dir.path().join("t.lock")).expect("lock");
    for line in before.lines().filter(|l| l.contains("subnet:") || l.contains("vtepMAC:")) {
        assert!(after.contains(line), "lease line {line:?} kept");
    }
    assert!(after.contains("subnet: 10.244.4.0/24"), "{after}");
    assert_eq!(code(&run(&["lock", "--check", t])), 0);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left");
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(code(&out), 0);
        assert!(stdout(&out).contains("validate"), "{shell}");
    }
}

#[test]
fn generated_topology_of_5000_nodes_is_valid_and_plans() {
    let out = run(&["generate", "--nodes", "5000"]);
    assert_eq!(code(&out), 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let topo = dir.path().join("big.yaml");
    fs::write(&topo, &out.stdout).expect("write");
    let t = topo.to_str().expect("utf8");
    let out = run(&["plan", t, "--node", "node-5000", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["peers"].as_array().map(Vec::len), Some(4999));
}
