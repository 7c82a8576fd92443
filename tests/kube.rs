//! import/publish for flanneld's kube subnet manager. The fixture is
//! `kubectl get nodes -o json` of a kube-flannel cluster; the annotation
//! names are flannel's pkg/subnet/kube/annotations.go and the values what
//! `AcquireLease` in pkg/subnet/kube/kube.go writes (backend-data is the
//! vxlan lease JSON, `null` for host-gw; kube-subnet-manager "true").

mod common;

use std::path::Path;

use common::{code, root, run, stderr, stdout};
use serde_json::Value;

fn fixture(name: &str) -> String {
    root().join("tests/fixtures").join(name).to_string_lossy().into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn import(nodes: &str, out: &Path) -> std::process::Output {
    let conf = fixture("kube-net-conf.json");
    run(&["import", "kube", nodes, "--net-conf", &conf, "--cluster", "kube", "--out", s(out), "--ip-masq", "true"])
}

fn plan(topo: &Path, node: &str) -> Value {
    let o = run(&["plan", s(topo), "--node", node, "--format", "json", "--locked"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("plan.json")
}

#[test]
fn node_objects_import_as_the_nodes_flanneld_routes_to() {
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("k.yaml");
    let o = import(&fixture("kube-nodes.json"), &topo);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Node worker-new: no spec.podCIDR yet"), "{err}");
    assert!(err.contains("Node windows-1: no `flannel.alpha.coreos.com/kube-subnet-manager"), "{err}");
    let p = plan(&topo, "cp-1");
    assert_eq!(p["ipv4"]["subnet"], "10.244.0.0/24");
    assert_eq!(p["ipv4"]["vtepMAC"], "4e:d2:0b:8c:19:a1");
    let peers = p["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(
        (&peers[0]["node"], &peers[0]["subnet"], &peers[0]["publicIP"], &peers[0]["vtepMAC"]),
        (
            &Value::from("worker-1"),
            &Value::from("10.244.1.0/24"),
            &Value::from("192.168.56.12"),
            &Value::from("b2:1f:6e:02:3d:77")
        )
    );
    assert_eq!(code(&run(&["validate", "--locked", s(&topo)])), 0);
}

#[test]
fn published_patches_carry_flanneld_annotations_and_import_back_unchanged() {
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("k.yaml");
    assert_eq!(code(&import(&fixture("kube-nodes.json"), &topo)), 0);
    // flanneld never writes spec.podCIDR (kube.go reads it: "pod cidr not
    // assigned"), so neither does publish unless asked.
    let plain: Value =
        serde_json::from_str(&stdout(&run(&["publish", "kube", s(&topo), "--format", "json"]))).expect("List");
    assert!(plain["items"].as_array().expect("items").iter().all(|n| n.get("spec").is_none()), "{plain}");
    let o = run(&["publish", "kube", s(&topo), "--format", "json", "--pod-cidr"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("List");
    let worker = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|n| n["metadata"]["name"] == "worker-1")
        .expect("worker-1");
    let ann = &worker["metadata"]["annotations"];
    assert_eq!(ann["flannel.alpha.coreos.com/backend-data"], r#"{"VNI":1,"VtepMAC":"b2:1f:6e:02:3d:77"}"#);
    assert_eq!(ann["flannel.alpha.coreos.com/backend-type"], "vxlan");
    assert_eq!(ann["flannel.alpha.coreos.com/kube-subnet-manager"], "true");
    assert_eq!(ann["flannel.alpha.coreos.com/public-ip"], "192.168.56.12");
    assert!(ann.get("flannel.alpha.coreos.com/backend-v6-data").is_none(), "IPv4-only: no v6 annotations");
    assert_eq!(worker["spec"], serde_json::json!({"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}));
    // The published List is itself Node objects: importing it gives the same topology nodes.
    let published = dir.path().join("published.json");
    std::fs::write(&published, stdout(&o)).expect("write");
    let again = dir.path().join("again.yaml");
    assert_eq!(code(&import(s(&published), &again)), 0);
    for node in ["cp-1", "worker-1"] {
        assert_eq!(plan(&topo, node)["peers"], plan(&again, node)["peers"], "{node}");
    }
}

/// The script, run by sh with a `kubectl` that only records its arguments
/// (no API server runs here: what kubectl and the server make of them is
/// untested): per node the same merge patch as the List, then flanneld's
/// NetworkUnavailable=False condition (CompleteLease in
/// pkg/subnet/kube/kube.go) as a strategic patch of the status, stamped
/// with the time the script ran.
#[test]
fn the_script_patches_each_node_and_sets_flanneld_s_condition() {
    let dir = tempfile::tempdir().expect("tmp");
    let topo = dir.path().join("k.yaml");
    assert_eq!(code(&import(&fixture("kube-nodes.json"), &topo)), 0);
    let script = stdout(&run(&["publish", "kube", s(&topo)]));
    let json: Value =
        serde_json::from_str(&stdout(&run(&["publish", "kube", s(&topo), "--format", "json"]))).expect("json");
    assert!(script.starts_with("#!/bin/sh\n") && script.contains("\nset -eu\n"), "{script}");
    let f = dir.path().join("publish.sh");
    std::fs::write(&f, &script).expect("write");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let log = dir.path().join("calls");
    let recorder = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> {}\necho >> {}\n",
        log.display(),
        log.display()
    );
    std::fs::write(bin.join("kubectl"), recorder).expect("write");
    std::fs::set_permissions(bin.join("kubectl"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let ran = std::process::Command::new("sh").arg(&f).env("PATH", path).output().expect("sh");
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let text = std::fs::read_to_string(&log).expect("calls");
    let calls: Vec<Vec<&str>> = text.lines().map(|l| l.split('\0').filter(|a| !a.is_empty()).collect()).collect();
    let items = json["items"].as_array().expect("items");
    assert_eq!(calls.len(), 2 * items.len(), "{text}");
    for (pair, item) in calls.chunks(2).zip(items) {
        let name = item["metadata"]["name"].as_str().expect("name");
        assert_eq!(pair[0][..5], ["patch", "node", name, "--type=merge", "-p"]);
        let patch: Value = serde_json::from_str(pair[0][5]).expect("patch JSON");
        assert_eq!(patch["metadata"]["annotations"], item["metadata"]["annotations"]);
        assert!(patch.get("spec").is_none(), "{patch}");
        assert_eq!(pair[1][..6], ["patch", "node", name, "--subresource=status", "--type=strategic", "-p"]);
        let status: Value = serde_json::from_str(pair[1][6]).expect("status JSON");
        let c = &status["status"]["conditions"][0];
        let when = c["lastTransitionTime"].as_str().expect("time");
        assert_eq!(
            *c,
            serde_json::json!({"type": "NetworkUnavailable", "status": "False", "reason": "FlannelIsUp",
                "message": "Flannel is running on this node", "lastTransitionTime": when, "lastHeartbeatTime": when})
        );
        assert!(when.len() == 20 && when.ends_with('Z') && when.as_bytes()[10] == b'T', "RFC 3339: {when}");
    }
    let off = stdout(&run(&["publish", "kube", s(&topo), "--set-node-network-unavailable", "false"]));
    assert!(!off.contains("--subresource=status") && !off.contains("now="), "{off}");
}

#[test]
fn host_gw_nodes_publish_null_backend_data_as_flanneld_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = run(&["publish", "kube", "examples/hostgw-3node.yaml", "--format", "json", "--node", "node-2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    // RawMessage(nil).MarshalJSON() is "null" (kube.go writes it for host-gw).
    assert_eq!(items[0]["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"], "null");
    assert_eq!(items[0]["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-type"], "host-gw");
    let bad = run(&["publish", "kube", "examples/hostgw-3node.yaml", "--node", "nope"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    let prefix = run(&["publish", "kube", "examples/hostgw-3node.yaml", "--annotation-prefix", "Not/A/Prefix"]);
    assert_eq!(code(&prefix), 2, "{}", stderr(&prefix));
    drop(dir);
}

#[test]
fn malformed_node_annotations_are_located() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(fixture("kube-nodes.json"))
        .expect("fixture")
        .replace("\"192.168.56.12\"", "\"192.168.56.312\"")
        .replace(r#"\"VtepMAC\":\"4e:d2:0b:8c:19:a1\""#, r#"\"VtepMAC\":\"zz\""#);
    let nodes = dir.path().join("nodes.json");
    std::fs::write(&nodes, text).expect("write");
    let topo = dir.path().join("k.yaml");
    let o = import(s(&nodes), &topo);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(r#"items[1].metadata.annotations["flannel.alpha.coreos.com/public-ip"]"#), "{err}");
    assert!(
        err.contains(r#"items[0].metadata.annotations["flannel.alpha.coreos.com/backend-data"]: VtepMAC"#),
        "{err}"
    );
    assert!(err.contains(&format!("{}:", nodes.display())), "located in the file: {err}");
    assert!(!topo.exists());
}

/// #28: `public-ip-overwrite` (pkg/subnet/kube/annotations.go) is what
/// flanneld publishes for a node behind NAT, whatever `public-ip` still
/// says: import reads it so; a malformed one is located, exit 2.
#[test]
fn import_honours_the_public_ip_overwrite_annotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut nodes: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("kube-nodes.json")).expect("fixture")).expect("json");
    let items = nodes["items"].as_array_mut().expect("items");
    let worker = items.iter_mut().find(|n| n["metadata"]["name"] == "worker-1").expect("worker-1");
    let ann = &mut worker["metadata"]["annotations"];
    ann["flannel.alpha.coreos.com/public-ip-overwrite"] = Value::from("203.0.113.12");
    let file = dir.path().join("nodes.json");
    std::fs::write(&file, nodes.to_string()).expect("write");
    let topo = dir.path().join("k.yaml");
    let o = import(s(&file), &topo);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let p = plan(&topo, "cp-1");
    assert_eq!(p["peers"][0]["publicIP"], "203.0.113.12", "{p:#}");

    let ann = &mut nodes["items"]
        .as_array_mut()
        .expect("items")
        .iter_mut()
        .find(|n| n["metadata"]["name"] == "worker-1")
        .expect("w")["metadata"]["annotations"];
    ann["flannel.alpha.coreos.com/public-ip-overwrite"] = Value::from("203.0.113.999");
    std::fs::write(&file, nodes.to_string()).expect("write");
    let o = import(s(&file), &dir.path().join("bad.yaml"));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(r#"metadata.annotations["flannel.alpha.coreos.com/public-ip-overwrite"]"#),
        "{}",
        stderr(&o)
    );
}

/// wireguard nodes annotate as flanneld's AcquireLease writes them
/// (pkg/subnet/kube/kube.go): backend-type `wireguard`, backend-data and
/// backend-v6-data the `wireguardLeaseAttrs{PublicKey, Port}` JSON of
/// pkg/backend/wireguard/wireguard.go. Imported back, every plan has the
/// same peers and keys.
#[test]
fn wireguard_nodes_publish_their_public_keys_and_import_back() {
    const WG: &str = "examples/wireguard-3node.yaml";
    let dir = tempfile::tempdir().expect("tmp");
    let o = run(&["publish", "kube", WG, "--format", "json", "--pod-cidr"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let node1 = &list["items"][0];
    assert_eq!(node1["metadata"]["name"], "node-1");
    let key = plan(Path::new(WG), "node-1")["backend"]["publicKey"].as_str().expect("key").to_string();
    let ann = &node1["metadata"]["annotations"];
    assert_eq!(ann["flannel.alpha.coreos.com/backend-type"], "wireguard");
    assert_eq!(ann["flannel.alpha.coreos.com/backend-data"], format!(r#"{{"PublicKey":"{key}","Port":51820}}"#));
    assert_eq!(ann["flannel.alpha.coreos.com/backend-v6-data"], format!(r#"{{"PublicKey":"{key}","Port":51821}}"#));
    assert_eq!(ann["flannel.alpha.coreos.com/public-ipv6"], "fd00:31::61");

    let published = dir.path().join("nodes.json");
    std::fs::write(&published, stdout(&o)).expect("write");
    let conf = dir.path().join("net-conf.json");
    std::fs::write(
        &conf,
        r#"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":25}}"#,
    )
    .expect("write");
    let topo = dir.path().join("wg.yaml");
    let args = ["import", "kube", s(&published), "--net-conf", s(&conf), "--cluster", "secure", "--out", s(&topo)];
    let o = run(&[&args[..], &["--ip-masq", "true"]].concat());
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    for node in ["node-1", "node-2", "node-3"] {
        let (a, b) = (plan(Path::new(WG), node), plan(&topo, node));
        assert_eq!(a["peers"], b["peers"], "{node}");
        assert_eq!(a["backend"]["publicKey"], b["backend"]["publicKey"], "{node}");
    }
    // A key that is not one is located at its annotation.
    let text = std::fs::read_to_string(&published).expect("read").replacen(&key, "AAAA", 2);
    std::fs::write(&published, text).expect("write");
    let o = run(&[&args[..], &["--ip-masq", "true", "--force"]].concat());
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("flannel.alpha.coreos.com/backend-data") && stderr(&o).contains("3 bytes"),
        "{}",
        stderr(&o)
    );
}
